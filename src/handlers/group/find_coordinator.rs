//! FindCoordinator: this broker coordinates every group (and would every transaction).

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};

use crate::auth::acl::{op, resource};
use crate::handlers::common::str_bytes;
use crate::handlers::error_codes::ResponseError;
use crate::handlers::{Ctx, Reply};

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

pub async fn handle(ctx: &Ctx, req: FindCoordinatorRequest) -> Reply {
    let node = &ctx.broker.node;
    let (id, host, port) = (BrokerId(node.node_id), str_bytes(&ctx.advertised.host), i32::from(ctx.advertised.port));
    let resp = if ctx.version >= 4 {
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                if let Some(e) = denied(ctx, req.key_type, key.as_str()) {
                    return Coordinator::default()
                        .with_key(key)
                        .with_node_id(BrokerId(-1))
                        .with_host(str_bytes(""))
                        .with_port(-1)
                        .with_error_code(e.code())
                        .with_error_message(Some(str_bytes(&e.to_string())));
                }
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(id)
                    .with_host(host.clone())
                    .with_port(port)
                    .with_error_message(None)
            })
            .collect();
        FindCoordinatorResponse::default().with_coordinators(coordinators).with_error_message(None)
    } else if let Some(e) = denied(ctx, if ctx.version >= 1 { req.key_type } else { GROUP_KEY }, req.key.as_str()) {
        let mut resp = FindCoordinatorResponse::default()
            .with_node_id(BrokerId(-1))
            .with_host(str_bytes(""))
            .with_port(-1)
            .with_error_code(e.code());
        if ctx.version >= 1 {
            resp.error_message = Some(str_bytes(&e.to_string()));
        }
        resp
    } else {
        // KIP-467: no message on success (null).
        FindCoordinatorResponse::default().with_node_id(id).with_host(host).with_port(port).with_error_message(None)
    };
    ctx.reply(&resp)
}
