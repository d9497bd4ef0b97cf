//! A broker's part in a shared-mode cluster: it registers in the coordination store, keeps its
//! lease alive, runs the lease plan, and keeps a view of the cluster (live brokers, topics,
//! partition leaders and epochs) that handlers read without waiting on PostgreSQL.
//!
//! Each tick (`cluster.heartbeat_interval_ms`): heartbeat, plan, reload the view. A broker whose
//! lease ran out (paused, or cut off from PostgreSQL) registers again as a new incarnation; by
//! then others lead its partitions, and it learns so from the view it reloads.
//!
//! Until that reload, the broker's own clock fences it: a lease is counted from just before
//! the heartbeat that extended it, on the monotonic clock (which runs on while the process is
//! stopped), so a broker that cannot be sure it still holds its lease leads nothing — it answers
//! NOT_LEADER_OR_FOLLOWER rather than take writes for partitions that may have moved.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use uuid::Uuid;

use super::connection::Connection;
use super::leases::PartitionKey;
use super::objects::Objects;
use super::store::{Leader, LiveBroker, Registration, ShareStateRow, Store, StoreError, TopicRow};
use super::view::Leadership;

/// The settings a shared-mode broker starts with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub postgres_url: String,
    pub object_store_url: String,
    /// How long a broker's lease lasts past its last heartbeat (`broker.session.timeout.ms`).
    pub session_timeout: Duration,
    /// How often a broker heartbeats, plans and reloads its view.
    pub heartbeat_interval: Duration,
    /// While busy, how long the shipper gathers batches for one object after the first
    /// arrives (an idle one ships at once).
    pub commit_linger: Duration,
    /// How often a leader writes what was committed of a partition since its last merge into
    /// an object of that partition alone (see `shipping`); zero: never.
    pub merge_interval: Duration,
    /// Bytes of batches read back from the objects kept in memory (`cluster.read_cache_bytes`).
    pub read_cache_bytes: u64,
    /// A directory store syncs each object before its commit (`log.fsync_acks_all`).
    pub fsync_objects: bool,
    /// How long any one use of the store may take (`cluster.store_timeout_ms`; see
    /// `connection`).
    pub store_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("coordination store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Objects(#[from] super::objects::ObjectsError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Gc(#[from] super::objects::GcError),
}

impl SharedError {
    /// Whether trying again later may work: the store did not answer or refused for now (a
    /// node id still held by its previous process's lease), as opposed to a setting or a
    /// schema this gregor cannot use.
    pub fn is_transient(&self) -> bool {
        matches!(self, SharedError::Store(StoreError::Db(_) | StoreError::NodeIdInUse(_) | StoreError::TimedOut { .. }))
    }
}

/// The cluster as this broker last loaded it.
#[derive(Debug, Default)]
pub struct View {
    /// Live brokers, by id.
    pub brokers: Vec<LiveBroker>,
    pub topics: Vec<TopicRow>,
    /// Topic name -> each partition's leadership, by partition index.
    leaders: HashMap<String, Vec<Leadership>>,
    /// The security documents' versions (a document never written is absent: version 0).
    pub documents: BTreeMap<String, i64>,
}

impl View {
    fn new(
        brokers: Vec<LiveBroker>,
        topics: Vec<TopicRow>,
        led: BTreeMap<PartitionKey, Leader>,
        documents: BTreeMap<String, i64>,
    ) -> Self {
        let by_id: HashMap<Uuid, &str> = topics.iter().map(|t| (t.id, t.name.as_str())).collect();
        let mut leaders: HashMap<String, Vec<Leadership>> = HashMap::new();
        for ((topic_id, partition), l) in led {
            let Some(name) = by_id.get(&topic_id) else { continue };
            let slots = leaders.entry((*name).to_string()).or_default();
            let Ok(p) = usize::try_from(partition) else { continue };
            if slots.len() <= p {
                slots.resize(p + 1, Leadership { leader: None, epoch: -1 });
            }
            slots[p] = Leadership { leader: l.node_id, epoch: l.epoch };
        }
        Self { brokers, topics, leaders, documents }
    }

    pub fn leader(&self, topic: &str, partition: i32) -> Leadership {
        usize::try_from(partition)
            .ok()
            .and_then(|p| self.leaders.get(topic)?.get(p).copied())
            .unwrap_or(Leadership { leader: None, epoch: -1 })
    }

    /// The version of document `name`.
    pub fn document_version(&self, name: &str) -> i64 {
        self.documents.get(name).copied().unwrap_or(0)
    }
}

pub struct Shared {
    node_id: i32,
    registration: Registration,
    settings: Settings,
    cluster_id: String,
    /// The ticks', the admin requests' and the merges' connection.
    pub(super) store: Connection,
    incarnation: Mutex<Uuid>,
    /// Until when this broker surely holds its lease (see the module's notes).
    lease_until: Mutex<Instant>,
    view: RwLock<Arc<View>>,
    /// When the last load of the view began, for [`Shared::reload_after`].
    loaded_at: Mutex<Instant>,
    pub(super) objects: Objects,
    /// The data path's own connection (commits, rebuilds), so that they and the ticks do not
    /// wait on each other.
    pub(super) data: Connection,
    /// Reads of the stored part of logs (see `reading`): consumers far behind wait neither on
    /// commits nor on ticks.
    pub(super) reads: Connection,
    /// Topic -> partition -> the leader epoch in which this broker's log of it was rebuilt from
    /// the store (see `shipping`): it serves a partition it leads only in that epoch.
    pub(super) rebuilt: RwLock<HashMap<Arc<str>, HashMap<i32, i32>>>,
    /// A topic was deleted or a log start moved since the last sweep of the batch index.
    sweep_due: AtomicBool,
    /// Held by the sweep under way.
    sweeping: tokio::sync::Mutex<()>,
}

/// Batch rows a sweep deletes per transaction, of each kind (10,000 take about 40 ms here,
/// with 5 million in the index).
const SWEEP_ROWS: i64 = 10_000;

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("node_id", &self.node_id).field("cluster_id", &self.cluster_id).finish()
    }
}

impl Shared {
    /// Connects, applies the schema migrations, learns (or sets) the cluster id, registers the
    /// internal topics and this broker, and loads a first view.
    /// `internal_topics` gives the internal topics' names and ids for a cluster id.
    pub async fn start(
        settings: Settings,
        registration: Registration,
        proposed_cluster_id: &str,
        internal_topics: impl Fn(&str) -> Vec<(String, Uuid)>,
    ) -> Result<Arc<Self>, SharedError> {
        let objects = Objects::open(&settings.object_store_url, settings.fsync_objects)?;
        let store = Connection::new(&settings.postgres_url, settings.store_timeout);
        let version = store.call("the schema migrations", async |s| s.migrate().await).await?;
        let cluster_id =
            store.call("a look-up of the cluster id", async |s| s.cluster_id(proposed_cluster_id).await).await?;
        for (name, id) in internal_topics(&cluster_id) {
            match store.call("a creation of an internal topic", async |s| s.create_topic(&name, id, 1).await).await {
                Ok(()) | Err(StoreError::TopicExists(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let asked = Instant::now();
        let lease = settings.session_timeout;
        let incarnation = store.call("a registration", async |s| s.register(&registration, lease).await).await?;
        let lease_until = asked + settings.session_timeout;
        tracing::info!(
            node_id = registration.node_id,
            %cluster_id,
            schema_version = version,
            listeners = ?registration.listeners,
            "joined the shared-mode cluster"
        );
        let data = Connection::new(&settings.postgres_url, settings.store_timeout);
        let reads = Connection::new(&settings.postgres_url, settings.store_timeout);
        let shared = Arc::new(Self {
            node_id: registration.node_id,
            registration,
            settings,
            cluster_id,
            store,
            incarnation: Mutex::new(incarnation),
            lease_until: Mutex::new(lease_until),
            view: RwLock::default(),
            loaded_at: Mutex::new(Instant::now()),
            data,
            reads,
            objects,
            rebuilt: RwLock::default(),
            sweep_due: Default::default(),
            sweeping: Default::default(),
        });
        shared.plan_and_reload().await?;
        Ok(shared)
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    pub fn heartbeat_interval(&self) -> Duration {
        self.settings.heartbeat_interval
    }

    /// Whether this broker surely still holds its lease.
    pub fn holds_lease(&self) -> bool {
        Instant::now() < *self.lease_until.lock()
    }

    /// Whether this broker may serve `topic`'s `partition`, which the view says it leads in
    /// `epoch`: it holds its lease, and its log of the partition was rebuilt in that epoch.
    pub fn serves(&self, topic: &str, partition: i32, epoch: i32) -> bool {
        self.holds_lease() && self.rebuilt_in(topic, partition) == Some(epoch)
    }

    /// The leader epoch in which this broker's log of `topic`'s `partition` was last rebuilt
    /// from the store (and is the committed log since, for as long as the epoch holds).
    pub(super) fn rebuilt_in(&self, topic: &str, partition: i32) -> Option<i32> {
        self.rebuilt.read().get(topic).and_then(|p| p.get(&partition)).copied()
    }

    /// Steps time for a test: this broker's lease is no longer sure, as after a pause.
    #[cfg(test)]
    pub(super) fn lose_lease_for_a_while(&self) {
        *self.lease_until.lock() = Instant::now();
    }

    /// Undoes [`Self::lose_lease_for_a_while`], as the next heartbeat would.
    #[cfg(test)]
    pub(super) fn regain_lease(&self) {
        *self.lease_until.lock() = Instant::now() + self.settings.session_timeout;
    }

    pub(super) fn settings(&self) -> &Settings {
        &self.settings
    }

    pub(super) fn incarnation(&self) -> Uuid {
        *self.incarnation.lock()
    }

    /// The latest view.
    pub fn view(&self) -> Arc<View> {
        self.view.read().clone()
    }

    /// One tick: heartbeat (registering again when the lease was lost), plan, reload.
    pub async fn tick(&self) -> Result<(), SharedError> {
        let (incarnation, lease) = (*self.incarnation.lock(), self.settings.session_timeout);
        let asked = Instant::now();
        let beat = self.store.call("a heartbeat", async |s| s.heartbeat(self.node_id, incarnation, lease).await).await;
        match beat {
            Ok(()) => {}
            Err(StoreError::Fenced(why)) => {
                tracing::warn!(node_id = self.node_id, %why, "lost the cluster lease; registering again");
                let asked = Instant::now();
                let fresh =
                    self.store.call("a registration", async |s| s.register(&self.registration, lease).await).await?;
                *self.incarnation.lock() = fresh;
                // Reload before leading again: the old view may name this broker for
                // partitions others have taken.
                self.plan_and_reload().await?;
                *self.lease_until.lock() = asked + self.settings.session_timeout;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        *self.lease_until.lock() = asked + self.settings.session_timeout;
        self.plan_and_reload().await
    }

    /// Runs the lease plan and loads a new view now.
    pub async fn reload(&self) -> Result<(), SharedError> {
        self.plan_and_reload().await
    }

    /// Returns once the view was loaded by a load that began at or after `asked`, starting one
    /// no sooner than `every` after the previous one began: for a request naming something this
    /// broker does not know yet, answered from the store as it was after the request came,
    /// without letting a stream of such requests turn into a stream of queries.
    pub async fn reload_after(&self, asked: Instant, every: Duration) -> Result<(), SharedError> {
        loop {
            let began = *self.loaded_at.lock();
            if began >= asked {
                // That load holds the store until it has replaced the view.
                return Ok(self.store.settled("a load of the cluster's view").await?);
            }
            let since = began.elapsed();
            if since >= every {
                return self.plan_and_reload().await;
            }
            tokio::time::sleep(every - since).await;
        }
    }

    async fn plan_and_reload(&self) -> Result<(), SharedError> {
        let loaded = self
            .store
            .call("a load of the cluster's view", async |store| {
                // Set as the load starts, so that requests arriving meanwhile do not queue another.
                *self.loaded_at.lock() = Instant::now();
                let moves = store.rebalance().await?;
                for m in &moves {
                    tracing::info!(partition = ?m.partition, from = ?m.from, to = m.to, epoch = m.epoch, "partition lease moved");
                }
                let brokers = store.live_brokers().await?;
                let topics = store.topics().await?;
                let leaders = store.leaders().await?;
                let documents = store.document_versions().await?;
                // Replaced while the connection is held, for `reload_after`.
                *self.view.write() = Arc::new(View::new(brokers, topics, leaders, documents));
                Ok(())
            })
            .await;
        Ok(loaded?)
    }

    /// Records a new topic in the store, then gives its partitions leaders. Refused with
    /// [`StoreError::TopicExists`] when any broker created the name first.
    pub async fn create_topic(
        &self,
        name: &str,
        id: Uuid,
        partitions: i32,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), SharedError> {
        let create = async |s: &mut Store| s.create_topic_with(name, id, partitions, configs).await;
        self.store.call("a topic's creation", create).await?;
        self.plan_and_reload().await
    }

    /// Replaces a topic's config overrides in the store. False: the topic is gone.
    pub async fn set_topic_configs(&self, id: Uuid, configs: &BTreeMap<String, String>) -> Result<bool, SharedError> {
        let set =
            self.store.call("a change of a topic's configs", async |s| s.set_topic_configs(id, configs).await).await?;
        self.reload().await?;
        Ok(set)
    }

    /// Grows a topic in the store, then gives the new partitions leaders. False: the topic is
    /// gone or already that large.
    pub async fn add_partitions(&self, id: Uuid, partitions: i32) -> Result<bool, SharedError> {
        let added = self.store.call("a topic's growth", async |s| s.add_partitions(id, partitions).await).await?;
        self.plan_and_reload().await?;
        Ok(added)
    }

    /// Deletes a topic from the store (every broker deletes its copy when it next loads the
    /// view). False: it was gone already.
    pub async fn delete_topic(&self, id: Uuid) -> Result<bool, SharedError> {
        let deleted = self.store.call("a topic's deletion", async |s| s.delete_topic(id).await).await?;
        self.sweep_later();
        self.reload().await?;
        Ok(deleted)
    }

    /// Of these local topics' ids, those the store no longer has.
    pub async fn topics_gone(&self, ids: &[Uuid]) -> Result<Vec<Uuid>, SharedError> {
        let present = self.store.call("a look-up of topics", async |s| s.topics_present(ids).await).await?;
        Ok(ids.iter().filter(|id| !present.contains(id)).copied().collect())
    }

    /// Document `name` as the store keeps it now: its version and text.
    pub async fn document(&self, name: &str) -> Result<(i64, String), SharedError> {
        Ok(self.store.call("a read of a document", async |s| s.document(name).await).await?)
    }

    /// Replaces document `name` if it is still in `version`: its new version, or `None` when
    /// another broker changed it first.
    pub async fn replace_document(&self, name: &str, version: i64, text: &str) -> Result<Option<i64>, SharedError> {
        let replace = async |s: &mut Store| s.replace_document(name, version, text).await;
        Ok(self.store.call("a change of a document", replace).await?)
    }

    /// Writes share-partition state for partitions this broker leads (see
    /// [`Store::write_share_states`]); returns the partitions whose rows were refused.
    pub async fn write_share_states(&self, rows: &[ShareStateRow]) -> Result<Vec<(Uuid, i32)>, SharedError> {
        let incarnation = *self.incarnation.lock();
        let write = async |s: &mut Store| s.write_share_states(self.node_id, incarnation, rows).await;
        Ok(self.store.call("a write of share-group state", write).await?)
    }

    /// The share-partition state of every group on one partition: (group, state).
    pub async fn share_states(&self, topic_id: Uuid, partition: i32) -> Result<Vec<(String, Vec<u8>)>, SharedError> {
        let read = async |s: &mut Store| s.share_states(topic_id, partition).await;
        Ok(self.store.call("a read of share-group state", read).await?)
    }

    /// One group's share-partition states on every partition: (topic id, partition, state).
    pub async fn group_share_states(&self, group_id: &str) -> Result<Vec<(Uuid, i32, Vec<u8>)>, SharedError> {
        let read = async |s: &mut Store| s.group_share_states(group_id).await;
        Ok(self.store.call("a read of share-group state", read).await?)
    }

    /// Forgets one group's share-partition states, on the topics given or (`None`) on all.
    pub async fn delete_group_share_states(&self, group_id: &str, topics: Option<&[Uuid]>) -> Result<u64, SharedError> {
        let delete = async |s: &mut Store| s.delete_group_share_states(group_id, topics).await;
        Ok(self.store.call("a deletion of share-group state", delete).await?)
    }

    /// Takes a block of `count` producer ids no other broker of the cluster is given; returns
    /// its first id.
    pub async fn allocate_producer_ids(&self, count: i64) -> Result<i64, SharedError> {
        Ok(self.store.call("an allocation of producer ids", async |s| s.allocate_producer_ids(count).await).await?)
    }

    /// Deletes the objects older than `grace` that no commit references (a broker wrote them
    /// and its commit was refused or never came). The controller's chore.
    pub async fn collect_garbage(&self, grace: Duration) -> Result<usize, SharedError> {
        Ok(super::objects::collect_garbage(&self.objects, &self.store, grace).await?)
    }

    /// Whether a sweep of the batch index is due (a topic was deleted or a log start moved
    /// through this broker, or the last sweep failed); asking clears it.
    pub fn take_sweep_due(&self) -> bool {
        self.sweep_due.swap(false, Ordering::AcqRel)
    }

    /// Rows were let go of (a topic deleted, a log start moved), or a sweep did not finish:
    /// a sweep is due.
    pub(super) fn sweep_later(&self) {
        self.sweep_due.store(true, Ordering::Release);
    }

    /// Deletes the batch rows no log holds any more (of deleted topics, before log starts) and
    /// the objects none of whose batches is left, a bounded number per transaction, until none
    /// is left. Returns how many rows went (0 when another sweep of this broker is under way).
    /// A sweep that fails is due again.
    pub async fn sweep(&self) -> Result<u64, SharedError> {
        let Ok(_alone) = self.sweeping.try_lock() else {
            // The sweep under way may have passed what the caller was told of: due again.
            self.sweep_later();
            return Ok(0);
        };
        let mut swept = 0;
        loop {
            match self.store.call("a sweep of the batch index", async |s| s.sweep(SWEEP_ROWS).await).await {
                Ok(0) => return Ok(swept),
                Ok(n) => swept += n,
                Err(e) => {
                    self.sweep_later();
                    return Err(e.into());
                }
            }
        }
    }

    /// Ends this broker's lease at a clean stop, so that its partitions move at once.
    pub async fn leave(&self) {
        let incarnation = *self.incarnation.lock();
        if let Err(e) =
            self.store.call("a deregistration", async |s| s.deregister(self.node_id, incarnation).await).await
        {
            tracing::warn!(error = %e, "could not end the cluster lease; it runs out by itself");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    use uuid::Uuid;

    use super::{Settings, Shared};
    use crate::cluster::store::Registration;
    use crate::cluster::testing::PgServer;
    use crate::cluster::Cluster;

    fn led_by(shared: &Shared, topic: &str, partitions: i32) -> Vec<(Option<i32>, i32)> {
        let view = shared.view();
        (0..partitions).map(|p| view.leader(topic, p)).map(|l| (l.leader, l.epoch)).collect()
    }

    #[tokio::test]
    async fn a_broker_past_its_lease_loses_its_partitions_and_registers_again_when_it_resumes() {
        let Some(pg) = PgServer::start() else { return };
        let settings = Settings {
            postgres_url: pg.url.clone(),
            object_store_url: "memory:///".into(),
            session_timeout: Duration::from_millis(1500),
            heartbeat_interval: Duration::from_millis(50),
            commit_linger: Duration::ZERO,
            merge_interval: Duration::ZERO,
            read_cache_bytes: 1 << 20,
            fsync_objects: true,
            store_timeout: Duration::from_secs(30),
        };
        let registration = |node_id: i32| Registration {
            node_id,
            rack: None,
            listeners: BTreeMap::from([("PLAINTEXT".to_string(), format!("127.0.0.1:{}", 9000 + node_id))]),
        };
        let no_internal = |_: &str| Vec::new();
        let a = Shared::start(settings.clone(), registration(1), "first", no_internal).await.unwrap();
        let b = Shared::start(settings, registration(2), "second", no_internal).await.unwrap();
        assert_eq!((a.cluster_id(), b.cluster_id()), ("first", "first"), "the first broker names the cluster");
        a.create_topic("t", Uuid::new_v4(), 4, &BTreeMap::new()).await.unwrap();
        b.tick().await.unwrap();
        a.tick().await.unwrap();
        let before = led_by(&b, "t", 4);
        assert_eq!(before, led_by(&a, "t", 4), "both brokers see the same leaders");
        assert_eq!(before.iter().filter(|(l, _)| *l == Some(1)).count(), 2, "{before:?}");
        assert_eq!(b.view().brokers.len(), 2);

        // Broker 1 stops ticking (paused): once its lease runs out, broker 2 leads everything,
        // each moved partition in a higher epoch.
        let deadline = Instant::now() + Duration::from_secs(10);
        let taken = loop {
            b.tick().await.unwrap();
            let now = led_by(&b, "t", 4);
            if now.iter().all(|(l, _)| *l == Some(2)) {
                break now;
            }
            assert!(Instant::now() < deadline, "broker 2 did not take broker 1's partitions: {now:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        for ((was, epoch), (_, now)) in before.iter().zip(&taken) {
            assert!(*was == Some(2) && now == epoch || *was == Some(1) && now > epoch, "{before:?} -> {taken:?}");
        }
        assert_eq!(b.view().brokers.len(), 1);
        // Broker 1's view is stale, but its lease ran out on its own clock too: it leads nothing.
        assert!(led_by(&a, "t", 4).iter().any(|(l, _)| *l == Some(1)), "broker 1 has not reloaded");
        assert!(!a.holds_lease());
        let stale = Cluster::Shared(a.clone());
        assert!((0..4).all(|p| !stale.leads("t", p)), "a broker past its lease still leads");

        // Broker 1 resumes: its heartbeat is refused, it registers as a new incarnation, and
        // the plan gives it its share again.
        let old = *a.incarnation.lock();
        a.tick().await.unwrap();
        assert_ne!(*a.incarnation.lock(), old, "a lapsed broker comes back as a new incarnation");
        b.tick().await.unwrap();
        let after = led_by(&b, "t", 4);
        assert_eq!(after.iter().filter(|(l, _)| *l == Some(1)).count(), 2, "{after:?}");
        assert_eq!(after, led_by(&a, "t", 4));
    }

    #[tokio::test]
    async fn a_postgresql_restart_stalls_the_ticks_and_they_recover_on_a_new_connection() {
        let Some(mut pg) = PgServer::start() else { return };
        let settings = Settings {
            postgres_url: pg.url.clone(),
            object_store_url: "memory:///".into(),
            session_timeout: Duration::from_secs(20),
            heartbeat_interval: Duration::from_millis(50),
            commit_linger: Duration::ZERO,
            merge_interval: Duration::ZERO,
            read_cache_bytes: 1 << 20,
            fsync_objects: true,
            store_timeout: Duration::from_secs(30),
        };
        let registration =
            Registration { node_id: 1, rack: None, listeners: BTreeMap::from([("PLAINTEXT".into(), "h:1".into())]) };
        let a = Shared::start(settings, registration, "c", |_: &str| Vec::new()).await.unwrap();
        a.create_topic("t", Uuid::new_v4(), 2, &BTreeMap::new()).await.unwrap();
        let before = led_by(&a, "t", 2);
        assert_eq!(before, [(Some(1), 1), (Some(1), 1)]);

        pg.stop();
        assert!(a.tick().await.is_err(), "no store, no tick");
        assert_eq!(led_by(&a, "t", 2), before, "the view stays as it was while the store is away");
        assert!(a.holds_lease(), "an outage shorter than the lease takes nothing away");

        pg.start_again();
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Err(e) = a.tick().await {
            assert!(Instant::now() < deadline, "ticks did not recover after PostgreSQL came back: {e}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(led_by(&a, "t", 2), before, "same leaders, same epochs");
        a.create_topic("u", Uuid::new_v4(), 1, &BTreeMap::new()).await.unwrap();
    }
}
