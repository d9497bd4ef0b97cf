//! The cleaner: the latest record per key survives with its offset, tombstones go after
//! `delete.retention.ms`, aborted transactions go, the active segment is untouched, and the
//! result survives a reopen.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::BufMut;
use tempfile::tempdir;

use super::PartitionLog;
use crate::log::batch;
use crate::log::files::FileCache;
use crate::log::producer_state::ControlType;
use crate::log::{CleanerSettings, PartitionConfig, RecoveryMode, TopicPartition};

const NOW: i64 = 1_700_000_000_000;
const DAY: i64 = 86_400_000;

fn config() -> PartitionConfig {
    PartitionConfig {
        segment_bytes: 400,
        segment_ms: i64::MAX,
        index_interval_bytes: 100,
        max_message_bytes: 1 << 20,
        retention_ms: -1,
        retention_bytes: -1,
        log_append_time: false,
        flush_interval_messages: None,
        compact: true,
        cleaner: CleanerSettings { delete_retention_ms: DAY, min_compaction_lag_ms: 0, min_cleanable_ratio: 0.5 },
        durable: false,
    }
}

fn open(dir: &Path) -> PartitionLog {
    PartitionLog::open(
        dir,
        TopicPartition::new("c", 0),
        config(),
        NOW,
        RecoveryMode::VerifyTail,
        &FileCache::unbounded(),
    )
    .unwrap()
}

/// One record (key, value) stamped `ts`; `None` is a tombstone.
fn put(log: &PartitionLog, key: &str, value: Option<&str>, ts: i64) -> i64 {
    let b = batch::build(&[(Some(key.as_bytes()), value.map(str::as_bytes))], ts);
    log.append(&b, NOW).unwrap().base_offset
}

/// Every record readable from the log start: offset -> (key, value).
fn contents(log: &PartitionLog) -> BTreeMap<i64, (String, Option<String>)> {
    let mut out = BTreeMap::new();
    log.for_each_batch(|h, bytes| {
        if h.is_control() {
            return;
        }
        batch::with_records(bytes, |records| {
            for r in records {
                let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
                out.insert(r.offset, (text(r.key.unwrap()), r.value.map(text)));
            }
        })
        .unwrap();
    })
    .unwrap();
    out
}

#[test]
fn compaction_keeps_the_latest_record_per_key_at_its_offset() {
    let dir = tempdir().unwrap();
    let log = open(dir.path());
    let mut latest: BTreeMap<String, (i64, Option<String>)> = BTreeMap::new();
    for round in 0..12 {
        for k in ["a", "b", "c"] {
            let v = format!("{k}{round}");
            let o = put(&log, k, Some(&v), NOW);
            latest.insert(k.to_string(), (o, Some(v)));
        }
    }
    // A recent tombstone stays (consumers must see the deletion), an old one goes.
    let o = put(&log, "b", None, NOW);
    latest.insert("b".into(), (o, None));
    let old = put(&log, "gone", Some("x"), NOW - 2 * DAY);
    assert!(old > 0);
    put(&log, "gone", None, NOW - 2 * DAY);
    latest.remove("gone");
    // Later writes of "a" in the active segment are not what the cleaner sees yet.
    for _ in 0..6 {
        put(&log, "filler", Some("f"), NOW);
    }
    let end = log.offsets().log_end_offset;
    let before = contents(&log);
    let stats = log.compact(NOW).unwrap();
    assert!(stats.segments > 0 && stats.records_removed > 0 && stats.bytes_after < stats.bytes_before, "{stats:?}");
    assert_eq!(log.offsets().log_end_offset, end, "offsets do not change");
    let after = contents(&log);
    for (k, (offset, value)) in &latest {
        assert_eq!(after.get(offset), Some(&(k.clone(), value.clone())), "latest {k} at {offset}");
    }
    assert!(!after.values().any(|(k, _)| k == "gone"), "an expired tombstone and what it deleted are gone");
    for (offset, rec) in &after {
        assert_eq!(before.get(offset), Some(rec), "every survivor is the record that was at its offset");
    }
    let a_count = after.values().filter(|(k, _)| k == "a").count();
    assert_eq!(a_count, 1, "older values of a are gone: {after:?}");
    // Nothing new is dirty: a second pass does nothing; a reopen reads the same.
    assert_eq!(log.compact(NOW).unwrap().segments, 0);
    drop(log);
    let log = open(dir.path());
    assert_eq!(contents(&log), after);
    assert_eq!(log.offsets().log_end_offset, end);
    // Reads from the log start step over the gaps.
    let r = log.read(0, 1 << 20, true).unwrap();
    assert!(!r.records.is_empty());
}

#[test]
fn aborted_transactions_are_removed_and_open_ones_hold_the_cleaner_back() {
    let dir = tempdir().unwrap();
    let log = open(dir.path());
    let txn = |pid: i64, seq: i32, key: &str| {
        let mut b = batch::build_transactional(&[(Some(key.as_bytes()), Some(&b"t"[..]))], NOW, pid, 0);
        (&mut b[53..57]).put_i32(seq);
        let crc = crc32c::crc32c(&b[21..]);
        (&mut b[17..21]).put_u32(crc);
        log.append(&b, NOW).unwrap().base_offset
    };
    let aborted = txn(7, 0, "x");
    log.append_marker(7, 0, ControlType::Abort, 0, NOW).unwrap();
    let committed = txn(8, 0, "y");
    log.append_marker(8, 0, ControlType::Commit, 0, NOW).unwrap();
    for i in 0..20 {
        put(&log, &format!("k{i}"), Some("v"), NOW);
    }
    log.compact(NOW).unwrap();
    let after = contents(&log);
    assert!(!after.contains_key(&aborted), "aborted data is gone");
    assert_eq!(after.get(&committed).map(|(k, _)| k.as_str()), Some("y"), "committed data stays");

    // An open transaction bounds what may be compacted: nothing at or after its first offset.
    let open_at = txn(9, 0, "k1");
    for i in 0..20 {
        put(&log, &format!("k{i}"), Some("w"), NOW);
    }
    log.compact(NOW).unwrap();
    assert!(contents(&log).contains_key(&open_at));
}
