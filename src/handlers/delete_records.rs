//! DeleteRecords: moves partitions' log start offsets forward (checkpointed, so it survives a
//! crash); whole segments below the new start are deleted. As Kafka 4.1's
//! `ReplicaManager.deleteRecordsOnLocalLog` and `Partition.deleteRecordsOnLeader`: offset -1
//! means the high watermark; an offset below 0 or past the high watermark is
//! OFFSET_OUT_OF_RANGE; internal topics are refused (INVALID_TOPIC_EXCEPTION) and so are topics
//! whose `cleanup.policy` lacks `delete` (POLICY_VIOLATION). The answer carries the new low
//! watermark (log start offset) of each partition. In shared mode only a partition's leader
//! takes it, and answers once the coordination store holds the new start.

use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use std::collections::HashMap;
use std::sync::Arc;

use super::common::{leadership_error, reply_off_runtime};
use super::{Ctx, Reply};
use crate::auth::acl::op;
use crate::broker::Broker;
use crate::cluster::shared::SharedError;
use crate::cluster::shipping::Shipper;
use crate::cluster::store::StoreError;
use crate::handlers::error_codes::{ResponseError, ToKafkaCode};
use crate::log::PartitionLog;

/// The request's "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

pub async fn handle(ctx: &Ctx, req: DeleteRecordsRequest) -> Reply {
    // Moving a log start writes and fsyncs its checkpoint and deletes segment files.
    let broker = ctx.broker.clone();
    let denied = ctx.denied_topics(op::DELETE, req.topics.iter().map(|t| t.name.0.as_str()));
    reply_off_runtime(ctx, "DeleteRecords", move || answer(&broker, req, &denied)).await
}

fn answer(broker: &Broker, req: DeleteRecordsRequest, denied: &[bool]) -> DeleteRecordsResponse {
    let shared = broker.cluster.shared().is_some();
    let mut moved = Vec::new();
    let mut topics: Vec<DeleteRecordsTopicResult> = req
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
                    // Shared mode: only the leader's copy is the partition's log.
                    if shared {
                        if let Some(e) = leadership_error(broker, name, p.partition_index, -1) {
                            return out.with_error_code(e.code());
                        }
                    }
                    let target = if p.offset == HIGH_WATERMARK { log.offsets().high_watermark } else { p.offset };
                    match log.advance_log_start(target) {
                        Ok(low) => {
                            moved.push(log);
                            out.with_low_watermark(low)
                        }
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
    if let Some(shipper) = broker.shipper.as_ref().filter(|_| !moved.is_empty()) {
        store_log_starts(shipper, &moved, &mut topics);
    }
    DeleteRecordsResponse::default().with_topics(topics)
}

/// Shared mode: the records are gone once the store holds the new log starts (a later leader
/// rebuilds from there), so the answer waits for it. A partition whose start the store did
/// not take is answered NOT_LEADER_OR_FOLLOWER (it moved meanwhile) or KAFKA_STORAGE_ERROR
/// (the store cannot be reached); both are retriable, and the leader's next tick tells the
/// store again while it leads.
fn store_log_starts(shipper: &Shipper, moved: &[Arc<PartitionLog>], topics: &mut [DeleteRecordsTopicResult]) {
    let pushed = tokio::runtime::Handle::current().block_on(shipper.push_log_starts(moved));
    let failed: HashMap<(&str, i32), ResponseError> = moved
        .iter()
        .filter(|log| !shipper.holds_log_start(log))
        .map(|log| {
            let e = match &pushed {
                Ok(_) | Err(SharedError::Store(StoreError::Fenced(_))) => ResponseError::NotLeaderOrFollower,
                Err(_) => ResponseError::KafkaStorageError,
            };
            ((&*log.tp.topic, log.tp.partition), e)
        })
        .collect();
    if let Err(e) = &pushed {
        crate::warn_limited!("delete records", error = %e, "DeleteRecords: the coordination store did not take the new log starts");
    }
    for t in topics.iter_mut() {
        for p in &mut t.partitions {
            if let Some(e) = failed.get(&(t.name.0.as_str(), p.partition_index)) {
                p.error_code = e.code();
                p.low_watermark = -1;
            }
        }
    }
}
