//! Committed offsets: OffsetCommit (persisted before it is answered), OffsetFetch and
//! OffsetDelete.

use super::*;

/// (topic, partition, offset) of one offset a commit asks for.
pub(super) type OffsetToCommit = (String, i32, CommittedOffset);

impl GroupCoordinator {
    /// Validates and records committed offsets; the caller waits for `durable_at` before
    /// answering. `known_partition` tells whether a topic partition exists.
    pub fn commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance: Option<&str>,
        generation: i32,
        offsets: Vec<(String, i32, CommittedOffset)>,
        known_partition: impl Fn(&str, i32) -> bool,
    ) -> Result<CommitOutcome, GroupError> {
        if group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        let entry = self.entry_or_create(group_id);
        let mut entry = entry.lock();
        entry.check_commit(member_id, instance, generation)?;
        let (results, accepted) = self.check_offsets(&offsets, known_partition);
        if accepted.is_empty() {
            return Ok(CommitOutcome { results, durable_at: None });
        }
        let keys: Vec<(Vec<u8>, Vec<u8>)> =
            accepted.iter().map(|(t, p, o)| (offsets::encode_key(group_id, t, *p), offsets::encode_value(o))).collect();
        let end = self.append(&keys.iter().map(|(k, v)| (Some(&k[..]), Some(&v[..]))).collect::<Vec<_>>())?;
        // One batch: the records sit at the offsets just before `end`, in order.
        let first = end - accepted.len() as i64;
        for (i, (t, p, o)) in accepted.into_iter().enumerate() {
            entry.set_offset((t.clone(), *p), o.clone(), first + i as i64);
        }
        Ok(CommitOutcome { results, durable_at: Some((self.log.clone(), end)) })
    }

    /// Per-offset checks of a commit (metadata size, known partition): the results, and the
    /// offsets that passed.
    pub(super) fn check_offsets<'a>(
        &self,
        offsets: &'a [(String, i32, CommittedOffset)],
        known_partition: impl Fn(&str, i32) -> bool,
    ) -> (Vec<Result<(), GroupError>>, Vec<&'a OffsetToCommit>) {
        let results: Vec<Result<(), GroupError>> = offsets
            .iter()
            .map(|(topic, partition, o)| {
                if o.metadata.len() > self.cfg.offset_metadata_max_bytes {
                    Err(GroupError::OffsetMetadataTooLarge)
                } else if !known_partition(topic, *partition) {
                    Err(GroupError::UnknownTopicOrPartition)
                } else {
                    Ok(())
                }
            })
            .collect();
        let accepted = offsets.iter().zip(&results).filter(|(_, r)| r.is_ok()).map(|(o, _)| o).collect();
        (results, accepted)
    }

    /// Committed offsets of a group: all of them (`None`), or the requested partitions, with
    /// `None` for partitions without a commit.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        wanted: Option<&[(String, Vec<i32>)]>,
    ) -> Vec<(String, i32, Option<CommittedOffset>)> {
        let entry = self.entry(group_id);
        let entry = entry.as_ref().map(|e| e.lock());
        match wanted {
            None => entry
                .map(|e| e.offsets.iter().map(|((t, p), o)| (t.clone(), *p, Some(o.clone()))).collect())
                .unwrap_or_default(),
            Some(list) => list
                .iter()
                .flat_map(|(t, parts)| parts.iter().map(move |p| (t, *p)))
                .map(|(t, p)| (t.clone(), p, entry.as_ref().and_then(|e| e.offsets.get(&(t.clone(), p)).cloned())))
                .collect(),
        }
    }

    /// OffsetDelete: removes committed offsets unless members subscribe to the topic.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        let entry = self.entry(group_id).ok_or(GroupError::GroupIdNotFound)?;
        let mut e = entry.lock();
        let subscribed: Vec<String> = if let Some(c) = &e.consumer {
            c.subscribed_topics().into_iter().collect()
        } else if e.group.protocol_type.as_deref() == Some("consumer") {
            e.group
                .members
                .values()
                .flat_map(|m| subscribed_topics(&m.metadata_for(e.group.protocol_name.as_deref().unwrap_or_default())))
                .collect()
        } else {
            Vec::new()
        };
        let results: Vec<Result<(), GroupError>> = partitions
            .iter()
            .map(|(t, _)| if subscribed.contains(t) { Err(GroupError::GroupSubscribedToTopic) } else { Ok(()) })
            .collect();
        let tombstones: Vec<Vec<u8>> = partitions
            .iter()
            .zip(&results)
            .filter(|((t, p), r)| r.is_ok() && e.has_offset_or_pending(&(t.clone(), *p)))
            .map(|((t, p), _)| offsets::encode_key(group_id, t, *p))
            .collect();
        if !tombstones.is_empty() {
            self.append_tombstones(&tombstones)?;
        }
        for ((t, p), r) in partitions.iter().zip(&results) {
            if r.is_ok() {
                e.remove_offset(&(t.clone(), *p));
            }
        }
        Ok(results)
    }
}
