//! KIP-848 `consumer` protocol groups: ConsumerGroupHeartbeat on raw requests (join, revocation
//! before reassignment, fencing, leave, ListGroups/ConsumerGroupDescribe, a classic JoinGroup
//! refused, regex subscriptions following topics created and deleted, the group kept across a
//! broker restart), and librdkafka consumers with `group.protocol=consumer` sharing a topic.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::common::{self, RawClient, TestBroker};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn join(member: &str) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s("g848")))
        .with_member_id(s(member))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![TopicName(s("orders"))]))
        .with_topic_partitions(Some(Vec::new()))
}

fn beat(member: &str, epoch: i32, owned: &[TopicPartitions]) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s("g848")))
        .with_member_id(s(member))
        .with_member_epoch(epoch)
        .with_rebalance_timeout_ms(-1)
        .with_topic_partitions(Some(owned.to_vec()))
}

fn owned(resp: &ConsumerGroupHeartbeatResponse) -> Vec<TopicPartitions> {
    resp.assignment
        .as_ref()
        .expect("an assignment")
        .topic_partitions
        .iter()
        .map(|tp| TopicPartitions::default().with_topic_id(tp.topic_id).with_partitions(tp.partitions.clone()))
        .collect()
}

fn count(tps: &[TopicPartitions]) -> usize {
    tps.iter().map(|t| t.partitions.len()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_group_heartbeat_assigns_revokes_fences_and_leaves() {
    let broker = TestBroker::start().await;
    let mut c = RawClient::connect(broker.addr).await;
    c.create_topic("orders", 6).await;

    let r1 = c.call(1, &join("m1")).await;
    assert_eq!(r1.error_code, 0, "{:?}", r1.error_message);
    assert_eq!((r1.member_epoch, r1.heartbeat_interval_ms), (1, 5000));
    let m1_all = owned(&r1);
    assert_eq!(count(&m1_all), 6);

    // m2 joins: nothing for it until m1 has revoked half.
    let r2 = c.call(1, &join("m2")).await;
    assert_eq!(r2.member_epoch, 2);
    assert_eq!(count(&owned(&r2)), 0);
    let r = c.call(1, &beat("m1", 1, &m1_all)).await;
    assert_eq!(r.member_epoch, 1, "the epoch waits for the revocation");
    let m1_kept = owned(&r);
    assert_eq!(count(&m1_kept), 3);
    let r = c.call(1, &beat("m2", 2, &[])).await;
    assert!(r.assignment.is_none(), "still held by m1: {r:?}");
    // m1 acknowledges; then m2 gets the other three.
    let r = c.call(1, &beat("m1", 1, &m1_kept)).await;
    assert_eq!(r.member_epoch, 2);
    let r = c.call(1, &beat("m2", 2, &[])).await;
    let m2_got = owned(&r);
    assert_eq!(count(&m2_got), 3);
    let all: BTreeSet<i32> = m1_kept.iter().chain(&m2_got).flat_map(|t| t.partitions.clone()).collect();
    assert_eq!(all, (0..6).collect());

    // Fencing: a greater epoch, an unknown member.
    let r = c.call(1, &beat("m1", 7, &m1_kept)).await;
    assert_eq!(r.error_code, ResponseError::FencedMemberEpoch.code(), "{r:?}");
    let r = c.call(1, &beat("ghost", 2, &[])).await;
    assert_eq!(r.error_code, ResponseError::UnknownMemberId.code());

    // ListGroups v5 types it "consumer"; the type filter finds it.
    let l = c.call(5, &ListGroupsRequest::default().with_types_filter(vec![s("consumer")])).await;
    let g = l.groups.iter().find(|g| g.group_id.0.as_str() == "g848").expect("listed");
    assert_eq!(
        (g.group_type.as_str(), g.protocol_type.as_str(), g.group_state.as_str()),
        ("consumer", "consumer", "Stable")
    );
    let l = c.call(5, &ListGroupsRequest::default().with_types_filter(vec![s("classic")])).await;
    assert!(l.groups.iter().all(|g| g.group_id.0.as_str() != "g848"));
    let d = c.call(1, &ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(s("g848"))])).await;
    let g = &d.groups[0];
    assert_eq!((g.error_code, g.group_epoch, g.assignment_epoch, g.assignor_name.as_str()), (0, 2, 2, "uniform"));
    assert_eq!(g.members.len(), 2);

    // A classic member cannot join it (no mixed groups), and DescribeGroups does not describe it.
    let j = c
        .call(
            9,
            &JoinGroupRequest::default()
                .with_group_id(GroupId(s("g848")))
                .with_member_id(s("classic-1"))
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(10_000)
                .with_protocol_type(s("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default().with_name(s("range"))]),
        )
        .await;
    assert_eq!(j.error_code, ResponseError::InconsistentGroupProtocol.code());
    let d = c.call(6, &DescribeGroupsRequest::default().with_groups(vec![GroupId(s("g848"))])).await;
    assert_eq!(d.groups[0].error_code, ResponseError::GroupIdNotFound.code());

    // OffsetCommit v9 uses the member epoch.
    let commit = |epoch: i32| {
        OffsetCommitRequest::default()
            .with_group_id(GroupId(s("g848")))
            .with_member_id(s("m2"))
            .with_generation_id_or_member_epoch(epoch)
            .with_topics(vec![offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(s("orders")))
                .with_partitions(vec![offset_commit_request::OffsetCommitRequestPartition::default()
                    .with_partition_index(m2_got[0].partitions[0])
                    .with_committed_offset(5)])])
    };
    let r = c.call(9, &commit(2)).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    let r = c.call(9, &commit(1)).await;
    assert_eq!(r.topics[0].partitions[0].error_code, ResponseError::StaleMemberEpoch.code());

    // m1 leaves: m2 ends up with everything at epoch 3.
    let r = c.call(1, &beat("m1", -1, &[])).await;
    assert_eq!((r.error_code, r.member_epoch), (0, -1));
    let r = c.call(1, &beat("m2", 2, &m2_got)).await;
    assert_eq!((r.member_epoch, count(&owned(&r))), (3, 6));
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_consumers_share_a_topic_with_the_consumer_protocol() {
    // 1 s heartbeats (as compat-tests' run.sh sets them): a member learns of a new assignment
    // at its next heartbeat, and the default 5 s would only make the group settle later.
    let broker = TestBroker::start_with(|c| c.group.consumer_heartbeat_interval_ms = 1_000).await;
    let bootstrap = broker.bootstrap();
    let mut c = RawClient::connect(broker.addr).await;
    c.create_topic("kip848", 6).await;
    let base = {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &bootstrap);
        cfg
    };
    let consumers: Vec<BaseConsumer> = (0..2)
        .map(|_| {
            let consumer: BaseConsumer = base
                .clone()
                .set("group.id", "rk848")
                .set("group.protocol", "consumer")
                .set("auto.offset.reset", "earliest")
                .set("enable.auto.commit", "false")
                .create()
                .expect("consumer");
            consumer.subscribe(&["kip848"]).expect("subscribe");
            consumer
        })
        .collect();
    // The group settles first: each member ends up with three partitions.
    let consumers = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            for consumer in &consumers {
                let _ = consumer.poll(Duration::from_millis(50));
            }
            let parts: Vec<usize> = consumers.iter().map(|c| c.assignment().map(|a| a.count()).unwrap_or(0)).collect();
            if parts.iter().all(|&n| n == 3) {
                return consumers;
            }
            assert!(Instant::now() < deadline, "the group did not settle: {parts:?}");
        }
    })
    .await
    .expect("settle");
    let values: Vec<String> = (0..120).map(|i| format!("v{i}")).collect();
    common::produce_all(&base, "kip848", &values).await;
    let seen = tokio::task::spawn_blocking(move || {
        let mut seen: Vec<Vec<String>> = vec![Vec::new(); consumers.len()];
        let deadline = Instant::now() + Duration::from_secs(40);
        while seen.iter().map(Vec::len).sum::<usize>() < 120 && Instant::now() < deadline {
            for (i, consumer) in consumers.iter().enumerate() {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
                    seen[i].push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
                }
            }
        }
        for consumer in &consumers {
            let _ = consumer.commit_consumer_state(CommitMode::Sync);
        }
        let parts: Vec<usize> = consumers.iter().map(|c| c.assignment().map(|a| a.count()).unwrap_or(0)).collect();
        (seen, parts)
    })
    .await
    .expect("consume");
    let (seen, parts) = seen;
    let mut all: Vec<String> = seen.iter().flatten().cloned().collect();
    all.sort();
    let mut want = values.clone();
    want.sort();
    assert_eq!(all, want, "every record once");
    assert_eq!(parts.iter().sum::<usize>(), 6, "all partitions assigned: {parts:?}");
    assert!(parts.iter().all(|&n| n == 3), "shared evenly: {parts:?}");
    broker.stop().await;
}

/// The topic names of an assignment, by the ids Metadata gives.
async fn assigned_topics(c: &mut RawClient, tps: &[TopicPartitions]) -> BTreeSet<(String, i32)> {
    let md = c.call(12, &MetadataRequest::default().with_topics(None)).await;
    let name = |id| md.topics.iter().find(|t| t.topic_id == id).and_then(|t| t.name.clone()).map(|n| n.0.to_string());
    tps.iter()
        .flat_map(|tp| tp.partitions.iter().map(move |p| (name(tp.topic_id).expect("a known topic id"), *p)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regex_subscription_follows_matching_topics() {
    let broker = TestBroker::start().await;
    let mut c = RawClient::connect(broker.addr).await;
    c.create_topic("rx-a", 2).await;
    c.create_topic("rx-b", 1).await;
    c.create_topic("xrx-a", 1).await;
    c.create_topic("other", 1).await;
    let join_rx = |regex: &str| {
        ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(s("g848rx")))
            .with_member_id(s("m1"))
            .with_member_epoch(0)
            .with_rebalance_timeout_ms(30_000)
            .with_subscribed_topic_regex(Some(s(regex)))
            .with_topic_partitions(Some(Vec::new()))
    };
    // An invalid regex: INVALID_REGULAR_EXPRESSION (128), saying why.
    let r = c.call(1, &join_rx("rx-(a")).await;
    assert_eq!((r.error_code, ResponseError::InvalidRegularExpression.code()), (128, 128), "{r:?}");
    assert_eq!(
        r.error_message.as_deref(),
        Some("SubscribedTopicRegex `rx-(a` is not a valid regular expression: unclosed group.")
    );

    // Whole names only: not xrx-a, not other.
    let r = c.call(1, &join_rx("rx-.*")).await;
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    let epoch = r.member_epoch;
    let mut held = owned(&r);
    let want = |names: &[(&str, i32)]| names.iter().map(|(t, p)| (t.to_string(), *p)).collect::<BTreeSet<_>>();
    assert_eq!(assigned_topics(&mut c, &held).await, want(&[("rx-a", 0), ("rx-a", 1), ("rx-b", 0)]));
    let d = c.call(1, &ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(s("g848rx"))])).await;
    let m = &d.groups[0].members[0];
    assert_eq!(m.subscribed_topic_regex.as_deref(), Some("rx-.*"));
    assert!(m.subscribed_topic_names.is_empty());

    // A matching topic created after the join is assigned at a later heartbeat (new epoch).
    c.create_topic("rx-c", 1).await;
    let r = c.call(1, &beat("m1", epoch, &held).with_group_id(GroupId(s("g848rx")))).await;
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    assert!(r.member_epoch > epoch, "the group epoch moved: {r:?}");
    held = owned(&r);
    assert_eq!(assigned_topics(&mut c, &held).await, want(&[("rx-a", 0), ("rx-a", 1), ("rx-b", 0), ("rx-c", 0)]));

    // A deleted one is dropped.
    let del = c.call(5, &DeleteTopicsRequest::default().with_topic_names(vec![TopicName(s("rx-b"))])).await;
    assert_eq!(del.responses[0].error_code, 0);
    let r = c.call(1, &beat("m1", r.member_epoch, &held).with_group_id(GroupId(s("g848rx")))).await;
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    held = owned(&r);
    assert_eq!(assigned_topics(&mut c, &held).await, want(&[("rx-a", 0), ("rx-a", 1), ("rx-c", 0)]));
    broker.stop().await;
}

fn partitions(tps: &[TopicPartitions]) -> BTreeSet<i32> {
    tps.iter().flat_map(|t| t.partitions.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// The group's records in `__consumer_offsets` bring it back after a restart: members
/// heartbeating with their epochs are still known and keep their epochs and assignments.
async fn a_consumer_group_keeps_its_epochs_and_assignment_across_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = TestBroker::start_in(tmp.path(), |_| {}).await;
    let mut c = RawClient::connect(broker.addr).await;
    c.create_topic("orders", 4).await;

    // m1 gets everything, m2 joins, m1 revokes half, m2 gets it: Stable at epoch 2.
    let r = c.call(1, &join("m1")).await;
    assert_eq!((r.error_code, r.member_epoch), (0, 1), "{r:?}");
    let m1_all = owned(&r);
    assert_eq!(c.call(1, &join("m2")).await.member_epoch, 2);
    let m1_kept = owned(&c.call(1, &beat("m1", 1, &m1_all)).await);
    assert_eq!(c.call(1, &beat("m1", 1, &m1_kept)).await.member_epoch, 2);
    let r = c.call(1, &beat("m2", 2, &[])).await;
    assert_eq!(r.member_epoch, 2);
    let m2_got = owned(&r);
    assert_eq!(partitions(&m1_kept).len() + partitions(&m2_got).len(), 4);
    drop(c);
    broker.stop().await;

    let broker = TestBroker::start_in(tmp.path(), |_| {}).await;
    let mut c = RawClient::connect(broker.addr).await;
    for (member, mine) in [("m1", &m1_kept), ("m2", &m2_got)] {
        let r = c.call(1, &beat(member, 2, mine)).await;
        assert_eq!((r.error_code, r.member_epoch), (0, 2), "{member} after the restart: {r:?}");
        assert!(r.assignment.is_none(), "{member}: the assignment did not change: {r:?}");
        // A full heartbeat (as after a reconnect) is answered with the whole assignment.
        let full = beat(member, 2, mine)
            .with_rebalance_timeout_ms(30_000)
            .with_subscribed_topic_names(Some(vec![TopicName(s("orders"))]));
        let r = c.call(1, &full).await;
        assert_eq!((r.error_code, r.member_epoch), (0, 2), "{r:?}");
        assert_eq!(partitions(&owned(&r)), partitions(mine), "{member} keeps its partitions");
    }
    let d = c.call(1, &ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(s("g848"))])).await;
    let g = &d.groups[0];
    assert_eq!((g.error_code, g.group_state.as_str(), g.group_epoch, g.assignment_epoch), (0, "Stable", 2, 2));
    assert_eq!(g.members.len(), 2);
    broker.stop().await;
}
