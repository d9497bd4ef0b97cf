//! DeleteTopics: by name (all versions) and by topic id (v6+).

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
use uuid::Uuid;

use super::common::{off_runtime, str_bytes, topic_name};
use super::{Ctx, Reply};
use crate::auth::acl::{op, resource};
use crate::handlers::error_codes::{ResponseError, ToKafkaCode};

pub async fn handle(ctx: &Ctx, req: DeleteTopicsRequest) -> Reply {
    let v = ctx.version;
    let broker = &ctx.broker;
    // (name if given, id if given)
    let wanted: Vec<(Option<String>, Uuid)> = if v >= 6 {
        req.topics.into_iter().map(|t| (t.name.map(|n| n.0.as_str().to_string()), t.topic_id)).collect()
    } else {
        req.topic_names.into_iter().map(|n| (Some(n.0.as_str().to_string()), Uuid::nil())).collect()
    };
    let mut responses = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        responses.push({
            let mut r = DeletableTopicResult::default();
            let resolved = match &name {
                Some(n) => Some(n.clone()),
                None => broker.topics.get_by_id(&id).map(|t| t.name.to_string()),
            };
            if v >= 6 {
                r.topic_id = id;
            }
            r.name = name.as_deref().map(topic_name);
            let Some(target) = resolved else {
                r.error_code = ResponseError::UnknownTopicId.code();
                responses.push(r);
                continue;
            };
            // Kafka 4.1: by id, a topic the principal may not DESCRIBE keeps its name secret;
            // either way deleting needs DELETE.
            let by_id = name.is_none();
            if (by_id && !ctx.allowed(op::DESCRIBE, resource::TOPIC, &target))
                || !ctx.allowed(op::DELETE, resource::TOPIC, &target)
            {
                r.error_code = ResponseError::TopicAuthorizationFailed.code();
                if v >= 5 {
                    r.error_message = Some(str_bytes("Not authorized to delete the topic."));
                }
                if by_id && v >= 6 && ctx.allowed(op::DESCRIBE, resource::TOPIC, &target) {
                    r.name = Some(topic_name(&target));
                }
                responses.push(r);
                continue;
            }
            let b = broker.clone();
            match off_runtime(move || b.delete_topic(&target)).await {
                Ok(meta) => {
                    if v >= 6 {
                        r.topic_id = meta.id;
                        r.name = Some(topic_name(&meta.name));
                    }
                }
                Err(e) => {
                    r.error_code = e.kafka_code().code();
                    if v >= 5 {
                        r.error_message = Some(str_bytes(&e.to_string()));
                    }
                }
            }
            r
        });
    }
    ctx.reply(&DeleteTopicsResponse::default().with_responses(responses))
}
