//! Consumer groups: the classic protocol exchange on raw requests, committed offsets across a
//! restart, and librdkafka consumers balancing as a group.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::common::{RawClient, TestBroker};
use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, FutureProducer, FutureRecord, Producer};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

async fn start() -> TestBroker {
    TestBroker::start_with(|c| c.group.initial_rebalance_delay_ms = 0).await
}

async fn create(c: &mut RawClient, topic: &str, partitions: i32) {
    let req = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
        .with_name(TopicName(s(topic)))
        .with_num_partitions(partitions)
        .with_replication_factor(1)]);
    assert_eq!(c.call(7, &req).await.topics[0].error_code, 0);
}

fn join_req(member: &str, instance: Option<&str>) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(s(member))
        .with_group_instance_id(instance.map(s))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(b"meta"))])
}

#[tokio::test]
async fn classic_protocol_exchange() {
    let broker = start().await;
    let mut a = RawClient::connect(broker.addr).await;
    let mut b = RawClient::connect(broker.addr).await;

    let coord = a.call(4, &FindCoordinatorRequest::default().with_coordinator_keys(vec![s("g")])).await;
    assert_eq!(coord.coordinators[0].port, i32::from(broker.addr.port()));

    // KIP-394: the first join only hands out a member id.
    let first = a.call(9, &join_req("", None)).await;
    assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED");
    let a_id = first.member_id.as_str().to_string();
    let joined = a.call(9, &join_req(&a_id, None)).await;
    assert_eq!((joined.error_code, joined.generation_id), (0, 1));
    assert_eq!(joined.leader.as_str(), a_id);
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_generation_id(1)
        .with_member_id(s(&a_id))
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s("range")))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(s(&a_id))
            .with_assignment(Bytes::from_static(b"A1"))]);
    let synced = a.call(5, &sync).await;
    assert_eq!((synced.error_code, &synced.assignment[..]), (0, &b"A1"[..]));

    // b joins: a's heartbeat says rebalance, both rejoin, b syncs before the leader and waits.
    let b_id = b.call(9, &join_req("", None)).await.member_id.as_str().to_string();
    let (b_join_id, frame) = b.frame(9, &join_req(&b_id, None));
    b.send_raw(&frame).await;
    let hb = HeartbeatRequest::default().with_group_id(GroupId(s("g"))).with_generation_id(1).with_member_id(s(&a_id));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let code = a.call(4, &hb).await.error_code;
        if code == 27 {
            break; // REBALANCE_IN_PROGRESS
        }
        assert!(Instant::now() < deadline, "no rebalance signalled, heartbeat code {code}");
    }
    let rejoined = a.call(9, &join_req(&a_id, None)).await;
    assert_eq!((rejoined.generation_id, rejoined.members.len()), (2, 2));
    let b_joined = b.read_response::<JoinGroupRequest>(9, b_join_id).await;
    assert_eq!((b_joined.generation_id, b_joined.members.len()), (2, 0));
    let b_sync =
        SyncGroupRequest::default().with_group_id(GroupId(s("g"))).with_generation_id(2).with_member_id(s(&b_id));
    let (b_sync_id, frame) = b.frame(5, &b_sync);
    b.send_raw(&frame).await;
    let leader_sync = sync.clone().with_generation_id(2).with_assignments(vec![
        SyncGroupRequestAssignment::default().with_member_id(s(&a_id)).with_assignment(Bytes::from_static(b"A2")),
        SyncGroupRequestAssignment::default().with_member_id(s(&b_id)).with_assignment(Bytes::from_static(b"B2")),
    ]);
    assert_eq!(&a.call(5, &leader_sync).await.assignment[..], b"A2");
    assert_eq!(&b.read_response::<SyncGroupRequest>(5, b_sync_id).await.assignment[..], b"B2");

    let listed = a.call(5, &ListGroupsRequest::default()).await;
    assert_eq!(listed.groups[0].group_state.as_str(), "Stable");
    let described = a.call(5, &DescribeGroupsRequest::default().with_groups(vec![GroupId(s("g"))])).await;
    assert_eq!(described.groups[0].members.len(), 2);
    assert_eq!(described.groups[0].protocol_data.as_str(), "range");
    let del = a.call(2, &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g"))])).await;
    assert_eq!(del.results[0].error_code, 68, "NON_EMPTY_GROUP");

    // Both leave (v3+ batch form): the group ends up Empty and can be deleted.
    let leave = LeaveGroupRequest::default().with_group_id(GroupId(s("g"))).with_members(vec![
        leave_group_request::MemberIdentity::default().with_member_id(s(&a_id)),
        leave_group_request::MemberIdentity::default().with_member_id(s(&b_id)),
    ]);
    let left = a.call(5, &leave).await;
    assert!(left.members.iter().all(|m| m.error_code == 0));
    let del = a.call(2, &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g"))])).await;
    assert_eq!(del.results[0].error_code, 0);
    broker.stop().await;
}

fn commit_req(group: &str, generation: i32, member: &str, offset: i64, metadata: &str) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_topics(vec![OffsetCommitRequestTopic::default().with_name(TopicName(s("t"))).with_partitions(vec![
            OffsetCommitRequestPartition::default()
                .with_partition_index(1)
                .with_committed_offset(offset)
                .with_committed_metadata(Some(s(metadata))),
            OffsetCommitRequestPartition::default().with_partition_index(9).with_committed_offset(1),
        ])])
}

fn fetch_req(group: &str) -> OffsetFetchRequest {
    OffsetFetchRequest::default().with_group_id(GroupId(s(group))).with_topics(Some(vec![
        OffsetFetchRequestTopic::default().with_name(TopicName(s("t"))).with_partition_indexes(vec![0, 1]),
    ]))
}

#[tokio::test]
async fn committed_offsets_round_trip_and_survive_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = TestBroker::start_in(tmp.path(), |c| c.group.initial_rebalance_delay_ms = 0).await;
    let mut c = RawClient::connect(broker.addr).await;
    create(&mut c, "t", 2).await;
    // A simple (generation -1) commit by a consumer that assigns partitions itself.
    let resp = c.call(8, &commit_req("simple", -1, "", 42, "meta-42")).await;
    let codes: Vec<i16> = resp.topics[0].partitions.iter().map(|p| p.error_code).collect();
    assert_eq!(codes, vec![0, 3], "unknown partition 9 is refused");
    // A member-based commit with a stale generation is refused.
    let resp = c.call(8, &commit_req("simple", 5, "ghost", 1, "")).await;
    assert_eq!(resp.topics[0].partitions[0].error_code, 25, "UNKNOWN_MEMBER_ID");
    let fetched = c.call(7, &fetch_req("simple")).await;
    let p = &fetched.topics[0].partitions;
    assert_eq!((p[0].committed_offset, p[1].committed_offset), (-1, 42));
    assert_eq!(p[1].metadata.as_ref().map(|m| m.as_str()), Some("meta-42"));
    drop(c);
    broker.stop().await;

    let broker = TestBroker::start_in(tmp.path(), |c| c.group.initial_rebalance_delay_ms = 0).await;
    let mut c = RawClient::connect(broker.addr).await;
    let fetched = c.call(7, &fetch_req("simple")).await;
    assert_eq!(fetched.topics[0].partitions[1].committed_offset, 42);
    // v8+ multi-group form, and an unknown group has nothing committed.
    let multi = OffsetFetchRequest::default().with_groups(vec![
        offset_fetch_request::OffsetFetchRequestGroup::default().with_group_id(GroupId(s("simple"))).with_topics(None),
        offset_fetch_request::OffsetFetchRequestGroup::default().with_group_id(GroupId(s("other"))).with_topics(None),
    ]);
    let resp = c.call(8, &multi).await;
    assert_eq!(resp.groups[0].topics[0].partitions[0].committed_offset, 42);
    assert!(resp.groups[1].topics.is_empty());
    // OffsetDelete, then the offset is gone (also after the next restart).
    let del = OffsetDeleteRequest::default().with_group_id(GroupId(s("simple"))).with_topics(vec![
        offset_delete_request::OffsetDeleteRequestTopic::default().with_name(TopicName(s("t"))).with_partitions(vec![
            offset_delete_request::OffsetDeleteRequestPartition::default().with_partition_index(1),
        ]),
    ]);
    assert_eq!(c.call(0, &del).await.topics[0].partitions[0].error_code, 0);
    drop(c);
    broker.stop().await;
    let broker = TestBroker::start_in(tmp.path(), |c| c.group.initial_rebalance_delay_ms = 0).await;
    let mut c = RawClient::connect(broker.addr).await;
    assert_eq!(c.call(7, &fetch_req("simple")).await.topics[0].partitions[1].committed_offset, -1);
    broker.stop().await;
}

fn consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_consumers_balance_commit_and_resume() {
    let broker = start().await;
    let bootstrap = broker.bootstrap();
    let mut c = RawClient::connect(broker.addr).await;
    create(&mut c, "grouped", 4).await;
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
    for i in 0..400 {
        let key = format!("k{i}");
        let payload = format!("v{i}");
        producer
            .send(FutureRecord::to("grouped").partition(i % 4).key(&key).payload(&payload), Duration::from_secs(5))
            .await
            .unwrap();
    }
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let c1 = consumer(&b, "rd");
        let c2 = consumer(&b, "rd");
        c1.subscribe(&["grouped"]).unwrap();
        c2.subscribe(&["grouped"]).unwrap();
        let mut seen: BTreeMap<(i32, i64), String> = BTreeMap::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        // Both members must end up with two partitions each, and together see everything.
        loop {
            for c in [&c1, &c2] {
                if let Some(Ok(m)) = c.poll(Duration::from_millis(50)) {
                    seen.insert(
                        (m.partition(), m.offset()),
                        String::from_utf8_lossy(m.payload().unwrap()).into_owned(),
                    );
                }
            }
            let (a1, a2) = (c1.assignment().unwrap().count(), c2.assignment().unwrap().count());
            if seen.len() == 400 && a1 == 2 && a2 == 2 {
                break;
            }
            assert!(Instant::now() < deadline, "seen {} records, assignments {a1}/{a2}", seen.len());
        }
        c1.commit_consumer_state(CommitMode::Sync).unwrap();
        c2.commit_consumer_state(CommitMode::Sync).unwrap();
        let parts1: BTreeSet<i32> = c1.assignment().unwrap().elements().iter().map(|e| e.partition()).collect();
        let parts2: BTreeSet<i32> = c2.assignment().unwrap().elements().iter().map(|e| e.partition()).collect();
        assert!(parts1.is_disjoint(&parts2));
        drop(c1);
        drop(c2);
        // A new member of the same group starts after the committed offsets: one new record per
        // partition arrives, and nothing before it is redelivered. (It must actually fetch:
        // waiting for the assignment alone would pass whatever offsets it would start from.)
        let later: BaseProducer = ClientConfig::new().set("bootstrap.servers", &b).create().unwrap();
        for p in 0..4 {
            later.send(BaseRecord::to("grouped").partition(p).key("after").payload("after-commit")).unwrap();
        }
        later.flush(Duration::from_secs(10)).unwrap();
        let c3 = consumer(&b, "rd");
        c3.subscribe(&["grouped"]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut got: BTreeSet<(i32, i64)> = BTreeSet::new();
        while got.len() < 4 {
            if let Some(Ok(m)) = c3.poll(Duration::from_millis(100)) {
                assert_eq!(m.offset(), 100, "redelivered {}:{} after commit", m.partition(), m.offset());
                assert_eq!(m.payload(), Some(&b"after-commit"[..]));
                got.insert((m.partition(), m.offset()));
            }
            assert!(Instant::now() < deadline, "c3 got only {got:?}");
        }
        let committed = c3.committed(Duration::from_secs(10)).unwrap();
        assert!(committed.elements().iter().all(|e| e.offset() == rdkafka::Offset::Offset(100)), "{committed:?}");
    })
    .await
    .unwrap();
    broker.stop().await;
}

#[tokio::test]
async fn a_stable_group_carries_on_after_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = TestBroker::start_in(tmp.path(), |c| c.group.initial_rebalance_delay_ms = 0).await;
    let mut a = RawClient::connect(broker.addr).await;
    let id = a.call(9, &join_req("", Some("static-1"))).await.member_id.as_str().to_string();
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_generation_id(1)
        .with_member_id(s(&id))
        .with_group_instance_id(Some(s("static-1")))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(s(&id))
            .with_assignment(Bytes::from_static(b"mine"))]);
    assert_eq!(a.call(5, &sync).await.error_code, 0);
    drop(a);
    broker.stop().await;

    let broker = TestBroker::start_in(tmp.path(), |c| c.group.initial_rebalance_delay_ms = 0).await;
    let mut a = RawClient::connect(broker.addr).await;
    // Same member, same generation: no rebalance needed.
    let hb = HeartbeatRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_generation_id(1)
        .with_member_id(s(&id))
        .with_group_instance_id(Some(s("static-1")));
    assert_eq!(a.call(4, &hb).await.error_code, 0);
    assert_eq!(&a.call(5, &sync.clone().with_assignments(vec![])).await.assignment[..], b"mine");
    let described = a.call(5, &DescribeGroupsRequest::default().with_groups(vec![GroupId(s("g"))])).await;
    assert_eq!(described.groups[0].group_state.as_str(), "Stable");
    // The static member restarting with a fresh member id replaces (fences) its old incarnation.
    // It is the leader: the group stays Stable in generation 1 and the leader skips assigning.
    let rejoined = a.call(9, &join_req("", Some("static-1"))).await;
    assert_eq!((rejoined.error_code, rejoined.generation_id, rejoined.skip_assignment), (0, 1, true));
    assert_ne!(rejoined.member_id.as_str(), id);
    assert_eq!(a.call(4, &hb).await.error_code, 82, "FENCED_INSTANCE_ID");
    let new_sync = sync.clone().with_member_id(rejoined.member_id.clone()).with_assignments(vec![]);
    assert_eq!(&a.call(5, &new_sync).await.assignment[..], b"mine");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_consumer_consumes_as_a_group() {
    use rdkafka::consumer::StreamConsumer;
    let broker = start().await;
    let bootstrap = broker.bootstrap();
    let mut c = RawClient::connect(broker.addr).await;
    create(&mut c, "streamed", 2).await;
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
    for i in 0..50 {
        let payload = format!("v{i}");
        producer
            .send(FutureRecord::<(), _>::to("streamed").partition(i % 2).payload(&payload), Duration::from_secs(5))
            .await
            .unwrap();
    }
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "streamers")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap();
    consumer.subscribe(&["streamed"]).unwrap();
    let mut seen = BTreeSet::new();
    while seen.len() < 50 {
        let m = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("no message within 30 s")
            .unwrap();
        seen.insert(String::from_utf8_lossy(m.payload().unwrap()).into_owned());
    }
    consumer.commit_consumer_state(CommitMode::Sync).unwrap();
    let committed = consumer.committed(Duration::from_secs(10)).unwrap();
    let total: i64 = committed.elements().iter().map(|e| e.offset().to_raw().unwrap_or(0)).sum();
    assert_eq!(total, 50);
    broker.stop().await;
}
