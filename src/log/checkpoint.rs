//! The log-start-offset checkpoint of one partition: the one fact about a partition that its
//! segments cannot tell once the log start has moved inside a segment (DeleteRecords).
//!
//! Written whole and atomically: a temporary file is written and fsynced, renamed over the old
//! one, and the directory fsynced, so a crash leaves either the old value or the new one.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use super::format::LOG_START_CHECKPOINT;

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
    let tmp = dir.join(format!("{LOG_START_CHECKPOINT}.tmp"));
    super::failpoint::step()?;
    let mut f = File::create(&tmp)?;
    f.write_all(format!("{VERSION}\n{offset}\n").as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(LOG_START_CHECKPOINT))?;
    File::open(dir)?.sync_all()
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
