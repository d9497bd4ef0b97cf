//! DeleteRecords: moves partitions' log start offsets forward (checkpointed, so it survives a
//! crash); whole segments below the new start are deleted. As Kafka 4.1's
//! `ReplicaManager.deleteRecordsOnLocalLog` and `Partition.deleteRecordsOnLeader`: offset -1
//! means the high watermark; an offset below 0 or past the high watermark is
//! OFFSET_OUT_OF_RANGE; internal topics are refused (INVALID_TOPIC_EXCEPTION) and so are topics
//! whose `cleanup.policy` lacks `delete` (POLICY_VIOLATION). The answer carries the new low
//! watermark (log start offset) of each partition.

use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::common::reply_off_runtime;
use super::{Ctx, Reply};
use crate::auth::acl::op;
use crate::broker::Broker;
use crate::handlers::error_codes::{ResponseError, ToKafkaCode};

/// The request's "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

pub async fn handle(ctx: &Ctx, req: DeleteRecordsRequest) -> Reply {
    // Moving a log start writes and fsyncs its checkpoint and deletes segment files.
    let broker = ctx.broker.clone();
    let denied = ctx.denied_topics(op::DELETE, req.topics.iter().map(|t| t.name.0.as_str()));
    reply_off_runtime(ctx, "DeleteRecords", move || answer(&broker, req, &denied)).await
}

fn answer(broker: &Broker, req: DeleteRecordsRequest, denied: &[bool]) -> DeleteRecordsResponse {
    let topics = req
        .topics
        .into_iter()
        .zip(denied)
        .map(|(t, &denied)| {
            let name = t.name.0.as_str();
            let meta = broker.topics.get(name);
            let refused = if denied {
                Some(ResponseError::TopicAuthorizationFailed)
            } else if crate::broker::is_internal(name) {
                Some(ResponseError::InvalidTopicException)
            } else if meta.as_ref().is_some_and(|m| {
                m.configs.get("cleanup.policy").is_some_and(|p| !p.split(',').any(|x| x.trim() == "delete"))
            }) {
                Some(ResponseError::PolicyViolation)
            } else {
                None
            };
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let out =
                        DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index).with_low_watermark(-1);
                    if let Some(code) = refused {
                        return out.with_error_code(code.code());
                    }
                    let Some(log) = meta.as_ref().and_then(|m| broker.partition(&m.name, p.partition_index)) else {
                        return out.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let target = if p.offset == HIGH_WATERMARK { log.offsets().high_watermark } else { p.offset };
                    match log.advance_log_start(target) {
                        Ok(low) => out.with_low_watermark(low),
                        Err(e) => {
                            crate::warn_limited!("delete records", partition = %log.tp, offset = p.offset, error = %e, "DeleteRecords refused");
                            out.with_error_code(e.kafka_code().code())
                        }
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
