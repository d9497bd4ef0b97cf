//! `consumer` protocol (KIP-848) groups in the coordinator: ConsumerGroupHeartbeat and
//! ConsumerGroupDescribe, each handed to the group's [`consumer::ConsumerGroup`] under its
//! entry's lock. A group id is a classic group or a consumer group, never both (mixed groups,
//! Kafka's upgrade path, are not served): a consumer member may take over an empty classic
//! group, and a classic member an empty consumer group, as Kafka converts empty groups.
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
                return Err(HeartbeatError::GroupIdNotFound(format!("Group {group_id} is not a consumer group.")));
            }
            if !joining {
                return Err(unknown());
            }
            entry.consumer = Some(ConsumerGroup::new(group_id));
        }
        let was_empty = entry.is_empty();
        let group = entry.consumer.as_mut().expect("set above");
        let result = group.heartbeat(params, version, topics, now, &self.cfg.consumer);
        if entry.is_empty() && !was_empty {
            entry.empty_since_ms = crate::clock::now_ms();
        }
        self.persist_consumer(&mut entry);
        result
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
