//! Topic creation is all-or-nothing, and every legal Kafka topic name works.

use crate::common::{RawClient, TestBroker};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

async fn create(c: &mut RawClient, topic: &str, partitions: i32) -> CreateTopicsResponse {
    let req = CreateTopicsRequest::default().with_timeout_ms(5000).with_topics(vec![CreatableTopic::default()
        .with_name(name(topic))
        .with_num_partitions(partitions)
        .with_replication_factor(-1)]);
    c.call(7, &req).await
}

async fn metadata(c: &mut RawClient, topic: &str) -> MetadataResponseTopic {
    let req = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(name(topic)))]))
        .with_allow_auto_topic_creation(false);
    c.call(12, &req).await.topics.remove(0)
}

/// A 249-character name (the longest Kafka allows) can be created, listed, survives a
/// restart, and can be deleted for good.
#[tokio::test]
async fn the_longest_legal_topic_name_works_across_a_restart() {
    let long: String = "t.-_".repeat(63)[..249].to_string();
    let tmp = tempfile::tempdir().unwrap();
    let broker = TestBroker::start_in(tmp.path(), |_| {}).await;
    let mut c = RawClient::connect(broker.addr).await;
    let created = create(&mut c, &long, 3).await;
    assert_eq!(created.topics[0].error_code, 0, "{:?}", created.topics[0].error_message);
    assert_eq!(created.topics[0].error_message, None, "KIP-467: null on success");
    assert_eq!(metadata(&mut c, &long).await.partitions.len(), 3);
    drop(c);
    broker.stop().await;

    let broker = TestBroker::start_in(tmp.path(), |_| {}).await;
    let mut c = RawClient::connect(broker.addr).await;
    assert_eq!(metadata(&mut c, &long).await.partitions.len(), 3, "lost at restart");
    let del =
        DeleteTopicsRequest::default().with_topics(vec![DeleteTopicState::default().with_name(Some(name(&long)))]);
    assert_eq!(c.call(6, &del).await.responses[0].error_code, 0);
    drop(c);
    broker.stop().await;

    let broker = TestBroker::start_in(tmp.path(), |_| {}).await;
    let mut c = RawClient::connect(broker.addr).await;
    assert_eq!(metadata(&mut c, &long).await.error_code, 3, "a deleted topic came back");
    broker.stop().await;
}

/// A creation that fails at partition 2 of 4 (a regular file sits where that partition's
/// directory must go) leaves no partition directory and no metadata behind, and says why.
#[tokio::test]
async fn a_creation_that_fails_half_way_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = TestBroker::start_in(tmp.path(), |_| {}).await;
    std::fs::write(tmp.path().join("half-2"), b"in the way").unwrap();
    let mut c = RawClient::connect(broker.addr).await;
    let created = create(&mut c, "half", 4).await;
    let t = &created.topics[0];
    assert_eq!(t.error_code, 56, "KAFKA_STORAGE_ERROR");
    let message = t.error_message.as_ref().map(|m| m.to_string()).unwrap_or_default();
    assert!(message.contains("nothing was kept"), "{message}");
    for p in [0, 1, 3] {
        assert!(!tmp.path().join(format!("half-{p}")).exists(), "partition {p} of the failed topic was left on disk");
    }
    assert_eq!(metadata(&mut c, "half").await.error_code, 3, "the failed topic is known");
    // Once the obstacle is gone the same creation succeeds.
    std::fs::remove_file(tmp.path().join("half-2")).unwrap();
    assert_eq!(create(&mut c, "half", 4).await.topics[0].error_code, 0);
    drop(c);
    broker.stop().await;
}

/// Java clients look topics up by id with an empty name beside it (Metadata v12+): the id
/// decides, as in Kafka, instead of the empty name being refused as invalid.
#[tokio::test]
async fn metadata_finds_a_topic_by_id_when_the_name_is_empty() {
    let broker = TestBroker::start().await;
    let mut c = RawClient::connect(broker.addr).await;
    assert_eq!(create(&mut c, "by-id", 2).await.topics[0].error_code, 0);
    let id = metadata(&mut c, "by-id").await.topic_id;
    assert!(!id.is_nil());
    let req = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(name(""))).with_topic_id(id)]))
        .with_allow_auto_topic_creation(false);
    let t = c.call(12, &req).await.topics.remove(0);
    assert_eq!(t.error_code, 0);
    assert_eq!(t.name.as_ref().map(|n| n.0.to_string()), Some("by-id".to_string()));
    assert_eq!(t.partitions.len(), 2);
    broker.stop().await;
}

/// DescribeConfigs v3+ carries a documentation field: null when not asked for, as Kafka sends
/// it (the codec's default was an empty string).
#[tokio::test]
async fn describe_configs_documentation_is_null() {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    let broker = TestBroker::start().await;
    let mut c = RawClient::connect(broker.addr).await;
    assert_eq!(create(&mut c, "documented", 1).await.topics[0].error_code, 0);
    let req = DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
        .with_resource_type(2)
        .with_resource_name(StrBytes::from_static_str("documented"))
        .with_configuration_keys(None)]);
    let resp = c.call(4, &req).await;
    let configs = &resp.results[0].configs;
    assert!(!configs.is_empty());
    assert!(configs.iter().all(|e| e.documentation.is_none()), "documentation sent unasked");
    broker.stop().await;
}
