//! Membership: JoinGroup, SyncGroup, Heartbeat and LeaveGroup, each handed to the group's
//! rebalance state machine under its lock.

use super::*;

impl GroupCoordinator {
    pub fn join(&self, group_id: &str, params: JoinParams, now: Instant) -> Waiting<JoinResult> {
        if group_id.is_empty() {
            return Waiting::Ready(Err(GroupError::InvalidGroupId));
        }
        let entry = self.entry_or_create(group_id);
        let mut entry = entry.lock();
        // A classic member may take over an empty consumer group (Kafka converts it); joining
        // a consumer group with members would make a mixed group, which gregor does not serve.
        match &entry.consumer {
            Some(c) if !c.is_empty() => return Waiting::Ready(Err(GroupError::InconsistentGroupProtocol)),
            Some(_) => {
                // The consumer group's records go, or a replay would bring it back beside the
                // classic group.
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
}
