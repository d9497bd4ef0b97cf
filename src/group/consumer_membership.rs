//! `consumer` protocol (KIP-848) groups in the coordinator: ConsumerGroupHeartbeat and
//! ConsumerGroupDescribe, each handed to the group's [`consumer::ConsumerGroup`] under its
//! entry's lock.
//!
//! A group id is a classic group or a consumer group. A consumer member may take over an
//! empty classic group, and a classic member an empty consumer group, as Kafka converts empty
//! groups. With members, `group.consumer.migration.policy` (Kafka 4.1's online migration)
//! decides: a consumer member joining a classic group of protocol type `consumer` upgrades it
//! (its members become classic members of the consumer group, see `consumer::classic`), and a
//! consumer group whose last consumer member left while classic members remain is downgraded
//! back to a classic group, which rebalances.
//!
//! Every heartbeat that changes the group appends the changed records to `__consumer_offsets`
//! under the group's lock (see `persistence`'s `persist_consumer`), so callers run it off the
//! async runtime; one that changes nothing appends nothing. After a restart the group is
//! restored from those records and its members carry on with their epochs.

use super::consumer::{ConsumerGroup, HeartbeatError, HeartbeatParams, HeartbeatResult, TopicSource};
use super::*;

impl GroupCoordinator {
    /// One ConsumerGroupHeartbeat. `topics` tells which topics exist and which the member may
    /// describe; it is asked under the group's lock. May write to `__consumer_offsets`.
    pub fn consumer_heartbeat(
        &self,
        group_id: &str,
        params: HeartbeatParams,
        version: i16,
        topics: &dyn TopicSource,
        now: Instant,
    ) -> Result<HeartbeatResult, HeartbeatError> {
        if group_id.trim().is_empty() {
            return Err(HeartbeatError::InvalidRequest("GroupId can't be empty.".into()));
        }
        let joining = params.member_epoch == 0;
        // Not known here (never created, deleted, or expired): a member heartbeating with an
        // epoch must rejoin.
        let unknown = || {
            HeartbeatError::UnknownMemberId(format!("Member {} is not a member of group {group_id}.", params.member_id))
        };
        let entry = if joining { self.entry_or_create(group_id) } else { self.entry(group_id).ok_or_else(unknown)? };
        let mut entry = entry.lock();
        if entry.consumer.is_none() {
            if !entry.group.is_empty() {
                if !joining || !self.may_upgrade(&entry.group) {
                    return Err(HeartbeatError::GroupIdNotFound(format!("Group {group_id} is not a consumer group.")));
                }
                self.upgrade(&mut entry, topics, now)?;
            } else if !joining {
                return Err(unknown());
            } else {
                entry.consumer = Some(ConsumerGroup::new(group_id));
            }
        }
        let was_empty = entry.is_empty();
        let group = entry.consumer.as_mut().expect("set above");
        let result = group.heartbeat(params, version, topics, now, &self.cfg.consumer);
        if entry.is_empty() && !was_empty {
            entry.empty_since_ms = crate::clock::now_ms();
        }
        self.after_consumer_change(&mut entry, now);
        result
    }

    /// Kafka's `validateOnlineUpgrade`: the policy allows it, the classic group speaks the
    /// embedded consumer protocol, and it is not larger than a consumer group may be.
    fn may_upgrade(&self, g: &Group) -> bool {
        let allowed = self.cfg.consumer.migration.upgrades()
            && g.protocol_type.as_deref() == Some(consumer::classic::PROTOCOL_TYPE)
            && g.members.len() <= self.cfg.consumer.max_size;
        if !allowed {
            info!(group = %g.group_id, policy = ?self.cfg.consumer.migration, "classic group with members not upgraded to a consumer group");
        }
        allowed
    }

    /// Turns the entry's classic group (with members) into a consumer group: members waiting
    /// in JoinGroup or SyncGroup are told to rejoin, the classic group's record is deleted and
    /// the consumer group's records are written (with the caller's change).
    fn upgrade(&self, entry: &mut GroupEntry, topics: &dyn TopicSource, now: Instant) -> Result<(), HeartbeatError> {
        let group_id = entry.group.group_id.clone();
        let converted = ConsumerGroup::from_classic(&entry.group, topics, now).map_err(|why| {
            warn!(group = %group_id, "{why}");
            HeartbeatError::GroupIdNotFound(why)
        })?;
        entry.group.release_waiters();
        if let Err(e) = self.append_tombstones(&[metadata_record::encode_key(&group_id)]) {
            warn!(group = %group_id, error = %e, "cannot delete the classic group's record; upgrading anyway");
        }
        info!(group = %group_id, members = converted.members.len(), epoch = converted.group_epoch, "classic group upgraded to a consumer group");
        entry.group = Group::new(&group_id);
        entry.consumer = Some(converted);
        Ok(())
    }

    /// After a consumer group changed: when only classic members remain (the last `consumer`
    /// member left or was fenced) and the policy allows it, the group becomes a classic group
    /// again and rebalances (Kafka's `convertToClassicGroup`); then its records are written.
    pub(super) fn after_consumer_change(&self, entry: &mut GroupEntry, now: Instant) {
        let downgrade = entry.consumer.as_ref().is_some_and(|c| {
            c.only_classic_members()
                && self.cfg.consumer.migration.downgrades()
                && c.members.len() <= self.cfg.rebalance.max_size
        });
        if !downgrade {
            self.persist_consumer(entry);
            return;
        }
        let classic = entry.consumer.take().expect("checked above").to_classic(now);
        info!(group = %classic.group_id, members = classic.members.len(), generation = classic.generation_id, "consumer group downgraded to a classic group");
        // The consumer group's tombstones first, then the classic group's record.
        self.persist_consumer(entry);
        entry.group = classic;
        self.persist_if_dirty(entry);
    }

    /// A consumer group as ConsumerGroupDescribe shows it; the error message otherwise
    /// (GROUP_ID_NOT_FOUND, as Kafka's).
    pub fn consumer_group(&self, group_id: &str) -> Result<ConsumerGroup, String> {
        let entry = self.entry(group_id).ok_or_else(|| format!("Group {group_id} not found."))?;
        let e = entry.lock();
        match &e.consumer {
            Some(c) => Ok(c.clone()),
            None if e.group.is_empty() && e.group.state == GroupState::Empty && e.offsets.is_empty() => {
                Err(format!("Group {group_id} not found."))
            }
            None => Err(format!("Group {group_id} is not a consumer group.")),
        }
    }

    /// Whether the group id names a classic or consumer group (members or committed offsets),
    /// so that it cannot also be a share group.
    pub fn exists(&self, group_id: &str) -> bool {
        self.entry(group_id).is_some_and(|e| {
            let e = e.lock();
            e.consumer.is_some() || !e.group.is_empty() || !e.offsets.is_empty()
        })
    }

    /// Whether the group id is a consumer group (DescribeGroups, a classic API, does not
    /// describe those, as Kafka's).
    pub fn is_consumer_group(&self, group_id: &str) -> bool {
        self.entry(group_id).is_some_and(|e| e.lock().consumer.is_some())
    }

    /// OffsetFetch v9+ from a member: its epoch must be current (Kafka's
    /// `ConsumerGroup.validateOffsetFetch`). Classic groups and unknown groups are not checked.
    pub fn check_fetch(&self, group_id: &str, member_id: &str, member_epoch: i32) -> Result<(), GroupError> {
        let Some(entry) = self.entry(group_id) else { return Ok(()) };
        let e = entry.lock();
        match &e.consumer {
            Some(c) => c.check_fetch(member_id, member_epoch).map_err(GroupError::from),
            None => Ok(()),
        }
    }
}
