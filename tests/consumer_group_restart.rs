//! A KIP-848 `consumer` protocol group across a broker restart: members heartbeating with
//! their epochs after the restart are still known, keep their epochs and their assignments
//! (the group's records in `__consumer_offsets` brought it back), on raw ConsumerGroupHeartbeat
//! requests.

mod common;

use std::collections::BTreeSet;

use common::{RawClient, TestBroker};
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn join(member: &str) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s("restart848")))
        .with_member_id(s(member))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![TopicName(s("orders"))]))
        .with_topic_partitions(Some(Vec::new()))
}

fn beat(member: &str, epoch: i32, owned: &[TopicPartitions]) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s("restart848")))
        .with_member_id(s(member))
        .with_member_epoch(epoch)
        .with_rebalance_timeout_ms(-1)
        .with_topic_partitions(Some(owned.to_vec()))
}

fn owned(resp: &ConsumerGroupHeartbeatResponse) -> Vec<TopicPartitions> {
    let a = resp.assignment.as_ref().unwrap_or_else(|| panic!("an assignment in {resp:?}"));
    a.topic_partitions
        .iter()
        .map(|tp| TopicPartitions::default().with_topic_id(tp.topic_id).with_partitions(tp.partitions.clone()))
        .collect()
}

fn partitions(tps: &[TopicPartitions]) -> BTreeSet<i32> {
    tps.iter().flat_map(|t| t.partitions.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
    let d = c.call(1, &ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(s("restart848"))])).await;
    let g = &d.groups[0];
    assert_eq!((g.error_code, g.group_state.as_str(), g.group_epoch, g.assignment_epoch), (0, "Stable", 2, 2));
    assert_eq!(g.members.len(), 2);
    broker.stop().await;
}
