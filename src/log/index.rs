//! Sparse offset and time indexes of one segment, kept in memory and mirrored to their files.
//!
//! Pure lookups over sorted vectors; the only IO is appending entries and loading a file, both
//! behind [`IndexFiles`]. Entries are strictly increasing in both key columns; an index file
//! that breaks this is stale and gets rebuilt (see `recovery`).

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

use bytes::{Buf, BufMut};

use super::files::{Access, CachedFile, FileCache};
use super::format::{INDEX_ENTRY, TIME_INDEX_ENTRY};

#[derive(Debug, Default, Clone, PartialEq)]
pub struct OffsetIndex {
    /// (relative last offset of a batch, byte position of that batch)
    entries: Vec<(u32, u32)>,
}

impl OffsetIndex {
    pub fn push(&mut self, rel_offset: u32, position: u32) {
        self.entries.push((rel_offset, position));
    }

    pub fn last(&self) -> Option<(u32, u32)> {
        self.entries.last().copied()
    }

    /// Byte position from which to scan for `rel_offset`: the position of the last indexed
    /// batch ending at or before it (that batch or a later one holds it), or 0.
    pub fn lookup(&self, rel_offset: u32) -> u32 {
        let idx = self.entries.partition_point(|&(o, _)| o <= rel_offset);
        if idx == 0 {
            0
        } else {
            self.entries[idx - 1].1
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keeps the first `len` entries.
    pub fn truncate(&mut self, len: usize) {
        self.entries.truncate(len);
    }

    pub fn truncate_to_position(&mut self, position: u32) {
        self.entries.retain(|&(_, p)| p < position);
    }

    fn from_bytes(mut b: &[u8], file_len: u64) -> Option<Self> {
        if !b.len().is_multiple_of(INDEX_ENTRY) {
            return None;
        }
        let mut entries = Vec::with_capacity(b.len() / INDEX_ENTRY);
        while b.has_remaining() {
            let e = (b.get_u32(), b.get_u32());
            if u64::from(e.1) >= file_len || entries.last().is_some_and(|l: &(u32, u32)| l.0 >= e.0 || l.1 >= e.1) {
                return None;
            }
            entries.push(e);
        }
        Some(Self { entries })
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * INDEX_ENTRY);
        for &(o, p) in &self.entries {
            out.put_u32(o);
            out.put_u32(p);
        }
        out
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct TimeIndex {
    /// (largest timestamp so far, relative last offset of the batch that reached it)
    entries: Vec<(i64, u32)>,
}

impl TimeIndex {
    pub fn push(&mut self, timestamp: i64, rel_offset: u32) {
        self.entries.push((timestamp, rel_offset));
    }

    pub fn last(&self) -> Option<(i64, u32)> {
        self.entries.last().copied()
    }

    /// The relative offset after which a record with timestamp >= `target` may first appear:
    /// every batch up to the returned offset has only timestamps below `target`.
    pub fn lookup(&self, target: i64) -> Option<u32> {
        let idx = self.entries.partition_point(|&(ts, _)| ts < target);
        (idx > 0).then(|| self.entries[idx - 1].1)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keeps the first `len` entries.
    pub fn truncate(&mut self, len: usize) {
        self.entries.truncate(len);
    }

    pub fn truncate_to_offset(&mut self, rel_offset_exclusive: u32) {
        self.entries.retain(|&(_, o)| o < rel_offset_exclusive);
    }

    fn from_bytes(mut b: &[u8]) -> Option<Self> {
        if !b.len().is_multiple_of(TIME_INDEX_ENTRY) {
            return None;
        }
        let mut entries = Vec::with_capacity(b.len() / TIME_INDEX_ENTRY);
        while b.has_remaining() {
            let e = (b.get_i64(), b.get_u32());
            if entries.last().is_some_and(|l: &(i64, u32)| l.0 >= e.0 || l.1 > e.1) {
                return None;
            }
            entries.push(e);
        }
        Some(Self { entries })
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * TIME_INDEX_ENTRY);
        for &(t, o) in &self.entries {
            out.put_i64(t);
            out.put_u32(o);
        }
        out
    }
}

/// The two index files of a segment, opened for appending through the descriptor budget.
#[derive(Debug, Clone)]
pub struct IndexFiles {
    offset: CachedFile,
    time: CachedFile,
}

impl IndexFiles {
    pub fn create(offset_path: &Path, time_path: &Path, files: &Arc<FileCache>) -> io::Result<Self> {
        // Append mode everywhere: `rewrite` relies on writes landing at the end after set_len.
        let open = |p: &Path| -> io::Result<CachedFile> {
            super::failpoint::step()?;
            let f = OpenOptions::new().create(true).append(true).open(p)?;
            f.set_len(0)?;
            Ok(files.adopt(p.to_owned(), Access::Append, f))
        };
        Ok(Self { offset: open(offset_path)?, time: open(time_path)? })
    }

    /// Loads both indexes if both files exist and are consistent with a log of `log_len` bytes.
    pub fn load(
        offset_path: &Path,
        time_path: &Path,
        log_len: u64,
        files: &Arc<FileCache>,
    ) -> io::Result<Option<(OffsetIndex, TimeIndex, Self)>> {
        let (Ok(ob), Ok(tb)) = (std::fs::read(offset_path), std::fs::read(time_path)) else {
            return Ok(None);
        };
        let (Some(oi), Some(ti)) = (OffsetIndex::from_bytes(&ob, log_len), TimeIndex::from_bytes(&tb)) else {
            return Ok(None);
        };
        let name = |p: &Path| files.file(p.to_owned(), Access::Append);
        Ok(Some((oi, ti, Self { offset: name(offset_path), time: name(time_path) })))
    }

    pub fn append_offset(&mut self, rel_offset: u32, position: u32) -> io::Result<()> {
        let mut b = [0u8; INDEX_ENTRY];
        (&mut b[..]).put_u32(rel_offset);
        (&mut b[4..]).put_u32(position);
        super::failpoint::step()?;
        (&*self.offset.get()?).write_all(&b)
    }

    pub fn append_time(&mut self, timestamp: i64, rel_offset: u32) -> io::Result<()> {
        let mut b = [0u8; TIME_INDEX_ENTRY];
        (&mut b[..]).put_i64(timestamp);
        (&mut b[8..]).put_u32(rel_offset);
        super::failpoint::step()?;
        (&*self.time.get()?).write_all(&b)
    }

    /// Replaces both files' contents (after a rebuild or truncation).
    pub fn rewrite(&mut self, oi: &OffsetIndex, ti: &TimeIndex) -> io::Result<()> {
        for (file, bytes) in [(&self.offset, oi.to_bytes()), (&self.time, ti.to_bytes())] {
            let file = file.get()?;
            file.set_len(0)?;
            // Files are in append mode, so the next write lands at the new end.
            (&*file).write_all(&bytes)?;
        }
        Ok(())
    }

    /// Cuts both files back to their first `offset_entries` and `time_entries` entries (undoing
    /// the entries of an append that failed).
    pub fn truncate(&self, offset_entries: usize, time_entries: usize) -> io::Result<()> {
        self.offset.get()?.set_len((offset_entries * INDEX_ENTRY) as u64)?;
        self.time.get()?.set_len((time_entries * TIME_INDEX_ENTRY) as u64)
    }

    pub fn sync(&self) -> io::Result<()> {
        super::failpoint::step()?;
        self.offset.get()?.sync_data()?;
        self.time.get()?.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_lookup_finds_floor_position() {
        let mut i = OffsetIndex::default();
        assert_eq!(i.lookup(5), 0);
        i.push(9, 100);
        i.push(19, 200);
        assert_eq!(i.lookup(5), 0);
        assert_eq!(i.lookup(9), 100);
        assert_eq!(i.lookup(15), 100);
        assert_eq!(i.lookup(25), 200);
    }

    #[test]
    fn time_lookup_skips_only_earlier_batches() {
        let mut t = TimeIndex::default();
        t.push(100, 4);
        t.push(200, 9);
        assert_eq!(t.lookup(50), None);
        assert_eq!(t.lookup(100), None);
        assert_eq!(t.lookup(150), Some(4));
        assert_eq!(t.lookup(201), Some(9));
    }

    #[test]
    fn stale_index_bytes_are_rejected() {
        let mut i = OffsetIndex::default();
        i.push(1, 10);
        i.push(2, 20);
        let b = i.to_bytes();
        assert_eq!(OffsetIndex::from_bytes(&b, 100), Some(i.clone()));
        assert_eq!(OffsetIndex::from_bytes(&b, 15), None, "position past the log end");
        assert_eq!(OffsetIndex::from_bytes(&b[..5], 100), None, "torn entry");
    }
}
