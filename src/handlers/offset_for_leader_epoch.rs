//! OffsetForLeaderEpoch: the end offset of a leader epoch, which consumers use to detect a
//! log truncated under them after a leader change (KIP-320). Answered from the partition's
//! leader epoch table (`leader-epoch-checkpoint`) by Kafka 4.1's rules: the latest epoch ends
//! at the log end offset, an earlier one where the next starts, an unknown later one is
//! UNDEFINED (epoch and offset -1, no error). The client's `current_leader_epoch` is checked
//! first, as for Fetch.

use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::common::leadership_error;
use super::{Ctx, Reply};
use crate::auth::acl::{op, resource};
use crate::handlers::error_codes::ResponseError;

pub async fn handle(ctx: &Ctx, req: OffsetForLeaderEpochRequest) -> Reply {
    // Kafka 4.1: CLUSTER_ACTION on the cluster (brokers) allows every topic, else DESCRIBE each.
    let every = ctx.cluster_allows(op::CLUSTER_ACTION);
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let denied = !every && !ctx.allowed(op::DESCRIBE, resource::TOPIC, t.topic.0.as_str());
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let out =
                        EpochEndOffset::default().with_partition(p.partition).with_leader_epoch(-1).with_end_offset(-1);
                    if denied {
                        return out.with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    let Some(log) = ctx
                        .broker
                        .topics
                        .get(t.topic.0.as_str())
                        .and_then(|m| ctx.broker.partition(&m.name, p.partition))
                    else {
                        return out.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    if let Some(e) =
                        leadership_error(&ctx.broker, t.topic.0.as_str(), p.partition, p.current_leader_epoch)
                    {
                        return out.with_error_code(e.code());
                    }
                    let (epoch, end_offset) = log.end_offset_for_epoch(p.leader_epoch);
                    out.with_leader_epoch(epoch).with_end_offset(end_offset)
                })
                .collect();
            OffsetForLeaderTopicResult::default().with_topic(t.topic).with_partitions(partitions)
        })
        .collect();
    ctx.reply(&OffsetForLeaderEpochResponse::default().with_topics(topics))
}
