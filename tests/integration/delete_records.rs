//! DeleteRecords through librdkafka's admin client: the log start moves (inside a segment),
//! reads below it are out of range, consumers from the beginning start there, and the new start
//! survives a SIGKILL; -1 (`Offset::End`) purges up to the high watermark; past the high
//! watermark and internal topics are refused as Kafka refuses them.

use std::time::Duration;

use crate::common::{self, BrokerProcess};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("admin client")
}

/// Deletes up to `offset` in each listed partition; returns (partition, low watermark or error).
async fn delete(bootstrap: &str, topic: &str, offsets: &[(i32, Offset)]) -> Vec<(i32, Result<i64, RDKafkaErrorCode>)> {
    let mut tpl = TopicPartitionList::new();
    for (p, o) in offsets {
        tpl.add_partition_offset(topic, *p, *o).unwrap();
    }
    let result = admin(bootstrap).delete_records(&tpl, &AdminOptions::new()).await.expect("delete_records");
    result
        .elements()
        .iter()
        .map(|e| {
            let r = match e.error() {
                Ok(()) => match e.offset() {
                    Offset::Offset(o) => Ok(o),
                    other => panic!("low watermark {other:?}"),
                },
                Err(rdkafka::error::KafkaError::OffsetFetch(code)) | Err(rdkafka::error::KafkaError::AdminOp(code)) => {
                    Err(code)
                }
                Err(e) => panic!("unexpected error {e:?}"),
            };
            (e.partition(), r)
        })
        .collect()
}

fn watermarks(bootstrap: &str, topic: &str, partition: i32) -> (i64, i64) {
    let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", bootstrap).create().unwrap();
    c.fetch_watermarks(topic, partition, Duration::from_secs(10)).expect("watermarks")
}

fn first_offset_read(bootstrap: &str, topic: &str) -> i64 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "purge-reader")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    c.assign(&tpl).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            return m.expect("consume").offset();
        }
    }
    panic!("nothing consumed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_records_moves_the_log_start_and_it_survives_a_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut broker = BrokerProcess::spawn(&data, &[]);
    let bootstrap = broker.addr.to_string();
    let topic = NewTopic::new("purge", 2, TopicReplication::Fixed(1));
    for r in admin(&bootstrap).create_topics(&[topic], &AdminOptions::new()).await.unwrap() {
        r.unwrap();
    }
    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).set("linger.ms", "0").create().unwrap();
    for i in 0..10 {
        for p in 0..2 {
            let v = format!("v{i}");
            producer
                .send(FutureRecord::<(), _>::to("purge").partition(p).payload(&v), Duration::from_secs(10))
                .await
                .unwrap();
        }
    }

    let deleted = delete(&bootstrap, "purge", &[(0, Offset::Offset(4)), (1, Offset::End)]).await;
    assert_eq!(deleted, vec![(0, Ok(4)), (1, Ok(10))]);
    assert_eq!(watermarks(&bootstrap, "purge", 0), (4, 10));
    assert_eq!(watermarks(&bootstrap, "purge", 1), (10, 10));
    assert_eq!(first_offset_read(&bootstrap, "purge"), 4);
    // Past the high watermark; the offsets topic.
    let refused = delete(&bootstrap, "purge", &[(0, Offset::Offset(11))]).await;
    assert_eq!(refused, vec![(0, Err(RDKafkaErrorCode::OffsetOutOfRange))]);

    // SIGKILL: the new log start is checkpointed, not only in memory.
    broker.kill_9();
    let broker = BrokerProcess::spawn(&data, &[]);
    let bootstrap = broker.addr.to_string();
    assert_eq!(watermarks(&bootstrap, "purge", 0), (4, 10));
    assert_eq!(watermarks(&bootstrap, "purge", 1), (10, 10));
    assert_eq!(first_offset_read(&bootstrap, "purge"), 4);
}

/// What librdkafka cannot send (it finds no leader for a topic Metadata does not list), sent
/// raw: internal topics are refused with INVALID_TOPIC_EXCEPTION, unknown ones with
/// UNKNOWN_TOPIC_OR_PARTITION, offsets below -1 with OFFSET_OUT_OF_RANGE.
#[tokio::test]
async fn delete_records_refusals_use_kafkas_codes() {
    use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
    use kafka_protocol::messages::{DeleteRecordsRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;

    let b = common::TestBroker::start().await;
    let mut c = common::RawClient::connect(b.addr).await;
    let topic = NewTopic::new("kept", 1, TopicReplication::Fixed(1));
    for r in admin(&b.bootstrap()).create_topics(&[topic], &AdminOptions::new()).await.unwrap() {
        r.unwrap();
    }
    let ask = |name: &'static str, offset: i64| {
        DeleteRecordsRequest::default().with_timeout_ms(1000).with_topics(vec![DeleteRecordsTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(name)))
            .with_partitions(vec![DeleteRecordsPartition::default().with_partition_index(0).with_offset(offset)])])
    };
    for (name, offset, code) in [("__consumer_offsets", 0, 17), ("missing", 0, 3), ("kept", -5, 1), ("kept", 1, 1)] {
        let resp = c.call(2, &ask(name, offset)).await;
        let p = &resp.topics[0].partitions[0];
        assert_eq!((p.error_code, p.low_watermark), (code, -1), "{name} at {offset}");
    }
    let resp = c.call(0, &ask("kept", -1)).await;
    assert_eq!((resp.topics[0].partitions[0].error_code, resp.topics[0].partitions[0].low_watermark), (0, 0));
    b.stop().await;
}
