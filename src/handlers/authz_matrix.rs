//! The authorization matrix: every API in the registry, sent through `dispatch` by four
//! principals — one with no ACLs, a reader (READ on the topic and the group), a producer (WRITE
//! on the topic and the transactional id) and a super user — against what [`super::authz`]
//! says each needs. "Denied" means the answer carries an authorization error (or, for a
//! listing, leaves the resource out) and names nothing it should not; "allowed" means no
//! authorization error at all.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use super::authz::{requirement, Denied};
use super::{dispatch, Reply, Session, SUPPORTED};
use crate::auth::acl::{op, pattern, permission, resource, Acl};
use crate::auth::Principal;
use crate::broker::{Broker, NewTopic};

const TOPIC: &str = "secret-topic";
const DOOMED: &str = "doomed-topic";
const GROUP: &str = "secret-group";
const TXN: &str = "secret-txn";

/// Kafka's authorization error codes: TOPIC_, GROUP_, CLUSTER_, TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
const AUTH_CODES: [i16; 4] = [29, 30, 31, 53];

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn frame<R: Request + Encodable>(req: &R, version: i16) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(s("matrix")));
    let mut body = BytesMut::new();
    header.encode(&mut body, R::header_version(version)).expect("header");
    req.encode(&mut body, version).expect("body");
    body.freeze()
}

async fn reply_bytes(reply: Reply) -> Bytes {
    match reply {
        Reply::Ready(f) => f.to_bytes(),
        Reply::Deferred(f) => f.await.expect("deferred reply").to_bytes(),
        Reply::NoResponse => panic!("no response"),
        Reply::Close(why) | Reply::Final(why, _) => panic!("connection closed: {why}"),
    }
}

/// The response, decoded, in Debug form (the matrix reads codes and names from it).
fn decoded<R: Request>(mut bytes: Bytes, version: i16) -> String
where
    R::Response: Decodable + HeaderVersion + std::fmt::Debug,
{
    let _size = bytes.split_to(4);
    ResponseHeader::decode(&mut bytes, <R::Response as HeaderVersion>::header_version(version)).expect("header");
    format!("{:?}", R::Response::decode(&mut bytes, version).expect("response"))
}

/// Every `error_code: N` in a Debug rendering (top-level, per item, per partition).
fn codes(debug: &str) -> Vec<i16> {
    let mut out = Vec::new();
    for (i, _) in debug.match_indices("error_code: ") {
        let rest = &debug[i + "error_code: ".len()..];
        let n: String = rest.chars().take_while(|c| *c == '-' || c.is_ascii_digit()).collect();
        out.push(n.parse().expect("a code"));
    }
    out
}

type Send = Box<dyn Fn() -> (Bytes, Box<dyn Fn(Bytes) -> String>)>;

fn case<R: Request + Encodable + 'static>(req: R, version: i16) -> Send
where
    R::Response: Decodable + HeaderVersion + std::fmt::Debug,
{
    let bytes = frame(&req, version);
    Box::new(move || (bytes.clone(), Box::new(move |b| decoded::<R>(b, version))))
}

fn records() -> Bytes {
    crate::log::batch::build(&[(None, Some(b"v".as_slice()))], 1).into()
}

/// (name, API, request, and per principal — nobody, reader, producer, admin — whether allowed).
fn cases() -> Vec<(&'static str, ApiKey, Send, [bool; 4])> {
    let tn = || TopicName(s(TOPIC));
    let g = || GroupId(s(GROUP));
    let t = || TransactionalId(s(TXN));
    const D: bool = false;
    const A: bool = true;
    vec![
        (
            "Produce",
            ApiKey::Produce,
            case(
                ProduceRequest::default().with_acks(1).with_timeout_ms(1000).with_topic_data(vec![
                    produce_request::TopicProduceData::default().with_name(tn()).with_partition_data(vec![
                        produce_request::PartitionProduceData::default().with_index(0).with_records(Some(records())),
                    ]),
                ]),
                9,
            ),
            [D, D, A, A],
        ),
        (
            "Fetch",
            ApiKey::Fetch,
            case(
                FetchRequest::default().with_max_wait_ms(0).with_max_bytes(1 << 20).with_session_epoch(-1).with_topics(
                    vec![fetch_request::FetchTopic::default().with_topic(tn()).with_partitions(vec![
                        fetch_request::FetchPartition::default().with_partition(0).with_partition_max_bytes(1 << 20),
                    ])],
                ),
                12,
            ),
            [D, A, D, A],
        ),
        (
            "ListOffsets",
            ApiKey::ListOffsets,
            case(
                ListOffsetsRequest::default().with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                    .with_name(tn())
                    .with_partitions(vec![list_offsets_request::ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-1)])]),
                9,
            ),
            [D, A, A, A],
        ),
        (
            "OffsetForLeaderEpoch",
            ApiKey::OffsetForLeaderEpoch,
            case(
                OffsetForLeaderEpochRequest::default().with_topics(vec![
                    offset_for_leader_epoch_request::OffsetForLeaderTopic::default().with_topic(tn()).with_partitions(
                        vec![offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                            .with_partition(0)
                            .with_leader_epoch(0)],
                    ),
                ]),
                4,
            ),
            [D, A, A, A],
        ),
        (
            "Metadata of a named topic",
            ApiKey::Metadata,
            case(
                MetadataRequest::default()
                    .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default().with_name(Some(tn()))])),
                12,
            ),
            [D, A, A, A],
        ),
        (
            "Metadata of every topic",
            ApiKey::Metadata,
            case(MetadataRequest::default().with_topics(None), 12),
            [D, A, A, A],
        ),
        ("ApiVersions", ApiKey::ApiVersions, case(ApiVersionsRequest::default(), 3), [A, A, A, A]),
        (
            "CreateTopics",
            ApiKey::CreateTopics,
            case(
                CreateTopicsRequest::default().with_timeout_ms(1000).with_topics(vec![
                    create_topics_request::CreatableTopic::default()
                        .with_name(TopicName(s("new-topic")))
                        .with_num_partitions(1)
                        .with_replication_factor(1),
                ]),
                7,
            ),
            [D, D, D, A],
        ),
        (
            "DeleteTopics",
            ApiKey::DeleteTopics,
            case(DeleteTopicsRequest::default().with_timeout_ms(1000).with_topic_names(vec![TopicName(s(DOOMED))]), 5),
            [D, D, D, A],
        ),
        (
            "DeleteRecords",
            ApiKey::DeleteRecords,
            case(
                DeleteRecordsRequest::default().with_timeout_ms(1000).with_topics(vec![
                    delete_records_request::DeleteRecordsTopic::default().with_name(tn()).with_partitions(vec![
                        delete_records_request::DeleteRecordsPartition::default()
                            .with_partition_index(0)
                            .with_offset(0),
                    ]),
                ]),
                2,
            ),
            [D, D, D, A],
        ),
        (
            "DescribeLogDirs",
            ApiKey::DescribeLogDirs,
            case(DescribeLogDirsRequest::default().with_topics(None), 4),
            [D, D, D, A],
        ),
        (
            "DescribeCluster",
            ApiKey::DescribeCluster,
            case(DescribeClusterRequest::default().with_endpoint_type(1), 1),
            [A, A, A, A],
        ),
        (
            "DescribeTopicPartitions",
            ApiKey::DescribeTopicPartitions,
            case(
                DescribeTopicPartitionsRequest::default()
                    .with_response_partition_limit(100)
                    .with_topics(vec![describe_topic_partitions_request::TopicRequest::default().with_name(tn())]),
                0,
            ),
            [D, A, A, A],
        ),
        (
            "ElectLeaders",
            ApiKey::ElectLeaders,
            case(
                ElectLeadersRequest::default().with_topic_partitions(Some(vec![
                    elect_leaders_request::TopicPartitions::default().with_topic(tn()).with_partitions(vec![0]),
                ])),
                2,
            ),
            [D, D, D, A],
        ),
        (
            "AlterPartitionReassignments",
            ApiKey::AlterPartitionReassignments,
            case(
                AlterPartitionReassignmentsRequest::default().with_topics(vec![
                    alter_partition_reassignments_request::ReassignableTopic::default()
                        .with_name(tn())
                        .with_partitions(vec![alter_partition_reassignments_request::ReassignablePartition::default()
                            .with_partition_index(0)
                            .with_replicas(None)]),
                ]),
                0,
            ),
            [D, D, D, A],
        ),
        (
            "ListPartitionReassignments",
            ApiKey::ListPartitionReassignments,
            case(ListPartitionReassignmentsRequest::default(), 0),
            [D, D, D, A],
        ),
        (
            "ListConfigResources",
            ApiKey::ListConfigResources,
            case(ListConfigResourcesRequest::default(), 1),
            [D, D, D, A],
        ),
        (
            "CreatePartitions",
            ApiKey::CreatePartitions,
            case(
                CreatePartitionsRequest::default().with_timeout_ms(1000).with_topics(vec![
                    create_partitions_request::CreatePartitionsTopic::default().with_name(tn()).with_count(1),
                ]),
                3,
            ),
            [D, D, D, A],
        ),
        (
            "DescribeConfigs",
            ApiKey::DescribeConfigs,
            case(
                DescribeConfigsRequest::default().with_resources(vec![
                    describe_configs_request::DescribeConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(s(TOPIC)),
                ]),
                4,
            ),
            [D, D, D, A],
        ),
        (
            "AlterConfigs",
            ApiKey::AlterConfigs,
            case(
                AlterConfigsRequest::default().with_validate_only(true).with_resources(vec![
                    alter_configs_request::AlterConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(s(TOPIC)),
                ]),
                2,
            ),
            [D, D, D, A],
        ),
        (
            "IncrementalAlterConfigs",
            ApiKey::IncrementalAlterConfigs,
            case(
                IncrementalAlterConfigsRequest::default().with_validate_only(true).with_resources(vec![
                    incremental_alter_configs_request::AlterConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(s(TOPIC)),
                ]),
                1,
            ),
            [D, D, D, A],
        ),
        (
            "InitProducerId, idempotent",
            ApiKey::InitProducerId,
            case(
                InitProducerIdRequest::default()
                    .with_transaction_timeout_ms(-1)
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
                5,
            ),
            [D, D, A, A],
        ),
        (
            "InitProducerId, transactional",
            ApiKey::InitProducerId,
            case(
                InitProducerIdRequest::default()
                    .with_transactional_id(Some(t()))
                    .with_transaction_timeout_ms(60000)
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
                5,
            ),
            [D, D, A, A],
        ),
        (
            "FindCoordinator",
            ApiKey::FindCoordinator,
            case(FindCoordinatorRequest::default().with_key_type(0).with_coordinator_keys(vec![s(GROUP)]), 4),
            [D, A, D, A],
        ),
        (
            "JoinGroup",
            ApiKey::JoinGroup,
            case(
                JoinGroupRequest::default()
                    .with_group_id(g())
                    .with_session_timeout_ms(10000)
                    .with_rebalance_timeout_ms(10000)
                    .with_protocol_type(s("consumer"))
                    .with_protocols(
                        vec![join_group_request::JoinGroupRequestProtocol::default().with_name(s("range"))],
                    ),
                9,
            ),
            [D, A, D, A],
        ),
        (
            "SyncGroup",
            ApiKey::SyncGroup,
            case(SyncGroupRequest::default().with_group_id(g()).with_member_id(s("m")).with_generation_id(1), 5),
            [D, A, D, A],
        ),
        (
            "Heartbeat",
            ApiKey::Heartbeat,
            case(HeartbeatRequest::default().with_group_id(g()).with_member_id(s("m")).with_generation_id(1), 4),
            [D, A, D, A],
        ),
        (
            "LeaveGroup",
            ApiKey::LeaveGroup,
            case(
                LeaveGroupRequest::default()
                    .with_group_id(g())
                    .with_members(vec![leave_group_request::MemberIdentity::default().with_member_id(s("m"))]),
                5,
            ),
            [D, A, D, A],
        ),
        (
            "OffsetCommit",
            ApiKey::OffsetCommit,
            case(
                OffsetCommitRequest::default().with_group_id(g()).with_generation_id_or_member_epoch(-1).with_topics(
                    vec![offset_commit_request::OffsetCommitRequestTopic::default().with_name(tn()).with_partitions(
                        vec![offset_commit_request::OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(0)],
                    )],
                ),
                8,
            ),
            [D, A, D, A],
        ),
        (
            "OffsetFetch",
            ApiKey::OffsetFetch,
            case(
                OffsetFetchRequest::default().with_groups(vec![
                    offset_fetch_request::OffsetFetchRequestGroup::default().with_group_id(g()).with_topics(None),
                ]),
                8,
            ),
            [D, A, D, A],
        ),
        ("ListGroups", ApiKey::ListGroups, case(ListGroupsRequest::default(), 5), [D, A, D, A]),
        (
            "DescribeGroups",
            ApiKey::DescribeGroups,
            case(DescribeGroupsRequest::default().with_groups(vec![g()]).with_include_authorized_operations(true), 5),
            [D, A, D, A],
        ),
        (
            "DeleteGroups",
            ApiKey::DeleteGroups,
            case(DeleteGroupsRequest::default().with_groups_names(vec![g()]), 2),
            [D, D, D, A],
        ),
        (
            "OffsetDelete",
            ApiKey::OffsetDelete,
            case(
                OffsetDeleteRequest::default().with_group_id(g()).with_topics(vec![
                    offset_delete_request::OffsetDeleteRequestTopic::default().with_name(tn()).with_partitions(vec![
                        offset_delete_request::OffsetDeleteRequestPartition::default().with_partition_index(0),
                    ]),
                ]),
                0,
            ),
            [D, D, D, A],
        ),
        (
            "AddPartitionsToTxn",
            ApiKey::AddPartitionsToTxn,
            case(
                AddPartitionsToTxnRequest::default()
                    .with_v3_and_below_transactional_id(t())
                    .with_v3_and_below_producer_id(ProducerId(1))
                    .with_v3_and_below_producer_epoch(0)
                    .with_v3_and_below_topics(vec![add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                        .with_name(tn())
                        .with_partitions(vec![0])]),
                3,
            ),
            [D, D, A, A],
        ),
        (
            "AddOffsetsToTxn",
            ApiKey::AddOffsetsToTxn,
            case(
                AddOffsetsToTxnRequest::default()
                    .with_transactional_id(t())
                    .with_producer_id(ProducerId(1))
                    .with_group_id(g()),
                4,
            ),
            [D, D, D, A],
        ),
        (
            "EndTxn",
            ApiKey::EndTxn,
            case(EndTxnRequest::default().with_transactional_id(t()).with_producer_id(ProducerId(1)), 4),
            [D, D, A, A],
        ),
        (
            "WriteTxnMarkers",
            ApiKey::WriteTxnMarkers,
            case(
                WriteTxnMarkersRequest::default().with_markers(vec![
                    write_txn_markers_request::WritableTxnMarker::default()
                        .with_producer_id(ProducerId(1))
                        .with_topics(vec![write_txn_markers_request::WritableTxnMarkerTopic::default()
                            .with_name(tn())
                            .with_partition_indexes(vec![0])]),
                ]),
                1,
            ),
            [D, D, D, A],
        ),
        (
            "TxnOffsetCommit",
            ApiKey::TxnOffsetCommit,
            case(
                TxnOffsetCommitRequest::default()
                    .with_transactional_id(t())
                    .with_group_id(g())
                    .with_producer_id(ProducerId(1))
                    .with_topics(vec![txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                        .with_name(tn())
                        .with_partitions(vec![txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                            .with_partition_index(0)])]),
                3,
            ),
            [D, D, D, A],
        ),
        (
            "DescribeProducers",
            ApiKey::DescribeProducers,
            case(
                DescribeProducersRequest::default().with_topics(vec![
                    describe_producers_request::TopicRequest::default().with_name(tn()).with_partition_indexes(vec![0]),
                ]),
                0,
            ),
            [D, A, D, A],
        ),
        (
            "DescribeTransactions",
            ApiKey::DescribeTransactions,
            case(DescribeTransactionsRequest::default().with_transactional_ids(vec![t()]), 0),
            [D, D, A, A],
        ),
        (
            "ListTransactions",
            ApiKey::ListTransactions,
            case(ListTransactionsRequest::default().with_duration_filter(-1), 1),
            [D, D, A, A],
        ),
        (
            "DescribeAcls",
            ApiKey::DescribeAcls,
            case(
                DescribeAclsRequest::default()
                    .with_resource_type_filter(1)
                    .with_pattern_type_filter(1)
                    .with_operation(1)
                    .with_permission_type(1),
                3,
            ),
            [D, D, D, A],
        ),
        (
            "CreateAcls",
            ApiKey::CreateAcls,
            case(
                CreateAclsRequest::default().with_creations(vec![create_acls_request::AclCreation::default()
                    .with_resource_type(resource::TOPIC)
                    .with_resource_name(s("other"))
                    .with_resource_pattern_type(pattern::LITERAL)
                    .with_principal(s("User:x"))
                    .with_host(s("*"))
                    .with_operation(op::READ)
                    .with_permission_type(permission::ALLOW)]),
                3,
            ),
            [D, D, D, A],
        ),
        (
            "DeleteAcls",
            ApiKey::DeleteAcls,
            case(
                DeleteAclsRequest::default().with_filters(vec![delete_acls_request::DeleteAclsFilter::default()
                    .with_resource_type_filter(resource::TOPIC)
                    .with_resource_name_filter(Some(s("none")))
                    .with_pattern_type_filter(pattern::LITERAL)
                    .with_operation(op::ANY)
                    .with_permission_type(permission::ANY)]),
                3,
            ),
            [D, D, D, A],
        ),
        (
            "DescribeUserScramCredentials",
            ApiKey::DescribeUserScramCredentials,
            case(DescribeUserScramCredentialsRequest::default().with_users(None), 0),
            [D, D, D, A],
        ),
        (
            "AlterUserScramCredentials",
            ApiKey::AlterUserScramCredentials,
            case(
                AlterUserScramCredentialsRequest::default().with_deletions(vec![
                    alter_user_scram_credentials_request::ScramCredentialDeletion::default()
                        .with_name(s("nobody"))
                        .with_mechanism(1),
                ]),
                0,
            ),
            [D, D, D, A],
        ),
        (
            "DescribeClientQuotas",
            ApiKey::DescribeClientQuotas,
            case(DescribeClientQuotasRequest::default(), 1),
            [D, D, D, A],
        ),
        (
            "AlterClientQuotas",
            ApiKey::AlterClientQuotas,
            case(
                AlterClientQuotasRequest::default().with_entries(vec![
                    alter_client_quotas_request::EntryData::default()
                        .with_entity(vec![alter_client_quotas_request::EntityData::default()
                            .with_entity_type(s("user"))
                            .with_entity_name(Some(s("nobody")))])
                        .with_ops(vec![alter_client_quotas_request::OpData::default()
                            .with_key(s("producer_byte_rate"))
                            .with_value(1e9)]),
                ]),
                1,
            ),
            [D, D, D, A],
        ),
        (
            "ConsumerGroupHeartbeat",
            ApiKey::ConsumerGroupHeartbeat,
            case(
                ConsumerGroupHeartbeatRequest::default()
                    .with_group_id(g())
                    .with_member_id(s("m-848"))
                    .with_member_epoch(0)
                    .with_rebalance_timeout_ms(10000)
                    .with_subscribed_topic_names(Some(vec![tn()]))
                    .with_topic_partitions(Some(Vec::new())),
                1,
            ),
            [D, A, D, A],
        ),
        (
            "ConsumerGroupHeartbeat, a topic the principal may not describe",
            ApiKey::ConsumerGroupHeartbeat,
            case(
                ConsumerGroupHeartbeatRequest::default()
                    .with_group_id(g())
                    .with_member_id(s("m-848"))
                    .with_member_epoch(0)
                    .with_rebalance_timeout_ms(10000)
                    .with_subscribed_topic_names(Some(vec![TopicName(s(DOOMED))]))
                    .with_topic_partitions(Some(Vec::new())),
                1,
            ),
            [D, D, D, A],
        ),
        (
            "ConsumerGroupDescribe",
            ApiKey::ConsumerGroupDescribe,
            case(ConsumerGroupDescribeRequest::default().with_group_ids(vec![g()]), 1),
            [D, A, D, A],
        ),
        (
            "ShareGroupHeartbeat",
            ApiKey::ShareGroupHeartbeat,
            case(
                ShareGroupHeartbeatRequest::default()
                    .with_group_id(GroupId(s("share-matrix")))
                    .with_member_id(s("m-932"))
                    .with_member_epoch(0)
                    .with_subscribed_topic_names(Some(vec![tn()])),
                1,
            ),
            [D, D, D, A],
        ),
        (
            "ShareGroupHeartbeat, the reader's group",
            ApiKey::ShareGroupHeartbeat,
            case(
                ShareGroupHeartbeatRequest::default()
                    .with_group_id(GroupId(s("reader-share")))
                    .with_member_id(s("m-932"))
                    .with_member_epoch(0)
                    .with_subscribed_topic_names(Some(vec![tn()])),
                1,
            ),
            [D, A, D, A],
        ),
        (
            "ShareGroupHeartbeat, a topic the principal may not describe",
            ApiKey::ShareGroupHeartbeat,
            case(
                ShareGroupHeartbeatRequest::default()
                    .with_group_id(GroupId(s("share-matrix")))
                    .with_member_id(s("m-932"))
                    .with_member_epoch(0)
                    .with_subscribed_topic_names(Some(vec![TopicName(s(DOOMED))])),
                1,
            ),
            [D, D, D, A],
        ),
        (
            "ShareGroupDescribe",
            ApiKey::ShareGroupDescribe,
            case(ShareGroupDescribeRequest::default().with_group_ids(vec![GroupId(s("reader-share"))]), 1),
            [D, A, D, A],
        ),
        (
            "ShareFetch",
            ApiKey::ShareFetch,
            case(
                ShareFetchRequest::default()
                    .with_group_id(Some(GroupId(s("reader-share"))))
                    .with_member_id(Some(s("m-932")))
                    .with_share_session_epoch(0)
                    .with_max_bytes(1 << 20)
                    .with_max_records(10),
                1,
            ),
            [D, A, D, A],
        ),
        (
            "ShareAcknowledge",
            ApiKey::ShareAcknowledge,
            case(
                ShareAcknowledgeRequest::default()
                    .with_group_id(Some(GroupId(s("reader-share"))))
                    .with_member_id(Some(s("m-932")))
                    .with_share_session_epoch(1),
                1,
            ),
            [D, A, D, A],
        ),
        (
            "DescribeShareGroupOffsets",
            ApiKey::DescribeShareGroupOffsets,
            case(
                DescribeShareGroupOffsetsRequest::default().with_groups(vec![
                    describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup::default()
                        .with_group_id(GroupId(s("reader-share"))),
                ]),
                0,
            ),
            [D, A, D, A],
        ),
        (
            "AlterShareGroupOffsets",
            ApiKey::AlterShareGroupOffsets,
            case(AlterShareGroupOffsetsRequest::default().with_group_id(GroupId(s("reader-share"))), 0),
            [D, A, D, A],
        ),
        (
            "DeleteShareGroupOffsets",
            ApiKey::DeleteShareGroupOffsets,
            case(DeleteShareGroupOffsetsRequest::default().with_group_id(GroupId(s("reader-share"))), 0),
            [D, D, D, A],
        ),
        (
            "InitializeShareGroupState",
            ApiKey::InitializeShareGroupState,
            case(
                InitializeShareGroupStateRequest::default().with_group_id(s("reader-share")).with_topics(vec![
                    initialize_share_group_state_request::InitializeStateData::default()
                        .with_topic_id(uuid::Uuid::from_u128(932))
                        .with_partitions(vec![initialize_share_group_state_request::PartitionData::default()]),
                ]),
                0,
            ),
            [D, D, D, A],
        ),
        (
            "DeleteShareGroupState",
            ApiKey::DeleteShareGroupState,
            case(
                DeleteShareGroupStateRequest::default().with_group_id(s("reader-share")).with_topics(vec![
                    delete_share_group_state_request::DeleteStateData::default()
                        .with_topic_id(uuid::Uuid::from_u128(932))
                        .with_partitions(vec![delete_share_group_state_request::PartitionData::default()]),
                ]),
                0,
            ),
            [D, D, D, A],
        ),
        (
            "SaslHandshake",
            ApiKey::SaslHandshake,
            case(SaslHandshakeRequest::default().with_mechanism(s("PLAIN")), 1),
            [A, A, A, A],
        ),
        ("SaslAuthenticate", ApiKey::SaslAuthenticate, case(SaslAuthenticateRequest::default(), 2), [A, A, A, A]),
    ]
}

/// The names a denied listing must not reveal.
fn secret_named(debug: &str) -> bool {
    [TOPIC, GROUP, TXN].iter().any(|n| debug.contains(&format!("\"{n}\"")))
}

fn broker() -> (Arc<Broker>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let env: HashMap<String, String> = [
        ("KAFKA_AUTHORIZER_CLASS_NAME", "org.apache.kafka.metadata.authorizer.StandardAuthorizer"),
        ("KAFKA_SUPER_USERS", "User:admin"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let overrides = crate::config::Overrides { data_dir: Some(dir.path().to_owned()), ..Default::default() };
    let config = crate::config::Config::load(None, &env, &overrides).expect("config");
    let broker = Arc::new(Broker::open(Arc::new(config), "127.0.0.1".into(), 9092).expect("open"));
    for name in [TOPIC, DOOMED] {
        let new = NewTopic {
            name: name.into(),
            partitions: 1,
            replication_factor: -1,
            assignments: Vec::new(),
            configs: Default::default(),
        };
        broker.create_topic(new, false).expect("topic");
    }
    let acl = |principal: &str, rtype: i8, name: &str, operation: i8| Acl {
        resource_type: rtype,
        resource_name: name.into(),
        pattern_type: pattern::LITERAL,
        principal: principal.into(),
        host: "*".into(),
        operation,
        permission: permission::ALLOW,
    };
    let created = broker.acls.create(vec![
        acl("User:reader", resource::TOPIC, TOPIC, op::READ),
        acl("User:reader", resource::GROUP, GROUP, op::READ),
        acl("User:reader", resource::GROUP, "reader-share", op::READ),
        acl("User:producer", resource::TOPIC, TOPIC, op::WRITE),
        acl("User:producer", resource::TRANSACTIONAL_ID, TXN, op::WRITE),
    ]);
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    (broker, dir)
}

async fn send(broker: &Arc<Broker>, who: &str, request: &Send) -> String {
    let session = Session::new(broker, "/127.0.0.1".into(), None, None, Principal::user(who));
    let (bytes, decode) = request();
    decode(reply_bytes(dispatch(broker, &session, bytes).await).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_answers_each_principal_as_the_table_says() {
    let (broker, _dir) = broker();
    let all = cases();
    // The group and the transaction exist, so that listings have something to leave out.
    let by_name = |n: &str| all.iter().find(|c| c.0 == n).map(|c| &c.2).expect("case");
    send(&broker, "admin", by_name("OffsetCommit")).await;
    send(&broker, "admin", by_name("InitProducerId, transactional")).await;
    for api in SUPPORTED {
        assert!(all.iter().any(|c| c.1 == api.key), "{:?} is served but the matrix has no case for it", api.key);
    }
    let principals = ["nobody", "reader", "producer", "admin"];
    let mut failures = Vec::new();
    for (name, api, request, expected) in &all {
        let row = requirement(*api).expect("a table row");
        for (who, &allowed) in principals.iter().zip(expected) {
            let debug = send(&broker, who, request).await;
            let refused = codes(&debug).iter().any(|c| AUTH_CODES.contains(c));
            let ok = match (row.denied, allowed) {
                (Denied::Never, _) => !refused && allowed,
                (Denied::Filtered, true) => !refused && secret_named(&debug),
                (Denied::Filtered, false) => !refused && !secret_named(&debug),
                (Denied::With(_), true) => !refused,
                (Denied::With(_), false) if *name == "Metadata of every topic" => !secret_named(&debug),
                (Denied::With(_), false) => refused,
            };
            if !ok {
                failures.push(format!(
                    "{name} as {who}: expected {}, got {debug}",
                    if allowed { "allowed" } else { "denied" }
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_principal_cannot_tell_a_missing_topic_from_a_hidden_one() {
    let (broker, _dir) = broker();
    let ask = |name: &str| {
        case(
            MetadataRequest::default().with_allow_auto_topic_creation(true).with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default().with_name(Some(TopicName(s(name)))),
            ])),
            12,
        )
    };
    let hidden = send(&broker, "nobody", &ask(TOPIC)).await;
    let missing = send(&broker, "nobody", &ask("no-such-topic")).await;
    // The same answer, the top-level code aside: TOPIC_AUTHORIZATION_FAILED and no id.
    assert_eq!(codes(&hidden), vec![29, 0], "{hidden}");
    assert_eq!(codes(&missing), vec![29, 0], "{missing}");
    assert_eq!(hidden.replace(TOPIC, "no-such-topic"), missing);
    // And asking did not create it: auto-creation needs CREATE.
    assert!(broker.topic("no-such-topic").is_none());
    // The reader may describe its topic but not create one.
    let created = send(&broker, "reader", &ask("reader-made")).await;
    assert_eq!(codes(&created), vec![29, 0], "{created}");
    assert!(broker.topic("reader-made").is_none());
}
