//! The HTTP endpoint of the real binary: `/healthz`, `/readyz`, and `/metrics` with live
//! numbers after librdkafka produced, consumed in a group and committed.

use std::io::{Read, Write};
use std::time::Duration;

use crate::common::{self, BrokerProcess};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

/// A broker's `/metrics`, from the HTTP address it logged (it listens on port 0 in tests).
pub(crate) fn metrics_of(broker: &BrokerProcess) -> String {
    let log = broker.log();
    let address = log.split("address=http://").nth(1).and_then(|rest| rest.split_whitespace().next());
    let port = address.and_then(|a| a.rsplit(':').next()?.parse().ok()).expect("the broker logged its HTTP address");
    get(port, "/metrics").expect("/metrics answered").1
}

/// (status, body) of a GET.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    Some((status, text.split_once("\r\n\r\n")?.1.to_string()))
}

/// The value of the first sample whose line starts with `series`.
pub(crate) fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find(|l| l.starts_with(series))?.rsplit(' ').next()?.parse().ok()
}

#[test]
fn health_readiness_and_live_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{http}");
    // No initial rebalance delay: the group below forms at once instead of after 3 s.
    let broker = BrokerProcess::spawn(
        &tmp.path().join("data"),
        &[("GREGOR__SERVER__HTTP_LISTEN", &listen), ("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")],
    );
    common::wait_for_sync(Duration::from_secs(20), || get(http, "/readyz").is_some_and(|(s, _)| s == 200));
    assert_eq!(get(http, "/healthz").unwrap(), (200, "ok\n".to_string()));
    assert_eq!(get(http, "/nope").unwrap().0, 404);
    assert!(broker.log().contains(&format!("http://{listen}")), "the address is logged");

    let bootstrap = broker.addr.to_string();
    let producer: ThreadedProducer<DefaultProducerContext> =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
    for i in 0..50 {
        producer.send(BaseRecord::<str, str>::to("metered").key("k").payload(&format!("value {i}"))).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "meter")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&["metered"]).unwrap();
    let mut seen = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while seen < 30 && std::time::Instant::now() < deadline {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(200)) {
            seen += 1;
        }
    }
    assert_eq!(seen, 30);
    // Commit 30 of the 50: the lag is 20.
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset("metered", 0, rdkafka::Offset::Offset(30)).unwrap();
    consumer.commit(&tpl, CommitMode::Sync).unwrap();

    let (status, metrics) = get(http, "/metrics").unwrap();
    assert_eq!(status, 200);
    let want = |series: &str| sample(&metrics, series).unwrap_or_else(|| panic!("no {series} in:\n{metrics}"));
    assert!(want("gregor_requests_total{api=\"Produce\"") >= 1.0);
    assert!(want("gregor_requests_total{api=\"Fetch\"") >= 1.0);
    assert!(want("gregor_request_duration_seconds_count{api=\"Produce\"}") >= 1.0);
    assert!(want("gregor_produced_bytes_total{topic=\"metered\"}") > 500.0);
    assert!(want("gregor_fetched_bytes_total{topic=\"metered\"}") > 500.0);
    assert!(want("gregor_connections ") >= 2.0, "producer and consumer connected");
    assert!(want("gregor_partitions ") >= 1.0);
    assert!(want("gregor_log_size_bytes{topic=\"metered\",partition=\"0\"}") > 500.0);
    assert_eq!(want("gregor_under_min_isr_partitions "), 0.0);
    assert!(want("gregor_consumer_groups ") >= 1.0);
    assert_eq!(want("gregor_consumer_group_members{group=\"meter\"}"), 1.0);
    assert_eq!(want("gregor_consumer_lag{group=\"meter\",topic=\"metered\",partition=\"0\"}"), 20.0);
    assert!(want("gregor_fsync_duration_seconds_count ") >= 0.0);
    drop(consumer);
    drop(broker);
}
