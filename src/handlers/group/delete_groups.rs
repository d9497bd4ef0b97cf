//! DeleteGroups: only groups without members, together with their committed offsets (share
//! groups with their share-partitions and group configs).
//!
//! Shared mode: a share group's share-partitions are held by their partitions' leaders. The
//! coordinator reads which partitions the store holds state of before it deletes the group,
//! deletes the store's rows, then has each of those leaders forget what it holds
//! ([`crate::handlers::share_state`]): a group created later with the same id starts afresh
//! everywhere.

use std::collections::HashMap;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use uuid::Uuid;

use crate::auth::acl::{op, resource};
use crate::group::share::DeleteError;
use crate::handlers::common::code_of;
use crate::handlers::error_codes::ResponseError;
use crate::handlers::{Ctx, Reply};

pub async fn handle(ctx: &Ctx, req: DeleteGroupsRequest) -> Reply {
    let broker = ctx.broker.clone();
    let denied: Vec<bool> =
        req.groups_names.iter().map(|g| !ctx.allowed(op::DELETE, resource::GROUP, g.0.as_str())).collect();
    let coordinates = ctx.coordinates_groups();
    // Shared mode: the partitions each share group has state on.
    let mut held: HashMap<String, Vec<(Uuid, i32)>> = HashMap::new();
    if let Some(shared) = broker.cluster.shared().filter(|_| coordinates) {
        for (g, _) in req.groups_names.iter().zip(&denied).filter(|(_, denied)| !**denied) {
            match shared.group_share_states(g.0.as_str()).await {
                Ok(rows) => {
                    held.insert(g.0.to_string(), rows.into_iter().map(|(t, p, _)| (t, p)).collect());
                }
                Err(e) => tracing::debug!(group = %g.0.as_str(), error = %e, "share group state not read"),
            }
        }
    }
    // Deleting appends tombstones to `__consumer_offsets`: off the runtime.
    let b = broker.clone();
    let stored: std::collections::HashSet<String> =
        held.iter().filter(|(_, parts)| !parts.is_empty()).map(|(g, _)| g.clone()).collect();
    let deleted = tokio::task::spawn_blocking(move || {
        let mut share_groups = Vec::new();
        let results: Vec<DeletableGroupResult> = req
            .groups_names
            .into_iter()
            .zip(denied)
            .map(|(g, denied)| {
                if denied {
                    return DeletableGroupResult::default().with_group_id(g).with_error_code(super::GROUP_DENIED);
                }
                if !coordinates {
                    return DeletableGroupResult::default().with_group_id(g).with_error_code(super::NOT_COORDINATOR);
                }
                // A share group: deleted with its share-partitions when it has no members.
                let id = g.0.as_str();
                let share = match b.share_groups.delete(id) {
                    Ok(false) if stored.contains(id) => b.share_groups.forget_stored(id),
                    other => other,
                };
                match share {
                    Ok(true) => {
                        share_groups.push(id.to_string());
                        return DeletableGroupResult::default().with_group_id(g);
                    }
                    Err(e) => {
                        let code = match e {
                            DeleteError::NotEmpty(_) => ResponseError::NonEmptyGroup,
                            DeleteError::NotKept(_) => ResponseError::RequestTimedOut,
                        };
                        tracing::debug!(group = %id, error = %e, "share group not deleted");
                        return DeletableGroupResult::default().with_group_id(g).with_error_code(code.code());
                    }
                    Ok(false) => {}
                }
                let r = b.groups.delete_group(id);
                DeletableGroupResult::default().with_group_id(g).with_error_code(code_of(&r))
            })
            .collect();
        // Deleted share groups' share-partitions get their tombstones (a failure is logged and
        // retried with the next change).
        let _ = b.share_groups.persist();
        (results, share_groups)
    })
    .await;
    let Ok((results, share_groups)) = deleted else {
        return Reply::Close("DeleteGroups could not be completed".to_string());
    };
    for group in share_groups {
        let parts: Vec<_> = held.remove(&group).unwrap_or_default().into_iter().map(|tp| (tp, None)).collect();
        if parts.is_empty() {
            continue;
        }
        let outcomes = crate::handlers::share_state::reset_on_leaders(&broker, &group, parts).await;
        for ((topic_id, p), outcome) in outcomes {
            if let Err((code, message)) = outcome {
                tracing::warn!(group = %group, topic_id = %topic_id, partition = p, code, message = %message,
                    "a deleted share group's share-partition may stay at its leader until the partition moves");
            }
        }
    }
    ctx.reply(&DeleteGroupsResponse::default().with_results(results))
}
