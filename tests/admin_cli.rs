//! `gregor topics|produce|consume|groups|cluster` against the real binary, cross-checked with
//! librdkafka (the rdkafka crate): what the CLI writes librdkafka reads, what librdkafka writes
//! and commits the CLI shows.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::BrokerProcess;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

fn cli(bootstrap: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(args)
        .args(["--bootstrap-server", bootstrap])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn topics_records_and_groups_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::spawn(&tmp.path().join("data"), &[]);
    let b = broker.addr.to_string();

    ok(cli(&b, &["topics", "create", "orders", "--partitions", "3", "--config", "retention.ms=3600000"], None));
    let again = cli(&b, &["topics", "create", "orders"], None);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("TOPIC_ALREADY_EXISTS"), "{again:?}");
    assert!(ok(cli(&b, &["topics", "list"], None)).lines().any(|l| l == "orders"));

    // 90 keyed lines in; librdkafka reads every one back, keys and values intact.
    let lines: String = (0..90).map(|i| format!("customer-{}|order {i}\n", i % 7)).collect();
    ok(cli(&b, &["produce", "orders", "--key-separator", "|"], Some(&lines)));
    let described = ok(cli(&b, &["topics", "describe", "orders", "--json"], None));
    let v: serde_json::Value = serde_json::from_str(&described).unwrap();
    let ends: i64 = v["partitions"].as_array().unwrap().iter().map(|p| p["end_offset"].as_i64().unwrap()).sum();
    assert_eq!(ends, 90, "{described}");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &b)
        .set("group.id", "billing")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&["orders"]).unwrap();
    let mut read = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while read.len() < 90 && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
            read.push(format!("{key}|{}", String::from_utf8(m.payload().unwrap().to_vec()).unwrap()));
        }
    }
    let mut want: Vec<String> = lines.lines().map(String::from).collect();
    read.sort();
    want.sort();
    assert_eq!(read, want);
    consumer.commit_consumer_state(CommitMode::Sync).unwrap();

    // The group as the CLI shows it: every partition committed at its end, lag 0.
    let groups = ok(cli(&b, &["groups", "list"], None));
    assert!(groups.contains("billing"), "{groups}");
    let group: serde_json::Value =
        serde_json::from_str(&ok(cli(&b, &["groups", "describe", "billing", "--json"], None))).unwrap();
    let offsets = group["offsets"].as_array().unwrap();
    assert_eq!(offsets.len(), 3, "{group}");
    assert!(offsets.iter().all(|o| o["lag"] == 0), "{group}");
    drop(consumer);

    // librdkafka writes, the CLI reads, as JSON lines and in a kcat-like format.
    let producer: ThreadedProducer<DefaultProducerContext> =
        ClientConfig::new().set("bootstrap.servers", &b).create().unwrap();
    for i in 0..5 {
        producer.send(BaseRecord::to("returns").partition(0).key("k").payload(&format!("r{i}"))).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let json = ok(cli(&b, &["consume", "returns", "--from-beginning", "--count", "5", "--json"], None));
    let values: Vec<String> = json
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["value"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(values, ["r0", "r1", "r2", "r3", "r4"]);
    let formatted = ok(cli(
        &b,
        &["consume", "returns", "--partition", "0", "--offset", "3", "--count", "2", "--format", "%p:%o %k=%s\\n"],
        None,
    ));
    assert_eq!(formatted, "0:3 k=r3\n0:4 k=r4\n");

    let cluster: serde_json::Value =
        serde_json::from_str(&ok(cli(&b, &["cluster", "describe", "--json"], None))).unwrap();
    assert_eq!(cluster["brokers"][0]["address"], b.as_str());
    ok(cli(&b, &["topics", "delete", "orders"], None));
    assert!(!ok(cli(&b, &["topics", "list"], None)).lines().any(|l| l == "orders"));
    let gone = cli(&b, &["topics", "describe", "orders"], None);
    assert!(String::from_utf8_lossy(&gone.stderr).contains("UNKNOWN_TOPIC_OR_PARTITION"), "{gone:?}");
}
