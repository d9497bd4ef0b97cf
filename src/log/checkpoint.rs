//! What a partition keeps besides its segments: the log-start-offset checkpoint (the one fact
//! its segments cannot tell once the log start has moved inside a segment, DeleteRecords),
//! producer state snapshots and the rolled segments' aborted-transaction indexes.
//!
//! Checkpoints and snapshots are written whole and atomically: a temporary file is written and fsynced, renamed over the old
//! one, and the directory fsynced, so a crash leaves either the old value or the new one.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use super::format::{
    segment_file, CLEANER_CHECKPOINT, LOG_START_CHECKPOINT, PRODUCER_SNAPSHOT_SUFFIX, TXN_INDEX_SUFFIX,
};
use super::producer_state::{decode_txn_index, encode_txn_index, AbortedTxn, ProducerStateTable};

const VERSION: &str = "0";

/// The checkpointed log start offset, `None` when there is no checkpoint. A file that does not
/// parse is reported and ignored: the segments still give a (lower) log start.
pub fn read_log_start(dir: &Path) -> Option<i64> {
    let text = match std::fs::read_to_string(dir.join(LOG_START_CHECKPOINT)) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::error!(dir = %dir.display(), error = %e, "cannot read the log start checkpoint; using the first segment");
            return None;
        }
    };
    let mut lines = text.lines();
    match (lines.next(), lines.next().and_then(|l| l.trim().parse::<i64>().ok())) {
        (Some(VERSION), Some(offset)) if offset >= 0 => Some(offset),
        _ => {
            tracing::error!(dir = %dir.display(), "the log start checkpoint does not parse; using the first segment");
            None
        }
    }
}

/// Replaces the checkpoint with `offset`, durably.
pub fn write_log_start(dir: &Path, offset: i64) -> io::Result<()> {
    write_atomic(dir, LOG_START_CHECKPOINT, format!("{VERSION}\n{offset}\n").as_bytes())
}

/// Replaces `dir/name` with `bytes`: a temporary file is written and fsynced, renamed over the
/// old one, and the directory fsynced.
pub(super) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    super::failpoint::step()?;
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    File::open(dir)?.sync_all()
}

/// The cleaner's checkpoint: the offset up to which the log was last compacted (everything
/// below it is "clean"); `None` when it never was.
pub fn read_cleaned_to(dir: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(dir.join(CLEANER_CHECKPOINT)).ok()?;
    let mut lines = text.lines();
    match (lines.next(), lines.next().and_then(|l| l.trim().parse::<i64>().ok())) {
        (Some(VERSION), Some(offset)) if offset >= 0 => Some(offset),
        _ => None,
    }
}

/// Replaces the cleaner's checkpoint, durably.
pub fn write_cleaned_to(dir: &Path, offset: i64) -> io::Result<()> {
    write_atomic(dir, CLEANER_CHECKPOINT, format!("{VERSION}\n{offset}\n").as_bytes())
}

/// Saves the producer state as of offset `base` (the first offset of the segment it is named
/// after), durably.
pub fn write_producer_snapshot(dir: &Path, base: i64, table: &ProducerStateTable) -> io::Result<()> {
    let name = format!("{base:020}.{PRODUCER_SNAPSHOT_SUFFIX}");
    write_atomic(dir, &name, &table.encode())
}

/// The producer state saved for offset `base`; `None` when there is none or it is damaged.
pub fn read_producer_snapshot(dir: &Path, base: i64) -> Option<ProducerStateTable> {
    let path = segment_file(dir, base, PRODUCER_SNAPSHOT_SUFFIX);
    let bytes = std::fs::read(&path).ok()?;
    let table = ProducerStateTable::decode(&bytes);
    if table.is_none() {
        tracing::warn!(file = %path.display(), "a producer state snapshot is damaged; rebuilding the state from the log");
    }
    table
}

/// Writes a rolled segment's aborted transactions (its `.txnindex`), fsynced; with none, any
/// stale file of that name is removed.
pub fn write_txn_index(dir: &Path, base: i64, aborted: &[AbortedTxn]) -> io::Result<()> {
    let path = segment_file(dir, base, TXN_INDEX_SUFFIX);
    if aborted.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    let mut f = File::create(&path)?;
    f.write_all(&encode_txn_index(aborted))?;
    f.sync_all()
}

/// A rolled segment's aborted transactions.
pub fn read_txn_index(dir: &Path, base: i64) -> io::Result<Vec<AbortedTxn>> {
    match std::fs::read(segment_file(dir, base, TXN_INDEX_SUFFIX)) {
        Ok(bytes) => Ok(decode_txn_index(&bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trips_and_bad_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_log_start(dir.path()), None);
        write_log_start(dir.path(), 42).unwrap();
        assert_eq!(read_log_start(dir.path()), Some(42));
        write_log_start(dir.path(), 7).unwrap();
        assert_eq!(read_log_start(dir.path()), Some(7));
        std::fs::write(dir.path().join(LOG_START_CHECKPOINT), "9\n12\n").unwrap();
        assert_eq!(read_log_start(dir.path()), None, "unknown version");
        std::fs::write(dir.path().join(LOG_START_CHECKPOINT), "0\n-3\n").unwrap();
        assert_eq!(read_log_start(dir.path()), None, "negative offset");
    }
}
