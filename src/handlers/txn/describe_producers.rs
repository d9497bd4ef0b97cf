//! DescribeProducers: the producers with state in each asked-for partition (their epochs,
//! last sequences and the first offset of an open transaction).

use kafka_protocol::messages::describe_producers_response::{PartitionResponse, ProducerState, TopicResponse};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

use crate::auth::acl::{op, resource};
use crate::handlers::common::str_bytes;
use crate::handlers::error_codes::ResponseError;
use crate::handlers::{Ctx, Reply};

pub async fn handle(ctx: &Ctx, req: DescribeProducersRequest) -> Reply {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let known = ctx.broker.topics.get(t.name.0.as_str());
            // Kafka 4.1: READ on the topic.
            let denied = !ctx.allowed(op::READ, resource::TOPIC, t.name.0.as_str());
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&p| {
                    let out = PartitionResponse::default().with_partition_index(p);
                    if denied {
                        return out
                            .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                            .with_error_message(Some(str_bytes("Not authorized to read the topic.")));
                    }
                    match known.as_ref().and_then(|_| ctx.broker.partition(t.name.0.as_str(), p)) {
                        None => out
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(Some(str_bytes("the topic or partition does not exist"))),
                        Some(log) => out.with_active_producers(
                            log.producers()
                                .into_iter()
                                .map(|s| {
                                    ProducerState::default()
                                        .with_producer_id(ProducerId(s.producer_id))
                                        .with_producer_epoch(i32::from(s.epoch))
                                        .with_last_sequence(s.last_sequence)
                                        .with_last_timestamp(s.last_timestamp)
                                        .with_coordinator_epoch(s.coordinator_epoch)
                                        .with_current_txn_start_offset(s.txn_start_offset)
                                })
                                .collect(),
                        ),
                    }
                })
                .collect();
            TopicResponse::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    ctx.reply(&DescribeProducersResponse::default().with_topics(topics))
}
