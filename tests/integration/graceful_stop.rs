//! SIGTERM stops the broker cleanly: requests already read are answered, every partition is
//! fsynced, a clean-shutdown marker is written last and the process exits 0; the next start
//! trusts the segment tails instead of re-checking them, and removes the marker. A second signal
//! exits at once.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{BrokerProcess, RawClient};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiVersionsRequest, CreateTopicsRequest, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use parking_lot::Mutex;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 2;
const MARKER: &str = ".gregor_clean_shutdown";

fn wait_for_log(broker: &BrokerProcess, needle: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !broker.log().contains(needle) {
        assert!(Instant::now() < deadline, "no `{needle}` in the log within {timeout:?}:\n{}", broker.log());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every record of `topic`, read back with a consumer: (partition, offset) -> payload.
async fn read_all(bootstrap: String, topic: &'static str) -> BTreeMap<(i32, i64), String> {
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "verify")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut stored = BTreeMap::new();
        for p in 0..PARTITIONS {
            let (_, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).unwrap();
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(topic, p, Offset::Beginning).unwrap();
            consumer.assign(&tpl).unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut next = 0;
            while next < high {
                assert!(Instant::now() < deadline, "partition {p}: stuck at {next} of {high}");
                let Some(m) = consumer.poll(Duration::from_millis(200)) else {
                    continue;
                };
                let m = m.unwrap();
                assert_eq!(m.offset(), next, "partition {p}: gap or reordering");
                stored.insert((p, m.offset()), String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
                next += 1;
            }
        }
        stored
    })
    .await
    .unwrap()
}

fn marker(data: &Path) -> bool {
    data.join(MARKER).exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_in_flight_produces_flushes_and_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let env = [("RUST_LOG", "info")];
    let mut broker = BrokerProcess::spawn(&data, &env);
    let bootstrap = broker.addr.to_string();
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
    for r in admin
        .create_topics(&[NewTopic::new("stop", PARTITIONS, TopicReplication::Fixed(1))], &AdminOptions::new())
        .await
        .unwrap()
    {
        r.unwrap();
    }

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("acks", "1")
        .set("linger.ms", "1")
        .set("message.timeout.ms", "3000")
        .set("retries", "0")
        .create()
        .unwrap();
    let acked: Arc<Mutex<BTreeMap<(i32, i64), String>>> = Arc::default();
    let acked_count = Arc::new(AtomicUsize::new(0));
    let producing = {
        let (acked, acked_count) = (acked.clone(), acked_count.clone());
        tokio::spawn(async move {
            let mut seq = 0u64;
            loop {
                let mut batch = Vec::new();
                for _ in 0..50 {
                    seq += 1;
                    let payload = format!("record-{seq:08}");
                    let partition = (seq % PARTITIONS as u64) as i32;
                    let fut = producer
                        .send_result(FutureRecord::<(), _>::to("stop").partition(partition).payload(&payload))
                        .map_err(|(e, _)| e);
                    batch.push((payload, fut));
                }
                let mut failures = 0;
                for (payload, fut) in batch {
                    let delivered = match fut {
                        Ok(f) => f.await.ok().and_then(|r| r.ok()),
                        Err(_) => None,
                    };
                    match delivered {
                        Some(d) => {
                            acked.lock().insert((d.partition, d.offset), payload);
                            acked_count.fetch_add(1, Ordering::Relaxed);
                        }
                        None => failures += 1,
                    }
                }
                if failures == 50 {
                    return seq;
                }
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked_count.load(Ordering::Relaxed) < 3000 {
        assert!(Instant::now() < deadline, "only {} acks in 60s", acked_count.load(Ordering::Relaxed));
        assert!(broker.is_running(), "{}", broker.log());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let signalled = Instant::now();
    broker.signal(libc::SIGTERM);
    let status = tokio::task::block_in_place(|| broker.wait_exit(Duration::from_secs(15)));
    let stopped_in = signalled.elapsed();
    let status = status.unwrap_or_else(|| panic!("still running 15 s after SIGTERM:\n{}", broker.log()));
    assert!(status.success(), "exit status {status}:\n{}", broker.log());
    assert!(marker(&data), "no clean-shutdown marker after the stop:\n{}", broker.log());
    let attempted = producing.await.unwrap();
    let acked = acked.lock().clone();

    let restarted = BrokerProcess::spawn(&data, &env);
    wait_for_log(&restarted, "recovery=TrustCleanShutdown", Duration::from_secs(10));
    assert!(!marker(&data), "the marker must be gone once the restart has recovered");
    let stored = read_all(restarted.addr.to_string(), "stop").await;
    for (key, payload) in &acked {
        assert_eq!(stored.get(key), Some(payload), "acknowledged record {key:?} lost or changed");
    }
    eprintln!(
        "attempted {attempted}, acknowledged {}, stored {}; exit 0 {stopped_in:?} after SIGTERM",
        acked.len(),
        stored.len()
    );
}

#[test]
fn tail_scan_is_skipped_after_a_clean_stop_and_runs_after_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let env = [("RUST_LOG", "info")];
    let first = BrokerProcess::spawn(&data, &env);
    wait_for_log(&first, "recovery=VerifyTail", Duration::from_secs(10));
    first.signal(libc::SIGTERM);
    let mut first = first;
    assert!(first.wait_exit(Duration::from_secs(15)).is_some_and(|s| s.success()), "{}", first.log());

    let mut second = BrokerProcess::spawn(&data, &env);
    wait_for_log(&second, "recovery=TrustCleanShutdown", Duration::from_secs(10));
    assert!(!marker(&data));
    second.kill_9();
    assert!(!marker(&data), "SIGKILL leaves no marker");

    let third = BrokerProcess::spawn(&data, &env);
    wait_for_log(&third, "recovery=VerifyTail", Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // A long grace period, and a long poll that keeps the stop waiting for it.
    let mut broker =
        BrokerProcess::spawn(&data, &[("RUST_LOG", "info"), ("GREGOR__SERVER__SHUTDOWN_GRACE_MS", "60000")]);
    let mut c = RawClient::connect(broker.addr).await;
    let create = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_static_str("poll")))
        .with_num_partitions(1)
        .with_replication_factor(1)]);
    assert_eq!(c.call(7, &create).await.topics[0].error_code, 0);
    // ApiVersions and the long poll in one write: once ApiVersions is answered, the reader has
    // the fetch in its buffer and goes straight on to it.
    let (versions_id, versions) = c.frame(0, &ApiVersionsRequest::default());
    let fetch =
        FetchRequest::default().with_max_wait_ms(60_000).with_min_bytes(1).with_max_bytes(1 << 20).with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("poll")))
                .with_partitions(vec![FetchPartition::default().with_partition_max_bytes(1 << 20)]),
        ]);
    let (_, fetch) = c.frame(4, &fetch);
    c.send_raw(&[versions.as_ref(), fetch.as_ref()].concat()).await;
    let _ = c.read_response::<ApiVersionsRequest>(0, versions_id).await;

    broker.signal(libc::SIGTERM);
    tokio::task::block_in_place(|| wait_for_log(&broker, "shutting down", Duration::from_secs(10)));
    assert!(broker.is_running(), "the stop should still be waiting for the long poll:\n{}", broker.log());
    let signalled = Instant::now();
    broker.signal(libc::SIGTERM);
    let status = tokio::task::block_in_place(|| broker.wait_exit(Duration::from_secs(3)));
    let status = status.unwrap_or_else(|| panic!("still running 3 s after the second signal:\n{}", broker.log()));
    eprintln!("second signal: exit {status} after {:?}", signalled.elapsed());
    assert_eq!(status.code(), Some(130), "{}", broker.log());
    assert!(!marker(&data), "an interrupted stop must not claim to be clean");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_requests_already_read_before_closing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut broker = BrokerProcess::spawn(&data, &[("RUST_LOG", "info")]);
    let mut c = RawClient::connect(broker.addr).await;
    let create = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_static_str("poll")))
        .with_num_partitions(1)
        .with_replication_factor(1)]);
    assert_eq!(c.call(7, &create).await.topics[0].error_code, 0);
    // A long poll of 1.5 s, well inside the 5 s grace period, read before the signal.
    let (versions_id, versions) = c.frame(0, &ApiVersionsRequest::default());
    let fetch =
        FetchRequest::default().with_max_wait_ms(1500).with_min_bytes(1).with_max_bytes(1 << 20).with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("poll")))
                .with_partitions(vec![FetchPartition::default().with_partition_max_bytes(1 << 20)]),
        ]);
    let (fetch_id, fetch) = c.frame(4, &fetch);
    c.send_raw(&[versions.as_ref(), fetch.as_ref()].concat()).await;
    let _ = c.read_response::<ApiVersionsRequest>(0, versions_id).await;

    broker.signal(libc::SIGTERM);
    let answer = c.read_response::<FetchRequest>(4, fetch_id).await;
    assert_eq!(answer.responses[0].partitions[0].error_code, 0);
    assert!(c.is_closed().await, "the connection closes once its requests are answered");
    let status = tokio::task::block_in_place(|| broker.wait_exit(Duration::from_secs(10)));
    assert!(status.is_some_and(|s| s.success()), "{status:?}:\n{}", broker.log());
    assert!(marker(&data));
}
