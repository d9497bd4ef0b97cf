//! `PartitionLog`: one partition's segments, offsets and watermarks.
//!
//! Invariants: offsets are assigned only under the partition's `inner` lock, so batches land in
//! the file in offset order; `log_start_offset <= high_watermark <= log_end_offset`; a reader
//! never sees bytes past the high watermark. Offsets grow from one segment to the next, with
//! gaps allowed (a read in a gap gets the next batch there is).
//!
//! Besides appends, the log changes in two ways: [`PartitionLog::advance_log_start`] (the core
//! of DeleteRecords; checkpointed) and [`PartitionLog::truncate_to`] (cuts the end off, for
//! replication and repairs). Whole segments go by retention; their files are deleted after the
//! lock is released.
//!
//! The log, not its callers, decides what is visible and when to fsync. In durable mode (the
//! default, `PartitionConfig::durable`) the high watermark follows the fsync: every append asks
//! for a group-committed fsync in the background, and only what it made durable becomes
//! visible, so a consumer never reads what a crash can take away (`acks=all` produces wait for
//! the same fsync). Without it (Kafka's behaviour with one replica) the high watermark is the
//! log end offset as soon as the write returns, and fsyncs happen only per the flush policy.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use bytes::Bytes;
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::Notify;
use tracing::{error, info, warn};

use super::batch::{self, BatchHeader};
use super::commit::Committer;
use super::files::FileCache;
use super::leader_epoch::LeaderEpochCache;
use super::producer_state::{AbortedTxn, ControlType, ProducerInfo, ProducerStateTable, SequenceCheck};
use super::segment::{ReadView, Segment};
use super::{AppendError, PartitionConfig, ReadError, TopicPartition};

/// The partition leader epoch gregor writes and reports: one node, never a leader change.
pub const LEADER_EPOCH: i32 = 0;

#[derive(Debug)]
pub struct PartitionLog {
    pub tp: TopicPartition,
    dir: PathBuf,
    /// Held by whatever changes the tail of the log (appends, rolls, truncation) for its whole
    /// course, so that `inner` can be let go while a roll fsyncs and creates files: readers and
    /// offset queries never wait for the disk. Lock order: `checkpoint_lock`, `append_lock`,
    /// `inner`.
    append_lock: Mutex<()>,
    inner: Mutex<Inner>,
    flush_lock: tokio::sync::Mutex<()>,
    /// Serialises the changes that write the log start checkpoint (moving the log start,
    /// truncating), so that checkpoint and memory agree; never held with `inner` while waiting.
    checkpoint_lock: Mutex<()>,
    durable_offset: AtomicI64,
    /// A background fsync has been asked for and has not yet read the log end offset it covers.
    flush_scheduled: AtomicBool,
    /// This log itself, once shared, so an append can hand its fsync to a background task.
    me: OnceLock<Weak<PartitionLog>>,
    waiters: Mutex<Vec<Weak<Notify>>>,
    /// Shared mode: appends are durable once committed here, not once fsynced (see
    /// [`super::commit`]).
    committer: OnceLock<Arc<dyn Committer>>,
}

#[derive(Debug)]
struct Inner {
    /// Sorted by base offset; the last one is the active segment. Never empty.
    segments: Vec<Segment>,
    log_start_offset: i64,
    high_watermark: i64,
    config: PartitionConfig,
    /// A segment file was created since the directory was last fsynced.
    dir_dirty: bool,
    /// Idempotent producers' recent sequences and open transactions, rebuilt at open from the
    /// newest snapshot and the batches after it.
    producers: ProducerStateTable,
    messages_since_flush: u64,
    write_buf: Vec<u8>,
    /// The broker's descriptor budget, which new segments open their files through.
    files: Arc<FileCache>,
    /// Bumped by every truncation: an fsync that began before one says nothing about the
    /// offsets appended after it.
    truncations: u64,
    /// Where each leader epoch starts (`leader-epoch-checkpoint`).
    epochs: LeaderEpochCache,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The append time written into the batches, or -1 for CreateTime topics.
    pub log_append_time: i64,
    pub log_start_offset: i64,
    /// The append is waiting for an fsync before it becomes visible (durable mode) or the flush
    /// policy asked for one (`flush.messages` reached); the log has already scheduled it.
    pub flush_due: bool,
}

#[derive(Debug, Clone)]
pub struct ReadResult {
    pub records: Bytes,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// For read_committed reads: the aborted transactions with records among those returned.
    pub aborted: Vec<AbortedTxn>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offsets {
    pub log_start_offset: i64,
    pub high_watermark: i64,
    /// Where read_committed consumers stop: the first offset of the oldest open transaction,
    /// or the high watermark.
    pub last_stable_offset: i64,
    pub log_end_offset: i64,
}

/// Which records a read may return (Kafka's isolation level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Up to the high watermark.
    ReadUncommitted,
    /// Up to the last stable offset, with the aborted transactions listed.
    ReadCommitted,
}

impl PartitionLog {
    /// Opens (recovering) or creates the partition directory. `mode` says whether the tail
    /// segment's batches are re-checked (after a crash) or trusted (after a clean stop).
    pub fn open(
        dir: &Path,
        tp: TopicPartition,
        config: PartitionConfig,
        now_ms: i64,
        mode: super::RecoveryMode,
        files: &Arc<FileCache>,
    ) -> io::Result<Self> {
        let verify_tail = mode == super::RecoveryMode::VerifyTail;
        std::fs::create_dir_all(dir)?;
        cleaner::remove_leftovers(dir)?;
        let mut bases: Vec<i64> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| super::format::parse_segment_name(e.file_name().to_str()?))
            .collect();
        bases.sort_unstable();
        let mut segments = Vec::with_capacity(bases.len().max(1));
        for (i, &base) in bases.iter().enumerate() {
            let tail = i + 1 == bases.len();
            let (seg, outcome) =
                Segment::open(dir, base, tail && verify_tail, config.index_interval_bytes, now_ms, files)?;
            match outcome.stopped {
                Some(reason) if tail => {
                    warn!(partition = %tp, segment = base, valid_bytes = outcome.valid_len, %reason,
                    "recovery truncated the segment after its last valid batch")
                }
                // Rolled segments were fsynced whole: damage there is not a crash's torn write.
                Some(reason) => error!(partition = %tp, segment = base, valid_bytes = outcome.valid_len, %reason,
                    "a rolled segment is damaged; recovery cut it after its last valid batch and the records after that are lost"),
                None => {}
            }
            segments.push(seg);
        }
        // Offsets only grow from one segment to the next. Gaps are legal (compaction and
        // truncation leave them; a reader goes on to the next batch), an overlap is not: the log
        // ends before the segment that goes back, and it and every later one are deleted.
        if let Some(i) = segments.windows(2).position(|w| w[0].next_offset > w[1].base_offset) {
            let end = segments[i].next_offset;
            for seg in segments.drain(i + 1..) {
                warn!(partition = %tp, segment = seg.base_offset, log_end_offset = end,
                    "recovery found a segment whose offsets go back; deleting it and every later one");
                seg.delete()?;
            }
        }
        for w in segments.windows(2).filter(|w| w[0].next_offset < w[1].base_offset) {
            info!(partition = %tp, from = w[0].next_offset, to = w[1].base_offset, "offsets missing between segments");
        }
        // The log start: the first segment's base, or later if the checkpoint says so. A
        // checkpoint past the end (the tail was lost in a crash, in Kafka's non-durable mode)
        // makes the log start over, empty, at the checkpoint, as Kafka does.
        let first_base = segments.first().map_or(0, |s| s.base_offset);
        let checkpoint = super::checkpoint::read_log_start(dir);
        let mut log_start_offset = checkpoint.map_or(first_base, |c| c.max(first_base));
        let end = segments.last().map_or(0, |s| s.next_offset);
        if log_start_offset > end {
            warn!(partition = %tp, log_start_offset, log_end_offset = end,
                "the checkpointed log start is past the recovered end; the log starts over there, empty");
            for seg in segments.drain(..) {
                seg.delete()?;
            }
        }
        if segments.is_empty() {
            if checkpoint.is_none() {
                log_start_offset = 0;
            }
            segments.push(Segment::create(dir, log_start_offset, now_ms, files)?);
        }
        // Only the newest segment takes appends; the others keep one descriptor, not three.
        let active = segments.len() - 1;
        for seg in &mut segments[..active] {
            seg.seal();
        }
        let mut producers = producer_state_from(dir, &segments, &tp);
        producers.forget_before(log_start_offset);
        let log_end = segments.last().map_or(0, |s| s.next_offset);
        let epochs = open_epochs(dir, &tp, log_start_offset, log_end)?;
        if !bases.is_empty() {
            info!(partition = %tp, segments = segments.len(), log_start_offset, log_end_offset = log_end,
                "recovered partition");
        }
        Ok(Self {
            tp,
            dir: dir.to_owned(),
            inner: Mutex::new(Inner {
                segments,
                log_start_offset,
                high_watermark: log_end,
                config,
                dir_dirty: true,
                producers,
                messages_since_flush: 0,
                write_buf: Vec::new(),
                files: files.clone(),
                truncations: 0,
                epochs,
            }),
            flush_lock: tokio::sync::Mutex::new(()),
            checkpoint_lock: Mutex::new(()),
            append_lock: Mutex::new(()),
            flush_scheduled: AtomicBool::new(false),
            me: OnceLock::new(),
            // What recovery found is on disk already.
            durable_offset: AtomicI64::new(log_end),
            waiters: Mutex::new(Vec::new()),
            committer: OnceLock::new(),
        })
    }

    /// [`open`](Self::open), shared: appends can then hand their fsync to a background task
    /// instead of running it on the caller's thread.
    pub fn open_shared(
        dir: &Path,
        tp: TopicPartition,
        config: PartitionConfig,
        now_ms: i64,
        mode: super::RecoveryMode,
        files: &Arc<FileCache>,
    ) -> io::Result<Arc<Self>> {
        let log = Arc::new(Self::open(dir, tp, config, now_ms, mode, files)?);
        let _ = log.me.set(Arc::downgrade(&log));
        Ok(log)
    }

    /// The high watermark follows the fsync (see the module docs).
    pub fn is_durable(&self) -> bool {
        self.inner.lock().config.durable
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn set_config(&self, mut config: PartitionConfig) {
        // What a commit made durable is what becomes visible, whatever the topic says.
        config.durable |= self.committer.get().is_some();
        self.inner.lock().config = config;
    }

    /// From now on appends count as durable once `committer` committed them (shared mode);
    /// the log is in durable mode for good. Set once.
    pub fn attach_committer(&self, committer: Arc<dyn Committer>) {
        if self.committer.set(committer).is_ok() {
            self.inner.lock().config.durable = true;
        }
    }

    /// The settings in force.
    pub fn config(&self) -> PartitionConfig {
        self.inner.lock().config.clone()
    }

    pub fn offsets(&self) -> Offsets {
        let mut inner = self.inner.lock();
        let hw = inner.high_watermark;
        Offsets {
            log_start_offset: inner.log_start_offset,
            high_watermark: hw,
            last_stable_offset: inner.producers.last_stable_offset(hw),
            log_end_offset: inner.log_end_offset(),
        }
    }

    /// Forgets producers idle for longer than `max_idle_ms` (`producer.id.expiration.ms`).
    pub fn expire_producers(&self, now_ms: i64, max_idle_ms: i64) -> usize {
        self.inner.lock().producers.expire(now_ms, max_idle_ms)
    }

    /// Whether the transaction of `producer_id` in `epoch` has written here and is not yet
    /// closed by a marker.
    pub fn in_transaction(&self, producer_id: i64, epoch: i16) -> bool {
        self.inner.lock().producers.in_transaction(producer_id, epoch)
    }

    /// The producers with state in this partition (DescribeProducers).
    pub fn producers(&self) -> Vec<ProducerInfo> {
        self.inner.lock().producers.producers()
    }

    /// Validates and appends the batches of one produce request for this partition.
    pub fn append(&self, records: &[u8], now_ms: i64) -> Result<AppendInfo, AppendError> {
        // Validation (CRCs, every record, decompression) runs before the lock is taken, so a
        // large or compressed request never holds up the partition's other appends and reads.
        let (max_message_bytes, compact) = {
            let inner = self.inner.lock();
            (inner.config.max_message_bytes, inner.config.compact)
        };
        let batch::Validated { headers, keyless } = batch::validate(records, max_message_bytes, compact)?;
        if headers.iter().any(BatchHeader::is_control) {
            return Err(AppendError::ClientControlBatch);
        }
        if !keyless.is_empty() {
            // The cleaner keeps the latest record per key, so Kafka refuses keyless records on
            // compacted topics, naming them so the client fails only those (KIP-467).
            return Err(AppendError::KeylessRecords { record_indexes: keyless });
        }
        let _writing = self.append_lock.lock();
        let inner = self.inner.lock();
        if headers.iter().any(|h| h.producer_id >= 0) {
            // Sequence checks are per batch and a request is all-or-nothing, so idempotent
            // producers send one batch per partition; Kafka requires the same.
            if headers.len() > 1 {
                return Err(AppendError::MultipleIdempotentBatches);
            }
            if let SequenceCheck::Duplicate { first_offset } = inner.producers.check(&headers[0])? {
                return Ok(AppendInfo {
                    base_offset: first_offset,
                    last_offset: first_offset + i64::from(headers[0].last_offset_delta),
                    log_append_time: -1,
                    log_start_offset: inner.log_start_offset,
                    flush_due: false,
                });
            }
        }
        self.write(inner, records, &headers, None, now_ms)
    }

    /// Appends a transaction marker for `producer_id` (the transaction coordinator's write):
    /// the producer's open transaction in this partition ends, committed or aborted. Refused
    /// when the producer has a newer epoch here than the marker's.
    pub fn append_marker(
        &self,
        producer_id: i64,
        epoch: i16,
        control: ControlType,
        coordinator_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        let records = batch::build_marker(producer_id, epoch, control, coordinator_epoch, now_ms);
        let headers = [BatchHeader::parse(&records).expect("a built batch has a header")];
        let _writing = self.append_lock.lock();
        let inner = self.inner.lock();
        inner.producers.check_marker(producer_id, epoch)?;
        self.write(inner, &records, &headers, Some((control, coordinator_epoch)), now_ms)
    }

    /// Writes checked batches (rolling first when due) and makes them visible or schedules
    /// the fsync that will. The caller holds `append_lock`.
    fn write<'a>(
        &'a self,
        mut inner: MutexGuard<'a, Inner>,
        records: &[u8],
        headers: &[BatchHeader],
        marker: Option<(ControlType, i32)>,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        if inner.needs_roll(records.len() as u64, headers, now_ms) {
            inner = self.roll_unlocked(inner, now_ms)?;
        }
        let info = inner.append(records, headers, marker, now_ms)?;
        let visible_now = !inner.config.durable;
        drop(inner);
        if visible_now {
            self.wake_readers();
        }
        if info.flush_due {
            self.schedule_flush();
        }
        Ok(info)
    }

    /// Asks for an fsync of everything appended so far, in the background. Appends that arrive
    /// before the flusher has read the log end offset ride along with it (group commit).
    fn schedule_flush(&self) {
        if self.flush_scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let shared = self.me.get().and_then(Weak::upgrade);
        match (shared, tokio::runtime::Handle::try_current()) {
            (Some(log), Ok(runtime)) => {
                runtime.spawn(async move {
                    // Cleared before the end is read: a later append schedules the next fsync.
                    log.flush_scheduled.store(false, Ordering::Release);
                    let end = log.offsets().log_end_offset;
                    if let Err(e) = log.flush_to(end).await {
                        error!(partition = %log.tp, error = %e, "fsync failed; the appended data stays invisible");
                    }
                });
            }
            // Outside the runtime (start-up work, tests of an unshared log): fsync right here.
            _ => {
                self.flush_scheduled.store(false, Ordering::Release);
                if let Err(e) = self.flush_blocking() {
                    error!(partition = %self.tp, error = %e, "fsync failed; the appended data stays invisible");
                }
            }
        }
    }

    /// Everything up to `end` is durable now: in durable mode that makes it visible. `epoch` is
    /// the truncation count when the fsync began; after a truncation it proves nothing.
    fn made_durable(&self, end: i64, epoch: u64) {
        let moved = {
            let mut inner = self.inner.lock();
            if inner.truncations != epoch {
                return;
            }
            self.durable_offset.fetch_max(end, Ordering::AcqRel);
            let hw = end.min(inner.log_end_offset());
            if inner.config.durable && hw > inner.high_watermark {
                inner.high_watermark = hw;
                // Transactions whose markers are now visible stop holding the LSO back.
                inner.producers.last_stable_offset(hw);
                true
            } else {
                false
            }
        };
        if moved {
            self.wake_readers();
        }
    }

    /// Returns once everything up to `offset` (exclusive) is fsynced. Concurrent callers share
    /// one fsync: whoever holds the flush lock syncs everything appended so far.
    pub async fn flush_to(&self, offset: i64) -> io::Result<()> {
        if self.durable_offset.load(Ordering::Acquire) >= offset {
            return Ok(());
        }
        let _guard = self.flush_lock.lock().await;
        if self.durable_offset.load(Ordering::Acquire) >= offset {
            return Ok(());
        }
        if let Some(committer) = self.committer.get() {
            return self.commit_appended(committer.as_ref()).await;
        }
        // Rolled segments were fsynced when they were rolled, so the active file is all there is.
        let (file, end, epoch, dir) = {
            let mut inner = self.inner.lock();
            let dir = std::mem::take(&mut inner.dir_dirty).then(|| self.dir.clone());
            inner.messages_since_flush = 0;
            (inner.active().log_file(), inner.log_end_offset(), inner.truncations, dir)
        };
        let result = tokio::task::spawn_blocking(move || -> io::Result<()> {
            let started = std::time::Instant::now();
            file.get()?.sync_data()?;
            super::observe_fsync(started);
            if let Some(dir) = dir {
                File::open(dir)?.sync_all()?;
            }
            Ok(())
        })
        .await
        .map_err(io::Error::other)?;
        self.flushed(end, epoch, result)
    }

    /// Waits for the fsync or commit under way and keeps the next from starting while the
    /// guard lives (shared mode's rebuild of the log).
    pub async fn hold_flushes(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.flush_lock.lock().await
    }

    /// Shared mode's "fsync": hands everything appended since the last commit to the
    /// committer, a segment's worth (at most 8 MiB) at a time, and makes each part durable and
    /// visible once committed. The caller holds the flush lock.
    async fn commit_appended(&self, committer: &dyn Committer) -> io::Result<()> {
        const MAX_COMMIT_BYTES: usize = 8 << 20;
        loop {
            let from = self.durable_offset.load(Ordering::Acquire);
            let (end, epoch) = {
                let inner = self.inner.lock();
                (inner.log_end_offset(), inner.truncations)
            };
            if from >= end {
                return Ok(());
            }
            let batches = self.read_uncommitted(from, end, MAX_COMMIT_BYTES).map_err(io::Error::other)?;
            let Some(next) = batch::next_offset_after(&batches) else {
                return Err(io::Error::other(format!("no batch to commit at offset {from} (log end {end})")));
            };
            committer.commit(&self.tp, batches).await?;
            self.made_durable(next, epoch);
            if self.durable_offset.load(Ordering::Acquire) < next {
                return Err(io::Error::other("the log was truncated while its batches were committed"));
            }
        }
    }

    /// Whole batches from `from` (where a batch starts) up to `end`, at most about `max_bytes`
    /// (at least one batch), from the segment holding `from` only: what the high watermark
    /// hides included.
    fn read_uncommitted(&self, from: i64, end: i64, max_bytes: usize) -> Result<Bytes, ReadError> {
        let view = {
            let inner = self.inner.lock();
            let idx = inner.segments.partition_point(|s| s.base_offset <= from).saturating_sub(1);
            inner.segments[idx].read_view(from)
        };
        match self.locate(&view, from)? {
            Some((pos, _)) => Ok(view.read_batches(pos, max_bytes, end, true)?),
            None => Ok(Bytes::new()),
        }
    }

    /// Appends batches committed by an earlier leader of the partition (shared mode's rebuild
    /// of a log from the store), keeping their offsets, timestamps and producer state: each
    /// starts at the log end or, where compaction removed whole batches, past it (the log end
    /// then skips the gap, as a cleaned segment's offsets do). They count as durable and become
    /// visible at once; nothing is handed to the committer.
    pub fn append_committed(&self, batches: &[u8], now_ms: i64) -> Result<i64, AppendError> {
        let _writing = self.append_lock.lock();
        let mut inner = self.inner.lock();
        let mut rest = batches;
        while !rest.is_empty() {
            let h = BatchHeader::parse(rest)
                .filter(|h| h.total_len() <= rest.len())
                .ok_or_else(|| AppendError::Io(io::Error::other("a committed batch is cut short")))?;
            let one = &rest[..h.total_len()];
            let active = inner.active();
            let far = active.is_empty() && h.last_offset() - active.base_offset > i64::from(u32::MAX);
            if h.base_offset < active.next_offset || far {
                return Err(AppendError::Io(io::Error::other(format!(
                    "a committed batch at offset {} where the log ends at {} (its segment starts at {})",
                    h.base_offset, active.next_offset, active.base_offset
                ))));
            }
            let marker = if h.is_control() { batch::read_marker(one) } else { None };
            // A gap left by compaction: the log end moves to the batch (a segment rolled now
            // starts there).
            inner.active_mut().next_offset = h.base_offset;
            if inner.needs_roll(one.len() as u64, &[h], now_ms) {
                inner = self.roll_unlocked(inner, now_ms)?;
            }
            let append_time = std::mem::replace(&mut inner.config.log_append_time, false);
            let written = inner.append(one, &[h], marker, now_ms);
            inner.config.log_append_time = append_time;
            written?;
            rest = &rest[h.total_len()..];
        }
        let (end, epoch) = (inner.log_end_offset(), inner.truncations);
        drop(inner);
        self.made_durable(end, epoch);
        Ok(end)
    }

    /// The outcome of an fsync covering everything up to `end`: durable (and, in durable mode,
    /// visible), or failed, in which case the directory must be synced again next time too.
    fn flushed(&self, end: i64, epoch: u64, result: io::Result<()>) -> io::Result<()> {
        match result {
            Ok(()) => {
                self.made_durable(end, epoch);
                Ok(())
            }
            Err(e) => {
                self.inner.lock().dir_dirty = true;
                Err(e)
            }
        }
    }

    /// `flush_to` for callers outside the async runtime (start-up work): syncs the active
    /// segment and the directory on this thread. In shared mode durable means committed to
    /// the store, which is the runtime's work: this thread waits for it.
    pub fn flush_blocking(&self) -> io::Result<()> {
        if self.committer.get().is_some() {
            return self.commit_blocking();
        }
        let (file, end, epoch) = {
            let mut inner = self.inner.lock();
            inner.dir_dirty = false;
            (inner.active().log_file(), inner.log_end_offset(), inner.truncations)
        };
        let started = std::time::Instant::now();
        let synced = super::failpoint::step()
            .and_then(|()| file.get()?.sync_data())
            .inspect(|()| super::observe_fsync(started))
            .and_then(|()| File::open(&self.dir)?.sync_all());
        self.flushed(end, epoch, synced)
    }

    /// Shared mode's `flush_blocking`: the commit of everything appended so far runs on the
    /// runtime and this thread waits for its outcome.
    fn commit_blocking(&self) -> io::Result<()> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| io::Error::other("a shared-mode commit needs the async runtime"))?;
        let Some(me) = self.me.get().and_then(Weak::upgrade) else {
            return Err(io::Error::other("the partition is closing"));
        };
        let end = self.offsets().log_end_offset;
        crate::blocking::wait_on(&runtime, async move { me.flush_to(end).await })
            .unwrap_or_else(|| Err(io::Error::other("the commit was dropped")))
    }

    pub fn durable_offset(&self) -> i64 {
        self.durable_offset.load(Ordering::Acquire)
    }

    /// Registers a long-polling reader to be woken by the next append.
    pub fn register_waiter(&self, notify: &Arc<Notify>) {
        let mut waiters = self.waiters.lock();
        if waiters.len() >= 64 {
            waiters.retain(|w| w.strong_count() > 0);
        }
        waiters.push(Arc::downgrade(notify));
    }

    fn wake_readers(&self) {
        let waiters = std::mem::take(&mut *self.waiters.lock());
        for w in waiters {
            if let Some(n) = w.upgrade() {
                n.notify_one();
            }
        }
    }

    /// Reads whole batches from `offset` up to about `max_bytes` (at least one batch when
    /// `min_one`), never past the high watermark.
    pub fn read(&self, offset: i64, max_bytes: usize, min_one: bool) -> Result<ReadResult, ReadError> {
        self.read_isolated(offset, max_bytes, min_one, Isolation::ReadUncommitted)
    }

    /// [`read`](Self::read) at an isolation level: read_committed reads stop at the last
    /// stable offset and come with the aborted transactions among the records returned.
    pub fn read_isolated(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        isolation: Isolation,
    ) -> Result<ReadResult, ReadError> {
        match self.read_once(offset, max_bytes, min_one, isolation) {
            // Retention or a truncation removed the segment between the lookup and the read,
            // and its file had to be opened again: look again (the offset is now out of range
            // or in another segment).
            Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {
                self.read_once(offset, max_bytes, min_one, isolation)
            }
            other => other,
        }
    }

    fn read_once(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        isolation: Isolation,
    ) -> Result<ReadResult, ReadError> {
        let (views, mut result) = {
            let mut inner = self.inner.lock();
            let (hw, start) = (inner.high_watermark, inner.log_start_offset);
            if offset < start || offset > hw {
                return Err(ReadError::OffsetOutOfRange {
                    requested: offset,
                    log_start_offset: start,
                    high_watermark: hw,
                });
            }
            let lso = inner.producers.last_stable_offset(hw);
            let bound = match isolation {
                Isolation::ReadUncommitted => hw,
                Isolation::ReadCommitted => lso,
            };
            let aborted = match isolation {
                Isolation::ReadCommitted if offset < bound => inner.producers.aborted_between(offset, bound),
                _ => Vec::new(),
            };
            let mut result = ReadResult {
                records: Bytes::new(),
                high_watermark: hw,
                last_stable_offset: lso,
                log_start_offset: start,
                aborted,
            };
            if offset >= bound {
                return Ok(result);
            }
            if let Some(committer) = self.committer.get().filter(|_| offset < inner.local_start()) {
                // Before the local segments: read back from the committed copy, up to where
                // they begin (the next read goes on from there).
                let (committer, before) = (committer.clone(), bound.min(inner.local_start()));
                drop(inner);
                let records = committer.read_stored(&self.tp, offset, before, max_bytes, min_one)?;
                let end = batch::next_offset_after(&records).unwrap_or(offset);
                result.aborted.retain(|a| a.first_offset < end);
                return Ok(ReadResult { records, ..result });
            }
            let idx = inner.segments.partition_point(|s| s.base_offset <= offset).saturating_sub(1);
            let views: Vec<ReadView> = inner.segments[idx..].iter().map(|s| s.read_view(offset)).collect();
            (views, result)
        };
        let bound = match isolation {
            Isolation::ReadUncommitted => result.high_watermark,
            Isolation::ReadCommitted => result.last_stable_offset,
        };
        let records = (|| {
            for (i, view) in views.iter().enumerate() {
                let view = if i == 0 { view.clone() } else { ReadView { start_position: 0, ..view.clone() } };
                if let Some((pos, _)) = self.locate(&view, offset)? {
                    return Ok(view.read_batches(pos, max_bytes, bound, min_one)?);
                }
            }
            Ok(Bytes::new())
        })();
        let result = records.map(|records| {
            // Only the aborted transactions with records among those returned are reported.
            let end = batch::next_offset_after(&records).unwrap_or(offset);
            result.aborted.retain(|a| a.first_offset < end);
            result.records = records;
            result
        });
        if let Err(e @ ReadError::Corrupt { .. }) = &result {
            if let Some(suppressed) = crate::ratelimit::WARNINGS.check("corrupt segment", std::time::Instant::now()) {
                error!(partition = %self.tp, offset, suppressed, error = %e, "a read found a corrupt segment");
            }
        }
        result
    }

    /// `position_of`, distrusting the offset index: when the scan from the indexed position
    /// finds corruption or lands past `offset`, the index entry may be what is wrong, so the
    /// segment is scanned again from its first byte; only that scan's answer counts.
    fn locate(&self, view: &ReadView, offset: i64) -> Result<Option<(u64, BatchHeader)>, ReadError> {
        let found = view.position_of(offset);
        let suspicious = match &found {
            Err(ReadError::Corrupt { .. }) => true,
            Ok(Some((_, h))) => h.base_offset > offset,
            _ => false,
        };
        if !suspicious || view.start_position == 0 {
            return found;
        }
        let rescanned = ReadView { start_position: 0, ..view.clone() }.position_of(offset);
        if rescanned.as_ref().ok() != found.as_ref().ok() {
            warn!(partition = %self.tp, offset, segment = view.base_offset,
                "the offset index pointed to the wrong place; found the batch by scanning the segment");
        }
        rescanned
    }

    /// The first offset whose record timestamp is >= `target`, with that timestamp.
    pub fn offset_for_timestamp(&self, target: i64) -> Result<Option<(i64, i64)>, ReadError> {
        let stored = {
            let inner = self.inner.lock();
            let stored = self.committer.get().filter(|_| inner.log_start_offset < inner.local_start());
            stored.map(|c| (c.clone(), inner.log_start_offset, inner.local_start()))
        };
        // The part only the committed copy holds comes first.
        if let Some((committer, from, before)) = stored {
            if let Some(found) = committer.offset_for_timestamp_stored(&self.tp, target, from, before)? {
                return Ok(Some(found));
            }
        }
        let (views, hw) = {
            let inner = self.inner.lock();
            let views: Vec<ReadView> =
                inner.segments.iter().filter(|s| s.max_timestamp >= target).map(|s| s.time_view(target)).collect();
            (views, inner.high_watermark)
        };
        for view in views {
            if let Some((pos, h)) = view.position_of_timestamp(target)? {
                if h.base_offset >= hw {
                    break;
                }
                let bytes = view.read_one(pos, &h)?;
                return Ok(Some(
                    batch::find_record_by_timestamp(&bytes, Some(target)).unwrap_or((h.base_offset, h.max_timestamp)),
                ));
            }
        }
        Ok(None)
    }

    /// The offset and timestamp of the record with the largest timestamp (ListOffsets -3);
    /// on a tie the earlier, so the part only the committed copy holds wins one.
    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>, ReadError> {
        let stored = {
            let inner = self.inner.lock();
            let stored = self.committer.get().filter(|_| inner.log_start_offset < inner.local_start());
            stored.map(|c| (c.clone(), inner.log_start_offset, inner.local_start()))
        };
        let stored = match stored {
            Some((committer, from, before)) => committer.max_timestamp_stored(&self.tp, from, before)?,
            None => None,
        };
        let local = self.max_timestamp_local()?;
        Ok(match (stored, local) {
            (Some(s), Some(l)) if l.1 > s.1 => Some(l),
            (Some(s), _) => Some(s),
            (None, local) => local,
        })
    }

    fn max_timestamp_local(&self) -> Result<Option<(i64, i64)>, ReadError> {
        let found = {
            let inner = self.inner.lock();
            let mut best: Option<&Segment> = None;
            for s in &inner.segments {
                if s.max_timestamp >= 0 && best.is_none_or(|b| s.max_timestamp > b.max_timestamp) {
                    best = Some(s);
                }
            }
            best.map(|s| (s.read_view(s.base_offset), s.max_timestamp_position, s.max_timestamp))
        };
        let Some((view, pos, ts)) = found else {
            return Ok(None);
        };
        let view = ReadView { start_position: pos, ..view };
        let Some((pos, h)) = view.position_of_timestamp(ts)? else {
            return Ok(None);
        };
        let bytes = view.read_one(pos, &h)?;
        Ok(Some(batch::find_record_by_timestamp(&bytes, None).unwrap_or((h.last_offset(), h.max_timestamp))))
    }

    /// Starts a new segment now (if the active one has data), so that later appends can
    /// outlive the segments before them.
    pub fn roll(&self, now_ms: i64) -> io::Result<()> {
        let _writing = self.append_lock.lock();
        self.roll_unlocked(self.inner.lock(), now_ms).map(drop)
    }

    /// Rolls (if the active segment has data): the finished segment is fsynced whole before the
    /// next one exists, since only the tail segment is verified at recovery, so an older segment
    /// must never be missing its last batches while a newer one survives. The fsync and the new
    /// files happen with `inner` let go; the caller holds `append_lock`, so nothing is appended
    /// meanwhile. On failure nothing changed.
    fn roll_unlocked<'a>(&'a self, mut inner: MutexGuard<'a, Inner>, now_ms: i64) -> io::Result<MutexGuard<'a, Inner>> {
        if inner.active().is_empty() {
            return Ok(inner);
        }
        let next = inner.log_end_offset();
        let finished = inner.active().files();
        let finished_base = inner.active().base_offset;
        let files = inner.files.clone();
        // The finished segment's aborted transactions go to its `.txnindex`, and the producer
        // state as of `next` to a snapshot, so that opening the log replays one segment only.
        let aborted = inner.producers.aborted_in(finished_base, next);
        let snapshot = inner.producers.clone();
        let stale_snapshot = inner.segments.len().checked_sub(2).map(|i| inner.segments[i].base_offset);
        let created = MutexGuard::unlocked(&mut inner, || -> io::Result<Segment> {
            super::failpoint::step()?;
            finished.log.get()?.sync_data()?;
            finished.sync_indexes()?;
            super::checkpoint::write_txn_index(&self.dir, finished_base, &aborted)?;
            super::checkpoint::write_producer_snapshot(&self.dir, next, &snapshot)?;
            Segment::create(&self.dir, next, now_ms, &files)
        })?;
        if let Some(base) = stale_snapshot {
            let path = super::format::segment_file(&self.dir, base, super::format::PRODUCER_SNAPSHOT_SUFFIX);
            let _ = std::fs::remove_file(path);
        }
        inner.segments.push(created);
        inner.dir_dirty = true;
        let finished = inner.segments.len() - 2;
        inner.segments[finished].seal();
        Ok(inner)
    }

    /// Bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.inner.lock().segments.iter().map(|s| s.size).sum()
    }

    /// Deletes every whole segment that ends at or before `offset` (never the active one) and
    /// moves the log start offset to the first remaining segment.
    pub fn delete_segments_before(&self, offset: i64) -> io::Result<usize> {
        let removed = {
            let mut inner = self.inner.lock();
            let n = inner.segments[..inner.segments.len() - 1].iter().take_while(|s| s.next_offset <= offset).count();
            let removed: Vec<Segment> = inner.segments.drain(..n).collect();
            inner.log_start_offset = inner.log_start_offset.max(inner.segments[0].base_offset);
            let start = inner.log_start_offset;
            inner.producers.forget_before(start);
            removed
        };
        self.epochs_follow_log_start();
        delete_segments(removed)
    }

    /// Deletes whole segments past retention. Returns how many were deleted. A log whose
    /// oldest part is held only by its committed copy ([`Self::has_stored_head`]) is left
    /// alone: its retention is worked out on the copy, and applied by moving the log start.
    pub fn apply_retention(&self, now_ms: i64) -> io::Result<usize> {
        if self.has_stored_head() {
            return Ok(0);
        }
        let removed = self.expire_segments(now_ms)?;
        if !removed.is_empty() {
            self.epochs_follow_log_start();
        }
        for seg in &removed {
            info!(partition = %self.tp, segment = seg.base_offset, "deleting segment past retention");
        }
        delete_segments(removed)
    }

    /// Shared mode: whether a committer keeps a copy of the committed log (everything below
    /// the high watermark) elsewhere.
    pub fn has_committed_copy(&self) -> bool {
        self.committer.get().is_some()
    }

    /// Shared mode: whether the oldest records of the log (from the log start) are held only
    /// by its committed copy, the local segments having been let go of ([`Self::trim_local`]).
    pub fn has_stored_head(&self) -> bool {
        let inner = self.inner.lock();
        self.committer.get().is_some() && inner.log_start_offset < inner.local_start()
    }

    /// The first offset the local segments hold (the log start, unless the log has a stored
    /// head).
    pub fn local_start_offset(&self) -> i64 {
        self.inner.lock().local_start()
    }

    /// Shared mode (a log with a committer): lets go of the oldest local segments while those
    /// after them hold at least `local_retention_bytes`; they are read back from the committed
    /// copy. Only segments wholly below the high watermark (committed) go, never the active
    /// one, and none of a compacted log or when the setting is -1. The log start, the epochs
    /// and the producers' state (with its aborted transactions, which read_committed reads of
    /// the stored head list) are left as they are. Returns how many segments went.
    pub fn trim_local(&self) -> io::Result<usize> {
        if self.committer.get().is_none() {
            return Ok(0);
        }
        let removed = {
            let _writing = self.append_lock.lock();
            let mut inner = self.inner.lock();
            let keep = inner.config.local_retention_bytes;
            if keep < 0 || inner.config.compact {
                return Ok(0);
            }
            let hw = inner.high_watermark;
            let mut total: i64 = inner.segments.iter().map(|s| s.size as i64).sum();
            let mut n = 0;
            for first in &inner.segments[..inner.segments.len() - 1] {
                if first.next_offset > hw || total - (first.size as i64) < keep {
                    break;
                }
                total -= first.size as i64;
                n += 1;
            }
            inner.segments.drain(..n).collect::<Vec<_>>()
        };
        if !removed.is_empty() {
            info!(partition = %self.tp, segments = removed.len(), local_start = self.local_start_offset(),
                "local segments let go of; their batches are read from the object store");
        }
        delete_segments(removed)
    }

    /// Takes the segments past retention out of the log (their files are deleted by the
    /// caller, after the lock is released).
    fn expire_segments(&self, now_ms: i64) -> io::Result<Vec<Segment>> {
        let _writing = self.append_lock.lock();
        let mut inner = self.inner.lock();
        let cfg = inner.config.clone();
        let expired = |s: &Segment| {
            let ts = if s.max_timestamp >= 0 { s.max_timestamp } else { s.created_ms };
            cfg.retention_ms >= 0 && !s.is_empty() && now_ms - ts > cfg.retention_ms
        };
        // An expired active segment is rolled first so that it can go too (Kafka does the same).
        if inner.segments.last().is_some_and(expired) {
            inner = self.roll_unlocked(inner, now_ms)?;
        }
        let mut total: i64 = inner.segments.iter().map(|s| s.size as i64).sum();
        let mut n = 0;
        for first in &inner.segments[..inner.segments.len() - 1] {
            let over_size = cfg.retention_bytes >= 0 && total - first.size as i64 >= cfg.retention_bytes;
            if !(expired(first) || over_size) {
                break;
            }
            total -= first.size as i64;
            n += 1;
        }
        let removed: Vec<Segment> = inner.segments.drain(..n).collect();
        inner.log_start_offset = inner.log_start_offset.max(inner.segments[0].base_offset);
        let start = inner.log_start_offset;
        inner.producers.forget_before(start);
        Ok(removed)
    }

    /// Moves the log start offset forward to `offset` (DeleteRecords): records before it are
    /// no longer readable, and whole segments before it are deleted. The new start is
    /// checkpointed durably before anything changes in memory. Returns the log start offset.
    pub fn advance_log_start(&self, offset: i64) -> Result<i64, ReadError> {
        let _checkpoint = self.checkpoint_lock.lock();
        {
            let inner = self.inner.lock();
            if offset > inner.high_watermark || offset < 0 {
                return Err(ReadError::OffsetOutOfRange {
                    requested: offset,
                    log_start_offset: inner.log_start_offset,
                    high_watermark: inner.high_watermark,
                });
            }
            if offset <= inner.log_start_offset {
                return Ok(inner.log_start_offset);
            }
        }
        super::checkpoint::write_log_start(&self.dir, offset)?;
        let (removed, epochs) = {
            let mut inner = self.inner.lock();
            inner.log_start_offset = offset;
            inner.producers.forget_before(offset);
            let n = inner.segments[..inner.segments.len() - 1].iter().take_while(|s| s.next_offset <= offset).count();
            let epochs = inner.epochs.truncate_from_start(offset).then(|| inner.epochs.clone());
            (inner.segments.drain(..n).collect::<Vec<_>>(), epochs)
        };
        self.save_epochs(epochs);
        delete_segments(removed)?;
        Ok(offset)
    }

    /// Where leader epoch `epoch` ends: the epoch itself (or the largest earlier one this log
    /// has) and the first offset after it, UNDEFINED (-1, -1) for an epoch this log does not
    /// know (see [`LeaderEpochCache::end_offset_for`]).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        let inner = self.inner.lock();
        inner.epochs.end_offset_for(epoch, inner.log_end_offset())
    }

    /// The leader epoch that wrote `offset`, if known.
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        self.inner.lock().epochs.epoch_for_offset(offset)
    }

    /// The leader epoch table's entries, oldest first: (epoch, start offset).
    pub fn leader_epochs(&self) -> Vec<(i32, i64)> {
        self.inner.lock().epochs.entries().iter().map(|e| (e.epoch, e.start_offset)).collect()
    }

    /// The log start moved (retention, segment deletion): the epoch table drops what is before
    /// it, and its checkpoint is rewritten.
    fn epochs_follow_log_start(&self) {
        let _checkpoint = self.checkpoint_lock.lock();
        let epochs = {
            let mut inner = self.inner.lock();
            let start = inner.log_start_offset;
            inner.epochs.truncate_from_start(start).then(|| inner.epochs.clone())
        };
        self.save_epochs(epochs);
    }

    /// Writes a changed epoch table (the caller holds `checkpoint_lock`). Best effort: a stale
    /// checkpoint still has every epoch, and is clamped to the log's bounds at the next open.
    fn save_epochs(&self, epochs: Option<LeaderEpochCache>) {
        if let Err(e) = epochs.map_or(Ok(()), |epochs| epochs.write(&self.dir)) {
            warn!(partition = %self.tp, error = %e, "cannot rewrite the leader epoch checkpoint; it is corrected at the next start");
        }
    }

    /// Removes every batch whose last offset is >= `offset` (a batch holding `offset` goes
    /// whole) and returns the new log end offset, at or below `offset`. The high watermark and
    /// durable offset follow it down, idempotent producer state is rebuilt from what is left,
    /// and when nothing is left below the log start the log start comes down to the end (as in
    /// Kafka, where truncating below the first segment starts the log over at the offset). The
    /// truncation is fsynced before this returns.
    pub fn truncate_to(&self, offset: i64, now_ms: i64) -> Result<i64, ReadError> {
        if offset < 0 {
            return Err(ReadError::Io(io::Error::new(io::ErrorKind::InvalidInput, "truncation to a negative offset")));
        }
        let _checkpoint = self.checkpoint_lock.lock();
        let _writing = self.append_lock.lock();
        let (end, log_start_moved, epochs) = {
            let mut inner = self.inner.lock();
            if offset >= inner.log_end_offset() {
                return Ok(inner.log_end_offset());
            }
            let end = inner.truncate_to(&self.dir, offset, now_ms)?;
            inner.producers = producer_state_from(&self.dir, &inner.segments, &self.tp);
            inner.high_watermark = inner.high_watermark.min(end);
            self.durable_offset.fetch_min(end, Ordering::AcqRel);
            inner.truncations += 1;
            inner.dir_dirty = true;
            let moved = end < inner.log_start_offset;
            inner.log_start_offset = inner.log_start_offset.min(end);
            let mut changed = inner.epochs.truncate_from_end(end);
            // Appends go on in the current epoch, from the new end if the cut took its entry.
            changed |=
                inner.epochs.latest().is_none_or(|l| l.epoch != LEADER_EPOCH) && inner.epochs.assign(LEADER_EPOCH, end);
            (end, moved, changed.then(|| inner.epochs.clone()))
        };
        if log_start_moved {
            super::checkpoint::write_log_start(&self.dir, end)?;
        }
        if let Some(epochs) = epochs {
            epochs.write(&self.dir)?;
        }
        self.flush_blocking()?;
        Ok(end)
    }
}

impl PartitionLog {
    /// Empties the log and starts it over at `offset`, at or past its end (Kafka's
    /// `truncateFullyAndStartAt`): shared mode's new leader whose copy ends before the
    /// committed log's start. Log start, high watermark and durable offset all become
    /// `offset`; producer state starts empty. The new start is checkpointed and the directory
    /// synced before this returns.
    pub fn restart_at(&self, offset: i64, now_ms: i64) -> Result<(), ReadError> {
        self.start_over(offset, offset, ProducerStateTable::default(), now_ms)
    }

    /// Shared mode's new leader copying only the newest part of the committed log: empties
    /// the log and starts its local segments over at `local_start`, at or past its end, with
    /// the log start at `log_start` before it. What lies between is read from the committer
    /// ([`Self::has_stored_head`]); `producers` is the producers' state that part leaves (with
    /// its aborted transactions, which read_committed reads of it list). High watermark and
    /// durable offset become `local_start`.
    pub fn restart_with_stored_head(
        &self,
        log_start: i64,
        local_start: i64,
        mut producers: ProducerStateTable,
        now_ms: i64,
    ) -> Result<(), ReadError> {
        if log_start > local_start {
            return Err(ReadError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a log cannot start at {log_start}, after its local segments ({local_start})"),
            )));
        }
        producers.forget_before(log_start);
        self.start_over(log_start, local_start, producers, now_ms)
    }

    fn start_over(
        &self,
        log_start: i64,
        offset: i64,
        producers: ProducerStateTable,
        now_ms: i64,
    ) -> Result<(), ReadError> {
        let _checkpoint = self.checkpoint_lock.lock();
        let _writing = self.append_lock.lock();
        let (old, epochs) = {
            let mut inner = self.inner.lock();
            let end = inner.log_end_offset();
            if offset < end {
                return Err(ReadError::Io(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("a log ending at {end} cannot start over at {offset}: truncate it instead"),
                )));
            }
            // Every segment starts at or before the end: only an empty active segment can
            // already be where the log starts over, and then it stays.
            let fresh = match inner.active().base_offset == offset {
                true => None,
                false => Some(Segment::create(&self.dir, offset, now_ms, &inner.files)?),
            };
            let mut old = std::mem::take(&mut inner.segments);
            let active = match fresh {
                Some(fresh) => fresh,
                None => old.pop().expect("a partition always has an active segment"),
            };
            inner.segments.push(active);
            inner.log_start_offset = log_start;
            inner.high_watermark = offset;
            inner.producers = producers;
            inner.truncations += 1;
            inner.dir_dirty = true;
            self.durable_offset.store(offset, Ordering::Release);
            let mut changed = inner.epochs.truncate_from_start(log_start);
            changed |= inner.epochs.latest().is_none() && inner.epochs.assign(LEADER_EPOCH, log_start);
            (old, changed.then(|| inner.epochs.clone()))
        };
        super::checkpoint::write_log_start(&self.dir, log_start)?;
        if let Some(epochs) = epochs {
            epochs.write(&self.dir)?;
        }
        delete_segments(old)?;
        self.flush_blocking()?;
        Ok(())
    }
}

/// Rebuilds the producer state: from the snapshot taken when the active segment (or the one
/// before it) was rolled to, plus the batches after it; rolled segments before those bring
/// their aborted transactions from their `.txnindex`. Without a snapshot (a log written before
/// snapshots existed) the newest two segments are replayed: idempotent producers retry only
/// their last few in-flight batches, so those hold every batch a retry can duplicate, but a
/// transaction opened before them is not seen.
fn producer_state_from(dir: &Path, segments: &[Segment], tp: &TopicPartition) -> ProducerStateTable {
    let tail = segments.len() - 1;
    let (mut producers, replay_from) = match super::checkpoint::read_producer_snapshot(dir, segments[tail].base_offset)
    {
        Some(t) => (t, tail),
        None => match tail
            .checked_sub(1)
            .and_then(|i| super::checkpoint::read_producer_snapshot(dir, segments[i].base_offset))
        {
            Some(t) => (t, tail - 1),
            None => (ProducerStateTable::default(), tail.saturating_sub(1)),
        },
    };
    for seg in &segments[replay_from..] {
        // A corrupt older segment must not keep the broker from starting: its readers get the
        // error; here only duplicate detection for a retry into it is lost.
        let view = seg.read_view(seg.base_offset);
        let replayed = view.for_each_header_at(|pos, h| {
            if !h.is_control() {
                producers.record(h);
                return;
            }
            match view.read_one(pos, h).ok().as_deref().and_then(batch::read_marker) {
                Some((control, coordinator_epoch)) => producers.record_marker(h, control, coordinator_epoch),
                None => {
                    error!(partition = %tp, offset = h.base_offset, "cannot read a transaction marker; it is ignored")
                }
            }
        });
        if let Err(e) = replayed {
            error!(partition = %tp, error = %e, "cannot rebuild producer state from this segment");
        }
    }
    let mut older = Vec::new();
    for seg in &segments[..replay_from] {
        match super::checkpoint::read_txn_index(dir, seg.base_offset) {
            Ok(mut a) => older.append(&mut a),
            Err(e) => error!(partition = %tp, segment = seg.base_offset, error = %e,
                "cannot read the aborted transaction index; read_committed consumers may see aborted records of it"),
        }
    }
    producers.add_aborted(older);
    producers
}

/// The leader epoch table at open: the checkpoint, clamped to the recovered log (a crash may
/// have lost its tail; the log start may have moved after the last rewrite), with the current
/// epoch added when missing. A log without a checkpoint was written by an earlier gregor,
/// which wrote every batch in [`LEADER_EPOCH`], so the epoch starts at the log start.
fn open_epochs(dir: &Path, tp: &TopicPartition, log_start: i64, log_end: i64) -> io::Result<LeaderEpochCache> {
    let mut epochs = LeaderEpochCache::read(dir);
    // An entry at the log end itself is an epoch that has not written yet: it stays.
    let mut changed = epochs.truncate_from_end(log_end + 1);
    changed |= epochs.truncate_from_start(log_start);
    if epochs.latest().is_none_or(|l| l.epoch < LEADER_EPOCH) {
        changed |= epochs.assign(LEADER_EPOCH, if epochs.entries().is_empty() { log_start } else { log_end });
    }
    if changed {
        epochs.write(dir).inspect_err(|e| {
            error!(partition = %tp, error = %e, "cannot write the leader epoch checkpoint");
        })?;
    }
    Ok(epochs)
}

/// Deletes the files of segments already taken out of a log. Returns how many there were.
fn delete_segments(removed: Vec<Segment>) -> io::Result<usize> {
    let n = removed.len();
    for seg in removed {
        seg.delete()?;
    }
    Ok(n)
}

impl Inner {
    /// The first offset the local segments hold: the log start, or where the first segment
    /// begins when the oldest ones were let go of ([`PartitionLog::trim_local`]).
    fn local_start(&self) -> i64 {
        self.log_start_offset.max(self.segments[0].base_offset)
    }

    /// Cuts the log at `offset` (see [`PartitionLog::truncate_to`]): later segments go, the one
    /// holding `offset` is cut and becomes the active one. Segment files are deleted here,
    /// under the lock, because a segment created right after could take the same name.
    fn truncate_to(&mut self, dir: &Path, offset: i64, now_ms: i64) -> Result<i64, ReadError> {
        // The segments that keep something, and the first segment when it starts at `offset`
        // (it is cut to nothing, rather than replaced by a new file of the same name).
        let keep = self
            .segments
            .partition_point(|s| s.base_offset < offset)
            .max(usize::from(self.segments[0].base_offset == offset));
        if keep == 0 {
            // Below the first segment: everything goes, and the log starts over at `offset`.
            let fresh = Segment::create(dir, offset, now_ms, &self.files)?;
            for seg in std::mem::replace(&mut self.segments, vec![fresh]) {
                seg.delete()?;
            }
            return Ok(offset);
        }
        for seg in self.segments.drain(keep..).rev().collect::<Vec<_>>() {
            seg.delete()?;
        }
        let interval = self.config.index_interval_bytes;
        let files = self.files.clone();
        self.active_mut().truncate_to(offset, interval, &files)
    }

    fn active(&self) -> &Segment {
        self.segments.last().expect("a partition always has an active segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments.last_mut().expect("a partition always has an active segment")
    }

    fn log_end_offset(&self) -> i64 {
        self.active().next_offset
    }

    /// The active segment must be rolled before these batches go in: too big, too old, or
    /// their offsets would not fit its 32-bit relative offsets.
    fn needs_roll(&self, total_len: u64, headers: &[BatchHeader], now_ms: i64) -> bool {
        let record_count: i64 = headers.iter().map(|h| i64::from(h.last_offset_delta) + 1).sum();
        let active = self.active();
        let too_big = active.size + total_len > self.config.segment_bytes;
        let too_old = now_ms - active.created_ms > self.config.segment_ms;
        let rel_overflow = active.next_offset + record_count - active.base_offset > i64::from(u32::MAX);
        !active.is_empty() && (too_big || too_old || rel_overflow)
    }

    /// Writes batches to the active segment (the caller rolled first if it had to).
    fn append(
        &mut self,
        records: &[u8],
        headers: &[BatchHeader],
        marker: Option<(ControlType, i32)>,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        let record_count: i64 = headers.iter().map(|h| i64::from(h.last_offset_delta) + 1).sum();
        let base_offset = self.log_end_offset();
        let log_append_time = if self.config.log_append_time { now_ms } else { -1 };
        let mut assigned = Vec::with_capacity(headers.len());
        let mut next = base_offset;
        for h in headers {
            let mut h = *h;
            h.base_offset = next;
            h.partition_leader_epoch = LEADER_EPOCH;
            if log_append_time >= 0 {
                h.max_timestamp = log_append_time;
            }
            next = h.last_offset() + 1;
            assigned.push(h);
        }
        let interval = self.config.index_interval_bytes;
        let result = if log_append_time >= 0 {
            // LogAppendTime changes CRC-covered bytes: rewrite a copy of each batch.
            let mut buf = std::mem::take(&mut self.write_buf);
            buf.clear();
            buf.extend_from_slice(records);
            let mut pos = 0;
            for h in &assigned {
                let bytes = &mut buf[pos..pos + h.total_len()];
                batch::assign_offset(bytes, h.base_offset, LEADER_EPOCH);
                batch::set_log_append_time(bytes, log_append_time);
                pos += h.total_len();
            }
            let result = self.active_mut().append(&[&buf], &assigned, interval);
            self.write_buf = buf;
            if self.write_buf.capacity() > 4 << 20 {
                self.write_buf = Vec::new();
            }
            result
        } else {
            // Only bytes 0..16 of each batch change (base offset, leader epoch; the CRC does
            // not cover them): write fresh 16-byte heads and the client's bytes as they are,
            // without copying the batches.
            let heads: Vec<[u8; 16]> = assigned.iter().map(batch::log_head).collect();
            let mut parts: Vec<&[u8]> = Vec::with_capacity(assigned.len() * 2);
            let mut pos = 0;
            for (h, head) in assigned.iter().zip(&heads) {
                parts.push(head);
                parts.push(&records[pos + 16..pos + h.total_len()]);
                pos += h.total_len();
            }
            self.active_mut().append(&parts, &assigned, interval)
        };
        result?;
        for h in &assigned {
            match marker {
                Some((control, coordinator_epoch)) => self.producers.record_marker(h, control, coordinator_epoch),
                None => self.producers.record(h),
            }
        }
        self.messages_since_flush += record_count as u64;
        let flush_due = if self.config.durable {
            // Visible once durable: `made_durable` moves the high watermark.
            true
        } else {
            self.high_watermark = next;
            self.producers.last_stable_offset(next);
            self.config.flush_interval_messages.is_some_and(|n| self.messages_since_flush >= n)
        };
        Ok(AppendInfo {
            base_offset,
            last_offset: next - 1,
            log_append_time,
            log_start_offset: self.log_start_offset,
            flush_due,
        })
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
#[path = "partition/txn_tests.rs"]
mod txn_tests;

#[path = "partition/cleaner.rs"]
pub mod cleaner;

#[cfg(test)]
#[path = "partition/cleaner_tests.rs"]
mod cleaner_tests;

#[cfg(test)]
#[path = "partition/commit_tests.rs"]
mod commit_tests;
