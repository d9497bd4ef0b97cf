//! Hostile bytes against the real binary: huge declared counts at every position of every
//! supported request, truncated bodies, bad frame sizes, unknown API keys and random garbage.
//! The broker must keep serving a well-behaved client throughout, and its memory must stay flat.

use std::net::SocketAddr;

use crate::common::{BrokerProcess, RawClient};
use bytes::{BufMut, Bytes, BytesMut};
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

// ---------------------------------------------------------------- SASL_SSL, before authentication

mod sasl_ssl {
    //! The same hostile input against a SASL_SSL listener, after the TLS handshake but before
    //! any login: only ApiVersions, SaslHandshake and SaslAuthenticate may be served, frames are
    //! capped at 512 KiB, and garbage tokens fail the login without hurting anyone else.

    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::{Decodable, HeaderVersion, Request, StrBytes};
    use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair};
    use rustls::pki_types::ServerName;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio_rustls::client::TlsStream;
    use tokio_rustls::TlsConnector;

    use super::{encode, framed, samples, variants};
    use crate::common::{self, BrokerProcess};

    const JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";"#;

    /// A CA made with rcgen, the broker's PEM keystore signed by it, and a client that trusts it.
    struct Tls {
        ca_pem: std::path::PathBuf,
        keystore: std::path::PathBuf,
        connector: TlsConnector,
    }

    fn pki(dir: &std::path::Path) -> Tls {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name = DistinguishedName::new();
        ca.distinguished_name.push(DnType::CommonName, "hostile-test-ca");
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let mut leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        leaf.distinguished_name = DistinguishedName::new();
        leaf.distinguished_name.push(DnType::CommonName, "localhost");
        let leaf_key = KeyPair::generate().unwrap();
        let leaf_pem = leaf.signed_by(&leaf_key, &issuer).unwrap().pem();
        let (ca_pem, keystore) = (dir.join("ca.pem"), dir.join("broker.pem"));
        std::fs::write(&ca_pem, ca_cert.pem()).unwrap();
        std::fs::write(&keystore, format!("{}{leaf_pem}", leaf_key.serialize_pem())).unwrap();

        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca_cert.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Tls { ca_pem, keystore, connector: TlsConnector::from(Arc::new(config)) }
    }

    async fn connect(addr: std::net::SocketAddr, tls: &TlsConnector) -> TlsStream<TcpStream> {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let name = ServerName::try_from("127.0.0.1").unwrap();
        tokio::time::timeout(Duration::from_secs(10), tls.connect(name, tcp))
            .await
            .expect("TLS handshake within 10 s")
            .expect("TLS handshake")
    }

    /// Writes `frame` on a fresh TLS connection and closes our side; errors are fine (the
    /// broker may close first).
    async fn fire(addr: std::net::SocketAddr, tls: TlsConnector, frame: Vec<u8>) {
        let mut s = connect(addr, &tls).await;
        let _ = s.write_all(&frame).await;
        let _ = s.shutdown().await;
    }

    /// Everything the broker sends until it closes the connection; fails if it stays open.
    async fn read_to_close(s: &mut TlsStream<TcpStream>) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, s.read(&mut buf)).await {
                Err(_) => panic!("the connection is still open after 5 s (was a request served before authentication?); it sent {got:?}"),
                // A reset or a missing close_notify is a close too.
                Ok(Ok(0)) | Ok(Err(_)) => return got,
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// A framed request with this correlation id (`encode` writes 7).
    fn request<R: Request>(version: i16, req: &R) -> Vec<u8> {
        framed(&encode(version, req).expect("encodable at this version"))
    }

    /// Sends `req` and decodes its answer.
    async fn call<R: Request>(s: &mut TlsStream<TcpStream>, version: i16, req: &R) -> R::Response
    where
        R::Response: Decodable + HeaderVersion,
    {
        s.write_all(&request(version, req)).await.unwrap();
        let mut size = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut size))
            .await
            .expect("an answer within 10 s")
            .expect("an answer, not a closed connection");
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        s.read_exact(&mut body).await.unwrap();
        let mut body = Bytes::from(body);
        let header = ResponseHeader::decode(&mut body, R::Response::header_version(version)).unwrap();
        assert_eq!(header.correlation_id, 7);
        R::Response::decode(&mut body, version).unwrap()
    }

    async fn handshake(s: &mut TlsStream<TcpStream>, mechanism: &'static str) {
        let hs =
            call(s, 1, &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism))).await;
        assert_eq!(hs.error_code, 0, "SaslHandshake {mechanism}");
    }

    async fn authenticate(s: &mut TlsStream<TcpStream>, token: Vec<u8>) -> SaslAuthenticateResponse {
        call(s, 2, &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token))).await
    }

    async fn plain_login(addr: std::net::SocketAddr, tls: &TlsConnector, user: &str, pw: &str) -> TlsStream<TcpStream> {
        let mut s = connect(addr, tls).await;
        handshake(&mut s, "PLAIN").await;
        let auth = authenticate(&mut s, format!("\0{user}\0{pw}").into_bytes()).await;
        assert_eq!(auth.error_code, 0, "PLAIN login of {user}: {:?}", auth.error_message);
        s
    }

    /// The answer to a failed SaslAuthenticate v2: size, correlation id, the flexible header's
    /// empty tag buffer, then SASL_AUTHENTICATION_FAILED (58). Nothing else may come back.
    /// The broker's answer to a login attempt: one whole frame (after which the client leaves,
    /// as clients do), or whatever it sent before it closed; fails if neither comes in 5 s.
    async fn read_login_answer(s: &mut TlsStream<TcpStream>) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(size) = got.get(..4).map(|b: &[u8]| i32::from_be_bytes(b.try_into().unwrap())) {
                if got.len() >= 4 + size.max(0) as usize {
                    return got;
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, s.read(&mut buf)).await {
                Err(_) => panic!("neither an answer nor a close after 5 s; got {got:?}"),
                Ok(Ok(0)) | Ok(Err(_)) => return got,
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            }
        }
    }

    fn assert_refused_login(answer: &[u8], what: &str) {
        if !answer.is_empty() {
            assert_eq!(answer.get(9..11), Some(&[0u8, 58][..]), "{what}: got {answer:?}");
        }
    }

    fn healthy(broker: &mut BrokerProcess, what: &str) {
        assert!(broker.is_running(), "broker died after {what}:\n{}", broker.log());
        assert!(!broker.log().contains("panicked"), "a panic after {what}:\n{}", broker.log());
    }

    /// Runs `frames` on fresh TLS connections, 32 at a time.
    async fn fire_all(addr: std::net::SocketAddr, tls: &TlsConnector, frames: Vec<Vec<u8>>) {
        for chunk in frames.chunks(32) {
            let tasks: Vec<_> = chunk.iter().cloned().map(|f| tokio::spawn(fire(addr, tls.clone(), f))).collect();
            for t in tasks {
                t.await.unwrap();
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hostile_frames_before_authentication_on_a_sasl_ssl_listener() {
        let tmp = tempfile::tempdir().unwrap();
        let tls = pki(tmp.path());
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let (listeners, keystore) = (format!("SASL_SSL://{addr}"), tls.keystore.display().to_string());
        let env = [
            ("RUST_LOG", "error"),
            ("KAFKA_LISTENERS", listeners.as_str()),
            ("KAFKA_SASL_ENABLED_MECHANISMS", "PLAIN,SCRAM-SHA-512"),
            ("KAFKA_LISTENER_NAME_SASL__SSL_PLAIN_SASL_JAAS_CONFIG", JAAS),
            ("KAFKA_SSL_KEYSTORE_TYPE", "PEM"),
            ("KAFKA_SSL_KEYSTORE_LOCATION", keystore.as_str()),
            // Failed logins answer at once: the test sends hundreds of them.
            ("KAFKA_CONNECTION_FAILED_AUTHENTICATION_DELAY_MS", "0"),
        ];
        let mut broker = BrokerProcess::spawn_with_listeners(&tmp.path().join("data"), addr, &env);
        let t = &tls.connector;

        // A SCRAM user, created by an authenticated admin: garbage then reaches the last step
        // of a SCRAM exchange for a user that exists.
        let mut admin = plain_login(addr, t, "admin", "admin-secret").await;
        let salt = b"hostile-salt".to_vec();
        let salted =
            gregor::auth::scram::salt_password(gregor::auth::scram::SCRAM_SHA_512, "carol-secret", &salt, 4096);
        let upsert =
            AlterUserScramCredentialsRequest::default().with_upsertions(vec![ScramCredentialUpsertion::default()
                .with_name(StrBytes::from_static_str("carol"))
                .with_mechanism(gregor::auth::scram::SCRAM_SHA_512)
                .with_iterations(4096)
                .with_salt(Bytes::from(salt))
                .with_salted_password(Bytes::from(salted))]);
        let created = call(&mut admin, 0, &upsert).await;
        assert_eq!(created.results[0].error_code, 0, "{:?}", created.results[0].error_message);
        let baseline = broker.rss_kib();

        // 1. Every non-SASL request of every supported API and version, as the first request
        //    and after ApiVersions and a SaslHandshake: closed, not one byte served.
        let samples = samples();
        let mut refused = 0;
        for (api, version, sample) in &samples {
            if *api == "ApiVersions" {
                continue;
            }
            let mut s = connect(addr, t).await;
            s.write_all(&framed(sample)).await.unwrap();
            let answer = read_to_close(&mut s).await;
            assert!(answer.is_empty(), "{api} v{version} before authentication was answered: {answer:?}");
            refused += 1;
        }
        let mut last_of_each: Vec<&(&str, i16, Bytes)> = Vec::new();
        for sample in &samples {
            match last_of_each.last_mut() {
                Some(last) if last.0 == sample.0 => *last = sample,
                _ => last_of_each.push(sample),
            }
        }
        for (api, version, sample) in last_of_each.iter().copied().filter(|s| s.0 != "ApiVersions") {
            let mut s = connect(addr, t).await;
            let versions = ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("hostile"))
                .with_client_software_version(StrBytes::from_static_str("1"));
            assert_eq!(call(&mut s, 3, &versions).await.error_code, 0);
            handshake(&mut s, "PLAIN").await;
            s.write_all(&framed(sample)).await.unwrap();
            let answer = read_to_close(&mut s).await;
            assert!(answer.is_empty(), "{api} v{version} between handshake and login was answered: {answer:?}");
            refused += 1;
        }
        healthy(&mut broker, "non-SASL requests before authentication");

        // 2. Sizes: above the 512 KiB pre-authentication cap (closed before any body is read,
        //    even with the body announced as coming), negative, zero and absurd.
        let sizes: [i32; 7] = [524_289, 600_000, 100 << 20, i32::MAX, -1, i32::MIN, 0];
        for size in sizes {
            let mut s = connect(addr, t).await;
            let mut frame = size.to_be_bytes().to_vec();
            frame.extend_from_slice(&[0u8; 64]);
            let _ = s.write_all(&frame).await;
            assert!(read_to_close(&mut s).await.is_empty(), "frame size {size} got an answer");
        }
        // Many connections at once each announcing a 100 MiB frame and sending part of it:
        // nothing may be buffered for them.
        let big: Vec<Vec<u8>> =
            (0..64).map(|_| [&(100i32 << 20).to_be_bytes()[..], &[0x55u8; 16 * 1024][..]].concat()).collect();
        fire_all(addr, t, big).await;
        healthy(&mut broker, "oversized frames");

        // 3. Mutated and truncated SaslHandshake and SaslAuthenticate requests (the two APIs
        //    decoded before authentication) and a sample of the variants of every other API.
        let mut sasl_samples = Vec::new();
        for v in 0..=1 {
            let hs = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("SCRAM-SHA-512"));
            sasl_samples.push(encode(v, &hs).unwrap());
        }
        for v in 0..=2 {
            let auth = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(b"n,,n=carol,r=abcdef"));
            sasl_samples.push(encode(v, &auth).unwrap());
        }
        let mut frames = Vec::new();
        for sample in &sasl_samples {
            frames.extend(variants(sample));
        }
        for (_, _, sample) in &last_of_each {
            frames.extend(variants(sample).into_iter().step_by(7));
        }
        // SaslAuthenticate variants behind a valid handshake, so the token decoder is reached.
        let hs =
            request(1, &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("SCRAM-SHA-512")));
        for v in 0..=2 {
            let auth = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(b"n,,n=carol,r=abcdef"));
            for variant in variants(&encode(v, &auth).unwrap()) {
                frames.push([&hs[..], &variant[..]].concat());
            }
        }
        let sent_variants = frames.len();
        fire_all(addr, t, frames).await;
        healthy(&mut broker, "mutated SASL and API frames");

        // 4. Garbage tokens: for PLAIN, as the SCRAM client-first message, and as the SCRAM
        //    client-final message after a valid first step for an existing user. Each is a
        //    failed login (SASL_AUTHENTICATION_FAILED, then closed), never a session.
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut garbage = |max: u64| -> Vec<u8> { (0..next() % max).map(|_| next() as u8).collect() };
        for round in 0..90 {
            let mut s = connect(addr, t).await;
            let token = match round % 3 {
                0 => {
                    handshake(&mut s, "PLAIN").await;
                    garbage(300)
                }
                1 => {
                    handshake(&mut s, "SCRAM-SHA-512").await;
                    garbage(300)
                }
                _ => {
                    handshake(&mut s, "SCRAM-SHA-512").await;
                    let first = authenticate(&mut s, b"n,,n=carol,r=hostile-client-nonce".to_vec()).await;
                    assert_eq!(first.error_code, 0, "SCRAM client-first: {:?}", first.error_message);
                    let mut token = b"c=biws,r=".to_vec();
                    token.extend(garbage(200));
                    token
                }
            };
            let framed_token = request(2, &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token)));
            s.write_all(&framed_token).await.unwrap();
            let answer = read_login_answer(&mut s).await;
            assert_refused_login(&answer, &format!("garbage token, round {round}"));
            // A garbage PLAIN token may by chance be a valid one only if it names a user and
            // its password; 58 above already proved it was not.
        }
        // Large garbage tokens just under the cap, in a well-formed SaslAuthenticate.
        for mechanism in ["PLAIN", "SCRAM-SHA-512"] {
            let mut s = connect(addr, t).await;
            handshake(&mut s, mechanism).await;
            let token = vec![b','; 500 * 1024];
            s.write_all(&request(2, &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token))))
                .await
                .unwrap();
            assert_refused_login(&read_login_answer(&mut s).await, &format!("a 500 KiB {mechanism} token"));
        }
        healthy(&mut broker, "garbage SASL tokens");

        // 5. The broker still serves real clients: a raw login, and librdkafka producing and
        //    consuming in a group over SASL_SSL with PLAIN and SCRAM-SHA-512.
        let mut alice = plain_login(addr, t, "alice", "alice-secret").await;
        let md = call(&mut alice, 12, &MetadataRequest::default().with_topics(None)).await;
        assert_eq!(md.brokers.len(), 1);
        let after = broker.rss_kib();
        eprintln!(
            "refused {refused} requests, sent {sent_variants} mutated frames and 92 garbage logins over TLS; RSS {baseline} KiB -> {after} KiB"
        );
        assert!(after < baseline + 64 * 1024, "RSS grew from {baseline} KiB to {after} KiB");
        for (mechanism, user, password) in
            [("PLAIN", "alice", "alice-secret"), ("SCRAM-SHA-512", "carol", "carol-secret")]
        {
            let mut config = rdkafka::config::ClientConfig::new();
            config
                .set("bootstrap.servers", addr.to_string())
                .set("security.protocol", "sasl_ssl")
                .set("ssl.ca.location", tls.ca_pem.display().to_string())
                .set("sasl.mechanisms", mechanism)
                .set("sasl.username", user)
                .set("sasl.password", password)
                .set("message.timeout.ms", "20000");
            let topic = format!("after-hostile-{}", mechanism.to_lowercase());
            let values: Vec<String> = (0..5).map(|i| format!("v{i}")).collect();
            common::produce_all(&config, &topic, &values).await;
            assert_eq!(common::consume_group(&config, &topic, &format!("g-{topic}"), values.len()), values);
        }
        healthy(&mut broker, "the real clients");
    }
}
