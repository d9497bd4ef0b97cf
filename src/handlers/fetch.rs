//! Fetch: whole batches straight from segment bytes, with an event-driven long poll.
//!
//! The first read happens at once. If it has fewer than `min_bytes` and `max_wait_ms` allows,
//! the reply is deferred: the waiting future registers with every fetched partition, which wakes
//! it on append, and re-reads until enough data arrived or the deadline passed. Only the
//! connection's writer awaits it, so other requests on the connection keep being read and
//! handled, and their replies wait their turn (responses leave in request order).
//!
//! Reads run on the blocking pool, never on a runtime worker. Before a read, the fetch takes
//! room for its `max_bytes` from the broker's fetch memory (`server.fetch_memory_max_bytes`);
//! the room the records did not use goes back at once, the rest travels with the record sets
//! and goes back when the socket has taken them. So responses nobody reads cannot pile up.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId, ResponseHeader, TopicName};
use kafka_protocol::protocol::{Encodable, HeaderVersion};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tracing::warn;
use uuid::Uuid;

use indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;

use super::common::leadership_error;
use super::throttle::{delayed, Charge};
use super::{encode, Ctx, Frame, Reply};
use crate::auth::acl::{op, resource};
use crate::auth::quota::Kind;
use crate::broker::fetch_sessions::{CachedPart, FetchSessions, PartKey, PartResult, PartUpdate, SessionError};
use crate::clock::now_ms;
use crate::handlers::error_codes::{ResponseError, ToKafkaCode};
use crate::log::partition::Isolation;
use crate::log::PartitionLog;

struct PartPlan {
    index: i32,
    fetch_offset: i64,
    /// The client's view of the leader epoch (v9+), -1 when it does not say.
    current_leader_epoch: i32,
    /// The epoch of the last records the client fetched (v12+), -1 when it does not say.
    last_fetched_epoch: i32,
    max_bytes: usize,
    log: Result<Arc<PartitionLog>, ResponseError>,
}

struct TopicPlan {
    name: TopicName,
    topic_id: Uuid,
    partitions: Vec<PartPlan>,
}

struct Plan {
    version: i16,
    max_bytes: usize,
    read_committed: bool,
    topics: Vec<TopicPlan>,
    step: SessionStep,
}

/// Kafka's FINAL_EPOCH: a full fetch that closes the session it names and opens none.
const FINAL_EPOCH: i32 = -1;

/// A fetch refused at the top level: the error, session id 0, no partitions.
fn session_error(ctx: &Ctx, error: ResponseError) -> Reply {
    let mut resp = FetchResponse::default().with_error_code(error.code());
    resp.session_id = 0;
    ctx.reply(&resp)
}

/// What a fetch does with sessions (KIP-227, Fetch v7+; see `broker::fetch_sessions`).
enum SessionStep {
    /// No session: a full answer with session id 0 (before v7, epoch -1, or no room).
    None,
    /// A full fetch with epoch 0: answered in full, then cached as a new session.
    Open,
    /// An incremental fetch of a cached session: only what changed is answered.
    Incremental(i32),
}

pub async fn handle(ctx: &Ctx, req: FetchRequest) -> Reply {
    let v = ctx.version;
    let broker = &ctx.broker;
    let fetch_max_bytes = broker.config.server.fetch_max_bytes;
    let uses_ids = v >= 13;
    let step = if v < 7 {
        SessionStep::None
    } else {
        match (req.session_id, req.session_epoch) {
            (id, FINAL_EPOCH) => {
                if id != 0 {
                    broker.fetch_sessions.close(id);
                }
                SessionStep::None
            }
            (id, 0) => {
                if id != 0 {
                    broker.fetch_sessions.close(id);
                }
                SessionStep::Open
            }
            (id, epoch) if epoch > 0 => SessionStep::Incremental(id),
            _ => return session_error(ctx, ResponseError::InvalidFetchSessionEpoch),
        }
    };
    // Kafka 4.1: a topic without READ fails TOPIC_AUTHORIZATION_FAILED whether or not it exists
    // (a topic id nobody knows stays UNKNOWN_TOPIC_ID: there is no name to authorize).
    let denied = |name: &TopicName, meta: Option<&Arc<crate::metadata::TopicMeta>>| match meta {
        Some(m) => !ctx.allowed(op::READ, resource::TOPIC, &m.name),
        None => !uses_ids && !ctx.allowed(op::READ, resource::TOPIC, name.0.as_str()),
    };
    let part_plan = |meta: Option<&Arc<crate::metadata::TopicMeta>>,
                     denied: bool,
                     partition: i32,
                     fetch_offset: i64,
                     max_bytes: i32,
                     epoch: i32,
                     last_fetched_epoch: i32| {
        let missing = if uses_ids { ResponseError::UnknownTopicId } else { ResponseError::UnknownTopicOrPartition };
        let log = if denied { Err(ResponseError::TopicAuthorizationFailed) } else { Ok(()) };
        let log = log
            .and_then(|()| meta.and_then(|m| Some((m, broker.partition(&m.name, partition)?))).ok_or(missing))
            .and_then(|(m, log)| match leadership_error(broker, &m.name, partition, epoch) {
                None => Ok(log),
                Some(e) => Err(e),
            });
        PartPlan {
            index: partition,
            fetch_offset,
            current_leader_epoch: epoch,
            last_fetched_epoch: if v >= 12 { last_fetched_epoch } else { -1 },
            max_bytes: (max_bytes.max(0) as usize).min(fetch_max_bytes),
            log,
        }
    };
    let lookup =
        |name: &TopicName, id: &Uuid| if uses_ids { broker.topic_by_id(id) } else { broker.topic(name.0.as_str()) };
    let topics: Vec<TopicPlan> = match step {
        SessionStep::None | SessionStep::Open => req
            .topics
            .into_iter()
            .map(|t| {
                let meta = lookup(&t.topic, &t.topic_id);
                let no = denied(&t.topic, meta.as_ref());
                let partitions = t
                    .partitions
                    .into_iter()
                    .map(|p| {
                        part_plan(
                            meta.as_ref(),
                            no,
                            p.partition,
                            p.fetch_offset,
                            p.partition_max_bytes,
                            p.current_leader_epoch,
                            p.last_fetched_epoch,
                        )
                    })
                    .collect();
                TopicPlan { name: t.topic, topic_id: t.topic_id, partitions }
            })
            .collect(),
        SessionStep::Incremental(id) => {
            let key = |name: &TopicName, topic_id: Uuid, partition: i32| PartKey {
                topic_id: if uses_ids { topic_id } else { Uuid::nil() },
                topic: if uses_ids { String::new() } else { name.0.to_string() },
                partition,
            };
            let updates = req
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(|p| {
                        let update = PartUpdate {
                            fetch_offset: p.fetch_offset,
                            max_bytes: p.partition_max_bytes,
                            current_leader_epoch: p.current_leader_epoch,
                            last_fetched_epoch: p.last_fetched_epoch,
                        };
                        (key(&t.topic, t.topic_id, p.partition), update)
                    })
                })
                .collect();
            let forgotten: Vec<PartKey> = req
                .forgotten_topics_data
                .iter()
                .flat_map(|t| t.partitions.iter().map(|&p| key(&t.topic, t.topic_id, p)))
                .collect();
            let listed = match broker.fetch_sessions.begin_incremental(
                id,
                req.session_epoch,
                uses_ids,
                updates,
                &forgotten,
                now_ms(),
            ) {
                Ok(listed) => listed,
                Err(SessionError::NotFound) => return session_error(ctx, ResponseError::FetchSessionIdNotFound),
                Err(SessionError::InvalidEpoch) => return session_error(ctx, ResponseError::InvalidFetchSessionEpoch),
                Err(SessionError::TopicIdMismatch) => {
                    return session_error(ctx, ResponseError::FetchSessionTopicIdError)
                }
            };
            // Consecutive partitions of one topic share a topic entry, as Kafka groups them.
            let mut topics: Vec<TopicPlan> = Vec::new();
            let mut metas: Option<(PartKey, Option<Arc<crate::metadata::TopicMeta>>, bool)> = None;
            for (k, cached) in listed {
                let same = topics.last().is_some_and(|t| t.topic_id == k.topic_id && t.name.0.as_str() == k.topic);
                if !same {
                    let name = TopicName(StrBytes::from_string(k.topic.clone()));
                    let meta = lookup(&name, &k.topic_id);
                    let no = denied(&name, meta.as_ref());
                    metas = Some((k.clone(), meta, no));
                    topics.push(TopicPlan { name, topic_id: k.topic_id, partitions: Vec::new() });
                }
                let meta = metas.as_ref().and_then(|(_, m, _)| m.as_ref());
                let no = metas.as_ref().is_some_and(|(_, _, no)| *no);
                let part = part_plan(
                    meta,
                    no,
                    k.partition,
                    cached.fetch_offset,
                    cached.max_bytes,
                    cached.current_leader_epoch,
                    cached.last_fetched_epoch,
                );
                topics.last_mut().expect("pushed above").partitions.push(part);
            }
            topics
        }
    };
    // Kafka (4.1 KafkaApis) bounds a fetch by the smaller of the request's max_bytes and the
    // broker's fetch.max.bytes; the per-partition limit is the client's, and so also bounded.
    let max_bytes = (req.max_bytes.max(0) as usize).min(fetch_max_bytes);
    // Kafka 4.1 also bounds it by what one window of the client's consumer_byte_rate allows.
    let charge = Charge::new(ctx);
    let max_bytes = match charge.max_in_window(Kind::Fetch) {
        Some(window) => max_bytes.min(window as usize),
        None => max_bytes,
    };
    let plan = Arc::new(Plan { version: v, max_bytes, read_committed: req.isolation_level == 1, topics, step });
    let memory = Memory { connection: ctx.fetch_room.clone(), broker: broker.fetch_memory.clone() };
    let min_bytes = req.min_bytes.max(0) as usize;
    let Some((resp, bytes, errors)) = read_off_runtime(&plan, &memory).await else {
        return Reply::Close("fetch read failed".into());
    };
    // The time spent so far is the request's handling time; a long poll's wait is not.
    let request_wait = charge.request_time();
    if bytes >= min_bytes.max(1) || errors || req.max_wait_ms <= 0 {
        let (resp, wait) = plan.answer(resp, bytes, &charge, request_wait, &broker.fetch_sessions);
        let reply = match encode_fetch(ctx.correlation_id, v, &resp) {
            Some(frame) => Reply::Ready(frame),
            None => Reply::Close("response could not be encoded".into()),
        };
        return delayed(reply, if v < 8 { wait } else { 0 });
    }
    drop(resp);
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms as u64);
    let (correlation_id, version) = (ctx.correlation_id, v);
    let broker = broker.clone();
    Reply::Deferred(Box::pin(async move {
        let notify = Arc::new(Notify::new());
        loop {
            for log in plan.logs() {
                log.register_waiter(&notify);
            }
            let (resp, bytes, errors) = read_off_runtime(&plan, &memory).await?;
            if bytes >= min_bytes.max(1) || errors || Instant::now() >= deadline {
                let (resp, wait) = plan.answer(resp, bytes, &charge, request_wait, &broker.fetch_sessions);
                return hold(encode_fetch(correlation_id, version, &resp), version, wait).await;
            }
            drop(resp);
            if tokio::time::timeout_at(deadline, notify.notified()).await.is_err() {
                let (resp, bytes, _) = read_off_runtime(&plan, &memory).await?;
                let (resp, wait) = plan.answer(resp, bytes, &charge, request_wait, &broker.fetch_sessions);
                return hold(encode_fetch(correlation_id, version, &resp), version, wait).await;
            }
        }
    }))
}

/// [`Plan::read`] on the blocking pool, once `memory` has room for the plan's `max_bytes`
/// (configuration keeps that within the whole budget). The record sets of the response
/// hold the room their bytes take until they are dropped; the rest is given back now. `None`
/// if the read could not finish (the blocking pool is shutting down, or the read panicked).
async fn read_off_runtime(plan: &Arc<Plan>, memory: &Memory) -> Option<(FetchResponse, usize, bool)> {
    let want = u32::try_from(plan.max_bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
    // The connection's share first: a connection at its limit waits without holding any of
    // the broker's room.
    let mut mine = memory.connection.clone().acquire_many_owned(want).await.ok()?;
    let mut room = memory.broker.clone().acquire_many_owned(want).await.ok()?;
    let p = plan.clone();
    let (mut resp, bytes, errors) = tokio::task::spawn_blocking(move || p.read()).await.ok()?;
    for records in resp.responses.iter_mut().flat_map(|t| &mut t.partitions).filter_map(|p| p.records.as_mut()) {
        if records.is_empty() {
            continue;
        }
        let kib = records.len().div_ceil(1024);
        // A first batch past max_bytes (KIP-74) may need more than was taken: it keeps what
        // is left, and the budget is exceeded by at most that one batch.
        let take = kib.min(room.num_permits());
        if let (Some(room), Some(mine)) = (room.split(take), mine.split(take)) {
            *records = Bytes::from_owner(Held { records: std::mem::take(records), _room: (room, mine) });
        }
    }
    Some((resp, bytes, errors))
}

/// The fetch memory a read takes room in: the broker's and the connection's.
struct Memory {
    connection: Arc<Semaphore>,
    broker: Arc<Semaphore>,
}

/// Record bytes of a response, with the room they take in the broker's and the connection's
/// fetch memory.
struct Held {
    records: Bytes,
    _room: (OwnedSemaphorePermit, OwnedSemaphorePermit),
}

impl AsRef<[u8]> for Held {
    fn as_ref(&self) -> &[u8] {
        &self.records
    }
}

/// A fetch answer for a client too old to wait by itself (before v8), `wait` ms late.
async fn hold(frame: Option<Frame>, version: i16, wait: i32) -> Option<Frame> {
    if version < 8 && wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait as u64)).await;
    }
    frame
}

impl Plan {
    /// The answer to send for a read of `bytes` record bytes, and how long the client must wait
    /// for its quotas. As Kafka 4.1: past its consumer_byte_rate or request_percentage, the
    /// client gets an empty answer (the read is not counted, its session is not moved on) and
    /// waits the larger of the two.
    fn answer(
        &self,
        resp: FetchResponse,
        bytes: usize,
        charge: &Charge,
        request_wait: i32,
        sessions: &FetchSessions,
    ) -> (FetchResponse, i32) {
        let wait = charge.record(Kind::Fetch, bytes as f64).max(request_wait);
        if wait <= 0 {
            return (self.finish(resp, sessions), 0);
        }
        charge.unrecord(Kind::Fetch, bytes as f64);
        charge.mute(wait);
        let mut empty = FetchResponse::default().with_throttle_time_ms(wait);
        empty.session_id = match self.step {
            SessionStep::Incremental(id) => id,
            SessionStep::None | SessionStep::Open => 0,
        };
        (empty, wait)
    }

    /// The session step of a fetch about to be answered: a full fetch with epoch 0 opens a
    /// session and names it; an incremental one keeps only the partitions the client must hear
    /// of. Run once, on the read that is sent.
    fn finish(&self, mut resp: FetchResponse, sessions: &FetchSessions) -> FetchResponse {
        // What leaves, per topic (the response is still aligned with the plan here).
        let metrics = crate::metrics::get();
        for (t, r) in self.topics.iter().zip(&resp.responses) {
            for (p, d) in t.partitions.iter().zip(&r.partitions) {
                if let (Ok(log), Some(records)) = (&p.log, &d.records) {
                    metrics.bytes_out(&log.tp.topic, records.len() as u64);
                }
            }
        }
        let uses_ids = self.version >= 13;
        let key = |t: &TopicPlan, p: &PartPlan| PartKey {
            topic_id: if uses_ids { t.topic_id } else { Uuid::nil() },
            topic: if uses_ids { String::new() } else { t.name.0.to_string() },
            partition: p.index,
        };
        let pairs = || {
            self.topics
                .iter()
                .zip(&resp.responses)
                .flat_map(|(t, r)| t.partitions.iter().zip(&r.partitions).map(move |(p, d)| (t, p, d)))
        };
        match self.step {
            SessionStep::None => {}
            SessionStep::Open => {
                let parts: IndexMap<PartKey, CachedPart> = pairs()
                    .map(|(t, p, d)| {
                        let cached = CachedPart {
                            fetch_offset: p.fetch_offset,
                            max_bytes: i32::try_from(p.max_bytes).unwrap_or(i32::MAX),
                            current_leader_epoch: p.current_leader_epoch,
                            last_fetched_epoch: p.last_fetched_epoch,
                            high_watermark: d.high_watermark,
                            log_start_offset: d.log_start_offset,
                        };
                        (key(t, p), cached)
                    })
                    .collect();
                resp.session_id = sessions.open(uses_ids, parts, now_ms());
            }
            SessionStep::Incremental(id) => {
                let results: Vec<(PartKey, PartResult)> = pairs()
                    .map(|(t, p, d)| {
                        let result = PartResult {
                            has_records: d.records.as_ref().is_some_and(|r| !r.is_empty()),
                            error: d.error_code != 0,
                            diverging: d.diverging_epoch.epoch >= 0,
                            high_watermark: d.high_watermark,
                            log_start_offset: d.log_start_offset,
                        };
                        (key(t, p), result)
                    })
                    .collect();
                let mut send = sessions.finish_incremental(id, &results).into_iter();
                for topic in &mut resp.responses {
                    topic.partitions.retain(|_| send.next().unwrap_or(true));
                }
                resp.responses.retain(|t| !t.partitions.is_empty());
                resp.session_id = id;
            }
        }
        resp
    }

    /// What the client's last fetched epoch says about its position, as Kafka 4.1's
    /// `Partition.readRecords` checks it: an epoch this log does not know, or a position before
    /// the log start, is OFFSET_OUT_OF_RANGE; a position past the end of that epoch in this log
    /// (or an epoch this log only has an earlier one of) diverges, and the client is told the
    /// epoch and where it ends so it can truncate (KIP-320). `None`: read as usual.
    fn check_epoch(&self, log: &PartitionLog, p: &PartPlan) -> Option<Result<(i32, i64), ResponseError>> {
        let (epoch, end_offset) = log.end_offset_for_epoch(p.last_fetched_epoch);
        if epoch < 0 || end_offset < 0 || p.fetch_offset < log.offsets().log_start_offset {
            return Some(Err(ResponseError::OffsetOutOfRange));
        }
        (epoch < p.last_fetched_epoch || end_offset < p.fetch_offset).then_some(Ok((epoch, end_offset)))
    }

    fn logs(&self) -> impl Iterator<Item = &Arc<PartitionLog>> {
        self.topics.iter().flat_map(|t| t.partitions.iter().filter_map(|p| p.log.as_ref().ok()))
    }

    /// Builds the response from the logs' current state: (response, record bytes, any error).
    fn read(&self) -> (FetchResponse, usize, bool) {
        let v = self.version;
        let mut total = 0usize;
        let mut any_error = false;
        let mut responses = Vec::with_capacity(self.topics.len());
        for t in &self.topics {
            let mut partitions = Vec::with_capacity(t.partitions.len());
            for p in &t.partitions {
                let mut data = PartitionData::default().with_partition_index(p.index).with_high_watermark(-1);
                data.aborted_transactions = (v >= 4 && self.read_committed).then(Vec::new);
                match &p.log {
                    Err(code) => {
                        any_error = true;
                        data.error_code = code.code();
                    }
                    Ok(log) => {
                        let checked = if p.last_fetched_epoch >= 0 { self.check_epoch(log, p) } else { None };
                        let read = match checked {
                            Some(Ok((epoch, end_offset))) => {
                                // No records: the epoch and where it ends, so the client truncates.
                                let o = log.offsets();
                                data.diverging_epoch =
                                    EpochEndOffset::default().with_epoch(epoch).with_end_offset(end_offset);
                                data.high_watermark = o.high_watermark;
                                data.last_stable_offset = o.last_stable_offset;
                                data.log_start_offset = o.log_start_offset;
                                data.records = Some(Bytes::new());
                                partitions.push(data);
                                continue;
                            }
                            Some(Err(e)) => Err(e),
                            None => {
                                let budget = self.max_bytes.saturating_sub(total).min(p.max_bytes);
                                let min_one = total == 0;
                                let isolation = if self.read_committed {
                                    Isolation::ReadCommitted
                                } else {
                                    Isolation::ReadUncommitted
                                };
                                log.read_isolated(p.fetch_offset, budget, min_one, isolation)
                                    .map_err(|e| e.kafka_code())
                            }
                        };
                        match read {
                            Ok(r) => {
                                total += r.records.len();
                                data.high_watermark = r.high_watermark;
                                data.last_stable_offset = r.last_stable_offset;
                                if v >= 5 {
                                    data.log_start_offset = r.log_start_offset;
                                }
                                if let Some(aborted) = data.aborted_transactions.as_mut() {
                                    aborted.extend(r.aborted.iter().map(|a| {
                                        AbortedTransaction::default()
                                            .with_producer_id(ProducerId(a.producer_id))
                                            .with_first_offset(a.first_offset)
                                    }));
                                }
                                data.records = Some(r.records);
                            }
                            Err(e) => {
                                any_error = true;
                                data.error_code = e.code();
                                let o = log.offsets();
                                data.high_watermark = o.high_watermark;
                                data.last_stable_offset = o.last_stable_offset;
                                if v >= 5 {
                                    data.log_start_offset = o.log_start_offset;
                                }
                            }
                        }
                    }
                }
                partitions.push(data);
            }
            let mut topic = FetchableTopicResponse::default().with_partitions(partitions);
            if v >= 13 {
                topic.topic_id = t.topic_id;
            } else {
                topic.topic = t.name.clone();
            }
            responses.push(topic);
        }
        (FetchResponse::default().with_responses(responses), total, any_error)
    }
}

/// Record sets at least this large leave as their own buffer instead of being copied into the
/// response buffer; smaller ones are cheaper to copy than to write separately.
const SEPARATE_RECORDS_MIN: usize = 16 * 1024;

/// Encodes a fetch response, keeping large record sets as separate parts of the frame.
fn encode_fetch(correlation_id: i32, version: i16, resp: &FetchResponse) -> Option<Frame> {
    let large = resp
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .any(|p| p.records.as_ref().is_some_and(|r| r.len() >= SEPARATE_RECORDS_MIN));
    if !large {
        return encode(correlation_id, version, resp);
    }
    match encode_in_parts(correlation_id, version, resp) {
        Ok(parts) => Some(Frame::Parts(parts)),
        Err(e) => {
            warn!(error = %e, version, "fetch response not encodable in parts; encoding it whole");
            encode(correlation_id, version, resp)
        }
    }
}

/// The codec writes every field of a fetch response, records last in each partition, each
/// partition last in its topic, and the topics last (before tagged fields) in the response.
/// So the frame is built from the codec's own encoding of each level with its trailing
/// collection left empty, cut where that collection's length goes: the bytes before it, the
/// real length, the items (or the record set as its own buffer), the bytes after it. The
/// total is checked against the codec's size for the whole response.
fn encode_in_parts(correlation_id: i32, v: i16, resp: &FetchResponse) -> anyhow::Result<Vec<Bytes>> {
    let flexible = v >= 12;
    let header_version = FetchResponse::header_version(v);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let size = header.compute_size(header_version)? + resp.compute_size(v)?;
    ensure!(resp.node_endpoints.is_empty() && resp.unknown_tagged_fields.is_empty(), "response has tagged fields");

    let mut parts = Vec::new();
    let mut spine = BytesMut::with_capacity(1024);
    spine.put_i32(i32::try_from(size).context("response too large")?);
    header.encode(&mut spine, header_version)?;
    let shell = FetchResponse::default()
        .with_throttle_time_ms(resp.throttle_time_ms)
        .with_error_code(resp.error_code)
        .with_session_id(resp.session_id);
    let (before, after) = split_at_empty_tail(&shell, v, flexible)?;
    spine.put_slice(&before);
    put_length(&mut spine, resp.responses.len(), flexible);
    for t in &resp.responses {
        ensure!(t.unknown_tagged_fields.is_empty(), "topic has tagged fields");
        let shell = FetchableTopicResponse::default().with_topic(t.topic.clone()).with_topic_id(t.topic_id);
        let (t_before, t_after) = split_at_empty_tail(&shell, v, flexible)?;
        spine.put_slice(&t_before);
        put_length(&mut spine, t.partitions.len(), flexible);
        for p in &t.partitions {
            match &p.records {
                Some(records) if records.len() >= SEPARATE_RECORDS_MIN => {
                    ensure!(!has_tagged_fields(p), "partition has tagged fields");
                    let mut shell = p.clone();
                    shell.records = Some(Bytes::new());
                    let (p_before, p_after) = split_at_empty_tail(&shell, v, flexible)?;
                    spine.put_slice(&p_before);
                    put_length(&mut spine, records.len(), flexible);
                    parts.push(spine.split().freeze());
                    parts.push(records.clone());
                    spine.put_slice(&p_after);
                }
                _ => p.encode(&mut spine, v)?,
            }
        }
        spine.put_slice(&t_after);
    }
    spine.put_slice(&after);
    parts.push(spine.freeze());
    let total: usize = parts.iter().map(Bytes::len).sum();
    ensure!(total == size + 4, "assembled {total} bytes, the codec sizes the frame at {}", size + 4);
    Ok(parts)
}

fn has_tagged_fields(p: &PartitionData) -> bool {
    let d = PartitionData::default();
    p.diverging_epoch != d.diverging_epoch
        || p.current_leader != d.current_leader
        || p.snapshot_id != d.snapshot_id
        || !p.unknown_tagged_fields.is_empty()
}

/// Encodes `shell`, whose last field (array or bytes) is empty and which has no tagged fields,
/// and returns what comes before and after that field's length.
fn split_at_empty_tail<T: Encodable>(shell: &T, v: i16, flexible: bool) -> anyhow::Result<(Bytes, Bytes)> {
    let mut buf = BytesMut::new();
    shell.encode(&mut buf, v)?;
    // Flexible versions: compact length 0 (varint 1), then an empty tagged-field section.
    // Older ones: an i32 length 0 and nothing after it.
    let ending: &[u8] = if flexible { &[1, 0] } else { &[0, 0, 0, 0] };
    let cut = buf.len().checked_sub(ending.len()).context("encoded shell too short")?;
    ensure!(&buf[cut..] == ending, "encoded shell does not end with an empty collection");
    let after = if flexible { Bytes::from_static(&[0]) } else { Bytes::new() };
    buf.truncate(cut);
    Ok((buf.freeze(), after))
}

/// The length of an array or byte string: unsigned varint of n + 1 in flexible versions,
/// i32 otherwise.
fn put_length(buf: &mut BytesMut, n: usize, flexible: bool) {
    if flexible {
        let mut x = n as u64 + 1;
        while x >= 0x80 {
            buf.put_u8((x as u8) | 0x80);
            x >>= 7;
        }
        buf.put_u8(x as u8);
    } else {
        buf.put_i32(n as i32);
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::fetch_response::AbortedTransaction;
    use kafka_protocol::protocol::StrBytes;

    use super::*;
    use crate::handlers::codec::encode_response;

    fn records(len: usize, seed: u8) -> Bytes {
        (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect::<Vec<u8>>().into()
    }

    fn sample(v: i16) -> FetchResponse {
        let part = |index: i32, recs: Option<Bytes>| {
            let mut p = PartitionData::default()
                .with_partition_index(index)
                .with_high_watermark(1000 + i64::from(index))
                .with_last_stable_offset(900)
                .with_log_start_offset(5)
                .with_records(recs);
            p.aborted_transactions = Some(vec![AbortedTransaction::default()
                .with_producer_id(kafka_protocol::messages::ProducerId(7))
                .with_first_offset(3)]);
            p
        };
        let topic = |name: &str, partitions| {
            FetchableTopicResponse::default()
                .with_topic(TopicName(StrBytes::from_string(name.to_string())))
                .with_topic_id(Uuid::from_u128(0x1234_5678_9abc))
                .with_partitions(partitions)
        };
        let mut failed = PartitionData::default().with_partition_index(9).with_high_watermark(-1);
        failed.error_code = ResponseError::OffsetOutOfRange.code();
        let mut resp = FetchResponse::default().with_throttle_time_ms(0).with_responses(vec![
            topic(
                "alpha",
                vec![
                    part(0, Some(records(SEPARATE_RECORDS_MIN, 1))),
                    part(1, Some(records(100, 2))),
                    failed,
                    part(3, Some(Bytes::new())),
                ],
            ),
            topic("beta", vec![part(0, Some(records(300_000, 3))), part(1, None)]),
            topic("gamma", vec![]),
        ]);
        if v >= 7 {
            resp.session_id = 0;
        }
        resp
    }

    #[test]
    fn parts_match_the_codec_byte_for_byte_in_every_version() {
        for v in 4..=18 {
            let resp = sample(v);
            let whole = encode_response(77, v, &resp).unwrap();
            let parts = encode_in_parts(77, v, &resp).unwrap();
            assert!(parts.len() >= 5, "v{v}: the two large record sets should be separate parts");
            assert_eq!(parts.concat(), whole.to_vec(), "v{v}");
            let frame = encode_fetch(77, v, &resp).unwrap();
            assert!(matches!(frame, Frame::Parts(_)), "v{v}");
            assert_eq!(frame.to_bytes(), whole, "v{v}");
        }
    }

    #[test]
    fn small_responses_and_tagged_fields_are_encoded_whole() {
        let small = FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
            .with_partitions(vec![PartitionData::default().with_records(Some(records(10, 0)))])]);
        assert!(matches!(encode_fetch(1, 12, &small), Some(Frame::One(_))));

        // A partition carrying a tagged field cannot be cut at a fixed ending: whole, still exact.
        let mut resp = sample(12);
        resp.responses[1].partitions[0].current_leader.leader_id = kafka_protocol::messages::BrokerId(3);
        assert!(encode_in_parts(1, 12, &resp).is_err());
        let frame = encode_fetch(1, 12, &resp).unwrap();
        assert_eq!(frame.to_bytes(), encode_response(1, 12, &resp).unwrap());
    }
}
