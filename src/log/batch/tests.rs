use super::*;

/// Builds an uncompressed v2 batch whose records have the given (key, value, timestamp delta).
pub fn build_batch(base_ts: i64, records: &[(&[u8], &[u8], i64)]) -> Vec<u8> {
    build_timed(records.iter().map(|&(k, v, dt)| (Some(k), Some(v), dt)), base_ts)
}

#[test]
fn valid_batch_passes_and_parses() {
    let b = build_batch(1000, &[(b"k", b"v", 0), (b"k2", b"v2", 5)]);
    let headers = validate(&b, 1 << 20, false).map(|v| v.headers).unwrap();
    assert_eq!(headers.len(), 1);
    assert_eq!(headers[0].records_count, 2);
    assert_eq!(headers[0].max_timestamp, 1005);
    assert_eq!(headers[0].total_len(), b.len());
}

#[test]
fn corruption_is_detected() {
    let mut b = build_batch(1000, &[(b"k", b"v", 0)]);
    let last = b.len() - 1;
    b[last] ^= 0xff;
    assert!(matches!(validate(&b, 1 << 20, false).map(|v| v.headers), Err(BatchError::CrcMismatch { .. })));
    let b = build_batch(1000, &[(b"k", b"v", 0)]);
    assert!(matches!(
        validate(&b[..b.len() - 1], 1 << 20, false).map(|v| v.headers),
        Err(BatchError::BadLength { .. })
    ));
    assert!(matches!(validate(&b, 10, false).map(|v| v.headers), Err(BatchError::TooLarge { .. })));
    let mut old = b.clone();
    old[16] = 1;
    assert!(matches!(
        validate(&old, 1 << 20, false).map(|v| v.headers),
        Err(BatchError::UnsupportedMagic { magic: 1 })
    ));
    assert_eq!(validate(&[], 100, false).map(|v| v.headers), Err(BatchError::Empty));
}

#[test]
fn offset_assignment_keeps_crc_valid() {
    let mut b = build_batch(1000, &[(b"k", b"v", 0)]);
    assign_offset(&mut b, 42, 7);
    let h = validate(&b, 1 << 20, false).map(|v| v.headers).unwrap()[0];
    assert_eq!((h.base_offset, h.partition_leader_epoch), (42, 7));
    set_log_append_time(&mut b, 5555);
    let h = validate(&b, 1 << 20, false).map(|v| v.headers).unwrap()[0];
    assert!(h.is_log_append_time());
    assert_eq!(h.max_timestamp, 5555);
}

#[test]
fn record_lookup_by_timestamp() {
    let mut b = build_batch(1000, &[(b"a", b"1", 0), (b"b", b"2", 30), (b"c", b"3", 10)]);
    assign_offset(&mut b, 100, 0);
    assert_eq!(find_record_by_timestamp(&b, Some(1005)), Some((101, 1030)));
    assert_eq!(find_record_by_timestamp(&b, Some(5)), Some((100, 1000)));
    assert_eq!(find_record_by_timestamp(&b, Some(1000)), Some((100, 1000)));
    assert_eq!(find_record_by_timestamp(&b, Some(2000)), None);
    assert_eq!(find_record_by_timestamp(&b, None), Some((101, 1030)));
}

#[test]
fn built_batches_validate_and_read_back() {
    let b = build(&[(Some(b"k1"), Some(b"v1")), (Some(b"k2"), None)], 1234);
    let h = validate(&b, 1 << 20, false).map(|v| v.headers).unwrap()[0];
    assert_eq!((h.records_count, h.max_timestamp), (2, 1234));
    let recs = records(&b).unwrap();
    assert_eq!(recs.len(), 2);
    assert_eq!((recs[0].key, recs[0].value), (Some(&b"k1"[..]), Some(&b"v1"[..])));
    assert_eq!((recs[1].offset, recs[1].value), (1, None));
}

/// `build_batch`, with its records section gzip-compressed (attributes codec 1).
pub fn build_gzip_batch(base_ts: i64, records: &[(&[u8], &[u8], i64)]) -> Vec<u8> {
    use std::io::Write;
    let plain = build_batch(base_ts, records);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain[HEADER_LEN..]).unwrap();
    let body = gz.finish().unwrap();
    let mut b = plain[..HEADER_LEN].to_vec();
    b.extend_from_slice(&body);
    let len = (b.len() - LOG_OVERHEAD) as i32;
    (&mut b[8..12]).put_i32(len);
    (&mut b[21..23]).put_i16(1);
    let crc = crc32c::crc32c(&b[21..]);
    (&mut b[17..21]).put_u32(crc);
    b
}

#[test]
fn compressed_records_are_read_for_timestamps_and_keys() {
    let mut b = build_gzip_batch(1000, &[(b"a", b"1", 0), (b"", b"2", 30), (b"c", b"3", 10)]);
    assert!(validate(&b, 1 << 20, false).map(|v| v.headers).is_ok());
    assign_offset(&mut b, 100, 0);
    assert_eq!(find_record_by_timestamp(&b, Some(1005)), Some((101, 1030)));
    assert_eq!(find_record_by_timestamp(&b, None), Some((101, 1030)));
    let keys = with_records(&b, |r| r.iter().map(|r| r.key.map(<[u8]>::to_vec)).collect::<Vec<_>>()).unwrap();
    assert_eq!(keys, vec![Some(b"a".to_vec()), Some(vec![]), Some(b"c".to_vec())]);
    let mut broken = b.clone();
    let last = broken.len() - 3;
    broken[last] ^= 0xff;
    assert!(matches!(with_records(&broken, |_| ()), Err(RecordsError::Decompress(_)) | Err(RecordsError::Malformed)));
}

/// Rewrites a batch's CRC after a test changed bytes it covers, so only the lie remains.
fn fix_crc(b: &mut [u8]) {
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Replaces the records of a built batch with `body`, declaring `count` records.
fn with_body(count: i32, body: &[u8]) -> Vec<u8> {
    let mut b = build_batch(1000, &[(b"k", b"v", 0)]);
    b.truncate(HEADER_LEN);
    b.extend_from_slice(body);
    let len = (b.len() - LOG_OVERHEAD) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    b[23..27].copy_from_slice(&(count - 1).to_be_bytes());
    b[57..61].copy_from_slice(&count.to_be_bytes());
    fix_crc(&mut b);
    b
}

fn varints(values: &[i64]) -> Vec<u8> {
    let mut out = Vec::new();
    for &v in values {
        put_varint(&mut out, v);
    }
    out
}

/// A record: length, attributes 0, timestamp delta 0, offset delta, key, value, no headers.
fn record(offset_delta: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> Vec<u8> {
    let mut r = vec![0u8];
    r.extend(varints(&[0, offset_delta]));
    for f in [key, value] {
        match f {
            Some(b) => {
                r.extend(varints(&[b.len() as i64]));
                r.extend_from_slice(b);
            }
            None => r.extend(varints(&[-1])),
        }
    }
    r.extend(varints(&[0]));
    let mut out = varints(&[r.len() as i64]);
    out.extend(r);
    out
}

fn problem_of(b: &[u8]) -> RecordProblem {
    match validate(b, 1 << 20, false) {
        Err(BatchError::InvalidRecord { problem, .. }) => problem,
        other => panic!("expected an invalid record, got {other:?}"),
    }
}

/// Batches with a correct CRC that lie about their records are refused, as Kafka's record
/// reader refuses them; honest ones (including the walker's own building blocks) pass.
#[test]
fn records_that_lie_inside_a_valid_batch_are_refused() {
    let two = [record(0, Some(b"a"), Some(b"1")), record(1, Some(b"b"), None)].concat();
    assert!(validate(&with_body(2, &two), 1 << 20, false).is_ok(), "the honest batch");

    assert!(matches!(problem_of(&with_body(3, &two)), RecordProblem::Missing { declared: 3, found: 2 }));
    assert!(matches!(problem_of(&with_body(1, &two)), RecordProblem::Trailing(_)));
    let garbage = [two.clone(), vec![0xde, 0xad]].concat();
    assert!(matches!(problem_of(&with_body(2, &garbage)), RecordProblem::Trailing(2)));
    let out_of_order = [record(0, Some(b"a"), None), record(5, Some(b"b"), None)].concat();
    assert!(matches!(problem_of(&with_body(2, &out_of_order)), RecordProblem::OffsetDelta { found: 5, expected: 1 }));

    // A negative key length other than -1, and a value longer than the record.
    let mut r = vec![0u8];
    r.extend(varints(&[0, 0, -7, -1, 0]));
    let negative_key = [varints(&[r.len() as i64]), r].concat();
    assert!(matches!(problem_of(&with_body(1, &negative_key)), RecordProblem::BadField { field: "key", .. }));
    let mut r = vec![0u8];
    r.extend(varints(&[0, 0, -1, 4000]));
    r.extend_from_slice(b"short");
    r.extend(varints(&[0]));
    let long_value = [varints(&[r.len() as i64]), r].concat();
    assert!(matches!(problem_of(&with_body(1, &long_value)), RecordProblem::BadField { field: "value", .. }));
    // A record length past the end of the batch, and a negative one.
    let past_end = [varints(&[500]), vec![0; 10]].concat();
    assert!(matches!(problem_of(&with_body(1, &past_end)), RecordProblem::BadLength { length: 500, .. }));
    assert!(matches!(problem_of(&with_body(1, &varints(&[-3]))), RecordProblem::BadLength { length: -3, .. }));

    // The error says where, in words a person can act on.
    let msg = validate(&with_body(3, &two), 1 << 20, false).unwrap_err().to_string();
    assert!(msg.contains("record 2") && msg.contains("declares 3 records"), "{msg}");
}

/// The same lies hidden in a compressed batch are found after decompressing it, and a batch
/// that decompresses past the limit is refused instead of filling memory.
#[test]
fn compressed_batches_are_checked_after_bounded_decompression() {
    use std::io::Write;
    let gzip = |data: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let compressed = |count: i32, body: &[u8]| {
        let mut b = with_body(count, &gzip(body));
        b[21..23].copy_from_slice(&compression::GZIP.to_be_bytes());
        fix_crc(&mut b);
        b
    };
    let two = [record(0, Some(b"a"), Some(b"1")), record(1, None, Some(b"2"))].concat();
    let ok = validate(&compressed(2, &two), 1 << 20, true).unwrap();
    assert_eq!(ok.keyless, vec![1], "keyless records are found in the same pass");
    assert!(matches!(problem_of(&compressed(3, &two)), RecordProblem::Missing { .. }));
    let lying = [record(0, Some(b"a"), None), record(0, Some(b"b"), None)].concat();
    assert!(matches!(problem_of(&compressed(2, &lying)), RecordProblem::OffsetDelta { .. }));
    let bomb = compressed(1, &vec![0u8; MAX_DECOMPRESSED_RECORDS + 1]);
    assert!(bomb.len() < 1 << 20, "a small request");
    assert!(matches!(
        validate(&bomb, 1 << 20, false),
        Err(BatchError::Decompress { source: DecompressError::TooLarge { .. }, .. })
    ));
}

/// A record with a timestamp delta and one header ("h" = "x").
fn record_with_header(ts_delta: i64, offset_delta: i64, key: &[u8], value: Option<&[u8]>) -> Vec<u8> {
    let mut r = vec![0u8];
    r.extend(varints(&[ts_delta, offset_delta, key.len() as i64]));
    r.extend_from_slice(key);
    match value {
        Some(v) => {
            r.extend(varints(&[v.len() as i64]));
            r.extend_from_slice(v);
        }
        None => r.extend(varints(&[-1])),
    }
    r.extend(varints(&[1, 1]));
    r.push(b'h');
    r.extend(varints(&[1]));
    r.push(b'x');
    let mut out = varints(&[r.len() as i64]);
    out.extend(r);
    out
}

/// Decodes with the codec crate's reader (which checks the CRC as clients do): (offset,
/// timestamp, key, value, header count, delete-horizon flag) per record.
type Decoded = (i64, i64, Vec<u8>, Option<Vec<u8>>, usize, bool);
fn decode_as_a_client(b: &[u8]) -> Vec<Decoded> {
    let mut buf = bytes::Bytes::copy_from_slice(b);
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf).expect("a client decodes the batch");
    set.records
        .iter()
        .map(|r| {
            let key = r.key.as_ref().map(|k| k.to_vec()).unwrap_or_default();
            (r.offset, r.timestamp, key, r.value.as_ref().map(|v| v.to_vec()), r.headers.len(), r.delete_horizon)
        })
        .collect()
}

const NO_HORIZON: NewHorizon = NewHorizon { at_ms: 9_000, always: false };

#[test]
fn a_kept_tombstone_gives_its_batch_a_delete_horizon_and_timestamps_stay() {
    let mut body = record_with_header(0, 0, b"a", Some(b"1"));
    body.extend(record_with_header(7, 1, b"b", None));
    body.extend(record_with_header(3, 2, b"c", Some(b"3")));
    let mut b = with_body(3, &body);
    b[0..8].copy_from_slice(&100i64.to_be_bytes());
    let before = decode_as_a_client(&b);
    assert_eq!(before[1], (101, 1007, b"b".to_vec(), None, 1, false));

    // Everything stays, but a tombstone is among it: the batch is rewritten with the horizon.
    let Filtered::Some(all) = filter_records(&b, NO_HORIZON, |_, _, _| true).unwrap() else { panic!() };
    let h = BatchHeader::parse(&all).unwrap();
    assert_eq!(h.delete_horizon_ms(), Some(9_000));
    assert_eq!((h.base_offset, h.last_offset_delta, h.records_count, h.max_timestamp), (100, 2, 3, 1007));
    let after = decode_as_a_client(&all);
    for (x, y) in before.iter().zip(&after) {
        assert_eq!((x.0, x.1, &x.2, &x.3, x.4), (y.0, y.1, &y.2, &y.3, y.4), "offset, timestamp, key, value, headers");
        assert!(y.5, "clients see the delete-horizon flag");
    }
    assert!(validate(&all, 1 << 20, false).is_ok(), "a whole rewritten batch passes the broker's own checks");

    // A second cleaning keeps the horizon it found; dropping a record keeps it too.
    assert_eq!(
        filter_records(&all, NewHorizon { at_ms: 50_000, always: true }, |_, _, _| true).unwrap(),
        Filtered::All
    );
    let Filtered::Some(two) = filter_records(&all, NO_HORIZON, |o, _, _| o != 100).unwrap() else { panic!() };
    assert_eq!(BatchHeader::parse(&two).unwrap().delete_horizon_ms(), Some(9_000));
    assert_eq!(decode_as_a_client(&two), after[1..].to_vec());

    // Without a tombstone left, no horizon: the records are copied, the base timestamp stays.
    let Filtered::Some(plain) = filter_records(&b, NO_HORIZON, |o, _, _| o != 101).unwrap() else { panic!() };
    let h = BatchHeader::parse(&plain).unwrap();
    assert_eq!((h.delete_horizon_ms(), h.base_timestamp, h.max_timestamp, h.records_count), (None, 1000, 1003, 2));
    assert_eq!(decode_as_a_client(&plain), vec![before[0].clone(), before[2].clone()]);
    assert_eq!(filter_records(&b, NO_HORIZON, |_, _, _| false).unwrap(), Filtered::Nothing);
}

#[test]
fn a_marker_whose_transaction_is_gone_gets_a_horizon_when_asked() {
    let m = build_marker(5, 1, ControlType::Commit, 3, 4_000);
    assert_eq!(filter_records(&m, NO_HORIZON, |_, _, _| true).unwrap(), Filtered::All);
    let Filtered::Some(marked) = filter_records(&m, NewHorizon { at_ms: 9_000, always: true }, |_, _, _| true).unwrap()
    else {
        panic!()
    };
    let h = BatchHeader::parse(&marked).unwrap();
    assert!(h.is_control() && h.is_transactional());
    assert_eq!((h.delete_horizon_ms(), h.max_timestamp), (Some(9_000), 4_000));
    assert_eq!(read_marker(&marked), Some((ControlType::Commit, 3)));
    let decoded = decode_as_a_client(&marked);
    assert_eq!((decoded[0].1, decoded[0].5), (4_000, true));
}

#[test]
fn a_rewritten_batch_keeps_its_codec() {
    let mut body = record_with_header(0, 0, b"a", Some(b"1"));
    body.extend(record_with_header(7, 1, b"b", Some(b"2")));
    body.extend(record_with_header(3, 2, b"c", Some(b"3")));
    let plain = with_body(3, &body);
    let before = decode_as_a_client(&plain);
    for codec in [compression::GZIP, compression::SNAPPY, compression::LZ4, compression::ZSTD] {
        let mut b = with_body(3, &compression::compress(codec, &body).unwrap());
        b[21..23].copy_from_slice(&codec.to_be_bytes());
        fix_crc(&mut b);
        let Filtered::Some(two) = filter_records(&b, NO_HORIZON, |o, _, _| o != 1).unwrap() else { panic!() };
        assert_eq!(BatchHeader::parse(&two).unwrap().compression(), codec, "codec {codec}");
        // (The codec crate used as a client here is built without compression: the real
        // clients' check is tests/compaction.rs.)
        let kept: Vec<_> =
            with_records(&two, |rs| rs.iter().map(|r| (r.offset, r.timestamp, r.key.map(<[u8]>::to_vec))).collect())
                .unwrap();
        let want: Vec<_> = [&before[0], &before[2]].iter().map(|d| (d.0, d.1, Some(d.2.clone()))).collect();
        assert_eq!(kept, want, "codec {codec}");
        let crc = u32::from_be_bytes(two[17..21].try_into().unwrap());
        assert_eq!(crc, crc32c::crc32c(&two[21..]), "codec {codec}: the CRC covers the new bytes");
    }
}

#[test]
fn a_client_batch_carries_headers_and_its_codec() {
    let headers = vec![(&b"trace"[..], Some(&b"abc"[..])), (&b"empty"[..], None)];
    let records = vec![((Some(&b"k1"[..]), Some(&b"v1"[..])), headers.clone()), ((None, Some(&b"v2"[..])), Vec::new())];
    let plain = build_with_headers(&records, 5_000, 0).unwrap();
    let decoded = decode_as_a_client(&plain);
    assert_eq!(decoded[0], (0, 5_000, b"k1".to_vec(), Some(b"v1".to_vec()), 2, false));
    assert_eq!(decoded[1].4, 0);
    for codec in [0, compression::GZIP, compression::SNAPPY, compression::LZ4, compression::ZSTD] {
        let b = build_with_headers(&records, 5_000, codec).unwrap();
        validate(&b, 1 << 20, false).unwrap_or_else(|e| panic!("codec {codec}: {e}"));
        assert_eq!(BatchHeader::parse(&b).unwrap().compression(), codec);
        let read = with_records(&b, |rs| {
            let owned =
                |h: Vec<Header<'_>>| h.iter().map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec))).collect::<Vec<_>>();
            rs.iter()
                .map(|r| (r.key.map(<[u8]>::to_vec), r.value.map(<[u8]>::to_vec), r.header_pairs().map(owned)))
                .collect::<Vec<_>>()
        })
        .unwrap();
        let want: Vec<_> = headers.iter().map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec))).collect();
        assert_eq!(read[0].0.as_deref(), Some(&b"k1"[..]));
        assert_eq!(read[0].2.as_ref(), Some(&want), "codec {codec}");
        assert_eq!(read[1].1.as_deref(), Some(&b"v2"[..]));
        assert_eq!(read[1].2, Some(Vec::new()), "codec {codec}");
    }
}
