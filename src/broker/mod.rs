//! The broker's shared state: configuration, topics, partition logs, and the operations that
//! span them (creating and deleting topics, auto-creation, background retention and flushing).
//! Handlers reach everything through an `Arc<Broker>`; there are no global singletons.
//!
//! Split along its jobs: this file opens the broker; `topic_admin` creates, grows, configures
//! and deletes topics; `background` runs the timers (retention, timed flushes, group expiry)
//! and the final flush of a clean stop.

mod background;
pub mod broker_configs;
pub mod fetch_sessions;
mod internal;
mod topic_admin;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tracing::{error, info};

use crate::cluster::Cluster;
use crate::config::Config;
use crate::config::GroupConfig;
use crate::group::{CoordinatorConfig, GroupCoordinator, RebalanceConfig};
use crate::log::files::FileCache;
use crate::log::{LogManager, PartitionLog, TopicPartition};
use crate::metadata::{self, topic_config, NodeInfo, TopicStore};
use crate::txn::{MarkerWriter, ProducerIdManager, TxnConfig, TxnCoordinator};

pub use crate::clock::now_ms;
pub use background::BackgroundTasks;
pub use internal::{is_internal, INTERNAL_TOPICS};
pub use topic_admin::{AlterTopicError, CreateTopicError, DeleteTopicError, NewTopic};

#[derive(Debug)]
pub struct Broker {
    pub config: Arc<Config>,
    pub node: NodeInfo,
    /// Who leads what, who coordinates, which brokers there are (see [`crate::cluster`]).
    pub cluster: Cluster,
    pub topics: TopicStore,
    pub logs: LogManager,
    /// Shared mode's data path: commits appended batches to the store, rebuilds led partitions
    /// from it (see [`crate::cluster::shipping`]).
    pub shipper: Option<Arc<crate::cluster::shipping::Shipper>>,
    pub producer_ids: ProducerIdManager,
    pub groups: GroupCoordinator,
    /// Share groups (KIP-932), kept in memory.
    pub share_groups: crate::group::share::ShareCoordinator,
    pub txns: TxnCoordinator,
    /// Incremental fetch sessions (KIP-227).
    pub fetch_sessions: fetch_sessions::FetchSessions,
    /// Broker configs changed at run time (see [`broker_configs`]).
    pub dynamic: broker_configs::DynamicConfigs,
    /// Serialises topic creation and deletion so check-then-act is atomic.
    topic_admin: Mutex<()>,
    /// Room for fetched record bytes in memory, in KiB (`server.fetch_memory_max_bytes`).
    pub fetch_memory: Arc<tokio::sync::Semaphore>,
    /// ACLs, and whether they are enforced (`authorizer.class.name`).
    pub acls: crate::auth::acl::Authorizer,
    /// SCRAM credentials (KIP-554).
    pub scram: crate::auth::scram::ScramStore,
    /// Client quotas and the rates measured against them.
    pub quotas: crate::auth::quota::QuotaStore,
    /// Shared mode: transactions' requests to the other brokers (markers, checks), set once
    /// the broker serves (`handlers::peers`).
    pub remote_txns: std::sync::OnceLock<Arc<dyn crate::txn::RemoteTxns>>,
    /// Shared mode: how a share group's coordinator resets share-partitions other brokers lead
    /// (`handlers::peers`).
    pub remote_shares: std::sync::OnceLock<Arc<dyn crate::group::share::RemoteShares>>,
}

impl Broker {
    /// Opens the data directory of a single node: loads topics and recovers every partition log.
    pub fn open(config: Arc<Config>, host: String, port: u16) -> io::Result<Self> {
        let cluster = Cluster::Single { node_id: config.server.node_id };
        Self::open_in(config, host, port, cluster)
    }

    /// [`Broker::open`] as a member of `cluster`, whose id the data directory takes.
    pub fn open_in(config: Arc<Config>, host: String, port: u16, cluster: Cluster) -> io::Result<Self> {
        let root = config.log.dir.clone();
        std::fs::create_dir_all(&root)?;
        let configured_id = match &cluster {
            Cluster::Single { .. } => config.server.cluster_id.clone(),
            Cluster::Shared(s) => Some(s.cluster_id().to_string()),
        };
        let cluster_id = metadata::load_or_init_cluster_id(&root, configured_id.as_deref(), config.server.node_id)?;
        let topics = TopicStore::load(&root)?;
        // One node keeps the security documents and the cluster default broker configs in its
        // data directory; a shared-mode cluster keeps them in its store, so that every broker
        // enforces the same.
        let (keeper, cluster_defaults): (Arc<dyn crate::auth::kept::Keeper>, _) = match &cluster {
            Cluster::Single { .. } => (crate::auth::kept::FileKeeper::new(&root), None),
            Cluster::Shared(s) => {
                let runtime = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
                let keeper = Arc::new(StoreKeeper { shared: s.clone(), runtime });
                let defaults: crate::auth::kept::Records<std::collections::BTreeMap<String, String>> =
                    crate::auth::kept::Records::open(keeper.clone(), broker_configs::DEFAULTS_DOCUMENT)?;
                (keeper, Some(defaults))
            }
        };
        let mut dynamic = broker_configs::DynamicLayers::load(&root)?;
        if let Some(defaults) = &cluster_defaults {
            dynamic = dynamic.with_cluster_default(defaults.get().clone());
        }
        let log_defaults = dynamic.log_defaults(&config.log);
        let producer_ids = match &cluster {
            Cluster::Single { .. } => ProducerIdManager::open(&root)?,
            Cluster::Shared(s) => ProducerIdManager::with_blocks(Box::new(StoreIdBlocks {
                shared: s.clone(),
                runtime: tokio::runtime::Handle::try_current().map_err(io::Error::other)?,
            })),
        };
        let file_cap = FileCache::cap_for_limit(crate::log::files::soft_open_file_limit());
        let logs = LogManager::new(root.clone(), FileCache::new(file_cap));
        let shipper = cluster.shared().map(|s| crate::cluster::shipping::Shipper::start(s.clone()));
        if let Some(shipper) = &shipper {
            logs.set_committer(shipper.clone());
        }
        let recovery = logs.begin_recovery();
        let now = now_ms();
        let started = std::time::Instant::now();
        let mut partitions = 0;
        for t in topics.list() {
            let pc = topic_config::partition_config(&log_defaults, &t.configs);
            for p in 0..t.partitions {
                logs.open(TopicPartition::new(&t.name, p), pc.clone(), now)?;
                partitions += 1;
            }
        }
        let names = StartTopics { topics: &topics, cluster_id: &cluster_id };
        let groups = GroupCoordinator::open(&logs, coordinator_config(&config.group), &names, now)?;
        let txns = TxnCoordinator::open(&logs, txn_config(&config), now)?;
        // At start, no retries: what cannot be written now is left prepared for the timer.
        let markers = Markers { logs: &logs, groups: &groups, cluster: &cluster, remote: None, retry: Duration::ZERO };
        txns.recover(&markers, now);
        let share_groups = match &cluster {
            Cluster::Single { .. } => {
                crate::group::share::ShareCoordinator::open(root.clone(), &logs, share_config(&config.group), now)?
            }
            Cluster::Shared(s) => crate::group::share::ShareCoordinator::open_shared(
                keeper.clone(),
                &logs,
                share_config(&config.group),
                Arc::new(StoreKeeper {
                    shared: s.clone(),
                    runtime: tokio::runtime::Handle::try_current().map_err(io::Error::other)?,
                }),
                now,
            )?,
        };
        logs.finish_recovery()?;
        info!(
            topics = topics.list().len(),
            partitions,
            ?recovery,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "data directory opened"
        );
        let node = NodeInfo { node_id: config.server.node_id, host, port, cluster_id };
        let fetch_memory = Arc::new(tokio::sync::Semaphore::new(config.server.fetch_memory_max_bytes.div_ceil(1024)));
        let auth = &config.auth;
        let acls = crate::auth::acl::Authorizer::open(
            keeper.clone(),
            auth.acls_enabled(),
            auth.super_users(),
            auth.allow_everyone_if_no_acl_found,
        )?;
        let scram = crate::auth::scram::ScramStore::open(keeper.clone())?;
        let quotas = crate::auth::quota::QuotaStore::open(keeper)?;
        let dynamic = broker_configs::DynamicConfigs::new(root, dynamic, cluster_defaults);
        let fetch_sessions = fetch_sessions::FetchSessions::new(
            config.server.fetch_session_cache_slots,
            config.server.fetch_session_cache_max_partitions,
        );
        Ok(Self {
            share_groups,
            config,
            node,
            cluster,
            topics,
            logs,
            shipper,
            producer_ids,
            groups,
            txns,
            dynamic,
            fetch_sessions,
            topic_admin: Mutex::new(()),
            fetch_memory,
            acls,
            scram,
            quotas,
            remote_txns: std::sync::OnceLock::new(),
            remote_shares: std::sync::OnceLock::new(),
        })
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<PartitionLog>> {
        self.logs.get(&TopicPartition::new(topic, partition))
    }

    /// Where the transaction coordinator writes its markers.
    pub fn markers(&self) -> Markers<'_> {
        Markers {
            logs: &self.logs,
            groups: &self.groups,
            cluster: &self.cluster,
            remote: self.remote_txns.get(),
            retry: MARKER_RETRY,
        }
    }
}

/// Shared mode: the broker's membership, for as long as the process runs. Each tick heartbeats,
/// plans and reloads the view (see [`crate::cluster::shared`]), then creates here the topics
/// other brokers created. PostgreSQL being away stalls nothing but this loop: the view stays as
/// it was until the store answers again.
pub async fn follow_cluster(broker: Arc<Broker>) {
    let Some(shared) = broker.cluster.shared().cloned() else { return };
    if let Some(shipper) = &broker.shipper {
        let weak = Arc::downgrade(&broker);
        shipper.on_rebuilt(Arc::new(move |tp: &TopicPartition| {
            if let Some(broker) = weak.upgrade() {
                broker.took_over(tp);
            }
        }));
    }
    let mut ticks = tokio::time::interval(shared.heartbeat_interval());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    // The controller looks for unreferenced objects about every five minutes; an object is
    // left ten minutes for the commit that may still reference it.
    let gc_every = (300_000 / shared.heartbeat_interval().as_millis().max(1)).max(1) as u64;
    let mut tick_count: u64 = 0;
    loop {
        ticks.tick().await;
        tick_count += 1;
        match shared.tick().await {
            Ok(()) => {
                if std::mem::take(&mut failing) {
                    info!("the cluster's coordination store answers again");
                }
            }
            Err(e) => {
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(error = %e, "cannot reach the cluster's coordination store; retrying");
                }
                continue;
            }
        }
        broker.take_up_view().await;
        take_up_documents(&broker, &shared.view()).await;
        // Where retention moved the logs' starts, the store follows (DeleteRecords tells it
        // at once).
        if let Some(shipper) = &broker.shipper {
            if let Err(e) = shipper.push_log_starts(&broker.logs.all()).await {
                crate::warn_limited!("log starts", error = %e, "cannot tell the coordination store where logs now start; trying again");
            }
            // Small objects merged per partition, cleaned logs written again (a round at a
            // time; one still under way is left to finish).
            let (shipper, logs) = (shipper.clone(), broker.logs.all());
            tokio::spawn(async move {
                match shipper.merge(&logs).await {
                    Ok(r) if r.objects > 0 => {
                        info!(
                            partitions = r.partitions,
                            objects = r.objects,
                            batches = r.batches,
                            bytes = r.bytes,
                            "merged committed batches into objects of their partitions"
                        )
                    }
                    Ok(_) => {}
                    Err(e) => {
                        crate::warn_limited!("merges", error = %e, "cannot merge committed batches; trying again later")
                    }
                }
            });
        }
        // The batch rows no log holds any more go after the change that let go of them (and,
        // from the controller, every few minutes, for what a broker that died left behind).
        let controls = broker.cluster.controller() == shared.node_id();
        if shared.take_sweep_due() || controls && tick_count.is_multiple_of(gc_every) {
            let shared = shared.clone();
            tokio::spawn(async move {
                match shared.sweep().await {
                    Ok(0) => {}
                    Ok(rows) => tracing::debug!(rows, "swept the batch index"),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot sweep the batch index; trying again at the next heartbeat")
                    }
                }
            });
        }
        if tick_count.is_multiple_of(gc_every) && controls {
            let shared = shared.clone();
            tokio::spawn(async move {
                match shared.collect_garbage(std::time::Duration::from_secs(600)).await {
                    Ok(0) => {}
                    Ok(n) => info!(objects = n, "deleted objects no commit references"),
                    Err(e) => tracing::warn!(error = %e, "cannot collect unreferenced objects; trying again later"),
                }
            });
        }
    }
}

impl Broker {
    /// Shared mode: this broker now leads `tp` and its log was rebuilt from the store. The
    /// group coordinator reloads its groups from `__consumer_offsets`, the transaction
    /// coordinator its transactional ids from `__transaction_state` (finishing what was left
    /// prepared). Share-partitions are loaded by the first share request that needs them.
    fn took_over(&self, tp: &TopicPartition) {
        if &*tp.topic == crate::group::OFFSETS_TOPIC {
            let names = StartTopics { topics: &self.topics, cluster_id: &self.node.cluster_id };
            match self.groups.reload(now_ms(), &names) {
                Ok(()) => info!("group coordinator: groups reloaded from the committed offsets log"),
                Err(e) => error!(error = %e, "group coordinator: cannot reload the groups"),
            }
        } else if &*tp.topic == crate::txn::TXN_TOPIC {
            match self.txns.reload(&self.markers(), now_ms()) {
                Ok(()) => info!("transaction coordinator: transactional ids reloaded from the state log"),
                Err(e) => error!(error = %e, "transaction coordinator: cannot reload the transactional ids"),
            }
        } else if &*tp.topic == crate::group::share::SHARE_STATE_TOPIC {
            // Unused in shared mode: each partition's leader keeps its share-partitions' state
            // in the store (`group::share::ClusterStates`).
        } else if is_internal(&tp.topic) {
            tracing::warn!(topic = %tp.topic, "coordinating this internal topic's state after a move is not built yet: its state is what this broker loaded at start");
        }
    }
}

/// Shared mode: producer id blocks come from the coordination store, so that brokers never
/// hand out the same id (an idempotent producer's sequence numbers are per producer id).
#[derive(Debug)]
struct StoreIdBlocks {
    shared: Arc<crate::cluster::shared::Shared>,
    runtime: tokio::runtime::Handle,
}

impl crate::txn::IdBlocks for StoreIdBlocks {
    fn allocate(&self, size: i64) -> io::Result<i64> {
        let shared = self.shared.clone();
        crate::blocking::wait_on(&self.runtime, async move { shared.allocate_producer_ids(size).await })
            .ok_or_else(|| io::Error::other("the runtime is stopping"))?
            .map_err(io::Error::other)
    }
}

/// Shared mode: what blocking code keeps in the coordination store: the security documents
/// (and the other documents of [`crate::auth::kept`]) and share-partition state.
#[derive(Debug)]
struct StoreKeeper {
    shared: Arc<crate::cluster::shared::Shared>,
    runtime: tokio::runtime::Handle,
}

impl StoreKeeper {
    /// `work` on the runtime; the store's connection bounds its wait (`cluster.store_timeout_ms`,
    /// below the clients' 30 s request timeout), so that a client is answered even when
    /// PostgreSQL hangs rather than refuses.
    fn wait<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = Result<T, crate::cluster::shared::SharedError>> + Send + 'static,
    ) -> io::Result<T> {
        match crate::blocking::wait_on(&self.runtime, work) {
            None => Err(io::Error::other("the runtime is stopping")),
            Some(answer) => answer.map_err(io::Error::other),
        }
    }
}

impl crate::auth::kept::Keeper for StoreKeeper {
    fn read(&self, name: &str) -> io::Result<crate::auth::kept::Document> {
        let (shared, name) = (self.shared.clone(), name.to_string());
        let (version, text) = self.wait(async move { shared.document(&name).await })?;
        Ok(crate::auth::kept::Document { version, text })
    }

    fn replace(&self, name: &str, version: i64, text: &str) -> io::Result<Option<i64>> {
        let (shared, name, text) = (self.shared.clone(), name.to_string(), text.to_string());
        self.wait(async move { shared.replace_document(&name, version, &text).await })
    }
}

/// Share-partition state, written by each partition's leader.
impl crate::group::share::ClusterStates for StoreKeeper {
    fn write(&self, rows: Vec<crate::group::share::StateWrite>) -> io::Result<Vec<(uuid::Uuid, i32)>> {
        let rows: Vec<crate::cluster::store::ShareStateRow> = rows
            .into_iter()
            .map(|w| crate::cluster::store::ShareStateRow {
                topic_id: w.key.1,
                partition: w.key.2,
                group_id: w.key.0,
                leader_epoch: w.leader_epoch,
                state: w.state,
            })
            .collect();
        let shared = self.shared.clone();
        self.wait(async move { shared.write_share_states(&rows).await })
    }

    fn forget_group(&self, group_id: &str) -> io::Result<()> {
        let (shared, group_id) = (self.shared.clone(), group_id.to_string());
        self.wait(async move { shared.delete_group_share_states(&group_id, None).await }).map(|_| ())
    }
}

/// Shared mode: takes up the ACLs, SCRAM credentials, client quotas, cluster default broker
/// configs and share group configs other brokers changed (their documents' versions moved in the view just loaded).
async fn take_up_documents(broker: &Arc<Broker>, view: &crate::cluster::shared::View) {
    use crate::auth::{acl, quota, scram};
    let defaults = broker_configs::DEFAULTS_DOCUMENT;
    let share_configs = crate::group::share::settings::DOCUMENT;
    let wanted = [acl::DOCUMENT, scram::DOCUMENT, quota::DOCUMENT, defaults, share_configs]
        .map(|name| view.document_version(name));
    let held = [
        broker.acls.records().version(),
        broker.scram.records().version(),
        broker.quotas.records().version(),
        broker.dynamic.cluster_records().map_or(0, |r| r.version()),
        broker.share_groups.configs_version(),
    ];
    if wanted == held {
        return;
    }
    // Each of these reads its document only if its version moved.
    let b = broker.clone();
    let followed = tokio::task::spawn_blocking(move || {
        let [acls, credentials, quotas, default_configs, group_configs] = wanted;
        [
            (acl::DOCUMENT, b.acls.records().follow(acls)),
            (scram::DOCUMENT, b.scram.records().follow(credentials)),
            (quota::DOCUMENT, b.quotas.records().follow(quotas)),
            (defaults, b.take_up_cluster_default(default_configs)),
            (share_configs, b.share_groups.follow_configs(group_configs)),
        ]
        .into_iter()
        .filter_map(|(name, outcome)| Some((name, outcome.err()?)))
        .for_each(|(name, e)| {
            crate::warn_limited!("documents", document = name, error = %e, "cannot take up a change other brokers made; trying again")
        });
    });
    if let Err(e) = followed.await {
        error!(error = %e, "taking up the cluster's security documents failed");
    }
}

/// The topics by id while the broker opens, for the group coordinator's replay: user topics
/// and the internal ones (a regex subscription may match those).
struct StartTopics<'a> {
    topics: &'a TopicStore,
    cluster_id: &'a str,
}

impl crate::group::consumer::TopicNames for StartTopics<'_> {
    fn topic_name(&self, id: &uuid::Uuid) -> Option<String> {
        if let Some(t) = self.topics.get_by_id(id) {
            return Some(t.name.to_string());
        }
        INTERNAL_TOPICS.into_iter().find(|n| internal::internal_topic_id(self.cluster_id, n) == *id).map(str::to_string)
    }
}

/// Writes transaction markers: into a topic partition's log, or, for `__consumer_offsets`,
/// through the group coordinator, which applies or drops the transaction's offsets. In shared
/// mode a partition another broker leads gets its marker through that broker (WriteTxnMarkers),
/// retried while its leadership moves.
pub struct Markers<'a> {
    logs: &'a LogManager,
    groups: &'a GroupCoordinator,
    cluster: &'a Cluster,
    remote: Option<&'a Arc<dyn crate::txn::RemoteTxns>>,
    /// How long a marker that cannot be written is retried.
    retry: Duration,
}

/// How long a marker is retried (a partition's leader moving, a broker restarting) before the
/// transaction is left prepared for the coordinator's timer to finish.
const MARKER_RETRY: Duration = Duration::from_secs(10);

impl MarkerWriter for Markers<'_> {
    fn write_marker(
        &self,
        tp: &(String, i32),
        producer_id: i64,
        epoch: i16,
        control: crate::log::producer_state::ControlType,
    ) -> Result<bool, String> {
        let deadline = std::time::Instant::now() + self.retry;
        loop {
            match self.write_once(tp, producer_id, epoch, control) {
                Err(e) if std::time::Instant::now() < deadline => {
                    tracing::debug!(partition = %format!("{}-{}", tp.0, tp.1), error = %e, "transaction marker not written yet; retrying");
                    std::thread::sleep(Duration::from_millis(200));
                }
                outcome => return outcome,
            }
        }
    }
}

impl Markers<'_> {
    fn write_once(
        &self,
        tp: &(String, i32),
        producer_id: i64,
        epoch: i16,
        control: crate::log::producer_state::ControlType,
    ) -> Result<bool, String> {
        if self.cluster.shared().is_some() {
            match self.cluster.leader(&tp.0, tp.1).leader {
                None => return Err(format!("{}-{} has no leader at the moment", tp.0, tp.1)),
                Some(node) if node != self.cluster.node_id() => {
                    let Some(remote) = self.remote else {
                        return Err("this broker cannot reach the others yet".into());
                    };
                    return remote.write_marker(node, tp, producer_id, epoch, control);
                }
                Some(_) => {}
            }
        }
        if tp.0 == crate::group::OFFSETS_TOPIC {
            return self.groups.end_txn(producer_id, epoch, control).map(|()| true);
        }
        let Some(log) = self.logs.get(&TopicPartition::new(&tp.0, tp.1)) else {
            return Ok(false);
        };
        let info = log.append_marker(producer_id, epoch, control, 0, now_ms()).map_err(|e| e.to_string())?;
        if log.durable_offset() <= info.last_offset {
            log.flush_blocking().map_err(|e| e.to_string())?;
        }
        Ok(true)
    }
}

fn txn_config(config: &Config) -> TxnConfig {
    let t = &config.transaction;
    TxnConfig {
        max_timeout_ms: i32::try_from(t.max_timeout_ms).unwrap_or(i32::MAX),
        id_expiration_ms: i64::try_from(t.id_expiration_ms).unwrap_or(i64::MAX),
        ..TxnConfig::default()
    }
}

fn share_config(g: &GroupConfig) -> crate::group::share::ShareConfig {
    crate::group::share::ShareConfig {
        session_timeout: Duration::from_millis(g.share_session_timeout_ms),
        heartbeat_interval: Duration::from_millis(g.share_heartbeat_interval_ms),
        record_lock_duration: Duration::from_millis(g.share_record_lock_duration_ms),
        delivery_count_limit: g.share_delivery_count_limit,
        partition_max_record_locks: g.share_partition_max_record_locks,
        max_size: g.share_max_size,
        max_sessions: g.share_max_share_sessions,
        checkpoint_bytes: crate::group::CHECKPOINT_BYTES,
    }
}

fn coordinator_config(g: &GroupConfig) -> CoordinatorConfig {
    CoordinatorConfig {
        rebalance: RebalanceConfig {
            initial_rebalance_delay: Duration::from_millis(g.initial_rebalance_delay_ms),
            min_session_timeout: Duration::from_millis(g.min_session_timeout_ms),
            max_session_timeout: Duration::from_millis(g.max_session_timeout_ms),
            max_size: g.max_size,
        },
        offsets_retention: Duration::from_secs(g.offsets_retention_minutes.saturating_mul(60)),
        offset_metadata_max_bytes: g.offset_metadata_max_bytes,
        checkpoint_bytes: crate::group::CHECKPOINT_BYTES,
        consumer: crate::group::consumer::ConsumerConfig {
            session_timeout: Duration::from_millis(g.consumer_session_timeout_ms),
            heartbeat_interval: Duration::from_millis(g.consumer_heartbeat_interval_ms),
            max_size: g.max_size,
            migration: crate::group::consumer::MigrationPolicy::from_name(&g.consumer_migration_policy)
                .unwrap_or_default(),
        },
    }
}
