//! Transactions in one partition: the last stable offset, markers, read_committed reads and
//! the aborted-transaction list, and all of it surviving rolls, reopen and truncation.

use std::path::Path;

use bytes::BufMut;
use tempfile::tempdir;

use super::{Isolation, PartitionLog};
use crate::log::batch::{self, BatchHeader};
use crate::log::files::FileCache;
use crate::log::producer_state::{AbortedTxn, ControlType};
use crate::log::{AppendError, CleanerSettings, PartitionConfig, RecoveryMode, TopicPartition};

const NOW: i64 = 1_700_000_000_000;

fn config(segment_bytes: u64) -> PartitionConfig {
    PartitionConfig {
        segment_bytes,
        segment_ms: i64::MAX,
        index_interval_bytes: 100,
        max_message_bytes: 1 << 20,
        retention_ms: -1,
        retention_bytes: -1,
        local_retention_bytes: -1,
        log_append_time: false,
        flush_interval_messages: None,
        compact: false,
        cleaner: CleanerSettings::default(),
        durable: false,
    }
}

fn open(dir: &Path, segment_bytes: u64) -> PartitionLog {
    PartitionLog::open(
        dir,
        TopicPartition::new("t", 0),
        config(segment_bytes),
        NOW,
        RecoveryMode::VerifyTail,
        &FileCache::unbounded(),
    )
    .unwrap()
}

/// A transactional batch of `n` records from `pid` with sequences from `seq`.
fn txn_batch(pid: i64, epoch: i16, seq: i32, n: usize) -> Vec<u8> {
    let values: Vec<Vec<u8>> = (0..n).map(|i| format!("p{pid}-{}", seq as usize + i).into_bytes()).collect();
    let kvs: Vec<batch::KeyValue<'_>> = values.iter().map(|v| (None, Some(&v[..]))).collect();
    let mut b = batch::build_transactional(&kvs, NOW, pid, epoch);
    (&mut b[53..57]).put_i32(seq);
    let crc = crc32c::crc32c(&b[21..]);
    (&mut b[17..21]).put_u32(crc);
    b
}

fn plain_batch(n: usize) -> Vec<u8> {
    let kvs: Vec<batch::KeyValue<'_>> = (0..n).map(|_| (None, Some(&b"plain"[..]))).collect();
    batch::build(&kvs, NOW)
}

/// (producer id, first offset, control) of every batch a read returns.
fn batches(records: &[u8]) -> Vec<(i64, i64, bool)> {
    let mut out = Vec::new();
    let mut rest = records;
    while let Some((_, len)) = batch::peek_len(rest) {
        let h = BatchHeader::parse(&rest[..len]).unwrap();
        out.push((h.producer_id, h.base_offset, h.is_control()));
        rest = &rest[len..];
    }
    out
}

/// Reads everything read_committed can see, fetch after fetch; returns the aborted
/// transactions reported along the way (each once).
fn aborted_seen(log: &PartitionLog) -> Vec<AbortedTxn> {
    let mut offset = log.offsets().log_start_offset;
    let mut seen: Vec<AbortedTxn> = Vec::new();
    loop {
        let r = log.read_isolated(offset, 1 << 20, true, Isolation::ReadCommitted).unwrap();
        for a in r.aborted {
            if !seen.contains(&a) {
                seen.push(a);
            }
        }
        match batch::next_offset_after(&r.records) {
            Some(next) => offset = next,
            None => return seen,
        }
    }
}

#[test]
fn open_transactions_hold_the_last_stable_offset_and_aborts_are_listed() {
    let dir = tempdir().unwrap();
    let log = open(dir.path(), 1 << 20);
    log.append(&plain_batch(2), NOW).unwrap(); // 0..=1
    log.append(&txn_batch(7, 0, 0, 3), NOW).unwrap(); // 2..=4, producer 7
    log.append(&txn_batch(8, 0, 0, 2), NOW).unwrap(); // 5..=6, producer 8
    log.append(&plain_batch(1), NOW).unwrap(); // 7
    let o = log.offsets();
    assert_eq!((o.high_watermark, o.last_stable_offset), (8, 2));

    let r = log.read_isolated(0, 1 << 20, true, Isolation::ReadCommitted).unwrap();
    assert_eq!(batches(&r.records), vec![(-1, 0, false)], "read_committed stops at the LSO");
    assert_eq!(r.last_stable_offset, 2);
    let r = log.read_isolated(2, 1 << 20, true, Isolation::ReadCommitted).unwrap();
    assert!(r.records.is_empty(), "at the LSO: nothing yet, and no error");
    assert_eq!(log.read(0, 1 << 20, true).unwrap().records.len(), log.read(0, 1 << 20, true).unwrap().records.len());

    log.append_marker(7, 0, ControlType::Abort, 0, NOW).unwrap(); // 8
    assert_eq!(log.offsets().last_stable_offset, 5, "producer 8 is still open");
    log.append_marker(8, 0, ControlType::Commit, 0, NOW).unwrap(); // 9
    assert_eq!(log.offsets().last_stable_offset, 10);

    let r = log.read_isolated(0, 1 << 20, true, Isolation::ReadCommitted).unwrap();
    assert_eq!(r.aborted, vec![AbortedTxn { producer_id: 7, first_offset: 2, last_offset: 8, last_stable_offset: 5 }]);
    assert_eq!(batches(&r.records).len(), 6, "both markers are returned too");
    // A read starting after the abort marker needs no aborted list; one of only the plain
    // records before the transaction neither.
    assert!(log.read_isolated(9, 1 << 20, true, Isolation::ReadCommitted).unwrap().aborted.is_empty());
    let first = log.read_isolated(0, 1, true, Isolation::ReadCommitted).unwrap();
    assert_eq!(batches(&first.records), vec![(-1, 0, false)]);
    assert!(first.aborted.is_empty(), "records 0..=1 hold nothing of the aborted transaction");
    assert!(log.read_isolated(0, 1 << 20, true, Isolation::ReadUncommitted).unwrap().aborted.is_empty());
}

#[test]
fn clients_cannot_write_markers_or_leave_a_transaction_open_outside_it() {
    let dir = tempdir().unwrap();
    let log = open(dir.path(), 1 << 20);
    let marker = batch::build_marker(7, 0, ControlType::Commit, 0, NOW);
    assert!(matches!(log.append(&marker, NOW), Err(AppendError::ClientControlBatch)));
    log.append(&txn_batch(7, 0, 0, 1), NOW).unwrap();
    // An idempotent (non-transactional) batch of the same producer while its transaction is
    // open is refused, as is a marker or a batch from an older epoch once a newer one wrote.
    let mut idem = batch::build(&[(None, Some(&b"x"[..]))], NOW);
    (&mut idem[43..51]).put_i64(7);
    (&mut idem[51..53]).put_i16(0);
    (&mut idem[53..57]).put_i32(1);
    let crc = crc32c::crc32c(&idem[21..]);
    (&mut idem[17..21]).put_u32(crc);
    assert!(matches!(log.append(&idem, NOW), Err(AppendError::Sequence(_))));
    log.append_marker(7, 1, ControlType::Abort, 0, NOW).unwrap();
    assert!(matches!(log.append(&txn_batch(7, 0, 1, 1), NOW), Err(AppendError::Sequence(_))));
    assert!(log.append_marker(7, 0, ControlType::Abort, 0, NOW).is_err());
    assert_eq!(log.offsets().last_stable_offset, log.offsets().high_watermark);
}

/// Segments of ~300 bytes: every few batches roll, so reopening has to combine snapshots,
/// `.txnindex` files and a replayed tail.
#[test]
fn transaction_state_survives_rolls_reopen_and_truncation() {
    let dir = tempdir().unwrap();
    let (aborted, lso, hw) = {
        let log = open(dir.path(), 300);
        for round in 0..6i64 {
            let pid = 100 + round;
            log.append(&txn_batch(pid, 0, 0, 2), NOW).unwrap();
            log.append(&plain_batch(1), NOW).unwrap();
            let control = if round % 2 == 0 { ControlType::Abort } else { ControlType::Commit };
            log.append_marker(pid, 0, control, 0, NOW).unwrap();
        }
        // One transaction left open across a roll.
        log.append(&txn_batch(200, 0, 0, 2), NOW).unwrap();
        for _ in 0..4 {
            log.append(&plain_batch(3), NOW).unwrap();
        }
        let o = log.offsets();
        (aborted_seen(&log), o.last_stable_offset, o.high_watermark)
    };
    assert_eq!(aborted.len(), 3);
    assert!(lso < hw);
    let files: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(files.iter().any(|f| f.ends_with(".txnindex")), "{files:?}");
    assert!(files.iter().any(|f| f.ends_with(".producer-state")), "{files:?}");

    let log = open(dir.path(), 300);
    assert_eq!(aborted_seen(&log), aborted, "aborted transactions after reopen");
    assert_eq!(log.offsets().last_stable_offset, lso, "the open transaction still holds the LSO");
    log.append_marker(200, 0, ControlType::Commit, 0, NOW).unwrap();
    assert_eq!(log.offsets().last_stable_offset, log.offsets().high_watermark);

    // Cutting the log before the last abort marker forgets that abort.
    let last = *aborted.last().unwrap();
    log.truncate_to(last.last_offset, NOW).unwrap();
    assert_eq!(aborted_seen(&log), aborted[..2].to_vec());
    assert_eq!(log.offsets().last_stable_offset, last.first_offset, "its transaction is open again");
}
