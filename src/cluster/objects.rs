//! The data half of shared mode: a leader gathers the record batches of every partition it
//! leads for a short interval into one object ([`ObjectBuilder`]), uploads it ([`Objects`],
//! over the `object_store` crate), and only then commits the object's batch index rows in
//! PostgreSQL ([`super::store::Store::commit`]). Reads fetch byte ranges of objects. An
//! object no committed row references (a crash or a fenced commit between upload and commit)
//! is garbage: [`collect_garbage`] deletes those older than a grace period, which must exceed
//! the longest upload-to-commit time so that an object about to be committed is never taken.
//!
//! Object layout: the batches as sent (RecordBatch v2, offsets and leader epoch assigned),
//! back to back; where each is, is only in the index. Keys: `objects/<node id>/<uuid>`.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use uuid::Uuid;

use super::connection::Connection;
use super::store::{BatchRow, ObjectCommit, StoreError};
use crate::log::batch::{self, BatchHeader};

#[derive(Debug, thiserror::Error)]
pub enum ObjectsError {
    #[error("object store URL `{0}`: {1}")]
    Url(String, String),
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("not a record batch: {0}")]
    Batch(String),
}

/// The object store of a shared-mode cluster, from `cluster.object_store_url`.
#[derive(Debug, Clone)]
pub struct Objects {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

impl Objects {
    /// `file:///shared/dir` (the directory must exist), `memory:///`, or `s3://bucket/prefix`
    /// (also `s3a://`). For S3 the endpoint, region and credentials come from the standard
    /// `AWS_*` variables (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_ALLOW_HTTP` for a plain-HTTP
    /// S3-compatible server, ...); with an endpoint set, objects are addressed path-style.
    /// `fsync`: a directory's objects are synced to disk before they are committed.
    pub fn open(url: &str, fsync: bool) -> Result<Self, ObjectsError> {
        let bad = |e: &dyn std::fmt::Display| ObjectsError::Url(url.into(), e.to_string());
        let parsed = url::Url::parse(url).map_err(|e| bad(&e))?;
        let (store, prefix): (Arc<dyn ObjectStore>, Path) = match parsed.scheme() {
            // A directory: with `fsync`, each object and its directory entry are synced before
            // the commit that makes it visible, so an acknowledged write survives a power cut as
            // the single node's fsync makes it do (`object_store` does not sync by default).
            "file" => {
                let prefix = Path::from_url_path(parsed.path()).map_err(|e| bad(&e))?;
                (Arc::new(LocalFileSystem::new().with_fsync(fsync)), prefix)
            }
            "memory" => {
                let (store, prefix) = object_store::parse_url(&parsed).map_err(|e| bad(&e))?;
                (Arc::from(store), prefix)
            }
            "s3" | "s3a" => {
                // reqwest's TLS takes the process's rustls provider; ring is the one built.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let store = AmazonS3Builder::from_env().with_url(url).build().map_err(|e| bad(&e))?;
                let prefix = Path::from_url_path(parsed.path()).map_err(|e| bad(&e))?;
                (Arc::new(store), prefix)
            }
            other => {
                return Err(bad(&format_args!("scheme `{other}` is not supported (file://, s3:// and memory:// are)")))
            }
        };
        Ok(Self { store, prefix })
    }

    fn path(&self, key: &str) -> Path {
        self.prefix.parts().chain(Path::from(key).parts()).collect()
    }

    pub async fn put(&self, key: &str, data: Bytes) -> Result<(), ObjectsError> {
        self.store.put(&self.path(key), PutPayload::from_bytes(data)).await?;
        Ok(())
    }

    /// The bytes `range` of the object `key`.
    pub async fn read(&self, key: &str, range: Range<u64>) -> Result<Bytes, ObjectsError> {
        Ok(self.store.get_range(&self.path(key), range).await?)
    }

    pub async fn delete(&self, key: &str) -> Result<(), ObjectsError> {
        self.store.delete(&self.path(key)).await?;
        Ok(())
    }

    /// Keys of the objects written more than `age` ago.
    pub async fn older_than(&self, age: Duration) -> Result<Vec<String>, ObjectsError> {
        let cutoff = std::time::SystemTime::now() - age;
        let under = self.path("objects");
        let mut listing = self.store.list(Some(&under));
        let mut out = Vec::new();
        let skip = self.prefix.parts().count();
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            let modified =
                std::time::UNIX_EPOCH + Duration::from_millis(meta.last_modified.timestamp_millis().max(0) as u64);
            if modified <= cutoff {
                let key: Vec<String> = meta.location.parts().skip(skip).map(|p| p.as_ref().to_string()).collect();
                out.push(key.join("/"));
            }
        }
        Ok(out)
    }
}

/// Batches of several partitions gathered into one object.
#[derive(Debug)]
pub struct ObjectBuilder {
    node_id: i32,
    data: BytesMut,
    batches: Vec<BatchRow>,
}

impl ObjectBuilder {
    pub fn new(node_id: i32) -> Self {
        Self { node_id, data: BytesMut::new(), batches: Vec::new() }
    }

    /// Adds one record batch (offsets assigned) of a partition led in `leader_epoch`.
    pub fn add(&mut self, topic_id: Uuid, partition: i32, leader_epoch: i32, batch: &[u8]) -> Result<(), ObjectsError> {
        let h = BatchHeader::parse(batch).ok_or_else(|| ObjectsError::Batch("shorter than a batch header".into()))?;
        if h.magic != 2 || h.total_len() != batch.len() {
            return Err(ObjectsError::Batch(format!(
                "magic {} and length {} for {} bytes",
                h.magic,
                h.total_len(),
                batch.len()
            )));
        }
        self.batches.push(BatchRow {
            topic_id,
            partition,
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
            byte_offset: self.data.len() as i64,
            byte_length: batch.len() as i32,
            max_timestamp: h.max_timestamp,
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            base_sequence: h.base_sequence,
            leader_epoch,
            attributes: Some(h.attributes),
            marker: if h.is_control() { batch::read_marker(batch) } else { None },
        });
        self.data.extend_from_slice(batch);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// The object's bytes and its commit (a fresh key under `objects/<node id>/`).
    pub fn finish(self) -> (Bytes, ObjectCommit) {
        let key = format!("objects/{}/{}", self.node_id, Uuid::new_v4());
        let commit = ObjectCommit { object_key: key, size: self.data.len() as i64, batches: self.batches };
        (self.data.freeze(), commit)
    }
}

/// Deletes the objects older than `grace` that no committed batch references. Returns how
/// many were deleted.
///
/// The store is asked about a bounded number of objects at a time, and the connection is not
/// held while objects are listed or deleted (a large bucket takes its time, and the ticks that
/// keep this broker's lease use the same connection).
pub async fn collect_garbage(objects: &Objects, store: &Connection, grace: Duration) -> Result<usize, GcError> {
    let candidates = objects.older_than(grace).await?;
    let mut deleted = 0;
    for keys in candidates.chunks(GC_KEYS_PER_QUERY) {
        let referenced = store.call("a look-up of objects", async |s| s.referenced(keys).await).await?;
        for key in keys.iter().filter(|k| !referenced.contains(*k)) {
            objects.delete(key).await?;
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// How many object keys garbage collection asks the store about in one query.
const GC_KEYS_PER_QUERY: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error(transparent)]
    Objects(#[from] ObjectsError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::store::{Registration, Store};
    use crate::cluster::testing::PgServer;
    use crate::log::batch;

    fn batch_at(base_offset: i64, values: &[&str]) -> Vec<u8> {
        let kvs: Vec<batch::KeyValue<'_>> = values.iter().map(|v| (None, Some(v.as_bytes()))).collect();
        let mut b = batch::build(&kvs, 1_000);
        batch::assign_offset(&mut b, base_offset, 3);
        b
    }

    #[test]
    fn a_directory_store_fsyncs_what_it_writes_when_asked_under_the_urls_path() {
        let tmp = tempfile::tempdir().unwrap();
        let objects = Objects::open(&format!("file://{}", tmp.path().display()), true).unwrap();
        // `object_store` shows the setting only in its Debug form.
        assert!(format!("{:?}", objects.store).contains("fsync: true"), "{:?}", objects.store);
        let unsynced = Objects::open(&format!("file://{}", tmp.path().display()), false).unwrap();
        assert!(format!("{:?}", unsynced.store).contains("fsync: false"), "{:?}", unsynced.store);
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(objects.put("objects/1/x", Bytes::from_static(b"abc"))).unwrap();
        assert_eq!(std::fs::read(tmp.path().join("objects/1/x")).unwrap(), b"abc");
    }

    #[test]
    fn s3_urls_name_a_bucket_and_a_prefix_and_other_schemes_are_refused() {
        // Building an S3 client contacts nothing; credentials are only looked for on a request.
        let objects = Objects::open("s3://some-bucket/cluster/one", true).unwrap();
        assert_eq!(objects.path("objects/1/x").as_ref(), "cluster/one/objects/1/x");
        assert_eq!(Objects::open("s3a://some-bucket", true).unwrap().path("k").as_ref(), "k");
        let err = Objects::open("gs://some-bucket/p", true).unwrap_err().to_string();
        assert!(err.contains("`gs` is not supported") && err.contains("s3://"), "{err}");
        assert!(Objects::open("not a url", true).is_err());
    }

    #[tokio::test]
    async fn batches_of_several_partitions_go_in_one_object_and_read_back_by_range() {
        let dir = tempfile::tempdir().unwrap();
        let objects = Objects::open(&format!("file://{}", dir.path().display()), true).unwrap();
        let (t, u) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut builder = ObjectBuilder::new(7);
        let parts = [(t, 0, batch_at(0, &["a", "b"])), (u, 3, batch_at(10, &["c"])), (t, 0, batch_at(2, &["d"]))];
        for (topic, p, b) in &parts {
            builder.add(*topic, *p, 3, b).unwrap();
        }
        assert!(builder.add(t, 0, 3, &parts[0].2[..20]).is_err(), "a cut batch is refused");
        let (data, commit) = builder.finish();
        assert!(commit.object_key.starts_with("objects/7/"));
        assert_eq!(commit.size as usize, data.len());
        objects.put(&commit.object_key, data).await.unwrap();
        for ((_, _, b), row) in parts.iter().zip(&commit.batches) {
            let range = row.byte_offset as u64..(row.byte_offset + i64::from(row.byte_length)) as u64;
            assert_eq!(&objects.read(&commit.object_key, range).await.unwrap()[..], &b[..]);
        }
        let rows: Vec<(i32, i64, i64)> =
            commit.batches.iter().map(|r| (r.partition, r.base_offset, r.last_offset)).collect();
        assert_eq!(rows, [(0, 0, 1), (3, 10, 10), (0, 2, 2)]);
    }

    #[tokio::test]
    async fn objects_no_commit_references_are_collected_after_the_grace_period() {
        let Some(pg) = PgServer::start() else { return };
        let mut store = Store::connect(&pg.url).await.unwrap();
        store.migrate().await.unwrap();
        let reg = Registration { node_id: 1, rack: None, listeners: Default::default() };
        let me = store.register(&reg, Duration::from_secs(30)).await.unwrap();
        let topic = Uuid::new_v4();
        store.create_topic("t", topic, 1).await.unwrap();
        store.rebalance().await.unwrap();
        let epoch = store.leaders().await.unwrap()[&(topic, 0)].epoch;

        let dir = tempfile::tempdir().unwrap();
        let objects = Objects::open(&format!("file://{}", dir.path().display()), true).unwrap();
        let upload = |base: i64| {
            let mut b = ObjectBuilder::new(1);
            b.add(topic, 0, epoch, &batch_at(base, &["x"])).unwrap();
            b.finish()
        };
        // One committed object, one left behind by a "crash" between upload and commit.
        let (data, committed) = upload(0);
        objects.put(&committed.object_key, data).await.unwrap();
        store.commit(1, me, &committed).await.unwrap();
        let (data, orphan) = upload(1);
        objects.put(&orphan.object_key, data).await.unwrap();

        // Within the grace period nothing goes (an upload may be about to commit).
        let gc = Connection::new(&pg.url, Duration::from_secs(30));
        assert_eq!(collect_garbage(&objects, &gc, Duration::from_secs(3600)).await.unwrap(), 0);
        assert_eq!(collect_garbage(&objects, &gc, Duration::ZERO).await.unwrap(), 1);
        assert!(objects.read(&orphan.object_key, 0..1).await.is_err(), "the orphan is gone");
        assert!(objects.read(&committed.object_key, 0..1).await.is_ok(), "the committed object stays");
        assert_eq!(collect_garbage(&objects, &gc, Duration::ZERO).await.unwrap(), 0);
    }
}
