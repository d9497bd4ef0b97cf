//! OffsetForLeaderEpoch: the end offset of a leader epoch, which consumers use to detect a
//! log truncated under them after a leader change (KIP-320). A gregor partition has one leader
//! epoch, [`LEADER_EPOCH`], from its first offset on, so: that epoch ends at the log end
//! offset; an epoch before it or after it is unknown here (UNDEFINED: epoch and offset -1,
//! no error), as Kafka 4.1's `LeaderEpochFileCache.endOffsetFor` answers for epochs outside
//! its cache. The client's `current_leader_epoch` is checked first, as for Fetch.

use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::common::leader_epoch_error;
use super::{Ctx, Reply};
use crate::handlers::error_codes::ResponseError;
use crate::log::partition::LEADER_EPOCH;

pub async fn handle(ctx: &Ctx, req: OffsetForLeaderEpochRequest) -> Reply {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let out =
                        EpochEndOffset::default().with_partition(p.partition).with_leader_epoch(-1).with_end_offset(-1);
                    let Some(log) = ctx
                        .broker
                        .topics
                        .get(t.topic.0.as_str())
                        .and_then(|m| ctx.broker.partition(&m.name, p.partition))
                    else {
                        return out.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    if let Some(e) = leader_epoch_error(p.current_leader_epoch) {
                        return out.with_error_code(e.code());
                    }
                    if p.leader_epoch != LEADER_EPOCH {
                        return out;
                    }
                    out.with_leader_epoch(LEADER_EPOCH).with_end_offset(log.offsets().log_end_offset)
                })
                .collect();
            OffsetForLeaderTopicResult::default().with_topic(t.topic).with_partitions(partitions)
        })
        .collect();
    ctx.reply(&OffsetForLeaderEpochResponse::default().with_topics(topics))
}
