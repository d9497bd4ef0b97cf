//! Hostile bytes against the real binary: huge declared counts at every position of every
//! supported request, truncated bodies, bad frame sizes, unknown API keys and random garbage.
//! The broker must keep serving a well-behaved client throughout, and its memory must stay flat.

mod common;

use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};
use common::{BrokerProcess, RawClient};
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, Request, StrBytes};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// Encodes a request at `version`, or `None` when a field is not valid at that version.
fn encode<R: Request>(version: i16, req: &R) -> Option<Bytes> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("hostile")));
    let mut buf = BytesMut::new();
    header.encode(&mut buf, R::header_version(version)).ok()?;
    req.encode(&mut buf, version).ok()?;
    Some(buf.freeze())
}

/// One well-populated request body per supported API and version (so nested arrays exist).
fn samples() -> Vec<(&'static str, i16, Bytes)> {
    let mut out = Vec::new();
    let records = Bytes::from_static(&[0u8; 70]);
    for v in 0..=13 {
        let topics = vec![
            MetadataRequestTopic::default().with_name(Some(name("a"))),
            MetadataRequestTopic::default().with_name(Some(name("b"))),
        ];
        if let Some(b) = encode(v, &MetadataRequest::default().with_topics(Some(topics))) {
            out.push(("Metadata", v, b));
        }
    }
    for v in 3..=13 {
        let req = ProduceRequest::default().with_acks(1).with_timeout_ms(100).with_topic_data(vec![
            TopicProduceData::default().with_name(name("t")).with_partition_data(vec![
                PartitionProduceData::default().with_index(0).with_records(Some(records.clone())),
                PartitionProduceData::default().with_index(1).with_records(Some(records.clone())),
            ]),
        ]);
        if let Some(b) = encode(v, &req) {
            out.push(("Produce", v, b));
        }
    }
    for v in 4..=18 {
        let req = FetchRequest::default()
            .with_max_wait_ms(10)
            .with_max_bytes(1000)
            .with_topics(vec![FetchTopic::default()
                .with_topic(name("t"))
                .with_partitions(vec![FetchPartition::default(), FetchPartition::default().with_partition(1)])])
            .with_forgotten_topics_data(if v >= 7 {
                vec![ForgottenTopic::default().with_topic(name("f")).with_partitions(vec![1, 2])]
            } else {
                vec![]
            });
        if let Some(b) = encode(v, &req) {
            out.push(("Fetch", v, b));
        }
    }
    for v in 1..=10 {
        let req = ListOffsetsRequest::default().with_topics(vec![ListOffsetsTopic::default()
            .with_name(name("t"))
            .with_partitions(vec![ListOffsetsPartition::default(), ListOffsetsPartition::default()])]);
        if let Some(b) = encode(v, &req) {
            out.push(("ListOffsets", v, b));
        }
    }
    for v in 2..=7 {
        // validate_only: a mutated count must never make the broker create anything.
        let req = CreateTopicsRequest::default().with_validate_only(true).with_topics(vec![CreatableTopic::default()
            .with_name(name("c"))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(vec![CreatableReplicaAssignment::default().with_broker_ids(vec![1.into(), 2.into()])])
            .with_configs(vec![CreatableTopicConfig::default()
                .with_name(StrBytes::from_static_str("retention.ms"))
                .with_value(Some(StrBytes::from_static_str("1")))])]);
        if let Some(b) = encode(v, &req) {
            out.push(("CreateTopics", v, b));
        }
    }
    for v in 1..=6 {
        let req = if v >= 6 {
            DeleteTopicsRequest::default().with_topics(vec![DeleteTopicState::default().with_name(Some(name("zz")))])
        } else {
            DeleteTopicsRequest::default().with_topic_names(vec![name("zz"), name("zy")])
        };
        if let Some(b) = encode(v, &req) {
            out.push(("DeleteTopics", v, b));
        }
    }
    let group = || GroupId(StrBytes::from_static_str("hg"));
    for v in 0..=9 {
        let req = JoinGroupRequest::default()
            .with_group_id(group())
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10)
            .with_protocol_type(StrBytes::from_static_str("consumer"))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str("range"))
                .with_metadata(Bytes::from_static(b"abc"))]);
        if let Some(b) = encode(v, &req) {
            out.push(("JoinGroup", v, b));
        }
    }
    for v in 0..=5 {
        let req = SyncGroupRequest::default().with_group_id(group()).with_assignments(vec![
            sync_group_request::SyncGroupRequestAssignment::default()
                .with_member_id(StrBytes::from_static_str("m"))
                .with_assignment(Bytes::from_static(b"xyz")),
        ]);
        if let Some(b) = encode(v, &req) {
            out.push(("SyncGroup", v, b));
        }
    }
    for v in 2..=9 {
        let req = OffsetCommitRequest::default()
            .with_group_id(group())
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(name("t"))
                .with_partitions(vec![offset_commit_request::OffsetCommitRequestPartition::default()
                    .with_committed_metadata(Some(StrBytes::from_static_str("m")))])]);
        if let Some(b) = encode(v, &req) {
            out.push(("OffsetCommit", v, b));
        }
    }
    for v in 1..=9 {
        let topics = vec![offset_fetch_request::OffsetFetchRequestTopic::default()
            .with_name(name("t"))
            .with_partition_indexes(vec![0, 1])];
        let req = if v >= 8 {
            OffsetFetchRequest::default().with_groups(vec![offset_fetch_request::OffsetFetchRequestGroup::default()
                .with_group_id(group())
                .with_topics(Some(vec![offset_fetch_request::OffsetFetchRequestTopics::default()
                    .with_name(name("t"))
                    .with_partition_indexes(vec![0, 1])]))])
        } else {
            OffsetFetchRequest::default().with_group_id(group()).with_topics(Some(topics))
        };
        if let Some(b) = encode(v, &req) {
            out.push(("OffsetFetch", v, b));
        }
    }
    for v in 0..=6 {
        let req = DescribeGroupsRequest::default().with_groups(vec![group(), group()]);
        if let Some(b) = encode(v, &req) {
            out.push(("DescribeGroups", v, b));
        }
    }
    for v in 3..=5 {
        let req = LeaveGroupRequest::default().with_group_id(group()).with_members(vec![
            leave_group_request::MemberIdentity::default().with_member_id(StrBytes::from_static_str("m")),
        ]);
        if let Some(b) = encode(v, &req) {
            out.push(("LeaveGroup", v, b));
        }
    }
    for v in 4..=6 {
        let req = FindCoordinatorRequest::default()
            .with_coordinator_keys(vec![StrBytes::from_static_str("a"), StrBytes::from_static_str("b")]);
        if let Some(b) = encode(v, &req) {
            out.push(("FindCoordinator", v, b));
        }
    }
    for v in 0..=4 {
        if let Some(b) = encode(v, &ApiVersionsRequest::default()) {
            out.push(("ApiVersions", v, b));
        }
    }
    out
}

fn framed(payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 4);
    f.put_i32(payload.len() as i32);
    f.extend_from_slice(payload);
    f
}

/// Every hostile variant of one sample: huge i32 and varint counts written at each position,
/// and every truncation.
fn variants(sample: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for i in 4..sample.len() {
        for pattern in
            [&[0x7f, 0xff, 0xff, 0xff][..], &[0xff, 0xff, 0xff, 0xff, 0x07][..], &[0x80, 0x80, 0x80, 0x80, 0x08][..]]
        {
            let mut m = sample.to_vec();
            for (j, b) in pattern.iter().enumerate() {
                if i + j < m.len() {
                    m[i + j] = *b;
                }
            }
            out.push(framed(&m));
        }
    }
    for len in 0..sample.len() {
        out.push(framed(&sample[..len]));
    }
    out
}

async fn fire(addr: SocketAddr, frame: &[u8]) {
    if let Ok(mut s) = TcpStream::connect(addr).await {
        let _ = s.write_all(frame).await;
        let _ = s.shutdown().await;
    }
}

async fn still_serving(addr: SocketAddr, control: &mut RawClient) {
    let resp = control
        .call(
            3,
            &ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("control"))
                .with_client_software_version(StrBytes::from_static_str("1")),
        )
        .await;
    assert_eq!(resp.error_code, 0);
    let mut fresh = RawClient::connect(addr).await;
    assert!(!fresh.call(12, &MetadataRequest::default().with_topics(None)).await.brokers.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_frames_cannot_crash_or_bloat_the_broker() {
    let tmp = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::spawn(&tmp.path().join("data"), &[("RUST_LOG", "error")]);
    let addr = broker.addr;
    let mut control = RawClient::connect(addr).await;
    still_serving(addr, &mut control).await;
    let baseline = broker.rss_kib();

    // Bad sizes and unknown API keys.
    let mut odd: Vec<Vec<u8>> = vec![
        (-1i32).to_be_bytes().to_vec(),
        0i32.to_be_bytes().to_vec(),
        framed(&[0, 3]),
        framed(&[0, 3, 0, 1, 0, 0]),
        i32::MAX.to_be_bytes().to_vec(),
        (200i32 << 20).to_be_bytes().to_vec(),
        (100i32 << 20).to_be_bytes().iter().copied().chain([0u8; 16]).collect(),
    ];
    for key in [-1i16, 99, 999, i16::MAX] {
        let mut p = Vec::new();
        p.put_i16(key);
        p.put_i16(0);
        p.put_i32(1);
        p.put_i16(-1);
        odd.push(framed(&p));
    }
    // Supported APIs at versions outside our ranges.
    for (key, version) in [(0i16, 14i16), (1, 3), (1, 19), (3, 14), (19, 99), (11, 0)] {
        let mut p = Vec::new();
        p.put_i16(key);
        p.put_i16(version);
        p.put_i32(1);
        p.put_i16(-1);
        p.put_slice(&[0xff; 8]);
        odd.push(framed(&p));
    }
    for f in &odd {
        fire(addr, f).await;
    }
    still_serving(addr, &mut control).await;

    let samples = samples();
    assert!(samples.len() > 60, "expected a sample per API version, got {}", samples.len());
    let mut sent = 0usize;
    for (api, version, sample) in &samples {
        let frames = variants(sample);
        for chunk in frames.chunks(64) {
            let tasks: Vec<_> =
                chunk.iter().cloned().map(|f| tokio::spawn(async move { fire(addr, &f).await })).collect();
            for t in tasks {
                t.await.unwrap();
            }
        }
        sent += frames.len();
        assert!(broker.is_running(), "broker died on {api} v{version}:\n{}", broker.log());
        // A panic caught and turned into a closed connection still is a bug: the default
        // panic hook prints it, and the catch logs it. Neither may appear.
        assert!(!broker.log().contains("panicked"), "a panic on {api} v{version}:\n{}", broker.log());
        still_serving(addr, &mut control).await;
    }

    // Pseudo-random garbage behind plausible headers.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..2000 {
        let key = [0i16, 1, 2, 3, 18, 19, 20][(next() % 7) as usize];
        let mut p = Vec::new();
        p.put_i16(key);
        p.put_i16((next() % 14) as i16);
        p.put_i32(1);
        p.put_i16(-1);
        for _ in 0..(next() % 64) {
            p.push(next() as u8);
        }
        fire(addr, &framed(&p)).await;
        sent += 1;
    }
    assert!(broker.is_running(), "broker died on random input:\n{}", broker.log());
    assert!(!broker.log().contains("panicked"), "a panic on random input:\n{}", broker.log());
    still_serving(addr, &mut control).await;

    let after = broker.rss_kib();
    eprintln!("sent {sent} hostile frames; RSS {baseline} KiB -> {after} KiB");
    assert!(after < baseline + 64 * 1024, "RSS grew from {baseline} KiB to {after} KiB");
    // validate_only kept every mutated CreateTopics from creating anything.
    let meta = control.call(12, &MetadataRequest::default().with_topics(None)).await;
    assert!(meta.topics.iter().all(|t| t.name.as_ref().is_some_and(|n| n.0.len() <= 2)));
}

#[test]
fn decode_only_rejects_every_truncation_without_panicking() {
    for (_, _, sample) in samples() {
        for len in 0..sample.len() {
            if let Err(e) = gregor::handlers::decode_only(sample.slice(..len)) {
                assert!(!e.contains("panicked"), "{e} (truncated to {len} bytes)");
            }
        }
        assert!(gregor::handlers::decode_only(sample.clone()).is_ok());
    }
}
