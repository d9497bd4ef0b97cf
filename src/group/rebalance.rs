//! One classic group's state machine: JoinGroup, SyncGroup, Heartbeat, LeaveGroup and timers.
//!
//! Everything here is synchronous and takes `now`, so tests step time instead of sleeping.
//! Members waiting in JoinGroup or SyncGroup hold a oneshot sender; completing a phase answers
//! them all at once. Invariants: `leader_id` names a member whenever the group is
//! CompletingRebalance or Stable; every member gets its own reply when a phase completes, also
//! the ones whose SyncGroup arrived before the leader's.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use indexmap::IndexMap;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::member::Member;
use super::metadata_record::{GroupRecord, MemberRecord};
use super::state::GroupState;
use super::{GroupError, JoinResult, JoinedMember, SyncResult};

/// Coordinator settings that shape rebalances (Kafka's `group.*` broker configs).
#[derive(Debug, Clone)]
pub struct RebalanceConfig {
    pub initial_rebalance_delay: Duration,
    pub min_session_timeout: Duration,
    pub max_session_timeout: Duration,
    pub max_size: usize,
}

/// A reply now, or one to wait for.
#[derive(Debug)]
pub enum Waiting<T> {
    Ready(Result<T, GroupError>),
    Wait(oneshot::Receiver<Result<T, GroupError>>),
}

#[derive(Debug, Clone)]
pub struct JoinParams {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// KIP-394 (JoinGroup v4+): a first join without a member id gets one and must rejoin.
    pub require_known_member_id: bool,
}

#[derive(Debug)]
pub struct Group {
    pub group_id: String,
    pub state: GroupState,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub generation_id: i32,
    pub leader_id: Option<String>,
    pub members: IndexMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, and when they expire if unused.
    pending: HashMap<String, Instant>,
    /// group.instance.id -> member id of static members.
    static_members: HashMap<String, String>,
    rebalance_deadline: Option<Instant>,
    initial_delay_deadline: Option<Instant>,
    /// The group reached Stable or Empty since the coordinator last persisted it.
    dirty: bool,
}

impl Group {
    pub fn new(group_id: &str) -> Self {
        Self {
            group_id: group_id.to_string(),
            state: GroupState::Empty,
            protocol_type: None,
            protocol_name: None,
            generation_id: 0,
            leader_id: None,
            members: IndexMap::new(),
            pending: HashMap::new(),
            static_members: HashMap::new(),
            rebalance_deadline: None,
            initial_delay_deadline: None,
            dirty: false,
        }
    }

    /// Rebuilds a group from its last persisted record. Members get a fresh session, so they can
    /// carry on with their generation after a broker restart without a rebalance.
    pub fn restore(group_id: &str, rec: &GroupRecord, now: Instant) -> Self {
        let mut g = Self::new(group_id);
        g.generation_id = rec.generation_id;
        g.protocol_type = Some(rec.protocol_type.clone()).filter(|t| !t.is_empty());
        g.protocol_name = rec.protocol_name.clone();
        let protocol = rec.protocol_name.clone().unwrap_or_default();
        for m in &rec.members {
            if let Some(instance) = &m.group_instance_id {
                g.static_members.insert(instance.clone(), m.member_id.clone());
            }
            g.members.insert(
                m.member_id.clone(),
                Member {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout: Duration::from_millis(m.session_timeout_ms.max(0) as u64),
                    rebalance_timeout: Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64),
                    protocols: vec![(protocol.clone(), m.subscription.clone())],
                    assignment: m.assignment.clone(),
                    last_heartbeat: now,
                    awaiting_join: None,
                    awaiting_sync: None,
                },
            );
        }
        if !g.members.is_empty() && g.protocol_name.is_some() {
            g.leader_id = rec.leader_id.clone().filter(|l| g.members.contains_key(l));
            if g.leader_id.is_some() {
                g.state = GroupState::Stable;
            }
        }
        if g.state != GroupState::Stable {
            // Not a consistent generation to resume: start over empty.
            g.members.clear();
            g.static_members.clear();
            g.protocol_name = None;
        }
        g
    }

    /// The classic group a `consumer` group becomes when its last `consumer` protocol member
    /// left (KIP-848's downgrade, Kafka's `ClassicGroup.fromConsumerGroup`): Stable in
    /// `generation` with the given members, each assigned `assign(member id, its metadata for
    /// the chosen protocol)`, then rebalancing at once so that they agree on an assignment.
    pub fn downgraded(
        group_id: &str,
        generation: i32,
        members: Vec<Member>,
        assign: impl Fn(&str, &Bytes) -> Bytes,
        now: Instant,
    ) -> Self {
        let mut g = Self::new(group_id);
        g.generation_id = generation;
        g.protocol_type = Some("consumer".to_string());
        for m in members {
            if let Some(instance) = &m.group_instance_id {
                g.static_members.insert(instance.clone(), m.member_id.clone());
            }
            g.members.insert(m.member_id.clone(), m);
        }
        g.protocol_name = g.select_protocol();
        let protocol = g.protocol_name.clone().unwrap_or_default();
        for m in g.members.values_mut() {
            m.assignment = assign(&m.member_id, &m.metadata_for(&protocol));
        }
        g.leader_id = g.members.keys().next().cloned();
        if g.members.is_empty() {
            return g;
        }
        g.state = GroupState::Stable;
        g.dirty = true;
        g.prepare_rebalance(now);
        g
    }

    /// Answers every member waiting in JoinGroup or SyncGroup with REBALANCE_IN_PROGRESS (the
    /// group is becoming a `consumer` group: they rejoin it).
    pub fn release_waiters(&mut self) {
        for m in self.members.values_mut() {
            if let Some(tx) = m.awaiting_join.take() {
                let _ = tx.send(Err(GroupError::RebalanceInProgress));
            }
            if let Some(tx) = m.awaiting_sync.take() {
                let _ = tx.send(Err(GroupError::RebalanceInProgress));
            }
        }
    }

    /// What to persist about this group now.
    pub fn to_record(&self, now_ms: i64) -> GroupRecord {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        GroupRecord {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation_id: self.generation_id,
            protocol_name: self.protocol_name.clone(),
            leader_id: self.leader_id.clone(),
            state_timestamp_ms: now_ms,
            members: self
                .members
                .values()
                .map(|m| MemberRecord {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout.as_millis().min(i32::MAX as u128) as i32,
                    session_timeout_ms: m.session_timeout.as_millis().min(i32::MAX as u128) as i32,
                    subscription: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// True once after the group reached Stable or Empty: time to persist it.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    fn transition(&mut self, to: GroupState) {
        debug_assert!(to.valid_previous().contains(&self.state), "{:?} -> {to:?}", self.state);
        tracing::debug!(group = %self.group_id, from = self.state.kafka_name(), to = to.kafka_name(), "group state");
        self.state = to;
        if matches!(to, GroupState::Stable | GroupState::Empty) {
            self.dirty = true;
        }
    }

    pub fn join(&mut self, p: JoinParams, now: Instant, cfg: &RebalanceConfig) -> Waiting<JoinResult> {
        if self.state == GroupState::Dead {
            return Waiting::Ready(Err(GroupError::CoordinatorNotAvailable));
        }
        if p.session_timeout < cfg.min_session_timeout || p.session_timeout > cfg.max_session_timeout {
            return Waiting::Ready(Err(GroupError::InvalidSessionTimeout));
        }
        if p.protocols.is_empty() || p.protocol_type.is_empty() {
            return Waiting::Ready(Err(GroupError::InconsistentGroupProtocol));
        }
        if !self.members.is_empty() && !self.accepts_protocols(&p) {
            return Waiting::Ready(Err(GroupError::InconsistentGroupProtocol));
        }
        if p.member_id.is_empty() {
            let new_id = format!(
                "{}-{}",
                p.group_instance_id.as_deref().unwrap_or(if p.client_id.is_empty() { "member" } else { &p.client_id }),
                uuid::Uuid::new_v4()
            );
            if let Some(instance) = &p.group_instance_id {
                if let Some(old_id) = self.static_members.get(instance).cloned() {
                    return self.replace_static_member(&old_id, new_id, p, now);
                }
                return self.add_member(new_id, p, now, cfg);
            }
            if p.require_known_member_id {
                self.pending.insert(new_id.clone(), now + p.session_timeout);
                return Waiting::Ready(Err(GroupError::MemberIdRequired(new_id)));
            }
            return self.add_member(new_id, p, now, cfg);
        }
        if let Some(instance) = &p.group_instance_id {
            match self.static_members.get(instance) {
                Some(id) if *id != p.member_id => return Waiting::Ready(Err(GroupError::FencedInstanceId)),
                None if !self.pending.contains_key(&p.member_id) => {
                    return Waiting::Ready(Err(GroupError::UnknownMemberId))
                }
                _ => {}
            }
        }
        if self.pending.remove(&p.member_id).is_some() {
            let id = p.member_id.clone();
            return self.add_member(id, p, now, cfg);
        }
        let Some(member) = self.members.get_mut(&p.member_id) else {
            return Waiting::Ready(Err(GroupError::UnknownMemberId));
        };
        let unchanged = member.protocols == p.protocols;
        member.last_heartbeat = now;
        match self.state {
            GroupState::PreparingRebalance => {
                let rx = Self::update_and_wait(member, p);
                self.maybe_complete_join(now);
                Waiting::Wait(rx)
            }
            GroupState::CompletingRebalance if unchanged => Waiting::Ready(Ok(self.current_join_result(&p.member_id))),
            GroupState::Stable if unchanged && self.leader_id.as_deref() != Some(&p.member_id) => {
                Waiting::Ready(Ok(self.current_join_result(&p.member_id)))
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                let rx = Self::update_and_wait(member, p);
                self.prepare_rebalance(now);
                self.maybe_complete_join(now);
                Waiting::Wait(rx)
            }
            GroupState::Empty | GroupState::Dead => Waiting::Ready(Err(GroupError::UnknownMemberId)),
        }
    }

    fn update_and_wait(member: &mut Member, p: JoinParams) -> oneshot::Receiver<Result<JoinResult, GroupError>> {
        member.protocols = p.protocols;
        member.session_timeout = p.session_timeout;
        member.rebalance_timeout = p.rebalance_timeout;
        member.client_id = p.client_id;
        member.client_host = p.client_host;
        let (tx, rx) = oneshot::channel();
        if let Some(old) = member.awaiting_join.replace(tx) {
            // A second JoinGroup from the same member replaces the first.
            let _ = old.send(Err(GroupError::RebalanceInProgress));
        }
        rx
    }

    /// True when the protocol type matches and the member supports a protocol every current
    /// member supports.
    fn accepts_protocols(&self, p: &JoinParams) -> bool {
        if self.protocol_type.as_deref().is_some_and(|t| t != p.protocol_type) {
            return false;
        }
        p.protocols.iter().any(|(name, _)| self.members.values().all(|m| m.supports(name)))
    }

    fn add_member(&mut self, id: String, p: JoinParams, now: Instant, cfg: &RebalanceConfig) -> Waiting<JoinResult> {
        if self.members.len() >= cfg.max_size {
            return Waiting::Ready(Err(GroupError::GroupMaxSizeReached));
        }
        if self.members.is_empty() {
            self.protocol_type = Some(p.protocol_type.clone());
        }
        if let Some(instance) = &p.group_instance_id {
            self.static_members.insert(instance.clone(), id.clone());
        }
        let (tx, rx) = oneshot::channel();
        self.members.insert(
            id.clone(),
            Member {
                member_id: id,
                group_instance_id: p.group_instance_id,
                client_id: p.client_id,
                client_host: p.client_host,
                session_timeout: p.session_timeout,
                rebalance_timeout: p.rebalance_timeout,
                protocols: p.protocols,
                assignment: Bytes::new(),
                last_heartbeat: now,
                awaiting_join: Some(tx),
                awaiting_sync: None,
            },
        );
        match self.state {
            GroupState::PreparingRebalance => {
                // New members during the initial delay push it out (up to the rebalance timeout).
                if let (Some(_), Some(deadline)) = (self.initial_delay_deadline, self.rebalance_deadline) {
                    self.initial_delay_deadline = Some((now + cfg.initial_rebalance_delay).min(deadline));
                }
            }
            _ => self.prepare_rebalance_with(now, cfg.initial_rebalance_delay),
        }
        self.maybe_complete_join(now);
        Waiting::Wait(rx)
    }

    fn replace_static_member(
        &mut self,
        old_id: &str,
        new_id: String,
        p: JoinParams,
        now: Instant,
    ) -> Waiting<JoinResult> {
        let Some(mut member) = self.members.shift_remove(old_id) else {
            return Waiting::Ready(Err(GroupError::UnknownMemberId));
        };
        // The old incarnation is fenced: anything it still waits for fails.
        if let Some(tx) = member.awaiting_join.take() {
            let _ = tx.send(Err(GroupError::FencedInstanceId));
        }
        if let Some(tx) = member.awaiting_sync.take() {
            let _ = tx.send(Err(GroupError::FencedInstanceId));
        }
        let unchanged = member.protocols == p.protocols;
        let was_leader = self.leader_id.as_deref() == Some(old_id);
        member.member_id = new_id.clone();
        member.last_heartbeat = now;
        if let Some(instance) = &p.group_instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        if was_leader {
            self.leader_id = Some(new_id.clone());
        }
        if self.state == GroupState::Stable && unchanged {
            // KIP-345: a known static member coming back with the same subscription keeps its
            // assignment and the group stays Stable, also when it is the leader (which is told
            // to skip computing an assignment; SyncGroup in Stable returns the stored one).
            self.members.insert(new_id.clone(), member);
            self.dirty = true;
            let mut result = self.current_join_result(&new_id);
            result.skip_assignment = was_leader;
            return Waiting::Ready(Ok(result));
        }
        let rx = Self::update_and_wait(&mut member, p);
        self.members.insert(new_id, member);
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(now);
        }
        self.maybe_complete_join(now);
        Waiting::Wait(rx)
    }

    fn prepare_rebalance(&mut self, now: Instant) {
        self.prepare_rebalance_with(now, Duration::ZERO);
    }

    /// Starts a rebalance. `initial_delay` applies only when the group was empty (Kafka's
    /// group.initial.rebalance.delay.ms), to gather the first members into one generation.
    fn prepare_rebalance_with(&mut self, now: Instant, initial_delay: Duration) {
        if self.state == GroupState::CompletingRebalance {
            for m in self.members.values_mut() {
                if let Some(tx) = m.awaiting_sync.take() {
                    let _ = tx.send(Err(GroupError::RebalanceInProgress));
                }
            }
        }
        let was_empty = self.state == GroupState::Empty;
        self.transition(GroupState::PreparingRebalance);
        let timeout = self.members.values().map(|m| m.rebalance_timeout).max().unwrap_or_default();
        let deadline = now + timeout;
        self.rebalance_deadline = Some(deadline);
        self.initial_delay_deadline =
            (was_empty && !initial_delay.is_zero()).then(|| (now + initial_delay).min(deadline));
    }

    fn maybe_complete_join(&mut self, now: Instant) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let all_joined = self.pending.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some());
        let delay_over = self.initial_delay_deadline.is_none_or(|d| now >= d);
        if all_joined && delay_over {
            self.complete_join();
        }
    }

    /// Ends the join phase: members that did not rejoin are dropped, a new generation starts,
    /// and every waiting member gets its JoinGroup response (the leader with everyone's metadata).
    fn complete_join(&mut self) {
        let gone: Vec<String> =
            self.members.values().filter(|m| m.awaiting_join.is_none()).map(|m| m.member_id.clone()).collect();
        for id in gone {
            self.remove_member(&id);
        }
        self.pending.clear();
        self.generation_id += 1;
        self.rebalance_deadline = None;
        self.initial_delay_deadline = None;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.leader_id = None;
            self.transition(GroupState::Empty);
            return;
        }
        self.protocol_name = self.select_protocol();
        if !self.leader_id.as_ref().is_some_and(|l| self.members.contains_key(l)) {
            self.leader_id = self.members.keys().next().cloned();
        }
        self.transition(GroupState::CompletingRebalance);
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let result = self.current_join_result(&id);
            if let Some(m) = self.members.get_mut(&id) {
                m.assignment = Bytes::new();
                if let Some(tx) = m.awaiting_join.take() {
                    let _ = tx.send(Ok(result));
                }
            }
        }
    }

    /// The protocol every member supports that gets the most first-choice votes.
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| self.members.values().all(|m| m.supports(n)))
            .collect();
        let mut votes: IndexMap<&str, usize> = candidates.iter().map(|c| (*c, 0)).collect();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(&n.as_str())) {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        let max = votes.values().copied().max()?;
        votes.into_iter().find(|(_, v)| *v == max).map(|(n, _)| n.to_string())
    }

    fn current_join_result(&self, member_id: &str) -> JoinResult {
        let is_leader = self.leader_id.as_deref() == Some(member_id);
        let protocol = self.protocol_name.clone().unwrap_or_default();
        JoinResult {
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader_id: self.leader_id.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if is_leader {
                self.members
                    .values()
                    .map(|m| JoinedMember {
                        member_id: m.member_id.clone(),
                        group_instance_id: m.group_instance_id.clone(),
                        metadata: m.metadata_for(&protocol),
                    })
                    .collect()
            } else {
                Vec::new()
            },
            skip_assignment: false,
        }
    }

    fn remove_member(&mut self, id: &str) -> Option<Member> {
        let m = self.members.shift_remove(id)?;
        if let Some(instance) = &m.group_instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(id) {
                self.static_members.remove(instance);
            }
        }
        if self.leader_id.as_deref() == Some(id) {
            self.leader_id = None;
        }
        Some(m)
    }

    /// Checks a member's identity for SyncGroup, Heartbeat and OffsetCommit.
    fn check_member(&self, member_id: &str, instance: Option<&str>, generation: i32) -> Result<(), GroupError> {
        if let Some(instance) = instance {
            if let Some(id) = self.static_members.get(instance) {
                if id != member_id {
                    return Err(GroupError::FencedInstanceId);
                }
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(GroupError::UnknownMemberId);
        }
        if generation != self.generation_id {
            return Err(GroupError::IllegalGeneration);
        }
        Ok(())
    }

    pub fn sync(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Waiting<SyncResult> {
        if matches!(self.state, GroupState::Empty | GroupState::Dead) {
            return Waiting::Ready(Err(GroupError::UnknownMemberId));
        }
        if let Err(e) = self.check_member(member_id, instance, generation) {
            return Waiting::Ready(Err(e));
        }
        let result = |g: &Group, m: &Member| SyncResult {
            protocol_type: g.protocol_type.clone(),
            protocol_name: g.protocol_name.clone(),
            assignment: m.assignment.clone(),
        };
        match self.state {
            GroupState::PreparingRebalance => Waiting::Ready(Err(GroupError::RebalanceInProgress)),
            GroupState::Stable => match self.members.get(member_id) {
                Some(m) => Waiting::Ready(Ok(result(self, m))),
                None => Waiting::Ready(Err(GroupError::UnknownMemberId)),
            },
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = self.members.get_mut(member_id) {
                    m.last_heartbeat = now;
                    m.awaiting_sync = Some(tx);
                }
                if self.leader_id.as_deref() == Some(member_id) {
                    for (id, assignment) in assignments {
                        if let Some(m) = self.members.get_mut(&id) {
                            m.assignment = assignment;
                        }
                    }
                    self.transition(GroupState::Stable);
                    let ids: Vec<String> = self.members.keys().cloned().collect();
                    for id in ids {
                        let Some(m) = self.members.get(&id) else {
                            continue;
                        };
                        let r = result(self, m);
                        if let Some(tx) = self.members.get_mut(&id).and_then(|m| m.awaiting_sync.take()) {
                            let _ = tx.send(Ok(r));
                        }
                    }
                }
                Waiting::Wait(rx)
            }
            GroupState::Empty | GroupState::Dead => Waiting::Ready(Err(GroupError::UnknownMemberId)),
        }
    }

    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), GroupError> {
        if matches!(self.state, GroupState::Empty | GroupState::Dead) {
            return Err(GroupError::UnknownMemberId);
        }
        self.check_member(member_id, instance, generation)?;
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_heartbeat = now;
        }
        match self.state {
            GroupState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// Removes the given members (by member id, or by instance id for static members).
    pub fn leave(&mut self, leaving: &[(String, Option<String>)], now: Instant) -> Vec<Result<String, GroupError>> {
        let mut any = false;
        let results = leaving
            .iter()
            .map(|(member_id, instance)| {
                let id = match (member_id.is_empty(), instance) {
                    (true, Some(i)) => self.static_members.get(i).cloned().ok_or(GroupError::UnknownMemberId)?,
                    _ => member_id.clone(),
                };
                if let Some(i) = instance {
                    if self.static_members.get(i).is_some_and(|known| *known != id) {
                        return Err(GroupError::FencedInstanceId);
                    }
                }
                if self.pending.remove(&id).is_some() {
                    any = true;
                    return Ok(id);
                }
                self.remove_member(&id).ok_or(GroupError::UnknownMemberId)?;
                any = true;
                Ok(id)
            })
            .collect();
        if any {
            self.members_changed(now);
        }
        results
    }

    fn members_changed(&mut self, now: Instant) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now);
                self.maybe_complete_join(now);
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(now),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Timers: unused member ids, session timeouts, rebalance deadlines, the initial delay.
    pub fn tick(&mut self, now: Instant) {
        self.pending.retain(|_, expires| *expires > now);
        match self.state {
            GroupState::PreparingRebalance if self.rebalance_deadline.is_some_and(|d| now >= d) => {
                self.complete_join();
            }
            GroupState::PreparingRebalance | GroupState::CompletingRebalance | GroupState::Stable => {
                // A member whose session ran out is gone, unless it waits in JoinGroup: during
                // a rebalance too, not at its deadline, which can be minutes away
                // (max.poll.interval.ms). As Kafka 4.1's coordinator (a heartbeat expiring
                // unless the member awaits a join).
                let expired: Vec<String> = self
                    .members
                    .values()
                    .filter(|m| m.awaiting_join.is_none() && m.session_expired(now))
                    .map(|m| m.member_id.clone())
                    .collect();
                for id in &expired {
                    tracing::info!(group = %self.group_id, member = %id, state = ?self.state, "member session expired");
                    if let Some(mut m) = self.remove_member(id) {
                        if let Some(tx) = m.awaiting_sync.take() {
                            let _ = tx.send(Err(GroupError::UnknownMemberId));
                        }
                    }
                }
                // In a rebalance this also ends the join phase once the rest have joined (or
                // the initial delay is over).
                if !expired.is_empty() || self.state == GroupState::PreparingRebalance {
                    self.members_changed(now);
                }
            }
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Validates an OffsetCommit's member and generation. A negative generation is a "simple"
    /// commit (a consumer that assigns partitions itself), allowed while the group has no members.
    pub fn check_commit(&self, member_id: &str, instance: Option<&str>, generation: i32) -> Result<(), GroupError> {
        if generation < 0 && self.members.is_empty() {
            return Ok(());
        }
        self.check_member(member_id, instance, generation)?;
        if self.state == GroupState::CompletingRebalance {
            return Err(GroupError::RebalanceInProgress);
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.pending.is_empty()
    }

    pub fn mark_dead(&mut self) {
        self.transition(GroupState::Dead);
    }
}

#[cfg(test)]
mod tests;
