//! Topic-level configuration: which keys exist, how each is validated, and how they combine with
//! the broker defaults into a [`PartitionConfig`]. Key names and defaults follow Apache Kafka 4.1.

use std::collections::BTreeMap;

use crate::config::LogConfig;
use crate::log::PartitionConfig;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Long {
        min: i64,
    },
    Int {
        min: i64,
    },
    /// An int within one of the given inclusive ranges.
    IntIn(&'static [(i64, i64)]),
    Bool,
    Ratio,
    OneOf(&'static [&'static str]),
    /// Comma-separated subset of the given words.
    ListOf(&'static [&'static str]),
    Text,
}

/// Every topic config Kafka 4.1 accepts (plus `message.format.version`, see below).
const TOPIC_CONFIGS: &[(&str, Kind)] = &[
    ("cleanup.policy", Kind::ListOf(&["delete", "compact"])),
    ("compression.gzip.level", Kind::IntIn(&[(-1, -1), (1, 9)])),
    ("compression.lz4.level", Kind::IntIn(&[(1, 17)])),
    ("compression.type", Kind::OneOf(&["producer", "uncompressed", "none", "gzip", "snappy", "lz4", "zstd"])),
    ("compression.zstd.level", Kind::IntIn(&[(-131_072, 22)])),
    ("delete.retention.ms", Kind::Long { min: 0 }),
    ("file.delete.delay.ms", Kind::Long { min: 0 }),
    ("flush.messages", Kind::Long { min: 1 }),
    ("flush.ms", Kind::Long { min: 0 }),
    ("follower.replication.throttled.replicas", Kind::Text),
    ("leader.replication.throttled.replicas", Kind::Text),
    ("index.interval.bytes", Kind::Int { min: 0 }),
    ("local.retention.bytes", Kind::Long { min: -2 }),
    ("local.retention.ms", Kind::Long { min: -2 }),
    ("max.compaction.lag.ms", Kind::Long { min: 1 }),
    ("max.message.bytes", Kind::Int { min: 0 }),
    ("message.downconversion.enable", Kind::Bool),
    // Removed in Kafka 4.0 (KIP-724) but still set by older tools; accepted and ignored, as
    // Kafka 3.x ignores it for RecordBatch v2 logs.
    ("message.format.version", Kind::Text),
    ("message.timestamp.after.max.ms", Kind::Long { min: 0 }),
    ("message.timestamp.before.max.ms", Kind::Long { min: 0 }),
    ("message.timestamp.difference.max.ms", Kind::Long { min: 0 }),
    ("message.timestamp.type", Kind::OneOf(&["CreateTime", "LogAppendTime"])),
    ("min.cleanable.dirty.ratio", Kind::Ratio),
    ("min.compaction.lag.ms", Kind::Long { min: 0 }),
    ("min.insync.replicas", Kind::Int { min: 1 }),
    ("preallocate", Kind::Bool),
    ("remote.log.copy.disable", Kind::Bool),
    ("remote.log.delete.on.disable", Kind::Bool),
    ("remote.storage.enable", Kind::Bool),
    ("retention.bytes", Kind::Long { min: -1 }),
    ("retention.ms", Kind::Long { min: -1 }),
    ("segment.bytes", Kind::Int { min: 1024 }),
    ("segment.index.bytes", Kind::Int { min: 4 }),
    ("segment.jitter.ms", Kind::Long { min: 0 }),
    ("segment.ms", Kind::Long { min: 1 }),
    ("unclean.leader.election.enable", Kind::Bool),
];

/// What values a topic config takes, in words: the documentation DescribeConfigs gives when
/// asked for it.
pub fn describe_values(key: &str) -> Option<String> {
    let (_, kind) = TOPIC_CONFIGS.iter().find(|(k, _)| *k == key)?;
    Some(match kind {
        Kind::Long { min } => format!("A 64-bit integer, at least {min}."),
        Kind::Int { min } => format!("A 32-bit integer, at least {min}."),
        Kind::IntIn(ranges) => {
            let r: Vec<String> =
                ranges.iter().map(|(a, b)| if a == b { a.to_string() } else { format!("{a}..{b}") }).collect();
            format!("An integer in {}.", r.join(" or "))
        }
        Kind::Bool => "true or false.".into(),
        Kind::Ratio => "A ratio between 0 and 1.".into(),
        Kind::OneOf(words) => format!("One of: {}.", words.join(", ")),
        Kind::ListOf(words) => format!("A comma-separated list of: {}.", words.join(", ")),
        Kind::Text => "Free text.".into(),
    })
}

/// Checks one topic config; the error text names the key and says what is wrong.
pub fn validate(key: &str, value: &str) -> Result<(), String> {
    let Some((_, kind)) = TOPIC_CONFIGS.iter().find(|(k, _)| *k == key) else {
        return Err(format!("Unknown topic config name: {key}"));
    };
    let ok = match kind {
        Kind::Long { min } | Kind::Int { min } => {
            let max = if matches!(kind, Kind::Int { .. }) { i64::from(i32::MAX) } else { i64::MAX };
            value.trim().parse::<i64>().is_ok_and(|v| v >= *min && v <= max)
        }
        Kind::IntIn(ranges) => {
            value.trim().parse::<i64>().is_ok_and(|v| ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&v)))
        }
        Kind::Bool => matches!(value.trim().to_ascii_lowercase().as_str(), "true" | "false"),
        Kind::Ratio => value.trim().parse::<f64>().is_ok_and(|v| (0.0..=1.0).contains(&v)),
        Kind::OneOf(words) => words.iter().any(|w| w.eq_ignore_ascii_case(value.trim())),
        // An empty list is allowed (Kafka 4.x: an empty `cleanup.policy` neither deletes nor
        // compacts).
        Kind::ListOf(words) => {
            value.trim().is_empty() || value.split(',').all(|p| words.iter().any(|w| w.eq_ignore_ascii_case(p.trim())))
        }
        Kind::Text => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("Invalid value {value} for configuration {key}"))
    }
}

/// Checks a topic's local retention against its retention, as Kafka does for a topic with
/// remote storage (shared mode, where the object store is that copy): a leader cannot keep
/// more locally than the topic keeps at all. `configs` are the topic's overrides (each
/// already valid), `log` the broker's defaults. The error text is Kafka 4.1's.
pub fn validate_local_retention(log: &LogConfig, configs: &BTreeMap<String, String>) -> Result<(), String> {
    let get = |k: &str| configs.get(k).and_then(|v| v.trim().parse::<i64>().ok());
    let retention = get("retention.bytes").unwrap_or(log.retention_bytes);
    let local = get("local.retention.bytes").unwrap_or(log.local_retention_bytes);
    match local {
        -2 => Ok(()),
        _ if retention < 0 => Ok(()),
        -1 => Err(format!(
            "Invalid value -1 for configuration local.retention.bytes: Value must not be -1 as retention.bytes value is set as {retention}."
        )),
        n if n > retention => Err(format!(
            "Invalid value {n} for configuration local.retention.bytes: Value must not be more than retention.bytes property value: {retention}"
        )),
        _ => Ok(()),
    }
}

pub fn is_known(key: &str) -> bool {
    TOPIC_CONFIGS.iter().any(|(k, _)| *k == key)
}

/// The value a topic config has when the topic does not override it, as a string.
pub fn default_value(key: &str, log: &LogConfig) -> Option<String> {
    Some(match key {
        "cleanup.policy" => "delete".into(),
        "compression.type" => "producer".into(),
        "retention.ms" => log.retention_ms.to_string(),
        "retention.bytes" => log.retention_bytes.to_string(),
        "segment.bytes" => log.segment_bytes.to_string(),
        "segment.ms" => log.segment_ms.to_string(),
        "max.message.bytes" => log.max_message_bytes.to_string(),
        "message.timestamp.type" => "CreateTime".into(),
        "index.interval.bytes" => log.index_interval_bytes.to_string(),
        "min.insync.replicas" => "1".into(),
        "flush.messages" => log.flush_interval_messages.map_or(i64::MAX, |v| v as i64).to_string(),
        "flush.ms" => log.flush_interval_ms.map_or(i64::MAX, |v| v as i64).to_string(),
        "delete.retention.ms" => log.cleaner_delete_retention_ms.to_string(),
        "file.delete.delay.ms" => "60000".into(),
        "max.compaction.lag.ms" => log.cleaner_max_compaction_lag_ms.to_string(),
        "min.compaction.lag.ms" => log.cleaner_min_compaction_lag_ms.to_string(),
        "min.cleanable.dirty.ratio" => log.cleaner_min_cleanable_ratio.to_string(),
        "message.timestamp.after.max.ms"
        | "message.timestamp.before.max.ms"
        | "message.timestamp.difference.max.ms" => i64::MAX.to_string(),
        "preallocate"
        | "remote.storage.enable"
        | "remote.log.copy.disable"
        | "remote.log.delete.on.disable"
        | "unclean.leader.election.enable" => "false".into(),
        "compression.gzip.level" => "-1".into(),
        "compression.lz4.level" => "9".into(),
        "compression.zstd.level" => "3".into(),
        "message.downconversion.enable" => "true".into(),
        "segment.index.bytes" => "10485760".into(),
        "segment.jitter.ms" => "0".into(),
        "local.retention.bytes" => log.local_retention_bytes.to_string(),
        "local.retention.ms" => "-2".into(),
        "follower.replication.throttled.replicas" | "leader.replication.throttled.replicas" => String::new(),
        _ => return None,
    })
}

/// Kafka's ConfigEntry type code (DescribeConfigs v3+): BOOLEAN 1, STRING 2, INT 3, LONG 5,
/// DOUBLE 6, LIST 7.
pub fn type_code(key: &str) -> i8 {
    match TOPIC_CONFIGS.iter().find(|(k, _)| *k == key).map(|(_, kind)| *kind) {
        Some(Kind::Bool) => 1,
        Some(Kind::OneOf(_)) => 2,
        Some(Kind::Int { .. }) | Some(Kind::IntIn(_)) => 3,
        Some(Kind::Long { .. }) => 5,
        Some(Kind::Ratio) => 6,
        Some(Kind::ListOf(_)) | Some(Kind::Text) => 7,
        None => 0,
    }
}

/// True for list-valued configs, which IncrementalAlterConfigs may APPEND to or SUBTRACT from.
pub fn is_list(key: &str) -> bool {
    type_code(key) == 7
}

pub fn names() -> impl Iterator<Item = &'static str> {
    TOPIC_CONFIGS.iter().map(|(k, _)| *k)
}

/// Broker defaults overridden by a topic's (already validated) configs.
pub fn partition_config(log: &LogConfig, topic: &BTreeMap<String, String>) -> PartitionConfig {
    let get = |k: &str| topic.get(k).and_then(|v| v.trim().parse::<i64>().ok());
    let compact =
        topic.get("cleanup.policy").is_some_and(|p| p.split(',').any(|x| x.trim().eq_ignore_ascii_case("compact")));
    let compact_only =
        topic.get("cleanup.policy").is_some_and(|p| !p.split(',').any(|x| x.trim().eq_ignore_ascii_case("delete")));
    PartitionConfig {
        segment_bytes: get("segment.bytes").map_or(log.segment_bytes, |v| v as u64),
        segment_ms: get("segment.ms").unwrap_or(log.segment_ms),
        index_interval_bytes: get("index.interval.bytes").map_or(log.index_interval_bytes, |v| v as u64),
        max_message_bytes: get("max.message.bytes").map_or(log.max_message_bytes as usize, |v| v as usize),
        // A compact-only topic keeps its data until compaction removes what is superseded.
        retention_ms: if compact_only { -1 } else { get("retention.ms").unwrap_or(log.retention_ms) },
        retention_bytes: if compact_only { -1 } else { get("retention.bytes").unwrap_or(log.retention_bytes) },
        // -2 (the default) is the broker's setting, and -2 there is `retention.bytes`.
        local_retention_bytes: match get("local.retention.bytes").unwrap_or(log.local_retention_bytes) {
            -2 if log.local_retention_bytes == -2 => get("retention.bytes").unwrap_or(log.retention_bytes),
            -2 => log.local_retention_bytes,
            n => n,
        },
        log_append_time: topic
            .get("message.timestamp.type")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("LogAppendTime")),
        flush_interval_messages: get("flush.messages").map(|v| v as u64).or(log.flush_interval_messages),
        compact,
        cleaner: crate::log::CleanerSettings {
            delete_retention_ms: get("delete.retention.ms").unwrap_or(log.cleaner_delete_retention_ms),
            min_compaction_lag_ms: get("min.compaction.lag.ms").unwrap_or(log.cleaner_min_compaction_lag_ms),
            max_compaction_lag_ms: get("max.compaction.lag.ms").unwrap_or(log.cleaner_max_compaction_lag_ms),
            min_cleanable_ratio: topic
                .get("min.cleanable.dirty.ratio")
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(log.cleaner_min_cleanable_ratio),
        },
        durable: log.fsync_acks_all,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_problems() {
        assert!(validate("retention.ms", "1000").is_ok());
        assert!(validate("retention.ms", "-1").is_ok());
        assert!(validate("retention.ms", "soon").unwrap_err().contains("retention.ms"));
        assert!(validate("cleanup.policy", "compact,delete").is_ok());
        assert!(validate("cleanup.policy", "shred").is_err());
        assert!(validate("cleanup.policy", "").is_ok(), "Kafka 4 allows an empty policy");
        assert!(validate("compression.gzip.level", "-1").is_ok());
        assert!(validate("compression.gzip.level", "0").is_err());
        assert!(validate("compression.lz4.level", "17").is_ok());
        assert!(validate("compression.zstd.level", "-131072").is_ok());
        assert!(validate("compression.zstd.level", "23").is_err());
        assert!(validate("remote.log.copy.disable", "true").is_ok());
        assert!(validate("segment.bytes", "10").is_err());
        assert!(validate("no.such.key", "1").unwrap_err().contains("Unknown"));
    }

    #[test]
    fn local_retention_may_not_keep_more_than_retention() {
        let log = LogConfig::default();
        let topic = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let check = |pairs: &[(&str, &str)]| validate_local_retention(&log, &topic(pairs));
        assert!(check(&[]).is_ok());
        assert!(check(&[("local.retention.bytes", "1000")]).is_ok(), "retention.bytes -1 keeps everything");
        assert!(check(&[("retention.bytes", "500"), ("local.retention.bytes", "-2")]).is_ok());
        assert!(check(&[("retention.bytes", "500"), ("local.retention.bytes", "500")]).is_ok());
        let more = check(&[("retention.bytes", "500"), ("local.retention.bytes", "1000")]).unwrap_err();
        assert!(more.contains("local.retention.bytes") && more.contains("500"), "{more}");
        let all = check(&[("retention.bytes", "500"), ("local.retention.bytes", "-1")]).unwrap_err();
        assert!(all.contains("-1") && all.contains("500"), "{all}");
        // The broker's default counts when the topic does not override it.
        let defaults = LogConfig { local_retention_bytes: 4096, ..LogConfig::default() };
        let pairs = topic(&[("retention.bytes", "1024")]);
        assert!(validate_local_retention(&defaults, &pairs).is_err());
    }

    #[test]
    fn topic_overrides_win() {
        let log = LogConfig::default();
        let mut t = BTreeMap::new();
        t.insert("retention.ms".to_string(), "5".to_string());
        t.insert("message.timestamp.type".to_string(), "LogAppendTime".to_string());
        let pc = partition_config(&log, &t);
        assert_eq!(pc.retention_ms, 5);
        assert!(pc.log_append_time);
        t.insert("cleanup.policy".to_string(), "compact".to_string());
        assert_eq!(partition_config(&log, &t).retention_ms, -1);
    }
}
