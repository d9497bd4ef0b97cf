//! DescribeConfigs, as Kafka 4.1's ConfigHelper answers it: a topic's configs (its overrides
//! and the broker defaults behind them), this broker's settings (resource "1": every setting
//! with the value in force) and the cluster-wide dynamic defaults (resource "": only what is
//! set there). Synonyms only when asked for (v1+), in precedence order, the first one giving
//! the entry's source; documentation only when asked for (v3+), null otherwise. No key list or
//! an empty one means every key.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::common::str_bytes;
use super::{Ctx, Reply};
use crate::broker::broker_configs::{Layer, Synonym, SOURCE_DEFAULT, SOURCE_TOPIC};
use crate::broker::Broker;
use crate::handlers::error_codes::ResponseError;
use crate::metadata::topic_config;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
pub const RESOURCE_GROUP: i8 = 32;

/// One config as the response shows it.
pub struct Entry {
    pub name: String,
    pub value: Option<String>,
    pub source: i8,
    pub read_only: bool,
    pub type_code: i8,
    pub doc: String,
    pub synonyms: Vec<Synonym>,
}

/// Which broker layer a resource name means: "" the cluster default, this broker's id itself.
pub fn broker_layer(broker: &Broker, name: &str) -> Result<Layer, String> {
    if name.is_empty() {
        return Ok(Layer::ClusterDefault);
    }
    match name.parse::<i32>() {
        Ok(id) if id == broker.node.node_id => Ok(Layer::Broker),
        Ok(id) => {
            Err(format!("Unexpected broker id, expected {} or empty string, but received {id}", broker.node.node_id))
        }
        Err(_) => Err(format!("Broker id must be an integer, but it is: {name}")),
    }
}

pub async fn handle(ctx: &Ctx, req: DescribeConfigsRequest) -> Reply {
    let v = ctx.version;
    let synonyms_wanted = v >= 1 && req.include_synonyms;
    let docs_wanted = v >= 3 && req.include_documentation;
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let mut out = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
                .with_error_message(None);
            if let Some((code, message)) =
                ctx.config_denied(crate::auth::acl::op::DESCRIBE_CONFIGS, r.resource_type, r.resource_name.as_str())
            {
                return out.with_error_code(code.code()).with_error_message(Some(str_bytes(&message)));
            }
            let entries = match r.resource_type {
                RESOURCE_TOPIC => match ctx.broker.topic(r.resource_name.as_str()) {
                    Some(t) => topic_entries(&ctx.broker, &t.configs),
                    None => return out.with_error_code(ResponseError::UnknownTopicOrPartition.code()),
                },
                RESOURCE_BROKER => match broker_layer(&ctx.broker, r.resource_name.as_str()) {
                    Ok(layer) => broker_entries(&ctx.broker, layer),
                    Err(message) => {
                        return out
                            .with_error_code(ResponseError::InvalidRequest.code())
                            .with_error_message(Some(str_bytes(&message)));
                    }
                },
                RESOURCE_GROUP => group_entries(&ctx.broker, r.resource_name.as_str()),
                other => {
                    return out.with_error_code(ResponseError::InvalidRequest.code()).with_error_message(Some(
                        str_bytes(&format!(
                            "gregor describes topic, broker and group configs only, not resource type {other}"
                        )),
                    ));
                }
            };
            let wanted = r
                .configuration_keys
                .filter(|k| !k.is_empty())
                .map(|k| k.into_iter().map(|k| k.as_str().to_string()).collect::<Vec<_>>());
            out.configs = entries
                .into_iter()
                .filter(|e| wanted.as_ref().is_none_or(|w| w.contains(&e.name)))
                .map(|e| {
                    let mut c = DescribeConfigsResourceResult::default()
                        .with_name(str_bytes(&e.name))
                        .with_value(e.value.as_deref().map(str_bytes))
                        .with_read_only(e.read_only)
                        .with_config_source(e.source);
                    if synonyms_wanted {
                        c.synonyms = e
                            .synonyms
                            .iter()
                            .map(|s| {
                                DescribeConfigsSynonym::default()
                                    .with_name(str_bytes(&s.name))
                                    .with_value(s.value.as_deref().map(str_bytes))
                                    .with_source(s.source)
                            })
                            .collect();
                    }
                    if v >= 3 {
                        c.config_type = e.type_code;
                        c.documentation = docs_wanted.then(|| str_bytes(&e.doc));
                    }
                    c
                })
                .collect();
            out
        })
        .collect();
    ctx.reply(&DescribeConfigsResponse::default().with_results(results))
}

/// A topic's configs: an override is a TOPIC_CONFIG value; otherwise the broker setting it
/// defaults to gives the value and the source (dynamic, static or default), or Kafka's default.
pub fn topic_entries(broker: &Broker, overrides: &BTreeMap<String, String>) -> Vec<Entry> {
    let log = broker.log_defaults();
    topic_config::names()
        .filter_map(|k| {
            let mut synonyms = broker.topic_default_synonyms(k);
            if synonyms.is_empty() {
                let default = topic_config::default_value(k, &log)?;
                if !overrides.contains_key(k) {
                    // No broker setting behind it: Kafka's own default, with no synonym.
                    return Some(entry(k, Some(default), SOURCE_DEFAULT, Vec::new()));
                }
            }
            if let Some(v) = overrides.get(k) {
                synonyms.insert(0, Synonym { name: k.to_string(), value: Some(v.clone()), source: SOURCE_TOPIC });
            }
            let first = synonyms.first().cloned()?;
            Some(entry(k, first.value, first.source, synonyms))
        })
        .collect()
}

/// A group's configs (share groups' `share.*`): the group's own value (GROUP_CONFIG) or the
/// broker's default. Kafka describes any group name, existing or not; so does gregor.
fn group_entries(broker: &Broker, group: &str) -> Vec<Entry> {
    const SOURCE_GROUP: i8 = 8;
    let settings = broker.share_groups.settings(group);
    settings
        .describe(broker.share_groups.config())
        .into_iter()
        .map(|d| Entry {
            name: d.name.to_string(),
            value: Some(d.value.clone()),
            source: if d.set { SOURCE_GROUP } else { SOURCE_DEFAULT },
            read_only: false,
            type_code: d.type_code,
            doc: d.doc.to_string(),
            synonyms: vec![Synonym {
                name: d.name.to_string(),
                value: Some(d.value),
                source: if d.set { SOURCE_GROUP } else { SOURCE_DEFAULT },
            }],
        })
        .collect()
}

fn entry(k: &str, value: Option<String>, source: i8, synonyms: Vec<Synonym>) -> Entry {
    Entry {
        name: k.to_string(),
        value,
        source,
        read_only: false,
        type_code: topic_config::type_code(k),
        doc: topic_config::describe_values(k).unwrap_or_default(),
        synonyms,
    }
}

fn broker_entries(broker: &Broker, layer: Layer) -> Vec<Entry> {
    broker
        .broker_config_entries(layer)
        .into_iter()
        .map(|e| Entry {
            name: e.name.to_string(),
            value: e.value,
            source: e.source,
            read_only: e.read_only,
            type_code: e.type_code,
            doc: e.doc.to_string(),
            synonyms: e.synonyms,
        })
        .collect()
}
