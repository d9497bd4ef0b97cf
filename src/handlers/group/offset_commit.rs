//! OffsetCommit: validated against the member and generation (or a simple commit with
//! generation -1), written to `__consumer_offsets`, answered once that write is durable.

use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use tracing::error;

use super::opt_str;
use crate::auth::acl::op;
use crate::clock::now_ms;
use crate::group::CommittedOffset;
use crate::handlers::authz::{merge_refusals, partition_refusals};
use crate::handlers::error_codes::{ResponseError, ToKafkaCode};
use crate::handlers::{encode, Ctx, Reply};

pub async fn handle(ctx: &Ctx, req: OffsetCommitRequest) -> Reply {
    let now = now_ms();
    // Kafka 4.1: READ on the group (else every partition fails GROUP_AUTHORIZATION_FAILED), and
    // READ on each topic (else its partitions fail TOPIC_AUTHORIZATION_FAILED, uncommitted).
    let whole = if !super::may_read_group(ctx, req.group_id.0.as_str()) {
        Some(super::GROUP_DENIED)
    } else {
        (!ctx.coordinates_groups()).then_some(super::NOT_COORDINATOR)
    };
    let topic_denied = ctx.denied_topics(op::READ, req.topics.iter().map(|t| t.name.0.as_str()));
    let refusals = partition_refusals(whole, &topic_denied, req.topics.iter().map(|t| t.partitions.len()));
    let offsets: Vec<(String, i32, CommittedOffset)> = req
        .topics
        .iter()
        .zip(&topic_denied)
        .filter(|(_, &denied)| whole.is_none() && !denied)
        .map(|(t, _)| t)
        .flat_map(|t| {
            t.partitions.iter().map(move |p| {
                (
                    t.name.0.as_str().to_string(),
                    p.partition_index,
                    CommittedOffset {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: opt_str(&p.committed_metadata).unwrap_or_default(),
                        commit_timestamp: now,
                    },
                )
            })
        })
        .collect();
    let (codes, durable_at) = if offsets.is_empty() && refusals.iter().any(Option::is_some) {
        (Vec::new(), None)
    } else {
        match commit(ctx, &req, offsets).await {
            Some(done) => done,
            None => return Reply::Close("offset commit could not be completed".into()),
        }
    };
    let mut codes = merge_refusals(&refusals, codes);
    let shape: Vec<(kafka_protocol::messages::TopicName, Vec<i32>)> =
        req.topics.into_iter().map(|t| (t.name, t.partitions.iter().map(|p| p.partition_index).collect())).collect();
    let build = move |codes: &[i16]| {
        let mut it = codes.iter();
        let topics = shape
            .iter()
            .map(|(name, parts)| {
                OffsetCommitResponseTopic::default().with_name(name.clone()).with_partitions(
                    parts
                        .iter()
                        .map(|p| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(*p)
                                .with_error_code(*it.next().unwrap_or(&0))
                        })
                        .collect(),
                )
            })
            .collect();
        OffsetCommitResponse::default().with_topics(topics)
    };
    let Some((log, end)) = durable_at else {
        return ctx.reply(&build(&codes));
    };
    let (correlation_id, version) = (ctx.correlation_id, ctx.version);
    Reply::Deferred(Box::pin(async move {
        if let Err(e) = log.flush_to(end).await {
            error!(error = %e, "fsync of committed offsets failed");
            for c in codes.iter_mut().filter(|c| **c == 0) {
                *c = ResponseError::KafkaStorageError.code();
            }
        }
        encode(correlation_id, version, &build(&codes))
    }))
}

/// Per committed partition, in order, its answer's code; and where the commit must be durable
/// before the answer. `None`: the commit could not complete.
type Durable = Option<(std::sync::Arc<crate::log::PartitionLog>, i64)>;
async fn commit(
    ctx: &Ctx,
    req: &OffsetCommitRequest,
    offsets: Vec<(String, i32, CommittedOffset)>,
) -> Option<(Vec<i16>, Durable)> {
    let broker = &ctx.broker;
    let n = offsets.len();
    // The commit appends to `__consumer_offsets` (a write, at times a roll): off the runtime.
    let (b, group, member) = (broker.clone(), req.group_id.0.to_string(), req.member_id.to_string());
    let (instance, generation) = (opt_str(&req.group_instance_id), req.generation_id_or_member_epoch);
    let outcome = tokio::task::spawn_blocking(move || {
        b.groups.commit(&group, &member, instance.as_deref(), generation, offsets, |topic, partition| {
            b.partition(topic, partition).is_some()
        })
    })
    .await;
    let outcome = outcome.ok()?;
    Some(match outcome {
        Ok(o) => {
            (o.results.iter().map(|r| r.as_ref().err().map_or(0, |e| e.kafka_code().code())).collect(), o.durable_at)
        }
        Err(e) => (vec![e.kafka_code().code(); n], None),
    })
}
