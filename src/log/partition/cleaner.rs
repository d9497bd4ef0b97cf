//! Log compaction (`cleanup.policy=compact`): the latest record of each key stays, older ones
//! go, records of aborted transactions go, and tombstones and transaction markers go as in
//! Kafka 4.1 (KIP-534): the first cleaning that keeps a tombstone, or a marker whose
//! transaction has no data left, rewrites its batch with the delete-horizon attribute and
//! baseTimestamp = now + `delete.retention.ms` (record timestamps kept, CRC recomputed); a
//! later cleaning past that horizon removes them. Offsets never change: kept records keep
//! theirs, and what is removed leaves gaps, which readers step over.
//!
//! A pass works on rolled segments only, below the last stable offset and the high watermark
//! and older than `min.compaction.lag.ms`, and only when the part not compacted before (after
//! the cleaner checkpoint, "dirty") is at least `min.cleanable.dirty.ratio` of them, or a dirty
//! segment's first batch is older than `max.compaction.lag.ms`. As Kafka's cleaner, it maps
//! each key of the dirty part to its latest offset (reading batch by batch) while the keys fit
//! `log.cleaner.dedupe.buffer.size` (times its load factor); where the map is full the pass
//! ends, and the rest waits for the next pass. Then, from the log start, it writes each
//! segment's survivors to `<base>.log.cleaned` (a record stays unless its key has a later
//! offset in the map), fsyncs it, and, holding the partition's locks only for this, swaps it
//! in: the segment's indexes are removed, the cleaned file renamed over the `.log`, the
//! directory fsynced and the segment opened again (its indexes rebuilt). A segment with
//! nothing to remove is left as it is. A stop at any point leaves either the old segment or
//! the cleaned one, both whole. Afterwards runs of adjacent cleaned segments are merged into
//! the first of each run while their sizes sum to at most `segment.bytes` and their offsets
//! fit the index (see `regroup` for how a stop during a merge is undone or finished at open).
//! Reads and writes together are held to `log.cleaner.io.max.bytes.per.second`.
//!
//! Kafka's cleaner differs in ways a client does not see: it merges segments while it cleans
//! them (here a merge follows the cleaning, and leaves out the last rolled segment and
//! segments with a producer-state snapshot), keeps a producer's last batch (emptied if need be) for its sequence state (here the producer state
//! lives in snapshots), and drops removed abort markers from the `.txnindex` (here the
//! partition's aborted-transaction list keeps them; a fetch may name an aborted transaction
//! whose data is gone, which clients ignore).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Write};

use tracing::{info, warn};

use super::PartitionLog;
use crate::log::batch::{self, BatchHeader, Filtered, NewHorizon};
use crate::log::format::{
    segment_file, CLEANED_SUFFIX, INDEX_SUFFIX, LOG_SUFFIX, MERGE_SUFFIX, PRODUCER_SNAPSHOT_SUFFIX, TIME_INDEX_SUFFIX,
    TXN_INDEX_SUFFIX,
};
use crate::log::producer_state::{AbortedTxn, ControlType};
use crate::log::segment::{ReadView, Segment};
use crate::log::CleanerLimits;

/// What a key costs in the map of a pass besides its bytes: the offset, the vector that holds
/// it, and the hash table's slot and slack.
const MAP_ENTRY_OVERHEAD: usize = 48;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CleanStats {
    /// Segments rewritten and swapped in.
    pub segments: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub records_removed: u64,
    /// Keys in the map of the pass, and the bytes they were counted as.
    pub keys: usize,
    pub map_bytes: usize,
    /// Bytes of the dirty part the map covered; the pass cleaned up to `cleaned_to` (the
    /// new cleaner checkpoint).
    pub dirty_bytes_mapped: u64,
    pub cleaned_to: i64,
    /// Segments merged into the one before them afterwards.
    pub segments_merged: usize,
    /// Bytes of the segments the pass read to clean them (Kafka's "log processed").
    pub bytes_read: u64,
    /// The base offset of the first segment swapped in: from there on the log's bytes changed
    /// (shared mode writes them to the store again).
    pub rewritten_from: Option<i64>,
}

/// A rolled segment picked for cleaning: base offset, size when picked, a view to read it.
struct Picked {
    base: i64,
    size: u64,
    next_offset: i64,
    view: ReadView,
}

impl PartitionLog {
    /// One compaction pass over this partition, if its config asks for compaction and enough
    /// of it is dirty (or a dirty segment is older than `max.compaction.lag.ms`). Blocking
    /// (reads, writes and fsyncs segments): run it off the runtime.
    pub fn compact(&self, now_ms: i64, limits: &CleanerLimits) -> io::Result<CleanStats> {
        // No DeleteRecords or truncation while segments are rewritten.
        let _checkpoint = self.checkpoint_lock.lock();
        let (picked, aborted, settings, interval) = {
            let mut inner = self.inner.lock();
            if !inner.config.compact {
                return Ok(CleanStats::default());
            }
            let hw = inner.high_watermark;
            let bound = inner.producers.last_stable_offset(hw).min(hw);
            let settings = inner.config.cleaner;
            let mut picked = Vec::new();
            for s in &inner.segments[..inner.segments.len() - 1] {
                let young = settings.min_compaction_lag_ms > 0
                    && s.max_timestamp >= 0
                    && now_ms - s.max_timestamp < settings.min_compaction_lag_ms;
                if s.next_offset > bound || young {
                    break;
                }
                picked.push(Picked {
                    base: s.base_offset,
                    size: s.size,
                    next_offset: s.next_offset,
                    view: s.read_view(s.base_offset),
                });
            }
            let end = picked.last().map_or(0, |p| p.next_offset);
            let start = inner.log_start_offset;
            (picked, inner.producers.aborted_between(start, end), settings, inner.config.index_interval_bytes)
        };
        let Some(last) = picked.last() else {
            return Ok(CleanStats::default());
        };
        let cleaned_to = crate::log::checkpoint::read_cleaned_to(&self.dir).unwrap_or(0);
        if last.next_offset <= cleaned_to {
            return Ok(CleanStats::default());
        }
        let dirty_from = picked.iter().position(|p| p.next_offset > cleaned_to).expect("the last one is dirty");
        let total: u64 = picked.iter().map(|p| p.size).sum();
        let dirty: u64 = picked[dirty_from..].iter().map(|p| p.size).sum();
        let filthy = total > 0 && dirty as f64 >= settings.min_cleanable_ratio * total as f64;
        if dirty == 0 || !(filthy || overdue(&picked[dirty_from..], now_ms, settings.max_compaction_lag_ms)) {
            return Ok(CleanStats::default());
        }
        let mut throttle = Throttle::new(limits.io_bytes_per_second);
        let mut stats = CleanStats::default();
        let started = std::time::Instant::now();
        info!(partition = %self.tp, dirty_bytes = dirty, total_bytes = total, "compaction pass starts");

        // Pass 1: the latest offset of every key of the dirty part, as far as the map has
        // room (Kafka's offset map): `end` is the first offset not mapped.
        let mut latest: HashMap<Vec<u8>, i64> = HashMap::new();
        let mut end = cleaned_to;
        let mut walk = TxnWalk::new(aborted.clone());
        for p in &picked[dirty_from..] {
            let mut problem = None;
            let mut full = false;
            p.view
                .for_each_header_at(|pos, h| {
                    if problem.is_some() || full || h.last_offset() < cleaned_to {
                        return;
                    }
                    if h.is_control() {
                        walk.on_marker(h, None);
                    } else if !walk.on_data(h) {
                        let read = p.view.read_one(pos, h).map_err(|e| e.to_string()).and_then(|bytes| {
                            throttle.pass(bytes.len() as u64);
                            batch::with_records(&bytes, |records| {
                                for r in records.iter().filter(|r| r.offset >= cleaned_to) {
                                    let Some(k) = r.key else { continue };
                                    if let Some(o) = latest.get_mut(k) {
                                        *o = r.offset;
                                        continue;
                                    }
                                    let cost = k.len() + MAP_ENTRY_OVERHEAD;
                                    if stats.map_bytes + cost > limits.map_bytes && !latest.is_empty() {
                                        full = true;
                                        end = r.offset;
                                        return;
                                    }
                                    stats.map_bytes += cost;
                                    latest.insert(k.to_vec(), r.offset);
                                }
                            })
                            .map_err(|e| e.to_string())
                        });
                        if let Err(e) = read {
                            problem = Some(e);
                        }
                    }
                    if !full {
                        end = h.last_offset() + 1;
                    }
                })
                .map_err(|e| io::Error::other(e.to_string()))?;
            if let Some(e) = problem {
                return Err(io::Error::other(format!("cannot compact {}: segment {}: {e}", self.tp, p.base)));
            }
            if full {
                stats.dirty_bytes_mapped += p.size;
                break;
            }
            end = p.next_offset;
            stats.dirty_bytes_mapped += p.size;
        }
        stats.keys = latest.len();
        stats.cleaned_to = end;

        // Pass 2: from the log start, each segment holding offsets below `end`: its survivors
        // to `<base>.log.cleaned`. Records from `end` on were not mapped and all stay.
        let mut cleaned: Vec<(&Picked, std::path::PathBuf)> = Vec::new();
        let mut walk = TxnWalk::new(aborted);
        let new_horizon = now_ms.saturating_add(settings.delete_retention_ms);
        for p in picked.iter().take_while(|p| p.base < end) {
            stats.bytes_read += p.size;
            let path = segment_file(&self.dir, p.base, CLEANED_SUFFIX);
            let mut out = io::BufWriter::new(File::create(&path)?);
            let mut written = 0u64;
            let mut removed = 0u64;
            let mut changed = false;
            let mut failed = None;
            p.view
                .for_each_header_at(|pos, h| {
                    if failed.is_some() {
                        return;
                    }
                    let result = (|| -> io::Result<()> {
                        let bytes = p.view.read_one(pos, h)?;
                        throttle.pass(bytes.len() as u64);
                        let horizon = h.delete_horizon_ms();
                        let past_horizon = horizon.is_some_and(|t| t <= now_ms);
                        let kept = if h.is_control() {
                            // A marker whose transaction has no data left first gets a delete
                            // horizon, and goes at the first cleaning after it.
                            let unneeded = walk.on_marker(h, batch::read_marker(&bytes).map(|(c, _)| c));
                            if unneeded && past_horizon {
                                Filtered::Nothing
                            } else {
                                let mark = NewHorizon { at_ms: new_horizon, always: unneeded };
                                batch::filter_records(&bytes, mark, |_, _, _| true)
                                    .map_err(|e| io::Error::other(e.to_string()))?
                            }
                        } else if walk.on_data(h) {
                            Filtered::Nothing
                        } else {
                            let mark = NewHorizon { at_ms: new_horizon, always: false };
                            batch::filter_records(&bytes, mark, |offset, key, value| match key {
                                _ if offset >= end => true,
                                // A record without a key cannot be compacted; Kafka drops them too.
                                None => false,
                                Some(k) => {
                                    latest.get(k).is_none_or(|&o| offset >= o) && (value.is_some() || !past_horizon)
                                }
                            })
                            .map_err(|e| io::Error::other(e.to_string()))?
                        };
                        let count = u64::try_from(h.records_count).unwrap_or(0);
                        match kept {
                            Filtered::All => {
                                out.write_all(&bytes)?;
                                written += bytes.len() as u64;
                            }
                            Filtered::Nothing => {
                                removed += count;
                                changed = true;
                            }
                            Filtered::Some(b) => {
                                let left = batch::BatchHeader::parse(&b).map_or(0, |nh| nh.records_count);
                                removed += count - u64::try_from(left).unwrap_or(0);
                                out.write_all(&b)?;
                                written += b.len() as u64;
                                changed = true;
                            }
                        }
                        Ok(())
                    })();
                    if let Err(e) = result {
                        failed = Some(e);
                    }
                })
                .map_err(|e| io::Error::other(e.to_string()))?;
            if let Some(e) = failed {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
            if !changed {
                // Nothing to swap: the segment stays as it is.
                drop(out);
                std::fs::remove_file(&path)?;
                continue;
            }
            let file = out.into_inner().map_err(|e| e.into_error())?;
            throttle.pass(written);
            file.sync_all()?;
            stats.bytes_before += p.size;
            stats.bytes_after += written;
            stats.records_removed += removed;
            cleaned.push((p, path));
        }

        // Pass 3: the swap, under the partition's locks.
        let _writing = self.append_lock.lock();
        let mut inner = self.inner.lock();
        let files = inner.files.clone();
        for (p, path) in cleaned {
            let Some(i) = inner.segments.iter().position(|s| s.base_offset == p.base && s.size == p.size) else {
                // Retention took it meanwhile.
                let _ = std::fs::remove_file(&path);
                continue;
            };
            if i + 1 == inner.segments.len() {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            inner.segments[i].retire();
            let swapped = (|| -> io::Result<()> {
                for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                    match std::fs::remove_file(segment_file(&self.dir, p.base, suffix)) {
                        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                        _ => {}
                    }
                }
                std::fs::rename(&path, segment_file(&self.dir, p.base, LOG_SUFFIX))?;
                File::open(&self.dir)?.sync_all()
            })();
            // Whichever file is under the name now (the cleaned one, or the old one when the
            // swap failed), the segment is opened from it again.
            let (mut fresh, _) = Segment::open(&self.dir, p.base, false, interval, now_ms, &files)?;
            fresh.seal();
            inner.segments[i] = fresh;
            if let Err(e) = swapped {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
            stats.segments += 1;
            stats.rewritten_from = Some(stats.rewritten_from.map_or(p.base, |b| b.min(p.base)));
        }
        drop(inner);
        drop(_writing);
        crate::log::checkpoint::write_cleaned_to(&self.dir, end)?;
        stats.segments_merged = self.regroup(end, interval, now_ms, &mut throttle)?;
        info!(partition = %self.tp, segments = stats.segments, bytes_before = stats.bytes_before,
            bytes_after = stats.bytes_after, records_removed = stats.records_removed, keys = stats.keys,
            map_bytes = stats.map_bytes, cleaned_to = end, segments_merged = stats.segments_merged,
            bytes_read = stats.bytes_read, elapsed_ms = started.elapsed().as_millis() as u64, "compacted");
        Ok(stats)
    }
}

impl PartitionLog {
    /// Merges runs of adjacent cleaned segments (all below `end`) into the first of each run
    /// while their sizes sum to at most `segment.bytes` and their offsets fit the index's
    /// relative offsets, as Kafka groups segments when it cleans them. Returns how many
    /// segments were merged away. Segments with a producer-state snapshot, and the last
    /// rolled one, stay as they are: producer state is rebuilt from them at open.
    ///
    /// Crash safety: the merged bytes go to `<first>.log.cleaned` (fsynced); then
    /// `<first>.merge` names the others (fsynced); then the first segment's indexes go, the
    /// cleaned file is renamed over its `.log`, the others' `.txnindex` entries are moved to
    /// its `.txnindex` and their files removed, and the intent goes last. Open undoes a merge
    /// whose `.log.cleaned` is still there and finishes one whose rename happened.
    fn regroup(&self, end: i64, interval: u64, now_ms: i64, throttle: &mut Throttle) -> io::Result<usize> {
        let (groups, segment_bytes) = {
            let inner = self.inner.lock();
            let limit = inner.config.segment_bytes;
            let rolled = &inner.segments[..inner.segments.len().saturating_sub(2)];
            let mut groups: Vec<Vec<Picked>> = Vec::new();
            let mut size = 0u64;
            for s in rolled.iter().take_while(|s| s.next_offset <= end) {
                let pinned = segment_file(&self.dir, s.base_offset, PRODUCER_SNAPSHOT_SUFFIX).exists();
                let fits = groups.last().and_then(|g| g.first()).is_some_and(|first| {
                    size + s.size <= limit && s.next_offset - 1 - first.base <= i64::from(i32::MAX)
                });
                let picked = Picked {
                    base: s.base_offset,
                    size: s.size,
                    next_offset: s.next_offset,
                    view: s.read_view(s.base_offset),
                };
                if pinned {
                    groups.push(Vec::new());
                    size = 0;
                } else if fits {
                    size += s.size;
                    groups.last_mut().expect("fits only with a group").push(picked);
                } else {
                    size = s.size;
                    groups.push(vec![picked]);
                }
            }
            groups.retain(|g| g.len() > 1);
            (groups, limit)
        };
        let mut merged = 0;
        for group in groups {
            let first = group[0].base;
            let path = segment_file(&self.dir, first, CLEANED_SUFFIX);
            let mut out = io::BufWriter::new(File::create(&path)?);
            for p in &group {
                crate::log::failpoint::step()?;
                // Positioned reads: the file's cursor belongs to whoever else has it open.
                let file = p.view.file.get()?;
                let mut chunk = vec![0u8; 1 << 20];
                let mut pos = 0u64;
                while pos < p.size {
                    let n = (p.size - pos).min(chunk.len() as u64) as usize;
                    std::os::unix::fs::FileExt::read_exact_at(&*file, &mut chunk[..n], pos)?;
                    out.write_all(&chunk[..n])?;
                    pos += n as u64;
                }
                throttle.pass(2 * p.size);
            }
            let file = out.into_inner().map_err(|e| e.into_error())?;
            crate::log::failpoint::step()?;
            file.sync_all()?;
            debug_assert!(group.iter().map(|p| p.size).sum::<u64>() <= segment_bytes);

            let _writing = self.append_lock.lock();
            let mut inner = self.inner.lock();
            let Some(i) = inner.segments.iter().position(|s| s.base_offset == first) else {
                let _ = std::fs::remove_file(&path);
                continue;
            };
            let unchanged = inner.segments.len() > i + group.len()
                && group.iter().zip(&inner.segments[i..]).all(|(p, s)| p.base == s.base_offset && p.size == s.size);
            if !unchanged {
                // Retention or another change got there first; the next pass looks again.
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let others: Vec<i64> = group[1..].iter().map(|p| p.base).collect();
            let intent: String = others.iter().map(|b| format!("{b}\n")).collect();
            crate::log::failpoint::step()?;
            let mut f = File::create(segment_file(&self.dir, first, MERGE_SUFFIX))?;
            f.write_all(intent.as_bytes())?;
            f.sync_all()?;
            File::open(&self.dir)?.sync_all()?;
            for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                crate::log::failpoint::step()?;
                remove_if_there(&segment_file(&self.dir, first, suffix))?;
            }
            inner.segments[i].retire();
            crate::log::failpoint::step()?;
            let renamed = std::fs::rename(&path, segment_file(&self.dir, first, LOG_SUFFIX))
                .and_then(|()| File::open(&self.dir)?.sync_all());
            // Whichever file is under the name now, the first segment is opened from it again.
            let files = inner.files.clone();
            let (mut fresh, _) = Segment::open(&self.dir, first, false, interval, now_ms, &files)?;
            fresh.seal();
            if let Err(e) = renamed {
                inner.segments[i] = fresh;
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_file(segment_file(&self.dir, first, MERGE_SUFFIX));
                return Err(e);
            }
            let gone: Vec<Segment> = inner.segments.splice(i..i + group.len(), [fresh]).skip(1).collect();
            merge_txn_indexes(&self.dir, first, &others)?;
            for seg in gone {
                crate::log::failpoint::step()?;
                seg.delete()?;
            }
            finish_merge(&self.dir, first, &others)?;
            merged += others.len();
        }
        Ok(merged)
    }
}

/// The part of a merge after the rename, also run at open: moves the `.txnindex` entries of
/// the merged-away segments `others` to `first`'s, removes their files, then the intent.
fn finish_merge(dir: &std::path::Path, first: i64, others: &[i64]) -> io::Result<()> {
    merge_txn_indexes(dir, first, others)?;
    for &b in others {
        for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX, PRODUCER_SNAPSHOT_SUFFIX] {
            crate::log::failpoint::step()?;
            remove_if_there(&segment_file(dir, b, suffix))?;
        }
    }
    File::open(dir)?.sync_all()?;
    crate::log::failpoint::step()?;
    remove_if_there(&segment_file(dir, first, MERGE_SUFFIX))?;
    File::open(dir)?.sync_all()
}

/// Adds the `.txnindex` entries of `others` (where still there) to `first`'s.
fn merge_txn_indexes(dir: &std::path::Path, first: i64, others: &[i64]) -> io::Result<()> {
    let mut aborted = crate::log::checkpoint::read_txn_index(dir, first)?;
    for &b in others {
        for a in crate::log::checkpoint::read_txn_index(dir, b)? {
            if !aborted.contains(&a) {
                aborted.push(a);
            }
        }
    }
    aborted.sort_by_key(|a| a.last_offset);
    crate::log::failpoint::step()?;
    crate::log::checkpoint::write_txn_index(dir, first, &aborted)
}

fn remove_if_there(path: &std::path::Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Whether a dirty segment waited longer than `max.compaction.lag.ms`, counted from its
/// first batch's timestamp as Kafka does; such a log is compacted below the dirty ratio.
fn overdue(dirty: &[Picked], now_ms: i64, max_lag_ms: i64) -> bool {
    if max_lag_ms == i64::MAX {
        return false;
    }
    let until = now_ms.saturating_sub(max_lag_ms.max(0));
    dirty.iter().any(
        |p| matches!(p.view.position_of(p.base), Ok(Some((_, h))) if h.max_timestamp > 0 && h.max_timestamp < until),
    )
}

/// Holds the cleaner to `log.cleaner.io.max.bytes.per.second` over a pass.
struct Throttle {
    bytes_per_second: f64,
    started: std::time::Instant,
    bytes: u64,
}

impl Throttle {
    fn new(bytes_per_second: f64) -> Self {
        Self { bytes_per_second, started: std::time::Instant::now(), bytes: 0 }
    }

    /// Counts `bytes` read or written, and waits as long as the pass is ahead of the rate.
    fn pass(&mut self, bytes: u64) {
        self.bytes += bytes;
        let wait = throttle_wait(self.bytes, self.started.elapsed(), self.bytes_per_second);
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

/// How long to wait after `bytes` in `elapsed` so as to stay at `bytes_per_second`.
pub(super) fn throttle_wait(bytes: u64, elapsed: std::time::Duration, bytes_per_second: f64) -> std::time::Duration {
    let due = bytes as f64 / bytes_per_second;
    if due.is_finite() && due > elapsed.as_secs_f64() {
        std::time::Duration::from_secs_f64(due - elapsed.as_secs_f64())
    } else {
        std::time::Duration::ZERO
    }
}

/// The transactions a cleaning meets while it walks the log in offset order, as Kafka's
/// `CleanedTransactionMetadata` tracks them: which data batches belong to aborted transactions
/// (they go), and which markers no longer have data of their transaction in the log (they go
/// once past their delete horizon). Aborted data always comes before its abort marker, and a
/// cleaning walks from the log start, so it meets both.
struct TxnWalk {
    /// Aborted transactions not reached yet, the one starting last first (popped from the end).
    pending: Vec<AbortedTxn>,
    /// Producers inside an aborted transaction: the offset of its abort marker, and whether
    /// data of it was met in this walk.
    aborting: HashMap<i64, (i64, bool)>,
    /// Producers with data of a not-aborted transaction met since their last marker.
    committing: HashSet<i64>,
}

impl TxnWalk {
    fn new(mut aborted: Vec<AbortedTxn>) -> Self {
        aborted.sort_by_key(|a| std::cmp::Reverse(a.first_offset));
        Self { pending: aborted, aborting: HashMap::new(), committing: HashSet::new() }
    }

    /// Enters the aborted transactions that start at or before `offset`, and forgets the one of
    /// `producer_id` if its marker lies before `offset` (a marker an earlier cleaning removed
    /// with all its data; the partition's aborted-transaction list may still name it).
    fn reach(&mut self, offset: i64, producer_id: i64) {
        while self.pending.last().is_some_and(|a| a.first_offset <= offset) {
            let a = self.pending.pop().expect("checked just before");
            self.aborting.insert(a.producer_id, (a.last_offset, false));
        }
        if self.aborting.get(&producer_id).is_some_and(|&(marker, _)| marker < offset) {
            self.aborting.remove(&producer_id);
        }
    }

    /// A data batch: whether it belongs to an aborted transaction.
    fn on_data(&mut self, h: &BatchHeader) -> bool {
        self.reach(h.last_offset(), h.producer_id);
        if !h.is_transactional() {
            return false;
        }
        match self.aborting.get_mut(&h.producer_id) {
            Some((_, seen)) => {
                *seen = true;
                true
            }
            None => {
                self.committing.insert(h.producer_id);
                false
            }
        }
    }

    /// A marker (`control` is its type when readable): whether no data of its transaction is
    /// left in the log, so that the marker itself may go.
    fn on_marker(&mut self, h: &BatchHeader, control: Option<ControlType>) -> bool {
        self.reach(h.last_offset(), h.producer_id);
        match control {
            Some(ControlType::Abort) => !self.aborting.remove(&h.producer_id).is_some_and(|(_, seen)| seen),
            Some(ControlType::Commit) => !self.committing.remove(&h.producer_id),
            None => false,
        }
    }
}

/// Undoes or finishes merges a stop interrupted (see `regroup`), then removes cleaned
/// segments a stop left half-written (at open).
pub fn remove_leftovers(dir: &std::path::Path) -> io::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    let entries: Vec<_> = entries.flatten().collect();
    for e in &entries {
        let name = e.file_name();
        let Some(first) = name.to_str().and_then(|n| n.strip_suffix(&format!(".{MERGE_SUFFIX}"))) else { continue };
        let Ok(first) = first.parse::<i64>() else { continue };
        let cleaned = segment_file(dir, first, CLEANED_SUFFIX);
        if cleaned.exists() {
            // The rename did not happen: the segments are as they were.
            remove_if_there(&cleaned)?;
            remove_if_there(&e.path())?;
            File::open(dir)?.sync_all()?;
            continue;
        }
        let text = std::fs::read_to_string(e.path())?;
        let others: Vec<i64> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
        info!(dir = %dir.display(), segment = first, merged = others.len(), "finishing a segment merge a stop interrupted");
        finish_merge(dir, first, &others)?;
    }
    for e in entries {
        if e.file_name().to_str().is_some_and(|n| n.ends_with(&format!(".{CLEANED_SUFFIX}"))) {
            if let Err(err) = std::fs::remove_file(e.path()) {
                warn!(file = %e.path().display(), error = %err, "cannot remove a half-written cleaned segment");
            }
        }
    }
    Ok(())
}
