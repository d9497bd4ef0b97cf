//! The API versions Kafka 4 removed and old clients still send, on the wire: each request is
//! written with the codec of Kafka 3.x's schemas (kafka-protocol 0.15), as sarama, kafka-go and
//! kafka-python 2.0 write them, and the answer must read back in the same version.

use crate::common::{RawClient, TestBroker};
use bytes::{Buf, BufMut, BytesMut};
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
    let records: Vec<gregor::log::batch::KeyValue> = vec![(None, Some(b"a")), (None, Some(b"b")), (None, Some(b"c"))];
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

/// One legacy message (magic 0 or 1) as an old producer writes it, offset 0.
fn message(magic: i8, codec: i8, timestamp: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> Vec<u8> {
    let mut body = vec![magic as u8, codec as u8];
    if magic == 1 {
        body.extend_from_slice(&timestamp.to_be_bytes());
    }
    for field in [key, value] {
        match field {
            Some(b) => {
                body.extend_from_slice(&(b.len() as i32).to_be_bytes());
                body.extend_from_slice(b);
            }
            None => body.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    let mut out = 0i64.to_be_bytes().to_vec();
    out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// The messages of a fetched message set: (offset, magic, timestamp, key, value).
type Message = (i64, i8, i64, Option<Vec<u8>>, Option<Vec<u8>>);

fn messages(mut set: &[u8]) -> Vec<Message> {
    fn field(b: &mut &[u8]) -> Option<Vec<u8>> {
        let len = b.get_i32();
        (len >= 0).then(|| {
            let v = b[..len as usize].to_vec();
            b.advance(len as usize);
            v
        })
    }
    let mut out = Vec::new();
    while set.len() >= 12 {
        let offset = set.get_i64();
        let size = set.get_i32() as usize;
        if set.len() < size {
            break; // a partial message at the end, as a size-limited fetch may leave
        }
        let (mut m, rest) = set.split_at(size);
        set = rest;
        let crc = m.get_u32();
        assert_eq!(crc, crc32fast::hash(m), "the CRC of the message at {offset}");
        let magic = m.get_i8();
        let _attributes = m.get_i8();
        let timestamp = if magic == 1 { m.get_i64() } else { -1 };
        let key = field(&mut m);
        let value = field(&mut m);
        out.push((offset, magic, timestamp, key, value));
    }
    out
}

fn produce_v(partitions: Vec<(i32, Vec<u8>)>) -> old::ProduceRequest {
    use old::produce_request::{PartitionProduceData, TopicProduceData};
    old::ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![TopicProduceData::default(
    )
    .with_name(topic("legacy"))
    .with_partition_data(
        partitions
            .into_iter()
            .map(|(index, set)| PartitionProduceData::default().with_index(index).with_records(Some(set.into())))
            .collect(),
    )])
}

fn fetch_v(partition: i32, offset: i64, max_bytes: i32) -> old::FetchRequest {
    use old::fetch_request::{FetchPartition, FetchTopic};
    old::FetchRequest::default().with_replica_id(old::BrokerId(-1)).with_max_wait_ms(0).with_topics(vec![
        FetchTopic::default().with_topic(topic("legacy")).with_partitions(vec![FetchPartition::default()
            .with_partition(partition)
            .with_fetch_offset(offset)
            .with_partition_max_bytes(max_bytes)]),
    ])
}

#[tokio::test]
async fn old_message_formats_are_converted_on_produce_and_on_fetch() {
    let broker = TestBroker::start().await;
    let mut c = RawClient::connect(broker.addr).await;
    c.create_topic("legacy", 2).await;

    // Produce v0 with magic 0, v2 with magic 1; a corrupt set for partition 1 is refused alone.
    let mut v0_set = message(0, 0, -1, Some(b"k0"), Some(b"zero"));
    v0_set.extend(message(0, 0, -1, None, Some(b"one")));
    let mut bad = message(0, 0, -1, None, Some(b"bad"));
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let ResponseKind::Produce(r) =
        call(&mut c, ApiKey::Produce, 0, RequestKind::Produce(produce_v(vec![(0, v0_set), (1, bad)]))).await
    else {
        unreachable!()
    };
    let mut answers: Vec<_> =
        r.responses[0].partition_responses.iter().map(|p| (p.index, p.error_code, p.base_offset)).collect();
    answers.sort();
    assert_eq!(answers, vec![(0, 0, 0), (1, 2, -1)], "CORRUPT_MESSAGE for partition 1 only");
    let v1_set = message(1, 0, 1_600_000_000_123, Some(b"k2"), None);
    let ResponseKind::Produce(r) =
        call(&mut c, ApiKey::Produce, 2, RequestKind::Produce(produce_v(vec![(0, v1_set)]))).await
    else {
        unreachable!()
    };
    let p = &r.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset), (0, 2));

    // Fetch v0 reads magic 0, v2 reads magic 1 with the timestamps v1 messages carried.
    let ResponseKind::Fetch(r) = call(&mut c, ApiKey::Fetch, 0, RequestKind::Fetch(fetch_v(0, 0, 1 << 20))).await
    else {
        unreachable!()
    };
    let p = &r.responses[0].partitions[0];
    assert_eq!((p.error_code, p.high_watermark), (0, 3));
    let got = messages(p.records.as_deref().unwrap_or_default());
    let expect = vec![
        (0, 0, -1, Some(b"k0".to_vec()), Some(b"zero".to_vec())),
        (1, 0, -1, None, Some(b"one".to_vec())),
        (2, 0, -1, Some(b"k2".to_vec()), None),
    ];
    assert_eq!(got, expect);
    let ResponseKind::Fetch(r) = call(&mut c, ApiKey::Fetch, 2, RequestKind::Fetch(fetch_v(0, 1, 1 << 20))).await
    else {
        unreachable!()
    };
    let got = messages(r.responses[0].partitions[0].records.as_deref().unwrap_or_default());
    let stamps: Vec<_> = got.iter().map(|m| (m.0, m.1, m.2)).collect();
    assert_eq!(stamps, vec![(1, 1, -1), (2, 1, 1_600_000_000_123)], "from the fetch offset on, magic 1");

    // At the end of the log: an empty message set, not a null one (kafka-go 0.2 reads -1 as
    // an error).
    let ResponseKind::Fetch(r) = call(&mut c, ApiKey::Fetch, 2, RequestKind::Fetch(fetch_v(0, 3, 1 << 20))).await
    else {
        unreachable!()
    };
    assert_eq!(r.responses[0].partitions[0].records.as_deref(), Some(&[][..]));

    // A small max_bytes still gets the first message whole, and no more.
    let ResponseKind::Fetch(r) = call(&mut c, ApiKey::Fetch, 1, RequestKind::Fetch(fetch_v(0, 0, 10))).await else {
        unreachable!()
    };
    let got = messages(r.responses[0].partitions[0].records.as_deref().unwrap_or_default());
    assert_eq!(got.iter().map(|m| m.0).collect::<Vec<_>>(), vec![0]);

    // A RecordBatch v2 in Produce v2 is taken as it is, as Kafka 3.9 took it.
    let records: Vec<gregor::log::batch::KeyValue> = vec![(None, Some(b"v2-in-v2"))];
    let v2_batch = gregor::log::batch::build(&records, 1_700_000_000_000);
    let ResponseKind::Produce(r) =
        call(&mut c, ApiKey::Produce, 2, RequestKind::Produce(produce_v(vec![(0, v2_batch)]))).await
    else {
        unreachable!()
    };
    let p = &r.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset), (0, 3));

    // acks=0 is answered with nothing, and the connection goes on.
    let quiet = produce_v(vec![(1, message(0, 0, -1, None, Some(b"quiet")))]).with_acks(0);
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    buf.put_i16(ApiKey::Produce as i16);
    buf.put_i16(1);
    buf.put_i32(99);
    buf.put_i16(-1);
    RequestKind::Produce(quiet).encode(&mut buf, 1).unwrap();
    let size = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&size.to_be_bytes());
    c.send_raw(&buf).await;
    let ResponseKind::Fetch(r) = call(&mut c, ApiKey::Fetch, 3, RequestKind::Fetch(fetch_v(1, 0, 1 << 20))).await
    else {
        unreachable!()
    };
    let got = messages(r.responses[0].partitions[0].records.as_deref().unwrap_or_default());
    assert_eq!(got.iter().map(|m| m.4.clone()).collect::<Vec<_>>(), vec![Some(b"quiet".to_vec())]);
    broker.stop().await;
}

#[tokio::test]
async fn kafka_version_emulation_serves_only_that_releases_versions() {
    // As Kafka 4.1: OffsetCommit from v2, and Produce v0-v2 advertised but refused.
    let broker = TestBroker::start_with(|c| c.server.kafka_version = Some("4.1".into())).await;
    let mut c = RawClient::connect(broker.addr).await;
    let versions = c.call(3, &versions_request()).await;
    let range = |key: ApiKey| {
        versions.api_keys.iter().find(|a| a.api_key == key as i16).map(|a| (a.min_version, a.max_version))
    };
    assert_eq!(range(ApiKey::OffsetCommit), Some((2, 9)));
    assert_eq!(range(ApiKey::Produce), Some((0, 13)));
    assert_eq!(versions.finalized_features.len(), 1, "transaction.version 2 is finalized");
    c.create_topic("legacy", 1).await;
    let set = message(1, 0, 1, None, Some(b"refused"));
    let ResponseKind::Produce(r) =
        call(&mut c, ApiKey::Produce, 2, RequestKind::Produce(produce_v(vec![(0, set)]))).await
    else {
        unreachable!()
    };
    assert_eq!(r.responses[0].partition_responses[0].error_code, 35, "UNSUPPORTED_VERSION, as Kafka 4 answers");
    broker.stop().await;

    // As Kafka 3.9: OffsetCommit from v0, Produce up to v11, DescribeTopicPartitions (KRaft)
    // present, no finalized transaction version; a Produce v12 is not served.
    let broker = TestBroker::start_with(|c| c.server.kafka_version = Some("3.9".into())).await;
    let mut c = RawClient::connect(broker.addr).await;
    let versions = c.call(3, &versions_request()).await;
    let range = |key: ApiKey| {
        versions.api_keys.iter().find(|a| a.api_key == key as i16).map(|a| (a.min_version, a.max_version))
    };
    assert_eq!(range(ApiKey::OffsetCommit), Some((0, 9)));
    assert_eq!(range(ApiKey::Produce), Some((0, 11)));
    assert_eq!(range(ApiKey::ListConfigResources), Some((0, 0)));
    assert!(versions.finalized_features.is_empty());
    c.create_topic("legacy", 1).await;
    let (_, frame) = c.frame(12, &ProduceRequest::default());
    c.send_raw(&frame).await;
    assert!(c.is_closed().await, "Produce v12 is past what Kafka 3.9 serves");
    broker.stop().await;

    // As Kafka 2.8: no DescribeTopicPartitions, no DescribeCluster v1.
    let broker = TestBroker::start_with(|c| c.server.kafka_version = Some("2.8.2".into())).await;
    let mut c = RawClient::connect(broker.addr).await;
    let versions = c.call(3, &versions_request()).await;
    let range = |key: ApiKey| {
        versions.api_keys.iter().find(|a| a.api_key == key as i16).map(|a| (a.min_version, a.max_version))
    };
    assert_eq!(range(ApiKey::DescribeTopicPartitions), None);
    assert_eq!(range(ApiKey::DescribeCluster), Some((0, 0)));
    broker.stop().await;
}

fn versions_request() -> ApiVersionsRequest {
    ApiVersionsRequest::default()
        .with_client_software_name(kafka_protocol::protocol::StrBytes::from_static_str("gregor-test"))
        .with_client_software_version(kafka_protocol::protocol::StrBytes::from_static_str("1"))
}
