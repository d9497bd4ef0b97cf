//! Committed offsets and their records in the internal `__consumer_offsets` log.
//!
//! Records use Kafka's own schemas, so the log reads like Kafka's:
//!
//! ```text
//! key   (version 1): i16 version=1 | string group | string topic | i32 partition
//! value (version 3): i16 version=3 | i64 offset | i32 leader_epoch | string metadata
//!                    | i64 commit_timestamp
//! ```
//!
//! Strings are an i16 length and UTF-8 bytes. A record with a null value (tombstone) deletes
//! the offset. Values are read in every version Kafka 4.1 writes (0–4; 4 is the flexible
//! one); a value of any other version is not understood, which replay reports and keeps,
//! never treating it as a deletion. Other key versions (group metadata, 2) are not offsets.

use bytes::{Buf, BufMut};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
}

const KEY_VERSION: i16 = 1;
const VALUE_VERSION: i16 = 3;

fn put_str(out: &mut Vec<u8>, s: &str) {
    super::metadata_record::put_str(out, Some(s));
}

fn get_str(b: &mut &[u8]) -> Option<String> {
    super::metadata_record::get_str(b)?
}

pub fn encode_key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + group.len() + topic.len());
    out.put_i16(KEY_VERSION);
    put_str(&mut out, group);
    put_str(&mut out, topic);
    out.put_i32(partition);
    out
}

pub fn encode_value(o: &CommittedOffset) -> Vec<u8> {
    let mut out = Vec::with_capacity(26 + o.metadata.len());
    out.put_i16(VALUE_VERSION);
    out.put_i64(o.offset);
    out.put_i32(o.leader_epoch);
    put_str(&mut out, &o.metadata);
    out.put_i64(o.commit_timestamp);
    out
}

/// (group, topic, partition) of an offset-commit key; `None` for other record kinds.
pub fn decode_key(mut b: &[u8]) -> Option<(String, String, i32)> {
    let version = b.try_get_i16().ok()?;
    if !(0..=1).contains(&version) {
        return None;
    }
    let group = get_str(&mut b)?;
    let topic = get_str(&mut b)?;
    let partition = b.try_get_i32().ok()?;
    Some((group, topic, partition))
}

/// Reads OffsetCommitValue versions 0–4 (Kafka 4.1's): v1 adds an expiry timestamp (ignored:
/// expiry follows `offsets.retention.minutes`), v3 the leader epoch, v4 is v3 in the flexible
/// encoding. `None` for any other version or a value that does not parse.
pub fn decode_value(mut b: &[u8]) -> Option<CommittedOffset> {
    let version = b.try_get_i16().ok()?;
    if !(0..=4).contains(&version) {
        return None;
    }
    let offset = b.try_get_i64().ok()?;
    let leader_epoch = if version >= 3 { b.try_get_i32().ok()? } else { -1 };
    let metadata = if version >= 4 { get_compact_str(&mut b)? } else { get_str(&mut b)? };
    let commit_timestamp = b.try_get_i64().ok()?;
    Some(CommittedOffset { offset, leader_epoch, metadata, commit_timestamp })
}

/// A flexible-version string: unsigned varint of length + 1, then the bytes.
fn get_compact_str(b: &mut &[u8]) -> Option<String> {
    let mut len: u64 = 0;
    for shift in (0..35).step_by(7) {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        len |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            let len = usize::try_from(len.checked_sub(1)?).ok()?;
            let s = std::str::from_utf8(b.get(..len)?).ok()?.to_string();
            b.advance(len);
            return Some(s);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let k = encode_key("g", "orders", 3);
        assert_eq!(decode_key(&k), Some(("g".into(), "orders".into(), 3)));
        let v = CommittedOffset { offset: 42, leader_epoch: 0, metadata: "m".into(), commit_timestamp: 7 };
        assert_eq!(decode_value(&encode_value(&v)), Some(v));
        assert_eq!(decode_key(&[0, 2, 0, 1, b'g']), None, "group metadata keys are skipped");
        assert_eq!(decode_value(&[0, 3, 1]), None);
        // Version 4 (flexible): compact string, then tagged fields.
        let mut v4 = vec![0, 4];
        v4.extend_from_slice(&42i64.to_be_bytes());
        v4.extend_from_slice(&5i32.to_be_bytes());
        v4.extend_from_slice(&[2, b'm']);
        v4.extend_from_slice(&7i64.to_be_bytes());
        v4.push(0);
        let want = CommittedOffset { offset: 42, leader_epoch: 5, metadata: "m".into(), commit_timestamp: 7 };
        assert_eq!(decode_value(&v4), Some(want));
        let mut v9 = v4.clone();
        v9[1] = 9;
        assert_eq!(decode_value(&v9), None, "a version gregor does not know is not understood");
    }
}
