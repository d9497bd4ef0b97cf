//! Membership: JoinGroup, SyncGroup, Heartbeat and LeaveGroup, each handed to the group's
//! rebalance state machine under its lock, or, when the group id is a `consumer` group, to
//! that group, which serves classic members itself (KIP-848's mixed groups, see
//! `consumer::classic`).

use super::consumer::TopicSource;
use super::*;

impl GroupCoordinator {
    /// One JoinGroup. `topics` tells which topics exist, for a `consumer` group that assigns
    /// the member itself. May write to `__consumer_offsets`.
    pub fn join(
        &self,
        group_id: &str,
        params: JoinParams,
        topics: &dyn TopicSource,
        now: Instant,
    ) -> Waiting<JoinResult> {
        if group_id.is_empty() {
            return Waiting::Ready(Err(GroupError::InvalidGroupId));
        }
        let entry = self.entry_or_create(group_id);
        let mut entry = entry.lock();
        match &mut entry.consumer {
            // A classic member joins a consumer group that has members: the group assigns it.
            Some(c) if !c.is_empty() => {
                let r = &self.cfg.rebalance;
                if params.session_timeout < r.min_session_timeout || params.session_timeout > r.max_session_timeout {
                    return Waiting::Ready(Err(GroupError::InvalidSessionTimeout));
                }
                let result = c.classic_join(params, topics, now, &self.cfg.consumer);
                self.persist_consumer(&mut entry);
                return Waiting::Ready(result);
            }
            // An empty consumer group becomes a classic group (as Kafka converts it): its
            // records go, or a replay would bring it back beside the classic group.
            Some(_) => {
                entry.consumer = None;
                self.persist_consumer(&mut entry);
            }
            None => {}
        }
        let outcome = entry.group.join(params, now, &self.cfg.rebalance);
        self.persist_if_dirty(&mut entry);
        outcome
    }

    pub fn sync(
        &self,
        group_id: &str,
        req: SyncRequest<'_>,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Waiting<SyncResult> {
        let SyncRequest { member_id, instance, generation, protocol_type, protocol_name } = req;
        match self.entry(group_id) {
            None => Waiting::Ready(Err(GroupError::UnknownMemberId)),
            Some(e) => {
                let mut e = e.lock();
                if let Some(c) = e.consumer.as_mut() {
                    let protocol = (protocol_type, protocol_name);
                    return Waiting::Ready(c.classic_sync(member_id, instance, generation, protocol, now));
                }
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
            Some(e) => {
                let mut e = e.lock();
                match e.consumer.as_mut() {
                    Some(c) => c.classic_heartbeat(member_id, instance, generation, now),
                    None => e.group.heartbeat(member_id, instance, generation, now),
                }
            }
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
        let results = match entry.consumer.as_mut() {
            Some(c) => {
                let results = c.classic_leave(leaving);
                self.after_consumer_change(&mut entry, now);
                results
            }
            None => {
                let results = entry.group.leave(leaving, now);
                self.persist_if_dirty(&mut entry);
                results
            }
        };
        if entry.is_empty() {
            entry.empty_since_ms = crate::clock::now_ms();
        }
        Ok(results)
    }
}
