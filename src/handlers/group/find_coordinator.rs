//! FindCoordinator: this broker coordinates every group (and would every transaction).

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};

use crate::handlers::common::str_bytes;
use crate::handlers::{Ctx, Reply};

pub async fn handle(ctx: &Ctx, req: FindCoordinatorRequest) -> Reply {
    let node = &ctx.broker.node;
    let (id, host, port) = (BrokerId(node.node_id), str_bytes(&ctx.advertised.host), i32::from(ctx.advertised.port));
    let resp = if ctx.version >= 4 {
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(id)
                    .with_host(host.clone())
                    .with_port(port)
                    .with_error_message(None)
            })
            .collect();
        FindCoordinatorResponse::default().with_coordinators(coordinators).with_error_message(None)
    } else {
        // KIP-467: no message on success (null).
        FindCoordinatorResponse::default().with_node_id(id).with_host(host).with_port(port).with_error_message(None)
    };
    ctx.reply(&resp)
}
