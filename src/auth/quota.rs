//! Client quotas: the byte rates and request-time share a user or client id may use, as Kafka
//! 4.1 keeps and enforces them.
//!
//! Owns the quota settings (`AlterClientQuotas`/`DescribeClientQuotas`, kept by a
//! [`Keeper`]: `<log.dir>/__client_quotas.json`, one entity per line, or in shared mode the
//! coordination store) and the measured rates. Handlers
//! record what a request cost ([`QuotaStore::record`]) and get back how long the client must
//! wait; the connection is then muted for that long (KIP-219) and the response says so in
//! `throttle_time_ms`.
//!
//! Kafka's rules kept here:
//! - entities are `user`, `client-id` or both (each a name or the default, `null` on the
//!   wire); `ip` entities are refused: gregor does not enforce connection-creation rates yet;
//! - the quota that applies to (user, client id) is the first one set among, in order:
//!   user+client, user+default client, user, default user+client, default user+default
//!   client, default user, client, default client (Kafka's `DefaultQuotaCallback`); clients
//!   that resolve to the same entity share one measured rate;
//! - a rate is measured over 11 one-second samples (`quota.window.num`,
//!   `quota.window.size.seconds`, Kafka's defaults), never over less than 10 seconds, so a
//!   burst after a quiet spell is spread over the whole window; a recording that takes the rate
//!   above the bound costs `(rate - bound) / bound * window` of waiting
//!   (`QuotaUtils.throttleTime`), capped at one sample (1 s) for the request-time quota;
//! - `request_percentage` counts the time the broker spends handling a client's requests, in
//!   percent of one thread (100 = one full thread).
//!
//! Invariant: the measured rates are kept only for (user, client id) pairs a quota applies to,
//! and at most [`MAX_SENSORS`] of them; rates idle for a whole window are dropped first.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::kept::{Keeper, Lines, Records};

pub const USER: &str = "user";
pub const CLIENT_ID: &str = "client-id";
pub const IP: &str = "ip";

pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
pub const REQUEST_PERCENTAGE: &str = "request_percentage";
pub const CONTROLLER_MUTATION_RATE: &str = "controller_mutation_rate";
pub const CONNECTION_CREATION_RATE: &str = "connection_creation_rate";

/// Samples per measured rate and their length (Kafka's `quota.window.num` and
/// `quota.window.size.seconds` defaults).
pub const SAMPLES: usize = 11;
pub const SAMPLE_MS: i64 = 1000;

/// The most measured rates kept at once: a client that invents a client id per request makes
/// one each.
pub const MAX_SENSORS: usize = 65_536;

/// The name of the quotas' document.
pub const DOCUMENT: &str = "client_quotas";

/// What a quota limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Produce request bytes per second (`producer_byte_rate`).
    Produce,
    /// Fetch response bytes per second (`consumer_byte_rate`).
    Fetch,
    /// Percent of one thread's time spent on the client's requests (`request_percentage`).
    Request,
}

impl Kind {
    fn key(self) -> &'static str {
        match self {
            Kind::Produce => PRODUCER_BYTE_RATE,
            Kind::Fetch => CONSUMER_BYTE_RATE,
            Kind::Request => REQUEST_PERCENTAGE,
        }
    }
}

/// A quota entity: a user, a client id, or both; `None` names the default.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entity {
    pub user: Option<Option<String>>,
    pub client_id: Option<Option<String>>,
}

impl Entity {
    /// `(entity type, name)` pairs as the wire carries them, user first.
    pub fn parts(&self) -> Vec<(&'static str, Option<&str>)> {
        let mut out = Vec::with_capacity(2);
        if let Some(u) = &self.user {
            out.push((USER, u.as_deref()));
        }
        if let Some(c) = &self.client_id {
            out.push((CLIENT_ID, c.as_deref()));
        }
        out
    }

    /// Builds an entity from the wire's `(type, name)` pairs, as Kafka's controller validates
    /// them.
    pub fn from_parts<'a>(parts: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> Result<Self, QuotaError> {
        let mut entity = Entity { user: None, client_id: None };
        let mut any = false;
        for (kind, name) in parts {
            any = true;
            let slot = match kind {
                USER => &mut entity.user,
                CLIENT_ID => &mut entity.client_id,
                IP => {
                    return Err(QuotaError::Invalid(
                        "IP quotas (connection_creation_rate) are not supported by gregor yet".into(),
                    ))
                }
                other => return Err(QuotaError::Invalid(format!("Unhandled client quota entity type: {other}"))),
            };
            if slot.is_some() {
                return Err(QuotaError::Invalid(format!("Invalid client quota entity, duplicate entity entry {kind}")));
            }
            if name == Some("") {
                return Err(QuotaError::Invalid(format!("Empty {kind} not supported")));
            }
            *slot = Some(name.map(str::to_string));
        }
        if !any {
            return Err(QuotaError::Invalid("Invalid empty client quota entity".into()));
        }
        Ok(entity)
    }

    fn has(&self, kind: &str) -> Option<Option<&str>> {
        match kind {
            USER => self.user.as_ref().map(|n| n.as_deref()),
            CLIENT_ID => self.client_id.as_ref().map(|n| n.as_deref()),
            _ => None,
        }
    }

    fn len(&self) -> usize {
        usize::from(self.user.is_some()) + usize::from(self.client_id.is_some())
    }
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> =
            self.parts().into_iter().map(|(k, n)| format!("{k}={}", n.unwrap_or("<default>"))).collect();
        f.write_str(&parts.join(","))
    }
}

/// Why a quota request is refused (INVALID_REQUEST, or UNSUPPORTED_VERSION for an entity type
/// Kafka does not know in a describe filter).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("the quota file could not be written: {0}")]
    Storage(String),
}

/// An entity's quotas, by key, as described.
pub type Values = Vec<(String, f64)>;

/// One change to an entity's quotas: set `key` to `Some(value)` or remove it (`None`).
#[derive(Debug, Clone)]
pub struct Op {
    pub key: String,
    pub value: Option<f64>,
}

/// Checks a quota key and value as Kafka 4.1's `ClientQuotaControlManager` does: byte rates are
/// whole numbers, everything is above 0.
fn validate(key: &str, value: f64) -> Result<(), QuotaError> {
    let integral = match key {
        PRODUCER_BYTE_RATE | CONSUMER_BYTE_RATE => true,
        REQUEST_PERCENTAGE => false,
        CONTROLLER_MUTATION_RATE => {
            return Err(QuotaError::Invalid(format!("{key} quotas are not supported by gregor yet")));
        }
        _ => return Err(QuotaError::Invalid(format!("Invalid configuration key {key}"))),
    };
    if value.is_nan() || value <= 0.0 {
        return Err(QuotaError::Invalid(format!("Quota {key} must be greater than 0")));
    }
    // Quotas are kept as JSON, which has no infinity; an infinite quota means none (remove it).
    if value.is_infinite() {
        return Err(QuotaError::Invalid(format!("Quota {key} must be a finite number")));
    }
    if integral {
        if value > i64::MAX as f64 {
            return Err(QuotaError::Invalid(format!("Proposed value for {key} is too large for a LONG.")));
        }
        if (value % 1.0).abs() > 1e-6 {
            return Err(QuotaError::Invalid(format!("{key} cannot be a fractional value.")));
        }
    }
    Ok(())
}

/// A describe filter component (DescribeClientQuotas): an entity type and what its name must be.
#[derive(Debug, Clone)]
pub struct Component {
    pub entity_type: String,
    pub match_type: i8,
    pub name: Option<String>,
}

const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_SPECIFIED: i8 = 2;

/// A rate measured over [`SAMPLES`] samples of [`SAMPLE_MS`], as Kafka's `Rate` over a
/// `SampledStat`: per second, over the elapsed window but never less than `SAMPLES - 1` samples.
#[derive(Debug, Clone)]
struct Rate {
    /// `(start ms, total)` of each sample; `current` is the one being filled.
    samples: Vec<(i64, f64)>,
    current: usize,
    last_used_ms: i64,
}

impl Rate {
    fn new(now: i64) -> Self {
        Rate { samples: vec![(now, 0.0)], current: 0, last_used_ms: now }
    }

    fn record(&mut self, value: f64, now: i64) {
        self.last_used_ms = now;
        if now >= self.samples[self.current].0 + SAMPLE_MS {
            self.current = (self.current + 1) % SAMPLES;
            if self.current >= self.samples.len() {
                self.samples.push((now, 0.0));
            } else {
                self.samples[self.current] = (now, 0.0);
            }
        }
        self.samples[self.current].1 += value;
    }

    /// Samples older than the whole window start again at `now`, empty.
    fn purge(&mut self, now: i64) {
        let expire = SAMPLE_MS * SAMPLES as i64;
        for s in &mut self.samples {
            if now - s.0 >= expire {
                *s = (now, 0.0);
            }
        }
    }

    /// The window the rate is measured over, in ms.
    fn window_ms(&mut self, now: i64) -> i64 {
        self.purge(now);
        let oldest = self.samples.iter().map(|s| s.0).min().unwrap_or(now);
        let mut elapsed = now - oldest;
        let full = elapsed / SAMPLE_MS;
        let min_full = SAMPLES as i64 - 1;
        if full < min_full {
            elapsed += (min_full - full) * SAMPLE_MS;
        }
        elapsed
    }

    /// Per second, over [`Self::window_ms`].
    fn measure(&mut self, now: i64) -> (f64, i64) {
        let window = self.window_ms(now);
        let total: f64 = self.samples.iter().map(|s| s.1).sum();
        (total / (window as f64 / 1000.0), window)
    }
}

/// Whose rate a recording goes to: the quota type and the (user, client id) tags Kafka's
/// `quotaMetricTags` chooses ("" where the level does not count).
type SensorKey = (Kind, String, String);

/// Every entity's quotas.
type Quotas = BTreeMap<Entity, BTreeMap<String, f64>>;

/// The client quotas of the broker and their measured rates.
#[derive(Debug)]
pub struct QuotaStore {
    quotas: Records<Quotas>,
    sensors: Mutex<HashMap<SensorKey, Rate>>,
}

/// One line of the quotas' document: the entity as `(type, name or null)` pairs, and its quotas.
#[derive(Serialize, Deserialize)]
pub struct Record {
    entity: Vec<(String, Option<String>)>,
    values: BTreeMap<String, f64>,
}

impl Lines for Quotas {
    type Line = Record;
    fn from_lines(lines: Vec<Record>) -> Result<Self, String> {
        lines
            .into_iter()
            .map(|r| {
                let entity = Entity::from_parts(r.entity.iter().map(|(t, n)| (t.as_str(), n.as_deref())))
                    .map_err(|e| e.to_string())?;
                Ok((entity, r.values))
            })
            .collect()
    }
    fn to_lines(&self) -> Vec<Record> {
        self.iter()
            .map(|(entity, values)| Record {
                entity: entity.parts().into_iter().map(|(t, n)| (t.to_string(), n.map(str::to_string))).collect(),
                values: values.clone(),
            })
            .collect()
    }
}

impl QuotaStore {
    /// Loads the quotas `keeper` keeps.
    pub fn open(keeper: Arc<dyn Keeper>) -> io::Result<Self> {
        Ok(QuotaStore { quotas: Records::open(keeper, DOCUMENT)?, sensors: Mutex::new(HashMap::new()) })
    }

    /// The quotas as kept, for a broker to take up what other brokers changed.
    pub fn records(&self) -> &Records<Quotas> {
        &self.quotas
    }

    /// Whether any quota is set (nothing is measured otherwise).
    pub fn any(&self) -> bool {
        !self.quotas.get().is_empty()
    }

    /// Applies alterations, one result per entry in request order. An entity named twice is
    /// refused in both entries; an entry whose ops are not all valid changes nothing.
    pub fn alter(
        &self,
        entries: Vec<Result<(Entity, Vec<Op>), QuotaError>>,
        validate_only: bool,
    ) -> Vec<Result<(), QuotaError>> {
        let mut seen: HashMap<Entity, usize> = HashMap::new();
        for (e, _) in entries.iter().flatten() {
            *seen.entry(e.clone()).or_default() += 1;
        }
        let (results, kept) = self.quotas.change(|quotas| {
            let mut next = quotas.clone();
            let results: Vec<Result<(), QuotaError>> = entries
                .iter()
                .cloned()
                .map(|entry| {
                    let (entity, ops) = entry?;
                    if seen.get(&entity).copied().unwrap_or(0) > 1 {
                        return Err(QuotaError::Invalid(format!("Ignoring duplicate entity {entity}")));
                    }
                    let mut keys = std::collections::HashSet::new();
                    for op in &ops {
                        if !keys.insert(op.key.as_str()) {
                            return Err(QuotaError::Invalid(format!(
                                "Duplicate quota key {} not updating quota for this entity {entity}",
                                op.key
                            )));
                        }
                        if let Some(v) = op.value {
                            validate(&op.key, v)?;
                        }
                    }
                    let values = next.entry(entity.clone()).or_default();
                    for op in ops {
                        match op.value {
                            Some(v) => {
                                values.insert(op.key, v);
                            }
                            None => {
                                values.remove(&op.key);
                            }
                        }
                    }
                    if values.is_empty() {
                        next.remove(&entity);
                    }
                    Ok(())
                })
                .collect();
            if !validate_only {
                *quotas = next;
            }
            results
        });
        // Measured rates stay: a changed bound applies to what the client already used, as in
        // Kafka.
        match kept {
            Ok(()) => results,
            Err(e) => {
                let e = QuotaError::Storage(e.to_string());
                results.into_iter().map(|r| r.and(Err(e.clone()))).collect()
            }
        }
    }

    /// The entities matching a DescribeClientQuotas filter, with their quotas.
    pub fn describe(&self, components: &[Component], strict: bool) -> Result<Vec<(Entity, Values)>, QuotaError> {
        let mut exact: HashMap<&str, Option<&str>> = HashMap::new();
        let mut specified: Vec<&str> = Vec::new();
        for c in components {
            let t = c.entity_type.as_str();
            if t.is_empty() {
                return Err(QuotaError::Invalid("Invalid empty entity type.".into()));
            }
            if exact.contains_key(t) || specified.contains(&t) {
                return Err(QuotaError::Invalid(format!(
                    "Entity type {t} cannot appear more than once in the filter."
                )));
            }
            if ![USER, CLIENT_ID, IP].contains(&t) {
                return Err(QuotaError::Unsupported(format!("Unsupported entity type {t}")));
            }
            match (c.match_type, &c.name) {
                (MATCH_EXACT, Some(n)) => {
                    exact.insert(t, Some(n.as_str()));
                }
                (MATCH_EXACT, None) => {
                    return Err(QuotaError::Invalid(
                        "Request specified MATCH_TYPE_EXACT, but set match string to null.".into(),
                    ))
                }
                (MATCH_DEFAULT, None) => {
                    exact.insert(t, None);
                }
                (MATCH_DEFAULT, Some(_)) => {
                    return Err(QuotaError::Invalid(
                        "Request specified MATCH_TYPE_DEFAULT, but also specified a match string.".into(),
                    ))
                }
                (MATCH_SPECIFIED, None) => specified.push(t),
                (MATCH_SPECIFIED, Some(_)) => {
                    return Err(QuotaError::Invalid(
                        "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.".into(),
                    ))
                }
                (other, _) => return Err(QuotaError::Invalid(format!("Unknown match type {other}"))),
            }
        }
        let ip = exact.contains_key(IP) || specified.contains(&IP);
        let other = exact.keys().chain(specified.iter()).any(|t| *t != IP);
        if ip && other {
            return Err(QuotaError::Invalid(
                "Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component.".into(),
            ));
        }
        let quotas = self.quotas.get();
        let matches = |e: &Entity| {
            (!strict || e.len() == exact.len() + specified.len())
                && exact.iter().all(|(t, n)| e.has(t) == Some(*n))
                && specified.iter().all(|t| e.has(t).is_some())
        };
        Ok(quotas
            .iter()
            .filter(|(e, _)| matches(e))
            .map(|(e, v)| (e.clone(), v.iter().map(|(k, v)| (k.clone(), *v)).collect()))
            .collect())
    }

    /// The sensor and bound that apply to `user` (a principal's name) and `client_id` for
    /// `kind`, as Kafka's `DefaultQuotaCallback` resolves them; `None` when no quota applies.
    fn resolve(&self, kind: Kind, user: &str, client_id: &str) -> Option<(SensorKey, f64)> {
        let q = self.quotas.get();
        let get = |u: Option<Option<&str>>, c: Option<Option<&str>>| {
            let e = Entity { user: u.map(|n| n.map(str::to_string)), client_id: c.map(|n| n.map(str::to_string)) };
            q.get(&e).and_then(|v| v.get(kind.key()).copied())
        };
        let has = |u: Option<Option<&str>>, c: Option<Option<&str>>| {
            let e = Entity { user: u.map(|n| n.map(str::to_string)), client_id: c.map(|n| n.map(str::to_string)) };
            q.contains_key(&e)
        };
        let (u, c) = (Some(Some(user)), Some(Some(client_id)));
        let (du, dc) = (Some(None), Some(None));
        // Kafka's quotaMetricTags: which (user, client id) level this client is measured at.
        let (tag_user, tag_client) = if has(u, c) || has(u, dc) {
            (user, client_id)
        } else if has(u, None) {
            (user, "")
        } else if has(du, c) || has(du, dc) {
            (user, client_id)
        } else if has(du, None) {
            (user, "")
        } else {
            ("", client_id)
        };
        // Kafka's quotaLimit for those tags.
        let bound = match (tag_user.is_empty(), tag_client.is_empty()) {
            (false, false) => get(u, c).or_else(|| get(u, dc)).or_else(|| get(du, c)).or_else(|| get(du, dc)),
            (false, true) => get(u, None).or_else(|| get(du, None)),
            (true, false) => get(None, c).or_else(|| get(None, dc)),
            (true, true) => None,
        }?;
        Some(((kind, tag_user.to_string(), tag_client.to_string()), bound))
    }

    /// Records `value` for `kind` against the quota that applies to (`user`, `client_id`) at
    /// `now` (ms); returns how long the client must wait, in ms (0 when within its quota or
    /// when no quota applies).
    pub fn record(&self, kind: Kind, user: &str, client_id: &str, value: f64, now: i64) -> i32 {
        let Some((key, bound)) = self.resolve(kind, user, client_id) else {
            return 0;
        };
        let mut sensors = self.sensors.lock();
        if sensors.len() >= MAX_SENSORS && !sensors.contains_key(&key) {
            let idle = SAMPLE_MS * SAMPLES as i64;
            sensors.retain(|_, r| now - r.last_used_ms < idle);
            if sensors.len() >= MAX_SENSORS {
                sensors.clear();
            }
        }
        let rate = sensors.entry(key).or_insert_with(|| Rate::new(now));
        rate.record(value, now);
        let (measured, window) = rate.measure(now);
        if measured <= bound {
            return 0;
        }
        let wait = ((measured - bound) / bound * window as f64).round();
        let wait = if kind == Kind::Request { wait.min(SAMPLE_MS as f64) } else { wait };
        wait.clamp(0.0, i32::MAX as f64) as i32
    }

    /// Takes back a recording whose response was not sent (a throttled fetch answers empty).
    pub fn unrecord(&self, kind: Kind, user: &str, client_id: &str, value: f64, now: i64) {
        if let Some((key, _)) = self.resolve(kind, user, client_id) {
            if let Some(rate) = self.sensors.lock().get_mut(&key) {
                rate.record(-value, now);
            }
        }
    }

    /// The most a client may take in one window for `kind` (Kafka caps a fetch's `max_bytes`
    /// with it), or `None` without a quota.
    pub fn max_in_window(&self, kind: Kind, user: &str, client_id: &str) -> Option<f64> {
        self.resolve(kind, user, client_id)
            .map(|(_, bound)| bound * (SAMPLES as f64 - 1.0) * (SAMPLE_MS as f64 / 1000.0))
    }
}

#[cfg(test)]
mod tests;
