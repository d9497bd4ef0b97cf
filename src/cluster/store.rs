//! The shared-mode coordination store in PostgreSQL: schema migrations, broker registrations
//! and their leases, topics and partitions with their leaders and leader epochs, and the
//! batch index that makes written objects visible.
//!
//! Time comes from the database (`now()`), never from a broker's clock, so that brokers with
//! skewed clocks agree on whose lease ran out. Every change of several rows is one transaction.
//!
//! Fencing: a batch commit runs in one transaction that (1) holds a share lock on the
//! committing broker's row and finds its incarnation's lease unexpired, and (2) holds update
//! locks on the partitions' rows and finds each still led by that broker in the leader epoch
//! the broker was given, with the batches continuing its log end exactly. Lease moves take
//! the same row locks and bump the epoch, so a commit either comes before a move (and is part
//! of the log the new leader loads) or after it (and is refused: nothing of it is visible). A
//! broker that was paused past its lease is refused even before any other broker took its
//! partitions over. A leader commits its flushes one after the other.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Statement};
use uuid::Uuid;

use super::leases::{self, PartitionKey};
use crate::log::batch::BatchHeader;
use crate::log::producer_state::ControlType;

/// The schema, one migration per version, applied in order.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("migrations/001_coordination.sql")),
    (2, include_str!("migrations/002_cluster_id.sql")),
    (3, include_str!("migrations/003_producer_ids.sql")),
    (4, include_str!("migrations/004_documents.sql")),
    (5, include_str!("migrations/005_sweeps.sql")),
    (6, include_str!("migrations/006_share_states.sql")),
    (7, include_str!("migrations/007_rewrites.sql")),
    (8, include_str!("migrations/008_batch_kinds.sql")),
    (9, include_str!("migrations/009_plain_batch_kinds.sql")),
];

/// The columns [`batch_row`] reads, in its order, for the SELECTs of batch rows.
macro_rules! batch_columns {
    () => {
        "base_offset, last_offset, byte_offset, byte_length, max_timestamp, producer_id, producer_epoch,
         base_sequence, leader_epoch, attributes, control_type, coordinator_epoch, object_key"
    };
}

/// Key of the advisory lock that serializes migrations and lease plans across brokers.
const LOCK_KEY: i64 = 0x6772_6567_6f72; // "gregor"

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("PostgreSQL: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("the database's schema is at version {found}, newer than this gregor knows ({known}): upgrade gregor")]
    SchemaTooNew { found: i32, known: i32 },
    #[error(
        "node id {0} is registered by a live broker (its lease has not run out): give each broker its own node.id"
    )]
    NodeIdInUse(i32),
    #[error("topic {0} already exists")]
    TopicExists(String),
    /// The broker lost its lease or a partition's leadership: nothing was written.
    #[error("fenced: {0}")]
    Fenced(String),
    /// A commit's batches do not continue a partition's log exactly (a leader that did not
    /// load the log end when it took over): nothing was written.
    #[error("{0}")]
    NotContiguous(String),
    /// The store did not answer in time (see `connection`): whether the work was done is not
    /// known.
    #[error("PostgreSQL did not answer {what} within {}", seconds(*after))]
    TimedOut { what: &'static str, after: Duration },
    #[error("no connection to PostgreSQL")]
    NotConnected,
}

/// `d` as people write it: "15 s", "2.5 s".
fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// A broker as it registers.
#[derive(Debug, Clone)]
pub struct Registration {
    pub node_id: i32,
    pub rack: Option<String>,
    /// Listener name -> advertised "host:port".
    pub listeners: BTreeMap<String, String>,
}

/// A live broker as the cluster sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveBroker {
    pub node_id: i32,
    pub rack: Option<String>,
    pub listeners: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leader {
    pub node_id: Option<i32>,
    pub epoch: i32,
}

/// A topic as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRow {
    pub id: Uuid,
    pub name: String,
    pub partitions: i32,
    pub configs: BTreeMap<String, String>,
}

/// A partition leadership that moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    pub partition: PartitionKey,
    pub from: Option<i32>,
    pub to: i32,
    pub epoch: i32,
}

/// One batch of a partition inside an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRow {
    pub topic_id: Uuid,
    pub partition: i32,
    pub base_offset: i64,
    pub last_offset: i64,
    pub byte_offset: i64,
    pub byte_length: i32,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    /// The leader epoch the committing broker holds the partition in.
    pub leader_epoch: i32,
    /// The batch's attributes (transactional, control, ...); None in a row committed before
    /// schema version 8.
    pub attributes: Option<i16>,
    /// A transaction marker's type and coordinator epoch.
    pub marker: Option<(ControlType, i32)>,
}

impl BatchRow {
    /// The batch header the row stands for, as far as producer state needs it (offsets,
    /// producer, sequence, attributes, largest timestamp); None for a row committed before
    /// schema version 8, which does not say whether its batch is transactional.
    pub fn header(&self) -> Option<BatchHeader> {
        let delta = (self.last_offset - self.base_offset) as i32;
        Some(BatchHeader {
            base_offset: self.base_offset,
            batch_length: self.byte_length - 12,
            partition_leader_epoch: self.leader_epoch,
            magic: 2,
            crc: 0,
            attributes: self.attributes?,
            last_offset_delta: delta,
            base_timestamp: self.max_timestamp,
            max_timestamp: self.max_timestamp,
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence: self.base_sequence,
            records_count: delta.saturating_add(1),
        })
    }
}

/// An object and the batches it holds, committed together.
#[derive(Debug, Clone)]
pub struct ObjectCommit {
    pub object_key: String,
    pub size: i64,
    pub batches: Vec<BatchRow>,
}

/// A range of a partition's log written again by its leader in `leader_epoch` (merged into
/// an object of its own, or compacted): the batch rows from `from` up to `to` are replaced by
/// the object's, which all lie in that range.
#[derive(Debug, Clone)]
pub struct Rewrite {
    pub topic_id: Uuid,
    pub partition: i32,
    pub leader_epoch: i32,
    pub from: i64,
    pub to: i64,
    pub object: ObjectCommit,
}

/// Where a partition's log starts, as its leader in `leader_epoch` moves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogStart {
    pub topic_id: Uuid,
    pub partition: i32,
    pub leader_epoch: i32,
    pub log_start: i64,
}

/// A share-partition's state as its leader writes it: the value of a ShareSnapshot record, or
/// `None` to forget the share-partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareStateRow {
    pub topic_id: Uuid,
    pub partition: i32,
    pub group_id: String,
    /// The leader epoch the writing broker holds the partition in.
    pub leader_epoch: i32,
    pub state: Option<Vec<u8>>,
}

/// One broker's connection to the coordination store.
pub struct Store {
    client: Client,
    conn: tokio::task::JoinHandle<()>,
    prepared: tokio::sync::OnceCell<CommitStatements>,
}

/// [`Store::commit`]'s statements, prepared on the connection.
#[derive(Clone)]
struct CommitStatements {
    lease: Statement,
    lock: Statement,
    object: Statement,
    batches: Statement,
    ends: Statement,
}

impl Drop for Store {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Store {
    /// [`Store::connect_within`] 30 s, for tools and tests that use a store directly.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_within(url, Duration::from_secs(30)).await
    }

    /// Connects to `url` (a PostgreSQL connection URL or key=value string) without TLS, given
    /// up after `timeout` unless the URL sets its own
    /// `connect_timeout`; the kernel closes the connection when what it sent stays
    /// unacknowledged that long (unless the URL sets `tcp_user_timeout`), so that a server that
    /// vanished from the network is noticed in seconds rather than after many minutes of
    /// retransmissions.
    pub async fn connect_within(url: &str, timeout: Duration) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = url.parse()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(timeout);
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(timeout);
        }
        let (client, connection) = config.connect(NoTls).await?;
        let conn = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "connection to PostgreSQL ended");
            }
        });
        Ok(Self { client, conn, prepared: tokio::sync::OnceCell::new() })
    }

    /// What asks PostgreSQL to cancel the statement running for this connection.
    pub fn cancel_token(&self) -> tokio_postgres::CancelToken {
        self.client.cancel_token()
    }

    /// Whether the connection ended (PostgreSQL restarted or the network cut it): connect again.
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Applies the migrations the database does not have yet, each in its own transaction,
    /// under an advisory lock so that brokers starting together apply each once. Returns the
    /// schema version.
    pub async fn migrate(&mut self) -> Result<i32, StoreError> {
        let known = MIGRATIONS.last().map_or(0, |(v, _)| *v);
        let tx = self.client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY]).await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS gregor_schema_migrations (
                version integer PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
        let found: i32 =
            tx.query_one("SELECT coalesce(max(version), 0) FROM gregor_schema_migrations", &[]).await?.get(0);
        if found > known {
            return Err(StoreError::SchemaTooNew { found, known });
        }
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
            tx.batch_execute(sql).await?;
            tx.execute("INSERT INTO gregor_schema_migrations (version) VALUES ($1)", &[version]).await?;
            tracing::info!(version, "applied a schema migration to the coordination store");
        }
        tx.commit().await?;
        Ok(known)
    }

    /// Registers this broker process: a new incarnation of its node id, with a lease of
    /// `lease`. Refused while another incarnation of the node id holds an unexpired lease.
    pub async fn register(&mut self, r: &Registration, lease: Duration) -> Result<Uuid, StoreError> {
        let incarnation = Uuid::new_v4();
        let listeners = serde_json::to_value(&r.listeners).expect("a map of strings is JSON");
        let rows = self
            .client
            .execute(
                "INSERT INTO brokers (node_id, incarnation, rack, listeners, lease_expires_at)
                 VALUES ($1, $2, $3, $4::text::jsonb, now() + make_interval(secs => $5::float8 / 1000))
                 ON CONFLICT (node_id) DO UPDATE
                   SET incarnation = excluded.incarnation, rack = excluded.rack,
                       listeners = excluded.listeners, registered_at = now(),
                       lease_expires_at = excluded.lease_expires_at
                   WHERE brokers.lease_expires_at <= now()",
                &[&r.node_id, &incarnation, &r.rack, &listeners.to_string(), &millis(lease)],
            )
            .await?;
        if rows == 0 {
            return Err(StoreError::NodeIdInUse(r.node_id));
        }
        Ok(incarnation)
    }

    /// Extends this incarnation's lease to `lease` from now. Fenced when the lease already ran
    /// out (another incarnation may have taken the node id, and others its partitions).
    pub async fn heartbeat(&self, node_id: i32, incarnation: Uuid, lease: Duration) -> Result<(), StoreError> {
        let rows = self
            .client
            .execute(
                "UPDATE brokers SET lease_expires_at = now() + make_interval(secs => $3::float8 / 1000)
                 WHERE node_id = $1 AND incarnation = $2 AND lease_expires_at > now()",
                &[&node_id, &incarnation, &millis(lease)],
            )
            .await?;
        if rows == 0 {
            return Err(StoreError::Fenced(format!("broker {node_id}'s lease ran out or was taken over")));
        }
        Ok(())
    }

    /// Ends this incarnation's lease now (a clean shutdown): its partitions move at the next plan.
    pub async fn deregister(&self, node_id: i32, incarnation: Uuid) -> Result<(), StoreError> {
        self.client
            .execute(
                "UPDATE brokers SET lease_expires_at = now() WHERE node_id = $1 AND incarnation = $2",
                &[&node_id, &incarnation],
            )
            .await?;
        Ok(())
    }

    pub async fn live_brokers(&self) -> Result<Vec<LiveBroker>, StoreError> {
        let rows = self
            .client
            .query(
                "SELECT node_id, rack, listeners::text FROM brokers WHERE lease_expires_at > now() ORDER BY node_id",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| LiveBroker {
                node_id: r.get(0),
                rack: r.get(1),
                listeners: serde_json::from_str(r.get::<_, &str>(2)).unwrap_or_default(),
            })
            .collect())
    }

    /// The cluster's id: the one stored, or `proposed` when this is the first broker.
    pub async fn cluster_id(&self, proposed: &str) -> Result<String, StoreError> {
        self.client
            .execute("INSERT INTO cluster (cluster_id) VALUES ($1) ON CONFLICT (singleton) DO NOTHING", &[&proposed])
            .await?;
        Ok(self.client.query_one("SELECT cluster_id FROM cluster", &[]).await?.get(0))
    }

    /// Takes the next `count` producer ids of the cluster for this broker: returns the first.
    /// No other broker is ever given any of them.
    pub async fn allocate_producer_ids(&self, count: i64) -> Result<i64, StoreError> {
        let row = self
            .client
            .query_one(
                "UPDATE cluster SET next_producer_id = next_producer_id + $1 RETURNING next_producer_id - $1",
                &[&count],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Creates a topic and its partitions (without leaders: the next plan gives them some).
    pub async fn create_topic(&mut self, name: &str, topic_id: Uuid, partitions: i32) -> Result<(), StoreError> {
        self.create_topic_with(name, topic_id, partitions, &BTreeMap::new()).await
    }

    /// [`Store::create_topic`] with the topic's configs.
    pub async fn create_topic_with(
        &mut self,
        name: &str,
        topic_id: Uuid,
        partitions: i32,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let configs = serde_json::to_value(configs).expect("a map of strings is JSON").to_string();
        // Any conflict, not just the name's: brokers starting together insert the internal
        // topics with the same name *and* id, and a conflict on the id alone (both passed the
        // name check before either row existed) must not be an error.
        let tx = self.client.transaction().await?;
        let inserted = tx
            .execute(
                "INSERT INTO topics (topic_id, name, partitions, configs) VALUES ($1, $2, $3, $4::text::jsonb)
                 ON CONFLICT DO NOTHING",
                &[&topic_id, &name, &partitions, &configs],
            )
            .await?;
        if inserted == 0 {
            return Err(StoreError::TopicExists(name.to_string()));
        }
        tx.execute(
            "INSERT INTO partitions (topic_id, partition) SELECT $1, generate_series(0, $2 - 1)",
            &[&topic_id, &partitions],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces a topic's config overrides (every broker applies them when it next loads the
    /// view). False: the topic is gone.
    pub async fn set_topic_configs(
        &self,
        topic_id: Uuid,
        configs: &BTreeMap<String, String>,
    ) -> Result<bool, StoreError> {
        let configs = serde_json::to_value(configs).expect("a map of strings is JSON").to_string();
        let n = self
            .client
            .execute("UPDATE topics SET configs = $2::text::jsonb WHERE topic_id = $1", &[&topic_id, &configs])
            .await?;
        Ok(n == 1)
    }

    /// Grows a topic to `partitions` partitions (the next plan gives the new ones leaders).
    /// False: the topic is gone or already has that many.
    pub async fn add_partitions(&mut self, topic_id: Uuid, partitions: i32) -> Result<bool, StoreError> {
        let tx = self.client.transaction().await?;
        let Some(row) =
            tx.query_opt("SELECT partitions FROM topics WHERE topic_id = $1 FOR UPDATE", &[&topic_id]).await?
        else {
            return Ok(false);
        };
        let had: i32 = row.get(0);
        if had >= partitions {
            return Ok(false);
        }
        tx.execute("UPDATE topics SET partitions = $2 WHERE topic_id = $1", &[&topic_id, &partitions]).await?;
        tx.execute(
            "INSERT INTO partitions (topic_id, partition) SELECT $1, generate_series($2, $3 - 1)",
            &[&topic_id, &had, &partitions],
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes a topic and its partitions, in one short transaction whatever its size; its batch
    /// rows, and the object rows none of whose batches is left (their objects are then
    /// garbage), go in [`Store::sweep`]s. False: it was gone already.
    pub async fn delete_topic(&mut self, topic_id: Uuid) -> Result<bool, StoreError> {
        let tx = self.client.transaction().await?;
        // The partitions first, in the order commits lock them, so the two never deadlock; a
        // commit that comes after finds them gone and is refused.
        tx.query("SELECT 1 FROM partitions WHERE topic_id = $1 ORDER BY topic_id, partition FOR UPDATE", &[&topic_id])
            .await?;
        let deleted = tx.execute("DELETE FROM topics WHERE topic_id = $1", &[&topic_id]).await?;
        if deleted == 1 {
            // Its batch rows (and then its objects) go in the sweeps that follow.
            tx.execute("INSERT INTO deleted_topics (topic_id) VALUES ($1) ON CONFLICT DO NOTHING", &[&topic_id])
                .await?;
        }
        tx.commit().await?;
        Ok(deleted == 1)
    }

    /// Which of these topic ids the store still has.
    pub async fn topics_present(&self, ids: &[Uuid]) -> Result<std::collections::HashSet<Uuid>, StoreError> {
        let rows = self.client.query("SELECT topic_id FROM topics WHERE topic_id = ANY($1)", &[&ids]).await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Every topic: id, name, partition count and configs.
    /// Document `name`'s version and text; version 0 and no text when it was never written.
    pub async fn document(&self, name: &str) -> Result<(i64, String), StoreError> {
        let row = self.client.query_opt("SELECT version, body FROM documents WHERE name = $1", &[&name]).await?;
        Ok(row.map_or((0, String::new()), |r| (r.get(0), r.get(1))))
    }

    /// Replaces document `name` with `body` if it is still in `version`: its new version, or
    /// `None` (nothing written) when another change came first.
    pub async fn replace_document(&self, name: &str, version: i64, body: &str) -> Result<Option<i64>, StoreError> {
        let row = if version == 0 {
            self.client
                .query_opt(
                    "INSERT INTO documents (name, version, body) VALUES ($1, 1, $2)
                     ON CONFLICT (name) DO NOTHING RETURNING version",
                    &[&name, &body],
                )
                .await?
        } else {
            self.client
                .query_opt(
                    "UPDATE documents SET version = version + 1, body = $3
                     WHERE name = $1 AND version = $2 RETURNING version",
                    &[&name, &version, &body],
                )
                .await?
        };
        Ok(row.map(|r| r.get(0)))
    }

    /// Every document's version.
    pub async fn document_versions(&self) -> Result<BTreeMap<String, i64>, StoreError> {
        let rows = self.client.query("SELECT name, version FROM documents", &[]).await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub async fn topics(&self) -> Result<Vec<TopicRow>, StoreError> {
        let rows = self.client.query("SELECT topic_id, name, partitions, configs::text FROM topics", &[]).await?;
        Ok(rows
            .iter()
            .map(|r| TopicRow {
                id: r.get(0),
                name: r.get(1),
                partitions: r.get(2),
                configs: serde_json::from_str(r.get::<_, &str>(3)).unwrap_or_default(),
            })
            .collect())
    }

    /// Every partition's leader and leader epoch.
    pub async fn leaders(&self) -> Result<BTreeMap<PartitionKey, Leader>, StoreError> {
        let rows = self.client.query("SELECT topic_id, partition, leader, leader_epoch FROM partitions", &[]).await?;
        Ok(rows.iter().map(|r| ((r.get(0), r.get(1)), Leader { node_id: r.get(2), epoch: r.get(3) })).collect())
    }

    /// Spreads the partitions over the live brokers ([`leases::plan`]) and applies the plan in
    /// one transaction: each moved partition gets the next leader epoch. Serialized across
    /// brokers by an advisory lock; any broker may run it.
    pub async fn rebalance(&mut self) -> Result<Vec<Move>, StoreError> {
        let tx = self.client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY]).await?;
        let live: Vec<i32> = tx
            .query("SELECT node_id FROM brokers WHERE lease_expires_at > now() ORDER BY node_id", &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let rows = tx
            .query(
                "SELECT topic_id, partition, leader, leader_epoch FROM partitions
                 ORDER BY topic_id, partition FOR UPDATE",
                &[],
            )
            .await?;
        let current: BTreeMap<PartitionKey, (Option<i32>, i32)> =
            rows.iter().map(|r| ((r.get(0), r.get(1)), (r.get(2), r.get(3)))).collect();
        let leaders: Vec<(PartitionKey, Option<i32>)> = current.iter().map(|(k, (l, _))| (*k, *l)).collect();
        let plan = leases::plan(&live, &leaders);
        let mut moves = Vec::with_capacity(plan.len());
        for (key, to) in plan {
            let (from, epoch) = current[&key];
            tx.execute(
                "UPDATE partitions SET leader = $3, leader_epoch = $4 WHERE topic_id = $1 AND partition = $2",
                &[&key.0, &key.1, &to, &(epoch + 1)],
            )
            .await?;
            moves.push(Move { partition: key, from, to, epoch: epoch + 1 });
        }
        tx.commit().await?;
        Ok(moves)
    }

    /// Makes an object's batches visible: one transaction, fenced by this incarnation's lease
    /// and by each partition's leader and leader epoch (see the module's notes). The partitions'
    /// log ends move past the batches. Nothing is written when fenced.
    pub async fn commit(&mut self, node_id: i32, incarnation: Uuid, c: &ObjectCommit) -> Result<(), StoreError> {
        // Per partition: the epoch the broker holds it in, and its batches in offset order.
        let mut held: BTreeMap<PartitionKey, (i32, Vec<&BatchRow>)> = BTreeMap::new();
        for b in &c.batches {
            held.entry((b.topic_id, b.partition)).or_insert((b.leader_epoch, Vec::new())).1.push(b);
        }
        for batches in held.values_mut() {
            batches.1.sort_by_key(|b| b.base_offset);
        }
        let s = self.commit_statements().await?.clone();
        let (keys_t, keys_p): (Vec<Uuid>, Vec<i32>) = held.keys().copied().unzip();
        let tx = self.client.transaction().await?;
        let rows = lease_and_lock(&tx, &s, node_id, incarnation, (&keys_t, &keys_p), "the commit is refused").await?;
        let found: BTreeMap<PartitionKey, (Option<i32>, i32, i64)> =
            rows.iter().map(|r| ((r.get(0), r.get(1)), (r.get(2), r.get(3), r.get(4)))).collect();
        let mut ends = Vec::with_capacity(held.len());
        for ((topic_id, partition), (epoch, batches)) in &held {
            let Some(&(leader, leader_epoch, log_end)) = found.get(&(*topic_id, *partition)) else {
                return Err(StoreError::Fenced(format!("partition {topic_id}/{partition} does not exist")));
            };
            if (leader, leader_epoch) != (Some(node_id), *epoch) || batches.iter().any(|b| b.leader_epoch != *epoch) {
                return Err(StoreError::Fenced(format!(
                    "partition {topic_id}/{partition} is not led by broker {node_id} in epoch {epoch} (now {:?})",
                    (leader, leader_epoch)
                )));
            }
            // The log has no gaps and no overlaps: the batches continue it exactly.
            let mut next = log_end;
            for b in batches {
                if b.base_offset != next || b.last_offset < b.base_offset {
                    return Err(StoreError::NotContiguous(format!(
                        "partition {topic_id}/{partition}: a batch at {}..={} where the log continues at {next}",
                        b.base_offset, b.last_offset
                    )));
                }
                next = b.last_offset + 1;
            }
            ends.push(next);
        }
        // The object, all its batch rows and the partitions' log ends: three statements sent
        // at once.
        let ends_args: &[&(dyn ToSql + Sync)] = &[&keys_t, &keys_p, &ends];
        tokio::try_join!(insert_object(&tx, &s, node_id, c), async {
            tx.execute(&s.ends, ends_args).await.map_err(StoreError::from)
        })?;
        tx.commit().await?;
        Ok(())
    }

    /// The commit's statements, prepared once per connection (a commit then costs four round
    /// trips and no parsing).
    async fn commit_statements(&self) -> Result<&CommitStatements, StoreError> {
        let client = &self.client;
        self.prepared
            .get_or_try_init(|| async {
                let (lease, lock, object, batches, ends) = tokio::try_join!(
                    client.prepare(
                        "SELECT 1 FROM brokers
                         WHERE node_id = $1 AND incarnation = $2 AND lease_expires_at > now() FOR SHARE"
                    ),
                    client.prepare(
                        "SELECT topic_id, partition, leader, leader_epoch, log_end FROM partitions
                         WHERE (topic_id, partition) IN (SELECT * FROM unnest($1::uuid[], $2::int4[]))
                         ORDER BY topic_id, partition FOR UPDATE"
                    ),
                    client.prepare("INSERT INTO objects (object_key, size, written_by) VALUES ($1, $2, $3)"),
                    client.prepare(
                        "INSERT INTO batches (topic_id, partition, base_offset, last_offset, object_key, byte_offset,
                           byte_length, max_timestamp, producer_id, producer_epoch, base_sequence, leader_epoch,
                           attributes, control_type, coordinator_epoch)
                         SELECT t, p, bo, lo, $1, off, len, ts, pid, pe, seq, le, a, ct, ce
                         FROM unnest($2::uuid[], $3::int4[], $4::int8[], $5::int8[], $6::int8[], $7::int4[],
                                     $8::int8[], $9::int8[], $10::int2[], $11::int4[], $12::int4[],
                                     $13::int2[], $14::int2[], $15::int4[])
                              AS x(t, p, bo, lo, off, len, ts, pid, pe, seq, le, a, ct, ce)"
                    ),
                    client.prepare(
                        "UPDATE partitions SET log_end = x.e
                         FROM unnest($1::uuid[], $2::int4[], $3::int8[]) AS x(t, p, e)
                         WHERE topic_id = x.t AND partition = x.p"
                    ),
                )?;
                Ok::<_, StoreError>(CommitStatements { lease, lock, object, batches, ends })
            })
            .await
    }

    /// The committed batches of a partition from `from_offset` on (the batch holding it
    /// first), at most `limit`, in offset order: (batch, object key).
    pub async fn batches(
        &self,
        topic_id: Uuid,
        partition: i32,
        from_offset: i64,
        limit: i64,
    ) -> Result<Vec<(BatchRow, String)>, StoreError> {
        let rows = self
            .client
            .query(
                concat!(
                    "SELECT ",
                    batch_columns!(),
                    "
                 FROM batches WHERE topic_id = $1 AND partition = $2 AND last_offset >= $3
                 ORDER BY base_offset LIMIT $4"
                ),
                &[&topic_id, &partition, &from_offset, &limit],
            )
            .await?;
        Ok(rows.iter().map(|r| batch_row(topic_id, partition, r)).collect())
    }

    /// The first committed batch of a partition at or after `from_offset` (the one holding it
    /// included) and starting before `before` whose largest timestamp is `target` or later:
    /// where a search by timestamp reads (ListOffsets). Batches are in offset order, and the
    /// first whose largest timestamp reaches the target holds the first record that does.
    pub async fn first_batch_at_time(
        &self,
        topic_id: Uuid,
        partition: i32,
        from_offset: i64,
        before: i64,
        target: i64,
    ) -> Result<Option<(BatchRow, String)>, StoreError> {
        let row = self
            .client
            .query_opt(
                concat!(
                    "SELECT ",
                    batch_columns!(),
                    "
                 FROM batches WHERE topic_id = $1 AND partition = $2 AND last_offset >= $3
                   AND base_offset < $4 AND max_timestamp >= $5
                 ORDER BY base_offset LIMIT 1"
                ),
                &[&topic_id, &partition, &from_offset, &before, &target],
            )
            .await?;
        Ok(row.map(|r| batch_row(topic_id, partition, &r)))
    }

    /// The committed batch of a partition at or after `from_offset` (the one holding it
    /// included) and starting before `before` with the largest max timestamp, the first of
    /// them on a tie; batches without timestamps (-1) are left out.
    pub async fn batch_with_max_timestamp(
        &self,
        topic_id: Uuid,
        partition: i32,
        from_offset: i64,
        before: i64,
    ) -> Result<Option<(BatchRow, String)>, StoreError> {
        let row = self
            .client
            .query_opt(
                concat!(
                    "SELECT ",
                    batch_columns!(),
                    "
                 FROM batches WHERE topic_id = $1 AND partition = $2 AND last_offset >= $3
                   AND base_offset < $4 AND max_timestamp >= 0
                 ORDER BY max_timestamp DESC, base_offset LIMIT 1"
                ),
                &[&topic_id, &partition, &from_offset, &before],
            )
            .await?;
        Ok(row.map(|r| batch_row(topic_id, partition, &r)))
    }

    /// Where retention moves a partition's log start, worked out on its batch rows from
    /// `log_start` on (for a log whose oldest part only the store holds): past the leading
    /// batches whose largest timestamp is before `cutoff` (`retention.ms`; None: no limit),
    /// and past those that leave at least `keep_bytes` after them (`retention.bytes`). As in
    /// Kafka's segment retention, deletion stops at the first batch that must stay, and a
    /// batch without timestamps (-1) stays; the unit is the batch here, not the segment.
    /// None: the start stays where it is.
    pub async fn retention_start(
        &self,
        topic_id: Uuid,
        partition: i32,
        log_start: i64,
        cutoff: Option<i64>,
        keep_bytes: Option<i64>,
    ) -> Result<Option<i64>, StoreError> {
        let end: i64 = match self.log_bounds(topic_id, partition).await? {
            Some((_, end)) => end,
            None => return Ok(None),
        };
        let mut start = log_start;
        if let Some(cutoff) = cutoff {
            let row = self
                .client
                .query_one(
                    "SELECT min(base_offset) FROM batches WHERE topic_id = $1 AND partition = $2
                       AND last_offset >= $3 AND base_offset < $4
                       AND (max_timestamp >= $5 OR max_timestamp < 0)",
                    &[&topic_id, &partition, &log_start, &end, &cutoff],
                )
                .await?;
            let kept: Option<i64> = row.get(0);
            start = start.max(kept.unwrap_or(end));
        }
        if let Some(keep) = keep_bytes {
            // The first batch the ones after it do not fill `keep_bytes` without; the last
            // batch stays even when nothing is to be kept, as Kafka keeps a log's active
            // segment. (sum of an integer column is a bigint; of a bigint, a numeric.)
            let row = self
                .client
                .query_opt(
                    "SELECT base_offset FROM (
                       SELECT base_offset, coalesce(sum(byte_length) OVER (ORDER BY base_offset DESC
                           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS after
                       FROM batches WHERE topic_id = $1 AND partition = $2
                         AND last_offset >= $3 AND base_offset < $4) s
                     WHERE after < $5 OR after = 0 ORDER BY base_offset LIMIT 1",
                    &[&topic_id, &partition, &log_start, &end, &keep],
                )
                .await?;
            start = start.max(row.map_or(log_start, |r| r.get(0)));
        }
        Ok((start > log_start).then_some(start.min(end)))
    }

    /// Where a new leader's local copy of a partition begins when it keeps about `keep_bytes`
    /// (`local.retention.bytes`): the last batch from which the batches to the end hold at
    /// least that many bytes, or the first batch when all of them hold fewer. Returns (first
    /// batch, that batch) of those from `log_start` on; None when the store holds none.
    pub async fn tail_start(
        &self,
        topic_id: Uuid,
        partition: i32,
        log_start: i64,
        keep_bytes: i64,
    ) -> Result<Option<(i64, i64)>, StoreError> {
        let row = self
            .client
            .query_one(
                "SELECT min(base_offset), max(base_offset) FILTER (WHERE from_here >= $4) FROM (
                   SELECT base_offset, sum(byte_length) OVER (ORDER BY base_offset DESC) AS from_here
                   FROM batches WHERE topic_id = $1 AND partition = $2 AND last_offset >= $3) s",
                &[&topic_id, &partition, &log_start, &keep_bytes],
            )
            .await?;
        let (first, tail): (Option<i64>, Option<i64>) = (row.get(0), row.get(1));
        Ok(first.map(|first| (first, tail.unwrap_or(first))))
    }

    /// Which of these object keys a committed batch references.
    pub async fn referenced(&self, keys: &[String]) -> Result<std::collections::HashSet<String>, StoreError> {
        let rows = self.client.query("SELECT object_key FROM objects WHERE object_key = ANY($1)", &[&keys]).await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// The partition's log end as committed batches made it.
    pub async fn log_end(&self, topic_id: Uuid, partition: i32) -> Result<Option<i64>, StoreError> {
        Ok(self.log_bounds(topic_id, partition).await?.map(|(_, end)| end))
    }

    /// The partition's committed log: (log start, log end).
    pub async fn log_bounds(&self, topic_id: Uuid, partition: i32) -> Result<Option<(i64, i64)>, StoreError> {
        let row = self
            .client
            .query_opt(
                "SELECT log_start, log_end FROM partitions WHERE topic_id = $1 AND partition = $2",
                &[&topic_id, &partition],
            )
            .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// Moves partitions' log starts forward (retention, DeleteRecords), each to at most its log
    /// end, for those this incarnation leads in the epoch given (the others are left as they
    /// are), in one short transaction; the batch rows wholly before the new starts, and the
    /// object rows no batch references any more, go in [`Store::sweep`]s. Returns the log
    /// start of each partition it moved or found already there.
    pub async fn advance_log_starts(
        &mut self,
        node_id: i32,
        incarnation: Uuid,
        starts: &[LogStart],
    ) -> Result<Vec<LogStart>, StoreError> {
        let s = self.commit_statements().await?.clone();
        let mut wanted: BTreeMap<PartitionKey, (i32, i64)> = BTreeMap::new();
        for w in starts {
            wanted.insert((w.topic_id, w.partition), (w.leader_epoch, w.log_start));
        }
        let (keys_t, keys_p): (Vec<Uuid>, Vec<i32>) = wanted.keys().copied().unzip();
        let tx = self.client.transaction().await?;
        let rows = lease_and_lock(&tx, &s, node_id, incarnation, (&keys_t, &keys_p), "the log starts stay").await?;
        let mut moved = Vec::new();
        for r in &rows {
            let key: PartitionKey = (r.get(0), r.get(1));
            let (leader, leader_epoch, log_end): (Option<i32>, i32, i64) = (r.get(2), r.get(3), r.get(4));
            let Some(&(epoch, start)) = wanted.get(&key) else { continue };
            if (leader, leader_epoch) == (Some(node_id), epoch) {
                moved.push(LogStart { topic_id: key.0, partition: key.1, leader_epoch, log_start: start.min(log_end) });
            }
        }
        let ts: Vec<Uuid> = moved.iter().map(|m| m.topic_id).collect();
        let ps: Vec<i32> = moved.iter().map(|m| m.partition).collect();
        let ss: Vec<i64> = moved.iter().map(|m| m.log_start).collect();
        let args: &[&(dyn ToSql + Sync)] = &[&ts, &ps, &ss];
        // The batch rows before the new starts go in the sweeps that follow.
        let updated = tx
            .query(
                "UPDATE partitions SET log_start = greatest(log_start, x.s)
                 FROM unnest($1::uuid[], $2::int4[], $3::int8[]) AS x(t, p, s)
                 WHERE topic_id = x.t AND partition = x.p
                 RETURNING topic_id, partition, log_start",
                args,
            )
            .await?;
        tx.commit().await?;
        let now: BTreeMap<PartitionKey, i64> = updated.iter().map(|r| ((r.get(0), r.get(1)), r.get(2))).collect();
        Ok(moved
            .into_iter()
            .map(|m| LogStart { log_start: now.get(&(m.topic_id, m.partition)).copied().unwrap_or(m.log_start), ..m })
            .collect())
    }

    /// Replaces the batch rows of a range of a partition's log with those of a new object, in
    /// one transaction fenced as a commit is (this incarnation's lease, the partition led by it
    /// in the rewrite's epoch): the partition's leader wrote the range again, merged or
    /// compacted. The range must hold only committed offsets and no committed batch may
    /// straddle either of its ends ([`StoreError::NotContiguous`] otherwise); the new rows must
    /// lie in it, in order. The object rows no batch references any more go with the rows (the
    /// objects are then garbage), and the partition's `merged_to` moves to the range's end.
    pub async fn rewrite(&mut self, node_id: i32, incarnation: Uuid, r: &Rewrite) -> Result<(), StoreError> {
        let here = format!("partition {}/{}", r.topic_id, r.partition);
        let mut next = r.from;
        for b in &r.object.batches {
            if (b.topic_id, b.partition) != (r.topic_id, r.partition) || b.base_offset < next || b.last_offset >= r.to {
                return Err(StoreError::NotContiguous(format!(
                    "{here}: a rewritten batch at {}..={} outside {}..{} or out of order",
                    b.base_offset, b.last_offset, r.from, r.to
                )));
            }
            next = b.last_offset + 1;
        }
        let s = self.commit_statements().await?.clone();
        let key = (vec![r.topic_id], vec![r.partition]);
        let tx = self.client.transaction().await?;
        let rows = lease_and_lock(&tx, &s, node_id, incarnation, (&key.0, &key.1), "the rewrite is refused").await?;
        let Some(row) = rows.first() else {
            return Err(StoreError::Fenced(format!("{here} does not exist")));
        };
        let (leader, leader_epoch, log_end): (Option<i32>, i32, i64) = (row.get(2), row.get(3), row.get(4));
        if (leader, leader_epoch) != (Some(node_id), r.leader_epoch) {
            return Err(StoreError::Fenced(format!(
                "{here} is not led by broker {node_id} in epoch {} (now {:?})",
                r.leader_epoch,
                (leader, leader_epoch)
            )));
        }
        let straddling: i64 = tx
            .query_one(
                "SELECT count(*) FROM batches WHERE topic_id = $1 AND partition = $2
                   AND ((base_offset < $3 AND last_offset >= $3) OR (base_offset < $4 AND last_offset >= $4))",
                &[&r.topic_id, &r.partition, &r.from, &r.to],
            )
            .await?
            .get(0);
        if r.to > log_end || r.from > r.to || straddling > 0 {
            return Err(StoreError::NotContiguous(format!(
                "{here}: {}..{} is not a range of whole committed batches (the log ends at {log_end})",
                r.from, r.to
            )));
        }
        let replaced = tx
            .query(
                "DELETE FROM batches WHERE topic_id = $1 AND partition = $2 AND base_offset >= $3 AND base_offset < $4
                 RETURNING object_key",
                &[&r.topic_id, &r.partition, &r.from, &r.to],
            )
            .await?;
        let mut keys: Vec<String> = replaced.iter().map(|row| row.get(0)).collect();
        keys.sort_unstable();
        keys.dedup();
        if !r.object.batches.is_empty() {
            insert_object(&tx, &s, node_id, &r.object).await?;
        }
        tx.execute(
            "UPDATE partitions SET merged_to = greatest(merged_to, $3) WHERE topic_id = $1 AND partition = $2",
            &[&r.topic_id, &r.partition, &r.to],
        )
        .await?;
        let_go_of_objects(&tx, &keys).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Up to where the partition's log was written again by its leaders ([`Self::rewrite`]).
    pub async fn merged_to(&self, topic_id: Uuid, partition: i32) -> Result<i64, StoreError> {
        let row = self
            .client
            .query_opt(
                "SELECT merged_to FROM partitions WHERE topic_id = $1 AND partition = $2",
                &[&topic_id, &partition],
            )
            .await?;
        Ok(row.map_or(0, |r| r.get(0)))
    }

    /// Writes share-partition state for the partitions this incarnation leads in the epoch each
    /// row gives, in one transaction fenced as a commit is (lease, leader, leader epoch); rows
    /// of the other partitions are not written. Returns those partitions: their state is no
    /// longer this broker's to keep.
    pub async fn write_share_states(
        &mut self,
        node_id: i32,
        incarnation: Uuid,
        rows: &[ShareStateRow],
    ) -> Result<Vec<PartitionKey>, StoreError> {
        let s = self.commit_statements().await?.clone();
        let mut wanted: BTreeMap<PartitionKey, std::collections::BTreeSet<i32>> = BTreeMap::new();
        for r in rows {
            wanted.entry((r.topic_id, r.partition)).or_default().insert(r.leader_epoch);
        }
        let (keys_t, keys_p): (Vec<Uuid>, Vec<i32>) = wanted.keys().copied().unzip();
        let tx = self.client.transaction().await?;
        let locked =
            lease_and_lock(&tx, &s, node_id, incarnation, (&keys_t, &keys_p), "no share state written").await?;
        let held: BTreeMap<PartitionKey, i32> = locked
            .iter()
            .filter(|r| r.get::<_, Option<i32>>(2) == Some(node_id))
            .map(|r| ((r.get(0), r.get(1)), r.get(3)))
            .collect();
        let ours = |r: &ShareStateRow| held.get(&(r.topic_id, r.partition)) == Some(&r.leader_epoch);
        let refused: Vec<PartitionKey> = wanted
            .iter()
            .filter(|(k, epochs)| held.get(k).is_none_or(|e| epochs.iter().any(|x| x != e)))
            .map(|(k, _)| *k)
            .collect();
        let (kept, gone): (Vec<&ShareStateRow>, Vec<&ShareStateRow>) =
            rows.iter().filter(|r| ours(r)).partition(|r| r.state.is_some());
        let kept_t: Vec<Uuid> = kept.iter().map(|r| r.topic_id).collect();
        let kept_p: Vec<i32> = kept.iter().map(|r| r.partition).collect();
        let kept_g: Vec<&str> = kept.iter().map(|r| r.group_id.as_str()).collect();
        let kept_e: Vec<i32> = kept.iter().map(|r| r.leader_epoch).collect();
        let kept_s: Vec<&[u8]> = kept.iter().filter_map(|r| r.state.as_deref()).collect();
        let gone_t: Vec<Uuid> = gone.iter().map(|r| r.topic_id).collect();
        let gone_p: Vec<i32> = gone.iter().map(|r| r.partition).collect();
        let gone_g: Vec<&str> = gone.iter().map(|r| r.group_id.as_str()).collect();
        let upsert_args: &[&(dyn ToSql + Sync)] = &[&kept_t, &kept_p, &kept_g, &kept_e, &kept_s];
        let delete_args: &[&(dyn ToSql + Sync)] = &[&gone_t, &gone_p, &gone_g];
        tokio::try_join!(
            tx.execute(
                "INSERT INTO share_states (topic_id, partition, group_id, leader_epoch, state)
                 SELECT * FROM unnest($1::uuid[], $2::int4[], $3::text[], $4::int4[], $5::bytea[])
                 ON CONFLICT (topic_id, partition, group_id)
                 DO UPDATE SET leader_epoch = excluded.leader_epoch, state = excluded.state",
                upsert_args,
            ),
            tx.execute(
                "DELETE FROM share_states WHERE (topic_id, partition, group_id) IN
                   (SELECT * FROM unnest($1::uuid[], $2::int4[], $3::text[]))",
                delete_args,
            ),
        )?;
        tx.commit().await?;
        Ok(refused)
    }

    /// The share-partition state of every group on one partition: (group, state).
    pub async fn share_states(&self, topic_id: Uuid, partition: i32) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let rows = self
            .client
            .query(
                "SELECT group_id, state FROM share_states WHERE topic_id = $1 AND partition = $2",
                &[&topic_id, &partition],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// One group's share-partition states on every partition: (topic id, partition, state).
    pub async fn group_share_states(&self, group_id: &str) -> Result<Vec<(Uuid, i32, Vec<u8>)>, StoreError> {
        let rows = self
            .client
            .query("SELECT topic_id, partition, state FROM share_states WHERE group_id = $1", &[&group_id])
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
    }

    /// Forgets one group's share-partition states, on the topics given or (`None`) on all.
    /// Returns how many went.
    pub async fn delete_group_share_states(&self, group_id: &str, topics: Option<&[Uuid]>) -> Result<u64, StoreError> {
        Ok(match topics {
            None => self.client.execute("DELETE FROM share_states WHERE group_id = $1", &[&group_id]).await?,
            Some(t) => {
                self.client
                    .execute("DELETE FROM share_states WHERE group_id = $1 AND topic_id = ANY($2)", &[&group_id, &t])
                    .await?
            }
        })
    }

    /// Deletes up to `limit` batch rows of deleted topics and up to `limit` batch rows before
    /// their partitions' log starts, in one transaction, with the objects none of whose
    /// batches is left, and forgets the deleted topics none of whose rows is left. Returns
    /// how many batch rows went: a sweep is done once that is 0.
    ///
    /// Nothing reads those rows (a log is read from its start, and a deleted topic not at
    /// all), so sweeping needs no fence, and brokers may sweep at once (a row deleted by one is
    /// skipped by the other).
    pub async fn sweep(&mut self, limit: i64) -> Result<u64, StoreError> {
        let tx = self.client.transaction().await?;
        let args: &[&(dyn ToSql + Sync)] = &[&limit];
        let (of_deleted, before_start) = tokio::try_join!(
            tx.query(
                "DELETE FROM batches WHERE (topic_id, partition, base_offset) IN (
                     SELECT b.topic_id, b.partition, b.base_offset FROM deleted_topics d
                     CROSS JOIN LATERAL (
                         SELECT x.topic_id, x.partition, x.base_offset FROM batches x
                         WHERE x.topic_id = d.topic_id
                         ORDER BY x.partition, x.base_offset
                         LIMIT $1 FOR UPDATE SKIP LOCKED) b
                     LIMIT $1)
                 RETURNING object_key",
                args,
            ),
            // Per partition, an index range up to its log start (a join of the two tables
            // would scan the whole index).
            tx.query(
                "DELETE FROM batches WHERE (topic_id, partition, base_offset) IN (
                     SELECT b.topic_id, b.partition, b.base_offset FROM partitions p
                     CROSS JOIN LATERAL (
                         SELECT x.topic_id, x.partition, x.base_offset FROM batches x
                         WHERE x.topic_id = p.topic_id AND x.partition = p.partition
                           AND x.base_offset < p.log_start AND x.last_offset < p.log_start
                         ORDER BY x.base_offset
                         LIMIT $1 FOR UPDATE SKIP LOCKED) b
                     WHERE p.log_start > 0
                     LIMIT $1)
                 RETURNING object_key",
                args,
            ),
        )?;
        let mut keys: Vec<String> = of_deleted.iter().chain(&before_start).map(|r| r.get(0)).collect();
        keys.sort_unstable();
        keys.dedup();
        let_go_of_objects(&tx, &keys).await?;
        if of_deleted.is_empty() {
            // A deleted topic's share-partition states: a few rows per group and partition.
            tx.execute("DELETE FROM share_states s USING deleted_topics d WHERE s.topic_id = d.topic_id", &[]).await?;
            tx.execute(
                "DELETE FROM deleted_topics d WHERE NOT EXISTS (SELECT 1 FROM batches b WHERE b.topic_id = d.topic_id)",
                &[],
            )
            .await?;
        }
        tx.commit().await?;
        Ok((of_deleted.len() + before_start.len()) as u64)
    }
}

/// The fence of every change a leader makes to its partitions (a commit, a log start move), in
/// `tx`: this incarnation's lease must be unexpired (its broker row share-locked), and the
/// partitions' rows are locked in key order by one statement, so that such changes never
/// deadlock; both are sent at once. Returns the rows (topic id, partition, leader, leader
/// epoch, log end); [`StoreError::Fenced`] (saying `refused`) when the lease ran out.
async fn lease_and_lock(
    tx: &tokio_postgres::Transaction<'_>,
    s: &CommitStatements,
    node_id: i32,
    incarnation: Uuid,
    (topic_ids, partitions): (&Vec<Uuid>, &Vec<i32>),
    refused: &str,
) -> Result<Vec<tokio_postgres::Row>, StoreError> {
    let (lease_args, lock_args): (&[&(dyn ToSql + Sync)], &[&(dyn ToSql + Sync)]) =
        (&[&node_id, &incarnation], &[topic_ids, partitions]);
    let (live, rows) = tokio::try_join!(tx.query_opt(&s.lease, lease_args), tx.query(&s.lock, lock_args))?;
    if live.is_none() {
        return Err(StoreError::Fenced(format!("broker {node_id}'s lease ran out: {refused}")));
    }
    Ok(rows)
}

/// Inserts an object's row and all its batch rows (arrays unnested), both statements sent at
/// once.
async fn insert_object(
    tx: &tokio_postgres::Transaction<'_>,
    s: &CommitStatements,
    node_id: i32,
    c: &ObjectCommit,
) -> Result<(), StoreError> {
    let col = |f: fn(&BatchRow) -> i64| c.batches.iter().map(f).collect::<Vec<i64>>();
    let topic_ids: Vec<Uuid> = c.batches.iter().map(|b| b.topic_id).collect();
    let partitions: Vec<i32> = c.batches.iter().map(|b| b.partition).collect();
    let (bases, lasts, byte_offsets) = (col(|b| b.base_offset), col(|b| b.last_offset), col(|b| b.byte_offset));
    let (max_ts, pids) = (col(|b| b.max_timestamp), col(|b| b.producer_id));
    let lengths: Vec<i32> = c.batches.iter().map(|b| b.byte_length).collect();
    let epochs: Vec<i16> = c.batches.iter().map(|b| b.producer_epoch).collect();
    let sequences: Vec<i32> = c.batches.iter().map(|b| b.base_sequence).collect();
    let leader_epochs: Vec<i32> = c.batches.iter().map(|b| b.leader_epoch).collect();
    let attributes: Vec<Option<i16>> = c.batches.iter().map(|b| b.attributes).collect();
    let control_types: Vec<Option<i16>> = c.batches.iter().map(|b| b.marker.map(|(t, _)| control_code(t))).collect();
    let coordinator_epochs: Vec<Option<i32>> = c.batches.iter().map(|b| b.marker.map(|(_, e)| e)).collect();
    let object_args: &[&(dyn ToSql + Sync)] = &[&c.object_key, &c.size, &node_id];
    let batch_args: &[&(dyn ToSql + Sync)] = &[
        &c.object_key,
        &topic_ids,
        &partitions,
        &bases,
        &lasts,
        &byte_offsets,
        &lengths,
        &max_ts,
        &pids,
        &epochs,
        &sequences,
        &leader_epochs,
        &attributes,
        &control_types,
        &coordinator_epochs,
    ];
    tokio::try_join!(tx.execute(&s.object, object_args), tx.execute(&s.batches, batch_args))?;
    Ok(())
}

/// In a transaction that deleted batch rows of these objects: deletes the object rows no batch
/// references any more (their objects are then garbage). The rows are locked first, in key
/// order: two transactions letting go of the last batches of one object at once then wait for
/// each other, and the second sees the object unreferenced, instead of each seeing the other's
/// batches and both keeping the row.
async fn let_go_of_objects(tx: &tokio_postgres::Transaction<'_>, keys: &[String]) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    tx.query("SELECT 1 FROM objects WHERE object_key = ANY($1) ORDER BY object_key FOR UPDATE", &[&keys]).await?;
    tx.execute(
        "DELETE FROM objects o WHERE o.object_key = ANY($1)
         AND NOT EXISTS (SELECT 1 FROM batches b WHERE b.object_key = o.object_key)",
        &[&keys],
    )
    .await?;
    Ok(())
}

/// A batch row and its object key, from a query selecting [`batch_columns`].
fn batch_row(topic_id: Uuid, partition: i32, r: &tokio_postgres::Row) -> (BatchRow, String) {
    let control: Option<i16> = r.get(10);
    let batch = BatchRow {
        topic_id,
        partition,
        base_offset: r.get(0),
        last_offset: r.get(1),
        byte_offset: r.get(2),
        byte_length: r.get(3),
        max_timestamp: r.get(4),
        producer_id: r.get(5),
        producer_epoch: r.get(6),
        base_sequence: r.get(7),
        leader_epoch: r.get(8),
        attributes: r.get(9),
        marker: control.map(|c| {
            let t = if c == control_code(ControlType::Commit) { ControlType::Commit } else { ControlType::Abort };
            (t, r.get::<_, Option<i32>>(11).unwrap_or(0))
        }),
    };
    (batch, r.get(12))
}

/// A marker's type as the `control_type` column (and a control record's key) holds it.
fn control_code(t: ControlType) -> i16 {
    match t {
        ControlType::Abort => 0,
        ControlType::Commit => 1,
    }
}

#[cfg(test)]
mod tests;
