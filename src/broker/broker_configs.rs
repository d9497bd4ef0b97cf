//! Broker configs as Kafka's DescribeConfigs, AlterConfigs and IncrementalAlterConfigs show
//! and change them: every setting under its Kafka name with its value, source, type and
//! synonyms, and the dynamic ones (the log defaults every topic inherits) changeable at run time
//! for this broker (resource "1") or as the cluster default (resource ""), as Kafka 4.1 allows.
//!
//! A value's synonyms come in Kafka's order of precedence: dynamic for this broker, dynamic
//! cluster default, static (the config file, environment or command line, when it differs
//! from the built-in default), built-in default; the first one is the value in force and its
//! source is the entry's source. Dynamic values are kept in `dynamic-broker-configs.properties`
//! in the data directory (written atomically) and apply at once to every partition whose topic
//! does not override them, and again at every start. In shared mode the cluster default is the
//! cluster's: a document in PostgreSQL (see `auth::kept`) that every broker applies when it
//! sees it change.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use parking_lot::RwLock;
use tracing::{info, warn};

use crate::auth::kept::{Lines, Records};

use super::Broker;
use crate::config::{Config, LogConfig};
use crate::metadata::topic_config;

const FILE: &str = "dynamic-broker-configs.properties";

/// Shared mode: the name of the cluster default's document.
pub const DEFAULTS_DOCUMENT: &str = "broker_config_defaults";

impl Lines for BTreeMap<String, String> {
    type Line = (String, String);
    fn from_lines(lines: Vec<(String, String)>) -> Result<Self, String> {
        Ok(lines.into_iter().filter(|(k, _)| is_dynamic(k)).collect())
    }
    fn to_lines(&self) -> Vec<(String, String)> {
        self.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// Kafka's ConfigSource values.
pub const SOURCE_TOPIC: i8 = 1;
pub const SOURCE_DYNAMIC_BROKER: i8 = 2;
pub const SOURCE_DYNAMIC_DEFAULT: i8 = 3;
pub const SOURCE_STATIC_BROKER: i8 = 4;
pub const SOURCE_DEFAULT: i8 = 5;

/// Kafka's ConfigType values.
const BOOLEAN: i8 = 1;
const STRING: i8 = 2;
const INT: i8 = 3;
const LONG: i8 = 5;
const DOUBLE: i8 = 6;
const LIST: i8 = 7;

/// One broker setting: its Kafka name, type, the topic config it is the default of (such
/// settings are dynamic, as in Kafka), and a line of help. The other dynamic ones are listed
/// in [`OTHER_DYNAMIC`].
struct Def {
    name: &'static str,
    type_code: i8,
    topic_key: Option<&'static str>,
    doc: &'static str,
}

const fn def(name: &'static str, type_code: i8, topic_key: Option<&'static str>, doc: &'static str) -> Def {
    Def { name, type_code, topic_key, doc }
}

const DEFS: &[Def] = &[
    def("node.id", INT, None, "This broker's id."),
    def("broker.id", INT, None, "This broker's id (the same as node.id)."),
    def("advertised.listeners", LIST, None, "The address clients are told to use for this broker."),
    def("log.dirs", STRING, None, "The directory where the partition logs are kept."),
    def("num.partitions", INT, None, "Partitions of an automatically created topic."),
    def("default.replication.factor", INT, None, "Replication factor of an automatically created topic; one node: 1."),
    def("min.insync.replicas", INT, None, "Replicas that must acknowledge an acks=all write; one node: 1."),
    def("auto.create.topics.enable", BOOLEAN, None, "Whether Metadata creates topics clients ask for."),
    def("message.max.bytes", INT, Some("max.message.bytes"), "The largest record batch a partition accepts."),
    def("log.segment.bytes", INT, Some("segment.bytes"), "Size at which a partition's active segment is rolled."),
    def("log.roll.ms", LONG, Some("segment.ms"), "Age at which a partition's active segment is rolled."),
    def("log.index.interval.bytes", INT, Some("index.interval.bytes"), "Bytes between offset index entries."),
    def("log.retention.ms", LONG, Some("retention.ms"), "How long records are kept; -1 keeps them forever."),
    def("log.retention.minutes", INT, None, "Kafka's coarser form of log.retention.ms; gregor reads log.retention.ms."),
    def("log.retention.hours", INT, None, "Kafka's coarser form of log.retention.ms; gregor reads log.retention.ms."),
    def(
        "log.retention.bytes",
        LONG,
        Some("retention.bytes"),
        "Size past which a partition's oldest segments are deleted; -1: no limit.",
    ),
    def(
        "log.local.retention.bytes",
        LONG,
        Some("local.retention.bytes"),
        "Shared mode: committed bytes a partition keeps in local segments; -2: as retention.bytes, -1: all.",
    ),
    def("log.retention.check.interval.ms", LONG, None, "Pause between retention passes."),
    def("log.cleanup.policy", LIST, None, "Cleanup policy of topics that set none: delete."),
    def("compression.type", STRING, None, "Compression of stored batches: producer (as the producer sent them)."),
    def("log.flush.interval.messages", LONG, Some("flush.messages"), "Records after which a partition is fsynced."),
    def("log.flush.interval.ms", LONG, None, "Interval at which dirty partitions are fsynced."),
    def("log.cleaner.enable", BOOLEAN, None, "Whether topics with cleanup.policy=compact are compacted."),
    def("log.cleaner.backoff.ms", LONG, None, "Pause between compaction passes."),
    def(
        "log.cleaner.min.cleanable.ratio",
        DOUBLE,
        Some("min.cleanable.dirty.ratio"),
        "Share of a log not yet compacted at which it is compacted.",
    ),
    def(
        "log.cleaner.delete.retention.ms",
        LONG,
        Some("delete.retention.ms"),
        "How long tombstones and transaction markers stay after their first compaction.",
    ),
    def(
        "log.cleaner.min.compaction.lag.ms",
        LONG,
        Some("min.compaction.lag.ms"),
        "The least age of a record before compaction may remove it.",
    ),
    def(
        "log.cleaner.max.compaction.lag.ms",
        LONG,
        Some("max.compaction.lag.ms"),
        "The greatest age of a record before its segment is compacted whatever the dirty ratio.",
    ),
    def("log.cleaner.dedupe.buffer.size", LONG, None, "Memory for the key map of one compaction pass."),
    def("log.cleaner.io.buffer.load.factor", DOUBLE, None, "How full the key map may get."),
    def("log.cleaner.io.max.bytes.per.second", DOUBLE, None, "Read and write rate limit of the cleaner."),
    def("socket.request.max.bytes", INT, None, "The largest request the broker reads."),
    def("offsets.topic.num.partitions", INT, None, "Partitions of __consumer_offsets: one on this broker."),
    def("offsets.retention.minutes", INT, None, "How long an empty group's committed offsets are kept."),
    def("offset.metadata.max.bytes", INT, None, "The largest metadata string of a committed offset."),
    def("group.initial.rebalance.delay.ms", INT, None, "Wait for more members before a new group's first rebalance."),
    def("group.min.session.timeout.ms", INT, None, "The shortest session timeout a member may ask for."),
    def("group.max.session.timeout.ms", INT, None, "The longest session timeout a member may ask for."),
    def("transaction.max.timeout.ms", INT, None, "The longest transaction timeout a producer may ask for."),
    def("transactional.id.expiration.ms", INT, None, "Idle time after which a transactional id is forgotten."),
    def(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        INT,
        None,
        "Interval at which timed-out transactions are aborted.",
    ),
    def("producer.id.expiration.ms", INT, None, "Idle time after which a producer's sequence state is forgotten."),
];

/// Dynamic settings that are not a topic config's default, with the least value they take.
const OTHER_DYNAMIC: &[(&str, i64)] = &[("log.cleaner.backoff.ms", 0)];

/// The value of a setting in `c`; None for a setting that has no value (Kafka's null).
fn value_in(name: &str, c: &Config, node_id: i32, advertised: &str) -> Option<String> {
    let opt = |v: Option<u64>| v.map_or(i64::MAX.to_string(), |v| v.to_string());
    Some(match name {
        "node.id" | "broker.id" => node_id.to_string(),
        "advertised.listeners" => advertised.to_string(),
        "log.dirs" => c.log.dir.display().to_string(),
        "num.partitions" => c.topics.num_partitions.to_string(),
        "default.replication.factor" | "min.insync.replicas" | "offsets.topic.num.partitions" => "1".into(),
        "auto.create.topics.enable" => c.topics.auto_create.to_string(),
        "message.max.bytes" => c.log.max_message_bytes.to_string(),
        "log.segment.bytes" => c.log.segment_bytes.to_string(),
        "log.roll.ms" => c.log.segment_ms.to_string(),
        "log.index.interval.bytes" => c.log.index_interval_bytes.to_string(),
        "log.retention.ms" => c.log.retention_ms.to_string(),
        "log.retention.minutes" => return None,
        "log.retention.hours" => "168".into(),
        "log.retention.bytes" => c.log.retention_bytes.to_string(),
        "log.local.retention.bytes" => c.log.local_retention_bytes.to_string(),
        "log.retention.check.interval.ms" => c.log.retention_check_interval_ms.to_string(),
        "log.cleanup.policy" => "delete".into(),
        "compression.type" => "producer".into(),
        "log.flush.interval.messages" => opt(c.log.flush_interval_messages),
        "log.flush.interval.ms" => opt(c.log.flush_interval_ms),
        "log.cleaner.enable" => c.log.cleaner_enable.to_string(),
        "log.cleaner.backoff.ms" => c.log.cleaner_backoff_ms.to_string(),
        "log.cleaner.min.cleanable.ratio" => c.log.cleaner_min_cleanable_ratio.to_string(),
        "log.cleaner.delete.retention.ms" => c.log.cleaner_delete_retention_ms.to_string(),
        "log.cleaner.min.compaction.lag.ms" => c.log.cleaner_min_compaction_lag_ms.to_string(),
        "log.cleaner.max.compaction.lag.ms" => c.log.cleaner_max_compaction_lag_ms.to_string(),
        "log.cleaner.dedupe.buffer.size" => c.log.cleaner_dedupe_buffer_size.to_string(),
        "log.cleaner.io.buffer.load.factor" => c.log.cleaner_io_buffer_load_factor.to_string(),
        "log.cleaner.io.max.bytes.per.second" => format!("{:?}", c.log.cleaner_io_max_bytes_per_second),
        "socket.request.max.bytes" => c.server.max_request_bytes.to_string(),
        "offsets.retention.minutes" => c.group.offsets_retention_minutes.to_string(),
        "offset.metadata.max.bytes" => c.group.offset_metadata_max_bytes.to_string(),
        "group.initial.rebalance.delay.ms" => c.group.initial_rebalance_delay_ms.to_string(),
        "group.min.session.timeout.ms" => c.group.min_session_timeout_ms.to_string(),
        "group.max.session.timeout.ms" => c.group.max_session_timeout_ms.to_string(),
        "transaction.max.timeout.ms" => c.transaction.max_timeout_ms.to_string(),
        "transactional.id.expiration.ms" => c.transaction.id_expiration_ms.to_string(),
        "transaction.abort.timed.out.transaction.cleanup.interval.ms" => {
            c.transaction.abort_check_interval_ms.to_string()
        }
        "producer.id.expiration.ms" => c.transaction.producer_id_expiration_ms.to_string(),
        _ => return None,
    })
}

/// A dynamic setting's value applied to the log defaults.
fn apply_to(log: &mut LogConfig, name: &str, value: &str) {
    if name == "log.cleaner.min.cleanable.ratio" {
        if let Ok(r) = value.trim().parse::<f64>() {
            log.cleaner_min_cleanable_ratio = r;
        }
        return;
    }
    let Ok(n) = value.trim().parse::<i64>() else { return };
    match name {
        "message.max.bytes" => log.max_message_bytes = i32::try_from(n).unwrap_or(i32::MAX),
        "log.segment.bytes" => log.segment_bytes = n.max(0) as u64,
        "log.roll.ms" => log.segment_ms = n,
        "log.index.interval.bytes" => log.index_interval_bytes = n.max(0) as u64,
        "log.retention.ms" => log.retention_ms = n,
        "log.retention.bytes" => log.retention_bytes = n,
        "log.flush.interval.messages" => log.flush_interval_messages = (n < i64::MAX).then_some(n.max(1) as u64),
        "log.cleaner.backoff.ms" => log.cleaner_backoff_ms = n.max(0) as u64,
        "log.cleaner.delete.retention.ms" => log.cleaner_delete_retention_ms = n,
        "log.cleaner.min.compaction.lag.ms" => log.cleaner_min_compaction_lag_ms = n,
        "log.cleaner.max.compaction.lag.ms" => log.cleaner_max_compaction_lag_ms = n,
        _ => {}
    }
}

/// A synonym of a setting: the name it was set under, its value, where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synonym {
    pub name: String,
    pub value: Option<String>,
    pub source: i8,
}

/// One broker setting as DescribeConfigs shows it.
#[derive(Debug, Clone)]
pub struct BrokerConfigEntry {
    pub name: &'static str,
    pub value: Option<String>,
    pub source: i8,
    pub read_only: bool,
    pub type_code: i8,
    pub doc: &'static str,
    /// In precedence order; the first is the value in force.
    pub synonyms: Vec<Synonym>,
}

/// Which dynamic layer a change is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// This broker (resource name = its id).
    Broker,
    /// Every broker of the cluster (resource name "").
    ClusterDefault,
}

/// The dynamic values of both layers.
#[derive(Debug, Default, Clone)]
pub struct DynamicLayers {
    broker: BTreeMap<String, String>,
    cluster: BTreeMap<String, String>,
}

impl DynamicLayers {
    pub fn get(&self, layer: Layer) -> &BTreeMap<String, String> {
        match layer {
            Layer::Broker => &self.broker,
            Layer::ClusterDefault => &self.cluster,
        }
    }

    /// The log defaults with the dynamic values in force.
    pub fn log_defaults(&self, base: &LogConfig) -> LogConfig {
        let mut log = base.clone();
        for (k, v) in self.cluster.iter().chain(&self.broker) {
            apply_to(&mut log, k, v);
        }
        log
    }

    /// Reads the layers kept in `dir`; a missing file is no dynamic config.
    pub fn load(dir: &Path) -> io::Result<Self> {
        let text = match fs::read_to_string(dir.join(FILE)) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e),
        };
        let mut layers = Self::default();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let parsed = line.split_once('=').and_then(|(k, v)| {
                let (layer, key) = k.split_once(':')?;
                let map = match layer {
                    "broker" => &mut layers.broker,
                    "default" => &mut layers.cluster,
                    _ => return None,
                };
                is_dynamic(key).then(|| map.insert(key.to_string(), v.to_string()))
            });
            if parsed.is_none() {
                warn!(line, file = FILE, "ignoring a line of the dynamic broker configs that gregor cannot read");
            }
        }
        Ok(layers)
    }

    /// The layers with `cluster` as the cluster default (shared mode: the cluster's).
    pub fn with_cluster_default(mut self, cluster: BTreeMap<String, String>) -> Self {
        self.cluster = cluster;
        self
    }

    fn render(&self) -> String {
        let mut out = String::from("# Broker configs changed at run time (AlterConfigs); gregor rewrites this file.\n");
        for (layer, map) in [("default", &self.cluster), ("broker", &self.broker)] {
            for (k, v) in map {
                out.push_str(&format!("{layer}:{k}={v}\n"));
            }
        }
        out
    }
}

/// Whether gregor changes this setting at run time.
pub fn is_dynamic(name: &str) -> bool {
    DEFS.iter().any(|d| d.name == name && d.topic_key.is_some()) || OTHER_DYNAMIC.iter().any(|(n, _)| *n == name)
}

/// The broker setting whose value is the default of a topic config, if any.
pub fn broker_key_of(topic_key: &str) -> Option<&'static str> {
    DEFS.iter().find(|d| d.topic_key == Some(topic_key)).map(|d| d.name)
}

/// Why a change to broker configs was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerConfigError {
    /// An unknown key, or a value that does not fit (INVALID_CONFIG).
    InvalidConfig(String),
    /// A setting gregor cannot change at run time (INVALID_REQUEST, as Kafka).
    NotDynamic(String),
}

impl std::fmt::Display for BrokerConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidConfig(m) | Self::NotDynamic(m) => f.write_str(m),
        }
    }
}

/// Checks a layer's whole new content.
fn validate(next: &BTreeMap<String, String>) -> Result<(), BrokerConfigError> {
    for (k, v) in next {
        let Some(d) = DEFS.iter().find(|d| d.name == k) else {
            return Err(BrokerConfigError::InvalidConfig(format!("Unknown broker config {k}")));
        };
        let invalid =
            |why: String| BrokerConfigError::InvalidConfig(format!("Invalid value {v} for configuration {k}: {why}"));
        if let Some(topic_key) = d.topic_key {
            // The same bounds as the topic config it is the default of.
            topic_config::validate(topic_key, v).map_err(invalid)?;
        } else if let Some((_, min)) = OTHER_DYNAMIC.iter().find(|(n, _)| n == k) {
            match v.trim().parse::<i64>() {
                Ok(n) if n >= *min => {}
                _ => return Err(invalid(format!("it must be an integer, at least {min}"))),
            }
        } else {
            return Err(BrokerConfigError::NotDynamic(format!(
                "Cannot update these configs dynamically: {k} (set it in gregor's config file or environment)"
            )));
        }
    }
    Ok(())
}

/// The dynamic layers, persisted in the data directory; in shared mode the cluster default in
/// the cluster's document.
#[derive(Debug)]
pub struct DynamicConfigs {
    dir: PathBuf,
    layers: RwLock<DynamicLayers>,
    cluster: Option<Records<BTreeMap<String, String>>>,
}

impl DynamicConfigs {
    /// `cluster`: shared mode's document of the cluster default, whose records `layers` holds.
    pub fn new(dir: PathBuf, layers: DynamicLayers, cluster: Option<Records<BTreeMap<String, String>>>) -> Self {
        Self { dir, layers: RwLock::new(layers), cluster }
    }

    /// Shared mode: the cluster default's document.
    pub fn cluster_records(&self) -> Option<&Records<BTreeMap<String, String>>> {
        self.cluster.as_ref()
    }

    pub fn snapshot(&self) -> DynamicLayers {
        self.layers.read().clone()
    }
}

impl Broker {
    /// The log defaults in force: the static configuration with the dynamic values over it.
    pub fn log_defaults(&self) -> LogConfig {
        self.dynamic.layers.read().log_defaults(&self.config.log)
    }

    /// The broker's settings, for this broker (`Layer::Broker`: everything, with the values in
    /// force) or for the cluster default (only what is set there, as Kafka lists it).
    pub fn broker_config_entries(&self, layer: Layer) -> Vec<BrokerConfigEntry> {
        let layers = self.dynamic.layers.read();
        let builtin = Config::default();
        let advertised = format!("PLAINTEXT://{}:{}", self.node.host, self.node.port);
        let node_id = self.node.node_id;
        DEFS.iter()
            .filter(|d| layer == Layer::Broker || layers.cluster.contains_key(d.name))
            .map(|d| {
                let mut synonyms = Vec::new();
                let mut push = |value: Option<String>, source: i8| {
                    synonyms.push(Synonym { name: d.name.to_string(), value, source });
                };
                if layer == Layer::Broker {
                    if let Some(v) = layers.broker.get(d.name) {
                        push(Some(v.clone()), SOURCE_DYNAMIC_BROKER);
                    }
                }
                if let Some(v) = layers.cluster.get(d.name) {
                    push(Some(v.clone()), SOURCE_DYNAMIC_DEFAULT);
                }
                if layer == Layer::Broker {
                    let configured = value_in(d.name, &self.config, node_id, &advertised);
                    let default = value_in(d.name, &builtin, node_id, &advertised);
                    if configured != default {
                        push(configured, SOURCE_STATIC_BROKER);
                    }
                    push(default, SOURCE_DEFAULT);
                }
                let first = synonyms.first().cloned();
                BrokerConfigEntry {
                    name: d.name,
                    value: first.as_ref().and_then(|s| s.value.clone()),
                    source: first.map_or(SOURCE_DEFAULT, |s| s.source),
                    read_only: !is_dynamic(d.name),
                    type_code: d.type_code,
                    doc: d.doc,
                    synonyms,
                }
            })
            .collect()
    }

    /// The broker-level synonyms of a topic config's default, in precedence order (empty for
    /// a topic config no broker setting feeds).
    pub fn topic_default_synonyms(&self, topic_key: &str) -> Vec<Synonym> {
        let Some(name) = broker_key_of(topic_key) else { return Vec::new() };
        self.broker_config_entries(Layer::Broker)
            .into_iter()
            .find(|e| e.name == name)
            .map(|e| e.synonyms)
            .unwrap_or_default()
    }

    /// Replaces one dynamic layer with what `change` makes of it, checks it, persists it and
    /// applies the new log defaults to every partition whose topic does not override them.
    pub fn alter_broker_configs(
        &self,
        layer: Layer,
        validate_only: bool,
        change: impl Fn(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, BrokerConfigError>,
    ) -> Result<(), BrokerConfigError> {
        // One change at a time, and none while topics are created or changed.
        let _guard = self.topic_admin.lock();
        if let (Layer::ClusterDefault, Some(records)) = (layer, &self.dynamic.cluster) {
            // Made on the cluster's document as kept (again if another broker changed it first).
            let (checked, kept) = records.change(|cluster| {
                let next = change(cluster)?;
                validate(&next)?;
                if !validate_only {
                    *cluster = next;
                }
                Ok(())
            });
            checked?;
            kept.map_err(|e| BrokerConfigError::InvalidConfig(format!("cannot save the broker configs: {e}")))?;
            if !validate_only {
                let next = self.dynamic.layers.read().clone().with_cluster_default(records.get().clone());
                self.apply_dynamic(next);
                info!(?layer, "changed dynamic broker configs");
            }
            return Ok(());
        }
        let mut next = self.dynamic.layers.read().clone();
        let target = match layer {
            Layer::Broker => &mut next.broker,
            Layer::ClusterDefault => &mut next.cluster,
        };
        *target = change(target)?;
        validate(target)?;
        if validate_only {
            return Ok(());
        }
        let mut kept = next.clone();
        if self.dynamic.cluster.is_some() {
            // Shared mode: the file keeps this broker's layer only.
            kept.cluster.clear();
        }
        let path = self.dynamic.dir.join(FILE);
        crate::metadata::write_atomically(&self.dynamic.dir, &path, kept.render().as_bytes())
            .map_err(|e| BrokerConfigError::InvalidConfig(format!("cannot save the broker configs: {e}")))?;
        self.apply_dynamic(next);
        info!(?layer, "changed dynamic broker configs");
        Ok(())
    }

    /// Shared mode: takes up the cluster default when its document is no longer in `version`
    /// (another broker changed it).
    pub fn take_up_cluster_default(&self, version: i64) -> io::Result<()> {
        let Some(records) = self.dynamic.cluster.as_ref().filter(|r| r.version() != version) else { return Ok(()) };
        let _guard = self.topic_admin.lock();
        records.follow(version)?;
        let next = self.dynamic.layers.read().clone().with_cluster_default(records.get().clone());
        let moved = next.cluster != self.dynamic.layers.read().cluster;
        if moved {
            self.apply_dynamic(next);
            info!("took up the cluster default broker configs another broker changed");
        }
        Ok(())
    }

    /// Puts `next` in force: the new log defaults reach every partition whose topic does not
    /// override them.
    fn apply_dynamic(&self, next: DynamicLayers) {
        let log = next.log_defaults(&self.config.log);
        *self.dynamic.layers.write() = next;
        for t in self.topics.list() {
            let pc = topic_config::partition_config(&log, &t.configs);
            for p in 0..t.partitions {
                if let Some(partition) = self.partition(&t.name, p) {
                    partition.set_config(pc.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_round_trip_and_apply_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut layers = DynamicLayers::default();
        layers.cluster.insert("log.retention.ms".into(), "1000".into());
        layers.cluster.insert("log.segment.bytes".into(), "2000000".into());
        layers.broker.insert("log.retention.ms".into(), "5000".into());
        fs::write(dir.path().join(FILE), layers.render()).unwrap();
        let back = DynamicLayers::load(dir.path()).unwrap();
        let log = back.log_defaults(&LogConfig::default());
        assert_eq!(log.retention_ms, 5000, "this broker's value wins over the cluster default");
        assert_eq!(log.segment_bytes, 2_000_000);
    }

    #[test]
    fn only_dynamic_keys_with_valid_values_are_accepted() {
        let ok = BTreeMap::from([("log.retention.ms".to_string(), "-1".to_string())]);
        assert!(validate(&ok).is_ok());
        let bad = BTreeMap::from([("log.retention.ms".to_string(), "soon".to_string())]);
        assert!(matches!(validate(&bad), Err(BrokerConfigError::InvalidConfig(_))));
        let fixed = BTreeMap::from([("node.id".to_string(), "7".to_string())]);
        assert!(matches!(validate(&fixed), Err(BrokerConfigError::NotDynamic(_))));
        let unknown = BTreeMap::from([("no.such.thing".to_string(), "1".to_string())]);
        assert!(matches!(validate(&unknown), Err(BrokerConfigError::InvalidConfig(_))));
    }

    fn open(dir: &Path) -> Broker {
        let overrides = crate::config::Overrides { data_dir: Some(dir.to_owned()), ..Default::default() };
        let config = Config::load(None, &Default::default(), &overrides).unwrap();
        Broker::open(std::sync::Arc::new(config), "127.0.0.1".into(), 9092).unwrap()
    }

    #[test]
    fn a_dynamic_default_reaches_partitions_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let broker = open(dir.path());
        broker.create_topic(crate::broker::NewTopic::with_partitions("plain", 2), false).unwrap();
        let mut own = crate::broker::NewTopic::with_partitions("own", 1);
        own.configs.insert("retention.ms".into(), "1234".into());
        broker.create_topic(own, false).unwrap();
        let set = |m: &BTreeMap<String, String>| {
            let mut m = m.clone();
            m.insert("log.retention.ms".into(), "60000".into());
            Ok(m)
        };
        broker.alter_broker_configs(Layer::ClusterDefault, false, set).unwrap();
        assert_eq!(broker.partition("plain", 1).unwrap().config().retention_ms, 60_000);
        assert_eq!(broker.partition("own", 0).unwrap().config().retention_ms, 1234, "a topic override still wins");
        let entry = broker.topic_default_synonyms("retention.ms");
        assert_eq!(entry[0].source, SOURCE_DYNAMIC_DEFAULT);
        assert_eq!(entry.last().unwrap().source, SOURCE_DEFAULT);

        // A refused change changes nothing.
        let refused = broker.alter_broker_configs(Layer::Broker, false, |_| {
            Ok(BTreeMap::from([("node.id".to_string(), "9".to_string())]))
        });
        assert!(matches!(refused, Err(BrokerConfigError::NotDynamic(_))));
        drop(broker);

        let again = open(dir.path());
        assert_eq!(again.partition("plain", 0).unwrap().config().retention_ms, 60_000, "kept across a restart");
        let cluster = again.broker_config_entries(Layer::ClusterDefault);
        assert_eq!(cluster.len(), 1, "the cluster default lists only what is set there");
        assert_eq!((cluster[0].name, cluster[0].value.as_deref()), ("log.retention.ms", Some("60000")));
    }
}
