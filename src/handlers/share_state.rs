//! Resetting a share group's share-partitions where they are held: at each partition's leader.
//!
//! A share group's coordinator keeps its members; each partition's leader keeps the group's
//! share-partition of it (the start offset, the records in flight). AlterShareGroupOffsets,
//! DeleteShareGroupOffsets and DeleteGroups reach the coordinator, so it asks each leader to
//! start the share-partitions afresh ([`reset_on_leaders`]): itself, or, in shared mode, the
//! broker leading the partition, with InitializeShareGroupState (a start offset) or
//! DeleteShareGroupState (forgotten) (`handlers::peers`). Those are Kafka's requests to its
//! share coordinator, the keeper of share-partition state; in gregor that keeper is the leader.
//!
//! The leader answers once the new state is written (shared mode: to the cluster's store,
//! fenced by its leader epoch), so a leader deposed meanwhile answers NOT_LEADER_OR_FOLLOWER
//! and the coordinator asks the next one, which loads what the store holds.
//!
//! Both requests are broker to broker, authorized as Kafka 4.1 authorizes them: CLUSTER_ACTION
//! on the cluster. They are served but not advertised, as Kafka's brokers do not advertise
//! their share coordinator's APIs to clients.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::{
    delete_share_group_state_response, initialize_share_group_state_response, DeleteShareGroupStateRequest,
    DeleteShareGroupStateResponse, InitializeShareGroupStateRequest, InitializeShareGroupStateResponse,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::auth::acl::op;
use crate::broker::Broker;
use crate::group::share::{Outcomes, PartitionOutcome};
use crate::handlers::common::str_bytes;
use crate::handlers::error_codes::ResponseError;
use crate::handlers::{Ctx, Reply};

/// A share-partition and what it starts afresh at (`None`: forgotten).
type Reset = ((Uuid, i32), Option<i64>);

/// How many times the coordinator asks a partition's leader, looking the leader up again
/// between tries (a lease moves within a few heartbeats).
const ATTEMPTS: u32 = 5;

pub async fn handle_initialize(ctx: &Ctx, req: InitializeShareGroupStateRequest) -> Reply {
    use initialize_share_group_state_response::{InitializeStateResult, PartitionResult};
    let parts: Vec<Reset> = req
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| ((t.topic_id, p.partition), Some(p.start_offset))))
        .collect();
    let outcomes = served(ctx, req.group_id.as_str(), parts).await;
    let results = by_topic(
        outcomes,
        |t, partitions| InitializeStateResult::default().with_topic_id(t).with_partitions(partitions),
        |p, code, message| {
            PartitionResult::default().with_partition(p).with_error_code(code).with_error_message(message)
        },
    );
    ctx.reply(&InitializeShareGroupStateResponse::default().with_results(results))
}

pub async fn handle_delete(ctx: &Ctx, req: DeleteShareGroupStateRequest) -> Reply {
    use delete_share_group_state_response::{DeleteStateResult, PartitionResult};
    let parts: Vec<Reset> =
        req.topics.iter().flat_map(|t| t.partitions.iter().map(|p| ((t.topic_id, p.partition), None))).collect();
    let outcomes = served(ctx, req.group_id.as_str(), parts).await;
    let results = by_topic(
        outcomes,
        |t, partitions| DeleteStateResult::default().with_topic_id(t).with_partitions(partitions),
        |p, code, message| {
            PartitionResult::default().with_partition(p).with_error_code(code).with_error_message(message)
        },
    );
    ctx.reply(&DeleteShareGroupStateResponse::default().with_results(results))
}

/// A reset asked of this broker by another: authorized, then applied.
async fn served(ctx: &Ctx, group_id: &str, parts: Vec<Reset>) -> Outcomes {
    if !ctx.cluster_allows(op::CLUSTER_ACTION) {
        let e = ResponseError::ClusterAuthorizationFailed;
        return parts.into_iter().map(|(tp, _)| (tp, Err((e.code(), e.to_string())))).collect();
    }
    apply(&ctx.broker, group_id, parts).await
}

/// Outcomes grouped by topic, in the order the topics came, as a response's results: `topic`
/// makes one topic's result, `partition` one partition's (index, error code, message).
fn by_topic<T, P>(
    outcomes: Outcomes,
    topic: impl Fn(Uuid, Vec<P>) -> T,
    partition: impl Fn(i32, i16, Option<StrBytes>) -> P,
) -> Vec<T> {
    let mut grouped: Vec<(Uuid, Vec<P>)> = Vec::new();
    for ((topic_id, p), outcome) in outcomes {
        let (code, message) = outcome.err().map_or((0, None), |(c, m)| (c, Some(str_bytes(&m))));
        let result = partition(p, code, message);
        match grouped.iter_mut().find(|(t, _)| *t == topic_id) {
            Some((_, parts)) => parts.push(result),
            None => grouped.push((topic_id, vec![result])),
        }
    }
    grouped.into_iter().map(|(t, parts)| topic(t, parts)).collect()
}

fn failed(code: ResponseError, message: String) -> PartitionOutcome {
    Err((code.code(), message))
}

/// Resets a group's share-partitions this broker leads, and writes them before it returns.
/// Each partition this broker does not lead (any more) gets NOT_LEADER_OR_FOLLOWER.
pub(crate) async fn apply(broker: &Arc<Broker>, group_id: &str, parts: Vec<Reset>) -> Outcomes {
    let mut outcomes: BTreeMap<(Uuid, i32), PartitionOutcome> = BTreeMap::new();
    let mut led = Vec::new();
    for &(tp, start) in &parts {
        let known = broker.topic_by_id(&tp.0).filter(|t| tp.1 >= 0 && tp.1 < t.partitions);
        match known {
            None => {
                let e = ResponseError::UnknownTopicOrPartition;
                outcomes.insert(tp, failed(e, format!("Partition {} of topic id {} does not exist.", tp.1, tp.0)));
            }
            Some(_) if start.is_some_and(|s| s < 0) => {
                let message = "The start offset of a share-partition must be 0 or more.".to_string();
                outcomes.insert(tp, failed(ResponseError::InvalidRequest, message));
            }
            Some(_) => led.push(tp),
        }
    }
    // Leadership, and in shared mode the state as the store holds it, first: the reset must
    // replace what the previous leader wrote, not be replaced by it at the next load.
    let mut checked = crate::handlers::share_fetch::Outcomes::default();
    crate::handlers::share_fetch::prepare(broker, &led, &mut checked).await;
    // The partitions this broker leads, with the leader epoch it leads each in.
    let mut epochs = BTreeMap::new();
    for tp in led {
        if let Some((code, message)) = checked.errors.remove(&tp) {
            outcomes.insert(tp, failed(code, message));
        } else if let Some(t) = broker.topic_by_id(&tp.0) {
            epochs.insert(tp, broker.cluster.leader(&t.name, tp.1).epoch);
        }
    }
    let resets: Vec<Reset> = parts.iter().copied().filter(|(tp, _)| epochs.contains_key(tp)).collect();
    if !resets.is_empty() {
        let share = &broker.share_groups;
        match share.reset(group_id, &resets) {
            Err(message) => {
                for (tp, _) in &resets {
                    outcomes.insert(*tp, failed(ResponseError::NonEmptyGroup, message.clone()));
                }
            }
            Ok(()) => {
                let written = crate::handlers::share_fetch::persist(broker).await;
                for (tp, epoch) in epochs {
                    let outcome = match &written {
                        Err(e) => failed(
                            ResponseError::KafkaStorageError,
                            format!("The share-partition was reset but could not be written, and may be back at a restart: {e}"),
                        ),
                        // The store refused the write: another broker leads the partition now
                        // (this one let go of what it held of it).
                        Ok(()) if share.needs_load(tp, epoch) => failed(
                            ResponseError::NotLeaderOrFollower,
                            format!("Broker {} no longer leads partition {}.", broker.cluster.node_id(), tp.1),
                        ),
                        Ok(()) => Ok(()),
                    };
                    outcomes.insert(tp, outcome);
                }
            }
        }
    }
    parts.into_iter().map(|(tp, _)| (tp, outcomes.remove(&tp).unwrap_or(Ok(())))).collect()
}

/// Whether an outcome is worth asking the partition's leader again for (after looking it up).
fn retriable(outcome: &PartitionOutcome) -> bool {
    matches!(outcome, Err((code, _)) if *code == ResponseError::NotLeaderOrFollower.code()
        || *code == ResponseError::LeaderNotAvailable.code())
}

/// The coordinator's side: resets a group's share-partitions at their leaders (this broker for
/// those it leads, on a single node all), asking a moved leader's successor again. Returns
/// each partition's outcome.
pub(crate) async fn reset_on_leaders(
    broker: &Arc<Broker>,
    group_id: &str,
    parts: Vec<Reset>,
) -> BTreeMap<(Uuid, i32), PartitionOutcome> {
    let me = broker.cluster.node_id();
    let mut outcomes = BTreeMap::new();
    let mut pending = parts;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            // Look the leaders up again: a lease may have moved since the last view.
            if let Some(shared) = broker.cluster.shared() {
                let _ = shared.reload().await;
            }
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        }
        let mut by_leader: BTreeMap<i32, Vec<Reset>> = BTreeMap::new();
        for (tp, start) in std::mem::take(&mut pending) {
            let leader = broker.topic_by_id(&tp.0).and_then(|t| broker.cluster.leader(&t.name, tp.1).leader);
            match leader {
                Some(node) => by_leader.entry(node).or_default().push((tp, start)),
                None => {
                    let message = format!("Partition {} has no leader at the moment; try again shortly.", tp.1);
                    outcomes.insert(tp, failed(ResponseError::LeaderNotAvailable, message));
                    pending.push((tp, start));
                }
            }
        }
        let asked = by_leader.into_iter().map(|(node, resets)| async move {
            let results = if node == me {
                Ok(apply(broker, group_id, resets.clone()).await)
            } else {
                match broker.remote_shares.get() {
                    Some(remote) => remote.reset(node, group_id, resets.clone()).await,
                    None => Err(format!("broker {me} cannot reach broker {node}")),
                }
            };
            (resets, results)
        });
        for (resets, results) in futures_util::future::join_all(asked).await {
            match results {
                Ok(results) => {
                    let asked: BTreeMap<(Uuid, i32), Option<i64>> = resets.into_iter().collect();
                    for (tp, outcome) in results {
                        if let Some(&start) = asked.get(&tp).filter(|_| retriable(&outcome)) {
                            pending.push((tp, start));
                        }
                        outcomes.insert(tp, outcome);
                    }
                }
                Err(e) => {
                    for r in resets {
                        let message = format!("The leader of partition {} could not be asked: {e}", r.0 .1);
                        outcomes.insert(r.0, failed(ResponseError::LeaderNotAvailable, message));
                        pending.push(r);
                    }
                }
            }
        }
        if pending.is_empty() {
            break;
        }
    }
    outcomes
}
