//! Prometheus metrics (`/metrics`, served by `server::http`), with the `prometheus-client`
//! crate. Two kinds:
//!
//! - counted as things happen, cheaply: requests, errors and latency per API, connections,
//!   bytes in and out per topic, fsync latency (the log reports it through
//!   [`crate::log::set_fsync_observer`], as it may not depend on this module);
//! - read from the broker's state at each scrape, with work bounded by what the broker holds:
//!   partitions, log size per partition, groups and their members, consumer lag.
//!
//! A request "error" is one the broker could not answer normally: a frame it could not decode,
//! an API version it does not serve, or a request after which it closed the connection.
//! Errors reported inside a normal response (per-partition error codes) are not counted here.

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::broker::Broker;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    pub api: &'static str,
    pub version: i16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiName {
    api: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabel {
    topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    topic: String,
    partition: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabel {
    group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LagLabels {
    group: String,
    topic: String,
    partition: i32,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 50 µs to about 13 s.
    Histogram::new(exponential_buckets(0.00005, 2.0, 19))
}

pub struct Metrics {
    registry: Registry,
    requests: Family<ApiLabels, Counter>,
    errors: Family<ApiLabels, Counter>,
    latency: HistogramFamily<ApiName>,
    connections: Gauge,
    accepted: Counter,
    throttled: Counter,
    throttle_ms: Counter,
    bytes_in: Family<TopicLabel, Counter>,
    bytes_out: Family<TopicLabel, Counter>,
    fsync: Histogram,
    shared_commits: Family<OutcomeLabel, Counter>,
    shared_commit_duration: Histogram,
    shared_object_bytes: Counter,
    shared_batches: Counter,
    stored_read_batches: Family<SourceLabel, Counter>,
    stored_read_gets: Counter,
    stored_read_bytes: Counter,
    read_cache_bytes: Gauge,
    partitions: Gauge,
    log_size: Family<PartitionLabels, Gauge>,
    under_min_isr: Gauge,
    groups: Gauge,
    members: Family<GroupLabel, Gauge>,
    lag: Family<LagLabels, Gauge>,
    /// One scrape at a time: the state-read families are cleared and filled again.
    scrape: Mutex<()>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn get() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("gregor");
        let m = Metrics {
            requests: Family::default(),
            errors: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            connections: Gauge::default(),
            accepted: Counter::default(),
            throttled: Counter::default(),
            throttle_ms: Counter::default(),
            bytes_in: Family::default(),
            bytes_out: Family::default(),
            fsync: latency_histogram(),
            shared_commits: Family::default(),
            shared_commit_duration: latency_histogram(),
            shared_object_bytes: Counter::default(),
            shared_batches: Counter::default(),
            stored_read_batches: Family::default(),
            stored_read_gets: Counter::default(),
            stored_read_bytes: Counter::default(),
            read_cache_bytes: Gauge::default(),
            partitions: Gauge::default(),
            log_size: Family::default(),
            under_min_isr: Gauge::default(),
            groups: Gauge::default(),
            members: Family::default(),
            lag: Family::default(),
            scrape: Mutex::new(()),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register("requests", "Kafka requests received, per API and version", m.requests.clone());
        r.register(
            "request_errors",
            "Requests not answered normally (undecodable, unsupported version, connection closed), per API and version",
            m.errors.clone(),
        );
        r.register_with_unit(
            "request_duration",
            "Time from reading a request to its response being ready, per API",
            prometheus_client::registry::Unit::Seconds,
            m.latency.clone(),
        );
        r.register("connections", "Open client connections", m.connections.clone());
        r.register("connections_accepted", "Client connections accepted", m.accepted.clone());
        r.register("throttled_requests", "Requests that took a client past one of its quotas", m.throttled.clone());
        r.register(
            "throttle_time_ms",
            "Milliseconds clients were made to wait for their quotas",
            m.throttle_ms.clone(),
        );
        r.register_with_unit(
            "produced",
            "Record bytes appended by Produce, per topic",
            prometheus_client::registry::Unit::Bytes,
            m.bytes_in.clone(),
        );
        r.register_with_unit(
            "fetched",
            "Record bytes sent by Fetch, per topic",
            prometheus_client::registry::Unit::Bytes,
            m.bytes_out.clone(),
        );
        r.register_with_unit(
            "fsync_duration",
            "Time each partition fsync took",
            prometheus_client::registry::Unit::Seconds,
            m.fsync.clone(),
        );
        r.register(
            "shared_commits",
            "Shared mode: commits of an object and its batch rows, per outcome (committed, failed: refused or not known to have landed)",
            m.shared_commits.clone(),
        );
        r.register_with_unit(
            "shared_commit_duration",
            "Shared mode: time each successful commit took, from building its object to PostgreSQL's answer",
            prometheus_client::registry::Unit::Seconds,
            m.shared_commit_duration.clone(),
        );
        r.register_with_unit(
            "shared_object",
            "Shared mode: bytes of the objects committed",
            prometheus_client::registry::Unit::Bytes,
            m.shared_object_bytes.clone(),
        );
        r.register("shared_committed_batches", "Shared mode: record batches committed", m.shared_batches.clone());
        r.register(
            "shared_stored_read_batches",
            "Shared mode: batches read for offsets before a leader's local segments, per source (cache, objects)",
            m.stored_read_batches.clone(),
        );
        r.register(
            "shared_stored_read_gets",
            "Shared mode: ranged GETs of objects for those reads",
            m.stored_read_gets.clone(),
        );
        r.register_with_unit(
            "shared_stored_read",
            "Shared mode: bytes those GETs read",
            prometheus_client::registry::Unit::Bytes,
            m.stored_read_bytes.clone(),
        );
        r.register_with_unit(
            "shared_read_cache",
            "Shared mode: bytes of batches the read cache holds (at most cluster.read_cache_bytes)",
            prometheus_client::registry::Unit::Bytes,
            m.read_cache_bytes.clone(),
        );
        r.register("partitions", "Partitions this broker leads", m.partitions.clone());
        r.register_with_unit(
            "log_size",
            "Bytes of every segment of a partition",
            prometheus_client::registry::Unit::Bytes,
            m.log_size.clone(),
        );
        r.register(
            "under_min_isr_partitions",
            "Partitions with fewer in-sync replicas than min.insync.replicas (always 0 on one node)",
            m.under_min_isr.clone(),
        );
        r.register("consumer_groups", "Consumer groups the coordinator knows", m.groups.clone());
        r.register("consumer_group_members", "Members of each consumer group", m.members.clone());
        r.register(
            "consumer_lag",
            "High watermark minus the group's committed offset, per group and partition",
            m.lag.clone(),
        );
        let fsync = m.fsync.clone();
        crate::log::set_fsync_observer(Box::new(move |secs| fsync.observe(secs)));
        let (commits, duration) = (m.shared_commits.clone(), m.shared_commit_duration.clone());
        let (bytes, batches) = (m.shared_object_bytes.clone(), m.shared_batches.clone());
        crate::cluster::shipping::set_commit_observer(Box::new(move |c| {
            let outcome = if c.committed { "committed" } else { "failed" };
            commits.get_or_create(&OutcomeLabel { outcome }).inc();
            if c.committed {
                duration.observe(c.seconds);
                bytes.inc_by(c.bytes);
                batches.inc_by(c.batches);
            }
        }));
        let (batches, gets) = (m.stored_read_batches.clone(), m.stored_read_gets.clone());
        let (bytes, cached) = (m.stored_read_bytes.clone(), m.read_cache_bytes.clone());
        crate::cluster::reading::set_read_observer(Box::new(move |r| {
            batches.get_or_create(&SourceLabel { source: "cache" }).inc_by(r.cached);
            batches.get_or_create(&SourceLabel { source: "objects" }).inc_by(r.fetched);
            gets.inc_by(r.gets);
            bytes.inc_by(r.bytes);
            cached.set(i64::try_from(r.cache_bytes).unwrap_or(i64::MAX));
        }));
        Metrics { registry, ..m }
    }

    /// A request of `api` (its name) in `version` was read; the returned guard records its
    /// latency when the response is ready.
    pub fn request(&self, api: &'static str, version: i16) -> RequestTimer {
        self.requests.get_or_create(&ApiLabels { api, version }).inc();
        RequestTimer { api, version, started: Instant::now() }
    }

    pub fn connection_opened(&self) {
        self.accepted.inc();
        self.connections.inc();
    }

    /// A request cost its client `ms` of waiting for its quota.
    pub fn throttled(&self, ms: i32) {
        self.throttled.inc();
        self.throttle_ms.inc_by(ms.max(0) as u64);
    }

    pub fn connection_closed(&self) {
        self.connections.dec();
    }

    pub fn bytes_in(&self, topic: &str, bytes: u64) {
        if bytes > 0 {
            self.bytes_in.get_or_create(&TopicLabel { topic: topic.to_string() }).inc_by(bytes);
        }
    }

    pub fn bytes_out(&self, topic: &str, bytes: u64) {
        if bytes > 0 {
            self.bytes_out.get_or_create(&TopicLabel { topic: topic.to_string() }).inc_by(bytes);
        }
    }

    /// The metrics in the Prometheus text format (OpenMetrics), with the state-read families
    /// filled from `broker` now.
    pub fn render(&self, broker: Option<&Arc<Broker>>) -> String {
        let _one = self.scrape.lock();
        if let Some(b) = broker {
            self.read_state(b);
        }
        let mut out = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    fn read_state(&self, broker: &Arc<Broker>) {
        self.log_size.clear();
        self.members.clear();
        self.lag.clear();
        let mut partitions = 0;
        let mut high_watermarks = std::collections::HashMap::new();
        for log in broker.logs.all() {
            partitions += 1;
            let labels = PartitionLabels { topic: log.tp.topic.to_string(), partition: log.tp.partition };
            self.log_size.get_or_create(&labels).set(log.size_bytes() as i64);
            high_watermarks.insert((log.tp.topic.to_string(), log.tp.partition), log.offsets().high_watermark);
        }
        self.partitions.set(partitions);
        self.under_min_isr.set(0);
        let groups = broker.groups.list();
        self.groups.set(groups.len() as i64);
        for (group, _, _) in groups {
            let members = broker.groups.describe(&group).map_or(0, |d| d.members.len());
            self.members.get_or_create(&GroupLabel { group: group.clone() }).set(members as i64);
            for (topic, partition, committed) in broker.groups.fetch_offsets(&group, None) {
                let (Some(c), Some(&hw)) = (committed, high_watermarks.get(&(topic.clone(), partition))) else {
                    continue;
                };
                let labels = LagLabels { group: group.clone(), topic, partition };
                self.lag.get_or_create(&labels).set((hw - c.offset).max(0));
            }
        }
    }
}

/// Records a request's latency (and whether it failed) when the response is ready.
pub struct RequestTimer {
    api: &'static str,
    version: i16,
    started: Instant,
}

impl RequestTimer {
    pub fn done(self, failed: bool) {
        let m = get();
        m.latency.get_or_create(&ApiName { api: self.api }).observe(self.started.elapsed().as_secs_f64());
        if failed {
            m.errors.get_or_create(&ApiLabels { api: self.api, version: self.version }).inc();
        }
    }
}

/// Counts a request that failed before it reached a handler (no latency).
pub fn request_failed(api: &'static str, version: i16) {
    let m = get();
    m.requests.get_or_create(&ApiLabels { api, version }).inc();
    m.errors.get_or_create(&ApiLabels { api, version }).inc();
}
