//! The group coordinator: the classic consumer group protocol, and KIP-848 `consumer` protocol
//! groups (`consumer`, with `consumer_membership`: ConsumerGroupHeartbeat and Describe).
//!
//! [`GroupCoordinator`] owns every group (a [`rebalance::Group`] state machine or a
//! [`consumer::ConsumerGroup`] behind its own lock, plus its committed offsets) and the
//! internal `__consumer_offsets` log where offsets and group state are persisted and from which
//! they are replayed at start: classic groups as Kafka's group metadata record (written when a
//! group reaches Stable or Empty), consumer groups as Kafka 4.1's consumer group records
//! (written whenever their state changes). Members carry on after a restart with their
//! generation or epoch. Writes happen under the group's lock, so the log holds a group's
//! changes in the order they were made; callers run off the async runtime. Locks are never held
//! across an await.
//!
//! The coordinator's five jobs live in their own files: `persistence` (replay and the offsets
//! log), `membership` (join, sync, heartbeat, leave), `committed` (offset commit, fetch,
//! delete), `admin` (list, describe, delete groups) and `expiry` (timers, offset retention).

mod admin;
mod committed;
pub mod consumer;
mod consumer_membership;
mod expiry;
mod flexible;
pub mod member;
mod membership;
pub mod metadata_record;
pub mod offsets;
mod persistence;
pub mod rebalance;
pub mod share;
pub mod state;
mod txn_offsets;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use parking_lot::{Mutex, RwLock};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::log::producer_state::ControlType;
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
    #[error("the producer epoch is older than the one this producer id has: it was fenced")]
    ProducerFenced,
    #[error("the member epoch is not the member's current one")]
    StaleMemberEpoch,
    #[error("storage error: {0}")]
    Storage(String),
}

impl From<consumer::CommitCheck> for GroupError {
    fn from(c: consumer::CommitCheck) -> Self {
        match c {
            consumer::CommitCheck::UnknownMemberId => GroupError::UnknownMemberId,
            consumer::CommitCheck::StaleMemberEpoch => GroupError::StaleMemberEpoch,
            consumer::CommitCheck::IllegalGeneration => GroupError::IllegalGeneration,
        }
    }
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

/// Who a SyncGroup comes from, as the request says.
#[derive(Debug, Clone, Copy)]
pub struct SyncRequest<'a> {
    pub member_id: &'a str,
    pub instance: Option<&'a str>,
    pub generation: i32,
    /// SyncGroup v5+: checked against the group's (INCONSISTENT_GROUP_PROTOCOL).
    pub protocol_type: Option<&'a str>,
    pub protocol_name: Option<&'a str>,
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
    /// Settings of `consumer` protocol (KIP-848) groups.
    pub consumer: consumer::ConsumerConfig,
}

/// A transaction's offsets: per (topic, partition), the offset and where its record is.
type PendingOffsets = BTreeMap<(String, i32), (CommittedOffset, i64)>;

#[derive(Debug)]
struct GroupEntry {
    group: Group,
    /// Set while the group id is a `consumer` protocol (KIP-848) group; `group` is then an
    /// empty classic group that only holds the id. A group id is one or the other; classic
    /// members of a consumer group are members of `consumer` (see `consumer::classic`).
    consumer: Option<consumer::ConsumerGroup>,
    offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// Where in `__consumer_offsets` each of `offsets` was written (the record's offset).
    written_at: HashMap<(String, i32), i64>,
    /// Offsets committed inside transactions that have not ended, per producer id, with where
    /// their records are.
    pending: BTreeMap<i64, PendingOffsets>,
    /// Wall-clock time the group last had no members, for offset expiry.
    empty_since_ms: i64,
    /// The consumer group's records as `__consumer_offsets` holds them (empty when none):
    /// what the next change is compared with to know what to append.
    consumer_written: consumer::persist::Image,
}

impl GroupEntry {
    fn new(id: &str, now_ms: i64) -> Self {
        Self {
            group: Group::new(id),
            consumer: None,
            offsets: BTreeMap::new(),
            written_at: HashMap::new(),
            pending: BTreeMap::new(),
            empty_since_ms: now_ms,
            consumer_written: consumer::persist::Image::default(),
        }
    }

    /// No members, of either protocol.
    fn is_empty(&self) -> bool {
        self.group.is_empty() && self.consumer.as_ref().is_none_or(consumer::ConsumerGroup::is_empty)
    }

    /// OffsetCommit's member check (TxnOffsetCommit's too), by the group's protocol.
    fn check_commit(&self, member_id: &str, instance: Option<&str>, generation: i32) -> Result<(), GroupError> {
        match &self.consumer {
            Some(c) => c.check_commit(member_id, generation).map_err(GroupError::from),
            None => self.group.check_commit(member_id, instance, generation),
        }
    }

    /// A plain commit of `key`, written at log offset `written_at`.
    fn set_offset(&mut self, key: (String, i32), o: CommittedOffset, written_at: i64) {
        self.written_at.insert(key.clone(), written_at);
        self.offsets.insert(key, o);
    }

    /// An offset committed in a transaction that has now committed. It applies unless the
    /// partition's current offset was written after it: Kafka's rule (4.1's
    /// `OffsetMetadataManager`), which makes the state the same whether or not compaction has
    /// removed the older of the two records since.
    fn apply_txn_offset(&mut self, key: (String, i32), o: CommittedOffset, written_at: i64) {
        if self.written_at.get(&key).is_none_or(|&current| current < written_at) || !self.offsets.contains_key(&key) {
            self.set_offset(key, o, written_at);
        }
    }

    /// Whether `key` has a committed offset or one pending in a transaction (either needs a
    /// tombstone to go).
    fn has_offset_or_pending(&self, key: &(String, i32)) -> bool {
        self.offsets.contains_key(key) || self.pending.values().any(|p| p.contains_key(key))
    }

    /// A tombstone for `key`: the committed offset goes, and so do the offsets open
    /// transactions hold for it (as in Kafka, so that replay agrees whatever compaction kept).
    fn remove_offset(&mut self, key: &(String, i32)) {
        self.offsets.remove(key);
        self.written_at.remove(key);
        for pending in self.pending.values_mut() {
            pending.remove(key);
        }
        self.pending.retain(|_, p| !p.is_empty());
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
