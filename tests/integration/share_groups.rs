//! KIP-932 share groups on raw requests: two members of one share group read one partition,
//! each record is acquired by one of them, acknowledgements accept, release and are refused
//! when the member does not hold the record, share session epochs are checked, a waiting fetch
//! wakes on an append, and the admin side (group configs kept across a restart, ShareGroupDescribe,
//! ListGroups, DeleteGroups, Describe/Alter/DeleteShareGroupOffsets) answers as Kafka 4.1 does.

use std::time::{Duration, Instant};

use crate::common::{self, RawClient, TestBroker};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::share_acknowledge_request::{
    AcknowledgePartition, AcknowledgeTopic, AcknowledgementBatch as AcknowledgeBatch,
};
use kafka_protocol::messages::share_fetch_request::{AcknowledgementBatch, FetchPartition, FetchTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;

const ACCEPT: i8 = 1;
const RELEASE: i8 = 2;
const GROUP: &str = "sg";

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

fn join(member: &str) -> ShareGroupHeartbeatRequest {
    ShareGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_member_id(s(member))
        .with_member_epoch(0)
        .with_subscribed_topic_names(Some(vec![TopicName(s("jobs"))]))
}

fn leave(member: &str) -> ShareGroupHeartbeatRequest {
    ShareGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_member_id(s(member))
        .with_member_epoch(-1)
}

fn fetch(
    member: &str,
    epoch: i32,
    topic: uuid::Uuid,
    acks: &[(i64, i64, i8)],
    max_records: i32,
    max_wait_ms: i32,
) -> ShareFetchRequest {
    let batches = acks
        .iter()
        .map(|(f, l, t)| {
            AcknowledgementBatch::default().with_first_offset(*f).with_last_offset(*l).with_acknowledge_types(vec![*t])
        })
        .collect();
    ShareFetchRequest::default()
        .with_group_id(Some(GroupId(s(GROUP))))
        .with_member_id(Some(s(member)))
        .with_share_session_epoch(epoch)
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_max_records(max_records)
        .with_batch_size(max_records)
        .with_topics(vec![FetchTopic::default().with_topic_id(topic).with_partitions(vec![FetchPartition::default()
            .with_partition_index(0)
            .with_acknowledgement_batches(batches)])])
}

fn acknowledge(member: &str, epoch: i32, topic: uuid::Uuid, acks: &[(i64, i64, i8)]) -> ShareAcknowledgeRequest {
    let batches = acks
        .iter()
        .map(|(f, l, t)| {
            AcknowledgeBatch::default().with_first_offset(*f).with_last_offset(*l).with_acknowledge_types(vec![*t])
        })
        .collect();
    ShareAcknowledgeRequest::default()
        .with_group_id(Some(GroupId(s(GROUP))))
        .with_member_id(Some(s(member)))
        .with_share_session_epoch(epoch)
        .with_topics(vec![AcknowledgeTopic::default().with_topic_id(topic).with_partitions(vec![
            AcknowledgePartition::default().with_partition_index(0).with_acknowledgement_batches(batches),
        ])])
}

/// (first, last, delivery count) of what a fetch acquired.
fn acquired(r: &ShareFetchResponse) -> Vec<(i64, i64, i16)> {
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    r.responses
        .iter()
        .flat_map(|t| &t.partitions)
        .flat_map(|p| &p.acquired_records)
        .map(|a| (a.first_offset, a.last_offset, a.delivery_count))
        .collect()
}

fn ack_code(r: &ShareFetchResponse) -> i16 {
    r.responses.iter().flat_map(|t| &t.partitions).map(|p| p.acknowledge_error_code).find(|c| *c != 0).unwrap_or(0)
}

async fn set_group_config(c: &mut RawClient, name: &str, value: &str) -> i16 {
    use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(32)
        .with_resource_name(s(GROUP))
        .with_configs(vec![AlterableConfig::default()
            .with_name(s(name))
            .with_config_operation(0)
            .with_value(Some(s(value)))])]);
    c.call(1, &req).await.responses[0].error_code
}

async fn group_config(c: &mut RawClient, name: &str) -> (Option<String>, i8) {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    let req = DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
        .with_resource_type(32)
        .with_resource_name(s(GROUP))
        .with_configuration_keys(Some(vec![s(name)]))]);
    let r = c.call(4, &req).await;
    assert_eq!(r.results[0].error_code, 0, "{:?}", r.results[0].error_message);
    let e = &r.results[0].configs[0];
    (e.value.as_ref().map(|v| v.to_string()), e.config_source)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_share_a_partition_and_acknowledge_what_they_hold() {
    let broker = TestBroker::start().await;
    let mut c = RawClient::connect(broker.addr).await;
    c.create_topic("jobs", 1).await;
    let config = ClientConfig::new().set("bootstrap.servers", broker.bootstrap()).clone();
    common::produce_all(&config, "jobs", &(0..10).map(|i| format!("job-{i}")).collect::<Vec<_>>()).await;

    // Group configs: start from the earliest record; a bad value is refused.
    assert_eq!(set_group_config(&mut c, "share.auto.offset.reset", "earliest").await, 0);
    assert_eq!(
        set_group_config(&mut c, "share.auto.offset.reset", "sometimes").await,
        code(ResponseError::InvalidConfig)
    );
    assert_eq!(
        set_group_config(&mut c, "share.record.lock.duration.ms", "5").await,
        code(ResponseError::InvalidConfig)
    );
    assert_eq!(group_config(&mut c, "share.auto.offset.reset").await, (Some("earliest".into()), 8));
    assert_eq!(group_config(&mut c, "share.delivery.count.limit").await, (Some("5".into()), 5));

    // Both members are given the one partition.
    let a = c.call(1, &join("member-a")).await;
    assert_eq!(a.error_code, 0, "{:?}", a.error_message);
    let b = c.call(1, &join("member-b")).await;
    let topic = b.assignment.as_ref().expect("an assignment").topic_partitions[0].topic_id;
    assert_eq!(b.assignment.unwrap().topic_partitions[0].partitions, vec![0]);
    assert_eq!(b.member_epoch, 2);

    // a acquires 4 records, b the other 6: nobody gets a record another holds.
    let r = c.call(1, &fetch("member-a", 0, topic, &[], 4, 0)).await;
    assert_eq!(acquired(&r), vec![(0, 3, 1)]);
    assert_eq!(r.acquisition_lock_timeout_ms, 30_000);
    let records = r.responses[0].partitions[0].records.as_ref().expect("records");
    assert!(!records.is_empty());
    let r = c.call(1, &fetch("member-b", 0, topic, &[], 100, 0)).await;
    assert_eq!(acquired(&r), vec![(4, 9, 1)]);

    // a accepts 0-1 and releases 2-3; the same epoch again is refused.
    let r = c.call(1, &acknowledge("member-a", 1, topic, &[(0, 1, ACCEPT), (2, 3, RELEASE)])).await;
    assert_eq!((r.error_code, r.responses[0].partitions[0].error_code), (0, 0), "{r:?}");
    let r = c.call(1, &acknowledge("member-a", 1, topic, &[])).await;
    assert_eq!(r.error_code, code(ResponseError::InvalidShareSessionEpoch));

    // b accepts its 6 with its next fetch and gets the released two, delivered a second time.
    let r = c.call(1, &fetch("member-b", 1, topic, &[(4, 9, ACCEPT)], 100, 0)).await;
    assert_eq!(ack_code(&r), 0);
    assert_eq!(acquired(&r), vec![(2, 3, 2)]);
    // a may not acknowledge what b holds now.
    let r = c.call(1, &fetch("member-a", 2, topic, &[(2, 2, ACCEPT)], 100, 0)).await;
    assert_eq!(ack_code(&r), code(ResponseError::InvalidRecordState));
    assert!(acquired(&r).is_empty());

    // Sessions: acknowledgements cannot open one, and an unknown one is not found.
    let r = c.call(1, &fetch("member-a", 0, topic, &[(2, 2, ACCEPT)], 100, 0)).await;
    assert_eq!(r.error_code, code(ResponseError::InvalidRequest));
    let r = c.call(1, &fetch("member-z", 5, topic, &[], 100, 0)).await;
    assert_eq!(r.error_code, code(ResponseError::ShareSessionNotFound));

    // A waiting fetch is woken by an append, long before its wait is over.
    let waiting = {
        let mut c2 = RawClient::connect(broker.addr).await;
        tokio::spawn(async move {
            let started = Instant::now();
            let r = c2.call(1, &fetch("member-a", 3, topic, &[], 100, 15_000)).await;
            (acquired(&r), started.elapsed())
        })
    };
    // Give the fetch time to start waiting (if it has not, it finds the record at once: the
    // assertion below holds either way, and it fails only if the wake-up is missing).
    tokio::time::sleep(Duration::from_millis(300)).await;
    common::produce_all(&config, "jobs", &["late".to_string()]).await;
    let (got, took) = waiting.await.unwrap();
    assert_eq!(got, vec![(10, 10, 1)]);
    assert!(took < Duration::from_secs(10), "the append did not wake the fetch: {took:?}");

    // Admin: described, listed as a share group, not deletable with members.
    let d = c.call(1, &ShareGroupDescribeRequest::default().with_group_ids(vec![GroupId(s(GROUP))])).await;
    let g = &d.groups[0];
    assert_eq!((g.error_code, g.group_state.as_str(), g.assignor_name.as_str()), (0, "Stable", "simple"));
    assert_eq!(g.members.len(), 2);
    let l = c.call(5, &ListGroupsRequest::default().with_types_filter(vec![s("share")])).await;
    let listed: Vec<_> = l.groups.iter().map(|g| (g.group_id.as_str(), g.group_type.as_str())).collect();
    assert_eq!(listed, vec![(GROUP, "share")]);
    let del = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(GROUP))]);
    assert_eq!(c.call(2, &del).await.results[0].error_code, code(ResponseError::NonEmptyGroup));
    let busy = AlterShareGroupOffsetsRequest::default().with_group_id(GroupId(s(GROUP)));
    assert_eq!(c.call(0, &busy).await.error_code, code(ResponseError::NonEmptyGroup));
    for m in ["member-a", "member-b"] {
        assert_eq!(c.call(1, &leave(m)).await.member_epoch, -1);
    }
    // Offsets: 0-1 and 4-9 are accepted, 2-3 still held: the start offset is 2. With the group
    // empty it can be moved, and forgotten.
    let describe = DescribeShareGroupOffsetsRequest::default().with_groups(vec![
        describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup::default()
            .with_group_id(GroupId(s(GROUP)))
            .with_topics(Some(vec![
                describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestTopic::default()
                    .with_topic_name(TopicName(s("jobs")))
                    .with_partitions(vec![0]),
            ])),
    ]);
    let start = |r: &DescribeShareGroupOffsetsResponse| r.groups[0].topics[0].partitions[0].start_offset;
    assert_eq!(start(&c.call(0, &describe).await), 2);
    let alter = AlterShareGroupOffsetsRequest::default().with_group_id(GroupId(s(GROUP))).with_topics(vec![
        alter_share_group_offsets_request::AlterShareGroupOffsetsRequestTopic::default()
            .with_topic_name(TopicName(s("jobs")))
            .with_partitions(vec![alter_share_group_offsets_request::AlterShareGroupOffsetsRequestPartition::default(
            )
            .with_partition_index(0)
            .with_start_offset(7)]),
    ]);
    let r = c.call(0, &alter).await;
    assert_eq!((r.error_code, r.responses[0].partitions[0].error_code), (0, 0), "{r:?}");
    assert_eq!(start(&c.call(0, &describe).await), 7);
    let forget = DeleteShareGroupOffsetsRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_topics(vec![delete_share_group_offsets_request::DeleteShareGroupOffsetsRequestTopic::default()
            .with_topic_name(TopicName(s("jobs")))]);
    assert_eq!(c.call(0, &forget).await.error_code, 0);
    assert_eq!(start(&c.call(0, &describe).await), -1);
    assert_eq!(c.call(2, &del).await.results[0].error_code, 0);
    let d = c.call(1, &ShareGroupDescribeRequest::default().with_group_ids(vec![GroupId(s(GROUP))])).await;
    assert_eq!(d.groups[0].error_code, code(ResponseError::GroupIdNotFound));
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_configs_are_kept_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = TestBroker::start_in(dir.path(), |_| {}).await;
    let mut c = RawClient::connect(broker.addr).await;
    assert_eq!(set_group_config(&mut c, "share.record.lock.duration.ms", "2500").await, 0);
    broker.stop().await;
    let broker = TestBroker::start_in(dir.path(), |_| {}).await;
    let mut c = RawClient::connect(broker.addr).await;
    assert_eq!(group_config(&mut c, "share.record.lock.duration.ms").await, (Some("2500".into()), 8));
    broker.stop().await;
}

/// What a share group was told is done stays done through a SIGKILL: acknowledged records are
/// not delivered again, held ones are (with their delivery counted), and the share-partition
/// keeps its start rather than jumping to `latest` at the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_survive_a_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut broker = common::BrokerProcess::spawn(&data, &[]);
    let addr = broker.addr;
    let mut c = RawClient::connect(addr).await;
    c.create_topic("jobs", 1).await;
    let config = ClientConfig::new().set("bootstrap.servers", addr.to_string()).clone();
    common::produce_all(&config, "jobs", &(0..10).map(|i| format!("job-{i}")).collect::<Vec<_>>()).await;
    assert_eq!(set_group_config(&mut c, "share.auto.offset.reset", "earliest").await, 0);
    let topic = c.call(1, &join("member-a")).await.assignment.expect("an assignment").topic_partitions[0].topic_id;
    assert_eq!(acquired(&c.call(1, &fetch("member-a", 0, topic, &[], 100, 0)).await), vec![(0, 9, 1)]);
    // 0-3 accepted with a ShareAcknowledge, 4-5 with the next ShareFetch; 6-9 still held.
    let r = c.call(1, &acknowledge("member-a", 1, topic, &[(0, 3, ACCEPT)])).await;
    assert_eq!(r.responses[0].partitions[0].error_code, 0);
    let r = c.call(1, &fetch("member-a", 2, topic, &[(4, 5, ACCEPT)], 100, 0)).await;
    assert_eq!(ack_code(&r), 0);
    broker.kill_9();

    let mut broker = common::BrokerProcess::spawn_at(&data, addr, &[], |_| {});
    let mut c = RawClient::connect(addr).await;
    common::produce_all(&config, "jobs", &["after".to_string()]).await;
    let topic2 = c.call(1, &join("member-b")).await.assignment.expect("an assignment").topic_partitions[0].topic_id;
    assert_eq!(topic2, topic);
    let r = c.call(1, &fetch("member-b", 0, topic, &[], 100, 0)).await;
    assert_eq!(acquired(&r), vec![(6, 9, 2), (10, 10, 1)], "held records come back, accepted ones do not");
    broker.kill_9();
}

fn txn_producer(
    bootstrap: &str,
    tid: &str,
) -> rdkafka::producer::ThreadedProducer<rdkafka::producer::DefaultProducerContext> {
    let p: rdkafka::producer::ThreadedProducer<_> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", tid)
        .set("linger.ms", "0")
        .create()
        .expect("producer");
    rdkafka::producer::Producer::init_transactions(&p, Duration::from_secs(10)).expect("init_transactions");
    p
}

fn send(p: &rdkafka::producer::ThreadedProducer<rdkafka::producer::DefaultProducerContext>, value: &str) {
    p.send(rdkafka::producer::BaseRecord::<(), str>::to("jobs").partition(0).payload(value)).expect("send");
    rdkafka::producer::Producer::flush(p, Duration::from_secs(10)).expect("flush");
}

/// `share.isolation.level=read_committed`: a share group reads up to the last stable offset and
/// never delivers what aborted transactions wrote (Kafka 4.1 archives those records).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_committed_share_group_skips_aborted_and_open_transactions() {
    let broker = TestBroker::start().await;
    let mut c = RawClient::connect(broker.addr).await;
    c.create_topic("jobs", 1).await;
    assert_eq!(set_group_config(&mut c, "share.auto.offset.reset", "earliest").await, 0);
    assert_eq!(set_group_config(&mut c, "share.isolation.level", "read_committed").await, 0);
    assert_eq!(group_config(&mut c, "share.isolation.level").await, (Some("read_committed".into()), 8));
    let bootstrap = broker.bootstrap();
    let open = tokio::task::spawn_blocking(move || {
        use rdkafka::producer::Producer;
        let p = txn_producer(&bootstrap, "share-rc");
        p.begin_transaction().unwrap();
        (0..3).for_each(|i| send(&p, &format!("committed-{i}"))); // 0-2, marker 3
        p.commit_transaction(Duration::from_secs(10)).unwrap();
        p.begin_transaction().unwrap();
        (0..2).for_each(|i| send(&p, &format!("aborted-{i}"))); // 4-5, marker 6
        p.abort_transaction(Duration::from_secs(10)).unwrap();
        let plain: rdkafka::producer::ThreadedProducer<rdkafka::producer::DefaultProducerContext> =
            ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
        send(&plain, "plain-7"); // 7
        p.begin_transaction().unwrap();
        send(&p, "open-8"); // 8, still open: the last stable offset stays at 8
        send(&plain, "plain-9"); // 9
        p
    })
    .await
    .unwrap();
    let topic = c.call(1, &join("member-a")).await.assignment.expect("an assignment").topic_partitions[0].topic_id;
    let r = c.call(1, &fetch("member-a", 0, topic, &[], 100, 0)).await;
    assert_eq!(acquired(&r), vec![(0, 2, 1), (7, 7, 1)], "committed and plain records below the open transaction");
    let r = c.call(1, &fetch("member-a", 1, topic, &[(0, 2, ACCEPT), (7, 7, ACCEPT)], 100, 0)).await;
    assert!(acquired(&r).is_empty(), "nothing past the last stable offset: {r:?}");
    tokio::task::spawn_blocking(move || {
        rdkafka::producer::Producer::commit_transaction(&open, Duration::from_secs(10)).unwrap()
    })
    .await
    .unwrap();
    let r = c.call(1, &fetch("member-a", 2, topic, &[], 100, 0)).await;
    assert_eq!(acquired(&r), vec![(8, 9, 1)]);
    broker.stop().await;
}

/// `share.auto.offset.reset=by_duration:PT1H`: a new share-partition starts at the first record
/// written within the last hour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_group_can_start_by_duration() {
    let broker = TestBroker::start().await;
    let mut c = RawClient::connect(broker.addr).await;
    c.create_topic("jobs", 1).await;
    assert_eq!(set_group_config(&mut c, "share.auto.offset.reset", "by_duration:PT1H").await, 0);
    assert_eq!(group_config(&mut c, "share.auto.offset.reset").await, (Some("by_duration:PT1H".into()), 8));
    assert_eq!(
        set_group_config(&mut c, "share.auto.offset.reset", "by_duration:-PT1H").await,
        code(ResponseError::InvalidConfig)
    );
    let bootstrap = broker.bootstrap();
    tokio::task::spawn_blocking(move || {
        let p: rdkafka::producer::ThreadedProducer<rdkafka::producer::DefaultProducerContext> =
            ClientConfig::new().set("bootstrap.servers", &bootstrap).create().unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        for (i, age_ms) in [(0, 3 * 3_600_000), (1, 2 * 3_600_000), (2, 60_000), (3, 0)] {
            let v = format!("job-{i}");
            let r =
                rdkafka::producer::BaseRecord::<(), str>::to("jobs").partition(0).payload(&v).timestamp(now - age_ms);
            p.send(r).expect("send");
            rdkafka::producer::Producer::flush(&p, Duration::from_secs(10)).expect("flush");
        }
    })
    .await
    .unwrap();
    let topic = c.call(1, &join("member-a")).await.assignment.expect("an assignment").topic_partitions[0].topic_id;
    let r = c.call(1, &fetch("member-a", 0, topic, &[], 100, 0)).await;
    assert_eq!(acquired(&r), vec![(2, 3, 1)], "the two records of the last hour");
    broker.stop().await;
}
