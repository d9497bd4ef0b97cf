//! The shared engine's hook into a partition log: where appended batches must be committed
//! before they count as durable.
//!
//! In shared mode (see `cluster::shipping`) a partition's local segments are a cache of what
//! the coordination store and the object store hold. A log with a [`Committer`] is always in
//! durable mode, and its "fsync" is a commit: the batches appended since the last one go to the
//! committer, and only once it answers do they become visible (the high watermark moves) and
//! are `acks=all` produces answered. A refused commit (the partition moved to another broker)
//! leaves them invisible; whoever leads the partition next rebuilds its log from the store.
//!
//! The log layer does not know what a commit is; it knows only this trait, which the cluster
//! layer implements.

use std::future::Future;
use std::io;
use std::pin::Pin;

use bytes::Bytes;

use super::TopicPartition;

/// A commit under way: done when the batches are committed, an error when refused.
pub type CommitFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

/// Commits a partition's batches elsewhere before they count as durable.
pub trait Committer: Send + Sync + std::fmt::Debug {
    /// Whether this partition's appends are committed (partitions it leaves out keep the
    /// local log's own durability).
    fn covers(&self, tp: &TopicPartition) -> bool;

    /// Commits whole batches of `tp`, with their offsets assigned, continuing what was
    /// committed before.
    fn commit(&self, tp: &TopicPartition, batches: Bytes) -> CommitFuture;

    /// Whole batches of `tp` read back from the committed copy, for offsets the local segments
    /// no longer hold (`local.retention.bytes`): from the batch holding `offset`, up to about
    /// `max_bytes` (at least one batch when `min_one`), none starting at or past `before`.
    /// Blocking: called off the runtime, as segment reads are.
    fn read_stored(
        &self,
        tp: &TopicPartition,
        offset: i64,
        before: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> io::Result<Bytes> {
        let _ = (tp, offset, before, max_bytes, min_one);
        Err(io::Error::new(io::ErrorKind::Unsupported, "this committer keeps no readable copy"))
    }

    /// The first record of `tp` at or after `from` and before `before` stamped at or after
    /// `target`, from the committed copy: its offset and timestamp. Blocking, as above.
    fn offset_for_timestamp_stored(
        &self,
        tp: &TopicPartition,
        target: i64,
        from: i64,
        before: i64,
    ) -> io::Result<Option<(i64, i64)>> {
        let _ = (tp, target, from, before);
        Err(io::Error::new(io::ErrorKind::Unsupported, "this committer keeps no readable copy"))
    }

    /// The record of `tp` with the largest timestamp at or after `from` and before `before`
    /// (the first of them on a tie), from the committed copy: its offset and timestamp.
    /// Blocking, as above.
    fn max_timestamp_stored(&self, tp: &TopicPartition, from: i64, before: i64) -> io::Result<Option<(i64, i64)>> {
        let _ = (tp, from, before);
        Err(io::Error::new(io::ErrorKind::Unsupported, "this committer keeps no readable copy"))
    }
}
