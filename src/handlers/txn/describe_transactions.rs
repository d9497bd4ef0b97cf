//! DescribeTransactions: the state of each asked-for transactional id.

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName};

use crate::auth::acl::{op, resource};
use crate::handlers::common::str_bytes;
use crate::handlers::error_codes::{ResponseError, ToKafkaCode};
use crate::handlers::{Ctx, Reply};

pub async fn handle(ctx: &Ctx, req: DescribeTransactionsRequest) -> Reply {
    let states = req
        .transactional_ids
        .into_iter()
        .map(|tid| {
            let out = TransactionState::default().with_transactional_id(tid.clone());
            // Kafka 4.1: DESCRIBE on the transactional id; partitions of topics the principal
            // may not DESCRIBE are left out.
            if !ctx.allowed(op::DESCRIBE, resource::TRANSACTIONAL_ID, tid.0.as_str()) {
                return out
                    .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code())
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1);
            }
            if !ctx.coordinates_txns() {
                return out
                    .with_error_code(ResponseError::NotCoordinator.code())
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1);
            }
            match ctx.broker.txns.describe(tid.0.as_str()) {
                Err(e) => {
                    out.with_error_code(e.kafka_code().code()).with_producer_id(ProducerId(-1)).with_producer_epoch(-1)
                }
                Ok(t) => {
                    let mut topics: Vec<TopicData> = Vec::new();
                    for (topic, p) in t.partitions {
                        if !ctx.allowed(op::DESCRIBE, resource::TOPIC, &topic) {
                            continue;
                        }
                        match topics.last_mut() {
                            Some(d) if d.topic.0.as_str() == topic => d.partitions.push(p),
                            _ => topics.push(
                                TopicData::default().with_topic(TopicName(str_bytes(&topic))).with_partitions(vec![p]),
                            ),
                        }
                    }
                    out.with_transaction_state(t.state.name().into())
                        .with_transaction_timeout_ms(t.timeout_ms)
                        .with_transaction_start_time_ms(t.start_ms)
                        .with_producer_id(ProducerId(t.producer_id))
                        .with_producer_epoch(t.epoch)
                        .with_topics(topics)
                }
            }
        })
        .collect();
    ctx.reply(&DescribeTransactionsResponse::default().with_transaction_states(states))
}
