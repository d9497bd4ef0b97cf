//! Fetch responses nobody reads cannot exhaust memory. Clients that pipeline huge fetches and
//! never read the answers used to make the broker hold every response (up to 64 per connection,
//! each up to `fetch.max.bytes`): four such connections took the broker past 2 GiB. Now a fetch
//! takes room in a bounded fetch memory before it reads, each connection only up to two full
//! fetches' worth, and the room comes back when the answers are written or dropped.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::common::{BrokerProcess, RawClient};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

const DATA: usize = 20 << 20;
const HOSTILE_CONNECTIONS: usize = 4;
const PIPELINED: usize = 30;

fn huge_fetch() -> FetchRequest {
    FetchRequest::default().with_max_wait_ms(0).with_max_bytes(i32::MAX).with_topics(vec![FetchTopic::default()
        .with_topic(TopicName(StrBytes::from_static_str("big")))
        .with_partitions(vec![FetchPartition::default().with_partition_max_bytes(i32::MAX)])])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_fetches_nobody_reads_stay_within_the_fetch_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::spawn(&tmp.path().join("data"), &[("RUST_LOG", "warn")]);
    let addr = broker.addr;
    RawClient::connect(addr).await.create_topic("big", 1).await;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", addr.to_string())
        .set("acks", "all")
        .set("message.max.bytes", "1000000")
        .create()
        .unwrap();
    let payload = vec![b'x'; 900 * 1024];
    for _ in 0..DATA.div_ceil(payload.len()) {
        producer
            .send(FutureRecord::<(), _>::to("big").partition(0).payload(&payload), Duration::from_secs(10))
            .await
            .unwrap();
    }
    drop(producer);
    let start = broker.rss_kib();

    // Raw sockets with small receive buffers, sending fetches and never reading.
    let mut hostile = Vec::new();
    for _ in 0..HOSTILE_CONNECTIONS {
        let mut c = RawClient::connect(addr).await;
        let mut frames = Vec::new();
        for _ in 0..PIPELINED {
            frames.extend_from_slice(&c.frame(4, &huge_fetch()).1);
        }
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(&frames).unwrap();
        hostile.push(s);
    }
    // Nothing signals that the broker has read all it will: watch RSS for a few seconds (the
    // unbounded broker passed 2 GiB within one).
    let mut peak = 0;
    let watch_until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < watch_until {
        peak = peak.max(broker.rss_kib());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "RSS KiB: {start} before; peak {peak} with {HOSTILE_CONNECTIONS} connections x {PIPELINED} unread fetches"
    );
    let bound = start + 450 * 1024;
    assert!(peak < bound, "RSS reached {peak} KiB with unread fetches (bound {bound} KiB)");

    // Once they are gone their room comes back: a normal fetch is answered in full.
    drop(hostile);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut reader = RawClient::connect(addr).await;
    let resp = tokio::time::timeout_at(deadline.into(), reader.call(4, &huge_fetch())).await.expect("fetch answered");
    let fetched = resp.responses[0].partitions[0].records.as_ref().map_or(0, |r| r.len());
    assert!(fetched >= DATA, "fetched {fetched} bytes");
}
