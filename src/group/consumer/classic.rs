//! Classic protocol members in a `consumer` group (KIP-848's online migration), modelled on
//! Kafka 4.1's `GroupMetadataManager` (`classicGroupJoinToConsumerGroup`,
//! `classicGroupSyncToConsumerGroup`, `classicGroupHeartbeatToConsumerGroup`,
//! `classicGroupLeaveToConsumerGroup`), `ConsumerGroup.fromClassicGroup` and
//! `ClassicGroup.fromConsumerGroup`.
//!
//! Upgrade: a `consumer` protocol member joining a classic group that has members (of protocol
//! type `consumer`) turns it into a consumer group: every classic member keeps its assignment,
//! the generation becomes the group epoch, and the new member's arrival starts a new target
//! assignment. Classic members stay in the group and keep speaking JoinGroup, SyncGroup and
//! Heartbeat; the coordinator assigns for them (the JoinGroup answer names no leader and
//! carries the member's epoch as generation; SyncGroup returns its partitions in the member's
//! version of the embedded protocol). A Heartbeat answers REBALANCE_IN_PROGRESS when the member
//! must rejoin: the group epoch moved past its epoch, it must give partitions up, or partitions
//! it waits for were released. Its JoinGroup then reconciles it one step, with the partitions
//! its subscription says it owns (eager members own none: they revoked everything before
//! joining). A classic member that was told to rejoin and does not within its rebalance
//! timeout, or joins and does not sync within it, is removed, as one whose session runs out.
//!
//! Downgrade: when the group's last `consumer` protocol member leaves and classic members
//! remain, the coordinator turns the group back into a classic group (Stable, each member with
//! its target assignment) and starts a rebalance, so the classic members agree on a new one.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::embedded::{self, Subscription};
use super::*;
use crate::group::member::Member;
use crate::group::rebalance::{Group, JoinParams};
use crate::group::{GroupError, JoinResult, SyncResult};

/// The protocol type of the embedded consumer protocol.
pub const PROTOCOL_TYPE: &str = "consumer";

/// What the group keeps of a member that uses the classic protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassicMember {
    pub session_timeout: Duration,
    /// (protocol name, subscription), in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// Set once the member was told to rejoin: past it without a JoinGroup, it is removed.
    join_deadline: Option<Instant>,
    /// Set by its JoinGroup: past it without a SyncGroup, it is removed.
    sync_deadline: Option<Instant>,
}

impl ClassicMember {
    pub fn new(session_timeout: Duration, protocols: Vec<(String, Bytes)>) -> Self {
        Self { session_timeout, protocols, join_deadline: None, sync_deadline: None }
    }

    pub(super) fn expired(&self, now: Instant) -> bool {
        self.join_deadline.is_some_and(|d| now >= d) || self.sync_deadline.is_some_and(|d| now >= d)
    }

    /// The protocol the member prefers: what its JoinGroup answer names.
    fn protocol_name(&self) -> &str {
        self.protocols.first().map_or("", |(n, _)| n)
    }

    /// The version of the embedded protocol the member speaks, for its assignment.
    fn version(&self) -> i16 {
        self.protocols.first().map_or(0, |(_, m)| embedded::version(m))
    }
}

fn malformed(group_id: &str) -> String {
    format!("Cannot upgrade the classic group {group_id} to consumer group because the embedded consumer protocol is malformed.")
}

impl ConsumerGroup {
    /// The consumer group a classic group with members becomes (Kafka's
    /// `ConsumerGroup.fromClassicGroup`): its generation as group and assignment epoch, each
    /// member Stable in that epoch with the partitions it was assigned, as its target too.
    /// `Err` (the message) when a member's subscription or assignment cannot be read.
    pub fn from_classic(g: &Group, topics: &dyn TopicSource, now: Instant) -> Result<ConsumerGroup, String> {
        let mut out = ConsumerGroup::new(&g.group_id);
        out.group_epoch = g.generation_id;
        out.assignment_epoch = g.generation_id;
        for m in g.members.values() {
            let protocol = g.protocol_name.clone().or_else(|| m.protocols.first().map(|(n, _)| n.clone()));
            let metadata = m.metadata_for(protocol.as_deref().unwrap_or_default());
            let subscription = embedded::decode_subscription(&metadata).ok_or_else(|| malformed(&g.group_id))?;
            let assigned = embedded::decode_assignment(&m.assignment).ok_or_else(|| malformed(&g.group_id))?;
            // Only partitions that exist: a topic deleted since the last rebalance is dropped.
            let mut kept = Assignment::new();
            for (topic, ps) in assigned {
                if let Some((id, count)) = topics.topic(&topic) {
                    out.topic_ids.insert(topic.clone(), id);
                    kept.insert(topic, ps.into_iter().filter(|p| (0..count).contains(p)).collect());
                }
            }
            let kept = normalized(kept);
            if let Some(instance) = &m.group_instance_id {
                out.static_members.insert(instance.clone(), m.member_id.clone());
            }
            out.target.insert(m.member_id.clone(), kept.clone());
            out.members.insert(
                m.member_id.clone(),
                ConsumerMember {
                    member_id: m.member_id.clone(),
                    instance_id: m.group_instance_id.clone(),
                    rack_id: subscription.rack,
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    member_epoch: g.generation_id,
                    previous_member_epoch: g.generation_id,
                    state: MemberState::Stable,
                    rebalance_timeout: m.rebalance_timeout,
                    subscribed: subscription.topics.into_iter().collect(),
                    subscribed_regex: None,
                    server_assignor: None,
                    assigned: kept,
                    pending_revocation: Assignment::new(),
                    classic: Some(ClassicMember::new(m.session_timeout, m.protocols.clone())),
                    session_deadline: now + m.session_timeout,
                    rebalance_deadline: None,
                },
            );
        }
        Ok(out)
    }

    /// Whether every member uses the classic protocol (and there is one): the group should
    /// become a classic group again.
    pub fn only_classic_members(&self) -> bool {
        !self.members.is_empty() && self.members.values().all(|m| m.classic.is_some())
    }

    /// The classic group this one becomes (Kafka's `ClassicGroup.fromConsumerGroup`): every
    /// member with its target assignment, rebalancing.
    pub fn to_classic(&self, now: Instant) -> Group {
        let members = self
            .members
            .values()
            .filter_map(|m| {
                let c = m.classic.as_ref()?;
                Some(Member {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout: c.session_timeout,
                    rebalance_timeout: m.rebalance_timeout,
                    protocols: c.protocols.clone(),
                    assignment: Bytes::new(),
                    last_heartbeat: now,
                    awaiting_join: None,
                    awaiting_sync: None,
                })
            })
            .collect();
        let empty = Assignment::new();
        // The epoch of the last target, which reconciled members are in: Kafka converts the
        // group before the departing member's removal bumps its epoch, so the members'
        // heartbeats match the generation and are told to rejoin (not ILLEGAL_GENERATION).
        Group::downgraded(
            &self.group_id,
            self.assignment_epoch,
            members,
            |member_id, metadata| {
                embedded::encode_assignment(self.target.get(member_id).unwrap_or(&empty), embedded::version(metadata))
            },
            now,
        )
    }

    /// Kafka's `supportsClassicProtocols`: the member speaks the embedded consumer protocol,
    /// with a protocol every classic member of the group supports.
    fn supports_classic_protocols(&self, p: &JoinParams) -> bool {
        if p.protocol_type != PROTOCOL_TYPE || p.protocols.is_empty() {
            return false;
        }
        let classic: Vec<&ClassicMember> = self.members.values().filter_map(|m| m.classic.as_ref()).collect();
        p.protocols.iter().any(|(name, _)| classic.iter().all(|c| c.protocols.iter().any(|(n, _)| n == name)))
    }

    /// A JoinGroup to this group (it has members). Answers at once: the coordinator assigns.
    pub fn classic_join(
        &mut self,
        p: JoinParams,
        topics: &dyn TopicSource,
        now: Instant,
        cfg: &ConsumerConfig,
    ) -> Result<JoinResult, GroupError> {
        let unknown = p.member_id.is_empty();
        let member_id = if unknown { uuid::Uuid::new_v4().to_string() } else { p.member_id.clone() };
        let known = self.members.contains_key(&member_id)
            || p.group_instance_id.as_ref().is_some_and(|i| self.static_members.contains_key(i));
        if !known && self.members.len() >= cfg.max_size {
            return Err(GroupError::GroupMaxSizeReached);
        }
        if !self.supports_classic_protocols(&p) {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        if unknown && p.group_instance_id.is_none() && p.require_known_member_id {
            return Err(GroupError::MemberIdRequired(member_id));
        }
        let subscription: Subscription =
            embedded::decode_subscription(&p.protocols[0].1).ok_or(GroupError::InconsistentGroupProtocol)?;
        let mut bump = false;
        match p.group_instance_id.as_ref().and_then(|i| self.static_members.get(i).cloned()) {
            // A static member's new incarnation takes over the old one's place and partitions.
            Some(old_id) if unknown => {
                let mut m = self.members.remove(&old_id).expect("static members are members");
                m.member_id = member_id.clone();
                m.member_epoch = 0;
                m.previous_member_epoch = 0;
                self.members.insert(member_id.clone(), m);
                if let Some(t) = self.target.remove(&old_id) {
                    self.target.insert(member_id.clone(), t);
                }
            }
            Some(old_id) if old_id != member_id => return Err(GroupError::FencedInstanceId),
            Some(_) => {}
            None => {
                if !self.members.contains_key(&member_id) {
                    let mut m = ConsumerMember::joining(&member_id, now);
                    m.rebalance_timeout = p.rebalance_timeout;
                    self.members.insert(member_id.clone(), m);
                    bump = true;
                }
            }
        }
        if let Some(instance) = &p.group_instance_id {
            self.static_members.insert(instance.clone(), member_id.clone());
        }
        let m = self.members.get_mut(&member_id).expect("found or added above");
        m.instance_id = p.group_instance_id.clone().or(m.instance_id.take());
        if subscription.rack.is_some() {
            m.rack_id = subscription.rack.clone();
        }
        m.rebalance_timeout = p.rebalance_timeout;
        m.client_id = p.client_id;
        m.client_host = p.client_host;
        m.server_assignor = None;
        let subscribed: BTreeSet<String> = subscription.topics.iter().cloned().collect();
        if subscribed != m.subscribed || m.subscribed_regex.is_some() {
            m.subscribed = subscribed;
            m.subscribed_regex = None;
            bump = true;
        }
        m.classic = Some(ClassicMember::new(p.session_timeout, p.protocols));
        m.session_deadline = now + p.session_timeout;
        self.prune_regexes();
        bump |= self.refresh_metadata(topics);
        if bump {
            self.group_epoch += 1;
        }
        if self.group_epoch > self.assignment_epoch {
            self.compute_target();
        }
        self.reconcile(&member_id, Some(&subscription.owned), now);
        self.prune_topic_ids();
        let m = self.members.get_mut(&member_id).expect("found or added above");
        let c = m.classic.as_mut().expect("set above");
        c.sync_deadline = Some(now + m.rebalance_timeout);
        Ok(JoinResult {
            generation_id: m.member_epoch,
            protocol_type: Some(PROTOCOL_TYPE.to_string()),
            protocol_name: Some(c.protocol_name().to_string()),
            leader_id: String::new(),
            member_id,
            members: Vec::new(),
            skip_assignment: false,
        })
    }

    /// The classic member a SyncGroup, Heartbeat or LeaveGroup names (Kafka's
    /// `validateConsumerGroupMember` and `throwIfMemberDoesNotUseClassicProtocol`); its id.
    fn classic_member(&self, member_id: &str, instance: Option<&str>) -> Result<String, GroupError> {
        let id = match instance {
            None => member_id.to_string(),
            Some(i) => {
                let id = self.static_members.get(i).ok_or(GroupError::UnknownMemberId)?;
                if !member_id.is_empty() && id != member_id {
                    return Err(GroupError::FencedInstanceId);
                }
                id.clone()
            }
        };
        match self.members.get(&id) {
            Some(m) if m.classic.is_some() => Ok(id),
            _ => Err(GroupError::UnknownMemberId),
        }
    }

    /// Whether some partition of the member's target is still held by another member
    /// (Kafka's `waitingOnUnreleasedPartition`).
    fn waiting_on_unreleased(&self, m: &ConsumerMember) -> bool {
        m.state == MemberState::UnreleasedPartitions
            && self.target.get(&m.member_id).is_some_and(|t| {
                t.iter().any(|(topic, ps)| {
                    ps.iter().any(|p| !contains(&m.assigned, topic, *p) && self.held_by_other(&m.member_id, topic, *p))
                })
            })
    }

    /// Asks the member to rejoin, from now on within its rebalance timeout.
    fn rejoin(&mut self, id: &str, now: Instant) -> GroupError {
        if let Some(m) = self.members.get_mut(id) {
            let timeout = m.rebalance_timeout;
            if let Some(c) = m.classic.as_mut() {
                c.join_deadline.get_or_insert(now + timeout);
            }
        }
        GroupError::RebalanceInProgress
    }

    pub fn classic_sync(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        protocol: (Option<&str>, Option<&str>),
        now: Instant,
    ) -> Result<SyncResult, GroupError> {
        let id = self.classic_member(member_id, instance)?;
        let m = &self.members[&id];
        let c = m.classic.as_ref().expect("a classic member");
        if generation != m.member_epoch {
            return Err(GroupError::IllegalGeneration);
        }
        if protocol.0.is_some_and(|t| t != PROTOCOL_TYPE) || protocol.1.is_some_and(|n| n != c.protocol_name()) {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        // A member that is mid-revocation syncs to learn what it keeps; otherwise a newer
        // group epoch means it must rejoin first.
        if self.group_epoch > m.member_epoch && m.state != MemberState::UnrevokedPartitions {
            return Err(self.rejoin(&id, now));
        }
        let m = self.members.get_mut(&id).expect("found above");
        let c = m.classic.as_mut().expect("a classic member");
        c.sync_deadline = None;
        m.session_deadline = now + c.session_timeout;
        Ok(SyncResult {
            protocol_type: Some(PROTOCOL_TYPE.to_string()),
            protocol_name: Some(c.protocol_name().to_string()),
            assignment: embedded::encode_assignment(&m.assigned, c.version()),
        })
    }

    pub fn classic_heartbeat(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), GroupError> {
        let id = self.classic_member(member_id, instance)?;
        let m = self.members.get_mut(&id).expect("found above");
        if generation != m.member_epoch {
            return Err(GroupError::IllegalGeneration);
        }
        m.session_deadline = now + m.classic.as_ref().expect("a classic member").session_timeout;
        let m = &self.members[&id];
        if m.member_epoch < self.group_epoch
            || m.state == MemberState::UnrevokedPartitions
            || (m.state == MemberState::UnreleasedPartitions && !self.waiting_on_unreleased(m))
        {
            return Err(self.rejoin(&id, now));
        }
        Ok(())
    }

    /// LeaveGroup for classic members, by member id or instance id; each answer is the member
    /// id that left.
    pub fn classic_leave(&mut self, leaving: &[(String, Option<String>)]) -> Vec<Result<String, GroupError>> {
        leaving
            .iter()
            .map(|(member_id, instance)| {
                let id = self.classic_member(member_id, instance.as_deref())?;
                self.remove_member(&id);
                Ok(id)
            })
            .collect()
    }
}
