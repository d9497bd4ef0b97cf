//! DescribeGroups: state, protocol and members with their metadata and assignments.

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use crate::auth::acl::{op, resource};
use crate::handlers::common::str_bytes;
use crate::handlers::error_codes::ResponseError;
use crate::handlers::{Ctx, Reply};

/// READ, DELETE and DESCRIBE: what a group supports (no ACLs yet, so all are allowed).
pub async fn handle(ctx: &Ctx, req: DescribeGroupsRequest) -> Reply {
    let v = ctx.version;
    let groups = req
        .groups
        .into_iter()
        .map(|id| {
            let mut out = DescribedGroup::default().with_group_id(id.clone());
            if !ctx.allowed(op::DESCRIBE, resource::GROUP, id.0.as_str()) {
                out.error_code = ResponseError::GroupAuthorizationFailed.code();
                if v >= 6 {
                    out.error_message = Some(str_bytes(&ResponseError::GroupAuthorizationFailed.to_string()));
                }
                return out;
            }
            if !ctx.coordinates_groups() {
                out.error_code = super::NOT_COORDINATOR;
                return out;
            }
            if v >= 3 && req.include_authorized_operations {
                out.authorized_operations = ctx.authorized_operations(resource::GROUP, id.0.as_str());
            }
            // A consumer (KIP-848) group is not a classic group: Kafka 4.1 answers as for a
            // missing one, with its own message.
            if ctx.broker.groups.is_consumer_group(id.0.as_str()) {
                out.group_state = str_bytes("Dead");
                if v >= 6 {
                    out.error_code = ResponseError::GroupIdNotFound.code();
                    out.error_message = Some(str_bytes(&format!("Group {} is not a classic group.", id.0.as_str())));
                }
                return out;
            }
            match ctx.broker.groups.describe(id.0.as_str()) {
                None => {
                    out.group_state = str_bytes("Dead");
                    if v >= 6 {
                        out.error_code = ResponseError::GroupIdNotFound.code();
                        out.error_message = Some(str_bytes(&format!("Group {} not found.", id.0.as_str())));
                    }
                }
                Some(d) => {
                    out.group_state = str_bytes(d.state.kafka_name());
                    out.protocol_type = str_bytes(&d.protocol_type);
                    out.protocol_data = str_bytes(&d.protocol_name);
                    out.members = d
                        .members
                        .into_iter()
                        .map(|m| {
                            let mut dm = DescribedGroupMember::default()
                                .with_member_id(str_bytes(&m.member_id))
                                .with_client_id(str_bytes(&m.client_id))
                                .with_client_host(str_bytes(&m.client_host))
                                .with_member_metadata(m.metadata)
                                .with_member_assignment(m.assignment);
                            if v >= 4 {
                                dm.group_instance_id = m.group_instance_id.as_deref().map(str_bytes);
                            }
                            dm
                        })
                        .collect();
                }
            }
            out
        })
        .collect();
    ctx.reply(&DescribeGroupsResponse::default().with_groups(groups))
}
