//! The broker's shared state: configuration, topics, partition logs, and the operations that
//! span them (creating and deleting topics, auto-creation, background retention and flushing).
//! Handlers reach everything through an `Arc<Broker>`; there are no global singletons.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tracing::{error, info};
use uuid::Uuid;

use crate::config::Config;
use crate::config::GroupConfig;
use crate::group::{CoordinatorConfig, GroupCoordinator, RebalanceConfig, OFFSETS_TOPIC};
use crate::log::files::FileCache;
use crate::log::{LogManager, PartitionConfig, PartitionLog, TopicPartition};
use crate::metadata::{self, topic_config, NodeInfo, TopicMeta, TopicStore};
use crate::txn::ProducerIdManager;

pub use crate::clock::now_ms;

#[derive(Debug)]
pub struct Broker {
    pub config: Arc<Config>,
    pub node: NodeInfo,
    pub topics: TopicStore,
    pub logs: LogManager,
    pub producer_ids: ProducerIdManager,
    pub groups: GroupCoordinator,
    /// Serialises topic creation and deletion so check-then-act is atomic.
    topic_admin: Mutex<()>,
    /// Room for fetched record bytes in memory, in KiB (`server.fetch_memory_max_bytes`).
    pub fetch_memory: Arc<tokio::sync::Semaphore>,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateTopicError {
    #[error("Topic '{0}' already exists.")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error("{0}")]
    InvalidConfig(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("storage error: {0}")]
    Io(#[from] io::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum DeleteTopicError {
    #[error("This server does not host this topic-partition.")]
    UnknownTopic,
    #[error("storage error: {0}")]
    Io(#[from] io::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum AlterTopicError {
    #[error("This server does not host this topic-partition.")]
    UnknownTopic,
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error("{0}")]
    InvalidConfig(String),
    #[error("storage error: {0}")]
    Io(#[from] io::Error),
}

/// What a CreateTopics request asks for, in domain terms.
#[derive(Debug, Clone, Default)]
pub struct NewTopic {
    pub name: String,
    /// -1: the broker default.
    pub partitions: i32,
    /// -1: the broker default.
    pub replication_factor: i16,
    /// Manual assignment: partition -> replica broker ids.
    pub assignments: Vec<(i32, Vec<i32>)>,
    pub configs: BTreeMap<String, String>,
}

impl Broker {
    /// Opens the data directory: loads topics and recovers every partition log.
    pub fn open(config: Arc<Config>, host: String, port: u16) -> io::Result<Self> {
        let root = config.log.dir.clone();
        std::fs::create_dir_all(&root)?;
        let cluster_id =
            metadata::load_or_init_cluster_id(&root, config.server.cluster_id.as_deref(), config.server.node_id)?;
        let topics = TopicStore::load(&root)?;
        let producer_ids = ProducerIdManager::open(&root)?;
        let file_cap = FileCache::cap_for_limit(crate::log::files::soft_open_file_limit());
        let logs = LogManager::new(root, FileCache::new(file_cap));
        let recovery = logs.begin_recovery();
        let now = now_ms();
        let started = std::time::Instant::now();
        let mut partitions = 0;
        for t in topics.list() {
            let pc = topic_config::partition_config(&config.log, &t.configs);
            for p in 0..t.partitions {
                logs.open(TopicPartition::new(&t.name, p), pc.clone(), now)?;
                partitions += 1;
            }
        }
        let groups = GroupCoordinator::open(&logs, coordinator_config(&config.group), now)?;
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
        Ok(Self { config, node, topics, logs, producer_ids, groups, topic_admin: Mutex::new(()), fetch_memory })
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<PartitionLog>> {
        self.logs.get(&TopicPartition::new(topic, partition))
    }

    /// Validates a new topic and, unless `validate_only`, creates it.
    pub fn create_topic(&self, req: NewTopic, validate_only: bool) -> Result<Arc<TopicMeta>, CreateTopicError> {
        metadata::validate_topic_name(&req.name).map_err(CreateTopicError::InvalidName)?;
        if req.name == OFFSETS_TOPIC || req.name == "__transaction_state" {
            return Err(CreateTopicError::InvalidName(format!("Topic name {} is reserved for internal use", req.name)));
        }
        let partitions = if !req.assignments.is_empty() {
            if req.partitions != -1 || req.replication_factor != -1 {
                return Err(CreateTopicError::InvalidRequest(
                    "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
                ));
            }
            let mut ids: Vec<i32> = req.assignments.iter().map(|(p, _)| *p).collect();
            ids.sort_unstable();
            if ids.iter().enumerate().any(|(i, &p)| p != i as i32) {
                return Err(CreateTopicError::InvalidReplicaAssignment(
                    "Partitions should be consecutive and start from 0".into(),
                ));
            }
            for (p, replicas) in &req.assignments {
                if replicas.is_empty() || replicas.iter().any(|&r| r != self.node.node_id) {
                    return Err(CreateTopicError::InvalidReplicaAssignment(format!(
                        "Replica assignment for partition {p} names brokers other than {}",
                        self.node.node_id
                    )));
                }
                if replicas.len() > 1 {
                    return Err(CreateTopicError::InvalidReplicationFactor(format!(
                        "Replication factor: {} larger than available brokers: 1.",
                        replicas.len()
                    )));
                }
            }
            req.assignments.len() as i32
        } else {
            let p = if req.partitions == -1 { self.config.topics.num_partitions } else { req.partitions };
            if p < 1 {
                return Err(CreateTopicError::InvalidPartitions("Number of partitions must be larger than 0.".into()));
            }
            if req.replication_factor != -1 && req.replication_factor < 1 {
                return Err(CreateTopicError::InvalidReplicationFactor(
                    "Replication factor must be larger than 0, or -1 to use the default value.".into(),
                ));
            }
            if req.replication_factor > 1 {
                return Err(CreateTopicError::InvalidReplicationFactor(format!(
                    "Unable to replicate the partition {} time(s): The target replication factor of {} cannot be reached because only 1 broker(s) are registered.",
                    req.replication_factor, req.replication_factor
                )));
            }
            p
        };
        if partitions > 100_000 {
            return Err(CreateTopicError::InvalidPartitions(format!(
                "{partitions} partitions is more than gregor allows per topic (100000)"
            )));
        }
        for (k, v) in &req.configs {
            topic_config::validate(k, v).map_err(CreateTopicError::InvalidConfig)?;
        }
        let _guard = self.topic_admin.lock();
        if self.topics.get(&req.name).is_some() {
            return Err(CreateTopicError::AlreadyExists(req.name));
        }
        let meta =
            TopicMeta { name: Arc::from(req.name.as_str()), id: Uuid::new_v4(), partitions, configs: req.configs };
        if validate_only {
            return Ok(Arc::new(meta));
        }
        let pc = topic_config::partition_config(&self.config.log, &meta.configs);
        let name = meta.name.clone();
        let created = self.open_partitions(&name, 0..partitions, &pc).and_then(|()| self.topics.put(meta));
        match created {
            Ok(meta) => {
                info!(topic = %meta.name, partitions, "created topic");
                Ok(meta)
            }
            Err(e) => {
                // All or nothing: no partition directory and no metadata of the topic remain.
                self.forget_partitions(&name, 0..partitions);
                Err(CreateTopicError::Io(io::Error::new(
                    e.kind(),
                    format!("creating the {partitions} partitions of topic '{name}' failed, nothing was kept: {e}"),
                )))
            }
        }
    }

    /// Opens (creating) the partitions `range` of a topic; stops at the first failure.
    fn open_partitions(&self, topic: &str, range: std::ops::Range<i32>, pc: &PartitionConfig) -> io::Result<()> {
        let now = now_ms();
        for p in range {
            self.logs.open(TopicPartition::new(topic, p), pc.clone(), now)?;
        }
        Ok(())
    }

    /// Closes and removes the partitions `range` of a topic, as far as they exist: the undo of
    /// a creation that failed part of the way.
    fn forget_partitions(&self, topic: &str, range: std::ops::Range<i32>) {
        for p in range {
            if let Err(e) = self.logs.remove(&TopicPartition::new(topic, p)) {
                error!(topic, partition = p, error = %e, "cannot remove a partition of a failed creation");
            }
        }
    }

    pub fn delete_topic(&self, name: &str) -> Result<Arc<TopicMeta>, DeleteTopicError> {
        let _guard = self.topic_admin.lock();
        let meta = self.topics.remove(name)?.ok_or(DeleteTopicError::UnknownTopic)?;
        for p in 0..meta.partitions {
            self.logs.remove(&TopicPartition::new(&meta.name, p))?;
        }
        info!(topic = %meta.name, "deleted topic");
        Ok(meta)
    }

    /// Grows a topic to `count` partitions (Kafka never shrinks one). `assignments` lists the
    /// replicas of each new partition when the client chose them.
    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        assignments: Option<&[Vec<i32>]>,
        validate_only: bool,
    ) -> Result<(), AlterTopicError> {
        let _guard = self.topic_admin.lock();
        let meta = self.topics.get(name).ok_or(AlterTopicError::UnknownTopic)?;
        if count < meta.partitions {
            return Err(AlterTopicError::InvalidPartitions(format!(
                "Topic currently has {} partitions, which is higher than the requested {count}.",
                meta.partitions
            )));
        }
        if count == meta.partitions {
            return Err(AlterTopicError::InvalidPartitions(format!("Topic already has {count} partitions.")));
        }
        if count > 100_000 {
            return Err(AlterTopicError::InvalidPartitions(format!(
                "{count} partitions is more than gregor allows per topic (100000)"
            )));
        }
        if let Some(a) = assignments {
            let new = (count - meta.partitions) as usize;
            if a.len() != new {
                return Err(AlterTopicError::InvalidReplicaAssignment(format!(
                    "Increasing the number of partitions by {new} but {} assignments provided.",
                    a.len()
                )));
            }
            if a.iter().any(|r| r.len() != 1 || r[0] != self.node.node_id) {
                return Err(AlterTopicError::InvalidReplicaAssignment(format!(
                    "Every new partition must be assigned to broker {} alone",
                    self.node.node_id
                )));
            }
        }
        if validate_only {
            return Ok(());
        }
        let pc = topic_config::partition_config(&self.config.log, &meta.configs);
        let added = self
            .open_partitions(name, meta.partitions..count, &pc)
            .and_then(|()| self.topics.put(TopicMeta { partitions: count, ..(*meta).clone() }));
        if let Err(e) = added {
            self.forget_partitions(name, meta.partitions..count);
            return Err(AlterTopicError::Io(io::Error::new(
                e.kind(),
                format!("adding partitions to topic '{name}' failed, it keeps its {} partitions: {e}", meta.partitions),
            )));
        }
        info!(topic = name, partitions = count, "added partitions");
        Ok(())
    }

    /// Replaces a topic's config overrides with `configs` (all validated first) and applies
    /// them to its partitions.
    pub fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), AlterTopicError> {
        for (k, v) in &configs {
            topic_config::validate(k, v).map_err(AlterTopicError::InvalidConfig)?;
        }
        let _guard = self.topic_admin.lock();
        let meta = self.topics.get(name).ok_or(AlterTopicError::UnknownTopic)?;
        if validate_only {
            return Ok(());
        }
        let pc = topic_config::partition_config(&self.config.log, &configs);
        let meta = self.topics.put(TopicMeta { configs, ..(*meta).clone() })?;
        for p in 0..meta.partitions {
            if let Some(log) = self.partition(name, p) {
                log.set_config(pc.clone());
            }
        }
        info!(topic = name, "changed topic configs");
        Ok(())
    }

    /// Creates a topic with the broker defaults when auto-creation is on. Returns the topic if
    /// it exists afterwards.
    pub fn auto_create(&self, name: &str) -> Result<Arc<TopicMeta>, CreateTopicError> {
        let req = NewTopic { name: name.to_string(), partitions: -1, replication_factor: -1, ..Default::default() };
        match self.create_topic(req, false) {
            Err(CreateTopicError::AlreadyExists(_)) => {
                self.topics.get(name).ok_or(CreateTopicError::AlreadyExists(name.into()))
            }
            other => other,
        }
    }

    /// Starts retention, timed-flush and group timer tasks. They run until the returned
    /// [`BackgroundTasks`] is stopped (or the runtime ends).
    pub fn spawn_background(self: &Arc<Self>) -> BackgroundTasks {
        let mut tasks = Vec::new();
        let broker = self.clone();
        tasks.push(tokio::spawn(async move {
            // Session timeouts are at least a few seconds; 100 ms keeps expiry prompt.
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                broker.groups.tick(tokio::time::Instant::now(), now_ms());
            }
        }));
        let broker = self.clone();
        let every = Duration::from_millis(self.config.log.retention_check_interval_ms.max(1));
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let b = broker.clone();
                let _ = tokio::task::spawn_blocking(move || b.run_retention()).await;
            }
        }));
        if let Some(ms) = self.config.log.flush_interval_ms {
            let broker = self.clone();
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(ms));
                loop {
                    tick.tick().await;
                    for p in broker.logs.all() {
                        let end = p.offsets().log_end_offset;
                        if p.durable_offset() < end {
                            if let Err(e) = p.flush_to(end).await {
                                error!(partition = %p.tp, error = %e, "scheduled fsync failed");
                            }
                        }
                    }
                }
            }));
        }
        BackgroundTasks(tasks)
    }

    /// The last step of a clean stop, once no request can reach the logs any more: fsyncs every
    /// partition, then writes the clean-shutdown marker so the next start trusts segment tails.
    /// Blocking (fsync); run it off the async workers. Without the marker the next start
    /// verifies every tail, so a failure here costs start-up time, never data.
    pub fn shutdown(&self) -> io::Result<()> {
        let started = std::time::Instant::now();
        let partitions = self.logs.all().len();
        self.logs.flush_all()?;
        self.logs.write_clean_shutdown_marker()?;
        info!(partitions, elapsed_ms = started.elapsed().as_millis() as u64, "logs flushed; clean shutdown recorded");
        Ok(())
    }

    pub fn run_retention(&self) {
        let now = now_ms();
        for p in self.logs.all() {
            if let Err(e) = p.apply_retention(now) {
                error!(partition = %p.tp, error = %e, "retention failed");
            }
        }
    }
}

/// Handles of the tasks [`Broker::spawn_background`] started.
#[derive(Debug)]
pub struct BackgroundTasks(Vec<tokio::task::JoinHandle<()>>);

impl BackgroundTasks {
    /// Stops the tasks and waits until they are gone. A retention pass already handed to a
    /// blocking thread still runs to its end; it only deletes whole old segments, never the
    /// active one the shutdown flush syncs.
    pub async fn stop(self) {
        for task in &self.0 {
            task.abort();
        }
        for task in self.0 {
            let _ = task.await;
        }
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
    }
}
