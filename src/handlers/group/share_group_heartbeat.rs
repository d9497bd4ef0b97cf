//! ShareGroupHeartbeat (KIP-932): join, heartbeat and leave a share group. The state machine
//! is `group::share`; this file resolves topic names to ids and authorizes as Kafka 4.1's
//! KafkaApis: READ on the group, DESCRIBE on every subscribed topic.

use kafka_protocol::messages::share_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse};
use tokio::time::Instant;

use super::opt_str;
use crate::auth::acl::op;
use crate::group::share::ShareHeartbeat;
use crate::handlers::common::str_bytes;
use crate::handlers::error_codes::{ResponseError, ToKafkaCode};
use crate::handlers::{Ctx, Reply};

fn error(code: ResponseError, message: String) -> ShareGroupHeartbeatResponse {
    ShareGroupHeartbeatResponse::default()
        .with_error_code(code.code())
        .with_error_message(Some(str_bytes(&message)))
        .with_member_id(None)
}

pub async fn handle(ctx: &Ctx, req: ShareGroupHeartbeatRequest) -> Reply {
    let group_id = req.group_id.0.as_str();
    if !super::may_read_group(ctx, group_id) {
        let e = ResponseError::GroupAuthorizationFailed;
        return ctx.reply(&error(e, e.to_string()));
    }
    if !ctx.coordinates_groups() {
        let e = ResponseError::NotCoordinator;
        return ctx.reply(&error(e, super::not_coordinator(ctx)));
    }
    let names: Vec<String> = req.subscribed_topic_names.iter().flatten().map(|t| t.0.as_str().to_string()).collect();
    if ctx.denied_topics(op::DESCRIBE, names.iter().map(String::as_str)).into_iter().any(|d| d) {
        let e = ResponseError::TopicAuthorizationFailed;
        return ctx.reply(&error(e, "The client is not authorized to describe some of the subscribed topics.".into()));
    }
    let broker = &ctx.broker;
    // A group id names one kind of group: a classic or consumer group is not a share group.
    if broker.groups.exists(group_id) {
        let e = ResponseError::GroupIdNotFound;
        return ctx.reply(&error(e, format!("Group {group_id} is not a share group.")));
    }
    let hb = ShareHeartbeat {
        member_id: req.member_id.as_str().to_string(),
        member_epoch: req.member_epoch,
        rack_id: opt_str(&req.rack_id),
        subscribed_topic_names: req.subscribed_topic_names.as_ref().map(|_| names.clone()),
        client_id: ctx.client_id.clone().unwrap_or_default(),
        client_host: ctx.client_host.clone(),
    };
    let topic = |name: &str| {
        if crate::broker::is_internal(name) {
            return None;
        }
        broker.topic(name).map(|t| t.partitions)
    };
    let resp = match broker.share_groups.heartbeat(group_id, hb, &topic, Instant::now()) {
        Err(e) => {
            tracing::debug!(group = group_id, error = %e, "ShareGroupHeartbeat refused");
            error(e.kafka_code(), e.to_string())
        }
        Ok(r) => {
            let assignment = r.assignment.map(|a| {
                Assignment::default().with_topic_partitions(
                    a.into_iter()
                        .filter_map(|(t, ps)| {
                            let id = broker.topic(&t)?.id;
                            Some(TopicPartitions::default().with_topic_id(id).with_partitions(ps.into_iter().collect()))
                        })
                        .collect(),
                )
            });
            ShareGroupHeartbeatResponse::default()
                .with_error_message(None)
                .with_member_id(Some(str_bytes(&r.member_id)))
                .with_member_epoch(r.member_epoch)
                .with_heartbeat_interval_ms(r.heartbeat_interval_ms)
                .with_assignment(assignment)
        }
    };
    ctx.reply(&resp)
}
