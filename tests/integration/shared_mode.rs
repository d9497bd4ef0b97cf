//! Shared mode's membership: three gregor processes over one PostgreSQL see one
//! cluster — every broker in Metadata, topics created through any of them, each partition led
//! by one live broker, the same answers from all — and when one is SIGKILLed, the others take
//! its partitions in a higher leader epoch; a broker that joins takes a share; a broker stopped
//! past its lease takes no write when it resumes. Records live in the object store: what was
//! acknowledged survives its leader's SIGKILL and every move of its partition, and committed
//! group offsets survive the group coordinator's.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::share_acknowledge_request::{
    AcknowledgePartition, AcknowledgeTopic, AcknowledgementBatch,
};
use kafka_protocol::messages::{
    BrokerId, DescribeConfigsRequest, DescribeShareGroupOffsetsRequest, FindCoordinatorRequest, GroupId,
    HeartbeatRequest, IncrementalAlterConfigsRequest, InitProducerIdRequest, MetadataRequest, MetadataResponse,
    OffsetFetchRequest, ProduceRequest, ShareAcknowledgeRequest, ShareFetchRequest, ShareFetchResponse,
    ShareGroupHeartbeatRequest, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::common::pg::PgServer;
use crate::common::{batch, BrokerProcess, RawClient};

/// (topic, partition) -> (leader, leader epoch), as one broker's Metadata v12 tells it.
type Leaders = BTreeMap<(String, i32), (i32, i32)>;

/// Metadata v12 for the test's topic and the internal ones (which a listing leaves out until
/// used), whose partitions the lease plan spreads too.
async fn metadata(addr: SocketAddr) -> MetadataResponse {
    let names = ["orders", "__consumer_offsets", "__share_group_state", "__transaction_state"];
    let topics = names
        .iter()
        .map(|n| MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_static_str(n)))))
        .collect();
    let mut c = RawClient::connect(addr).await;
    c.call(12, &MetadataRequest::default().with_topics(Some(topics)).with_allow_auto_topic_creation(false)).await
}

fn leaders(m: &MetadataResponse) -> Leaders {
    let mut out = Leaders::new();
    for t in &m.topics {
        let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
        for p in &t.partitions {
            out.insert((name.clone(), p.partition_index), (p.leader_id.0, p.leader_epoch));
        }
    }
    out
}

fn broker_ids(m: &MetadataResponse) -> Vec<i32> {
    m.brokers.iter().map(|b| b.node_id.0).collect()
}

/// Polls every broker in `addrs` until `check` holds for each one's Metadata, and they agree.
async fn wait_agreed(addrs: &[SocketAddr], what: &str, check: impl Fn(&MetadataResponse) -> bool) -> Leaders {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut views = Vec::new();
        for a in addrs {
            views.push(metadata(*a).await);
        }
        let all_hold = views.iter().all(&check);
        let same = views.windows(2).all(|w| leaders(&w[0]) == leaders(&w[1]) && broker_ids(&w[0]) == broker_ids(&w[1]));
        if all_hold && same {
            return leaders(&views[0]);
        }
        assert!(Instant::now() < deadline, "brokers did not agree on {what} within 30 s: {:?}", views.last());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads the six partitions of `orders` from the start through `bootstrap` until `count`
/// records came (30 s at most): their values, sorted.
async fn read_orders(bootstrap: String, count: usize) -> Vec<String> {
    tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "reader")
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in 0..6 {
            tpl.add_partition_offset("orders", p, Offset::Beginning).unwrap();
        }
        c.assign(&tpl).unwrap();
        let mut values = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while values.len() < count {
            assert!(Instant::now() < deadline, "read {} of {count} records: {values:?}", values.len());
            if let Some(m) = c.poll(Duration::from_millis(100)) {
                let m = m.expect("consume");
                values.push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
            }
        }
        // Nothing more comes (no duplicates past the count).
        let quiet = Instant::now() + Duration::from_millis(500);
        while Instant::now() < quiet {
            if let Some(m) = c.poll(Duration::from_millis(100)) {
                values.push(String::from_utf8(m.expect("consume").payload().unwrap().to_vec()).unwrap());
            }
        }
        values.sort();
        values
    })
    .await
    .unwrap()
}

fn values(range: std::ops::Range<usize>) -> Vec<String> {
    let mut v: Vec<String> = range.map(|i| format!("v{i}")).collect();
    v.sort();
    v
}

fn spawn(dir: &std::path::Path, node: i32, pg: &str, objects: &str) -> BrokerProcess {
    spawn_timed(dir, node, pg, objects, "3000", "300")
}

/// [`spawn`] with its own lease (`session_timeout_ms`) and heartbeat interval.
fn spawn_timed(
    dir: &std::path::Path,
    node: i32,
    pg: &str,
    objects: &str,
    session: &str,
    heartbeat: &str,
) -> BrokerProcess {
    spawn_with_env(
        dir,
        node,
        pg,
        objects,
        &[("GREGOR__CLUSTER__SESSION_TIMEOUT_MS", session), ("GREGOR__CLUSTER__HEARTBEAT_INTERVAL_MS", heartbeat)],
    )
}

/// A fresh object store directory under `dir`, as a `file://` URL.
fn objects_in(dir: &std::path::Path) -> String {
    let objects = dir.join("objects");
    std::fs::create_dir_all(&objects).unwrap();
    format!("file://{}", objects.display())
}

/// A broker of the cluster with these settings besides its node id, PostgreSQL and objects.
fn spawn_with_env(dir: &std::path::Path, node: i32, pg: &str, objects: &str, extra: &[(&str, &str)]) -> BrokerProcess {
    let node = node.to_string();
    let mut env = vec![
        ("GREGOR__SERVER__NODE_ID", node.as_str()),
        ("GREGOR__CLUSTER__POSTGRES_URL", pg),
        ("GREGOR__CLUSTER__OBJECT_STORE_URL", objects),
        ("RUST_LOG", "info"),
    ];
    env.extend_from_slice(extra);
    BrokerProcess::spawn(&dir.join(format!("data-{node}")), &env)
}

/// A topic created through one broker is found at once through another, although that one's
/// next heartbeat (when it reloads the cluster's view) is a minute away: a Metadata request
/// naming a topic it does not know makes it look in the store. Consumers told that a topic does
/// not exist wait for their next metadata refresh (five minutes by default in librdkafka and
/// kafka-python), which a group right after a CreateTopics through another broker ran into.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_created_through_one_broker_is_found_at_once_through_another() {
    let Some(pg) = PgServer::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let objects = objects_in(tmp.path());
    let brokers: Vec<BrokerProcess> =
        (1..=2).map(|n| spawn_timed(tmp.path(), n, &pg.url, &objects, "180000", "60000")).collect();
    let ask_for = |names: &[&'static str]| {
        MetadataRequest::default()
            .with_topics(Some(
                names
                    .iter()
                    .map(|n| MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_static_str(n)))))
                    .collect(),
            ))
            .with_allow_auto_topic_creation(false)
    };
    // Broker 2's first tick (at start) is over once it serves the internal partitions it took
    // when it joined: from then on its view is only reloaded by its next heartbeat.
    let internal = ask_for(&["__consumer_offsets", "__share_group_state", "__transaction_state"]);
    let started = Instant::now();
    loop {
        let m = RawClient::connect(brokers[1].addr).await.call(12, &internal).await;
        let parts: Vec<_> = m.topics.iter().flat_map(|t| t.partitions.iter()).collect();
        if parts.len() == 3 && parts.iter().all(|p| p.leader_id.0 > 0) && parts.iter().any(|p| p.leader_id.0 == 2) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "broker 2 did not start leading: {m:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A request for a missing topic makes broker 2 load its view now, so the creation below
    // falls within the 250 ms before it may load again: the first answer must still know it.
    let missing = RawClient::connect(brokers[1].addr).await.call(12, &ask_for(&["missing"])).await;
    assert_ne!(missing.topics[0].error_code, 0, "{missing:?}");
    RawClient::connect(brokers[0].addr).await.create_topic("fresh", 3).await;
    let ask = ask_for(&["fresh"]);
    let first = RawClient::connect(brokers[1].addr).await.call(12, &ask).await;
    assert_eq!(first.topics[0].error_code, 0, "broker 2 answered from a view older than the creation: {first:?}");
    // Well inside the minute before broker 2's next heartbeat.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = RawClient::connect(brokers[1].addr).await.call(12, &ask).await;
        let t = &m.topics[0];
        // Every partition with its leader (some are broker 2's, which rebuilds them at once).
        if t.error_code == 0 && t.partitions.len() == 3 && t.partitions.iter().all(|p| p.leader_id.0 > 0) {
            break;
        }
        assert!(Instant::now() < deadline, "broker 2 does not know the topic broker 1 created: {t:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_brokers_share_topics_and_leaders_and_take_over_a_dead_ones_partitions() {
    let Some(pg) = PgServer::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let objects = objects_in(tmp.path());
    let mut brokers: Vec<BrokerProcess> = (1..=3).map(|n| spawn(tmp.path(), n, &pg.url, &objects)).collect();
    let addrs: Vec<SocketAddr> = brokers.iter().map(|b| b.addr).collect();

    // A topic created through broker 2 is known to all three, each partition led by one of them.
    let mut admin = RawClient::connect(addrs[1]).await;
    admin.create_topic("orders", 6).await;
    let all_led = |m: &MetadataResponse| {
        broker_ids(m) == [1, 2, 3]
            && m.topics.iter().all(|t| t.error_code == 0)
            && leaders(m).values().all(|(l, _)| (1..=3).contains(l))
    };
    let before = wait_agreed(&addrs, "three brokers leading orders", all_led).await;
    let orders: Vec<i32> = before.iter().filter(|((t, _), _)| t == "orders").map(|(_, (l, _))| *l).collect();
    assert_eq!(orders.len(), 6);
    // Nine partitions (six and the three internal topics') over three brokers: three each.
    let mut per_broker = BTreeMap::new();
    for (l, _) in before.values() {
        *per_broker.entry(*l).or_insert(0) += 1;
    }
    assert_eq!(per_broker.values().copied().collect::<Vec<_>>(), [3, 3, 3], "leases not spread evenly: {before:?}");

    // A client bootstrapped through broker 1 alone produces to every partition's leader.
    let config =
        ClientConfig::new().set("bootstrap.servers", addrs[0].to_string()).set("message.timeout.ms", "20000").clone();
    let producer: FutureProducer = config.clone().set("enable.idempotence", "true").create().unwrap();
    let mut written = std::collections::BTreeSet::new();
    for i in 0..60 {
        let (key, value) = (format!("k{i}"), format!("v{i}"));
        let sent = producer.send(FutureRecord::to("orders").key(&key).payload(&value), Duration::ZERO).await;
        let delivery = sent.unwrap_or_else(|(e, _)| panic!("producing {value}: {e}"));
        written.insert(delivery.partition);
    }
    assert!(written.len() > 3, "60 keys went to only {written:?}");
    // The leaders count their commits: the 60 records went one by one, so at least 60 batches.
    let total = |series: &str| -> f64 {
        brokers.iter().map(|b| crate::http::sample(&crate::http::metrics_of(b), series).unwrap_or(0.0)).sum()
    };
    assert!(total("gregor_shared_committed_batches_total") >= 60.0, "{}", crate::http::metrics_of(&brokers[0]));
    assert!(total("gregor_shared_commits_total{outcome=\"committed\"}") > 0.0);
    assert!(total("gregor_shared_commit_duration_seconds_count") > 0.0);
    assert!(total("gregor_shared_object_bytes_total") > 60.0 * 60.0, "each batch is at least 60 bytes");

    // Every broker names the same group coordinator: the leader of __consumer_offsets.
    let coordinator = before[&("__consumer_offsets".to_string(), 0)].0;
    for a in &addrs {
        let mut c = RawClient::connect(*a).await;
        let req = FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g"));
        let resp = c.call(3, &req).await;
        assert_eq!((resp.error_code, resp.node_id), (0, BrokerId(coordinator)), "{resp:?}");
    }

    // Only the coordinators serve group and transactional requests: the others answer
    // NOT_COORDINATOR (16), so clients find the coordinator again instead of splitting a group
    // or a transactional id between two brokers.
    let txn_coordinator = before[&("__transaction_state".to_string(), 0)].0;
    for (a, id) in addrs.iter().zip(1..) {
        let mut c = RawClient::connect(*a).await;
        let heartbeat = HeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .with_member_id(StrBytes::from_static_str("m"))
            .with_generation_id(1);
        let code = c.call(4, &heartbeat).await.error_code;
        assert_eq!(code == 16, id != coordinator, "Heartbeat to broker {id} (coordinator {coordinator}): {code}");
        let fetch = OffsetFetchRequest::default().with_groups(vec![
            OffsetFetchRequestGroup::default().with_group_id(GroupId(StrBytes::from_static_str("g")))
        ]);
        let code = c.call(8, &fetch).await.groups[0].error_code;
        assert_eq!(code == 16, id != coordinator, "OffsetFetch to broker {id} (coordinator {coordinator}): {code}");
        let init = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("t"))))
            .with_transaction_timeout_ms(60000);
        let code = c.call(4, &init).await.error_code;
        let expected = if id == txn_coordinator { 0 } else { 16 };
        assert_eq!(code, expected, "transactional InitProducerId to broker {id} (coordinator {txn_coordinator})");
    }

    // Idempotent producers that initialise through different brokers get different producer
    // ids (the same id on one partition would make one producer's records look like the
    // other's retries, and be dropped as duplicates).
    let mut ids = std::collections::BTreeSet::new();
    for a in &addrs {
        let mut c = RawClient::connect(*a).await;
        for _ in 0..2 {
            let resp = c.call(4, &InitProducerIdRequest::default().with_transaction_timeout_ms(60000)).await;
            assert_eq!(resp.error_code, 0, "{resp:?}");
            assert!(ids.insert(resp.producer_id.0), "producer id {} handed out twice: {ids:?}", resp.producer_id.0);
        }
    }

    // SIGKILL broker 3: after its lease runs out, 1 and 2 lead everything, in higher epochs.
    brokers[2].kill_9();
    let survivors = &addrs[..2];
    let after = wait_agreed(survivors, "the dead broker's partitions moving", |m| {
        broker_ids(m) == [1, 2] && leaders(m).values().all(|(l, _)| *l == 1 || *l == 2)
    })
    .await;
    for (key, (leader, epoch)) in &before {
        let (now_leader, now_epoch) = after[key];
        if *leader == 3 {
            assert!(now_epoch > *epoch, "{key:?} moved from broker 3 without a new epoch");
        } else {
            assert_eq!((now_leader, now_epoch), (*leader, *epoch), "{key:?} moved though its leader lives");
        }
    }

    // Nothing acknowledged was lost with broker 3: its partitions' logs were rebuilt from the
    // objects by their new leaders, with the producer state (the idempotent producer goes on).
    for i in 60..80 {
        let (key, value) = (format!("k{i}"), format!("v{i}"));
        let sent = producer.send(FutureRecord::to("orders").key(&key).payload(&value), Duration::ZERO).await;
        sent.unwrap_or_else(|(e, _)| panic!("producing {value} after the failover: {e}"));
    }
    assert_eq!(read_orders(addrs[0].to_string(), 80).await, values(0..80));

    // A fourth broker joins and takes a share, without moving more than that share.
    brokers.push(spawn(tmp.path(), 4, &pg.url, &objects));
    let addrs = [addrs[0], addrs[1], brokers[3].addr];
    let joined = wait_agreed(&addrs, "the new broker taking a share", |m| {
        broker_ids(m) == [1, 2, 4] && leaders(m).values().filter(|(l, _)| *l == 4).count() == 3
    })
    .await;
    let moved = after.iter().filter(|(k, (l, _))| joined[*k].0 != *l).count();
    assert_eq!(moved, 3, "only the new broker's share moves: {after:?} -> {joined:?}");

    // Fencing: broker 1 stopped (SIGSTOP) past its lease loses its partitions; resumed, it
    // takes no write for them, whether or not it has reloaded the cluster's view yet.
    let (&(_, partition), &(_, epoch)) =
        joined.iter().find(|((t, _), (l, _))| t == "orders" && *l == 1).expect("broker 1 leads some");
    brokers[0].signal(libc::SIGSTOP);
    let others = [addrs[1], addrs[2]];
    wait_agreed(&others, "broker 1's partitions moving", |m| broker_ids(m) == [2, 4]).await;
    let mut c = RawClient::connect(addrs[0]).await;
    brokers[0].signal(libc::SIGCONT);
    let produce =
        ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![TopicProduceData::default(
        )
        .with_name(TopicName(StrBytes::from_static_str("orders")))
        .with_partition_data(vec![PartitionProduceData::default()
            .with_index(partition)
            .with_records(Some(batch(1, 0)))])]);
    let answer = c.call(9, &produce).await;
    let p = &answer.responses[0].partition_responses[0];
    assert_eq!(
        p.error_code, 6,
        "NOT_LEADER_OR_FOLLOWER from a broker that lost its lease (led in epoch {epoch}): {p:?}"
    );
    // It registers again and gets a share back.
    wait_agreed(&addrs, "broker 1 back with a share", |m| {
        broker_ids(m) == [1, 2, 4] && leaders(m).values().filter(|(l, _)| *l == 1).count() == 3
    })
    .await;
    // Every record is still there, whichever broker now leads its partition.
    assert_eq!(read_orders(addrs[2].to_string(), 80).await, values(0..80));

    // Group offsets survive their coordinator: committed through it, read back from the
    // broker that takes __consumer_offsets over once it is SIGKILLed.
    let bootstrap = addrs.map(|a| a.to_string()).join(",");
    let mut committed = TopicPartitionList::new();
    for p in 0..6 {
        committed.add_partition_offset("orders", p, Offset::Offset(i64::from(p) + 1)).unwrap();
    }
    let to_commit = committed.clone();
    let group = |bootstrap: String| {
        ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", "keeps-offsets")
            .set("enable.auto.commit", "false")
            .create::<BaseConsumer>()
            .unwrap()
    };
    let c = group(bootstrap.clone());
    tokio::task::spawn_blocking(move || c.commit(&to_commit, CommitMode::Sync).expect("commit")).await.unwrap();
    let mut find = RawClient::connect(addrs[0]).await;
    let req = FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("keeps-offsets"));
    let coordinator = find.call(3, &req).await.node_id.0;
    let ids = [1, 2, 4];
    let victim = ids.iter().position(|id| *id == coordinator).expect("a live coordinator");
    brokers[[0, 1, 3][victim]].kill_9();
    let rest: Vec<SocketAddr> = (0..3).filter(|i| *i != victim).map(|i| addrs[i]).collect();
    let rest_ids: Vec<i32> = (0..3).filter(|i| *i != victim).map(|i| ids[i]).collect();
    wait_agreed(&rest, "the group coordinator moving", |m| broker_ids(m) == rest_ids).await;
    let c = group(rest.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(","));
    let fetched = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match c.committed_offsets(committed.clone(), Duration::from_secs(5)) {
                Ok(got) if got.elements().iter().all(|e| e.offset() != Offset::Invalid) => return got,
                other => assert!(Instant::now() < deadline, "no committed offsets after the move: {other:?}"),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .unwrap();
    for e in fetched.elements() {
        assert_eq!(e.offset(), Offset::Offset(i64::from(e.partition()) + 1), "{fetched:?}");
    }
}

/// A broker started before PostgreSQL answers waits for it (a compose stack starts both at
/// once), and stops cleanly on SIGTERM meanwhile; a node id still held by a live broker is
/// waited for too, not a reason to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_waits_for_postgresql_and_for_its_node_id() {
    let Some(mut pg) = PgServer::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let objects = objects_in(tmp.path());
    pg.stop();

    // PostgreSQL is down: the broker keeps trying, and a stop signal ends it cleanly.
    let mut early = spawn(tmp.path(), 1, &pg.url, &objects);
    let waiting = "cannot join the shared-mode cluster yet";
    crate::common::wait_for_sync(Duration::from_secs(20), || early.log().contains(waiting));
    assert!(early.is_running(), "{}", early.log());
    early.signal(libc::SIGTERM);
    let status = early.wait_exit(Duration::from_secs(10)).expect("the waiting broker stops on SIGTERM");
    assert!(status.success(), "{status}: {}", early.log());

    // Started again while PostgreSQL is still down, it joins once PostgreSQL is up.
    let one = spawn(tmp.path(), 1, &pg.url, &objects);
    crate::common::wait_for_sync(Duration::from_secs(20), || one.log().contains(waiting));
    pg.start_again();
    wait_agreed(&[one.addr], "broker 1 alone", |m| broker_ids(m) == [1]).await;

    // A second process with the same node id waits while the first holds its lease, and
    // takes over once the first is gone and its lease has run out.
    let twin_dir = tmp.path().join("twin");
    std::fs::create_dir_all(&twin_dir).unwrap();
    let mut twin = spawn(&twin_dir, 1, &pg.url, &objects);
    crate::common::wait_for_sync(Duration::from_secs(20), || twin.log().contains("node id 1 is registered"));
    assert!(twin.is_running(), "{}", twin.log());
    drop(one);
    wait_agreed(&[twin.addr], "the twin as broker 1", |m| broker_ids(m) == [1]).await;
    assert!(twin.is_running());
}

/// A transaction whose partitions three brokers lead: the leaders that do not coordinate it
/// check each transactional write with the coordinator, and the coordinator writes the commit
/// and abort markers through them (WriteTxnMarkers), the offsets' marker through the group
/// coordinator. A read_committed reader sees exactly the committed records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_spans_partitions_that_every_broker_leads() {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let Some(pg) = PgServer::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let objects = objects_in(tmp.path());
    let brokers: Vec<BrokerProcess> = (1..=3).map(|n| spawn(tmp.path(), n, &pg.url, &objects)).collect();
    let addrs: Vec<SocketAddr> = brokers.iter().map(|b| b.addr).collect();
    RawClient::connect(addrs[0]).await.create_topic("orders", 6).await;
    let all_led = |m: &MetadataResponse| {
        broker_ids(m) == [1, 2, 3]
            && m.topics.iter().all(|t| t.error_code == 0)
            && leaders(m).values().all(|(l, _)| (1..=3).contains(l))
    };
    let view = wait_agreed(&addrs, "three brokers leading orders", all_led).await;
    let led_by: std::collections::BTreeSet<i32> =
        view.iter().filter(|((t, _), _)| t == "orders").map(|(_, (l, _))| *l).collect();
    assert_eq!(led_by.len(), 3, "orders is not spread over the three brokers: {view:?}");

    let bootstrap = addrs.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let t = Duration::from_secs(30);
        let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", &b)
            .set("transactional.id", "spanning")
            .set("linger.ms", "5")
            .create()
            .unwrap();
        producer.init_transactions(t).expect("init_transactions");
        let group: BaseConsumer =
            ClientConfig::new().set("bootstrap.servers", &b).set("group.id", "txn-group").create().unwrap();

        // In rounds, flushed in between: a partition's later batches of the transaction are
        // appended without a new check with the coordinator (the partition shows it open),
        // and the marker must still commit or abort them.
        producer.begin_transaction().unwrap();
        for i in 0..60 {
            let v = format!("committed-{i:02}");
            producer.send(BaseRecord::<(), str>::to("orders").partition(i % 6).payload(&v)).expect("send");
            if i % 12 == 11 {
                producer.flush(t).unwrap();
            }
        }
        let mut offsets = TopicPartitionList::new();
        offsets.add_partition_offset("orders", 0, Offset::Offset(42)).unwrap();
        producer
            .send_offsets_to_transaction(&offsets, &group.group_metadata().unwrap(), t)
            .expect("offsets in the transaction");
        producer.commit_transaction(t).expect("commit over three brokers");

        producer.begin_transaction().unwrap();
        for i in 0..30 {
            let v = format!("aborted-{i:02}");
            producer.send(BaseRecord::<(), str>::to("orders").partition(i % 6).payload(&v)).expect("send");
            if i % 6 == 5 {
                producer.flush(t).unwrap();
            }
        }
        producer.abort_transaction(t).expect("abort over three brokers");

        let reader: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &b)
            .set("group.id", "reader")
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in 0..6 {
            tpl.add_partition_offset("orders", p, Offset::Beginning).unwrap();
        }
        reader.assign(&tpl).unwrap();
        let mut seen = Vec::new();
        let deadline = Instant::now() + t;
        // Until every partition's end is reached: the aborted records would come before it.
        let mut at_end = std::collections::BTreeSet::new();
        while at_end.len() < 6 || seen.len() < 60 {
            assert!(Instant::now() < deadline, "read {} records, at the end of {at_end:?}: {seen:?}", seen.len());
            if let Some(m) = reader.poll(Duration::from_millis(100)) {
                match m {
                    Ok(m) => seen.push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap()),
                    Err(rdkafka::error::KafkaError::PartitionEOF(p)) => {
                        at_end.insert(p);
                    }
                    Err(e) => panic!("consume: {e}"),
                }
            }
        }
        seen.sort();
        let want: Vec<String> = (0..60).map(|i| format!("committed-{i:02}")).collect();
        assert_eq!(seen, want, "read_committed over three leaders");

        let committed = group.committed_offsets(offsets, t).expect("committed offsets");
        let offset = committed.find_partition("orders", 0).map(|e| e.offset());
        assert_eq!(offset, Some(Offset::Offset(42)), "the group's offset committed in the transaction");
    })
    .await
    .unwrap();
}

/// DeleteRecords in shared mode: only the partition's leader takes it, and it answers once the
/// coordination store holds the new log start, so the records stay deleted when the partition
/// moves (its next leader rebuilds the log from there; before, it rebuilt it from offset 0 and
/// the deleted records came back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_records_stay_deleted_when_their_partition_moves() {
    use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{DeleteRecordsRequest, ListOffsetsRequest};

    let Some(pg) = PgServer::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let objects = objects_in(tmp.path());
    let mut brokers: Vec<BrokerProcess> = (1..=2).map(|n| spawn(tmp.path(), n, &pg.url, &objects)).collect();
    let addrs: Vec<SocketAddr> = brokers.iter().map(|b| b.addr).collect();
    RawClient::connect(addrs[0]).await.create_topic("orders", 1).await;
    let led = |m: &MetadataResponse| {
        broker_ids(m) == [1, 2]
            && m.topics.iter().all(|t| t.error_code == 0)
            && leaders(m).values().all(|(l, _)| (1..=2).contains(l))
    };
    let view = wait_agreed(&addrs, "two brokers leading orders", led).await;
    let leader = view[&("orders".to_string(), 0)].0;
    let (at_leader, at_other) = (addrs[leader as usize - 1], addrs[2 - leader as usize]);
    let bootstrap = addrs.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    crate::common::produce_all(ClientConfig::new().set("bootstrap.servers", &bootstrap), "orders", &values(0..12))
        .await;

    let delete = |offset: i64| {
        DeleteRecordsRequest::default().with_timeout_ms(5000).with_topics(vec![DeleteRecordsTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("orders")))
            .with_partitions(vec![DeleteRecordsPartition::default().with_partition_index(0).with_offset(offset)])])
    };
    let p = RawClient::connect(at_other).await.call(2, &delete(6)).await.topics[0].partitions[0].clone();
    assert_eq!((p.error_code, p.low_watermark), (6, -1), "a broker that does not lead the partition refuses");
    let p = RawClient::connect(at_leader).await.call(2, &delete(6)).await.topics[0].partitions[0].clone();
    assert_eq!((p.error_code, p.low_watermark), (0, 6), "the leader takes it");

    // The leader dies; the other broker takes the partition over and starts its log at 6.
    brokers[leader as usize - 1].kill_9();
    let survivor = 3 - leader;
    wait_agreed(&[at_other], "the survivor leading orders", |m| {
        leaders(m).get(&("orders".to_string(), 0)).is_some_and(|(l, _)| *l == survivor)
    })
    .await;
    let list = |timestamp: i64| {
        ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("orders")))
            .with_partitions(vec![ListOffsetsPartition::default().with_partition_index(0).with_timestamp(timestamp)])])
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let earliest = loop {
        let r = RawClient::connect(at_other).await.call(7, &list(-2)).await;
        let p = &r.topics[0].partitions[0];
        if p.error_code == 0 {
            break p.offset;
        }
        assert!(Instant::now() < deadline, "the survivor does not serve orders-0: {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let latest = RawClient::connect(at_other).await.call(7, &list(-1)).await.topics[0].partitions[0].offset;
    assert_eq!((earliest, latest), (6, 12), "the new leader's log: deleted records stay deleted, none lost");
}

/// Topic administration through any broker reaches the others: partitions added through one
/// are led and served by both, configs set through one are what the other describes, and a
/// topic deleted through one is gone from both, with its batch index and the objects none of
/// whose batches is left; the name can then be used again. (Before, shared mode refused
/// CreatePartitions and DeleteTopics, and a config change stayed on the broker that took it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_configs_and_deletions_made_through_one_broker_reach_the_others() {
    use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    use kafka_protocol::messages::{
        CreatePartitionsRequest, DeleteTopicsRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest,
    };

    let Some(pg) = PgServer::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let objects = objects_in(tmp.path());
    let brokers: Vec<BrokerProcess> = (1..=2).map(|n| spawn(tmp.path(), n, &pg.url, &objects)).collect();
    let addrs: Vec<SocketAddr> = brokers.iter().map(|b| b.addr).collect();
    let orders = || TopicName(StrBytes::from_static_str("orders"));
    let led_with = |count: usize| {
        move |m: &MetadataResponse| {
            let t = m.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "orders"));
            broker_ids(m) == [1, 2]
                && t.is_some_and(|t| t.error_code == 0 && t.partitions.len() == count)
                && leaders(m).values().all(|(l, _)| (1..=2).contains(l))
        }
    };
    RawClient::connect(addrs[0]).await.create_topic("orders", 1).await;
    wait_agreed(&addrs, "orders with one partition", led_with(1)).await;

    // Grown through broker 2: both brokers know three partitions, each with a leader.
    let grow = CreatePartitionsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![CreatePartitionsTopic::default().with_name(orders()).with_count(3).with_assignments(None)]);
    let r = RawClient::connect(addrs[1]).await.call(3, &grow).await;
    assert_eq!(r.results[0].error_code, 0, "{r:?}");
    wait_agreed(&addrs, "orders with three partitions", led_with(3)).await;
    let bootstrap = addrs.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    let config = ClientConfig::new().set("bootstrap.servers", &bootstrap).set("partitioner", "random").clone();
    crate::common::produce_all(&config, "orders", &values(0..30)).await;

    // Configured through broker 1: broker 2 describes the same value (after its next heartbeat).
    let set = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(2)
        .with_resource_name(StrBytes::from_static_str("orders"))
        .with_configs(vec![AlterableConfig::default()
            .with_name(StrBytes::from_static_str("retention.ms"))
            .with_config_operation(0)
            .with_value(Some(StrBytes::from_static_str("12345678")))])]);
    let r = RawClient::connect(addrs[0]).await.call(1, &set).await;
    assert_eq!(r.responses[0].error_code, 0, "{r:?}");
    let describe = DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
        .with_resource_type(2)
        .with_resource_name(StrBytes::from_static_str("orders"))
        .with_configuration_keys(Some(vec![StrBytes::from_static_str("retention.ms")]))]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = RawClient::connect(addrs[1]).await.call(4, &describe).await;
        let value = r.results[0].configs.first().and_then(|c| c.value.as_ref()).map(|v| v.to_string());
        if value.as_deref() == Some("12345678") {
            break;
        }
        assert!(Instant::now() < deadline, "broker 2 does not have the config set through broker 1: {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Deleted through broker 2: gone from both, with its batch rows and objects rows.
    let (db, conn) = tokio_postgres::connect(&pg.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let count = |sql: &'static str| {
        let db = &db;
        async move { db.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert!(count("SELECT count(*) FROM objects").await > 0);
    let delete = DeleteTopicsRequest::default().with_timeout_ms(5000).with_topic_names(vec![orders()]);
    let r = RawClient::connect(addrs[1]).await.call(4, &delete).await;
    assert_eq!(r.responses[0].error_code, 0, "{r:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    for a in &addrs {
        loop {
            let m = metadata(*a).await;
            let t = m.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "orders"));
            if t.is_some_and(|t| t.error_code == 3) {
                break;
            }
            assert!(Instant::now() < deadline, "{a} still has the deleted topic: {t:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Its rows go in the sweep that follows the deletion.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (batches, objects) =
            (count("SELECT count(*) FROM batches").await, count("SELECT count(*) FROM objects").await);
        if (batches, objects) == (0, 0) {
            break;
        }
        assert!(Instant::now() < deadline, "{batches} batch rows and {objects} object rows left of the deleted topic");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The name is free again: a new topic of that name, through broker 1, on both.
    RawClient::connect(addrs[0]).await.create_topic("orders", 2).await;
    wait_agreed(&addrs, "the new orders with two partitions", led_with(2)).await;
}

/// Retention in shared mode: what the leader's retention deletes, the store lets go of at the
/// leader's next heartbeat (its batch rows and the objects' rows), and the next leader's log
/// starts there. Before, the store kept every batch and the next leader read them all again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_retention_deletes_the_store_lets_go_of() {
    use rdkafka::producer::FutureProducer;

    let Some(pg) = PgServer::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let objects = objects_in(tmp.path());
    let settings = [
        ("GREGOR__CLUSTER__SESSION_TIMEOUT_MS", "3000"),
        ("GREGOR__CLUSTER__HEARTBEAT_INTERVAL_MS", "300"),
        ("GREGOR__LOG__RETENTION_MS", "3600000"),
        ("GREGOR__LOG__RETENTION_CHECK_INTERVAL_MS", "200"),
    ];
    let mut brokers: Vec<BrokerProcess> =
        (1..=2).map(|n| spawn_with_env(tmp.path(), n, &pg.url, &objects, &settings)).collect();
    let addrs: Vec<SocketAddr> = brokers.iter().map(|b| b.addr).collect();
    RawClient::connect(addrs[0]).await.create_topic("orders", 1).await;
    let view = wait_agreed(&addrs, "two brokers leading orders", |m| {
        broker_ids(m) == [1, 2] && leaders(m).values().all(|(l, _)| (1..=2).contains(l))
    })
    .await;
    let leader = view[&("orders".to_string(), 0)].0;

    // Ten records two hours old: past retention as soon as they are written.
    let bootstrap = addrs.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).set("acks", "all").create().unwrap();
    let old =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64 - 7_200_000;
    for i in 0..10 {
        let v = format!("old-{i}");
        let record = FutureRecord::<str, str>::to("orders").payload(&v).timestamp(old);
        producer.send(record, Duration::ZERO).await.map_err(|(e, _)| e).expect("produce");
    }

    let (db, conn) = tokio_postgres::connect(&pg.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row = db
            .query_one(
                "SELECT p.log_start, (SELECT count(*) FROM batches b WHERE b.topic_id = p.topic_id),
                        (SELECT count(*) FROM objects)
                 FROM partitions p JOIN topics t USING (topic_id) WHERE t.name = 'orders'",
                &[],
            )
            .await
            .unwrap();
        let (start, batches, objects): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        if (start, batches, objects) == (10, 0, 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the store holds log start {start}, {batches} batch rows and {objects} object rows after retention"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The next leader starts at 10.
    brokers[leader as usize - 1].kill_9();
    let survivor = addrs[2 - leader as usize];
    wait_agreed(&[survivor], "the survivor leading orders", |m| {
        leaders(m).get(&("orders".to_string(), 0)).is_some_and(|(l, _)| *l == 3 - leader)
    })
    .await;
    let c = ClientConfig::new().set("bootstrap.servers", survivor.to_string()).set("group.id", "w").clone();
    let (low, high) = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = c.create().unwrap();
        consumer.fetch_watermarks("orders", 0, Duration::from_secs(30)).expect("watermarks")
    })
    .await
    .unwrap();
    assert_eq!((low, high), (10, 10));
}

/// The cluster's security and defaults are the same on every broker: ACLs, SCRAM credentials,
/// client quotas and cluster default broker configs set through one broker hold on the others,
/// and changes made through two brokers at once all stay. Before, each broker kept them in its
/// own data directory: a user created through one broker could not log in to another, an ACL
/// denying writes through one did not stop them through the other, and a default retention set
/// through one applied to the partitions that broker led only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_credentials_quotas_and_broker_defaults_set_through_one_broker_hold_on_every_broker() {
    use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
    use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
    use kafka_protocol::messages::create_acls_request::AclCreation;
    use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
    use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
    use kafka_protocol::messages::{
        AlterClientQuotasRequest, AlterUserScramCredentialsRequest, CreateAclsRequest, DescribeAclsRequest,
        DescribeClientQuotasRequest, DescribeUserScramCredentialsRequest,
    };
    use rdkafka::consumer::BaseConsumer;

    let Some(pg) = PgServer::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let objects = objects_in(tmp.path());
    let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut brokers = Vec::new();
    let mut sasl_ports = Vec::new();
    for node in 1..=2 {
        let (plain, sasl) = (free(), free());
        let listeners = format!("PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl}");
        let node = node.to_string();
        let env = [
            ("GREGOR__SERVER__NODE_ID", node.as_str()),
            ("GREGOR__CLUSTER__POSTGRES_URL", pg.url.as_str()),
            ("GREGOR__CLUSTER__OBJECT_STORE_URL", objects.as_str()),
            ("GREGOR__CLUSTER__SESSION_TIMEOUT_MS", "3000"),
            ("GREGOR__CLUSTER__HEARTBEAT_INTERVAL_MS", "300"),
            ("KAFKA_LISTENERS", listeners.as_str()),
            ("KAFKA_SASL_ENABLED_MECHANISMS", "SCRAM-SHA-256"),
            ("KAFKA_AUTHORIZER_CLASS_NAME", "org.apache.kafka.metadata.authorizer.StandardAuthorizer"),
            ("KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND", "true"),
            ("RUST_LOG", "info"),
        ];
        let addr: SocketAddr = format!("127.0.0.1:{plain}").parse().unwrap();
        brokers.push(BrokerProcess::spawn_with_listeners(&tmp.path().join(format!("data-{node}")), addr, &env));
        sasl_ports.push(sasl);
    }
    let addrs: Vec<SocketAddr> = brokers.iter().map(|b| b.addr).collect();
    RawClient::connect(addrs[0]).await.create_topic("secret", 1).await;
    RawClient::connect(addrs[0]).await.create_topic("open", 1).await;
    wait_agreed(&addrs, "the two brokers", |m| broker_ids(m) == [1, 2] && !leaders(m).is_empty()).await;
    let deadline = || Instant::now() + Duration::from_secs(30);
    let s = |v: &str| StrBytes::from_string(v.to_string());

    // Twelve ACLs created at once, half through each broker: every one of them stays.
    let creations = (0..12).map(|i| {
        let addr = addrs[i % 2];
        let acl = AclCreation::default()
            .with_resource_type(2)
            .with_resource_name(s(&format!("t{i}")))
            .with_resource_pattern_type(3)
            .with_principal(s(&format!("User:u{i}")))
            .with_host(s("*"))
            .with_operation(3)
            .with_permission_type(3);
        tokio::spawn(async move {
            let r =
                RawClient::connect(addr).await.call(3, &CreateAclsRequest::default().with_creations(vec![acl])).await;
            assert_eq!(r.results[0].error_code, 0, "{r:?}");
        })
    });
    for c in creations.collect::<Vec<_>>() {
        c.await.unwrap();
    }
    let all = DescribeAclsRequest::default()
        .with_resource_name_filter(None)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_resource_type_filter(1)
        .with_pattern_type_filter(1)
        .with_operation(1)
        .with_permission_type(1);
    for a in &addrs {
        let until = deadline();
        loop {
            let r = RawClient::connect(*a).await.call(3, &all).await;
            let count: usize = r.resources.iter().map(|r| r.acls.len()).sum();
            if count == 12 {
                break;
            }
            assert!(Instant::now() < until, "{a} has {count} of the 12 ACLs: {r:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // A DENY set through broker 1 stops writes through both.
    let deny = AclCreation::default()
        .with_resource_type(2)
        .with_resource_name(s("secret"))
        .with_resource_pattern_type(3)
        .with_principal(s("User:ANONYMOUS"))
        .with_host(s("*"))
        .with_operation(4)
        .with_permission_type(2);
    let r = RawClient::connect(addrs[0]).await.call(3, &CreateAclsRequest::default().with_creations(vec![deny])).await;
    assert_eq!(r.results[0].error_code, 0, "{r:?}");
    let produce =
        ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![TopicProduceData::default(
        )
        .with_name(TopicName(StrBytes::from_static_str("secret")))
        .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(batch(1, 0)))])]);
    for a in &addrs {
        let until = deadline();
        loop {
            let r = RawClient::connect(*a).await.call(9, &produce).await;
            let code = r.responses[0].partition_responses[0].error_code;
            if code == 29 {
                break;
            }
            assert!(Instant::now() < until, "{a} takes writes an ACL denies (error {code})");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // A user created through broker 1 logs in to broker 2.
    let salt = b"salt-of-bob".to_vec();
    let salted = gregor::auth::scram::salt_password(1, "bob-secret", &salt, 4096);
    let upsert = AlterUserScramCredentialsRequest::default().with_upsertions(vec![ScramCredentialUpsertion::default()
        .with_name(s("bob"))
        .with_mechanism(1)
        .with_iterations(4096)
        .with_salt(salt.into())
        .with_salted_password(salted.into())]);
    let r = RawClient::connect(addrs[0]).await.call(0, &upsert).await;
    assert_eq!(r.results[0].error_code, 0, "{r:?}");
    let login = |port: u16| {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", format!("127.0.0.1:{port}"))
            .set("security.protocol", "sasl_plaintext")
            .set("sasl.mechanisms", "SCRAM-SHA-256")
            .set("sasl.username", "bob")
            .set("sasl.password", "bob-secret")
            .create()
            .unwrap();
        consumer.fetch_metadata(None, Duration::from_secs(3)).map(|m| m.brokers().len())
    };
    let (until, port) = (deadline(), sasl_ports[1]);
    loop {
        match tokio::task::spawn_blocking(move || login(port)).await.unwrap() {
            Ok(n) => {
                assert_eq!(n, 2);
                break;
            }
            Err(e) => assert!(Instant::now() < until, "bob cannot log in to broker 2: {e}"),
        }
    }
    let described = RawClient::connect(addrs[1])
        .await
        .call(
            0,
            &DescribeUserScramCredentialsRequest::default()
                .with_users(Some(vec![UserName::default().with_name(s("bob"))])),
        )
        .await;
    assert_eq!(described.results[0].error_code, 0, "{described:?}");

    // A quota set through broker 2 is described by broker 1.
    let quota = AlterClientQuotasRequest::default().with_entries(vec![EntryData::default()
        .with_entity(vec![EntityData::default().with_entity_type(s("user")).with_entity_name(Some(s("bob")))])
        .with_ops(vec![OpData::default().with_key(s("producer_byte_rate")).with_value(1024.0).with_remove(false)])]);
    let r = RawClient::connect(addrs[1]).await.call(1, &quota).await;
    assert_eq!(r.entries[0].error_code, 0, "{r:?}");
    let describe = DescribeClientQuotasRequest::default().with_components(vec![ComponentData::default()
        .with_entity_type(s("user"))
        .with_match_type(0)
        .with_match(Some(s("bob")))]);
    let until = deadline();
    loop {
        let r = RawClient::connect(addrs[0]).await.call(1, &describe).await;
        let found = r.entries.as_ref().is_some_and(|e| e.len() == 1 && e[0].values[0].value == 1024.0);
        if found {
            break;
        }
        assert!(Instant::now() < until, "broker 1 does not have the quota set through broker 2: {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A cluster default set through broker 2 is in force on broker 1's partitions.
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    use kafka_protocol::messages::{DescribeConfigsRequest, IncrementalAlterConfigsRequest};
    let set = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(4)
        .with_resource_name(s(""))
        .with_configs(vec![AlterableConfig::default()
            .with_name(s("log.retention.ms"))
            .with_config_operation(0)
            .with_value(Some(s("7777777")))])]);
    let r = RawClient::connect(addrs[1]).await.call(1, &set).await;
    assert_eq!(r.responses[0].error_code, 0, "{r:?}");
    let describe = DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
        .with_resource_type(2)
        .with_resource_name(s("open"))
        .with_configuration_keys(Some(vec![s("retention.ms")]))]);
    let until = deadline();
    loop {
        let r = RawClient::connect(addrs[0]).await.call(4, &describe).await;
        let value = r.results[0].configs.first().and_then(|c| c.value.as_ref()).map(|v| v.to_string());
        if value.as_deref() == Some("7777777") {
            break;
        }
        assert!(Instant::now() < until, "broker 1 does not apply the default set through broker 2: {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A security change PostgreSQL does not take (here a lock held on the documents' table; a
/// hung server behaves the same) is refused with a message in bounded time, before the client's
/// own request timeout, and the next change after the store answers again is made. Before, the
/// request waited for as long as the store did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_change_the_store_does_not_take_is_refused_in_bounded_time() {
    use kafka_protocol::messages::create_acls_request::AclCreation;
    use kafka_protocol::messages::CreateAclsRequest;

    let Some(pg) = PgServer::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let objects = format!("file://{}", tmp.path().join("objects").display());
    std::fs::create_dir_all(tmp.path().join("objects")).unwrap();
    let authorizer = [
        ("KAFKA_AUTHORIZER_CLASS_NAME", "org.apache.kafka.metadata.authorizer.StandardAuthorizer"),
        ("KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND", "true"),
    ];
    let broker = spawn_with_env(tmp.path(), 1, &pg.url, &objects, &authorizer);
    let create = |user: &str| {
        CreateAclsRequest::default().with_creations(vec![AclCreation::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("t"))
            .with_resource_pattern_type(3)
            .with_principal(StrBytes::from_string(format!("User:{user}")))
            .with_host(StrBytes::from_static_str("*"))
            .with_operation(3)
            .with_permission_type(3)])
    };
    let r = RawClient::connect(broker.addr).await.call(3, &create("first")).await;
    assert_eq!(r.results[0].error_code, 0, "{r:?}");

    let (mut db, conn) = tokio_postgres::connect(&pg.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let holder = db.transaction().await.unwrap();
    holder.batch_execute("LOCK TABLE documents IN EXCLUSIVE MODE").await.unwrap();
    let asked = Instant::now();
    let r = RawClient::connect(broker.addr).await.call(3, &create("second")).await;
    let result = &r.results[0];
    assert_eq!(result.error_code, -1, "UNKNOWN_SERVER_ERROR: {r:?}");
    let message = result.error_message.as_ref().map(|m| m.to_string()).unwrap_or_default();
    assert!(message.contains("did not answer"), "{message}");
    assert!(asked.elapsed() < Duration::from_secs(20), "answered after {:?}", asked.elapsed());
    holder.rollback().await.unwrap();

    let r = RawClient::connect(broker.addr).await.call(3, &create("third")).await;
    assert_eq!(r.results[0].error_code, 0, "{r:?}");
    let (text,): (String,) = {
        let row = db.query_one("SELECT body FROM documents WHERE name = 'acls'", &[]).await.unwrap();
        (row.get(0),)
    };
    assert!(text.contains("User:first") && text.contains("User:third"), "{text}");
}

/// PostgreSQL that stops answering (here: a proxy in front of it that passes nothing on but
/// keeps the connections open, as a stopped server or a network dropping packets would) does
/// not leave clients without an answer: a CreateTopics is refused REQUEST_TIMED_OUT, a Metadata
/// request naming an unknown topic and an acks=all produce are answered, each within the store
/// timeout (2 s here) and well before a client's own 30 s. When it answers again the broker
/// connects anew and takes topics and writes, and what it acknowledged before is still there.
/// (Before, all three waited for as long as the connection stayed stuck.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_answers_in_bounded_time_while_postgresql_does_not_and_recovers_when_it_does() {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{CreateTopicsRequest, ListOffsetsRequest};

    let Some(pg) = PgServer::start() else { return };
    let proxy = crate::common::StallingProxy::start(SocketAddr::from(([127, 0, 0, 1], pg.port()))).await;
    let url = format!("host=127.0.0.1 port={} user=gregor dbname=postgres", proxy.addr.port());
    let tmp = tempfile::tempdir().unwrap();
    let objects = format!("file://{}", tmp.path().join("objects").display());
    std::fs::create_dir_all(tmp.path().join("objects")).unwrap();
    let timing = [
        ("GREGOR__CLUSTER__SESSION_TIMEOUT_MS", "3000"),
        ("GREGOR__CLUSTER__HEARTBEAT_INTERVAL_MS", "300"),
        ("GREGOR__CLUSTER__STORE_TIMEOUT_MS", "2000"),
    ];
    let broker = spawn_with_env(tmp.path(), 1, &url, &objects, &timing);
    let create = |name: &'static str| {
        CreateTopicsRequest::default().with_timeout_ms(30_000).with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(name)))
            .with_num_partitions(1)
            .with_replication_factor(1)])
    };
    let produce = || {
        ProduceRequest::default().with_acks(-1).with_timeout_ms(30_000).with_topic_data(vec![
            TopicProduceData::default().with_name(TopicName(StrBytes::from_static_str("kept"))).with_partition_data(
                vec![PartitionProduceData::default().with_index(0).with_records(Some(batch(1, 0)))],
            ),
        ])
    };
    // Every answer (error code, base offset), for the message of a failed check.
    let answers = std::sync::Mutex::new(Vec::new());
    let produced = |r: &kafka_protocol::messages::ProduceResponse| {
        let p = &r.responses[0].partition_responses[0];
        answers.lock().unwrap().push((p.error_code, p.base_offset));
        p.error_code
    };
    RawClient::connect(broker.addr).await.create_topic("kept", 1).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while produced(&RawClient::connect(broker.addr).await.call(9, &produce()).await) != 0 {
        assert!(Instant::now() < deadline, "the broker did not take a write for its new topic");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    proxy.stall();
    let asked = Instant::now();
    let r = RawClient::connect(broker.addr).await.call(7, &create("stalled")).await;
    let message = r.topics[0].error_message.as_ref().map(|m| m.to_string()).unwrap_or_default();
    assert_eq!(r.topics[0].error_code, 7, "REQUEST_TIMED_OUT: {r:?}");
    assert!(message.contains("did not answer"), "{message}");
    assert!(asked.elapsed() < Duration::from_secs(10), "CreateTopics answered after {:?}", asked.elapsed());

    let asked = Instant::now();
    let unknown = MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_static_str("nowhere"))));
    let m: MetadataResponse = RawClient::connect(broker.addr)
        .await
        .call(12, &MetadataRequest::default().with_topics(Some(vec![unknown])).with_allow_auto_topic_creation(false))
        .await;
    assert_eq!(m.topics[0].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION: {m:?}");
    assert!(asked.elapsed() < Duration::from_secs(10), "Metadata answered after {:?}", asked.elapsed());

    let asked = Instant::now();
    let r = RawClient::connect(broker.addr).await.call(9, &produce()).await;
    assert_ne!(produced(&r), 0, "an acks=all write acknowledged while the store does not answer: {r:?}");
    assert!(asked.elapsed() < Duration::from_secs(10), "Produce answered after {:?}", asked.elapsed());

    proxy.flow();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = RawClient::connect(broker.addr).await.call(7, &create("after")).await;
        if r.topics[0].error_code == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no topic creation once the store answers again: {r:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while produced(&RawClient::connect(broker.addr).await.call(9, &produce()).await) != 0 {
        assert!(Instant::now() < deadline, "no write taken once the store answers again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let list = |timestamp: i64| {
        ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("kept")))
            .with_partitions(vec![ListOffsetsPartition::default().with_partition_index(0).with_timestamp(timestamp)])])
    };
    let bounds = |r: kafka_protocol::messages::ListOffsetsResponse| r.topics[0].partitions[0].offset;
    let earliest = bounds(RawClient::connect(broker.addr).await.call(7, &list(-2)).await);
    let latest = bounds(RawClient::connect(broker.addr).await.call(7, &list(-1)).await);
    // The write refused while stalled may have landed all the same (its outcome was unknown).
    assert!(
        earliest == 0 && (2..=3).contains(&latest),
        "the log is [{earliest}, {latest}) after the produces answered {:?}; the broker's log:\n{}",
        answers.lock().unwrap(),
        broker.log()
    );
}

/// A ShareFetch of one partition of `orders` for member `member` of share group `sg`.
fn share_fetch(member: &str, epoch: i32, topic: uuid::Uuid, partition: i32) -> ShareFetchRequest {
    use kafka_protocol::messages::share_fetch_request::{FetchPartition, FetchTopic};
    ShareFetchRequest::default()
        .with_group_id(Some(GroupId(StrBytes::from_static_str("sg"))))
        .with_member_id(Some(StrBytes::from_string(member.to_string())))
        .with_share_session_epoch(epoch)
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_max_records(100)
        .with_batch_size(100)
        .with_topics(vec![FetchTopic::default()
            .with_topic_id(topic)
            .with_partitions(vec![FetchPartition::default().with_partition_index(partition)])])
}

/// The one partition of a share response: (error code, leader it names, acquired records as
/// (first, last, delivery count)).
fn share_fetched(r: &ShareFetchResponse) -> (i16, i32, Vec<(i64, i64, i16)>) {
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    // A partition with nothing to say is left out of the answer.
    let Some(p) = r.responses.first().and_then(|t| t.partitions.first()) else { return (0, -1, Vec::new()) };
    let acquired = p.acquired_records.iter().map(|a| (a.first_offset, a.last_offset, a.delivery_count)).collect();
    (p.error_code, p.current_leader.leader_id, acquired)
}

/// Two brokers over one PostgreSQL, `orders` (6 partitions) led by both, ten records `s0`..`s9`
/// in a partition the broker not coordinating groups leads, and share group `sg` set to start
/// at the earliest offset (set through the coordinator, taken up by the leader).
struct ShareCluster {
    // Dropped last: the brokers stop before PostgreSQL and the directory go.
    brokers: Vec<BrokerProcess>,
    addrs: Vec<SocketAddr>,
    coordinator: i32,
    leader: i32,
    partition: i32,
    topic_id: uuid::Uuid,
    at_leader: RawClient,
    at_coordinator: RawClient,
    _tmp: tempfile::TempDir,
    _pg: PgServer,
}

/// Starts broker `node` of a test cluster in a directory, over PostgreSQL and an object store.
type Spawner = dyn Fn(&std::path::Path, i32, &str, &str) -> BrokerProcess;

impl ShareCluster {
    async fn start() -> Option<Self> {
        Self::start_with(&spawn).await
    }

    async fn start_with(spawn: &Spawner) -> Option<Self> {
        let pg = PgServer::start()?;
        let tmp = tempfile::tempdir().unwrap();
        let objects = tmp.path().join("objects");
        std::fs::create_dir_all(&objects).unwrap();
        let objects = format!("file://{}", objects.display());
        let brokers: Vec<BrokerProcess> = (1..=2).map(|n| spawn(tmp.path(), n, &pg.url, &objects)).collect();
        let addrs: Vec<SocketAddr> = brokers.iter().map(|b| b.addr).collect();
        RawClient::connect(addrs[0]).await.create_topic("orders", 6).await;
        let led = wait_agreed(&addrs, "two brokers leading orders", |m| {
            broker_ids(m) == [1, 2]
                && m.topics.iter().all(|t| t.error_code == 0)
                && leaders(m).values().all(|(l, _)| (1..=2).contains(l))
        })
        .await;
        let coordinator = led[&("__consumer_offsets".to_string(), 0)].0;
        let leader = 3 - coordinator;
        let partition = led
            .iter()
            .find(|((t, _), (l, _))| t == "orders" && *l == leader)
            .map(|((_, p), _)| *p)
            .expect("each broker leads some partitions of orders");
        let topic_id = metadata(addrs[0])
            .await
            .topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "orders"))
            .unwrap()
            .topic_id;
        let mut cluster = ShareCluster {
            at_leader: RawClient::connect(addrs[leader as usize - 1]).await,
            at_coordinator: RawClient::connect(addrs[coordinator as usize - 1]).await,
            brokers,
            addrs,
            coordinator,
            leader,
            partition,
            topic_id,
            _tmp: tmp,
            _pg: pg,
        };
        cluster.produce(10).await;
        // Group configs are the cluster's: set through the coordinator (as librdkafka sends
        // them to the controller), the leader takes them up at its next heartbeat.
        cluster.set_offset_reset(Some("earliest")).await;
        Some(cluster)
    }

    /// Produces `count` records to the partition, acks=all.
    async fn produce(&self, count: usize) {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", self.addrs[0].to_string())
            .set("acks", "all")
            .create()
            .unwrap();
        for i in 0..count {
            let value = format!("s{i}");
            let record = FutureRecord::<str, str>::to("orders").partition(self.partition).payload(&value);
            producer.send(record, Duration::ZERO).await.unwrap_or_else(|(e, _)| panic!("producing {value}: {e}"));
        }
    }

    /// Sets (`None`: deletes) `sg`'s `share.auto.offset.reset` through the coordinator and
    /// waits until the leader reports it (`None`: back at the default, latest).
    async fn set_offset_reset(&mut self, value: Option<&'static str>) {
        use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
        use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
        if let Some(value) = value {
            let set = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
                .with_resource_type(32)
                .with_resource_name(StrBytes::from_static_str("sg"))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(StrBytes::from_static_str("share.auto.offset.reset"))
                    .with_config_operation(0)
                    .with_value(Some(StrBytes::from_static_str(value)))])]);
            let set = self.at_coordinator.call(1, &set).await;
            assert_eq!(set.responses[0].error_code, 0, "{set:?}");
        }
        let describe = DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(32)
            .with_resource_name(StrBytes::from_static_str("sg"))
            .with_configuration_keys(Some(vec![StrBytes::from_static_str("share.auto.offset.reset")]))]);
        let wanted = value.unwrap_or("latest");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = self.at_leader.call(4, &describe).await;
            let got = r.results[0].configs.first().and_then(|c| c.value.as_ref()).map(|v| v.to_string());
            if got.as_deref() == Some(wanted) {
                return;
            }
            assert!(Instant::now() < deadline, "the leader did not take up {wanted} within 10 s: {r:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Member `member` joins `sg` (subscribed to `orders`) at the coordinator.
    async fn join(&mut self, member: &str) {
        let join = ShareGroupHeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("sg")))
            .with_member_id(StrBytes::from_string(member.to_string()))
            .with_member_epoch(0)
            .with_subscribed_topic_names(Some(vec![TopicName(StrBytes::from_static_str("orders"))]));
        let joined = self.at_coordinator.call(1, &join).await;
        assert_eq!(joined.error_code, 0, "{:?}", joined.error_message);
    }

    /// Member `member` leaves `sg`.
    async fn leave(&mut self, member: &str) {
        let leave = ShareGroupHeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("sg")))
            .with_member_id(StrBytes::from_string(member.to_string()))
            .with_member_epoch(-1);
        let left = self.at_coordinator.call(1, &leave).await;
        assert_eq!(left.error_code, 0, "{:?}", left.error_message);
    }

    /// Member `member` acknowledges `first..=last` of the partition with `kind` (1 accept,
    /// 2 release) in its share session's epoch 1.
    async fn acknowledge(&mut self, member: &str, first: i64, last: i64, kind: i8) {
        let ack = ShareAcknowledgeRequest::default()
            .with_group_id(Some(GroupId(StrBytes::from_static_str("sg"))))
            .with_member_id(Some(StrBytes::from_string(member.to_string())))
            .with_share_session_epoch(1)
            .with_topics(vec![AcknowledgeTopic::default().with_topic_id(self.topic_id).with_partitions(vec![
                AcknowledgePartition::default().with_partition_index(self.partition).with_acknowledgement_batches(
                    vec![AcknowledgementBatch::default()
                        .with_first_offset(first)
                        .with_last_offset(last)
                        .with_acknowledge_types(vec![kind])],
                ),
            ])]);
        let r = self.at_leader.call(1, &ack).await;
        assert_eq!((r.error_code, r.responses[0].partitions[0].error_code), (0, 0), "{r:?}");
    }

    /// `sg`'s start offsets as the coordinator describes them: (partition, start offset).
    async fn start_offsets(&mut self) -> Vec<(i32, i64)> {
        use kafka_protocol::messages::describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup;
        let describe = DescribeShareGroupOffsetsRequest::default().with_groups(vec![
            DescribeShareGroupOffsetsRequestGroup::default()
                .with_group_id(GroupId(StrBytes::from_static_str("sg")))
                .with_topics(None),
        ]);
        let d = self.at_coordinator.call(0, &describe).await;
        let g = &d.groups[0];
        assert_eq!(g.error_code, 0, "{:?}", g.error_message);
        g.topics.iter().flat_map(|t| &t.partitions).map(|p| (p.partition_index, p.start_offset)).collect()
    }
}

/// A share group's records are handed out by each partition's leader, whichever broker
/// coordinates the group, and what the leader keeps of them (the start offset, the records in
/// flight with their deliveries) is in the store before it answers: the broker that takes the
/// partition over after the leader's SIGKILL delivers nothing accepted again, and what was in
/// flight with its deliveries counted. The coordinator describes the group's start offsets
/// from the store, for partitions it does not lead; a group config set through one broker
/// holds on the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_partitions_state_follows_its_partition_to_the_next_leader() {
    let Some(mut c) = ShareCluster::start().await else { return };
    let (coordinator, leader, partition, topic_id) = (c.coordinator, c.leader, c.partition, c.topic_id);

    // The member joins at the coordinator; the coordinator hands out nothing of a partition it
    // does not lead, and names the leader.
    c.join("m").await;
    let r = c.at_coordinator.call(1, &share_fetch("m", 0, topic_id, partition)).await;
    assert_eq!(share_fetched(&r), (6, leader, vec![]), "NOT_LEADER_OR_FOLLOWER naming the leader: {r:?}");

    // The leader hands out the ten records; the member accepts the first four.
    let r = c.at_leader.call(1, &share_fetch("m", 0, topic_id, partition)).await;
    assert_eq!(share_fetched(&r), (0, leader, vec![(0, 9, 1)]), "{r:?}");
    c.acknowledge("m", 0, 3, 1).await;

    // The coordinator reads the group's start offsets from the store.
    assert_eq!(c.start_offsets().await, [(partition, 4)]);

    // The leader dies with six records in flight. The survivor takes the partition over and
    // hands out those six, each delivered once before, and nothing that was accepted.
    c.brokers[leader as usize - 1].kill_9();
    let survivor = [c.addrs[coordinator as usize - 1]];
    wait_agreed(&survivor, "the survivor leading every partition", |m| broker_ids(m) == [coordinator]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let got = loop {
        let r = c.at_coordinator.call(1, &share_fetch("m", 0, topic_id, partition)).await;
        let (code, _, acquired) = share_fetched(&r);
        if code == 0 && !acquired.is_empty() {
            break acquired;
        }
        // Until its log is rebuilt, the partition is not served (NOT_LEADER_OR_FOLLOWER).
        assert!(code == 6 || code == 0, "{r:?}");
        assert!(Instant::now() < deadline, "the survivor handed out nothing within 30 s: {r:?}");
        // A new share session each time: the refused one was not opened for this partition.
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(got, [(4, 9, 2)], "records in flight at the leader's death, delivered a second time");
}

/// AlterShareGroupOffsets, DeleteShareGroupOffsets and DeleteGroups reach a share group's
/// coordinator, but its share-partitions are held by their partitions' leaders: the
/// coordinator has each leader start them afresh (and write them) before it answers, so the
/// next fetch at the leader starts where the admin said. Before, shared mode refused the first
/// two (INVALID_REQUEST), and after DeleteGroups the leader went on handing out the deleted
/// group's records from what it still held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_groups_offsets_are_altered_and_deleted_at_its_partitions_leader() {
    use kafka_protocol::messages::alter_share_group_offsets_request::{
        AlterShareGroupOffsetsRequestPartition, AlterShareGroupOffsetsRequestTopic,
    };
    use kafka_protocol::messages::delete_share_group_offsets_request::DeleteShareGroupOffsetsRequestTopic;
    use kafka_protocol::messages::{
        AlterShareGroupOffsetsRequest, DeleteGroupsRequest, DeleteShareGroupOffsetsRequest,
    };
    let Some(mut c) = ShareCluster::start().await else { return };
    let (leader, partition, topic_id) = (c.leader, c.partition, c.topic_id);
    let orders = || TopicName(StrBytes::from_static_str("orders"));
    let alter_to = |start: i64| {
        AlterShareGroupOffsetsRequest::default().with_group_id(GroupId(StrBytes::from_static_str("sg"))).with_topics(
            vec![AlterShareGroupOffsetsRequestTopic::default().with_topic_name(orders()).with_partitions(vec![
                AlterShareGroupOffsetsRequestPartition::default()
                    .with_partition_index(partition)
                    .with_start_offset(start),
            ])],
        )
    };
    // A member takes the ten records and accepts the first four.
    c.join("m1").await;
    let r = c.at_leader.call(1, &share_fetch("m1", 0, topic_id, partition)).await;
    assert_eq!(share_fetched(&r), (0, leader, vec![(0, 9, 1)]), "{r:?}");
    c.acknowledge("m1", 0, 3, 1).await;

    // Not while the group has a member.
    let r = c.at_coordinator.call(0, &alter_to(8)).await;
    assert_eq!(r.error_code, 68, "NON_EMPTY_GROUP: {r:?}");
    c.leave("m1").await;

    // Altered: the leader starts the share-partition at 8, dropping what m1 still held.
    let r = c.at_coordinator.call(0, &alter_to(8)).await;
    assert_eq!(r.error_code, 0, "{r:?}");
    let p = &r.responses[0].partitions[0];
    assert_eq!((p.partition_index, p.error_code), (partition, 0), "{r:?}");
    assert_eq!(c.start_offsets().await, [(partition, 8)]);
    c.join("m2").await;
    let r = c.at_leader.call(1, &share_fetch("m2", 0, topic_id, partition)).await;
    assert_eq!(share_fetched(&r), (0, leader, vec![(8, 9, 1)]), "{r:?}");
    c.leave("m2").await;

    // Deleted: the next fetch starts from share.auto.offset.reset (earliest).
    let delete = DeleteShareGroupOffsetsRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("sg")))
        .with_topics(vec![DeleteShareGroupOffsetsRequestTopic::default().with_topic_name(orders())]);
    let r = c.at_coordinator.call(0, &delete).await;
    assert_eq!((r.error_code, r.responses[0].error_code), (0, 0), "{r:?}");
    assert_eq!(c.start_offsets().await, []);
    c.join("m3").await;
    let r = c.at_leader.call(1, &share_fetch("m3", 0, topic_id, partition)).await;
    assert_eq!(share_fetched(&r), (0, leader, vec![(0, 9, 1)]), "{r:?}");
    // m3 releases them all: available again to the group, delivered once.
    c.acknowledge("m3", 0, 9, 2).await;
    c.leave("m3").await;

    // The group is deleted, its configs with it (back at latest): a group of that name created
    // afterwards gets none of the old records, only what is produced after it started.
    let r = c
        .at_coordinator
        .call(2, &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(StrBytes::from_static_str("sg"))]))
        .await;
    assert_eq!(r.results[0].error_code, 0, "{r:?}");
    c.set_offset_reset(None).await;
    c.join("m4").await;
    let r = c.at_leader.call(1, &share_fetch("m4", 0, topic_id, partition)).await;
    assert_eq!(share_fetched(&r).2, [], "the deleted group's records were handed out again: {r:?}");
    c.produce(1).await;
    let r = c.at_leader.call(1, &share_fetch("m4", 1, topic_id, partition)).await;
    assert_eq!(share_fetched(&r), (0, leader, vec![(10, 10, 1)]), "{r:?}");
}

/// Starts broker `node` of a test cluster with a PLAINTEXT listener for clients and an
/// INTERNAL one of security protocol `internal` the brokers reach each other on, with the
/// TLS settings of `pki` (one certificate for all brokers, client certificates required) and
/// `extra` settings.
fn spawn_internal(
    (dir, node, pg, objects): (&std::path::Path, i32, &str, &str),
    internal: &str,
    pki: &(String, String),
    extra: &[(&str, &str)],
) -> BrokerProcess {
    let free = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (client, port) = (free(), free());
    let listeners = format!("PLAINTEXT://127.0.0.1:{client},INTERNAL://127.0.0.1:{port}");
    let protocols = format!("PLAINTEXT:PLAINTEXT,INTERNAL:{internal}");
    let node = node.to_string();
    let (keystore, ca) = pki;
    let mut env = vec![
        ("GREGOR__SERVER__NODE_ID", node.as_str()),
        ("GREGOR__CLUSTER__POSTGRES_URL", pg),
        ("GREGOR__CLUSTER__OBJECT_STORE_URL", objects),
        ("GREGOR__CLUSTER__SESSION_TIMEOUT_MS", "3000"),
        ("GREGOR__CLUSTER__HEARTBEAT_INTERVAL_MS", "300"),
        ("RUST_LOG", "info"),
        ("KAFKA_LISTENERS", listeners.as_str()),
        ("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", protocols.as_str()),
        ("KAFKA_INTER_BROKER_LISTENER_NAME", "INTERNAL"),
        ("KAFKA_SSL_KEYSTORE_TYPE", "PEM"),
        ("KAFKA_SSL_KEYSTORE_LOCATION", keystore.as_str()),
        ("KAFKA_SSL_TRUSTSTORE_TYPE", "PEM"),
        ("KAFKA_SSL_TRUSTSTORE_LOCATION", ca.as_str()),
        ("KAFKA_SSL_CLIENT_AUTH", "required"),
    ];
    env.extend_from_slice(extra);
    let addr: SocketAddr = format!("127.0.0.1:{client}").parse().unwrap();
    BrokerProcess::spawn_with_listeners(&dir.join(format!("data-{node}")), addr, &env)
}

/// A CA and one broker certificate for 127.0.0.1 in `dir`: the keystore's and the CA's paths.
fn cluster_pki(dir: &std::path::Path) -> (String, String) {
    let pki = crate::tls::Pki::new(dir, "cluster-ca");
    let leaf = pki.leaf("broker", &["127.0.0.1", "localhost"], &[(rcgen::DnType::CommonName, "broker")]);
    (leaf.keystore.display().to_string(), pki.ca.display().to_string())
}

/// Sets `sg` to start at offset `start` through the coordinator, which has the partition's
/// leader start the share-partition afresh over the inter-broker listener; a member joining
/// after is handed records from `start` on.
async fn alter_through_the_leader(c: &mut ShareCluster, start: i64) {
    use kafka_protocol::messages::alter_share_group_offsets_request::{
        AlterShareGroupOffsetsRequestPartition, AlterShareGroupOffsetsRequestTopic,
    };
    use kafka_protocol::messages::AlterShareGroupOffsetsRequest;
    let (leader, partition, topic_id) = (c.leader, c.partition, c.topic_id);
    c.join("m").await;
    let r = c.at_leader.call(1, &share_fetch("m", 0, topic_id, partition)).await;
    assert_eq!(share_fetched(&r), (0, leader, vec![(0, 9, 1)]), "{r:?}");
    c.leave("m").await;
    let alter = AlterShareGroupOffsetsRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("sg")))
        .with_topics(vec![AlterShareGroupOffsetsRequestTopic::default()
            .with_topic_name(TopicName(StrBytes::from_static_str("orders")))
            .with_partitions(vec![AlterShareGroupOffsetsRequestPartition::default()
                .with_partition_index(partition)
                .with_start_offset(start)])]);
    let r = c.at_coordinator.call(0, &alter).await;
    let p = &r.responses[0].partitions[0];
    assert_eq!((r.error_code, p.error_code), (0, 0), "the coordinator could not reach the leader: {r:?}");
    c.join("m2").await;
    let r = c.at_leader.call(1, &share_fetch("m2", 0, topic_id, partition)).await;
    assert_eq!(share_fetched(&r), (0, leader, vec![(start, 9, 1)]), "{r:?}");
}

/// Brokers reach each other over TLS when their inter-broker listener is an SSL one: each
/// verifies the other's certificate against the truststore and presents its own, which the
/// other requires (`ssl.client.auth=required`). Clients use a PLAINTEXT listener beside it.
/// The coordinator of a share group resets a share-partition at its leader through it. Before,
/// a broker refused to dial anything but a PLAINTEXT listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_reach_each_other_over_tls_on_an_ssl_inter_broker_listener() {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = cluster_pki(pki_dir.path());
    let spawn = move |dir: &std::path::Path, node: i32, pg: &str, objects: &str| {
        spawn_internal((dir, node, pg, objects), "SSL", &pki, &[])
    };
    let Some(mut c) = ShareCluster::start_with(&spawn).await else { return };
    alter_through_the_leader(&mut c, 6).await;
}

/// Brokers log in to each other with SCRAM-SHA-512 over TLS when their inter-broker listener
/// is a SASL_SSL one, as the user of the listener's ScramLoginModule entry, whose credentials
/// are the cluster's (created through one broker, kept in PostgreSQL). Until the user exists
/// a broker cannot reach the other; then the coordinator of a share group resets a
/// share-partition at its leader. Before, a SASL inter-broker listener was refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_log_in_to_each_other_on_a_sasl_ssl_inter_broker_listener() {
    use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
    use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
    use kafka_protocol::messages::{AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest};
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = cluster_pki(pki_dir.path());
    let spawn = move |dir: &std::path::Path, node: i32, pg: &str, objects: &str| {
        let login = r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="broker-secret";"#;
        let extra = [
            ("KAFKA_SASL_ENABLED_MECHANISMS", "SCRAM-SHA-512"),
            ("KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL", "SCRAM-SHA-512"),
            ("KAFKA_LISTENER_NAME_INTERNAL_SCRAM___SHA___512_SASL_JAAS_CONFIG", login),
        ];
        spawn_internal((dir, node, pg, objects), "SASL_SSL", &pki, &extra)
    };
    let Some(mut c) = ShareCluster::start_with(&spawn).await else { return };
    let salt = b"broker-salt".to_vec();
    let salted = gregor::auth::scram::salt_password(gregor::auth::scram::SCRAM_SHA_512, "broker-secret", &salt, 4096);
    let upsert = AlterUserScramCredentialsRequest::default().with_upsertions(vec![ScramCredentialUpsertion::default()
        .with_name(StrBytes::from_static_str("broker"))
        .with_mechanism(gregor::auth::scram::SCRAM_SHA_512)
        .with_iterations(4096)
        .with_salt(salt.into())
        .with_salted_password(salted.into())]);
    let r = c.at_coordinator.call(0, &upsert).await;
    assert_eq!(r.results[0].error_code, 0, "{r:?}");
    // The leader checks the coordinator's login: wait until it knows the user.
    let describe = DescribeUserScramCredentialsRequest::default()
        .with_users(Some(vec![UserName::default().with_name(StrBytes::from_static_str("broker"))]));
    let until = Instant::now() + Duration::from_secs(30);
    while c.at_leader.call(0, &describe).await.results[0].error_code != 0 {
        assert!(Instant::now() < until, "the leader never learned of the broker user");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    alter_through_the_leader(&mut c, 4).await;
}

/// Compaction and merging through the store: a compacted topic written in many small commits
/// (each its own object) ends up in the store as its leader's cleaner left it, in few objects
/// of its own, and the broker that takes the partition over after the leader's SIGKILL serves
/// the compacted log: the latest value of every key at its offset, and fewer records than were
/// written. Before, the store kept every batch ever committed, in every small object, and the
/// next leader rebuilt (and served) the whole uncompacted history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_topic_is_compacted_and_merged_in_the_store_and_its_next_leader_serves_it_so() {
    use std::collections::HashMap;

    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

    const N: usize = 400;
    let Some(pg) = PgServer::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let objects = objects_in(tmp.path());
    let settings = [
        ("GREGOR__CLUSTER__SESSION_TIMEOUT_MS", "3000"),
        ("GREGOR__CLUSTER__HEARTBEAT_INTERVAL_MS", "300"),
        ("GREGOR__CLUSTER__MERGE_INTERVAL_MS", "200"),
        ("GREGOR__LOG__CLEANER_BACKOFF_MS", "100"),
    ];
    let mut brokers: Vec<BrokerProcess> =
        (1..=2).map(|n| spawn_with_env(tmp.path(), n, &pg.url, &objects, &settings)).collect();
    let addrs: Vec<SocketAddr> = brokers.iter().map(|b| b.addr).collect();
    wait_agreed(&addrs, "two brokers", |m| broker_ids(m) == [1, 2]).await;
    let bootstrap = addrs.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
    let topic = NewTopic::new("orders", 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("segment.bytes", "2048")
        .set("min.cleanable.dirty.ratio", "0.01");
    let created = admin.create_topics([&topic], &AdminOptions::new()).await.unwrap();
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");
    let view =
        wait_agreed(&addrs, "both brokers knowing orders", |m| leaders(m).contains_key(&("orders".to_string(), 0)))
            .await;
    let leader = view[&("orders".to_string(), 0)].0;

    // Ten keys written 40 times each, a flush every 20 records: many small commits.
    let b = bootstrap.clone();
    let latest = tokio::task::spawn_blocking(move || {
        let p: ThreadedProducer<DefaultProducerContext> =
            ClientConfig::new().set("bootstrap.servers", &b).set("linger.ms", "0").create().unwrap();
        let mut latest: HashMap<String, (String, i64)> = HashMap::new();
        for i in 0..N {
            let (k, v) = (format!("key-{}", i % 10), format!("value-{i}"));
            p.send(BaseRecord::to("orders").partition(0).key(&k).payload(&v)).unwrap();
            latest.insert(k, (v, i as i64));
            if i % 20 == 19 {
                p.flush(Duration::from_secs(20)).unwrap();
            }
        }
        p.flush(Duration::from_secs(20)).unwrap();
        latest
    })
    .await
    .unwrap();

    // The store follows the leader's cleaner, and its batches end up in a few merged objects.
    let (db, conn) = tokio_postgres::connect(&pg.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let count = async |sql: &str| -> i64 {
        let sql = format!("SELECT {sql} FROM batches b JOIN topics t USING (topic_id) WHERE t.name = 'orders'");
        db.query_one(&sql, &[]).await.unwrap().get(0)
    };
    // What the leader's log holds on disk, cleaned: the store must hold the same bytes.
    let local_dir = tmp.path().join(format!("data-{leader}")).join("orders-0");
    let local_bytes = || -> i64 {
        let files = std::fs::read_dir(&local_dir).unwrap().filter_map(Result::ok);
        let logs = files.filter(|f| f.path().extension().is_some_and(|e| e == "log"));
        logs.map(|f| f.metadata().map_or(0, |m| m.len() as i64)).sum()
    };
    let (mut stored, mut local, mut objects_used, mut merged) = (0, 0, 0, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        (stored, objects_used) =
            (count("coalesce(sum(b.byte_length), 0)::int8").await, count("count(DISTINCT b.object_key)").await);
        local = local_bytes();
        merged = db
            .query_one(
                "SELECT p.merged_to FROM partitions p JOIN topics t USING (topic_id) WHERE t.name = 'orders'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if stored == local && objects_used <= 4 && merged == N as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        stored == local && objects_used <= 4 && merged == N as i64,
        "the store holds {stored} bytes of orders in {objects_used} objects, merged to {merged}; the leader's \
         cleaned log {local} bytes"
    );
    assert!(count("count(*)").await < 20, "the store holds a batch of each of the 20 commits");

    // The next leader serves what the store holds: the compacted log.
    brokers[leader as usize - 1].kill_9();
    let survivor = addrs[2 - leader as usize];
    wait_agreed(&[survivor], "the survivor leading orders", |m| {
        leaders(m).get(&("orders".to_string(), 0)).is_some_and(|(l, _)| *l == 3 - leader)
    })
    .await;
    let c = ClientConfig::new()
        .set("bootstrap.servers", survivor.to_string())
        .set("group.id", "orders-reader")
        .set("enable.partition.eof", "true")
        .set("check.crcs", "true")
        .clone();
    let (seen, read) = tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = c.create().unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("orders", 0, Offset::Beginning).unwrap();
        c.assign(&tpl).unwrap();
        let (mut seen, mut read) = (HashMap::new(), 0);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < deadline, "did not reach the end of orders");
            match c.poll(Duration::from_millis(100)) {
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => break,
                Some(Ok(m)) => {
                    let k = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
                    let v = String::from_utf8(m.payload().unwrap().to_vec()).unwrap();
                    seen.insert(k, (v, m.offset()));
                    read += 1;
                }
                Some(Err(e)) => panic!("{e}"),
                None => {}
            }
        }
        (seen, read)
    })
    .await
    .unwrap();
    assert_eq!(seen, latest, "the latest value of every key, at the offset it was written at");
    assert!(read < N / 4, "{read} of {N} records read from the next leader");
}

/// Reads every record of partition 0 of `topic` from the beginning at an isolation level, in
/// order, until `count` came and nothing more comes for a moment.
fn read_partition(bootstrap: &str, topic: &str, isolation: &str, count: usize) -> Vec<String> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "far-behind")
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        // Small fetches: many reads of the stored part, each from where the last stopped.
        .set("max.partition.fetch.bytes", "3000")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).unwrap();
    c.assign(&tpl).unwrap();
    let mut values = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut quiet_since: Option<Instant> = None;
    loop {
        assert!(Instant::now() < deadline, "{isolation}: read {} of {count} records: {values:?}", values.len());
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                values.push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
                quiet_since = None;
            }
            // A dead broker the metadata still lists: the client moves on by itself.
            Some(Err(rdkafka::error::KafkaError::MessageConsumption(
                rdkafka::types::RDKafkaErrorCode::BrokerTransportFailure,
            ))) => {}
            Some(Err(e)) => panic!("{isolation}: {e}"),
            None if values.len() >= count
                && quiet_since.get_or_insert_with(Instant::now).elapsed() > Duration::from_millis(500) =>
            {
                return values;
            }
            None => {}
        }
    }
}

/// The transactional producer "far-writer" of the test below, its transactions initialized.
fn far_writer(bootstrap: &str) -> rdkafka::producer::BaseProducer {
    use rdkafka::producer::Producer;
    let p: rdkafka::producer::BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", "far-writer")
        .set("linger.ms", "0")
        .create()
        .unwrap();
    p.init_transactions(Duration::from_secs(30)).expect("init transactions");
    p
}

/// A leader keeps only the newest `local.retention.bytes` of a partition in its local
/// segments (KIP-405's setting); a consumer reading from the beginning gets the rest from the
/// object store, through the index and ranged reads, with the aborted transactions of that part
/// listed for read_committed, and ListOffsets by timestamp finds records there. Retention then
/// works on the store's batch index: the log start moves past the records older than
/// `retention.ms`, although no local segment holds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_far_behind_reads_from_the_object_store_what_its_leader_no_longer_keeps() {
    use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, NewTopic, ResourceSpecifier, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::producer::{BaseRecord, Producer};

    let Some(pg) = PgServer::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let objects = objects_in(tmp.path());
    let settings = [
        ("GREGOR__CLUSTER__SESSION_TIMEOUT_MS", "3000"),
        ("GREGOR__CLUSTER__HEARTBEAT_INTERVAL_MS", "300"),
        ("GREGOR__LOG__RETENTION_CHECK_INTERVAL_MS", "200"),
        // Small enough that reading the topic evicts.
        ("GREGOR__CLUSTER__READ_CACHE_BYTES", "20000"),
    ];
    let broker = spawn_with_env(tmp.path(), 1, &pg.url, &objects, &settings);
    let bootstrap = broker.addr.to_string();
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
    let topic = NewTopic::new("far", 1, TopicReplication::Fixed(1))
        .set("segment.bytes", "4096")
        .set("local.retention.bytes", "8192");
    let r = admin.create_topics([&topic], &AdminOptions::new()).await.unwrap();
    assert!(r.iter().all(|r| r.is_ok()), "{r:?}");
    // A leader may not keep more locally than the topic keeps at all (Kafka's check with
    // remote storage on).
    let greedy = NewTopic::new("greedy", 1, TopicReplication::Fixed(1))
        .set("retention.bytes", "4096")
        .set("local.retention.bytes", "8192");
    let r = admin.create_topics([&greedy], &AdminOptions::new()).await.unwrap();
    assert!(matches!(&r[..], [Err((_, rdkafka::types::RDKafkaErrorCode::InvalidConfig))]), "{r:?}");

    // Three transactions of 60 records, each record its own batch: committed, aborted,
    // committed. The first is stamped two hours ago: offsets 0..60, marker 60, then 61..121,
    // marker 121, then 122..182, marker 182.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let old = now - 7_200_000;
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let p = far_writer(&b);
        let t = Duration::from_secs(30);
        for (round, commit) in [(0, true), (1, false), (2, true)] {
            p.begin_transaction().unwrap();
            for i in 0..60i64 {
                let v = format!("r{round}-{i:02}-{}", "x".repeat(150));
                // One record of the aborted transaction (offset 71) is stamped a day ahead:
                // the largest timestamp lies in the part only the store holds.
                let ts = match (round, i) {
                    (0, _) => old + i * 1000,
                    (1, 10) => now + 86_400_000,
                    _ => now - 60_000 + i,
                };
                p.send(BaseRecord::<(), str>::to("far").partition(0).payload(&v).timestamp(ts)).unwrap();
                p.flush(t).unwrap();
            }
            if commit {
                p.commit_transaction(t).expect("commit");
            } else {
                p.abort_transaction(t).expect("abort");
            }
        }
    })
    .await
    .unwrap();
    let round = |r: usize| (0..60).map(move |i| format!("r{r}-{i:02}-{}", "x".repeat(150)));

    // The leader lets go of its oldest segments: its first local segment starts past the
    // first two transactions.
    let first_local_in = |node: i32| {
        std::fs::read_dir(tmp.path().join(format!("data-{node}")).join("far-0"))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".log")?.parse::<i64>().ok())
            .min()
            .unwrap_or(0)
    };
    let first_local = || first_local_in(1);
    let deadline = Instant::now() + Duration::from_secs(30);
    while first_local() <= 122 {
        assert!(Instant::now() < deadline, "the first local segment starts at {}", first_local());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let b = bootstrap.clone();
    let (uncommitted, committed, watermarks, by_time) = tokio::task::spawn_blocking(move || {
        let uncommitted = read_partition(&b, "far", "read_uncommitted", 180);
        let committed = read_partition(&b, "far", "read_committed", 120);
        let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &b).create().unwrap();
        let watermarks = c.fetch_watermarks("far", 0, Duration::from_secs(30)).expect("watermarks");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("far", 0, Offset::Offset(old + 30_000)).unwrap();
        let found = c.offsets_for_times(tpl, Duration::from_secs(30)).expect("offsets for times");
        let by_time = found.find_partition("far", 0).unwrap().offset();
        (uncommitted, committed, watermarks, by_time)
    })
    .await
    .unwrap();
    assert_eq!(uncommitted, round(0).chain(round(1)).chain(round(2)).collect::<Vec<_>>());
    assert_eq!(committed, round(0).chain(round(2)).collect::<Vec<_>>());
    assert_eq!(watermarks, (0, 183), "the log still starts at 0");
    assert_eq!(by_time, Offset::Offset(30), "the first record stamped at or after old + 30 s");
    // KIP-1005's earliest-local offset is where the local segments begin.
    let list = |timestamp: i64| {
        use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
        let p = ListOffsetsPartition::default().with_partition_index(0).with_timestamp(timestamp);
        let t =
            ListOffsetsTopic::default().with_name(TopicName(StrBytes::from_static_str("far"))).with_partitions(vec![p]);
        kafka_protocol::messages::ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![t])
    };
    let mut raw = RawClient::connect(broker.addr).await;
    let earliest = raw.call(9, &list(-2)).await.topics[0].partitions[0].offset;
    let local = raw.call(9, &list(-4)).await.topics[0].partitions[0].offset;
    assert_eq!((earliest, local), (0, first_local()), "earliest and earliest local");
    // Latest tiered: the store holds every committed batch, up to the last marker.
    let tiered = raw.call(9, &list(-5)).await.topics[0].partitions[0].clone();
    assert_eq!((tiered.offset, tiered.timestamp, tiered.error_code), (182, -1, 0), "latest tiered");
    let max = raw.call(9, &list(-3)).await.topics[0].partitions[0].clone();
    assert_eq!((max.offset, max.timestamp), (71, now + 86_400_000), "the largest timestamp");

    // Retention of one hour: the first transaction's records go, from the store's index; its
    // marker (stamped when written) stays.
    // (AlterConfigs replaces the topic's whole config: the others are given again.)
    let alter = AlterConfig::new(ResourceSpecifier::Topic("far"))
        .set("retention.ms", "3600000")
        .set("segment.bytes", "4096")
        .set("local.retention.bytes", "8192");
    let r = admin.alter_configs([&alter], &AdminOptions::new()).await.unwrap();
    assert!(r.iter().all(|r| r.is_ok()), "{r:?}");
    let b = bootstrap.clone();
    let (low, after) = tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &b).create().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (low, _) = c.fetch_watermarks("far", 0, Duration::from_secs(30)).expect("watermarks");
            if low != 0 || Instant::now() > deadline {
                return (low, read_partition(&b, "far", "read_committed", 60));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .unwrap();
    assert_eq!(low, 60, "the log start after retention");
    assert_eq!(after, round(2).collect::<Vec<_>>());
    let (db, conn) = tokio_postgres::connect(&pg.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let row = db
        .query_one("SELECT p.log_start FROM partitions p JOIN topics t USING (topic_id) WHERE t.name = 'far'", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 60, "the store's log start");

    // The broker counted its reads from the store. Each scan from the beginning evicted what
    // the next one needed first (the cache holds fewer batches than the stored part), but
    // the last read, from 60, found the end of the stored part still cached.
    let metrics = crate::http::metrics_of(&broker);
    let sample = |series: &str| crate::http::sample(&metrics, series).unwrap_or(0.0);
    assert!(sample("gregor_shared_stored_read_batches_total{source=\"objects\"}") >= 120.0, "{metrics}");
    assert!(sample("gregor_shared_stored_read_batches_total{source=\"cache\"}") > 0.0, "{metrics}");
    assert!(sample("gregor_shared_stored_read_gets_total") > 0.0, "{metrics}");
    assert!(sample("gregor_shared_stored_read_bytes_total") > 120.0 * 150.0, "{metrics}");
    let cached = sample("gregor_shared_read_cache_bytes");
    assert!(cached > 0.0 && cached <= 20000.0, "the cache holds {cached} bytes");

    // The leader dies; a new broker takes the partition over from the store and serves it
    // from the log start the store holds.
    let mut broker = broker;
    let second = spawn_with_env(tmp.path(), 2, &pg.url, &objects, &settings);
    broker.kill_9();
    let b = second.addr.to_string();
    let taken_over = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        let watermarks = loop {
            // A new client each time: one that saw the dead broker lead the partition may wait
            // on it past any deadline.
            let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &b).create().unwrap();
            match c.fetch_watermarks("far", 0, Duration::from_secs(5)) {
                Ok(w) => break w,
                Err(e) => assert!(Instant::now() < deadline, "no watermarks from the new leader: {e}"),
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        (watermarks, read_partition(&b, "far", "read_committed", 60))
    })
    .await;
    let (watermarks, after) = taken_over.unwrap_or_else(|e| panic!("{e}; the new leader's log:\n{}", second.log()));
    assert_eq!(watermarks, (60, 183), "the new leader's log");
    // It copied only the newest part: its local segments start past the aborted transaction,
    // which read_committed skipped by what the store's batch rows say of it.
    assert!(first_local_in(2) > 121, "the new leader's copy starts at {}: {}", first_local_in(2), second.log());
    assert_eq!(after, round(2).collect::<Vec<_>>());

    // The transactional producer goes on at the new leader.
    let b = second.addr.to_string();
    let more = tokio::task::spawn_blocking(move || {
        let p = far_writer(&b);
        let t = Duration::from_secs(30);
        p.begin_transaction().unwrap();
        for v in round(3).take(5) {
            p.send(BaseRecord::<(), str>::to("far").partition(0).payload(&v)).unwrap();
        }
        p.commit_transaction(t).expect("commit at the new leader");
        read_partition(&b, "far", "read_committed", 65)
    })
    .await
    .unwrap();
    assert_eq!(more, round(2).chain(round(3).take(5)).collect::<Vec<_>>());

    // Retention by size counts the store's part too: 16 KiB is more than the local segments
    // hold (so the local log's own retention lets nothing go) and less than the log from 60,
    // so the start moves into the part only the store holds.
    let alter = AlterConfig::new(ResourceSpecifier::Topic("far"))
        .set("retention.ms", "3600000")
        .set("retention.bytes", "16384")
        .set("segment.bytes", "4096")
        .set("local.retention.bytes", "8192");
    // A new client each try: one may still take the dead broker for the controller.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", second.addr.to_string()).create().unwrap();
        let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(5)));
        match admin.alter_configs([&alter], &options).await {
            Ok(r) => {
                assert!(r.iter().all(|r| r.is_ok()), "{r:?}");
                break;
            }
            Err(e) => {
                eprintln!("AlterConfigs at the new leader: {e}; trying again");
                assert!(Instant::now() < deadline, "AlterConfigs at the new leader: {e}");
            }
        }
    }
    let b = second.addr.to_string();
    let low = tokio::task::spawn_blocking(move || {
        let c: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &b).create().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (low, _) = c.fetch_watermarks("far", 0, Duration::from_secs(30)).expect("watermarks");
            if low != 60 || Instant::now() > deadline {
                return low;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .unwrap();
    let local = first_local_in(2);
    assert!(low > 60 && low < local, "the log start after retention by size is {low}; local from {local}");
    // The store's start follows at the leader's next heartbeat.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row = db
            .query_one("SELECT p.log_start FROM partitions p JOIN topics t USING (topic_id) WHERE t.name = 'far'", &[])
            .await
            .unwrap();
        let stored: i64 = row.get(0);
        if stored == low {
            break;
        }
        assert!(Instant::now() < deadline, "the store's log start stays at {stored}, not {low}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
