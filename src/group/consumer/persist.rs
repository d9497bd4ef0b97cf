//! A consumer group as its records in `__consumer_offsets` describe it ([`Image`]), how a live
//! group becomes one ([`ConsumerGroup::image`]), and back ([`ConsumerGroup::restore`]).
//!
//! The coordinator keeps, per group, the image it last wrote. After anything that may change
//! a group it builds the group's image again and appends only the difference
//! ([`Image::diff`]): values for records that are new or changed, tombstones for records that
//! are gone. A heartbeat that changes nothing therefore writes nothing, and no code path has to
//! remember which records it touched. Replay folds the log's records into an image per group
//! ([`Image::apply`]) and restores the group from it.
//!
//! What is not in the records comes back fresh: members' session deadlines start at the
//! restore, and a member still revoking partitions gets a new rebalance deadline; the topics'
//! partition counts are looked up again at the next heartbeat and compared with the stored
//! metadata hash, so an unchanged cluster does not bump the group epoch.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use uuid::Uuid;

use super::records::{
    encode_key, encode_value, ClassicMemberMetadata, CurrentMemberAssignmentValue, GroupMetadataValue,
    MemberMetadataValue, RecordKey, RecordValue, RegularExpressionValue, TargetAssignmentMemberValue,
    TargetAssignmentMetadataValue, TopicPartitions,
};
use super::topic_regex::TopicRegex;
use super::{
    normalized, Assignment, ClassicMember, ConsumerConfig, ConsumerGroup, ConsumerMember, MemberState, ResolvedRegex,
    TopicNames,
};

/// The records of one consumer group, by key, as typed values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Image {
    pub group: Option<GroupMetadataValue>,
    pub target_epoch: Option<TargetAssignmentMetadataValue>,
    pub members: BTreeMap<String, MemberMetadataValue>,
    pub targets: BTreeMap<String, TargetAssignmentMemberValue>,
    pub current: BTreeMap<String, CurrentMemberAssignmentValue>,
    pub regexes: BTreeMap<String, RegularExpressionValue>,
}

/// A record to append: key and value bytes, `None` for a tombstone.
pub type Record = (Vec<u8>, Option<Vec<u8>>);

impl Image {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Folds one record read back from the log into the image (`None`: a tombstone). A
    /// tombstone of the group's metadata forgets the whole group, as Kafka's replay does.
    pub fn apply(&mut self, key: &RecordKey, value: Option<RecordValue>) {
        use RecordKey as K;
        use RecordValue as V;
        match (key, value) {
            (K::GroupMetadata { .. }, Some(V::GroupMetadata(v))) => self.group = Some(v),
            (K::GroupMetadata { .. }, None) => *self = Self::default(),
            (K::TargetAssignmentMetadata { .. }, Some(V::TargetAssignmentMetadata(v))) => self.target_epoch = Some(v),
            (K::TargetAssignmentMetadata { .. }, None) => self.target_epoch = None,
            (K::MemberMetadata { member, .. }, Some(V::MemberMetadata(v))) => {
                self.members.insert(member.clone(), v);
            }
            (K::MemberMetadata { member, .. }, None) => {
                self.members.remove(member);
            }
            (K::TargetAssignmentMember { member, .. }, Some(V::TargetAssignmentMember(v))) => {
                self.targets.insert(member.clone(), v);
            }
            (K::TargetAssignmentMember { member, .. }, None) => {
                self.targets.remove(member);
            }
            (K::CurrentMemberAssignment { member, .. }, Some(V::CurrentMemberAssignment(v))) => {
                self.current.insert(member.clone(), v);
            }
            (K::CurrentMemberAssignment { member, .. }, None) => {
                self.current.remove(member);
            }
            (K::RegularExpression { regex, .. }, Some(V::RegularExpression(v))) => {
                self.regexes.insert(regex.clone(), v);
            }
            (K::RegularExpression { regex, .. }, None) => {
                self.regexes.remove(regex);
            }
            // `decode_value` picks the value's variant from the key: no other pairs occur.
            _ => {}
        }
    }

    /// The records that turn `self` (what the log holds) into `new`, in Kafka's order: a
    /// removed member's current assignment, target and metadata tombstones first; then new or
    /// changed member metadata, regexes, group epoch, targets, assignment epoch and current
    /// assignments; a deleted group's assignment-epoch and group tombstones last.
    pub fn diff(&self, group: &str, new: &Image) -> Vec<Record> {
        let mut out = Vec::new();
        let g = || group.to_string();
        let mut put = |key: RecordKey, value: Option<RecordValue>| {
            out.push((encode_key(&key), value.map(|v| encode_value(&v))));
        };
        for member in gone(&self.current, &new.current) {
            put(RecordKey::CurrentMemberAssignment { group: g(), member: member.clone() }, None);
        }
        for member in gone(&self.targets, &new.targets) {
            put(RecordKey::TargetAssignmentMember { group: g(), member: member.clone() }, None);
        }
        for member in gone(&self.members, &new.members) {
            put(RecordKey::MemberMetadata { group: g(), member: member.clone() }, None);
        }
        for regex in gone(&self.regexes, &new.regexes) {
            put(RecordKey::RegularExpression { group: g(), regex: regex.clone() }, None);
        }
        for (member, v) in changed(&self.members, &new.members) {
            put(RecordKey::MemberMetadata { group: g(), member: member.clone() }, Some(RecordValue::MemberMetadata(v)));
        }
        for (regex, v) in changed(&self.regexes, &new.regexes) {
            put(
                RecordKey::RegularExpression { group: g(), regex: regex.clone() },
                Some(RecordValue::RegularExpression(v)),
            );
        }
        if let Some(v) = new.group.as_ref().filter(|v| self.group.as_ref() != Some(*v)) {
            put(RecordKey::GroupMetadata { group: g() }, Some(RecordValue::GroupMetadata(v.clone())));
        }
        for (member, v) in changed(&self.targets, &new.targets) {
            put(
                RecordKey::TargetAssignmentMember { group: g(), member: member.clone() },
                Some(RecordValue::TargetAssignmentMember(v)),
            );
        }
        if let Some(v) = new.target_epoch.as_ref().filter(|v| self.target_epoch.as_ref() != Some(*v)) {
            put(
                RecordKey::TargetAssignmentMetadata { group: g() },
                Some(RecordValue::TargetAssignmentMetadata(v.clone())),
            );
        }
        for (member, v) in changed(&self.current, &new.current) {
            put(
                RecordKey::CurrentMemberAssignment { group: g(), member: member.clone() },
                Some(RecordValue::CurrentMemberAssignment(v)),
            );
        }
        if self.target_epoch.is_some() && new.target_epoch.is_none() {
            put(RecordKey::TargetAssignmentMetadata { group: g() }, None);
        }
        if self.group.is_some() && new.group.is_none() {
            put(RecordKey::GroupMetadata { group: g() }, None);
        }
        out
    }

    /// Every record of the image, as values (what a compaction writes).
    pub fn records(&self, group: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        Image::default().diff(group, self).into_iter().filter_map(|(k, v)| Some((k, v?))).collect()
    }
}

fn gone<'a, V>(old: &'a BTreeMap<String, V>, new: &'a BTreeMap<String, V>) -> impl Iterator<Item = &'a String> {
    old.keys().filter(|k| !new.contains_key(*k))
}

fn changed<'a, V: PartialEq + Clone>(
    old: &'a BTreeMap<String, V>,
    new: &'a BTreeMap<String, V>,
) -> impl Iterator<Item = (&'a String, V)> {
    new.iter().filter(|(k, v)| old.get(*k) != Some(*v)).map(|(k, v)| (k, v.clone()))
}

fn state_byte(s: MemberState) -> i8 {
    match s {
        MemberState::Stable => 0,
        MemberState::UnrevokedPartitions => 1,
        MemberState::UnreleasedPartitions => 2,
    }
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

/// Topic ids to names, each id asked of the cluster once.
struct Names<'a> {
    cluster: &'a dyn TopicNames,
    seen: HashMap<Uuid, Option<String>>,
    ids: BTreeMap<String, Uuid>,
}

impl Names<'_> {
    /// By name; partitions of topics that no longer exist are dropped (Kafka does the same
    /// with ids it cannot resolve).
    fn assignment(&mut self, tps: &[TopicPartitions]) -> Assignment {
        let mut out = Assignment::new();
        for tp in tps {
            let cluster = self.cluster;
            let name = self.seen.entry(tp.topic_id).or_insert_with(|| cluster.topic_name(&tp.topic_id)).clone();
            if let Some(name) = name {
                self.ids.insert(name.clone(), tp.topic_id);
                out.entry(name).or_default().extend(tp.partitions.iter().copied());
            }
        }
        normalized(out)
    }
}

impl ConsumerGroup {
    /// The group as records. `written` is what the log holds: a regex whose topics did not
    /// change keeps its version and timestamp from there; a changed one gets the next version
    /// and `now_ms` (gregor counts resolutions; Kafka stores its metadata image's offset).
    pub fn image(&self, written: &Image, now_ms: i64) -> Image {
        if self.group_epoch == 0 && self.members.is_empty() {
            // Created by a refused first heartbeat: nothing happened that is worth a record.
            return Image::default();
        }
        let by_id = |a: &Assignment| -> Vec<TopicPartitions> {
            a.iter()
                .filter_map(|(t, ps)| {
                    Some(TopicPartitions {
                        topic_id: *self.topic_ids.get(t)?,
                        partitions: ps.iter().copied().collect(),
                    })
                })
                .collect()
        };
        let members = self
            .members
            .values()
            .map(|m| {
                let v = MemberMetadataValue {
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    subscribed_topic_names: m.subscribed.iter().cloned().collect(),
                    subscribed_topic_regex: m.subscribed_regex.clone(),
                    rebalance_timeout_ms: millis(m.rebalance_timeout),
                    server_assignor: m.server_assignor.clone(),
                    classic: m.classic.as_ref().map(|c| ClassicMemberMetadata {
                        session_timeout_ms: millis(c.session_timeout),
                        supported_protocols: c.protocols.iter().map(|(n, m)| (n.clone(), m.to_vec())).collect(),
                    }),
                };
                (m.member_id.clone(), v)
            })
            .collect();
        let current = self
            .members
            .values()
            .map(|m| {
                let v = CurrentMemberAssignmentValue {
                    member_epoch: m.member_epoch,
                    previous_member_epoch: m.previous_member_epoch,
                    state: state_byte(m.state),
                    assigned_partitions: by_id(&m.assigned),
                    partitions_pending_revocation: by_id(&m.pending_revocation),
                };
                (m.member_id.clone(), v)
            })
            .collect();
        let targets = self
            .target
            .iter()
            .filter(|(id, _)| self.members.contains_key(*id))
            .map(|(id, a)| (id.clone(), TargetAssignmentMemberValue { topic_partitions: by_id(a) }))
            .collect();
        let regexes = self
            .resolved_regexes
            .iter()
            .map(|(source, r)| {
                let topics: Vec<String> = r.topics.iter().cloned().collect();
                let v = match written.regexes.get(source) {
                    Some(w) if w.topics == topics => w.clone(),
                    Some(w) => RegularExpressionValue { topics, version: w.version + 1, timestamp: now_ms },
                    None => RegularExpressionValue { topics, version: 1, timestamp: now_ms },
                };
                (source.clone(), v)
            })
            .collect();
        Image {
            group: Some(GroupMetadataValue { epoch: self.group_epoch, metadata_hash: self.metadata_hash }),
            target_epoch: Some(TargetAssignmentMetadataValue { assignment_epoch: self.assignment_epoch }),
            members,
            targets,
            current,
            regexes,
        }
    }

    /// The group an image describes, `None` without its group metadata record (deleted, or
    /// only stray member records). Members get a fresh session from `now`.
    pub fn restore(
        group_id: &str,
        image: &Image,
        topics: &dyn TopicNames,
        cfg: &ConsumerConfig,
        now: Instant,
    ) -> Option<ConsumerGroup> {
        let meta = image.group.as_ref()?;
        let mut g = ConsumerGroup::new(group_id);
        g.group_epoch = meta.epoch;
        g.metadata_hash = meta.metadata_hash;
        g.assignment_epoch = image.target_epoch.as_ref().map_or(0, |t| t.assignment_epoch);
        let mut names = Names { cluster: topics, seen: HashMap::new(), ids: BTreeMap::new() };
        for (id, v) in &image.members {
            let current = image.current.get(id);
            let state = match current.map(|c| c.state) {
                Some(1) => MemberState::UnrevokedPartitions,
                Some(2) => MemberState::UnreleasedPartitions,
                _ => MemberState::Stable,
            };
            let rebalance_timeout = Duration::from_millis(u64::try_from(v.rebalance_timeout_ms).unwrap_or(0));
            let (assigned, pending_revocation) = match current {
                Some(c) => {
                    (names.assignment(&c.assigned_partitions), names.assignment(&c.partitions_pending_revocation))
                }
                None => (Assignment::new(), Assignment::new()),
            };
            if let Some(instance) = &v.instance_id {
                g.static_members.insert(instance.clone(), id.clone());
            }
            let classic = v.classic.as_ref().map(|c| {
                let protocols =
                    c.supported_protocols.iter().map(|(n, m)| (n.clone(), Bytes::from(m.clone()))).collect();
                ClassicMember::new(Duration::from_millis(u64::try_from(c.session_timeout_ms).unwrap_or(0)), protocols)
            });
            g.members.insert(
                id.clone(),
                ConsumerMember {
                    member_id: id.clone(),
                    instance_id: v.instance_id.clone(),
                    rack_id: v.rack_id.clone(),
                    client_id: v.client_id.clone(),
                    client_host: v.client_host.clone(),
                    member_epoch: current.map_or(0, |c| c.member_epoch),
                    previous_member_epoch: current.map_or(-1, |c| c.previous_member_epoch),
                    state,
                    rebalance_timeout,
                    subscribed: v.subscribed_topic_names.iter().cloned().collect::<BTreeSet<_>>(),
                    subscribed_regex: v.subscribed_topic_regex.clone().filter(|r| !r.is_empty()),
                    server_assignor: v.server_assignor.clone(),
                    assigned,
                    pending_revocation,
                    session_deadline: now + classic.as_ref().map_or(cfg.session_timeout, |c| c.session_timeout),
                    classic,
                    rebalance_deadline: (state == MemberState::UnrevokedPartitions).then(|| now + rebalance_timeout),
                },
            );
        }
        for (id, t) in &image.targets {
            if g.members.contains_key(id) {
                g.target.insert(id.clone(), names.assignment(&t.topic_partitions));
            }
        }
        for (source, v) in &image.regexes {
            match TopicRegex::compile(source) {
                Ok(regex) => {
                    g.resolved_regexes
                        .insert(source.clone(), ResolvedRegex { regex, topics: v.topics.iter().cloned().collect() });
                }
                Err(why) => tracing::warn!(group = group_id, regex = %source, %why, "a stored regex does not compile"),
            }
        }
        g.prune_regexes();
        g.topic_ids = names.ids;
        Some(g)
    }
}
