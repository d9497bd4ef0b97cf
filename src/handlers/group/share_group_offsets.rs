//! DescribeShareGroupOffsets, AlterShareGroupOffsets and DeleteShareGroupOffsets (KIP-932's
//! admin side, what `kafka-share-groups.sh` uses): a share group's start offset per partition,
//! set or forgotten while the group has no members. Authorized as Kafka 4.1: DESCRIBE, READ and
//! DELETE on the group, DESCRIBE or READ on the topics.

use kafka_protocol::messages::alter_share_group_offsets_response::{
    AlterShareGroupOffsetsResponsePartition, AlterShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::delete_share_group_offsets_response::DeleteShareGroupOffsetsResponseTopic;
use kafka_protocol::messages::describe_share_group_offsets_response::{
    DescribeShareGroupOffsetsResponseGroup, DescribeShareGroupOffsetsResponsePartition,
    DescribeShareGroupOffsetsResponseTopic,
};
use kafka_protocol::messages::*;

use crate::auth::acl::{op, resource};
use crate::handlers::common::{str_bytes, topic_name};
use crate::handlers::error_codes::ResponseError;
use crate::handlers::{Ctx, Reply};
use crate::log::partition::LEADER_EPOCH;

fn denied_group(ctx: &Ctx, operation: i8, group: &str) -> bool {
    !ctx.allowed(operation, resource::GROUP, group)
}

/// Shared mode: a group's share-partition start offsets as the store holds them (each
/// partition's leader writes them there), `None` when it holds none; an `Err` is the message
/// to answer with. On a single node: `Ok(None)` (the coordinator holds them all).
async fn stored_starts(ctx: &Ctx, group_id: &str) -> Result<Option<Vec<((uuid::Uuid, i32), i64)>>, String> {
    let Some(shared) = ctx.broker.cluster.shared() else { return Ok(None) };
    let rows = shared.group_share_states(group_id).await.map_err(|e| e.to_string())?;
    let mut starts: Vec<_> = rows
        .into_iter()
        .filter_map(|(t, p, state)| Some(((t, p), crate::group::share::store::decode_value(&state)?.start_offset)))
        .collect();
    starts.sort();
    Ok((!starts.is_empty()).then_some(starts))
}

pub async fn handle_describe(ctx: &Ctx, req: DescribeShareGroupOffsetsRequest) -> Reply {
    let share = &ctx.broker.share_groups;
    let mut stored = std::collections::HashMap::new();
    if ctx.coordinates_groups() {
        for g in &req.groups {
            let id = g.group_id.0.as_str();
            if !denied_group(ctx, op::DESCRIBE, id) {
                stored.insert(id.to_string(), stored_starts(ctx, id).await);
            }
        }
    }
    let groups = req
        .groups
        .into_iter()
        .map(|g| {
            let id = g.group_id.0.as_str().to_string();
            let out = DescribeShareGroupOffsetsResponseGroup::default().with_group_id(g.group_id.clone());
            if denied_group(ctx, op::DESCRIBE, &id) {
                return out.with_error_code(super::GROUP_DENIED);
            }
            if !ctx.coordinates_groups() {
                return out.with_error_code(super::NOT_COORDINATOR);
            }
            let starts = match stored.remove(&id) {
                Some(Err(message)) => {
                    return out
                        .with_error_code(ResponseError::RequestTimedOut.code())
                        .with_error_message(Some(str_bytes(&message)))
                }
                Some(Ok(Some(starts))) => starts,
                _ => match share.describe(&id) {
                    Some(group) => group.start_offsets(),
                    None => {
                        return out
                            .with_error_code(ResponseError::GroupIdNotFound.code())
                            .with_error_message(Some(str_bytes(&format!("Share group {id} not found."))))
                    }
                },
            };
            // Named topics (every partition asked, -1 where nothing was fetched yet), or all
            // the share-partitions the group has.
            let wanted: Vec<(String, Vec<i32>)> = match g.topics {
                Some(topics) => topics.into_iter().map(|t| (t.topic_name.0.to_string(), t.partitions)).collect(),
                None => {
                    let mut by_topic: std::collections::BTreeMap<String, Vec<i32>> = Default::default();
                    for ((tid, p), _) in &starts {
                        if let Some(t) = ctx.broker.topic_by_id(tid) {
                            by_topic.entry(t.name.to_string()).or_default().push(*p);
                        }
                    }
                    by_topic.into_iter().collect()
                }
            };
            let topics = wanted
                .into_iter()
                .map(|(name, partitions)| {
                    let meta = ctx.broker.topic(&name);
                    let allowed = ctx.allowed(op::DESCRIBE, resource::TOPIC, &name);
                    let parts = partitions
                        .into_iter()
                        .map(|p| {
                            let out = DescribeShareGroupOffsetsResponsePartition::default()
                                .with_partition_index(p)
                                .with_start_offset(-1)
                                .with_leader_epoch(LEADER_EPOCH);
                            if !allowed {
                                return out.with_error_code(ResponseError::TopicAuthorizationFailed.code());
                            }
                            let Some(m) = meta.as_ref().filter(|m| p >= 0 && p < m.partitions) else {
                                return out.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                            };
                            let start = starts.iter().find(|(tp, _)| *tp == (m.id, p)).map_or(-1, |(_, o)| *o);
                            out.with_start_offset(start)
                        })
                        .collect();
                    DescribeShareGroupOffsetsResponseTopic::default()
                        .with_topic_name(topic_name(&name))
                        .with_topic_id(meta.map(|m| m.id).unwrap_or_default())
                        .with_partitions(parts)
                })
                .collect();
            out.with_topics(topics)
        })
        .collect();
    ctx.reply(&DescribeShareGroupOffsetsResponse::default().with_groups(groups))
}

pub async fn handle_alter(ctx: &Ctx, req: AlterShareGroupOffsetsRequest) -> Reply {
    let id = req.group_id.0.as_str();
    let fail = |code: ResponseError, message: String| {
        AlterShareGroupOffsetsResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(str_bytes(&message)))
    };
    if denied_group(ctx, op::READ, id) {
        let e = ResponseError::GroupAuthorizationFailed;
        return ctx.reply(&fail(e, e.to_string()));
    }
    if !ctx.coordinates_groups() {
        return ctx.reply(&fail(ResponseError::NotCoordinator, super::not_coordinator(ctx)));
    }
    if ctx.broker.groups.exists(id) {
        return ctx.reply(&fail(ResponseError::GroupIdNotFound, format!("Group {id} is not a share group.")));
    }
    if let Err(message) = ctx.broker.share_groups.open_empty(id) {
        return ctx.reply(&fail(ResponseError::NonEmptyGroup, message));
    }
    // Checked here; the partitions' leaders then start the share-partitions afresh.
    let mut resets = Vec::new();
    let checked: Vec<_> = req
        .topics
        .iter()
        .map(|t| {
            let name = t.topic_name.0.as_str();
            let meta = ctx.broker.topic(name);
            let allowed = ctx.allowed(op::READ, resource::TOPIC, name);
            let parts: Vec<(i32, Option<(ResponseError, String)>)> = t
                .partitions
                .iter()
                .map(|p| {
                    let error = if !allowed {
                        ResponseError::TopicAuthorizationFailed
                    } else if meta.as_ref().is_none_or(|m| p.partition_index < 0 || p.partition_index >= m.partitions) {
                        ResponseError::UnknownTopicOrPartition
                    } else if p.start_offset < 0 {
                        let message = "The start offset of a share-partition must be 0 or more.".to_string();
                        return (p.partition_index, Some((ResponseError::InvalidRequest, message)));
                    } else {
                        let id = meta.as_ref().map(|m| m.id).unwrap_or_default();
                        resets.push(((id, p.partition_index), Some(p.start_offset)));
                        return (p.partition_index, None);
                    };
                    (p.partition_index, Some((error, error.to_string())))
                })
                .collect();
            (t.topic_name.clone(), meta.map(|m| m.id).unwrap_or_default(), parts)
        })
        .collect();
    let outcomes = crate::handlers::share_state::reset_on_leaders(&ctx.broker, id, resets).await;
    let responses = checked
        .into_iter()
        .map(|(name, topic_id, parts)| {
            let partitions = parts
                .into_iter()
                .map(|(p, error)| {
                    let out = AlterShareGroupOffsetsResponsePartition::default().with_partition_index(p);
                    let failure = match error {
                        Some((e, message)) => Some((e.code(), message)),
                        None => outcomes.get(&(topic_id, p)).and_then(|o| o.clone().err()),
                    };
                    match failure {
                        Some((code, message)) => {
                            out.with_error_code(code).with_error_message(Some(str_bytes(&message)))
                        }
                        None => out,
                    }
                })
                .collect();
            AlterShareGroupOffsetsResponseTopic::default()
                .with_topic_name(name)
                .with_topic_id(topic_id)
                .with_partitions(partitions)
        })
        .collect();
    ctx.reply(&AlterShareGroupOffsetsResponse::default().with_error_message(None).with_responses(responses))
}

pub async fn handle_delete(ctx: &Ctx, req: DeleteShareGroupOffsetsRequest) -> Reply {
    let id = req.group_id.0.as_str();
    let fail = |code: ResponseError, message: String| {
        DeleteShareGroupOffsetsResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(str_bytes(&message)))
    };
    if denied_group(ctx, op::DELETE, id) {
        let e = ResponseError::GroupAuthorizationFailed;
        return ctx.reply(&fail(e, e.to_string()));
    }
    if !ctx.coordinates_groups() {
        return ctx.reply(&fail(ResponseError::NotCoordinator, super::not_coordinator(ctx)));
    }
    // The group exists if its coordinator holds it, or (shared mode) the store holds state of
    // it that leaders wrote.
    match ctx.broker.share_groups.describe(id) {
        Some(g) if !g.members.is_empty() => {
            let message = format!("The share group {id} has members: stop them before deleting its offsets.");
            return ctx.reply(&fail(ResponseError::NonEmptyGroup, message));
        }
        Some(_) => {}
        None => match stored_starts(ctx, id).await {
            Err(message) => return ctx.reply(&fail(ResponseError::RequestTimedOut, message)),
            Ok(Some(_)) => {}
            Ok(None) => {
                return ctx.reply(&fail(ResponseError::GroupIdNotFound, format!("Share group {id} not found.")))
            }
        },
    }
    // Every partition of each topic: its leader forgets the group's share-partition if it
    // holds one.
    let mut resets = Vec::new();
    let checked: Vec<_> = req
        .topics
        .iter()
        .map(|t| {
            let name = t.topic_name.0.as_str();
            if !ctx.allowed(op::READ, resource::TOPIC, name) {
                return (t.topic_name.clone(), None, Some(ResponseError::TopicAuthorizationFailed));
            }
            match ctx.broker.topic(name) {
                None => (t.topic_name.clone(), None, Some(ResponseError::UnknownTopicOrPartition)),
                Some(m) => {
                    resets.extend((0..m.partitions).map(|p| ((m.id, p), None)));
                    (t.topic_name.clone(), Some(m.id), None)
                }
            }
        })
        .collect();
    let outcomes = crate::handlers::share_state::reset_on_leaders(&ctx.broker, id, resets).await;
    let responses = checked
        .into_iter()
        .map(|(name, topic_id, error)| {
            let out = DeleteShareGroupOffsetsResponseTopic::default().with_topic_name(name);
            let Some(topic_id) = topic_id else {
                let e = error.unwrap_or(ResponseError::UnknownServerError);
                return out.with_error_code(e.code()).with_error_message(Some(str_bytes(&e.to_string())));
            };
            let failure =
                outcomes.range((topic_id, i32::MIN)..=(topic_id, i32::MAX)).find_map(|(_, o)| o.clone().err());
            let out = out.with_topic_id(topic_id);
            match failure {
                Some((code, message)) => out.with_error_code(code).with_error_message(Some(str_bytes(&message))),
                None => out.with_error_message(None),
            }
        })
        .collect();
    ctx.reply(&DeleteShareGroupOffsetsResponse::default().with_error_message(None).with_responses(responses))
}
