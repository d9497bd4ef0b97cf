//! SSL listeners, configured as a compose file configures the apache/kafka image: KAFKA_*
//! variables naming PEM files, one PLAINTEXT listener beside two SSL ones (one of them with
//! mutual TLS through its `listener.name.<listener>.ssl.client.auth`). A real client
//! (librdkafka, linked against OpenSSL) produces and consumes through them; clients that should
//! fail do, and the broker keeps serving everyone else.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::common::{self, metadata, RawClient};
use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};
use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair};
use rdkafka::config::ClientConfig;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A CA in a directory, and the PEM files of what it signed.
pub(crate) struct Pki {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
    pub(crate) ca: PathBuf,
}

/// A signed certificate: its file, its key's file, and both in one file (a PEM keystore).
pub(crate) struct Leaf {
    cert: PathBuf,
    key: PathBuf,
    pub(crate) keystore: PathBuf,
}

impl Pki {
    pub(crate) fn new(dir: &Path, name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let ca = dir.join(format!("{name}.ca.pem"));
        std::fs::write(&ca, params.self_signed(&key).unwrap().pem()).unwrap();
        Self { dir: dir.to_owned(), issuer: Issuer::new(params, key), ca }
    }

    pub(crate) fn leaf(&self, file: &str, names: &[&str], subject: &[(DnType, &str)]) -> Leaf {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        for (ty, value) in subject {
            params.distinguished_name.push(ty.clone(), *value);
        }
        let key = KeyPair::generate().unwrap();
        let cert_pem = params.signed_by(&key, &self.issuer).unwrap().pem();
        let at = |suffix: &str| self.dir.join(format!("{file}.{suffix}"));
        std::fs::write(at("crt"), &cert_pem).unwrap();
        std::fs::write(at("key"), key.serialize_pem()).unwrap();
        std::fs::write(at("pem"), format!("{}{cert_pem}", key.serialize_pem())).unwrap();
        Leaf { cert: at("crt"), key: at("key"), keystore: at("pem") }
    }
}

/// The broker binary as a child process, killed on drop.
struct Broker {
    child: Child,
    log: PathBuf,
}

impl Broker {
    fn spawn(data: &Path, env: &[(&str, String)]) -> Child {
        let log = data.with_extension("log");
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gregor"));
        cmd.env("GREGOR__SERVER__HTTP_LISTEN", "off")
            .env("KAFKA_LOG_DIRS", data.display().to_string())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        cmd.spawn().unwrap()
    }

    /// Starts the broker and waits for every port of `ports` to accept connections.
    fn start(data: &Path, env: &[(&str, String)], ports: &[u16]) -> Self {
        let mut broker = Broker { child: Self::spawn(data, env), log: data.with_extension("log") };
        common::wait_for_sync(Duration::from_secs(30), || {
            assert!(broker.running(), "gregor exited:\n{}", broker.log());
            ports.iter().all(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok())
        });
        broker
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// librdkafka settings for a TLS connection to `port`, trusting `ca`, with a client
/// certificate when one is given.
fn tls_client(port: u16, ca: &Path, cert: Option<&Leaf>) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", format!("127.0.0.1:{port}"))
        .set("security.protocol", "ssl")
        .set("ssl.ca.location", ca.display().to_string())
        .set("socket.timeout.ms", "10000")
        .set("message.timeout.ms", "20000");
    if let Some(leaf) = cert {
        c.set("ssl.certificate.location", leaf.cert.display().to_string())
            .set("ssl.key.location", leaf.key.display().to_string());
    }
    c
}

/// The broker still answers a plain Kafka client on its PLAINTEXT listener.
async fn plaintext_answers(port: u16) {
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut c = RawClient::connect(addr).await;
    let md = c.call(12, &MetadataRequest::default().with_topics(Some(vec![]))).await;
    assert_eq!(md.brokers.len(), 1);
}

/// Everything the broker sends until it closes the connection; fails if it is still open
/// after a few seconds.
async fn read_to_close(client: &mut RawClient) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), client.stream.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the connection is still open; it sent {got:?}");
    got
}

#[tokio::test(flavor = "multi_thread")]
async fn ssl_and_mutual_tls_listeners_beside_a_plaintext_one() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path(), "gregor-test-ca");
    let server = pki.leaf("server", &["localhost", "127.0.0.1"], &[(DnType::CommonName, "localhost")]);
    let alice = pki.leaf(
        "alice",
        &[],
        &[
            (DnType::OrganizationName, "gregor"),
            (DnType::OrganizationalUnitName, "clients"),
            (DnType::CommonName, "Alice"),
        ],
    );
    let stranger_pki = Pki::new(tmp.path(), "other-ca");
    let stranger = stranger_pki.leaf("mallory", &[], &[(DnType::CommonName, "mallory")]);

    let (plain, ssl, mtls) = (free_port(), free_port(), free_port());
    let env = [
        ("KAFKA_NODE_ID", "1".to_string()),
        ("KAFKA_PROCESS_ROLES", "broker,controller".into()),
        ("KAFKA_LISTENERS", format!("PLAINTEXT://127.0.0.1:{plain},SSL://127.0.0.1:{ssl},MTLS://127.0.0.1:{mtls}")),
        ("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "PLAINTEXT:PLAINTEXT,SSL:SSL,MTLS:SSL".into()),
        ("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT".into()),
        ("KAFKA_SSL_KEYSTORE_TYPE", "PEM".into()),
        ("KAFKA_SSL_KEYSTORE_LOCATION", server.keystore.display().to_string()),
        ("KAFKA_SSL_TRUSTSTORE_TYPE", "PEM".into()),
        ("KAFKA_SSL_TRUSTSTORE_LOCATION", pki.ca.display().to_string()),
        ("KAFKA_SSL_CLIENT_AUTH", "none".into()),
        ("KAFKA_LISTENER_NAME_MTLS_SSL_CLIENT_AUTH", "required".into()),
        ("KAFKA_SSL_PRINCIPAL_MAPPING_RULES", "RULE:^CN=([^,]+),OU=clients,.*$/$1/L,DEFAULT".into()),
        ("KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM", "".into()),
        ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1".into()),
        // Groups form at once (as compose files for the apache/kafka image usually set it):
        // the three groups below would otherwise wait 3 s each for more members.
        ("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0".into()),
        // A client that never starts its handshake is dropped this soon.
        ("GREGOR__SERVER__FIRST_REQUEST_TIMEOUT_MS", "1500".into()),
    ];
    let mut broker = Broker::start(&tmp.path().join("data"), &env, &[plain, ssl, mtls]);

    // A socket that never says anything holds up no one, and is closed after the deadline.
    let silent_addr: SocketAddr = format!("127.0.0.1:{ssl}").parse().unwrap();
    let mut silent = RawClient::connect(silent_addr).await;

    // Produce and consume over TLS; the consumer's group runs over it too.
    let values: Vec<String> = (0..20).map(|i| format!("v{i}")).collect();
    let over_tls = tls_client(ssl, &pki.ca, None);
    common::produce_all(&over_tls, "secure", &values).await;
    assert_eq!(common::consume_group(&over_tls, "secure", "g-tls", values.len()), values);
    assert!(silent.is_closed().await, "a client that never starts its handshake is closed");

    // Mutual TLS: the client certificate gets in, no certificate or a stranger's does not.
    let with_cert = tls_client(mtls, &pki.ca, Some(&alice));
    common::produce_all(&with_cert, "mutual", &values[..5]).await;
    assert_eq!(common::consume_group(&with_cert, "mutual", "g-mtls", 5), values[..5]);
    let err = metadata(&tls_client(mtls, &pki.ca, None)).unwrap_err();
    assert!(broker.running(), "a refused client certificate does not stop the broker ({err})");
    metadata(&tls_client(mtls, &pki.ca, Some(&stranger))).unwrap_err();
    plaintext_answers(plain).await;

    // A client that trusts another CA does not accept the broker.
    metadata(&tls_client(ssl, &stranger_pki.ca, None)).unwrap_err();

    // A plaintext client on the TLS port gets a closed connection, and nothing else changes.
    let mut raw = RawClient::connect(silent_addr).await;
    let (_, frame) = raw.frame(3, &ApiVersionsRequest::default());
    raw.send_raw(&frame).await;
    let answer = read_to_close(&mut raw).await;
    // At most a TLS alert record (content type 21), never a Kafka response, then EOF.
    assert!(answer.is_empty() || answer[0] == 21, "plaintext Kafka on a TLS port got {answer:?}");
    let plaintext_rdkafka = ClientConfig::new()
        .set("bootstrap.servers", format!("127.0.0.1:{ssl}"))
        .set("socket.timeout.ms", "5000")
        .clone();
    metadata(&plaintext_rdkafka).unwrap_err();
    assert!(broker.running());
    plaintext_answers(plain).await;
    assert_eq!(metadata(&over_tls).unwrap(), 1);
    assert_eq!(metadata(&with_cert).unwrap(), 1);

    // What went through one listener is there through the others.
    let plain_client = ClientConfig::new().set("bootstrap.servers", format!("127.0.0.1:{plain}")).clone();
    assert_eq!(common::consume_group(&plain_client, "secure", "g-plain", values.len()), values);
}

#[test]
fn bad_tls_settings_stop_the_start_naming_the_setting() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path(), "ca");
    let server = pki.leaf("server", &["localhost"], &[(DnType::CommonName, "localhost")]);
    let port = free_port();
    let listeners = ("KAFKA_LISTENERS", format!("PLAINTEXT://127.0.0.1:{},SSL://127.0.0.1:{port}", free_port()));
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (vec![("KAFKA_SSL_KEYSTORE_LOCATION", "/no/such/server.pem".into())], "ssl.keystore.location"),
        (
            vec![
                ("KAFKA_SSL_KEYSTORE_TYPE", "JKS".into()),
                ("KAFKA_SSL_KEYSTORE_LOCATION", server.keystore.display().to_string()),
            ],
            "ssl.keystore.type",
        ),
        (
            vec![
                ("KAFKA_SSL_KEYSTORE_LOCATION", server.keystore.display().to_string()),
                ("KAFKA_SSL_CIPHER_SUITES", "TLS_RSA_WITH_AES_128_CBC_SHA".into()),
            ],
            "TLS_RSA_WITH_AES_128_CBC_SHA",
        ),
        (
            vec![
                ("KAFKA_SSL_KEYSTORE_LOCATION", server.keystore.display().to_string()),
                ("KAFKA_LISTENER_NAME_SSL_SSL_CLIENT_AUTH", "required".into()),
            ],
            "ssl.truststore.location",
        ),
        (
            vec![("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "PLAINTEXT:PLAINTEXT,SSL:SASL_SSL".into())],
            "sasl.enabled.mechanisms",
        ),
    ];
    for (i, (extra, want)) in cases.iter().enumerate() {
        let mut env = vec![listeners.clone()];
        env.extend(extra.iter().cloned());
        let data = tmp.path().join(format!("data{i}"));
        let mut broker = Broker { child: Broker::spawn(&data, &env), log: data.with_extension("log") };
        let deadline = Instant::now() + Duration::from_secs(20);
        while broker.running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = broker.log();
        assert!(!broker.running(), "{extra:?}: the broker started:\n{log}");
        assert!(!broker.child.wait().unwrap().success());
        assert!(log.contains(want), "{extra:?}: the error names {want}:\n{log}");
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "nothing listens after a failed start");
    }
}
