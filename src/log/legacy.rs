//! Kafka's old message formats (the MessageSet of magic 0 and 1) and their conversion to and
//! from RecordBatch v2, for the clients that still speak them. Produce v0–v2 carry message sets:
//! [`upconvert`] turns one into a single v2 batch before the ordinary validation and append.
//! Fetch v0–v3 want message sets back: [`downconvert`] makes one from stored batches, for that
//! response only. The log itself only ever holds v2 batches.
//!
//! A message set is messages back to back, each one (big-endian):
//!
//! ```text
//! 0  offset i64      | 8  size i32 (bytes after this field)
//! 12 crc u32 (CRC-32/IEEE of 16..end, not CRC-32C as in v2)
//! 16 magic i8 (0|1)  | 17 attributes i8 (bits 0-2 codec; bit 3 LogAppendTime, magic 1 only)
//! 18 timestamp i64   (magic 1 only)
//! .. key:   i32 length (negative: null), bytes
//! .. value: i32 length (negative: null), bytes
//! ```
//!
//! A compressed message (a *wrapper*) has a null key, and its value is a whole message set,
//! compressed. For magic 1 the inner offsets count from 0 and the wrapper carries the last one
//! (or 0). Magic 0 producers wrote LZ4 frames with a wrong header checksum (KAFKA-3160).
//!
//! Everything here is pure: bytes in, bytes out. The bytes come from the network or the disk, so
//! nothing may panic on them, and nothing is reserved from a count they declare: memory stays
//! proportional to the input, the caller's `decompressed_limit` and (fetch) `max_bytes`.
//!
//! # Kafka 3.9 (LogValidator, AbstractLegacyRecordBatch, LegacyRecord, RecordsUtil)
//!
//! Up-conversion does as Kafka: the CRC of every message, outer and inner, is checked; a size
//! below 14 bytes, a magic other than 0 and 1 or a bad CRC is CORRUPT_MESSAGE; INVALID_RECORD for
//! messages of two magics, a compressed set that is not exactly one wrapper, a wrapper inside a
//! wrapper, a wrapper with nothing inside, zstd in a wrapper, and a magic 1 wrapper offset below
//! its last inner offset. Magic 0 records get no timestamp (-1); the records of a magic 1 wrapper
//! marked LogAppendTime get the wrapper's timestamp; any negative key or value length is null.
//! The batch's base timestamp is its first record's, its max timestamp the greatest (at least
//! -1), and it is compressed with the wrapper's codec (Kafka's `compression.type=producer`).
//! Where this differs:
//! - A message cut short at the end of the set, or inside a wrapper, is CORRUPT_MESSAGE; Kafka
//!   drops it silently (`UnifiedLog.trimInvalidBytes`, `DataLogInputStream`). Bytes after a
//!   message's value are refused too; Kafka ignores them.
//! - The batch is always CreateTime. Kafka stores the topic's `message.timestamp.type`; the
//!   caller stamps LogAppendTime topics with `batch::set_log_append_time` as for v2 batches.
//!   Kafka also refuses (INVALID_TIMESTAMP) a message marked LogAppendTime on such a topic.
//! - An empty message set is [`LegacyError::Empty`]; Kafka appends nothing and answers NONE,
//!   which the handler may do instead.
//! - Decompression is bounded (INVALID_RECORD past the limit); Kafka has no bound. Codecs 5–7
//!   are CORRUPT_MESSAGE; Kafka fails with an unknown server error.
//! - Kafka takes magic 2 batches in Produce v0–v2 too (`ProduceRequest.validateRecords` checks
//!   only from v3). Here they are [`LegacyError::UnsupportedMagic`] with magic 2: the handler
//!   should look at byte 16 and send such a request down the ordinary path.
//!
//! Timestamp bounds and keys on compacted topics are left to the ordinary checks of the batch.
//!
//! Down-conversion does as Kafka: control batches are skipped; transactional records are
//! included, aborted ones too (Fetch v0–v3 read uncommitted); headers are dropped; offsets are
//! absolute; records below the fetch offset are left out; magic 1 carries each record's
//! timestamp, or for a LogAppendTime batch its max timestamp and attribute bit 3; magic 0 none;
//! a zstd batch is UNSUPPORTED_COMPRESSION_TYPE when it comes first. Where this differs:
//! - The messages are never compressed; Kafka compresses each converted batch into a wrapper
//!   with the batch's codec (and so keeps a compressed batch's records below the fetch offset).
//! - Only whole messages: the first always, then none that would take the output past
//!   `max_bytes`. Kafka promises the larger of the stored size and its first converted batch,
//!   and may cut the last message short or pad with an overflow header.
//! - A batch that cannot be converted (zstd, corrupt, over the decompression limit) ends the
//!   output; it is an error only when nothing comes before it, so the client gets the good
//!   records and the error on its next fetch (Kafka does this for zstd only).
//! - Negative timestamps other than -1 are written as they are; Kafka's writer throws.
//! - When every batch is a control batch the output is empty (Kafka sends an overflow header);
//!   an old consumer then asks for the same offset again, with either broker.

use std::fmt;

use bytes::BufMut;

use super::batch::{put_varint, read_varint, BatchHeader, HEADER_LEN, LOG_OVERHEAD, MAGIC_V2};
use super::compression::{self, DecompressError};

/// The Kafka error codes [`LegacyError::kafka_code`] answers.
const CORRUPT_MESSAGE: i16 = 2;
const MESSAGE_TOO_LARGE: i16 = 10;
const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
const INVALID_RECORD: i16 = 87;

const NO_TIMESTAMP: i64 = -1;
const ATTR_CODEC_MASK: i8 = 0x07;
const ATTR_LOG_APPEND_TIME: i8 = 0x08;
/// crc, magic, attributes, key length, value length: the smallest magic 0 message.
const OVERHEAD_V0: usize = 14;
/// [`OVERHEAD_V0`] and the timestamp.
const OVERHEAD_V1: usize = 22;
/// Where the CRC starts, and the magic, counted from the start of a message's offset.
const CRC_AT: usize = LOG_OVERHEAD;
const MAGIC_AT: usize = LOG_OVERHEAD + 4;
const LZ4_MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];

/// The two legacy formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyMagic {
    /// Kafka 0.8–0.9: no timestamps.
    V0,
    /// Kafka 0.10: a timestamp per message, relative inner offsets.
    V1,
}

impl LegacyMagic {
    /// The format a Fetch of this version reads: v0–v1 magic 0, v2–v3 magic 1, later v2 batches
    /// as stored (`None`).
    pub fn for_fetch_version(version: i16) -> Option<Self> {
        match version {
            0..=1 => Some(Self::V0),
            2..=3 => Some(Self::V1),
            _ => None,
        }
    }

    pub fn value(self) -> i8 {
        match self {
            Self::V0 => 0,
            Self::V1 => 1,
        }
    }

    fn from_value(magic: i8) -> Option<Self> {
        match magic {
            0 => Some(Self::V0),
            1 => Some(Self::V1),
            _ => None,
        }
    }

    fn overhead(self) -> usize {
        match self {
            Self::V0 => OVERHEAD_V0,
            Self::V1 => OVERHEAD_V1,
        }
    }
}

/// Where a message starts: in the produced message set, or in the decompressed value of its
/// wrapper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    Set(usize),
    Wrapper(usize),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Set(at) => write!(f, "byte {at} of the message set"),
            Self::Wrapper(at) => write!(f, "byte {at} inside the compressed wrapper"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LegacyError {
    #[error("the message set holds no message")]
    Empty,
    #[error("the message at {at} is cut short: it needs {needed} bytes but only {available} are left")]
    Truncated { at: Position, needed: usize, available: usize },
    #[error("the message at {at} declares a size of {size} bytes; a message takes at least 14")]
    BadSize { at: Position, size: i32 },
    #[error(
        "the message at {at} has magic {magic}; message sets hold magic 0 or 1 \
         (record batches of magic 2 go in Produce v3 and later)"
    )]
    UnsupportedMagic { at: Position, magic: i8 },
    #[error("the message at {at} fails its CRC: it says {expected:#010x}, its bytes give {actual:#010x}")]
    CrcMismatch { at: Position, expected: u32, actual: u32 },
    #[error("the message at {at} is malformed: {problem}")]
    Malformed { at: Position, problem: &'static str },
    #[error(
        "the message at {at} has magic {magic}, but the first one has magic {first}; a message set uses one format"
    )]
    MixedMagic { at: Position, magic: i8, first: i8 },
    #[error("a compressed message set must be one wrapper message, but this one holds {count} messages")]
    MultipleWrappers { count: usize },
    #[error("the compressed wrapper holds no message (its value is null or decompresses to nothing)")]
    EmptyWrapper,
    #[error(
        "inner message {index} of the compressed wrapper is compressed itself (codec {codec}); wrappers do not nest"
    )]
    NestedWrapper { index: usize, codec: i16 },
    #[error("the wrapper's offset {wrapper_offset} is below the offset {last_inner_offset} of its last inner message")]
    WrapperOffset { wrapper_offset: i64, last_inner_offset: i64 },
    #[error("zstd cannot compress a magic 0 or 1 message set; send zstd in record batches (Produce v7 and later)")]
    ZstdWrapper,
    #[error("compression codec {codec} does not exist (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd)")]
    UnknownCodec { codec: i16 },
    #[error("the compressed {codec} data cannot be decompressed: {reason}")]
    Undecompressable { codec: &'static str, reason: String },
    #[error("the compressed records decompress to more than {limit} bytes")]
    DecompressedTooLarge { limit: usize },
    #[error("the converted data would be {size} bytes, more than a record batch or message can hold")]
    TooLarge { size: usize },
    #[error("the stored record batch at byte {at} is corrupt: {problem}")]
    CorruptBatch { at: usize, problem: &'static str },
    #[error(
        "the record batch at byte {at} is zstd-compressed, which Fetch v0-v3 (message formats 0 and 1) \
         cannot carry; fetch with v10 or later"
    )]
    ZstdBatch { at: usize },
}

impl LegacyError {
    /// The Kafka error code Kafka 3.9 answers for the same fault (see the module docs for the
    /// faults Kafka does not have).
    pub fn kafka_code(&self) -> i16 {
        match self {
            Self::Truncated { .. }
            | Self::BadSize { .. }
            | Self::UnsupportedMagic { .. }
            | Self::CrcMismatch { .. }
            | Self::Malformed { .. }
            | Self::UnknownCodec { .. }
            | Self::Undecompressable { .. }
            | Self::CorruptBatch { .. } => CORRUPT_MESSAGE,
            // Kafka's InvalidRecordException: the bytes are intact but break a rule.
            Self::Empty
            | Self::MixedMagic { .. }
            | Self::MultipleWrappers { .. }
            | Self::EmptyWrapper
            | Self::NestedWrapper { .. }
            | Self::WrapperOffset { .. }
            | Self::ZstdWrapper
            | Self::DecompressedTooLarge { .. } => INVALID_RECORD,
            Self::TooLarge { .. } => MESSAGE_TOO_LARGE,
            Self::ZstdBatch { .. } => UNSUPPORTED_COMPRESSION_TYPE,
        }
    }

    fn from_decompress(e: DecompressError, limit: usize) -> Self {
        match e {
            DecompressError::UnknownCodec(codec) => Self::UnknownCodec { codec },
            DecompressError::Corrupt { codec, reason } => Self::Undecompressable { codec, reason },
            DecompressError::TooLarge { .. } => Self::DecompressedTooLarge { limit },
        }
    }
}

/// A message set converted to one RecordBatch v2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upconverted {
    /// The batch: base offset 0, leader epoch -1, no producer id, epoch or sequence, not
    /// transactional, CreateTime; compressed with the wrapper's codec if there was one.
    pub batch: Vec<u8>,
    pub records: usize,
    pub magic: LegacyMagic,
}

/// Converts the message set of a Produce v0–v2 partition into one RecordBatch v2 (see the module
/// docs for the rules). At most `decompressed_limit` bytes are decompressed.
pub fn upconvert(message_set: &[u8], decompressed_limit: usize) -> Result<Upconverted, LegacyError> {
    let outer = parse_message_set(message_set, Position::Set)?;
    let first = outer.first().ok_or(LegacyError::Empty)?;
    let magic = first.magic;
    if let Some(m) = outer.iter().find(|m| m.magic != magic) {
        return Err(LegacyError::MixedMagic { at: m.at, magic: m.magic.value(), first: magic.value() });
    }
    let Some(wrapper) = outer.iter().find(|m| m.codec() != 0) else {
        let batch = build_batch(&outer, 0)?;
        return Ok(Upconverted { batch, records: outer.len(), magic });
    };
    if outer.len() > 1 {
        return Err(LegacyError::MultipleWrappers { count: outer.len() });
    }
    let codec = wrapper.codec();
    if codec == compression::ZSTD {
        return Err(LegacyError::ZstdWrapper);
    }
    let packed = wrapper.value.ok_or(LegacyError::EmptyWrapper)?;
    let unpacked = decompress_wrapper(codec, magic, packed, decompressed_limit)?;
    let mut inner = parse_message_set(&unpacked, Position::Wrapper)?;
    for (index, m) in inner.iter_mut().enumerate() {
        if m.magic != magic {
            return Err(LegacyError::MixedMagic { at: m.at, magic: m.magic.value(), first: magic.value() });
        }
        if m.codec() != 0 {
            return Err(LegacyError::NestedWrapper { index, codec: m.codec() });
        }
        if wrapper.is_log_append_time() {
            m.timestamp = wrapper.timestamp;
        }
    }
    let last = inner.last().ok_or(LegacyError::EmptyWrapper)?;
    // Some producers (librdkafka) leave the wrapper's offset at 0; any other must cover the
    // inner offsets, or the absolute offsets Kafka derives from it would be negative.
    if magic == LegacyMagic::V1 && wrapper.offset != 0 && wrapper.offset < last.offset {
        return Err(LegacyError::WrapperOffset { wrapper_offset: wrapper.offset, last_inner_offset: last.offset });
    }
    let batch = build_batch(&inner, codec)?;
    Ok(Upconverted { batch, records: inner.len(), magic })
}

/// Converts stored RecordBatch v2 batches, back to back, into a message set of `magic` for a
/// Fetch v0–v3 (see the module docs for the rules). A trailing partial batch is ignored, as are
/// records below `fetch_offset`. The first message is always whole in the output; after it,
/// none that would take the output past `max_bytes`. At most `decompressed_limit` bytes are
/// decompressed in all: pass at least `batch::MAX_DECOMPRESSED_RECORDS` so that any batch the
/// log accepted can be converted.
pub fn downconvert(
    batches: &[u8],
    magic: LegacyMagic,
    fetch_offset: i64,
    max_bytes: usize,
    decompressed_limit: usize,
) -> Result<Vec<u8>, LegacyError> {
    let mut out = Vec::with_capacity(max_bytes.min(batches.len()));
    let mut conversion = Conversion { magic, fetch_offset, max_bytes, decompressed_limit, decompressed: 0 };
    let mut pos = 0;
    while let Some(header) = batches.get(pos..).and_then(BatchHeader::parse) {
        let total = header.total_len();
        let step = if header.batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
            Err(LegacyError::CorruptBatch { at: pos, problem: "its length is smaller than a batch header" })
        } else if batches.len() - pos < total {
            break; // the partial batch a read by size ends with
        } else if header.magic != MAGIC_V2 {
            Err(LegacyError::CorruptBatch { at: pos, problem: "its magic is not 2" })
        } else if header.is_control() {
            Ok(false)
        } else {
            conversion.batch(&batches[pos..pos + total], &header, pos, &mut out)
        };
        match step {
            Ok(false) => pos += total,
            Ok(true) => break,
            Err(e) if out.is_empty() => return Err(e),
            Err(_) => break,
        }
    }
    Ok(out)
}

/// The state of one [`downconvert`].
struct Conversion {
    magic: LegacyMagic,
    fetch_offset: i64,
    max_bytes: usize,
    decompressed_limit: usize,
    decompressed: usize,
}

impl Conversion {
    /// Appends the records of one data batch to `out`; `Ok(true)` when `out` is full. Nothing is
    /// appended when the batch fails.
    fn batch(&mut self, batch: &[u8], h: &BatchHeader, at: usize, out: &mut Vec<u8>) -> Result<bool, LegacyError> {
        // Offsets wrap rather than overflow: they are only compared and copied, never trusted.
        let last_offset = h.base_offset.wrapping_add(i64::from(h.last_offset_delta));
        if last_offset < self.fetch_offset {
            return Ok(false);
        }
        let body = &batch[HEADER_LEN..];
        let unpacked;
        let body = match h.compression() {
            0 => body,
            compression::ZSTD => return Err(LegacyError::ZstdBatch { at }),
            codec => {
                let room = self.decompressed_limit - self.decompressed;
                unpacked = compression::decompress(codec, body, room)
                    .map_err(|e| LegacyError::from_decompress(e, self.decompressed_limit))?;
                self.decompressed += unpacked.len();
                &unpacked[..]
            }
        };
        let records =
            parse_v2_records(h, body).ok_or(LegacyError::CorruptBatch { at, problem: "its records are malformed" })?;
        let attributes = match self.magic {
            LegacyMagic::V1 if h.is_log_append_time() => ATTR_LOG_APPEND_TIME,
            _ => 0,
        };
        for r in records.iter().filter(|r| r.offset >= self.fetch_offset) {
            let size = message_size(self.magic, r.key, r.value)
                .ok_or(LegacyError::TooLarge { size: r.key.map_or(0, <[u8]>::len) + r.value.map_or(0, <[u8]>::len) })?;
            if !out.is_empty() && out.len() + size > self.max_bytes {
                return Ok(true);
            }
            write_message(out, r.offset, self.magic, attributes, r.timestamp, r.key, r.value);
        }
        Ok(!out.is_empty() && out.len() >= self.max_bytes)
    }
}

/// One message of a message set, its timestamp as Kafka reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Message<'a> {
    at: Position,
    offset: i64,
    magic: LegacyMagic,
    attributes: i8,
    /// -1 for magic 0.
    timestamp: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
}

impl Message<'_> {
    fn codec(&self) -> i16 {
        i16::from(self.attributes & ATTR_CODEC_MASK)
    }

    fn is_log_append_time(&self) -> bool {
        self.magic == LegacyMagic::V1 && self.attributes & ATTR_LOG_APPEND_TIME != 0
    }
}

/// Every message of `set`, each checked whole (size, magic, CRC, fields); `place` says where a
/// byte position is, for errors.
fn parse_message_set(set: &[u8], place: fn(usize) -> Position) -> Result<Vec<Message<'_>>, LegacyError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < set.len() {
        let (message, len) = parse_message(&set[pos..], place(pos))?;
        out.push(message);
        pos += len;
    }
    Ok(out)
}

/// The message at the start of `b`, and the bytes it takes.
fn parse_message(b: &[u8], at: Position) -> Result<(Message<'_>, usize), LegacyError> {
    let mut head = b;
    let truncated = |needed| LegacyError::Truncated { at, needed, available: b.len() };
    let offset = i64::from_be_bytes(take_array(&mut head).ok_or(truncated(LOG_OVERHEAD))?);
    let size = i32::from_be_bytes(take_array(&mut head).ok_or(truncated(LOG_OVERHEAD))?);
    // A size too small for any message is corruption rather than a cut (as Kafka's reader).
    let len = usize::try_from(size).ok().filter(|&s| s >= OVERHEAD_V0).ok_or(LegacyError::BadSize { at, size })?;
    let message = b.get(..LOG_OVERHEAD + len).ok_or(truncated(LOG_OVERHEAD + len))?;
    let magic = message[MAGIC_AT] as i8;
    let magic = LegacyMagic::from_value(magic).ok_or(LegacyError::UnsupportedMagic { at, magic })?;
    let expected = u32::from_be_bytes([message[CRC_AT], message[CRC_AT + 1], message[CRC_AT + 2], message[CRC_AT + 3]]);
    let actual = crc32fast::hash(&message[MAGIC_AT..]);
    if expected != actual {
        return Err(LegacyError::CrcMismatch { at, expected, actual });
    }
    let attributes = message[MAGIC_AT + 1] as i8;
    let mut rest = &message[MAGIC_AT + 2..];
    let malformed = |problem| LegacyError::Malformed { at, problem };
    let timestamp = match magic {
        LegacyMagic::V0 => NO_TIMESTAMP,
        LegacyMagic::V1 => {
            i64::from_be_bytes(take_array(&mut rest).ok_or(malformed("it is too short for a magic 1 message"))?)
        }
    };
    let key = take_bytes(&mut rest).ok_or(malformed("its key runs past its end"))?;
    let value = take_bytes(&mut rest).ok_or(malformed("its value runs past its end"))?;
    if !rest.is_empty() {
        return Err(malformed("bytes follow its value"));
    }
    Ok((Message { at, offset, magic, attributes, timestamp, key, value }, message.len()))
}

fn take_array<const N: usize>(rest: &mut &[u8]) -> Option<[u8; N]> {
    let (head, tail) = rest.split_first_chunk::<N>()?;
    *rest = tail;
    Some(*head)
}

/// An i32 length and that many bytes. Any negative length is null, as Kafka reads it; `None`
/// when the bytes run out.
fn take_bytes<'a>(rest: &mut &'a [u8]) -> Option<Option<&'a [u8]>> {
    let len = i32::from_be_bytes(take_array(rest)?);
    let Ok(len) = usize::try_from(len) else { return Some(None) };
    let (field, tail) = rest.split_at_checked(len)?;
    *rest = tail;
    Some(Some(field))
}

/// The bytes a message takes in a message set (offset and size included), `None` when its size
/// would not fit the i32 size field.
fn message_size(magic: LegacyMagic, key: Option<&[u8]>, value: Option<&[u8]>) -> Option<usize> {
    let fields = key.map_or(0, <[u8]>::len).checked_add(value.map_or(0, <[u8]>::len))?;
    let size = magic.overhead().checked_add(fields).filter(|&s| i32::try_from(s).is_ok())?;
    Some(LOG_OVERHEAD + size)
}

/// Appends one message. The caller has checked its size with [`message_size`].
fn write_message(
    out: &mut Vec<u8>,
    offset: i64,
    magic: LegacyMagic,
    attributes: i8,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) {
    let start = out.len();
    out.put_i64(offset);
    out.put_i32(0); // size, filled in below
    out.put_u32(0); // crc, likewise
    out.put_i8(magic.value());
    out.put_i8(attributes);
    if magic == LegacyMagic::V1 {
        out.put_i64(timestamp);
    }
    for field in [key, value] {
        match field {
            Some(b) => {
                out.put_i32(b.len() as i32);
                out.extend_from_slice(b);
            }
            None => out.put_i32(-1),
        }
    }
    let size = (out.len() - start - LOG_OVERHEAD) as i32;
    out[start + 8..start + CRC_AT].copy_from_slice(&size.to_be_bytes());
    let crc = crc32fast::hash(&out[start + MAGIC_AT..]);
    out[start + CRC_AT..start + MAGIC_AT].copy_from_slice(&crc.to_be_bytes());
}

/// Decompresses a wrapper's value into at most `limit` bytes. For magic 0 LZ4, the frame's header
/// checksum is first set to what the frame format expects (KAFKA-3160): Kafka before 0.10
/// computed it over the frame's magic number too, and Kafka ignores it for magic 0, where the
/// LZ4 decoder here would refuse the frame.
fn decompress_wrapper(codec: i16, magic: LegacyMagic, packed: &[u8], limit: usize) -> Result<Vec<u8>, LegacyError> {
    let repaired = (codec == compression::LZ4 && magic == LegacyMagic::V0)
        .then(|| lz4_with_true_header_checksum(packed))
        .flatten();
    let packed = repaired.as_deref().unwrap_or(packed);
    compression::decompress(codec, packed, limit).map_err(|e| LegacyError::from_decompress(e, limit))
}

/// A copy of an LZ4 frame whose header checksum byte is recomputed; `None` when the bytes do not
/// start with an LZ4 frame header (the decoder then says what is wrong).
fn lz4_with_true_header_checksum(frame: &[u8]) -> Option<Vec<u8>> {
    if frame.get(..4)? != LZ4_MAGIC {
        return None;
    }
    let flags = *frame.get(4)?;
    let mut checksum_at = 6; // after the magic, FLG and BD
    if flags & 0x08 != 0 {
        checksum_at += 8; // content size
    }
    if flags & 0x01 != 0 {
        checksum_at += 4; // dictionary id
    }
    if frame.len() <= checksum_at {
        return None;
    }
    let mut repaired = frame.to_vec();
    repaired[checksum_at] = (xxh32_short(&frame[4..checksum_at]) >> 8) as u8;
    Some(repaired)
}

/// XXH32 (seed 0) of fewer than 16 bytes, enough for a frame descriptor (at most 14 bytes); longer
/// input takes another path in XXH32 and gets a wrong hash here.
fn xxh32_short(data: &[u8]) -> u32 {
    const P1: u32 = 0x9E37_79B1;
    const P2: u32 = 0x85EB_CA77;
    const P3: u32 = 0xC2B2_AE3D;
    const P4: u32 = 0x27D4_EB2F;
    const P5: u32 = 0x1656_67B1;
    let mut h = P5.wrapping_add(data.len() as u32);
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        h = h.wrapping_add(u32::from_le_bytes([w[0], w[1], w[2], w[3]]).wrapping_mul(P3));
        h = h.rotate_left(17).wrapping_mul(P4);
    }
    for &b in words.remainder() {
        h = h.wrapping_add(u32::from(b).wrapping_mul(P5));
        h = h.rotate_left(11).wrapping_mul(P1);
    }
    h ^= h >> 15;
    h = h.wrapping_mul(P2);
    h ^= h >> 13;
    h = h.wrapping_mul(P3);
    h ^ (h >> 16)
}

/// A RecordBatch v2 of `messages` (at least one), as Kafka's builder writes an up-converted set:
/// offset deltas 0, 1, 2, ...; timestamps relative to the first; no headers.
fn build_batch(messages: &[Message<'_>], codec: i16) -> Result<Vec<u8>, LegacyError> {
    let count = i32::try_from(messages.len()).map_err(|_| LegacyError::TooLarge { size: messages.len() })?;
    let base_timestamp = messages.first().map_or(NO_TIMESTAMP, |m| m.timestamp);
    let max_timestamp = messages.iter().fold(NO_TIMESTAMP, |max, m| max.max(m.timestamp));
    let mut body = Vec::new();
    let mut record = Vec::new();
    for (delta, m) in messages.iter().enumerate() {
        record.clear();
        record.push(0); // attributes
        put_varint(&mut record, m.timestamp.wrapping_sub(base_timestamp));
        put_varint(&mut record, delta as i64);
        for field in [m.key, m.value] {
            match field {
                Some(b) => {
                    put_varint(&mut record, b.len() as i64);
                    record.extend_from_slice(b);
                }
                None => put_varint(&mut record, -1),
            }
        }
        put_varint(&mut record, 0); // headers
        put_varint(&mut body, record.len() as i64);
        body.extend_from_slice(&record);
    }
    let (attributes, body) = match codec {
        0 => (0, body),
        // Only an unknown codec fails, and the wrapper's was known; uncompressed is correct too.
        codec => compression::compress(codec, &body).map_or((0, body), |packed| (codec, packed)),
    };
    let size = HEADER_LEN + body.len();
    let batch_length = i32::try_from(size - LOG_OVERHEAD).map_err(|_| LegacyError::TooLarge { size })?;
    let mut b = Vec::with_capacity(size);
    b.put_i64(0); // base offset, assigned on append
    b.put_i32(batch_length);
    b.put_i32(-1); // partition leader epoch, likewise
    b.put_i8(MAGIC_V2);
    b.put_u32(0); // crc, below
    b.put_i16(attributes);
    b.put_i32(count - 1);
    b.put_i64(base_timestamp);
    b.put_i64(max_timestamp);
    b.put_i64(-1); // producer id
    b.put_i16(-1); // producer epoch
    b.put_i32(-1); // base sequence
    b.put_i32(count);
    b.extend_from_slice(&body);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(b)
}

/// One record of a v2 batch, as a legacy message needs it.
struct V2Record<'a> {
    offset: i64,
    timestamp: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
}

/// The records of a v2 batch's (uncompressed) records section; `None` when malformed. Headers
/// are skipped unread: the legacy formats have none.
fn parse_v2_records<'a>(h: &BatchHeader, mut body: &'a [u8]) -> Option<Vec<V2Record<'a>>> {
    // Every record takes at least one byte, so this loop ends when the bytes do.
    let mut out = Vec::new();
    for _ in 0..h.records_count.max(0) {
        let len = usize::try_from(read_varint(&mut body)?).ok()?;
        let (record, rest) = body.split_at_checked(len)?;
        body = rest;
        let (_attributes, mut record) = record.split_first()?;
        let timestamp_delta = read_varint(&mut record)?;
        let offset_delta = read_varint(&mut record)?;
        let key = read_v2_bytes(&mut record)?;
        let value = read_v2_bytes(&mut record)?;
        let timestamp =
            if h.is_log_append_time() { h.max_timestamp } else { h.base_timestamp.wrapping_add(timestamp_delta) };
        out.push(V2Record { offset: h.base_offset.wrapping_add(offset_delta), timestamp, key, value });
    }
    Some(out)
}

/// A varint length (-1 null, at most i32::MAX as Kafka writes them) and that many bytes.
fn read_v2_bytes<'a>(record: &mut &'a [u8]) -> Option<Option<&'a [u8]>> {
    let len = read_varint(record)?;
    if len == -1 {
        return Some(None);
    }
    let len = usize::try_from(len).ok().filter(|_| i32::try_from(len).is_ok())?;
    let (field, rest) = record.split_at_checked(len)?;
    *record = rest;
    Some(Some(field))
}

#[cfg(test)]
mod tests;
