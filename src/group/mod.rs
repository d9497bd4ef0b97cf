//! The group coordinator for the classic consumer group protocol.
//!
//! [`GroupCoordinator`] owns every group (a [`rebalance::Group`] state machine behind its own
//! lock, plus its committed offsets) and the internal `__consumer_offsets` log where offsets are
//! persisted and from which they are replayed at start. Group membership itself is not
//! persisted: after a restart, members find their member ids unknown and rejoin, as they do
//! when a Kafka coordinator moves. Locks are never held across an await.

pub mod member;
pub mod metadata_record;
pub mod offsets;
pub mod rebalance;
pub mod state;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use parking_lot::{Mutex, RwLock};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::log::{batch, LogManager, PartitionConfig, PartitionLog, TopicPartition};
pub use offsets::CommittedOffset;
use rebalance::Group;
pub use rebalance::{JoinParams, RebalanceConfig, Waiting};
pub use state::GroupState;

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// `__consumer_offsets` is compacted at start once it is larger than this, by default.
pub const CHECKPOINT_BYTES: u64 = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("the member id is not known to the group")]
    UnknownMemberId,
    #[error("the generation is not the group's current one")]
    IllegalGeneration,
    #[error("the group is rebalancing")]
    RebalanceInProgress,
    #[error("the protocol type or protocols do not match the group's")]
    InconsistentGroupProtocol,
    #[error("the session timeout is outside the broker's allowed range")]
    InvalidSessionTimeout,
    #[error("rejoin with the member id {0}")]
    MemberIdRequired(String),
    #[error("another member with the same group.instance.id replaced this one")]
    FencedInstanceId,
    #[error("the group does not exist")]
    GroupIdNotFound,
    #[error("the group still has members")]
    NonEmptyGroup,
    #[error("the group id is empty")]
    InvalidGroupId,
    #[error("the group is being removed")]
    CoordinatorNotAvailable,
    #[error("the group has reached group.max.size members")]
    GroupMaxSizeReached,
    #[error("the topic or partition does not exist")]
    UnknownTopicOrPartition,
    #[error("the offset metadata is longer than offset.metadata.max.bytes")]
    OffsetMetadataTooLarge,
    #[error("the group's members subscribe to this topic")]
    GroupSubscribedToTopic,
    #[error("storage error: {0}")]
    Storage(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct JoinedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JoinResult {
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader_id: String,
    pub member_id: String,
    /// Everyone's metadata for the chosen protocol, for the leader only.
    pub members: Vec<JoinedMember>,
    /// The leader need not compute an assignment: the group stays in its current generation
    /// (a static leader rejoining a Stable group, KIP-345 / JoinGroup v9 `SkipAssignment`).
    pub skip_assignment: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SyncResult {
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol_name: String,
    pub members: Vec<MemberDescription>,
}

#[derive(Debug, Clone)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

/// Settings of the coordinator (Kafka's group.* and offsets.* broker configs).
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    pub rebalance: RebalanceConfig,
    pub offsets_retention: Duration,
    pub offset_metadata_max_bytes: usize,
    /// Compact `__consumer_offsets` at start once it is larger than this.
    pub checkpoint_bytes: u64,
}

#[derive(Debug)]
struct GroupEntry {
    group: Group,
    offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// Wall-clock time the group last had no members, for offset expiry.
    empty_since_ms: i64,
}

impl GroupEntry {
    fn new(id: &str, now_ms: i64) -> Self {
        Self { group: Group::new(id), offsets: BTreeMap::new(), empty_since_ms: now_ms }
    }
}

#[derive(Debug)]
pub struct GroupCoordinator {
    groups: RwLock<HashMap<String, Arc<Mutex<GroupEntry>>>>,
    log: Arc<PartitionLog>,
    cfg: CoordinatorConfig,
}

/// What a committed offset becomes in the log, and what the caller must wait for.
pub struct CommitOutcome {
    pub results: Vec<Result<(), GroupError>>,
    /// Offset the offsets log must be durable up to before answering.
    pub durable_at: Option<(Arc<PartitionLog>, i64)>,
}

impl GroupCoordinator {
    /// Opens `__consumer_offsets` and replays every committed offset.
    pub fn open(logs: &LogManager, cfg: CoordinatorConfig, now_ms: i64) -> io::Result<Self> {
        let pc = PartitionConfig {
            segment_bytes: 100 << 20,
            segment_ms: 7 * 24 * 3600 * 1000,
            index_interval_bytes: 4096,
            max_message_bytes: 1 << 20,
            retention_ms: -1,
            retention_bytes: -1,
            log_append_time: false,
            flush_interval_messages: None,
            compact: false,
            // Nothing reads this log through the high watermark; commits wait for their own
            // fsync (`CommitOutcome::durable_at`) before they are answered.
            durable: false,
        };
        let log = logs.open(TopicPartition::new(OFFSETS_TOPIC, 0), pc, now_ms)?;
        let coordinator = Self { groups: RwLock::new(HashMap::new()), log, cfg };
        let kept = coordinator.replay(now_ms)?;
        coordinator.checkpoint(now_ms, &kept)?;
        Ok(coordinator)
    }

    /// Rebuilds groups and committed offsets from the log. Returns the records it could not
    /// understand (a key or value version gregor does not know, e.g. written by a newer
    /// release or by Kafka itself), latest per key: they changed nothing, are reported, and
    /// must survive the start-time compaction. Only a null value (tombstone) deletes.
    fn replay(&self, now_ms: i64) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut not_understood: indexmap::IndexMap<Vec<u8>, Vec<u8>> = indexmap::IndexMap::new();
        let started = std::time::Instant::now();
        let mut offset = self.log.offsets().log_start_offset;
        let mut records = 0usize;
        let mut group_records: HashMap<String, metadata_record::GroupRecord> = HashMap::new();
        let mut groups = self.groups.write();
        loop {
            let chunk = match self.log.read(offset, 1 << 20, true) {
                Ok(r) => r.records,
                Err(crate::log::ReadError::Io(e)) => return Err(e),
                // Replaying past it would silently drop every commit after it.
                Err(e @ crate::log::ReadError::Corrupt { .. }) => {
                    return Err(io::Error::other(format!("cannot replay {OFFSETS_TOPIC}: {e}")))
                }
                Err(crate::log::ReadError::OffsetOutOfRange { .. }) => break,
            };
            if chunk.is_empty() {
                break;
            }
            let mut rest = &chunk[..];
            while let Some((_, len)) = batch::peek_len(rest) {
                let Some(bytes) = rest.get(..len) else { break };
                let header = batch::BatchHeader::parse(bytes);
                let replayed = batch::with_records(bytes, |recs| {
                    for r in recs {
                        let Some(key) = r.key else { continue };
                        let understood = if let Some(group) = metadata_record::decode_key(key) {
                            match r.value.map(metadata_record::decode_value) {
                                None => {
                                    group_records.remove(&group);
                                    true
                                }
                                Some(Some(rec)) => {
                                    group_records.insert(group, rec);
                                    true
                                }
                                Some(None) => false,
                            }
                        } else if let Some((group, topic, partition)) = offsets::decode_key(key) {
                            match r.value.map(offsets::decode_value) {
                                Some(None) => false,
                                value => {
                                    let entry = groups
                                        .entry(group.clone())
                                        .or_insert_with(|| Arc::new(Mutex::new(GroupEntry::new(&group, now_ms))));
                                    let mut entry = entry.lock();
                                    match value.flatten() {
                                        Some(v) => entry.offsets.insert((topic, partition), v),
                                        None => entry.offsets.remove(&(topic, partition)),
                                    };
                                    true
                                }
                            }
                        } else {
                            false
                        };
                        records += 1;
                        if understood {
                            // A later understood record for the key supersedes what was kept.
                            not_understood.shift_remove(key);
                            continue;
                        }
                        warn!(offset = r.offset, key_version = version_of(Some(key)), value_version = version_of(r.value),
                            "{OFFSETS_TOPIC} holds a record gregor does not understand; keeping it and changing nothing");
                        match r.value {
                            Some(v) => {
                                not_understood.insert(key.to_vec(), v.to_vec());
                            }
                            None => {
                                not_understood.shift_remove(key);
                            }
                        }
                    }
                });
                if let Err(e) = replayed {
                    return Err(io::Error::other(format!(
                        "cannot read the records of {OFFSETS_TOPIC} at offset {offset}: {e}"
                    )));
                }
                if let Some(h) = header {
                    offset = h.last_offset() + 1;
                }
                rest = &rest[len..];
            }
        }
        let now = Instant::now();
        for (id, rec) in group_records {
            let group = Group::restore(&id, &rec, now);
            if group.state == GroupState::Empty && !groups.contains_key(&id) {
                continue;
            }
            let entry = groups.entry(id.clone()).or_insert_with(|| Arc::new(Mutex::new(GroupEntry::new(&id, now_ms))));
            entry.lock().group = group;
        }
        groups.retain(|_, e| {
            let e = e.lock();
            !e.offsets.is_empty() || !e.group.is_empty()
        });
        if records > 0 {
            info!(
                groups = groups.len(),
                records,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "replayed committed offsets"
            );
        }
        Ok(not_understood.into_iter().collect())
    }

    /// Compacts `__consumer_offsets` at start, when it has grown past `checkpoint_bytes`:
    /// the live state (every committed offset and group record) is written as the first
    /// batches of a new segment, and every older segment is deleted. Replay from the new log
    /// start yields the same state. Runs before the broker serves, so nothing races it.
    fn checkpoint(&self, now_ms: i64, kept: &[(Vec<u8>, Vec<u8>)]) -> io::Result<()> {
        if self.log.size_bytes() < self.cfg.checkpoint_bytes {
            return Ok(());
        }
        let mut records: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for entry in self.groups.read().values() {
            let e = entry.lock();
            let id = &e.group.group_id;
            if !e.group.is_empty() {
                records
                    .push((metadata_record::encode_key(id), metadata_record::encode_value(&e.group.to_record(now_ms))));
            }
            for ((t, p), o) in &e.offsets {
                records.push((offsets::encode_key(id, t, *p), offsets::encode_value(o)));
            }
        }
        // Records gregor could not understand come last, as they were the latest for their keys.
        records.extend(kept.iter().cloned());
        let before = self.log.size_bytes();
        self.log.roll(now_ms)?;
        let start = self.log.offsets().log_end_offset;
        for chunk in records.chunks(1000) {
            let kvs: Vec<batch::KeyValue<'_>> = chunk.iter().map(|(k, v)| (Some(&k[..]), Some(&v[..]))).collect();
            self.log.append(&batch::build(&kvs, now_ms), now_ms).map_err(|e| io::Error::other(e.to_string()))?;
        }
        self.log.flush_blocking()?;
        let deleted = self.log.delete_segments_before(start)?;
        info!(
            records = records.len(),
            bytes_before = before,
            bytes_after = self.log.size_bytes(),
            segments_deleted = deleted,
            "compacted {OFFSETS_TOPIC}"
        );
        Ok(())
    }

    fn entry(&self, group_id: &str) -> Option<Arc<Mutex<GroupEntry>>> {
        self.groups.read().get(group_id).cloned()
    }

    fn entry_or_create(&self, group_id: &str) -> Arc<Mutex<GroupEntry>> {
        if let Some(e) = self.entry(group_id) {
            return e;
        }
        let now_ms = crate::clock::now_ms();
        self.groups
            .write()
            .entry(group_id.to_string())
            .or_insert_with(|| Arc::new(Mutex::new(GroupEntry::new(group_id, now_ms))))
            .clone()
    }

    pub fn join(&self, group_id: &str, params: JoinParams, now: Instant) -> Waiting<JoinResult> {
        if group_id.is_empty() {
            return Waiting::Ready(Err(GroupError::InvalidGroupId));
        }
        let entry = self.entry_or_create(group_id);
        let mut entry = entry.lock();
        let outcome = entry.group.join(params, now, &self.cfg.rebalance);
        self.persist_if_dirty(&mut entry);
        outcome
    }

    pub fn sync(
        &self,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Waiting<SyncResult> {
        match self.entry(group_id) {
            None => Waiting::Ready(Err(GroupError::UnknownMemberId)),
            Some(e) => {
                let mut e = e.lock();
                let outcome = e.group.sync(member_id, instance, generation, assignments, now);
                self.persist_if_dirty(&mut e);
                outcome
            }
        }
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), GroupError> {
        match self.entry(group_id) {
            None => Err(GroupError::UnknownMemberId),
            Some(e) => e.lock().group.heartbeat(member_id, instance, generation, now),
        }
    }

    pub fn leave(
        &self,
        group_id: &str,
        leaving: &[(String, Option<String>)],
        now: Instant,
    ) -> Result<Vec<Result<String, GroupError>>, GroupError> {
        let entry = self.entry(group_id).ok_or(GroupError::UnknownMemberId)?;
        let mut entry = entry.lock();
        let results = entry.group.leave(leaving, now);
        self.persist_if_dirty(&mut entry);
        if entry.group.is_empty() {
            entry.empty_since_ms = crate::clock::now_ms();
        }
        Ok(results)
    }

    /// Validates and records committed offsets; the caller waits for `durable_at` before
    /// answering. `known_partition` tells whether a topic partition exists.
    pub fn commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        offsets: Vec<(String, i32, CommittedOffset)>,
        known_partition: impl Fn(&str, i32) -> bool,
    ) -> Result<CommitOutcome, GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        let entry = self.entry_or_create(group_id);
        let mut entry = entry.lock();
        entry.group.check_commit(member_id, instance, generation)?;
        let results: Vec<Result<(), GroupError>> = offsets
            .iter()
            .map(|(topic, partition, o)| {
                if o.metadata.len() > self.cfg.offset_metadata_max_bytes {
                    Err(GroupError::OffsetMetadataTooLarge)
                } else if !known_partition(topic, *partition) {
                    Err(GroupError::UnknownTopicOrPartition)
                } else {
                    Ok(())
                }
            })
            .collect();
        let accepted: Vec<&(String, i32, CommittedOffset)> =
            offsets.iter().zip(&results).filter(|(_, r)| r.is_ok()).map(|(o, _)| o).collect();
        if accepted.is_empty() {
            return Ok(CommitOutcome { results, durable_at: None });
        }
        let keys: Vec<(Vec<u8>, Vec<u8>)> =
            accepted.iter().map(|(t, p, o)| (offsets::encode_key(group_id, t, *p), offsets::encode_value(o))).collect();
        let end = self.append(&keys.iter().map(|(k, v)| (Some(&k[..]), Some(&v[..]))).collect::<Vec<_>>())?;
        for (t, p, o) in accepted {
            entry.offsets.insert((t.clone(), *p), o.clone());
        }
        Ok(CommitOutcome { results, durable_at: Some((self.log.clone(), end)) })
    }

    /// Writes the group's metadata record once it reached Stable or Empty. A failed write only
    /// costs a rebalance after a restart, so it is logged and not reported to the member.
    fn persist_if_dirty(&self, e: &mut GroupEntry) {
        if !e.group.take_dirty() {
            return;
        }
        let key = metadata_record::encode_key(&e.group.group_id);
        let value = metadata_record::encode_value(&e.group.to_record(crate::clock::now_ms()));
        if let Err(err) = self.append(&[(Some(&key[..]), Some(&value[..]))]) {
            warn!(group = %e.group.group_id, error = %err, "cannot persist group metadata");
        }
    }

    /// Writes null-valued records for the given keys, deleting those offsets on replay.
    fn append_tombstones(&self, keys: &[Vec<u8>]) -> Result<i64, GroupError> {
        self.append(&keys.iter().map(|k| (Some(&k[..]), None)).collect::<Vec<_>>())
    }

    fn append(&self, records: &[batch::KeyValue<'_>]) -> Result<i64, GroupError> {
        let bytes = batch::build(records, crate::clock::now_ms());
        let info = self.log.append(&bytes, crate::clock::now_ms()).map_err(|e| {
            warn!(error = %e, "cannot write to {OFFSETS_TOPIC}");
            GroupError::Storage(e.to_string())
        })?;
        Ok(info.last_offset + 1)
    }

    /// Committed offsets of a group: all of them (`None`), or the requested partitions, with
    /// `None` for partitions without a commit.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        wanted: Option<&[(String, Vec<i32>)]>,
    ) -> Vec<(String, i32, Option<CommittedOffset>)> {
        let entry = self.entry(group_id);
        let entry = entry.as_ref().map(|e| e.lock());
        match wanted {
            None => entry
                .map(|e| e.offsets.iter().map(|((t, p), o)| (t.clone(), *p, Some(o.clone()))).collect())
                .unwrap_or_default(),
            Some(list) => list
                .iter()
                .flat_map(|(t, parts)| parts.iter().map(move |p| (t, *p)))
                .map(|(t, p)| (t.clone(), p, entry.as_ref().and_then(|e| e.offsets.get(&(t.clone(), p)).cloned())))
                .collect(),
        }
    }

    /// (group id, protocol type, state) of every group.
    pub fn list(&self) -> Vec<(String, String, GroupState)> {
        let groups: Vec<_> = self.groups.read().values().cloned().collect();
        let mut out: Vec<_> = groups
            .iter()
            .map(|e| {
                let e = e.lock();
                (e.group.group_id.clone(), e.group.protocol_type.clone().unwrap_or_default(), e.group.state)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        let entry = self.entry(group_id)?;
        let e = entry.lock();
        let g = &e.group;
        let protocol = g.protocol_name.clone().unwrap_or_default();
        let show_members =
            matches!(g.state, GroupState::Stable | GroupState::CompletingRebalance | GroupState::PreparingRebalance);
        Some(GroupDescription {
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol_name: if g.state == GroupState::Stable { protocol.clone() } else { String::new() },
            members: if show_members {
                g.members
                    .values()
                    .map(|m| MemberDescription {
                        member_id: m.member_id.clone(),
                        group_instance_id: m.group_instance_id.clone(),
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        metadata: if g.state == GroupState::Stable { m.metadata_for(&protocol) } else { Bytes::new() },
                        assignment: if g.state == GroupState::Stable { m.assignment.clone() } else { Bytes::new() },
                    })
                    .collect()
            } else {
                Vec::new()
            },
        })
    }

    /// Deletes groups that have no members, with their offsets.
    pub fn delete_group(&self, group_id: &str) -> Result<(), GroupError> {
        let entry = self.entry(group_id).ok_or(GroupError::GroupIdNotFound)?;
        let mut e = entry.lock();
        if !e.group.is_empty() {
            return Err(GroupError::NonEmptyGroup);
        }
        let mut tombstones: Vec<Vec<u8>> =
            e.offsets.keys().map(|(t, p)| offsets::encode_key(group_id, t, *p)).collect();
        tombstones.push(metadata_record::encode_key(group_id));
        self.append_tombstones(&tombstones)?;
        e.offsets.clear();
        e.group.mark_dead();
        drop(e);
        self.groups.write().remove(group_id);
        Ok(())
    }

    /// OffsetDelete: removes committed offsets unless members subscribe to the topic.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        let entry = self.entry(group_id).ok_or(GroupError::GroupIdNotFound)?;
        let mut e = entry.lock();
        let subscribed: Vec<String> = if e.group.protocol_type.as_deref() == Some("consumer") {
            e.group
                .members
                .values()
                .flat_map(|m| subscribed_topics(&m.metadata_for(e.group.protocol_name.as_deref().unwrap_or_default())))
                .collect()
        } else {
            Vec::new()
        };
        let results: Vec<Result<(), GroupError>> = partitions
            .iter()
            .map(|(t, _)| if subscribed.contains(t) { Err(GroupError::GroupSubscribedToTopic) } else { Ok(()) })
            .collect();
        let tombstones: Vec<Vec<u8>> = partitions
            .iter()
            .zip(&results)
            .filter(|((t, p), r)| r.is_ok() && e.offsets.contains_key(&(t.clone(), *p)))
            .map(|((t, p), _)| offsets::encode_key(group_id, t, *p))
            .collect();
        if !tombstones.is_empty() {
            self.append_tombstones(&tombstones)?;
        }
        for ((t, p), r) in partitions.iter().zip(&results) {
            if r.is_ok() {
                e.offsets.remove(&(t.clone(), *p));
            }
        }
        Ok(results)
    }

    /// Drives timers of every group and expires offsets of groups that stayed empty longer than
    /// `offsets.retention.minutes` (Kafka 2.1+ semantics).
    pub fn tick(&self, now: Instant, now_ms: i64) {
        let groups: Vec<_> = self.groups.read().values().cloned().collect();
        let retention_ms = self.cfg.offsets_retention.as_millis() as i64;
        let mut dead = Vec::new();
        for entry in groups {
            let mut e = entry.lock();
            let was_empty = e.group.is_empty();
            e.group.tick(now);
            self.persist_if_dirty(&mut e);
            if e.group.is_empty() && !was_empty {
                e.empty_since_ms = now_ms;
            }
            if e.group.is_empty() && e.group.state == GroupState::Empty {
                let expired: Vec<(String, i32)> = e
                    .offsets
                    .iter()
                    .filter(|(_, o)| now_ms - o.commit_timestamp.max(e.empty_since_ms) > retention_ms)
                    .map(|(k, _)| k.clone())
                    .collect();
                if !expired.is_empty() {
                    let keys: Vec<Vec<u8>> =
                        expired.iter().map(|(t, p)| offsets::encode_key(&e.group.group_id, t, *p)).collect();
                    if self.append_tombstones(&keys).is_ok() {
                        info!(group = %e.group.group_id, partitions = expired.len(), "expired committed offsets");
                        for k in expired {
                            e.offsets.remove(&k);
                        }
                    }
                }
                if e.offsets.is_empty() {
                    dead.push(e.group.group_id.clone());
                }
            }
        }
        if !dead.is_empty() {
            let mut groups = self.groups.write();
            for id in dead {
                let empty = groups.get(&id).is_some_and(|e| {
                    let e = e.lock();
                    e.group.is_empty() && e.offsets.is_empty() && e.group.state == GroupState::Empty
                });
                if empty {
                    groups.remove(&id);
                }
            }
        }
    }
}

/// Topics of a `consumer` protocol subscription (ConsumerProtocolSubscription, any version:
/// i16 version, then an array of topic names).
pub fn subscribed_topics(metadata: &[u8]) -> Vec<String> {
    let mut b = metadata;
    let mut out = Vec::new();
    let (Ok(_version), Ok(count)) = (b.try_get_i16(), b.try_get_i32()) else {
        return out;
    };
    for _ in 0..count.max(0).min(b.len() as i32 / 2) {
        let Ok(len) = b.try_get_i16() else { break };
        let Ok(len) = usize::try_from(len) else { break };
        let Some(name) = b.get(..len) else { break };
        out.push(String::from_utf8_lossy(name).into_owned());
        b.advance(len);
    }
    out
}

#[cfg(test)]
mod tests;

/// The schema version (first two bytes) of a record key or value, for log lines; -1 for null
/// or too short.
fn version_of(b: Option<&[u8]>) -> i16 {
    b.and_then(|b| b.get(..2)).map_or(-1, |v| i16::from_be_bytes([v[0], v[1]]))
}
