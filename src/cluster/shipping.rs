//! Shared mode's data path: a partition's records are durable once they are in an object and
//! the store's batch index says so, and the next leader of a partition rebuilds its log from
//! there (ARCHITECTURE.md, "Beyond one machine").
//!
//! - Commit ([`Shipper`], the log's [`Committer`]): the leader appends to its local log as on
//!   one node (offsets, validation, idempotence); the log then hands the new batches to the
//!   shipper instead of fsyncing them. The shipper gathers what every partition handed it
//!   while its previous commit ran into ONE object, writes it, and commits its batch rows in
//!   one transaction fenced by this broker's lease and the leader epoch of each partition. Only
//!   then does the log move the high watermark and answer `acks=all`. A refused commit leaves
//!   the batches invisible (the producer gets an error and retries at the new leader).
//! - Rebuild ([`Shipper::rebuild_led`]): a broker serves a partition it leads only once its
//!   local log equals the committed log: it cuts its log back to what it knows is committed
//!   (what it committed or rebuilt itself in this process; nothing after a restart) and
//!   appends the committed batches from there, read from the objects. Until then the
//!   partition answers NOT_LEADER_OR_FOLLOWER. It starts at the store's log start.
//! - Log start ([`Shipper::push_log_starts`]): where retention or DeleteRecords moved a led
//!   partition's log start, the store follows (fenced like a commit); the batch rows before
//!   it, and the objects none of whose batches is left, go in the sweep that follows
//!   ([`Shared::sweep`]).
//!
//! - Merge ([`Shipper::merge`]): now and then, and after its cleaner compacted segments, the
//!   leader writes a range of a partition's committed log again from its local copy, as
//!   objects of that partition alone, and replaces the range's batch rows (fenced like a
//!   commit). Small objects shared by partitions are let go of, and the store's copy of a
//!   compacted log shrinks as the local one did; the next leader rebuilds it with its gaps.
//!
//! Internal topics go the same way. When a broker becomes the leader of `__consumer_offsets`
//! (the group coordinator), the groups are reloaded from the rebuilt log before it serves
//! ([`Shipper::on_rebuilt`]), and likewise the transactional ids when it becomes the leader
//! of `__transaction_state`.

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::objects::ObjectBuilder;
use super::reading::StoredReads;
use super::shared::{Shared, SharedError};
use super::store::{BatchRow, LogStart, Rewrite, Store, StoreError};
use crate::log::batch::{next_offset_after, peek_len};
use crate::log::commit::{CommitFuture, Committer};
use crate::log::producer_state::ProducerStateTable;
use crate::log::{PartitionLog, TopicPartition};

/// What one commit did, for whoever counts commits (the metrics).
#[derive(Debug, Clone, Copy)]
pub struct CommitReport {
    /// False: refused (fenced) or failed; nothing of it is visible.
    pub committed: bool,
    /// From the object's building to the store's answer.
    pub seconds: f64,
    /// The object's size and its batches (0 unless committed).
    pub bytes: u64,
    pub batches: u64,
}

type CommitObserver = Box<dyn Fn(&CommitReport) + Send + Sync>;
static COMMIT_OBSERVER: std::sync::OnceLock<CommitObserver> = std::sync::OnceLock::new();

/// Sets the commit observer, once per process (later calls change nothing).
pub fn set_commit_observer(observer: CommitObserver) {
    let _ = COMMIT_OBSERVER.set(observer);
}

/// One object holds at most about this much: what came in while the last commit ran.
const MAX_OBJECT_BYTES: usize = 16 << 20;
/// Batch rows read from the store per query while rebuilding.
const REBUILD_ROWS: i64 = 1000;

struct Job {
    tp: TopicPartition,
    batches: Bytes,
    done: oneshot::Sender<io::Result<()>>,
}

/// Commits partitions' batches to the object store and the batch index; rebuilds led
/// partitions' logs from them.
pub struct Shipper {
    shared: Arc<Shared>,
    jobs: mpsc::UnboundedSender<Job>,
    /// Per partition: up to where this process knows its local log equals the committed log.
    known: Mutex<HashMap<TopicPartition, i64>>,
    /// Partitions whose rebuild is under way.
    rebuilding: Mutex<HashSet<TopicPartition>>,
    /// Per partition: the log start the store was last seen to hold.
    starts: Mutex<HashMap<TopicPartition, i64>>,
    /// Per partition this broker rebuilt: how far its log was written again ([`Self::merge`]).
    merged: Mutex<HashMap<TopicPartition, Merged>>,
    /// A merge round is under way.
    merging: std::sync::atomic::AtomicBool,
    /// Reads of what the local segments no longer hold (`local.retention.bytes`).
    reads: Arc<StoredReads>,
    /// Told of each rebuilt partition before it is served (a coordinator reloads its state
    /// from the log); runs on the blocking pool.
    on_rebuilt: std::sync::OnceLock<RebuiltHook>,
}

/// How far a partition's log was written again, as its leader knows it.
#[derive(Debug, Clone, Copy)]
struct Merged {
    /// The store's `merged_to`: what is committed from here on lies in the objects the
    /// commits wrote.
    to: i64,
    /// When the last merge round of the partition ended (or its rebuild).
    at: std::time::Instant,
    /// The local cleaner rewrote the log from here on: written again at the next round.
    cleaned_from: Option<i64>,
    /// Cleanings told so far (one that comes during a round is written at the next).
    cleanings: u64,
    /// After a failed round: not before then.
    retry_at: Option<std::time::Instant>,
}

/// What one merge round wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MergeReport {
    pub partitions: usize,
    pub objects: usize,
    pub batches: usize,
    pub bytes: u64,
}

/// A merged object holds at most about this much of one partition, and at most this many
/// batches (the rows its rewrite replaces and inserts in one transaction).
const MERGED_OBJECT_BYTES: usize = 64 << 20;
const MERGED_OBJECT_BATCHES: usize = 5000;

/// See [`Shipper::on_rebuilt`].
pub type RebuiltHook = Arc<dyn Fn(&TopicPartition) + Send + Sync>;

impl std::fmt::Debug for Shipper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shipper").field("node_id", &self.shared.node_id()).finish()
    }
}

impl Shipper {
    /// Starts the commit task (on the current runtime).
    pub fn start(shared: Arc<Shared>) -> Arc<Self> {
        let (jobs, queue) = mpsc::unbounded_channel();
        let reads = StoredReads::new(shared.clone(), tokio::runtime::Handle::current());
        let shipper = Arc::new(Self {
            shared,
            reads,
            jobs,
            known: Mutex::default(),
            rebuilding: Mutex::default(),
            starts: Mutex::default(),
            merged: Mutex::default(),
            merging: std::sync::atomic::AtomicBool::new(false),
            on_rebuilt: std::sync::OnceLock::new(),
        });
        let linger = shipper.shared.settings().commit_linger;
        tokio::spawn(run(Arc::downgrade(&shipper), queue, linger));
        shipper
    }

    /// Sets what runs after a partition's log was rebuilt and before it is served (once).
    pub fn on_rebuilt(&self, hook: RebuiltHook) {
        let _ = self.on_rebuilt.set(hook);
    }

    /// Starts a rebuild of each partition this broker leads and has not rebuilt in its current
    /// epoch; `log` finds a partition's local log (None: not open here yet). A lease this
    /// broker is not sure of for a while (a pause, PostgreSQL away) is no reason: while the
    /// epoch holds, nobody else wrote to the partition, and the log is the committed one.
    pub fn rebuild_led(self: &Arc<Self>, log: impl Fn(&TopicPartition) -> Option<Arc<PartitionLog>>) {
        let view = self.shared.view();
        let me = self.shared.node_id();
        for t in &view.topics {
            for p in 0..t.partitions {
                let l = view.leader(&t.name, p);
                if l.leader != Some(me) || self.shared.rebuilt_in(&t.name, p) == Some(l.epoch) {
                    continue;
                }
                let tp = TopicPartition::new(&t.name, p);
                let Some(log) = log(&tp) else { continue };
                if !self.rebuilding.lock().insert(tp.clone()) {
                    continue;
                }
                let (shipper, topic_id) = (self.clone(), t.id);
                tokio::spawn(async move {
                    let began = std::time::Instant::now();
                    match shipper.rebuild(&log, topic_id, l.epoch).await {
                        Ok(end) => {
                            let (local_start, took_ms) = (log.local_start_offset(), began.elapsed().as_millis());
                            tracing::info!(partition = %log.tp, epoch = l.epoch, log_end_offset = end, local_start, took_ms, "leading the partition: its log is the committed one")
                        }
                        Err(e) => {
                            tracing::warn!(partition = %log.tp, epoch = l.epoch, error = %e, "cannot rebuild the partition's log from the store; trying again")
                        }
                    }
                    shipper.rebuilding.lock().remove(&log.tp);
                });
            }
        }
    }

    /// Makes the local log the committed log of the partition and marks it served in `epoch`.
    async fn rebuild(&self, log: &Arc<PartitionLog>, topic_id: Uuid, epoch: i32) -> Result<i64, SharedError> {
        let tp = log.tp.clone();
        // Not served while its log is cut and refilled.
        if let Some(p) = self.shared.rebuilt.write().get_mut(&tp.topic) {
            p.remove(&tp.partition);
        }
        // What a commit of the previous term may still be doing finishes first; appends in the
        // meantime are refused (the partition is not served).
        let _flushes = log.hold_flushes().await;
        let data = &self.shared.data;
        let (start, end) = data
            .call("a look-up of a log's bounds", async |s| s.log_bounds(topic_id, tp.partition).await)
            .await?
            .unwrap_or((0, 0));
        let mut known = self.known.lock().get(&log.tp).copied().unwrap_or(0).min(end);
        if known < log.offsets().log_end_offset && log.has_stored_head() {
            // Cutting the end off rebuilds the producers' state from the local segments, and
            // the aborted transactions of those let go of would be lost with it: the copy
            // starts over instead.
            known = 0;
        }
        let cut = log.clone();
        let mut next = tokio::task::spawn_blocking(move || cut.truncate_to(known, crate::clock::now_ms()))
            .await
            .map_err(io::Error::other)?
            .map_err(io::Error::other)?;
        if let Some(tail) = self.tail(log, topic_id, start, next).await? {
            // Only the newest part is copied; the rest is read from the store when asked.
            let (restart, producers) = (log.clone(), tail.producers);
            tokio::task::spawn_blocking(move || {
                restart.restart_with_stored_head(start, tail.from, producers, crate::clock::now_ms())
            })
            .await
            .map_err(io::Error::other)?
            .map_err(io::Error::other)?;
            next = tail.from;
        } else if next < start {
            // Retention or DeleteRecords took the committed log past this copy's end: it starts
            // over where the first batch kept (the one holding the log start) begins.
            let first = data
                .call("a read of the batch index", async |s| s.batches(topic_id, tp.partition, start, 1).await)
                .await?;
            let over = first.first().map_or(end, |(row, _)| row.base_offset).max(next);
            let restart = log.clone();
            tokio::task::spawn_blocking(move || restart.restart_at(over, crate::clock::now_ms()))
                .await
                .map_err(io::Error::other)?
                .map_err(io::Error::other)?;
            next = over;
        }
        while next < end {
            let read = async |s: &mut Store| s.batches(topic_id, tp.partition, next, REBUILD_ROWS).await;
            let rows = data.call("a read of the batch index", read).await?;
            if rows.is_empty() {
                break;
            }
            // Neighbouring batches of one object come in one ranged read.
            let mut runs: Vec<(String, u64, u64)> = Vec::new();
            for (row, key) in &rows {
                let (start, len) = (row.byte_offset as u64, row.byte_length as u64);
                match runs.last_mut() {
                    Some((k, _, e)) if *k == *key && *e == start => *e += len,
                    _ => runs.push((key.clone(), start, start + len)),
                }
            }
            for (key, start, stop) in runs {
                let bytes = self.shared.objects.read(&key, start..stop).await?;
                let into = log.clone();
                next = tokio::task::spawn_blocking(move || into.append_committed(&bytes, crate::clock::now_ms()))
                    .await
                    .map_err(io::Error::other)?
                    .map_err(io::Error::other)?;
            }
        }
        if next != end {
            return Err(SharedError::Io(io::Error::other(format!(
                "the store's log ends at {end}, the rebuilt log at {next}"
            ))));
        }
        if log.offsets().log_start_offset < start {
            let advance = log.clone();
            tokio::task::spawn_blocking(move || advance.advance_log_start(start))
                .await
                .map_err(io::Error::other)?
                .map_err(io::Error::other)?;
        }
        let merged_to =
            data.call("a read of a partition's merge", async |s| s.merged_to(topic_id, tp.partition).await).await?;
        self.starts.lock().insert(log.tp.clone(), start);
        self.known.lock().insert(log.tp.clone(), end);
        let merged =
            Merged { to: merged_to, at: std::time::Instant::now(), cleaned_from: None, cleanings: 0, retry_at: None };
        self.merged.lock().insert(log.tp.clone(), merged);
        if let Some(hook) = self.on_rebuilt.get().cloned() {
            let tp = log.tp.clone();
            tokio::task::spawn_blocking(move || hook(&tp)).await.map_err(io::Error::other)?;
        }
        self.shared.rebuilt.write().entry(log.tp.topic.clone()).or_default().insert(log.tp.partition, epoch);
        Ok(end)
    }

    /// Where the local copy of a partition starts when only its newest part is copied: the
    /// batch from which the batches to the end hold `local.retention.bytes` (the setting's
    /// trimming would let go of the older ones anyway), with the producers' state the batches
    /// before it leave, worked out from their rows. None: the copy goes on from `next`, the end
    /// of what the local log holds of the committed one, because the setting keeps everything
    /// (or the topic is compacted), the local log already reaches that batch, or a row before
    /// it predates schema version 8.
    async fn tail(
        &self,
        log: &PartitionLog,
        topic_id: Uuid,
        start: i64,
        next: i64,
    ) -> Result<Option<Tail>, SharedError> {
        let config = log.config();
        if config.local_retention_bytes < 0 || config.compact {
            return Ok(None);
        }
        let p = log.tp.partition;
        let data = &self.shared.data;
        let find = async |s: &mut Store| s.tail_start(topic_id, p, start, config.local_retention_bytes).await;
        let Some((first, from)) = data.call("a look-up of a partition's tail", find).await? else {
            return Ok(None);
        };
        if from <= first || from <= next {
            return Ok(None);
        }
        let mut producers = ProducerStateTable::default();
        let mut at = start;
        'rows: loop {
            let read = async |s: &mut Store| s.batches(topic_id, p, at, REBUILD_ROWS).await;
            let rows = data.call("a read of the batch index", read).await?;
            for (row, _) in &rows {
                if row.base_offset >= from {
                    break 'rows;
                }
                if !replay(&mut producers, row) {
                    return Ok(None);
                }
                at = row.last_offset + 1;
            }
            if rows.len() < REBUILD_ROWS as usize {
                break;
            }
        }
        Ok(Some(Tail { from, producers }))
    }

    /// Tells the store where the logs of the partitions this broker serves now start, for those
    /// whose start moved past what the store holds (retention, DeleteRecords): a later leader
    /// then rebuilds from there, and the batches and objects before it are swept. A log start
    /// past the high watermark (a segment deleted before its batches were committed) goes as
    /// far as the high watermark. Returns the partitions whose start the store now holds;
    /// those this broker no longer leads are left out (their next leader decides).
    pub async fn push_log_starts(&self, logs: &[Arc<PartitionLog>]) -> Result<Vec<TopicPartition>, SharedError> {
        let view = self.shared.view();
        let me = self.shared.node_id();
        let mut wanted = Vec::new();
        let mut by_key = HashMap::new();
        let ids: HashMap<&str, uuid::Uuid> = view.topics.iter().map(|t| (t.name.as_str(), t.id)).collect();
        for log in logs {
            let (topic, p) = (&log.tp.topic, log.tp.partition);
            let l = view.leader(topic, p);
            let Some(&topic_id) = ids.get(&**topic) else { continue };
            if l.leader != Some(me) || !self.shared.serves(topic, p, l.epoch) {
                continue;
            }
            let start = committed_start(log);
            if self.starts.lock().get(&log.tp).is_some_and(|s| *s >= start) {
                continue;
            }
            wanted.push(LogStart { topic_id, partition: p, leader_epoch: l.epoch, log_start: start });
            by_key.insert((topic_id, p), log.tp.clone());
        }
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let incarnation = self.shared.incarnation();
        let advance = async |s: &mut Store| s.advance_log_starts(me, incarnation, &wanted).await;
        let moved = self.shared.data.call("a move of log starts", advance).await?;
        if !moved.is_empty() {
            self.shared.sweep_later();
        }
        let mut starts = self.starts.lock();
        Ok(moved
            .into_iter()
            .filter_map(|m| {
                let tp = by_key.remove(&(m.topic_id, m.partition))?;
                let at = starts.entry(tp.clone()).or_insert(m.log_start);
                *at = (*at).max(m.log_start);
                Some(tp)
            })
            .collect())
    }

    /// Where retention moves the log start of `log`, a partition this broker leads and serves
    /// whose oldest part only the store holds: worked out on its batch rows
    /// ([`Store::retention_start`]) with the topic's `retention.ms` and `retention.bytes`.
    /// None: it stays, or the partition is not this broker's to decide. Blocking (the
    /// retention pass runs on the blocking pool).
    pub fn stored_retention(&self, log: &PartitionLog, now_ms: i64) -> io::Result<Option<i64>> {
        let view = self.shared.view();
        let (topic, p) = (&log.tp.topic, log.tp.partition);
        let l = view.leader(topic, p);
        let Some(topic_id) = view.topics.iter().find(|t| *t.name == **topic).map(|t| t.id) else { return Ok(None) };
        if l.leader != Some(self.shared.node_id()) || !self.shared.serves(topic, p, l.epoch) {
            return Ok(None);
        }
        let config = log.config();
        let cutoff = (config.retention_ms >= 0).then(|| now_ms.saturating_sub(config.retention_ms));
        let keep = (config.retention_bytes >= 0).then_some(config.retention_bytes);
        if cutoff.is_none() && keep.is_none() {
            return Ok(None);
        }
        let start = log.offsets().log_start_offset;
        let shared = self.shared.clone();
        self.reads.wait("a retention check", async move {
            let work = async |s: &mut Store| s.retention_start(topic_id, p, start, cutoff, keep).await;
            Ok(shared.reads.call("a retention check", work).await?)
        })
    }

    /// A topic was deleted here: what this broker knew of its partitions goes, so that a new
    /// topic of the same name is rebuilt before it is served and starts with nothing known.
    pub fn forget_topic(&self, topic: &str) {
        self.known.lock().retain(|tp, _| *tp.topic != *topic);
        self.starts.lock().retain(|tp, _| *tp.topic != *topic);
        self.merged.lock().retain(|tp, _| *tp.topic != *topic);
        self.shared.rebuilt.write().remove(topic);
    }

    /// Whether the store holds `log`'s current start (or a later one): what a DeleteRecords
    /// answer waits for in shared mode.
    pub fn holds_log_start(&self, log: &PartitionLog) -> bool {
        let start = committed_start(log);
        self.starts.lock().get(&log.tp).is_some_and(|s| *s >= start)
    }

    /// The local cleaner rewrote `tp`'s log from `from` on (a compaction pass): the next merge
    /// round writes it to the store again, so the store's copy shrinks as the local one did and
    /// the next leader rebuilds the compacted log.
    pub fn cleaned(&self, tp: &TopicPartition, from: i64) {
        if let Some(m) = self.merged.lock().get_mut(tp) {
            m.cleaned_from = Some(m.cleaned_from.map_or(from, |f| f.min(from)));
            m.cleanings += 1;
        }
    }

    /// One merge round, unless one is under way: for each partition this broker leads and
    /// serves whose last round is `cluster.merge_interval_ms` ago (never, when zero) or whose
    /// log the cleaner rewrote, what was committed since it was last written again (from where
    /// the cleaner started, if that is earlier) is read from the local log, which equals the
    /// committed one (cleaned, perhaps), written as objects of that partition alone of up to
    /// [`MERGED_OBJECT_BYTES`], and their batch rows replace the range's in the store
    /// ([`Store::rewrite`], fenced as a commit is). The objects the range's batches were in
    /// are let go of once no batch is left in them, and collected as garbage. A partition
    /// refused (it moved) or failed is tried again a minute later at the earliest.
    pub async fn merge(&self, logs: &[Arc<PartitionLog>]) -> Result<MergeReport, SharedError> {
        use std::sync::atomic::Ordering;
        let interval = self.shared.settings().merge_interval;
        if self.merging.swap(true, Ordering::AcqRel) {
            return Ok(MergeReport::default());
        }
        let result = self.merge_round(logs, interval).await;
        self.merging.store(false, Ordering::Release);
        result
    }

    async fn merge_round(&self, logs: &[Arc<PartitionLog>], interval: Duration) -> Result<MergeReport, SharedError> {
        let view = self.shared.view();
        let me = self.shared.node_id();
        let mut report = MergeReport::default();
        let mut failure = None;
        for log in logs {
            let (topic, p) = (&log.tp.topic, log.tp.partition);
            let l = view.leader(topic, p);
            let Some(topic_id) = view.topics.iter().find(|t| *t.name == **topic).map(|t| t.id) else { continue };
            if l.leader != Some(me) || !self.shared.serves(topic, p, l.epoch) {
                continue;
            }
            let Some(m) = self.merged.lock().get(&log.tp).copied() else { continue };
            let now = std::time::Instant::now();
            let due = !interval.is_zero() && now.duration_since(m.at) >= interval;
            if m.retry_at.is_some_and(|t| now < t) || !due && m.cleaned_from.is_none() {
                continue;
            }
            let from = m.cleaned_from.map_or(m.to, |c| c.min(m.to));
            let outcome = self.merge_partition(log, topic_id, l.epoch, from, &mut report).await;
            let mut merged = self.merged.lock();
            let Some(after) = merged.get_mut(&log.tp) else { continue };
            after.at = std::time::Instant::now();
            match outcome {
                Ok(()) => {
                    after.retry_at = None;
                    // A cleaning that came while the round ran is written at the next.
                    if after.cleanings == m.cleanings {
                        after.cleaned_from = None;
                    }
                }
                Err(e) => {
                    // Not again before a minute (or the interval) has passed: a refused
                    // rewrite leaves an object behind for the garbage collection.
                    after.retry_at = Some(after.at + interval.max(Duration::from_secs(60)));
                    failure.get_or_insert(e);
                }
            }
        }
        match failure {
            Some(e) if report.objects == 0 => Err(e),
            _ => Ok(report),
        }
    }

    /// Writes `log` again from `from` to its high watermark, an object at a time (see
    /// [`Self::merge`]), counting what it wrote in `report`.
    async fn merge_partition(
        &self,
        log: &Arc<PartitionLog>,
        topic_id: Uuid,
        epoch: i32,
        mut from: i64,
        report: &mut MergeReport,
    ) -> Result<(), SharedError> {
        let me = self.shared.node_id();
        let mut wrote = false;
        loop {
            let o = log.offsets();
            if from >= o.high_watermark {
                break;
            }
            // Where the log no longer holds `from` (retention), from its start; the rows before
            // it go in the sweeps.
            let at = from.max(o.log_start_offset);
            if at >= o.high_watermark {
                break;
            }
            let reader = log.clone();
            let read = tokio::task::spawn_blocking(move || reader.read(at, MERGED_OBJECT_BYTES, true))
                .await
                .map_err(io::Error::other)?
                .map_err(io::Error::other)?;
            let mut object = ObjectBuilder::new(me);
            let (mut rest, mut count) = (&read.records[..], 0);
            while let (Some((_, len)), true) = (peek_len(rest), count < MERGED_OBJECT_BATCHES) {
                let Some(one) = rest.get(..len) else { break };
                object.add(topic_id, log.tp.partition, epoch, one)?;
                (rest, count) = (&rest[len..], count + 1);
            }
            let (bytes, commit) = object.finish();
            let (Some(first), Some(last)) = (commit.batches.first(), commit.batches.last()) else { break };
            let to = last.last_offset + 1;
            // The range starts where the last one ended (whose rows are then replaced too
            // where the cleaner removed their batches), or at the first batch left.
            let start = if from >= o.log_start_offset { from.min(first.base_offset) } else { first.base_offset };
            let (size, batches) = (bytes.len() as u64, commit.batches.len());
            self.shared.objects.put(&commit.object_key, bytes).await?;
            let rewrite =
                Rewrite { topic_id, partition: log.tp.partition, leader_epoch: epoch, from: start, to, object: commit };
            let incarnation = self.shared.incarnation();
            // On the ticks' connection: a rewrite of thousands of rows must not hold up commits.
            self.shared.store.call("a merge", async |s| s.rewrite(me, incarnation, &rewrite).await).await?;
            report.objects += 1;
            report.batches += batches;
            report.bytes += size;
            wrote = true;
            from = to;
            if let Some(m) = self.merged.lock().get_mut(&log.tp) {
                m.to = m.to.max(to);
            }
        }
        report.partitions += usize::from(wrote);
        Ok(())
    }

    /// One object and one fenced commit for these jobs' batches, told to the commit observer.
    async fn commit(&self, jobs: &[Job]) -> Result<(), SharedError> {
        let started = std::time::Instant::now();
        let result = self.commit_object(jobs).await;
        if let Some(observe) = COMMIT_OBSERVER.get() {
            let (bytes, batches) = *result.as_ref().unwrap_or(&(0, 0));
            observe(&CommitReport {
                committed: result.is_ok(),
                seconds: started.elapsed().as_secs_f64(),
                bytes,
                batches,
            });
        }
        result.map(|_| ())
    }

    /// [`Self::commit`]'s work: (the object's bytes, its batches) once committed.
    async fn commit_object(&self, jobs: &[Job]) -> Result<(u64, u64), SharedError> {
        let view = self.shared.view();
        let me = self.shared.node_id();
        let mut object = ObjectBuilder::new(me);
        for job in jobs {
            let (topic, p) = (&job.tp.topic, job.tp.partition);
            let l = view.leader(topic, p);
            let topic_id = view.topics.iter().find(|t| *t.name == **topic).map(|t| t.id);
            let (Some(topic_id), true) = (topic_id, l.leader == Some(me) && self.shared.serves(topic, p, l.epoch))
            else {
                return Err(SharedError::Store(StoreError::Fenced(format!("this broker does not lead {}", job.tp))));
            };
            let mut rest = &job.batches[..];
            while let Some((_, len)) = peek_len(rest) {
                let Some(one) = rest.get(..len) else { break };
                object.add(topic_id, p, l.epoch, one)?;
                rest = &rest[len..];
            }
        }
        let (bytes, commit) = object.finish();
        let done = (bytes.len() as u64, commit.batches.len() as u64);
        self.shared.objects.put(&commit.object_key, bytes).await?;
        let incarnation = self.shared.incarnation();
        self.shared.data.call("a commit", async |s| s.commit(me, incarnation, &commit).await).await?;
        Ok(done)
    }

    /// Commits the jobs together, or, when that is refused and they are of several
    /// partitions, each alone (one fenced partition must not fail the others).
    async fn ship(&self, jobs: Vec<Job>) {
        let result = self.commit(&jobs).await;
        if result.is_err() && jobs.len() > 1 {
            for job in jobs {
                let alone = self.commit(std::slice::from_ref(&job)).await;
                self.finish(job, alone);
            }
            return;
        }
        let why = result.as_ref().err().map(ToString::to_string);
        for job in jobs {
            let outcome = match &why {
                None => Ok(()),
                Some(why) => Err(SharedError::Io(io::Error::other(why.clone()))),
            };
            self.finish(job, outcome);
        }
    }

    fn finish(&self, job: Job, outcome: Result<(), SharedError>) {
        match &outcome {
            Ok(()) => {
                if let Some(end) = next_offset_after(&job.batches) {
                    self.known.lock().insert(job.tp.clone(), end);
                }
            }
            // Refused, or its outcome unknown (the connection broke after the commit went
            // out): the partition is served again only once rebuilt from the store, which
            // also settles whether the batches made it.
            Err(e) => {
                tracing::warn!(partition = %job.tp, error = %e, "a commit failed; the partition is rebuilt before it is served again");
                if let Some(p) = self.shared.rebuilt.write().get_mut(&job.tp.topic) {
                    p.remove(&job.tp.partition);
                }
            }
        }
        let _ = job.done.send(outcome.map_err(io::Error::other));
    }
}

impl Committer for Shipper {
    fn covers(&self, _: &TopicPartition) -> bool {
        true
    }

    fn commit(&self, tp: &TopicPartition, batches: Bytes) -> CommitFuture {
        let (done, answer) = oneshot::channel();
        let sent = self.jobs.send(Job { tp: tp.clone(), batches, done }).is_ok();
        Box::pin(async move {
            if !sent {
                return Err(io::Error::other("the shared-mode commit task has stopped"));
            }
            answer.await.map_err(|_| io::Error::other("the shared-mode commit task has stopped"))?
        })
    }

    fn read_stored(
        &self,
        tp: &TopicPartition,
        offset: i64,
        before: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> io::Result<Bytes> {
        let (reads, tp) = (self.reads.clone(), tp.clone());
        self.reads.wait("a read", async move { reads.read(&tp, offset, before, max_bytes, min_one).await })
    }

    fn offset_for_timestamp_stored(
        &self,
        tp: &TopicPartition,
        target: i64,
        from: i64,
        before: i64,
    ) -> io::Result<Option<(i64, i64)>> {
        let (reads, tp) = (self.reads.clone(), tp.clone());
        self.reads
            .wait("a search by timestamp", async move { reads.offset_for_timestamp(&tp, target, from, before).await })
    }

    fn max_timestamp_stored(&self, tp: &TopicPartition, from: i64, before: i64) -> io::Result<Option<(i64, i64)>> {
        let (reads, tp) = (self.reads.clone(), tp.clone());
        self.reads
            .wait("a search for the largest timestamp", async move { reads.max_timestamp(&tp, from, before).await })
    }
}

/// Where a new leader's local copy of a partition starts, and the producers' state of the
/// part before it.
struct Tail {
    from: i64,
    producers: ProducerStateTable,
}

/// Replays one batch row into `producers` as the log replays a batch it holds: a data batch
/// records its producer's sequences and opens its transaction, a marker closes it (aborted, or
/// committed). False for a row committed before schema version 8 (it does not say which).
fn replay(producers: &mut ProducerStateTable, row: &BatchRow) -> bool {
    let Some(h) = row.header() else { return false };
    if !h.is_control() {
        producers.record(&h);
    } else if let Some((control, coordinator_epoch)) = row.marker {
        producers.record_marker(&h, control, coordinator_epoch);
    }
    true
}

/// Where a log starts, as far as the store may know it: its log start, or the high watermark
/// when retention deleted past what is committed.
fn committed_start(log: &PartitionLog) -> i64 {
    let o = log.offsets();
    o.log_start_offset.min(o.high_watermark)
}

/// The commit task: takes what has come in, and, when busy, what comes in within `linger` of
/// the first job (up to [`MAX_OBJECT_BYTES`] in all), and ships it as one object while the next
/// jobs gather. Without the linger, partitions under load take turns: each commits its next
/// batches only once its previous commit ended, so the shipper, free again, would take the one
/// job already waiting and ship it alone a moment before the others arrive.
async fn run(shipper: std::sync::Weak<Shipper>, mut queue: mpsc::UnboundedReceiver<Job>, linger: Duration) {
    let mut carry: Option<Job> = None;
    let mut last_jobs = 0;
    loop {
        let (first, queued) = match carry.take() {
            Some(job) => (job, true),
            None => match queue.try_recv() {
                Ok(job) => (job, true),
                Err(mpsc::error::TryRecvError::Disconnected) => return,
                Err(mpsc::error::TryRecvError::Empty) => match queue.recv().await {
                    Some(job) => (job, false),
                    None => return,
                },
            },
        };
        // Busy (a job was waiting, or the last commit carried several): the partitions whose
        // commits just ended are about to hand over their next batches, so wait for them.
        // Idle: ship at once, so a lone write pays no linger.
        let linger = if queued || last_jobs > 1 { linger } else { Duration::ZERO };
        let until = tokio::time::Instant::now() + linger;
        let mut size = first.batches.len();
        let mut jobs = vec![first];
        while size < MAX_OBJECT_BYTES {
            let next = match queue.try_recv() {
                Ok(job) => Some(job),
                Err(_) if linger.is_zero() => None,
                Err(_) => tokio::time::timeout_at(until, queue.recv()).await.ok().flatten(),
            };
            match next {
                Some(job) if size + job.batches.len() > MAX_OBJECT_BYTES => {
                    carry = Some(job);
                    break;
                }
                Some(job) => {
                    size += job.batches.len();
                    jobs.push(job);
                }
                None => break,
            }
        }
        last_jobs = jobs.len();
        let Some(shipper) = shipper.upgrade() else { return };
        shipper.ship(jobs).await;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::cluster::objects::collect_garbage;
    use crate::cluster::shared::Settings;
    use crate::cluster::store::Registration;
    use crate::cluster::testing::PgServer;
    use crate::log::batch;
    use crate::log::files::FileCache;
    use crate::log::{PartitionConfig, RecoveryMode};

    fn open_log(dir: &std::path::Path, p: i32) -> Arc<PartitionLog> {
        open_log_with(dir, p, PartitionConfig::internal())
    }

    fn open_log_with(dir: &std::path::Path, p: i32, config: PartitionConfig) -> Arc<PartitionLog> {
        let (tp, files) = (TopicPartition::new("t", p), FileCache::unbounded());
        PartitionLog::open_shared(&dir.join(format!("t-{p}")), tp, config, 0, RecoveryMode::VerifyTail, &files).unwrap()
    }

    /// Every batch of `log` up to its high watermark (a read stops at the end of a segment).
    fn read_all(log: &PartitionLog) -> Vec<u8> {
        let mut all = Vec::new();
        while let Some(next) = batch::next_offset_after(&all)
            .or(Some(log.offsets().log_start_offset))
            .filter(|n| *n < log.offsets().high_watermark)
        {
            all.extend_from_slice(&log.read(next, 1 << 20, true).unwrap().records);
        }
        all
    }

    /// Per partition of `t`, the objects its batch rows are in (in offset order, each once).
    async fn objects_of(shared: &Shared, topic_id: Uuid, p: i32) -> Vec<String> {
        let rows = shared.data.hold().await.batches(topic_id, p, 0, 1000).await.unwrap();
        let mut keys: Vec<String> = rows.into_iter().map(|(_, k)| k).collect();
        keys.dedup();
        keys
    }

    fn records(values: &[&str]) -> Vec<u8> {
        let kvs: Vec<batch::KeyValue<'_>> = values.iter().map(|v| (None, Some(v.as_bytes()))).collect();
        batch::build(&kvs, 1_000)
    }

    /// Starts rebuilds and waits until this broker serves both partitions of `t`.
    async fn serve_both(shipper: &Arc<Shipper>, logs: &[Arc<PartitionLog>]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            shipper.rebuild_led(|tp| logs.get(tp.partition as usize).cloned());
            let view = shipper.shared.view();
            if (0..2).all(|p| shipper.shared.serves("t", p, view.leader("t", p).epoch)) {
                return;
            }
            assert!(Instant::now() < deadline, "the partitions were not rebuilt within 10 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Broker 1 of a cluster over `pg`, with a topic "t" of two partitions: (it, the topic's id).
    async fn broker_with_topic(
        pg: &PgServer,
        object_store_url: String,
        commit_linger: Duration,
    ) -> (Arc<Shared>, Uuid) {
        let settings = Settings {
            postgres_url: pg.url.clone(),
            object_store_url,
            session_timeout: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(1),
            commit_linger,
            merge_interval: Duration::from_millis(1),
            read_cache_bytes: 1 << 20,
            fsync_objects: true,
            store_timeout: Duration::from_secs(30),
        };
        let registration =
            Registration { node_id: 1, rack: None, listeners: BTreeMap::from([("PLAINTEXT".into(), "h:1".into())]) };
        let shared = Shared::start(settings, registration, "c", |_: &str| Vec::new()).await.unwrap();
        shared.create_topic("t", Uuid::new_v4(), 2, &BTreeMap::new()).await.unwrap();
        let topic_id = shared.view().topics[0].id;
        (shared, topic_id)
    }

    /// [`broker_with_topic`] with its objects in a directory of a temp dir, no linger, and a
    /// shipper committing the two partitions' logs (in the temp dir's `a`).
    async fn shipping_to_a_directory(
        pg: &PgServer,
    ) -> (tempfile::TempDir, Arc<Shared>, Uuid, Arc<Shipper>, [Arc<PartitionLog>; 2]) {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("objects")).unwrap();
        let objects = format!("file://{}", tmp.path().join("objects").display());
        let (shared, topic_id) = broker_with_topic(pg, objects, Duration::ZERO).await;
        let shipper = Shipper::start(shared.clone());
        let logs = [open_log(&tmp.path().join("a"), 0), open_log(&tmp.path().join("a"), 1)];
        for log in &logs {
            log.attach_committer(shipper.clone());
        }
        (tmp, shared, topic_id, shipper, logs)
    }

    /// A broker unsure of its lease for a while (stopped, or PostgreSQL away) serves nothing
    /// meanwhile, but starts no rebuild of the partitions it still leads in the same epoch. It
    /// did: the rebuild then ran while the lease came back and the partition was served again,
    /// and cut off a write acknowledged meanwhile (seen as a log at [0, 1) after two
    /// acknowledged writes, about one run in ten of the stalled-PostgreSQL integration test).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lease_unsure_for_a_while_starts_no_rebuild_while_the_epoch_holds() {
        let Some(pg) = PgServer::start() else { return };
        let tmp = tempfile::tempdir().unwrap();
        let (shared, _) = broker_with_topic(&pg, "memory:///".into(), Duration::ZERO).await;
        let shipper = Shipper::start(shared.clone());
        let logs = [open_log(tmp.path(), 0), open_log(tmp.path(), 1)];
        serve_both(&shipper, &logs).await;

        // Were a rebuild started, it would wait here on the store, and be seen under way.
        let held = shared.data.hold().await;
        shared.lose_lease_for_a_while();
        assert!(!shared.serves("t", 0, shared.view().leader("t", 0).epoch), "nothing is served meanwhile");
        shipper.rebuild_led(|tp| logs.get(tp.partition as usize).cloned());
        assert!(shipper.rebuilding.lock().is_empty(), "a rebuild started for a lease unsure for a while");
        shared.regain_lease();
        assert!(shared.serves("t", 0, shared.view().leader("t", 0).epoch), "served again as it was");
        drop(held);

        // A partition whose epoch moved is rebuilt, and not served while it is.
        unserve(&shared, 1);
        shared.rebuilt.write().get_mut("t").unwrap().insert(1, -5);
        let held = shared.data.hold().await;
        shipper.rebuild_led(|tp| logs.get(tp.partition as usize).cloned());
        assert_eq!(shipper.rebuilding.lock().len(), 1);
        assert!(!shared.serves("t", 1, shared.view().leader("t", 1).epoch));
        drop(held);
        serve_both(&shipper, &logs).await;
    }

    fn unserve(shared: &Shared, p: i32) {
        shared.rebuilt.write().get_mut("t").unwrap().remove(&p);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commits_go_to_the_store_a_fenced_partition_fails_alone_and_a_rebuilt_log_is_the_committed_one() {
        let Some(pg) = PgServer::start() else { return };
        let (tmp, shared, topic_id, shipper, logs) = shipping_to_a_directory(&pg).await;
        // Before its (empty) rebuild, a partition is not served and its commits are refused.
        logs[0].append(&records(&["early"]), 0).unwrap();
        assert!(logs[0].flush_to(1).await.is_err());
        assert_eq!(logs[0].offsets().high_watermark, 0);
        serve_both(&shipper, &logs).await;
        assert_eq!(logs[0].offsets().log_end_offset, 0, "the rebuild cut what was never committed");

        // Committed: visible, and in the store's index.
        logs[0].append(&records(&["a", "b"]), 0).unwrap();
        logs[0].flush_to(2).await.unwrap();
        assert_eq!(logs[0].offsets().high_watermark, 2);
        assert_eq!(shared.data.hold().await.log_end(topic_id, 0).await.unwrap(), Some(2));

        // One object for two partitions, one of them no longer served: the other's batches
        // are committed all the same. (Jobs made by hand: an append would start its own commit.)
        unserve(&shared, 1);
        let at = |offset: i64, values: &[&str]| {
            let mut b = records(values);
            batch::assign_offset(&mut b, offset, 0);
            Bytes::from(b)
        };
        let third = at(2, &["c"]);
        let mut answers = Vec::new();
        let mut jobs = Vec::new();
        for (p, batches) in [(0, third.clone()), (1, at(0, &["x", "y", "z"]))] {
            let (done, answer) = oneshot::channel();
            jobs.push(Job { tp: TopicPartition::new("t", p), batches, done });
            answers.push(answer);
        }
        shipper.ship(jobs).await;
        assert!(answers.remove(0).await.unwrap().is_ok(), "the served partition's commit went through");
        assert!(answers.remove(0).await.unwrap().is_err(), "the other's was refused");
        let store = shared.data.hold().await;
        assert_eq!(store.log_end(topic_id, 0).await.unwrap(), Some(3));
        assert_eq!(store.log_end(topic_id, 1).await.unwrap(), Some(0));
        drop(store);

        // Another log of partition 0, rebuilt from the store, is the committed log.
        let fresh = Shipper::start(shared.clone());
        let rebuilt = [open_log(&tmp.path().join("b"), 0), open_log(&tmp.path().join("b"), 1)];
        unserve(&shared, 0);
        serve_both(&fresh, &rebuilt).await;
        assert_eq!(rebuilt[0].offsets().high_watermark, 3);
        assert_eq!(read_all(&rebuilt[0]), [read_all(&logs[0]), third.to_vec()].concat());
        assert_eq!(rebuilt[1].offsets().log_end_offset, 0, "nothing of partition 1 was committed");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_busy_shipper_lingers_so_partitions_share_objects_and_an_idle_one_ships_at_once() {
        let Some(pg) = PgServer::start() else { return };
        let tmp = tempfile::tempdir().unwrap();
        let (shared, topic_id) = broker_with_topic(&pg, "memory:///".into(), Duration::from_secs(5)).await;
        let shipper = Shipper::start(shared.clone());
        let logs = [open_log(tmp.path(), 0), open_log(tmp.path(), 1)];
        serve_both(&shipper, &logs).await;
        let at = |offset: i64, values: &[&str]| {
            let mut b = records(values);
            batch::assign_offset(&mut b, offset, 0);
            Bytes::from(b)
        };
        let commit =
            |p: i32, batches: Bytes| Committer::commit(shipper.as_ref(), &TopicPartition::new("t", p), batches);

        // Idle: the first batch is shipped at once (its object is written), and its commit
        // then waits on the store, held here.
        let held = shared.data.hold().await;
        let first = tokio::spawn(commit(0, at(0, &["a"])));
        // (Well within the linger: a lingering shipper would not have written it yet.)
        let deadline = Instant::now() + Duration::from_secs(2);
        while shared.objects.older_than(Duration::ZERO).await.unwrap().is_empty() {
            assert!(Instant::now() < deadline, "the idle shipper did not ship the first batch at once");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Busy: a batch of partition 1 waits for the shipper, which, once free, lingers for
        // partition 0's next batch (sent well after the first commit ended).
        let second = tokio::spawn(commit(1, at(0, &["x", "y"])));
        drop(held);
        first.await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!second.is_finished(), "the busy shipper did not linger");
        commit(0, at(1, &["b"])).await.unwrap();
        second.await.unwrap().unwrap();

        let store = shared.data.hold().await;
        let (p0, p1) =
            (store.batches(topic_id, 0, 0, 10).await.unwrap(), store.batches(topic_id, 1, 0, 10).await.unwrap());
        assert_eq!((p0.len(), p1.len()), (2, 1));
        assert_eq!(p0[1].1, p1[0].1, "partition 0's second batch and partition 1's share an object");
        assert_ne!(p0[0].1, p1[0].1, "partition 0's first batch went alone");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_log_start_the_store_holds_is_where_the_next_leader_starts_and_its_objects_are_let_go() {
        let Some(pg) = PgServer::start() else { return };
        let (tmp, shared, topic_id, shipper, logs) = shipping_to_a_directory(&pg).await;
        serve_both(&shipper, &logs).await;
        // Three commits, three objects: [0, 1], [2, 3], [4, 5].
        for (i, values) in [["a", "b"], ["c", "d"], ["e", "f"]].iter().enumerate() {
            logs[0].append(&records(values), 0).unwrap();
            logs[0].flush_to(2 * (i as i64 + 1)).await.unwrap();
        }

        // DeleteRecords to 3: the store takes the new start; the first batch and its object go.
        let kept = logs[0].read(2, 1 << 20, true).unwrap().records;
        logs[0].advance_log_start(3).unwrap();
        assert!(!shipper.holds_log_start(&logs[0]));
        let pushed = shipper.push_log_starts(&logs).await.unwrap();
        assert_eq!(pushed, [TopicPartition::new("t", 0)], "partition 1's start did not move");
        assert!(shipper.holds_log_start(&logs[0]));
        assert!(shared.sweep().await.unwrap() > 0, "the batches before the start are swept");
        let store = shared.data.hold().await;
        assert_eq!(store.log_bounds(topic_id, 0).await.unwrap(), Some((3, 6)));
        let all = shared.objects.older_than(Duration::ZERO).await.unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(store.referenced(&all).await.unwrap().len(), 2, "the first object is no longer referenced");
        drop(store);
        assert_eq!(collect_garbage(&shared.objects, &shared.data, Duration::ZERO).await.unwrap(), 1);
        assert!(shipper.push_log_starts(&logs).await.unwrap().is_empty(), "nothing new to tell");

        // A broker that no longer serves the partition tells the store nothing.
        unserve(&shared, 0);
        logs[0].advance_log_start(4).unwrap();
        assert!(shipper.push_log_starts(&logs).await.unwrap().is_empty());
        assert!(!shipper.holds_log_start(&logs[0]));
        assert_eq!(shared.data.hold().await.log_bounds(topic_id, 0).await.unwrap(), Some((3, 6)));

        // The next leader's copy (empty) starts over at the batch holding offset 3, which it
        // reads from the store, and starts its log at 3.
        let fresh = Shipper::start(shared.clone());
        let rebuilt = [open_log(&tmp.path().join("b"), 0), open_log(&tmp.path().join("b"), 1)];
        serve_both(&fresh, &rebuilt).await;
        let o = rebuilt[0].offsets();
        assert_eq!((o.log_start_offset, o.high_watermark, o.log_end_offset), (3, 6, 6));
        assert!(rebuilt[0].read(1, 1 << 20, true).is_err(), "offset 1 is gone");
        assert_eq!(rebuilt[0].read(3, 1 << 20, true).unwrap().records, kept);
        assert!(fresh.holds_log_start(&rebuilt[0]));

        // The topic deleted and made again under its name: nothing of the old one is assumed.
        fresh.forget_topic("t");
        let view = shared.view();
        assert!(!shared.serves("t", 1, view.leader("t", 1).epoch), "served without a rebuild");
        assert!(!fresh.holds_log_start(&rebuilt[0]), "an old topic's log start taken for the new one's");
    }

    /// Merging: the batches of many small objects, shared by partitions, go into one object per
    /// partition, whose rows replace theirs; the old objects are let go of, a round goes on
    /// from where the last ended, and the next leader rebuilds the same log from the merged
    /// objects (starting where the last merge ended, not over).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_partitions_small_objects_are_merged_into_one_and_the_next_leader_reads_it() {
        let Some(pg) = PgServer::start() else { return };
        let (tmp, shared, topic_id, shipper, logs) = shipping_to_a_directory(&pg).await;
        serve_both(&shipper, &logs).await;
        for (i, values) in [["a", "b"], ["c", "d"], ["e", "f"]].iter().enumerate() {
            logs[0].append(&records(values), 0).unwrap();
            logs[0].flush_to(2 * (i as i64 + 1)).await.unwrap();
            logs[1].append(&records(&values[..1]), 0).unwrap();
            logs[1].flush_to(i as i64 + 1).await.unwrap();
        }
        let before = [objects_of(&shared, topic_id, 0).await, objects_of(&shared, topic_id, 1).await];
        assert_eq!((before[0].len(), before[1].len()), (3, 3), "one object per commit");

        let report = shipper.merge(&logs).await.unwrap();
        assert_eq!(report, MergeReport { partitions: 2, objects: 2, batches: 6, bytes: report.bytes });
        let after = [objects_of(&shared, topic_id, 0).await, objects_of(&shared, topic_id, 1).await];
        assert_eq!((after[0].len(), after[1].len()), (1, 1), "one object per partition: {after:?}");
        assert_ne!(after[0], after[1]);
        let store = shared.data.hold().await;
        let old: Vec<String> = before.concat();
        assert!(store.referenced(&old).await.unwrap().is_empty(), "the small objects are let go of");
        assert_eq!(store.merged_to(topic_id, 0).await.unwrap(), 6);
        assert_eq!(store.log_bounds(topic_id, 0).await.unwrap(), Some((0, 6)));
        drop(store);
        assert_eq!(collect_garbage(&shared.objects, &shared.data, Duration::ZERO).await.unwrap(), 6);

        // Nothing new: nothing written. One more batch: only it is written again.
        assert_eq!(shipper.merge(&logs).await.unwrap().objects, 0);
        logs[0].append(&records(&["g"]), 0).unwrap();
        logs[0].flush_to(7).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
        let r = shipper.merge(&logs).await.unwrap();
        assert_eq!((r.partitions, r.objects, r.batches), (1, 1, 1));
        let p0 = objects_of(&shared, topic_id, 0).await;
        assert_eq!((p0.len(), &p0[0]), (2, &after[0][0]), "the first range stays as merged");

        // The next leader's copy is the same log, and its shipper goes on from 7.
        let fresh = Shipper::start(shared.clone());
        let rebuilt = [open_log(&tmp.path().join("b"), 0), open_log(&tmp.path().join("b"), 1)];
        unserve(&shared, 0);
        unserve(&shared, 1);
        serve_both(&fresh, &rebuilt).await;
        assert_eq!(read_all(&rebuilt[0]), read_all(&logs[0]));
        assert_eq!(read_all(&rebuilt[1]), read_all(&logs[1]));
        assert_eq!(fresh.merged.lock()[&TopicPartition::new("t", 0)].to, 7);
        assert_eq!(fresh.merge(&rebuilt).await.unwrap().objects, 0, "nothing merged twice");
    }

    /// A batch of `n` records from producer `pid`, sequences from `seq`, in a transaction or not.
    fn producer_batch(pid: i64, seq: i32, n: usize, transactional: bool) -> Vec<u8> {
        use bytes::BufMut;
        let values: Vec<String> = (0..n).map(|i| format!("p{pid}-{}", seq as usize + i)).collect();
        let kvs: Vec<batch::KeyValue<'_>> = values.iter().map(|v| (None, Some(v.as_bytes()))).collect();
        let mut b = batch::build_transactional(&kvs, 1000, pid, 0);
        if !transactional {
            (&mut b[21..23]).put_i16(0);
        }
        (&mut b[53..57]).put_i32(seq);
        let crc = crc32c::crc32c(&b[21..]);
        (&mut b[17..21]).put_u32(crc);
        b
    }

    /// A new leader copies only the newest `local.retention.bytes` of a partition and reads the
    /// rest from the store; the producers' state that rest leaves (idempotent producers'
    /// sequences, a transaction aborted there, one still open across the copy's start) is
    /// worked out from the batch rows, and is the old leader's.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_new_leader_copies_the_newest_part_and_the_rows_give_it_the_producers_state_of_the_rest() {
        use crate::log::partition::Isolation;
        use crate::log::producer_state::ControlType;
        use crate::log::AppendError;
        let Some(pg) = PgServer::start() else { return };
        let (tmp, shared, _, shipper, logs) = shipping_to_a_directory(&pg).await;
        serve_both(&shipper, &logs).await;
        let log = &logs[0];
        let mut seq7 = 0;
        let append = |b: Vec<u8>| {
            log.append(&b, 0).unwrap();
        };
        // Producer 7 (idempotent) writes throughout; 9 commits, 10 aborts, 11 opens a
        // transaction early and ends it only after the new leader took over.
        for round in 0..6 {
            append(producer_batch(7, seq7, 3, false));
            seq7 += 3;
            match round {
                0 => append(producer_batch(11, 0, 2, true)),
                1 => append(producer_batch(9, 0, 2, true)),
                2 => {
                    log.append_marker(9, 0, ControlType::Commit, 4, 0).unwrap();
                }
                3 => append(producer_batch(10, 0, 2, true)),
                4 => {
                    log.append_marker(10, 0, ControlType::Abort, 4, 0).unwrap();
                }
                _ => append(records(&["plain"; 20])),
            }
        }
        let end = log.offsets().log_end_offset;
        log.flush_to(end).await.unwrap();
        let lso = log.read_isolated(0, 1 << 20, true, Isolation::ReadCommitted).unwrap().last_stable_offset;
        assert_eq!(lso, 3, "producer 11's open transaction holds the last stable offset");

        // The new leader keeps 300 bytes: the last batch or two.
        let mut config = PartitionConfig::internal();
        config.local_retention_bytes = 300;
        let fresh = Shipper::start(shared.clone());
        let rebuilt = [open_log_with(&tmp.path().join("b"), 0, config), open_log(&tmp.path().join("b"), 1)];
        for l in &rebuilt {
            l.attach_committer(fresh.clone());
        }
        unserve(&shared, 0);
        unserve(&shared, 1);
        serve_both(&fresh, &rebuilt).await;
        let new = &rebuilt[0];
        assert!(new.has_stored_head(), "the whole log was copied");
        // Past the aborted transaction's marker (22), before the plain batch at 26.
        assert!((23..=26).contains(&new.local_start_offset()), "the local copy starts at {}", new.local_start_offset());
        assert!(new.size_bytes() < 600, "{} bytes copied", new.size_bytes());
        assert_eq!((new.offsets().log_start_offset, new.offsets().high_watermark), (0, end));
        assert_eq!(read_all(new), read_all(log), "the same log, its head read from the store");
        let sorted = |l: &PartitionLog| {
            let mut p = l.producers();
            p.sort_by_key(|p| p.producer_id);
            p
        };
        assert_eq!(sorted(new), sorted(log));
        let committed = |l: &PartitionLog, from: i64| l.read_isolated(from, 1 << 20, true, Isolation::ReadCommitted);
        assert_eq!(committed(new, 0).unwrap().last_stable_offset, 3);

        // Producer 11 commits at the new leader: its transaction's first offset is in the part
        // only the store holds, and the aborted one of producer 10 is listed from the rows.
        new.append_marker(11, 0, ControlType::Commit, 4, 0).unwrap();
        let end = new.offsets().log_end_offset;
        new.flush_to(end).await.unwrap();
        let read = committed(new, 0).unwrap();
        assert_eq!(read.last_stable_offset, end);
        assert_eq!(read.aborted.iter().map(|a| a.producer_id).collect::<Vec<_>>(), [10]);
        // Producer 7's next sequence goes on; one out of order is refused, as by the old leader.
        let gap = new.append(&producer_batch(7, seq7 + 1, 1, false), 0);
        assert!(matches!(gap, Err(AppendError::Sequence(_))), "{gap:?}");
        new.append(&producer_batch(7, seq7, 1, false), 0).unwrap();
    }

    /// Compaction through the store: what the leader's cleaner removed goes from the store
    /// too (the cleaned segments are written again and replace their range's rows), and the
    /// next leader rebuilds the compacted log, offsets and gaps as they were, and goes on
    /// appending after it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cleaned_log_is_written_again_and_the_next_leader_rebuilds_it_compacted() {
        let Some(pg) = PgServer::start() else { return };
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("objects")).unwrap();
        let objects = format!("file://{}", tmp.path().join("objects").display());
        let (shared, topic_id) = broker_with_topic(&pg, objects, Duration::ZERO).await;
        let shipper = Shipper::start(shared.clone());
        let mut config = PartitionConfig::internal();
        config.compact = true;
        config.segment_bytes = 300;
        config.cleaner.min_cleanable_ratio = 0.01;
        let logs = [open_log_with(&tmp.path().join("a"), 0, config.clone()), open_log(&tmp.path().join("a"), 1)];
        for log in &logs {
            log.attach_committer(shipper.clone());
        }
        serve_both(&shipper, &logs).await;
        // Keys k0..k2 written four times over, one batch each, in several segments.
        for i in 0..12 {
            let key = format!("k{}", i % 3);
            let value = format!("v{i}");
            let b = batch::build(&[(Some(key.as_bytes()), Some(value.as_bytes()))], 1_000);
            logs[0].append(&b, 0).unwrap();
            logs[0].flush_to(i + 1).await.unwrap();
        }
        // The merge of the whole log first (the cleaning must then replace merged rows).
        shipper.merge(&logs).await.unwrap();
        let stats = logs[0].compact(crate::clock::now_ms(), &crate::log::CleanerLimits::default()).unwrap();
        let from = stats.rewritten_from.expect("the cleaner rewrote segments");
        assert!(stats.records_removed > 0);
        let cleaned = read_all(&logs[0]);
        let rows_before = shared.data.hold().await.batches(topic_id, 0, 0, 1000).await.unwrap().len();
        assert_eq!(rows_before, 12);

        // Without the cleaning told, merging writes nothing; told, the store follows.
        assert_eq!(shipper.merge(&logs).await.unwrap().objects, 0);
        shipper.cleaned(&TopicPartition::new("t", 0), from);
        assert!(shipper.merge(&logs).await.unwrap().objects > 0);
        let rows = shared.data.hold().await.batches(topic_id, 0, 0, 1000).await.unwrap();
        let mut batches = 0;
        let mut rest = &cleaned[..];
        while let Some((_, len)) = peek_len(rest) {
            batches += 1;
            rest = &rest[len..];
        }
        assert_eq!(rows.len(), batches, "the store holds the cleaned batches only");
        assert!(rows.len() < rows_before);
        assert_eq!(shared.data.hold().await.log_bounds(topic_id, 0).await.unwrap(), Some((0, 12)));

        // The next leader: the compacted log, ending where it ended, and appends go on at 12.
        let fresh = Shipper::start(shared.clone());
        let rebuilt = [open_log_with(&tmp.path().join("b"), 0, config), open_log(&tmp.path().join("b"), 1)];
        for log in &rebuilt {
            log.attach_committer(fresh.clone());
        }
        unserve(&shared, 0);
        unserve(&shared, 1);
        serve_both(&fresh, &rebuilt).await;
        assert_eq!(read_all(&rebuilt[0]), cleaned);
        let o = rebuilt[0].offsets();
        assert_eq!((o.high_watermark, o.log_end_offset), (12, 12));
        let b = batch::build(&[(Some(&b"k0"[..]), Some(&b"last"[..]))], 1_000);
        assert_eq!(rebuilt[0].append(&b, 0).unwrap().base_offset, 12);
        rebuilt[0].flush_to(13).await.unwrap();
    }
}
