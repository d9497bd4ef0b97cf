//! Group metadata records in `__consumer_offsets`, in Kafka's schema, so a restart restores
//! each group's generation, leader and members (with their assignments) instead of forcing a
//! rebalance.
//!
//! ```text
//! key   (version 2): i16 version=2 | string group
//! value (version 3): i16 version=3 | string protocol_type | i32 generation
//!                    | nullable string protocol | nullable string leader
//!                    | i64 current_state_timestamp
//!                    | i32 member count, then per member:
//!                        string member_id | nullable string group_instance_id
//!                        | string client_id | string client_host
//!                        | i32 rebalance_timeout_ms | i32 session_timeout_ms
//!                        | bytes subscription | bytes assignment
//! ```
//!
//! Strings are i16-length-prefixed (-1: null), bytes i32-length-prefixed. A null value deletes
//! the group.

use bytes::{Buf, BufMut, Bytes};

#[derive(Debug, Clone, PartialEq)]
pub struct GroupRecord {
    pub protocol_type: String,
    pub generation_id: i32,
    pub protocol_name: Option<String>,
    pub leader_id: Option<String>,
    pub state_timestamp_ms: i64,
    pub members: Vec<MemberRecord>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MemberRecord {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

const KEY_VERSION: i16 = 2;
const VALUE_VERSION: i16 = 3;

/// An i16-length-prefixed string, -1 for null (Kafka's STRING / NULLABLE_STRING).
pub(super) fn put_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.put_i16(-1),
        Some(s) => {
            let b = &s.as_bytes()[..s.len().min(i16::MAX as usize)];
            out.put_i16(b.len() as i16);
            out.put_slice(b);
        }
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.put_i32(b.len() as i32);
    out.put_slice(b);
}

pub(super) fn get_str(b: &mut &[u8]) -> Option<Option<String>> {
    let len = b.try_get_i16().ok()?;
    if len < 0 {
        return Some(None);
    }
    let len = len as usize;
    let s = std::str::from_utf8(b.get(..len)?).ok()?.to_string();
    b.advance(len);
    Some(Some(s))
}

fn get_bytes(b: &mut &[u8]) -> Option<Bytes> {
    let len = usize::try_from(b.try_get_i32().ok()?).ok()?;
    let v = Bytes::copy_from_slice(b.get(..len)?);
    b.advance(len);
    Some(v)
}

pub fn encode_key(group: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + group.len());
    out.put_i16(KEY_VERSION);
    put_str(&mut out, Some(group));
    out
}

/// The group id of a group metadata key; `None` for other record kinds.
pub fn decode_key(mut b: &[u8]) -> Option<String> {
    if b.try_get_i16().ok()? != KEY_VERSION {
        return None;
    }
    get_str(&mut b)?
}

pub fn encode_value(g: &GroupRecord) -> Vec<u8> {
    let mut out = Vec::new();
    out.put_i16(VALUE_VERSION);
    put_str(&mut out, Some(&g.protocol_type));
    out.put_i32(g.generation_id);
    put_str(&mut out, g.protocol_name.as_deref());
    put_str(&mut out, g.leader_id.as_deref());
    out.put_i64(g.state_timestamp_ms);
    out.put_i32(g.members.len() as i32);
    for m in &g.members {
        put_str(&mut out, Some(&m.member_id));
        put_str(&mut out, m.group_instance_id.as_deref());
        put_str(&mut out, Some(&m.client_id));
        put_str(&mut out, Some(&m.client_host));
        out.put_i32(m.rebalance_timeout_ms);
        out.put_i32(m.session_timeout_ms);
        put_bytes(&mut out, &m.subscription);
        put_bytes(&mut out, &m.assignment);
    }
    out
}

pub fn decode_value(mut b: &[u8]) -> Option<GroupRecord> {
    if b.try_get_i16().ok()? != VALUE_VERSION {
        return None;
    }
    let protocol_type = get_str(&mut b)?.unwrap_or_default();
    let generation_id = b.try_get_i32().ok()?;
    let protocol_name = get_str(&mut b)?;
    let leader_id = get_str(&mut b)?;
    let state_timestamp_ms = b.try_get_i64().ok()?;
    let count = b.try_get_i32().ok()?;
    let mut members = Vec::new();
    // Each member takes at least 24 bytes; never trust the count beyond what is there.
    for _ in 0..count.max(0).min((b.len() / 24) as i32) {
        members.push(MemberRecord {
            member_id: get_str(&mut b)?.unwrap_or_default(),
            group_instance_id: get_str(&mut b)?,
            client_id: get_str(&mut b)?.unwrap_or_default(),
            client_host: get_str(&mut b)?.unwrap_or_default(),
            rebalance_timeout_ms: b.try_get_i32().ok()?,
            session_timeout_ms: b.try_get_i32().ok()?,
            subscription: get_bytes(&mut b)?,
            assignment: get_bytes(&mut b)?,
        });
    }
    Some(GroupRecord { protocol_type, generation_id, protocol_name, leader_id, state_timestamp_ms, members })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_records_round_trip() {
        let g = GroupRecord {
            protocol_type: "consumer".into(),
            generation_id: 7,
            protocol_name: Some("range".into()),
            leader_id: Some("m1".into()),
            state_timestamp_ms: 99,
            members: vec![MemberRecord {
                member_id: "m1".into(),
                group_instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300000,
                session_timeout_ms: 45000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        assert_eq!(decode_value(&encode_value(&g)), Some(g));
        assert_eq!(decode_key(&encode_key("grp")), Some("grp".into()));
        assert_eq!(decode_key(&crate::group::offsets::encode_key("g", "t", 0)), None);
    }
}
