//! A read-only view of a RecordBatch v2 header, validation of produced batches, and the few
//! in-place rewrites the broker is allowed to make.
//!
//! Layout (big-endian), as Kafka stores it:
//!
//! ```text
//! 0  baseOffset i64        | 8  batchLength i32 (bytes after this field)
//! 12 partitionLeaderEpoch  | 16 magic i8 (= 2)       | 17 crc u32 (CRC-32C of 21..end)
//! 21 attributes i16        | 23 lastOffsetDelta i32  | 27 baseTimestamp i64
//! 35 maxTimestamp i64      | 43 producerId i64       | 51 producerEpoch i16
//! 53 baseSequence i32      | 57 recordsCount i32     | 61 records...
//! ```
//!
//! The CRC does not cover bytes 0..21, so assigning offsets (bytes 0..8) and the leader epoch
//! (12..16) never needs a new CRC. Changing maxTimestamp (LogAppendTime) does.

use bytes::{Buf, BufMut};

use super::compression::{self, DecompressError};
use super::producer_state::ControlType;

pub const HEADER_LEN: usize = 61;
/// baseOffset + batchLength: the bytes in front of what batchLength counts.
pub const LOG_OVERHEAD: usize = 12;
pub const MAGIC_V2: i8 = 2;

const ATTR_COMPRESSION_MASK: i16 = 0x07;
const ATTR_LOG_APPEND_TIME: i16 = 0x08;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;
/// KIP-534: baseTimestamp holds the time after which the cleaner may remove this batch's
/// tombstones (and, for a transaction marker, the marker itself).
const ATTR_DELETE_HORIZON: i16 = 0x40;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Parses the fixed header; `None` when fewer than [`HEADER_LEN`] bytes are given.
    pub fn parse(mut b: &[u8]) -> Option<Self> {
        if b.len() < HEADER_LEN {
            return None;
        }
        Some(Self {
            base_offset: b.get_i64(),
            batch_length: b.get_i32(),
            partition_leader_epoch: b.get_i32(),
            magic: b.get_i8(),
            crc: b.get_u32(),
            attributes: b.get_i16(),
            last_offset_delta: b.get_i32(),
            base_timestamp: b.get_i64(),
            max_timestamp: b.get_i64(),
            producer_id: b.get_i64(),
            producer_epoch: b.get_i16(),
            base_sequence: b.get_i32(),
            records_count: b.get_i32(),
        })
    }

    /// Bytes the whole batch occupies in the log.
    pub fn total_len(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    pub fn compression(&self) -> i16 {
        self.attributes & ATTR_COMPRESSION_MASK
    }

    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_LOG_APPEND_TIME != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// The delete horizon a cleaning wrote into this batch (KIP-534), or `None` when no
    /// cleaning has seen a tombstone or a removable marker in it yet.
    pub fn delete_horizon_ms(&self) -> Option<i64> {
        (self.attributes & ATTR_DELETE_HORIZON != 0).then_some(self.base_timestamp)
    }
}

/// Reads only baseOffset and batchLength: enough to step from batch to batch.
pub fn peek_len(b: &[u8]) -> Option<(i64, usize)> {
    if b.len() < LOG_OVERHEAD {
        return None;
    }
    let base = (&b[0..8]).get_i64();
    let len = (&b[8..12]).get_i32();
    (len >= (HEADER_LEN - LOG_OVERHEAD) as i32).then(|| (base, LOG_OVERHEAD + len as usize))
}

/// The offset after the last whole batch in `records`; `None` when there is none.
pub fn next_offset_after(mut records: &[u8]) -> Option<i64> {
    let mut next = None;
    while let Some((_, len)) = peek_len(records) {
        let Some(bytes) = records.get(..len) else { break };
        if let Some(h) = BatchHeader::parse(bytes) {
            next = Some(h.last_offset() + 1);
        }
        records = &records[len..];
    }
    next
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("record batch at byte {at} is truncated or has an impossible length")]
    BadLength { at: usize },
    #[error("record batch magic {magic} is not supported; only magic 2 (Kafka 0.11+) is")]
    UnsupportedMagic { magic: i8 },
    #[error("record batch CRC mismatch: header says {expected:#010x}, bytes give {actual:#010x}")]
    CrcMismatch { expected: u32, actual: u32 },
    #[error("record batch declares {count} records but a last offset delta of {last_offset_delta}")]
    InconsistentCount { count: i32, last_offset_delta: i32 },
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    TooLarge { size: usize, max: usize },
    #[error("the request carries no record batch")]
    Empty,
    #[error("record {record} of the batch at byte {at}: {problem}")]
    InvalidRecord { at: usize, record: i32, problem: RecordProblem },
    #[error("the records of the batch at byte {at} cannot be decompressed: {source}")]
    Decompress { at: usize, source: DecompressError },
}

/// What is wrong with one record of a batch, as Kafka's record reader would refuse it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordProblem {
    #[error("the batch declares {declared} records but its bytes end after {found}")]
    Missing { declared: i32, found: i32 },
    #[error("{0} bytes follow the last of the records the batch declares")]
    Trailing(usize),
    #[error("its length {length} is negative or runs past the {remaining} bytes left in the batch")]
    BadLength { length: i64, remaining: usize },
    #[error("its {field} is not a valid varint")]
    BadVarint { field: &'static str },
    #[error("its offset delta is {found}, but records must be numbered 0, 1, 2, ... (expected {expected})")]
    OffsetDelta { found: i64, expected: i64 },
    #[error("its {field} length {length} is invalid or runs past the end of the record ({remaining} bytes left)")]
    BadField { field: &'static str, length: i64, remaining: usize },
    #[error("it declares {0} headers")]
    BadHeaderCount(i64),
    #[error("{0} bytes are left over inside the record after its last header")]
    TrailingInRecord(usize),
}

/// What validating a produce request's records found, besides the batch headers.
#[derive(Debug, Default)]
pub struct Validated {
    pub headers: Vec<BatchHeader>,
    /// Indexes (within their batch) of records without a key, across the non-control batches;
    /// only collected when asked for (compacted topics refuse them).
    pub keyless: Vec<i32>,
}

/// Checks every batch of a produce request's records as Kafka's log validator does: lengths,
/// magic, CRC-32C, count, and every record inside (lengths, offset deltas, keys, values,
/// headers), decompressing compressed batches into at most [`MAX_DECOMPRESSED_RECORDS`] bytes.
/// Uncompressed records are walked where they are, never copied. With `collect_keyless`, the
/// records without a key are reported too (from the same pass).
pub fn validate(records: &[u8], max_batch_bytes: usize, collect_keyless: bool) -> Result<Validated, BatchError> {
    let headers = validate_batches(records, max_batch_bytes)?;
    let mut keyless = Vec::new();
    let mut pos = 0;
    for h in &headers {
        let body = &records[pos + HEADER_LEN..pos + h.total_len()];
        let decompressed;
        let body = match h.compression() {
            0 => body,
            codec => {
                decompressed = compression::decompress(codec, body, MAX_DECOMPRESSED_RECORDS)
                    .map_err(|source| BatchError::Decompress { at: pos, source })?;
                &decompressed[..]
            }
        };
        let collect = collect_keyless && !h.is_control();
        walk_records(h.records_count, body, |i, has_key| {
            if collect && !has_key {
                keyless.push(i);
            }
        })
        .map_err(|(record, problem)| BatchError::InvalidRecord { at: pos, record, problem })?;
        pos += h.total_len();
    }
    Ok(Validated { headers, keyless })
}

/// Walks `count` records laid out in `body` (uncompressed v2 record format), checking each as
/// Kafka's record reader does, and calls `f(index, has_key)` for each. No allocation.
fn walk_records(count: i32, mut body: &[u8], mut f: impl FnMut(i32, bool)) -> Result<(), (i32, RecordProblem)> {
    for i in 0..count {
        if body.is_empty() {
            return Err((i, RecordProblem::Missing { declared: count, found: i }));
        }
        let length = read_varint(&mut body).ok_or((i, RecordProblem::BadVarint { field: "length" }))?;
        let len = usize::try_from(length)
            .ok()
            .filter(|&l| l <= body.len())
            .ok_or((i, RecordProblem::BadLength { length, remaining: body.len() }))?;
        let (mut rec, rest) = body.split_at(len);
        body = rest;
        let has_key = walk_record(i, &mut rec).map_err(|p| (i, p))?;
        if !rec.is_empty() {
            return Err((i, RecordProblem::TrailingInRecord(rec.len())));
        }
        f(i, has_key);
    }
    if !body.is_empty() {
        return Err((count, RecordProblem::Trailing(body.len())));
    }
    Ok(())
}

/// One record's fields after its length: attributes, timestamp delta, offset delta, key, value,
/// headers. Returns whether it has a key.
fn walk_record(index: i32, rec: &mut &[u8]) -> Result<bool, RecordProblem> {
    let varint = |rec: &mut &[u8], field: &'static str| read_varint(rec).ok_or(RecordProblem::BadVarint { field });
    let (_attributes, rest) = rec.split_first().ok_or(RecordProblem::BadVarint { field: "attributes" })?;
    *rec = rest;
    varint(rec, "timestamp delta")?;
    let offset_delta = varint(rec, "offset delta")?;
    if offset_delta != i64::from(index) {
        return Err(RecordProblem::OffsetDelta { found: offset_delta, expected: i64::from(index) });
    }
    let key = skip_bytes_field(rec, "key", true)?;
    skip_bytes_field(rec, "value", true)?;
    let headers = varint(rec, "header count")?;
    if headers < 0 || headers as u64 > rec.len() as u64 {
        return Err(RecordProblem::BadHeaderCount(headers));
    }
    for _ in 0..headers {
        skip_bytes_field(rec, "header key", false)?;
        skip_bytes_field(rec, "header value", true)?;
    }
    Ok(key)
}

/// Skips a varint-length field; -1 (null) is allowed when `nullable`. Returns whether it was
/// present (not null).
fn skip_bytes_field(rec: &mut &[u8], field: &'static str, nullable: bool) -> Result<bool, RecordProblem> {
    let length = read_varint(rec).ok_or(RecordProblem::BadVarint { field })?;
    if length == -1 && nullable {
        return Ok(false);
    }
    let bad = RecordProblem::BadField { field, length, remaining: rec.len() };
    let len = usize::try_from(length).ok().filter(|&l| l <= rec.len()).ok_or(bad)?;
    *rec = &rec[len..];
    Ok(true)
}

/// The batch-level checks of [`validate`]: lengths, magic, CRC-32C, count.
fn validate_batches(records: &[u8], max_batch_bytes: usize) -> Result<Vec<BatchHeader>, BatchError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < records.len() {
        let rest = &records[pos..];
        if rest.len() < HEADER_LEN {
            return Err(BatchError::BadLength { at: pos });
        }
        // Magic first: a v0/v1 message set has a different layout, and its "length" is not ours.
        let magic = rest[16] as i8;
        if magic != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic { magic });
        }
        let header = BatchHeader::parse(rest).ok_or(BatchError::BadLength { at: pos })?;
        if header.batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32 || header.total_len() > rest.len() {
            return Err(BatchError::BadLength { at: pos });
        }
        let total = header.total_len();
        if total > max_batch_bytes {
            return Err(BatchError::TooLarge { size: total, max: max_batch_bytes });
        }
        let actual = crc32c::crc32c(&rest[21..total]);
        if actual != header.crc {
            return Err(BatchError::CrcMismatch { expected: header.crc, actual });
        }
        if header.records_count < 1 || header.last_offset_delta != header.records_count - 1 {
            return Err(BatchError::InconsistentCount {
                count: header.records_count,
                last_offset_delta: header.last_offset_delta,
            });
        }
        out.push(header);
        pos += total;
    }
    if out.is_empty() {
        return Err(BatchError::Empty);
    }
    Ok(out)
}

/// Writes the broker-assigned base offset and leader epoch into a batch (bytes 0..8, 12..16).
pub fn assign_offset(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    (&mut batch[0..8]).put_i64(base_offset);
    (&mut batch[12..16]).put_i32(leader_epoch);
}

/// The first 16 bytes of a batch as stored: baseOffset, batchLength, partitionLeaderEpoch.
pub fn log_head(h: &BatchHeader) -> [u8; 16] {
    let mut head = [0u8; 16];
    (&mut head[0..8]).put_i64(h.base_offset);
    (&mut head[8..12]).put_i32(h.batch_length);
    (&mut head[12..16]).put_i32(h.partition_leader_epoch);
    head
}

/// Marks a batch as LogAppendTime with the given time, and recomputes its CRC.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attributes = (&batch[21..23]).get_i16() | ATTR_LOG_APPEND_TIME;
    (&mut batch[21..23]).put_i16(attributes);
    (&mut batch[35..43]).put_i64(now_ms);
    let crc = crc32c::crc32c(&batch[21..]);
    (&mut batch[17..21]).put_u32(crc);
}

pub(crate) fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// A record's key and value; `None` is null (a value of null is a tombstone).
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// Builds an uncompressed RecordBatch v2 (base offset 0, no producer) holding `records` as
/// (key, value) pairs, all stamped `timestamp_ms`. For the broker's own internal logs.
pub fn build(records: &[KeyValue<'_>], timestamp_ms: i64) -> Vec<u8> {
    build_timed(records.iter().map(|&(k, v)| (k, v, 0)), timestamp_ms)
}

/// [`build`] with a timestamp delta per record: (key, value, delta from `base_timestamp`).
pub fn build_timed<'a>(
    records: impl ExactSizeIterator<Item = (Option<&'a [u8]>, Option<&'a [u8]>, i64)>,
    base_timestamp: i64,
) -> Vec<u8> {
    build_for(records.map(|(k, v, d)| (k, v, d, &[][..])), base_timestamp, &BatchProducer::NONE)
}

/// A record header: its key and value (null when `None`).
pub type Header<'a> = (&'a [u8], Option<&'a [u8]>);

/// A client's batch: records with headers, all stamped `timestamp_ms`, compressed with `codec`
/// (Kafka's attribute values: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
pub fn build_with_headers(
    records: &[(KeyValue<'_>, Vec<Header<'_>>)],
    timestamp_ms: i64,
    codec: i16,
) -> std::io::Result<Vec<u8>> {
    let batch =
        build_for(records.iter().map(|((k, v), h)| (*k, *v, 0, h.as_slice())), timestamp_ms, &BatchProducer::NONE);
    if codec == 0 {
        return Ok(batch);
    }
    let body = compression::compress(codec, &batch[HEADER_LEN..])?;
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&batch[..HEADER_LEN]);
    out.extend_from_slice(&body);
    let length = (out.len() - LOG_OVERHEAD) as i32;
    (&mut out[8..12]).put_i32(length);
    let attributes = i16::from_be_bytes([out[21], out[22]]) | (codec & 0x7);
    (&mut out[21..23]).put_i16(attributes);
    let crc = crc32c::crc32c(&out[21..]);
    (&mut out[17..21]).put_u32(crc);
    Ok(out)
}

/// The producer fields and kind of a batch the broker writes itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchProducer {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub transactional: bool,
    pub control: bool,
}

impl BatchProducer {
    pub const NONE: Self = Self { producer_id: -1, producer_epoch: -1, transactional: false, control: false };
}

/// Records inside a transaction, for the broker's own logs (TxnOffsetCommit's offsets).
pub fn build_transactional(records: &[KeyValue<'_>], timestamp_ms: i64, producer_id: i64, epoch: i16) -> Vec<u8> {
    let producer = BatchProducer { producer_id, producer_epoch: epoch, transactional: true, control: false };
    build_for(records.iter().map(|&(k, v)| (k, v, 0, &[][..])), timestamp_ms, &producer)
}

/// A transaction marker: a control batch with one record whose key is (version 0, type: 0
/// abort, 1 commit) and whose value is (version 0, coordinator epoch), as Kafka writes them.
pub fn build_marker(
    producer_id: i64,
    epoch: i16,
    control: ControlType,
    coordinator_epoch: i32,
    timestamp_ms: i64,
) -> Vec<u8> {
    let mut key = Vec::with_capacity(4);
    key.put_i16(0);
    key.put_i16(match control {
        ControlType::Abort => 0,
        ControlType::Commit => 1,
    });
    let mut value = Vec::with_capacity(6);
    value.put_i16(0);
    value.put_i32(coordinator_epoch);
    let producer = BatchProducer { producer_id, producer_epoch: epoch, transactional: true, control: true };
    build_for([(Some(&key[..]), Some(&value[..]), 0, &[][..])].into_iter(), timestamp_ms, &producer)
}

/// What a control batch says: its marker type and the coordinator epoch. `None` for a batch
/// that is not a readable transaction marker.
pub fn read_marker(batch: &[u8]) -> Option<(ControlType, i32)> {
    let header = BatchHeader::parse(batch)?;
    if !header.is_control() || header.compression() != 0 {
        return None;
    }
    let records = parse_records(&header, batch.get(HEADER_LEN..header.total_len())?)?;
    let mut key = records.first()?.key?;
    if key.len() < 4 || key.get_i16() < 0 {
        return None;
    }
    let control = match key.get_i16() {
        0 => ControlType::Abort,
        1 => ControlType::Commit,
        _ => return None,
    };
    let coordinator_epoch = match records[0].value {
        Some(mut v) if v.len() >= 6 => {
            v.get_i16();
            v.get_i32()
        }
        _ => 0,
    };
    Some((control, coordinator_epoch))
}

fn build_for<'a, 'h>(
    records: impl ExactSizeIterator<Item = (Option<&'a [u8]>, Option<&'a [u8]>, i64, &'h [Header<'h>])>,
    base_timestamp: i64,
    producer: &BatchProducer,
) -> Vec<u8> {
    let count = records.len() as i32;
    let mut body = Vec::new();
    let mut rec = Vec::new();
    let mut max_timestamp = base_timestamp;
    for (i, (key, value, delta, headers)) in records.enumerate() {
        rec.clear();
        rec.push(0); // attributes
        put_varint(&mut rec, delta);
        put_varint(&mut rec, i as i64); // offset delta
        for field in [key, value] {
            match field {
                Some(b) => {
                    put_varint(&mut rec, b.len() as i64);
                    rec.extend_from_slice(b);
                }
                None => put_varint(&mut rec, -1),
            }
        }
        put_varint(&mut rec, headers.len() as i64);
        for (k, v) in headers {
            put_varint(&mut rec, k.len() as i64);
            rec.extend_from_slice(k);
            match v {
                Some(b) => {
                    put_varint(&mut rec, b.len() as i64);
                    rec.extend_from_slice(b);
                }
                None => put_varint(&mut rec, -1),
            }
        }
        put_varint(&mut body, rec.len() as i64);
        body.extend_from_slice(&rec);
        max_timestamp = max_timestamp.max(base_timestamp + delta);
    }
    let mut b = Vec::with_capacity(HEADER_LEN + body.len());
    b.put_i64(0);
    b.put_i32((HEADER_LEN - LOG_OVERHEAD + body.len()) as i32);
    b.put_i32(-1);
    b.put_i8(MAGIC_V2);
    b.put_u32(0);
    let mut attributes = 0;
    if producer.transactional {
        attributes |= ATTR_TRANSACTIONAL;
    }
    if producer.control {
        attributes |= ATTR_CONTROL;
    }
    b.put_i16(attributes);
    b.put_i32(count - 1);
    b.put_i64(base_timestamp);
    b.put_i64(max_timestamp);
    b.put_i64(producer.producer_id);
    b.put_i16(producer.producer_epoch);
    b.put_i32(-1);
    b.put_i32(count);
    b.extend_from_slice(&body);
    let crc = crc32c::crc32c(&b[21..]);
    (&mut b[17..21]).put_u32(crc);
    b
}

/// One record of an uncompressed batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// The record's headers as written: a varint count, then each key and value.
    pub headers: &'a [u8],
}

impl<'a> RecordView<'a> {
    /// The record's headers, or `None` when they are malformed.
    pub fn header_pairs(&self) -> Option<Vec<Header<'a>>> {
        let mut rest = self.headers;
        let count = read_varint(&mut rest)?;
        let mut out = Vec::with_capacity((count.max(0) as usize).min(rest.len() / 2));
        for _ in 0..count {
            let key = read_bytes_field(&mut rest)??;
            let value = read_bytes_field(&mut rest)?;
            out.push((key, value));
        }
        Some(out)
    }
}

/// The records of one uncompressed batch, or `None` for compressed or malformed batches.
pub fn records(batch: &[u8]) -> Option<Vec<RecordView<'_>>> {
    let header = BatchHeader::parse(batch)?;
    if header.compression() != 0 || batch.len() < header.total_len() {
        return None;
    }
    parse_records(&header, &batch[HEADER_LEN..header.total_len()])
}

/// Decompressed records of a batch may not exceed this many bytes.
pub const MAX_DECOMPRESSED_RECORDS: usize = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordsError {
    #[error(transparent)]
    Decompress(#[from] DecompressError),
    #[error("the records of the batch are malformed")]
    Malformed,
}

/// A batch's header and its records' bytes, decompressed when the batch is compressed (into
/// at most [`MAX_DECOMPRESSED_RECORDS`] bytes).
fn header_and_records(batch: &[u8]) -> Result<(BatchHeader, std::borrow::Cow<'_, [u8]>), RecordsError> {
    let header = BatchHeader::parse(batch).ok_or(RecordsError::Malformed)?;
    let body = batch.get(HEADER_LEN..header.total_len()).ok_or(RecordsError::Malformed)?;
    let body = match header.compression() {
        0 => std::borrow::Cow::Borrowed(body),
        codec => std::borrow::Cow::Owned(compression::decompress(codec, body, MAX_DECOMPRESSED_RECORDS)?),
    };
    Ok((header, body))
}

/// Runs `f` over the records of any batch, decompressing them first when needed (at most
/// [`MAX_DECOMPRESSED_RECORDS`] bytes).
pub fn with_records<R>(batch: &[u8], f: impl FnOnce(&[RecordView<'_>]) -> R) -> Result<R, RecordsError> {
    let (header, body) = header_and_records(batch)?;
    let records = parse_records(&header, &body).ok_or(RecordsError::Malformed)?;
    Ok(f(&records))
}

fn parse_records<'a>(header: &BatchHeader, mut rest: &'a [u8]) -> Option<Vec<RecordView<'a>>> {
    // Each record takes at least 7 bytes: never reserve more than the bytes can hold.
    let mut out = Vec::with_capacity((header.records_count.max(0) as usize).min(rest.len() / 7));
    for _ in 0..header.records_count {
        let len = usize::try_from(read_varint(&mut rest)?).ok()?;
        if len > rest.len() {
            return None;
        }
        let mut rec = &rest[..len];
        rest = &rest[len..];
        rec = rec.get(1..)?;
        let timestamp = header.base_timestamp + read_varint(&mut rec)?;
        let offset = header.base_offset + read_varint(&mut rec)?;
        let key = read_bytes_field(&mut rec)?;
        let value = read_bytes_field(&mut rec)?;
        out.push(RecordView { offset, timestamp, key, value, headers: rec });
    }
    Some(out)
}

/// A varint length followed by that many bytes; length -1 is null.
fn read_bytes_field<'a>(rec: &mut &'a [u8]) -> Option<Option<&'a [u8]>> {
    let n = read_varint(rec)?;
    if n < 0 {
        return Some(None);
    }
    let n = usize::try_from(n).ok()?;
    let (v, tail) = (rec.get(..n)?, rec.get(n..)?);
    *rec = tail;
    Some(Some(v))
}

pub(crate) fn read_varint(b: &mut &[u8]) -> Option<i64> {
    let mut value: u64 = 0;
    let mut shift = 0;
    loop {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    // zig-zag
    Some(((value >> 1) as i64) ^ -((value & 1) as i64))
}

/// What filtering a batch's records left (see [`filter_records`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Filtered {
    /// Every record stays and the batch needs no new delete horizon: it is kept as it is.
    All,
    /// No record stays: the batch goes.
    Nothing,
    /// A new batch holding the records that stay.
    Some(Vec<u8>),
}

/// When a batch the cleaner keeps must start carrying a delete horizon (KIP-534).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewHorizon {
    /// The horizon to write: the cleaning's time plus `delete.retention.ms`.
    pub at_ms: i64,
    /// Write it even when no tombstone stays: a transaction marker whose transaction has no
    /// data left in the log.
    pub always: bool,
}

/// A kept record: its fields from the offset delta on are copied as they are.
struct KeptRecord<'a> {
    raw: &'a [u8],
    attributes: u8,
    timestamp: i64,
    from_offset_delta: &'a [u8],
}

/// Keeps the records of `batch` for which `keep(offset, key, value)` is true (the log
/// cleaner). A batch that keeps some but not all of its records, or that gets a delete horizon,
/// is written anew, compressed with its own codec as Kafka's cleaner does, under the same base
/// offset, last offset delta, leader epoch and producer fields, so that offsets and the batch's
/// place in the log do not change; every kept record keeps its offset, timestamp, key, value
/// and headers.
///
/// The horizon is set, as Kafka's `MemoryRecords.filterTo` does, when the batch has none yet
/// and a tombstone stays (or `horizon.always`): the attribute bit 0x40 is set and baseTimestamp
/// becomes `horizon.at_ms`, so every record's timestamp delta is rewritten to keep its
/// timestamp. The CRC is computed over the new bytes.
pub fn filter_records(
    batch: &[u8],
    horizon: NewHorizon,
    mut keep: impl FnMut(i64, Option<&[u8]>, Option<&[u8]>) -> bool,
) -> Result<Filtered, RecordsError> {
    let (header, body) = header_and_records(batch)?;
    let mut rest = &body[..];
    let mut kept: Vec<KeptRecord<'_>> = Vec::new();
    let mut tombstone_kept = false;
    for _ in 0..header.records_count.max(0) {
        let start = rest;
        let len = usize::try_from(read_varint(&mut rest).ok_or(RecordsError::Malformed)?)
            .map_err(|_| RecordsError::Malformed)?;
        let prefix = start.len() - rest.len();
        let raw = start.get(..prefix + len).ok_or(RecordsError::Malformed)?;
        let (&attributes, mut rec) = rest.get(..len).and_then(<[u8]>::split_first).ok_or(RecordsError::Malformed)?;
        rest = &rest[len..];
        let timestamp = header.base_timestamp.wrapping_add(read_varint(&mut rec).ok_or(RecordsError::Malformed)?);
        let from_offset_delta = rec;
        let offset = header.base_offset + read_varint(&mut rec).ok_or(RecordsError::Malformed)?;
        let key = read_bytes_field(&mut rec).ok_or(RecordsError::Malformed)?;
        let value = read_bytes_field(&mut rec).ok_or(RecordsError::Malformed)?;
        if keep(offset, key, value) {
            tombstone_kept |= value.is_none();
            kept.push(KeptRecord { raw, attributes, timestamp, from_offset_delta });
        }
    }
    if kept.is_empty() {
        return Ok(Filtered::Nothing);
    }
    let set_horizon = header.delete_horizon_ms().is_none() && (horizon.always || tombstone_kept);
    if kept.len() == header.records_count.max(0) as usize && !set_horizon {
        return Ok(Filtered::All);
    }
    let mut out = Vec::with_capacity(HEADER_LEN + body.len() + 8 * kept.len());
    out.extend_from_slice(&batch[..HEADER_LEN]);
    let mut attributes = header.attributes;
    let mut base_timestamp = header.base_timestamp;
    if set_horizon {
        attributes |= ATTR_DELETE_HORIZON;
        base_timestamp = horizon.at_ms;
    }
    let mut record = Vec::new();
    for r in &kept {
        if base_timestamp == header.base_timestamp {
            out.extend_from_slice(r.raw);
        } else {
            record.clear();
            record.push(r.attributes);
            put_varint(&mut record, r.timestamp.wrapping_sub(base_timestamp));
            record.extend_from_slice(r.from_offset_delta);
            put_varint(&mut out, record.len() as i64);
            out.extend_from_slice(&record);
        }
    }
    // With CreateTime the batch's max timestamp is that of the records it still holds, as
    // Kafka writes it; with LogAppendTime it is the append time, which stays.
    let max_timestamp = if header.is_log_append_time() {
        header.max_timestamp
    } else {
        kept.iter().map(|r| r.timestamp).max().unwrap_or(header.max_timestamp)
    };
    let codec = header.compression();
    if codec != 0 {
        match compression::compress(codec, &out[HEADER_LEN..]) {
            Ok(packed) => {
                out.truncate(HEADER_LEN);
                out.extend_from_slice(&packed);
            }
            // Never expected; the records stay readable uncompressed.
            Err(_) => attributes &= !ATTR_COMPRESSION_MASK,
        }
    }
    let batch_length = (out.len() - LOG_OVERHEAD) as i32;
    (&mut out[8..12]).put_i32(batch_length);
    (&mut out[21..23]).put_i16(attributes);
    (&mut out[27..35]).put_i64(base_timestamp);
    (&mut out[35..43]).put_i64(max_timestamp);
    (&mut out[57..61]).put_i32(kept.len() as i32);
    let crc = crc32c::crc32c(&out[21..]);
    (&mut out[17..21]).put_u32(crc);
    Ok(Filtered::Some(out))
}

/// The (offset, timestamp) of the first record whose timestamp is at least `target`, or of the
/// record with the largest timestamp when `target` is `None`. Compressed batches are
/// decompressed; `None` for malformed batches (callers fall back to batch level).
pub fn find_record_by_timestamp(batch: &[u8], target: Option<i64>) -> Option<(i64, i64)> {
    let header = BatchHeader::parse(batch)?;
    if header.is_log_append_time() {
        // Every record carries the batch's append time.
        return Some(match target {
            Some(_) => (header.base_offset, header.max_timestamp),
            None => (header.last_offset(), header.max_timestamp),
        });
    }
    with_records(batch, |records| match target {
        Some(t) => records.iter().find(|r| r.timestamp >= t).map(|r| (r.offset, r.timestamp)),
        None => records.iter().fold(None, |best: Option<(i64, i64)>, r| match best {
            Some((_, ts)) if ts >= r.timestamp => best,
            _ => Some((r.offset, r.timestamp)),
        }),
    })
    .ok()
    .flatten()
}

#[cfg(test)]
pub mod tests;
