//! DescribeTopicPartitions (KIP-966): Metadata's topic half with paging, as the Java admin
//! client's `describeTopics` uses it. As Kafka 4.1 answers it: named topics (or every topic
//! when none is named) at or after the cursor's topic, in name order and each once; at most
//! `min(response_partition_limit, 2000)` partitions in all, and a `next_cursor` naming the first
//! partition left out. A named topic that does not exist gets UNKNOWN_TOPIC_OR_PARTITION (or
//! INVALID_TOPIC_EXCEPTION for an illegal name); when listing all, nothing is reported for it.
//! A cursor whose topic is not among the named ones, or with a negative partition, makes the
//! whole request INVALID_REQUEST.

use std::collections::BTreeSet;

use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse};

use super::common::topic_name;
use super::{Ctx, Reply};
use crate::auth::acl::{op, resource};
use crate::broker::is_internal;
use crate::handlers::error_codes::ResponseError;
use crate::metadata::validate_topic_name;

/// Kafka's `max.request.partition.size.limit` default.
const MAX_PARTITIONS: i32 = 2000;

pub async fn handle(ctx: &Ctx, req: DescribeTopicPartitionsRequest) -> Reply {
    ctx.reply(&answer(ctx, req))
}

fn answer(ctx: &Ctx, req: DescribeTopicPartitionsRequest) -> DescribeTopicPartitionsResponse {
    let broker = &ctx.broker;
    let all = req.topics.is_empty();
    let (cursor_topic, cursor_partition) =
        req.cursor.as_ref().map_or((String::new(), 0), |c| (c.topic_name.0.to_string(), c.partition_index));
    let names: BTreeSet<String> = if all {
        // A listing of every topic leaves out those the principal may not DESCRIBE.
        broker
            .all_topics()
            .iter()
            .map(|t| t.name.to_string())
            .filter(|n| ctx.allowed(op::DESCRIBE, resource::TOPIC, n))
            .collect()
    } else {
        req.topics.iter().map(|t| t.name.0.to_string()).collect()
    };
    let names: Vec<String> = names.into_iter().filter(|n| *n >= cursor_topic).collect();
    let invalid = if req.cursor.is_some() && !all && !names.contains(&cursor_topic) {
        Some(format!("the topic list should contain the cursor's topic {cursor_topic}"))
    } else if cursor_partition < 0 {
        Some(format!("the cursor's partition must not be negative: {cursor_partition}"))
    } else {
        None
    };
    if let Some(_why) = invalid {
        // Kafka answers every named topic with the error and no message field exists here.
        let topics = req
            .topics
            .into_iter()
            .map(|t| {
                DescribeTopicPartitionsResponseTopic::default()
                    .with_name(Some(t.name))
                    .with_error_code(ResponseError::InvalidRequest.code())
            })
            .collect();
        return DescribeTopicPartitionsResponse::default().with_topics(topics);
    }
    let mut remaining = req.response_partition_limit.clamp(1, MAX_PARTITIONS);
    let mut resp = DescribeTopicPartitionsResponse::default();
    for name in names {
        if remaining == 0 {
            // Every partition of the topics before fitted: the next page starts at this topic.
            resp.next_cursor = Some(Cursor::default().with_topic_name(topic_name(&name)).with_partition_index(0));
            break;
        }
        if !ctx.allowed(op::DESCRIBE, resource::TOPIC, &name) {
            // Named, and not to be described: the same answer whether it exists or not.
            resp.topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_name(Some(topic_name(&name)))
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code()),
            );
            continue;
        }
        let Some(meta) = broker.topic(&name) else {
            if !all {
                let code = if validate_topic_name(&name).is_ok() {
                    ResponseError::UnknownTopicOrPartition
                } else {
                    ResponseError::InvalidTopicException
                };
                resp.topics.push(
                    DescribeTopicPartitionsResponseTopic::default()
                        .with_name(Some(topic_name(&name)))
                        .with_error_code(code.code())
                        .with_is_internal(is_internal(&name)),
                );
            }
            continue;
        };
        let start = if name == cursor_topic { cursor_partition } else { 0 };
        let end = meta.partitions.min(start.saturating_add(remaining));
        let partitions: Vec<_> = (start..end)
            .map(|p| {
                let l = broker.cluster.leader(&name, p);
                let replicas: Vec<BrokerId> = l.leader.map(BrokerId).into_iter().collect();
                DescribeTopicPartitionsResponsePartition::default()
                    .with_partition_index(p)
                    .with_error_code(if l.leader.is_some() { 0 } else { ResponseError::LeaderNotAvailable.code() })
                    .with_leader_id(BrokerId(l.leader.unwrap_or(-1)))
                    .with_leader_epoch(l.epoch)
                    .with_replica_nodes(replicas.clone())
                    .with_isr_nodes(replicas)
                    .with_eligible_leader_replicas(Some(Vec::new()))
                    .with_last_known_elr(Some(Vec::new()))
            })
            .collect();
        remaining -= partitions.len() as i32;
        resp.topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(topic_name(&name)))
                .with_topic_id(meta.id)
                .with_is_internal(is_internal(&name))
                .with_partitions(partitions)
                .with_topic_authorized_operations(ctx.authorized_operations(resource::TOPIC, &name)),
        );
        if end < meta.partitions {
            resp.next_cursor = Some(Cursor::default().with_topic_name(topic_name(&name)).with_partition_index(end));
            break;
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};

    use super::*;
    use crate::handlers::tests::test_ctx;

    fn request(topics: &[&str], limit: i32, cursor: Option<(&str, i32)>) -> DescribeTopicPartitionsRequest {
        DescribeTopicPartitionsRequest::default()
            .with_topics(topics.iter().map(|t| TopicRequest::default().with_name(topic_name(t))).collect())
            .with_response_partition_limit(limit)
            .with_cursor(cursor.map(|(t, p)| Cursor::default().with_topic_name(topic_name(t)).with_partition_index(p)))
    }

    fn pages(resp: &DescribeTopicPartitionsResponse) -> Vec<(String, Vec<i32>)> {
        resp.topics
            .iter()
            .map(|t| (t.name.as_ref().unwrap().0.to_string(), t.partitions.iter().map(|p| p.partition_index).collect()))
            .collect()
    }

    #[test]
    fn pages_through_topics_with_a_cursor() {
        let (ctx, _dir) = test_ctx();
        ctx.broker.create_topic(crate::broker::NewTopic::with_partitions("b", 3), false).unwrap();
        ctx.broker.create_topic(crate::broker::NewTopic::with_partitions("a", 2), false).unwrap();

        let first = answer(&ctx, request(&[], 4, None));
        assert_eq!(pages(&first), vec![("a".into(), vec![0, 1]), ("b".into(), vec![0, 1])]);
        let next = first.next_cursor.expect("a cursor to the rest");
        assert_eq!((next.topic_name.0.as_str(), next.partition_index), ("b", 2));

        let rest = answer(&ctx, request(&[], 4, Some(("b", 2))));
        assert_eq!(pages(&rest), vec![("b".into(), vec![2])]);
        assert!(rest.next_cursor.is_none());

        // A page that ends exactly at a topic's end points the cursor at the next topic.
        let exact = answer(&ctx, request(&["a", "b"], 2, None));
        assert_eq!(pages(&exact), vec![("a".into(), vec![0, 1])]);
        assert_eq!(exact.next_cursor.unwrap().topic_name.0.as_str(), "b");
    }

    #[test]
    fn named_topics_report_errors_and_bad_cursors_are_refused() {
        let (ctx, _dir) = test_ctx();
        ctx.broker.create_topic(crate::broker::NewTopic::with_partitions("t", 1), false).unwrap();
        let resp = answer(&ctx, request(&["t", "missing", "bad name!", "t"], 100, None));
        let codes: Vec<(String, i16)> =
            resp.topics.iter().map(|t| (t.name.as_ref().unwrap().0.to_string(), t.error_code)).collect();
        assert_eq!(
            codes,
            vec![
                ("bad name!".into(), ResponseError::InvalidTopicException.code()),
                ("missing".into(), ResponseError::UnknownTopicOrPartition.code()),
                ("t".into(), 0),
            ]
        );
        let refused = answer(&ctx, request(&["t"], 100, Some(("u", 0))));
        assert_eq!(refused.topics[0].error_code, ResponseError::InvalidRequest.code());
        let refused = answer(&ctx, request(&["t"], 100, Some(("t", -1))));
        assert_eq!(refused.topics[0].error_code, ResponseError::InvalidRequest.code());
    }
}
