//! One `consumer` protocol group (KIP-848): members heartbeat with ConsumerGroupHeartbeat, the
//! coordinator computes the assignment, and each member is reconciled towards it one step per
//! heartbeat. Modelled on Kafka 4.1's `GroupMetadataManager.consumerGroupHeartbeat`,
//! `ConsumerGroup` and `CurrentAssignmentBuilder`.
//!
//! Epochs: the group epoch goes up whenever a member joins, leaves, is fenced or changes its
//! subscription, or the subscribed topics change partitions. The target assignment is computed
//! for the group epoch (its epoch is the assignment epoch) on the next heartbeat. A member's
//! epoch reaches the assignment epoch once it has revoked what the target takes from it.
//!
//! Invariants: a partition is in at most one member's `assigned ∪ pending_revocation`; a
//! partition another member still holds (assigned or pending revocation) is never handed to a
//! new owner — the new owner waits (UNRELEASED) until the old one acknowledges the revocation by
//! heartbeating without it. Everything here takes `now`; nothing reads a clock.
//!
//! Regex subscriptions (KIP-848 `SubscribedTopicRegex`, RE2/J syntax, whole-name match, see
//! [`topic_regex`]): a member subscribes to topic names, a regex, or both (the union, as Kafka's
//! `ConsumerTargetAssignmentBuilder`). A regex new to the group is compiled first (an invalid
//! one is INVALID_REGULAR_EXPRESSION and changes nothing); an empty regex is no regex. The group
//! keeps each regex in use with the topics it resolved to (Kafka's
//! `resolvedRegularExpressions`), from all existing topics, internal ones included, that the
//! heartbeating member may DESCRIBE. Kafka 4.1 refreshes them in the background at most every
//! 10 s and when topics were created, with the refreshing member's rights; gregor resolves them
//! again at every heartbeat of the group's members, synchronously, with that member's rights. A
//! changed resolution (a matching topic created or deleted) is a new group epoch, so the next
//! target assigns or drops its partitions.
//!
//! Matched: Kafka 4.1's `GroupMetadataManager` (`maybeUpdateRegularExpressions`,
//! `handleRegularExpressionsResult`), `TopicRegexResolver` and
//! `throwIfConsumerGroupHeartbeatRequestIsInvalid`.
//!
//! Persisted: the coordinator writes the group's state to `__consumer_offsets` as Kafka 4.1's
//! consumer group records ([`records`]: group epoch with metadata hash, members' metadata,
//! target assignment, members' current assignments, resolved regexes) whenever a heartbeat or a
//! timeout changes it, and restores the group from them at start ([`persist`]), so members
//! carry on with their epochs and assignments across a restart. Not persisted: session and
//! rebalance deadlines (they start again at the restore) and the subscribed topics' partition
//! counts (looked up again, and compared through the stored [`metadata_hash`]).

pub mod assignor;
pub mod classic;
pub mod embedded;
pub mod persist;
pub mod records;
pub mod topic_regex;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use tokio::time::Instant;

use assignor::AssignorMember;
pub use assignor::{Assignment, Assignor};
pub use classic::ClassicMember;
use topic_regex::TopicRegex;

/// A member leaves with this epoch.
pub const LEAVE_EPOCH: i32 = -1;
/// A static member leaves, expecting to come back, with this epoch.
pub const LEAVE_STATIC_EPOCH: i32 = -2;

/// Settings of consumer groups (Kafka's `group.consumer.*`).
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub session_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub max_size: usize,
    /// Whether groups change protocol while they have members (`group.consumer.migration.policy`).
    pub migration: MigrationPolicy,
}

/// Kafka's `group.consumer.migration.policy`: whether a classic group with members becomes a
/// consumer group when a `consumer` protocol member joins (upgrade), and whether a consumer
/// group whose last `consumer` protocol member leaves becomes a classic group again
/// (downgrade). Kafka 4.x's default is both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MigrationPolicy {
    Disabled,
    Upgrade,
    Downgrade,
    #[default]
    Bidirectional,
}

impl MigrationPolicy {
    /// By Kafka's name, any case.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "disabled" => Some(Self::Disabled),
            "upgrade" => Some(Self::Upgrade),
            "downgrade" => Some(Self::Downgrade),
            "bidirectional" => Some(Self::Bidirectional),
            _ => None,
        }
    }

    pub fn upgrades(self) -> bool {
        matches!(self, Self::Upgrade | Self::Bidirectional)
    }

    pub fn downgrades(self) -> bool {
        matches!(self, Self::Downgrade | Self::Bidirectional)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeartbeatError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    UnsupportedAssignor(String),
    #[error("{0}")]
    UnknownMemberId(String),
    #[error("{0}")]
    FencedMemberEpoch(String),
    #[error("{0}")]
    UnreleasedInstanceId(String),
    #[error("{0}")]
    GroupIdNotFound(String),
    #[error("{0}")]
    GroupMaxSizeReached(String),
    #[error("{0}")]
    FencedInstanceId(String),
    #[error("{0}")]
    InvalidRegularExpression(String),
}

/// What a heartbeat needs to know of the cluster's topics.
pub trait TopicSource {
    /// The id and partition count of an existing topic.
    fn topic(&self, name: &str) -> Option<(uuid::Uuid, i32)>;
    /// The names of all existing topics the heartbeating member may DESCRIBE: what its group's
    /// regexes resolve against. Asked only of groups with a regex subscription.
    fn describable_topics(&self) -> Vec<String>;
}

/// Topic names by id, as the cluster knows them when the coordinator restores groups.
pub trait TopicNames {
    fn topic_name(&self, id: &uuid::Uuid) -> Option<String>;
}

/// The reconciliation state of a member (Kafka's `MemberState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    Stable,
    /// Waits for the member to revoke `pending_revocation`.
    UnrevokedPartitions,
    /// Has partitions in its target that others still hold.
    UnreleasedPartitions,
}

#[derive(Debug, Clone)]
pub struct ConsumerMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: MemberState,
    pub rebalance_timeout: Duration,
    /// Subscribed topic names (Kafka's `subscribedTopicNames`).
    pub subscribed: BTreeSet<String>,
    /// Subscribed regex, never empty (Kafka's `subscribedTopicRegex`, "" meaning none).
    pub subscribed_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
    /// Set for a member that uses the classic protocol (JoinGroup, SyncGroup, Heartbeat) in
    /// this group, Kafka's `ClassicMemberMetadata`.
    pub classic: Option<ClassicMember>,
    session_deadline: Instant,
    /// Set while the member must revoke partitions: past it, the member is fenced.
    rebalance_deadline: Option<Instant>,
}

impl ConsumerMember {
    /// A member that joins now, in epoch 0, with nothing yet (the caller fills in the rest).
    fn joining(member_id: &str, now: Instant) -> Self {
        Self {
            member_id: member_id.to_string(),
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            member_epoch: 0,
            previous_member_epoch: -1,
            state: MemberState::Stable,
            rebalance_timeout: Duration::ZERO,
            subscribed: BTreeSet::new(),
            subscribed_regex: None,
            server_assignor: None,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
            classic: None,
            session_deadline: now,
            rebalance_deadline: None,
        }
    }
}

/// A ConsumerGroupHeartbeat as the group sees it: topics by name (the handler resolves ids).
#[derive(Debug, Clone, Default)]
pub struct HeartbeatParams {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    /// -1: unchanged.
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    /// `None`: unchanged; `Some("")`: no regex.
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// `None`: unchanged since the last heartbeat.
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatResult {
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// The member's assignment, when it must learn it (full request or a change).
    pub assignment: Option<Assignment>,
}

/// Kafka's consumer group states, as ListGroups and ConsumerGroupDescribe name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroupState {
    Empty,
    Assigning,
    Reconciling,
    Stable,
}

impl ConsumerGroupState {
    pub fn kafka_name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::Assigning => "Assigning",
            Self::Reconciling => "Reconciling",
            Self::Stable => "Stable",
        }
    }
}

/// Partition counts (and ids) of topics, as the group last computed its target with.
pub type TopicsMetadata = BTreeMap<String, (uuid::Uuid, i32)>;

/// A hash of the subscribed topics' metadata (name, id, partition count), 0 for none: what the
/// group epoch record stores (Kafka 4.1's `MetadataHash`, KIP-1101). Kafka hashes with XXH3 and
/// also covers racks; this is 64-bit FNV-1a over the same facts gregor has, stable across
/// releases and platforms. A collision would only hide a metadata change from the group.
pub fn metadata_hash(metadata: &TopicsMetadata) -> i64 {
    if metadata.is_empty() {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (name, (id, partitions)) in metadata {
        eat(&(name.len() as u64).to_be_bytes());
        eat(name.as_bytes());
        eat(id.as_bytes());
        eat(&partitions.to_be_bytes());
    }
    h as i64
}

#[derive(Debug, Clone)]
pub struct ConsumerGroup {
    pub group_id: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ConsumerMember>,
    /// instance id -> member id.
    static_members: HashMap<String, String>,
    pub target: BTreeMap<String, Assignment>,
    pub metadata: TopicsMetadata,
    /// [`metadata_hash`] of `metadata`; after a restore, of the metadata before the restart
    /// (`metadata` itself is empty until the next heartbeat looks the topics up again).
    pub metadata_hash: i64,
    /// Ids of the topics the group's assignments and targets name, for their records.
    topic_ids: BTreeMap<String, uuid::Uuid>,
    /// Every regex some member subscribes to, with the topics it resolved to.
    pub resolved_regexes: BTreeMap<String, ResolvedRegex>,
}

/// A regex of the group and the topics it matched when last resolved (Kafka's
/// `ResolvedRegularExpression`).
#[derive(Debug, Clone)]
pub struct ResolvedRegex {
    regex: TopicRegex,
    pub topics: BTreeSet<String>,
}

fn contains(a: &Assignment, topic: &str, p: i32) -> bool {
    a.get(topic).is_some_and(|s| s.contains(&p))
}

fn is_subset(small: &Assignment, big: &Assignment) -> bool {
    small.iter().all(|(t, ps)| ps.iter().all(|p| contains(big, t, *p)))
}

fn normalized(a: Assignment) -> Assignment {
    a.into_iter().filter(|(_, ps)| !ps.is_empty()).collect()
}

impl ConsumerGroup {
    pub fn new(group_id: &str) -> Self {
        Self {
            group_id: group_id.to_string(),
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            target: BTreeMap::new(),
            metadata: TopicsMetadata::new(),
            metadata_hash: 0,
            topic_ids: BTreeMap::new(),
            resolved_regexes: BTreeMap::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Kafka's `ConsumerGroup.state`.
    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch != self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| m.member_epoch != self.assignment_epoch || m.state != MemberState::Stable)
        {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// The assignor the group uses: the one most members ask for, else the default (Kafka's
    /// `computePreferredServerAssignor`).
    pub fn preferred_assignor(&self) -> Assignor {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = m.server_assignor.as_deref() {
                *counts.entry(a).or_default() += 1;
            }
        }
        counts
            .into_iter()
            .max_by_key(|(name, n)| (*n, std::cmp::Reverse(*name)))
            .and_then(|(name, _)| Assignor::from_name(name))
            .unwrap_or(Assignor::DEFAULT)
    }

    /// The topics a member subscribes to: its names and what its regex resolved to.
    pub fn member_topics(&self, m: &ConsumerMember) -> BTreeSet<String> {
        let resolved = m.subscribed_regex.as_ref().and_then(|r| self.resolved_regexes.get(r));
        m.subscribed.iter().chain(resolved.into_iter().flat_map(|r| &r.topics)).cloned().collect()
    }

    /// Every topic some member subscribes to, by name or regex.
    pub fn subscribed_topics(&self) -> BTreeSet<String> {
        self.members.values().flat_map(|m| self.member_topics(m)).collect()
    }

    /// The regex of the request, compiled, when no member of the group uses it yet (Kafka
    /// compiles a regex once, when it enters the group).
    fn compile_new_regex(&self, p: &HeartbeatParams) -> Result<Option<(String, TopicRegex)>, HeartbeatError> {
        let Some(source) = p.subscribed_topic_regex.as_deref().filter(|r| !r.is_empty()) else { return Ok(None) };
        if self.resolved_regexes.contains_key(source) {
            return Ok(None);
        }
        match TopicRegex::compile(source) {
            Ok(regex) => Ok(Some((source.to_string(), regex))),
            Err(why) => Err(HeartbeatError::InvalidRegularExpression(format!(
                "SubscribedTopicRegex `{source}` is not a valid regular expression: {why}."
            ))),
        }
    }

    /// Forgets the ids of topics that no metadata, assignment or target names any more.
    fn prune_topic_ids(&mut self) {
        let members = self.members.values().flat_map(|m| m.assigned.keys().chain(m.pending_revocation.keys()));
        let named: BTreeSet<String> =
            self.metadata.keys().chain(members).chain(self.target.values().flat_map(|t| t.keys())).cloned().collect();
        self.topic_ids.retain(|t, _| named.contains(t));
    }

    /// Forgets the regexes no member subscribes to any more.
    fn prune_regexes(&mut self) {
        let in_use: BTreeSet<&String> = self.members.values().filter_map(|m| m.subscribed_regex.as_ref()).collect();
        self.resolved_regexes.retain(|r, _| in_use.contains(r));
    }

    /// Resolves every regex of the group again, `new` (the one the request brought in)
    /// included. Returns whether some regex now matches other topics than before.
    fn refresh_regexes(&mut self, new: Option<(String, TopicRegex)>, topics: &dyn TopicSource) -> bool {
        if let Some((source, regex)) = new {
            self.resolved_regexes.entry(source).or_insert(ResolvedRegex { regex, topics: BTreeSet::new() });
        }
        self.prune_regexes();
        if self.resolved_regexes.is_empty() {
            return false;
        }
        let names = topics.describable_topics();
        let mut changed = false;
        for resolved in self.resolved_regexes.values_mut() {
            let matched: BTreeSet<String> = names.iter().filter(|n| resolved.regex.matches(n)).cloned().collect();
            if matched != resolved.topics {
                resolved.topics = matched;
                changed = true;
            }
        }
        changed
    }

    /// Whether a member other than `except` holds (assigned or pending revocation) the partition.
    fn held_by_other(&self, except: &str, topic: &str, p: i32) -> bool {
        self.members.values().any(|m| {
            m.member_id != except && (contains(&m.assigned, topic, p) || contains(&m.pending_revocation, topic, p))
        })
    }

    /// Kafka's `throwIfConsumerGroupHeartbeatRequestIsInvalid`. The regex is compiled later,
    /// once the member is known (Kafka's `maybeUpdateRegularExpressions`).
    fn validate(p: &HeartbeatParams, version: i16) -> Result<(), HeartbeatError> {
        let invalid = |m: &str| Err(HeartbeatError::InvalidRequest(m.to_string()));
        let blank = |s: &Option<String>| s.as_deref().is_some_and(|s| s.trim().is_empty());
        if blank(&p.instance_id) {
            return invalid("InstanceId can't be empty.");
        }
        if blank(&p.rack_id) {
            return invalid("RackId can't be empty.");
        }
        if version >= 1 && p.member_id.trim().is_empty() {
            return invalid("MemberId can't be empty.");
        }
        match p.member_epoch {
            0 => {
                if p.rebalance_timeout_ms == -1 {
                    return invalid("RebalanceTimeoutMs must be provided in first request.");
                }
                if p.owned.as_ref().is_none_or(|o| o.values().any(|ps| !ps.is_empty())) {
                    return invalid("TopicPartitions must be empty when (re-)joining.");
                }
                // An empty list of names or an empty regex joins with no topics (Kafka 4.0+,
                // KAFKA-18095: a client-side pattern may match nothing yet).
                if p.subscribed_topic_names.is_none() && p.subscribed_topic_regex.is_none() {
                    return invalid(
                        "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.",
                    );
                }
            }
            e if e > 0 || e == LEAVE_EPOCH => {
                if p.member_id.trim().is_empty() {
                    return invalid("MemberId can't be empty.");
                }
            }
            LEAVE_STATIC_EPOCH => {
                if p.member_id.trim().is_empty() {
                    return invalid("MemberId can't be empty.");
                }
                if p.instance_id.is_none() {
                    return invalid("InstanceId can't be null.");
                }
            }
            _ => return invalid("MemberEpoch is invalid."),
        }
        if let Some(a) = &p.server_assignor {
            if Assignor::from_name(a).is_none() {
                return Err(HeartbeatError::UnsupportedAssignor(format!(
                    "ServerAssignor {a} is not supported. Supported assignors: range, uniform."
                )));
            }
        }
        Ok(())
    }

    /// One ConsumerGroupHeartbeat. `topics` tells which topics exist (and which the member may
    /// describe); `version` is the request's (v1 requires the client to choose its member id).
    pub fn heartbeat(
        &mut self,
        mut p: HeartbeatParams,
        version: i16,
        topics: &dyn TopicSource,
        now: Instant,
        cfg: &ConsumerConfig,
    ) -> Result<HeartbeatResult, HeartbeatError> {
        Self::validate(&p, version)?;
        if p.member_epoch == LEAVE_EPOCH || p.member_epoch == LEAVE_STATIC_EPOCH {
            return self.leave(&p.member_id, p.instance_id.as_deref(), p.member_epoch, cfg);
        }
        if p.member_id.is_empty() {
            p.member_id = uuid::Uuid::new_v4().to_string();
        }
        let member_id = p.member_id.clone();
        let mut bump = false;
        let old_assigned;
        let new_regex;
        if p.member_epoch == 0 {
            old_assigned = None;
            new_regex = self.compile_new_regex(&p)?;
            if !self.members.contains_key(&member_id) {
                if let Some(instance) = p.instance_id.clone() {
                    bump |= self.join_static(&instance, &member_id)?;
                }
            }
            if !self.members.contains_key(&member_id) {
                if self.members.len() >= cfg.max_size {
                    return Err(HeartbeatError::GroupMaxSizeReached(format!(
                        "The consumer group has reached its maximum capacity of {} members.",
                        cfg.max_size
                    )));
                }
                let mut m = ConsumerMember::joining(&member_id, now);
                m.instance_id = p.instance_id.clone();
                self.members.insert(member_id.clone(), m);
                if let Some(instance) = &p.instance_id {
                    self.static_members.insert(instance.clone(), member_id.clone());
                }
                bump = true;
            }
        } else {
            let Some(m) = self.members.get(&member_id) else {
                return Err(HeartbeatError::UnknownMemberId(format!(
                    "Member {member_id} is not a member of group {}.",
                    self.group_id
                )));
            };
            Self::check_epoch(m, p.member_epoch, p.owned.as_ref())?;
            old_assigned = Some(m.assigned.clone());
            new_regex = self.compile_new_regex(&p)?;
        }
        let m = self.members.get_mut(&member_id).expect("the member was found or added above");
        m.client_id = p.client_id;
        m.client_host = p.client_host;
        if p.rack_id.is_some() {
            m.rack_id = p.rack_id;
        }
        if p.instance_id.is_some() {
            m.instance_id = p.instance_id;
        }
        if p.rebalance_timeout_ms >= 0 {
            m.rebalance_timeout = Duration::from_millis(p.rebalance_timeout_ms as u64);
        }
        if let Some(names) = &p.subscribed_topic_names {
            let names: BTreeSet<String> = names.iter().cloned().collect();
            if names != m.subscribed {
                m.subscribed = names;
                bump = true;
            }
        }
        if let Some(regex) = &p.subscribed_topic_regex {
            let regex = (!regex.is_empty()).then(|| regex.clone());
            if regex != m.subscribed_regex {
                m.subscribed_regex = regex;
                bump = true;
            }
        }
        if p.server_assignor.is_some() && p.server_assignor != m.server_assignor {
            m.server_assignor = p.server_assignor;
            bump = true;
        }
        m.session_deadline = now + cfg.session_timeout;
        // A member that used the classic protocol now heartbeats: it uses this one.
        m.classic = None;
        // A regex matching other topics (one created or deleted) is a new group epoch, as in
        // Kafka's `handleRegularExpressionsResult`.
        bump |= self.refresh_regexes(new_regex, topics);
        bump |= self.refresh_metadata(topics);
        if bump {
            self.group_epoch += 1;
        }
        if self.group_epoch > self.assignment_epoch {
            self.compute_target();
        }
        self.reconcile(&member_id, p.owned.as_ref(), now);
        self.prune_topic_ids();
        let m = &self.members[&member_id];
        let full = p.member_epoch == 0
            || (p.rebalance_timeout_ms != -1
                && (p.subscribed_topic_names.is_some() || p.subscribed_topic_regex.is_some())
                && p.owned.is_some());
        let changed = old_assigned.as_ref() != Some(&m.assigned);
        Ok(HeartbeatResult {
            member_id,
            member_epoch: m.member_epoch,
            heartbeat_interval_ms: cfg.heartbeat_interval.as_millis().min(i32::MAX as u128) as i32,
            assignment: (full || changed).then(|| m.assigned.clone()),
        })
    }

    /// Looks the subscribed topics up again. Their partition counts changing (a topic
    /// created, deleted or grown) is a new group epoch: returns whether they did. Compared by
    /// hash, as Kafka 4.1 does, so that a group restored from its records (which keep only the
    /// hash) carries on in its epoch.
    fn refresh_metadata(&mut self, topics: &dyn TopicSource) -> bool {
        let metadata: TopicsMetadata =
            self.subscribed_topics().into_iter().filter_map(|t| topics.topic(&t).map(|info| (t, info))).collect();
        let hash = metadata_hash(&metadata);
        let changed = hash != self.metadata_hash;
        self.metadata_hash = hash;
        for (t, (id, _)) in &metadata {
            self.topic_ids.insert(t.clone(), *id);
        }
        self.metadata = metadata;
        changed
    }

    /// A static member (re)joining with epoch 0 under a new member id: it takes over the
    /// assignment of the incarnation that left with epoch -2; one still active is not replaced
    /// (UNRELEASED_INSTANCE_ID). Returns whether the group epoch must go up.
    fn join_static(&mut self, instance: &str, member_id: &str) -> Result<bool, HeartbeatError> {
        let Some(old_id) = self.static_members.get(instance).cloned() else { return Ok(false) };
        let Some(old) = self.members.get(&old_id) else { return Ok(false) };
        if old.member_epoch != LEAVE_STATIC_EPOCH {
            return Err(HeartbeatError::UnreleasedInstanceId(format!(
                "Static member {old_id} with instance id {instance} is not released."
            )));
        }
        let mut m = self.members.remove(&old_id).expect("found above");
        m.member_id = member_id.to_string();
        m.member_epoch = 0;
        m.previous_member_epoch = -1;
        m.state = MemberState::Stable;
        m.rebalance_deadline = None;
        self.members.insert(member_id.to_string(), m);
        if let Some(t) = self.target.remove(&old_id) {
            self.target.insert(member_id.to_string(), t);
        }
        self.static_members.insert(instance.to_string(), member_id.to_string());
        Ok(false)
    }

    /// Kafka's `throwIfConsumerGroupMemberEpochIsInvalid`: the member's epoch, or its previous
    /// one when it owns no more than it is assigned (the answer that bumped it was lost).
    fn check_epoch(m: &ConsumerMember, received: i32, owned: Option<&Assignment>) -> Result<(), HeartbeatError> {
        let fenced = |how: &str| {
            Err(HeartbeatError::FencedMemberEpoch(format!(
                "The consumer group member has a {how} member epoch ({received}) than the one known by the group \
                 coordinator ({}). The member must abandon all its partitions and rejoin.",
                m.member_epoch
            )))
        };
        if received > m.member_epoch {
            return fenced("greater");
        }
        if received < m.member_epoch
            && (received != m.previous_member_epoch || !owned.is_some_and(|o| is_subset(o, &m.assigned)))
        {
            return fenced("smaller");
        }
        Ok(())
    }

    fn leave(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        epoch: i32,
        cfg: &ConsumerConfig,
    ) -> Result<HeartbeatResult, HeartbeatError> {
        let id = match instance {
            Some(i) => self.static_members.get(i).cloned().ok_or_else(|| {
                HeartbeatError::UnknownMemberId(format!("Instance id {i} is unknown in group {}.", self.group_id))
            })?,
            None => member_id.to_string(),
        };
        if !self.members.contains_key(&id) {
            return Err(HeartbeatError::UnknownMemberId(format!(
                "Member {member_id} is not a member of group {}.",
                self.group_id
            )));
        }
        if id != member_id {
            return Err(HeartbeatError::FencedInstanceId(format!(
                "Instance id {} is in use by another member of group {}.",
                instance.unwrap_or_default(),
                self.group_id
            )));
        }
        if epoch == LEAVE_STATIC_EPOCH {
            // Kept with its assignment until it comes back or its session runs out.
            let m = self.members.get_mut(&id).expect("checked above");
            m.member_epoch = LEAVE_STATIC_EPOCH;
        } else {
            self.remove_member(&id);
        }
        Ok(HeartbeatResult {
            member_id: member_id.to_string(),
            member_epoch: epoch,
            heartbeat_interval_ms: cfg.heartbeat_interval.as_millis().min(i32::MAX as u128) as i32,
            assignment: None,
        })
    }

    /// Removes a member (left, fenced or expired): its partitions are free, the group epoch
    /// goes up so that the next heartbeat computes a new target.
    pub fn remove_member(&mut self, member_id: &str) {
        if let Some(m) = self.members.remove(member_id) {
            if let Some(i) = &m.instance_id {
                if self.static_members.get(i).map(String::as_str) == Some(member_id) {
                    self.static_members.remove(i);
                }
            }
            self.target.remove(member_id);
            self.prune_regexes();
            self.group_epoch += 1;
        }
    }

    /// Computes the target assignment for the group epoch.
    fn compute_target(&mut self) {
        let counts: BTreeMap<String, i32> = self.metadata.iter().map(|(t, (_, n))| (t.clone(), *n)).collect();
        let empty = Assignment::new();
        let subscriptions: BTreeMap<&String, BTreeSet<String>> =
            self.members.iter().map(|(id, m)| (id, self.member_topics(m))).collect();
        let members: BTreeMap<String, AssignorMember<'_>> = subscriptions
            .iter()
            .map(|(id, subscribed)| {
                (id.to_string(), AssignorMember { subscribed, current: self.target.get(*id).unwrap_or(&empty) })
            })
            .collect();
        let target = self.preferred_assignor().assign(&members, &counts);
        self.target = target.into_iter().map(|(id, a)| (id, normalized(a))).collect();
        self.assignment_epoch = self.group_epoch;
    }

    /// Kafka's `CurrentAssignmentBuilder`: one step of the member towards its target.
    fn reconcile(&mut self, member_id: &str, owned: Option<&Assignment>, now: Instant) {
        let target_epoch = self.assignment_epoch;
        let Some(m) = self.members.get(member_id) else { return };
        let next_epoch = match m.state {
            MemberState::Stable if m.member_epoch == target_epoch => return,
            MemberState::Stable => target_epoch,
            MemberState::UnrevokedPartitions => {
                let still_owns = owned
                    .is_none_or(|o| m.pending_revocation.iter().any(|(t, ps)| ps.iter().any(|p| contains(o, t, *p))));
                if still_owns {
                    return;
                }
                (m.member_epoch + 1).min(target_epoch)
            }
            MemberState::UnreleasedPartitions => {
                if m.member_epoch == target_epoch {
                    m.member_epoch
                } else {
                    target_epoch
                }
            }
        };
        let target = self.target.get(member_id).cloned().unwrap_or_default();
        let topics: BTreeSet<String> = target.keys().chain(m.assigned.keys()).cloned().collect();
        let (mut keep, mut revoke, mut unreleased) = (Assignment::new(), Assignment::new(), false);
        for topic in topics {
            let want = target.get(&topic).cloned().unwrap_or_default();
            let have = m.assigned.get(&topic).cloned().unwrap_or_default();
            let mut kept: BTreeSet<i32> = have.intersection(&want).copied().collect();
            let revoked: BTreeSet<i32> = have.difference(&want).copied().collect();
            for &p in want.difference(&have) {
                if self.held_by_other(member_id, &topic, p) {
                    unreleased = true;
                } else {
                    kept.insert(p);
                }
            }
            if !kept.is_empty() {
                keep.insert(topic.clone(), kept);
            }
            if !revoked.is_empty() {
                revoke.insert(topic, revoked);
            }
        }
        let m = self.members.get_mut(member_id).expect("found above");
        if !revoke.is_empty() {
            // Keep the epoch: the member first gives partitions up, then moves on.
            let kept_only: Assignment = m
                .assigned
                .iter()
                .map(|(t, ps)| (t.clone(), ps.iter().filter(|p| !contains(&revoke, t, **p)).copied().collect()))
                .collect();
            m.assigned = normalized(kept_only);
            m.pending_revocation = revoke;
            if m.state != MemberState::UnrevokedPartitions {
                m.rebalance_deadline = Some(now + m.rebalance_timeout);
            }
            m.state = MemberState::UnrevokedPartitions;
        } else {
            m.previous_member_epoch = m.member_epoch;
            m.member_epoch = next_epoch;
            m.assigned = keep;
            m.pending_revocation = Assignment::new();
            m.rebalance_deadline = None;
            m.state = if unreleased { MemberState::UnreleasedPartitions } else { MemberState::Stable };
        }
    }

    /// Session and rebalance timeouts: members past either are removed. Returns the ids removed.
    pub fn tick(&mut self, now: Instant) -> Vec<String> {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                now >= m.session_deadline
                    || m.rebalance_deadline.is_some_and(|d| now >= d)
                    || m.classic.as_ref().is_some_and(|c| c.expired(now))
            })
            .map(|m| m.member_id.clone())
            .collect();
        for id in &expired {
            tracing::info!(group = %self.group_id, member = %id, "consumer group member fenced: session, rebalance, join or sync timeout");
            self.remove_member(id);
        }
        expired
    }

    /// OffsetCommit from a member (Kafka's `ConsumerGroup.validateOffsetCommit`): a negative
    /// epoch commits only while the group is empty; otherwise the member must exist with that
    /// epoch.
    pub fn check_commit(&self, member_id: &str, member_epoch: i32) -> Result<(), CommitCheck> {
        if member_epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        self.check_member_epoch(member_id, member_epoch)
    }

    /// Kafka's `validateMemberEpoch`: a classic member's generation that is not its epoch is
    /// ILLEGAL_GENERATION (the error its client knows), a `consumer` member's STALE_MEMBER_EPOCH.
    fn check_member_epoch(&self, member_id: &str, member_epoch: i32) -> Result<(), CommitCheck> {
        let m = self.members.get(member_id).ok_or(CommitCheck::UnknownMemberId)?;
        match (m.member_epoch == member_epoch, m.classic.is_some()) {
            (true, _) => Ok(()),
            (false, true) => Err(CommitCheck::IllegalGeneration),
            (false, false) => Err(CommitCheck::StaleMemberEpoch),
        }
    }

    /// OffsetFetch from a member (Kafka's `ConsumerGroup.validateOffsetFetch`).
    pub fn check_fetch(&self, member_id: &str, member_epoch: i32) -> Result<(), CommitCheck> {
        if member_epoch < 0 && member_id.is_empty() {
            return Ok(());
        }
        self.check_member_epoch(member_id, member_epoch)
    }
}

/// Why a member's offset commit or fetch is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitCheck {
    UnknownMemberId,
    StaleMemberEpoch,
    IllegalGeneration,
}

#[cfg(test)]
mod tests;
