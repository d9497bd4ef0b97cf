//! FindCoordinator: on a single node this broker coordinates every group and transaction; in
//! shared mode the leader of `__consumer_offsets` (groups) or `__transaction_state`
//! (transactions) does, and COORDINATOR_NOT_AVAILABLE answers while no live broker leads it.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};

use crate::auth::acl::{op, resource};
use crate::group::OFFSETS_TOPIC;
use crate::handlers::common::str_bytes;
use crate::handlers::error_codes::ResponseError;
use crate::handlers::{Ctx, Reply};
use crate::txn::TXN_TOPIC;

/// Kafka's key types.
const GROUP_KEY: i8 = 0;
const TRANSACTION_KEY: i8 = 1;

/// Kafka 4.1: DESCRIBE on the group or the transactional id the key names.
fn denied(ctx: &Ctx, key_type: i8, key: &str) -> Option<ResponseError> {
    match key_type {
        GROUP_KEY if !ctx.allowed(op::DESCRIBE, resource::GROUP, key) => Some(ResponseError::GroupAuthorizationFailed),
        TRANSACTION_KEY if !ctx.allowed(op::DESCRIBE, resource::TRANSACTIONAL_ID, key) => {
            Some(ResponseError::TransactionalIdAuthorizationFailed)
        }
        _ => None,
    }
}

/// The coordinator's id, host and port as this client reaches it, or why there is none.
fn coordinator(ctx: &Ctx, key_type: i8) -> Result<(BrokerId, String, i32), ResponseError> {
    let topic = if key_type == TRANSACTION_KEY { TXN_TOPIC } else { OFFSETS_TOPIC };
    let id = ctx.broker.cluster.coordinator(topic).ok_or(ResponseError::CoordinatorNotAvailable)?;
    let node = ctx.nodes().into_iter().find(|n| n.id == id).ok_or(ResponseError::CoordinatorNotAvailable)?;
    Ok((BrokerId(node.id), node.host, i32::from(node.port)))
}

pub async fn handle(ctx: &Ctx, req: FindCoordinatorRequest) -> Reply {
    let key_type = if ctx.version >= 1 { req.key_type } else { GROUP_KEY };
    let found = coordinator(ctx, key_type);
    // Per key: refused, or the coordinator.
    let answer = |key: &str| match denied(ctx, key_type, key) {
        Some(e) => Err(e),
        None => found.clone(),
    };
    let resp = if ctx.version >= 4 {
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| match answer(key.as_str()) {
                Ok((id, host, port)) => Coordinator::default()
                    .with_key(key)
                    .with_node_id(id)
                    .with_host(str_bytes(&host))
                    .with_port(port)
                    .with_error_message(None),
                Err(e) => Coordinator::default()
                    .with_key(key)
                    .with_node_id(BrokerId(-1))
                    .with_host(str_bytes(""))
                    .with_port(-1)
                    .with_error_code(e.code())
                    .with_error_message(Some(str_bytes(&e.to_string()))),
            })
            .collect();
        FindCoordinatorResponse::default().with_coordinators(coordinators).with_error_message(None)
    } else {
        match answer(req.key.as_str()) {
            // KIP-467: no message on success (null).
            Ok((id, host, port)) => FindCoordinatorResponse::default()
                .with_node_id(id)
                .with_host(str_bytes(&host))
                .with_port(port)
                .with_error_message(None),
            Err(e) => {
                let mut resp = FindCoordinatorResponse::default()
                    .with_node_id(BrokerId(-1))
                    .with_host(str_bytes(""))
                    .with_port(-1)
                    .with_error_code(e.code());
                if ctx.version >= 1 {
                    resp.error_message = Some(str_bytes(&e.to_string()));
                }
                resp
            }
        }
    };
    ctx.reply(&resp)
}
