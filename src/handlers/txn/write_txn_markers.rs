//! WriteTxnMarkers: a transaction coordinator on another broker ends a transaction in the
//! partitions this broker leads (shared mode: `handlers::peers` sends it). As Kafka 4.1's
//! `handleWriteTxnMarkersRequest`: CLUSTER_ACTION or ALTER on the cluster (KIP-1037); per
//! partition NOT_LEADER_OR_FOLLOWER where this broker does not lead it, UNKNOWN_TOPIC_OR_PARTITION
//! where it does not exist, the log's answer to a stale producer epoch; the marker for
//! `__consumer_offsets` goes through the group coordinator, which applies or drops the
//! transaction's offsets. Each partition answers once its marker is durable (in shared mode:
//! committed to the store), so a coordinator never completes a transaction whose marker a
//! crash can take away.

use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};

use crate::auth::acl::op;
use crate::clock::now_ms;
use crate::handlers::common::leadership_error;
use crate::handlers::error_codes::{ResponseError, ToKafkaCode};
use crate::handlers::{Ctx, Reply};
use crate::log::producer_state::ControlType;

pub async fn handle(ctx: &Ctx, req: WriteTxnMarkersRequest) -> Reply {
    let allowed = ctx.cluster_allows(op::CLUSTER_ACTION) || ctx.cluster_allows(op::ALTER);
    let broker = ctx.broker.clone();
    // Appends and the group coordinator's bookkeeping block: off the runtime. Then each
    // appended marker is waited for until it is durable.
    let appended = tokio::task::spawn_blocking(move || {
        req.markers
            .into_iter()
            .map(|m| {
                let control = if m.transaction_result { ControlType::Commit } else { ControlType::Abort };
                let topics = m
                    .topics
                    .into_iter()
                    .map(|t| {
                        let parts = t
                            .partition_indexes
                            .iter()
                            .map(|&p| {
                                let outcome = if allowed {
                                    write(
                                        &broker,
                                        t.name.0.as_str(),
                                        p,
                                        m.producer_id.0,
                                        m.producer_epoch,
                                        control,
                                        m.coordinator_epoch,
                                    )
                                } else {
                                    Err(ResponseError::ClusterAuthorizationFailed)
                                };
                                (p, outcome)
                            })
                            .collect::<Vec<_>>();
                        (t.name, parts)
                    })
                    .collect::<Vec<_>>();
                (m.producer_id, topics)
            })
            .collect::<Vec<_>>()
    })
    .await;
    let Ok(appended) = appended else {
        return Reply::Close("transaction markers could not be written".into());
    };
    let mut markers = Vec::with_capacity(appended.len());
    for (producer_id, topics) in appended {
        let mut results = Vec::with_capacity(topics.len());
        for (name, parts) in topics {
            let mut partitions = Vec::with_capacity(parts.len());
            for (p, outcome) in parts {
                let code = match outcome {
                    Ok(Some((log, end))) => match log.flush_to(end).await {
                        Ok(()) => 0,
                        // In shared mode the "fsync" is the commit, refused when the partition moved.
                        Err(_) if !ctx.broker.cluster.leads(&log.tp.topic, log.tp.partition) => {
                            ResponseError::NotLeaderOrFollower.code()
                        }
                        Err(e) => {
                            tracing::error!(partition = %log.tp, error = %e, "a transaction marker could not be made durable");
                            ResponseError::KafkaStorageError.code()
                        }
                    },
                    Ok(None) => 0,
                    Err(e) => e.code(),
                };
                partitions
                    .push(WritableTxnMarkerPartitionResult::default().with_partition_index(p).with_error_code(code));
            }
            results.push(WritableTxnMarkerTopicResult::default().with_name(name).with_partitions(partitions));
        }
        markers.push(WritableTxnMarkerResult::default().with_producer_id(producer_id).with_topics(results));
    }
    ctx.reply(&WriteTxnMarkersResponse::default().with_markers(markers))
}

/// The log and end offset to wait for, or `None` when the marker is durable already (the group
/// coordinator waits itself).
type Written = Option<(std::sync::Arc<crate::log::PartitionLog>, i64)>;

fn write(
    broker: &crate::broker::Broker,
    topic: &str,
    partition: i32,
    producer_id: i64,
    epoch: i16,
    control: ControlType,
    coordinator_epoch: i32,
) -> Result<Written, ResponseError> {
    if topic == crate::group::OFFSETS_TOPIC {
        if let Some(e) = leadership_error(broker, topic, partition, -1) {
            return Err(e);
        }
        return broker.groups.end_txn(producer_id, epoch, control).map(|()| None).map_err(|e| {
            tracing::error!(error = %e, "a transaction marker for the group offsets could not be written");
            ResponseError::KafkaStorageError
        });
    }
    let Some(log) = broker.partition(topic, partition) else {
        return Err(ResponseError::UnknownTopicOrPartition);
    };
    if let Some(e) = leadership_error(broker, topic, partition, -1) {
        return Err(e);
    }
    let info =
        log.append_marker(producer_id, epoch, control, coordinator_epoch, now_ms()).map_err(|e| e.kafka_code())?;
    Ok(Some((log, info.last_offset + 1)))
}
