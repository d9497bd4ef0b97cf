//! Partition logs on disk.
//!
//! [`LogManager`] owns every [`PartitionLog`] of the broker, keyed by [`TopicPartition`]. The
//! on-disk layout is documented in [`format`]. This module never imports `server` or
//! `handlers`; it speaks in its own types and errors, mapped to Kafka codes in one place.

pub mod batch;
pub mod checkpoint;
pub mod commit;
pub mod compression;
pub mod failpoint;
pub mod files;
pub mod format;
pub mod index;
mod internal_topic;
pub mod leader_epoch;
pub mod legacy;
pub mod partition;
pub mod producer_state;
pub mod segment;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::RwLock;

pub use partition::{AppendInfo, Offsets, PartitionLog, ReadResult};

/// Whoever wants to know how long partition fsyncs take (the metrics), in seconds.
type FsyncObserver = Box<dyn Fn(f64) + Send + Sync>;
static FSYNC_OBSERVER: std::sync::OnceLock<FsyncObserver> = std::sync::OnceLock::new();

/// Sets the fsync observer, once per process (later calls change nothing).
pub fn set_fsync_observer(observer: FsyncObserver) {
    let _ = FSYNC_OBSERVER.set(observer);
}

fn observe_fsync(started: std::time::Instant) {
    if let Some(observe) = FSYNC_OBSERVER.get() {
        observe(started.elapsed().as_secs_f64());
    }
}

use producer_state::SequenceError;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: Arc<str>,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: &str, partition: i32) -> Self {
        Self { topic: Arc::from(topic), partition }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Settings that apply to one partition: broker defaults overridden by topic configs.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionConfig {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub index_interval_bytes: u64,
    pub max_message_bytes: usize,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    /// Shared mode: bytes of the committed log kept in local segments, the rest being read
    /// from the object store (`local.retention.bytes` as resolved; -1: all). Compacted
    /// partitions keep all whatever it says.
    pub local_retention_bytes: i64,
    pub log_append_time: bool,
    pub flush_interval_messages: Option<u64>,
    /// `cleanup.policy` includes `compact`: every record must have a key, and the cleaner
    /// keeps only the latest record per key (see `partition::cleaner`).
    pub compact: bool,
    /// How the cleaner treats this partition (`delete.retention.ms`,
    /// `min.compaction.lag.ms`, `min.cleanable.dirty.ratio`).
    pub cleaner: CleanerSettings,
    /// The high watermark follows the fsync, so consumers never read what a crash can take away,
    /// and `acks=all` is answered after that fsync (`log.fsync_acks_all`).
    pub durable: bool,
}

/// Topic settings of log compaction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CleanerSettings {
    /// Tombstones (null values) are kept this long after their batch's timestamp, so that
    /// consumers see the deletion (`delete.retention.ms`).
    pub delete_retention_ms: i64,
    /// Records younger than this are not compacted (`min.compaction.lag.ms`).
    pub min_compaction_lag_ms: i64,
    /// A rolled segment whose first batch is older than this is compacted even below the
    /// dirty ratio (`max.compaction.lag.ms`).
    pub max_compaction_lag_ms: i64,
    /// Compact once the part not yet compacted is at least this share of the log
    /// (`min.cleanable.dirty.ratio`).
    pub min_cleanable_ratio: f64,
}

impl Default for CleanerSettings {
    fn default() -> Self {
        Self {
            delete_retention_ms: 86_400_000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_ratio: 0.5,
        }
    }
}

/// Broker-wide bounds of the cleaner (`log.cleaner.*`), the same for every partition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CleanerLimits {
    /// Bytes the keys of one pass may take (`log.cleaner.dedupe.buffer.size` times
    /// `log.cleaner.io.buffer.load.factor`); a pass compacts only the part of the dirty log
    /// whose keys fit.
    pub map_bytes: usize,
    /// Bytes per second the cleaner reads and writes (`log.cleaner.io.max.bytes.per.second`).
    pub io_bytes_per_second: f64,
}

impl Default for CleanerLimits {
    fn default() -> Self {
        Self { map_bytes: (128 << 20) * 9 / 10, io_bytes_per_second: f64::MAX }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error(transparent)]
    InvalidBatch(#[from] batch::BatchError),
    #[error(transparent)]
    Sequence(#[from] SequenceError),
    #[error("an idempotent produce carries more than one batch for a partition")]
    MultipleIdempotentBatches,
    #[error(
        "control batches (transaction markers) are written by the broker's transaction coordinator, not by clients"
    )]
    ClientControlBatch,
    #[error("compacted topic cannot accept message without key (records {record_indexes:?} of their batch)")]
    KeylessRecords { record_indexes: Vec<i32> },
    #[error("storage error: {0}")]
    Io(#[from] io::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("offset {requested} is outside [{log_start_offset}, {high_watermark}]")]
    OffsetOutOfRange { requested: i64, log_start_offset: i64, high_watermark: i64 },
    /// Within the valid part of a segment, bytes that are not a whole batch: the disk or
    /// something outside gregor changed the file after it was written.
    #[error("corrupt log segment {} at byte {position}: {problem}", path.display())]
    Corrupt { path: PathBuf, position: u64, problem: String },
    #[error("storage error: {0}")]
    Io(#[from] io::Error),
}

/// How much of an existing partition log to re-check when opening it (after raft-engine's
/// `RecoveryMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryMode {
    /// The last stop may have been a crash: read every batch of each tail segment, check its CRC
    /// and truncate after the last valid one.
    VerifyTail,
    /// The last stop was clean (the marker file was there): every segment was fsynced whole, so
    /// tails are trusted like older segments (their indexes are used when consistent).
    TrustCleanShutdown,
}

/// Every partition log of this broker.
#[derive(Debug)]
pub struct LogManager {
    root: PathBuf,
    /// The descriptor budget every segment file is opened through.
    files: Arc<files::FileCache>,
    partitions: RwLock<HashMap<TopicPartition, Arc<PartitionLog>>>,
    /// What [`LogManager::open`] passes to partitions; `TrustCleanShutdown` only between
    /// [`LogManager::begin_recovery`] and [`LogManager::finish_recovery`].
    recovery: parking_lot::Mutex<RecoveryMode>,
    /// Shared mode's commit of appended batches (see [`commit`]), given to every partition it
    /// covers.
    committer: std::sync::OnceLock<Arc<dyn commit::Committer>>,
}

impl LogManager {
    pub fn new(root: PathBuf, files: Arc<files::FileCache>) -> Self {
        Self {
            root,
            files,
            partitions: RwLock::new(HashMap::new()),
            recovery: parking_lot::Mutex::new(RecoveryMode::VerifyTail),
            committer: std::sync::OnceLock::new(),
        }
    }

    /// From now on, appends to the partitions `committer` covers (open ones and those opened
    /// later) count as durable once it committed them. Set once; later calls change nothing.
    pub fn set_committer(&self, committer: Arc<dyn commit::Committer>) {
        if self.committer.set(committer.clone()).is_err() {
            return;
        }
        for log in self.all() {
            if committer.covers(&log.tp) {
                log.attach_committer(committer.clone());
            }
        }
    }

    /// Called before opening the existing partitions: chooses the recovery mode from the
    /// clean-shutdown marker and returns it.
    pub fn begin_recovery(&self) -> RecoveryMode {
        let mode = if self.root.join(format::CLEAN_SHUTDOWN_FILE).exists() {
            RecoveryMode::TrustCleanShutdown
        } else {
            RecoveryMode::VerifyTail
        };
        *self.recovery.lock() = mode;
        mode
    }

    /// Called once every existing partition is open: removes the clean-shutdown marker (durably,
    /// so a crash from now on is recovered as one) and returns to verifying tails.
    pub fn finish_recovery(&self) -> io::Result<()> {
        *self.recovery.lock() = RecoveryMode::VerifyTail;
        match std::fs::remove_file(self.root.join(format::CLEAN_SHUTDOWN_FILE)) {
            Ok(()) => std::fs::File::open(&self.root)?.sync_all(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// fsyncs every partition's data and directory. Returns the first error after trying all.
    pub fn flush_all(&self) -> io::Result<()> {
        let mut first_error = None;
        for p in self.all() {
            if let Err(e) = p.flush_blocking() {
                tracing::error!(partition = %p.tp, error = %e, "fsync at shutdown failed");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Writes and fsyncs the clean-shutdown marker. Call last, after [`LogManager::flush_all`]
    /// succeeded and nothing can append any more.
    pub fn write_clean_shutdown_marker(&self) -> io::Result<()> {
        std::fs::File::create(self.root.join(format::CLEAN_SHUTDOWN_FILE))?.sync_all()?;
        std::fs::File::open(&self.root)?.sync_all()
    }

    pub fn files(&self) -> &Arc<files::FileCache> {
        &self.files
    }

    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    pub fn get(&self, tp: &TopicPartition) -> Option<Arc<PartitionLog>> {
        self.partitions.read().get(tp).cloned()
    }

    /// Opens (recovering) or creates a partition's log.
    pub fn open(&self, tp: TopicPartition, config: PartitionConfig, now_ms: i64) -> io::Result<Arc<PartitionLog>> {
        if let Some(p) = self.get(&tp) {
            return Ok(p);
        }
        let dir = format::partition_dir(&self.root, &tp.topic, tp.partition);
        let mode = *self.recovery.lock();
        let log = PartitionLog::open_shared(&dir, tp.clone(), config, now_ms, mode, &self.files)?;
        if let Some(c) = self.committer.get().filter(|c| c.covers(&tp)) {
            log.attach_committer(c.clone());
        }
        Ok(self.partitions.write().entry(tp).or_insert(log).clone())
    }

    /// Forgets a partition and removes its directory.
    pub fn remove(&self, tp: &TopicPartition) -> io::Result<()> {
        let removed = self.partitions.write().remove(tp);
        let dir = match &removed {
            Some(p) => p.dir().to_owned(),
            None => format::partition_dir(&self.root, &tp.topic, tp.partition),
        };
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub fn all(&self) -> Vec<Arc<PartitionLog>> {
        self.partitions.read().values().cloned().collect()
    }
}
