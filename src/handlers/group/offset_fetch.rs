//! OffsetFetch: one group (v1–7) or several (v8+); partitions without a commit get -1. With
//! `require_stable` (v7+), a partition whose offset an open transaction is changing gets
//! UNSTABLE_OFFSET_COMMIT, and the client asks again after the transaction ends.

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse};

use crate::auth::acl::{op, resource};
use crate::group::CommittedOffset;
use crate::handlers::common::{str_bytes, topic_name};
use crate::handlers::error_codes::ToKafkaCode;
use crate::handlers::{Ctx, Reply};

type Fetched = Vec<(String, Vec<(i32, Option<CommittedOffset>)>)>;

/// Groups the flat (topic, partition, offset) list by topic, keeping first-seen order.
fn by_topic(flat: Vec<(String, i32, Option<CommittedOffset>)>) -> Fetched {
    let mut out: Fetched = Vec::new();
    for (t, p, o) in flat {
        match out.iter_mut().find(|(name, _)| *name == t) {
            Some((_, parts)) => parts.push((p, o)),
            None => out.push((t, vec![(p, o)])),
        }
    }
    out
}

const UNSTABLE: i16 = kafka_protocol::error::ResponseError::UnstableOffsetCommit.code();
const GROUP_DENIED: i16 = kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code();
const TOPIC_DENIED: i16 = kafka_protocol::error::ResponseError::TopicAuthorizationFailed.code();

/// Kafka 4.1: named topics the principal may not DESCRIBE are answered TOPIC_AUTHORIZATION_FAILED
/// (split off here, second); with every topic of the group asked for, they are left out (the
/// filter on what `fetch_offsets` found, `keep`).
type Named = Option<Vec<(String, Vec<i32>)>>;
fn split_denied(ctx: &Ctx, wanted: Named) -> (Named, Vec<(String, Vec<i32>)>) {
    match wanted {
        None => (None, Vec::new()),
        Some(w) => {
            let (ok, denied) = w.into_iter().partition(|(t, _)| ctx.allowed(op::DESCRIBE, resource::TOPIC, t));
            (Some(ok), denied)
        }
    }
}
fn keep(ctx: &Ctx, mut fetched: Fetched) -> Fetched {
    fetched.retain(|(t, _)| ctx.allowed(op::DESCRIBE, resource::TOPIC, t));
    fetched
}

pub async fn handle(ctx: &Ctx, req: OffsetFetchRequest) -> Reply {
    let groups = &ctx.broker.groups;
    let v = ctx.version;
    let unstable = |group: &str, topic: &str, partition: i32| {
        v >= 7 && req.require_stable && groups.has_pending(group, topic, partition)
    };
    if v >= 8 {
        let results = req
            .groups
            .into_iter()
            .map(|g| {
                if !ctx.allowed(op::DESCRIBE, resource::GROUP, g.group_id.0.as_str()) {
                    return OffsetFetchResponseGroup::default().with_group_id(g.group_id).with_error_code(GROUP_DENIED);
                }
                if !ctx.coordinates_groups() {
                    return OffsetFetchResponseGroup::default()
                        .with_group_id(g.group_id)
                        .with_error_code(super::NOT_COORDINATOR);
                }
                // v9+: a member of a consumer (KIP-848) group fetches with its member epoch,
                // which must be current (UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH), as Kafka 4.1.
                if v >= 9 {
                    let member = g.member_id.as_ref().map_or("", |m| m.as_str());
                    if let Err(e) = groups.check_fetch(g.group_id.0.as_str(), member, g.member_epoch) {
                        return OffsetFetchResponseGroup::default()
                            .with_group_id(g.group_id)
                            .with_error_code(e.kafka_code().code());
                    }
                }
                let wanted: Option<Vec<(String, Vec<i32>)>> = g
                    .topics
                    .map(|ts| ts.into_iter().map(|t| (t.name.0.as_str().to_string(), t.partition_indexes)).collect());
                let (wanted, denied) = split_denied(ctx, wanted);
                let group_id = g.group_id.0.as_str();
                let fetched = keep(ctx, by_topic(groups.fetch_offsets(group_id, wanted.as_deref())));
                let mut topics: Vec<_> = fetched
                    .into_iter()
                    .map(|(t, parts)| {
                        OffsetFetchResponseTopics::default().with_name(topic_name(&t)).with_partitions(
                            parts
                                .into_iter()
                                .map(|(p, o)| {
                                    if unstable(group_id, &t, p) {
                                        return OffsetFetchResponsePartitions::default()
                                            .with_partition_index(p)
                                            .with_committed_offset(-1)
                                            .with_committed_leader_epoch(-1)
                                            .with_error_code(UNSTABLE);
                                    }
                                    let (offset, epoch, meta) = fields(o);
                                    OffsetFetchResponsePartitions::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(offset)
                                        .with_committed_leader_epoch(epoch)
                                        .with_metadata(Some(str_bytes(&meta)))
                                })
                                .collect(),
                        )
                    })
                    .collect();
                topics.extend(denied.into_iter().map(|(t, parts)| {
                    OffsetFetchResponseTopics::default().with_name(topic_name(&t)).with_partitions(
                        parts
                            .into_iter()
                            .map(|p| {
                                OffsetFetchResponsePartitions::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(-1)
                                    .with_committed_leader_epoch(-1)
                                    .with_metadata(Some(str_bytes("")))
                                    .with_error_code(TOPIC_DENIED)
                            })
                            .collect(),
                    )
                }));
                OffsetFetchResponseGroup::default().with_group_id(g.group_id).with_topics(topics)
            })
            .collect();
        return ctx.reply(&OffsetFetchResponse::default().with_groups(results));
    }
    let wanted: Option<Vec<(String, Vec<i32>)>> =
        req.topics.map(|ts| ts.into_iter().map(|t| (t.name.0.as_str().to_string(), t.partition_indexes)).collect());
    let group_refused = if !ctx.allowed(op::DESCRIBE, resource::GROUP, req.group_id.0.as_str()) {
        Some(GROUP_DENIED)
    } else {
        (!ctx.coordinates_groups()).then_some(super::NOT_COORDINATOR)
    };
    if let Some(code) = group_refused.filter(|_| v >= 2) {
        return ctx.reply(&OffsetFetchResponse::default().with_error_code(code));
    }
    let (wanted, mut denied) = split_denied(ctx, wanted);
    let (wanted, code) = match (wanted, group_refused) {
        // v1 has no group error: every partition asked for carries it.
        (Some(w), Some(code)) => {
            denied = w;
            (Some(Vec::new()), code)
        }
        (None, Some(code)) => (Some(Vec::new()), code),
        (w, None) => (w, TOPIC_DENIED),
    };
    let fetched = keep(ctx, by_topic(groups.fetch_offsets(req.group_id.0.as_str(), wanted.as_deref())));
    let mut topics: Vec<_> = fetched
        .into_iter()
        .map(|(t, parts)| {
            OffsetFetchResponseTopic::default().with_name(topic_name(&t)).with_partitions(
                parts
                    .into_iter()
                    .map(|(p, o)| {
                        if unstable(req.group_id.0.as_str(), &t, p) {
                            return OffsetFetchResponsePartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(-1)
                                .with_committed_leader_epoch(-1)
                                .with_error_code(UNSTABLE);
                        }
                        let (offset, epoch, meta) = fields(o);
                        let mut out = OffsetFetchResponsePartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(offset)
                            .with_metadata(Some(str_bytes(&meta)));
                        if v >= 5 {
                            out.committed_leader_epoch = epoch;
                        }
                        out
                    })
                    .collect(),
            )
        })
        .collect();
    topics.extend(denied.into_iter().map(|(t, parts)| {
        OffsetFetchResponseTopic::default().with_name(topic_name(&t)).with_partitions(
            parts
                .into_iter()
                .map(|p| {
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(p)
                        .with_committed_offset(-1)
                        .with_metadata(Some(str_bytes("")))
                        .with_error_code(code)
                })
                .collect(),
        )
    }));
    ctx.reply(&OffsetFetchResponse::default().with_topics(topics))
}

fn fields(o: Option<CommittedOffset>) -> (i64, i32, String) {
    match o {
        Some(o) => (o.offset, o.leader_epoch, o.metadata),
        None => (-1, -1, String::new()),
    }
}
