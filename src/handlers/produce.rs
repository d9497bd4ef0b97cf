//! Produce: validate each partition's batches and append them as they are; acknowledge per
//! `acks` (0: no response at all; 1: after the write; -1: after the fsync that covers it, when
//! the log is durable, `log.fsync_acks_all`). When to fsync is the log's decision, not this
//! handler's. Per-partition failures go in the partition entry.

use std::sync::Arc;

use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use tracing::error;

use super::common::str_bytes;
use super::throttle::{delayed, Charge};
use super::{Ctx, Reply};
use crate::auth::acl::{op, resource};
use crate::auth::quota::Kind;
use crate::broker::Broker;
use crate::clock::now_ms;
use crate::handlers::error_codes::{txn_code, ResponseError, ToKafkaCode};
use crate::log::{AppendError, PartitionLog};

/// (topic index, partition index, log, end offset) of an append that must be durable before
/// the `acks=all` answer.
type Pending = (usize, usize, Arc<PartitionLog>, i64);

pub async fn handle(ctx: &Ctx, req: ProduceRequest) -> Reply {
    let (v, acks) = (ctx.version, req.acks);
    let broker = ctx.broker.clone();
    // Kafka 4.1: a transactional produce without WRITE on its id fails as a whole; otherwise
    // each topic without WRITE gets TOPIC_AUTHORIZATION_FAILED and the rest are appended.
    if let Some(id) = req.transactional_id.as_ref().filter(|t| !t.0.is_empty()) {
        if !ctx.allowed(op::WRITE, resource::TRANSACTIONAL_ID, id.0.as_str()) {
            return refuse_all(ctx, req, ResponseError::TransactionalIdAuthorizationFailed);
        }
    }
    // Without an authorizer nothing is refused: no per-topic lookups on the produce path.
    let denied: Vec<bool> = if ctx.broker.acls.enabled() {
        req.topic_data
            .iter()
            .map(|t| match v {
                13.. => broker
                    .topics
                    .get_by_id(&t.topic_id)
                    .is_some_and(|m| !ctx.allowed(op::WRITE, resource::TOPIC, &m.name)),
                _ => !ctx.allowed(op::WRITE, resource::TOPIC, t.name.0.as_str()),
            })
            .collect()
    } else {
        Vec::new()
    };
    // Validation (CRCs, records, decompression) and the writes run on the blocking pool, so no
    // runtime worker waits on them.
    let Ok((responses, pending)) =
        tokio::task::spawn_blocking(move || append_all(&broker, req, &denied, v, now_ms())).await
    else {
        return Reply::Close("produce could not be completed".into());
    };
    // Kafka 4.1: the request's bytes count against producer_byte_rate, its handling time
    // against request_percentage; the client waits for the larger.
    let charge = Charge::new(ctx);
    let wait = if charge.active() {
        charge.record(Kind::Produce, ctx.request_bytes as f64).max(charge.request_time())
    } else {
        0
    };
    charge.mute(wait);
    if acks == 0 {
        return Reply::NoResponse;
    }
    let mut resp = ProduceResponse::default().with_responses(responses).with_throttle_time_ms(wait);
    // Before v6 clients do not wait by themselves: the answer waits (KIP-219).
    let hold = if v < 6 { wait } else { 0 };
    if pending.is_empty() {
        return delayed(ctx.reply(&resp), hold);
    }
    let (correlation_id, version) = (ctx.correlation_id, ctx.version);
    let cluster = ctx.broker.cluster.clone();
    let reply = Reply::Deferred(Box::pin(async move {
        for (ti, pi, log, end) in pending {
            if let Err(e) = log.flush_to(end).await {
                // In shared mode the "fsync" is the commit, refused when the partition moved:
                // the client then looks for the new leader.
                let moved = !cluster.leads(&log.tp.topic, log.tp.partition);
                let code = if moved { ResponseError::NotLeaderOrFollower } else { ResponseError::KafkaStorageError };
                if !moved {
                    error!(partition = %log.tp, error = %e, "fsync failed; acks=all write not acknowledged");
                }
                let p = &mut resp.responses[ti].partition_responses[pi];
                p.error_code = code.code();
                p.base_offset = -1;
            }
        }
        super::encode(correlation_id, version, &resp)
    }));
    delayed(reply, hold)
}

/// The answer to a produce refused as a whole: `code` for every partition it names.
fn refuse_all(ctx: &Ctx, req: ProduceRequest, code: ResponseError) -> Reply {
    if req.acks == 0 {
        return Reply::NoResponse;
    }
    let responses = req
        .topic_data
        .into_iter()
        .map(|t| {
            let partitions = t
                .partition_data
                .iter()
                .map(|p| {
                    PartitionProduceResponse::default()
                        .with_index(p.index)
                        .with_base_offset(-1)
                        .with_error_code(code.code())
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(t.name)
                .with_topic_id(t.topic_id)
                .with_partition_responses(partitions)
        })
        .collect();
    ctx.reply(&ProduceResponse::default().with_responses(responses))
}

/// Appends every partition's records; returns the per-topic answers and the appends that
/// `acks=all` must see fsynced first.
fn append_all(
    broker: &Broker,
    req: ProduceRequest,
    denied: &[bool],
    v: i16,
    now: i64,
) -> (Vec<TopicProduceResponse>, Vec<Pending>) {
    let acks = req.acks;
    // A transactional producer's appends happen under its transactional id's lock: each
    // partition must be in its ongoing transaction, and no marker can end the transaction
    // between that check and the append.
    let tid = req.transactional_id.as_ref().map(|t| t.0.as_str()).filter(|t| !t.is_empty());
    let mut txn = tid.map(|t| broker.txns.lock_for_produce(t));
    let mut pending: Vec<Pending> = Vec::new();
    let mut responses = Vec::with_capacity(req.topic_data.len());
    for (ti, topic) in req.topic_data.into_iter().enumerate() {
        let meta =
            if v >= 13 { broker.topics.get_by_id(&topic.topic_id) } else { broker.topics.get(topic.name.0.as_str()) };
        let unknown = if v >= 13 { ResponseError::UnknownTopicId } else { ResponseError::UnknownTopicOrPartition };
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for (pi, part) in topic.partition_data.into_iter().enumerate() {
            let mut resp = PartitionProduceResponse::default().with_index(part.index).with_base_offset(-1);
            let log = meta.as_ref().and_then(|m| broker.partition(&m.name, part.index));
            let outcome = if !matches!(acks, -1..=1) {
                Err((ResponseError::InvalidRequiredAcks, None, Vec::new()))
            } else if denied.get(ti).copied().unwrap_or(false) {
                Err((ResponseError::TopicAuthorizationFailed, None, Vec::new()))
            } else if let Some(e) = meta
                .as_ref()
                .zip(log.as_ref())
                .and_then(|(m, _)| super::common::leadership_error(broker, &m.name, part.index, -1))
            {
                Err((e, None, Vec::new()))
            } else if let Some(log) = log {
                // Produce v13 names topics by id: the name comes from the topic's metadata.
                let name = meta.as_ref().map_or_else(|| topic.name.0.to_string(), |m| m.name.to_string());
                let tp = (name, part.index);
                match part.records.as_deref() {
                    None | Some([]) => Err((ResponseError::InvalidRecord, Some("no records".to_string()), Vec::new())),
                    Some(records) => match check_transaction(broker, tid, txn.as_mut(), records, &tp, v, now) {
                        Err(e) => Err((e.0, Some(e.1), Vec::new())),
                        Ok(()) => log.append(records, now).map(|info| {
                            crate::metrics::get().bytes_in(&tp.0, records.len() as u64);
                            (log, info)
                        }).map_err(|e| {
                        crate::warn_limited!("rejected produce", partition = %format!("{}-{}", topic.name.0.as_str(), part.index), error = %e, "rejected produce");
                        let bad_records = match &e {
                            AppendError::KeylessRecords { record_indexes } => record_indexes.clone(),
                            _ => Vec::new(),
                        };
                        (e.kafka_code(), Some(e.to_string()), bad_records)
                    }),
                    },
                }
            } else if let Some(name) = internal_name(broker, v, &topic.name, &topic.topic_id) {
                // Kafka 4.1's ReplicaManager refuses client appends to its internal topics.
                let message = format!("Cannot append to internal topic {name}");
                Err((ResponseError::InvalidTopicException, Some(message), Vec::new()))
            } else {
                Err((unknown, None, Vec::new()))
            };
            match outcome {
                Ok((log, info)) => {
                    resp.base_offset = info.base_offset;
                    if v >= 2 {
                        resp.log_append_time_ms = info.log_append_time;
                    }
                    if v >= 5 {
                        resp.log_start_offset = info.log_start_offset;
                    }
                    // The log schedules its own fsyncs; acks=all waits for the one covering it.
                    if acks == -1 && log.is_durable() {
                        pending.push((ti, pi, log, info.last_offset + 1));
                    }
                }
                Err((code, message, bad_records)) => {
                    resp.error_code = code.code();
                    if v >= 8 {
                        resp.record_errors = bad_records
                            .into_iter()
                            .map(|i| {
                                BatchIndexAndErrorMessage::default()
                                    .with_batch_index(i)
                                    .with_batch_index_error_message(message.as_deref().map(str_bytes))
                            })
                            .collect();
                        resp.error_message = message.map(|m| str_bytes(&m));
                    }
                }
            }
            partitions.push(resp);
        }
        let mut t = TopicProduceResponse::default().with_partition_responses(partitions);
        if v >= 13 {
            t.topic_id = topic.topic_id;
        } else {
            t.name = topic.name;
        }
        responses.push(t);
    }
    (responses, pending)
}

/// Transactional records may be appended only inside the producer's ongoing transaction, to
/// a partition added to it (KIP-890's check, made in-process, or, in shared mode when another
/// broker coordinates the transaction, asked of it). From Produce v12 (Transaction Version 2)
/// the produce itself adds the partition.
fn check_transaction(
    broker: &Broker,
    transactional_id: Option<&str>,
    txn: Option<&mut crate::txn::ProduceGuard>,
    records: &[u8],
    tp: &(String, i32),
    version: i16,
    now: i64,
) -> Result<(), (ResponseError, String)> {
    let Some(h) = crate::log::batch::BatchHeader::parse(records).filter(|h| h.is_transactional()) else {
        return Ok(());
    };
    let Some(txn) = txn else {
        return Err((
            ResponseError::InvalidTxnState,
            "transactional records need the produce request's transactional id".to_string(),
        ));
    };
    // Fencing is INVALID_PRODUCER_EPOCH at the partition, as Kafka's log answers it.
    let refused = |e: crate::txn::TxnError| (txn_code(&e, 0, i16::MAX), e.to_string());
    if let (Some(elsewhere), Some(tid)) = (super::common::txn_coordinator_elsewhere(broker), transactional_id) {
        // A transaction that already wrote here was checked with its first batch, and its
        // coordinator cannot end it without writing a marker here (which closes it), so the
        // next batches need no round trip: Kafka 3.6+'s leaders skip the check the same way.
        if broker.partition(&tp.0, tp.1).is_some_and(|log| log.in_transaction(h.producer_id, h.producer_epoch)) {
            return Ok(());
        }
        return elsewhere
            .and_then(|(remote, node)| {
                remote.check_partition(node, tid, h.producer_id, h.producer_epoch, tp, version >= 12)
            })
            .map_err(refused);
    }
    match txn.verify(h.producer_id, h.producer_epoch, tp) {
        Err(crate::txn::TxnError::PartitionNotAdded) if version >= 12 => {
            broker.txns.add_implicitly(txn, h.producer_id, h.producer_epoch, tp, now).map_err(refused)
        }
        other => other.map_err(refused),
    }
}

/// The topic's name if it is one of the broker's internal topics (by name, or by id in v13+).
fn internal_name(broker: &Broker, v: i16, name: &TopicName, id: &uuid::Uuid) -> Option<String> {
    let name = if v >= 13 { broker.topic_by_id(id)?.name.to_string() } else { name.0.to_string() };
    crate::broker::is_internal(&name).then_some(name)
}
