//! The cleaner: the latest record per key survives with its offset, tombstones and markers go
//! at the first cleaning after their delete horizon (KIP-534), aborted transactions go, the
//! active segment is untouched, and the result survives a reopen.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::BufMut;
use tempfile::tempdir;

use super::PartitionLog;
use crate::log::batch::{self, BatchHeader};
use crate::log::files::FileCache;
use crate::log::producer_state::ControlType;
use crate::log::{CleanerLimits, CleanerSettings, PartitionConfig, RecoveryMode, TopicPartition};

const NOW: i64 = 1_700_000_000_000;
const DAY: i64 = 86_400_000;
const LIMITS: CleanerLimits = CleanerLimits { map_bytes: 1 << 20, io_bytes_per_second: f64::MAX };

fn config() -> PartitionConfig {
    PartitionConfig {
        segment_bytes: 400,
        segment_ms: i64::MAX,
        index_interval_bytes: 100,
        max_message_bytes: 1 << 20,
        retention_ms: -1,
        retention_bytes: -1,
        local_retention_bytes: -1,
        log_append_time: false,
        flush_interval_messages: None,
        compact: true,
        cleaner: CleanerSettings {
            delete_retention_ms: DAY,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_ratio: 0.5,
        },
        durable: false,
    }
}

fn open(dir: &Path) -> PartitionLog {
    open_with(dir, config())
}

fn open_with(dir: &Path, config: PartitionConfig) -> PartitionLog {
    PartitionLog::open(dir, TopicPartition::new("c", 0), config, NOW, RecoveryMode::VerifyTail, &FileCache::unbounded())
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
    // Tombstones stay (consumers must see the deletion), even one older than
    // delete.retention.ms: its time counts from the first cleaning that sees it (KIP-534).
    let o = put(&log, "b", None, NOW);
    latest.insert("b".into(), (o, None));
    let old = put(&log, "gone", Some("x"), NOW - 2 * DAY);
    assert!(old > 0);
    let o = put(&log, "gone", None, NOW - 2 * DAY);
    latest.insert("gone".into(), (o, None));
    // Later writes of "a" in the active segment are not what the cleaner sees yet.
    for _ in 0..6 {
        put(&log, "filler", Some("f"), NOW);
    }
    let end = log.offsets().log_end_offset;
    let before = contents(&log);
    let stats = log.compact(NOW, &LIMITS).unwrap();
    assert!(stats.segments > 0 && stats.records_removed > 0 && stats.bytes_after < stats.bytes_before, "{stats:?}");
    assert_eq!(log.offsets().log_end_offset, end, "offsets do not change");
    let after = contents(&log);
    for (k, (offset, value)) in &latest {
        assert_eq!(after.get(offset), Some(&(k.clone(), value.clone())), "latest {k} at {offset}");
    }
    assert!(!after.contains_key(&old), "what a tombstone deleted is gone");
    for (offset, rec) in &after {
        assert_eq!(before.get(offset), Some(rec), "every survivor is the record that was at its offset");
    }
    let a_count = after.values().filter(|(k, _)| k == "a").count();
    assert_eq!(a_count, 1, "older values of a are gone: {after:?}");
    // Nothing new is dirty: a second pass does nothing; a reopen reads the same.
    assert_eq!(log.compact(NOW, &LIMITS).unwrap().segments, 0);
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
    log.compact(NOW, &LIMITS).unwrap();
    let after = contents(&log);
    assert!(!after.contains_key(&aborted), "aborted data is gone");
    assert_eq!(after.get(&committed).map(|(k, _)| k.as_str()), Some("y"), "committed data stays");

    // An open transaction bounds what may be compacted: nothing at or after its first offset.
    let open_at = txn(9, 0, "k1");
    for i in 0..20 {
        put(&log, &format!("k{i}"), Some("w"), NOW);
    }
    log.compact(NOW, &LIMITS).unwrap();
    assert!(contents(&log).contains_key(&open_at));
}

/// Writes `n` records of one key, so that segments roll and the log gets dirty without
/// growing what survives.
fn churn(log: &PartitionLog, n: usize) {
    for _ in 0..n {
        put(log, "churn", Some("c"), NOW);
    }
}

/// The header of the batch holding `offset`, if it is still in the log.
fn batch_at(log: &PartitionLog, offset: i64) -> Option<BatchHeader> {
    let mut found = None;
    log.for_each_batch(|h, _| {
        if (h.base_offset..=h.last_offset()).contains(&offset) {
            found = Some(*h);
        }
    })
    .unwrap();
    found
}

#[test]
fn a_tombstone_goes_at_the_first_cleaning_after_its_delete_horizon() {
    let dir = tempdir().unwrap();
    let log = open(dir.path());
    let value = put(&log, "k", Some("v"), NOW - 3 * DAY);
    let tombstone = put(&log, "k", None, NOW - 3 * DAY);
    churn(&log, 30);

    // The first cleaning keeps the tombstone, however old, and writes the horizon into its batch.
    assert!(log.compact(NOW, &LIMITS).unwrap().segments > 0);
    assert!(!contents(&log).contains_key(&value));
    let h = batch_at(&log, tombstone).expect("the tombstone stays at the first cleaning");
    assert_eq!(h.delete_horizon_ms(), Some(NOW + DAY));
    let r = log.read(tombstone, 1 << 20, true).unwrap();
    assert!(batch::validate(&r.records, 1 << 20, false).is_ok(), "the rewritten batch passes a CRC check");

    // Before the horizon it stays; the horizon is in the data, so a restart keeps it.
    churn(&log, 30);
    assert!(log.compact(NOW + DAY - 1, &LIMITS).unwrap().segments > 0);
    assert_eq!(batch_at(&log, tombstone).and_then(|h| h.delete_horizon_ms()), Some(NOW + DAY));
    drop(log);
    let log = open(dir.path());
    churn(&log, 30);
    let end = log.offsets().log_end_offset;
    assert!(log.compact(NOW + DAY, &LIMITS).unwrap().segments > 0);
    assert!(!contents(&log).values().any(|(k, _)| k == "k"), "the tombstone is gone at its horizon");
    assert_eq!(log.offsets().log_end_offset, end);
}

/// Appends one transactional record of `pid` (epoch 0) with sequence `seq`.
fn txn(log: &PartitionLog, pid: i64, seq: i32, key: &str) -> i64 {
    let mut b = batch::build_transactional(&[(Some(key.as_bytes()), Some(&b"t"[..]))], NOW, pid, 0);
    (&mut b[53..57]).put_i32(seq);
    let crc = crc32c::crc32c(&b[21..]);
    (&mut b[17..21]).put_u32(crc);
    log.append(&b, NOW).unwrap().base_offset
}

fn marker(log: &PartitionLog, pid: i64, control: ControlType) -> i64 {
    log.append_marker(pid, 0, control, 0, NOW).unwrap().base_offset
}

#[test]
fn markers_go_once_their_transaction_has_no_data_left_and_their_horizon_passed() {
    let dir = tempdir().unwrap();
    let log = open(dir.path());
    let aborted = txn(&log, 7, 0, "x");
    let abort = marker(&log, 7, ControlType::Abort);
    let committed = txn(&log, 8, 0, "y");
    let commit = marker(&log, 8, ControlType::Commit);
    churn(&log, 30);
    let horizon = |log: &PartitionLog, at: i64| batch_at(log, at).map(|h| h.delete_horizon_ms());

    // The aborted data goes; its marker stays while this cleaning still met the data.
    log.compact(NOW, &LIMITS).unwrap();
    assert!(!contents(&log).contains_key(&aborted));
    assert_eq!(horizon(&log, abort), Some(None));
    assert_eq!(horizon(&log, commit), Some(None), "the committed data is still there");

    // A newer "y" replaces the committed record; the abort marker, with nothing left, gets
    // its horizon; the commit marker met its data in this cleaning, so it waits one more.
    put(&log, "y", Some("newer"), NOW);
    churn(&log, 30);
    log.compact(NOW, &LIMITS).unwrap();
    assert!(!contents(&log).contains_key(&committed));
    assert_eq!(horizon(&log, abort), Some(Some(NOW + DAY)));
    assert_eq!(horizon(&log, commit), Some(None));
    churn(&log, 30);
    log.compact(NOW + 1, &LIMITS).unwrap();
    assert_eq!(horizon(&log, commit), Some(Some(NOW + 1 + DAY)));
    assert_eq!(horizon(&log, abort), Some(Some(NOW + DAY)), "a horizon once set stays");

    // Producer 7 commits a new transaction after its aborted one.
    let later = txn(&log, 7, 1, "z");
    let later_commit = marker(&log, 7, ControlType::Commit);
    churn(&log, 30);
    log.compact(NOW + DAY, &LIMITS).unwrap();
    assert_eq!(horizon(&log, abort), None, "the abort marker is gone at its horizon");
    assert_eq!(horizon(&log, commit), Some(Some(NOW + 1 + DAY)));
    churn(&log, 30);
    log.compact(NOW + 2 * DAY, &LIMITS).unwrap();
    assert_eq!(horizon(&log, commit), None);
    // The partition still lists producer 7's aborted transaction; its removed marker must not
    // make the cleaner take the later, committed one for aborted.
    assert_eq!(contents(&log).get(&later).map(|(k, _)| k.as_str()), Some("z"));
    assert_eq!(horizon(&log, later_commit), Some(None), "its data is there: the marker stays");
}

#[test]
fn a_pass_compacts_only_the_part_of_the_log_whose_keys_fit_the_map() {
    let dir = tempdir().unwrap();
    let mut cfg = config();
    cfg.cleaner.min_cleanable_ratio = 0.0;
    let log = open_with(dir.path(), cfg);
    let mut latest = BTreeMap::new();
    for round in 0..3 {
        for k in 0..40 {
            let key = format!("k{k:02}");
            latest.insert(key.clone(), put(&log, &key, Some(&format!("{round}")), NOW));
        }
    }
    churn(&log, 6);
    // Room for ten keys of three bytes.
    let limits = CleanerLimits { map_bytes: 10 * (3 + 48), io_bytes_per_second: f64::MAX };
    let mut passes = 0;
    let mut cleaned_to = 0;
    loop {
        let stats = log.compact(NOW, &limits).unwrap();
        if stats == Default::default() {
            break;
        }
        passes += 1;
        assert!(stats.keys <= 10 && stats.map_bytes <= limits.map_bytes, "{stats:?}");
        assert!(stats.cleaned_to > cleaned_to, "every pass moves on: {stats:?}");
        cleaned_to = stats.cleaned_to;
        // Nothing is lost on the way: every key's latest record is where it was written.
        let now = contents(&log);
        for (k, o) in &latest {
            assert_eq!(now.get(o).map(|(key, _)| key), Some(k), "pass {passes}");
        }
        assert!(passes < 40, "the passes do not converge");
    }
    assert!(passes >= 12, "120 keyed records, 10 keys a pass: {passes} passes");
    let after = contents(&log);
    for (k, o) in &latest {
        assert_eq!(after.values().filter(|(key, _)| key == k).count(), 1, "{k} once, at {o}");
    }
}

#[test]
fn a_segment_older_than_max_compaction_lag_is_compacted_below_the_dirty_ratio() {
    let dir = tempdir().unwrap();
    let mut cfg = config();
    cfg.cleaner.min_cleanable_ratio = 0.99;
    let log = open_with(dir.path(), cfg.clone());
    const HOUR: i64 = 3_600_000;
    for k in 0..40 {
        put(&log, &format!("k{k:02}"), Some("v"), NOW - 3 * HOUR);
    }
    churn(&log, 6);
    // All of it is dirty at first; afterwards the forty keys are the clean part.
    log.compact(NOW, &LIMITS).unwrap();
    // A few versions of one key: far below the ratio.
    let mut dirty_at = 0;
    for _ in 0..6 {
        dirty_at = put(&log, "a", Some("old"), NOW - 2 * HOUR);
    }
    churn(&log, 6);
    assert_eq!(log.compact(NOW, &LIMITS).unwrap(), Default::default(), "below the ratio, no max lag");
    cfg.cleaner.max_compaction_lag_ms = 3 * HOUR;
    log.set_config(cfg.clone());
    assert_eq!(log.compact(NOW, &LIMITS).unwrap(), Default::default(), "not overdue yet");
    cfg.cleaner.max_compaction_lag_ms = HOUR;
    log.set_config(cfg);
    let stats = log.compact(NOW, &LIMITS).unwrap();
    assert!(stats.records_removed >= 5, "overdue: compacted below the ratio: {stats:?}");
    assert_eq!(contents(&log).values().filter(|(k, _)| k == "a").count(), 1);
    assert!(contents(&log).contains_key(&dirty_at));
}

#[test]
fn the_throttle_waits_as_long_as_the_pass_is_ahead_of_its_rate() {
    use super::cleaner::throttle_wait;
    use std::time::Duration;
    assert_eq!(throttle_wait(1 << 20, Duration::from_millis(100), f64::MAX), Duration::ZERO);
    assert_eq!(throttle_wait(1_000_000, Duration::from_millis(250), 1_000_000.0), Duration::from_millis(750));
    assert_eq!(throttle_wait(1_000_000, Duration::from_secs(2), 1_000_000.0), Duration::ZERO);
}

/// The `.log` files of a partition directory: (base offset, size), and whether any file a
/// cleaning or merge leaves while it runs is still there.
fn segment_files(dir: &Path) -> (Vec<(i64, u64)>, bool) {
    let mut logs = Vec::new();
    let mut leftovers = false;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_str().unwrap().to_string();
        leftovers |= name.ends_with(".cleaned") || name.ends_with(".merge");
        if let Some(base) = crate::log::format::parse_segment_name(&name) {
            logs.push((base, e.metadata().unwrap().len()));
        }
    }
    logs.sort_unstable();
    (logs, leftovers)
}

/// Rounds of twenty keys, then churn: many small segments, most of their records superseded,
/// and more survivors than one segment holds.
fn fill_for_merging(log: &PartitionLog) -> BTreeMap<String, i64> {
    let mut latest = BTreeMap::new();
    for round in 0..3 {
        for k in 0..20 {
            let k = format!("key-{k:02}");
            latest.insert(k.clone(), put(log, &k, Some(&format!("{k}-{round}")), NOW));
        }
    }
    churn(log, 12);
    latest
}

#[test]
fn cleaned_segments_are_merged_up_to_segment_bytes_and_offsets_stay() {
    let dir = tempdir().unwrap();
    let log = open(dir.path());
    let latest = fill_for_merging(&log);
    let end = log.offsets().log_end_offset;
    let before = contents(&log);
    let (segments_before, _) = segment_files(dir.path());
    let stats = log.compact(NOW, &LIMITS).unwrap();
    assert!(stats.segments_merged > 0, "{stats:?}");
    let (segments_after, leftovers) = segment_files(dir.path());
    let survivors: u64 = segments_after.iter().map(|&(_, size)| size).sum();
    assert!(survivors > 2 * config().segment_bytes, "the test needs more than one merged segment");
    assert!(!leftovers);
    assert_eq!(segments_after.len() + stats.segments_merged, segments_before.len());
    assert!(segments_after.iter().all(|&(_, size)| size <= config().segment_bytes), "{segments_after:?}");
    let after = contents(&log);
    for (offset, rec) in &after {
        assert_eq!(before.get(offset), Some(rec));
    }
    for (k, o) in &latest {
        assert_eq!(after.get(o).map(|(key, _)| key), Some(k));
    }
    assert_eq!(log.offsets().log_end_offset, end);
    drop(log);
    let log = open(dir.path());
    assert_eq!(contents(&log), after);
    assert_eq!(log.offsets().log_end_offset, end);
}

#[test]
fn a_stop_at_any_step_of_a_cleaning_and_merge_leaves_one_whole_version() {
    use crate::log::failpoint;
    for n in 0.. {
        let dir = tempdir().unwrap();
        let log = open(dir.path());
        let latest = fill_for_merging(&log);
        let end = log.offsets().log_end_offset;
        let before = contents(&log);
        failpoint::fail_nth(n);
        let result = log.compact(NOW, &LIMITS);
        let fired = !failpoint::armed();
        failpoint::reset();
        drop(log);
        let log = open(dir.path());
        let (_, leftovers) = segment_files(dir.path());
        assert!(!leftovers, "step {n}: open removes or finishes what the stop left");
        let after = contents(&log);
        for (offset, rec) in &after {
            assert_eq!(before.get(offset), Some(rec), "step {n}: a record that was never at {offset}");
        }
        for (k, o) in &latest {
            assert_eq!(after.get(o).map(|(key, _)| key), Some(k), "step {n}: the latest {k} is lost");
        }
        assert_eq!(log.offsets().log_end_offset, end, "step {n}");
        if !fired {
            assert!(result.unwrap().segments_merged > 0);
            assert!(n > 10, "the merge's steps were all tried ({n})");
            break;
        }
        assert!(n < 500);
    }
}
