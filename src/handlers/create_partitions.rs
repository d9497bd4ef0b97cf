//! CreatePartitions: grow a topic's partition count.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use super::common::{off_runtime, str_bytes};
use super::{Ctx, Reply};
use crate::auth::acl::{op, resource};
use crate::handlers::error_codes::{ResponseError, ToKafkaCode};

pub async fn handle(ctx: &Ctx, req: CreatePartitionsRequest) -> Reply {
    let mut seen = std::collections::HashSet::new();
    let duplicated: std::collections::HashSet<String> =
        req.topics.iter().map(|t| t.name.0.as_str().to_string()).filter(|n| !seen.insert(n.clone())).collect();
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let name = t.name.0.as_str().to_string();
        let result = CreatePartitionsTopicResult::default().with_name(t.name);
        if duplicated.contains(&name) {
            results.push(
                result
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(str_bytes("Duplicate topic in request."))),
            );
            continue;
        }
        if !ctx.allowed(op::ALTER, resource::TOPIC, &name) {
            results.push(
                result
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                    .with_error_message(Some(str_bytes(&format!("Not authorized to alter topic {name}.")))),
            );
            continue;
        }
        let assignments: Option<Vec<Vec<i32>>> =
            t.assignments.map(|a| a.into_iter().map(|r| r.broker_ids.into_iter().map(|b| b.0).collect()).collect());
        let (b, count, validate_only) = (ctx.broker.clone(), t.count, req.validate_only);
        let created = off_runtime(move || b.create_partitions(&name, count, assignments.as_deref(), validate_only));
        results.push(match created.await {
            Ok(()) => result,
            Err(e) => result.with_error_code(e.kafka_code().code()).with_error_message(Some(str_bytes(&e.to_string()))),
        });
    }
    ctx.reply(&CreatePartitionsResponse::default().with_results(results))
}
