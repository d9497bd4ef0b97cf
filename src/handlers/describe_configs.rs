//! DescribeConfigs: a topic's configs (its overrides and the defaults behind them) and the
//! broker's own settings under their Kafka names.

use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::common::str_bytes;
use super::{Ctx, Reply};
use crate::handlers::error_codes::ResponseError;
use crate::metadata::topic_config;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// Kafka's ConfigSource values.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

struct Entry {
    name: String,
    value: String,
    source: i8,
    read_only: bool,
    type_code: i8,
}

pub async fn handle(ctx: &Ctx, req: DescribeConfigsRequest) -> Reply {
    let v = ctx.version;
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let mut out = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let entries = match r.resource_type {
                RESOURCE_TOPIC => match ctx.broker.topics.get(r.resource_name.as_str()) {
                    Some(t) => topic_entries(ctx, &t.configs),
                    None => {
                        return out
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(Some(str_bytes("Topic does not exist")));
                    }
                },
                RESOURCE_BROKER
                    if r.resource_name.is_empty()
                        || r.resource_name.as_str() == ctx.broker.node.node_id.to_string() =>
                {
                    broker_entries(ctx)
                }
                _ => {
                    return out
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(str_bytes("gregor describes topic and broker configs only")));
                }
            };
            let wanted =
                r.configuration_keys.map(|k| k.into_iter().map(|k| k.as_str().to_string()).collect::<Vec<_>>());
            out.configs = entries
                .into_iter()
                .filter(|e| wanted.as_ref().is_none_or(|w| w.contains(&e.name)))
                .map(|e| {
                    // No documentation text is kept: null, as Kafka sends when it is not asked for.
                    let mut c = DescribeConfigsResourceResult::default()
                        .with_name(str_bytes(&e.name))
                        .with_value(Some(str_bytes(&e.value)))
                        .with_read_only(e.read_only)
                        .with_config_source(e.source)
                        .with_documentation(None);
                    if v >= 3 {
                        c.config_type = e.type_code;
                    }
                    c
                })
                .collect();
            out
        })
        .collect();
    ctx.reply(&DescribeConfigsResponse::default().with_results(results))
}

fn topic_entries(ctx: &Ctx, overrides: &std::collections::BTreeMap<String, String>) -> Vec<Entry> {
    topic_config::names()
        .filter_map(|k| {
            let (value, source) = match overrides.get(k) {
                Some(v) => (v.clone(), SOURCE_TOPIC),
                None => (topic_config::default_value(k, &ctx.broker.config.log)?, SOURCE_DEFAULT),
            };
            Some(Entry { name: k.to_string(), value, source, read_only: false, type_code: topic_config::type_code(k) })
        })
        .collect()
}

fn broker_entries(ctx: &Ctx) -> Vec<Entry> {
    let c = &ctx.broker.config;
    let node = &ctx.broker.node;
    let opt = |v: Option<u64>| v.map_or(i64::MAX.to_string(), |v| v.to_string());
    let list: Vec<(&str, String, i8)> = vec![
        ("node.id", node.node_id.to_string(), 3),
        ("broker.id", node.node_id.to_string(), 3),
        ("advertised.listeners", format!("PLAINTEXT://{}:{}", node.host, node.port), 2),
        ("log.dirs", c.log.dir.display().to_string(), 2),
        ("num.partitions", c.topics.num_partitions.to_string(), 3),
        ("default.replication.factor", "1".into(), 3),
        ("min.insync.replicas", "1".into(), 3),
        ("auto.create.topics.enable", c.topics.auto_create.to_string(), 1),
        ("message.max.bytes", c.log.max_message_bytes.to_string(), 3),
        ("log.segment.bytes", c.log.segment_bytes.to_string(), 3),
        ("log.roll.ms", c.log.segment_ms.to_string(), 5),
        ("log.retention.ms", c.log.retention_ms.to_string(), 5),
        ("log.retention.bytes", c.log.retention_bytes.to_string(), 5),
        ("log.flush.interval.messages", opt(c.log.flush_interval_messages), 5),
        ("log.flush.interval.ms", opt(c.log.flush_interval_ms), 5),
        ("socket.request.max.bytes", c.server.max_request_bytes.to_string(), 3),
        ("group.initial.rebalance.delay.ms", c.group.initial_rebalance_delay_ms.to_string(), 3),
        ("group.min.session.timeout.ms", c.group.min_session_timeout_ms.to_string(), 3),
        ("group.max.session.timeout.ms", c.group.max_session_timeout_ms.to_string(), 3),
        ("offsets.retention.minutes", c.group.offsets_retention_minutes.to_string(), 3),
        ("offset.metadata.max.bytes", c.group.offset_metadata_max_bytes.to_string(), 3),
        ("transaction.max.timeout.ms", c.transaction.max_timeout_ms.to_string(), 3),
        ("transactional.id.expiration.ms", c.transaction.id_expiration_ms.to_string(), 3),
        (
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            c.transaction.abort_check_interval_ms.to_string(),
            3,
        ),
        ("producer.id.expiration.ms", c.transaction.producer_id_expiration_ms.to_string(), 3),
        ("log.cleaner.enable", c.log.cleaner_enable.to_string(), 1),
        ("log.cleaner.backoff.ms", c.log.cleaner_backoff_ms.to_string(), 5),
        ("log.cleaner.min.cleanable.ratio", c.log.cleaner_min_cleanable_ratio.to_string(), 6),
        ("log.cleaner.delete.retention.ms", c.log.cleaner_delete_retention_ms.to_string(), 5),
        ("log.cleaner.min.compaction.lag.ms", c.log.cleaner_min_compaction_lag_ms.to_string(), 5),
        ("log.cleaner.max.compaction.lag.ms", c.log.cleaner_max_compaction_lag_ms.to_string(), 5),
        ("log.cleaner.dedupe.buffer.size", c.log.cleaner_dedupe_buffer_size.to_string(), 5),
        ("log.cleaner.io.buffer.load.factor", c.log.cleaner_io_buffer_load_factor.to_string(), 6),
        ("log.cleaner.io.max.bytes.per.second", format!("{:?}", c.log.cleaner_io_max_bytes_per_second), 6),
    ];
    list.into_iter()
        .map(|(name, value, type_code)| Entry {
            name: name.to_string(),
            value,
            source: SOURCE_STATIC_BROKER,
            read_only: true,
            type_code,
        })
        .collect()
}
