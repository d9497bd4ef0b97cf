//! The broker's shared state: configuration, topics, partition logs, and the operations that
//! span them (creating and deleting topics, auto-creation, background retention and flushing).
//! Handlers reach everything through an `Arc<Broker>`; there are no global singletons.
//!
//! Split along its jobs: this file opens the broker; `topic_admin` creates, grows, configures
//! and deletes topics; `background` runs the timers (retention, timed flushes, group expiry)
//! and the final flush of a clean stop.

mod background;
mod topic_admin;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tracing::info;

use crate::config::Config;
use crate::config::GroupConfig;
use crate::group::{CoordinatorConfig, GroupCoordinator, RebalanceConfig};
use crate::log::files::FileCache;
use crate::log::{LogManager, PartitionLog, TopicPartition};
use crate::metadata::{self, topic_config, NodeInfo, TopicStore};
use crate::txn::ProducerIdManager;

pub use crate::clock::now_ms;
pub use background::BackgroundTasks;
pub use topic_admin::{AlterTopicError, CreateTopicError, DeleteTopicError, NewTopic};

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
