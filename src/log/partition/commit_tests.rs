//! A log with a committer (shared mode): appends are visible once committed, a refused commit
//! keeps them hidden, and a log rebuilt from committed batches is the log that wrote them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tempfile::tempdir;

use super::PartitionLog;
use crate::log::batch;
use crate::log::commit::{CommitFuture, Committer};
use crate::log::files::FileCache;
use crate::log::{PartitionConfig, RecoveryMode, TopicPartition};

const NOW: i64 = 1_700_000_000_000;

/// Small segments, so that commits go a segment at a time. A committer makes the log durable
/// whatever the topic says (`durable: false` here).
fn config() -> PartitionConfig {
    PartitionConfig { segment_bytes: 300, ..super::tests::config() }
}

fn open(dir: &std::path::Path) -> Arc<PartitionLog> {
    let tp = TopicPartition::new("t", 0);
    PartitionLog::open_shared(dir, tp, config(), NOW, RecoveryMode::VerifyTail, &FileCache::unbounded()).unwrap()
}

/// Keeps what it is given, or refuses it.
#[derive(Debug, Default)]
struct Recorder {
    refuse: AtomicBool,
    committed: Mutex<Vec<u8>>,
}

impl Committer for Recorder {
    fn covers(&self, _: &TopicPartition) -> bool {
        true
    }

    fn commit(&self, _: &TopicPartition, batches: Bytes) -> CommitFuture {
        let outcome = if self.refuse.load(Ordering::Acquire) {
            Err(std::io::Error::other("not the leader"))
        } else {
            self.committed.lock().extend_from_slice(&batches);
            Ok(())
        };
        Box::pin(std::future::ready(outcome))
    }

    /// Serves what it was given, as the store would.
    fn read_stored(
        &self,
        _: &TopicPartition,
        offset: i64,
        before: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> std::io::Result<Bytes> {
        let committed = self.committed.lock();
        let (mut rest, mut out) = (&committed[..], Vec::new());
        while let Some((base, len)) = batch::peek_len(rest) {
            let (this, after) = rest.split_at(len);
            rest = after;
            if batch::next_offset_after(this).unwrap() <= offset {
                continue;
            }
            if base >= before || out.len() + len > max_bytes && !(out.is_empty() && min_one) {
                break;
            }
            out.extend_from_slice(this);
        }
        Ok(Bytes::from(out))
    }
}

fn records(n: usize) -> Vec<u8> {
    let values: Vec<Vec<u8>> = (0..n).map(|i| format!("value-{i}").into_bytes()).collect();
    let kvs: Vec<batch::KeyValue<'_>> = values.iter().map(|v| (Some(&b"k"[..]), Some(v.as_slice()))).collect();
    batch::build_transactional(&kvs, NOW, -1, -1)
}

#[tokio::test]
async fn appends_are_visible_once_committed_and_a_refused_commit_keeps_them_hidden() {
    let dir = tempdir().unwrap();
    let log = open(dir.path());
    let recorder = Arc::new(Recorder::default());
    log.attach_committer(recorder.clone());
    assert!(log.is_durable());

    recorder.refuse.store(true, Ordering::Release);
    let first = log.append(&records(3), NOW).unwrap();
    assert_eq!((first.base_offset, first.last_offset), (0, 2));
    assert!(log.flush_to(3).await.is_err(), "a refused commit is an error for acks=all");
    assert_eq!(log.offsets().high_watermark, 0, "nothing refused becomes visible");
    assert!(log.read(0, 1 << 20, true).unwrap().records.is_empty());

    recorder.refuse.store(false, Ordering::Release);
    // Enough appends to roll segments (300 bytes each): commits go a segment at a time.
    for _ in 0..6 {
        log.append(&records(2), NOW).unwrap();
    }
    let end = log.offsets().log_end_offset;
    assert_eq!(end, 15);
    log.flush_to(end).await.unwrap();
    assert_eq!(log.offsets().high_watermark, end);
    // The committer got every batch once, in offset order, with the offsets the log gave them.
    let committed = recorder.committed.lock().clone();
    let mut next = 0;
    let mut rest = &committed[..];
    while let Some((base, len)) = batch::peek_len(rest) {
        assert_eq!(base, next);
        next = batch::next_offset_after(&rest[..len]).unwrap();
        rest = &rest[len..];
    }
    assert_eq!(next, end);
}

#[test]
fn a_log_rebuilt_from_committed_batches_has_their_offsets_and_producer_state() {
    let dir = tempdir().unwrap();
    let source = open(&dir.path().join("source"));
    let txn = batch::build_transactional(&[(Some(&b"k"[..]), Some(&b"in a transaction"[..]))], NOW, 7, 0);
    source.append(&records(2), NOW).unwrap();
    source.append(&txn, NOW).unwrap();
    source.append(&records(4), NOW).unwrap();
    let all = source.read(0, 1 << 20, true).unwrap().records;

    let rebuilt = open(&dir.path().join("rebuilt"));
    rebuilt.attach_committer(Arc::new(Recorder { refuse: AtomicBool::new(true), ..Recorder::default() }));
    assert_eq!(rebuilt.append_committed(&all, NOW).unwrap(), 7);
    assert_eq!(rebuilt.offsets(), source.offsets(), "same end, high watermark and last stable offset");
    assert_eq!(rebuilt.offsets().last_stable_offset, 2, "the open transaction holds read_committed back");
    assert_eq!(rebuilt.producers(), source.producers());
    assert_eq!(rebuilt.read(0, 1 << 20, true).unwrap().records, all);

    // Batches that do not continue the log are refused.
    assert!(rebuilt.append_committed(&all, NOW).is_err());
    assert_eq!(rebuilt.offsets().log_end_offset, 7);
}

/// Shared mode's `local.retention.bytes`: the oldest committed segments are let go of while the
/// newer ones hold the setting's bytes; the log start stays, reads before the local segments
/// come from the committed copy (with the aborted transactions there for read_committed), and
/// local retention leaves such a log to the store.
#[tokio::test]
async fn a_log_lets_go_of_its_oldest_committed_segments_and_reads_them_from_the_committer() {
    use crate::log::partition::Isolation;
    use crate::log::producer_state::ControlType;

    let dir = tempdir().unwrap();
    let tp = TopicPartition::new("t", 0);
    let cfg = PartitionConfig { local_retention_bytes: 600, retention_ms: 1, ..config() };
    let log =
        PartitionLog::open_shared(dir.path(), tp, cfg, NOW, RecoveryMode::VerifyTail, &FileCache::unbounded()).unwrap();
    assert_eq!(log.trim_local().unwrap(), 0, "without a committer the log is the only copy");
    let recorder = Arc::new(Recorder::default());
    log.attach_committer(recorder.clone());
    // An aborted transaction first, then plain batches over several 300-byte segments.
    let txn = batch::build_transactional(&[(Some(&b"k"[..]), Some(&b"aborted"[..]))], NOW, 7, 0);
    log.append(&txn, NOW).unwrap();
    log.append_marker(7, 0, ControlType::Abort, 0, NOW).unwrap();
    for _ in 0..12 {
        log.append(&records(2), NOW).unwrap();
    }
    let end = log.offsets().log_end_offset;
    assert_eq!(end, 26);
    // Nothing uncommitted goes: the whole log is past the high watermark yet.
    assert_eq!(log.trim_local().unwrap(), 0);
    log.flush_to(end).await.unwrap();
    let read_all = || {
        let (mut got, mut at, mut reads) = (Vec::new(), 0, Vec::new());
        while at < end {
            let r = log.read(at, 1 << 20, true).unwrap();
            assert!(!r.records.is_empty(), "nothing read at {at}");
            reads.push(at);
            at = batch::next_offset_after(&r.records).unwrap();
            got.extend_from_slice(&r.records);
        }
        (Bytes::from(got), reads)
    };
    let (whole, _) = read_all();

    let trimmed = log.trim_local().unwrap();
    assert!(trimmed > 0);
    let local_start = log.local_start_offset();
    assert!(local_start > 2 && local_start < end, "local segments start at {local_start}");
    assert!(log.size_bytes() >= 600, "at least local.retention.bytes stays");
    assert!(log.has_stored_head());
    assert_eq!(log.offsets().log_start_offset, 0, "the log start stays");
    assert_eq!(log.apply_retention(NOW + 1_000).unwrap(), 0, "retention is the store's to work out");
    assert_eq!(log.offsets().log_start_offset, 0);

    // Read from the beginning: the committed copy up to the local segments (in one read),
    // then the log.
    let (got, reads) = read_all();
    assert_eq!(got, whole);
    assert_eq!(reads[..2], [0, local_start], "the first read stops where the local segments begin");
    // read_committed from the stored part lists the aborted transaction there.
    let r = log.read_isolated(0, 1 << 20, true, Isolation::ReadCommitted).unwrap();
    assert_eq!(r.aborted.iter().map(|a| (a.producer_id, a.first_offset)).collect::<Vec<_>>(), vec![(7, 0)]);
    // A compacted log keeps everything.
    log.set_config(PartitionConfig { compact: true, ..log.config() });
    log.append(&records(40), NOW).unwrap();
    log.flush_to(log.offsets().log_end_offset).await.unwrap();
    log.roll(NOW).unwrap();
    assert_eq!(log.trim_local().unwrap(), 0);
}
