//! `__transaction_state` records, in Kafka's schemas (TransactionLogKey v0 and
//! TransactionLogValue v0), so the log reads the same as a Kafka broker's:
//!
//! ```text
//! key   i16 version (0) | string transactional id
//! value i16 version (0) | i64 producer id | i16 producer epoch | i32 timeout ms | i8 state
//!       | i32 count (-1: null) x (string topic | i32 count x i32 partition)
//!       | i64 last update ms | i64 start ms
//! ```
//!
//! Strings are i16-length-prefixed UTF-8. A null value is a tombstone (the id expired).

use std::collections::BTreeSet;

use bytes::{Buf, BufMut};

use super::state::{TxnMetadata, TxnState};

pub fn encode_key(transactional_id: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(4 + transactional_id.len());
    b.put_i16(0);
    put_str(&mut b, transactional_id);
    b
}

/// The transactional id of a key; `None` for a version gregor does not read.
pub fn decode_key(mut b: &[u8]) -> Option<String> {
    if b.remaining() < 2 || b.get_i16() != 0 {
        return None;
    }
    get_str(&mut b)
}

pub fn encode_value(m: &TxnMetadata) -> Vec<u8> {
    let mut b = Vec::with_capacity(64);
    b.put_i16(0);
    b.put_i64(m.producer_id);
    b.put_i16(m.epoch);
    b.put_i32(m.timeout_ms);
    b.put_i8(m.state.code());
    if m.state == TxnState::Empty || m.partitions.is_empty() {
        b.put_i32(-1);
    } else {
        let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
        for (t, p) in &m.partitions {
            match topics.last_mut() {
                Some((name, parts)) if *name == t.as_str() => parts.push(*p),
                _ => topics.push((t.as_str(), vec![*p])),
            }
        }
        b.put_i32(topics.len() as i32);
        for (t, parts) in topics {
            put_str(&mut b, t);
            b.put_i32(parts.len() as i32);
            for p in parts {
                b.put_i32(p);
            }
        }
    }
    b.put_i64(m.last_update_ms);
    b.put_i64(m.start_ms);
    b
}

/// A value of version 0; `None` for another version or malformed bytes.
pub fn decode_value(transactional_id: &str, mut b: &[u8]) -> Option<TxnMetadata> {
    if b.remaining() < 2 || b.get_i16() != 0 || b.remaining() < 19 {
        return None;
    }
    let producer_id = b.get_i64();
    let epoch = b.get_i16();
    let timeout_ms = b.get_i32();
    let state = TxnState::from_code(b.get_i8())?;
    let mut partitions = BTreeSet::new();
    let topics = b.try_get_i32().ok()?;
    for _ in 0..topics.max(0) {
        let topic = get_str(&mut b)?;
        let n = b.try_get_i32().ok()?;
        if n < 0 || n as usize > b.remaining() / 4 {
            return None;
        }
        for _ in 0..n {
            partitions.insert((topic.clone(), b.get_i32()));
        }
    }
    let last_update_ms = b.try_get_i64().ok()?;
    let start_ms = b.try_get_i64().ok()?;
    Some(TxnMetadata {
        transactional_id: transactional_id.to_string(),
        producer_id,
        epoch,
        timeout_ms,
        state,
        partitions,
        last_update_ms,
        start_ms,
        last_epoch: -1,
    })
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    b.put_i16(s.len() as i16);
    b.extend_from_slice(s.as_bytes());
}

fn get_str(b: &mut &[u8]) -> Option<String> {
    let len = usize::try_from(b.try_get_i16().ok()?).ok()?;
    let s = std::str::from_utf8(b.get(..len)?).ok()?.to_string();
    b.advance(len);
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_in_kafkas_layout() {
        let m = TxnMetadata {
            transactional_id: "tx".into(),
            producer_id: 42,
            epoch: 3,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: [("a".to_string(), 0), ("a".to_string(), 2), ("b".to_string(), 1)].into_iter().collect(),
            last_update_ms: 1_000,
            start_ms: 900,
            last_epoch: -1,
        };
        assert_eq!(decode_key(&encode_key("tx")).as_deref(), Some("tx"));
        let v = encode_value(&m);
        // version, pid, epoch, timeout, state, 2 topics
        assert_eq!(&v[..2], &[0, 0]);
        assert_eq!(v[16], 1, "Ongoing is state 1");
        assert_eq!(decode_value("tx", &v), Some(m));
        assert_eq!(decode_value("tx", &[0, 1, 0]), None, "another version is not guessed at");
    }
}
