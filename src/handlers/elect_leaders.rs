//! ElectLeaders: on one node every partition's leader is this broker, its only and preferred
//! replica, so no election is ever needed. Named partitions get ELECTION_NOT_NEEDED (or
//! UNKNOWN_TOPIC_OR_PARTITION); a request for all partitions (null) gets an empty result, as
//! Kafka 4.1 leaves out the partitions it did not need to elect. An election type other than
//! preferred (0) or unclean (1) is INVALID_REQUEST.

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};

use super::common::str_bytes;
use super::{Ctx, Reply};
use crate::auth::acl::op;
use crate::handlers::error_codes::ResponseError;

pub async fn handle(ctx: &Ctx, req: ElectLeadersRequest) -> Reply {
    let mut resp = ElectLeadersResponse::default();
    if !matches!(req.election_type, 0 | 1) {
        if ctx.version >= 1 {
            resp.error_code = ResponseError::InvalidRequest.code();
        }
        return ctx.reply(&resp);
    }
    let denied = !ctx.cluster_allows(op::ALTER);
    if denied && ctx.version >= 1 {
        resp.error_code = ResponseError::ClusterAuthorizationFailed.code();
    }
    resp.replica_election_results = req
        .topic_partitions
        .unwrap_or_default()
        .into_iter()
        .map(|t| {
            let meta = ctx.broker.topics.get(t.topic.0.as_str());
            let partition_result = t
                .partitions
                .iter()
                .map(|&p| {
                    let (code, message) = if denied {
                        (
                            ResponseError::ClusterAuthorizationFailed,
                            "not authorized to elect leaders (ALTER on the cluster)",
                        )
                    } else if meta.as_ref().is_some_and(|m| (0..m.partitions).contains(&p)) {
                        (ResponseError::ElectionNotNeeded, "this broker, the only replica, already leads the partition")
                    } else {
                        (ResponseError::UnknownTopicOrPartition, "the topic or partition does not exist")
                    };
                    PartitionResult::default()
                        .with_partition_id(p)
                        .with_error_code(code.code())
                        .with_error_message(Some(str_bytes(message)))
                })
                .collect();
            ReplicaElectionResult::default().with_topic(t.topic).with_partition_result(partition_result)
        })
        .collect();
    ctx.reply(&resp)
}
