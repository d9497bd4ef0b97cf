//! CreateTopics: per-topic validation and creation, `validate_only`, per-topic errors.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use super::common::{off_runtime, str_bytes};
use super::{Ctx, Reply};
use crate::auth::acl::{op, resource};
use crate::broker::NewTopic;
use crate::handlers::error_codes::{ResponseError, ToKafkaCode};

pub async fn handle(ctx: &Ctx, req: CreateTopicsRequest) -> Reply {
    let v = ctx.version;
    let broker = &ctx.broker;
    let mut seen = std::collections::HashSet::new();
    let duplicates: std::collections::HashSet<String> = req
        .topics
        .iter()
        .filter(|t| !seen.insert(t.name.0.as_str().to_string()))
        .map(|t| t.name.0.as_str().to_string())
        .collect();
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let name = t.name.0.as_str().to_string();
        // KIP-467: null on success, a sentence otherwise (the codec's default is "").
        let mut result = CreatableTopicResult::default().with_name(t.name.clone()).with_error_message(None);
        if duplicates.contains(&name) {
            result.error_code = ResponseError::InvalidRequest.code();
            result.error_message = Some(str_bytes(&format!(
                "Create topics request from client `{}` contains multiple entries for the following topics: {name}",
                ctx.client_id.as_deref().unwrap_or("")
            )));
            results.push(result);
            continue;
        }
        // Kafka 4.1: CREATE on the cluster, or on the topic.
        if !ctx.cluster_allows(op::CREATE) && !ctx.allowed(op::CREATE, resource::TOPIC, &name) {
            result.error_code = ResponseError::TopicAuthorizationFailed.code();
            result.error_message = Some(str_bytes(&format!("Not authorized to create topic {name}.")));
            if v >= 5 {
                result.num_partitions = -1;
                result.replication_factor = -1;
            }
            results.push(result);
            continue;
        }
        let describe_configs = ctx.allowed(op::DESCRIBE_CONFIGS, resource::TOPIC, &name);
        let mut configs = BTreeMap::new();
        let mut null_config = None;
        for c in &t.configs {
            match &c.value {
                Some(value) => {
                    configs.insert(c.name.as_str().to_string(), value.as_str().to_string());
                }
                None => null_config = Some(c.name.as_str().to_string()),
            }
        }
        if let Some(key) = null_config {
            result.error_code = ResponseError::InvalidConfig.code();
            result.error_message = Some(str_bytes(&format!("Null value not supported for topic configs: {key}")));
            results.push(result);
            continue;
        }
        let new = NewTopic {
            name,
            partitions: t.num_partitions,
            replication_factor: t.replication_factor,
            assignments: t
                .assignments
                .iter()
                .map(|a| (a.partition_index, a.broker_ids.iter().map(|b| b.0).collect()))
                .collect(),
            configs,
        };
        let (b, validate_only) = (broker.clone(), req.validate_only);
        match off_runtime(move || b.create_topic(new, validate_only)).await {
            Ok(meta) => {
                if v >= 7 {
                    result.topic_id = if req.validate_only { uuid::Uuid::nil() } else { meta.id };
                }
                if v >= 5 && !describe_configs {
                    // Created, but the principal may not see its configs.
                    result.num_partitions = meta.partitions;
                    result.replication_factor = 1;
                    result.topic_config_error_code = ResponseError::TopicAuthorizationFailed.code();
                } else if v >= 5 {
                    result.num_partitions = meta.partitions;
                    result.replication_factor = 1;
                    let configs = super::describe_configs::topic_entries(broker, &meta.configs)
                        .into_iter()
                        .map(|e| {
                            CreatableTopicConfigs::default()
                                .with_name(str_bytes(&e.name))
                                .with_value(e.value.as_deref().map(str_bytes))
                                .with_config_source(e.source)
                        })
                        .collect();
                    result.configs = Some(configs);
                }
            }
            Err(e) => {
                result.error_code = e.kafka_code().code();
                if v >= 1 {
                    result.error_message = Some(str_bytes(&e.to_string()));
                }
                if v >= 5 {
                    result.num_partitions = -1;
                    result.replication_factor = -1;
                }
            }
        }
        results.push(result);
    }
    ctx.reply(&CreateTopicsResponse::default().with_topics(results))
}
