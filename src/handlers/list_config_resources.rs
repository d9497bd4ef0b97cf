//! ListConfigResources (KIP-1142; v0 was ListClientMetricsResources): the resources whose
//! configs DescribeConfigs can show. v0 lists client-metrics subscriptions only, of which
//! gregor has none. v1 takes resource types (none named: every type) and lists topics (the
//! internal ones too), this broker under its id for BROKER and BROKER_LOGGER, and the groups.
//! A type Kafka does not list this way is UNSUPPORTED_VERSION for the whole request, as
//! Kafka 4.1 answers it.

use kafka_protocol::messages::list_config_resources_response::ConfigResource;
use kafka_protocol::messages::{ListConfigResourcesRequest, ListConfigResourcesResponse};

use super::common::str_bytes;
use super::{Ctx, Reply};
use crate::handlers::error_codes::ResponseError;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
const CLIENT_METRICS: i8 = 16;
const GROUP: i8 = 32;
const TYPES: [i8; 5] = [TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP];

pub async fn handle(ctx: &Ctx, req: ListConfigResourcesRequest) -> Reply {
    ctx.reply(&answer(ctx, req))
}

fn answer(ctx: &Ctx, req: ListConfigResourcesRequest) -> ListConfigResourcesResponse {
    let mut resp = ListConfigResourcesResponse::default();
    if !ctx.cluster_allows(crate::auth::acl::op::DESCRIBE_CONFIGS) {
        resp.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return resp;
    }
    if ctx.version == 0 {
        // Client-metrics subscriptions only: gregor keeps none.
        return resp;
    }
    let types: Vec<i8> = if req.resource_types.is_empty() { TYPES.to_vec() } else { req.resource_types };
    if types.iter().any(|t| !TYPES.contains(t)) {
        resp.error_code = ResponseError::UnsupportedVersion.code();
        return resp;
    }
    let broker = &ctx.broker;
    let item =
        |kind: i8, name: &str| ConfigResource::default().with_resource_type(kind).with_resource_name(str_bytes(name));
    for kind in types {
        match kind {
            TOPIC => resp.config_resources.extend(broker.all_topics().iter().map(|t| item(TOPIC, &t.name))),
            BROKER | BROKER_LOGGER => resp.config_resources.push(item(kind, &broker.node.node_id.to_string())),
            GROUP => resp.config_resources.extend(broker.groups.list().iter().map(|(id, _, _)| item(GROUP, id))),
            _ => {}
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::tests::test_ctx;

    #[test]
    fn lists_topics_and_the_broker_and_refuses_unknown_types() {
        let (mut ctx, _dir) = test_ctx();
        ctx.broker.create_topic(crate::broker::NewTopic::with_partitions("t", 1), false).unwrap();
        ctx.version = 1;
        let all = answer(&ctx, ListConfigResourcesRequest::default());
        let listed: Vec<(i8, String)> =
            all.config_resources.iter().map(|r| (r.resource_type, r.resource_name.to_string())).collect();
        assert_eq!(listed, vec![(TOPIC, "t".to_string()), (BROKER, "1".into()), (BROKER_LOGGER, "1".into())]);

        let topics = answer(&ctx, ListConfigResourcesRequest::default().with_resource_types(vec![TOPIC]));
        assert_eq!(topics.config_resources.len(), 1);

        let refused = answer(&ctx, ListConfigResourcesRequest::default().with_resource_types(vec![TOPIC, 64]));
        assert_eq!(refused.error_code, ResponseError::UnsupportedVersion.code());
        assert!(refused.config_resources.is_empty());

        ctx.version = 0;
        assert!(answer(&ctx, ListConfigResourcesRequest::default()).config_resources.is_empty());
    }
}
