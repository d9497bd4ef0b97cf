//! Metadata: the live brokers (this one alone on a single node), topics and partitions with
//! their leaders (the cluster's answer, [`crate::cluster::Cluster`]), auto-creation of unknown
//! topics.

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use uuid::Uuid;

use super::common::{str_bytes, topic_name};
use super::{Ctx, Reply};
use crate::auth::acl::{op, resource};
use crate::handlers::error_codes::{ResponseError, ToKafkaCode};
use crate::metadata::{validate_topic_name, TopicMeta};

pub async fn handle(ctx: &Ctx, req: MetadataRequest) -> Reply {
    let broker = &ctx.broker;
    let v = ctx.version;
    let auto_create = broker.config.topics.auto_create && (v < 4 || req.allow_auto_topic_creation);
    let requested = match req.topics {
        None => None,
        // v0 has no null: an empty list asks for every topic.
        Some(t) if v == 0 && t.is_empty() => None,
        Some(t) => Some(t),
    };
    let topics: Vec<MetadataResponseTopic> = match requested {
        // A listing of every topic leaves out those the principal may not DESCRIBE.
        None => broker
            .all_topics()
            .iter()
            .filter(|t| ctx.allowed(op::DESCRIBE, resource::TOPIC, &t.name))
            .map(|t| describe(ctx, t))
            .collect(),
        Some(list) => {
            // A name, or (Java clients send "" with it) a topic id.
            let wanted: Vec<(Option<String>, Uuid)> = list
                .into_iter()
                .map(|t| (t.name.map(|n| n.0.to_string()).filter(|n| !n.is_empty()), t.topic_id))
                .collect();
            let unknown = wanted.iter().any(|(name, _)| name.as_ref().is_some_and(|n| broker.topic(n).is_none()));
            if unknown {
                // Shared mode: another broker may have created it a moment ago.
                broker.look_up_topics().await;
            }
            // Still unknown after the lookup.
            let creates = auto_create
                && unknown
                && wanted.iter().any(|(name, _)| name.as_ref().is_some_and(|n| broker.topic(n).is_none()));
            let resolve = {
                let ctx = ctx.clone();
                move || -> Vec<MetadataResponseTopic> {
                    wanted
                        .into_iter()
                        .map(|(name, id)| match name {
                            Some(name) => by_name(&ctx, &name, auto_create),
                            None => by_id(&ctx, id),
                        })
                        .collect()
                }
            };
            if creates {
                // Auto-creation makes directories and files: off the runtime.
                match tokio::task::spawn_blocking(resolve).await {
                    Ok(topics) => topics,
                    Err(_) => return Reply::Close("metadata could not be completed".into()),
                }
            } else {
                resolve()
            }
        }
    };
    let brokers = ctx
        .nodes()
        .into_iter()
        .map(|n| {
            let mut b = MetadataResponseBroker::default()
                .with_node_id(BrokerId(n.id))
                .with_host(str_bytes(&n.host))
                .with_port(i32::from(n.port));
            if v >= 1 {
                b.rack = n.rack.as_deref().map(str_bytes);
            }
            b
        })
        .collect();
    let mut resp = MetadataResponse::default().with_brokers(brokers).with_topics(topics);
    if v >= 1 {
        resp.controller_id = BrokerId(broker.cluster.controller());
    }
    if v >= 2 {
        resp.cluster_id = Some(str_bytes(&broker.node.cluster_id));
    }
    if (8..=10).contains(&v) && req.include_cluster_authorized_operations {
        resp.cluster_authorized_operations = if ctx.cluster_allows(op::DESCRIBE) {
            ctx.authorized_operations(resource::CLUSTER, crate::auth::acl::CLUSTER_NAME)
        } else {
            0
        };
    }
    if v >= 8 && req.include_topic_authorized_operations {
        for t in &mut resp.topics {
            if t.error_code == 0 {
                let name = t.name.as_ref().map_or("", |n| n.0.as_str());
                t.topic_authorized_operations = ctx.authorized_operations(resource::TOPIC, name);
            }
        }
    }
    ctx.reply(&resp)
}

fn by_name(ctx: &Ctx, name: &str, auto_create: bool) -> MetadataResponseTopic {
    let broker = &ctx.broker;
    let unknown = |code: ResponseError| {
        MetadataResponseTopic::default().with_error_code(code.code()).with_name(Some(topic_name(name)))
    };
    // Kafka 4.1: without DESCRIBE, TOPIC_AUTHORIZATION_FAILED whether the topic exists or not.
    if !ctx.allowed(op::DESCRIBE, resource::TOPIC, name) {
        return unknown(ResponseError::TopicAuthorizationFailed);
    }
    if let Some(t) = broker.topic(name) {
        return describe(ctx, &t);
    }
    if validate_topic_name(name).is_err() {
        return unknown(ResponseError::InvalidTopicException);
    }
    if !auto_create {
        return unknown(ResponseError::UnknownTopicOrPartition);
    }
    // Auto-creation is a CREATE: on the cluster, or on the topic.
    if !ctx.cluster_allows(op::CREATE) && !ctx.allowed(op::CREATE, resource::TOPIC, name) {
        return unknown(ResponseError::TopicAuthorizationFailed);
    }
    match broker.auto_create(name) {
        Ok(t) => describe(ctx, &t),
        Err(e) => unknown(e.kafka_code()),
    }
}

fn by_id(ctx: &Ctx, id: Uuid) -> MetadataResponseTopic {
    match ctx.broker.topic_by_id(&id) {
        // Kafka 4.1 says TOPIC_AUTHORIZATION_FAILED for a known id (ids are not secret) and
        // leaves the name out.
        Some(t) if !ctx.allowed(op::DESCRIBE, resource::TOPIC, &t.name) => MetadataResponseTopic::default()
            .with_error_code(ResponseError::TopicAuthorizationFailed.code())
            .with_topic_id(id),
        Some(t) => describe(ctx, &t),
        None => {
            MetadataResponseTopic::default().with_error_code(ResponseError::UnknownTopicId.code()).with_topic_id(id)
        }
    }
}

/// A topic's partitions, each with its leader as its only replica (a single node, or shared
/// mode, where the object store keeps the data and any live broker can take a partition over).
/// A partition no live broker leads yet is LEADER_NOT_AVAILABLE, as Kafka reports one.
fn describe(ctx: &Ctx, t: &TopicMeta) -> MetadataResponseTopic {
    let v = ctx.version;
    let partitions = (0..t.partitions)
        .map(|p| {
            let l = ctx.broker.cluster.leader(&t.name, p);
            let replicas: Vec<BrokerId> = l.leader.map(BrokerId).into_iter().collect();
            let mut part = MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(l.leader.unwrap_or(-1)))
                .with_replica_nodes(replicas.clone())
                .with_isr_nodes(replicas);
            if l.leader.is_none() {
                part.error_code = ResponseError::LeaderNotAvailable.code();
            }
            if v >= 7 {
                part.leader_epoch = l.epoch;
            }
            part
        })
        .collect();
    let mut topic = MetadataResponseTopic::default().with_name(Some(topic_name(&t.name))).with_partitions(partitions);
    if v >= 1 {
        topic.is_internal = crate::broker::is_internal(&t.name);
    }
    if v >= 10 {
        topic.topic_id = t.id;
    }
    topic
}
