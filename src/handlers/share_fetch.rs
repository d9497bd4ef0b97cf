//! ShareFetch (KIP-932): a share consumer's fetch. It moves the member's share session on,
//! applies the acknowledgements it carries, and acquires records for the member from every
//! partition in the session (`group::share`). Authorized as Kafka 4.1: READ on the group
//! (the whole request), READ on each topic (per partition).
//!
//! Records go out as whole batches from the log, with the ranges the member acquired in
//! them (`AcquiredRecords`); the client delivers only those. When nothing can be acquired,
//! the fetch waits up to `max_wait_ms` for an append, a release or an acquisition lock
//! running out. Reads run on the blocking pool and take room in the broker's fetch memory
//! for `max_bytes` while they run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::share_fetch_response::{
    AcquiredRecords, LeaderIdAndEpoch, PartitionData, ShareFetchableTopicResponse,
};
use kafka_protocol::messages::{ShareFetchRequest, ShareFetchResponse};
use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

use crate::auth::acl::{op, resource};
use crate::broker::Broker;
use crate::group::share::{self, BatchSpan, SessionError};
use crate::handlers::common::str_bytes;
use crate::handlers::error_codes::{ResponseError, ToKafkaCode};
use crate::handlers::{encode, Ctx, Reply};
use crate::log::batch::BatchHeader;
use crate::log::partition::Isolation;
use crate::log::producer_state::AbortedTxn;
use crate::log::PartitionLog;

/// What ShareFetch and ShareAcknowledge share: the per-partition outcome of the request's
/// own partitions (errors and acknowledgement results), keyed by topic id and partition.
#[derive(Debug, Default)]
pub(crate) struct Outcomes {
    pub errors: BTreeMap<(Uuid, i32), (ResponseError, String)>,
    pub acks: BTreeMap<(Uuid, i32), Option<(ResponseError, String)>>,
}

impl ToKafkaCode for SessionError {
    fn kafka_code(&self) -> ResponseError {
        match self {
            Self::NotFound(_) => ResponseError::ShareSessionNotFound,
            Self::InvalidEpoch(_) => ResponseError::InvalidShareSessionEpoch,
            Self::LimitReached(_) => ResponseError::ShareSessionLimitReached,
            Self::InvalidRequest(_) => ResponseError::InvalidRequest,
        }
    }
}

impl ToKafkaCode for share::AckError {
    fn kafka_code(&self) -> ResponseError {
        match self {
            Self::InvalidRecordState(_) => ResponseError::InvalidRecordState,
            Self::InvalidRequest(_) => ResponseError::InvalidRequest,
        }
    }
}

/// Checks one partition of a share request: the topic exists (by id), the principal may READ
/// it, and the partition exists. Returns the topic's name.
pub(crate) fn check_partition(ctx: &Ctx, topic_id: &Uuid, partition: i32) -> Result<String, (ResponseError, String)> {
    let Some(t) = ctx.broker.topic_by_id(topic_id) else {
        return Err((ResponseError::UnknownTopicId, format!("No topic has the id {topic_id}.")));
    };
    if !ctx.allowed(op::READ, resource::TOPIC, &t.name) {
        return Err((ResponseError::TopicAuthorizationFailed, ResponseError::TopicAuthorizationFailed.to_string()));
    }
    if partition < 0 || partition >= t.partitions {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            format!("Topic {} has no partition {partition}.", t.name),
        ));
    }
    Ok(t.name.to_string())
}

/// Applies acknowledgement batches of one partition, recording the outcome.
pub(crate) fn acknowledge(
    broker: &Broker,
    group_id: &str,
    member_id: &str,
    tp: (Uuid, i32),
    batches: Vec<(i64, i64, Vec<i8>)>,
    out: &mut Outcomes,
) {
    tracing::debug!(
        group = group_id,
        member = member_id,
        partition = tp.1,
        batches = batches.len(),
        "acknowledgements"
    );
    let result = broker.share_groups.acknowledge(group_id, member_id, tp, &batches);
    out.acks.insert(tp, result.err().map(|e| (e.kafka_code(), e.to_string())));
}

/// Writes the share-partition state a request changed, off the runtime, before it is answered
/// (a failure is logged by the coordinator and the write retried with the next change).
pub(crate) async fn persist(broker: &Arc<Broker>) -> std::io::Result<()> {
    let b = broker.clone();
    tokio::task::spawn_blocking(move || b.share_groups.persist()).await.map_err(std::io::Error::other)?
}

/// The leader of a partition and its leader epoch, as share responses tell them ((-1, -1) when
/// unknown): this broker on a single node; in shared mode whichever broker leads it.
pub(crate) fn current_leader(broker: &Broker, tp: (Uuid, i32)) -> (i32, i32) {
    match broker.topic_by_id(&tp.0) {
        Some(t) => {
            let l = broker.cluster.leader(&t.name, tp.1);
            (l.leader.unwrap_or(-1), l.epoch)
        }
        None => (-1, -1),
    }
}

/// Checks that this broker leads each of `tps` (a share-partition is served by its
/// partition's leader) and, in shared mode, loads the share-partitions of those whose state
/// it has not yet taken from the cluster's store in the epoch it leads them in. The others get
/// NOT_LEADER_OR_FOLLOWER in `out`: the client looks the leader up again.
pub(crate) async fn prepare(broker: &Arc<Broker>, tps: &[(Uuid, i32)], out: &mut Outcomes) {
    let me = broker.cluster.node_id();
    for &tp in tps {
        if out.errors.contains_key(&tp) {
            continue;
        }
        let Some(t) = broker.topic_by_id(&tp.0) else { continue };
        let l = broker.cluster.leader(&t.name, tp.1);
        if l.leader != Some(me) {
            let message = match l.leader {
                Some(other) => format!("Broker {other} leads {}-{}, not broker {me}.", t.name, tp.1),
                None => format!("{}-{} has no leader at the moment; try again shortly.", t.name, tp.1),
            };
            out.errors.insert(tp, (ResponseError::NotLeaderOrFollower, message));
            continue;
        }
        let Some(shared) = broker.cluster.shared() else { continue };
        if !broker.share_groups.needs_load(tp, l.epoch) {
            continue;
        }
        match shared.share_states(tp.0, tp.1).await {
            Ok(rows) => broker.share_groups.load(tp, l.epoch, rows),
            Err(e) => {
                let message =
                    format!("Broker {me} cannot read {}-{}'s share-group state from the store yet: {e}", t.name, tp.1);
                out.errors.insert(tp, (ResponseError::NotLeaderOrFollower, message));
            }
        }
    }
}

fn error_response(code: ResponseError, message: String) -> ShareFetchResponse {
    ShareFetchResponse::default().with_error_code(code.code()).with_error_message(Some(str_bytes(&message)))
}

/// The most one ShareFetch reads from a partition's log (a larger first batch is still read
/// whole).
const READ_CHUNK: usize = 1 << 20;

/// One partition to fetch from: its key, and its log.
struct Source {
    tp: (Uuid, i32),
    log: Arc<PartitionLog>,
}

/// What one attempt acquired from a partition.
struct Got {
    tp: (Uuid, i32),
    records: Bytes,
    acquired: Vec<share::Acquired>,
}

/// The fetch part of a request: who fetches, from where, within which limits.
struct Fetching {
    broker: Arc<Broker>,
    group_id: String,
    member_id: String,
    sources: Vec<Source>,
    max_records: usize,
    max_bytes: usize,
    /// `share.isolation.level=read_committed`: read to the last stable offset and skip what
    /// aborted transactions wrote.
    read_committed: bool,
}

impl Fetching {
    /// One pass over the partitions, on the blocking pool: plans, reads and acquires.
    fn attempt(&self) -> Vec<Got> {
        let share = &self.broker.share_groups;
        let mut out = Vec::new();
        let (mut records_left, mut bytes_left) = (self.max_records, self.max_bytes);
        for s in &self.sources {
            if records_left == 0 || bytes_left == 0 {
                break;
            }
            let o = s.log.offsets();
            let now = Instant::now();
            // read_committed groups read up to the last stable offset, like such consumers.
            let (end, isolation) = if self.read_committed {
                (o.last_stable_offset, Isolation::ReadCommitted)
            } else {
                (o.high_watermark, Isolation::ReadUncommitted)
            };
            // `by_duration`: the first record written at most that long ago.
            let since = |d: Duration| {
                let at = crate::clock::now_ms().saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
                s.log.offset_for_timestamp(at).ok().flatten().map(|(offset, _)| offset)
            };
            let Some(plan) = share.plan_with(&self.group_id, s.tp, o.log_start_offset, end, &since, now) else {
                continue;
            };
            if !plan.available {
                continue;
            }
            // A share fetch takes at most max_records: reading all of max_bytes (up to 55 MiB of
            // a backlog) for them cost 2 ms of broker CPU per 500 records. A bounded read is
            // enough; the client fetches again for more.
            let Ok(read) = s.log.read_isolated(plan.read_from, bytes_left.min(READ_CHUNK), out.is_empty(), isolation)
            else {
                continue;
            };
            let spans = spans(&read.records, &read.aborted);
            let acquired = share.acquire(&self.group_id, &self.member_id, s.tp, &spans, records_left, Instant::now());
            if acquired.is_empty() {
                continue;
            }
            let records = slice(&read.records, &acquired);
            records_left = records_left
                .saturating_sub(acquired.iter().map(|a| (a.last_offset - a.first_offset + 1) as usize).sum());
            bytes_left = bytes_left.saturating_sub(records.len());
            out.push(Got { tp: s.tp, records, acquired });
        }
        // What this request changed (its acknowledgements, the deliveries it made) is written
        // before the answer; a failed write is logged and tried again with the next change.
        let _ = share.persist();
        out
    }
}

/// The batches of a read: their offsets and whether they are skipped: control batches, and the
/// batches of transactions among `aborted` (a read_committed read's aborted transactions).
fn spans(records: &[u8], aborted: &[AbortedTxn]) -> Vec<BatchSpan> {
    let mut out = Vec::new();
    let mut rest = records;
    while let Some(h) = BatchHeader::parse(rest) {
        let len = h.total_len();
        if len > rest.len() {
            break;
        }
        let in_aborted = h.is_transactional()
            && aborted.iter().any(|a| {
                a.producer_id == h.producer_id && a.first_offset <= h.base_offset && h.base_offset <= a.last_offset
            });
        let skip = h.is_control() || in_aborted;
        out.push(BatchSpan { base_offset: h.base_offset, last_offset: h.last_offset(), skip });
        rest = &rest[len..];
    }
    out
}

/// The whole batches of `records` from the first that holds an acquired offset to the last.
fn slice(records: &Bytes, acquired: &[share::Acquired]) -> Bytes {
    let (first, last) = (acquired[0].first_offset, acquired[acquired.len() - 1].last_offset);
    let (mut pos, mut start, mut end) = (0usize, None, 0usize);
    while let Some(h) = BatchHeader::parse(&records[pos..]) {
        let len = h.total_len();
        if pos + len > records.len() {
            break;
        }
        if h.last_offset() >= first && h.base_offset <= last {
            start.get_or_insert(pos);
            end = pos + len;
        }
        pos += len;
    }
    match start {
        Some(s) => records.slice(s..end),
        None => Bytes::new(),
    }
}

fn respond(broker: &Broker, lock_ms: i32, outcomes: &Outcomes, got: Vec<Got>) -> ShareFetchResponse {
    let mut parts: BTreeMap<(Uuid, i32), PartitionData> = BTreeMap::new();
    let blank = |tp: (Uuid, i32)| {
        let (id, epoch) = current_leader(broker, tp);
        PartitionData::default()
            .with_partition_index(tp.1)
            .with_current_leader(LeaderIdAndEpoch::default().with_leader_id(id).with_leader_epoch(epoch))
            .with_acquired_records(Vec::new())
    };
    for (tp, (code, message)) in &outcomes.errors {
        parts.insert(*tp, blank(*tp).with_error_code(code.code()).with_error_message(Some(str_bytes(message))));
    }
    for (tp, ack) in &outcomes.acks {
        let p = parts.entry(*tp).or_insert_with(|| blank(*tp));
        if let Some((code, message)) = ack {
            p.acknowledge_error_code = code.code();
            p.acknowledge_error_message = Some(str_bytes(message));
        }
    }
    for g in got {
        let p = parts.entry(g.tp).or_insert_with(|| blank(g.tp));
        p.records = Some(g.records);
        p.acquired_records = g
            .acquired
            .iter()
            .map(|a| {
                AcquiredRecords::default()
                    .with_first_offset(a.first_offset)
                    .with_last_offset(a.last_offset)
                    .with_delivery_count(a.delivery_count)
            })
            .collect();
    }
    let mut topics: BTreeMap<Uuid, Vec<PartitionData>> = BTreeMap::new();
    for ((t, _), mut p) in parts {
        if p.records.is_none() {
            p.records = Some(Bytes::new());
        }
        topics.entry(t).or_default().push(p);
    }
    ShareFetchResponse::default().with_error_message(None).with_acquisition_lock_timeout_ms(lock_ms).with_responses(
        topics
            .into_iter()
            .map(|(t, ps)| ShareFetchableTopicResponse::default().with_topic_id(t).with_partitions(ps))
            .collect(),
    )
}

pub async fn handle(ctx: &Ctx, req: ShareFetchRequest) -> Reply {
    let broker = ctx.broker.clone();
    let group_id = req.group_id.as_ref().map(|g| g.0.as_str().to_string()).unwrap_or_default();
    let member_id = req.member_id.as_ref().map(|m| m.as_str().to_string()).unwrap_or_default();
    if !super::group::may_read_group(ctx, &group_id) {
        let e = ResponseError::GroupAuthorizationFailed;
        return ctx.reply(&error_response(e, e.to_string()));
    }
    if group_id.trim().is_empty() || member_id.trim().is_empty() {
        return ctx.reply(&error_response(
            ResponseError::InvalidRequest,
            "A ShareFetch needs a group id and a member id.".into(),
        ));
    }
    let epoch = req.share_session_epoch;
    let has_acks = req.topics.iter().flat_map(|t| &t.partitions).any(|p| !p.acknowledgement_batches.is_empty());
    if epoch == 0 && has_acks {
        return ctx.reply(&error_response(
            ResponseError::InvalidRequest,
            "A ShareFetch that opens a share session (epoch 0) cannot carry acknowledgements.".into(),
        ));
    }
    let mut outcomes = Outcomes::default();
    let mut add = Vec::new();
    let mut acks = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            let tp = (t.topic_id, p.partition_index);
            match check_partition(ctx, &t.topic_id, p.partition_index) {
                Err(e) => {
                    outcomes.errors.insert(tp, e);
                }
                Ok(_) => {
                    add.push(tp);
                    if !p.acknowledgement_batches.is_empty() {
                        let batches = p
                            .acknowledgement_batches
                            .iter()
                            .map(|b| (b.first_offset, b.last_offset, b.acknowledge_types.clone()))
                            .collect();
                        acks.push((tp, batches));
                    }
                }
            }
        }
    }
    let forget: Vec<(Uuid, i32)> =
        req.forgotten_topics_data.iter().flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, *p))).collect();
    tracing::debug!(group = %group_id, member = %member_id, epoch, "share fetch");
    let session = match broker.share_groups.session(&group_id, &member_id, epoch, true, &add, &forget) {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(group = %group_id, member = %member_id, error = %e, "ShareFetch session refused");
            return ctx.reply(&error_response(e.kafka_code(), e.to_string()));
        }
    };
    // The partitions of the session (this request's and earlier ones') and of the acks.
    let mut involved = session.clone();
    involved.extend(acks.iter().map(|(tp, _)| *tp));
    involved.sort_unstable();
    involved.dedup();
    prepare(&broker, &involved, &mut outcomes).await;
    for (tp, batches) in acks {
        if !outcomes.errors.contains_key(&tp) {
            acknowledge(&broker, &group_id, &member_id, tp, batches, &mut outcomes);
        }
    }
    let lock_ms = i32::try_from(broker.share_groups.lock_duration(&group_id).as_millis()).unwrap_or(i32::MAX);
    if epoch == share::LEAVE_EPOCH {
        // The session is closed: what the member still holds goes back to the group.
        broker.share_groups.release_member(&group_id, &member_id);
        let _ = persist(&broker).await;
        return ctx.reply(&respond(&broker, lock_ms, &outcomes, Vec::new()));
    }
    let sources: Vec<Source> = session
        .into_iter()
        .filter(|tp| !outcomes.errors.contains_key(tp))
        .filter_map(|tp| {
            let t = broker.topic_by_id(&tp.0)?;
            Some(Source { tp, log: broker.partition(&t.name, tp.1)? })
        })
        .collect();
    let max_bytes = (req.max_bytes.max(0) as usize).min(broker.config.server.fetch_max_bytes);
    let max_records = if req.max_records > 0 { req.max_records as usize } else { 500 };
    let read_committed = broker.share_groups.read_committed(&group_id);
    let fetching = Arc::new(Fetching {
        broker: broker.clone(),
        group_id,
        member_id,
        sources,
        max_records,
        max_bytes,
        read_committed,
    });
    // Room in the fetch memory for this read, held until the answer is encoded.
    let want = u32::try_from(max_bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
    let memory = (ctx.fetch_room.clone(), broker.fetch_memory.clone());
    let attempt = move |f: Arc<Fetching>| {
        let memory = memory.clone();
        async move {
            let _mine = memory.0.acquire_many_owned(want).await.ok()?;
            let _room = memory.1.acquire_many_owned(want).await.ok()?;
            tokio::task::spawn_blocking(move || f.attempt()).await.ok()
        }
    };
    let Some(got) = attempt(fetching.clone()).await else {
        return Reply::Close("share fetch read failed".into());
    };
    let answered = !got.is_empty() || !outcomes.errors.is_empty() || outcomes.acks.values().any(Option::is_some);
    if answered || req.max_wait_ms <= 0 || fetching.sources.is_empty() {
        return ctx.reply(&respond(&broker, lock_ms, &outcomes, got));
    }
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms as u64);
    let (correlation_id, version) = (ctx.correlation_id, ctx.version);
    Reply::Deferred(Box::pin(async move {
        let appended = Arc::new(Notify::new());
        let released = broker.share_groups.released().clone();
        loop {
            let release = released.notified();
            tokio::pin!(release);
            release.as_mut().enable();
            for s in &fetching.sources {
                s.log.register_waiter(&appended);
            }
            let got = attempt(fetching.clone()).await?;
            if !got.is_empty() || Instant::now() >= deadline {
                return encode(correlation_id, version, &respond(&broker, lock_ms, &outcomes, got));
            }
            let tps: Vec<_> = fetching.sources.iter().map(|s| s.tp).collect();
            let wake =
                broker.share_groups.next_deadline(&fetching.group_id, &tps).map_or(deadline, |d| d.min(deadline));
            tokio::select! {
                _ = release => {}
                _ = appended.notified() => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::{self, KeyValue};

    fn batch_at(base: i64, n: usize) -> Vec<u8> {
        let kvs: Vec<KeyValue<'_>> = (0..n).map(|_| (None, Some(&b"v"[..]))).collect();
        let mut b = batch::build(&kvs, 0);
        batch::assign_offset(&mut b, base, 0);
        b
    }

    #[test]
    fn slices_keep_whole_batches_around_the_acquired_offsets() {
        let mut all = Vec::new();
        let (a, b, c) = (batch_at(0, 3), batch_at(3, 3), batch_at(6, 3));
        all.extend_from_slice(&a);
        all.extend_from_slice(&b);
        all.extend_from_slice(&c);
        let all = Bytes::from(all);
        assert_eq!(
            spans(&all, &[]),
            vec![
                BatchSpan { base_offset: 0, last_offset: 2, skip: false },
                BatchSpan { base_offset: 3, last_offset: 5, skip: false },
                BatchSpan { base_offset: 6, last_offset: 8, skip: false },
            ]
        );
        let acq = |f, l| share::Acquired { first_offset: f, last_offset: l, delivery_count: 1 };
        assert_eq!(slice(&all, &[acq(4, 4)]).as_ref(), b.as_slice());
        assert_eq!(slice(&all, &[acq(2, 3), acq(5, 6)]).len(), a.len() + b.len() + c.len());
        assert_eq!(slice(&all, &[acq(6, 8)]).as_ref(), c.as_slice());
    }
}
