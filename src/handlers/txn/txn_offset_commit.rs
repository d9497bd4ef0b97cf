//! TxnOffsetCommit: offsets committed inside the producer's transaction; they become the
//! group's committed offsets when the transaction commits (see `group::txn_offsets`).

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use tracing::error;

use crate::auth::acl::{op, resource};
use crate::clock::now_ms;
use crate::group::{CommittedOffset, GroupError};
use crate::handlers::authz::{merge_refusals, partition_refusals};
use crate::handlers::error_codes::{ResponseError, ToKafkaCode};
use crate::handlers::group::opt_str;
use crate::handlers::{encode, Ctx, Reply};

pub async fn handle(ctx: &Ctx, req: TxnOffsetCommitRequest) -> Reply {
    let now = now_ms();
    // Kafka 4.1: WRITE on the transactional id, READ on the group (either refusal fails every
    // partition), READ on each topic (the refused ones fail, the rest are committed).
    let whole = if !ctx.allowed(op::WRITE, resource::TRANSACTIONAL_ID, req.transactional_id.0.as_str()) {
        Some(ResponseError::TransactionalIdAuthorizationFailed.code())
    } else if !ctx.allowed(op::READ, resource::GROUP, req.group_id.0.as_str()) {
        Some(ResponseError::GroupAuthorizationFailed.code())
    } else {
        // Sent to the group's coordinator, as OffsetCommit.
        (!ctx.coordinates_groups()).then_some(ResponseError::NotCoordinator.code())
    };
    let topic_denied = ctx.denied_topics(op::READ, req.topics.iter().map(|t| t.name.0.as_str()));
    let refusals = partition_refusals(whole, &topic_denied, req.topics.iter().map(|t| t.partitions.len()));
    let offsets: Vec<(String, i32, CommittedOffset)> = req
        .topics
        .iter()
        .zip(&topic_denied)
        .filter(|(_, &denied)| whole.is_none() && !denied)
        .map(|(t, _)| t)
        .flat_map(|t| {
            t.partitions.iter().map(move |p| {
                let offset = CommittedOffset {
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: opt_str(&p.committed_metadata).unwrap_or_default(),
                    commit_timestamp: now,
                };
                (t.name.0.to_string(), p.partition_index, offset)
            })
        })
        .collect();
    let shape: Vec<(kafka_protocol::messages::TopicName, Vec<i32>)> =
        req.topics.iter().map(|t| (t.name.clone(), t.partitions.iter().map(|p| p.partition_index).collect())).collect();
    let n = offsets.len();
    let broker = ctx.broker.clone();
    // Everything refused: nothing is committed, as Kafka answers without asking the group.
    let nothing_to_commit = n == 0 && refusals.iter().any(Option::is_some);
    let (group, tid) = (req.group_id.0.to_string(), req.transactional_id.0.to_string());
    let (pid, epoch, version) = (req.producer_id.0, req.producer_epoch, ctx.version);
    let member =
        (version >= 3).then(|| (req.member_id.to_string(), opt_str(&req.group_instance_id), req.generation_id));
    let outcome = tokio::task::spawn_blocking(move || {
        if nothing_to_commit {
            return Ok(crate::group::CommitOutcome { results: Vec::new(), durable_at: None });
        }
        // The group's offsets partition must be part of this producer's ongoing transaction
        // (AddOffsetsToTxn) and the producer current.
        // Held until the offsets are written, so that they cannot land after the marker.
        let mut guard = broker.txns.lock_for_produce(&tid);
        let offsets_tp = (crate::group::OFFSETS_TOPIC.to_string(), 0);
        let verified = match crate::handlers::common::txn_coordinator_elsewhere(&broker) {
            // Shared mode: the transaction coordinator on another broker checks (and adds).
            Some(elsewhere) => elsewhere
                .and_then(|(remote, node)| remote.check_partition(node, &tid, pid, epoch, &offsets_tp, version >= 5)),
            None => match guard.verify(pid, epoch, &offsets_tp) {
                // Transaction Version 2 (v5+) sends no AddOffsetsToTxn: the commit adds it.
                Err(crate::txn::TxnError::PartitionNotAdded) if version >= 5 => {
                    broker.txns.add_implicitly(&mut guard, pid, epoch, &offsets_tp, now)
                }
                other => other,
            },
        };
        if let Err(e) = verified {
            let code = match e {
                crate::txn::TxnError::PartitionNotAdded => ResponseError::InvalidTxnState,
                // As Kafka's group coordinator turns a retriable append or verification error
                // (NOT_ENOUGH_REPLICAS) into COORDINATOR_NOT_AVAILABLE for offset commits.
                crate::txn::TxnError::Unverified(_) => ResponseError::CoordinatorNotAvailable,
                e => crate::handlers::error_codes::txn_code(&e, version, 3),
            };
            return Err(code);
        }
        let member = member.as_ref().map(|(m, i, g)| (m.as_str(), i.as_deref(), *g));
        broker
            .groups
            .txn_commit(&group, pid, epoch, member, offsets, |t, p| broker.partition(t, p).is_some())
            .map_err(|e: GroupError| e.kafka_code())
    })
    .await;
    let Ok(outcome) = outcome else {
        return Reply::Close("transactional offset commit could not be completed".into());
    };
    let (codes, durable_at): (Vec<i16>, _) = match outcome {
        Ok(o) => {
            (o.results.iter().map(|r| r.as_ref().err().map_or(0, |e| e.kafka_code().code())).collect(), o.durable_at)
        }
        Err(code) => (vec![code.code(); n], None),
    };
    let codes = merge_refusals(&refusals, codes);
    let build = move |codes: &[i16]| {
        let mut it = codes.iter();
        let topics = shape
            .iter()
            .map(|(name, parts)| {
                TxnOffsetCommitResponseTopic::default().with_name(name.clone()).with_partitions(
                    parts
                        .iter()
                        .map(|p| {
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(*p)
                                .with_error_code(*it.next().unwrap_or(&0))
                        })
                        .collect(),
                )
            })
            .collect();
        TxnOffsetCommitResponse::default().with_topics(topics)
    };
    let Some((log, end)) = durable_at else {
        return ctx.reply(&build(&codes));
    };
    let (correlation_id, version) = (ctx.correlation_id, ctx.version);
    Reply::Deferred(Box::pin(async move {
        let codes = match log.flush_to(end).await {
            Ok(()) => codes,
            Err(e) => {
                error!(error = %e, "fsync of a transactional offset commit failed");
                vec![ResponseError::KafkaStorageError.code(); codes.len()]
            }
        };
        encode(correlation_id, version, &build(&codes))
    }))
}
