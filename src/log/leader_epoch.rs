//! The leader-epoch cache of a partition: for each leader epoch that wrote to the log, the
//! offset of its first record. Consumers (KIP-320) and followers ask it where an epoch ends,
//! to find out whether the log they read was truncated under them.
//!
//! Kafka keeps the same table in `leader-epoch-checkpoint`, and gregor keeps it in the same
//! file and text format (version, count, then `epoch start_offset` a line), with Kafka 4.1's
//! rules (`LeaderEpochFileCache`): epochs and start offsets only grow; a new entry drops the
//! entries it contradicts; moving the log start forward (DeleteRecords, retention) clamps the
//! first entry to it; truncating the log drops the entries that start at or past the cut.
//!
//! One gregor node leads every partition in epoch [`LEADER_EPOCH`](super::partition::LEADER_EPOCH)
//! from its first offset, so today the table holds one entry; shared mode bumps the epoch when
//! a partition changes hands and adds an entry there. The checkpoint is rewritten when an entry
//! is added (durably, before the epoch's first append) and, best effort, when the log start
//! moves or the log is truncated: a stale file is corrected at open, when the table is clamped
//! to the log's recovered bounds.

use std::io;
use std::path::Path;

use super::format::LEADER_EPOCH_CHECKPOINT;

/// Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET.
pub const UNDEFINED_EPOCH: i32 = -1;
pub const UNDEFINED_OFFSET: i64 = -1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

/// Entries in increasing epoch and start offset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    pub fn latest(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    /// Records that `epoch` starts at `start_offset`. Returns whether the table changed (the
    /// caller then persists it). An entry for the latest epoch at a later offset changes
    /// nothing; an entry that contradicts later ones (an epoch or offset at or below theirs)
    /// replaces them, as after a truncation.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || start_offset < 0 {
            return false;
        }
        if self.latest().is_some_and(|l| l.epoch == epoch && l.start_offset <= start_offset) {
            return false;
        }
        while self.entries.last().is_some_and(|l| l.epoch >= epoch || l.start_offset >= start_offset) {
            self.entries.pop();
        }
        self.entries.push(EpochEntry { epoch, start_offset });
        true
    }

    /// The end of `requested`: its own epoch (or the largest one below it that this log has)
    /// and the start of the next epoch, or the log end for the latest epoch. UNDEFINED for an
    /// undefined epoch or one after the latest. An epoch older than every entry ends where the
    /// first entry starts (its records are gone). Kafka's `endOffsetFor`.
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> (i32, i64) {
        if requested == UNDEFINED_EPOCH {
            return (UNDEFINED_EPOCH, UNDEFINED_OFFSET);
        }
        if self.latest().is_some_and(|l| l.epoch == requested) {
            return (requested, log_end_offset);
        }
        let higher = self.entries.partition_point(|e| e.epoch <= requested);
        match (higher.checked_sub(1).map(|i| self.entries[i]), self.entries.get(higher)) {
            (_, None) => (UNDEFINED_EPOCH, UNDEFINED_OFFSET),
            (None, Some(next)) => (requested, next.start_offset),
            (Some(floor), Some(next)) => (floor.epoch, next.start_offset),
        }
    }

    /// The epoch that wrote `offset`, if the table knows.
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        let i = self.entries.partition_point(|e| e.start_offset <= offset);
        i.checked_sub(1).map(|i| self.entries[i].epoch)
    }

    /// The log start moved to `start`: entries wholly before it go, and the last of them is
    /// kept, starting at `start`. Returns whether the table changed.
    pub fn truncate_from_start(&mut self, start: i64) -> bool {
        let n = self.entries.partition_point(|e| e.start_offset <= start);
        if n == 0 || (n == 1 && self.entries[0].start_offset == start) {
            return false;
        }
        let kept = EpochEntry { epoch: self.entries[n - 1].epoch, start_offset: start };
        self.entries.drain(..n);
        self.entries.insert(0, kept);
        true
    }

    /// The log was cut at `end`: entries starting at or past it go. Returns whether the table
    /// changed.
    pub fn truncate_from_end(&mut self, end: i64) -> bool {
        let keep = self.entries.partition_point(|e| e.start_offset < end);
        let changed = keep < self.entries.len();
        self.entries.truncate(keep);
        changed
    }

    fn encode(&self) -> String {
        let mut text = format!("0\n{}\n", self.entries.len());
        for e in &self.entries {
            text.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
        }
        text
    }

    /// Parses a checkpoint; `None` if it does not parse or breaks the table's order.
    fn decode(text: &str) -> Option<Self> {
        let mut lines = text.lines().map(str::trim);
        if lines.next()? != "0" {
            return None;
        }
        let count: usize = lines.next()?.parse().ok()?;
        let mut cache = Self::default();
        for _ in 0..count {
            let (epoch, offset) = lines.next()?.split_once(' ')?;
            let entry = EpochEntry { epoch: epoch.trim().parse().ok()?, start_offset: offset.trim().parse().ok()? };
            let ordered = cache.latest().is_none_or(|l| l.epoch < entry.epoch && l.start_offset < entry.start_offset);
            if entry.epoch < 0 || entry.start_offset < 0 || !ordered {
                return None;
            }
            cache.entries.push(entry);
        }
        Some(cache)
    }

    /// The partition's checkpoint; empty when there is none. A damaged file is reported and
    /// ignored: the caller assigns the current epoch again, which loses only the boundaries of
    /// older epochs.
    pub fn read(dir: &Path) -> Self {
        match std::fs::read_to_string(dir.join(LEADER_EPOCH_CHECKPOINT)) {
            Ok(text) => Self::decode(&text).unwrap_or_else(|| {
                tracing::error!(dir = %dir.display(), "the leader epoch checkpoint does not parse; starting it again");
                Self::default()
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::default(),
            Err(e) => {
                tracing::error!(dir = %dir.display(), error = %e, "cannot read the leader epoch checkpoint; starting it again");
                Self::default()
            }
        }
    }

    /// Replaces the checkpoint with this table, durably.
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        super::checkpoint::write_atomic(dir, LEADER_EPOCH_CHECKPOINT, self.encode().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        let mut c = LeaderEpochCache::default();
        for &(epoch, start) in entries {
            assert!(c.assign(epoch, start));
        }
        c
    }

    fn pairs(c: &LeaderEpochCache) -> Vec<(i32, i64)> {
        c.entries().iter().map(|e| (e.epoch, e.start_offset)).collect()
    }

    #[test]
    fn assign_keeps_epochs_and_offsets_increasing() {
        let mut c = cache(&[(0, 0), (2, 10)]);
        assert!(!c.assign(2, 15), "the latest epoch, later: nothing new");
        assert!(!c.assign(-1, 20));
        assert!(c.assign(3, 20));
        assert_eq!(pairs(&c), [(0, 0), (2, 10), (3, 20)]);
        // An entry that goes back (a truncation, then a new leader) replaces what it contradicts.
        assert!(c.assign(4, 12));
        assert_eq!(pairs(&c), [(0, 0), (2, 10), (4, 12)]);
        assert!(c.assign(2, 5));
        assert_eq!(pairs(&c), [(0, 0), (2, 5)]);
    }

    #[test]
    fn end_offsets_follow_kafkas_rules() {
        let c = cache(&[(2, 10), (4, 30), (7, 50)]);
        let leo = 80;
        assert_eq!(c.end_offset_for(7, leo), (7, 80), "latest epoch ends at the log end");
        assert_eq!(c.end_offset_for(4, leo), (4, 50));
        assert_eq!(c.end_offset_for(5, leo), (4, 50), "missing epoch: the one below it, ending at the next");
        assert_eq!(c.end_offset_for(1, leo), (1, 10), "older than every entry: ends where the first starts");
        assert_eq!(c.end_offset_for(8, leo), (-1, -1), "after the latest: undefined");
        assert_eq!(c.end_offset_for(-1, leo), (-1, -1));
        assert_eq!(LeaderEpochCache::default().end_offset_for(0, leo), (-1, -1));
        assert_eq!(c.epoch_for_offset(9), None);
        assert_eq!(c.epoch_for_offset(10), Some(2));
        assert_eq!(c.epoch_for_offset(49), Some(4));
        assert_eq!(c.epoch_for_offset(1000), Some(7));
    }

    #[test]
    fn truncation_from_either_end() {
        let mut c = cache(&[(2, 10), (4, 30), (7, 50)]);
        assert!(!c.truncate_from_start(5), "before the first entry: nothing to drop");
        assert!(!c.truncate_from_start(10));
        assert!(c.truncate_from_start(35));
        assert_eq!(pairs(&c), [(4, 35), (7, 50)]);
        assert!(c.truncate_from_start(50));
        assert_eq!(pairs(&c), [(7, 50)]);
        let mut c = cache(&[(2, 10), (4, 30), (7, 50)]);
        assert!(!c.truncate_from_end(51));
        assert!(c.truncate_from_end(50));
        assert_eq!(pairs(&c), [(2, 10), (4, 30)]);
        assert!(c.truncate_from_end(0));
        assert!(c.entries().is_empty());
    }

    #[test]
    fn checkpoint_round_trips_and_damage_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(LeaderEpochCache::read(dir.path()), LeaderEpochCache::default());
        let c = cache(&[(0, 0), (3, 17)]);
        c.write(dir.path()).unwrap();
        assert_eq!(LeaderEpochCache::read(dir.path()), c);
        let text = std::fs::read_to_string(dir.path().join(LEADER_EPOCH_CHECKPOINT)).unwrap();
        assert_eq!(text, "0\n2\n0 0\n3 17\n", "Kafka's leader-epoch-checkpoint format");
        for bad in ["1\n1\n0 0\n", "0\n2\n0 0\n", "0\n2\n3 5\n1 9\n", "0\n1\nx 0\n"] {
            std::fs::write(dir.path().join(LEADER_EPOCH_CHECKPOINT), bad).unwrap();
            assert_eq!(LeaderEpochCache::read(dir.path()), LeaderEpochCache::default(), "{bad:?}");
        }
    }
}
