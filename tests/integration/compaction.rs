//! Log compaction through librdkafka: a topic created with `cleanup.policy=compact` is
//! compacted in the background; a consumer reading it from the start sees the latest value of
//! every key (at its original offset) and fewer records than were written, including a
//! tombstone whose batch the cleaner rewrote with a delete horizon (KIP-534). Batches the
//! cleaner rewrites keep their codec, and librdkafka reads them in every codec.

use std::collections::HashMap;
use std::time::Duration;

use crate::common::{wait_for, TestBroker};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

/// Whether the cleaner's checkpoint has reached the active (newest) segment: every rolled
/// segment has been compacted since the last write.
fn compacted_up_to_active(dir: &std::path::Path) -> bool {
    let active = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".log")?.parse::<i64>().ok())
        .max()
        .unwrap_or(0);
    let cleaned = std::fs::read_to_string(dir.join("cleaner-offset.checkpoint"))
        .ok()
        .and_then(|t| t.lines().nth(1)?.trim().parse::<i64>().ok());
    active > 0 && cleaned.is_some_and(|c| c >= active)
}

/// The codec of every data batch in the partition's segment files.
fn codecs_on_disk(dir: &std::path::Path) -> std::collections::BTreeSet<i16> {
    let mut codecs = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "log") {
            let bytes = std::fs::read(entry.path()).unwrap();
            let mut rest = &bytes[..];
            while let Some((_, len)) = gregor::log::batch::peek_len(rest) {
                let Some(batch) = rest.get(..len) else { break };
                let h = gregor::log::batch::BatchHeader::parse(batch).unwrap();
                if !h.is_control() {
                    codecs.insert(h.compression());
                }
                rest = &rest[len..];
            }
        }
    }
    codecs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_topic_keeps_the_latest_value_of_every_key() {
    let broker = TestBroker::start_with(|c| c.log.cleaner_backoff_ms = 100).await;
    compact_and_read(&broker, "compacted", "none").await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewritten_batches_keep_their_codec_and_librdkafka_reads_them() {
    let broker = TestBroker::start_with(|c| c.log.cleaner_backoff_ms = 100).await;
    for (codec, id) in [("gzip", 1), ("snappy", 2), ("lz4", 3), ("zstd", 4)] {
        let topic = format!("compacted-{codec}");
        compact_and_read(&broker, &topic, codec).await;
        let on_disk = codecs_on_disk(&broker.dir.join(format!("{topic}-0")));
        // librdkafka sends a batch uncompressed when compressing would not shrink it.
        assert!(on_disk.contains(&id) && on_disk.is_subset(&[0, id].into()), "{codec}: {on_disk:?}");
    }
    broker.stop().await;
}

/// Writes many versions of a few keys (and a tombstone) to a new compacted topic with
/// `compression`, waits until every rolled segment was compacted, and reads the topic back.
async fn compact_and_read(broker: &TestBroker, name: &str, compression: &str) {
    const N: usize = 400;
    let bootstrap = broker.bootstrap();
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
    let topic = NewTopic::new(name, 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("segment.bytes", "2048")
        .set("min.cleanable.dirty.ratio", "0.01");
    let r = admin.create_topics([&topic], &AdminOptions::new()).await.unwrap();
    assert!(r.iter().all(|r| r.is_ok()), "{r:?}");
    let b = bootstrap.clone();
    let (t, codec) = (name.to_string(), compression.to_string());
    let latest = tokio::task::spawn_blocking(move || {
        let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", &b)
            .set("linger.ms", "0")
            .set("compression.type", &codec)
            .create()
            .unwrap();
        let mut latest: HashMap<String, (Option<String>, i64)> = HashMap::new();
        for i in 0..N {
            let (k, v) = (format!("key-{}", i % 10), format!("value-{i}"));
            if i == 100 {
                // Deleted early on: the tombstone stays (delete.retention.ms is a day) in a
                // batch the cleaner rewrites with the delete-horizon attribute.
                p.send(BaseRecord::<String, String>::to(&t).partition(0).key(&k)).unwrap();
                latest.insert(k, (None, i as i64));
                continue;
            }
            if i % 10 == 0 && i > 100 {
                // key-0 stays deleted.
                p.send(BaseRecord::to(&t).partition(0).key("other").payload(&v)).unwrap();
                latest.insert("other".into(), (Some(v), i as i64));
                continue;
            }
            p.send(BaseRecord::to(&t).partition(0).key(&k).payload(&v)).unwrap();
            latest.insert(k, (Some(v), i as i64));
            if i % 20 == 19 {
                // Many small batches, so that segments roll and can be compacted.
                p.flush(Duration::from_secs(20)).unwrap();
            }
        }
        p.flush(Duration::from_secs(20)).unwrap();
        latest
    })
    .await
    .unwrap();
    let dir = broker.dir.join(format!("{name}-0"));
    wait_for("the cleaner to compact every rolled segment", Duration::from_secs(30), || {
        compacted_up_to_active(&dir).then_some(())
    })
    .await;

    let b = bootstrap.clone();
    let t = name.to_string();
    tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &b)
            .set("group.id", "compaction-reader")
            .set("enable.partition.eof", "true")
            // The client checks the CRC of every batch, the rewritten ones included.
            .set("check.crcs", "true")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&t, 0, Offset::Beginning).unwrap();
        c.assign(&tpl).unwrap();
        let mut seen: HashMap<String, (Option<String>, i64)> = HashMap::new();
        let mut count = 0;
        let mut last_offset = -1;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            assert!(std::time::Instant::now() < deadline, "did not reach the end");
            match c.poll(Duration::from_millis(100)) {
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => break,
                Some(Ok(m)) => {
                    assert!(m.offset() > last_offset, "offsets increase");
                    last_offset = m.offset();
                    let k = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
                    let v = m.payload().map(|p| String::from_utf8(p.to_vec()).unwrap());
                    seen.insert(k, (v, m.offset()));
                    count += 1;
                }
                Some(Err(e)) => panic!("{e}"),
                None => {}
            }
        }
        assert_eq!(seen, latest, "{t}: the latest value of every key, at the offset it was written at");
        assert!(count < N / 2, "{t}: {count} of {N} records are left after compaction");
    })
    .await
    .unwrap();
}
