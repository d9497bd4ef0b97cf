//! DeleteGroups: only groups without members, together with their committed offsets (share
//! groups with their share-partitions and group configs).

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use crate::auth::acl::{op, resource};
use crate::group::share::DeleteError;
use crate::handlers::common::{code_of, reply_off_runtime};
use crate::handlers::error_codes::ResponseError;
use crate::handlers::{Ctx, Reply};

pub async fn handle(ctx: &Ctx, req: DeleteGroupsRequest) -> Reply {
    // Deleting appends tombstones to `__consumer_offsets`: off the runtime.
    let broker = ctx.broker.clone();
    let denied: Vec<bool> =
        req.groups_names.iter().map(|g| !ctx.allowed(op::DELETE, resource::GROUP, g.0.as_str())).collect();
    let coordinates = ctx.coordinates_groups();
    reply_off_runtime(ctx, "DeleteGroups", move || {
        let results = req
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
                match broker.share_groups.delete(g.0.as_str()) {
                    Ok(true) => return DeletableGroupResult::default().with_group_id(g),
                    Err(e) => {
                        let code = match e {
                            DeleteError::NotEmpty(_) => ResponseError::NonEmptyGroup,
                            DeleteError::NotKept(_) => ResponseError::RequestTimedOut,
                        };
                        tracing::debug!(group = %g.0.as_str(), error = %e, "share group not deleted");
                        return DeletableGroupResult::default().with_group_id(g).with_error_code(code.code());
                    }
                    Ok(false) => {}
                }
                let r = broker.groups.delete_group(g.0.as_str());
                DeletableGroupResult::default().with_group_id(g).with_error_code(code_of(&r))
            })
            .collect();
        // Deleted share groups' share-partitions get their tombstones (a failure is logged and
        // retried with the next change).
        let _ = broker.share_groups.persist();
        DeleteGroupsResponse::default().with_results(results)
    })
    .await
}
