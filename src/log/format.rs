//! Names and byte layouts of everything gregor writes under `log.dir`. Kafka's layout, so the
//! files can be inspected with Kafka's own tools.
//!
//! ```text
//! <log.dir>/
//!   meta.properties                 cluster.id / node.id / version=1 (format version below)
//!   .gregor_clean_shutdown          empty; written and fsynced last by a clean stop, removed at
//!                                   start once recovery is done: its presence lets the next start
//!                                   trust segment tails instead of re-checking their CRCs
//!   __topics/<topic id>.properties  topic name, partition count, topic config overrides
//!                                   (earlier builds named it <topic>.properties: read alike,
//!                                   removed when the topic is next written or deleted)
//!   <topic>-<partition>/
//!     00000000000000000000.log      concatenated RecordBatch v2, exactly as produced, with the
//!                                   broker-assigned baseOffset and partitionLeaderEpoch
//!     00000000000000000000.index    sparse offset index, 8-byte entries:
//!                                     u32 relative offset of a batch's LAST offset
//!                                     u32 byte position of that batch in the .log
//!     00000000000000000000.timeindex sparse time index, 12-byte entries:
//!                                     i64 largest timestamp seen in the segment so far
//!                                     u32 relative offset of the batch's last offset
//!     00000000000000000000.txnindex aborted transactions whose abort marker is in this segment,
//!                                   34-byte entries (Kafka's): i16 version 0, i64 producer id,
//!                                   i64 first offset, i64 marker offset, i64 last stable offset;
//!                                   written when the segment is rolled (the active segment's
//!                                   are rebuilt from its batches at open)
//!     00000000000000000000.producer-state  producer state as of the segment's base offset,
//!                                   written when the segment is created by a roll (the newest
//!                                   two are kept): i16 version 1, u32 CRC-32C of the rest,
//!                                   i32 count, per producer: i64 id, i16 epoch, i32 coordinator
//!                                   epoch, i64 last timestamp, i64 open transaction's first
//!                                   offset or -1, u8 n, n x (i32 first seq, i32 last seq, i64
//!                                   first offset) of its last batches
//!     cleaner-offset.checkpoint     "0" and the offset up to which the log was last compacted
//!                                   (compacted topics); the part after it is "dirty"
//!     00000000000000000000.log.cleaned  a segment the cleaner is writing; renamed over the
//!                                   .log when complete (after the indexes are removed, so
//!                                   they are rebuilt), deleted at open when left behind
//!     00000000000000000000.merge    the cleaner's intent to merge segments into this one: the
//!                                   base offsets of the others, one a line, fsynced before the
//!                                   merged `.log.cleaned` is renamed over this `.log`. At open:
//!                                   with the `.log.cleaned` still there the merge is undone
//!                                   (both removed), otherwise it is finished (the others'
//!                                   `.txnindex` entries moved here, their files removed)
//!     log-start-offset.checkpoint   "0" (version) and the log start offset, a line each;
//!                                   written (atomically, fsynced) when the log start moves
//!                                   inside a segment, which the segments alone cannot tell
//!     leader-epoch-checkpoint       Kafka's: "0" (version), the number of entries, then
//!                                   "EPOCH START_OFFSET" a line, for each leader epoch the
//!                                   first offset it wrote (see `leader_epoch`)
//! ```
//!
//! Segment files are named by their base offset, 20 digits, zero padded. Index entries are
//! appended every `log.index.interval.bytes` of log data; both index kinds are derived data and are
//! rebuilt from the `.log` when missing or inconsistent. All integers are big-endian.

use std::path::{Path, PathBuf};

/// Version of this layout, written to `meta.properties`. Bump it when a layout changes.
pub const FORMAT_VERSION: u32 = 1;

pub const LOG_SUFFIX: &str = "log";
pub const INDEX_SUFFIX: &str = "index";
pub const TIME_INDEX_SUFFIX: &str = "timeindex";
pub const TXN_INDEX_SUFFIX: &str = "txnindex";
pub const MERGE_SUFFIX: &str = "merge";
pub const PRODUCER_SNAPSHOT_SUFFIX: &str = "producer-state";
pub const TOPICS_DIR: &str = "__topics";
pub const META_FILE: &str = "meta.properties";
pub const CLEAN_SHUTDOWN_FILE: &str = ".gregor_clean_shutdown";
pub const LOG_START_CHECKPOINT: &str = "log-start-offset.checkpoint";
pub const CLEANER_CHECKPOINT: &str = "cleaner-offset.checkpoint";
pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";
/// Suffix of a segment the cleaner is writing; renamed over the `.log` when done, removed at
/// open when a stop left it behind.
pub const CLEANED_SUFFIX: &str = "log.cleaned";

pub const INDEX_ENTRY: usize = 8;
pub const TIME_INDEX_ENTRY: usize = 12;

pub fn segment_file(dir: &Path, base_offset: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{suffix}"))
}

/// `<topic>-<partition>` directory name.
pub fn partition_dir(root: &Path, topic: &str, partition: i32) -> PathBuf {
    root.join(format!("{topic}-{partition}"))
}

/// Parses a `.log` file name into its base offset.
pub fn parse_segment_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".log")?;
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit())).then(|| stem.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let p = segment_file(Path::new("/d"), 1234, LOG_SUFFIX);
        assert_eq!(p, PathBuf::from("/d/00000000000000001234.log"));
        assert_eq!(parse_segment_name("00000000000000001234.log"), Some(1234));
        assert_eq!(parse_segment_name("1234.log"), None);
        assert_eq!(parse_segment_name("00000000000000001234.index"), None);
    }
}
