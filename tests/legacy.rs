//! The API versions Kafka 4 removed and old clients still send, on the wire: each request is
//! written with the codec of Kafka 3.x's schemas (kafka-protocol 0.15), as sarama, kafka-go and
//! kafka-python 2.0 write them, and the answer must read back in the same version.

mod common;

use bytes::{Buf, BufMut, BytesMut};
use common::{RawClient, TestBroker};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ProduceRequest};
use kafka_protocol_legacy::messages as old;
use kafka_protocol_legacy::messages::{RequestKind, ResponseKind};
use kafka_protocol_legacy::protocol::StrBytes;

fn s(v: &'static str) -> StrBytes {
    StrBytes::from_static_str(v)
}

fn topic(v: &'static str) -> old::TopicName {
    old::TopicName(s(v))
}

/// Sends `request` in `version` (request header v1, as every pre-flexible version has) and
/// reads the answer back in the same version; every byte of it must be used.
async fn call(c: &mut RawClient, key: ApiKey, version: i16, request: RequestKind) -> ResponseKind {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    buf.put_i16(key as i16);
    buf.put_i16(version);
    buf.put_i32(4242);
    buf.put_i16(6);
    buf.put_slice(b"sarama");
    request.encode(&mut buf, version).unwrap();
    let size = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&size.to_be_bytes());
    c.send_raw(&buf).await;
    let mut frame = c.read_frame().await.unwrap_or_else(|| panic!("{key:?} v{version}: connection closed"));
    assert_eq!(frame.get_i32(), 4242, "{key:?} v{version}: correlation id");
    let api = old::ApiKey::try_from(key as i16).unwrap();
    let response = ResponseKind::decode(api, &mut frame, version).unwrap();
    assert!(frame.is_empty(), "{key:?} v{version}: {} bytes left over", frame.len());
    response
}

/// Three records in partition 0 of `name`, through the current Produce.
async fn produce_three(c: &mut RawClient, name: &'static str) {
    let records: Vec<(Option<&[u8]>, Option<&[u8]>)> = vec![(None, Some(b"a")), (None, Some(b"b")), (None, Some(b"c"))];
    let batch = gregor::log::batch::build(&records, 1_700_000_000_000);
    let req =
        ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![TopicProduceData::default(
        )
        .with_name(kafka_protocol::messages::TopicName(kafka_protocol::protocol::StrBytes::from_static_str(name)))
        .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(batch.into()))])]);
    let resp = c.call(9, &req).await;
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
}

#[tokio::test]
async fn versions_kafka_4_removed_are_served_as_kafka_3_served_them() {
    let broker = TestBroker::start().await;
    let mut c = RawClient::connect(broker.addr).await;

    // ApiVersions advertises them.
    let versions = c.call(0, &ApiVersionsRequest::default()).await;
    for key in
        [ApiKey::OffsetCommit, ApiKey::OffsetFetch, ApiKey::ListOffsets, ApiKey::CreateTopics, ApiKey::DescribeConfigs]
    {
        let a = versions.api_keys.iter().find(|a| a.api_key == key as i16).unwrap();
        assert_eq!(a.min_version, 0, "{key:?}");
    }

    // CreateTopics v0 (kafka-go 0.2's).
    let create = old::CreateTopicsRequest::default().with_timeout_ms(5000).with_topics(vec![
        old::create_topics_request::CreatableTopic::default()
            .with_name(topic("old"))
            .with_num_partitions(2)
            .with_replication_factor(1),
    ]);
    let ResponseKind::CreateTopics(r) = call(&mut c, ApiKey::CreateTopics, 0, RequestKind::CreateTopics(create)).await
    else {
        unreachable!()
    };
    assert_eq!((r.topics.len(), r.topics[0].error_code), (1, 0));
    produce_three(&mut c, "old").await;

    // ListOffsets v0: latest and earliest, one offset each.
    use old::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    for (timestamp, want) in [(-1, 3), (-2, 0)] {
        let req = old::ListOffsetsRequest::default().with_replica_id(old::BrokerId(-1)).with_topics(vec![
            ListOffsetsTopic::default().with_name(topic("old")).with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(timestamp)
                .with_max_num_offsets(1)]),
        ]);
        let ResponseKind::ListOffsets(r) = call(&mut c, ApiKey::ListOffsets, 0, RequestKind::ListOffsets(req)).await
        else {
            unreachable!()
        };
        let p = &r.topics[0].partitions[0];
        assert_eq!((p.error_code, p.old_style_offsets.clone()), (0, vec![want]), "timestamp {timestamp}");
    }

    // OffsetCommit v0 and v1 (sarama 1.22's default), OffsetFetch v0.
    use old::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    for (version, offset) in [(0, 2), (1, 3)] {
        let req = old::OffsetCommitRequest::default()
            .with_group_id(old::GroupId(s("sarama-group")))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![OffsetCommitRequestTopic::default().with_name(topic("old")).with_partitions(vec![
                OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(offset)
                    .with_commit_timestamp(-1),
            ])]);
        let ResponseKind::OffsetCommit(r) =
            call(&mut c, ApiKey::OffsetCommit, version, RequestKind::OffsetCommit(req)).await
        else {
            unreachable!()
        };
        assert_eq!(r.topics[0].partitions[0].error_code, 0, "OffsetCommit v{version}");
        let fetch =
            old::OffsetFetchRequest::default().with_group_id(old::GroupId(s("sarama-group"))).with_topics(Some(vec![
                old::offset_fetch_request::OffsetFetchRequestTopic::default()
                    .with_name(topic("old"))
                    .with_partition_indexes(vec![0]),
            ]));
        let ResponseKind::OffsetFetch(r) = call(&mut c, ApiKey::OffsetFetch, 0, RequestKind::OffsetFetch(fetch)).await
        else {
            unreachable!()
        };
        let p = &r.topics[0].partitions[0];
        assert_eq!((p.error_code, p.committed_offset), (0, offset), "after OffsetCommit v{version}");
    }

    // DescribeConfigs v0 (sarama's DescribeConfigs): is_default from where the value came from.
    let req = old::DescribeConfigsRequest::default().with_resources(vec![
        old::describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s("old"))
            .with_configuration_keys(Some(vec![s("retention.ms")])),
    ]);
    let ResponseKind::DescribeConfigs(r) =
        call(&mut c, ApiKey::DescribeConfigs, 0, RequestKind::DescribeConfigs(req)).await
    else {
        unreachable!()
    };
    let config = &r.results[0].configs[0];
    assert_eq!((r.results[0].error_code, config.name.as_str(), config.is_default), (0, "retention.ms", true));

    // OffsetForLeaderEpoch v0 and DescribeLogDirs v0.
    use old::offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
    let req = old::OffsetForLeaderEpochRequest::default().with_topics(vec![OffsetForLeaderTopic::default()
        .with_topic(topic("old"))
        .with_partitions(vec![OffsetForLeaderPartition::default().with_partition(0).with_leader_epoch(0)])]);
    let ResponseKind::OffsetForLeaderEpoch(r) =
        call(&mut c, ApiKey::OffsetForLeaderEpoch, 0, RequestKind::OffsetForLeaderEpoch(req)).await
    else {
        unreachable!()
    };
    let p = &r.topics[0].partitions[0];
    assert_eq!((p.error_code, p.end_offset), (0, 3));
    let ResponseKind::DescribeLogDirs(r) =
        call(&mut c, ApiKey::DescribeLogDirs, 0, RequestKind::DescribeLogDirs(Default::default())).await
    else {
        unreachable!()
    };
    assert_eq!((r.results.len(), r.results[0].error_code), (1, 0));

    // DeleteTopics v0.
    let req = old::DeleteTopicsRequest::default().with_topic_names(vec![topic("old")]).with_timeout_ms(5000);
    let ResponseKind::DeleteTopics(r) = call(&mut c, ApiKey::DeleteTopics, 0, RequestKind::DeleteTopics(req)).await
    else {
        unreachable!()
    };
    assert_eq!(r.responses[0].error_code, 0);

    // The connection is still good for current versions.
    assert_eq!(c.call(0, &ApiVersionsRequest::default()).await.error_code, 0);
    broker.stop().await;
}

#[tokio::test]
async fn a_legacy_request_that_does_not_decode_closes_only_its_connection() {
    let broker = TestBroker::start().await;
    let mut c = RawClient::connect(broker.addr).await;
    let mut buf = BytesMut::new();
    buf.put_i32(12);
    buf.put_i16(ApiKey::OffsetCommit as i16);
    buf.put_i16(1);
    buf.put_i32(1);
    buf.put_i16(-1);
    buf.put_i16(7); // a group id of 7 bytes that never come
    c.send_raw(&buf).await;
    assert!(c.is_closed().await);
    let mut other = RawClient::connect(broker.addr).await;
    assert_eq!(other.call(0, &ApiVersionsRequest::default()).await.error_code, 0);
    broker.stop().await;
}
