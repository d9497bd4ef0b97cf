//! ShareGroupDescribe (KIP-932): a share group's epochs and members with their subscriptions
//! and assignments. Authorized as Kafka 4.1: DESCRIBE on each group, and DESCRIBE on the
//! topics its members use (TOPIC_AUTHORIZATION_FAILED otherwise).

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::share_group_describe_response::{Assignment, DescribedGroup, Member, TopicPartitions};
use kafka_protocol::messages::{ShareGroupDescribeRequest, ShareGroupDescribeResponse};

use crate::auth::acl::{op, resource};
use crate::handlers::common::{str_bytes, topic_name};
use crate::handlers::error_codes::ResponseError;
use crate::handlers::{Ctx, Reply};

fn assignment(ctx: &Ctx, a: &BTreeMap<String, BTreeSet<i32>>) -> Assignment {
    Assignment::default().with_topic_partitions(
        a.iter()
            .map(|(t, ps)| {
                TopicPartitions::default()
                    .with_topic_id(ctx.broker.topic(t).map(|m| m.id).unwrap_or_default())
                    .with_topic_name(topic_name(t))
                    .with_partitions(ps.iter().copied().collect())
            })
            .collect(),
    )
}

pub async fn handle(ctx: &Ctx, req: ShareGroupDescribeRequest) -> Reply {
    let groups = req
        .group_ids
        .into_iter()
        .map(|id| {
            let out = DescribedGroup::default().with_group_id(id.clone()).with_authorized_operations(i32::MIN);
            let name = id.0.as_str();
            if !ctx.allowed(op::DESCRIBE, resource::GROUP, name) {
                return out.with_error_code(super::GROUP_DENIED);
            }
            if !ctx.coordinates_groups() {
                return out.with_error_code(super::NOT_COORDINATOR);
            }
            let Some(g) = ctx.broker.share_groups.describe(name) else {
                let message = if ctx.broker.groups.exists(name) {
                    format!("Group {name} is not a share group.")
                } else {
                    format!("Group {name} not found.")
                };
                return out
                    .with_error_code(ResponseError::GroupIdNotFound.code())
                    .with_error_message(Some(str_bytes(&message)));
            };
            let topics: BTreeSet<&String> =
                g.members.values().flat_map(|m| m.subscribed.iter().chain(m.assignment.keys())).collect();
            if topics.iter().any(|t| !ctx.allowed(op::DESCRIBE, resource::TOPIC, t)) {
                return out.with_error_code(ResponseError::TopicAuthorizationFailed.code()).with_error_message(Some(
                    str_bytes("The described group uses topics that the client is not authorized to describe."),
                ));
            }
            let members = g
                .members
                .values()
                .map(|m| {
                    Member::default()
                        .with_member_id(str_bytes(&m.member_id))
                        .with_rack_id(m.rack_id.as_deref().map(str_bytes))
                        .with_member_epoch(m.member_epoch)
                        .with_client_id(str_bytes(&m.client_id))
                        .with_client_host(str_bytes(&m.client_host))
                        .with_subscribed_topic_names(m.subscribed.iter().map(|t| topic_name(t)).collect())
                        .with_assignment(assignment(ctx, &m.assignment))
                })
                .collect();
            let ops = if req.include_authorized_operations {
                ctx.authorized_operations(resource::GROUP, name)
            } else {
                i32::MIN
            };
            out.with_group_state(str_bytes(g.state_name()))
                .with_group_epoch(g.group_epoch)
                .with_assignment_epoch(g.assignment_epoch)
                .with_assignor_name(str_bytes("simple"))
                .with_members(members)
                .with_authorized_operations(ops)
        })
        .collect();
    ctx.reply(&ShareGroupDescribeResponse::default().with_groups(groups))
}
