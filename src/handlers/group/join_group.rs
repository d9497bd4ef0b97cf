//! JoinGroup: waits (deferred reply) until the group's join phase completes.

use std::time::Duration;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use tokio::time::Instant;

use super::opt_str;
use crate::group::{GroupError, JoinParams, JoinResult, Waiting};
use crate::handlers::common::str_bytes;
use crate::handlers::error_codes::ToKafkaCode;
use crate::handlers::{encode, Ctx, Reply};

pub async fn handle(ctx: &Ctx, req: JoinGroupRequest) -> Reply {
    let v = ctx.version;
    let refused = if !super::may_read_group(ctx, req.group_id.0.as_str()) {
        Some(super::GROUP_DENIED)
    } else {
        (!ctx.coordinates_groups()).then_some(super::NOT_COORDINATOR)
    };
    if let Some(code) = refused {
        let mut resp = JoinGroupResponse::default()
            .with_error_code(code)
            .with_generation_id(-1)
            .with_member_id(req.member_id.clone());
        if v < 7 {
            resp.protocol_name = Some(str_bytes(""));
        }
        return ctx.reply(&resp);
    }
    let session = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
    // v0 has no rebalance timeout: Kafka uses the session timeout.
    let rebalance =
        if req.rebalance_timeout_ms < 0 { session } else { Duration::from_millis(req.rebalance_timeout_ms as u64) };
    let params = JoinParams {
        member_id: req.member_id.as_str().to_string(),
        group_instance_id: opt_str(&req.group_instance_id),
        client_id: ctx.client_id.clone().unwrap_or_default(),
        client_host: ctx.client_host.clone(),
        session_timeout: session,
        rebalance_timeout: rebalance,
        protocol_type: req.protocol_type.as_str().to_string(),
        protocols: req.protocols.iter().map(|p| (p.name.as_str().to_string(), p.metadata.clone())).collect(),
        require_known_member_id: v >= 4,
    };
    let requested_member = params.member_id.clone();
    // A membership change appends the group's metadata to `__consumer_offsets`: off the runtime.
    // A `consumer` group assigns its classic members itself: it looks topics up.
    let (shared, group) = (ctx.clone(), req.group_id.0.to_string());
    let joined = tokio::task::spawn_blocking(move || {
        shared.broker.groups.join(&group, params, &super::Topics(&shared), Instant::now())
    })
    .await;
    let Ok(outcome) = joined else {
        return Reply::Close("join could not be completed".into());
    };
    match outcome {
        Waiting::Ready(r) => ctx.reply(&response(v, &requested_member, r)),
        Waiting::Wait(rx) => {
            let (correlation_id, version) = (ctx.correlation_id, v);
            Reply::Deferred(Box::pin(async move {
                let r = rx.await.unwrap_or(Err(GroupError::RebalanceInProgress));
                encode(correlation_id, version, &response(version, &requested_member, r))
            }))
        }
    }
}

fn response(v: i16, requested_member: &str, r: Result<JoinResult, GroupError>) -> JoinGroupResponse {
    let mut resp = JoinGroupResponse::default();
    match r {
        Ok(j) => {
            resp.generation_id = j.generation_id;
            if v >= 7 {
                resp.protocol_type = j.protocol_type.as_deref().map(str_bytes);
            }
            resp.protocol_name = Some(str_bytes(j.protocol_name.as_deref().unwrap_or_default()));
            resp.leader = str_bytes(&j.leader_id);
            resp.member_id = str_bytes(&j.member_id);
            if v >= 9 {
                resp.skip_assignment = j.skip_assignment;
            }
            resp.members = j
                .members
                .into_iter()
                .map(|m| {
                    let mut out = JoinGroupResponseMember::default()
                        .with_member_id(str_bytes(&m.member_id))
                        .with_metadata(m.metadata);
                    if v >= 5 {
                        out.group_instance_id = m.group_instance_id.as_deref().map(str_bytes);
                    }
                    out
                })
                .collect();
        }
        Err(e) => {
            resp.error_code = e.kafka_code().code();
            resp.generation_id = -1;
            resp.member_id = match &e {
                GroupError::MemberIdRequired(id) => str_bytes(id),
                _ => str_bytes(requested_member),
            };
            if v < 7 {
                resp.protocol_name = Some(str_bytes(""));
            }
        }
    }
    resp
}
