//! AlterConfigs (replace a resource's whole set) and IncrementalAlterConfigs (SET, DELETE,
//! APPEND, SUBTRACT per key), for a topic's overrides and for the broker's dynamic settings:
//! this broker's (resource "1") or the cluster default (resource ""), and for a group's
//! configs (resource type 32: the `share.*` keys of share groups). Broker settings gregor
//! cannot change at run time are refused with INVALID_REQUEST and a message saying so, unknown
//! keys and bad values with INVALID_CONFIG (see `broker::broker_configs`).

use std::collections::BTreeMap;

use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest, AlterConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::common::str_bytes;
use super::describe_configs::{broker_layer, RESOURCE_BROKER, RESOURCE_GROUP, RESOURCE_TOPIC};
use super::{Ctx, Reply};
use crate::broker::broker_configs::BrokerConfigError;
use crate::broker::Broker;
use crate::handlers::error_codes::{ResponseError, ToKafkaCode};
use crate::metadata::topic_config;

/// Applies one resource's change; (error code, message).
async fn apply(
    ctx: &Ctx,
    resource_type: i8,
    name: &str,
    validate_only: bool,
    change: impl Fn(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, String> + Send + 'static,
) -> (i16, Option<StrBytes>) {
    if let Some((code, message)) = ctx.config_denied(crate::auth::acl::op::ALTER_CONFIGS, resource_type, name) {
        return (code.code(), Some(str_bytes(&message)));
    }
    match resource_type {
        RESOURCE_TOPIC => {}
        RESOURCE_BROKER => {
            let layer = match broker_layer(&ctx.broker, name) {
                Ok(layer) => layer,
                Err(message) => return (ResponseError::InvalidRequest.code(), Some(str_bytes(&message))),
            };
            // Off the runtime: the change is written to a file, or in shared mode to the store
            // (and a cluster default may be made again on a newer one there).
            let broker = ctx.broker.clone();
            let changed = super::common::off_runtime(move || {
                Ok(broker.alter_broker_configs(layer, validate_only, |current| {
                    change(current).map_err(BrokerConfigError::InvalidConfig)
                }))
            })
            .await
            .unwrap_or_else(|e: std::io::Error| Err(BrokerConfigError::InvalidConfig(e.to_string())));
            return match changed {
                Ok(()) => (0, None),
                Err(e @ BrokerConfigError::InvalidConfig(_)) => {
                    (ResponseError::InvalidConfig.code(), Some(str_bytes(&e.to_string())))
                }
                Err(e @ BrokerConfigError::NotDynamic(_)) => {
                    (ResponseError::InvalidRequest.code(), Some(str_bytes(&e.to_string())))
                }
            };
        }
        RESOURCE_GROUP => {
            use crate::group::share::GroupSettings;
            let share = &ctx.broker.share_groups;
            let next = match change(&share.settings(name).to_map()).and_then(|m| GroupSettings::from_map(&m)) {
                Ok(next) => next,
                Err(msg) => return (ResponseError::InvalidConfig.code(), Some(str_bytes(&msg))),
            };
            if validate_only {
                return (0, None);
            }
            // Shared mode: the cluster's store takes them first (off the runtime).
            let (broker, group) = (ctx.broker.clone(), name.to_string());
            return match super::common::off_runtime(move || broker.share_groups.set_settings(&group, next)).await {
                Ok(()) => (0, None),
                Err(e) => (
                    ResponseError::UnknownServerError.code(),
                    Some(str_bytes(&format!("The group configs could not be written: {e}"))),
                ),
            };
        }
        _ => return (ResponseError::InvalidRequest.code(), Some(str_bytes("unsupported resource type"))),
    }
    let Some(topic) = ctx.broker.topics.get(name) else {
        return (ResponseError::UnknownTopicOrPartition.code(), Some(str_bytes("Topic does not exist")));
    };
    let configs = match change(&topic.configs) {
        Ok(c) => c,
        Err(msg) => return (ResponseError::InvalidConfig.code(), Some(str_bytes(&msg))),
    };
    // Off the runtime: the topic's metadata file is rewritten, and in shared mode the store
    // takes the configs first.
    let (broker, name) = (ctx.broker.clone(), name.to_string());
    match super::common::off_runtime(move || broker.set_topic_configs(&name, configs, validate_only)).await {
        Ok(()) => (0, None),
        Err(e) => (e.kafka_code().code(), Some(str_bytes(&e.to_string()))),
    }
}

pub async fn handle(ctx: &Ctx, req: AlterConfigsRequest) -> Reply {
    let mut responses = Vec::with_capacity(req.resources.len());
    for r in req.resources {
        let configs = r.configs.clone();
        let (code, message) = apply(ctx, r.resource_type, r.resource_name.as_str(), req.validate_only, move |_| {
            configs
                .iter()
                .map(|c| match &c.value {
                    Some(v) => Ok((c.name.as_str().to_string(), v.as_str().to_string())),
                    None => Err(format!("Null value not supported for: {}", c.name.as_str())),
                })
                .collect()
        })
        .await;
        responses.push(
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
                .with_error_code(code)
                .with_error_message(message),
        );
    }
    ctx.reply(&AlterConfigsResponse::default().with_responses(responses))
}

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

pub async fn handle_incremental(ctx: &Ctx, req: IncrementalAlterConfigsRequest) -> Reply {
    let mut responses = Vec::with_capacity(req.resources.len());
    for r in req.resources {
        let (configs, broker) = (r.configs.clone(), ctx.broker.clone());
        let (code, message) =
            apply(ctx, r.resource_type, r.resource_name.as_str(), req.validate_only, move |current| {
                incremental(current, &configs, &broker)
            })
            .await;
        responses.push(
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
                .with_error_code(code)
                .with_error_message(message),
        );
    }
    ctx.reply(&IncrementalAlterConfigsResponse::default().with_responses(responses))
}

/// `current` with IncrementalAlterConfigs' operations made on it; a list config APPENDed to or
/// SUBTRACTed from starts from its default in force when it is not set.
fn incremental(
    current: &BTreeMap<String, String>,
    configs: &[AlterableConfig],
    broker: &Broker,
) -> Result<BTreeMap<String, String>, String> {
    let mut next = current.clone();
    for c in configs {
        let key = c.name.as_str().to_string();
        let value = c.value.as_ref().map(|v| v.as_str().to_string());
        match (c.config_operation, value) {
            (SET, Some(v)) => {
                next.insert(key, v);
            }
            (DELETE, _) => {
                next.remove(&key);
            }
            (APPEND | SUBTRACT, Some(v)) if topic_config::is_list(&key) => {
                let base = next
                    .get(&key)
                    .cloned()
                    .or_else(|| topic_config::default_value(&key, &broker.log_defaults()))
                    .unwrap_or_default();
                let mut items: Vec<String> =
                    base.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
                for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if c.config_operation == APPEND {
                        if !items.iter().any(|i| i == item) {
                            items.push(item.to_string());
                        }
                    } else {
                        items.retain(|i| i != item);
                    }
                }
                next.insert(key, items.join(","));
            }
            (APPEND | SUBTRACT, _) => return Err(format!("{key} is not a list config")),
            (op, _) => return Err(format!("invalid operation {op} or missing value for {key}")),
        }
    }
    Ok(next)
}
