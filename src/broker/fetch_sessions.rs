//! Incremental fetch sessions (KIP-227), as Kafka 4.1's FetchSessionCache keeps them.
//!
//! A full fetch with epoch 0 opens a session holding its partitions (fetch offset, byte limit,
//! and the high watermark and log start offset last sent); later fetches name the session and
//! its next epoch and carry only what changed: new fetch offsets, added partitions, forgotten
//! ones. The broker reads every partition of the session and answers with those that have
//! records, a new high watermark or log start offset, or an error; answered partitions move to
//! the end of the session so a byte limit serves all partitions in turn.
//!
//! The cache holds at most `slots` sessions (`max.incremental.fetch.session.cache.slots`) and
//! `max_partitions` partitions over all of them (gregor's own bound on its memory). A new
//! session takes the place of one idle for at least [`EVICTION_IDLE_MS`], else of the smallest
//! one if the newcomer is larger; otherwise it is not cached and the client keeps doing full
//! fetches (session id 0), as Kafka does.

use std::collections::HashMap;

use indexmap::IndexMap;
use parking_lot::Mutex;
use uuid::Uuid;

/// Kafka's `min.incremental.fetch.session.eviction.ms`.
pub const EVICTION_IDLE_MS: i64 = 120_000;

/// A partition of a session: by topic id (Fetch v13+) or by name, and its index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartKey {
    pub topic_id: Uuid,
    pub topic: String,
    pub partition: i32,
}

/// What the session remembers of a partition.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedPart {
    pub fetch_offset: i64,
    pub max_bytes: i32,
    /// The client's `current_leader_epoch` and `last_fetched_epoch` as it last sent them (-1:
    /// not given): a partition an incremental fetch leaves out is checked with them, as Kafka's
    /// `CachedPartition` keeps them.
    pub current_leader_epoch: i32,
    pub last_fetched_epoch: i32,
    /// As last sent to the client; -1 before the first answer.
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

/// A partition as an incremental fetch sends it: new or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartUpdate {
    pub fetch_offset: i64,
    pub max_bytes: i32,
    pub current_leader_epoch: i32,
    pub last_fetched_epoch: i32,
}

/// What a read gave for a partition, to decide whether the client must hear of it.
#[derive(Debug, Clone, Copy)]
pub struct PartResult {
    pub has_records: bool,
    pub error: bool,
    /// A diverging epoch is reported (the client must truncate; always sent, as in Kafka).
    pub diverging: bool,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

/// Why an incremental fetch was refused (Kafka's top-level error codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// FETCH_SESSION_ID_NOT_FOUND
    NotFound,
    /// INVALID_FETCH_SESSION_EPOCH
    InvalidEpoch,
    /// FETCH_SESSION_TOPIC_ID_ERROR: the session was opened with topic ids and this request
    /// names topics (or the other way round).
    TopicIdMismatch,
}

#[derive(Debug)]
struct Session {
    /// The epoch the next incremental fetch must carry.
    next_epoch: i32,
    uses_topic_ids: bool,
    parts: IndexMap<PartKey, CachedPart>,
    last_used_ms: i64,
}

#[derive(Debug, Default)]
struct Cache {
    sessions: HashMap<i32, Session>,
    partitions: usize,
    next_id: u32,
}

#[derive(Debug)]
pub struct FetchSessions {
    slots: usize,
    max_partitions: usize,
    cache: Mutex<Cache>,
}

impl FetchSessions {
    pub fn new(slots: usize, max_partitions: usize) -> Self {
        // Ids start at a random point, so a restarted broker does not take a client's stale
        // session id for one of its new sessions.
        let start = (uuid::Uuid::new_v4().as_u128() as u32) & 0x7fff_ffff;
        Self { slots, max_partitions, cache: Mutex::new(Cache { next_id: start, ..Cache::default() }) }
    }

    /// Caches a new session for the partitions a full fetch just answered; its id, or 0 when
    /// no room could be made (the client then stays on full fetches).
    pub fn open(&self, uses_topic_ids: bool, parts: IndexMap<PartKey, CachedPart>, now_ms: i64) -> i32 {
        if self.slots == 0 || parts.is_empty() || parts.len() > self.max_partitions {
            return 0;
        }
        let mut cache = self.cache.lock();
        while cache.sessions.len() >= self.slots || cache.partitions + parts.len() > self.max_partitions {
            if !cache.evict_for(parts.len(), now_ms) {
                return 0;
            }
        }
        let id = loop {
            cache.next_id = cache.next_id.wrapping_add(1) & 0x7fff_ffff;
            let id = cache.next_id as i32;
            if id != 0 && !cache.sessions.contains_key(&id) {
                break id;
            }
        };
        cache.partitions += parts.len();
        cache.sessions.insert(id, Session { next_epoch: 1, uses_topic_ids, parts, last_used_ms: now_ms });
        id
    }

    /// Forgets a session (a full fetch naming it, or epoch -1).
    pub fn close(&self, id: i32) {
        let mut cache = self.cache.lock();
        if let Some(s) = cache.sessions.remove(&id) {
            cache.partitions -= s.parts.len();
        }
    }

    /// Starts an incremental fetch: checks the session and epoch, applies the request's new
    /// fetch offsets and forgotten partitions, moves the epoch on, and returns every partition
    /// of the session in its order, to be read.
    pub fn begin_incremental(
        &self,
        id: i32,
        epoch: i32,
        uses_topic_ids: bool,
        updates: Vec<(PartKey, PartUpdate)>,
        forgotten: &[PartKey],
        now_ms: i64,
    ) -> Result<Vec<(PartKey, CachedPart)>, SessionError> {
        let mut guard = self.cache.lock();
        let cache = &mut *guard;
        let session = cache.sessions.get_mut(&id).ok_or(SessionError::NotFound)?;
        if session.next_epoch != epoch {
            return Err(SessionError::InvalidEpoch);
        }
        if session.uses_topic_ids != uses_topic_ids {
            return Err(SessionError::TopicIdMismatch);
        }
        let before = session.parts.len();
        for key in forgotten {
            session.parts.shift_remove(key);
        }
        for (key, u) in updates {
            let part = session.parts.entry(key).or_insert(CachedPart {
                fetch_offset: 0,
                max_bytes: 0,
                current_leader_epoch: -1,
                last_fetched_epoch: -1,
                high_watermark: -1,
                log_start_offset: -1,
            });
            part.fetch_offset = u.fetch_offset;
            part.max_bytes = u.max_bytes;
            part.current_leader_epoch = u.current_leader_epoch;
            part.last_fetched_epoch = u.last_fetched_epoch;
        }
        session.next_epoch = if epoch == i32::MAX { 1 } else { epoch + 1 };
        session.last_used_ms = now_ms;
        let after = session.parts.len();
        let listed = session.parts.iter().map(|(k, p)| (k.clone(), p.clone())).collect();
        cache.partitions = cache.partitions + after - before;
        Ok(listed)
    }

    /// Ends an incremental fetch with what was read for each partition (in the order
    /// [`Self::begin_incremental`] listed them): which ones the client must be sent. Their
    /// high watermark and log start offset are remembered and they move to the end.
    pub fn finish_incremental(&self, id: i32, results: &[(PartKey, PartResult)]) -> Vec<bool> {
        let send: Vec<bool> = {
            let cache = self.cache.lock();
            let session = cache.sessions.get(&id);
            results
                .iter()
                .map(|(key, r)| {
                    let cached = session.and_then(|s| s.parts.get(key));
                    r.has_records
                        || r.error
                        || r.diverging
                        || cached.is_none_or(|c| {
                            c.high_watermark != r.high_watermark || c.log_start_offset != r.log_start_offset
                        })
                })
                .collect()
        };
        let mut cache = self.cache.lock();
        if let Some(session) = cache.sessions.get_mut(&id) {
            let mut moved = Vec::new();
            for ((key, r), sent) in results.iter().zip(&send) {
                if !*sent || r.error {
                    continue;
                }
                if let Some(mut part) = session.parts.shift_remove(key) {
                    part.high_watermark = r.high_watermark;
                    part.log_start_offset = r.log_start_offset;
                    moved.push((key.clone(), part));
                }
            }
            session.parts.extend(moved);
        }
        send
    }

    /// How many sessions are cached (for tests and metrics).
    pub fn len(&self) -> usize {
        self.cache.lock().sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Cache {
    /// Makes room for a session of `size` partitions by evicting one: an idle one first, else
    /// the smallest if it is smaller than the newcomer. False if none may go.
    fn evict_for(&mut self, size: usize, now_ms: i64) -> bool {
        let idle = self
            .sessions
            .iter()
            .filter(|(_, s)| now_ms - s.last_used_ms >= EVICTION_IDLE_MS)
            .min_by_key(|(_, s)| s.last_used_ms)
            .map(|(id, _)| *id);
        let victim = idle.or_else(|| {
            self.sessions
                .iter()
                .filter(|(_, s)| s.parts.len() < size)
                .min_by_key(|(_, s)| s.parts.len())
                .map(|(id, _)| *id)
        });
        match victim.and_then(|id| self.sessions.remove(&id)) {
            Some(s) => {
                self.partitions -= s.parts.len();
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: i32) -> PartKey {
        PartKey { topic_id: Uuid::nil(), topic: "t".into(), partition: p }
    }

    fn parts(n: i32) -> IndexMap<PartKey, CachedPart> {
        (0..n)
            .map(|p| {
                let part = CachedPart {
                    fetch_offset: 0,
                    max_bytes: 100,
                    current_leader_epoch: -1,
                    last_fetched_epoch: -1,
                    high_watermark: 5,
                    log_start_offset: 0,
                };
                (key(p), part)
            })
            .collect()
    }

    fn quiet(hw: i64) -> PartResult {
        PartResult { has_records: false, error: false, diverging: false, high_watermark: hw, log_start_offset: 0 }
    }

    #[test]
    fn epochs_updates_and_what_is_sent() {
        let cache = FetchSessions::new(10, 100);
        let id = cache.open(false, parts(3), 0);
        assert_ne!(id, 0);
        assert_eq!(cache.begin_incremental(id, 2, false, vec![], &[], 0), Err(SessionError::InvalidEpoch));
        assert_eq!(cache.begin_incremental(id + 1, 1, false, vec![], &[], 0), Err(SessionError::NotFound));
        assert_eq!(cache.begin_incremental(id, 1, true, vec![], &[], 0), Err(SessionError::TopicIdMismatch));

        // A new fetch offset for partition 1, partition 2 forgotten, partition 7 added.
        let update = |fetch_offset, last_fetched_epoch| PartUpdate {
            fetch_offset,
            max_bytes: 100,
            current_leader_epoch: 0,
            last_fetched_epoch,
        };
        let listed = cache
            .begin_incremental(id, 1, false, vec![(key(1), update(4, 0)), (key(7), update(0, -1))], &[key(2)], 0)
            .unwrap();
        let order: Vec<i32> = listed.iter().map(|(k, _)| k.partition).collect();
        assert_eq!(order, vec![0, 1, 7]);
        assert_eq!((listed[1].1.fetch_offset, listed[1].1.last_fetched_epoch), (4, 0));

        // Partition 0 unchanged (not sent), 1 has records, 7 is new (sent).
        let results =
            vec![(key(0), quiet(5)), (key(1), PartResult { has_records: true, ..quiet(5) }), (key(7), quiet(0))];
        assert_eq!(cache.finish_incremental(id, &results), vec![false, true, true]);
        // What was sent moved to the end, in order.
        let listed = cache.begin_incremental(id, 2, false, vec![], &[], 0).unwrap();
        let order: Vec<i32> = listed.iter().map(|(k, _)| k.partition).collect();
        assert_eq!(order, vec![0, 1, 7]);
        // A high watermark change alone is sent.
        let results = vec![(key(0), quiet(6)), (key(1), quiet(5)), (key(7), quiet(0))];
        assert_eq!(cache.finish_incremental(id, &results), vec![true, false, false]);

        cache.close(id);
        assert!(cache.is_empty());
        assert_eq!(cache.begin_incremental(id, 3, false, vec![], &[], 0), Err(SessionError::NotFound));
    }

    #[test]
    fn a_full_cache_evicts_idle_then_smaller_sessions() {
        let cache = FetchSessions::new(2, 1000);
        let small = cache.open(false, parts(1), 0);
        let big = cache.open(false, parts(5), 0);
        // Full: a newcomer of 3 partitions takes the smaller session's place.
        let third = cache.open(false, parts(3), 1);
        assert_ne!(third, 0);
        assert_eq!(cache.begin_incremental(small, 1, false, vec![], &[], 1), Err(SessionError::NotFound));
        // Nothing idle and nothing smaller than 2 partitions: not cached.
        assert_eq!(cache.open(false, parts(2), 2), 0);
        // Once the big one has idled long enough, it goes.
        assert!(cache.begin_incremental(third, 1, false, vec![], &[], EVICTION_IDLE_MS).is_ok());
        assert_ne!(cache.open(false, parts(2), EVICTION_IDLE_MS + 1), 0);
        assert_eq!(cache.begin_incremental(big, 1, false, vec![], &[], 0), Err(SessionError::NotFound));
        // The partition budget bounds the cache too.
        let tight = FetchSessions::new(10, 4);
        assert_ne!(tight.open(false, parts(3), 0), 0);
        assert_eq!(tight.open(false, parts(2), 0), 0);
        assert_eq!(tight.open(false, parts(5), 0), 0);
    }
}
