//! SyncGroup: followers wait for the leader's assignment; everyone gets their own.

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use tokio::time::Instant;

use super::opt_str;
use crate::group::{GroupError, SyncRequest, SyncResult, Waiting};
use crate::handlers::common::str_bytes;
use crate::handlers::error_codes::ToKafkaCode;
use crate::handlers::{encode, Ctx, Reply};

pub async fn handle(ctx: &Ctx, req: SyncGroupRequest) -> Reply {
    let v = ctx.version;
    if !super::may_read_group(ctx, req.group_id.0.as_str()) {
        return ctx.reply(&SyncGroupResponse::default().with_error_code(super::GROUP_DENIED));
    }
    if !ctx.coordinates_groups() {
        return ctx.reply(&SyncGroupResponse::default().with_error_code(super::NOT_COORDINATOR));
    }
    let assignments =
        req.assignments.iter().map(|a| (a.member_id.as_str().to_string(), a.assignment.clone())).collect();
    // The leader's sync appends the group's metadata to `__consumer_offsets`: off the runtime.
    let (broker, group, member) = (ctx.broker.clone(), req.group_id.0.to_string(), req.member_id.to_string());
    let (instance, generation) = (opt_str(&req.group_instance_id), req.generation_id);
    let (protocol_type, protocol_name) = (opt_str(&req.protocol_type), opt_str(&req.protocol_name));
    let synced = tokio::task::spawn_blocking(move || {
        let req = SyncRequest {
            member_id: &member,
            instance: instance.as_deref(),
            generation,
            protocol_type: protocol_type.as_deref(),
            protocol_name: protocol_name.as_deref(),
        };
        broker.groups.sync(&group, req, assignments, Instant::now())
    })
    .await;
    let Ok(outcome) = synced else {
        return Reply::Close("sync could not be completed".into());
    };
    match outcome {
        Waiting::Ready(r) => ctx.reply(&response(v, r)),
        Waiting::Wait(rx) => {
            let (correlation_id, version) = (ctx.correlation_id, v);
            Reply::Deferred(Box::pin(async move {
                let r = rx.await.unwrap_or(Err(GroupError::RebalanceInProgress));
                encode(correlation_id, version, &response(version, r))
            }))
        }
    }
}

fn response(v: i16, r: Result<SyncResult, GroupError>) -> SyncGroupResponse {
    match r {
        Ok(s) => {
            let mut resp = SyncGroupResponse::default().with_assignment(s.assignment);
            if v >= 5 {
                resp.protocol_type = s.protocol_type.as_deref().map(str_bytes);
                resp.protocol_name = s.protocol_name.as_deref().map(str_bytes);
            }
            resp
        }
        Err(e) => SyncGroupResponse::default().with_error_code(e.kafka_code().code()),
    }
}
