//! Share-partition state kept across restarts, in the internal log `__share_group_state`
//! (one partition, compacted), as Kafka's share coordinator keeps it: one snapshot record per
//! (group, topic id, partition), the latest one wins, a null value deletes.
//!
//! ```text
//! key   : i16 record type = 0 (ShareSnapshot) | string group | uuid topic | i32 partition
//! value : i16 version = 0 | i32 snapshot_epoch | i32 state_epoch | i32 leader_epoch
//!         | i64 start_offset | i64 create_timestamp | i64 write_timestamp
//!         | compact array of state batches:
//!             i64 first_offset | i64 last_offset | i8 delivery_state | i16 delivery_count
//!             | tagged fields (none)
//!         | tagged fields (none)
//! ```
//!
//! The key is not flexible (i16-length string); the value is (unsigned varint lengths, tagged
//! fields). Matched: Kafka 4.1's `ShareSnapshotKey`/`ShareSnapshotValue` as its share
//! coordinator writes them (record type 0; gregor never writes `ShareUpdate` deltas, every write
//! is a whole snapshot). The layout was written from the schema files' field lists; no record
//! written by Kafka itself was available here to compare bytes with.
//!
//! Records from disk are untrusted: decoding never trusts a length or count beyond the bytes
//! present, and returns `None` for anything it cannot read (kept, changing nothing).

use std::collections::BTreeMap;
use std::io;

use bytes::{Buf, BufMut};
use tracing::{info, warn};
use uuid::Uuid;

use crate::log::{batch, PartitionLog};

use super::partition::{PersistedState, StateBatch};
use crate::group::flexible::{Reader, Writer};

/// The internal log holding share-partition state.
pub const SHARE_STATE_TOPIC: &str = "__share_group_state";

const SNAPSHOT_RECORD_TYPE: i16 = 0;
const SNAPSHOT_VALUE_VERSION: i16 = 0;

/// Which share-partition a record is about.
pub type ShareKey = (String, Uuid, i32);

/// One share-partition's kept state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub snapshot_epoch: i32,
    pub start_offset: i64,
    pub create_timestamp: i64,
    pub write_timestamp: i64,
    pub batches: Vec<StateBatch>,
}

pub fn encode_key((group, topic, partition): &ShareKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + group.len());
    out.put_i16(SNAPSHOT_RECORD_TYPE);
    crate::group::metadata_record::put_str(&mut out, Some(group));
    out.put_slice(topic.as_bytes());
    out.put_i32(*partition);
    out
}

pub fn decode_key(mut b: &[u8]) -> Option<ShareKey> {
    if b.try_get_i16().ok()? != SNAPSHOT_RECORD_TYPE {
        return None;
    }
    let group = crate::group::metadata_record::get_str(&mut b)??;
    let topic = Uuid::from_slice(b.get(..16)?).ok()?;
    b.advance(16);
    let partition = b.try_get_i32().ok()?;
    b.is_empty().then_some((group, topic, partition))
}

pub fn encode_value(s: &Snapshot) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(48 + 21 * s.batches.len()));
    w.0.put_i16(SNAPSHOT_VALUE_VERSION);
    w.0.put_i32(s.snapshot_epoch);
    w.0.put_i32(0); // state epoch: gregor's share-partitions are never re-initialized
    w.0.put_i32(0); // leader epoch: one broker leads every partition
    w.0.put_i64(s.start_offset);
    w.0.put_i64(s.create_timestamp);
    w.0.put_i64(s.write_timestamp);
    w.array_len(s.batches.len());
    for b in &s.batches {
        w.0.put_i64(b.first_offset);
        w.0.put_i64(b.last_offset);
        w.0.put_i8(b.state.code());
        w.0.put_i16(b.delivery_count);
        w.no_tags();
    }
    w.no_tags();
    w.0
}

pub fn decode_value(b: &[u8]) -> Option<Snapshot> {
    let mut r = Reader(b);
    if r.0.try_get_i16().ok()? != SNAPSHOT_VALUE_VERSION {
        return None;
    }
    let snapshot_epoch = r.0.try_get_i32().ok()?;
    let _state_epoch = r.0.try_get_i32().ok()?;
    let _leader_epoch = r.0.try_get_i32().ok()?;
    let start_offset = r.0.try_get_i64().ok()?;
    let create_timestamp = r.0.try_get_i64().ok()?;
    let write_timestamp = r.0.try_get_i64().ok()?;
    let count = r.array_len()?;
    // Each batch takes at least 20 bytes: never reserve beyond what is there.
    let mut batches = Vec::with_capacity(count.min(r.0.len() / 20));
    for _ in 0..count {
        let first_offset = r.0.try_get_i64().ok()?;
        let last_offset = r.0.try_get_i64().ok()?;
        let state = PersistedState::from_code(r.0.try_get_i8().ok()?)?;
        let delivery_count = r.0.try_get_i16().ok()?;
        // Tagged fields a newer writer added are skipped, as Kafka does.
        r.tags(|_, _| Some(()))?;
        batches.push(StateBatch { first_offset, last_offset, state, delivery_count });
    }
    r.tags(|_, _| Some(()))?;
    Some(Snapshot { snapshot_epoch, start_offset, create_timestamp, write_timestamp, batches })
}

/// Records kept as they are: (key, value).
pub(super) type Unread = Vec<(Vec<u8>, Vec<u8>)>;

/// The latest snapshot of every share-partition in the log, and the records gregor could not
/// read (latest per key: they change nothing and survive the start-time rewrite).
pub(super) fn replay(log: &PartitionLog) -> io::Result<(BTreeMap<ShareKey, Snapshot>, Unread)> {
    let mut snapshots = BTreeMap::new();
    let mut kept: indexmap::IndexMap<Vec<u8>, Vec<u8>> = indexmap::IndexMap::new();
    let mut records = 0usize;
    log.for_each_record(|key, value| {
        records += 1;
        let key_bytes = key.unwrap_or_default();
        let decoded = key.and_then(decode_key);
        match (decoded, value) {
            (Some(k), None) => {
                snapshots.remove(&k);
                kept.shift_remove(key_bytes);
            }
            (Some(k), Some(v)) => match decode_value(v) {
                Some(snap) => {
                    snapshots.insert(k, snap);
                    kept.shift_remove(key_bytes);
                }
                None => {
                    warn!(group = %k.0, "{SHARE_STATE_TOPIC} holds a snapshot gregor cannot read; keeping it and changing nothing");
                    kept.insert(key_bytes.to_vec(), v.to_vec());
                }
            },
            (None, v) => {
                warn!("{SHARE_STATE_TOPIC} holds a record gregor cannot read; keeping it and changing nothing");
                match v {
                    Some(v) => kept.insert(key_bytes.to_vec(), v.to_vec()),
                    None => kept.shift_remove(key_bytes),
                };
            }
        }
    })?;
    if records > 0 {
        info!(share_partitions = snapshots.len(), records, "replayed {SHARE_STATE_TOPIC}");
    }
    Ok((snapshots, kept.into_iter().collect()))
}

/// Rewrites the log to its live records (start-time compaction, before the broker serves).
pub(super) fn rewrite(
    log: &PartitionLog,
    snapshots: &BTreeMap<ShareKey, Snapshot>,
    kept: Unread,
    now_ms: i64,
) -> io::Result<()> {
    let before = log.size_bytes();
    let mut live: Vec<(Vec<u8>, Option<Vec<u8>>)> =
        snapshots.iter().map(|(k, s)| (encode_key(k), Some(encode_value(s)))).collect();
    live.extend(kept.into_iter().map(|(k, v)| (k, Some(v))));
    log.rewrite_as(&live, now_ms)?;
    info!(records = live.len(), bytes_before = before, bytes_after = log.size_bytes(), "compacted {SHARE_STATE_TOPIC}");
    Ok(())
}

/// Appends snapshots (`None`: a tombstone), in batches of at most about 512 KiB.
pub(super) fn append(log: &PartitionLog, records: &[(ShareKey, Option<Vec<u8>>)], now_ms: i64) -> io::Result<()> {
    let encoded: Vec<(Vec<u8>, Option<&[u8]>)> = records.iter().map(|(k, v)| (encode_key(k), v.as_deref())).collect();
    let mut start = 0;
    while start < encoded.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < encoded.len() && (end == start || bytes < 512 << 10) {
            bytes += encoded[end].0.len() + encoded[end].1.map_or(0, <[u8]>::len);
            end += 1;
        }
        let kvs: Vec<batch::KeyValue<'_>> = encoded[start..end].iter().map(|(k, v)| (Some(&k[..]), *v)).collect();
        log.append(&batch::build(&kvs, now_ms), now_ms).map_err(|e| io::Error::other(e.to_string()))?;
        start = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot {
            snapshot_epoch: 3,
            start_offset: 40,
            create_timestamp: 1_700_000_000_000,
            write_timestamp: 1_700_000_000_500,
            batches: vec![
                StateBatch { first_offset: 40, last_offset: 41, state: PersistedState::Available, delivery_count: 2 },
                StateBatch {
                    first_offset: 42,
                    last_offset: 42,
                    state: PersistedState::Acknowledged,
                    delivery_count: 1,
                },
                StateBatch { first_offset: 44, last_offset: 49, state: PersistedState::Archived, delivery_count: 5 },
            ],
        }
    }

    #[test]
    fn snapshots_round_trip() {
        let key = ("queue-workers".to_string(), Uuid::from_u128(7), 3);
        assert_eq!(decode_key(&encode_key(&key)), Some(key));
        let s = snapshot();
        assert_eq!(decode_value(&encode_value(&s)), Some(s));
        let empty = Snapshot { batches: Vec::new(), ..snapshot() };
        assert_eq!(decode_value(&encode_value(&empty)), Some(empty));
    }

    #[test]
    fn truncated_or_foreign_records_are_not_read() {
        let key = encode_key(&("g".to_string(), Uuid::from_u128(1), 0));
        for cut in 0..key.len() {
            assert_eq!(decode_key(&key[..cut]), None, "key cut at {cut}");
        }
        let value = encode_value(&snapshot());
        for cut in 0..value.len() {
            assert_eq!(decode_value(&value[..cut]), None, "value cut at {cut}");
        }
        // A ShareUpdate record (type 1), an unknown value version, an unknown delivery state.
        let mut update = key.clone();
        update[1] = 1;
        assert_eq!(decode_key(&update), None);
        let mut newer = value.clone();
        newer[1] = 9;
        assert_eq!(decode_value(&newer), None);
        let mut bad_state = value.clone();
        bad_state[2 + 4 * 3 + 8 * 3 + 1 + 16] = 1; // the first batch's state: 1 (acquired) is never kept
        assert_eq!(decode_value(&bad_state), None);
        // A count far beyond the bytes present.
        let mut huge = Writer(value[..2 + 12 + 24].to_vec());
        huge.uvarint(u32::MAX);
        let huge = huge.0;
        assert_eq!(decode_value(&huge), None);
    }
}
