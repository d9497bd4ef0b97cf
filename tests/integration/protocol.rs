//! Protocol-level behaviour checked with raw requests: version negotiation, ordering of
//! pipelined responses, acks=0, fetch edge cases, topic administration errors.

use std::time::{Duration, Instant};

use crate::common::{batch, RawClient, TestBroker};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn produce_req(topic: &str, partition: i32, acks: i16, records: Bytes) -> ProduceRequest {
    ProduceRequest::default().with_acks(acks).with_timeout_ms(5000).with_topic_data(vec![TopicProduceData::default()
        .with_name(name(topic))
        .with_partition_data(vec![PartitionProduceData::default().with_index(partition).with_records(Some(records))])])
}

fn fetch_req(topic: &str, offset: i64, max_wait: i32, min_bytes: i32, max_bytes: i32) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(max_wait)
        .with_min_bytes(min_bytes)
        .with_max_bytes(max_bytes)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default().with_topic(name(topic)).with_partitions(vec![
            FetchPartition::default().with_partition(0).with_fetch_offset(offset).with_partition_max_bytes(max_bytes),
        ])])
}

async fn create(c: &mut RawClient, topic: &str, partitions: i32) -> CreateTopicsResponse {
    let req = CreateTopicsRequest::default().with_timeout_ms(5000).with_topics(vec![CreatableTopic::default()
        .with_name(name(topic))
        .with_num_partitions(partitions)
        .with_replication_factor(-1)]);
    c.call(7, &req).await
}

#[tokio::test]
async fn api_versions_advertises_table_and_answers_newer_versions_in_v0() {
    let broker = TestBroker::start().await;
    let mut c = RawClient::connect(broker.addr).await;
    let resp = c
        .call(
            3,
            &ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("test"))
                .with_client_software_version(StrBytes::from_static_str("1.0")),
        )
        .await;
    assert_eq!(resp.error_code, 0);
    let produce = resp.api_keys.iter().find(|k| k.api_key == 0).expect("Produce advertised");
    assert_eq!((produce.min_version, produce.max_version), (0, 13));
    // The one feature gregor finalizes: Transaction Version 2.
    let names = |f: Vec<&str>| f.join(",");
    assert_eq!(names(resp.supported_features.iter().map(|f| f.name.as_str()).collect()), "transaction.version");
    assert_eq!(names(resp.finalized_features.iter().map(|f| f.name.as_str()).collect()), "transaction.version");
    assert!(resp.finalized_features_epoch >= 0);

    // KIP-511: version 127 gets a v0 response with UNSUPPORTED_VERSION and our ranges.
    let mut raw = BytesMut::new();
    raw.put_i32(0);
    raw.put_i16(18);
    raw.put_i16(127);
    raw.put_i32(42);
    raw.put_i16(-1);
    raw.put_u8(0);
    let len = (raw.len() - 4) as i32;
    raw[0..4].copy_from_slice(&len.to_be_bytes());
    c.send_raw(&raw).await;
    let mut frame = c.read_frame().await.unwrap();
    use kafka_protocol::protocol::Decodable;
    let header = ResponseHeader::decode(&mut frame, 0).unwrap();
    assert_eq!(header.correlation_id, 42);
    let v0 = ApiVersionsResponse::decode(&mut frame, 0).unwrap();
    assert_eq!(v0.error_code, 35);
    assert!(v0.api_keys.iter().any(|k| k.api_key == 18 && k.max_version == 4));
    // The connection stays usable.
    assert_eq!(c.call(0, &ApiVersionsRequest::default()).await.error_code, 0);
    broker.stop().await;
}

#[tokio::test]
async fn metadata_auto_creates_and_reports_ids() {
    let broker = TestBroker::start().await;
    let mut c = RawClient::connect(broker.addr).await;
    let req = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(name("auto")))]))
        .with_allow_auto_topic_creation(true);
    let resp = c.call(12, &req).await;
    assert_eq!(resp.topics[0].error_code, 0);
    assert_eq!(resp.topics[0].partitions.len(), 1);
    assert!(!resp.topics[0].topic_id.is_nil());
    assert_eq!(resp.brokers[0].port, i32::from(broker.addr.port()));
    // No auto-creation when the client says no.
    let req = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(name("nope")))]))
        .with_allow_auto_topic_creation(false);
    assert_eq!(c.call(12, &req).await.topics[0].error_code, 3);
    // Illegal names are refused, not created.
    let req = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(name("bad name")))]))
        .with_allow_auto_topic_creation(true);
    assert_eq!(c.call(12, &req).await.topics[0].error_code, 17);
    // v0: an empty list means every topic.
    let all = c.call(0, &MetadataRequest::default().with_topics(Some(vec![]))).await;
    assert_eq!(all.topics.len(), 1);
    broker.stop().await;
}

#[tokio::test]
async fn produce_fetch_round_trip_and_offsets() {
    let broker = TestBroker::start().await;
    let mut c = RawClient::connect(broker.addr).await;
    assert_eq!(create(&mut c, "t", 1).await.topics[0].error_code, 0);
    for (i, ts) in [(0, 1000), (1, 2000)] {
        let resp = c.call(9, &produce_req("t", 0, -1, batch(3, ts))).await;
        let p = &resp.responses[0].partition_responses[0];
        assert_eq!((p.error_code, p.base_offset), (0, i * 3));
    }
    let resp = c.call(12, &fetch_req("t", 0, 0, 1, 1 << 20)).await;
    let p = &resp.responses[0].partitions[0];
    assert_eq!(p.high_watermark, 6);
    assert_eq!(p.log_start_offset, 0);
    assert_eq!(p.records.as_ref().unwrap().len(), 2 * batch(3, 0).len());

    // Mid-batch offset: the whole batch that holds it comes back.
    let resp = c.call(12, &fetch_req("t", 4, 0, 1, 1 << 20)).await;
    let recs = resp.responses[0].partitions[0].records.clone().unwrap();
    assert_eq!(i64::from_be_bytes(recs[0..8].try_into().unwrap()), 3);

    // KIP-74: max_bytes smaller than a batch still returns one whole batch.
    let resp = c.call(12, &fetch_req("t", 0, 0, 1, 10)).await;
    assert_eq!(resp.responses[0].partitions[0].records.as_ref().unwrap().len(), batch(3, 0).len());

    // At the end: empty records, never null.
    let resp = c.call(12, &fetch_req("t", 6, 0, 0, 1 << 20)).await;
    assert_eq!(resp.responses[0].partitions[0].records.as_deref(), Some(&[][..]));

    // Past the end: OFFSET_OUT_OF_RANGE with the real watermarks.
    let resp = c.call(12, &fetch_req("t", 99, 0, 0, 1 << 20)).await;
    let p = &resp.responses[0].partitions[0];
    assert_eq!((p.error_code, p.high_watermark), (1, 6));

    let lo = |ts: i64| {
        ListOffsetsRequest::default().with_topics(vec![ListOffsetsTopic::default()
            .with_name(name("t"))
            .with_partitions(vec![ListOffsetsPartition::default().with_partition_index(0).with_timestamp(ts)])])
    };
    let offset = |r: ListOffsetsResponse| (r.topics[0].partitions[0].offset, r.topics[0].partitions[0].timestamp);
    assert_eq!(offset(c.call(8, &lo(-2)).await).0, 0);
    assert_eq!(offset(c.call(8, &lo(-1)).await).0, 6);
    assert_eq!(offset(c.call(8, &lo(1001)).await), (1, 1001));
    assert_eq!(offset(c.call(8, &lo(1500)).await), (3, 2000));
    assert_eq!(offset(c.call(8, &lo(-3)).await), (5, 2002));
    assert_eq!(offset(c.call(8, &lo(9999)).await).0, -1);
    // KIP-1005 (v9): earliest local is the log start; latest tiered is none, with no epoch,
    // as Kafka answers without remote storage.
    assert_eq!(offset(c.call(9, &lo(-4)).await), (0, -1));
    let tiered = c.call(9, &lo(-5)).await.topics[0].partitions[0].clone();
    assert_eq!((tiered.error_code, tiered.offset, tiered.timestamp, tiered.leader_epoch), (0, -1, -1, -1));
    broker.stop().await;
}

#[tokio::test]
async fn produce_errors_are_per_partition() {
    let broker = TestBroker::start().await;
    let mut c = RawClient::connect(broker.addr).await;
    create(&mut c, "t", 1).await;
    let mut corrupt = BytesMut::from(&batch(2, 0)[..]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x55;
    let resp = c.call(9, &produce_req("t", 0, 1, corrupt.freeze())).await;
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 2, "CORRUPT_MESSAGE");
    let resp = c.call(9, &produce_req("missing", 0, 1, batch(1, 0))).await;
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    let resp = c.call(9, &produce_req("t", 7, 1, batch(1, 0))).await;
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 3);
    let resp = c.call(9, &produce_req("t", 0, 2, batch(1, 0))).await;
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 21, "INVALID_REQUIRED_ACKS");
    // Nothing of the above was stored.
    let resp = c.call(12, &fetch_req("t", 0, 0, 0, 1 << 20)).await;
    assert_eq!(resp.responses[0].partitions[0].high_watermark, 0);
    broker.stop().await;
}

#[tokio::test]
async fn acks_zero_writes_no_response_and_pipelined_replies_keep_order() {
    let broker = TestBroker::start().await;
    let mut c = RawClient::connect(broker.addr).await;
    create(&mut c, "t", 1).await;
    // Pipeline: a long-poll fetch that cannot be satisfied, an acks=0 produce, then a metadata
    // request. The produce wakes the fetch; replies must come back fetch first, then metadata,
    // and nothing for the produce.
    let (fetch_id, f1) = c.frame(12, &fetch_req("t", 0, 5000, 1, 1 << 20));
    let (_, f2) = c.frame(9, &produce_req("t", 0, 0, batch(1, 0)));
    let (meta_id, f3) = c.frame(12, &MetadataRequest::default().with_topics(None));
    let mut all = BytesMut::new();
    all.extend_from_slice(&f1);
    all.extend_from_slice(&f2);
    all.extend_from_slice(&f3);
    let started = Instant::now();
    c.send_raw(&all).await;
    let fetch = c.read_response::<FetchRequest>(12, fetch_id).await;
    assert_eq!(fetch.responses[0].partitions[0].high_watermark, 1);
    assert!(started.elapsed() < Duration::from_secs(4), "fetch was not woken by the append");
    let meta = c.read_response::<MetadataRequest>(12, meta_id).await;
    assert_eq!(meta.topics.len(), 1);
    broker.stop().await;
}

#[tokio::test]
async fn long_poll_waits_for_max_wait_when_nothing_arrives() {
    let broker = TestBroker::start().await;
    let mut c = RawClient::connect(broker.addr).await;
    create(&mut c, "t", 1).await;
    let started = Instant::now();
    let resp = c.call(12, &fetch_req("t", 0, 300, 1, 1 << 20)).await;
    assert!(started.elapsed() >= Duration::from_millis(290));
    assert_eq!(resp.responses[0].partitions[0].records.as_deref(), Some(&[][..]));
    broker.stop().await;
}

#[tokio::test]
async fn a_waiting_fetch_does_not_block_other_connections() {
    let broker = TestBroker::start().await;
    let mut a = RawClient::connect(broker.addr).await;
    create(&mut a, "t", 1).await;
    let (id, frame) = a.frame(12, &fetch_req("t", 0, 10_000, 1, 1 << 20));
    a.send_raw(&frame).await;
    let mut b = RawClient::connect(broker.addr).await;
    let started = Instant::now();
    let resp = b.call(9, &produce_req("t", 0, 1, batch(2, 0))).await;
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    let fetched = a.read_response::<FetchRequest>(12, id).await;
    assert_eq!(fetched.responses[0].partitions[0].high_watermark, 2);
    assert!(started.elapsed() < Duration::from_secs(5));
    broker.stop().await;
}

#[tokio::test]
async fn create_and_delete_topics_report_kafka_errors() {
    let broker = TestBroker::start().await;
    let mut c = RawClient::connect(broker.addr).await;
    let resp = create(&mut c, "admin", 3).await;
    assert_eq!((resp.topics[0].error_code, resp.topics[0].num_partitions), (0, 3));
    assert_eq!(create(&mut c, "admin", 3).await.topics[0].error_code, 36, "TOPIC_ALREADY_EXISTS");
    assert_eq!(create(&mut c, "zero", 0).await.topics[0].error_code, 37, "INVALID_PARTITIONS");

    let bad_config = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
        .with_name(name("cfg"))
        .with_num_partitions(1)
        .with_replication_factor(1)
        .with_configs(vec![CreatableTopicConfig::default()
            .with_name(StrBytes::from_static_str("retention.ms"))
            .with_value(Some(StrBytes::from_static_str("forever")))])]);
    assert_eq!(c.call(7, &bad_config).await.topics[0].error_code, 40, "INVALID_CONFIG");
    let rf3 = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
        .with_name(name("rf3"))
        .with_num_partitions(1)
        .with_replication_factor(3)]);
    assert_eq!(c.call(7, &rf3).await.topics[0].error_code, 38, "INVALID_REPLICATION_FACTOR");
    let dry = CreateTopicsRequest::default().with_validate_only(true).with_topics(vec![CreatableTopic::default()
        .with_name(name("dry"))
        .with_num_partitions(2)
        .with_replication_factor(1)]);
    assert_eq!(c.call(7, &dry).await.topics[0].error_code, 0);
    let meta = c.call(12, &MetadataRequest::default().with_topics(None)).await;
    assert_eq!(meta.topics.len(), 1, "validate_only must not create");
    let admin_id = meta.topics[0].topic_id;

    let del = DeleteTopicsRequest::default().with_topic_names(vec![name("admin"), name("ghost")]);
    let resp = c.call(5, &del).await;
    assert_eq!(resp.responses[0].error_code, 0);
    assert_eq!(resp.responses[1].error_code, 3);
    // By id (v6), for a topic that no longer exists.
    let del = DeleteTopicsRequest::default().with_topics(vec![DeleteTopicState::default().with_topic_id(admin_id)]);
    assert_eq!(c.call(6, &del).await.responses[0].error_code, 100, "UNKNOWN_TOPIC_ID");
    assert!(c.call(12, &MetadataRequest::default().with_topics(None)).await.topics.is_empty());
    broker.stop().await;
}

#[tokio::test]
async fn data_and_topics_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = TestBroker::start_in(tmp.path(), |_| {}).await;
    let mut c = RawClient::connect(broker.addr).await;
    create(&mut c, "keep", 2).await;
    for _ in 0..3 {
        c.call(9, &produce_req("keep", 1, -1, batch(5, 0))).await;
    }
    drop(c);
    broker.stop().await;
    let broker = TestBroker::start_in(tmp.path(), |_| {}).await;
    let mut c = RawClient::connect(broker.addr).await;
    let meta = c.call(12, &MetadataRequest::default().with_topics(None)).await;
    assert_eq!(meta.topics[0].partitions.len(), 2);
    let resp = c.call(9, &produce_req("keep", 1, 1, batch(1, 0))).await;
    assert_eq!(resp.responses[0].partition_responses[0].base_offset, 15);
    broker.stop().await;
}

#[tokio::test]
async fn a_legacy_produce_that_carries_no_messages_is_refused_per_partition() {
    let broker = TestBroker::start().await;
    let mut c = RawClient::connect(broker.addr).await;
    // Produce v2 (magic 0/1 era) whose records are 3 bytes of nothing: CORRUPT_MESSAGE for the
    // partition, connection kept.
    let mut body = BytesMut::new();
    body.put_i16(1); // acks
    body.put_i32(1000);
    body.put_i32(1);
    body.put_i16(1);
    body.put_slice(b"t");
    body.put_i32(1);
    body.put_i32(0);
    body.put_i32(3);
    body.put_slice(b"abc");
    let mut frame = BytesMut::new();
    frame.put_i32(0);
    frame.put_i16(0);
    frame.put_i16(2);
    frame.put_i32(77);
    frame.put_i16(-1);
    frame.extend_from_slice(&body);
    let len = (frame.len() - 4) as i32;
    frame[0..4].copy_from_slice(&len.to_be_bytes());
    c.send_raw(&frame).await;
    let resp = c.read_frame().await.expect("a response");
    assert_eq!(i32::from_be_bytes(resp[0..4].try_into().unwrap()), 77);
    // correlation id, topics=1, name "t", partitions=1, partition 0, then error 2
    assert_eq!(&resp[4..8], &1i32.to_be_bytes());
    assert_eq!(i16::from_be_bytes(resp[19..21].try_into().unwrap()), 2);
    assert_eq!(c.call(0, &ApiVersionsRequest::default()).await.error_code, 0);
    broker.stop().await;
}

#[tokio::test]
async fn unimplemented_apis_get_an_error_response_not_a_dropped_connection() {
    let broker = TestBroker::start().await;
    let mut c = RawClient::connect(broker.addr).await;
    let resp = c.call(1, &DescribeDelegationTokenRequest::default()).await;
    assert_eq!(resp.error_code, 35, "UNSUPPORTED_VERSION");
    assert_eq!(c.call(0, &ApiVersionsRequest::default()).await.error_code, 0);
    broker.stop().await;
}

/// `batch` with idempotent producer fields set (they are covered by the CRC).
fn idempotent_batch(n: usize, producer_id: i64, epoch: i16, sequence: i32) -> Bytes {
    let mut b = BytesMut::from(&batch(n, 0)[..]);
    b[43..51].copy_from_slice(&producer_id.to_be_bytes());
    b[51..53].copy_from_slice(&epoch.to_be_bytes());
    b[53..57].copy_from_slice(&sequence.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

#[tokio::test]
async fn idempotent_producer_retries_are_deduplicated() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = TestBroker::start_in(tmp.path(), |_| {}).await;
    let mut c = RawClient::connect(broker.addr).await;
    create(&mut c, "idem", 1).await;
    let init = c.call(4, &InitProducerIdRequest::default().with_transaction_timeout_ms(60000)).await;
    assert_eq!(init.error_code, 0);
    let (pid, epoch) = (init.producer_id.0, init.producer_epoch);
    assert!(pid >= 0);
    let send = |seq: i32, n: usize| produce_req("idem", 0, -1, idempotent_batch(n, pid, epoch, seq));
    let offsets = |r: ProduceResponse| {
        let p = &r.responses[0].partition_responses[0];
        (p.error_code, p.base_offset)
    };
    assert_eq!(offsets(c.call(9, &send(0, 3)).await), (0, 0));
    assert_eq!(offsets(c.call(9, &send(3, 2)).await), (0, 3));
    // A retry of either batch gets its original offset and appends nothing.
    assert_eq!(offsets(c.call(9, &send(0, 3)).await), (0, 0));
    assert_eq!(offsets(c.call(9, &send(3, 2)).await), (0, 3));
    // A gap is refused.
    assert_eq!(offsets(c.call(9, &send(9, 1)).await).0, 45, "OUT_OF_ORDER_SEQUENCE_NUMBER");
    let fetched = c.call(12, &fetch_req("idem", 0, 0, 0, 1 << 20)).await;
    assert_eq!(fetched.responses[0].partitions[0].high_watermark, 5);
    drop(c);
    broker.stop().await;

    // After a restart the state is rebuilt from the log: the retry is still a duplicate, and a
    // new producer id is never one handed out before.
    let broker = TestBroker::start_in(tmp.path(), |_| {}).await;
    let mut c = RawClient::connect(broker.addr).await;
    assert_eq!(offsets(c.call(9, &send(3, 2)).await), (0, 3));
    assert_eq!(offsets(c.call(9, &send(5, 1)).await), (0, 5));
    let again = c.call(4, &InitProducerIdRequest::default()).await;
    assert_ne!(again.producer_id.0, pid);
    // Without a transactional id every InitProducerId gets a fresh id at epoch 0, as in Kafka:
    // one carrying an id gregor never issued must not be handed that id (taking over another
    // producer's id), and a re-initialising producer (KIP-360) moves on to a new id as well.
    let init_with = |id: i64, epoch: i16| {
        InitProducerIdRequest::default().with_producer_id(ProducerId(id)).with_producer_epoch(epoch)
    };
    for (id, epoch) in [(777_777, 5), (pid, epoch)] {
        let r = c.call(4, &init_with(id, epoch)).await;
        assert_eq!(r.error_code, 0);
        assert_ne!(r.producer_id.0, id, "InitProducerId({id}, {epoch}) handed out the id it carried");
        assert_ne!(r.producer_id.0, again.producer_id.0);
        assert_eq!(r.producer_epoch, 0);
    }
    // With a transactional id the id stays and each InitProducerId bumps its epoch; a
    // timeout outside 1..=transaction.max.timeout.ms is refused.
    let txn =
        InitProducerIdRequest::default().with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("tx"))));
    assert_eq!(c.call(4, &txn).await.error_code, 50, "INVALID_TRANSACTION_TIMEOUT");
    let txn = txn.with_transaction_timeout_ms(60_000);
    let first = c.call(4, &txn).await;
    assert_eq!((first.error_code, first.producer_epoch), (0, 0));
    let second = c.call(4, &txn).await;
    assert_eq!((second.producer_id, second.producer_epoch), (first.producer_id, 1));
    broker.stop().await;
}

#[tokio::test]
async fn incremental_alter_configs_set_append_and_delete() {
    use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let broker = TestBroker::start().await;
    let mut c = RawClient::connect(broker.addr).await;
    create(&mut c, "cfg", 1).await;
    let op = |name: &str, op: i8, value: Option<&str>| {
        AlterableConfig::default()
            .with_name(StrBytes::from_string(name.to_string()))
            .with_config_operation(op)
            .with_value(value.map(|v| StrBytes::from_string(v.to_string())))
    };
    let alter = |configs: Vec<AlterableConfig>| {
        IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("cfg"))
            .with_configs(configs)])
    };
    let resp =
        c.call(1, &alter(vec![op("retention.ms", 0, Some("1000")), op("cleanup.policy", 2, Some("compact"))])).await;
    assert_eq!(resp.responses[0].error_code, 0);
    let resp = c.call(1, &alter(vec![op("retention.ms", 1, None)])).await;
    assert_eq!(resp.responses[0].error_code, 0);
    let resp = c.call(1, &alter(vec![op("retention.ms", 2, Some("5"))])).await;
    assert_eq!(resp.responses[0].error_code, 40, "APPEND to a non-list config is INVALID_CONFIG");

    let describe = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("cfg"))
            .with_configuration_keys(Some(vec![
                StrBytes::from_static_str("cleanup.policy"),
                StrBytes::from_static_str("retention.ms"),
            ])),
    ]);
    let resp = c.call(4, &describe).await;
    let values: Vec<(String, String, i8)> = resp.results[0]
        .configs
        .iter()
        .map(|e| (e.name.to_string(), e.value.as_ref().unwrap().to_string(), e.config_source))
        .collect();
    assert_eq!(
        values,
        vec![("cleanup.policy".into(), "delete,compact".into(), 1), ("retention.ms".into(), "604800000".into(), 5)]
    );
    broker.stop().await;
}

/// One Fetch asking for i32::MAX bytes (overall and per partition) gets at most the broker's
/// `fetch.max.bytes`, except that a first batch larger than that comes whole (KIP-74); reading on
/// from there reaches the end of the log. Before the cap, the broker read whatever was asked
/// for into memory (1 GiB for a 1 GiB partition).
#[tokio::test]
async fn fetch_is_capped_by_fetch_max_bytes_and_still_returns_a_larger_first_batch() {
    const CAP: usize = 64 * 1024;
    let broker = TestBroker::start_with(|c| c.server.fetch_max_bytes = CAP).await;
    let mut c = RawClient::connect(broker.addr).await;
    create(&mut c, "capped", 1).await;
    let small = vec![b's'; 16 * 1024];
    let large = vec![b'L'; 100 * 1024];
    let mut expected = Vec::new();
    for i in 0..51 {
        let value = if i == 40 { &large } else { &small };
        let records = Bytes::from(gregor::log::batch::build(&[(None, Some(value.as_slice()))], 1_000 + i));
        let r = c.call(9, &produce_req("capped", 0, -1, records)).await;
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
        expected.push(value.len());
    }
    let mut offset = 0;
    let mut rounds = 0;
    while offset < 51 {
        let r = c.call(12, &fetch_req("capped", offset, 0, 1, i32::MAX)).await;
        let p = &r.responses[0].partitions[0];
        assert_eq!(p.error_code, 0);
        let records = p.records.clone().unwrap_or_default();
        let mut pos = 0;
        let mut batches = 0;
        while pos + 12 <= records.len() {
            let len = 12 + i32::from_be_bytes(records[pos + 8..pos + 12].try_into().unwrap()) as usize;
            pos += len;
            batches += 1;
        }
        assert!(batches >= 1, "no progress at offset {offset}");
        assert!(
            records.len() <= CAP || batches == 1,
            "{} bytes in {batches} batches at offset {offset}: over fetch.max.bytes ({CAP})",
            records.len()
        );
        offset += batches as i64;
        rounds += 1;
    }
    assert_eq!(offset, 51);
    // 50 batches of 16 KiB in 64 KiB responses, and the 100 KiB batch alone.
    assert!(rounds >= 14, "{rounds} fetches: the cap was not applied");
    broker.stop().await;
}

/// A batch with a correct CRC whose records lie (it declares three, holds two) is refused with
/// INVALID_RECORD and a message naming the problem; nothing is appended, and the next honest
/// batch gets offset 0. Before, it was stored and consumers stopped on the partition silently.
#[tokio::test]
async fn a_batch_that_lies_about_its_records_is_refused_and_leaves_no_trace() {
    let broker = TestBroker::start().await;
    let mut c = RawClient::connect(broker.addr).await;
    create(&mut c, "liars", 1).await;
    let mut lying = BytesMut::from(&batch(2, 1_000)[..]);
    lying[23..27].copy_from_slice(&2i32.to_be_bytes()); // last offset delta
    lying[57..61].copy_from_slice(&3i32.to_be_bytes()); // records count
    let crc = crc32c::crc32c(&lying[21..]);
    lying[17..21].copy_from_slice(&crc.to_be_bytes());
    let r = c.call(9, &produce_req("liars", 0, -1, lying.freeze())).await;
    let p = &r.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 87, "INVALID_RECORD");
    let message = p.error_message.as_ref().map(|m| m.to_string()).unwrap_or_default();
    assert!(message.contains("declares 3 records"), "{message}");

    let r = c.call(9, &produce_req("liars", 0, -1, batch(2, 2_000))).await;
    assert_eq!(
        (r.responses[0].partition_responses[0].error_code, r.responses[0].partition_responses[0].base_offset),
        (0, 0)
    );
    let fetched = c.call(12, &fetch_req("liars", 0, 0, 0, 1 << 20)).await;
    let part = &fetched.responses[0].partitions[0];
    assert_eq!(part.high_watermark, 2);
    assert_eq!(part.records.as_ref().map(|r| r.len()), Some(batch(2, 2_000).len()));
    broker.stop().await;
}

/// OffsetForLeaderEpoch (KIP-320): the one leader epoch (0) ends at the log end offset; other
/// epochs are unknown (-1, -1, no error); a newer current leader epoch than the broker's is
/// UNKNOWN_LEADER_EPOCH and an unknown partition UNKNOWN_TOPIC_OR_PARTITION.
#[tokio::test]
async fn offset_for_leader_epoch_ends_the_only_epoch_at_the_log_end() {
    use kafka_protocol::messages::offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
    let broker = TestBroker::start().await;
    let mut c = RawClient::connect(broker.addr).await;
    create(&mut c, "epochs", 1).await;
    for _ in 0..3 {
        assert_eq!(
            c.call(9, &produce_req("epochs", 0, 1, batch(4, 1_700_000_000_000))).await.responses[0].partition_responses
                [0]
            .error_code,
            0
        );
    }
    let ask = |topic: &str, partition: i32, current: i32, epoch: i32| {
        OffsetForLeaderEpochRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
            OffsetForLeaderTopic::default().with_topic(name(topic)).with_partitions(vec![
                OffsetForLeaderPartition::default()
                    .with_partition(partition)
                    .with_current_leader_epoch(current)
                    .with_leader_epoch(epoch),
            ]),
        ])
    };
    let answer = |r: OffsetForLeaderEpochResponse| {
        let p = &r.topics[0].partitions[0];
        (p.error_code, p.leader_epoch, p.end_offset)
    };
    assert_eq!(answer(c.call(4, &ask("epochs", 0, 0, 0)).await), (0, 0, 12));
    assert_eq!(answer(c.call(3, &ask("epochs", 0, -1, 0)).await), (0, 0, 12));
    assert_eq!(answer(c.call(4, &ask("epochs", 0, 0, 5)).await), (0, -1, -1), "an epoch gregor never had");
    assert_eq!(answer(c.call(4, &ask("epochs", 0, 3, 0)).await).0, 75, "UNKNOWN_LEADER_EPOCH");
    assert_eq!(answer(c.call(4, &ask("epochs", 7, 0, 0)).await).0, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    broker.stop().await;
}

/// KIP-227: a full fetch with epoch 0 opens a session; incremental fetches then carry only
/// what changed and are answered only with what the client must hear of; wrong epochs and
/// unknown or closed sessions get Kafka's top-level errors.
#[tokio::test]
async fn incremental_fetch_sessions() {
    let b = TestBroker::start().await;
    let mut c = RawClient::connect(b.addr).await;
    create(&mut c, "sess", 2).await;
    let part = |p: i32, offset: i64| {
        FetchPartition::default().with_partition(p).with_fetch_offset(offset).with_partition_max_bytes(1 << 20)
    };
    let fetch = |id: i32, epoch: i32, parts: Vec<FetchPartition>| {
        let topics = if parts.is_empty() {
            vec![]
        } else {
            vec![FetchTopic::default().with_topic(name("sess")).with_partitions(parts)]
        };
        FetchRequest::default()
            .with_max_bytes(1 << 20)
            .with_session_id(id)
            .with_session_epoch(epoch)
            .with_topics(topics)
    };
    let answered = |r: &FetchResponse| -> Vec<(i32, i64, usize)> {
        r.responses
            .iter()
            .flat_map(|t| &t.partitions)
            .map(|p| (p.partition_index, p.high_watermark, p.records.as_ref().map_or(0, |r| r.len())))
            .collect()
    };
    let produced = c.call(9, &produce_req("sess", 1, -1, batch(3, 1000))).await;
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);

    // Full fetch, epoch 0: a session, both partitions answered.
    let full = c.call(12, &fetch(0, 0, vec![part(0, 0), part(1, 0)])).await;
    assert_eq!(full.error_code, 0);
    let id = full.session_id;
    assert_ne!(id, 0, "a session was opened");
    assert_eq!(full.responses[0].partitions.len(), 2);

    // The client consumed partition 1's three records and says so; nothing else changed: an
    // incremental fetch answers none of the partitions.
    let same = c.call(12, &fetch(id, 1, vec![part(1, 3)]).with_max_wait_ms(0)).await;
    assert_eq!((same.error_code, same.session_id), (0, id));
    assert!(answered(&same).is_empty(), "{:?}", answered(&same));

    // New records on partition 0: only it is answered, with its records.
    c.call(9, &produce_req("sess", 0, -1, batch(2, 2000))).await;
    let grown = c.call(12, &fetch(id, 2, vec![]).with_max_wait_ms(0)).await;
    let got = answered(&grown);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].0, got[0].1), (0, 2));
    assert!(got[0].2 > 0, "the records came");

    // The client moves partition 0's offset to its end: nothing left to say.
    let moved = c.call(12, &fetch(id, 3, vec![part(0, 2)]).with_max_wait_ms(0)).await;
    assert!(answered(&moved).is_empty(), "{:?}", answered(&moved));

    // Wrong epoch, unknown session.
    let stale = c.call(12, &fetch(id, 3, vec![])).await;
    assert_eq!((stale.error_code, stale.session_id), (71, 0), "INVALID_FETCH_SESSION_EPOCH");
    let unknown = c.call(12, &fetch(id.wrapping_add(7), 1, vec![])).await;
    assert_eq!(unknown.error_code, 70, "FETCH_SESSION_ID_NOT_FOUND");

    // Epoch -1 closes the session and is answered in full, without a session.
    let closing = c.call(12, &fetch(id, -1, vec![part(1, 0)])).await;
    assert_eq!((closing.error_code, closing.session_id, closing.responses[0].partitions.len()), (0, 0, 1));
    let gone = c.call(12, &fetch(id, 4, vec![])).await;
    assert_eq!(gone.error_code, 70);

    // With topic ids (v13+) a session works the same, and mixing the two is refused.
    let meta = c
        .call(
            12,
            &MetadataRequest::default()
                .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(name("sess")))])),
        )
        .await;
    let topic_id = meta.topics[0].topic_id;
    let by_id = |id: i32, epoch: i32, parts: Vec<FetchPartition>| {
        FetchRequest::default().with_max_bytes(1 << 20).with_session_id(id).with_session_epoch(epoch).with_topics(
            if parts.is_empty() {
                vec![]
            } else {
                vec![FetchTopic::default().with_topic_id(topic_id).with_partitions(parts)]
            },
        )
    };
    let opened = c.call(13, &by_id(0, 0, vec![part(1, 3)])).await;
    let id13 = opened.session_id;
    assert_ne!(id13, 0);
    let quiet = c.call(13, &by_id(id13, 1, vec![]).with_max_wait_ms(0)).await;
    assert!(answered(&quiet).is_empty());
    let mixed = c.call(12, &fetch(id13, 2, vec![])).await;
    assert_eq!(mixed.error_code, 106, "FETCH_SESSION_TOPIC_ID_ERROR");

    // The session keeps each partition's last fetched epoch: a partition past the end of its
    // epoch is answered with the diverging epoch in every fetch, also when left out of it.
    let past_end = part(1, 9).with_last_fetched_epoch(0).with_current_leader_epoch(0);
    let opened = c.call(12, &fetch(0, 0, vec![past_end])).await;
    let diverging = |r: &FetchResponse| {
        let p = &r.responses[0].partitions[0];
        (p.error_code, p.diverging_epoch.epoch, p.diverging_epoch.end_offset)
    };
    assert_eq!(diverging(&opened), (0, 0, 3));
    let again = c.call(12, &fetch(opened.session_id, 1, vec![]).with_max_wait_ms(0)).await;
    assert_eq!(again.responses.len(), 1, "a diverging partition is always answered");
    assert_eq!(diverging(&again), (0, 0, 3));
    b.stop().await;
}

/// KIP-320 truncation detection in Fetch (v12+): a client whose last fetched epoch is later
/// than the log's, or which fetches past the end of its epoch, gets the diverging epoch and
/// where it ends instead of records; without a last fetched epoch it gets OFFSET_OUT_OF_RANGE.
#[tokio::test]
async fn fetch_reports_a_diverging_epoch() {
    let b = TestBroker::start().await;
    let mut c = RawClient::connect(b.addr).await;
    create(&mut c, "epochs", 1).await;
    c.call(9, &produce_req("epochs", 0, -1, batch(4, 1000))).await;
    let fetch = |offset: i64, last_epoch: i32| {
        FetchRequest::default().with_max_bytes(1 << 20).with_session_epoch(-1).with_topics(vec![FetchTopic::default()
            .with_topic(name("epochs"))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_last_fetched_epoch(last_epoch)
                .with_partition_max_bytes(1 << 20)])])
    };
    let normal = c.call(12, &fetch(2, 0)).await;
    let p = &normal.responses[0].partitions[0];
    assert_eq!((p.error_code, p.diverging_epoch.epoch), (0, -1));
    assert!(p.records.as_ref().is_some_and(|r| !r.is_empty()));

    // Past the end of the epoch the client last read: diverging, with where that epoch ends.
    let diverged = c.call(12, &fetch(9, 0)).await;
    let p = &diverged.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert_eq!((p.diverging_epoch.epoch, p.diverging_epoch.end_offset), (0, 4));
    assert!(p.records.as_ref().is_none_or(|r| r.is_empty()));
    // An epoch this log never had (Kafka 4.1: "Could not determine the end offset of the last
    // fetched epoch"), or no epoch and a position past the end: OFFSET_OUT_OF_RANGE.
    for (offset, last_epoch) in [(2, 3), (9, -1)] {
        let out_of_range = c.call(12, &fetch(offset, last_epoch)).await;
        let p = &out_of_range.responses[0].partitions[0];
        assert_eq!(p.error_code, 1, "OFFSET_OUT_OF_RANGE for offset {offset}, epoch {last_epoch}");
        assert_eq!(p.diverging_epoch.epoch, -1);
    }
    b.stop().await;
}
