//! DescribeCluster, DescribeLogDirs and ElectLeaders answered as a one-broker Kafka 4.1 cluster answers them
//! (kafka-python's admin client is checked against them in compat-tests/clients).

use crate::common::{RawClient, TestBroker};
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

#[tokio::test]
async fn describe_cluster_names_this_broker_and_the_operations_when_asked() {
    let b = TestBroker::start().await;
    let mut c = RawClient::connect(b.addr).await;
    for v in 0..=2 {
        let resp = c.call(v, &DescribeClusterRequest::default().with_include_cluster_authorized_operations(true)).await;
        assert_eq!((resp.error_code, resp.error_message.clone()), (0, None), "v{v}");
        assert_eq!(resp.brokers.len(), 1);
        assert_eq!(resp.brokers[0].port, i32::from(b.addr.port()));
        assert_eq!(resp.controller_id, resp.brokers[0].broker_id);
        assert!(!resp.cluster_id.is_empty());
        assert_eq!(resp.cluster_authorized_operations, 0x7fa0);
    }
    let resp = c.call(2, &DescribeClusterRequest::default()).await;
    assert_eq!(resp.cluster_authorized_operations, i32::MIN, "not asked: INT32_MIN, as Kafka");
    let resp = c.call(1, &DescribeClusterRequest::default().with_endpoint_type(2)).await;
    assert_eq!(resp.error_code, 114, "MISMATCHED_ENDPOINT_TYPE for a controller request");
    b.stop().await;
}

#[tokio::test]
async fn describe_log_dirs_reports_partition_sizes_and_the_file_system() {
    let b = TestBroker::start().await;
    let mut c = RawClient::connect(b.addr).await;
    let all = c.call(4, &DescribeLogDirsRequest::default().with_topics(None)).await;
    assert_eq!(all.results.len(), 1);
    let dir = &all.results[0];
    assert_eq!(dir.error_code, 0);
    assert!(dir.log_dir.starts_with('/'), "{}", dir.log_dir.as_str());
    assert!(dir.total_bytes > 0 && dir.usable_bytes > 0 && dir.usable_bytes <= dir.total_bytes);
    assert!(dir.topics.iter().any(|t| t.name.0.as_str() == "__consumer_offsets"), "internal partitions are listed");
    let one = DescribableLogDirTopic::default()
        .with_topic(TopicName(StrBytes::from_static_str("__consumer_offsets")))
        .with_partitions(vec![0, 99]);
    let asked = c.call(1, &DescribeLogDirsRequest::default().with_topics(Some(vec![one]))).await;
    let topics = &asked.results[0].topics;
    assert_eq!(topics.len(), 1);
    let parts: Vec<i32> = topics[0].partitions.iter().map(|p| p.partition_index).collect();
    assert_eq!(parts, vec![0], "a partition that does not exist is left out");
    b.stop().await;
}

/// ElectLeaders: no election is ever needed on one node; unknown partitions are named.
#[tokio::test]
async fn elect_leaders_needs_no_election() {
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    use kafka_protocol::messages::{ElectLeadersRequest, TopicName};
    let broker = TestBroker::start().await;
    let mut c = RawClient::connect(broker.addr).await;
    c.create_topic("elect", 2).await;
    let req = ElectLeadersRequest::default().with_election_type(0).with_topic_partitions(Some(vec![
        TopicPartitions::default().with_topic(TopicName("elect".into())).with_partitions(vec![0, 1, 5]),
    ]));
    let resp = c.call(2, &req).await;
    assert_eq!(resp.error_code, 0);
    let codes: Vec<i16> = resp.replica_election_results[0].partition_result.iter().map(|p| p.error_code).collect();
    assert_eq!(codes, vec![84, 84, 3], "ELECTION_NOT_NEEDED, and UNKNOWN_TOPIC_OR_PARTITION for partition 5");
    let all = c.call(2, &ElectLeadersRequest::default().with_election_type(1).with_topic_partitions(None)).await;
    assert!(all.replica_election_results.is_empty() && all.error_code == 0);
    assert_eq!(c.call(2, &ElectLeadersRequest::default().with_election_type(7)).await.error_code, 42);
    broker.stop().await;
}

/// `__consumer_offsets` is listed as internal once a group has committed, can be described and
/// read, and refuses client appends (INVALID_TOPIC_EXCEPTION, as Kafka 4.1).
#[tokio::test]
async fn the_offsets_topic_is_listed_as_internal_once_used() {
    use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    let b = TestBroker::start().await;
    let mut c = RawClient::connect(b.addr).await;
    c.create_topic("user", 1).await;
    let listed = |resp: &MetadataResponse| -> Vec<(String, bool)> {
        resp.topics.iter().map(|t| (t.name.as_ref().unwrap().0.to_string(), t.is_internal)).collect()
    };
    let all = c.call(12, &MetadataRequest::default().with_topics(None)).await;
    assert_eq!(listed(&all), vec![("user".to_string(), false)], "not listed before it is used");

    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("g")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("user")))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(0)])]);
    let committed = c.call(8, &commit).await;
    assert_eq!(committed.topics[0].partitions[0].error_code, 0);

    let all = c.call(12, &MetadataRequest::default().with_topics(None)).await;
    assert_eq!(listed(&all), vec![("__consumer_offsets".to_string(), true), ("user".to_string(), false)]);
    let internal = &all.topics[0];
    assert_eq!(internal.partitions.len(), 1);
    assert!(!internal.topic_id.is_nil());
    let again = c.call(12, &MetadataRequest::default().with_topics(None)).await;
    assert_eq!(again.topics[0].topic_id, internal.topic_id, "the id is stable");

    // Described through DescribeTopicPartitions and DescribeConfigs.
    let described = c.call(0, &DescribeTopicPartitionsRequest::default().with_response_partition_limit(10)).await;
    let names: Vec<(String, bool)> =
        described.topics.iter().map(|t| (t.name.as_ref().unwrap().0.to_string(), t.is_internal)).collect();
    assert_eq!(names, vec![("__consumer_offsets".to_string(), true), ("user".to_string(), false)]);
    let configs = c
        .call(
            4,
            &DescribeConfigsRequest::default().with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_static_str("__consumer_offsets")),
            ]),
        )
        .await;
    assert_eq!((configs.results[0].error_code, configs.results[0].error_message.clone()), (0, None));
    let policy = configs.results[0].configs.iter().find(|c| c.name.as_str() == "cleanup.policy").unwrap();
    assert_eq!(policy.value.as_deref(), Some("compact"));

    // Readable from offset 0.
    let fetch = FetchRequest::default().with_max_bytes(1 << 20).with_topics(vec![fetch_request::FetchTopic::default()
        .with_topic(TopicName(StrBytes::from_static_str("__consumer_offsets")))
        .with_partitions(vec![fetch_request::FetchPartition::default().with_partition_max_bytes(1 << 20)])]);
    let fetched = c.call(12, &fetch).await;
    let part = &fetched.responses[0].partitions[0];
    assert_eq!(part.error_code, 0);
    assert!(part.records.as_ref().is_some_and(|r| !r.is_empty()), "the commit's record is there");

    // Not writable by clients.
    let produce =
        ProduceRequest::default().with_acks(-1).with_timeout_ms(1000).with_topic_data(vec![TopicProduceData::default(
        )
        .with_name(TopicName(StrBytes::from_static_str("__consumer_offsets")))
        .with_partition_data(vec![PartitionProduceData::default()
            .with_index(0)
            .with_records(Some(bytes::Bytes::from_static(b"not even a batch")))])]);
    let produced = c.call(9, &produce).await;
    let p = &produced.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 17, "INVALID_TOPIC_EXCEPTION");
    assert_eq!(p.error_message.as_deref(), Some("Cannot append to internal topic __consumer_offsets"));
    b.stop().await;
}

/// The reassignment APIs answer as a one-broker Kafka cluster does, over the wire.
#[tokio::test]
async fn partition_reassignments_on_one_broker() {
    use kafka_protocol::messages::alter_partition_reassignments_request::{ReassignablePartition, ReassignableTopic};
    let b = TestBroker::start().await;
    let mut c = RawClient::connect(b.addr).await;
    c.create_topic("moved", 1).await;
    let listed = c.call(0, &ListPartitionReassignmentsRequest::default().with_topics(None)).await;
    assert_eq!((listed.error_code, listed.topics.len(), listed.error_message.clone()), (0, 0, None));
    let alter = |replicas: Option<Vec<i32>>| {
        AlterPartitionReassignmentsRequest::default().with_allow_replication_factor_change(true).with_topics(vec![
            ReassignableTopic::default().with_name(TopicName(StrBytes::from_static_str("moved"))).with_partitions(
                vec![ReassignablePartition::default()
                    .with_partition_index(0)
                    .with_replicas(replicas.map(|r| r.into_iter().map(BrokerId).collect()))],
            ),
        ])
    };
    let same = c.call(1, &alter(Some(vec![1]))).await;
    assert!(same.allow_replication_factor_change);
    assert_eq!(same.error_message, None, "KIP-467: null on success");
    let p = &same.responses[0].partitions[0];
    assert_eq!((p.error_code, p.error_message.clone()), (0, None));
    let elsewhere = c.call(0, &alter(Some(vec![2]))).await;
    assert_eq!(elsewhere.responses[0].partitions[0].error_code, 39, "INVALID_REPLICA_ASSIGNMENT");
    let cancel = c.call(0, &alter(None)).await;
    assert_eq!(cancel.responses[0].partitions[0].error_code, 85, "NO_REASSIGNMENT_IN_PROGRESS");
    b.stop().await;
}

/// KIP-467: FindCoordinator's success carries a null message, in both the single (v0-3) and the
/// batched (v4+) shapes.
#[tokio::test]
async fn find_coordinator_success_has_no_message() {
    let b = TestBroker::start().await;
    let mut c = RawClient::connect(b.addr).await;
    let one = c.call(3, &FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g"))).await;
    assert_eq!((one.error_code, one.error_message), (0, None));
    let batched =
        c.call(4, &FindCoordinatorRequest::default().with_coordinator_keys(vec![StrBytes::from_static_str("g")])).await;
    assert_eq!((batched.coordinators[0].error_code, batched.coordinators[0].error_message.clone()), (0, None));
    b.stop().await;
}
