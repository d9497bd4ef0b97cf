//! The embedded consumer protocol of classic groups (protocol type `consumer`): the
//! subscription a member sends in JoinGroup and the assignment the leader hands out in
//! SyncGroup (Kafka's `ConsumerProtocolSubscription` and `ConsumerProtocolAssignment`, versions
//! 0 to 3, not flexible). The coordinator reads them only when a group changes protocol
//! (KIP-848's upgrade and downgrade) and when classic members belong to a `consumer` group.
//!
//! ```text
//! subscription: i16 version | [string topic] | nullable bytes user_data
//!               | v1+: [string topic | [i32 partition]] owned | v2+: i32 generation
//!               | v3+: nullable string rack
//! assignment:   i16 version | [string topic | [i32 partition]] | nullable bytes user_data
//! ```
//!
//! A version above 3 is read as 3 and what follows is ignored (Kafka reads newer versions with
//! the fields it knows). The bytes are untrusted: no length or count is believed beyond the
//! bytes present, nothing panics, and anything malformed is `None`.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::Assignment;

/// What a classic member's JoinGroup metadata says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    pub version: i16,
    pub topics: Vec<String>,
    /// The partitions the member owns (v1+, cooperative members); empty for older versions.
    pub owned: Assignment,
    pub rack: Option<String>,
}

fn string(b: &mut &[u8]) -> Option<String> {
    let len = usize::try_from(b.try_get_i16().ok()?).ok()?;
    let s = b.get(..len)?;
    let out = String::from_utf8(s.to_vec()).ok()?;
    b.advance(len);
    Some(out)
}

fn nullable_string(b: &mut &[u8]) -> Option<Option<String>> {
    let len = b.try_get_i16().ok()?;
    if len < 0 {
        return Some(None);
    }
    let s = b.get(..len as usize)?;
    let out = String::from_utf8(s.to_vec()).ok()?;
    b.advance(len as usize);
    Some(Some(out))
}

/// A count of elements that each take at least `min_size` bytes: never more than could fit.
fn count(b: &mut &[u8], min_size: usize) -> Option<usize> {
    let n = usize::try_from(b.try_get_i32().ok()?).ok()?;
    (n.saturating_mul(min_size) <= b.len()).then_some(n)
}

fn skip_nullable_bytes(b: &mut &[u8]) -> Option<()> {
    let len = b.try_get_i32().ok()?;
    if len >= 0 {
        b.get(..len as usize)?;
        b.advance(len as usize);
    }
    Some(())
}

fn topic_partitions(b: &mut &[u8]) -> Option<Assignment> {
    let mut out = Assignment::new();
    for _ in 0..count(b, 6)? {
        let topic = string(b)?;
        let n = count(b, 4)?;
        let partitions = out.entry(topic).or_default();
        for _ in 0..n {
            partitions.insert(b.try_get_i32().ok()?);
        }
    }
    out.retain(|_, ps| !ps.is_empty());
    Some(out)
}

/// The version an embedded protocol message starts with (0 when too short), as the
/// coordinator answers with: at most 3.
pub fn version(b: &[u8]) -> i16 {
    b.get(..2).map_or(0, |v| i16::from_be_bytes([v[0], v[1]])).clamp(0, 3)
}

pub fn decode_subscription(mut b: &[u8]) -> Option<Subscription> {
    let b = &mut b;
    let version = b.try_get_i16().ok()?;
    if version < 0 {
        return None;
    }
    let mut topics = Vec::new();
    for _ in 0..count(b, 2)? {
        topics.push(string(b)?);
    }
    skip_nullable_bytes(b)?;
    let mut s = Subscription { version: version.min(3), topics, ..Default::default() };
    if version >= 1 {
        s.owned = topic_partitions(b)?;
    }
    if version >= 2 {
        b.try_get_i32().ok()?;
    }
    if version >= 3 {
        s.rack = nullable_string(b)?;
    }
    Some(s)
}

/// A classic member's assignment; no bytes at all (a member that never synced) is nothing
/// assigned.
pub fn decode_assignment(mut b: &[u8]) -> Option<Assignment> {
    if b.is_empty() {
        return Some(Assignment::new());
    }
    let b = &mut b;
    if b.try_get_i16().ok()? < 0 {
        return None;
    }
    let out = topic_partitions(b)?;
    skip_nullable_bytes(b)?;
    Some(out)
}

/// An assignment in the given version (clamped to 0..=3; every version has the same fields),
/// without user data.
pub fn encode_assignment(a: &Assignment, version: i16) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(version.clamp(0, 3));
    let topics: Vec<_> = a.iter().filter(|(_, ps)| !ps.is_empty()).collect();
    b.put_i32(topics.len() as i32);
    for (topic, ps) in topics {
        b.put_i16(topic.len().min(i16::MAX as usize) as i16);
        b.put_slice(&topic.as_bytes()[..topic.len().min(i16::MAX as usize)]);
        b.put_i32(ps.len() as i32);
        for p in ps {
            b.put_i32(*p);
        }
    }
    b.put_i32(-1);
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put_str(b: &mut BytesMut, s: &str) {
        b.put_i16(s.len() as i16);
        b.put_slice(s.as_bytes());
    }

    fn subscription(version: i16) -> Vec<u8> {
        let mut b = BytesMut::new();
        b.put_i16(version);
        b.put_i32(2);
        put_str(&mut b, "a");
        put_str(&mut b, "b");
        b.put_i32(3);
        b.put_slice(b"xyz");
        if version >= 1 {
            b.put_i32(1);
            put_str(&mut b, "a");
            b.put_i32(2);
            b.put_i32(0);
            b.put_i32(4);
        }
        if version >= 2 {
            b.put_i32(7);
        }
        if version >= 3 {
            put_str(&mut b, "rack-1");
        }
        b.to_vec()
    }

    #[test]
    fn subscriptions_of_every_version() {
        let owned: Assignment = [("a".to_string(), [0, 4].into())].into();
        for v in 0..=3 {
            let s = decode_subscription(&subscription(v)).unwrap();
            assert_eq!(s.version, v);
            assert_eq!(s.topics, ["a", "b"]);
            assert_eq!(s.owned, if v >= 1 { owned.clone() } else { Assignment::new() });
            assert_eq!(s.rack.as_deref(), (v >= 3).then_some("rack-1"));
        }
        // A later version is read with the fields of v3; what follows them is ignored.
        let mut later = subscription(3);
        later[1] = 9;
        later.extend_from_slice(&[1, 2, 3]);
        assert_eq!(decode_subscription(&later).unwrap().rack.as_deref(), Some("rack-1"));
    }

    #[test]
    fn lying_or_cut_embedded_messages_are_refused() {
        let whole = subscription(3);
        for cut in 0..whole.len() {
            assert_eq!(decode_subscription(&whole[..cut]), None, "cut at {cut}");
        }
        // A topic count far beyond the bytes present allocates nothing and fails.
        let mut lying = BytesMut::new();
        lying.put_i16(0);
        lying.put_i32(i32::MAX);
        assert_eq!(decode_subscription(&lying), None);
        assert_eq!(decode_assignment(&lying), None);
        assert_eq!(decode_assignment(&[0, 0, 0]), None);
        assert_eq!(decode_assignment(&[]), Some(Assignment::new()));
    }

    #[test]
    fn assignments_round_trip_in_the_members_version() {
        let a: Assignment = [("t".to_string(), [2, 0].into()), ("u".to_string(), [1].into())].into();
        for v in [0, 1, 3, 7] {
            let bytes = encode_assignment(&a, v);
            assert_eq!(version(&bytes), v.min(3));
            assert_eq!(decode_assignment(&bytes), Some(a.clone()));
        }
    }
}
