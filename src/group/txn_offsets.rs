//! Offsets committed inside transactions (TxnOffsetCommit): written to `__consumer_offsets`
//! as transactional records of the producer, held pending, and applied or dropped when the
//! transaction coordinator writes the producer's marker into `__consumer_offsets`.

use super::*;
use crate::log::AppendError;

impl GroupCoordinator {
    /// TxnOffsetCommit: records offsets for the producer's transaction. They become the
    /// group's committed offsets only when the transaction commits. The member and generation
    /// are checked when the request carries them (v3+, a consumer inside a group).
    #[allow(clippy::too_many_arguments)]
    pub fn txn_commit(
        &self,
        group_id: &str,
        producer_id: i64,
        epoch: i16,
        member: Option<(&str, Option<&str>, i32)>,
        offsets: Vec<(String, i32, CommittedOffset)>,
        known_partition: impl Fn(&str, i32) -> bool,
    ) -> Result<CommitOutcome, GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        let entry = self.entry_or_create(group_id);
        let mut entry = entry.lock();
        if let Some((member_id, instance, generation)) = member.filter(|(_, _, generation)| *generation >= 0) {
            entry.check_commit(member_id, instance, generation)?;
        }
        let (results, accepted) = self.check_offsets(&offsets, known_partition);
        if accepted.is_empty() {
            return Ok(CommitOutcome { results, durable_at: None });
        }
        let records: Vec<(Vec<u8>, Vec<u8>)> =
            accepted.iter().map(|(t, p, o)| (offsets::encode_key(group_id, t, *p), offsets::encode_value(o))).collect();
        let kvs: Vec<batch::KeyValue<'_>> = records.iter().map(|(k, v)| (Some(&k[..]), Some(&v[..]))).collect();
        let now = crate::clock::now_ms();
        let bytes = batch::build_transactional(&kvs, now, producer_id, epoch);
        let info = self.log.append(&bytes, now).map_err(|e| match e {
            AppendError::Sequence(_) => GroupError::ProducerFenced,
            e => {
                warn!(error = %e, "cannot write to {OFFSETS_TOPIC}");
                GroupError::Storage(e.to_string())
            }
        })?;
        let pending = entry.pending.entry(producer_id).or_default();
        for (i, (t, p, o)) in accepted.into_iter().enumerate() {
            pending.insert((t.clone(), *p), (o.clone(), info.base_offset + i as i64));
        }
        Ok(CommitOutcome { results, durable_at: Some((self.log.clone(), info.last_offset + 1)) })
    }

    /// The transaction coordinator's marker for `producer_id` in `__consumer_offsets`: its
    /// pending offsets become committed (or are dropped), after the marker is durable.
    pub fn end_txn(&self, producer_id: i64, epoch: i16, control: ControlType) -> Result<(), String> {
        let now = crate::clock::now_ms();
        let info = self.log.append_marker(producer_id, epoch, control, 0, now).map_err(|e| e.to_string())?;
        if self.log.durable_offset() <= info.last_offset {
            self.log.flush_blocking().map_err(|e| e.to_string())?;
        }
        for entry in self.groups.read().values() {
            let mut e = entry.lock();
            if let Some(offsets) = e.pending.remove(&producer_id) {
                if control == ControlType::Commit {
                    for (key, (o, written_at)) in offsets {
                        e.apply_txn_offset(key, o, written_at);
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether a transaction's offsets for the partition wait for its end (OffsetFetch with
    /// `require_stable` answers UNSTABLE_OFFSET_COMMIT then).
    pub fn has_pending(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        let Some(entry) = self.entry(group_id) else { return false };
        let e = entry.lock();
        let key = (topic.to_string(), partition);
        e.pending.values().any(|p| p.contains_key(&key))
    }
}
