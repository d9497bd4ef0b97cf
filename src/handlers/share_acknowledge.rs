//! ShareAcknowledge (KIP-932): a share consumer accepts, releases or rejects records it
//! acquired, outside a fetch (a commit, or the last acknowledgements before it leaves with
//! epoch -1). Shares the session and acknowledgement steps with [`super::share_fetch`].
//! Authorized as Kafka 4.1: READ on the group, READ on each topic.

use std::collections::BTreeMap;

use kafka_protocol::messages::share_acknowledge_response::{
    LeaderIdAndEpoch, PartitionData, ShareAcknowledgeTopicResponse,
};
use kafka_protocol::messages::{ShareAcknowledgeRequest, ShareAcknowledgeResponse};
use uuid::Uuid;

use super::share_fetch::{acknowledge, check_partition, current_leader, prepare, Outcomes};
use crate::group::share;
use crate::handlers::common::str_bytes;
use crate::handlers::error_codes::{ResponseError, ToKafkaCode};
use crate::handlers::{Ctx, Reply};

fn error_response(code: ResponseError, message: String) -> ShareAcknowledgeResponse {
    ShareAcknowledgeResponse::default().with_error_code(code.code()).with_error_message(Some(str_bytes(&message)))
}

pub async fn handle(ctx: &Ctx, req: ShareAcknowledgeRequest) -> Reply {
    let broker = ctx.broker.clone();
    let group_id = req.group_id.as_ref().map(|g| g.0.as_str().to_string()).unwrap_or_default();
    let member_id = req.member_id.as_ref().map(|m| m.as_str().to_string()).unwrap_or_default();
    if !super::group::may_read_group(ctx, &group_id) {
        let e = ResponseError::GroupAuthorizationFailed;
        return ctx.reply(&error_response(e, e.to_string()));
    }
    if group_id.trim().is_empty() || member_id.trim().is_empty() {
        return ctx.reply(&error_response(
            ResponseError::InvalidRequest,
            "A ShareAcknowledge needs a group id and a member id.".into(),
        ));
    }
    let epoch = req.share_session_epoch;
    let mut outcomes = Outcomes::default();
    let mut acks = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            let tp = (t.topic_id, p.partition_index);
            match check_partition(ctx, &t.topic_id, p.partition_index) {
                Err(e) => {
                    outcomes.errors.insert(tp, e);
                }
                Ok(_) => {
                    let batches = p
                        .acknowledgement_batches
                        .iter()
                        .map(|b| (b.first_offset, b.last_offset, b.acknowledge_types.clone()))
                        .collect();
                    acks.push((tp, batches));
                }
            }
        }
    }
    tracing::debug!(group = %group_id, member = %member_id, epoch, "share acknowledge");
    if let Err(e) = broker.share_groups.session(&group_id, &member_id, epoch, false, &[], &[]) {
        tracing::debug!(group = %group_id, member = %member_id, error = %e, "ShareAcknowledge session refused");
        return ctx.reply(&error_response(e.kafka_code(), e.to_string()));
    }
    let involved: Vec<(Uuid, i32)> = acks.iter().map(|(tp, _)| *tp).collect();
    prepare(&broker, &involved, &mut outcomes).await;
    for (tp, batches) in acks {
        if !outcomes.errors.contains_key(&tp) {
            acknowledge(&broker, &group_id, &member_id, tp, batches, &mut outcomes);
        }
    }
    if epoch == share::LEAVE_EPOCH {
        broker.share_groups.release_member(&group_id, &member_id);
    }
    let _ = super::share_fetch::persist(&broker).await;
    let mut topics: BTreeMap<Uuid, Vec<PartitionData>> = BTreeMap::new();
    let results = outcomes.errors.into_iter().map(|(tp, e)| (tp, Some(e))).chain(outcomes.acks);
    for ((t, p), result) in results {
        let (id, leader_epoch) = current_leader(&broker, (t, p));
        let leader = LeaderIdAndEpoch::default().with_leader_id(id).with_leader_epoch(leader_epoch);
        let mut data = PartitionData::default().with_partition_index(p).with_current_leader(leader);
        if let Some((code, message)) = result {
            data.error_code = code.code();
            data.error_message = Some(str_bytes(&message));
        }
        topics.entry(t).or_default().push(data);
    }
    ctx.reply(
        &ShareAcknowledgeResponse::default().with_error_message(None).with_responses(
            topics
                .into_iter()
                .map(|(t, ps)| ShareAcknowledgeTopicResponse::default().with_topic_id(t).with_partitions(ps))
                .collect(),
        ),
    )
}
