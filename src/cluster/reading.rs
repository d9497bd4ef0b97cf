//! Reads of the part of a partition's log that only the store holds.
//!
//! A leader keeps the newest `local.retention.bytes` of a partition's committed log in local
//! segments (`PartitionLog::trim_local`); a consumer reading before them is served from the
//! store: a look-up in the batch index (on a connection of its own, so that commits do not wait
//! on it), ranged GETs of the objects (neighbouring batches of one object in one GET), and a
//! bounded cache of the batches read, least recently used out first
//! (`cluster.read_cache_bytes`). Objects never change once written, so a cached batch stays
//! true until it is evicted; a merge that rewrites the batches into other objects only makes
//! the next look-up point elsewhere.
//!
//! The log calls in from the blocking pool (fetches and ListOffsets read there); the work runs
//! on the runtime and the calling thread waits for it, at most twice the store timeout.

use std::future::Future;
use std::io;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use lru::LruCache;
use parking_lot::Mutex;
use uuid::Uuid;

use super::shared::{Shared, SharedError};
use super::store::{BatchRow, Store};
use crate::log::TopicPartition;

/// What one read from the store did, for whoever counts them (the metrics).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadReport {
    /// Batches found in the cache.
    pub cached: u64,
    /// Batches read from the objects, in `gets` ranged GETs of `bytes` in all.
    pub fetched: u64,
    pub gets: u64,
    pub bytes: u64,
    /// Bytes the cache holds afterwards.
    pub cache_bytes: u64,
}

type ReadObserver = Box<dyn Fn(&ReadReport) + Send + Sync>;
static READ_OBSERVER: std::sync::OnceLock<ReadObserver> = std::sync::OnceLock::new();

/// Sets the read observer, once per process (later calls change nothing).
pub fn set_read_observer(observer: ReadObserver) {
    let _ = READ_OBSERVER.set(observer);
}

/// Batch rows looked up per read; a read returns at most these batches (the consumer reads
/// again from where it stopped).
const READ_ROWS: i64 = 500;

/// Reads the stored part of logs, through the cache.
pub struct StoredReads {
    shared: Arc<Shared>,
    runtime: tokio::runtime::Handle,
    cache: Mutex<BatchCache>,
}

impl std::fmt::Debug for StoredReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cache = self.cache.lock();
        f.debug_struct("StoredReads").field("cached_bytes", &cache.bytes).field("max_bytes", &cache.max).finish()
    }
}

impl StoredReads {
    /// Reads run on `runtime` (the broker's).
    pub fn new(shared: Arc<Shared>, runtime: tokio::runtime::Handle) -> Arc<Self> {
        let max = shared.settings().read_cache_bytes;
        Arc::new(Self { shared, runtime, cache: Mutex::new(BatchCache::new(max)) })
    }

    /// Runs `work` on the runtime and waits for it on this (blocking) thread.
    pub fn wait<T: Send + 'static>(
        &self,
        what: &str,
        work: impl Future<Output = Result<T, SharedError>> + Send + 'static,
    ) -> io::Result<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let _ = tx.send(work.await);
        });
        let limit = self.shared.settings().store_timeout * 2;
        match rx.recv_timeout(limit) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(io::Error::other(format!("{what} from the object store failed: {e}"))),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{what} from the object store took longer than {limit:?}"),
            )),
        }
    }

    fn topic_id(&self, topic: &str) -> Result<Uuid, SharedError> {
        let view = self.shared.view();
        let found = view.topics.iter().find(|t| *t.name == *topic).map(|t| t.id);
        found.ok_or_else(|| SharedError::Io(io::Error::new(io::ErrorKind::NotFound, format!("no topic {topic}"))))
    }

    /// Whole batches of `tp` from the one holding `offset`, up to about `max_bytes` (the first
    /// whole however large when `min_one`, as KIP-74 has it), none starting at or past
    /// `before`.
    pub async fn read(
        &self,
        tp: &TopicPartition,
        offset: i64,
        before: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<Bytes, SharedError> {
        let topic_id = self.topic_id(&tp.topic)?;
        let p = tp.partition;
        // A merge may rewrite the range between the look-up and the GET, and its old objects
        // be collected: the look-up is made again once.
        for attempt in 0.. {
            let look_up = async |s: &mut Store| s.batches(topic_id, p, offset, READ_ROWS).await;
            let rows = self.shared.reads.call("a read of the batch index", look_up).await?;
            let mut chosen = Vec::new();
            let mut total = 0usize;
            for (row, key) in rows {
                let len = usize::try_from(row.byte_length).unwrap_or(usize::MAX);
                if row.base_offset >= before || total.saturating_add(len) > max_bytes && !(chosen.is_empty() && min_one)
                {
                    break;
                }
                total = total.saturating_add(len);
                chosen.push((row, key));
            }
            match self.gather(&chosen).await {
                Err(e) if attempt == 0 && object_gone(&e) => continue,
                other => return other,
            }
        }
        unreachable!("the loop returns")
    }

    /// The first record of `tp` stamped `target` or later, at or after `from` and before
    /// `before`: its offset and timestamp.
    pub async fn offset_for_timestamp(
        &self,
        tp: &TopicPartition,
        target: i64,
        from: i64,
        before: i64,
    ) -> Result<Option<(i64, i64)>, SharedError> {
        let (topic_id, p) = (self.topic_id(&tp.topic)?, tp.partition);
        let Some((row, bytes)) = self.one_batch(topic_id, p, from, before, Some(target)).await? else {
            return Ok(None);
        };
        let found = crate::log::batch::find_record_by_timestamp(&bytes, Some(target));
        let (offset, timestamp) = found.unwrap_or((row.base_offset, row.max_timestamp));
        Ok(Some((offset.max(from), timestamp)))
    }

    /// The record of `tp` with the largest timestamp at or after `from` and before `before`
    /// (the first of them on a tie): its offset and timestamp.
    pub async fn max_timestamp(
        &self,
        tp: &TopicPartition,
        from: i64,
        before: i64,
    ) -> Result<Option<(i64, i64)>, SharedError> {
        let (topic_id, p) = (self.topic_id(&tp.topic)?, tp.partition);
        let Some((row, bytes)) = self.one_batch(topic_id, p, from, before, None).await? else { return Ok(None) };
        let found = crate::log::batch::find_record_by_timestamp(&bytes, None);
        Ok(Some(found.unwrap_or((row.last_offset, row.max_timestamp))))
    }

    /// The batch of a partition, at or after `from` and starting before `before`, holding the
    /// first record stamped `target` or later, or (None) the largest timestamp, with its
    /// bytes. The look-up is made again once when its object is gone (a merge replaced it
    /// meanwhile).
    async fn one_batch(
        &self,
        topic_id: Uuid,
        p: i32,
        from: i64,
        before: i64,
        target: Option<i64>,
    ) -> Result<Option<(BatchRow, Bytes)>, SharedError> {
        for attempt in 0.. {
            let look_up = async |s: &mut Store| match target {
                Some(target) => s.first_batch_at_time(topic_id, p, from, before, target).await,
                None => s.batch_with_max_timestamp(topic_id, p, from, before).await,
            };
            let Some(found) = self.shared.reads.call("a search of the batch index", look_up).await? else {
                return Ok(None);
            };
            match self.gather(std::slice::from_ref(&found)).await {
                Ok(bytes) => return Ok(Some((found.0, bytes))),
                Err(e) if attempt == 0 && object_gone(&e) => continue,
                Err(e) => return Err(e),
            }
        }
        unreachable!("the loop returns")
    }

    /// The bytes of `batches`, in order: from the cache, or read in runs of neighbouring
    /// batches of one object.
    async fn gather(&self, batches: &[(BatchRow, String)]) -> Result<Bytes, SharedError> {
        let mut parts: Vec<Option<Bytes>> = {
            let mut cache = self.cache.lock();
            batches.iter().map(|(row, key)| cache.get(key, row.byte_offset)).collect()
        };
        let mut report = ReadReport { cached: parts.iter().flatten().count() as u64, ..ReadReport::default() };
        let mut i = 0;
        while i < batches.len() {
            if parts[i].is_some() {
                i += 1;
                continue;
            }
            let (first, key) = &batches[i];
            let start = first.byte_offset as u64;
            let mut end = start + first.byte_length as u64;
            let mut j = i;
            while let Some((next, next_key)) = batches.get(j + 1) {
                if parts[j + 1].is_some() || next_key != key || next.byte_offset as u64 != end {
                    break;
                }
                end += next.byte_length as u64;
                j += 1;
            }
            let run = self.shared.objects.read(key, start..end).await?;
            if run.len() as u64 != end - start {
                return Err(short_read(key, start, end, run.len()));
            }
            report.gets += 1;
            report.bytes += run.len() as u64;
            report.fetched += (j + 1 - i) as u64;
            let mut cache = self.cache.lock();
            for (k, (row, _)) in batches.iter().enumerate().take(j + 1).skip(i) {
                let at = (row.byte_offset as u64 - start) as usize;
                let batch = Bytes::copy_from_slice(&run[at..at + row.byte_length as usize]);
                // An index row that does not point at its batch is a defect, not data.
                if batch.len() < 8 || i64::from_be_bytes(batch[..8].try_into().expect("8 bytes")) != row.base_offset {
                    return Err(SharedError::Io(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "object {key} at byte {} holds no batch at offset {}",
                            row.byte_offset, row.base_offset
                        ),
                    )));
                }
                cache.put(key, row.byte_offset, batch.clone());
                parts[k] = Some(batch);
            }
            i = j + 1;
        }
        if let Some(observe) = READ_OBSERVER.get() {
            report.cache_bytes = self.cached_bytes();
            observe(&report);
        }
        let mut out = BytesMut::with_capacity(parts.iter().flatten().map(Bytes::len).sum());
        for part in parts.into_iter().flatten() {
            out.extend_from_slice(&part);
        }
        Ok(out.freeze())
    }

    /// Bytes the cache holds now.
    pub fn cached_bytes(&self) -> u64 {
        self.cache.lock().bytes
    }
}

/// The object a batch row pointed to is no longer there.
fn object_gone(e: &SharedError) -> bool {
    matches!(e, SharedError::Objects(super::objects::ObjectsError::Store(object_store::Error::NotFound { .. })))
}

fn short_read(key: &str, start: u64, end: u64, got: usize) -> SharedError {
    SharedError::Io(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("object {key}: bytes {start}..{end} asked for, {got} returned"),
    ))
}

/// Batches by (object, byte offset), at most `max` bytes of them; the least recently used
/// leave first.
struct BatchCache {
    lru: LruCache<(String, i64), Bytes>,
    bytes: u64,
    max: u64,
}

impl BatchCache {
    fn new(max: u64) -> Self {
        Self { lru: LruCache::unbounded(), bytes: 0, max }
    }

    fn get(&mut self, key: &str, at: i64) -> Option<Bytes> {
        // The lru crate looks up by the stored key type; one allocation per look-up.
        self.lru.get(&(key.to_string(), at)).cloned()
    }

    /// Keeps `batch` unless it is larger than the whole cache; evicts to make room.
    fn put(&mut self, key: &str, at: i64, batch: Bytes) {
        let len = batch.len() as u64;
        if len > self.max {
            return;
        }
        if let Some(old) = self.lru.put((key.to_string(), at), batch) {
            self.bytes -= old.len() as u64;
        }
        self.bytes += len;
        while self.bytes > self.max {
            let Some((_, evicted)) = self.lru.pop_lru() else { break };
            self.bytes -= evicted.len() as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_keeps_at_most_its_bytes_and_lets_the_least_recently_used_go_first() {
        let mut cache = BatchCache::new(100);
        let batch = |n: usize| Bytes::from(vec![7u8; n]);
        cache.put("a", 0, batch(40));
        cache.put("a", 40, batch(40));
        assert_eq!(cache.bytes, 80);
        // "a"@0 is used, so "a"@40 is the least recently used when room is needed.
        assert!(cache.get("a", 0).is_some());
        cache.put("b", 0, batch(30));
        assert_eq!(cache.bytes, 70, "a@40 went to make room");
        assert!(cache.get("a", 40).is_none());
        assert_eq!(cache.get("a", 0).map(|b| b.len()), Some(40));
        assert_eq!(cache.get("b", 0).map(|b| b.len()), Some(30));
        // Larger than the whole cache: not kept, nothing evicted for it.
        cache.put("c", 0, batch(101));
        assert!(cache.get("c", 0).is_none());
        assert_eq!(cache.bytes, 70);
        // The same batch again replaces itself.
        cache.put("b", 0, batch(30));
        assert_eq!(cache.bytes, 70);
        // A cache of nothing keeps nothing.
        let mut none = BatchCache::new(0);
        none.put("a", 0, batch(1));
        assert_eq!((none.bytes, none.get("a", 0)), (0, None));
    }
}
