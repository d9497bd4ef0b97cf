//! `gregor topics|produce|consume|groups|cluster` against the real binary, cross-checked with
//! librdkafka (the rdkafka crate): what the CLI writes librdkafka reads, what librdkafka writes
//! and commits the CLI shows.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{wait_for_sync, BrokerProcess};
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

/// Groups form at once (as compose files for the apache/kafka image usually set it): each new
/// group here would otherwise wait the default 3 s for more members.
const NO_GROUP_DELAY: &[(&str, &str)] = &[("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")];

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

/// The CLI running in the background, its output read when it ends.
fn cli_background(bootstrap: &str, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_gregor"))
        .args(args)
        .args(["--bootstrap-server", bootstrap])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn json(out: Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).unwrap()
}

/// A group's state and member count as the CLI describes it.
fn group_state(bootstrap: &str, group: &str) -> (String, usize) {
    let g = json(cli(bootstrap, &["groups", "describe", group, "--json"], None));
    (g["state"].as_str().unwrap().to_string(), g["members"].as_array().unwrap().len())
}

/// A librdkafka consumer of `group` that commits only when told.
fn rdkafka_member(bootstrap: &str, group: &str, topic: &str) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("partition.assignment.strategy", "range")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    consumer
}

/// Polls `consumer` until `until` holds for what it read (values), or a minute passes.
fn read_with(consumer: &BaseConsumer, read: &mut Vec<String>, mut until: impl FnMut(&[String]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !until(read) {
        assert!(Instant::now() < deadline, "read {} records, not the ones expected", read.len());
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            read.push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
        }
    }
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn topics_records_and_groups_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::spawn(&tmp.path().join("data"), NO_GROUP_DELAY);
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

#[test]
fn partitions_configs_headers_groups_and_offsets_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::spawn(&tmp.path().join("data"), NO_GROUP_DELAY);
    let b = broker.addr.to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", &b).create().unwrap();

    // Partitions only grow; configs set and removed are what librdkafka's admin client sees.
    ok(cli(&b, &["topics", "create", "events", "--partitions", "2"], None));
    ok(cli(&b, &["topics", "alter", "events", "--partitions", "4"], None));
    let shrink = cli(&b, &["topics", "alter", "events", "--partitions", "3"], None);
    assert!(String::from_utf8_lossy(&shrink.stderr).contains("INVALID_PARTITIONS"), "{shrink:?}");
    let md = admin.inner().fetch_metadata(Some("events"), Duration::from_secs(10)).unwrap();
    assert_eq!(md.topics()[0].partitions().len(), 4);
    ok(cli(
        &b,
        &[
            "configs",
            "alter",
            "--topic",
            "events",
            "--set",
            "retention.ms=7200000",
            "--set",
            "max.message.bytes=2000000",
        ],
        None,
    ));
    ok(cli(&b, &["configs", "alter", "--topic", "events", "--delete", "max.message.bytes"], None));
    let seen =
        rt.block_on(admin.describe_configs([&ResourceSpecifier::Topic("events")], &AdminOptions::new())).unwrap();
    let seen = seen[0].as_ref().unwrap();
    assert_eq!(seen.get("retention.ms").and_then(|e| e.value.as_deref()), Some("7200000"));
    assert!(seen.get("max.message.bytes").is_some_and(|e| e.is_default), "a deleted config is back to its default");
    let described = json(cli(&b, &["configs", "describe", "--topic", "events", "--json"], None));
    let names: Vec<&str> =
        described["configs"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["retention.ms"], "{described}");
    let unknown = cli(&b, &["configs", "alter", "--topic", "events", "--set", "no.such.config=1"], None);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("INVALID_CONFIG"), "{unknown:?}");
    assert!(!ok(cli(&b, &["configs", "describe", "--broker", "1", "--all"], None)).is_empty());

    // Headers and compression as librdkafka reads them.
    let lines: String = (0..200).map(|i| format!("k{}|e{i}\n", i % 13)).collect();
    ok(cli(
        &b,
        &["produce", "events", "--key-separator", "|", "--header", "source=cli", "--compression", "zstd"],
        Some(&lines),
    ));
    let reader = rdkafka_member(&b, "audit", "events");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut n = 0;
    while n < 200 {
        assert!(Instant::now() < deadline, "librdkafka read {n} of 200");
        let Some(m) = reader.poll(Duration::from_millis(100)) else { continue };
        let m = m.unwrap();
        let h = m.headers().expect("the record has its header").get(0);
        assert_eq!((h.key, h.value), ("source", Some(&b"cli"[..])));
        n += 1;
    }
    drop(reader);

    // A CLI group member that stops after 50 records commits exactly those: librdkafka, in
    // the same group, reads the other 150, none twice.
    let first = ok(cli(&b, &["consume", "events", "--group", "billing", "--from-beginning", "--count", "50"], None));
    let mut read: Vec<String> = first.lines().map(String::from).collect();
    assert_eq!(read.len(), 50);
    let rest = rdkafka_member(&b, "billing", "events");
    read_with(&rest, &mut read, |r| r.len() >= 200);
    let unique: BTreeSet<&String> = read.iter().collect();
    assert_eq!(unique.len(), 200, "every record once");

    // With librdkafka still a member, the offsets cannot be reset.
    let busy =
        cli(&b, &["groups", "reset-offsets", "billing", "--topic", "events", "--to-earliest", "--execute"], None);
    assert!(String::from_utf8_lossy(&busy.stderr).contains("member"), "{busy:?}");
    rest.commit_consumer_state(CommitMode::Sync).unwrap();
    drop(rest);
    wait_for_sync(Duration::from_secs(30), || group_state(&b, "billing").1 == 0);

    // Reset: a dry run changes nothing; --execute moves partition 0 back by 5 and the rest
    // to the start; the next member reads exactly that.
    let planned =
        json(cli(&b, &["groups", "reset-offsets", "billing", "--all-topics", "--to-earliest", "--json"], None));
    assert_eq!(planned["executed"], false);
    let lag: i64 = json(cli(&b, &["groups", "describe", "billing", "--json"], None))["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["lag"].as_i64().unwrap())
        .sum();
    assert_eq!(lag, 0, "a dry run commits nothing");
    ok(cli(&b, &["groups", "reset-offsets", "billing", "--topic", "events:1,2,3", "--to-earliest", "--execute"], None));
    ok(cli(&b, &["groups", "reset-offsets", "billing", "--topic", "events:0", "--shift-by", "-5", "--execute"], None));
    let ends: i64 = json(cli(&b, &["topics", "describe", "events", "--json"], None))["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["partition"] != 0)
        .map(|p| p["end_offset"].as_i64().unwrap())
        .sum();
    let again = ok(cli(&b, &["consume", "events", "--group", "billing", "--timeout-ms", "1500"], None));
    assert_eq!(again.lines().count() as i64, ends + 5);

    // A CLI member leads a group librdkafka joins: librdkafka decodes the assignment it
    // made, and records written then are split between the two by partition.
    let mut leader = cli_background(
        &b,
        &["consume", "events", "--group", "mixed", "--from-beginning", "--timeout-ms", "12000", "--format", "%s\\n"],
    );
    wait_for_sync(Duration::from_secs(30), || group_state(&b, "mixed") == ("Stable".into(), 1));
    let joined = rdkafka_member(&b, "mixed", "events");
    let deadline = Instant::now() + Duration::from_secs(60);
    while joined.assignment().unwrap().count() == 0 {
        assert!(Instant::now() < deadline, "librdkafka got no partitions from the CLI's assignment");
        let _ = joined.poll(Duration::from_millis(100));
    }
    assert_eq!(joined.assignment().unwrap().count(), 2, "range gives each of two members 2 of 4 partitions");
    let producer: ThreadedProducer<DefaultProducerContext> =
        ClientConfig::new().set("bootstrap.servers", &b).create().unwrap();
    for i in 0..40 {
        producer.send(BaseRecord::to("events").key(&format!("n{i}")).payload(&format!("new{i}"))).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let mut theirs: Vec<String> = Vec::new();
    read_with(&joined, &mut theirs, |_| leader.try_wait().unwrap().is_some());
    let out = leader.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mine: Vec<String> =
        String::from_utf8(out.stdout).unwrap().lines().filter(|l| l.starts_with("new")).map(String::from).collect();
    assert!(!mine.is_empty() && !theirs.is_empty(), "both members read new records: {mine:?} {theirs:?}");
    let all: BTreeSet<&String> = mine.iter().chain(&theirs).collect();
    assert_eq!((all.len(), mine.len() + theirs.len()), (40, 40), "each new record read once");
    drop(joined);

    // Records by time, and deleting groups.
    for (i, ts) in [1_000_000_000_000i64, 1_600_000_000_000, 1_700_000_000_000].iter().enumerate() {
        producer.send(BaseRecord::to("dated").partition(0).key("k").payload(&format!("d{i}")).timestamp(*ts)).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let late = ok(cli(&b, &["consume", "dated", "--from-time", "2020-09-13T12:26:40Z", "--count", "2"], None));
    assert_eq!(late, "d1\nd2\n");
    wait_for_sync(Duration::from_secs(30), || group_state(&b, "mixed").1 == 0);
    ok(cli(&b, &["groups", "delete", "billing", "mixed"], None));
    let groups = ok(cli(&b, &["groups", "list"], None));
    assert!(!groups.contains("billing") && !groups.contains("mixed"), "{groups}");
}
