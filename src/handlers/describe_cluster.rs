//! DescribeCluster (v0–2): the cluster id, the live brokers (this one alone on a single node),
//! the "controller" a broker endpoint reports (as Kafka 4.1 brokers report one of the live
//! brokers: this one, or in shared mode the live broker with the lowest id), and the
//! cluster operations a client may perform when asked (all of them: gregor has no ACLs yet).
//! A request for the controller endpoint type is MISMATCHED_ENDPOINT_TYPE, as a Kafka broker
//! answers it.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::common::str_bytes;
use super::{Ctx, Reply};
use crate::auth::acl::{op, resource, CLUSTER_NAME};
use crate::handlers::error_codes::ResponseError;

/// Endpoint types (v1+): 1 broker, 2 controller.
const BROKER_ENDPOINT: i8 = 1;

pub async fn handle(ctx: &Ctx, req: DescribeClusterRequest) -> Reply {
    let node = &ctx.broker.node;
    let mut resp = DescribeClusterResponse::default().with_error_message(None).with_endpoint_type(BROKER_ENDPOINT);
    if ctx.version >= 1 && req.endpoint_type != BROKER_ENDPOINT {
        return ctx.reply(&resp.with_error_code(ResponseError::MismatchedEndpointType.code()).with_error_message(
            Some(str_bytes(&format!(
                "The request was sent to a broker endpoint, not one of type {}",
                req.endpoint_type
            ))),
        ));
    }
    resp.cluster_id = str_bytes(&node.cluster_id);
    resp.controller_id = BrokerId(ctx.broker.cluster.controller());
    resp.brokers = ctx
        .nodes()
        .into_iter()
        .map(|n| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(n.id))
                .with_host(str_bytes(&n.host))
                .with_port(i32::from(n.port))
                .with_rack(n.rack.as_deref().map(str_bytes))
        })
        .collect();
    // Kafka 4.1: open to every principal; the operations only to one that may DESCRIBE it.
    resp.cluster_authorized_operations = match req.include_cluster_authorized_operations {
        false => i32::MIN,
        true if ctx.cluster_allows(op::DESCRIBE) => ctx.authorized_operations(resource::CLUSTER, CLUSTER_NAME),
        true => 0,
    };
    ctx.reply(&resp)
}
