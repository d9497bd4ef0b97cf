//! SASL listeners configured as a compose file configures the apache/kafka image: a PLAINTEXT
//! listener beside SASL_PLAINTEXT and SASL_SSL ones with PLAIN (users from the JAAS setting)
//! and SCRAM-SHA-256/512 (users created through AlterUserScramCredentials). A real client
//! (librdkafka) authenticates with each mechanism over each; wrong credentials and mechanisms
//! fail with the client's clear error while the broker serves everyone else; raw sockets check
//! that nothing is served before authentication or after a session expired, and that
//! re-authentication (KIP-368) renews a session.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{self, metadata, ClientErrors, RawClient};
use bytes::Bytes;
use gregor::auth::scram;
use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, ApiVersionsRequest, MetadataRequest, SaslAuthenticateRequest,
    SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::statistics::Statistics;
use rdkafka::ClientContext;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

const JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";"#;

/// The broker binary as a child process, killed on drop.
struct Broker {
    child: Child,
    log: PathBuf,
    plain: u16,
    sasl: u16,
    sasl_ssl: u16,
    ca: PathBuf,
}

impl Broker {
    /// A broker with PLAINTEXT, SASL_PLAINTEXT and SASL_SSL listeners, and `extra` settings.
    fn start(dir: &Path, extra: &[(&str, String)]) -> Self {
        let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, "localhost");
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap().pem();
        let (ca, keystore) = (dir.join("server.crt"), dir.join("server.pem"));
        std::fs::write(&ca, &cert).unwrap();
        std::fs::write(&keystore, format!("{}{cert}", key.serialize_pem())).unwrap();
        let (plain, sasl, sasl_ssl) = (free_port(), free_port(), free_port());
        let data = dir.join("data");
        let log = dir.join("broker.log");
        let out = std::fs::File::create(&log).unwrap();
        let env: Vec<(&str, String)> = vec![
            ("GREGOR__SERVER__HTTP_LISTEN", "off".into()),
            ("KAFKA_LOG_DIRS", data.display().to_string()),
            (
                "KAFKA_LISTENERS",
                format!(
                    "PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl},SASL_SSL://127.0.0.1:{sasl_ssl}"
                ),
            ),
            ("KAFKA_SASL_ENABLED_MECHANISMS", "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512".into()),
            ("KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL", "PLAIN".into()),
            ("KAFKA_LISTENER_NAME_SASL__PLAINTEXT_PLAIN_SASL_JAAS_CONFIG", JAAS.into()),
            ("KAFKA_LISTENER_NAME_SASL__SSL_PLAIN_SASL_JAAS_CONFIG", JAAS.into()),
            ("KAFKA_SSL_KEYSTORE_TYPE", "PEM".into()),
            ("KAFKA_SSL_KEYSTORE_LOCATION", keystore.display().to_string()),
            ("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0".into()),
        ];
        let child = Command::new(env!("CARGO_BIN_EXE_gregor"))
            .envs(env.iter().chain(extra).map(|(k, v)| (k, v)))
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let mut broker = Broker { child, log, plain, sasl, sasl_ssl, ca };
        common::wait_for_sync(Duration::from_secs(30), || {
            assert!(broker.running(), "gregor exited:\n{}", broker.log());
            [plain, sasl, sasl_ssl].iter().all(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok())
        });
        broker
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn addr(port: u16) -> SocketAddr {
        format!("127.0.0.1:{port}").parse().unwrap()
    }

    /// Creates SCRAM credentials through AlterUserScramCredentials on the PLAINTEXT listener.
    async fn add_scram_user(&self, user: &str, mechanism: i8, password: &str) {
        let salt = format!("salt-of-{user}").into_bytes();
        let iterations = 4096;
        let salted = scram::salt_password(mechanism, password, &salt, iterations);
        let mut c = RawClient::connect(Self::addr(self.plain)).await;
        let req =
            AlterUserScramCredentialsRequest::default().with_upsertions(vec![ScramCredentialUpsertion::default()
                .with_name(StrBytes::from_string(user.into()))
                .with_mechanism(mechanism)
                .with_iterations(iterations)
                .with_salt(Bytes::from(salt))
                .with_salted_password(Bytes::from(salted))]);
        let resp = c.call(0, &req).await;
        assert_eq!(resp.results[0].error_code, 0, "{:?}", resp.results[0].error_message);
    }

    /// librdkafka settings for `mechanism` as `user` over SASL_PLAINTEXT or SASL_SSL.
    fn client(&self, ssl: bool, mechanism: &str, user: &str, password: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        let port = if ssl { self.sasl_ssl } else { self.sasl };
        c.set("bootstrap.servers", format!("127.0.0.1:{port}"))
            .set("security.protocol", if ssl { "sasl_ssl" } else { "sasl_plaintext" })
            .set("sasl.mechanisms", mechanism)
            .set("sasl.username", user)
            .set("sasl.password", password)
            .set("socket.timeout.ms", "10000")
            .set("message.timeout.ms", "20000");
        if ssl {
            c.set("ssl.ca.location", self.ca.display().to_string());
        }
        c
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything the broker sends until it closes the connection; fails if it stays open.
async fn read_to_close(client: &mut RawClient) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), client.stream.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the connection is still open; it sent {got:?}");
    got
}

/// A raw PLAIN login (SaslHandshake v1, SaslAuthenticate v2); the session lifetime in ms.
async fn plain_login(c: &mut RawClient, user: &str, password: &str) -> Result<i64, (i16, String)> {
    let hs = c.call(1, &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"))).await;
    assert_eq!(hs.error_code, 0);
    let token = format!("\0{user}\0{password}");
    let auth = c.call(2, &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token))).await;
    match auth.error_code {
        0 => Ok(auth.session_lifetime_ms),
        code => Err((code, auth.error_message.map(|m| m.to_string()).unwrap_or_default())),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_and_scram_clients_over_sasl_plaintext_and_sasl_ssl() {
    let tmp = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(tmp.path(), &[]);
    broker.add_scram_user("bob", scram::SCRAM_SHA_256, "bob-secret").await;
    broker.add_scram_user("carol", scram::SCRAM_SHA_512, "carol-secret").await;

    let values: Vec<String> = (0..5).map(|i| format!("v{i}")).collect();
    let logins = [
        ("PLAIN", "alice", "alice-secret"),
        ("SCRAM-SHA-256", "bob", "bob-secret"),
        ("SCRAM-SHA-512", "carol", "carol-secret"),
    ];
    for ssl in [false, true] {
        for (mechanism, user, password) in logins {
            let config = broker.client(ssl, mechanism, user, password);
            let topic = format!("t-{}-{}", mechanism.to_lowercase(), if ssl { "ssl" } else { "plain" });
            common::produce_all(&config, &topic, &values).await;
            assert_eq!(common::consume_group(&config, &topic, &format!("g-{topic}"), values.len()), values, "{topic}");
        }
    }

    // Failures: the client's own words for a refused login, and the broker serves the rest.
    for ssl in [false, true] {
        let wrong = metadata(&broker.client(ssl, "SCRAM-SHA-256", "bob", "wrong")).unwrap_err();
        assert!(wrong.contains("Authentication failed"), "wrong SCRAM password: {wrong}");
        let unknown = metadata(&broker.client(ssl, "SCRAM-SHA-512", "nobody", "x")).unwrap_err();
        assert!(unknown.contains("Authentication failed"), "unknown SCRAM user: {unknown}");
        let plain_wrong = metadata(&broker.client(ssl, "PLAIN", "alice", "wrong")).unwrap_err();
        assert!(plain_wrong.contains("Invalid username or password"), "wrong PLAIN password: {plain_wrong}");
        // A mechanism the broker does not enable (librdkafka makes itself an unsecured token).
        let oauth = broker
            .client(ssl, "OAUTHBEARER", "alice", "x")
            .set("enable.sasl.oauthbearer.unsecure.jwt", "true")
            .set("sasl.oauthbearer.config", "principal=alice")
            .clone();
        let mechanism = metadata(&oauth).unwrap_err();
        assert!(mechanism.contains("SCRAM-SHA-512"), "an unknown mechanism is told the enabled ones: {mechanism}");
    }
    assert!(broker.running());
    assert_eq!(metadata(&broker.client(true, "PLAIN", "alice", "alice-secret")), Ok(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_is_served_before_authentication() {
    let tmp = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(tmp.path(), &[]);
    let sasl = Broker::addr(broker.sasl);

    // Metadata as the first request: closed, not one byte sent.
    let mut c = RawClient::connect(sasl).await;
    let (_, frame) = c.frame(12, &MetadataRequest::default().with_topics(None));
    c.send_raw(&frame).await;
    assert_eq!(read_to_close(&mut c).await, Vec::<u8>::new());

    // ApiVersions is answered, a Produce after it closes the connection.
    let mut c = RawClient::connect(sasl).await;
    let versions = c.call(0, &ApiVersionsRequest::default()).await;
    assert_eq!(versions.error_code, 0);
    let (_, frame) = c.frame(12, &MetadataRequest::default().with_topics(None));
    c.send_raw(&frame).await;
    assert_eq!(read_to_close(&mut c).await, Vec::<u8>::new());

    // Before authentication a frame may not exceed 512 KiB (Kafka's sasl.server.max.receive.size):
    // announcing a larger one closes the connection before its body is read.
    let mut c = RawClient::connect(sasl).await;
    c.send_raw(&600_000i32.to_be_bytes()).await;
    assert_eq!(read_to_close(&mut c).await, Vec::<u8>::new());

    // SaslAuthenticate before the handshake: closed without an answer.
    let mut c = RawClient::connect(sasl).await;
    let (_, frame) = c.frame(2, &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(b"\0a\0b")));
    c.send_raw(&frame).await;
    assert_eq!(read_to_close(&mut c).await, Vec::<u8>::new());

    // A wrong password: SASL_AUTHENTICATION_FAILED after the delay, then closed.
    let mut c = RawClient::connect(sasl).await;
    let started = Instant::now();
    let (code, message) = plain_login(&mut c, "alice", "nope").await.unwrap_err();
    assert_eq!((code, message.as_str()), (58, "Authentication failed: Invalid username or password"));
    assert!(started.elapsed() >= Duration::from_millis(100), "failures wait connection.failed.authentication.delay.ms");
    // The broker leaves the client time to read that answer and close first (kafka-python
    // drops an answer that arrives with the broker's close): no EOF right after the answer...
    use tokio::io::AsyncReadExt;
    let mut b = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(300), c.stream.read(&mut b)).await;
    assert!(early.is_err(), "the broker closed right after the failed authentication's answer: {early:?}");
    // ...but not for ever.
    assert!(c.is_closed().await);

    // SaslHandshake v0 is advertised (old librdkafka looks for it) but its raw-token exchange is
    // not served: UNSUPPORTED_VERSION, then closed.
    let sasl_handshake = versions.api_keys.iter().find(|k| k.api_key == 17).expect("SaslHandshake advertised");
    assert_eq!((sasl_handshake.min_version, sasl_handshake.max_version), (0, 1));
    let mut c = RawClient::connect(sasl).await;
    let hs = c.call(0, &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"))).await;
    assert_eq!(hs.error_code, 35);
    assert!(c.is_closed().await);

    // An unknown mechanism: UNSUPPORTED_SASL_MECHANISM with the enabled ones, then closed.
    let mut c = RawClient::connect(sasl).await;
    let hs = c.call(1, &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("GSSAPI"))).await;
    assert_eq!(hs.error_code, 33);
    let enabled: Vec<String> = hs.mechanisms.iter().map(|m| m.to_string()).collect();
    assert_eq!(enabled, ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]);
    assert!(c.is_closed().await);

    // After authentication everything is served, as User:alice.
    let mut c = RawClient::connect(sasl).await;
    assert_eq!(plain_login(&mut c, "alice", "alice-secret").await, Ok(0));
    let md = c.call(12, &MetadataRequest::default().with_topics(None)).await;
    assert_eq!(md.brokers.len(), 1);

    // A PLAINTEXT listener answers SaslHandshake as Kafka does: ILLEGAL_SASL_STATE.
    let mut c = RawClient::connect(Broker::addr(broker.plain)).await;
    let hs = c.call(1, &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"))).await;
    assert_eq!(hs.error_code, 34);
    assert!(broker.running());
}

#[tokio::test(flavor = "multi_thread")]
async fn any_first_frames_on_a_sasl_listener_leave_the_broker_up() {
    let tmp = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(tmp.path(), &[("KAFKA_CONNECTION_FAILED_AUTHENTICATION_DELAY_MS", "0".into())]);
    let sasl = Broker::addr(broker.sasl);
    // xorshift: the same hostile bytes every run.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..60 {
        let mut c = RawClient::connect(sasl).await;
        let len = (next() % 200) as usize;
        let body: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let frame = match round % 3 {
            // Garbage with a plausible size prefix.
            0 => [&(len as i32).to_be_bytes()[..], &body].concat(),
            // A handshake, then a SaslAuthenticate carrying garbage for PLAIN or SCRAM.
            1 | 2 => {
                let mechanism = if round % 3 == 1 { "PLAIN" } else { "SCRAM-SHA-512" };
                let hs = c
                    .call(1, &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism)))
                    .await;
                assert_eq!(hs.error_code, 0);
                c.frame(2, &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(body))).1.to_vec()
            }
            _ => unreachable!(),
        };
        c.send_raw(&frame).await;
        // Garbage gets no answer and the connection closes; a garbage token gets
        // SASL_AUTHENTICATION_FAILED (58), after which the client closes, as clients do.
        match round % 3 {
            0 => {
                let answer = read_to_close(&mut c).await;
                assert!(answer.is_empty(), "garbage got an answer: {answer:?}");
            }
            _ => {
                // Correlation id, the flexible header's empty tag buffer, then the code.
                let answer = c.read_frame().await.expect("an answer");
                assert_eq!(answer.get(5..7), Some(&[0u8, 58][..]), "a garbage token got {answer:?}");
            }
        }
    }
    assert!(broker.running());
    let mut c = RawClient::connect(sasl).await;
    assert_eq!(plain_login(&mut c, "alice", "alice-secret").await, Ok(0));
}

/// Records the most connections librdkafka made to any one broker.
struct Connects(Arc<AtomicI64>);

impl ClientContext for Connects {
    fn stats(&self, statistics: Statistics) {
        let most = statistics.brokers.values().filter_map(|b| b.connects).max().unwrap_or(0);
        self.0.fetch_max(most, Ordering::Relaxed);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_expire_and_re_authentication_renews_them() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = Broker::start(tmp.path(), &[("KAFKA_CONNECTIONS_MAX_REAUTH_MS", "1500".into())]);
    broker.add_scram_user("bob", scram::SCRAM_SHA_256, "bob-secret").await;
    let sasl = Broker::addr(broker.sasl);

    // Raw: the lifetime is announced; a request after it closes the connection.
    let mut c = RawClient::connect(sasl).await;
    assert_eq!(plain_login(&mut c, "alice", "alice-secret").await, Ok(1500));
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let (_, frame) = c.frame(12, &MetadataRequest::default().with_topics(None));
    c.send_raw(&frame).await;
    assert_eq!(read_to_close(&mut c).await, Vec::<u8>::new(), "an expired session's request closes it");

    // Raw: re-authenticating before the end renews the session; as another user it fails.
    let mut c = RawClient::connect(sasl).await;
    assert_eq!(plain_login(&mut c, "alice", "alice-secret").await, Ok(1500));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(plain_login(&mut c, "alice", "alice-secret").await, Ok(1500));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let md = c.call(12, &MetadataRequest::default().with_topics(None)).await;
    assert_eq!(md.brokers.len(), 1, "served 2.2 s after the first login: the session was renewed");
    let (code, message) = plain_login(&mut c, "admin", "admin-secret").await.unwrap_err();
    assert_eq!(code, 58);
    assert!(message.contains("Cannot change principals"), "{message}");

    // librdkafka re-authenticates on its own and keeps producing over one connection.
    let most_connects = Arc::new(AtomicI64::new(0));
    let producer: FutureProducer<Connects> = broker
        .client(false, "SCRAM-SHA-256", "bob", "bob-secret")
        .set("acks", "all")
        .set("statistics.interval.ms", "500")
        .create_with_context(Connects(most_connects.clone()))
        .unwrap();
    let started = Instant::now();
    let mut sent = 0;
    while started.elapsed() < Duration::from_secs(6) {
        let r = producer.send(FutureRecord::<str, str>::to("reauth").key("k").payload("v"), Duration::ZERO).await;
        assert!(r.is_ok(), "produce {sent} failed: {r:?}");
        sent += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(sent > 30);
    assert_eq!(most_connects.load(Ordering::Relaxed), 1, "four session lifetimes, one connection per broker");
}

/// gregor's own client, which a shared-mode broker dials the others with, logs in with PLAIN,
/// SCRAM-SHA-256 and SCRAM-SHA-512 (checking the broker's SCRAM proof), reports a refused
/// login in the broker's words, and tells when the broker's session lifetime is nearly over.
#[tokio::test(flavor = "multi_thread")]
async fn gregors_own_client_logs_in_with_plain_and_scram() {
    use gregor::client::Connection;
    use gregor::config::{SaslLogin, SaslMechanism, Secret};
    let tmp = tempfile::tempdir().unwrap();
    let broker = Broker::start(tmp.path(), &[("KAFKA_CONNECTIONS_MAX_REAUTH_MS", "3000".into())]);
    broker.add_scram_user("bob", scram::SCRAM_SHA_256, "bob-secret").await;
    broker.add_scram_user("carol", scram::SCRAM_SHA_512, "carol-secret").await;
    let address = format!("127.0.0.1:{}", broker.sasl);
    let open = |mechanism: SaslMechanism, user: &str, password: &str| {
        let login = SaslLogin { mechanism, username: user.into(), password: Secret(password.into()) };
        let address = address.clone();
        async move { Connection::open_with(&address, "gregor-test", None, Some(&login)).await }
    };
    let logins = [
        (SaslMechanism::Plain, "alice", "alice-secret"),
        (SaslMechanism::ScramSha256, "bob", "bob-secret"),
        (SaslMechanism::ScramSha512, "carol", "carol-secret"),
    ];
    for (mechanism, user, password) in logins {
        let mut c = open(mechanism, user, password).await.unwrap_or_else(|e| panic!("{mechanism:?}: {e:#}"));
        let md = c.call(12, &MetadataRequest::default().with_topics(None)).await.unwrap();
        assert_eq!(md.brokers.len(), 1, "{mechanism:?}: served after the login");
    }
    for (mechanism, user, _) in logins {
        let refused = format!("{:#}", open(mechanism, user, "wrong").await.unwrap_err());
        assert!(refused.contains("refused the SASL login: Authentication failed"), "{mechanism:?}: {refused}");
    }
    let unknown = format!("{:#}", open(SaslMechanism::ScramSha512, "nobody", "x").await.unwrap_err());
    assert!(unknown.contains("refused the SASL login"), "{unknown}");

    // The broker announced a 3 s session: renewed in time, not at once.
    let c = open(SaslMechanism::Plain, "alice", "alice-secret").await.unwrap();
    assert!(!c.session_ending(), "a fresh session is not ending");
    common::wait_for("the session's end to near", Duration::from_secs(10), || c.session_ending().then_some(())).await;
}

/// A librdkafka client context that hands out OAUTHBEARER tokens signed with `key`.
struct OAuthClient {
    key: jsonwebtoken::EncodingKey,
    kid: &'static str,
    sub: &'static str,
    errors: ClientErrors,
}

impl ClientContext for OAuthClient {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.errors.error(error, reason);
    }

    fn generate_oauth_token(
        &self,
        _config: Option<&str>,
    ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
        let claims = serde_json::json!({"sub": self.sub, "iat": now, "exp": now + 300, "aud": "gregor",
            "iss": "https://idp.test"});
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.kid.into());
        let token = jsonwebtoken::encode(&header, &claims, &self.key)?;
        Ok(rdkafka::client::OAuthToken {
            token,
            principal_name: self.sub.into(),
            lifetime_ms: i64::try_from((now + 300) * 1000)?,
        })
    }
}

impl rdkafka::producer::ProducerContext for OAuthClient {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
}

/// An EC P-256 key pair: the signing key and its public JWK named `kid`.
fn ec_jwk(kid: &str) -> (jsonwebtoken::EncodingKey, serde_json::Value) {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let kp = KeyPair::generate().unwrap();
    let raw = kp.public_key_raw();
    let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
        "x": b64(&raw[1..33]), "y": b64(&raw[33..65])});
    (jsonwebtoken::EncodingKey::from_ec_der(&kp.serialize_der()), jwk)
}

/// The broker count an OAUTHBEARER client with `ctx` sees, or the errors it reported.
fn oauth_metadata(broker: &Broker, ssl: bool, ctx: OAuthClient) -> Result<usize, String> {
    let mut c = ClientConfig::new();
    let port = if ssl { broker.sasl_ssl } else { broker.sasl };
    c.set("bootstrap.servers", format!("127.0.0.1:{port}"))
        .set("security.protocol", if ssl { "sasl_ssl" } else { "sasl_plaintext" })
        .set("sasl.mechanisms", "OAUTHBEARER")
        .set("socket.timeout.ms", "10000");
    if ssl {
        c.set("ssl.ca.location", broker.ca.display().to_string());
    }
    // The threaded producer polls the client, which is what asks the context for a token.
    use rdkafka::producer::Producer;
    let producer: rdkafka::producer::ThreadedProducer<OAuthClient> =
        c.create_with_context(ctx).map_err(|e| e.to_string())?;
    common::metadata_unless_refused(
        Duration::from_secs(8),
        |slice| producer.client().fetch_metadata(None, slice).map(|m| m.brokers().len()).map_err(|e| e.to_string()),
        || {
            std::thread::sleep(Duration::from_millis(50));
            producer.context().errors.reported()
        },
    )
}

#[test]
fn oauthbearer_clients_with_tokens_signed_by_a_jwks_key() {
    let dir = tempfile::tempdir().unwrap();
    let (key, jwk) = ec_jwk("gregor-test-1");
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, serde_json::json!({ "keys": [jwk] }).to_string()).unwrap();
    const SECURED: &str = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler";
    let broker = Broker::start(
        dir.path(),
        &[
            ("KAFKA_SASL_ENABLED_MECHANISMS", "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER".into()),
            ("KAFKA_LISTENER_NAME_SASL__PLAINTEXT_OAUTHBEARER_SASL_SERVER_CALLBACK_HANDLER_CLASS", SECURED.into()),
            ("KAFKA_LISTENER_NAME_SASL__SSL_OAUTHBEARER_SASL_SERVER_CALLBACK_HANDLER_CLASS", SECURED.into()),
            ("KAFKA_SASL_OAUTHBEARER_JWKS_ENDPOINT_URL", format!("file://{}", jwks.display())),
            ("KAFKA_SASL_OAUTHBEARER_EXPECTED_AUDIENCE", "gregor".into()),
            ("KAFKA_SASL_OAUTHBEARER_EXPECTED_ISSUER", "https://idp.test".into()),
        ],
    );
    let client =
        |key: jsonwebtoken::EncodingKey, kid| OAuthClient { key, kid, sub: "alice", errors: ClientErrors::default() };
    for ssl in [false, true] {
        let ok = oauth_metadata(&broker, ssl, client(key.clone(), "gregor-test-1"));
        assert_eq!(ok, Ok(1), "ssl={ssl}; broker log:\n{}", broker.log());
    }
    let (other, _) = ec_jwk("gregor-test-1");
    let refused = oauth_metadata(&broker, false, client(other, "gregor-test-1")).unwrap_err();
    assert!(refused.contains("invalid_token"), "{refused}");
    let unknown = oauth_metadata(&broker, true, client(key.clone(), "unknown-kid")).unwrap_err();
    assert!(unknown.contains("invalid_token"), "{unknown}");
    // PLAIN still works beside it, and the broker served everyone.
    assert_eq!(metadata(&broker.client(false, "PLAIN", "alice", "alice-secret")), Ok(1));
    assert_eq!(oauth_metadata(&broker, false, client(key, "gregor-test-1")), Ok(1));
}
