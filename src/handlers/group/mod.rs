//! Handlers of the classic group protocol and committed offsets. The coordinator logic lives
//! in `crate::group`; these files translate requests and responses.

pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod delete_groups;
pub mod describe_groups;
pub mod find_coordinator;
pub mod heartbeat;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod share_group_describe;
pub mod share_group_heartbeat;
pub mod share_group_offsets;
pub mod sync_group;

use kafka_protocol::protocol::StrBytes;

pub(crate) const GROUP_DENIED: i16 = kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code();

/// READ on the group: what joining, syncing, heartbeating, leaving and committing need (Kafka 4.1).
pub(crate) fn may_read_group(ctx: &crate::handlers::Ctx, group: &str) -> bool {
    ctx.allowed(crate::auth::acl::op::READ, crate::auth::acl::resource::GROUP, group)
}

pub(crate) fn opt_str(s: &Option<StrBytes>) -> Option<String> {
    s.as_ref().map(|s| s.as_str().to_string())
}
