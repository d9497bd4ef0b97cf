//! Group configs of share groups (Kafka's `GroupConfig`, resource type GROUP in
//! DescribeConfigs and IncrementalAlterConfigs): the `share.*` keys, checked, with the broker's
//! `group.share.*` settings as their defaults, and kept in `share-group-configs.json` in the
//! data directory.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use super::{GroupSettings, OffsetReset, ShareConfig};

pub const AUTO_OFFSET_RESET: &str = "share.auto.offset.reset";
pub const RECORD_LOCK_DURATION_MS: &str = "share.record.lock.duration.ms";
pub const SESSION_TIMEOUT_MS: &str = "share.session.timeout.ms";
pub const HEARTBEAT_INTERVAL_MS: &str = "share.heartbeat.interval.ms";
pub const DELIVERY_COUNT_LIMIT: &str = "share.delivery.count.limit";
pub const ISOLATION_LEVEL: &str = "share.isolation.level";

/// Kafka's config types (DescribeConfigs `config_type`).
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;

/// One described group config: name, value, whether the group set it, type, documentation.
pub struct Described {
    pub name: &'static str,
    pub value: String,
    pub set: bool,
    pub type_code: i8,
    pub doc: &'static str,
}

const FILE: &str = "share-group-configs.json";

fn int(map: &BTreeMap<String, String>, key: &str, range: std::ops::RangeInclusive<u64>) -> Result<Option<u64>, String> {
    let Some(v) = map.get(key) else { return Ok(None) };
    match v.trim().parse::<u64>() {
        Ok(n) if range.contains(&n) => Ok(Some(n)),
        _ => Err(format!(
            "Invalid value {v} for configuration {key}: must be a number from {} to {}.",
            range.start(),
            range.end()
        )),
    }
}

impl GroupSettings {
    /// Reads and checks a group's configs as IncrementalAlterConfigs leaves them.
    pub fn from_map(map: &BTreeMap<String, String>) -> Result<Self, String> {
        for k in map.keys() {
            if ![
                AUTO_OFFSET_RESET,
                RECORD_LOCK_DURATION_MS,
                SESSION_TIMEOUT_MS,
                HEARTBEAT_INTERVAL_MS,
                DELIVERY_COUNT_LIMIT,
                ISOLATION_LEVEL,
            ]
            .contains(&k.as_str())
            {
                return Err(format!(
                    "Unknown group config {k}: gregor serves the share group configs ({AUTO_OFFSET_RESET}, \
                     {RECORD_LOCK_DURATION_MS}, {SESSION_TIMEOUT_MS}, {HEARTBEAT_INTERVAL_MS}, {DELIVERY_COUNT_LIMIT}, \
                     {ISOLATION_LEVEL})."
                ));
            }
        }
        let auto_offset_reset = match map.get(AUTO_OFFSET_RESET).map(|v| v.trim().to_ascii_lowercase()) {
            None => None,
            Some(v) if v == "latest" => Some(OffsetReset::Latest),
            Some(v) if v == "earliest" => Some(OffsetReset::Earliest),
            Some(v) => {
                return Err(format!(
                    "Invalid value {v} for configuration {AUTO_OFFSET_RESET}: gregor takes latest or earliest \
                     (by_duration is not served yet)."
                ))
            }
        };
        if let Some(v) = map.get(ISOLATION_LEVEL) {
            if v.trim() != "read_uncommitted" {
                return Err(format!(
                    "Invalid value {v} for configuration {ISOLATION_LEVEL}: gregor's share groups read uncommitted \
                     only (read_committed is not served yet)."
                ));
            }
        }
        let session = int(map, SESSION_TIMEOUT_MS, 1_000..=1_800_000)?;
        let heartbeat = int(map, HEARTBEAT_INTERVAL_MS, 500..=900_000)?;
        if let (Some(s), Some(h)) = (session, heartbeat) {
            if h >= s {
                return Err(format!("{HEARTBEAT_INTERVAL_MS} must be smaller than {SESSION_TIMEOUT_MS}."));
            }
        }
        Ok(Self {
            auto_offset_reset,
            record_lock_duration_ms: int(map, RECORD_LOCK_DURATION_MS, 1_000..=3_600_000)?,
            session_timeout_ms: session,
            heartbeat_interval_ms: heartbeat,
            delivery_count_limit: int(map, DELIVERY_COUNT_LIMIT, 2..=10)?.map(|n| n as i16),
        })
    }

    /// The configs the group set, by Kafka name.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        if let Some(r) = self.auto_offset_reset {
            m.insert(AUTO_OFFSET_RESET.into(), if r == OffsetReset::Earliest { "earliest" } else { "latest" }.into());
        }
        let mut put = |k: &str, v: Option<u64>| {
            if let Some(v) = v {
                m.insert(k.to_string(), v.to_string());
            }
        };
        put(RECORD_LOCK_DURATION_MS, self.record_lock_duration_ms);
        put(SESSION_TIMEOUT_MS, self.session_timeout_ms);
        put(HEARTBEAT_INTERVAL_MS, self.heartbeat_interval_ms);
        put(DELIVERY_COUNT_LIMIT, self.delivery_count_limit.map(|n| n as u64));
        m
    }

    /// Every group config with its value: the group's own, else the broker's default.
    pub fn describe(&self, cfg: &ShareConfig) -> Vec<Described> {
        let set = self.to_map();
        let d = |name: &'static str, default: String, type_code: i8, doc: &'static str| Described {
            name,
            value: set.get(name).cloned().unwrap_or(default),
            set: set.contains_key(name),
            type_code,
            doc,
        };
        vec![
            d(AUTO_OFFSET_RESET, "latest".into(), TYPE_STRING, "Where a share-partition starts: latest or earliest."),
            d(
                DELIVERY_COUNT_LIMIT,
                cfg.delivery_count_limit.to_string(),
                TYPE_INT,
                "Deliveries of a record before it is archived.",
            ),
            d(
                HEARTBEAT_INTERVAL_MS,
                cfg.heartbeat_interval.as_millis().to_string(),
                TYPE_INT,
                "The heartbeat interval given to share group members.",
            ),
            d(ISOLATION_LEVEL, "read_uncommitted".into(), TYPE_STRING, "Which records share consumers read."),
            d(
                RECORD_LOCK_DURATION_MS,
                cfg.record_lock_duration.as_millis().to_string(),
                TYPE_INT,
                "How long a member holds an acquired record.",
            ),
            d(
                SESSION_TIMEOUT_MS,
                cfg.session_timeout.as_millis().to_string(),
                TYPE_INT,
                "How long a member may go without a heartbeat.",
            ),
        ]
    }
}

fn path(root: &Path) -> PathBuf {
    root.join(FILE)
}

/// Loads every group's configs; a missing file is no configs.
pub fn load(root: &Path) -> io::Result<BTreeMap<String, GroupSettings>> {
    let bytes = match std::fs::read(path(root)) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e),
    };
    let raw: BTreeMap<String, BTreeMap<String, String>> = serde_json::from_slice(&bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{FILE}: {e}")))?;
    raw.into_iter()
        .map(|(g, m)| {
            GroupSettings::from_map(&m)
                .map(|s| (g.clone(), s))
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{FILE}, group {g}: {e}")))
        })
        .collect()
}

/// Writes every group's configs, atomically.
pub fn save(root: &Path, all: &BTreeMap<String, GroupSettings>) -> io::Result<()> {
    let raw: BTreeMap<&String, BTreeMap<String, String>> = all.iter().map(|(g, s)| (g, s.to_map())).collect();
    let bytes = serde_json::to_vec_pretty(&raw).map_err(io::Error::other)?;
    crate::metadata::write_atomically(root, &path(root), &bytes)
}
