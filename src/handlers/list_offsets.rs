//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4: where the
//! local segments begin, past the log start when shared mode let go of the oldest ones), latest
//! tiered (-5: in shared mode the last committed offset, since the object store holds every
//! committed batch; on a single node "none", as Kafka answers without remote storage), and
//! lookup by timestamp.

use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::common::leadership_error;
use super::{Ctx, Reply};
use crate::auth::acl::op;
use crate::broker::Broker;
use crate::handlers::error_codes::{ResponseError, ToKafkaCode};
use crate::log::partition::LEADER_EPOCH;
use crate::log::ReadError;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

pub async fn handle(ctx: &Ctx, req: ListOffsetsRequest) -> Reply {
    // Lookups by timestamp read segment files: off the runtime.
    let (broker, version) = (ctx.broker.clone(), ctx.version);
    let denied = ctx.denied_topics(op::DESCRIBE, req.topics.iter().map(|t| t.name.0.as_str()));
    super::common::reply_off_runtime(ctx, "ListOffsets", move || answer(&broker, version, req, &denied)).await
}

fn answer(broker: &Broker, version: i16, req: ListOffsetsRequest, denied: &[bool]) -> ListOffsetsResponse {
    let topics = req
        .topics
        .into_iter()
        .zip(denied)
        .map(|(t, &denied)| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut out = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1);
                    if denied {
                        return out.with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    let Some(log) = broker.partition(t.name.0.as_str(), p.partition_index) else {
                        return out.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    if let Some(e) =
                        leadership_error(broker, t.name.0.as_str(), p.partition_index, p.current_leader_epoch)
                    {
                        return out.with_error_code(e.code());
                    }
                    let offsets = log.offsets();
                    let found: Result<Option<(i64, i64)>, ReadError> = match p.timestamp {
                        // read_committed (isolation level 1, v2+) sees up to the last stable offset.
                        LATEST if req.isolation_level == 1 => Ok(Some((offsets.last_stable_offset, -1))),
                        LATEST => Ok(Some((offsets.high_watermark, -1))),
                        EARLIEST => Ok(Some((offsets.log_start_offset, -1))),
                        // Shared mode: where the local segments begin (`local.retention.bytes`).
                        EARLIEST_LOCAL => Ok(Some((log.local_start_offset(), -1))),
                        // KIP-1005: the highest offset the remote copy holds (-1: none yet).
                        LATEST_TIERED if log.has_committed_copy() && offsets.high_watermark > 0 => {
                            Ok(Some((offsets.high_watermark - 1, -1)))
                        }
                        LATEST_TIERED => Ok(None),
                        MAX_TIMESTAMP => log.max_timestamp(),
                        ts if ts >= 0 => log.offset_for_timestamp(ts),
                        _ => return out.with_error_code(ResponseError::InvalidRequest.code()),
                    };
                    match found {
                        Ok(Some((offset, ts))) => {
                            out.offset = offset;
                            out.timestamp = ts;
                            if version >= 4 {
                                // The epoch that wrote the offset (for the end: the current one).
                                out.leader_epoch = log.epoch_for_offset(offset).unwrap_or(LEADER_EPOCH);
                            }
                            out
                        }
                        Ok(None) => out,
                        Err(e) => out.with_error_code(e.kafka_code().code()),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
