//! ConsumerGroupDescribe (KIP-848): a `consumer` protocol group's epochs, assignor and members
//! with their subscriptions (topic names and regex, as the members sent them), current and
//! target assignments. Authorized as Kafka 4.1: DESCRIBE on each group
//! (GROUP_AUTHORIZATION_FAILED), and a group whose members use topics the principal may not
//! DESCRIBE gets TOPIC_AUTHORIZATION_FAILED instead of its description.

use std::collections::BTreeSet;

use kafka_protocol::messages::consumer_group_describe_response::{Assignment, DescribedGroup, Member, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse};

use crate::auth::acl::{op, resource};
use crate::group::consumer::{self, ConsumerGroup};
use crate::handlers::common::{str_bytes, topic_name};
use crate::handlers::error_codes::ResponseError;
use crate::handlers::{Ctx, Reply};

/// Kafka's member types (ConsumerGroupDescribe v1, KIP-1099): a member that uses the classic
/// protocol in a consumer group, and one that uses the consumer protocol.
const CLASSIC_MEMBER: i8 = 0;
const CONSUMER_MEMBER: i8 = 1;

fn assignment(ctx: &Ctx, a: &consumer::Assignment) -> Assignment {
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

fn describe(ctx: &Ctx, g: &ConsumerGroup, out: DescribedGroup) -> DescribedGroup {
    let topics: BTreeSet<&String> = g
        .members
        .values()
        .flat_map(|m| m.subscribed.iter().chain(m.assigned.keys()).chain(m.pending_revocation.keys()))
        .chain(g.target.values().flat_map(|a| a.keys()))
        .collect();
    if topics.iter().any(|t| !ctx.allowed(op::DESCRIBE, resource::TOPIC, t)) {
        return out.with_error_code(ResponseError::TopicAuthorizationFailed.code()).with_error_message(Some(
            str_bytes("The described group uses topics that the client is not authorized to describe."),
        ));
    }
    let empty = consumer::Assignment::new();
    let members = g
        .members
        .values()
        .map(|m| {
            let mut member = Member::default()
                .with_member_id(str_bytes(&m.member_id))
                .with_instance_id(m.instance_id.as_deref().map(str_bytes))
                .with_rack_id(m.rack_id.as_deref().map(str_bytes))
                .with_member_epoch(m.member_epoch)
                .with_client_id(str_bytes(&m.client_id))
                .with_client_host(str_bytes(&m.client_host))
                .with_subscribed_topic_names(m.subscribed.iter().map(|t| topic_name(t)).collect())
                .with_subscribed_topic_regex(m.subscribed_regex.as_deref().map(str_bytes))
                .with_assignment(assignment(ctx, &m.assigned))
                .with_target_assignment(assignment(ctx, g.target.get(&m.member_id).unwrap_or(&empty)));
            if ctx.version >= 1 {
                member.member_type = if m.classic.is_some() { CLASSIC_MEMBER } else { CONSUMER_MEMBER };
            }
            member
        })
        .collect();
    out.with_group_state(str_bytes(g.state().kafka_name()))
        .with_group_epoch(g.group_epoch)
        .with_assignment_epoch(g.assignment_epoch)
        .with_assignor_name(str_bytes(g.preferred_assignor().name()))
        .with_members(members)
}

pub async fn handle(ctx: &Ctx, req: ConsumerGroupDescribeRequest) -> Reply {
    let groups = req
        .group_ids
        .into_iter()
        .map(|id| {
            let out = DescribedGroup::default().with_group_id(id.clone());
            if !ctx.allowed(op::DESCRIBE, resource::GROUP, id.0.as_str()) {
                return out.with_error_code(super::GROUP_DENIED);
            }
            if !ctx.coordinates_groups() {
                return out.with_error_code(super::NOT_COORDINATOR);
            }
            match ctx.broker.groups.consumer_group(id.0.as_str()) {
                Err(message) => out
                    .with_error_code(ResponseError::GroupIdNotFound.code())
                    .with_error_message(Some(str_bytes(&message))),
                Ok(g) => {
                    let mut d = describe(ctx, &g, out);
                    if req.include_authorized_operations && d.error_code == 0 {
                        d.authorized_operations = ctx.authorized_operations(resource::GROUP, id.0.as_str());
                    }
                    d
                }
            }
        })
        .collect();
    ctx.reply(&ConsumerGroupDescribeResponse::default().with_groups(groups))
}
