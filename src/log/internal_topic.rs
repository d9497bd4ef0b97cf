//! What the broker's own logs (`__consumer_offsets`, `__transaction_state`) need beyond
//! appends: their settings, a replay of every batch at start, and a rewrite to their live
//! records (the start-time compaction).

use std::io;

use super::batch::{self, BatchHeader};
use super::{CleanerSettings, PartitionConfig, PartitionLog, ReadError};

impl PartitionConfig {
    /// Settings of an internal log. Nothing reads it through the high watermark; writers wait
    /// for their own fsync before they answer.
    pub fn internal() -> Self {
        Self {
            segment_bytes: 100 << 20,
            segment_ms: 7 * 24 * 3600 * 1000,
            index_interval_bytes: 4096,
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
}

impl PartitionLog {
    /// Calls `f` with every batch from the log start, in order: its header and bytes.
    /// Corruption stops the replay with an error: replaying past it would silently drop every
    /// record after it.
    pub fn for_each_batch(&self, mut f: impl FnMut(&BatchHeader, &[u8])) -> io::Result<()> {
        let mut offset = self.offsets().log_start_offset;
        loop {
            let chunk = match self.read(offset, 1 << 20, true) {
                Ok(r) => r.records,
                Err(ReadError::Io(e)) => return Err(e),
                Err(e @ ReadError::Corrupt { .. }) => {
                    return Err(io::Error::other(format!("cannot replay {}: {e}", self.tp)))
                }
                Err(ReadError::OffsetOutOfRange { .. }) => return Ok(()),
            };
            if chunk.is_empty() {
                return Ok(());
            }
            let mut rest = &chunk[..];
            while let Some((_, len)) = batch::peek_len(rest) {
                let Some(bytes) = rest.get(..len) else { break };
                if let Some(h) = BatchHeader::parse(bytes) {
                    f(&h, bytes);
                    offset = h.last_offset() + 1;
                }
                rest = &rest[len..];
            }
        }
    }

    /// Calls `f` with the key and value of every record of the non-control batches.
    pub fn for_each_record(&self, mut f: impl FnMut(Option<&[u8]>, Option<&[u8]>)) -> io::Result<()> {
        let mut failed = None;
        self.for_each_batch(|h, bytes| {
            if h.is_control() || failed.is_some() {
                return;
            }
            if let Err(e) = batch::with_records(bytes, |records| records.iter().for_each(|r| f(r.key, r.value))) {
                failed = Some(io::Error::other(format!(
                    "cannot read the records of {} at offset {}: {e}",
                    self.tp, h.base_offset
                )));
            }
        })?;
        failed.map_or(Ok(()), Err)
    }

    /// Replaces the whole log by `records`: they are written as the first batches of a new
    /// segment, fsynced, and every older segment is deleted. For use before the broker serves.
    pub fn rewrite_as(&self, records: &[(Vec<u8>, Option<Vec<u8>>)], now_ms: i64) -> io::Result<()> {
        self.roll(now_ms)?;
        let start = self.offsets().log_end_offset;
        for chunk in records.chunks(1000) {
            let kvs: Vec<batch::KeyValue<'_>> = chunk.iter().map(|(k, v)| (Some(&k[..]), v.as_deref())).collect();
            self.append(&batch::build(&kvs, now_ms), now_ms).map_err(|e| io::Error::other(e.to_string()))?;
        }
        self.flush_blocking()?;
        self.delete_segments_before(start)?;
        Ok(())
    }
}
