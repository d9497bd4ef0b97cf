//! Group configs of share groups (Kafka's `GroupConfig`, resource type GROUP in
//! DescribeConfigs and IncrementalAlterConfigs): the `share.*` keys, checked, with the broker's
//! `group.share.*` settings as their defaults, and kept in `share-group-configs.json` in the
//! data directory (shared mode: in the cluster's store, one document for every broker, see
//! [`Kept`]).

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

/// Shared mode: the name of the share groups' configs document in the cluster's store.
pub const DOCUMENT: &str = "share_group_configs";

/// Every share group's configs as the cluster keeps them (shared mode): a line per group, its
/// configs under their Kafka names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kept(pub BTreeMap<String, GroupSettings>);

impl crate::auth::kept::Lines for Kept {
    type Line = (String, BTreeMap<String, String>);
    fn from_lines(lines: Vec<Self::Line>) -> Result<Self, String> {
        let mut all = BTreeMap::new();
        for (group, configs) in lines {
            let settings = GroupSettings::from_map(&configs).map_err(|e| format!("group {group}: {e}"))?;
            all.insert(group, settings);
        }
        Ok(Self(all))
    }
    fn to_lines(&self) -> Vec<Self::Line> {
        self.0.iter().map(|(g, s)| (g.clone(), s.to_map())).collect()
    }
}

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
            Some(v) if v.starts_with(BY_DURATION) => match parse_duration(&v[BY_DURATION.len()..]) {
                Some(d) => Some(OffsetReset::ByDuration(d)),
                None => {
                    return Err(format!(
                        "Invalid value {v} for configuration {AUTO_OFFSET_RESET}: by_duration takes a positive \
                         ISO-8601 duration such as by_duration:PT1H or by_duration:P1DT30M."
                    ))
                }
            },
            Some(v) => {
                return Err(format!(
                    "Invalid value {v} for configuration {AUTO_OFFSET_RESET}: must be latest, earliest or \
                     by_duration:<ISO-8601 duration>."
                ))
            }
        };
        let read_committed = match map.get(ISOLATION_LEVEL).map(|v| v.trim().to_ascii_lowercase()) {
            None => None,
            Some(v) if v == "read_uncommitted" => Some(false),
            Some(v) if v == "read_committed" => Some(true),
            Some(v) => {
                return Err(format!(
                    "Invalid value {v} for configuration {ISOLATION_LEVEL}: must be read_uncommitted or \
                     read_committed."
                ))
            }
        };
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
            read_committed,
        })
    }

    /// The configs the group set, by Kafka name.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        if let Some(r) = self.auto_offset_reset {
            let v = match r {
                OffsetReset::Latest => "latest".to_string(),
                OffsetReset::Earliest => "earliest".to_string(),
                OffsetReset::ByDuration(d) => format!("{BY_DURATION}{}", format_duration(d)),
            };
            m.insert(AUTO_OFFSET_RESET.into(), v);
        }
        if let Some(rc) = self.read_committed {
            m.insert(ISOLATION_LEVEL.into(), if rc { "read_committed" } else { "read_uncommitted" }.into());
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
            d(
                AUTO_OFFSET_RESET,
                "latest".into(),
                TYPE_STRING,
                "Where a share-partition starts: latest, earliest or by_duration:<ISO-8601 duration>.",
            ),
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
            d(
                ISOLATION_LEVEL,
                "read_uncommitted".into(),
                TYPE_STRING,
                "Which records share consumers read: read_uncommitted, or read_committed (committed transactions only).",
            ),
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

const BY_DURATION: &str = "by_duration:";

/// An ISO-8601 duration as Java's `Duration.parse` reads it (`PnDTnHnMn.nS`, case-insensitive,
/// each part optional but at least one present, a fraction on seconds only); negative ones are
/// refused, as Kafka refuses them for `by_duration`. Precision: milliseconds.
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim().to_ascii_uppercase();
    let rest = s.strip_prefix('+').unwrap_or(&s).strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return None,
        None => (rest, None),
    };
    let mut millis: u128 = 0;
    let mut parts = 0;
    let mut take = |part: &str, units: &[(char, u128)]| -> Option<()> {
        let mut rest = part;
        let mut allowed = units;
        while !rest.is_empty() {
            let end = rest.find(|c: char| c.is_ascii_alphabetic())?;
            let (number, unit) = (&rest[..end], rest[end..].chars().next()?);
            let at = allowed.iter().position(|(u, _)| *u == unit)?;
            let scale = allowed[at].1;
            allowed = &allowed[at + 1..];
            let digits = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
            let value = if unit == 'S' {
                let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
                if !digits(whole) || frac.len() > 9 || !(frac.is_empty() || digits(frac)) {
                    return None;
                }
                let ms_frac = format!("{frac:0<3}")[..3].parse::<u128>().ok()?;
                whole.parse::<u128>().ok()?.checked_mul(1000)? + ms_frac
            } else {
                if !digits(number) {
                    return None;
                }
                number.parse::<u128>().ok()?.checked_mul(scale)?
            };
            millis = millis.checked_add(value)?;
            parts += 1;
            rest = &rest[end + 1..];
        }
        Some(())
    };
    take(date, &[('D', 86_400_000)])?;
    if let Some(t) = time {
        take(t, &[('H', 3_600_000), ('M', 60_000), ('S', 1)])?;
    }
    if parts == 0 {
        return None;
    }
    Some(std::time::Duration::from_millis(u64::try_from(millis).ok()?))
}

/// A duration as Java's `Duration.toString` writes it (`PT1H30M`, `PT0.5S`, `PT0S`).
pub fn format_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let mut out = "PT".to_string();
    if h > 0 {
        out += &format!("{h}H");
    }
    if m > 0 {
        out += &format!("{m}M");
    }
    if s > 0 || frac > 0 || (h == 0 && m == 0) {
        out += &s.to_string();
        if frac > 0 {
            out += format!(".{frac:03}").trim_end_matches('0');
        }
        out += "S";
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn iso_durations_read_as_java_reads_them() {
        let ok = |s: &str| parse_duration(s).map(|d| d.as_millis());
        assert_eq!(ok("PT1H"), Some(3_600_000));
        assert_eq!(ok("pt15m"), Some(900_000));
        assert_eq!(ok("P1DT2H3M4.5S"), Some(93_784_500));
        assert_eq!(ok("P2D"), Some(172_800_000));
        assert_eq!(ok("PT0.25S"), Some(250));
        for bad in ["", "P", "PT", "1H", "PT1X", "PT-1H", "-PT1H", "PT1M1H", "P1H", "PT1.5M", "PTH", "P1DT"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        for d in [3_600_000u64, 5_400_000, 500, 0, 90_061_000] {
            let d = Duration::from_millis(d);
            assert_eq!(parse_duration(&format_duration(d)), Some(d));
        }
        assert_eq!(format_duration(Duration::from_millis(5_400_000)), "PT1H30M");
        assert_eq!(format_duration(Duration::from_millis(1_500)), "PT1.5S");
    }

    #[test]
    fn share_group_configs_are_checked_and_written_back_as_set() {
        let map = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let s = GroupSettings::from_map(&map(&[
            (AUTO_OFFSET_RESET, "by_duration:PT2H"),
            (ISOLATION_LEVEL, "read_committed"),
        ]))
        .unwrap();
        assert_eq!(s.auto_offset_reset, Some(OffsetReset::ByDuration(Duration::from_secs(7200))));
        assert_eq!(s.read_committed, Some(true));
        assert_eq!(GroupSettings::from_map(&s.to_map()).unwrap(), s);
        assert_eq!(s.to_map()[AUTO_OFFSET_RESET], "by_duration:PT2H");
        for (k, v) in [(AUTO_OFFSET_RESET, "by_duration:2h"), (AUTO_OFFSET_RESET, "soon"), (ISOLATION_LEVEL, "serial")]
        {
            assert!(GroupSettings::from_map(&map(&[(k, v)])).is_err(), "{k}={v}");
        }
    }
}
