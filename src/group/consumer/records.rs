//! Records of `consumer` protocol (KIP-848) groups in `__consumer_offsets`, in the schemas of
//! Kafka 4.1's group coordinator (`group-coordinator/src/main/resources/common/message/
//! ConsumerGroup*.json` at the 4.1 release), so the log reads as Kafka's would.
//!
//! A key starts with an i16 that is the record type (Kafka's `apiKey` of the coordinator
//! record), followed by the key's fields, not flexible: i16-length strings.
//!
//! ```text
//! type 3  ConsumerGroupMetadata          key: group
//! type 5  ConsumerGroupMemberMetadata    key: group | member
//! type 6  ConsumerGroupTargetAssignmentMetadata  key: group
//! type 7  ConsumerGroupTargetAssignmentMember    key: group | member
//! type 8  ConsumerGroupCurrentMemberAssignment   key: group | member
//! type 16 ConsumerGroupRegularExpression key: group | regex
//! ```
//!
//! A value starts with an i16 schema version, always 0; every value schema is flexible from
//! version 0: strings and arrays are compact (unsigned varint of length + 1, 0 meaning null),
//! and every struct, nested ones included, ends with tagged fields (a varint count, then per
//! field a varint tag, a varint size and the bytes).
//!
//! ```text
//! 3:  i32 epoch | tags (0: i64 metadata hash, written when not 0; added in 4.1, KIP-1101)
//! 5:  nullable instance_id | nullable rack_id | client_id | client_host
//!     | [subscribed topic name] | nullable regex | i32 rebalance_timeout_ms
//!     | nullable server_assignor | tags (0: classic member metadata of a member that uses
//!     the classic protocol: i8 1 | i32 session_timeout_ms | [name | bytes metadata | tags] | tags)
//! 6:  i32 assignment_epoch | tags
//! 7:  [uuid topic_id | [i32 partition] | tags] | tags
//! 8:  i32 member_epoch | i32 previous_member_epoch | i8 state
//!     | [assigned: as in 7] | [pending revocation: as in 7] | tags
//! 16: [topic name] | i64 version | i64 timestamp | tags
//! ```
//!
//! Kafka 4.1 no longer writes ConsumerGroupPartitionMetadata (type 4, replaced by the metadata
//! hash); gregor neither writes nor reads it. The metadata hash gregor writes is its own hash
//! of the subscribed topics (see [`super::metadata_hash`]), not Kafka's: a Kafka broker reading
//! it would see a different hash and rebalance the group once, as after a metadata change.
//!
//! The bytes are untrusted (anything can be in the log): decoding never trusts a length or a
//! count beyond the bytes present, never panics, and returns `None` for anything malformed, a
//! version other than 0, or trailing bytes. Tagged fields gregor does not know are skipped, so
//! values written by later Kafka releases that only add tagged fields still decode.

use bytes::{Buf, BufMut};
use uuid::Uuid;

use crate::group::flexible::{Reader, Writer};
use crate::group::metadata_record::{get_str, put_str};

pub const GROUP_METADATA: i16 = 3;
pub const MEMBER_METADATA: i16 = 5;
pub const TARGET_ASSIGNMENT_METADATA: i16 = 6;
pub const TARGET_ASSIGNMENT_MEMBER: i16 = 7;
pub const CURRENT_MEMBER_ASSIGNMENT: i16 = 8;
pub const REGULAR_EXPRESSION: i16 = 16;

const VALUE_VERSION: i16 = 0;

/// The key of a consumer group record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordKey {
    GroupMetadata { group: String },
    MemberMetadata { group: String, member: String },
    TargetAssignmentMetadata { group: String },
    TargetAssignmentMember { group: String, member: String },
    CurrentMemberAssignment { group: String, member: String },
    RegularExpression { group: String, regex: String },
}

impl RecordKey {
    pub fn group(&self) -> &str {
        match self {
            Self::GroupMetadata { group }
            | Self::MemberMetadata { group, .. }
            | Self::TargetAssignmentMetadata { group }
            | Self::TargetAssignmentMember { group, .. }
            | Self::CurrentMemberAssignment { group, .. }
            | Self::RegularExpression { group, .. } => group,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    pub epoch: i32,
    pub metadata_hash: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadataValue {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
    /// Kafka's `ClassicMemberMetadata`: set for a member that uses the classic protocol.
    pub classic: Option<ClassicMemberMetadata>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicMemberMetadata {
    pub session_timeout_ms: i32,
    /// (name, metadata) of the protocols the member supports, in its order of preference.
    pub supported_protocols: Vec<(String, Vec<u8>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetAssignmentMetadataValue {
    pub assignment_epoch: i32,
}

/// Partitions of one topic, by topic id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPartitions {
    pub topic_id: Uuid,
    pub partitions: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetAssignmentMemberValue {
    pub topic_partitions: Vec<TopicPartitions>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentMemberAssignmentValue {
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    /// Kafka's `MemberState`: 0 stable, 1 unrevoked partitions, 2 unreleased partitions.
    pub state: i8,
    pub assigned_partitions: Vec<TopicPartitions>,
    pub partitions_pending_revocation: Vec<TopicPartitions>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegularExpressionValue {
    pub topics: Vec<String>,
    pub version: i64,
    pub timestamp: i64,
}

/// The value of a consumer group record; its variant follows the key's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordValue {
    GroupMetadata(GroupMetadataValue),
    MemberMetadata(MemberMetadataValue),
    TargetAssignmentMetadata(TargetAssignmentMetadataValue),
    TargetAssignmentMember(TargetAssignmentMemberValue),
    CurrentMemberAssignment(CurrentMemberAssignmentValue),
    RegularExpression(RegularExpressionValue),
}

pub fn encode_key(key: &RecordKey) -> Vec<u8> {
    let mut out = Vec::new();
    let (kind, group, second) = match key {
        RecordKey::GroupMetadata { group } => (GROUP_METADATA, group, None),
        RecordKey::MemberMetadata { group, member } => (MEMBER_METADATA, group, Some(member)),
        RecordKey::TargetAssignmentMetadata { group } => (TARGET_ASSIGNMENT_METADATA, group, None),
        RecordKey::TargetAssignmentMember { group, member } => (TARGET_ASSIGNMENT_MEMBER, group, Some(member)),
        RecordKey::CurrentMemberAssignment { group, member } => (CURRENT_MEMBER_ASSIGNMENT, group, Some(member)),
        RecordKey::RegularExpression { group, regex } => (REGULAR_EXPRESSION, group, Some(regex)),
    };
    out.put_i16(kind);
    put_str(&mut out, Some(group));
    if let Some(s) = second {
        put_str(&mut out, Some(s));
    }
    out
}

/// The key of a consumer group record; `None` for other record kinds and malformed keys.
pub fn decode_key(mut b: &[u8]) -> Option<RecordKey> {
    let kind = b.try_get_i16().ok()?;
    if !matches!(
        kind,
        GROUP_METADATA
            | MEMBER_METADATA
            | TARGET_ASSIGNMENT_METADATA
            | TARGET_ASSIGNMENT_MEMBER
            | CURRENT_MEMBER_ASSIGNMENT
            | REGULAR_EXPRESSION
    ) {
        return None;
    }
    let group = get_str(&mut b)??;
    let key = match kind {
        GROUP_METADATA => RecordKey::GroupMetadata { group },
        TARGET_ASSIGNMENT_METADATA => RecordKey::TargetAssignmentMetadata { group },
        _ => {
            let second = get_str(&mut b)??;
            match kind {
                MEMBER_METADATA => RecordKey::MemberMetadata { group, member: second },
                TARGET_ASSIGNMENT_MEMBER => RecordKey::TargetAssignmentMember { group, member: second },
                CURRENT_MEMBER_ASSIGNMENT => RecordKey::CurrentMemberAssignment { group, member: second },
                _ => RecordKey::RegularExpression { group, regex: second },
            }
        }
    };
    // Two byte strings must never name the same key: compaction keeps the latest per bytes.
    b.is_empty().then_some(key)
}

pub fn encode_value(value: &RecordValue) -> Vec<u8> {
    let mut w = Writer(Vec::new());
    w.0.put_i16(VALUE_VERSION);
    match value {
        RecordValue::GroupMetadata(v) => {
            w.0.put_i32(v.epoch);
            if v.metadata_hash == 0 {
                w.no_tags();
            } else {
                // One tagged field: tag 0, 8 bytes.
                w.uvarint(1);
                w.uvarint(0);
                w.uvarint(8);
                w.0.put_i64(v.metadata_hash);
            }
        }
        RecordValue::MemberMetadata(v) => {
            w.nullable_str(v.instance_id.as_deref());
            w.nullable_str(v.rack_id.as_deref());
            w.str(&v.client_id);
            w.str(&v.client_host);
            w.array_len(v.subscribed_topic_names.len());
            for t in &v.subscribed_topic_names {
                w.str(t);
            }
            w.nullable_str(v.subscribed_topic_regex.as_deref());
            w.0.put_i32(v.rebalance_timeout_ms);
            w.nullable_str(v.server_assignor.as_deref());
            match &v.classic {
                None => w.no_tags(),
                Some(c) => {
                    // A tagged nullable struct: its size, a present marker, then the struct.
                    let mut inner = Writer(vec![1]);
                    inner.0.put_i32(c.session_timeout_ms);
                    inner.array_len(c.supported_protocols.len());
                    for (name, metadata) in &c.supported_protocols {
                        inner.str(name);
                        inner.len_plus_one(metadata.len());
                        inner.0.put_slice(metadata);
                        inner.no_tags();
                    }
                    inner.no_tags();
                    w.uvarint(1);
                    w.uvarint(0);
                    w.uvarint(u32::try_from(inner.0.len()).unwrap_or(u32::MAX));
                    w.0.extend_from_slice(&inner.0);
                }
            }
        }
        RecordValue::TargetAssignmentMetadata(v) => {
            w.0.put_i32(v.assignment_epoch);
            w.no_tags();
        }
        RecordValue::TargetAssignmentMember(v) => {
            w.topic_partitions(&v.topic_partitions);
            w.no_tags();
        }
        RecordValue::CurrentMemberAssignment(v) => {
            w.0.put_i32(v.member_epoch);
            w.0.put_i32(v.previous_member_epoch);
            w.0.put_i8(v.state);
            w.topic_partitions(&v.assigned_partitions);
            w.topic_partitions(&v.partitions_pending_revocation);
            w.no_tags();
        }
        RecordValue::RegularExpression(v) => {
            w.array_len(v.topics.len());
            for t in &v.topics {
                w.str(t);
            }
            w.0.put_i64(v.version);
            w.0.put_i64(v.timestamp);
            w.no_tags();
        }
    }
    w.0
}

/// The value of a record with key `key`; `None` when malformed or of another version.
pub fn decode_value(key: &RecordKey, b: &[u8]) -> Option<RecordValue> {
    let mut r = Reader(b);
    if r.0.try_get_i16().ok()? != VALUE_VERSION {
        return None;
    }
    let value = match key {
        RecordKey::GroupMetadata { .. } => {
            let epoch = r.0.try_get_i32().ok()?;
            let mut metadata_hash = 0;
            r.tags(|tag, mut data| {
                if tag == 0 {
                    metadata_hash = data.try_get_i64().ok()?;
                    if !data.is_empty() {
                        return None;
                    }
                }
                Some(())
            })?;
            RecordValue::GroupMetadata(GroupMetadataValue { epoch, metadata_hash })
        }
        RecordKey::MemberMetadata { .. } => {
            let instance_id = r.nullable_str()?;
            let rack_id = r.nullable_str()?;
            let client_id = r.str()?;
            let client_host = r.str()?;
            let n = r.array_len()?;
            let mut subscribed_topic_names = Vec::with_capacity(n);
            for _ in 0..n {
                subscribed_topic_names.push(r.str()?);
            }
            let subscribed_topic_regex = r.nullable_str()?;
            let rebalance_timeout_ms = r.0.try_get_i32().ok()?;
            let server_assignor = r.nullable_str()?;
            let mut classic = None;
            r.tags(|tag, data| {
                if tag == 0 {
                    classic = Reader(data).classic_member_metadata()?;
                }
                Some(())
            })?;
            RecordValue::MemberMetadata(MemberMetadataValue {
                instance_id,
                rack_id,
                client_id,
                client_host,
                subscribed_topic_names,
                subscribed_topic_regex,
                rebalance_timeout_ms,
                server_assignor,
                classic,
            })
        }
        RecordKey::TargetAssignmentMetadata { .. } => {
            let assignment_epoch = r.0.try_get_i32().ok()?;
            r.tags(|_, _| Some(()))?;
            RecordValue::TargetAssignmentMetadata(TargetAssignmentMetadataValue { assignment_epoch })
        }
        RecordKey::TargetAssignmentMember { .. } => {
            let topic_partitions = r.topic_partitions()?;
            r.tags(|_, _| Some(()))?;
            RecordValue::TargetAssignmentMember(TargetAssignmentMemberValue { topic_partitions })
        }
        RecordKey::CurrentMemberAssignment { .. } => {
            let member_epoch = r.0.try_get_i32().ok()?;
            let previous_member_epoch = r.0.try_get_i32().ok()?;
            let state = r.0.try_get_i8().ok()?;
            let assigned_partitions = r.topic_partitions()?;
            let partitions_pending_revocation = r.topic_partitions()?;
            r.tags(|_, _| Some(()))?;
            RecordValue::CurrentMemberAssignment(CurrentMemberAssignmentValue {
                member_epoch,
                previous_member_epoch,
                state,
                assigned_partitions,
                partitions_pending_revocation,
            })
        }
        RecordKey::RegularExpression { .. } => {
            let n = r.array_len()?;
            let mut topics = Vec::with_capacity(n);
            for _ in 0..n {
                topics.push(r.str()?);
            }
            let version = r.0.try_get_i64().ok()?;
            let timestamp = r.0.try_get_i64().ok()?;
            r.tags(|_, _| Some(()))?;
            RecordValue::RegularExpression(RegularExpressionValue { topics, version, timestamp })
        }
    };
    r.0.is_empty().then_some(value)
}

impl Writer {
    fn topic_partitions(&mut self, tps: &[TopicPartitions]) {
        self.array_len(tps.len());
        for tp in tps {
            self.0.put_slice(tp.topic_id.as_bytes());
            self.array_len(tp.partitions.len());
            for p in &tp.partitions {
                self.0.put_i32(*p);
            }
            self.no_tags();
        }
    }
}

impl Reader<'_> {
    /// The tagged `ClassicMemberMetadata` (a nullable struct): `Some(None)` for null.
    fn classic_member_metadata(&mut self) -> Option<Option<ClassicMemberMetadata>> {
        if self.0.try_get_i8().ok()? < 0 {
            return Some(None);
        }
        let session_timeout_ms = self.0.try_get_i32().ok()?;
        let n = self.array_len()?;
        let mut supported_protocols = Vec::with_capacity(n.min(self.0.len() / 3));
        for _ in 0..n {
            let name = self.str()?;
            let len = (self.uvarint()? as usize).checked_sub(1)?;
            let metadata = self.take(len)?.to_vec();
            self.tags(|_, _| Some(()))?;
            supported_protocols.push((name, metadata));
        }
        self.tags(|_, _| Some(()))?;
        self.0.is_empty().then_some(Some(ClassicMemberMetadata { session_timeout_ms, supported_protocols }))
    }

    fn topic_partitions(&mut self) -> Option<Vec<TopicPartitions>> {
        let n = self.array_len()?;
        let mut out = Vec::with_capacity(n.min(self.0.len() / 18));
        for _ in 0..n {
            let topic_id = Uuid::from_slice(self.take(16)?).ok()?;
            let count = self.array_len()?;
            let mut partitions = Vec::with_capacity(count.min(self.0.len() / 4));
            for _ in 0..count {
                partitions.push(self.0.try_get_i32().ok()?);
            }
            self.tags(|_, _| Some(()))?;
            out.push(TopicPartitions { topic_id, partitions });
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tps(seed: u128) -> Vec<TopicPartitions> {
        vec![
            TopicPartitions { topic_id: Uuid::from_u128(seed), partitions: vec![0, 2, 5] },
            TopicPartitions { topic_id: Uuid::from_u128(seed + 1), partitions: vec![] },
        ]
    }

    fn samples() -> Vec<(RecordKey, RecordValue)> {
        let g = || "group-1".to_string();
        let m = || "member-a".to_string();
        vec![
            (
                RecordKey::GroupMetadata { group: g() },
                RecordValue::GroupMetadata(GroupMetadataValue { epoch: 7, metadata_hash: -42 }),
            ),
            (
                RecordKey::GroupMetadata { group: g() },
                RecordValue::GroupMetadata(GroupMetadataValue { epoch: 1, metadata_hash: 0 }),
            ),
            (
                RecordKey::MemberMetadata { group: g(), member: m() },
                RecordValue::MemberMetadata(MemberMetadataValue {
                    instance_id: Some("i-1".into()),
                    rack_id: None,
                    client_id: "client".into(),
                    client_host: "/127.0.0.1".into(),
                    subscribed_topic_names: vec!["a".into(), "b".into()],
                    subscribed_topic_regex: Some("orders-.*".into()),
                    rebalance_timeout_ms: 30_000,
                    server_assignor: Some("uniform".into()),
                    classic: None,
                }),
            ),
            (
                RecordKey::MemberMetadata { group: g(), member: m() },
                RecordValue::MemberMetadata(MemberMetadataValue {
                    instance_id: None,
                    rack_id: None,
                    client_id: "classic".into(),
                    client_host: "/127.0.0.1".into(),
                    subscribed_topic_names: vec!["a".into()],
                    subscribed_topic_regex: None,
                    rebalance_timeout_ms: 300_000,
                    server_assignor: None,
                    classic: Some(ClassicMemberMetadata {
                        session_timeout_ms: 45_000,
                        supported_protocols: vec![
                            ("cooperative-sticky".into(), vec![0, 3, 0, 0, 0, 0]),
                            ("range".into(), vec![]),
                        ],
                    }),
                }),
            ),
            (
                RecordKey::MemberMetadata { group: g(), member: m() },
                RecordValue::MemberMetadata(MemberMetadataValue {
                    instance_id: None,
                    rack_id: Some("r".into()),
                    client_id: String::new(),
                    client_host: String::new(),
                    subscribed_topic_names: vec![],
                    subscribed_topic_regex: None,
                    rebalance_timeout_ms: -1,
                    server_assignor: None,
                    classic: None,
                }),
            ),
            (
                RecordKey::TargetAssignmentMetadata { group: g() },
                RecordValue::TargetAssignmentMetadata(TargetAssignmentMetadataValue { assignment_epoch: 3 }),
            ),
            (
                RecordKey::TargetAssignmentMember { group: g(), member: m() },
                RecordValue::TargetAssignmentMember(TargetAssignmentMemberValue { topic_partitions: tps(10) }),
            ),
            (
                RecordKey::CurrentMemberAssignment { group: g(), member: m() },
                RecordValue::CurrentMemberAssignment(CurrentMemberAssignmentValue {
                    member_epoch: 4,
                    previous_member_epoch: 3,
                    state: 1,
                    assigned_partitions: tps(20),
                    partitions_pending_revocation: tps(30),
                }),
            ),
            (
                RecordKey::RegularExpression { group: g(), regex: "orders-.*".into() },
                RecordValue::RegularExpression(RegularExpressionValue {
                    topics: vec!["orders-1".into(), "orders-2".into()],
                    version: 9,
                    timestamp: 1_700_000_000_000,
                }),
            ),
        ]
    }

    #[test]
    fn every_record_type_round_trips() {
        for (key, value) in samples() {
            let k = encode_key(&key);
            assert_eq!(decode_key(&k), Some(key.clone()));
            let v = encode_value(&value);
            assert_eq!(decode_value(&key, &v), Some(value), "{key:?}");
        }
        // Other kinds of keys in the same log are not consumer group keys.
        assert_eq!(decode_key(&crate::group::offsets::encode_key("g", "t", 0)), None);
        assert_eq!(decode_key(&crate::group::metadata_record::encode_key("g")), None);
    }

    #[test]
    fn the_bytes_are_kafkas() {
        // ConsumerGroupMetadataKey "g": type 3, string.
        assert_eq!(encode_key(&RecordKey::GroupMetadata { group: "g".into() }), [0, 3, 0, 1, b'g']);
        // ConsumerGroupMetadataValue v0: epoch 5, the hash as tagged field 0.
        let v = encode_value(&RecordValue::GroupMetadata(GroupMetadataValue { epoch: 5, metadata_hash: 1 }));
        assert_eq!(v, [0, 0, 0, 0, 0, 5, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1]);
        // ConsumerGroupTargetAssignmentMemberValue: one topic, partition 2.
        let v = encode_value(&RecordValue::TargetAssignmentMember(TargetAssignmentMemberValue {
            topic_partitions: vec![TopicPartitions { topic_id: Uuid::from_u128(1), partitions: vec![2] }],
        }));
        let mut want = vec![0, 0, 2];
        want.extend_from_slice(Uuid::from_u128(1).as_bytes());
        want.extend_from_slice(&[2, 0, 0, 0, 2, 0, 0]);
        assert_eq!(v, want);
    }

    #[test]
    fn unknown_tagged_fields_are_skipped() {
        let key = RecordKey::TargetAssignmentMetadata { group: "g".into() };
        // Epoch 3, then one tagged field (tag 0, 8 bytes: Kafka 4.3's assignment timestamp).
        let v = [0, 0, 0, 0, 0, 3, 1, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(
            decode_value(&key, &v),
            Some(RecordValue::TargetAssignmentMetadata(TargetAssignmentMetadataValue { assignment_epoch: 3 }))
        );
    }

    #[test]
    fn truncated_or_garbage_input_is_none_without_panic() {
        for (key, value) in samples() {
            let k = encode_key(&key);
            let v = encode_value(&value);
            for cut in 0..k.len() {
                assert_eq!(decode_key(&k[..cut]), None, "{key:?} cut at {cut}");
            }
            for cut in 0..v.len() {
                assert_eq!(decode_value(&key, &v[..cut]), None, "{key:?} cut at {cut}");
            }
            let mut longer = v.clone();
            longer.push(0);
            assert_eq!(decode_value(&key, &longer), None, "trailing bytes");
            let mut other_version = v.clone();
            other_version[1] = 1;
            assert_eq!(decode_value(&key, &other_version), None, "version 1 is not known");
            // Every single byte flipped: decodes to something or nothing, never panics.
            for i in 0..v.len() {
                let mut flipped = v.clone();
                flipped[i] ^= 0xff;
                let _ = decode_value(&key, &flipped);
            }
        }
        // Lying lengths and counts: a huge array count, a huge string length, a varint that
        // never ends.
        let key = RecordKey::TargetAssignmentMember { group: "g".into(), member: "m".into() };
        assert_eq!(decode_value(&key, &[0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]), None);
        assert_eq!(decode_value(&key, &[0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), None);
        let key = RecordKey::RegularExpression { group: "g".into(), regex: "r".into() };
        assert_eq!(decode_value(&key, &[0, 0, 2, 0xff, 0xff, 0xff, 0x7f, b'x']), None);
        let mut state = 0x9e37_79b9_u32;
        for len in 0..200 {
            let garbage: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state as u8
                })
                .collect();
            let _ = decode_key(&garbage);
            for (key, _) in samples() {
                let _ = decode_value(&key, &garbage);
            }
        }
    }
}
