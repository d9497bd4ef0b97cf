//! AddPartitionsToTxn: partitions join the producer's transaction before it writes to them.
//! v0–v3 carry one transaction (clients); v4+ a batch of them, each optionally "verify only"
//! (Kafka's brokers use that to check a produce; gregor checks in-process and serves it for
//! tools).

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, TopicName, TransactionalId};

use crate::auth::acl::{op, resource};
use crate::broker::Broker;
use crate::clock::now_ms;
use crate::handlers::common::{reply_off_runtime, str_bytes};
use crate::handlers::error_codes::ResponseError;
use crate::handlers::{Ctx, Reply};
use crate::txn::{AddResult, TxnError};

pub async fn handle(ctx: &Ctx, req: AddPartitionsToTxnRequest) -> Reply {
    let (broker, version) = (ctx.broker.clone(), ctx.version);
    // Kafka 4.1: v4+ batches come from brokers and need CLUSTER_ACTION; a client's (v3 and
    // below) needs WRITE on its transactional id, and WRITE on every topic — else nothing is
    // added: the refused topics say TOPIC_AUTHORIZATION_FAILED, the rest OPERATION_NOT_ATTEMPTED.
    if version >= 4 && !ctx.cluster_allows(op::CLUSTER_ACTION) {
        return ctx.reply(
            &AddPartitionsToTxnResponse::default().with_error_code(ResponseError::ClusterAuthorizationFailed.code()),
        );
    }
    if version >= 4 && !ctx.coordinates_txns() {
        return ctx.reply(&AddPartitionsToTxnResponse::default().with_error_code(ResponseError::NotCoordinator.code()));
    }
    if version <= 3 {
        let topics = &req.v3_and_below_topics;
        let refusal =
            if !ctx.allowed(op::WRITE, resource::TRANSACTIONAL_ID, req.v3_and_below_transactional_id.0.as_str()) {
                Some(topics.iter().map(|_| ResponseError::TransactionalIdAuthorizationFailed).collect::<Vec<_>>())
            } else if !ctx.coordinates_txns() {
                Some(topics.iter().map(|_| ResponseError::NotCoordinator).collect::<Vec<_>>())
            } else {
                let denied = ctx.denied_topics(op::WRITE, topics.iter().map(|t| t.name.0.as_str()));
                denied.contains(&true).then(|| {
                    topics
                        .iter()
                        .zip(denied)
                        .map(|(t, denied)| match denied {
                            true => ResponseError::TopicAuthorizationFailed,
                            false if broker.topics.get(t.name.0.as_str()).is_none() => {
                                ResponseError::UnknownTopicOrPartition
                            }
                            false => ResponseError::OperationNotAttempted,
                        })
                        .collect()
                })
            };
        if let Some(codes) = refusal {
            let results = topics
                .iter()
                .zip(codes)
                .flat_map(|(t, code)| t.partitions.iter().map(move |&p| ((t.name.0.to_string(), p), code)))
                .collect();
            return ctx
                .reply(&AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(refused(results)));
        }
    }
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

/// Topic results carrying one refusal code per partition.
fn refused(results: Vec<((String, i32), ResponseError)>) -> Vec<AddPartitionsToTxnTopicResult> {
    by_topic(results.into_iter().map(|(tp, code)| (tp, code.code())))
}

fn topic_results(results: AddResult, version: i16) -> Vec<AddPartitionsToTxnTopicResult> {
    by_topic(results.into_iter().map(|(tp, r)| {
        let code = match &r {
            // Verify-only: a partition outside the transaction is TRANSACTION_ABORTABLE.
            Err(TxnError::PartitionNotAdded) => ResponseError::TransactionAbortable.code(),
            _ => super::code(&r, version, 2),
        };
        (tp, code)
    }))
}

/// Groups per-partition codes by topic, in the order they came.
fn by_topic(codes: impl Iterator<Item = ((String, i32), i16)>) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut out: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for ((topic, partition), code) in codes {
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
