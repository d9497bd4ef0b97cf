//! ApiVersions: the advertised APIs and versions, straight from `SUPPORTED`.
//!
//! Only non-default fields are set, so no tagged field is written that old librdkafka (2.0.x)
//! would mis-skip. A request newer than we know gets a v0 response with UNSUPPORTED_VERSION
//! (KIP-511), which every client can parse.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;

use super::{encode, Ctx, Reply, SUPPORTED};
use crate::handlers::error_codes::ResponseError;

fn api_keys() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|a| ApiVersion::default().with_api_key(a.key as i16).with_min_version(a.min).with_max_version(a.max))
        .collect()
}

pub async fn handle(ctx: &Ctx, req: ApiVersionsRequest) -> Reply {
    let valid = |s: &StrBytes| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
    let error = if ctx.version >= 3 && !(valid(&req.client_software_name) && valid(&req.client_software_version)) {
        ResponseError::InvalidRequest.code()
    } else {
        0
    };
    ctx.reply(&ApiVersionsResponse::default().with_error_code(error).with_api_keys(api_keys()))
}

pub fn unsupported_version(correlation_id: i32) -> Reply {
    let body = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_keys());
    match encode(correlation_id, 0, &body) {
        Some(b) => Reply::Ready(b),
        None => Reply::Close("cannot encode ApiVersions".into()),
    }
}
