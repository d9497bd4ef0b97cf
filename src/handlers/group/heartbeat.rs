//! Heartbeat: keeps a member's session alive and tells it when to rejoin.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use tokio::time::Instant;

use super::opt_str;
use crate::handlers::common::code_of;
use crate::handlers::{Ctx, Reply};

pub async fn handle(ctx: &Ctx, req: HeartbeatRequest) -> Reply {
    if !super::may_read_group(ctx, req.group_id.0.as_str()) {
        return ctx.reply(&HeartbeatResponse::default().with_error_code(super::GROUP_DENIED));
    }
    if !ctx.coordinates_groups() {
        return ctx.reply(&HeartbeatResponse::default().with_error_code(super::NOT_COORDINATOR));
    }
    let result = ctx.broker.groups.heartbeat(
        req.group_id.0.as_str(),
        req.member_id.as_str(),
        opt_str(&req.group_instance_id).as_deref(),
        req.generation_id,
        Instant::now(),
    );
    ctx.reply(&HeartbeatResponse::default().with_error_code(code_of(&result)))
}
