//! Client quotas end to end: DescribeClientQuotas/AlterClientQuotas on the wire, a producer and
//! a consumer past their byte rates told to wait (`throttle_time_ms`) and muted for that long
//! (KIP-219), and librdkafka working through it.
//!
//! The waits asserted are lower bounds the broker enforces (a muted connection cannot be
//! answered sooner), never performance.

use std::time::{Duration, Instant};

use crate::common::{self, RawClient, TestBroker};
use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// Sets `key` to `value` for the entity of (type, name or default) pairs; asserts it worked.
async fn set_quota(admin: &mut RawClient, entity: &[(&str, Option<&str>)], key: &str, value: f64) {
    let resp = admin.call(1, &alter(entity, key, Some(value), false)).await;
    assert_eq!(resp.entries[0].error_code, 0, "{:?}", resp.entries[0].error_message);
}

fn alter(
    entity: &[(&str, Option<&str>)],
    key: &str,
    value: Option<f64>,
    validate_only: bool,
) -> AlterClientQuotasRequest {
    use alter_client_quotas_request::{EntityData, EntryData, OpData};
    AlterClientQuotasRequest::default().with_validate_only(validate_only).with_entries(vec![EntryData::default()
        .with_entity(
            entity
                .iter()
                .map(|(t, n)| EntityData::default().with_entity_type(s(t)).with_entity_name(n.map(s)))
                .collect(),
        )
        .with_ops(vec![OpData::default()
            .with_key(s(key))
            .with_value(value.unwrap_or(0.0))
            .with_remove(value.is_none())])])
}

fn describe(components: &[(&str, i8, Option<&str>)], strict: bool) -> DescribeClientQuotasRequest {
    use describe_client_quotas_request::ComponentData;
    DescribeClientQuotasRequest::default().with_strict(strict).with_components(
        components
            .iter()
            .map(|(t, m, n)| ComponentData::default().with_entity_type(s(t)).with_match_type(*m).with_match(n.map(s)))
            .collect(),
    )
}

fn produce(topic: &str, value_bytes: usize) -> ProduceRequest {
    use produce_request::{PartitionProduceData, TopicProduceData};
    let value = vec![b'x'; value_bytes];
    let records = Bytes::from(gregor::log::batch::build(&[(None, Some(value.as_slice()))], 1_000));
    ProduceRequest::default().with_acks(1).with_timeout_ms(5_000).with_topic_data(vec![TopicProduceData::default()
        .with_name(TopicName(s(topic)))
        .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(records))])])
}

fn fetch(topic: &str, offset: i64) -> FetchRequest {
    use fetch_request::{FetchPartition, FetchTopic};
    FetchRequest::default().with_max_wait_ms(0).with_max_bytes(10 << 20).with_session_epoch(-1).with_topics(vec![
        FetchTopic::default().with_topic(TopicName(s(topic))).with_partitions(vec![FetchPartition::default()
            .with_partition(0)
            .with_fetch_offset(offset)
            .with_partition_max_bytes(10 << 20)]),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_are_altered_described_and_kept_as_kafka_does() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    let broker = TestBroker::start_in(&dir, |_| {}).await;
    let mut admin = RawClient::connect(broker.addr).await;
    // validate_only stores nothing.
    let r = admin.call(1, &alter(&[("user", Some("alice"))], "producer_byte_rate", Some(1024.0), true)).await;
    assert_eq!(r.entries[0].error_code, 0);
    let all = admin.call(1, &describe(&[], false)).await;
    assert_eq!(all.entries.as_deref().map(<[_]>::len), Some(0));
    // Kafka's checks, with its messages.
    let bad = admin.call(1, &alter(&[("user", Some("alice"))], "producer_byte_rate", Some(10.5), false)).await;
    assert_eq!(bad.entries[0].error_code, 42, "INVALID_REQUEST");
    assert_eq!(bad.entries[0].error_message.as_deref(), Some("producer_byte_rate cannot be a fractional value."));
    let bad = admin.call(1, &alter(&[("user", Some("alice"))], "retention.ms", Some(1.0), false)).await;
    assert_eq!(bad.entries[0].error_message.as_deref(), Some("Invalid configuration key retention.ms"));
    // Set, described by filter, kept over a restart, removed.
    set_quota(&mut admin, &[("user", Some("alice"))], "producer_byte_rate", 1024.0).await;
    set_quota(&mut admin, &[("user", None), ("client-id", Some("app"))], "request_percentage", 12.5).await;
    let alice = admin.call(1, &describe(&[("user", 0, Some("alice"))], true)).await;
    let entries = alice.entries.expect("entries");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].values[0].key.as_str(), "producer_byte_rate");
    assert_eq!(entries[0].values[0].value, 1024.0);
    let defaults = admin.call(1, &describe(&[("user", 1, None)], false)).await.entries.expect("entries");
    assert_eq!(defaults.len(), 1);
    assert_eq!(defaults[0].entity[0].entity_name, None, "the default user is named null");
    assert_eq!(defaults[0].entity[1].entity_name.as_deref(), Some("app"));
    let bad = admin.call(1, &describe(&[("user", 0, None)], false)).await;
    assert_eq!(bad.error_code, 42);
    assert!(bad.entries.is_none());
    drop(admin);
    broker.stop().await;

    let broker = TestBroker::start_in(&dir, |_| {}).await;
    let mut admin = RawClient::connect(broker.addr).await;
    let all = admin.call(1, &describe(&[], false)).await.entries.expect("entries");
    assert_eq!(all.len(), 2, "quotas survive a restart: {all:?}");
    let r = admin.call(1, &alter(&[("user", Some("alice"))], "producer_byte_rate", None, false)).await;
    assert_eq!(r.entries[0].error_code, 0);
    let all = admin.call(1, &describe(&[("user", 2, None)], true)).await.entries.expect("entries");
    assert!(all.is_empty(), "{all:?}");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_past_its_byte_rate_waits_and_others_do_not() {
    let broker = TestBroker::start().await;
    let mut admin = RawClient::connect(broker.addr).await;
    admin.create_topic("quota-produce", 1).await;
    // 10 kB/s over a 10 s window: 120 kB at once is 20% over, about 2 s of waiting.
    set_quota(&mut admin, &[("client-id", Some("slow"))], "producer_byte_rate", 10_000.0).await;

    let mut fast = RawClient::connect(broker.addr).await.with_client_id("fast");
    let r = fast.call(9, &produce("quota-produce", 120_000)).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    assert_eq!(r.throttle_time_ms, 0, "a client without a quota never waits");

    let mut slow = RawClient::connect(broker.addr).await.with_client_id("slow");
    let sent = Instant::now();
    let r = slow.call(9, &produce("quota-produce", 120_000)).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0, "a throttled produce is still appended");
    let wait = r.throttle_time_ms;
    assert!((1_500..=2_500).contains(&wait), "throttle_time_ms {wait}");
    // v6+ clients are answered at once and then not read from for the wait (KIP-219).
    assert!(sent.elapsed() < Duration::from_millis(wait as u64), "the v9 answer is not held back");
    slow.call(3, &ApiVersionsRequest::default()).await;
    assert!(sent.elapsed() >= Duration::from_millis(wait as u64), "the connection was muted for the wait");

    // Before v6 the answer itself waits.
    let mut old = RawClient::connect(broker.addr).await.with_client_id("slow");
    let sent = Instant::now();
    let r = old.call(5, &produce("quota-produce", 1_000)).await;
    assert!(r.throttle_time_ms > 0);
    assert!(sent.elapsed() >= Duration::from_millis(r.throttle_time_ms as u64), "a v5 answer waits");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_past_its_byte_rate_gets_an_empty_answer_and_waits() {
    let broker = TestBroker::start().await;
    let mut admin = RawClient::connect(broker.addr).await;
    admin.create_topic("quota-fetch", 1).await;
    for _ in 0..3 {
        let r = admin.call(9, &produce("quota-fetch", 60_000)).await;
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    }
    // 10 kB/s: one fetch takes at most one window's worth (100 kB), not the 10 MiB asked.
    set_quota(&mut admin, &[("user", None), ("client-id", Some("reader"))], "consumer_byte_rate", 10_000.0).await;
    let mut reader = RawClient::connect(broker.addr).await.with_client_id("reader");
    let first = reader.call(12, &fetch("quota-fetch", 0)).await;
    let part = &first.responses[0].partitions[0];
    let got = part.records.as_ref().map_or(0, Bytes::len);
    assert!(got > 0 && got < 120_000, "capped by the quota window: {got} bytes");
    assert_eq!(first.throttle_time_ms, 0, "60 kB in a 10 s window is within 10 kB/s");
    // The next one takes the rate past the bound: nothing is sent, the client waits.
    let second = reader.call(12, &fetch("quota-fetch", 1)).await;
    assert!(second.throttle_time_ms > 0, "throttle_time_ms {}", second.throttle_time_ms);
    assert!(second.responses.is_empty(), "a throttled fetch answers empty");
    // An unthrottled consumer reads everything at once.
    let mut other = RawClient::connect(broker.addr).await.with_client_id("other");
    let all = other.call(12, &fetch("quota-fetch", 0)).await;
    assert!(all.responses[0].partitions[0].records.as_ref().map_or(0, Bytes::len) > 170_000);
    broker.stop().await;
}

/// librdkafka honours the broker's throttle: every message is delivered, and its statistics
/// show the waits it was told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_producer_delivers_everything_while_throttled() {
    use rdkafka::config::ClientConfig;
    use rdkafka::producer::{FutureProducer, FutureRecord, ProducerContext};
    use rdkafka::{ClientContext, Statistics};
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;

    struct Throttles(Arc<AtomicI64>);
    impl ClientContext for Throttles {
        fn stats(&self, stats: Statistics) {
            for b in stats.brokers.values() {
                if let Some(w) = &b.throttle {
                    self.0.fetch_max(w.max, Ordering::Relaxed);
                }
            }
        }
    }
    impl ProducerContext for Throttles {
        type DeliveryOpaque = ();
        fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
    }

    let broker = TestBroker::start().await;
    let mut admin = RawClient::connect(broker.addr).await;
    admin.create_topic("quota-rdkafka", 1).await;
    set_quota(&mut admin, &[("client-id", Some("throttled-producer"))], "producer_byte_rate", 20_000.0).await;
    let seen = Arc::new(AtomicI64::new(0));
    let producer: FutureProducer<Throttles> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("client.id", "throttled-producer")
        .set("statistics.interval.ms", "100")
        .set("linger.ms", "5")
        .create_with_context(Throttles(seen.clone()))
        .unwrap();
    let value = vec![b'v'; 2_000];
    let keys: Vec<String> = (0..150).map(|i| format!("k{i}")).collect();
    let mut pending = Vec::new();
    for key in &keys {
        let record = FutureRecord::to("quota-rdkafka").key(key).payload(&value);
        pending.push(producer.send(record, Duration::from_secs(60)));
    }
    for p in pending {
        p.await.expect("no delivery error");
    }
    common::wait_for("a throttle in librdkafka's statistics", Duration::from_secs(10), || {
        (seen.load(Ordering::Relaxed) > 0).then_some(())
    })
    .await;
    broker.stop().await;
}
