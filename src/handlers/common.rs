//! Small pieces shared by several handlers: wire strings, topic names, error codes, and running
//! slow domain work off the runtime's worker threads.

use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

use crate::handlers::error_codes::{ResponseError, ToKafkaCode};

/// Runs slow, blocking domain work (creating or deleting hundreds of partition files, fsyncs) on
/// the blocking pool, so no runtime worker stalls behind it: requests of other connections keep
/// being answered in milliseconds while a CreateTopics of thousands of partitions runs.
pub async fn off_runtime<R, E>(work: impl FnOnce() -> Result<R, E> + Send + 'static) -> Result<R, E>
where
    R: Send + 'static,
    E: From<std::io::Error> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(format!("the operation was interrupted: {e}")).into()))
}

/// Every cluster operation (CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS,
/// ALTER_CONFIGS, IDEMPOTENT_WRITE, CREATE_TOKENS, DESCRIBE_TOKENS): what a principal is
/// reported to be allowed when no authorizer is configured (see `authz`).
pub const CLUSTER_AUTHORIZED_OPERATIONS: i32 = 0x7fa0;

/// Every topic operation (READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS,
/// ALTER_CONFIGS): what a principal is reported to be allowed without an authorizer.
pub const TOPIC_AUTHORIZED_OPERATIONS: i32 = 0xdf8;

/// Builds a response on the blocking pool and encodes it: for handlers whose whole answer reads
/// or writes files. `what` names the request in the log line of a connection closed because
/// the work could not finish.
pub async fn reply_off_runtime<R>(
    ctx: &super::Ctx,
    what: &str,
    build: impl FnOnce() -> R + Send + 'static,
) -> super::Reply
where
    R: kafka_protocol::protocol::Encodable + kafka_protocol::protocol::HeaderVersion + Send + 'static,
{
    match tokio::task::spawn_blocking(build).await {
        Ok(resp) => ctx.reply(&resp),
        Err(_) => super::Reply::Close(format!("{what} could not be completed")),
    }
}

pub fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

pub fn topic_name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}

/// 0 for success, the mapped code otherwise.
pub fn code_of<E: ToKafkaCode>(r: &Result<impl Sized, E>) -> i16 {
    r.as_ref().err().map_or(0, |e| e.kafka_code().code())
}

/// Whether this broker may serve `topic`'s `partition` to a client that knows it in the
/// `requested` leader epoch (-1: the client does not say): NOT_LEADER_OR_FOLLOWER when another
/// broker leads it or none does (shared mode), then the epoch check.
pub fn leadership_error(
    broker: &crate::broker::Broker,
    topic: &str,
    partition: i32,
    requested: i32,
) -> Option<ResponseError> {
    let l = broker.cluster.leader(topic, partition);
    if l.leader != Some(broker.cluster.node_id()) {
        return Some(ResponseError::NotLeaderOrFollower);
    }
    leader_epoch_error(requested, l.epoch)
}

/// Checks a client's `current_leader_epoch` against the partition's (-1: the client does not say).
pub fn leader_epoch_error(requested: i32, current: i32) -> Option<ResponseError> {
    use std::cmp::Ordering;
    if requested < 0 {
        return None;
    }
    match requested.cmp(&current) {
        Ordering::Equal => None,
        Ordering::Greater => Some(ResponseError::UnknownLeaderEpoch),
        Ordering::Less => Some(ResponseError::FencedLeaderEpoch),
    }
}

/// Shared mode, when another broker coordinates transactions: how to ask it (`Err`: no broker
/// does right now, or this one cannot reach the others yet). `None`: this broker coordinates
/// them (always so on a single node).
#[allow(clippy::type_complexity)]
pub fn txn_coordinator_elsewhere(
    broker: &crate::broker::Broker,
) -> Option<Result<(&std::sync::Arc<dyn crate::txn::RemoteTxns>, i32), crate::txn::TxnError>> {
    broker.cluster.shared()?;
    let me = broker.cluster.node_id();
    let coordinator = broker.cluster.coordinator(crate::txn::TXN_TOPIC);
    if coordinator == Some(me) {
        return None;
    }
    let unverified = |why: &str| crate::txn::TxnError::Unverified(why.to_string());
    Some(match (broker.remote_txns.get(), coordinator) {
        (_, None) => Err(unverified("no broker coordinates transactions at the moment")),
        (None, _) => Err(unverified("this broker cannot reach the others yet")),
        (Some(remote), Some(node)) => Ok((remote, node)),
    })
}
