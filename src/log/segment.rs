//! One segment: an append-only `.log` file of record batches plus its two sparse indexes.
//!
//! Invariants: `size` is the length of the valid prefix of the file (bytes past it, left by a torn
//! write before recovery truncated them, are never read); batches are laid out back to back with
//! strictly increasing offsets; `next_offset` is one past the last offset stored here.
//!
//! An append is all-or-nothing: if any of its writes fails (a full disk after the `.log` write
//! but before its index entries, say), the file, both index files and every in-memory field are
//! put back as they were, so the batch consumes no offsets and never reappears after a restart.
//! If even cutting the files back fails, the segment remembers it and cuts them back before it
//! accepts the next append.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::batch::{self, BatchHeader, HEADER_LEN, LOG_OVERHEAD};
use super::files::{Access, CachedFile, FileCache};
use super::format::{
    segment_file, INDEX_SUFFIX, LOG_SUFFIX, PRODUCER_SNAPSHOT_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX,
};
use super::index::{IndexFiles, OffsetIndex, TimeIndex};
use super::ReadError;

#[derive(Debug)]
pub struct Segment {
    pub base_offset: i64,
    pub next_offset: i64,
    pub size: u64,
    /// Largest batch maxTimestamp in the segment, -1 when empty.
    pub max_timestamp: i64,
    /// Byte position of the batch that holds `max_timestamp`.
    pub max_timestamp_position: u32,
    /// Wall-clock creation time, for `segment.ms` rolling.
    pub created_ms: i64,
    /// The `.log` file, opened through the broker's descriptor budget.
    log: CachedFile,
    index: OffsetIndex,
    time_index: TimeIndex,
    /// Open while the segment can still take appends; `None` once it is sealed (rolled), so
    /// that a finished segment holds one descriptor instead of three.
    index_files: Option<IndexFiles>,
    bytes_since_index: u64,
    /// A failed append could not cut the files back to `size` and the index lengths: do it
    /// before the next append.
    files_ahead: bool,
    dir: PathBuf,
}

/// What an append may change, taken before it so that a failure can put everything back.
#[derive(Debug, Clone, Copy)]
struct TailMark {
    next_offset: i64,
    size: u64,
    max_timestamp: i64,
    max_timestamp_position: u32,
    bytes_since_index: u64,
    index_entries: usize,
    time_index_entries: usize,
}

/// What a scan of a segment's bytes found.
#[derive(Debug, Default)]
pub struct ScanOutcome {
    /// Length of the prefix made of whole, valid batches.
    pub valid_len: u64,
    /// Why the scan stopped before the end of the file, if it did.
    pub stopped: Option<String>,
}

/// A snapshot for reading without holding the partition lock.
#[derive(Debug, Clone)]
pub struct ReadView {
    pub file: CachedFile,
    pub base_offset: i64,
    pub start_position: u32,
    pub size: u64,
}

impl Segment {
    /// Creates a new, empty segment's three files. On failure none of them is left behind.
    pub fn create(dir: &Path, base_offset: i64, now_ms: i64, files: &Arc<FileCache>) -> io::Result<Self> {
        let created = Self::create_files(dir, base_offset, now_ms, files);
        if created.is_err() {
            for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX] {
                let _ = std::fs::remove_file(segment_file(dir, base_offset, suffix));
            }
        }
        created
    }

    fn create_files(dir: &Path, base_offset: i64, now_ms: i64, files: &Arc<FileCache>) -> io::Result<Self> {
        super::failpoint::step()?;
        let log_path = segment_file(dir, base_offset, LOG_SUFFIX);
        let log = OpenOptions::new().create(true).read(true).append(true).open(&log_path)?;
        // A leftover file of the same name (a segment deleted before a crash) starts over.
        log.set_len(0)?;
        let log = files.adopt(log_path, Access::ReadAppend, log);
        let index_files = IndexFiles::create(
            &segment_file(dir, base_offset, INDEX_SUFFIX),
            &segment_file(dir, base_offset, TIME_INDEX_SUFFIX),
            files,
        )?;
        Ok(Self {
            base_offset,
            next_offset: base_offset,
            size: 0,
            max_timestamp: -1,
            max_timestamp_position: 0,
            created_ms: now_ms,
            log,
            index: OffsetIndex::default(),
            time_index: TimeIndex::default(),
            index_files: Some(index_files),
            bytes_since_index: 0,
            files_ahead: false,
            dir: dir.to_owned(),
        })
    }

    /// Opens an existing segment. With `verify`, every batch is read and its CRC checked, and the
    /// file is truncated after the last valid batch; otherwise the indexes are trusted when they
    /// are consistent and only rebuilt (from batch headers) when they are not.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        verify: bool,
        index_interval: u64,
        now_ms: i64,
        files: &Arc<FileCache>,
    ) -> io::Result<(Self, ScanOutcome)> {
        let log = files.file(segment_file(dir, base_offset, LOG_SUFFIX), Access::ReadAppend);
        let meta = log.get()?.metadata()?;
        let file_len = meta.len();
        let created_ms = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(now_ms, |d| d.as_millis() as i64);
        let offset_path = segment_file(dir, base_offset, INDEX_SUFFIX);
        let time_path = segment_file(dir, base_offset, TIME_INDEX_SUFFIX);
        let loaded = if verify { None } else { IndexFiles::load(&offset_path, &time_path, file_len, files)? };
        let mut seg = match loaded {
            Some((index, time_index, index_files)) => {
                // Trusted indexes: derive the tail facts from the last indexed batch onwards.
                let mut seg = Self {
                    base_offset,
                    next_offset: base_offset,
                    size: file_len,
                    max_timestamp: time_index.last().map_or(-1, |(ts, _)| ts),
                    max_timestamp_position: 0,
                    created_ms,
                    log,
                    index,
                    time_index,
                    index_files: Some(index_files),
                    bytes_since_index: 0,
                    files_ahead: false,
                    dir: dir.to_owned(),
                };
                let from = seg.index.last().map_or(0, |(_, p)| p);
                let outcome = seg.scan_from(u64::from(from), false, index_interval, false)?;
                if outcome.stopped.is_none() && seg.next_offset > seg.base_offset {
                    seg.size = outcome.valid_len;
                    return Ok((seg, outcome));
                }
                // The last index entry did not lead to whole batches up to the end of the file:
                // the index cannot be trusted, so rebuild it from the first byte below.
                let index_files = IndexFiles::create(&offset_path, &time_path, files)?;
                Self {
                    next_offset: base_offset,
                    size: file_len,
                    max_timestamp: -1,
                    index: OffsetIndex::default(),
                    time_index: TimeIndex::default(),
                    index_files: Some(index_files),
                    ..seg
                }
            }
            None => {
                let index_files = IndexFiles::create(&offset_path, &time_path, files)?;
                Self {
                    base_offset,
                    next_offset: base_offset,
                    size: file_len,
                    max_timestamp: -1,
                    max_timestamp_position: 0,
                    created_ms,
                    log,
                    index: OffsetIndex::default(),
                    time_index: TimeIndex::default(),
                    index_files: Some(index_files),
                    bytes_since_index: 0,
                    files_ahead: false,
                    dir: dir.to_owned(),
                }
            }
        };
        let outcome = seg.scan_from(0, verify, index_interval, true)?;
        if outcome.valid_len < file_len {
            seg.log.get()?.set_len(outcome.valid_len)?;
        }
        seg.size = outcome.valid_len;
        if let Some(files) = &mut seg.index_files {
            files.rewrite(&seg.index, &seg.time_index)?;
        }
        Ok((seg, outcome))
    }

    /// Walks batches from `from`, updating offsets, timestamps and (when `index`) the indexes.
    fn scan_from(&mut self, from: u64, verify: bool, index_interval: u64, index: bool) -> io::Result<ScanOutcome> {
        let log = self.log.get()?;
        let file_len = log.metadata()?.len();
        let mut reader = io::BufReader::with_capacity(1 << 20, FileReader { file: &log, pos: from });
        let mut pos = from;
        let mut expected_base = if from == 0 { self.base_offset } else { i64::MIN };
        let mut buf = Vec::new();
        let mut stopped = None;
        while pos < file_len {
            let mut head = [0u8; LOG_OVERHEAD];
            if read_full(&mut reader, &mut head)? < LOG_OVERHEAD {
                stopped = Some(format!("torn batch header at byte {pos}"));
                break;
            }
            let Some((base, total)) = batch::peek_len(&head) else {
                stopped = Some(format!("impossible batch length at byte {pos}"));
                break;
            };
            if pos + total as u64 > file_len || total > i32::MAX as usize {
                stopped = Some(format!("torn batch at byte {pos}: {total} bytes declared"));
                break;
            }
            buf.clear();
            buf.extend_from_slice(&head);
            buf.resize(total, 0);
            if read_full(&mut reader, &mut buf[LOG_OVERHEAD..])? < total - LOG_OVERHEAD {
                stopped = Some(format!("torn batch at byte {pos}"));
                break;
            }
            let Some(h) = BatchHeader::parse(&buf) else {
                stopped = Some(format!("short batch at byte {pos}"));
                break;
            };
            // Offsets never go backwards. In a verified (tail) scan they must also be contiguous:
            // the base offset is outside the CRC, so a corrupted one could otherwise jump ahead.
            let misplaced = base < expected_base || (verify && expected_base != i64::MIN && base != expected_base);
            if h.magic != batch::MAGIC_V2 || misplaced || h.last_offset_delta < 0 {
                stopped = Some(format!("invalid batch at byte {pos} (offset {base})"));
                break;
            }
            if verify && crc32c::crc32c(&buf[21..]) != h.crc {
                stopped = Some(format!("CRC mismatch in batch at byte {pos} (offset {base})"));
                break;
            }
            self.note_batch(&h, pos as u32, total as u64, index_interval, index)?;
            expected_base = h.last_offset() + 1;
            pos += total as u64;
        }
        Ok(ScanOutcome { valid_len: pos, stopped })
    }

    /// Records a batch now stored at `position`: offsets, timestamps, index entries.
    fn note_batch(
        &mut self,
        h: &BatchHeader,
        position: u32,
        len: u64,
        index_interval: u64,
        write_index: bool,
    ) -> io::Result<()> {
        self.next_offset = h.last_offset() + 1;
        let rel = (h.last_offset() - self.base_offset) as u32;
        if h.max_timestamp > self.max_timestamp {
            self.max_timestamp = h.max_timestamp;
            self.max_timestamp_position = position;
        }
        self.bytes_since_index += len;
        if write_index && self.bytes_since_index >= index_interval {
            self.bytes_since_index = 0;
            if self.index.last().is_none_or(|(o, _)| o < rel) {
                self.index.push(rel, position);
                self.index_files_mut()?.append_offset(rel, position)?;
            }
            if self.time_index.last().is_none_or(|(ts, _)| ts < self.max_timestamp) {
                self.time_index.push(self.max_timestamp, rel);
                let max_timestamp = self.max_timestamp;
                self.index_files_mut()?.append_time(max_timestamp, rel)?;
            }
        }
        Ok(())
    }

    /// Appends already-validated batches, given as consecutive byte ranges (`parts`) that
    /// together are the batches back to back, in one vectored write, then their index entries.
    /// All or nothing: on any error the segment is as it was before the call.
    pub fn append(&mut self, parts: &[&[u8]], headers: &[BatchHeader], index_interval: u64) -> io::Result<()> {
        if self.files_ahead {
            self.cut_files_back()?;
        }
        let mark = self.tail_mark();
        let result = self.append_unguarded(parts, headers, index_interval);
        if result.is_err() {
            self.roll_back_to(mark);
        }
        result
    }

    fn append_unguarded(&mut self, parts: &[&[u8]], headers: &[BatchHeader], index_interval: u64) -> io::Result<()> {
        write_all_vectored(&*self.log.get()?, parts)?;
        let mut position = self.size;
        for h in headers {
            let len = h.total_len() as u64;
            self.note_batch(h, position as u32, len, index_interval, true)?;
            position += len;
        }
        self.size = position;
        Ok(())
    }

    fn tail_mark(&self) -> TailMark {
        TailMark {
            next_offset: self.next_offset,
            size: self.size,
            max_timestamp: self.max_timestamp,
            max_timestamp_position: self.max_timestamp_position,
            bytes_since_index: self.bytes_since_index,
            index_entries: self.index.len(),
            time_index_entries: self.time_index.len(),
        }
    }

    /// Undoes a failed append: memory first (it must never run ahead of the files), then the
    /// files, whatever part of the write reached them.
    fn roll_back_to(&mut self, mark: TailMark) {
        self.next_offset = mark.next_offset;
        self.size = mark.size;
        self.max_timestamp = mark.max_timestamp;
        self.max_timestamp_position = mark.max_timestamp_position;
        self.bytes_since_index = mark.bytes_since_index;
        self.index.truncate(mark.index_entries);
        self.time_index.truncate(mark.time_index_entries);
        if let Err(e) = self.cut_files_back() {
            // Reads stop at `size` and index entries are checked against it, so stray bytes are
            // never served; the next append retries the cut before it writes.
            tracing::error!(segment = %segment_file(&self.dir, self.base_offset, LOG_SUFFIX).display(), error = %e,
                "cannot cut a failed append back out of the segment files; retrying before the next append");
            self.files_ahead = true;
        }
    }

    fn cut_files_back(&mut self) -> io::Result<()> {
        self.log.get()?.set_len(self.size)?;
        if let Some(files) = &self.index_files {
            files.truncate(self.index.len(), self.time_index.len())?;
        }
        self.files_ahead = false;
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    pub fn log_file(&self) -> CachedFile {
        self.log.clone()
    }

    pub fn read_view(&self, offset: i64) -> ReadView {
        let rel = (offset - self.base_offset).clamp(0, u32::MAX as i64) as u32;
        ReadView {
            file: self.log.clone(),
            base_offset: self.base_offset,
            start_position: self.index.lookup(rel),
            size: self.size,
        }
    }

    /// Position from which batches may hold timestamps >= `target`.
    pub fn time_view(&self, target: i64) -> ReadView {
        let start = match self.time_index.lookup(target) {
            Some(rel) => self.index.lookup(rel.saturating_add(1)),
            None => 0,
        };
        ReadView { file: self.log.clone(), base_offset: self.base_offset, start_position: start, size: self.size }
    }

    /// Names of this segment's open files, to fsync them without holding the partition lock.
    pub fn files(&self) -> SegmentFiles {
        SegmentFiles { log: self.log.clone(), indexes: self.index_files.clone() }
    }

    /// Closes the index files of a segment that takes no more appends (after its roll, or an
    /// older segment at open): their entries are in memory, the files are complete on disk.
    pub fn seal(&mut self) {
        self.index_files = None;
    }

    fn index_files_mut(&mut self) -> io::Result<&mut IndexFiles> {
        self.index_files.as_mut().ok_or_else(|| io::Error::other("append to a sealed segment"))
    }

    /// Removes every batch whose last offset is >= `offset` (a batch that holds `offset` goes
    /// whole) and makes the segment take appends again, its indexes rebuilt from the bytes
    /// kept. Returns the new `next_offset`.
    pub fn truncate_to(&mut self, offset: i64, index_interval: u64, files: &Arc<FileCache>) -> Result<i64, ReadError> {
        // Found by a walk from the first byte: an index entry is not trusted to cut by.
        let found = ReadView { start_position: 0, ..self.read_view(offset) }.position_of(offset)?;
        let Some((cut, _)) = found else {
            // Nothing to cut here (the cut falls at the next segment): take appends again.
            if self.index_files.is_none() {
                let mut index_files = IndexFiles::create(
                    &segment_file(&self.dir, self.base_offset, INDEX_SUFFIX),
                    &segment_file(&self.dir, self.base_offset, TIME_INDEX_SUFFIX),
                    files,
                )?;
                index_files.rewrite(&self.index, &self.time_index)?;
                self.index_files = Some(index_files);
            }
            return Ok(self.next_offset);
        };
        self.log.get()?.set_len(cut)?;
        self.index_files = Some(IndexFiles::create(
            &segment_file(&self.dir, self.base_offset, INDEX_SUFFIX),
            &segment_file(&self.dir, self.base_offset, TIME_INDEX_SUFFIX),
            files,
        )?);
        self.next_offset = self.base_offset;
        self.size = 0;
        self.max_timestamp = -1;
        self.max_timestamp_position = 0;
        self.bytes_since_index = 0;
        self.index = OffsetIndex::default();
        self.time_index = TimeIndex::default();
        self.files_ahead = false;
        let outcome = self.scan_from(0, false, index_interval, true)?;
        if outcome.valid_len < cut {
            self.log.get()?.set_len(outcome.valid_len)?;
        }
        self.size = outcome.valid_len;
        Ok(self.next_offset)
    }

    /// Marks the segment's `.log` as about to be replaced under the same name (the cleaner's
    /// swap): readers that hold it open keep reading it, readers that would have to open it
    /// again are told it is gone (and look again, finding the replacement), never the new file
    /// read at old positions.
    pub fn retire(&self) {
        self.log.retire();
    }

    /// Removes this segment's files. Readers that hold the `.log` file open keep reading it;
    /// readers that would have to open it again are told it is gone.
    pub fn delete(self) -> io::Result<()> {
        self.log.remove()?;
        drop(self.index_files);
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX, PRODUCER_SNAPSHOT_SUFFIX] {
            match std::fs::remove_file(segment_file(&self.dir, self.base_offset, suffix)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}

/// A segment's files, named (see [`Segment::files`]).
#[derive(Debug, Clone)]
pub struct SegmentFiles {
    pub log: CachedFile,
    indexes: Option<IndexFiles>,
}

impl SegmentFiles {
    pub fn sync_indexes(&self) -> io::Result<()> {
        self.indexes.as_ref().map_or(Ok(()), IndexFiles::sync)
    }
}

impl ReadView {
    /// Finds the position of the first batch whose last offset is >= `offset`, scanning batch
    /// headers forward from the indexed position. `None` when no such batch is in the segment.
    pub fn position_of(&self, offset: i64) -> Result<Option<(u64, BatchHeader)>, ReadError> {
        self.find(u64::from(self.start_position), |_, h| h.last_offset() >= offset)
    }

    /// Finds the first batch whose maxTimestamp is >= `target`.
    pub fn position_of_timestamp(&self, target: i64) -> Result<Option<(u64, BatchHeader)>, ReadError> {
        self.find(u64::from(self.start_position), |_, h| h.max_timestamp >= target)
    }

    /// Calls `f` with every batch header in the segment, in order (headers only, no CRC check).
    pub fn for_each_header(&self, mut f: impl FnMut(&BatchHeader)) -> Result<(), ReadError> {
        self.for_each_header_at(|_, h| f(h))
    }

    /// [`for_each_header`](Self::for_each_header), with each batch's byte position.
    pub fn for_each_header_at(&self, mut f: impl FnMut(u64, &BatchHeader)) -> Result<(), ReadError> {
        self.find(0, |pos, h| {
            f(pos, h);
            false
        })
        .map(|_| ())
    }

    /// Walks batch headers from `pos` until `hit`. Within `size` every byte belongs to a whole
    /// batch (recovery and appends guarantee it), so a header that does not describe one is
    /// corruption, reported with the file and position: never a reason to stop early and let
    /// the caller go on to the next segment with records silently skipped.
    fn find(
        &self,
        mut pos: u64,
        mut hit: impl FnMut(u64, &BatchHeader) -> bool,
    ) -> Result<Option<(u64, BatchHeader)>, ReadError> {
        let mut head = [0u8; HEADER_LEN];
        let mut next_offset = self.base_offset;
        if pos >= self.size {
            return Ok(None);
        }
        let file = self.file.get()?;
        while pos < self.size {
            if pos + HEADER_LEN as u64 > self.size {
                return Err(self.corrupt(pos, format!("{} bytes left, too few for a batch", self.size - pos)));
            }
            file.read_exact_at(&mut head, pos)?;
            let h = BatchHeader::parse(&head).ok_or_else(|| self.corrupt(pos, "short batch header".into()))?;
            let end = pos + h.total_len() as u64;
            let problem = if h.batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32 || end > self.size {
                Some(format!("a batch length of {} does not fit the segment", h.batch_length))
            } else if h.magic != batch::MAGIC_V2 {
                Some(format!("magic byte {} where a batch starts", h.magic))
            } else if h.base_offset < next_offset || h.last_offset_delta < 0 {
                Some(format!("batch offsets {}..={} go backwards", h.base_offset, h.last_offset()))
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(self.corrupt(pos, problem));
            }
            if hit(pos, &h) {
                return Ok(Some((pos, h)));
            }
            next_offset = h.last_offset() + 1;
            pos = end;
        }
        Ok(None)
    }

    fn corrupt(&self, position: u64, problem: String) -> ReadError {
        ReadError::Corrupt { path: self.file.path().to_path_buf(), position, problem }
    }

    /// Reads up to `max_bytes` of whole batches starting at `pos`, stopping before any batch
    /// whose base offset is >= `end_offset` (the high watermark). With `min_one`, a first batch
    /// larger than `max_bytes` is returned whole (KIP-74).
    pub fn read_batches(&self, pos: u64, max_bytes: usize, end_offset: i64, min_one: bool) -> io::Result<Bytes> {
        let available = self.size.saturating_sub(pos) as usize;
        if available == 0 {
            return Ok(Bytes::new());
        }
        let file = self.file.get()?;
        let mut want = max_bytes.min(available);
        if min_one {
            let mut head = [0u8; LOG_OVERHEAD];
            if available >= LOG_OVERHEAD {
                file.read_exact_at(&mut head, pos)?;
                if let Some((_, first_len)) = batch::peek_len(&head) {
                    want = want.max(first_len.min(available));
                }
            }
        }
        let mut buf = read_exact_at_uninit(&file, want, pos)?;
        // Keep whole batches below the high watermark only.
        let mut keep = 0;
        while let Some((base, len)) = batch::peek_len(&buf[keep..]) {
            if base >= end_offset || keep + len > buf.len() {
                break;
            }
            keep += len;
        }
        buf.truncate(keep);
        Ok(Bytes::from(buf))
    }

    pub fn read_one(&self, pos: u64, header: &BatchHeader) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; header.total_len()];
        self.file.get()?.read_exact_at(&mut buf, pos)?;
        Ok(buf)
    }
}

/// `len` bytes read at `pos` into a buffer that is not zero-filled first: a fetch reads up to
/// megabytes per partition, and zeroing them would be one more pass over all of it.
fn read_exact_at_uninit(file: &File, len: usize, pos: u64) -> io::Result<Vec<u8>> {
    use std::os::fd::AsRawFd;
    let mut buf = Vec::with_capacity(len);
    while buf.len() < len {
        let filled = buf.len();
        let spare = &mut buf.spare_capacity_mut()[..len - filled];
        let offset =
            libc::off_t::try_from(pos + filled as u64).map_err(|_| io::Error::other("file offset too large"))?;
        // SAFETY: pread writes at most `spare.len()` bytes into memory `buf` owns (its spare
        // capacity), and the length grows only by the count pread reports as written.
        let n = unsafe { libc::pread(file.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len(), offset) };
        match n {
            n if n > 0 => unsafe { buf.set_len(filled + n as usize) },
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(buf)
}

struct FileReader<'a> {
    file: &'a File,
    pos: u64,
}

impl Read for FileReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// `write_all` for several buffers: one `writev` per round until everything is written.
fn write_all_vectored(mut file: &File, parts: &[&[u8]]) -> io::Result<()> {
    if let Err(e) = super::failpoint::step() {
        // A disk that fills up mid-write keeps part of it: let half of the first part land.
        if let Some(first) = parts.first() {
            let _ = file.write(&first[..first.len() / 2]);
        }
        return Err(e);
    }
    let mut slices: Vec<io::IoSlice<'_>> = parts.iter().map(|p| io::IoSlice::new(p)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match file.write_vectored(rest) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => io::IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
