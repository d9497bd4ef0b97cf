//! LeaveGroup: one member (v0–2) or a batch of members, dynamic or static (v3+).

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use tokio::time::Instant;

use super::opt_str;
use crate::handlers::error_codes::ToKafkaCode;
use crate::handlers::{Ctx, Reply};

pub async fn handle(ctx: &Ctx, req: LeaveGroupRequest) -> Reply {
    if !super::may_read_group(ctx, req.group_id.0.as_str()) {
        return ctx.reply(&LeaveGroupResponse::default().with_error_code(super::GROUP_DENIED));
    }
    if !ctx.coordinates_groups() {
        return ctx.reply(&LeaveGroupResponse::default().with_error_code(super::NOT_COORDINATOR));
    }
    let leaving: Vec<(String, Option<String>)> = if ctx.version >= 3 {
        req.members.iter().map(|m| (m.member_id.as_str().to_string(), opt_str(&m.group_instance_id))).collect()
    } else {
        vec![(req.member_id.as_str().to_string(), None)]
    };
    // Leaving appends the group's metadata to `__consumer_offsets`: off the runtime.
    let (broker, group) = (ctx.broker.clone(), req.group_id.0.to_string());
    let left = tokio::task::spawn_blocking(move || broker.groups.leave(&group, &leaving, Instant::now())).await;
    let Ok(left) = left else {
        return Reply::Close("leave could not be completed".into());
    };
    let resp = match left {
        Err(e) => LeaveGroupResponse::default().with_error_code(e.kafka_code().code()),
        Ok(results) if ctx.version >= 3 => {
            let members = req
                .members
                .into_iter()
                .zip(results)
                .map(|(m, r)| {
                    MemberResponse::default()
                        .with_member_id(m.member_id)
                        .with_group_instance_id(m.group_instance_id)
                        .with_error_code(r.err().map_or(0, |e| e.kafka_code().code()))
                })
                .collect();
            LeaveGroupResponse::default().with_members(members)
        }
        Ok(results) => LeaveGroupResponse::default()
            .with_error_code(results.into_iter().next().and_then(|r| r.err()).map_or(0, |e| e.kafka_code().code())),
    };
    ctx.reply(&resp)
}
