//! librdkafka (through the rdkafka crate) against an in-process broker: produce with every
//! compression codec and acks setting, consume by assignment, and check every record byte for
//! byte, including duplicate header keys; topic administration through the AdminClient.

use std::time::Duration;

use crate::common::TestBroker;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("admin client")
}

async fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    let results = admin(bootstrap)
        .create_topics(&[NewTopic::new(name, partitions, TopicReplication::Fixed(1))], &AdminOptions::new())
        .await
        .expect("create_topics");
    for r in results {
        r.expect("topic created");
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Rec {
    key: Vec<u8>,
    value: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    timestamp: i64,
}

fn expected(n: usize, tag: &str) -> Vec<Rec> {
    (0..n)
        .map(|i| Rec {
            key: format!("key-{i}").into_bytes(),
            value: format!("{tag}-value-{i}-{}", "x".repeat(i % 50)).into_bytes(),
            // Duplicate header keys must survive, in order (KIP-82).
            headers: vec![
                ("h".into(), b"first".to_vec()),
                ("h".into(), format!("second-{i}").into_bytes()),
                ("other".into(), vec![]),
            ],
            timestamp: 1_700_000_000_000 + i as i64,
        })
        .collect()
}

async fn produce(bootstrap: &str, topic: &str, partition: i32, recs: &[Rec], compression: &str, acks: &str) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("compression.type", compression)
        .set("acks", acks)
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let mut futures = Vec::new();
    for r in recs {
        let mut headers = OwnedHeaders::new();
        for (k, v) in &r.headers {
            headers = headers.insert(Header { key: k, value: Some(v) });
        }
        let record = FutureRecord::to(topic)
            .partition(partition)
            .key(&r.key)
            .payload(&r.value)
            .headers(headers)
            .timestamp(r.timestamp);
        futures.push(producer.send(record, Duration::from_secs(10)));
    }
    for f in futures {
        let delivery = f.await;
        if acks != "0" {
            delivery.expect("delivered");
        }
    }
}

fn consume(bootstrap: &str, topic: &str, partition: i32, count: usize) -> Vec<(i64, Rec)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.auto.commit", "false")
        .set("group.id", "unused-assign-only")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Beginning).unwrap();
    consumer.assign(&tpl).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while out.len() < count {
        assert!(std::time::Instant::now() < deadline, "only {} of {count} records consumed", out.len());
        let Some(msg) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let msg = msg.expect("consume error");
        let headers = msg
            .headers()
            .map(|h| h.iter().map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec())).collect())
            .unwrap_or_default();
        out.push((
            msg.offset(),
            Rec {
                key: msg.key().unwrap_or_default().to_vec(),
                value: msg.payload().unwrap_or_default().to_vec(),
                headers,
                timestamp: msg.timestamp().to_millis().unwrap_or(-1),
            },
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_and_acks_round_trips_byte_exact() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "codecs", 1).await;
    let mut all = Vec::new();
    for compression in ["none", "gzip", "snappy", "lz4", "zstd"] {
        for acks in ["1", "all"] {
            let recs = expected(300, &format!("{compression}-{acks}"));
            produce(&bootstrap, "codecs", 0, &recs, compression, acks).await;
            all.extend(recs);
        }
    }
    let b = bootstrap.clone();
    let n = all.len();
    let got = tokio::task::spawn_blocking(move || consume(&b, "codecs", 0, n)).await.unwrap();
    for (i, ((offset, rec), want)) in got.iter().zip(&all).enumerate() {
        assert_eq!(*offset, i as i64, "offsets must be contiguous");
        assert_eq!(rec, want, "record {i} differs");
    }
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_zero_records_arrive() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "fire-and-forget", 1).await;
    let recs = expected(200, "acks0");
    produce(&bootstrap, "fire-and-forget", 0, &recs, "lz4", "0").await;
    let b = bootstrap.clone();
    let got = tokio::task::spawn_blocking(move || consume(&b, "fire-and-forget", 0, 200)).await.unwrap();
    assert_eq!(got.into_iter().map(|(_, r)| r).collect::<Vec<_>>(), recs);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_create_delete_and_metadata() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    let admin = admin(&bootstrap);
    let opts = AdminOptions::new();
    let res = admin
        .create_topics(&[NewTopic::new("a1", 4, TopicReplication::Fixed(1)).set("retention.ms", "60000")], &opts)
        .await
        .unwrap();
    assert!(res[0].is_ok(), "{res:?}");
    let again = admin.create_topics(&[NewTopic::new("a1", 4, TopicReplication::Fixed(1))], &opts).await.unwrap();
    assert_eq!(again[0].as_ref().unwrap_err().1, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists);
    let dry = admin
        .create_topics(&[NewTopic::new("dry", 1, TopicReplication::Fixed(1))], &AdminOptions::new().validate_only(true))
        .await
        .unwrap();
    assert!(dry[0].is_ok());

    let b = bootstrap.clone();
    let md = tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &b).create().unwrap();
        c.fetch_metadata(None, Duration::from_secs(10))
            .unwrap()
            .topics()
            .iter()
            .map(|t| (t.name().to_string(), t.partitions().len()))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert_eq!(md, vec![("a1".to_string(), 4)]);

    let del = admin.delete_topics(&["a1", "never-was"], &opts).await.unwrap();
    assert!(del[0].is_ok());
    assert_eq!(del[1].as_ref().unwrap_err().1, rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watermarks_and_offsets_for_times() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "wm", 1).await;
    let recs = expected(50, "wm");
    produce(&bootstrap, "wm", 0, &recs, "none", "all").await;
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &b).set("group.id", "wm").create().unwrap();
        assert_eq!(c.fetch_watermarks("wm", 0, Duration::from_secs(10)).unwrap(), (0, 50));
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("wm", 0, Offset::Offset(recs[20].timestamp)).unwrap();
        let found = c.offsets_for_times(tpl, Duration::from_secs(10)).unwrap();
        assert_eq!(found.find_partition("wm", 0).unwrap().offset(), Offset::Offset(20));
    })
    .await
    .unwrap();
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_round_trips() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "idempotent", 1).await;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("enable.idempotence", "true")
        .set("compression.type", "lz4")
        .create()
        .expect("producer");
    let recs = expected(500, "idem");
    let mut futures = Vec::new();
    for r in &recs {
        let record = FutureRecord::to("idempotent").partition(0).key(&r.key).payload(&r.value).timestamp(r.timestamp);
        futures.push(producer.send(record, Duration::from_secs(10)));
    }
    for (i, f) in futures.into_iter().enumerate() {
        let d = f.await.expect("delivered");
        assert_eq!(d.offset, i as i64);
    }
    let b = bootstrap.clone();
    let got = tokio::task::spawn_blocking(move || consume(&b, "idempotent", 0, 500)).await.unwrap();
    for ((_, got), want) in got.iter().zip(&recs) {
        assert_eq!((&got.key, &got.value), (&want.key, &want.value));
    }
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_partitions_and_configs() {
    use rdkafka::admin::{AlterConfig, NewPartitions, OwnedResourceSpecifier, ResourceSpecifier};
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    let admin = admin(&bootstrap);
    let opts = AdminOptions::new();
    create_topic(&bootstrap, "grow", 2).await;

    // CreatePartitions: grow 2 -> 5; shrinking is refused.
    let res = admin.create_partitions(&[NewPartitions::new("grow", 5)], &opts).await.unwrap();
    assert!(res[0].is_ok(), "{res:?}");
    let res = admin.create_partitions(&[NewPartitions::new("grow", 3)], &opts).await.unwrap();
    assert_eq!(res[0].as_ref().unwrap_err().1, rdkafka::types::RDKafkaErrorCode::InvalidPartitions);
    let b = bootstrap.clone();
    let count = tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &b).create().unwrap();
        c.fetch_metadata(Some("grow"), Duration::from_secs(10)).unwrap().topics()[0].partitions().len()
    })
    .await
    .unwrap();
    assert_eq!(count, 5);
    let recs = expected(10, "p4");
    produce(&bootstrap, "grow", 4, &recs, "none", "1").await;

    // AlterConfigs, then DescribeConfigs shows the override and the defaults.
    let alter = AlterConfig::new(ResourceSpecifier::Topic("grow"))
        .set("retention.ms", "123456")
        .set("cleanup.policy", "compact");
    let res = admin.alter_configs(&[alter], &opts).await.unwrap();
    assert!(res[0].is_ok(), "{res:?}");
    // An invalid value is refused (INVALID_CONFIG) and changes nothing; the rdkafka crate does
    // not surface that per-resource error, so the check is on the resulting configs below.
    let bad = AlterConfig::new(ResourceSpecifier::Topic("grow")).set("retention.ms", "soon");
    admin.alter_configs(&[bad], &opts).await.unwrap();
    let described = admin.describe_configs(&[ResourceSpecifier::Topic("grow")], &opts).await.unwrap();
    let resource = described[0].as_ref().unwrap();
    assert_eq!(resource.specifier, OwnedResourceSpecifier::Topic("grow".into()));
    assert_eq!(resource.get("retention.ms").and_then(|e| e.value.as_deref()), Some("123456"));
    assert_eq!(resource.get("cleanup.policy").and_then(|e| e.value.as_deref()), Some("compact"));
    assert!(resource.get("max.message.bytes").is_some_and(|e| e.is_default));
    let broker_cfg = admin.describe_configs(&[ResourceSpecifier::Broker(1)], &opts).await.unwrap();
    assert_eq!(broker_cfg[0].as_ref().unwrap().get("num.partitions").and_then(|e| e.value.as_deref()), Some("1"));
    let setting = |name: &str| broker_cfg[0].as_ref().unwrap().get(name).and_then(|e| e.value.clone());
    assert_eq!(setting("transaction.max.timeout.ms").as_deref(), Some("900000"));
    assert_eq!(setting("log.cleaner.enable").as_deref(), Some("true"));
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_for_times_is_exact_inside_compressed_batches() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("times-{codec}");
        create_topic(&bootstrap, &topic, 1).await;
        // linger packs all 100 records into few compressed batches.
        let recs = expected(100, codec);
        produce(&bootstrap, &topic, 0, &recs, codec, "all").await;
        let b = bootstrap.clone();
        let ts = recs[37].timestamp;
        tokio::task::spawn_blocking(move || {
            let c: BaseConsumer =
                ClientConfig::new().set("bootstrap.servers", &b).set("group.id", "t").create().unwrap();
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&topic, 0, Offset::Offset(ts)).unwrap();
            let found = c.offsets_for_times(tpl, Duration::from_secs(10)).unwrap();
            assert_eq!(found.find_partition(&topic, 0).unwrap().offset(), Offset::Offset(37), "{topic}");
        })
        .await
        .unwrap();
    }
    broker.stop().await;
}
