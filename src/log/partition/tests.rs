//! Tests of `PartitionLog`: offsets, reads, rolling, recovery, timestamps, retention, flushing,
//! and a model test that runs random operations against a `Vec`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;
use tempfile::tempdir;

use super::{PartitionLog, LEADER_EPOCH};
use crate::log::batch::tests::build_batch;
use crate::log::batch::{BatchHeader, HEADER_LEN};
use crate::log::files::FileCache;
use crate::log::format::{parse_segment_name, segment_file, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};
use crate::log::{AppendError, CleanerSettings, PartitionConfig, ReadError, TopicPartition};

/// The wall clock the tests pretend it is.
const NOW: i64 = 1_700_000_000_000;

pub(super) fn config() -> PartitionConfig {
    PartitionConfig {
        segment_bytes: 1024,
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

fn open(dir: &Path, cfg: &PartitionConfig) -> PartitionLog {
    open_with(dir, cfg, &FileCache::unbounded())
}

fn open_with(dir: &Path, cfg: &PartitionConfig, files: &Arc<FileCache>) -> PartitionLog {
    PartitionLog::open(dir, TopicPartition::new("t", 0), cfg.clone(), NOW, crate::log::RecoveryMode::VerifyTail, files)
        .expect("opening the partition")
}

fn key_for(offset: i64) -> Vec<u8> {
    format!("key-{offset}").into_bytes()
}

fn value_for(offset: i64, len: usize) -> Vec<u8> {
    (0..len).map(|j| b'a' + ((offset as usize + j) % 26) as u8).collect()
}

/// A batch of `n` records meant to land at offsets `first..first + n`: each key names the offset
/// it should get. Record `i` has timestamp `ts + i`.
fn batch_for(first: i64, n: usize, ts: i64, value_len: usize) -> Vec<u8> {
    let keys: Vec<Vec<u8>> = (0..n as i64).map(|i| key_for(first + i)).collect();
    let values: Vec<Vec<u8>> = (0..n as i64).map(|i| value_for(first + i, value_len)).collect();
    let recs: Vec<(&[u8], &[u8], i64)> =
        keys.iter().zip(&values).enumerate().map(|(i, (k, v))| (k.as_slice(), v.as_slice(), i as i64)).collect();
    build_batch(ts, &recs)
}

/// A batch whose records have the given absolute timestamps.
fn batch_with_timestamps(first: i64, timestamps: &[i64]) -> Vec<u8> {
    let keys: Vec<Vec<u8>> = (0..timestamps.len() as i64).map(|i| key_for(first + i)).collect();
    let base = timestamps[0];
    let recs: Vec<(&[u8], &[u8], i64)> =
        keys.iter().zip(timestamps).map(|(k, ts)| (k.as_slice(), &b"v"[..], ts - base)).collect();
    build_batch(base, &recs)
}

/// Appends `n` records in one batch at the log end offset and checks where they went.
fn append_n(log: &PartitionLog, n: usize, ts: i64, value_len: usize) -> i64 {
    let first = log.offsets().log_end_offset;
    let info = log.append(&batch_for(first, n, ts, value_len), NOW).expect("append");
    assert_eq!(info.base_offset, first);
    assert_eq!(info.last_offset, first + n as i64 - 1);
    first
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    offset: i64,
    timestamp: i64,
    key: Vec<u8>,
    value: Vec<u8>,
}

#[derive(Debug, Clone)]
struct Decoded {
    header: BatchHeader,
    records: Vec<Rec>,
    bytes: Vec<u8>,
}

fn read_varint(b: &mut &[u8]) -> i64 {
    let mut v: u64 = 0;
    let mut shift = 0;
    loop {
        let (&byte, rest) = b.split_first().expect("varint runs past the record");
        *b = rest;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn take_bytes(b: &mut &[u8]) -> Vec<u8> {
    let len = read_varint(b);
    if len < 0 {
        return Vec::new();
    }
    let (head, rest) = b.split_at(len as usize);
    *b = rest;
    head.to_vec()
}

/// Splits read results into whole batches, checking CRCs and decoding every record. Panics on a
/// partial batch: `read` must only ever return whole ones.
fn decode(mut bytes: &[u8]) -> Vec<Decoded> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let header = BatchHeader::parse(bytes).expect("a whole batch header");
        let total = header.total_len();
        assert!(total <= bytes.len(), "read returned a partial batch: {total} declared, {} left", bytes.len());
        assert_eq!(crc32c::crc32c(&bytes[21..total]), header.crc, "CRC of returned batch");
        let mut body = &bytes[HEADER_LEN..total];
        let mut records = Vec::new();
        for _ in 0..header.records_count {
            let len = read_varint(&mut body) as usize;
            let (mut rec, rest) = body.split_at(len);
            body = rest;
            rec = &rec[1..]; // attributes
            let timestamp = header.base_timestamp + read_varint(&mut rec);
            let offset = header.base_offset + read_varint(&mut rec);
            let key = take_bytes(&mut rec);
            let value = take_bytes(&mut rec);
            assert_eq!(read_varint(&mut rec), 0, "no headers were written");
            records.push(Rec { offset, timestamp, key, value });
        }
        assert!(body.is_empty(), "trailing bytes after the records");
        out.push(Decoded { header, records, bytes: bytes[..total].to_vec() });
        bytes = &bytes[total..];
    }
    out
}

/// Every batch from the log start offset to the high watermark, read in small steps.
fn read_all(log: &PartitionLog) -> Vec<Decoded> {
    let offsets = log.offsets();
    let mut next = offsets.log_start_offset;
    let mut out: Vec<Decoded> = Vec::new();
    while next < offsets.high_watermark {
        let r = log.read(next, 300, true).expect("read");
        let batches = decode(&r.records);
        assert!(!batches.is_empty(), "no progress reading at {next}");
        // `next` is a batch boundary after the first batch, which may begin before a log start
        // that DeleteRecords moved inside it; every later batch must start exactly there.
        for b in batches {
            if out.is_empty() {
                assert!(b.header.base_offset <= next && next <= b.header.last_offset(), "first batch holds the start");
            } else {
                assert_eq!(b.header.base_offset, next, "batches follow each other");
            }
            next = b.header.last_offset() + 1;
            out.push(b);
        }
    }
    assert_eq!(next, offsets.high_watermark);
    out
}

fn concat(batches: &[Decoded]) -> Vec<u8> {
    batches.iter().flat_map(|b| b.bytes.iter().copied()).collect()
}

/// `(base offset, path)` of every `.log` file, sorted.
fn segment_logs(dir: &Path) -> Vec<(i64, PathBuf)> {
    let mut out: Vec<(i64, PathBuf)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter_map(|e| {
            let base = parse_segment_name(e.file_name().to_str()?)?;
            Some((base, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// `(byte position, base offset)` of each batch in a segment file, then `(file length, next offset)`.
fn batch_positions(file: &[u8], base: i64) -> Vec<(usize, i64)> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut next = base;
    while pos < file.len() {
        let h = BatchHeader::parse(&file[pos..]).unwrap();
        assert_eq!(h.base_offset, next, "segment file holds contiguous offsets");
        out.push((pos, h.base_offset));
        pos += h.total_len();
        next = h.last_offset() + 1;
    }
    assert_eq!(pos, file.len());
    out.push((pos, next));
    out
}

fn copy_dir(from: &Path, to: &Path) {
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn out_of_range(r: Result<super::ReadResult, ReadError>) -> (i64, i64, i64) {
    match r {
        Err(ReadError::OffsetOutOfRange { requested, log_start_offset, high_watermark }) => {
            (requested, log_start_offset, high_watermark)
        }
        other => panic!("expected OffsetOutOfRange, got {other:?}"),
    }
}

/// Fills a partition with `batches` batches of 1..=3 records and a 30-byte value.
fn fill(log: &PartitionLog, batches: usize) {
    for i in 0..batches {
        append_n(log, 1 + i % 3, NOW + i as i64 * 10, 30);
    }
}

// --- 1 and 2: append and read ---------------------------------------------------------------

#[test]
fn appends_get_contiguous_offsets_and_reads_return_whole_batches() {
    let dir = tempdir().unwrap();
    let mut cfg = config();
    cfg.segment_bytes = 1 << 20;
    let log = open(dir.path(), &cfg);
    assert_eq!((log.offsets().log_start_offset, log.offsets().high_watermark, log.offsets().log_end_offset), (0, 0, 0));

    let a = batch_for(0, 3, NOW, 10);
    let b = batch_for(3, 1, NOW, 10);
    let c = batch_for(4, 2, NOW, 10);
    let d = batch_for(6, 4, NOW, 10);
    let info = log.append(&a, NOW).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (0, 2));
    assert_eq!(info.log_append_time, -1);
    assert_eq!(info.log_start_offset, 0);
    let info = log.append(&b, NOW).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (3, 3));
    // One request carrying two batches.
    let info = log.append(&[c.clone(), d.clone()].concat(), NOW).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (4, 9));
    let o = log.offsets();
    assert_eq!((o.log_start_offset, o.high_watermark, o.log_end_offset), (0, 10, 10));

    // Stored bytes are the produced bytes with the offset and leader epoch filled in.
    let expected: Vec<Vec<u8>> = [(&a, 0i64), (&b, 3), (&c, 4), (&d, 6)]
        .iter()
        .map(|(bytes, base)| {
            let mut v = bytes.to_vec();
            v[0..8].copy_from_slice(&base.to_be_bytes());
            v[12..16].copy_from_slice(&LEADER_EPOCH.to_be_bytes());
            v
        })
        .collect();
    let all = log.read(0, usize::MAX, false).unwrap();
    assert_eq!(all.high_watermark, 10);
    assert_eq!(all.log_start_offset, 0);
    assert_eq!(all.records.as_ref(), expected.concat().as_slice());
    let records: Vec<Rec> = decode(&all.records).into_iter().flat_map(|b| b.records).collect();
    assert_eq!(records.len(), 10);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.key, key_for(i as i64));
        assert_eq!(r.value, value_for(i as i64, 10));
    }

    // Every offset, including those inside a batch, starts the read at its batch.
    let starts = [0, 0, 0, 1, 2, 2, 3, 3, 3, 3];
    for offset in 0..10 {
        let r = log.read(offset, usize::MAX, true).unwrap();
        assert_eq!(r.records.as_ref(), expected[starts[offset as usize]..].concat().as_slice(), "read at {offset}");
        let one = log.read(offset, 1, true).unwrap();
        assert_eq!(one.records.as_ref(), expected[starts[offset as usize]].as_slice());
    }

    // max_bytes cuts at a batch boundary, never inside a batch.
    let ab = expected[0].len() + expected[1].len();
    let r = log.read(0, ab, false).unwrap();
    assert_eq!(r.records.as_ref(), expected[..2].concat().as_slice());
    let r = log.read(0, ab - 1, false).unwrap();
    assert_eq!(r.records.as_ref(), expected[0].as_slice());
    let r = log.read(0, ab + expected[2].len() + 5, true).unwrap();
    assert_eq!(r.records.as_ref(), expected[..3].concat().as_slice());

    // At the high watermark: nothing yet. Outside [log start, high watermark]: out of range.
    let r = log.read(10, 1000, true).unwrap();
    assert!(r.records.is_empty());
    assert_eq!(r.high_watermark, 10);
    assert_eq!(out_of_range(log.read(11, 1000, true)), (11, 0, 10));
    assert_eq!(out_of_range(log.read(-1, 1000, true)), (-1, 0, 10));
    assert_eq!(out_of_range(log.read(i64::MAX, 1000, true)), (i64::MAX, 0, 10));

    // Appending more is visible right away.
    append_n(&log, 2, NOW, 10);
    let r = log.read(10, 1000, true).unwrap();
    assert_eq!(r.high_watermark, 12);
    assert_eq!(decode(&r.records)[0].header.base_offset, 10);
}

#[test]
fn invalid_appends_are_rejected_and_assign_nothing() {
    let dir = tempdir().unwrap();
    let log = open(dir.path(), &config());
    append_n(&log, 2, NOW, 5);
    let mut bad = batch_for(2, 1, NOW, 5);
    let last = bad.len() - 1;
    bad[last] ^= 0x55;
    assert!(log.append(&bad, NOW).is_err());
    assert!(log.append(&[], NOW).is_err());
    let good = batch_for(2, 1, NOW, 5);
    // A valid batch followed by a torn one: the whole request is rejected.
    assert!(log.append(&[&good[..], &good[..20]].concat(), NOW).is_err());
    assert_eq!(log.offsets().log_end_offset, 2);
    assert_eq!(append_n(&log, 1, NOW, 5), 2);
    assert_eq!(read_all(&log).len(), 2);
}

#[test]
fn min_one_returns_a_first_batch_larger_than_max_bytes() {
    let dir = tempdir().unwrap();
    let log = open(dir.path(), &config());
    append_n(&log, 3, NOW, 100);
    append_n(&log, 1, NOW, 10);
    let batches = read_all(&log);
    let first = &batches[0].bytes;
    assert!(first.len() > 300);

    for max_bytes in [0, 1, 12, 61, first.len() - 1] {
        let r = log.read(0, max_bytes, true).unwrap();
        assert_eq!(r.records.as_ref(), first.as_slice(), "max_bytes {max_bytes}");
        let r = log.read(1, max_bytes, true).unwrap();
        assert_eq!(r.records.as_ref(), first.as_slice(), "inside the batch");
        let r = log.read(0, max_bytes, false).unwrap();
        assert!(r.records.is_empty(), "max_bytes {max_bytes} without min_one");
    }
    let r = log.read(3, 0, true).unwrap();
    assert_eq!(r.records.as_ref(), batches[1].bytes.as_slice());
}

// --- 3: rolling ---------------------------------------------------------------------------------

#[test]
fn small_segments_roll_and_reads_cross_their_boundaries() {
    let dir = tempdir().unwrap();
    let cfg = config();
    let log = open(dir.path(), &cfg);
    fill(&log, 40);
    let leo = log.offsets().log_end_offset;
    assert_eq!(leo, (0..40).map(|i| 1 + i % 3).sum::<i64>());

    let logs = segment_logs(dir.path());
    assert!(logs.len() >= 4, "expected several segments, got {logs:?}");
    assert_eq!(logs[0].0, 0);
    let mut next = 0;
    for (base, path) in &logs {
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, format!("{base:020}.log"));
        assert!(segment_file(dir.path(), *base, INDEX_SUFFIX).exists());
        assert!(segment_file(dir.path(), *base, TIME_INDEX_SUFFIX).exists());
        let bytes = fs::read(path).unwrap();
        assert!(bytes.len() as u64 <= cfg.segment_bytes, "{name} too big");
        assert_eq!(*base, next, "segments are contiguous");
        next = batch_positions(&bytes, *base).last().unwrap().1;
    }
    assert_eq!(next, leo);

    // Stepping through the whole log in small reads gives every record once, in order.
    let records: Vec<Rec> = read_all(&log).into_iter().flat_map(|b| b.records).collect();
    assert_eq!(records.len() as i64, leo);
    for (i, r) in records.iter().enumerate() {
        assert_eq!((r.offset, &r.key), (i as i64, &key_for(i as i64)));
    }
    // Reads at and just before each segment base start in the right segment.
    for (base, _) in logs.iter().skip(1) {
        let r = decode(&log.read(*base, 1, true).unwrap().records);
        assert_eq!(r[0].header.base_offset, *base);
        let r = decode(&log.read(base - 1, 1, true).unwrap().records);
        assert_eq!(r[0].header.last_offset(), base - 1);
        // A read that starts in one segment and asks for a lot still returns whole batches.
        let r = decode(&log.read(base - 1, 1 << 20, true).unwrap().records);
        assert!(r[0].header.base_offset < *base);
    }
}

#[test]
fn a_request_larger_than_a_segment_gets_a_segment_of_its_own() {
    let dir = tempdir().unwrap();
    let log = open(dir.path(), &config());
    append_n(&log, 1, NOW, 10);
    append_n(&log, 4, NOW, 400); // about 1.7 KB against a 1 KB segment size
    append_n(&log, 1, NOW, 10);
    let bases: Vec<i64> = segment_logs(dir.path()).iter().map(|s| s.0).collect();
    assert_eq!(bases, vec![0, 1, 5]);
    assert_eq!(read_all(&log).len(), 3);
}

// --- 4: reopen and recovery -------------------------------------------------------------------

#[test]
fn reopen_keeps_offsets_and_data_and_appends_continue() {
    let dir = tempdir().unwrap();
    let cfg = config();
    let before = {
        let log = open(dir.path(), &cfg);
        fill(&log, 30);
        (log.offsets(), concat(&read_all(&log)))
    };
    let log = open(dir.path(), &cfg);
    assert_eq!(log.offsets(), before.0);
    assert_eq!(log.durable_offset(), before.0.log_end_offset);
    assert_eq!(concat(&read_all(&log)), before.1);
    let leo = before.0.log_end_offset;
    assert_eq!(append_n(&log, 2, NOW, 30), leo);
    drop(log);

    // And once more, with the appended batch on disk too.
    let log = open(dir.path(), &cfg);
    assert_eq!(log.offsets().log_end_offset, leo + 2);
    let all = read_all(&log);
    assert_eq!(concat(&all[..all.len() - 1]), before.1);
    assert_eq!(all.last().unwrap().records[1].key, key_for(leo + 1));
}

#[test]
fn reopen_of_an_empty_partition_and_of_an_empty_active_segment() {
    let dir = tempdir().unwrap();
    let cfg = config();
    drop(open(dir.path(), &cfg));
    let log = open(dir.path(), &cfg);
    assert_eq!(log.offsets().log_end_offset, 0);
    assert_eq!(append_n(&log, 1, NOW, 1), 0);
    drop(log);

    // Retention rolls an expired active segment, leaving an empty one at the log end.
    let mut cfg = config();
    cfg.retention_ms = 1;
    let log = open(dir.path(), &cfg);
    assert_eq!(log.apply_retention(NOW + 1000).unwrap(), 1);
    drop(log);
    let log = open(dir.path(), &cfg);
    let o = log.offsets();
    assert_eq!((o.log_start_offset, o.log_end_offset), (1, 1));
    assert_eq!(append_n(&log, 1, NOW, 1), 1);
}

/// A partition of several segments and the facts recovery tests compare against.
struct Pristine {
    dir: tempfile::TempDir,
    batches: Vec<Decoded>,
    tail_base: i64,
    tail_bytes: Vec<u8>,
    /// `(position, base offset)` of the tail's batches, then `(length, log end offset)`.
    tail_batches: Vec<(usize, i64)>,
}

fn pristine(batches: usize) -> Pristine {
    let dir = tempdir().unwrap();
    let log = open(dir.path(), &config());
    fill(&log, batches);
    let all = read_all(&log);
    drop(log);
    let logs = segment_logs(dir.path());
    assert!(logs.len() >= 3);
    let (tail_base, tail_path) = logs.last().unwrap().clone();
    let tail_bytes = fs::read(tail_path).unwrap();
    let tail_batches = batch_positions(&tail_bytes, tail_base);
    assert!(tail_batches.len() >= 4, "want a few batches in the tail");
    Pristine { dir, batches: all, tail_base, tail_bytes, tail_batches }
}

impl Pristine {
    /// A copy of the partition directory to damage.
    fn copy(&self) -> tempfile::TempDir {
        let work = tempdir().unwrap();
        copy_dir(self.dir.path(), work.path());
        work
    }

    fn tail_path(&self, dir: &Path) -> PathBuf {
        segment_file(dir, self.tail_base, LOG_SUFFIX)
    }

    /// Opens a damaged copy and checks it holds exactly the batches below `end`, that the tail
    /// file was cut at `tail_len`, and that appending carries on at `end`.
    fn check_recovered(&self, work: &Path, end: i64, tail_len: usize, what: &str) {
        let log = open(work, &config());
        let o = log.offsets();
        assert_eq!(o.log_end_offset, end, "{what}: log end offset");
        assert_eq!(o.high_watermark, end, "{what}: high watermark");
        assert_eq!(o.log_start_offset, 0, "{what}: log start offset");
        assert_eq!(
            fs::metadata(self.tail_path(work)).unwrap().len(),
            tail_len as u64,
            "{what}: tail file truncated after the last valid batch"
        );
        let kept: Vec<Decoded> = self.batches.iter().filter(|b| b.header.base_offset < end).cloned().collect();
        assert_eq!(concat(&read_all(&log)), concat(&kept), "{what}: data before the damage");
        assert_eq!(
            out_of_range(log.read(end + 1, 100, true)).2,
            end,
            "{what}: nothing readable past the recovered end"
        );
        assert_eq!(append_n(&log, 2, NOW, 7), end, "{what}: append after recovery");
        let r = decode(&log.read(end, 1 << 20, false).unwrap().records);
        assert_eq!(r.len(), 1, "{what}");
        assert_eq!(r[0].records[1].key, key_for(end + 1), "{what}");
    }
}

#[test]
fn recovery_cuts_a_torn_tail_back_to_the_last_whole_batch() {
    let p = pristine(24);
    let n = p.tail_batches.len();
    let last = p.tail_batches[n - 2].0;
    // Every byte of the last batch; around every other batch's edges and header; and a sample
    // of the rest of the tail file.
    let mut cuts: Vec<usize> = (last..p.tail_bytes.len()).collect();
    for &(start, _) in &p.tail_batches[..n - 2] {
        cuts.extend([start.saturating_sub(1), start, start + 1, start + 12, start + 60]);
    }
    cuts.extend((0..last).step_by(13));
    cuts.sort_unstable();
    cuts.dedup();
    for cut in cuts {
        let work = p.copy();
        let f = fs::OpenOptions::new().write(true).open(p.tail_path(work.path())).unwrap();
        f.set_len(cut as u64).unwrap();
        drop(f);
        let &(keep, end) = p.tail_batches.iter().rev().find(|(pos, _)| *pos <= cut).unwrap();
        p.check_recovered(work.path(), end, keep, &format!("cut at byte {cut}"));
    }
}

#[test]
fn recovery_drops_a_tail_batch_with_a_flipped_byte() {
    let p = pristine(24);
    let n = p.tail_batches.len();
    let (start, base) = p.tail_batches[n - 2];
    let (file_len, leo) = p.tail_batches[n - 1];
    for pos in start..file_len {
        let rel = pos - start;
        if rel < 8 {
            // The base offset is not covered by the CRC: see the ignored test below.
            continue;
        }
        let work = p.copy();
        let mut bytes = p.tail_bytes.clone();
        bytes[pos] ^= 0xff;
        fs::write(p.tail_path(work.path()), &bytes).unwrap();
        let what = format!("byte {rel} of the last batch flipped");
        if (12..16).contains(&rel) {
            // The leader epoch is not covered by the CRC either; the batch is still whole.
            let log = open(work.path(), &config());
            assert_eq!(log.offsets().log_end_offset, leo, "{what}");
            let got: Vec<Rec> = read_all(&log).into_iter().flat_map(|b| b.records).collect();
            let want: Vec<Rec> = p.batches.iter().flat_map(|b| b.records.clone()).collect();
            assert_eq!(got, want, "{what}");
        } else {
            p.check_recovered(work.path(), base, start, &what);
        }
    }

    // Damage in an earlier tail batch loses everything from there on.
    let (start, base) = p.tail_batches[1];
    let work = p.copy();
    let mut bytes = p.tail_bytes.clone();
    bytes[start + HEADER_LEN + 3] ^= 0x01;
    fs::write(p.tail_path(work.path()), &bytes).unwrap();
    p.check_recovered(work.path(), base, start, "record byte of the second tail batch");

    // Zeros where the last batch should be (a torn write that extended the file).
    let work = p.copy();
    let mut bytes = p.tail_bytes.clone();
    bytes.extend_from_slice(&[0u8; 200]);
    fs::write(p.tail_path(work.path()), &bytes).unwrap();
    p.check_recovered(work.path(), leo, file_len, "zeros after the last batch");
}

#[test]
fn recovery_rejects_a_tail_batch_whose_base_offset_is_not_contiguous() {
    let p = pristine(24);
    let n = p.tail_batches.len();
    let (start, base) = p.tail_batches[n - 2];
    for rel in 1..8 {
        let work = p.copy();
        let mut bytes = p.tail_bytes.clone();
        bytes[start + rel] ^= 0xff;
        fs::write(p.tail_path(work.path()), &bytes).unwrap();
        p.check_recovered(work.path(), base, start, &format!("byte {rel} of the last batch's base offset flipped"));
    }
}

/// An offset, what a one-batch read there returns, and the timestamp lookup of its record.
type Lookup = (i64, Vec<u8>, Option<(i64, i64)>);

/// Results of reading at every offset, and of a timestamp lookup for every record timestamp.
fn lookups(log: &PartitionLog) -> Vec<Lookup> {
    let o = log.offsets();
    (o.log_start_offset..o.log_end_offset)
        .map(|off| {
            let r = log.read(off, 1, true).unwrap().records.to_vec();
            let first = &decode(&r)[0].header;
            assert!(
                first.base_offset <= off && off <= first.last_offset(),
                "read at {off} began with batch {}..={}",
                first.base_offset,
                first.last_offset()
            );
            let ts = decode(&r)[0].records.iter().find(|rec| rec.offset == off).unwrap().timestamp;
            (off, r, log.offset_for_timestamp(ts).unwrap())
        })
        .collect()
}

#[test]
fn missing_or_garbage_indexes_of_older_segments_are_rebuilt() {
    let p = pristine(24);
    let log = open(p.dir.path(), &config());
    let want = lookups(&log);
    let max_ts = log.max_timestamp().unwrap();
    drop(log);
    let logs = segment_logs(p.dir.path());
    let (seg, _) = logs[1];
    let index = segment_file(p.dir.path(), seg, INDEX_SUFFIX);
    let time_index = segment_file(p.dir.path(), seg, TIME_INDEX_SUFFIX);
    let index_bytes = fs::read(&index).unwrap();
    let time_bytes = fs::read(&time_index).unwrap();
    assert!(!index_bytes.is_empty() && !time_bytes.is_empty());

    let mut descending_times = Vec::new();
    for ts in [500i64, 400] {
        descending_times.extend_from_slice(&ts.to_be_bytes());
        descending_times.extend_from_slice(&0u32.to_be_bytes());
    }
    type Damage = (&'static str, Box<dyn Fn(&Path, &Path)>);
    let damages: Vec<Damage> = vec![
        (
            "both deleted",
            Box::new(|i: &Path, t: &Path| {
                fs::remove_file(i).unwrap();
                fs::remove_file(t).unwrap();
            }),
        ),
        ("offset index deleted", Box::new(|i: &Path, _: &Path| fs::remove_file(i).unwrap())),
        ("time index deleted", Box::new(|_: &Path, t: &Path| fs::remove_file(t).unwrap())),
        ("offset index torn", Box::new(|i: &Path, _: &Path| fs::write(i, [0xab; 13]).unwrap())),
        ("offset index points past the log", Box::new(|i: &Path, _: &Path| fs::write(i, [0xff; 16]).unwrap())),
        ("time index torn", Box::new(|_: &Path, t: &Path| fs::write(t, [0xab; 13]).unwrap())),
        ("time index not increasing", Box::new(move |_: &Path, t: &Path| fs::write(t, &descending_times).unwrap())),
    ];
    for (what, damage) in damages {
        let work = p.copy();
        let i = segment_file(work.path(), seg, INDEX_SUFFIX);
        let t = segment_file(work.path(), seg, TIME_INDEX_SUFFIX);
        damage(&i, &t);
        let log = open(work.path(), &config());
        assert_eq!(fs::read(&i).unwrap(), index_bytes, "{what}: offset index");
        assert_eq!(fs::read(&t).unwrap(), time_bytes, "{what}: time index");
        assert_eq!(lookups(&log), want, "{what}: lookups");
        assert_eq!(log.max_timestamp().unwrap(), max_ts, "{what}");
        drop(log);
        // The rebuilt files are trusted on the next open.
        let log = open(work.path(), &config());
        assert_eq!(lookups(&log), want, "{what}: lookups after a second open");
    }

    // The tail's indexes are rebuilt as well.
    let work = p.copy();
    fs::remove_file(segment_file(work.path(), p.tail_base, INDEX_SUFFIX)).unwrap();
    fs::write(segment_file(work.path(), p.tail_base, TIME_INDEX_SUFFIX), [1u8; 5]).unwrap();
    let log = open(work.path(), &config());
    assert_eq!(lookups(&log), want, "tail indexes");
}

#[test]
fn an_index_entry_pointing_inside_a_batch_is_not_trusted() {
    let p = pristine(24);
    let log = open(p.dir.path(), &config());
    let want = lookups(&log);
    drop(log);
    let seg = segment_logs(p.dir.path())[1].0;
    let work = p.copy();
    // One entry, (relative offset 0, position 1): well-formed, in range, and wrong.
    let mut entry = Vec::new();
    entry.extend_from_slice(&0u32.to_be_bytes());
    entry.extend_from_slice(&1u32.to_be_bytes());
    fs::write(segment_file(work.path(), seg, INDEX_SUFFIX), entry).unwrap();
    let log = open(work.path(), &config());
    assert_eq!(lookups(&log), want);
}

/// A rolled segment was fsynced before the next one existed, so one that is torn was damaged
/// afterwards. Recovery cuts it after its last whole batch and keeps the later segments: gaps
/// between segments are legal, and a read in the gap gets the next batch there is.
#[test]
fn a_torn_rolled_segment_is_cut_and_the_later_segments_kept() {
    let p = pristine(24);
    let logs = segment_logs(p.dir.path());
    let (base, path) = logs[logs.len() - 2].clone();
    let next_base = logs[logs.len() - 1].0;
    let bytes = fs::read(&path).unwrap();
    let batches = batch_positions(&bytes, base);
    let (start, lost_from) = batches[batches.len() - 2];
    let work = p.copy();
    let torn = segment_file(work.path(), base, LOG_SUFFIX);
    let f = fs::OpenOptions::new().write(true).open(&torn).unwrap();
    f.set_len((start + 30) as u64).unwrap();
    drop(f);

    let log = open(work.path(), &config());
    assert_eq!(log.offsets().log_end_offset, p.batches.last().unwrap().header.last_offset() + 1);
    let first_after = decode(&log.read(lost_from, 1, true).unwrap().records);
    assert_eq!(first_after[0].header.base_offset, next_base, "a read in the gap gets the next batch");
    let kept: Vec<Decoded> = p
        .batches
        .iter()
        .filter(|b| b.header.base_offset < lost_from || b.header.base_offset >= next_base)
        .cloned()
        .collect();
    let mut got = Vec::new();
    let mut next = 0;
    while next < log.offsets().high_watermark {
        for b in decode(&log.read(next, 300, true).unwrap().records) {
            next = b.header.last_offset() + 1;
            got.push(b);
        }
    }
    assert_eq!(concat(&got), concat(&kept));
}

#[test]
fn segment_ms_rolls_by_age() {
    let dir = tempdir().unwrap();
    let mut cfg = config();
    cfg.segment_bytes = 1 << 20;
    cfg.segment_ms = 1_000;
    let log = open(dir.path(), &cfg);
    log.append(&batch_for(0, 1, NOW, 1), NOW).unwrap();
    log.append(&batch_for(1, 1, NOW, 1), NOW + 1_000).unwrap();
    assert_eq!(segment_logs(dir.path()).len(), 1);
    log.append(&batch_for(2, 1, NOW, 1), NOW + 1_001).unwrap();
    log.append(&batch_for(3, 1, NOW, 1), NOW + 1_002).unwrap();
    let bases: Vec<i64> = segment_logs(dir.path()).iter().map(|s| s.0).collect();
    assert_eq!(bases, vec![0, 2]);
}

// --- 5: timestamps ------------------------------------------------------------------------------

/// A small deterministic generator (64-bit LCG), so tests need no seeds from outside.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}

fn expected_for_timestamp(recs: &[(i64, i64)], target: i64) -> Option<(i64, i64)> {
    recs.iter().copied().find(|&(_, ts)| ts >= target)
}

#[test]
fn timestamp_lookups_find_the_first_record_at_or_after_the_target() {
    let dir = tempdir().unwrap();
    let mut cfg = config();
    cfg.segment_bytes = 600;
    cfg.index_interval_bytes = 60;
    let log = open(dir.path(), &cfg);
    assert_eq!(log.max_timestamp().unwrap(), None);
    assert_eq!(log.offset_for_timestamp(0).unwrap(), None);

    // Timestamps jump back and forth within and across batches.
    let mut rng = Lcg(7);
    let mut recs: Vec<(i64, i64)> = Vec::new();
    for i in 0..60 {
        let n = 1 + rng.next(4) as usize;
        let first = log.offsets().log_end_offset;
        let ts: Vec<i64> = (0..n).map(|j| 10_000 + rng.next(5_000) as i64 * 2 + (i * 7 + j as i64) % 2).collect();
        log.append(&batch_with_timestamps(first, &ts), NOW).unwrap();
        recs.extend(ts.iter().enumerate().map(|(j, &t)| (first + j as i64, t)));
    }
    assert!(segment_logs(dir.path()).len() >= 4);
    // One record holds the largest timestamp, in the middle of the log.
    let max_at = log.offsets().log_end_offset;
    log.append(&batch_with_timestamps(max_at, &[1, 50_000, 2]), NOW).unwrap();
    recs.extend([(max_at, 1), (max_at + 1, 50_000), (max_at + 2, 2)]);
    for i in 0..10 {
        let first = log.offsets().log_end_offset;
        let ts = [11_000 + i * 100, 10_500 + i * 100];
        log.append(&batch_with_timestamps(first, &ts), NOW).unwrap();
        recs.extend([(first, ts[0]), (first + 1, ts[1])]);
    }

    let check = |log: &PartitionLog, what: &str| {
        let mut targets: Vec<i64> = recs.iter().flat_map(|&(_, t)| [t - 1, t, t + 1]).collect();
        targets.extend([i64::MIN, -1, 0, 49_999, 50_000, 50_001, i64::MAX]);
        for t in targets {
            assert_eq!(log.offset_for_timestamp(t).unwrap(), expected_for_timestamp(&recs, t), "{what}: target {t}");
        }
        assert_eq!(log.max_timestamp().unwrap(), Some((max_at + 1, 50_000)), "{what}");
    };
    check(&log, "live");
    drop(log);
    let log = open(dir.path(), &cfg);
    check(&log, "after reopen");
}

#[test]
fn max_timestamp_of_the_last_batch_and_after_reopen() {
    let dir = tempdir().unwrap();
    let cfg = config();
    let log = open(dir.path(), &cfg);
    for i in 0..20 {
        let first = log.offsets().log_end_offset;
        log.append(&batch_with_timestamps(first, &[100 + i, 90 + i]), NOW).unwrap();
    }
    let leo = log.offsets().log_end_offset;
    assert_eq!(log.max_timestamp().unwrap(), Some((leo - 2, 119)));
    // A later segment with the maximum only in its last record.
    let first = leo;
    log.append(&batch_with_timestamps(first, &[5, 6, 7, 500]), NOW).unwrap();
    assert_eq!(log.max_timestamp().unwrap(), Some((first + 3, 500)));
    drop(log);
    let log = open(dir.path(), &cfg);
    assert_eq!(log.max_timestamp().unwrap(), Some((first + 3, 500)));
    assert_eq!(log.offset_for_timestamp(200).unwrap(), Some((first + 3, 500)));
    assert_eq!(log.offset_for_timestamp(501).unwrap(), None);
}

// --- 6: retention ------------------------------------------------------------------------------

/// `(base, size, largest timestamp)` of each segment, from the files.
fn segment_facts(dir: &Path) -> Vec<(i64, u64, i64)> {
    segment_logs(dir)
        .into_iter()
        .map(|(base, path)| {
            let bytes = fs::read(path).unwrap();
            let mut max_ts = -1;
            let mut pos = 0;
            while pos < bytes.len() {
                let h = BatchHeader::parse(&bytes[pos..]).unwrap();
                max_ts = max_ts.max(h.max_timestamp);
                pos += h.total_len();
            }
            (base, bytes.len() as u64, max_ts)
        })
        .collect()
}

#[test]
fn retention_by_time_deletes_old_segments_and_finally_rolls_the_active_one() {
    let dir = tempdir().unwrap();
    let mut cfg = config();
    cfg.retention_ms = 1_000;
    let log = open(dir.path(), &cfg);
    // Batch i is stamped 100 ms after batch i - 1.
    for i in 0..40 {
        append_n(&log, 2, NOW + i * 100, 30);
    }
    let facts = segment_facts(dir.path());
    assert!(facts.len() >= 4);
    let leo = log.offsets().log_end_offset;

    // Nothing is old enough yet.
    assert_eq!(log.apply_retention(facts[0].2 + 1_000).unwrap(), 0);
    assert_eq!(log.offsets().log_start_offset, 0);

    // Exactly the first two segments have only records older than the retention.
    let now = facts[1].2 + 1_001;
    assert!(now - facts[2].2 <= 1_000);
    assert_eq!(log.apply_retention(now).unwrap(), 2);
    let o = log.offsets();
    assert_eq!(o.log_start_offset, facts[2].0);
    assert_eq!(o.log_end_offset, leo);
    for (base, ..) in &facts[..2] {
        for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            assert!(!segment_file(dir.path(), *base, suffix).exists());
        }
    }
    assert_eq!(out_of_range(log.read(facts[2].0 - 1, 100, true)), (facts[2].0 - 1, facts[2].0, leo));
    let first = decode(&log.read(facts[2].0, 1, true).unwrap().records);
    assert_eq!(first[0].header.base_offset, facts[2].0);
    assert_eq!(read_all(&log).len(), 40 - (facts[2].0 / 2) as usize);

    // Once the active segment is expired too, it is rolled and everything goes.
    let last = facts.last().unwrap();
    let now = last.2 + 1_001;
    assert_eq!(log.apply_retention(now).unwrap(), facts.len() - 2);
    let o = log.offsets();
    assert_eq!((o.log_start_offset, o.high_watermark, o.log_end_offset), (leo, leo, leo));
    assert_eq!(segment_facts(dir.path()), vec![(leo, 0, -1)]);
    assert!(log.read(leo, 100, true).unwrap().records.is_empty());
    assert_eq!(out_of_range(log.read(leo - 1, 100, true)).1, leo);
    assert_eq!(append_n(&log, 1, now, 3), leo);
    // The fresh active segment is not expired, so nothing more goes.
    assert_eq!(log.apply_retention(now).unwrap(), 0);
    drop(log);
    let log = open(dir.path(), &cfg);
    assert_eq!(log.offsets().log_start_offset, leo);
    assert_eq!(log.offsets().log_end_offset, leo + 1);
}

#[test]
fn retention_by_size_keeps_at_least_retention_bytes_and_the_active_segment() {
    let dir = tempdir().unwrap();
    let mut cfg = config();
    let log = open(dir.path(), &cfg);
    fill(&log, 40);
    let facts = segment_facts(dir.path());
    let leo = log.offsets().log_end_offset;
    let total: u64 = facts.iter().map(|f| f.1).sum();

    // Disabled: nothing happens.
    assert_eq!(log.apply_retention(NOW).unwrap(), 0);

    // Keep about two segments' worth: the oldest go while what is left stays at or above it.
    let limit = facts[facts.len() - 2..].iter().map(|f| f.1).sum::<u64>() + 1;
    cfg.retention_bytes = limit as i64;
    log.set_config(cfg.clone());
    let mut left = total;
    let mut expect_deleted = 0;
    for f in &facts[..facts.len() - 1] {
        if left - f.1 < limit {
            break;
        }
        left -= f.1;
        expect_deleted += 1;
    }
    assert_eq!(expect_deleted, facts.len() - 3);
    assert_eq!(log.apply_retention(NOW).unwrap(), expect_deleted);
    let remaining = segment_facts(dir.path());
    assert_eq!(remaining, facts[expect_deleted..].to_vec());
    assert!(remaining.iter().map(|f| f.1).sum::<u64>() >= limit);
    assert_eq!(log.offsets().log_start_offset, remaining[0].0);
    assert_eq!(log.offsets().log_end_offset, leo);

    // Zero bytes: every segment but the active one goes; the active one is not rolled.
    cfg.retention_bytes = 0;
    log.set_config(cfg.clone());
    assert_eq!(log.apply_retention(NOW).unwrap(), 2);
    assert_eq!(segment_facts(dir.path()), facts[facts.len() - 1..].to_vec());
    let o = log.offsets();
    assert_eq!(o.log_start_offset, facts.last().unwrap().0);
    assert_eq!(o.log_end_offset, leo);
    let records: Vec<Rec> = read_all(&log).into_iter().flat_map(|b| b.records).collect();
    assert_eq!(records.first().unwrap().offset, o.log_start_offset);
    assert_eq!(records.last().unwrap().offset, leo - 1);
    assert_eq!(log.apply_retention(NOW).unwrap(), 0);
}

// --- 7: model test -----------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    /// One request: a batch per entry, each with that many records, values of `value_len`.
    Append {
        batches: Vec<usize>,
        value_len: usize,
    },
    /// Read at `log start + pick % (records + 1)`.
    Read {
        pick: usize,
        max_bytes: usize,
    },
    Reopen,
    /// Reopen after a crash that left a torn write at the end of the active segment.
    Crash,
    /// Apply size retention with this limit, in bytes.
    Retention {
        keep_bytes: i64,
    },
    /// Truncate at `log start + pick % (records + 1)`.
    TruncateTo {
        pick: usize,
    },
    /// Move the log start to `log start + pick % (records + 1)` (DeleteRecords).
    AdvanceStart {
        pick: usize,
    },
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (prop::collection::vec(1usize..5, 1..3), 0usize..60)
            .prop_map(|(batches, value_len)| Op::Append { batches, value_len }),
        3 => (any::<usize>(), 0usize..600).prop_map(|(pick, max_bytes)| Op::Read { pick, max_bytes }),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
        1 => (0i64..3000).prop_map(|keep_bytes| Op::Retention { keep_bytes }),
        1 => any::<usize>().prop_map(|pick| Op::TruncateTo { pick }),
        1 => any::<usize>().prop_map(|pick| Op::AdvanceStart { pick }),
    ]
}

/// What the partition should hold: its records and where each batch begins and ends.
#[derive(Debug, Default)]
struct Model {
    log_start: i64,
    records: Vec<(i64, Vec<u8>, Vec<u8>)>,
    batches: Vec<(i64, i64)>,
}

impl Model {
    fn log_end(&self) -> i64 {
        self.batches.last().map_or(self.log_start, |b| b.1 + 1)
    }

    fn batch_of(&self, offset: i64) -> (i64, i64) {
        *self.batches.iter().find(|b| b.0 <= offset && offset <= b.1).unwrap()
    }

    fn record(&self, offset: i64) -> &(i64, Vec<u8>, Vec<u8>) {
        &self.records[(offset - self.records[0].0) as usize]
    }

    fn pick(&self, pick: usize) -> i64 {
        let span = (self.log_end() - self.log_start) as usize;
        self.log_start + (pick % (span + 1)) as i64
    }

    /// Forgets what lies before `start`; a batch that holds `start` stays whole, as on disk.
    fn start_at(&mut self, start: i64) {
        self.log_start = start;
        self.batches.retain(|b| b.1 >= start);
        let first = self.batches.first().map_or(start, |b| b.0);
        self.records.retain(|r| r.0 >= first);
    }
}

fn check_against_model(log: &PartitionLog, model: &Model) -> Result<(), TestCaseError> {
    let o = log.offsets();
    prop_assert_eq!(o.log_start_offset, model.log_start);
    prop_assert_eq!(o.log_end_offset, model.log_end());
    prop_assert_eq!(o.high_watermark, model.log_end());
    for &(base, last) in &model.batches {
        for offset in [base.max(model.log_start), last] {
            let got = decode(&log.read(offset, 1, true).unwrap().records);
            prop_assert_eq!(got.len(), 1);
            prop_assert_eq!((got[0].header.base_offset, got[0].header.last_offset()), (base, last));
            for r in &got[0].records {
                let (off, k, v) = model.record(r.offset);
                prop_assert_eq!((r.offset, &r.key, &r.value), (*off, k, v));
            }
        }
    }
    let all: Vec<Rec> = read_all(log).into_iter().flat_map(|b| b.records).collect();
    prop_assert_eq!(all.len(), model.records.len());
    Ok(())
}

fn run_model(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempdir().unwrap();
    let mut cfg = config();
    cfg.segment_bytes = 512;
    cfg.index_interval_bytes = 64;
    // A budget of three files: segments are closed and reopened all the time.
    let files = FileCache::new(3);
    let mut log = open_with(dir.path(), &cfg, &files);
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Append { batches, value_len } => {
                let mut next = model.log_end();
                let mut request = Vec::new();
                for n in &batches {
                    request.extend(batch_for(next, *n, NOW, value_len));
                    model.batches.push((next, next + *n as i64 - 1));
                    for i in 0..*n as i64 {
                        model.records.push((next + i, key_for(next + i), value_for(next + i, value_len)));
                    }
                    next += *n as i64;
                }
                let info = log.append(&request, NOW).unwrap();
                prop_assert_eq!(info.last_offset, next - 1);
                prop_assert_eq!(info.base_offset, next - batches.iter().sum::<usize>() as i64);
            }
            Op::Read { pick, max_bytes } => {
                let span = (model.log_end() - model.log_start) as usize;
                let offset = model.log_start + (pick % (span + 1)) as i64;
                let got = decode(&log.read(offset, max_bytes, true).unwrap().records);
                if offset == model.log_end() {
                    prop_assert!(got.is_empty());
                } else {
                    prop_assert!(!got.is_empty());
                    let (base, last) = model.batch_of(offset);
                    prop_assert_eq!(got[0].header.base_offset, base);
                    prop_assert_eq!(got[0].header.last_offset(), last);
                    let bytes: usize = got.iter().map(|b| b.bytes.len()).sum();
                    prop_assert!(got.len() == 1 || bytes <= max_bytes);
                    for (expect, r) in (base..).zip(got.iter().flat_map(|b| &b.records)) {
                        prop_assert_eq!(r.offset, expect);
                        let (_, k, v) = model.record(r.offset);
                        prop_assert_eq!((&r.key, &r.value), (k, v));
                    }
                }
            }
            Op::Reopen => {
                drop(log);
                log = open_with(dir.path(), &cfg, &files);
            }
            Op::Crash => {
                drop(log);
                let (_, active) = segment_logs(dir.path()).pop().unwrap();
                let mut f = fs::OpenOptions::new().append(true).open(active).unwrap();
                std::io::Write::write_all(&mut f, &[0x5a; 37]).unwrap();
                drop(f);
                log = open_with(dir.path(), &cfg, &files);
            }
            Op::TruncateTo { pick } => {
                let offset = model.pick(pick);
                let end = log.truncate_to(offset, NOW).unwrap();
                // The batch holding `offset` goes whole: the end is its base offset.
                let model_end = model.batches.iter().find(|b| b.1 >= offset).map_or(model.log_end(), |b| b.0);
                model.batches.retain(|b| b.1 < offset);
                model.records.retain(|r| r.0 < model_end);
                model.log_start = model.log_start.min(model_end);
                prop_assert_eq!(end, model_end);
            }
            Op::AdvanceStart { pick } => {
                let offset = model.pick(pick);
                prop_assert_eq!(log.advance_log_start(offset).unwrap(), offset);
                model.start_at(offset);
                let below = log.read(offset - 1, 100, true);
                let refused = matches!(below, Err(ReadError::OffsetOutOfRange { .. }));
                prop_assert!(offset == 0 || refused, "a read below the new log start was served");
            }
            Op::Retention { keep_bytes } => {
                cfg.retention_bytes = keep_bytes;
                log.set_config(cfg.clone());
                log.apply_retention(NOW).unwrap();
                let start = log.offsets().log_start_offset;
                prop_assert!(start >= model.log_start);
                prop_assert!(
                    start == model.log_start || start == model.log_end() || model.batches.iter().any(|b| b.0 == start),
                    "log start {} is not a batch boundary",
                    start
                );
                model.start_at(start);
            }
        }
        check_against_model(&log, &model)?;
    }
    Ok(())
}

proptest! {
    // A fixed seed keeps the run deterministic; no regression files are written next to this one.
    #![proptest_config(ProptestConfig {
        cases: 128,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x6772_6567_6f72),
        ..ProptestConfig::default()
    })]

    #[test]
    fn partition_agrees_with_a_vec_model(ops in prop::collection::vec(op_strategy(), 1..40)) {
        run_model(ops)?;
    }
}

// --- 8: flushing --------------------------------------------------------------------------------

#[tokio::test]
async fn flush_to_makes_appended_offsets_durable() {
    let dir = tempdir().unwrap();
    let log = open(dir.path(), &config());
    assert_eq!(log.durable_offset(), 0);
    log.flush_to(0).await.unwrap();
    append_n(&log, 3, NOW, 10);
    let end = log.offsets().log_end_offset;
    log.flush_to(end).await.unwrap();
    assert!(log.durable_offset() >= end);
    // Across a roll: the rolled segment is synced as well.
    fill(&log, 20);
    assert!(segment_logs(dir.path()).len() > 1);
    let end = log.offsets().log_end_offset;
    log.flush_to(end).await.unwrap();
    assert_eq!(log.durable_offset(), end);
    // Already durable: returns at once.
    log.flush_to(1).await.unwrap();
    drop(log);
    let log = open(dir.path(), &config());
    assert_eq!(log.durable_offset(), end, "what recovery found is durable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_flushes_all_complete() {
    let dir = tempdir().unwrap();
    let log = Arc::new(open(dir.path(), &config()));
    let mut tasks = Vec::new();
    for round in 0..4 {
        for _ in 0..3 {
            append_n(&log, 2, NOW, 40);
        }
        let target = log.offsets().log_end_offset;
        for _ in 0..4 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move { log.flush_to(target).await.map(|()| (round, target)) }));
        }
    }
    let last = log.offsets().log_end_offset;
    for t in tasks {
        let (round, target) = t.await.unwrap().unwrap();
        assert!(log.durable_offset() >= target, "round {round}: durable {} < {target}", log.durable_offset());
    }
    log.flush_to(last).await.unwrap();
    assert_eq!(log.durable_offset(), last);
}

#[test]
fn flush_due_follows_flush_interval_messages() {
    let dir = tempdir().unwrap();
    let mut cfg = config();
    cfg.flush_interval_messages = Some(5);
    let log = open(dir.path(), &cfg);
    let due = |n: usize| {
        let first = log.offsets().log_end_offset;
        log.append(&batch_for(first, n, NOW, 1), NOW).unwrap().flush_due
    };
    assert!(!due(2));
    assert!(!due(2));
    assert!(due(1));
}

#[test]
fn log_append_time_topics_stamp_the_broker_time() {
    let dir = tempdir().unwrap();
    let mut cfg = config();
    cfg.log_append_time = true;
    let log = open(dir.path(), &cfg);
    let info = log.append(&batch_for(0, 2, 5, 3), NOW + 7).unwrap();
    assert_eq!(info.log_append_time, NOW + 7);
    let b = decode(&log.read(0, 1000, true).unwrap().records);
    assert!(b[0].header.is_log_append_time());
    assert_eq!(b[0].header.max_timestamp, NOW + 7);
    assert_eq!(log.offset_for_timestamp(NOW).unwrap(), Some((0, NOW + 7)));
    assert_eq!(log.max_timestamp().unwrap(), Some((1, NOW + 7)));
}

#[test]
fn compacted_partitions_refuse_keyless_records_by_index() {
    let dir = tempdir().unwrap();
    let mut cfg = config();
    cfg.compact = true;
    let log = open(dir.path(), &cfg);
    // A null key (-1 length) for the second record: build the record by hand.
    let keyed = crate::log::batch::build(&[(Some(b"k1"), Some(b"v")), (Some(b"k2"), Some(b"v"))], NOW);
    log.append(&keyed, NOW).unwrap();
    let keyless = crate::log::batch::build(&[(Some(b"k1"), Some(b"v")), (None, Some(b"v")), (None, None)], NOW);
    match log.append(&keyless, NOW) {
        Err(AppendError::KeylessRecords { record_indexes }) => assert_eq!(record_indexes, vec![1, 2]),
        other => panic!("expected KeylessRecords, got {other:?}"),
    }
    assert_eq!(log.offsets().log_end_offset, 2, "nothing of the refused batch was stored");
}

/// Durable mode: what is written but not yet fsynced is invisible; the log fsyncs on its own
/// (nobody calls `flush_to` here) and only then moves the high watermark and wakes readers.
#[tokio::test]
async fn in_durable_mode_the_high_watermark_follows_the_fsync() {
    let dir = tempdir().unwrap();
    let cfg = PartitionConfig { durable: true, ..config() };
    let log = PartitionLog::open_shared(
        dir.path(),
        TopicPartition::new("t", 0),
        cfg,
        NOW,
        crate::log::RecoveryMode::VerifyTail,
        &FileCache::unbounded(),
    )
    .unwrap();
    let woken = Arc::new(tokio::sync::Notify::new());
    for round in 0..3i64 {
        log.register_waiter(&woken);
        let first = round * 5;
        let info = log.append(&batch_for(first, 5, NOW, 10), NOW).unwrap();
        assert!(info.flush_due, "the log asks for its own fsync");
        // This runtime has one thread and the test has not yielded: the fsync has not run.
        let o = log.offsets();
        assert_eq!((o.high_watermark, o.log_end_offset), (first, first + 5), "written but not yet durable");
        assert!(log.read(first, 1 << 20, true).unwrap().records.is_empty(), "nothing past the fsync is served");
        tokio::time::timeout(std::time::Duration::from_secs(10), woken.notified())
            .await
            .expect("the background fsync wakes readers");
        assert_eq!(log.offsets().high_watermark, first + 5);
        assert!(log.durable_offset() >= first + 5, "visible only once durable");
        assert_eq!(read_all(&log).len(), round as usize + 1, "one batch per round, all visible");
    }
}

/// A full disk at every step of an append: the `.log` write (half of it landing), each index
/// write, the fsync and the new files of a roll, the fsync of a flush. Whichever step fails,
/// the failed append leaves no trace: offsets do not move, the next append gets the next
/// offset, everything acknowledged reads back exactly, and after a reopen (recovery) exactly
/// the acknowledged batches are there: no "failed" batch reappears, nothing is duplicated.
#[test]
fn a_full_disk_at_any_step_of_an_append_leaves_no_trace() {
    use crate::log::failpoint;
    // Batch sizes chosen to cross index intervals and segment rolls (1024 bytes) often.
    let sizes = [3usize, 1, 7, 2, 5, 1, 9, 4, 2, 6, 3, 8, 1, 1, 5];
    let run = |fail_at: Option<u32>| -> (u32, bool) {
        let dir = tempdir().unwrap();
        let log = open(dir.path(), &config());
        let mut acked: Vec<(i64, usize)> = Vec::new(); // (base offset, records)
        let mut next = 0i64;
        let mut failures = 0;
        if let Some(n) = fail_at {
            failpoint::fail_nth(n);
        } else {
            failpoint::reset();
        }
        for (i, &n) in sizes.iter().enumerate() {
            let batch = batch_for(next, n, NOW + i as i64, 40);
            let before = log.offsets();
            match log.append(&batch, NOW) {
                Ok(info) => {
                    assert_eq!(info.base_offset, next);
                    acked.push((next, n));
                    next += n as i64;
                }
                Err(_) => {
                    failures += 1;
                    assert_eq!(log.offsets(), before, "a failed append moved the offsets");
                    // The disk has room again: the same batch goes in at the same offset.
                    let info = log.append(&batch, NOW).expect("append after the failure");
                    assert_eq!(info.base_offset, next);
                    acked.push((next, n));
                    next += n as i64;
                }
            }
            if i % 4 == 3 {
                let before = log.durable_offset();
                if log.flush_blocking().is_err() {
                    failures += 1;
                    assert_eq!(log.durable_offset(), before);
                    log.flush_blocking().expect("flush after the failure");
                }
            }
        }
        let steps = failpoint::reset();
        let check = |log: &PartitionLog, when: &str| {
            let batches = read_all(log);
            let got: Vec<(i64, usize)> =
                batches.iter().map(|b| (b.header.base_offset, b.header.records_count as usize)).collect();
            assert_eq!(got, acked, "{when}, failing step {fail_at:?}");
            for b in &batches {
                for (j, r) in b.records.iter().enumerate() {
                    assert_eq!(r.key, key_for(b.header.base_offset + j as i64), "{when}: record at the wrong offset");
                }
            }
        };
        check(&log, "before reopening");
        drop(log);
        let log = open(dir.path(), &config());
        check(&log, "after reopening");
        assert_eq!(log.offsets().log_end_offset, next);
        let info = log.append(&batch_for(next, 2, NOW, 40), NOW).unwrap();
        assert_eq!(info.base_offset, next, "appends continue after the last acknowledged offset");
        (steps, failures > 0)
    };
    let (total_steps, failed) = run(None);
    assert!(!failed);
    assert!(total_steps > 40, "only {total_steps} failable steps: the batches should cross indexes and rolls");
    for n in 0..total_steps {
        let (_, failed) = run(Some(n));
        assert!(failed, "step {n} of {total_steps} did not fail anything");
    }
}

/// Damage inside an older (rolled, trusted) segment: a read at or after the damaged batch is
/// an error naming the file and position, never records from the next segment as if the
/// offsets in between did not exist. Reads before the damage keep working.
#[test]
fn corruption_in_an_older_segment_is_reported_not_skipped() {
    let p = pristine(24);
    let (base, _) = segment_logs(p.dir.path())[0].clone();
    type Damage = fn(&mut [u8], usize);
    let damages: [(&str, Damage); 4] = [
        ("magic", |b, at| b[at + 16] = 7),
        ("length too large", |b, at| b[at + 8..at + 12].copy_from_slice(&i32::MAX.to_be_bytes())),
        ("length too small", |b, at| b[at + 8..at + 12].copy_from_slice(&3i32.to_be_bytes())),
        ("offset going backwards", |b, at| b[at..at + 8].copy_from_slice(&0i64.to_be_bytes())),
    ];
    for (what, damage) in damages {
        let work = p.copy();
        let path = segment_file(work.path(), base, LOG_SUFFIX);
        let mut bytes = fs::read(&path).unwrap();
        let batches = batch_positions(&bytes, base);
        assert!(batches.len() >= 4, "the first segment should hold a few batches");
        let (at, damaged_offset) = batches[2];
        let segment_end = batches.last().unwrap().1;
        damage(&mut bytes, at);
        fs::write(&path, &bytes).unwrap();
        let log = open(work.path(), &config());
        assert_eq!(log.offsets().log_end_offset, p.batches.last().unwrap().header.last_offset() + 1, "{what}");
        let damaged_end = batches[3].1;
        for offset in damaged_offset..damaged_end {
            match log.read(offset, 1 << 20, true) {
                Err(ReadError::Corrupt { path: p, position, .. }) => {
                    assert_eq!((p.as_path(), position), (path.as_path(), at as u64), "{what}");
                }
                other => panic!("{what}: read at {offset} gave {other:?} instead of a corruption error"),
            }
        }
        // Past the damaged batch: its own batch (found through the index) or the same error,
        // never a later batch as if the offsets in between did not exist.
        for offset in damaged_end..segment_end {
            match log.read(offset, 1, true) {
                Ok(r) => {
                    let first = &decode(&r.records)[0].header;
                    assert!(first.base_offset <= offset && offset <= first.last_offset(), "{what}: read at {offset}");
                }
                Err(ReadError::Corrupt { .. }) => {}
                Err(e) => panic!("{what}: read at {offset}: {e}"),
            }
        }
        let before = log.read(batches[1].1, 1, true).unwrap();
        assert_eq!(decode(&before.records)[0].header.base_offset, batches[1].1, "{what}: data before the damage");
        let after = log.read(segment_end, 1, true).unwrap();
        assert_eq!(decode(&after.records)[0].header.base_offset, segment_end, "{what}: the next segment");
    }
}

/// A well-formed offset-index entry of an older segment that points at a later batch than its
/// offset says: a read of the offsets in between must still return them.
#[test]
fn an_index_entry_pointing_past_its_offset_is_caught_at_read_time() {
    let p = pristine(24);
    let (base, path) = segment_logs(p.dir.path())[0].clone();
    let batches = batch_positions(&fs::read(&path).unwrap(), base);
    assert!(batches.len() >= 5);
    let work = p.copy();
    // (relative offset of batch 1, position of batch 3): increasing, in range, and wrong.
    let mut entry = Vec::new();
    entry.extend_from_slice(&((batches[1].1 - base) as u32).to_be_bytes());
    entry.extend_from_slice(&(batches[3].0 as u32).to_be_bytes());
    fs::write(segment_file(work.path(), base, INDEX_SUFFIX), entry).unwrap();
    let log = open(work.path(), &config());
    for (_, offset) in &batches[1..batches.len() - 1] {
        let r = log.read(*offset, 1, true).unwrap();
        assert_eq!(decode(&r.records)[0].header.base_offset, *offset, "read at {offset}");
    }
}

/// How many descriptors this process holds on files under `dir`.
fn files_open_in(dir: &Path) -> usize {
    fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir))
        .count()
}

/// Descriptors are a budget: a rolled segment keeps only its `.log` open (for readers), not
/// its two index files, both after a roll and after a reopen.
#[test]
fn rolled_segments_hold_one_descriptor_each() {
    let dir = tempdir().unwrap();
    let open_in_dir = || files_open_in(dir.path());
    let log = open(dir.path(), &config());
    fill(&log, 40);
    let segments = segment_logs(dir.path()).len();
    assert!(segments >= 5, "want several rolled segments, got {segments}");
    let expected = segments + 2; // every .log, plus the active segment's two index files
    assert_eq!(open_in_dir(), expected, "after rolling {segments} segments");
    let before = read_all(&log);
    drop(log);
    let log = open(dir.path(), &config());
    assert_eq!(open_in_dir(), expected, "after reopening");
    assert_eq!(read_all(&log).len(), before.len(), "rolled segments still read");
    // Appends continue, and retention can still delete sealed segments.
    append_n(&log, 3, NOW, 40);
}

/// With a descriptor budget smaller than the segment count, segments open on demand: every
/// record still reads back, before and after reopening, while appends go on and retention
/// deletes; the files held open never exceed the budget.
#[test]
fn segments_beyond_the_descriptor_budget_open_on_demand() {
    let dir = tempdir().unwrap();
    let open_in_dir = || files_open_in(dir.path());
    let files = FileCache::new(2);
    let log = open_with(dir.path(), &config(), &files);
    fill(&log, 60);
    let segments = segment_logs(dir.path()).len();
    assert!(segments >= 8, "want many rolled segments, got {segments}");
    assert!(open_in_dir() <= 2, "{} files open with a budget of 2", open_in_dir());
    let before = read_all(&log);
    assert!(open_in_dir() <= 2, "{} files open after reading", open_in_dir());
    assert!(files.reopened() > segments as u64, "reads opened closed segments again");
    drop(log);

    let log = open_with(dir.path(), &config(), &files);
    assert!(open_in_dir() <= 2, "{} files open after reopening", open_in_dir());
    let bytes = |v: &[Decoded]| v.iter().map(|d| d.bytes.clone()).collect::<Vec<_>>();
    assert_eq!(bytes(&read_all(&log)), bytes(&before), "every batch reads back the same after reopening");
    let next = append_n(&log, 3, NOW, 40);
    assert_eq!(next, before.last().unwrap().header.last_offset() + 1);
    assert_eq!(log.delete_segments_before(next).unwrap(), segments - 1);
    assert_eq!(read_all(&log).last().unwrap().header.base_offset, next);
    assert!(open_in_dir() <= 2);
}

/// A truncation takes the durable offset and the high watermark down with the log end, so the
/// offsets appended after it are not taken as already fsynced (an acks=all produce would be
/// answered before its fsync) and become visible only once synced.
#[test]
fn truncation_takes_the_durable_offset_down_with_it() {
    let dir = tempdir().unwrap();
    let cfg = PartitionConfig { durable: true, ..config() };
    let log = open(dir.path(), &cfg);
    append_n(&log, 5, NOW, 10);
    assert_eq!((log.durable_offset(), log.offsets().high_watermark), (5, 5));
    assert_eq!(log.truncate_to(2, NOW).unwrap(), 0, "the batch holding offset 2 goes whole");
    assert_eq!((log.durable_offset(), log.offsets().high_watermark), (0, 0));
    append_n(&log, 3, NOW, 10);
    assert_eq!((log.durable_offset(), log.offsets().high_watermark), (3, 3));
    assert_eq!(read_all(&log).len(), 1);
}

/// DeleteRecords' core: the log start moves inside a batch, is refused past the high
/// watermark, survives a reopen through its checkpoint, and never moves back.
#[test]
fn the_log_start_moves_forward_only_up_to_the_high_watermark_and_survives_reopen() {
    let dir = tempdir().unwrap();
    let log = open(dir.path(), &config());
    fill(&log, 30);
    let end = log.offsets().log_end_offset;
    assert!(matches!(log.advance_log_start(end + 1), Err(ReadError::OffsetOutOfRange { .. })));
    assert_eq!(log.advance_log_start(7).unwrap(), 7);
    assert_eq!(log.advance_log_start(3).unwrap(), 7, "never moves back");
    assert!(matches!(log.read(6, 100, true), Err(ReadError::OffsetOutOfRange { .. })));
    drop(log);
    let log = open(dir.path(), &config());
    assert_eq!(log.offsets().log_start_offset, 7);
    let first = decode(&log.read(7, 1, true).unwrap().records);
    assert!(first[0].header.base_offset <= 7 && 7 <= first[0].header.last_offset());
    // Whole segments before the start are gone from disk.
    let segments_before = segment_logs(dir.path()).len();
    log.advance_log_start(end).unwrap();
    assert_eq!(segment_logs(dir.path()).len(), 1, "from {segments_before} segments to the active one");
    assert_eq!(log.offsets().log_start_offset, end);
}

/// A roll fsyncs the finished segment and creates the next one without holding the partition's
/// state lock: while it is paused just before its fsync, offsets and reads of the same partition
/// are answered at once (they used to wait for the disk).
#[test]
fn a_roll_waiting_on_the_disk_does_not_hold_up_readers() {
    use std::sync::mpsc;
    use std::time::Duration;
    let dir = tempdir().unwrap();
    let mut cfg = config();
    cfg.segment_bytes = 300;
    let log = Arc::new(open(dir.path(), &cfg));
    append_n(&log, 3, NOW, 60);
    let (paused_tx, paused_rx) = mpsc::channel();
    let (resume_tx, resume_rx) = mpsc::channel::<()>();
    let appender = {
        let log = log.clone();
        std::thread::spawn(move || {
            crate::log::failpoint::on_next_step(move || {
                paused_tx.send(()).unwrap();
                resume_rx.recv_timeout(Duration::from_secs(20)).unwrap();
            });
            // Over segment.bytes: this append rolls first.
            log.append(&batch_for(3, 3, NOW, 60), NOW).unwrap()
        })
    };
    paused_rx.recv_timeout(Duration::from_secs(10)).expect("the append reached the roll");
    let (answer_tx, answer_rx) = mpsc::channel();
    let reader = {
        let log = log.clone();
        std::thread::spawn(move || {
            let offsets = log.offsets();
            let records = log.read(0, 1 << 20, true).map(|r| r.records.len());
            let _ = answer_tx.send((offsets, records));
        })
    };
    let answer = answer_rx.recv_timeout(Duration::from_secs(2));
    resume_tx.send(()).unwrap();
    let (offsets, records) = answer.expect("offsets and reads answered while the roll waits on the disk");
    assert_eq!(offsets.log_end_offset, 3, "the rolling append is not in yet");
    assert!(records.unwrap() > 0);
    reader.join().unwrap();
    assert_eq!(appender.join().unwrap().base_offset, 3);
    assert_eq!(segment_logs(dir.path()).len(), 2);
}

#[test]
fn leader_epoch_checkpoint_follows_the_log() {
    use crate::log::format::LEADER_EPOCH_CHECKPOINT;
    let dir = tempdir().unwrap();
    let cfg = config();
    let checkpoint = || fs::read_to_string(dir.path().join(LEADER_EPOCH_CHECKPOINT)).unwrap();
    {
        let log = open(dir.path(), &cfg);
        assert_eq!(checkpoint(), format!("0\n1\n{LEADER_EPOCH} 0\n"), "a new partition's epoch starts at 0");
        for _ in 0..20 {
            append_n(&log, 5, NOW, 40);
        }
        assert_eq!(log.end_offset_for_epoch(LEADER_EPOCH), (LEADER_EPOCH, 100));
        assert_eq!(log.end_offset_for_epoch(LEADER_EPOCH + 1), (-1, -1));
        assert_eq!(log.epoch_for_offset(42), Some(LEADER_EPOCH));
        // DeleteRecords moves the epoch's start with the log start.
        log.advance_log_start(37).unwrap();
        assert_eq!(log.leader_epochs(), [(LEADER_EPOCH, 37)]);
        assert_eq!(checkpoint(), format!("0\n1\n{LEADER_EPOCH} 37\n"));
        assert_eq!(log.epoch_for_offset(36), None);
    }
    // A checkpoint left stale by a crash (epochs past the recovered end, an entry before the
    // log start) is clamped at open.
    fs::write(dir.path().join(LEADER_EPOCH_CHECKPOINT), "0\n3\n0 10\n4 60\n9 500\n").unwrap();
    let log = open(dir.path(), &cfg);
    assert_eq!(log.leader_epochs(), [(0, 37), (4, 60)]);
    assert_eq!(checkpoint(), "0\n2\n0 37\n4 60\n");
    assert_eq!(log.end_offset_for_epoch(0), (0, 60), "an earlier epoch ends where the next starts");
    assert_eq!(log.end_offset_for_epoch(2), (0, 60));
    assert_eq!(log.end_offset_for_epoch(4), (4, 100));
    // Truncating into the last epoch's start drops it; appends go on in the current epoch.
    log.truncate_to(50, NOW).unwrap();
    let end = log.offsets().log_end_offset;
    assert!(end <= 50);
    assert_eq!(log.leader_epochs(), [(0, 37)]);
    drop(log);
    // Without a checkpoint (a data dir from an earlier gregor) the epoch starts at the log start.
    fs::remove_file(dir.path().join(LEADER_EPOCH_CHECKPOINT)).unwrap();
    let log = open(dir.path(), &cfg);
    assert_eq!(log.leader_epochs(), [(LEADER_EPOCH, 37)]);
    assert_eq!(log.end_offset_for_epoch(LEADER_EPOCH), (LEADER_EPOCH, end));
}
