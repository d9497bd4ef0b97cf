use super::*;
use crate::log::batch::{self, BatchHeader};
use crate::log::compression::{GZIP, LZ4, SNAPPY, ZSTD};
use crate::log::producer_state::ControlType;
use proptest::prelude::*;

use super::LegacyMagic::{V0, V1};

/// A record to put in a message set: key, value, timestamp (magic 1 only).
type Rec<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, i64);
/// A record as read back: key, value, timestamp.
type Owned = (Option<Vec<u8>>, Option<Vec<u8>>, i64);

const RECORDS: &[Rec<'static>] = &[
    (Some(b"k0"), Some(b"v0"), 1_700_000_000_000),
    (None, Some(b"value-1"), 1_700_000_000_007),
    (Some(b"key-2"), None, 1_699_999_999_999),
];

fn owned(records: &[Rec<'_>], magic: LegacyMagic) -> Vec<Owned> {
    let ts = |t| if magic == V0 { NO_TIMESTAMP } else { t };
    records.iter().map(|&(k, v, t)| (k.map(<[u8]>::to_vec), v.map(<[u8]>::to_vec), ts(t))).collect()
}

/// Uncompressed messages with offsets 0, 1, 2, ...
fn message_set(magic: LegacyMagic, records: &[Rec<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, &(k, v, ts)) in records.iter().enumerate() {
        write_message(&mut out, i as i64, magic, 0, ts, k, v);
    }
    out
}

/// A message set of one wrapper message whose value is `packed`.
fn wrapper(magic: LegacyMagic, attributes: i8, offset: i64, timestamp: i64, packed: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    write_message(&mut out, offset, magic, attributes, timestamp, None, packed);
    out
}

/// How a test compresses a wrapper's inner message set.
#[derive(Debug, Clone, Copy)]
enum Packing {
    Gzip,
    SnappyRaw,
    SnappyXerial,
    Lz4,
    /// LZ4 with the header checksum Kafka 0.8/0.9 wrote (over the frame magic too, KAFKA-3160).
    Lz4OldKafka,
}

impl Packing {
    fn codec(self) -> i16 {
        match self {
            Self::Gzip => GZIP,
            Self::SnappyRaw | Self::SnappyXerial => SNAPPY,
            Self::Lz4 | Self::Lz4OldKafka => LZ4,
        }
    }

    fn pack(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::SnappyRaw => snap::raw::Encoder::new().compress_vec(data).unwrap(),
            Self::Lz4OldKafka => {
                let mut frame = compression::compress(LZ4, data).unwrap();
                assert_eq!(frame[4] & 0x09, 0, "no content size or dictionary id");
                frame[6] = (xxh32_short(&frame[..6]) >> 8) as u8;
                frame
            }
            other => compression::compress(other.codec(), data).unwrap(),
        }
    }
}

const PACKINGS: [Packing; 5] =
    [Packing::Gzip, Packing::SnappyRaw, Packing::SnappyXerial, Packing::Lz4, Packing::Lz4OldKafka];

/// The packings producers of `magic` used: the old LZ4 checksum only with magic 0.
fn packings(magic: LegacyMagic) -> impl Iterator<Item = Packing> {
    PACKINGS.into_iter().filter(move |p| magic == V0 || !matches!(p, Packing::Lz4OldKafka))
}

/// A compressed message set as a producer writes it: one wrapper, inner offsets 0, 1, 2, ...
/// and (magic 1) the wrapper carrying the last.
fn compressed_set(magic: LegacyMagic, packing: Packing, records: &[Rec<'_>]) -> Vec<u8> {
    let packed = packing.pack(&message_set(magic, records));
    let last = records.len() as i64 - 1;
    wrapper(magic, packing.codec() as i8, last, 0, Some(&packed))
}

/// The records of a v2 batch as `batch::with_records` reads them.
fn read_v2(batch: &[u8]) -> Vec<Owned> {
    batch::with_records(batch, |records| {
        records.iter().map(|r| (r.key.map(<[u8]>::to_vec), r.value.map(<[u8]>::to_vec), r.timestamp)).collect()
    })
    .unwrap()
}

/// Up-converts, checks the batch as the produce path will, and returns it with its header.
fn upconverted(set: &[u8]) -> (Upconverted, BatchHeader) {
    let up = upconvert(set, 1 << 20).unwrap();
    let headers = batch::validate(&up.batch, usize::MAX, false).unwrap().headers;
    assert_eq!(headers.len(), 1);
    let h = headers[0];
    assert_eq!((h.base_offset, h.partition_leader_epoch, h.records_count), (0, -1, up.records as i32));
    assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence), (-1, -1, -1));
    assert!(!h.is_transactional() && !h.is_control() && !h.is_log_append_time());
    (up, h)
}

/// Every message of a message set: (offset, attributes, key, value, timestamp).
fn read_legacy(set: &[u8], magic: LegacyMagic) -> Vec<(i64, i8, Owned)> {
    let messages = parse_message_set(set, Position::Set).unwrap();
    assert!(messages.iter().all(|m| m.magic == magic));
    messages
        .iter()
        .map(|m| (m.offset, m.attributes, (m.key.map(<[u8]>::to_vec), m.value.map(<[u8]>::to_vec), m.timestamp)))
        .collect()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn uncompressed_sets_become_one_plain_batch() {
    for magic in [V0, V1] {
        let (up, h) = upconverted(&message_set(magic, RECORDS));
        assert_eq!((up.records, up.magic, h.compression()), (3, magic, 0));
        assert_eq!(read_v2(&up.batch), owned(RECORDS, magic));
        // Kafka's builder: the first record's timestamp, and the greatest (at least -1).
        let (base, max) = if magic == V0 { (-1, -1) } else { (1_700_000_000_000, 1_700_000_000_007) };
        assert_eq!((h.base_timestamp, h.max_timestamp), (base, max), "{magic:?}");
    }
}

#[test]
fn the_max_timestamp_is_never_below_minus_one() {
    let (_, h) = upconverted(&message_set(V1, &[(None, Some(b"a"), -5), (None, Some(b"b"), -3)]));
    assert_eq!((h.base_timestamp, h.max_timestamp), (-5, -1));
}

#[test]
fn compressed_wrappers_become_one_batch_with_their_codec() {
    for magic in [V0, V1] {
        for packing in packings(magic) {
            let set = compressed_set(magic, packing, RECORDS);
            let (up, h) = upconverted(&set);
            assert_eq!((up.records, h.compression()), (3, packing.codec()), "{magic:?} {packing:?}");
            assert_eq!(read_v2(&up.batch), owned(RECORDS, magic), "{magic:?} {packing:?}");
        }
    }
}

#[test]
fn only_magic_0_forgives_the_old_lz4_header_checksum() {
    let inner = message_set(V1, RECORDS);
    let packed = Packing::Lz4OldKafka.pack(&inner);
    // lz4_flex refuses the frame as it is: the reason for the repair.
    assert!(compression::decompress(LZ4, &packed, 1 << 20).is_err());
    let set = wrapper(V1, LZ4 as i8, 0, 0, Some(&packed));
    assert!(matches!(upconvert(&set, 1 << 20), Err(LegacyError::Undecompressable { codec: "lz4", .. })));
    let v0 = compressed_set(V0, Packing::Lz4OldKafka, RECORDS);
    assert_eq!(upconverted(&v0).0.records, 3);
}

#[test]
fn xxh32_matches_the_lz4_frame_writer() {
    assert_eq!(xxh32_short(b""), 0x02CC_5D05);
    assert_eq!(xxh32_short(b"a"), 0x550D_7456);
    // Frame descriptors of 2 bytes and of 10 (with the content size), as lz4_flex checksums them.
    use lz4_flex::frame::{FrameEncoder, FrameInfo};
    use std::io::Write;
    for info in [FrameInfo::new(), FrameInfo::new().content_size(Some(5))] {
        let mut lz = FrameEncoder::with_frame_info(info, Vec::new());
        lz.write_all(b"hello").unwrap();
        let frame = lz.finish().unwrap();
        let end = if frame[4] & 0x08 != 0 { 14 } else { 6 };
        assert_eq!(frame[end], (xxh32_short(&frame[4..end]) >> 8) as u8);
        assert_eq!(lz4_with_true_header_checksum(&frame).unwrap(), frame);
    }
}

#[test]
fn a_log_append_time_wrapper_gives_its_time_to_its_records() {
    let packed = compression::compress(GZIP, &message_set(V1, RECORDS)).unwrap();
    let set = wrapper(V1, GZIP as i8 | ATTR_LOG_APPEND_TIME, 2, 1_234, Some(&packed));
    let (up, h) = upconverted(&set);
    assert!(read_v2(&up.batch).iter().all(|r| r.2 == 1_234));
    assert_eq!((h.base_timestamp, h.max_timestamp), (1_234, 1_234));
    // Magic 0 has no timestamp type: the bit means nothing.
    let packed = compression::compress(GZIP, &message_set(V0, RECORDS)).unwrap();
    let set = wrapper(V0, GZIP as i8 | ATTR_LOG_APPEND_TIME, 2, 1_234, Some(&packed));
    assert!(read_v2(&upconverted(&set).0.batch).iter().all(|r| r.2 == NO_TIMESTAMP));
}

#[test]
fn a_magic_1_wrapper_offset_is_zero_or_covers_its_inner_offsets() {
    let packed = compression::compress(GZIP, &message_set(V1, RECORDS)).unwrap();
    for offset in [0, 2, 1_000] {
        assert!(upconvert(&wrapper(V1, GZIP as i8, offset, 0, Some(&packed)), 1 << 20).is_ok(), "{offset}");
    }
    let err = upconvert(&wrapper(V1, GZIP as i8, 1, 0, Some(&packed)), 1 << 20).unwrap_err();
    assert_eq!(err, LegacyError::WrapperOffset { wrapper_offset: 1, last_inner_offset: 2 });
    assert_eq!(err.kafka_code(), 87);
    let packed = compression::compress(GZIP, &message_set(V0, RECORDS)).unwrap();
    assert!(upconvert(&wrapper(V0, GZIP as i8, 1, 0, Some(&packed)), 1 << 20).is_ok());
}

#[test]
fn broken_message_sets_get_the_error_kafka_gives() {
    let good = message_set(V1, RECORDS);
    let up = |set: &[u8]| upconvert(set, 1 << 20).unwrap_err();
    let first_len = LOG_OVERHEAD + OVERHEAD_V1 + 4;

    let mut bad_crc = good.clone();
    bad_crc[first_len - 1] ^= 1;
    assert!(matches!(up(&bad_crc), LegacyError::CrcMismatch { at: Position::Set(0), .. }));
    let cut = up(&good[..good.len() - 1]);
    assert!(matches!(cut, LegacyError::Truncated { at: Position::Set(at), .. } if at > first_len), "{cut}");
    assert!(matches!(up(&good[..first_len + 5]), LegacyError::Truncated { .. }));
    let mut small = good.clone();
    small[8..12].copy_from_slice(&13i32.to_be_bytes());
    assert_eq!(up(&small), LegacyError::BadSize { at: Position::Set(0), size: 13 });
    for magic in [2, 3, -1] {
        let mut wrong = good.clone();
        wrong[MAGIC_AT] = magic as u8;
        assert_eq!(up(&wrong), LegacyError::UnsupportedMagic { at: Position::Set(0), magic });
    }
    let mut mixed = message_set(V0, &RECORDS[..1]);
    mixed.extend_from_slice(&message_set(V1, &RECORDS[..1]));
    assert!(matches!(up(&mixed), LegacyError::MixedMagic { magic: 1, first: 0, .. }));
    let mut long_key = Vec::new();
    write_message(&mut long_key, 0, V0, 0, 0, Some(b"key"), Some(b"v"));
    long_key[LOG_OVERHEAD + 9] = 200; // key length 3 -> 200, CRC redone
    let crc = crc32fast::hash(&long_key[MAGIC_AT..]);
    long_key[CRC_AT..MAGIC_AT].copy_from_slice(&crc.to_be_bytes());
    assert!(matches!(up(&long_key), LegacyError::Malformed { .. }));
    assert_eq!(up(&[]), LegacyError::Empty);

    for e in [&bad_crc[..], &good[..good.len() - 1], &small[..], &long_key[..]].map(up) {
        assert_eq!(e.kafka_code(), 2, "{e}");
    }
    assert_eq!(up(&mixed).kafka_code(), 87);
}

#[test]
fn broken_wrappers_get_the_error_kafka_gives() {
    let up = |set: &[u8]| upconvert(set, 1 << 20).unwrap_err();
    let gz = |data: &[u8]| compression::compress(GZIP, data).unwrap();
    let inner = message_set(V1, RECORDS);

    let nested = wrapper(V1, GZIP as i8, 0, 0, Some(&gz(&compressed_set(V1, Packing::Gzip, RECORDS))));
    assert_eq!(up(&nested), LegacyError::NestedWrapper { index: 0, codec: GZIP });
    let mut two = compressed_set(V1, Packing::Gzip, RECORDS);
    two.extend_from_slice(&compressed_set(V1, Packing::Gzip, RECORDS));
    assert_eq!(up(&two), LegacyError::MultipleWrappers { count: 2 });
    let mut plain_then_wrapper = message_set(V1, RECORDS);
    plain_then_wrapper.extend_from_slice(&compressed_set(V1, Packing::Gzip, RECORDS));
    assert_eq!(up(&plain_then_wrapper), LegacyError::MultipleWrappers { count: 4 });
    assert_eq!(up(&wrapper(V1, GZIP as i8, 0, 0, None)), LegacyError::EmptyWrapper);
    assert_eq!(up(&wrapper(V1, GZIP as i8, 0, 0, Some(&gz(b"")))), LegacyError::EmptyWrapper);
    let inner_v0 = wrapper(V1, GZIP as i8, 0, 0, Some(&gz(&message_set(V0, RECORDS))));
    assert!(matches!(up(&inner_v0), LegacyError::MixedMagic { at: Position::Wrapper(0), magic: 0, first: 1 }));
    assert_eq!(up(&wrapper(V1, ZSTD as i8, 0, 0, Some(b"zstd"))), LegacyError::ZstdWrapper);
    for e in [&nested[..], &two[..], &inner_v0[..]].map(up) {
        assert_eq!(e.kafka_code(), 87, "{e}");
    }

    let mut bad_inner = inner.clone();
    *bad_inner.last_mut().unwrap() ^= 1;
    let e = up(&wrapper(V1, GZIP as i8, 0, 0, Some(&gz(&bad_inner))));
    assert!(matches!(e, LegacyError::CrcMismatch { at: Position::Wrapper(_), .. }), "{e}");
    let e = up(&wrapper(V1, GZIP as i8, 0, 0, Some(&gz(&inner[..inner.len() - 3]))));
    assert!(matches!(e, LegacyError::Truncated { at: Position::Wrapper(_), .. }), "{e}");
    assert_eq!(up(&wrapper(V1, 5, 0, 0, Some(b"x"))), LegacyError::UnknownCodec { codec: 5 });
    let e = up(&wrapper(V0, GZIP as i8, 0, 0, Some(b"not gzip")));
    assert!(matches!(e, LegacyError::Undecompressable { codec: "gzip", .. }), "{e}");
    assert_eq!(e.kafka_code(), 2);
}

#[test]
fn a_decompression_bomb_stops_at_the_limit() {
    let big = vec![0u8; 4 << 20];
    for packing in PACKINGS {
        let set = compressed_set(V0, packing, &[(None, Some(&big[..]), 0)]);
        assert!(set.len() < 300 << 10, "{packing:?}: {}", set.len());
        let e = upconvert(&set, 1 << 20).unwrap_err();
        assert_eq!(e, LegacyError::DecompressedTooLarge { limit: 1 << 20 }, "{packing:?}");
        assert_eq!(e.kafka_code(), 87);
        assert_eq!(upconvert(&set, 5 << 20).unwrap().records, 1);
    }
}

/// Message sets made by kafka-python 2.0.2 (lz4 4.4.5, python-snappy 0.7.3) with
/// `kafka.record.legacy_records.LegacyRecordBatchBuilder(magic, codec, 1 << 20)`, appending
/// `RECORDS` at offsets 0, 1, 2, then `bytes(builder.build()).hex()`. Its magic 0 LZ4 frame has
/// the old header checksum; its wrappers carry offset 0 and timestamp 0.
const KAFKA_PYTHON: &[(LegacyMagic, i16, &str)] = &[
    (V0, 0, "0000000000000000000000128697724c0000000000026b3000000002763000000000000000010000001598dda4ae0000ffffffff0000000776616c75652d31000000000000000200000013b05f31100000000000056b65792d32ffffffff"),
    (V0, GZIP, "00000000000000000000005ed8fe1c240001ffffffff000000501f8b0800bbcc126b02ff63608003a1b6e9453e601653b601882c3380ca3002b1e88cbb4bd63130fc0702208fbd2c31a73455d710aa8009888537c41b0a8079acd9a995ba462095007285e4d65e000000"),
    (V0, SNAPPY, "00000000000000000000007309dea2f70002ffffffff0000006582534e41505059000000000100000001000000515e0000190110128697724c050f1c026b3000000002760106010164010000001598dda4ae0000ffffffff0000000776616c75652d31011e012b5800000013b05f31100000000000056b65792d32ffffffff"),
    (V0, LZ4, "00000000000000000000006e8764bb5f0003ffffffff0000006004224d1860401a510000001600010051128697724c0f0080026b3000000002760600000200f00b010000001598dda4ae0000ffffffff0000000776616c75652d311e00002b008100000013b05f31100e00a0056b65792d32ffffffff00000000"),
    (V1, 0, "00000000000000000000001a74aa514001000000018bcfe56800000000026b3000000002763000000000000000010000001d8aff9e3d01000000018bcfe56807ffffffff0000000776616c75652d3100000000000000020000001bd21b6bd401000000018bcfe567ff000000056b65792d32ffffffff"),
    (V1, GZIP, "000000000000000000000072242d1beb01010000000000000000ffffffff0000005c1f8b0800bbcc126b02ff63608003a99255810e8c400663f7f9a7192011a66c031059660055019294edfa3fcf16ae8afd3f100039ec658939a5a9ba8650854c402c7d493afb0a4c613a48116b766aa5ae11480700f956e47e76000000"),
    (V1, SNAPPY, "000000000000000000000089845d794801020000000000000000ffffffff0000007382534e415050590000000001000000010000005f7600001901341a74aa514001000000018bcfe56801181c026b30000000027601060101011d101d8aff9e3d010905263c07ffffffff0000000776616c75652d31012601331c0000001bd21b6bd411293867ff000000056b65792d32ffffffff"),
    (V1, LZ4, "00000000000000000000008fb586cc8101030000000000000000ffffffff0000007904224d18684076000000000000003b6200000016000100e01a74aa514001000000018bcfe568180080026b3000000002760600000200001d00501d8aff9e3d0900012600f00107ffffffff0000000776616c75652d312600003300840000001bd21b6bd4290010672500a0056b65792d32ffffffff00000000"),
];

#[test]
fn kafka_python_message_sets_upconvert() {
    for &(magic, codec, vector) in KAFKA_PYTHON {
        let set = hex(vector);
        let (up, h) = upconverted(&set);
        assert_eq!((up.magic, up.records, h.compression()), (magic, 3, codec), "{magic:?} codec {codec}");
        assert_eq!(read_v2(&up.batch), owned(RECORDS, magic), "{magic:?} codec {codec}");
        if codec == 0 {
            // The same bytes as this module writes.
            assert_eq!(set, message_set(magic, RECORDS), "{magic:?}");
        }
    }
}

/// Offsets 100.. : three plain records, a commit marker, two transactional records, two gzip
/// records with headers, one LogAppendTime record; then the start of another batch.
fn stored_log() -> Vec<u8> {
    let mut log = Vec::new();
    let mut plain =
        batch::build_timed(RECORDS.iter().map(|&(k, v, ts)| (k, v, ts - 1_699_999_999_999)), 1_699_999_999_999);
    batch::assign_offset(&mut plain, 100, 3);
    let mut marker = batch::build_marker(7, 0, ControlType::Commit, 1, 5_000);
    batch::assign_offset(&mut marker, 103, 3);
    let mut txn = batch::build_transactional(&[(Some(b"t0"), Some(b"x")), (None, Some(b"y"))], 6_000, 7, 0);
    batch::assign_offset(&mut txn, 104, 3);
    let headers = vec![(&b"h"[..], Some(&b"hv"[..]))];
    let mut gz = batch::build_with_headers(
        &[((Some(b"g0"), Some(b"zip")), headers.clone()), ((Some(b"g1"), None), headers)],
        7_000,
        GZIP,
    )
    .unwrap();
    batch::assign_offset(&mut gz, 106, 3);
    let mut lat = batch::build(&[(Some(b"l"), Some(b"append"))], 8_000);
    batch::set_log_append_time(&mut lat, 9_999);
    batch::assign_offset(&mut lat, 108, 3);
    for b in [&plain, &marker, &txn, &gz, &lat] {
        log.extend_from_slice(b);
    }
    log.extend_from_slice(&plain[..40]);
    log
}

fn rec(key: Option<&[u8]>, value: Option<&[u8]>, ts: i64) -> Owned {
    (key.map(<[u8]>::to_vec), value.map(<[u8]>::to_vec), ts)
}

#[test]
fn stored_batches_downconvert_to_both_magics() {
    let log = stored_log();
    for magic in [V0, V1] {
        let set = downconvert(&log, magic, 0, usize::MAX, 1 << 20).unwrap();
        let got = read_legacy(&set, magic);
        let ts = |t| if magic == V0 { NO_TIMESTAMP } else { t };
        let lat = if magic == V1 { ATTR_LOG_APPEND_TIME } else { 0 };
        let mut want: Vec<(i64, i8, Owned)> =
            owned(RECORDS, magic).into_iter().enumerate().map(|(i, r)| (100 + i as i64, 0, r)).collect();
        want.extend([
            (104, 0, rec(Some(b"t0"), Some(b"x"), ts(6_000))),
            (105, 0, rec(None, Some(b"y"), ts(6_000))),
            (106, 0, rec(Some(b"g0"), Some(b"zip"), ts(7_000))),
            (107, 0, rec(Some(b"g1"), None, ts(7_000))),
            (108, lat, rec(Some(b"l"), Some(b"append"), ts(9_999))),
        ]);
        assert_eq!(got, want, "{magic:?}");

        // Starting inside a batch leaves out the records before the fetch offset.
        let from = read_legacy(&downconvert(&log, magic, 101, usize::MAX, 1 << 20).unwrap(), magic);
        assert_eq!(from.iter().map(|m| m.0).collect::<Vec<_>>(), [101, 102, 104, 105, 106, 107, 108]);
        let from = read_legacy(&downconvert(&log, magic, 107, usize::MAX, 1 << 20).unwrap(), magic);
        assert_eq!(from.iter().map(|m| m.0).collect::<Vec<_>>(), [107, 108]);
    }
}

#[test]
fn max_bytes_takes_the_first_message_whole_and_then_only_whole_messages() {
    let log = stored_log();
    let all = downconvert(&log, V1, 0, usize::MAX, 1 << 20).unwrap();
    let sizes: Vec<usize> = parse_message_set(&all, Position::Set)
        .unwrap()
        .iter()
        .map(|m| message_size(V1, m.key, m.value).unwrap())
        .collect();
    for max_bytes in [0, 1, sizes[0], sizes[0] + sizes[1] - 1, sizes[0] + sizes[1], sizes[0] + sizes[1] + 1] {
        let set = downconvert(&log, V1, 0, max_bytes, 1 << 20).unwrap();
        let count = read_legacy(&set, V1).len();
        let want = if max_bytes < sizes[0] + sizes[1] { 1 } else { 2 };
        assert_eq!(count, want, "max_bytes {max_bytes}");
        assert_eq!(set, all[..sizes[..want].iter().sum::<usize>()].to_vec());
    }
    // A limit that ends inside the compressed batch stops between its records.
    let to_gzip: usize = sizes[..6].iter().sum();
    let set = downconvert(&log, V1, 0, to_gzip, 1 << 20).unwrap();
    assert_eq!(read_legacy(&set, V1).last().map(|m| m.0), Some(106));
}

/// `batch`, its records section compressed with `codec`.
fn compressed_v2(batch: &[u8], codec: i16) -> Vec<u8> {
    let mut out = batch[..HEADER_LEN].to_vec();
    out.extend_from_slice(&compression::compress(codec, &batch[HEADER_LEN..]).unwrap());
    let length = (out.len() - LOG_OVERHEAD) as i32;
    out[8..12].copy_from_slice(&length.to_be_bytes());
    out[22] |= codec as u8;
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}

#[test]
fn a_batch_that_cannot_be_converted_ends_the_output_or_is_the_error() {
    let mut plain = batch::build(&[(None, Some(b"first"))], 1);
    batch::assign_offset(&mut plain, 10, 0);
    let mut zstd = compressed_v2(&batch::build(&[(None, Some(b"z"))], 1), ZSTD);
    batch::assign_offset(&mut zstd, 11, 0);
    let mut big = compressed_v2(&batch::build(&[(None, Some(&[7u8; 100_000][..]))], 1), GZIP);
    batch::assign_offset(&mut big, 11, 0);
    let mut corrupt = compressed_v2(&batch::build(&[(None, Some(b"c"))], 1), GZIP);
    corrupt[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(b"junk");
    batch::assign_offset(&mut corrupt, 11, 0);
    let mut short_length = plain.clone();
    short_length[8..12].copy_from_slice(&20i32.to_be_bytes());

    for (bad, code) in [(&zstd, 76), (&big, 87), (&corrupt, 2), (&short_length, 2)] {
        let e = downconvert(bad, V1, 0, usize::MAX, 50_000).unwrap_err();
        assert_eq!(e.kafka_code(), code, "{e}");
        let after_plain = [&plain[..], &bad[..]].concat();
        let set = downconvert(&after_plain, V1, 0, usize::MAX, 50_000).unwrap();
        assert_eq!(read_legacy(&set, V1).len(), 1, "{e}");
    }
    assert_eq!(downconvert(&zstd, V1, 0, usize::MAX, 50_000).unwrap_err(), LegacyError::ZstdBatch { at: 0 });
    assert_eq!(read_legacy(&downconvert(&big, V0, 0, usize::MAX, 200_000).unwrap(), V0).len(), 1);
}

#[test]
fn nothing_to_convert_is_an_empty_message_set() {
    let marker = batch::build_marker(1, 0, ControlType::Abort, 0, 1);
    assert_eq!(downconvert(&marker, V0, 0, 1 << 20, 1 << 20).unwrap(), b"");
    assert_eq!(downconvert(&[], V1, 0, 1 << 20, 1 << 20).unwrap(), b"");
    assert_eq!(downconvert(&marker[..30], V1, 0, 1 << 20, 1 << 20).unwrap(), b"");
    assert_eq!(LegacyMagic::for_fetch_version(1), Some(V0));
    assert_eq!(LegacyMagic::for_fetch_version(3), Some(V1));
    assert_eq!(LegacyMagic::for_fetch_version(4), None);
}

fn record_strategy() -> impl Strategy<Value = Vec<Owned>> {
    let bytes = || proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40));
    let ts = prop_oneof![Just(NO_TIMESTAMP), 0i64..(1i64 << 45)];
    proptest::collection::vec((bytes(), bytes(), ts), 1..20)
}

fn borrowed(records: &[Owned]) -> Vec<Rec<'_>> {
    records.iter().map(|(k, v, ts)| (k.as_deref(), v.as_deref(), *ts)).collect()
}

proptest! {
    #[test]
    fn legacy_sets_survive_upconversion(records in record_strategy(), v1 in any::<bool>(), packing in 0usize..6) {
        let magic = if v1 { V1 } else { V0 };
        let records = borrowed(&records);
        let packing = packings(magic).nth(packing);
        let set = match packing {
            Some(p) => compressed_set(magic, p, &records),
            None => message_set(magic, &records),
        };
        let (up, h) = upconverted(&set);
        prop_assert_eq!(read_v2(&up.batch), owned(&records, magic));
        prop_assert_eq!(h.compression(), packing.map_or(0, Packing::codec));
    }

    #[test]
    fn v2_batches_survive_downconversion(
        records in record_strategy(),
        base_offset in 0i64..(1 << 40),
        v1 in any::<bool>(),
        codec in 0i16..4,
        log_append_time in any::<bool>(),
    ) {
        let magic = if v1 { V1 } else { V0 };
        let base_ts = records[0].2;
        let mut b = batch::build_timed(records.iter().map(|(k, v, ts)| (k.as_deref(), v.as_deref(), ts - base_ts)), base_ts);
        if log_append_time {
            batch::set_log_append_time(&mut b, 42);
        }
        let mut b = if codec == 0 { b } else { compressed_v2(&b, codec) };
        batch::assign_offset(&mut b, base_offset, 0);
        let set = downconvert(&b, magic, 0, usize::MAX, 1 << 20).unwrap();
        let got = read_legacy(&set, magic);
        let mut want = owned(&borrowed(&records), magic);
        if log_append_time && magic == V1 {
            want.iter_mut().for_each(|r| r.2 = 42);
        }
        prop_assert_eq!(got.iter().map(|m| m.2.clone()).collect::<Vec<_>>(), want);
        prop_assert!(got.iter().enumerate().all(|(i, m)| m.0 == base_offset + i as i64));
        let attributes = if log_append_time && v1 { ATTR_LOG_APPEND_TIME } else { 0 };
        prop_assert!(got.iter().all(|m| m.1 == attributes));
        // Back again: the same records.
        let (up, _) = upconverted(&set);
        prop_assert_eq!(read_v2(&up.batch), got.into_iter().map(|m| m.2).collect::<Vec<_>>());
    }

    #[test]
    fn no_bytes_make_the_converters_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = upconvert(&bytes, 1 << 16);
        let _ = downconvert(&bytes, V1, 0, 1 << 16, 1 << 16);
    }

    #[test]
    fn no_wrapper_payload_makes_upconversion_panic(
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        attributes in any::<i8>(),
        v1 in any::<bool>(),
    ) {
        let magic = if v1 { V1 } else { V0 };
        let _ = upconvert(&wrapper(magic, attributes, 0, 0, Some(&payload)), 1 << 16);
    }

    #[test]
    fn no_damage_to_a_valid_input_makes_the_converters_panic(
        records in record_strategy(),
        packing in 0usize..6,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let records = borrowed(&records);
        // Damage inside a wrapper: the inner set is broken before it is compressed.
        let mut inner = message_set(V1, &records);
        for (at, byte) in &flips {
            let i = at.index(inner.len());
            inner[i] = *byte;
        }
        let p = PACKINGS.get(packing).copied().unwrap_or(Packing::Gzip);
        let _ = upconvert(&wrapper(V1, p.codec() as i8, 0, 0, Some(&p.pack(&inner))), 1 << 16);
        let _ = upconvert(&inner[..cut.index(inner.len() + 1)], 1 << 16);

        let mut log = batch::build_timed(records.iter().map(|(k, v, _)| (*k, *v, 0)), 0);
        if let Some(p) = PACKINGS.get(packing) {
            log = compressed_v2(&log, p.codec());
        }
        for (at, byte) in &flips {
            let i = at.index(log.len());
            log[i] = *byte;
        }
        let _ = downconvert(&log, V0, 0, 1 << 16, 1 << 16);
        let _ = downconvert(&log[..cut.index(log.len() + 1)], V1, 0, 1 << 16, 1 << 16);
    }
}

#[test]
fn a_message_is_laid_out_byte_by_byte_as_kafka_writes_it() {
    // offset 5, size 16, CRC-32/IEEE, magic 0, attributes 0, key "k", value "v"; the CRC from
    // Python's zlib.crc32(bytes.fromhex("0000000000016b0000000176")).
    let mut m = Vec::new();
    write_message(&mut m, 5, V0, 0, 0, Some(b"k"), Some(b"v"));
    assert_eq!(m, hex("0000000000000005000000101fecd70a0000000000016b0000000176"));
}
