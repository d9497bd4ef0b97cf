//! Topic administration: create (all or nothing), grow, reconfigure, delete, auto-create.
//! Serialised by the broker's `topic_admin` lock so that every check-then-act is atomic.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info};
use uuid::Uuid;

use super::{now_ms, Broker};
use crate::cluster::shared::SharedError;
use crate::cluster::store::StoreError;
use crate::log::{PartitionConfig, TopicPartition};
use crate::metadata::{self, topic_config, TopicMeta};

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
    /// The shared-mode coordination store did not take the topic (a client may retry).
    #[error("the cluster's coordination store cannot be reached: {0}")]
    Unavailable(String),
    #[error("storage error: {0}")]
    Io(#[from] io::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum DeleteTopicError {
    #[error("This server does not host this topic-partition.")]
    UnknownTopic,
    /// The shared-mode coordination store did not take the deletion (a client may retry).
    #[error("the cluster's coordination store cannot be reached: {0}")]
    Unavailable(String),
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
    /// The shared-mode coordination store did not take the change (a client may retry).
    #[error("the cluster's coordination store cannot be reached: {0}")]
    Unavailable(String),
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
    /// Validates a new topic and, unless `validate_only`, creates it.
    pub fn create_topic(&self, req: NewTopic, validate_only: bool) -> Result<Arc<TopicMeta>, CreateTopicError> {
        metadata::validate_topic_name(&req.name).map_err(CreateTopicError::InvalidName)?;
        if super::is_internal(&req.name) {
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
        if self.cluster.shared().is_some() {
            topic_config::validate_local_retention(&self.log_defaults(), &req.configs)
                .map_err(CreateTopicError::InvalidConfig)?;
        }
        let guard = self.topic_admin.lock();
        if self.topics.get(&req.name).is_some() {
            return Err(CreateTopicError::AlreadyExists(req.name));
        }
        let meta =
            TopicMeta { name: Arc::from(req.name.as_str()), id: Uuid::new_v4(), partitions, configs: req.configs };
        if validate_only {
            return Ok(Arc::new(meta));
        }
        if let Some(shared) = self.cluster.shared() {
            // The store decides which broker's creation of a name wins.
            let published = tokio::runtime::Handle::current().block_on(shared.create_topic(
                &meta.name,
                meta.id,
                partitions,
                &meta.configs,
            ));
            match published {
                Ok(()) => {}
                Err(SharedError::Store(StoreError::TopicExists(_))) => {
                    // Another broker created it: take it from the store now, as the next tick would.
                    drop(guard);
                    if tokio::runtime::Handle::current().block_on(shared.reload()).is_ok() {
                        self.adopt_topics();
                    }
                    return Err(CreateTopicError::AlreadyExists(req.name));
                }
                Err(e) => return Err(CreateTopicError::Unavailable(e.to_string())),
            }
        }
        let pc = topic_config::partition_config(&self.log_defaults(), &meta.configs);
        let name = meta.name.clone();
        let created = self.open_partitions(&name, 0..partitions, &pc).and_then(|()| self.topics.put(meta));
        match created {
            Ok(meta) => {
                info!(topic = %meta.name, partitions, "created topic");
                // The partitions this broker leads are served once their (empty) logs are
                // checked against the store: now rather than at the next tick.
                if let Some(shipper) = &self.shipper {
                    shipper.rebuild_led(|tp| self.logs.get(tp));
                }
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

    /// Deletes a topic and its partitions. In shared mode the store deletes it first (with its
    /// batch index; its objects become garbage once no other topic's batches are in them), and
    /// the other brokers delete their copies when they next load the view.
    pub fn delete_topic(&self, name: &str) -> Result<Arc<TopicMeta>, DeleteTopicError> {
        let _guard = self.topic_admin.lock();
        if let Some(shared) = self.cluster.shared() {
            let id = self.topics.get(name).ok_or(DeleteTopicError::UnknownTopic)?.id;
            let deleted = tokio::runtime::Handle::current().block_on(shared.delete_topic(id));
            match deleted {
                Ok(true) => {}
                // Another broker deleted it first: this copy goes too; the client is told.
                Ok(false) => {
                    self.delete_local_topic(name)?;
                    return Err(DeleteTopicError::UnknownTopic);
                }
                Err(e) => return Err(DeleteTopicError::Unavailable(e.to_string())),
            }
        }
        self.delete_local_topic(name)?.ok_or(DeleteTopicError::UnknownTopic)
    }

    /// Removes a topic's metadata and partitions here (the caller holds `topic_admin`).
    fn delete_local_topic(&self, name: &str) -> io::Result<Option<Arc<TopicMeta>>> {
        let Some(meta) = self.topics.remove(name)? else { return Ok(None) };
        for p in 0..meta.partitions {
            self.logs.remove(&TopicPartition::new(&meta.name, p))?;
        }
        if let Some(shipper) = &self.shipper {
            shipper.forget_topic(&meta.name);
        }
        info!(topic = %meta.name, "deleted topic");
        Ok(Some(meta))
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
        if let (Some(_), Some(_)) = (assignments, self.cluster.shared()) {
            return Err(AlterTopicError::InvalidReplicaAssignment(
                "in shared mode the cluster places partitions itself: leave the assignment out".into(),
            ));
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
        if let Some(shared) = self.cluster.shared() {
            let added = tokio::runtime::Handle::current().block_on(shared.add_partitions(meta.id, count));
            match added {
                Ok(true) => {}
                Ok(false) => {
                    return Err(AlterTopicError::InvalidPartitions(
                        "the topic changed in the cluster meanwhile (deleted, or grown by another broker)".into(),
                    ))
                }
                Err(e) => return Err(AlterTopicError::Unavailable(e.to_string())),
            }
        }
        let pc = topic_config::partition_config(&self.log_defaults(), &meta.configs);
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
        if let Some(shipper) = &self.shipper {
            shipper.rebuild_led(|tp| self.logs.get(tp));
        }
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
        if self.cluster.shared().is_some() {
            topic_config::validate_local_retention(&self.log_defaults(), &configs)
                .map_err(AlterTopicError::InvalidConfig)?;
        }
        let _guard = self.topic_admin.lock();
        let meta = self.topics.get(name).ok_or(AlterTopicError::UnknownTopic)?;
        if validate_only {
            return Ok(());
        }
        if let Some(shared) = self.cluster.shared() {
            match tokio::runtime::Handle::current().block_on(shared.set_topic_configs(meta.id, &configs)) {
                Ok(true) => {}
                Ok(false) => return Err(AlterTopicError::UnknownTopic),
                Err(e) => return Err(AlterTopicError::Unavailable(e.to_string())),
            }
        }
        self.apply_topic_configs(&meta, configs)
    }

    /// Keeps a topic's new config overrides here and applies them to its partitions (the caller
    /// holds `topic_admin`).
    fn apply_topic_configs(&self, meta: &TopicMeta, configs: BTreeMap<String, String>) -> Result<(), AlterTopicError> {
        let name = &*meta.name;
        let pc = topic_config::partition_config(&self.log_defaults(), &configs);
        let meta = self.topics.put(TopicMeta { configs, ..(*meta).clone() })?;
        for p in 0..meta.partitions {
            if let Some(log) = self.partition(name, p) {
                log.set_config(pc.clone());
            }
        }
        info!(topic = name, "changed topic configs");
        Ok(())
    }

    /// Shared mode: creates here the topics other brokers created in the coordination store,
    /// with their ids, partition counts and configs, and takes the partitions they added and
    /// the configs they set on the others.
    pub fn adopt_topics(&self) {
        let Some(shared) = self.cluster.shared() else { return };
        let names: Vec<String> =
            shared.view().topics.iter().filter(|t| !super::is_internal(&t.name)).map(|t| t.name.clone()).collect();
        for name in names {
            let _guard = self.topic_admin.lock();
            // The view as it is now, under the lock: a change this broker just made is in it.
            let view = shared.view();
            let Some(t) = view.topics.iter().find(|t| t.name == name) else { continue };
            match self.topics.get(&t.name) {
                Some(local) if local.id != t.id => {
                    tracing::debug!(topic = %t.name, "a local topic has the name of another one in the cluster");
                    continue;
                }
                Some(local) => {
                    self.follow_topic(&local, t.partitions, &t.configs);
                    continue;
                }
                None => {}
            }
            let meta = TopicMeta {
                name: Arc::from(t.name.as_str()),
                id: t.id,
                partitions: t.partitions,
                configs: t.configs.clone(),
            };
            let pc = topic_config::partition_config(&self.log_defaults(), &meta.configs);
            match self.open_partitions(&t.name, 0..t.partitions, &pc).and_then(|()| self.topics.put(meta)) {
                Ok(_) => info!(topic = %t.name, partitions = t.partitions, "took a topic created in the cluster"),
                Err(e) => {
                    self.forget_partitions(&t.name, 0..t.partitions);
                    error!(topic = %t.name, error = %e, "cannot create a topic of the cluster here; trying again later");
                }
            }
        }
    }

    /// Shared mode: a topic known here that another broker grew or reconfigured in the store
    /// (the caller holds `topic_admin`). Topics never shrink.
    fn follow_topic(&self, local: &TopicMeta, partitions: i32, configs: &BTreeMap<String, String>) {
        if partitions > local.partitions {
            let pc = topic_config::partition_config(&self.log_defaults(), &local.configs);
            let grown = self
                .open_partitions(&local.name, local.partitions..partitions, &pc)
                .and_then(|()| self.topics.put(TopicMeta { partitions, ..local.clone() }));
            match grown {
                Ok(_) => info!(topic = %local.name, partitions, "took partitions added in the cluster"),
                Err(e) => {
                    self.forget_partitions(&local.name, local.partitions..partitions);
                    error!(topic = %local.name, error = %e, "cannot add a topic's new partitions here; trying again later");
                    return;
                }
            }
        }
        if *configs != local.configs {
            let Some(now) = self.topics.get(&local.name) else { return };
            match self.apply_topic_configs(&now, configs.clone()) {
                Ok(()) => info!(topic = %local.name, "took the topic's configs set in the cluster"),
                Err(e) => {
                    error!(topic = %local.name, error = %e, "cannot apply the topic's configs here; trying again later")
                }
            }
        }
    }

    /// Shared mode: deletes here the topics the store no longer has (deleted through another
    /// broker, or while this one was away). Asked of the store itself, not of a view that may
    /// predate a topic this broker just created.
    async fn drop_deleted_topics(self: &Arc<Self>) {
        let Some(shared) = self.cluster.shared() else { return };
        let view = shared.view();
        let unseen: Vec<Uuid> = self
            .topics
            .list()
            .iter()
            .filter(|m| !super::is_internal(&m.name) && !view.topics.iter().any(|t| t.id == m.id))
            .map(|m| m.id)
            .collect();
        if unseen.is_empty() {
            return;
        }
        let gone = match shared.topics_gone(&unseen).await {
            Ok(gone) => gone,
            Err(e) => return tracing::debug!(error = %e, "cannot ask the coordination store for deleted topics"),
        };
        let broker = self.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for id in gone {
                let _guard = broker.topic_admin.lock();
                let Some(meta) = broker.topics.get_by_id(&id) else { continue };
                match broker.delete_local_topic(&meta.name) {
                    Ok(_) => info!(topic = %meta.name, "deleted a topic deleted in the cluster"),
                    Err(e) => error!(topic = %meta.name, error = %e, "cannot delete a topic deleted in the cluster; trying again later"),
                }
            }
        })
        .await;
    }

    /// Shared mode, after a load of the cluster's view: creates here the topics other brokers
    /// created (and deletes those they deleted), and starts rebuilding the partitions this
    /// broker now leads (it serves them, and Metadata names it their leader, once rebuilt).
    pub async fn take_up_view(self: &Arc<Self>) {
        let broker = self.clone();
        let _ = tokio::task::spawn_blocking(move || broker.adopt_topics()).await;
        self.drop_deleted_topics().await;
        if let Some(shipper) = &self.shipper {
            shipper.rebuild_led(|tp| self.logs.get(tp));
        }
    }

    /// Shared mode: a request named a topic this broker does not know. Another broker may have
    /// created it since this one's last tick, so the answer waits for a load of the view that
    /// began after the request arrived (loads at most every 250 ms, so that asking for missing
    /// topics cannot turn into a stream of queries): a client asking right after a CreateTopics
    /// answered elsewhere finds the topic, as on a Kafka cluster, instead of being told it does
    /// not exist (consumers then wait for their next metadata refresh, minutes by default).
    pub async fn look_up_topics(self: &Arc<Self>) {
        let Some(shared) = self.cluster.shared() else { return };
        match shared.reload_after(std::time::Instant::now(), Duration::from_millis(250)).await {
            Ok(()) => self.take_up_view().await,
            Err(e) => tracing::debug!(error = %e, "cannot look for new topics in the coordination store"),
        }
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
}

impl NewTopic {
    /// A topic of `partitions` partitions with the broker's defaults otherwise.
    pub fn with_partitions(name: &str, partitions: i32) -> Self {
        Self { name: name.to_string(), partitions, replication_factor: -1, ..Default::default() }
    }
}
