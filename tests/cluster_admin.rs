//! DescribeCluster, DescribeLogDirs and ElectLeaders answered as a one-broker Kafka 4.1 cluster answers them
//! (kafka-python's admin client is checked against them in compat-tests/clients).

mod common;

use common::{RawClient, TestBroker};
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
