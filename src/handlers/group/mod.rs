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

/// What a broker that does not coordinate groups answers (shared mode, see
/// [`crate::handlers::Ctx::coordinates`]).
pub(crate) const NOT_COORDINATOR: i16 = kafka_protocol::error::ResponseError::NotCoordinator.code();

/// The message that goes with [`NOT_COORDINATOR`] where a response has room for one.
pub(crate) fn not_coordinator(ctx: &crate::handlers::Ctx) -> String {
    format!("broker {} does not coordinate groups; find the coordinator again", ctx.broker.cluster.node_id())
}

/// READ on the group: what joining, syncing, heartbeating, leaving and committing need (Kafka 4.1).
pub(crate) fn may_read_group(ctx: &crate::handlers::Ctx, group: &str) -> bool {
    ctx.allowed(crate::auth::acl::op::READ, crate::auth::acl::resource::GROUP, group)
}

/// The cluster's topics as a member of a `consumer` group sees them (its ConsumerGroupHeartbeat
/// or, for a classic member, its JoinGroup).
pub(crate) struct Topics<'a>(pub &'a crate::handlers::Ctx);

impl crate::group::consumer::TopicSource for Topics<'_> {
    fn topic(&self, name: &str) -> Option<(uuid::Uuid, i32)> {
        self.0.broker.topic(name).map(|t| (t.id, t.partitions))
    }

    /// Every listed topic, internal ones included once they exist (Kafka's regex resolution
    /// scans the whole metadata image), less those the principal may not DESCRIBE.
    fn describable_topics(&self) -> Vec<String> {
        let all = self.0.broker.all_topics();
        let denied = self.0.denied_topics(crate::auth::acl::op::DESCRIBE, all.iter().map(|t| &*t.name));
        all.iter().zip(denied).filter(|(_, denied)| !denied).map(|(t, _)| t.name.to_string()).collect()
    }
}

pub(crate) fn opt_str(s: &Option<StrBytes>) -> Option<String> {
    s.as_ref().map(|s| s.as_str().to_string())
}
