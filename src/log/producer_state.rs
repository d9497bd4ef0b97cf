//! Sequence tracking for idempotent producers, per partition.
//!
//! For each producer id the partition keeps the producer epoch and the last five appended
//! batches' sequence ranges and offsets (Kafka keeps five: a producer has at most five requests
//! in flight per connection). A retried batch that matches one of them is a duplicate and is
//! answered with its original offset; a batch that does not continue the last sequence is out
//! of order. Pure logic: no IO, time is not involved.

use std::collections::{HashMap, VecDeque};

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
}

impl ProducerStateTable {
    /// Decides what to do with a batch. A producer this partition has no state for (new, or its
    /// state predates what recovery replays) is accepted at any sequence.
    pub fn check(&self, h: &BatchHeader) -> Result<SequenceCheck, SequenceError> {
        if h.producer_id < 0 || h.base_sequence < 0 {
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
        if h.producer_epoch > entry.epoch {
            // A new epoch starts its sequences over.
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

    /// Records an appended batch (with its assigned base offset).
    pub fn record(&mut self, h: &BatchHeader) {
        if h.producer_id < 0 || h.base_sequence < 0 {
            return;
        }
        let entry = self.producers.entry(h.producer_id).or_default();
        if h.producer_epoch != entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
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
