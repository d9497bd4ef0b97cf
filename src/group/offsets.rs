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
//! the offset. Other key versions (Kafka's group metadata, version 2) are skipped on replay.

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

/// Reads value versions 1 and 3 (the ones without an expiry field and with it, Kafka's 0–3).
pub fn decode_value(mut b: &[u8]) -> Option<CommittedOffset> {
    let version = b.try_get_i16().ok()?;
    let offset = b.try_get_i64().ok()?;
    let leader_epoch = if version >= 3 { b.try_get_i32().ok()? } else { -1 };
    let metadata = get_str(&mut b)?;
    let commit_timestamp = b.try_get_i64().ok()?;
    Some(CommittedOffset { offset, leader_epoch, metadata, commit_timestamp })
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
    }
}
