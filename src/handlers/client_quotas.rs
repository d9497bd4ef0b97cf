//! DescribeClientQuotas and AlterClientQuotas (KIP-546): the quotas of
//! [`crate::auth::quota`] on the wire.

use kafka_protocol::messages::{
    alter_client_quotas_response, describe_client_quotas_response, AlterClientQuotasRequest, AlterClientQuotasResponse,
    DescribeClientQuotasRequest, DescribeClientQuotasResponse,
};

use super::common::str_bytes;
use super::error_codes::ResponseError;
use super::{Ctx, Reply};
use crate::auth::acl::op;
use crate::auth::quota::{Component, Entity, Op, QuotaError};

const DENIED: ResponseError = ResponseError::ClusterAuthorizationFailed;

fn code(e: &QuotaError) -> ResponseError {
    match e {
        QuotaError::Invalid(_) => ResponseError::InvalidRequest,
        QuotaError::Unsupported(_) => ResponseError::UnsupportedVersion,
        QuotaError::Storage(_) => ResponseError::KafkaStorageError,
    }
}

pub async fn handle_describe(ctx: &Ctx, req: DescribeClientQuotasRequest) -> Reply {
    // Kafka 4.1: DESCRIBE_CONFIGS on the cluster.
    let refuse = |error: ResponseError, message: String| {
        ctx.reply(
            &DescribeClientQuotasResponse::default()
                .with_error_code(error.code())
                .with_error_message(Some(str_bytes(&message)))
                .with_entries(None),
        )
    };
    if !ctx.cluster_allows(op::DESCRIBE_CONFIGS) {
        return refuse(DENIED, DENIED.to_string());
    }
    let components: Vec<Component> = req
        .components
        .iter()
        .map(|c| Component {
            entity_type: c.entity_type.to_string(),
            match_type: c.match_type,
            name: c._match.as_ref().map(|m| m.to_string()),
        })
        .collect();
    let found = match ctx.broker.quotas.describe(&components, req.strict) {
        Ok(found) => found,
        Err(e) => return refuse(code(&e), e.to_string()),
    };
    let entries = found
        .into_iter()
        .map(|(entity, values)| {
            describe_client_quotas_response::EntryData::default()
                .with_entity(
                    entity
                        .parts()
                        .into_iter()
                        .map(|(t, n)| {
                            describe_client_quotas_response::EntityData::default()
                                .with_entity_type(str_bytes(t))
                                .with_entity_name(n.map(str_bytes))
                        })
                        .collect(),
                )
                .with_values(
                    values
                        .into_iter()
                        .map(|(k, v)| {
                            describe_client_quotas_response::ValueData::default().with_key(str_bytes(&k)).with_value(v)
                        })
                        .collect(),
                )
        })
        .collect();
    ctx.reply(&DescribeClientQuotasResponse::default().with_entries(Some(entries)))
}

pub async fn handle_alter(ctx: &Ctx, req: AlterClientQuotasRequest) -> Reply {
    // Kafka 4.1: ALTER_CONFIGS on the cluster; every entity gets the refusal.
    let allowed = ctx.cluster_allows(op::ALTER_CONFIGS);
    let echoed: Vec<Vec<alter_client_quotas_response::EntityData>> = req
        .entries
        .iter()
        .map(|e| {
            e.entity
                .iter()
                .map(|d| {
                    alter_client_quotas_response::EntityData::default()
                        .with_entity_type(d.entity_type.clone())
                        .with_entity_name(d.entity_name.clone())
                })
                .collect()
        })
        .collect();
    let results: Vec<Result<(), QuotaError>> = if allowed {
        let entries = req
            .entries
            .iter()
            .map(|e| {
                let entity =
                    Entity::from_parts(e.entity.iter().map(|d| (d.entity_type.as_str(), d.entity_name.as_deref())))?;
                let ops = e
                    .ops
                    .iter()
                    .map(|o| Op { key: o.key.to_string(), value: (!o.remove).then_some(o.value) })
                    .collect();
                Ok((entity, ops))
            })
            .collect();
        let broker = ctx.broker.clone();
        let validate_only = req.validate_only;
        // The store writes its file: off the runtime.
        match tokio::task::spawn_blocking(move || broker.quotas.alter(entries, validate_only)).await {
            Ok(results) => results,
            Err(_) => return Reply::Close("quota alteration could not be completed".into()),
        }
    } else {
        echoed.iter().map(|_| Err(QuotaError::Invalid(String::new()))).collect()
    };
    let entries = echoed
        .into_iter()
        .zip(results)
        .map(|(entity, result)| {
            let entry = alter_client_quotas_response::EntryData::default().with_entity(entity);
            match result {
                Ok(()) => entry,
                Err(_) if !allowed => {
                    entry.with_error_code(DENIED.code()).with_error_message(Some(str_bytes(&DENIED.to_string())))
                }
                Err(e) => entry.with_error_code(code(&e).code()).with_error_message(Some(str_bytes(&e.to_string()))),
            }
        })
        .collect();
    ctx.reply(&AlterClientQuotasResponse::default().with_entries(entries))
}
