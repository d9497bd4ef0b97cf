//! Replay and persistence: opening `__consumer_offsets` at start, replaying it into the
//! groups, compacting it when it has grown, and appending commits and tombstones to it.

use super::*;

impl GroupCoordinator {
    /// Opens `__consumer_offsets` and replays every committed offset.
    pub fn open(logs: &LogManager, cfg: CoordinatorConfig, now_ms: i64) -> io::Result<Self> {
        let pc = PartitionConfig {
            segment_bytes: 100 << 20,
            segment_ms: 7 * 24 * 3600 * 1000,
            index_interval_bytes: 4096,
            max_message_bytes: 1 << 20,
            retention_ms: -1,
            retention_bytes: -1,
            log_append_time: false,
            flush_interval_messages: None,
            compact: false,
            // Nothing reads this log through the high watermark; commits wait for their own
            // fsync (`CommitOutcome::durable_at`) before they are answered.
            durable: false,
        };
        let log = logs.open(TopicPartition::new(OFFSETS_TOPIC, 0), pc, now_ms)?;
        let coordinator = Self { groups: RwLock::new(HashMap::new()), log, cfg };
        let kept = coordinator.replay(now_ms)?;
        coordinator.checkpoint(now_ms, &kept)?;
        Ok(coordinator)
    }

    /// Rebuilds groups and committed offsets from the log. Returns the records it could not
    /// understand (a key or value version gregor does not know, e.g. written by a newer
    /// release or by Kafka itself), latest per key: they changed nothing, are reported, and
    /// must survive the start-time compaction. Only a null value (tombstone) deletes.
    pub(super) fn replay(&self, now_ms: i64) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut not_understood: indexmap::IndexMap<Vec<u8>, Vec<u8>> = indexmap::IndexMap::new();
        let started = std::time::Instant::now();
        let mut offset = self.log.offsets().log_start_offset;
        let mut records = 0usize;
        let mut group_records: HashMap<String, metadata_record::GroupRecord> = HashMap::new();
        let mut groups = self.groups.write();
        loop {
            let chunk = match self.log.read(offset, 1 << 20, true) {
                Ok(r) => r.records,
                Err(crate::log::ReadError::Io(e)) => return Err(e),
                // Replaying past it would silently drop every commit after it.
                Err(e @ crate::log::ReadError::Corrupt { .. }) => {
                    return Err(io::Error::other(format!("cannot replay {OFFSETS_TOPIC}: {e}")))
                }
                Err(crate::log::ReadError::OffsetOutOfRange { .. }) => break,
            };
            if chunk.is_empty() {
                break;
            }
            let mut rest = &chunk[..];
            while let Some((_, len)) = batch::peek_len(rest) {
                let Some(bytes) = rest.get(..len) else { break };
                let header = batch::BatchHeader::parse(bytes);
                let replayed = batch::with_records(bytes, |recs| {
                    for r in recs {
                        let Some(key) = r.key else { continue };
                        let understood = if let Some(group) = metadata_record::decode_key(key) {
                            match r.value.map(metadata_record::decode_value) {
                                None => {
                                    group_records.remove(&group);
                                    true
                                }
                                Some(Some(rec)) => {
                                    group_records.insert(group, rec);
                                    true
                                }
                                Some(None) => false,
                            }
                        } else if let Some((group, topic, partition)) = offsets::decode_key(key) {
                            match r.value.map(offsets::decode_value) {
                                Some(None) => false,
                                value => {
                                    let entry = groups
                                        .entry(group.clone())
                                        .or_insert_with(|| Arc::new(Mutex::new(GroupEntry::new(&group, now_ms))));
                                    let mut entry = entry.lock();
                                    match value.flatten() {
                                        Some(v) => entry.offsets.insert((topic, partition), v),
                                        None => entry.offsets.remove(&(topic, partition)),
                                    };
                                    true
                                }
                            }
                        } else {
                            false
                        };
                        records += 1;
                        if understood {
                            // A later understood record for the key supersedes what was kept.
                            not_understood.shift_remove(key);
                            continue;
                        }
                        warn!(offset = r.offset, key_version = version_of(Some(key)), value_version = version_of(r.value),
                            "{OFFSETS_TOPIC} holds a record gregor does not understand; keeping it and changing nothing");
                        match r.value {
                            Some(v) => {
                                not_understood.insert(key.to_vec(), v.to_vec());
                            }
                            None => {
                                not_understood.shift_remove(key);
                            }
                        }
                    }
                });
                if let Err(e) = replayed {
                    return Err(io::Error::other(format!(
                        "cannot read the records of {OFFSETS_TOPIC} at offset {offset}: {e}"
                    )));
                }
                if let Some(h) = header {
                    offset = h.last_offset() + 1;
                }
                rest = &rest[len..];
            }
        }
        let now = Instant::now();
        for (id, rec) in group_records {
            let group = Group::restore(&id, &rec, now);
            if group.state == GroupState::Empty && !groups.contains_key(&id) {
                continue;
            }
            let entry = groups.entry(id.clone()).or_insert_with(|| Arc::new(Mutex::new(GroupEntry::new(&id, now_ms))));
            entry.lock().group = group;
        }
        groups.retain(|_, e| {
            let e = e.lock();
            !e.offsets.is_empty() || !e.group.is_empty()
        });
        if records > 0 {
            info!(
                groups = groups.len(),
                records,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "replayed committed offsets"
            );
        }
        Ok(not_understood.into_iter().collect())
    }

    /// Compacts `__consumer_offsets` at start, when it has grown past `checkpoint_bytes`:
    /// the live state (every committed offset and group record) is written as the first
    /// batches of a new segment, and every older segment is deleted. Replay from the new log
    /// start yields the same state. Runs before the broker serves, so nothing races it.
    pub(super) fn checkpoint(&self, now_ms: i64, kept: &[(Vec<u8>, Vec<u8>)]) -> io::Result<()> {
        if self.log.size_bytes() < self.cfg.checkpoint_bytes {
            return Ok(());
        }
        let mut records: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for entry in self.groups.read().values() {
            let e = entry.lock();
            let id = &e.group.group_id;
            if !e.group.is_empty() {
                records
                    .push((metadata_record::encode_key(id), metadata_record::encode_value(&e.group.to_record(now_ms))));
            }
            for ((t, p), o) in &e.offsets {
                records.push((offsets::encode_key(id, t, *p), offsets::encode_value(o)));
            }
        }
        // Records gregor could not understand come last, as they were the latest for their keys.
        records.extend(kept.iter().cloned());
        let before = self.log.size_bytes();
        self.log.roll(now_ms)?;
        let start = self.log.offsets().log_end_offset;
        for chunk in records.chunks(1000) {
            let kvs: Vec<batch::KeyValue<'_>> = chunk.iter().map(|(k, v)| (Some(&k[..]), Some(&v[..]))).collect();
            self.log.append(&batch::build(&kvs, now_ms), now_ms).map_err(|e| io::Error::other(e.to_string()))?;
        }
        self.log.flush_blocking()?;
        let deleted = self.log.delete_segments_before(start)?;
        info!(
            records = records.len(),
            bytes_before = before,
            bytes_after = self.log.size_bytes(),
            segments_deleted = deleted,
            "compacted {OFFSETS_TOPIC}"
        );
        Ok(())
    }

    /// Writes the group's metadata record once it reached Stable or Empty. A failed write only
    /// costs a rebalance after a restart, so it is logged and not reported to the member.
    pub(super) fn persist_if_dirty(&self, e: &mut GroupEntry) {
        if !e.group.take_dirty() {
            return;
        }
        let key = metadata_record::encode_key(&e.group.group_id);
        let value = metadata_record::encode_value(&e.group.to_record(crate::clock::now_ms()));
        if let Err(err) = self.append(&[(Some(&key[..]), Some(&value[..]))]) {
            warn!(group = %e.group.group_id, error = %err, "cannot persist group metadata");
        }
    }

    /// Writes null-valued records for the given keys, deleting those offsets on replay.
    pub(super) fn append_tombstones(&self, keys: &[Vec<u8>]) -> Result<i64, GroupError> {
        self.append(&keys.iter().map(|k| (Some(&k[..]), None)).collect::<Vec<_>>())
    }

    pub(super) fn append(&self, records: &[batch::KeyValue<'_>]) -> Result<i64, GroupError> {
        let bytes = batch::build(records, crate::clock::now_ms());
        let info = self.log.append(&bytes, crate::clock::now_ms()).map_err(|e| {
            warn!(error = %e, "cannot write to {OFFSETS_TOPIC}");
            GroupError::Storage(e.to_string())
        })?;
        Ok(info.last_offset + 1)
    }
}
