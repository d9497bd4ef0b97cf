//! ListGroups, with the state (v4+) and type (v5+) filters: classic, consumer and share groups.

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use crate::auth::acl::{op, resource};
use crate::handlers::common::str_bytes;
use crate::handlers::{Ctx, Reply};

pub async fn handle(ctx: &Ctx, req: ListGroupsRequest) -> Reply {
    let v = ctx.version;
    // Kafka 4.1: state and type filters are case-insensitive; a group matches when its state
    // (classic or consumer states) and its type ("classic" or "consumer") are in the filters.
    let states: Vec<String> = req.states_filter.iter().map(|s| s.as_str().trim().to_ascii_lowercase()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|t| t.as_str().trim().to_ascii_lowercase()).collect();
    // Kafka 4.1: DESCRIBE on the cluster lists every group, else those the principal may DESCRIBE.
    let every = ctx.cluster_allows(op::DESCRIBE);
    // A broker lists the groups it coordinates (Kafka: those of the offsets partitions it
    // leads); in shared mode one that does not coordinate has none to list.
    if !ctx.coordinates_groups() {
        return ctx.reply(&ListGroupsResponse::default());
    }
    let groups = ctx
        .broker
        .groups
        .list_typed()
        .into_iter()
        .chain(ctx.broker.share_groups.list().into_iter().map(|(id, state)| (id, "share".to_string(), state, "share")))
        .filter(|(_, _, state, _)| states.is_empty() || states.contains(&state.to_ascii_lowercase()))
        .filter(|(_, _, _, group_type)| types.is_empty() || types.iter().any(|t| t == group_type))
        .filter(|(id, _, _, _)| every || ctx.allowed(op::DESCRIBE, resource::GROUP, id))
        .map(|(id, protocol_type, state, group_type)| {
            let mut g = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(&id)))
                .with_protocol_type(str_bytes(&protocol_type));
            if v >= 4 {
                g.group_state = str_bytes(state);
            }
            if v >= 5 {
                g.group_type = str_bytes(group_type);
            }
            g
        })
        .collect();
    ctx.reply(&ListGroupsResponse::default().with_groups(groups))
}
