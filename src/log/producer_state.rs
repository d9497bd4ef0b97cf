//! Producer state per partition: idempotent producers' sequences and transactional producers'
//! open transactions, as Kafka's producer state manager keeps it.
//!
//! For each producer id the partition keeps the producer epoch and the last five appended
//! batches' sequence ranges and offsets (Kafka keeps five: a producer has at most five requests
//! in flight per connection). A retried batch that matches one of them is a duplicate and is
//! answered with its original offset; a batch that does not continue the last sequence is out
//! of order.
//!
//! Transactions: a producer's first transactional batch opens its transaction at that offset;
//! the coordinator's control batch (commit or abort marker) closes it. The first offset of the
//! oldest transaction still open, or closed by a marker not yet below the high watermark, is
//! the last stable offset (LSO): read_committed consumers read no further. Aborted
//! transactions are listed (Kafka's aborted-transaction index) so that a fetch can tell those
//! consumers which producer's records to drop between which offsets.
//!
//! Pure logic: no IO, time is not involved. The table is saved in a snapshot when a segment is
//! rolled ([`ProducerStateTable::encode`]) and rebuilt at open from the newest snapshot plus the
//! batches after it.

use std::collections::{BTreeMap, HashMap, VecDeque};

use bytes::{Buf, BufMut};

use super::batch::BatchHeader;

const KEPT_BATCHES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchMeta {
    first_seq: i32,
    last_seq: i32,
    first_offset: i64,
}

#[derive(Debug, Clone, Default)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMeta>,
    /// The first offset of this producer's open transaction in this partition.
    txn_first_offset: Option<i64>,
    /// The max timestamp of the producer's last batch (DescribeProducers).
    last_timestamp: i64,
    /// The coordinator epoch of the last marker written for this producer.
    coordinator_epoch: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Not an idempotent batch, or the next one in sequence: append it.
    Append,
    /// Already appended at `first_offset`: answer with that offset, append nothing.
    Duplicate { first_offset: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    #[error("producer {producer_id}: sequence {got} does not follow {last}")]
    OutOfOrder { producer_id: i64, got: i32, last: i32 },
    #[error("producer {producer_id}: epoch {got} is older than the current epoch {current}")]
    FencedEpoch { producer_id: i64, got: i16, current: i16 },
    #[error("producer {producer_id} sent a non-transactional batch while its transaction is open in this partition")]
    OutsideTransaction { producer_id: i64 },
}

/// A commit or abort marker (the type field of a control record's key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlType {
    Abort,
    Commit,
}

/// One aborted transaction in a partition (an entry of Kafka's `.txnindex`): the producer's
/// records from `first_offset` up to the abort marker at `last_offset` are to be dropped by
/// read_committed consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
    /// The partition's last stable offset when the abort completed.
    pub last_stable_offset: i64,
}

/// One producer as DescribeProducers shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerInfo {
    pub producer_id: i64,
    pub epoch: i16,
    pub last_sequence: i32,
    pub last_timestamp: i64,
    pub coordinator_epoch: i32,
    /// -1 when the producer has no open transaction here.
    pub txn_start_offset: i64,
}

fn last_seq_of(h: &BatchHeader) -> i32 {
    // Sequences wrap around at i32::MAX, like Kafka's.
    ((i64::from(h.base_sequence) + i64::from(h.last_offset_delta)) % (i64::from(i32::MAX) + 1)) as i32
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

#[derive(Debug, Clone, Default)]
pub struct ProducerStateTable {
    producers: HashMap<i64, ProducerEntry>,
    /// Open transactions: first offset -> producer id.
    open: BTreeMap<i64, i64>,
    /// Transactions closed by a marker that is not yet below the high watermark, as (first
    /// offset, marker offset) in marker order: until a consumer can see the marker, they still
    /// hold the last stable offset back.
    closing: VecDeque<(i64, i64)>,
    /// Aborted transactions, in marker order.
    aborted: Vec<AbortedTxn>,
}

impl ProducerStateTable {
    /// Decides what to do with a data batch. A producer this partition has no state for (new,
    /// or its state predates what recovery replays) is accepted at any sequence.
    pub fn check(&self, h: &BatchHeader) -> Result<SequenceCheck, SequenceError> {
        if h.producer_id < 0 {
            return Ok(SequenceCheck::Append);
        }
        let Some(entry) = self.producers.get(&h.producer_id) else {
            return Ok(SequenceCheck::Append);
        };
        if h.producer_epoch < entry.epoch {
            return Err(SequenceError::FencedEpoch {
                producer_id: h.producer_id,
                got: h.producer_epoch,
                current: entry.epoch,
            });
        }
        if !h.is_transactional() && entry.txn_first_offset.is_some() {
            return Err(SequenceError::OutsideTransaction { producer_id: h.producer_id });
        }
        if h.base_sequence < 0 || h.producer_epoch > entry.epoch {
            // No sequence to check, or a new epoch, which starts its sequences over.
            return Ok(SequenceCheck::Append);
        }
        let last = last_seq_of(h);
        if let Some(dup) = entry.batches.iter().find(|b| b.first_seq == h.base_sequence && b.last_seq == last) {
            return Ok(SequenceCheck::Duplicate { first_offset: dup.first_offset });
        }
        match entry.batches.back() {
            Some(prev) if next_seq(prev.last_seq) != h.base_sequence => {
                Err(SequenceError::OutOfOrder { producer_id: h.producer_id, got: h.base_sequence, last: prev.last_seq })
            }
            _ => Ok(SequenceCheck::Append),
        }
    }

    /// Whether a marker for this producer at `epoch` may be written: the coordinator never goes
    /// back in epochs.
    pub fn check_marker(&self, producer_id: i64, epoch: i16) -> Result<(), SequenceError> {
        match self.producers.get(&producer_id) {
            Some(e) if epoch < e.epoch => Err(SequenceError::FencedEpoch { producer_id, got: epoch, current: e.epoch }),
            _ => Ok(()),
        }
    }

    /// Records an appended data batch (with its assigned base offset).
    pub fn record(&mut self, h: &BatchHeader) {
        if h.producer_id < 0 {
            return;
        }
        let entry = self.producers.entry(h.producer_id).or_default();
        if h.producer_epoch != entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        entry.last_timestamp = h.max_timestamp;
        if h.is_transactional() && entry.txn_first_offset.is_none() {
            entry.txn_first_offset = Some(h.base_offset);
            self.open.insert(h.base_offset, h.producer_id);
        }
        if h.base_sequence < 0 {
            return;
        }
        if entry.batches.len() == KEPT_BATCHES {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchMeta {
            first_seq: h.base_sequence,
            last_seq: last_seq_of(h),
            first_offset: h.base_offset,
        });
    }

    /// Records an appended marker (a control batch at `h.base_offset`): the producer's open
    /// transaction here, if any, is over. Markers carry the coordinator's epoch for the
    /// producer, which fences older ones.
    pub fn record_marker(&mut self, h: &BatchHeader, control: ControlType, coordinator_epoch: i32) {
        let entry = self.producers.entry(h.producer_id).or_default();
        if h.producer_epoch > entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        entry.coordinator_epoch = coordinator_epoch;
        entry.last_timestamp = h.max_timestamp;
        let Some(first) = entry.txn_first_offset.take() else {
            return;
        };
        self.open.remove(&first);
        self.closing.push_back((first, h.base_offset));
        if control == ControlType::Abort {
            // Kafka records the LSO as of the abort; this transaction no longer counts.
            let lso = self.open.keys().next().copied().unwrap_or(h.base_offset).min(h.base_offset);
            self.aborted.push(AbortedTxn {
                producer_id: h.producer_id,
                first_offset: first,
                last_offset: h.base_offset,
                last_stable_offset: lso,
            });
        }
    }

    /// The last stable offset given the high watermark: the first offset of the oldest
    /// transaction that is open, or closed by a marker at or past `high_watermark`.
    pub fn last_stable_offset(&mut self, high_watermark: i64) -> i64 {
        while self.closing.front().is_some_and(|&(_, marker)| marker < high_watermark) {
            self.closing.pop_front();
        }
        let open = self.open.keys().next().copied().unwrap_or(i64::MAX);
        let closing = self.closing.iter().map(|&(first, _)| first).min().unwrap_or(i64::MAX);
        open.min(closing).min(high_watermark)
    }

    /// The aborted transactions a fetch of `[start, end)` must report: those whose marker is
    /// at or after `start` and whose first record is before `end`.
    pub fn aborted_between(&self, start: i64, end: i64) -> Vec<AbortedTxn> {
        let from = self.aborted.partition_point(|a| a.last_offset < start);
        self.aborted[from..].iter().filter(|a| a.first_offset < end).copied().collect()
    }

    /// The aborted transactions whose markers lie in `[base, next)` (one segment's `.txnindex`).
    pub fn aborted_in(&self, base: i64, next: i64) -> Vec<AbortedTxn> {
        self.aborted.iter().filter(|a| (base..next).contains(&a.last_offset)).copied().collect()
    }

    /// Adds aborted transactions read from `.txnindex` files (older than anything replayed).
    pub fn add_aborted(&mut self, mut older: Vec<AbortedTxn>) {
        older.append(&mut self.aborted);
        older.sort_by_key(|a| a.last_offset);
        older.dedup();
        self.aborted = older;
    }

    /// Forgets aborted transactions whose markers are before the log start.
    pub fn forget_before(&mut self, log_start_offset: i64) {
        self.aborted.retain(|a| a.last_offset >= log_start_offset);
    }

    /// Forgets producers idle for longer than `max_idle_ms` (Kafka's
    /// `producer.id.expiration.ms`), judged by their last batch's timestamp; a producer with
    /// an open transaction here stays. Returns how many were forgotten.
    pub fn expire(&mut self, now_ms: i64, max_idle_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers
            .retain(|_, e| e.txn_first_offset.is_some() || now_ms.saturating_sub(e.last_timestamp) <= max_idle_ms);
        before - self.producers.len()
    }

    /// Whether the transaction of `producer_id` in `epoch` is open here: a transactional batch
    /// of it was appended and no marker has closed it since.
    pub fn in_transaction(&self, producer_id: i64, epoch: i16) -> bool {
        self.producers.get(&producer_id).is_some_and(|e| e.epoch == epoch && e.txn_first_offset.is_some())
    }

    /// Producers with state here, by producer id.
    pub fn producers(&self) -> Vec<ProducerInfo> {
        let mut out: Vec<ProducerInfo> = self
            .producers
            .iter()
            .map(|(&producer_id, e)| ProducerInfo {
                producer_id,
                epoch: e.epoch,
                last_sequence: e.batches.back().map_or(-1, |b| b.last_seq),
                last_timestamp: e.last_timestamp,
                coordinator_epoch: e.coordinator_epoch,
                txn_start_offset: e.txn_first_offset.unwrap_or(-1),
            })
            .collect();
        out.sort_by_key(|p| p.producer_id);
        out
    }

    /// The table as a snapshot file's bytes (see [`ProducerStateTable::decode`]). Aborted
    /// transactions are not in it: they are in the segments' `.txnindex` files.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(4 + self.producers.len() * 40);
        body.put_i32(self.producers.len() as i32);
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort_unstable();
        for id in ids {
            let e = &self.producers[id];
            body.put_i64(*id);
            body.put_i16(e.epoch);
            body.put_i32(e.coordinator_epoch);
            body.put_i64(e.last_timestamp);
            body.put_i64(e.txn_first_offset.unwrap_or(-1));
            body.put_u8(e.batches.len() as u8);
            for b in &e.batches {
                body.put_i32(b.first_seq);
                body.put_i32(b.last_seq);
                body.put_i64(b.first_offset);
            }
        }
        let mut out = Vec::with_capacity(body.len() + 6);
        out.put_i16(SNAPSHOT_VERSION);
        out.put_u32(crc32c::crc32c(&body));
        out.extend_from_slice(&body);
        out
    }

    /// Reads a snapshot written by [`ProducerStateTable::encode`]; `None` when it is damaged
    /// or of another version (the caller then rebuilds the state from the log).
    pub fn decode(mut b: &[u8]) -> Option<Self> {
        if b.len() < 10 || b.get_i16() != SNAPSHOT_VERSION {
            return None;
        }
        let crc = b.get_u32();
        if crc32c::crc32c(b) != crc {
            return None;
        }
        let count = b.get_i32();
        let mut table = Self::default();
        for _ in 0..count.max(0) {
            if b.remaining() < 31 {
                return None;
            }
            let id = b.get_i64();
            let mut e = ProducerEntry {
                epoch: b.get_i16(),
                coordinator_epoch: b.get_i32(),
                last_timestamp: b.get_i64(),
                ..ProducerEntry::default()
            };
            let first = b.get_i64();
            let n = b.get_u8();
            if b.remaining() < usize::from(n) * 16 || usize::from(n) > KEPT_BATCHES {
                return None;
            }
            for _ in 0..n {
                e.batches.push_back(BatchMeta {
                    first_seq: b.get_i32(),
                    last_seq: b.get_i32(),
                    first_offset: b.get_i64(),
                });
            }
            if first >= 0 {
                e.txn_first_offset = Some(first);
                table.open.insert(first, id);
            }
            table.producers.insert(id, e);
        }
        b.is_empty().then_some(table)
    }
}

const SNAPSHOT_VERSION: i16 = 1;

/// Bytes of one `.txnindex` entry: version i16 (0), producer id i64, first offset i64, last
/// offset i64, last stable offset i64 (Kafka's layout).
pub const TXN_INDEX_ENTRY: usize = 34;

pub fn encode_txn_index(entries: &[AbortedTxn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * TXN_INDEX_ENTRY);
    for a in entries {
        out.put_i16(0);
        out.put_i64(a.producer_id);
        out.put_i64(a.first_offset);
        out.put_i64(a.last_offset);
        out.put_i64(a.last_stable_offset);
    }
    out
}

/// Entries of a `.txnindex` file; a torn last entry is ignored.
pub fn decode_txn_index(b: &[u8]) -> Vec<AbortedTxn> {
    b.chunks_exact(TXN_INDEX_ENTRY)
        .filter(|c| c[..2] == [0, 0])
        .map(|mut c| {
            c.advance(2);
            AbortedTxn {
                producer_id: c.get_i64(),
                first_offset: c.get_i64(),
                last_offset: c.get_i64(),
                last_stable_offset: c.get_i64(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(pid: i64, epoch: i16, seq: i32, count: i32, offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset: offset,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: count,
        }
    }

    #[test]
    fn duplicates_return_their_first_offset_and_gaps_are_refused() {
        let mut t = ProducerStateTable::default();
        for (seq, off) in [(0, 0), (3, 3), (6, 6)] {
            let b = batch(7, 0, seq, 3, off);
            assert_eq!(t.check(&b), Ok(SequenceCheck::Append));
            t.record(&b);
        }
        assert_eq!(t.check(&batch(7, 0, 3, 3, 99)), Ok(SequenceCheck::Duplicate { first_offset: 3 }));
        assert!(matches!(t.check(&batch(7, 0, 10, 1, 99)), Err(SequenceError::OutOfOrder { last: 8, .. })));
        assert_eq!(t.check(&batch(7, 0, 9, 1, 99)), Ok(SequenceCheck::Append));
        // Older epoch fenced, newer epoch starts over.
        assert!(matches!(t.check(&batch(7, -1, 9, 1, 99)), Err(SequenceError::FencedEpoch { .. })));
        t.record(&batch(7, 1, 0, 1, 20));
        assert!(matches!(t.check(&batch(7, 0, 9, 1, 99)), Err(SequenceError::FencedEpoch { .. })));
        assert_eq!(t.check(&batch(7, 1, 1, 1, 21)), Ok(SequenceCheck::Append));
    }

    #[test]
    fn idle_producers_expire_unless_a_transaction_of_theirs_is_open() {
        let mut t = ProducerStateTable::default();
        let mut idle = batch(1, 0, 0, 1, 0);
        idle.max_timestamp = 1_000;
        t.record(&idle);
        let mut open = batch(2, 0, 0, 1, 1);
        open.max_timestamp = 1_000;
        open.attributes = 0x10;
        t.record(&open);
        assert_eq!(t.expire(2_000, 1_000), 0, "idle for exactly the limit");
        assert_eq!(t.expire(2_001, 1_000), 1);
        assert_eq!(t.producers().iter().map(|p| p.producer_id).collect::<Vec<_>>(), vec![2]);
        // A forgotten producer is accepted again at any sequence, as a new one.
        assert_eq!(t.check(&batch(1, 0, 7, 1, 2)), Ok(SequenceCheck::Append));
    }

    #[test]
    fn a_transaction_is_open_from_its_first_batch_until_its_marker() {
        let mut t = ProducerStateTable::default();
        assert!(!t.in_transaction(3, 0));
        t.record(&batch(3, 0, 0, 1, 0));
        assert!(!t.in_transaction(3, 0), "an idempotent batch opens nothing");
        let mut first = batch(3, 0, 1, 2, 1);
        first.attributes = 0x10;
        t.record(&first);
        assert!(t.in_transaction(3, 0));
        assert!(!t.in_transaction(3, 1) && !t.in_transaction(4, 0), "another epoch or producer");
        let mut marker = batch(3, 0, -1, 1, 3);
        marker.attributes = 0x30;
        t.record_marker(&marker, ControlType::Commit, 0);
        assert!(!t.in_transaction(3, 0), "the marker closed it");
    }

    #[test]
    fn only_the_last_five_batches_are_remembered_and_sequences_wrap() {
        let mut t = ProducerStateTable::default();
        for i in 0..7 {
            t.record(&batch(1, 0, i, 1, i64::from(i)));
        }
        assert_eq!(t.check(&batch(1, 0, 6, 1, 0)), Ok(SequenceCheck::Duplicate { first_offset: 6 }));
        assert_eq!(t.check(&batch(1, 0, 2, 1, 0)), Ok(SequenceCheck::Duplicate { first_offset: 2 }));
        assert!(t.check(&batch(1, 0, 1, 1, 0)).is_err(), "forgotten batch is out of order");
        let mut w = ProducerStateTable::default();
        w.record(&batch(2, 0, i32::MAX - 1, 2, 0));
        assert_eq!(w.check(&batch(2, 0, 0, 1, 2)), Ok(SequenceCheck::Append));
        assert_eq!(t.check(&batch(-1, -1, -1, 1, 0)), Ok(SequenceCheck::Append));
    }
}
