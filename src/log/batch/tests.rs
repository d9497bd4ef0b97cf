use super::*;

/// Builds an uncompressed v2 batch whose records have the given (key, value, timestamp delta).
pub fn build_batch(base_ts: i64, records: &[(&[u8], &[u8], i64)]) -> Vec<u8> {
    build_timed(records.iter().map(|&(k, v, dt)| (Some(k), Some(v), dt)), base_ts)
}

#[test]
fn valid_batch_passes_and_parses() {
    let b = build_batch(1000, &[(b"k", b"v", 0), (b"k2", b"v2", 5)]);
    let headers = validate(&b, 1 << 20).unwrap();
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
    assert!(matches!(validate(&b, 1 << 20), Err(BatchError::CrcMismatch { .. })));
    let b = build_batch(1000, &[(b"k", b"v", 0)]);
    assert!(matches!(validate(&b[..b.len() - 1], 1 << 20), Err(BatchError::BadLength { .. })));
    assert!(matches!(validate(&b, 10), Err(BatchError::TooLarge { .. })));
    let mut old = b.clone();
    old[16] = 1;
    assert!(matches!(validate(&old, 1 << 20), Err(BatchError::UnsupportedMagic { magic: 1 })));
    assert_eq!(validate(&[], 100), Err(BatchError::Empty));
}

#[test]
fn offset_assignment_keeps_crc_valid() {
    let mut b = build_batch(1000, &[(b"k", b"v", 0)]);
    assign_offset(&mut b, 42, 7);
    let h = validate(&b, 1 << 20).unwrap()[0];
    assert_eq!((h.base_offset, h.partition_leader_epoch), (42, 7));
    set_log_append_time(&mut b, 5555);
    let h = validate(&b, 1 << 20).unwrap()[0];
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
    let h = validate(&b, 1 << 20).unwrap()[0];
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
    assert!(validate(&b, 1 << 20).is_ok());
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
