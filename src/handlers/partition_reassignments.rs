//! AlterPartitionReassignments and ListPartitionReassignments on one node, as Kafka 4.1's
//! controller answers them for a one-broker cluster: no reassignment is ever in progress, so
//! the list is empty and cancelling one is NO_REASSIGNMENT_IN_PROGRESS; moving a partition to
//! its current replica set (this broker) succeeds and changes nothing; any other target names a
//! broker that is not registered, an empty list, or this broker twice, and is
//! INVALID_REPLICA_ASSIGNMENT with Kafka's message. Unknown topics or partitions are
//! UNKNOWN_TOPIC_OR_PARTITION per partition. The list of named topics leaves out unknown ones.

use kafka_protocol::messages::alter_partition_reassignments_request::ReassignablePartition;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse,
};

use super::common::str_bytes;
use super::{Ctx, Reply};
use crate::auth::acl::op;
use crate::handlers::error_codes::ResponseError;
use crate::metadata::TopicMeta;

pub async fn handle_alter(ctx: &Ctx, req: AlterPartitionReassignmentsRequest) -> Reply {
    let node = ctx.broker.node.node_id;
    let denied = !ctx.cluster_allows(op::ALTER);
    let responses = req
        .topics
        .into_iter()
        .map(|t| {
            let meta = ctx.broker.topics.get(t.name.0.as_str());
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let checked = if denied {
                        Err((ResponseError::ClusterAuthorizationFailed, "Cluster authorization failed.".to_string()))
                    } else {
                        check(meta.as_deref(), t.name.0.as_str(), p, node)
                    };
                    let (code, message) = match checked {
                        Ok(()) => (0, None),
                        Err((e, m)) => (e.code(), Some(str_bytes(&m))),
                    };
                    ReassignablePartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                        .with_error_message(message)
                })
                .collect();
            ReassignableTopicResponse::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    let mut resp = AlterPartitionReassignmentsResponse::default().with_responses(responses).with_error_message(None);
    if denied {
        resp.error_code = ResponseError::ClusterAuthorizationFailed.code();
        resp.error_message = Some(str_bytes("Cluster authorization failed."));
    }
    if ctx.version >= 1 {
        // KIP-860: the answer says whether the broker honoured the flag; it does.
        resp.allow_replication_factor_change = req.allow_replication_factor_change;
    }
    ctx.reply(&resp)
}

/// One partition's reassignment: Ok when it is a no-op, else the error and Kafka's message.
fn check(
    meta: Option<&TopicMeta>,
    topic: &str,
    p: &ReassignablePartition,
    node: i32,
) -> Result<(), (ResponseError, String)> {
    let Some(meta) = meta else {
        return Err((ResponseError::UnknownTopicOrPartition, format!("Unable to find a topic named {topic}.")));
    };
    if !(0..meta.partitions).contains(&p.partition_index) {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            format!("Unable to find partition {topic}:{}.", p.partition_index),
        ));
    }
    let Some(replicas) = &p.replicas else {
        return Err((ResponseError::NoReassignmentInProgress, "No partition reassignment is in progress.".into()));
    };
    let invalid = |m: String| Err((ResponseError::InvalidReplicaAssignment, m));
    if replicas.is_empty() {
        return invalid("The manual partition assignment includes an empty replica list.".into());
    }
    let mut sorted: Vec<i32> = replicas.iter().map(|b| b.0).collect();
    sorted.sort_unstable();
    if let Some(b) = sorted.iter().find(|&&b| b != node) {
        return invalid(format!(
            "The manual partition assignment includes broker {b}, but no such broker is registered."
        ));
    }
    if sorted.len() > 1 {
        return invalid(format!("The manual partition assignment includes the broker {node} more than once."));
    }
    Ok(())
}

pub async fn handle_list(ctx: &Ctx, _req: ListPartitionReassignmentsRequest) -> Reply {
    if !ctx.cluster_allows(op::DESCRIBE) {
        return ctx.reply(
            &ListPartitionReassignmentsResponse::default()
                .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
                .with_error_message(Some(str_bytes("Cluster authorization failed."))),
        );
    }
    // Nothing is ever being reassigned: every listing, of all topics or of named ones, is empty.
    ctx.reply(&ListPartitionReassignmentsResponse::default().with_error_message(None))
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::BrokerId;

    use super::*;

    fn part(index: i32, replicas: Option<&[i32]>) -> ReassignablePartition {
        ReassignablePartition::default()
            .with_partition_index(index)
            .with_replicas(replicas.map(|r| r.iter().map(|&b| BrokerId(b)).collect()))
    }

    #[test]
    fn only_the_current_assignment_is_accepted() {
        let meta = TopicMeta { name: "t".into(), id: uuid::Uuid::nil(), partitions: 2, configs: Default::default() };
        let code = |m: Option<&TopicMeta>, p: ReassignablePartition| check(m, "t", &p, 1).err().map(|e| e.0);
        assert_eq!(code(Some(&meta), part(1, Some(&[1]))), None);
        assert_eq!(code(Some(&meta), part(0, Some(&[2]))), Some(ResponseError::InvalidReplicaAssignment));
        assert_eq!(code(Some(&meta), part(0, Some(&[1, 1]))), Some(ResponseError::InvalidReplicaAssignment));
        assert_eq!(code(Some(&meta), part(0, Some(&[]))), Some(ResponseError::InvalidReplicaAssignment));
        assert_eq!(code(Some(&meta), part(0, None)), Some(ResponseError::NoReassignmentInProgress));
        assert_eq!(code(Some(&meta), part(2, Some(&[1]))), Some(ResponseError::UnknownTopicOrPartition));
        assert_eq!(code(None, part(0, Some(&[1]))), Some(ResponseError::UnknownTopicOrPartition));
    }
}
