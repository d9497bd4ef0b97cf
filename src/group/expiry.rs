//! Timers: the groups' session and rebalance timeouts, and the expiry of offsets of groups
//! that stayed empty past `offsets.retention.minutes`. A consumer group member fenced here has
//! its records' tombstones written; an empty consumer group that is forgotten has all of its
//! records' tombstones written first, so a restart does not bring it back.

use super::*;

/// How long an empty group without committed offsets is kept before it is forgotten: Kafka's
/// default `offsets.retention.check.interval.ms`, the period of its cleanup.
pub const EMPTY_GROUP_LINGER_MS: i64 = 600_000;

impl GroupCoordinator {
    /// Drives timers of every group and expires offsets of groups that stayed empty longer than
    /// `offsets.retention.minutes` (Kafka 2.1+ semantics).
    pub fn tick(&self, now: Instant, now_ms: i64) {
        let groups: Vec<_> = self.groups.read().values().cloned().collect();
        let retention_ms = self.cfg.offsets_retention.as_millis() as i64;
        let mut dead = Vec::new();
        for entry in groups {
            let mut e = entry.lock();
            let was_empty = e.is_empty();
            e.group.tick(now);
            if e.consumer.as_mut().is_some_and(|c| !c.tick(now).is_empty()) {
                self.after_consumer_change(&mut e, now);
            }
            self.persist_if_dirty(&mut e);
            if e.is_empty() && !was_empty {
                e.empty_since_ms = now_ms;
            }
            if e.is_empty() && e.group.state == GroupState::Empty {
                let expired: Vec<(String, i32)> = e
                    .offsets
                    .iter()
                    .filter(|(_, o)| now_ms - o.commit_timestamp.max(e.empty_since_ms) > retention_ms)
                    .map(|(k, _)| k.clone())
                    .collect();
                if !expired.is_empty() {
                    let keys: Vec<Vec<u8>> =
                        expired.iter().map(|(t, p)| offsets::encode_key(&e.group.group_id, t, *p)).collect();
                    if self.append_tombstones(&keys).is_ok() {
                        info!(group = %e.group.group_id, partitions = expired.len(), "expired committed offsets");
                        for k in expired {
                            e.remove_offset(&k);
                        }
                    }
                }
                // As Kafka's periodic cleanup (every offsets.retention.check.interval.ms), an
                // empty group without offsets lingers a while: a DeleteGroups or DescribeGroups
                // right after its last member left still finds it.
                if e.offsets.is_empty() && now_ms - e.empty_since_ms >= EMPTY_GROUP_LINGER_MS {
                    e.consumer = None;
                    self.persist_consumer(&mut e);
                    // Once its tombstones are written; else the next tick tries again.
                    if e.consumer_written.is_empty() {
                        dead.push(e.group.group_id.clone());
                    }
                }
            }
        }
        if !dead.is_empty() {
            let mut groups = self.groups.write();
            for id in dead {
                let empty = groups.get(&id).is_some_and(|e| {
                    let e = e.lock();
                    e.is_empty()
                        && e.offsets.is_empty()
                        && e.group.state == GroupState::Empty
                        && e.consumer_written.is_empty()
                });
                if empty {
                    groups.remove(&id);
                }
            }
        }
    }
}
