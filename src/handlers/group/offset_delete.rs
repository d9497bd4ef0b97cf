//! OffsetDelete: removes a group's committed offsets for partitions its members do not consume.

use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use crate::auth::acl::{op, resource};
use crate::handlers::error_codes::{ResponseError, ToKafkaCode};
use crate::handlers::{Ctx, Reply};

pub async fn handle(ctx: &Ctx, req: OffsetDeleteRequest) -> Reply {
    // Kafka 4.1: DELETE on the group, READ on each topic (TOPIC_AUTHORIZATION_FAILED for the
    // partitions of the others, which are not touched).
    if !ctx.allowed(op::DELETE, resource::GROUP, req.group_id.0.as_str()) {
        return ctx.reply(&OffsetDeleteResponse::default().with_error_code(super::GROUP_DENIED));
    }
    if !ctx.coordinates_groups() {
        return ctx.reply(&OffsetDeleteResponse::default().with_error_code(super::NOT_COORDINATOR));
    }
    let denied = ctx.denied_topics(op::READ, req.topics.iter().map(|t| t.name.0.as_str()));
    let partitions: Vec<(String, i32)> = req
        .topics
        .iter()
        .zip(&denied)
        .filter(|(_, &d)| !d)
        .map(|(t, _)| t)
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.0.as_str().to_string(), p.partition_index)))
        .collect();
    // Deleting appends tombstones to `__consumer_offsets`: off the runtime.
    let (broker, group) = (ctx.broker.clone(), req.group_id.0.to_string());
    let deleted = tokio::task::spawn_blocking(move || broker.groups.delete_offsets(&group, &partitions)).await;
    let Ok(deleted) = deleted else {
        return Reply::Close("offset deletion could not be completed".into());
    };
    let resp = match deleted {
        Err(e) => OffsetDeleteResponse::default().with_error_code(e.kafka_code().code()),
        Ok(results) => {
            let mut it = results.into_iter();
            let topics = req
                .topics
                .into_iter()
                .zip(denied)
                .map(|(t, denied)| {
                    let parts = t
                        .partitions
                        .iter()
                        .map(|p| {
                            if denied {
                                return OffsetDeleteResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(ResponseError::TopicAuthorizationFailed.code());
                            }
                            let code = it.next().and_then(|r| r.err()).map_or(0, |e| e.kafka_code().code());
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect();
                    OffsetDeleteResponseTopic::default().with_name(t.name).with_partitions(parts)
                })
                .collect();
            OffsetDeleteResponse::default().with_topics(topics)
        }
    };
    ctx.reply(&resp)
}
