//! ListGroups, with the state (v4+) and type (v5+) filters.

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use crate::auth::acl::{op, resource};
use crate::group::GroupState;
use crate::handlers::common::str_bytes;
use crate::handlers::{Ctx, Reply};

pub async fn handle(ctx: &Ctx, req: ListGroupsRequest) -> Reply {
    let v = ctx.version;
    let states: Vec<GroupState> =
        req.states_filter.iter().filter_map(|s| GroupState::from_kafka_name(s.as_str())).collect();
    let unknown_state_filter = states.len() < req.states_filter.len();
    // Every gregor group is a classic group.
    let types_ok =
        req.types_filter.is_empty() || req.types_filter.iter().any(|t| t.as_str().eq_ignore_ascii_case("classic"));
    // Kafka 4.1: DESCRIBE on the cluster lists every group, else those the principal may DESCRIBE.
    let every = ctx.cluster_allows(op::DESCRIBE);
    let groups = if unknown_state_filter || !types_ok {
        Vec::new()
    } else {
        ctx.broker
            .groups
            .list()
            .into_iter()
            .filter(|(_, _, state)| states.is_empty() || states.contains(state))
            .filter(|(id, _, _)| every || ctx.allowed(op::DESCRIBE, resource::GROUP, id))
            .map(|(id, protocol_type, state)| {
                let mut g = ListedGroup::default()
                    .with_group_id(GroupId(str_bytes(&id)))
                    .with_protocol_type(str_bytes(&protocol_type));
                if v >= 4 {
                    g.group_state = str_bytes(state.kafka_name());
                }
                if v >= 5 {
                    g.group_type = str_bytes("classic");
                }
                g
            })
            .collect()
    };
    ctx.reply(&ListGroupsResponse::default().with_groups(groups))
}
