//! ConsumerGroupHeartbeat (KIP-848): join, heartbeat, reconcile and leave a `consumer` protocol
//! group in one API. The state machine is `group::consumer`; this file resolves topic ids and
//! names and authorizes as Kafka 4.1's KafkaApis: READ on the group, and DESCRIBE on every
//! subscribed topic name (else TOPIC_AUTHORIZATION_FAILED for the whole request). A regex
//! subscription is not refused for topics the member may not see: it resolves only against the
//! topics the member may DESCRIBE (Kafka's `TopicRegexResolver`).

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use tokio::time::Instant;

use super::{opt_str, Topics};
use crate::auth::acl::op;
use crate::group::consumer::{self, HeartbeatParams};
use crate::handlers::common::str_bytes;
use crate::handlers::error_codes::{ResponseError, ToKafkaCode};
use crate::handlers::{Ctx, Reply};

fn error(code: ResponseError, message: String) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(code.code())
        .with_error_message(Some(str_bytes(&message)))
        .with_member_id(None)
}

pub async fn handle(ctx: &Ctx, req: ConsumerGroupHeartbeatRequest) -> Reply {
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
    // Owned partitions come by topic id; an id no longer known (a deleted topic) owns nothing.
    let owned = req.topic_partitions.as_ref().map(|tps| {
        let mut out = consumer::Assignment::new();
        for tp in tps {
            if let Some(t) = broker.topic_by_id(&tp.topic_id) {
                out.entry(t.name.to_string()).or_default().extend(tp.partitions.iter().copied());
            }
        }
        out
    });
    let params = HeartbeatParams {
        member_id: req.member_id.as_str().to_string(),
        member_epoch: req.member_epoch,
        instance_id: opt_str(&req.instance_id),
        rack_id: opt_str(&req.rack_id),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed_topic_names: req.subscribed_topic_names.as_ref().map(|_| names.clone()),
        subscribed_topic_regex: opt_str(&req.subscribed_topic_regex),
        server_assignor: opt_str(&req.server_assignor),
        owned,
        client_id: ctx.client_id.clone().unwrap_or_default(),
        client_host: ctx.client_host.clone(),
    };
    // A heartbeat that changes the group appends its records to `__consumer_offsets` under
    // the group's lock: off the runtime, as JoinGroup and SyncGroup.
    let (shared, group, version) = (ctx.clone(), group_id.to_string(), ctx.version);
    let beat = tokio::task::spawn_blocking(move || {
        shared.broker.groups.consumer_heartbeat(&group, params, version, &Topics(&shared), Instant::now())
    })
    .await;
    let Ok(result) = beat else {
        return Reply::Close("consumer group heartbeat could not be completed".into());
    };
    let resp = match result {
        Err(e) => {
            tracing::debug!(group = group_id, error = %e, "ConsumerGroupHeartbeat refused");
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
            ConsumerGroupHeartbeatResponse::default()
                .with_error_message(None)
                .with_member_id(Some(str_bytes(&r.member_id)))
                .with_member_epoch(r.member_epoch)
                .with_heartbeat_interval_ms(r.heartbeat_interval_ms)
                .with_assignment(assignment)
        }
    };
    ctx.reply(&resp)
}
