//! Group administration: ListGroups, DescribeGroups and DeleteGroups.

use super::*;

impl GroupCoordinator {
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

    /// Every group as ListGroups shows it: (group id, protocol type, state name, group type),
    /// consumer (KIP-848) groups with their own states and type `consumer`, as Kafka 4.1.
    pub fn list_typed(&self) -> Vec<(String, String, &'static str, &'static str)> {
        let groups: Vec<_> = self.groups.read().values().cloned().collect();
        let mut out: Vec<_> = groups
            .iter()
            .map(|e| {
                let e = e.lock();
                match &e.consumer {
                    Some(c) => (c.group_id.clone(), "consumer".to_string(), c.state().kafka_name(), "consumer"),
                    None => (
                        e.group.group_id.clone(),
                        e.group.protocol_type.clone().unwrap_or_default(),
                        e.group.state.kafka_name(),
                        "classic",
                    ),
                }
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

    /// Deletes groups that have no members, with their offsets and, for a consumer group, the
    /// tombstones of all its records.
    pub fn delete_group(&self, group_id: &str) -> Result<(), GroupError> {
        let entry = self.entry(group_id).ok_or(GroupError::GroupIdNotFound)?;
        let mut e = entry.lock();
        if !e.is_empty() {
            return Err(GroupError::NonEmptyGroup);
        }
        // Offsets that open transactions hold go too (Kafka writes their tombstones as well), or
        // a replay would apply them when their transaction's commit marker is read.
        let keys: std::collections::BTreeSet<(String, i32)> =
            e.offsets.keys().chain(e.pending.values().flat_map(|p| p.keys())).cloned().collect();
        let consumer = e.consumer_written.diff(group_id, &consumer::persist::Image::default());
        let mut tombstones: Vec<Vec<u8>> = consumer.into_iter().map(|(k, _)| k).collect();
        tombstones.extend(keys.iter().map(|(t, p)| offsets::encode_key(group_id, t, *p)));
        tombstones.push(metadata_record::encode_key(group_id));
        self.append_tombstones(&tombstones)?;
        e.consumer = None;
        e.consumer_written = consumer::persist::Image::default();
        e.offsets.clear();
        e.written_at.clear();
        e.pending.clear();
        e.group.mark_dead();
        drop(e);
        self.groups.write().remove(group_id);
        Ok(())
    }
}
