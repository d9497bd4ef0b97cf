//! AddPartitionsToTxn: partitions join the producer's transaction before it writes to them.
//! v0–v3 carry one transaction (clients); v4+ a batch of them, each optionally "verify only"
//! (Kafka's brokers use that to check a produce; gregor checks in-process and serves it for
//! tools).

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, TopicName, TransactionalId};

use crate::broker::Broker;
use crate::clock::now_ms;
use crate::handlers::common::{reply_off_runtime, str_bytes};
use crate::handlers::{Ctx, Reply};
use crate::txn::{AddResult, TxnError};

pub async fn handle(ctx: &Ctx, req: AddPartitionsToTxnRequest) -> Reply {
    let (broker, version) = (ctx.broker.clone(), ctx.version);
    reply_off_runtime(ctx, "AddPartitionsToTxn", move || {
        if version <= 3 {
            let results = add(
                &broker,
                &req.v3_and_below_transactional_id,
                req.v3_and_below_producer_id.0,
                req.v3_and_below_producer_epoch,
                &req.v3_and_below_topics,
                false,
            );
            return AddPartitionsToTxnResponse::default()
                .with_results_by_topic_v3_and_below(topic_results(results, version));
        }
        let transactions = req
            .transactions
            .iter()
            .map(|t| {
                let results =
                    add(&broker, &t.transactional_id, t.producer_id.0, t.producer_epoch, &t.topics, t.verify_only);
                AddPartitionsToTxnResult::default()
                    .with_transactional_id(t.transactional_id.clone())
                    .with_topic_results(topic_results(results, version))
            })
            .collect();
        AddPartitionsToTxnResponse::default().with_results_by_transaction(transactions)
    })
    .await
}

fn add(
    broker: &Broker,
    tid: &TransactionalId,
    producer_id: i64,
    epoch: i16,
    topics: &[AddPartitionsToTxnTopic],
    verify_only: bool,
) -> AddResult {
    let partitions: Vec<(String, i32)> =
        topics.iter().flat_map(|t| t.partitions.iter().map(move |p| (t.name.0.to_string(), *p))).collect();
    let result = if verify_only {
        broker.txns.verify_partitions(tid.0.as_str(), producer_id, epoch, partitions.clone())
    } else {
        broker.txns.add_partitions(
            tid.0.as_str(),
            producer_id,
            epoch,
            partitions.clone(),
            |(t, p)| broker.topics.get(t).is_some_and(|m| (0..m.partitions).contains(p)),
            now_ms(),
        )
    };
    result.unwrap_or_else(|e: TxnError| partitions.into_iter().map(|tp| (tp, Err(e.clone()))).collect())
}

/// Groups per-partition results by topic, in the order they came.
fn topic_results(results: AddResult, version: i16) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut out: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for ((topic, partition), r) in results {
        let code = match &r {
            // Verify-only: a partition outside the transaction is TRANSACTION_ABORTABLE.
            Err(TxnError::PartitionNotAdded) => kafka_protocol::error::ResponseError::TransactionAbortable.code(),
            _ => super::code(&r, version, 2),
        };
        let entry = AddPartitionsToTxnPartitionResult::default()
            .with_partition_index(partition)
            .with_partition_error_code(code);
        match out.last_mut() {
            Some(t) if t.name.0.as_str() == topic => t.results_by_partition.push(entry),
            _ => out.push(
                AddPartitionsToTxnTopicResult::default()
                    .with_name(TopicName(str_bytes(&topic)))
                    .with_results_by_partition(vec![entry]),
            ),
        }
    }
    out
}
