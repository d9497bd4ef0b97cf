//! SIGKILL while a client produces with acks=all: after a restart every acknowledged record is
//! there, at the offset it was acknowledged with, in order, with no gap in offsets.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::BrokerProcess;
use parking_lot::Mutex;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const PARTITIONS: i32 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_write() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Small segments so the kill can also land around a segment roll.
    let env = [("GREGOR__LOG__SEGMENT_BYTES", "65536"), ("RUST_LOG", "warn")];
    let mut broker = BrokerProcess::spawn(&data, &env);
    let bootstrap = broker.addr.to_string();

    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
    admin
        .create_topics(&[NewTopic::new("durable", PARTITIONS, TopicReplication::Fixed(1))], &AdminOptions::new())
        .await
        .unwrap()
        .into_iter()
        .for_each(|r| {
            r.unwrap();
        });

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("acks", "all")
        .set("linger.ms", "1")
        .set("message.timeout.ms", "3000")
        .set("retries", "0")
        .create()
        .unwrap();
    // (partition, offset) -> payload of every acknowledged record.
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
                        .send_result(FutureRecord::<(), _>::to("durable").partition(partition).payload(&payload))
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
    broker.kill_9();
    let attempted = producing.await.unwrap();
    let acked = acked.lock().clone();
    assert!(acked.len() >= 3000);

    let broker = BrokerProcess::spawn(&data, &env);
    let bootstrap = broker.addr.to_string();
    let stored = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "verify")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut stored: BTreeMap<(i32, i64), String> = BTreeMap::new();
        for p in 0..PARTITIONS {
            let (low, high) = consumer.fetch_watermarks("durable", p, Duration::from_secs(10)).unwrap();
            assert_eq!(low, 0);
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset("durable", p, Offset::Beginning).unwrap();
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
    .unwrap();

    for (key, payload) in &acked {
        assert_eq!(stored.get(key), Some(payload), "acknowledged record {key:?} lost or changed");
    }
    eprintln!("attempted {attempted}, acknowledged {}, stored after SIGKILL {}", acked.len(), stored.len());
    drop(broker);
}
