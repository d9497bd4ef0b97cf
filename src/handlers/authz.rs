//! Which operation each API needs on which resource, and the checks handlers make with it.
//!
//! [`REQUIRED`] is the table: one row per API in the registry (a test keeps it so), saying what
//! Kafka 4.1's `KafkaApis` (and `AclApis`, `ConfigHelper`, `DescribeTopicPartitionsRequestHandler`)
//! authorize for that API and which error an unauthorized principal gets. Handlers make the
//! checks themselves — they know the resource names inside each request — through
//! [`Ctx::allowed`] and friends; with no authorizer configured every check passes.
//!
//! Kafka's rules that shape the answers, kept here:
//! - a topic a principal may not DESCRIBE gets TOPIC_AUTHORIZATION_FAILED whether it exists or
//!   not, so the error does not reveal existence; UNKNOWN_TOPIC_OR_PARTITION is only ever said
//!   to a principal allowed to know;
//! - listings (Metadata for all topics, ListGroups, ListTransactions, OffsetFetch for all of a
//!   group's topics) leave out what the principal may not DESCRIBE instead of failing;
//! - Metadata auto-creates a topic only for a principal with CREATE on the cluster or the topic.

use kafka_protocol::messages::ApiKey;

use super::error_codes::ResponseError;
use super::Ctx;
use crate::auth::acl::{op, resource, CLUSTER_NAME};

/// What one API needs: `(resource type, operation)` pairs, each on the resource the request
/// names (the cluster for CLUSTER), and the error an unauthorized principal gets.
#[derive(Debug, Clone, Copy)]
pub struct Requirement {
    pub api: ApiKey,
    pub needs: &'static [(i8, i8)],
    pub denied: Denied,
    /// Anything the pairs do not say.
    pub note: &'static str,
}

/// How a refusal shows in the response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// Nothing is ever refused (the API is open to every authenticated principal).
    Never,
    /// This error, where the response has a place for it.
    With(ResponseError),
    /// Unauthorized items are left out of the answer.
    Filtered,
}

use resource::{CLUSTER, GROUP, TOPIC, TRANSACTIONAL_ID};
use Denied::{Filtered, Never, With};
use ResponseError::{
    ClusterAuthorizationFailed as ClusterDenied, GroupAuthorizationFailed as GroupDenied,
    TopicAuthorizationFailed as TopicDenied, TransactionalIdAuthorizationFailed as TxnDenied,
};

macro_rules! row {
    ($api:ident, [$(($r:expr, $o:expr)),*], $denied:expr, $note:expr) => {
        Requirement { api: ApiKey::$api, needs: &[$(($r, $o)),*], denied: $denied, note: $note }
    };
}

/// THE table (Kafka 4.1 behaviour), in registry order.
pub const REQUIRED: &[Requirement] = &[
    row!(Produce, [(TOPIC, op::WRITE), (TRANSACTIONAL_ID, op::WRITE)], With(TopicDenied),
        "per partition; a transactional produce without WRITE on its id fails whole with TRANSACTIONAL_ID_AUTHORIZATION_FAILED"),
    row!(Fetch, [(TOPIC, op::READ)], With(TopicDenied), "per partition; replica fetches would need CLUSTER_ACTION (gregor has no followers)"),
    row!(ListOffsets, [(TOPIC, op::DESCRIBE)], With(TopicDenied), "per partition"),
    row!(OffsetForLeaderEpoch, [(TOPIC, op::DESCRIBE)], With(TopicDenied), "per partition; CLUSTER_ACTION on the cluster allows every topic"),
    row!(Metadata, [(TOPIC, op::DESCRIBE)], With(TopicDenied),
        "a list of every topic leaves unauthorized ones out; auto-creation needs CREATE on the cluster or the topic"),
    row!(ApiVersions, [], Never, "before and without authentication"),
    row!(CreateTopics, [(TOPIC, op::CREATE)], With(TopicDenied),
        "CREATE on the cluster allows every topic; configs in the answer need DESCRIBE_CONFIGS on the topic"),
    row!(DeleteTopics, [(TOPIC, op::DELETE)], With(TopicDenied), "by id also needs DESCRIBE, else the name is not revealed"),
    row!(DeleteRecords, [(TOPIC, op::DELETE)], With(TopicDenied), "per partition"),
    row!(DescribeLogDirs, [(CLUSTER, op::DESCRIBE)], With(ClusterDenied), "no directories listed"),
    row!(DescribeCluster, [], Never, "cluster authorized operations are reported only with DESCRIBE on the cluster"),
    row!(DescribeTopicPartitions, [(TOPIC, op::DESCRIBE)], With(TopicDenied), "a listing of every topic leaves unauthorized ones out"),
    row!(ElectLeaders, [(CLUSTER, op::ALTER)], With(ClusterDenied), ""),
    row!(AlterPartitionReassignments, [(CLUSTER, op::ALTER)], With(ClusterDenied), ""),
    row!(ListPartitionReassignments, [(CLUSTER, op::DESCRIBE)], With(ClusterDenied), ""),
    row!(ListConfigResources, [(CLUSTER, op::DESCRIBE_CONFIGS)], With(ClusterDenied), ""),
    row!(CreatePartitions, [(TOPIC, op::ALTER)], With(TopicDenied), ""),
    row!(DescribeConfigs, [(TOPIC, op::DESCRIBE_CONFIGS), (CLUSTER, op::DESCRIBE_CONFIGS), (GROUP, op::DESCRIBE_CONFIGS)], With(TopicDenied),
        "per resource: topics TOPIC_, brokers CLUSTER_, groups GROUP_AUTHORIZATION_FAILED"),
    row!(AlterConfigs, [(TOPIC, op::ALTER_CONFIGS), (CLUSTER, op::ALTER_CONFIGS), (GROUP, op::ALTER_CONFIGS)], With(TopicDenied),
        "per resource, as DescribeConfigs"),
    row!(IncrementalAlterConfigs, [(TOPIC, op::ALTER_CONFIGS), (CLUSTER, op::ALTER_CONFIGS), (GROUP, op::ALTER_CONFIGS)], With(TopicDenied),
        "per resource, as DescribeConfigs"),
    row!(InitProducerId, [(TRANSACTIONAL_ID, op::WRITE)], With(TxnDenied),
        "without a transactional id: IDEMPOTENT_WRITE on the cluster or WRITE on some topic, else CLUSTER_AUTHORIZATION_FAILED"),
    row!(FindCoordinator, [(GROUP, op::DESCRIBE), (TRANSACTIONAL_ID, op::DESCRIBE)], With(GroupDenied),
        "per key: groups GROUP_, transactional ids TRANSACTIONAL_ID_AUTHORIZATION_FAILED"),
    row!(JoinGroup, [(GROUP, op::READ)], With(GroupDenied), ""),
    row!(SyncGroup, [(GROUP, op::READ)], With(GroupDenied), ""),
    row!(Heartbeat, [(GROUP, op::READ)], With(GroupDenied), ""),
    row!(LeaveGroup, [(GROUP, op::READ)], With(GroupDenied), ""),
    row!(OffsetCommit, [(GROUP, op::READ), (TOPIC, op::READ)], With(GroupDenied), "topics without READ: TOPIC_AUTHORIZATION_FAILED per partition"),
    row!(OffsetFetch, [(GROUP, op::DESCRIBE), (TOPIC, op::DESCRIBE)], With(GroupDenied),
        "named topics without DESCRIBE: TOPIC_AUTHORIZATION_FAILED; all of a group's topics: left out"),
    row!(ListGroups, [(CLUSTER, op::DESCRIBE), (GROUP, op::DESCRIBE)], Filtered, "DESCRIBE on the cluster lists every group"),
    row!(DescribeGroups, [(GROUP, op::DESCRIBE)], With(GroupDenied), "per group"),
    row!(DeleteGroups, [(GROUP, op::DELETE)], With(GroupDenied), "per group"),
    row!(OffsetDelete, [(GROUP, op::DELETE), (TOPIC, op::READ)], With(GroupDenied), "topics without READ: TOPIC_AUTHORIZATION_FAILED per partition"),
    row!(ConsumerGroupHeartbeat, [(GROUP, op::READ), (TOPIC, op::DESCRIBE)], With(GroupDenied),
        "a subscribed topic without DESCRIBE: TOPIC_AUTHORIZATION_FAILED for the whole request"),
    row!(ConsumerGroupDescribe, [(GROUP, op::DESCRIBE), (TOPIC, op::DESCRIBE)], With(GroupDenied),
        "per group; a group whose members use a topic without DESCRIBE: TOPIC_AUTHORIZATION_FAILED"),
    row!(ShareGroupHeartbeat, [(GROUP, op::READ), (TOPIC, op::DESCRIBE)], With(GroupDenied),
        "a subscribed topic without DESCRIBE: TOPIC_AUTHORIZATION_FAILED for the whole request"),
    row!(ShareGroupDescribe, [(GROUP, op::DESCRIBE), (TOPIC, op::DESCRIBE)], With(GroupDenied),
        "per group; a group whose members use a topic without DESCRIBE: TOPIC_AUTHORIZATION_FAILED"),
    row!(ShareFetch, [(GROUP, op::READ), (TOPIC, op::READ)], With(GroupDenied),
        "topics without READ: TOPIC_AUTHORIZATION_FAILED per partition"),
    row!(ShareAcknowledge, [(GROUP, op::READ), (TOPIC, op::READ)], With(GroupDenied),
        "topics without READ: TOPIC_AUTHORIZATION_FAILED per partition"),
    row!(DescribeShareGroupOffsets, [(GROUP, op::DESCRIBE), (TOPIC, op::DESCRIBE)], With(GroupDenied),
        "per group; topics without DESCRIBE: TOPIC_AUTHORIZATION_FAILED per partition"),
    row!(AlterShareGroupOffsets, [(GROUP, op::READ), (TOPIC, op::READ)], With(GroupDenied),
        "topics without READ: TOPIC_AUTHORIZATION_FAILED per partition"),
    row!(DeleteShareGroupOffsets, [(GROUP, op::DELETE), (TOPIC, op::READ)], With(GroupDenied),
        "topics without READ: TOPIC_AUTHORIZATION_FAILED per topic"),
    row!(InitializeShareGroupState, [(CLUSTER, op::CLUSTER_ACTION)], With(ClusterDenied),
        "broker to broker (a share group's coordinator to a partition's leader); CLUSTER_AUTHORIZATION_FAILED per partition"),
    row!(DeleteShareGroupState, [(CLUSTER, op::CLUSTER_ACTION)], With(ClusterDenied),
        "broker to broker (a share group's coordinator to a partition's leader); CLUSTER_AUTHORIZATION_FAILED per partition"),
    row!(AddPartitionsToTxn, [(TRANSACTIONAL_ID, op::WRITE), (TOPIC, op::WRITE)], With(TxnDenied),
        "topics without WRITE: TOPIC_AUTHORIZATION_FAILED, the others OPERATION_NOT_ATTEMPTED; v4+ batches (broker to broker) need CLUSTER_ACTION"),
    row!(AddOffsetsToTxn, [(TRANSACTIONAL_ID, op::WRITE), (GROUP, op::READ)], With(TxnDenied), "the group: GROUP_AUTHORIZATION_FAILED"),
    row!(EndTxn, [(TRANSACTIONAL_ID, op::WRITE)], With(TxnDenied), ""),
    row!(WriteTxnMarkers, [(CLUSTER, op::CLUSTER_ACTION)], With(ClusterDenied),
        "broker to broker; ALTER on the cluster allows it too (KIP-1037); CLUSTER_AUTHORIZATION_FAILED per partition"),
    row!(TxnOffsetCommit, [(TRANSACTIONAL_ID, op::WRITE), (GROUP, op::READ), (TOPIC, op::READ)], With(TxnDenied),
        "the group: GROUP_, topics: TOPIC_AUTHORIZATION_FAILED per partition"),
    row!(DescribeProducers, [(TOPIC, op::READ)], With(TopicDenied), "per partition"),
    row!(DescribeTransactions, [(TRANSACTIONAL_ID, op::DESCRIBE), (TOPIC, op::DESCRIBE)], With(TxnDenied),
        "partitions of topics without DESCRIBE are left out"),
    row!(ListTransactions, [(TRANSACTIONAL_ID, op::DESCRIBE)], Filtered, ""),
    row!(DescribeAcls, [(CLUSTER, op::DESCRIBE)], With(ClusterDenied), ""),
    row!(CreateAcls, [(CLUSTER, op::ALTER)], With(ClusterDenied), ""),
    row!(DeleteAcls, [(CLUSTER, op::ALTER)], With(ClusterDenied), ""),
    row!(DescribeUserScramCredentials, [(CLUSTER, op::DESCRIBE)], With(ClusterDenied), ""),
    row!(AlterUserScramCredentials, [(CLUSTER, op::ALTER)], With(ClusterDenied), ""),
    row!(DescribeClientQuotas, [(CLUSTER, op::DESCRIBE_CONFIGS)], With(ClusterDenied), "no entries listed"),
    row!(AlterClientQuotas, [(CLUSTER, op::ALTER_CONFIGS)], With(ClusterDenied), "every entity refused"),
    row!(SaslHandshake, [], Never, "before authentication; ILLEGAL_SASL_STATE on a listener without SASL"),
    row!(SaslAuthenticate, [], Never, "before authentication; ILLEGAL_SASL_STATE on a listener without SASL"),
];

/// The table's row for `api`.
pub fn requirement(api: ApiKey) -> Option<&'static Requirement> {
    REQUIRED.iter().find(|r| r.api == api)
}

/// Operations reported in `*_authorized_operations` per resource type, as Kafka reports them.
const TOPIC_OPS: &[i8] =
    &[op::READ, op::WRITE, op::CREATE, op::DELETE, op::ALTER, op::DESCRIBE, op::DESCRIBE_CONFIGS, op::ALTER_CONFIGS];
const CLUSTER_OPS: &[i8] = &[
    op::CREATE,
    op::ALTER,
    op::DESCRIBE,
    op::CLUSTER_ACTION,
    op::DESCRIBE_CONFIGS,
    op::ALTER_CONFIGS,
    op::IDEMPOTENT_WRITE,
    op::CREATE_TOKENS,
    op::DESCRIBE_TOKENS,
];
const GROUP_OPS: &[i8] = &[op::READ, op::DELETE, op::DESCRIBE, op::DESCRIBE_CONFIGS, op::ALTER_CONFIGS];

/// Refusals of a request that goes ahead for the partitions it may touch (OffsetCommit,
/// TxnOffsetCommit): per partition in request order, `whole` (a refusal of the entire request)
/// or TOPIC_AUTHORIZATION_FAILED for a topic in `topic_denied`, else `None`.
pub fn partition_refusals(
    whole: Option<i16>,
    topic_denied: &[bool],
    partitions_per_topic: impl Iterator<Item = usize>,
) -> Vec<Option<i16>> {
    partitions_per_topic
        .zip(topic_denied)
        .flat_map(|(n, &denied)| std::iter::repeat_n(whole.or(denied.then_some(TopicDenied.code())), n))
        .collect()
}

/// The answer codes in request order: each refusal where there is one, else the next of
/// `answered` (the codes of the partitions that went ahead, in order).
pub fn merge_refusals(refusals: &[Option<i16>], answered: Vec<i16>) -> Vec<i16> {
    let mut answered = answered.into_iter();
    refusals.iter().map(|r| r.unwrap_or_else(|| answered.next().unwrap_or(0))).collect()
}

impl Ctx {
    /// Whether this request's principal may do `operation` on the named resource.
    pub fn allowed(&self, operation: i8, resource_type: i8, name: &str) -> bool {
        let acls = &self.broker.acls;
        if !acls.enabled() {
            return true;
        }
        let host = self.client_host.trim_start_matches('/');
        acls.authorize(&self.principal.to_string(), host, operation, resource_type, name)
    }

    /// [`Ctx::allowed`] on the cluster.
    pub fn cluster_allows(&self, operation: i8) -> bool {
        self.allowed(operation, CLUSTER, CLUSTER_NAME)
    }

    /// Whether the principal may do `operation` on some resource of the type (InitProducerId
    /// asks this of WRITE on topics).
    pub fn allowed_on_some(&self, operation: i8, resource_type: i8) -> bool {
        let acls = &self.broker.acls;
        if !acls.enabled() {
            return true;
        }
        let host = self.client_host.trim_start_matches('/');
        acls.authorize_any(&self.principal.to_string(), host, operation, resource_type)
    }

    /// The `authorized_operations` bit field of a resource: bit `op` set for each operation
    /// the principal may perform on it.
    pub fn authorized_operations(&self, resource_type: i8, name: &str) -> i32 {
        let ops = match resource_type {
            TOPIC => TOPIC_OPS,
            CLUSTER => CLUSTER_OPS,
            GROUP => GROUP_OPS,
            _ => &[],
        };
        ops.iter().filter(|&&o| self.allowed(o, resource_type, name)).fold(0, |bits, &o| bits | 1 << o)
    }

    /// For each topic name, whether the principal is refused `operation` on it.
    pub fn denied_topics<'a>(&self, operation: i8, names: impl Iterator<Item = &'a str>) -> Vec<bool> {
        names.map(|n| !self.allowed(operation, TOPIC, n)).collect()
    }

    /// For a config resource (DescribeConfigs, AlterConfigs): the error when the principal may
    /// not do `operation` on it — topics on the topic, brokers and broker loggers on the
    /// cluster, groups on the group (Kafka 4.1's ConfigHelper and KafkaApis).
    pub fn config_denied(
        &self,
        operation: i8,
        config_resource_type: i8,
        name: &str,
    ) -> Option<(ResponseError, String)> {
        const TOPIC_CONFIG: i8 = 2;
        const BROKER_CONFIG: i8 = 4;
        const BROKER_LOGGER_CONFIG: i8 = 8;
        const GROUP_CONFIG: i8 = 32;
        let (allowed, error, what) = match config_resource_type {
            TOPIC_CONFIG => (self.allowed(operation, TOPIC, name), TopicDenied, "topic"),
            BROKER_CONFIG | BROKER_LOGGER_CONFIG => (self.cluster_allows(operation), ClusterDenied, "cluster"),
            GROUP_CONFIG => (self.allowed(operation, GROUP, name), GroupDenied, "group"),
            _ => return None,
        };
        let verb = if operation == op::ALTER_CONFIGS { "alter" } else { "describe" };
        (!allowed).then(|| (error, format!("Not authorized to {verb} the configs of this {what}.")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registry_api_has_a_row_and_no_row_is_for_an_api_not_served() {
        for api in super::super::SUPPORTED {
            assert!(
                requirement(api.key).is_some(),
                "{:?} is served but the authorization table has no row for it",
                api.key
            );
        }
        for row in REQUIRED {
            assert!(super::super::supported(row.api).is_some(), "{:?} has a row but is not served", row.api);
        }
    }

    #[test]
    fn operation_bits_match_kafkas_codes() {
        let (ctx, _dir) = super::super::tests::test_ctx();
        // No authorizer: everything, which is the constant Metadata used to report.
        assert_eq!(ctx.authorized_operations(TOPIC, "t"), super::super::common::TOPIC_AUTHORIZED_OPERATIONS);
        assert_eq!(
            ctx.authorized_operations(CLUSTER, CLUSTER_NAME),
            super::super::common::CLUSTER_AUTHORIZED_OPERATIONS
        );
    }
}
