//! ApiVersions: the advertised APIs and versions, straight from the registry (`advertised`).
//!
//! Only non-default fields are set, so no tagged field is written that old librdkafka (2.0.x)
//! would mis-skip. A request newer than we know gets a v0 response with UNSUPPORTED_VERSION
//! (KIP-511), which every client can parse.

use kafka_protocol::messages::api_versions_response::{ApiVersion, FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;

use super::releases::Release;
use super::{advertised, encode, Ctx, Reply};
use crate::handlers::error_codes::ResponseError;

fn api_keys(release: Option<Release>) -> Vec<ApiVersion> {
    advertised(release)
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
    let mut resp = ApiVersionsResponse::default().with_error_code(error).with_api_keys(api_keys(ctx.release));
    // Kafka 2.8 and 3.9 brokers finalized no transaction version: their clients use the first.
    if ctx.version >= 3 && ctx.release.is_none_or(|r| r >= Release::Kafka41) {
        // Transaction Version 2 (KIP-890): Kafka 4 clients use the epoch-bump-per-transaction
        // protocol when the finalized `transaction.version` is 2. These are tagged fields: old
        // librdkafka mis-skips tagged fields only when they carry defaults (see
        // PROTOCOL-NOTES), and these do not.
        resp.supported_features = vec![SupportedFeatureKey::default()
            .with_name(StrBytes::from_static_str(TRANSACTION_VERSION))
            .with_min_version(0)
            .with_max_version(2)];
        resp.finalized_features_epoch = FEATURES_EPOCH;
        resp.finalized_features = vec![FinalizedFeatureKey::default()
            .with_name(StrBytes::from_static_str(TRANSACTION_VERSION))
            .with_min_version_level(2)
            .with_max_version_level(2)];
    }
    ctx.reply(&resp)
}

const TRANSACTION_VERSION: &str = "transaction.version";

/// The epoch of the finalized features: they never change while a data directory lives.
const FEATURES_EPOCH: i64 = 1;

pub fn unsupported_version(correlation_id: i32, release: Option<Release>) -> Reply {
    let body = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_keys(release));
    match encode(correlation_id, 0, &body) {
        Some(b) => Reply::Ready(b),
        None => Reply::Close("cannot encode ApiVersions".into()),
    }
}
