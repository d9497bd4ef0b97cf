//! Replay and persistence: opening `__consumer_offsets` at start, replaying it into the
//! groups, compacting it when it has grown, and appending commits, group records and
//! tombstones to it.

use super::consumer::persist::Image;
use super::consumer::{records as consumer_records, ConsumerGroup, TopicNames};
use super::*;

impl GroupCoordinator {
    /// Opens `__consumer_offsets` and replays every committed offset and group. `topics` names
    /// the topic ids that consumer group records hold.
    pub fn open(logs: &LogManager, cfg: CoordinatorConfig, topics: &dyn TopicNames, now_ms: i64) -> io::Result<Self> {
        // Commits wait for their own fsync (`CommitOutcome::durable_at`) before they are answered.
        //
        // Compacted in the background like any compacted topic, and at start once it has grown
        // (`checkpoint`). Compaction keeps the latest record per key, so the live path and
        // replay follow Kafka's two rules that make the state independent of what compaction
        // removed: a committed transaction's offset applies only over an offset written before
        // it (a TxnOffsetCommit at 10, a plain commit at 12 and the commit marker at 14 leave
        // the offset of 12, which is also all a compacted log still has), and a tombstone also
        // drops what open transactions hold for its partition.
        let config = PartitionConfig { compact: true, ..PartitionConfig::internal() };
        let log = logs.open(TopicPartition::new(OFFSETS_TOPIC, 0), config, now_ms)?;
        let coordinator = Self { groups: RwLock::new(HashMap::new()), log, cfg };
        let kept = coordinator.replay(now_ms, topics)?;
        coordinator.checkpoint(now_ms, &kept)?;
        Ok(coordinator)
    }

    /// Forgets every group and rebuilds them all from the offsets log, as at start. Shared
    /// mode calls it when this broker becomes the group coordinator: its log of the offsets
    /// topic was just rebuilt from the store, with what the previous coordinator committed.
    pub fn reload(&self, now_ms: i64, topics: &dyn TopicNames) -> io::Result<()> {
        self.replay(now_ms, topics).map(drop)
    }

    /// Rebuilds groups and committed offsets from the log. Returns the records it could not
    /// understand (a key or value version gregor does not know, e.g. written by a newer
    /// release or by Kafka itself), latest per key: they changed nothing, are reported, and
    /// must survive the start-time compaction. Only a null value (tombstone) deletes.
    ///
    /// Offsets committed inside a transaction (TxnOffsetCommit) wait for their producer's
    /// marker: a commit applies them, an abort drops them, and those still waiting at the end
    /// stay pending in their groups until the transaction coordinator ends the transaction.
    ///
    /// A consumer group is restored from its records once they are all read; one whose group
    /// metadata record was deleted (a tombstone) is not, whatever member records remain.
    pub(super) fn replay(&self, now_ms: i64, topics: &dyn TopicNames) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut replay = Replay { now_ms, ..Replay::default() };
        let started = std::time::Instant::now();
        let mut failed = None;
        self.log.for_each_batch(|h, bytes| {
            if failed.is_some() {
                return;
            }
            if h.is_control() {
                let waiting = replay.in_txn.remove(&h.producer_id).unwrap_or_default();
                if let Some((ControlType::Commit, _)) = batch::read_marker(bytes) {
                    for (offset, key, value) in waiting {
                        replay.apply_committed_txn(offset, &key, value.as_deref());
                    }
                }
                return;
            }
            let result = batch::with_records(bytes, |recs| {
                for r in recs {
                    let Some(key) = r.key else { continue };
                    if h.is_transactional() {
                        replay.in_txn.entry(h.producer_id).or_default().push((
                            r.offset,
                            key.to_vec(),
                            r.value.map(<[u8]>::to_vec),
                        ));
                    } else {
                        replay.apply(r.offset, key, r.value);
                    }
                }
            });
            if let Err(e) = result {
                failed = Some(io::Error::other(format!(
                    "cannot read the records of {OFFSETS_TOPIC} at offset {}: {e}",
                    h.base_offset
                )));
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        let Replay { groups: mut replayed, group_records, consumer_images, not_understood, in_txn, records, .. } =
            replay;
        for (producer_id, waiting) in in_txn {
            for (offset, key, value) in waiting {
                if let (Some((group, topic, partition)), Some(Some(v))) =
                    (offsets::decode_key(&key), value.as_deref().map(offsets::decode_value))
                {
                    let entry = replayed.entry(group.clone()).or_insert_with(|| GroupEntry::new(&group, now_ms));
                    entry.pending.entry(producer_id).or_default().insert((topic, partition), (v, offset));
                }
            }
        }
        let now = Instant::now();
        for (id, image) in consumer_images {
            let Some(group) = ConsumerGroup::restore(&id, &image, topics, &self.cfg.consumer, now) else { continue };
            let entry = replayed.entry(id.clone()).or_insert_with(|| GroupEntry::new(&id, now_ms));
            entry.consumer = Some(group);
            entry.consumer_written = image;
        }
        for (id, rec) in group_records {
            let group = Group::restore(&id, &rec, now);
            if group.state == GroupState::Empty && !replayed.contains_key(&id) {
                continue;
            }
            let entry = replayed.entry(id.clone()).or_insert_with(|| GroupEntry::new(&id, now_ms));
            if !group.is_empty() && entry.consumer.take().is_some() {
                // Both kinds with members cannot happen: converting writes the other's
                // tombstones. Should a log hold both, the classic members win, as they could
                // not have joined a consumer group that had any.
                warn!(group = %id, "{OFFSETS_TOPIC} holds a classic and a consumer group of this id; keeping the classic one");
            }
            entry.group = group;
        }
        replayed.retain(|_, e| {
            !e.offsets.is_empty() || !e.group.is_empty() || !e.pending.is_empty() || e.consumer.is_some()
        });
        if records > 0 {
            info!(
                groups = replayed.len(),
                records,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "replayed committed offsets"
            );
        }
        *self.groups.write() = replayed.into_iter().map(|(id, e)| (id, Arc::new(Mutex::new(e)))).collect();
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
        if self.groups.read().values().any(|e| !e.lock().pending.is_empty()) {
            // Offsets of open transactions live only as transactional records; a rewrite
            // would have to carry them over. Left for a start without open transactions.
            info!("{OFFSETS_TOPIC} is not compacted at this start: transactions with offsets are open");
            return Ok(());
        }
        let mut records: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut consumer_images = Vec::new();
        for entry in self.groups.read().values() {
            let e = entry.lock();
            let id = &e.group.group_id;
            if !e.group.is_empty() {
                records
                    .push((metadata_record::encode_key(id), metadata_record::encode_value(&e.group.to_record(now_ms))));
            }
            if let Some(c) = &e.consumer {
                let image = c.image(&e.consumer_written, now_ms);
                records.extend(image.records(id));
                consumer_images.push((entry.clone(), image));
            }
            for ((t, p), o) in &e.offsets {
                records.push((offsets::encode_key(id, t, *p), offsets::encode_value(o)));
            }
        }
        // Records gregor could not understand come last, as they were the latest for their keys.
        records.extend(kept.iter().cloned());
        let before = self.log.size_bytes();
        let records: Vec<(Vec<u8>, Option<Vec<u8>>)> = records.into_iter().map(|(k, v)| (k, Some(v))).collect();
        self.log.rewrite_as(&records, now_ms)?;
        for (entry, image) in consumer_images {
            entry.lock().consumer_written = image;
        }
        info!(
            records = records.len(),
            bytes_before = before,
            bytes_after = self.log.size_bytes(),
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

    /// Appends what changed in the entry's consumer group since its records were last written
    /// (all its tombstones once `consumer` is `None`); nothing when nothing changed. As with
    /// classic groups, a failed write is logged and not reported to the member: the records
    /// stay due, and the next change appends them along with its own.
    pub(super) fn persist_consumer(&self, e: &mut GroupEntry) {
        let image =
            e.consumer.as_ref().map(|c| c.image(&e.consumer_written, crate::clock::now_ms())).unwrap_or_default();
        let records = e.consumer_written.diff(&e.group.group_id, &image);
        if records.is_empty() {
            return;
        }
        let kv: Vec<batch::KeyValue<'_>> = records.iter().map(|(k, v)| (Some(&k[..]), v.as_deref())).collect();
        match self.append(&kv) {
            Ok(_) => e.consumer_written = image,
            Err(err) => warn!(group = %e.group.group_id, error = %err, "cannot persist consumer group records"),
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

/// A record inside a transaction: (offset, key, value).
type TxnRecord = (i64, Vec<u8>, Option<Vec<u8>>);

/// What a replay of `__consumer_offsets` has gathered so far.
#[derive(Default)]
struct Replay {
    now_ms: i64,
    groups: HashMap<String, GroupEntry>,
    group_records: HashMap<String, metadata_record::GroupRecord>,
    /// Consumer group records, folded per group.
    consumer_images: HashMap<String, Image>,
    not_understood: indexmap::IndexMap<Vec<u8>, Vec<u8>>,
    /// Records of open transactions, per producer: (offset, key, value).
    in_txn: HashMap<i64, Vec<TxnRecord>>,
    records: usize,
}

impl Replay {
    /// Applies a record of a transaction whose commit marker was just read: an offset only
    /// over one written before it (see [`GroupEntry::apply_txn_offset`]).
    fn apply_committed_txn(&mut self, offset: i64, key: &[u8], value: Option<&[u8]>) {
        let decoded = offsets::decode_key(key).zip(value.and_then(offsets::decode_value));
        let Some(((group, topic, partition), v)) = decoded else {
            return self.apply(offset, key, value);
        };
        self.records += 1;
        self.not_understood.shift_remove(key);
        let now_ms = self.now_ms;
        let entry = self.groups.entry(group.clone()).or_insert_with(|| GroupEntry::new(&group, now_ms));
        entry.apply_txn_offset((topic, partition), v, offset);
    }

    /// Applies one committed record.
    fn apply(&mut self, offset: i64, key: &[u8], value: Option<&[u8]>) {
        self.records += 1;
        let understood = if let Some(k) = consumer_records::decode_key(key) {
            match value.map(|v| consumer_records::decode_value(&k, v)) {
                Some(None) => false,
                decoded => {
                    self.consumer_images.entry(k.group().to_string()).or_default().apply(&k, decoded.flatten());
                    true
                }
            }
        } else if let Some(group) = metadata_record::decode_key(key) {
            match value.map(metadata_record::decode_value) {
                None => {
                    self.group_records.remove(&group);
                    true
                }
                Some(Some(rec)) => {
                    self.group_records.insert(group, rec);
                    true
                }
                Some(None) => false,
            }
        } else if let Some((group, topic, partition)) = offsets::decode_key(key) {
            match value.map(offsets::decode_value) {
                Some(None) => false,
                decoded => {
                    let now_ms = self.now_ms;
                    let entry = self.groups.entry(group.clone()).or_insert_with(|| GroupEntry::new(&group, now_ms));
                    match decoded.flatten() {
                        Some(v) => entry.set_offset((topic, partition), v, offset),
                        None => {
                            // A tombstone also drops what open transactions wrote for it.
                            let target = (group, topic, partition);
                            for waiting in self.in_txn.values_mut() {
                                waiting.retain(|(_, k, _)| offsets::decode_key(k).as_ref() != Some(&target));
                            }
                            let (_, topic, partition) = target;
                            entry.remove_offset(&(topic, partition));
                        }
                    };
                    true
                }
            }
        } else {
            false
        };
        if understood {
            // A later understood record for the key supersedes what was kept.
            self.not_understood.shift_remove(key);
            return;
        }
        warn!(
            offset,
            key_version = version_of(Some(key)),
            value_version = version_of(value),
            "{OFFSETS_TOPIC} holds a record gregor does not understand; keeping it and changing nothing"
        );
        match value {
            Some(v) => {
                self.not_understood.insert(key.to_vec(), v.to_vec());
            }
            None => {
                self.not_understood.shift_remove(key);
            }
        }
    }
}
