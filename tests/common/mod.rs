//! Shared test harness: an in-process broker on 127.0.0.1:0 with a temporary data directory,
//! and a small raw-protocol client built on the kafka-protocol codec.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use gregor::broker::Broker;
use gregor::config::{Config, Overrides};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// A private PostgreSQL server (shared-mode tests); the same file serves the crate's unit tests.
#[path = "../../src/cluster/testing.rs"]
pub mod pg;

pub struct TestBroker {
    pub addr: SocketAddr,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestBroker {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_owned();
        let mut b = Self::start_in(&dir, tweak).await;
        b._tmp = Some(tmp);
        b
    }

    /// Starts a broker on an existing data directory (for restart tests).
    pub async fn start_in(dir: &Path, tweak: impl FnOnce(&mut Config)) -> Self {
        let overrides =
            Overrides { listen: Some("127.0.0.1:0".into()), data_dir: Some(dir.to_owned()), ..Default::default() };
        let mut config = Config::load(None, &Default::default(), &overrides).expect("config");
        config.log.retention_check_interval_ms = 3_600_000;
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let broker = Arc::new(Broker::open(Arc::new(config), addr.ip().to_string(), addr.port()).expect("open broker"));
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(gregor::server::run(listener, broker, async {
            let _ = rx.await;
        }));
        Self { addr, dir: dir.to_owned(), _tmp: None, stop: Some(tx), task: Some(task) }
    }

    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// [`wait_for`] for tests without a runtime: polls `check` until it holds or `timeout` passes.
pub fn wait_for_sync(timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "condition not met within {timeout:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `check` until it returns `Some`, or panics after `timeout` naming `what`.
pub async fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A raw Kafka protocol connection.
pub struct RawClient {
    pub stream: TcpStream,
    next_id: i32,
    client_id: &'static str,
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> Self {
        Self::from_stream(TcpStream::connect(addr).await.expect("connect"))
    }

    /// The client id its requests carry from now on (`gregor-test` by default).
    pub fn with_client_id(mut self, client_id: &'static str) -> Self {
        self.client_id = client_id;
        self
    }

    /// Creates a topic (CreateTopics v7) and checks that it worked.
    pub async fn create_topic(&mut self, name: &'static str, partitions: i32) {
        use kafka_protocol::messages::create_topics_request::CreatableTopic;
        use kafka_protocol::messages::{CreateTopicsRequest, TopicName};
        let req = CreateTopicsRequest::default().with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(name)))
            .with_num_partitions(partitions)
            .with_replication_factor(1)]);
        let resp = self.call(7, &req).await;
        assert_eq!(resp.topics[0].error_code, 0, "creating {name}: {:?}", resp.topics[0].error_message);
    }

    /// Wraps a stream connected some other way (e.g. from a chosen source address).
    pub fn from_stream(stream: TcpStream) -> Self {
        Self { stream, next_id: 1, client_id: "gregor-test" }
    }

    /// Encodes a request frame (size prefix included) without sending it.
    pub fn frame<R: Request>(&mut self, version: i16, req: &R) -> (i32, Bytes) {
        let id = self.next_id;
        self.next_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(id)
            .with_client_id(Some(StrBytes::from_static_str(self.client_id)));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header.encode(&mut buf, R::header_version(version)).unwrap();
        req.encode(&mut buf, version).unwrap();
        let len = (buf.len() - 4) as i32;
        buf[0..4].copy_from_slice(&len.to_be_bytes());
        (id, buf.freeze())
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Reads one response frame; `None` on EOF.
    pub async fn read_frame(&mut self) -> Option<Bytes> {
        let mut size = [0u8; 4];
        match tokio::time::timeout(Duration::from_secs(20), self.stream.read_exact(&mut size)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return None,
            Err(_) => panic!("no response within 20s"),
        }
        let mut buf = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut buf).await.ok()?;
        Some(Bytes::from(buf))
    }

    pub async fn read_response<R: Request>(&mut self, version: i16, expect_id: i32) -> R::Response {
        let mut frame = self.read_frame().await.expect("connection closed before the response");
        let header = ResponseHeader::decode(&mut frame, R::Response::header_version(version)).unwrap();
        assert_eq!(header.correlation_id, expect_id, "responses out of order");
        R::Response::decode(&mut frame, version).unwrap()
    }

    pub async fn call<R: Request>(&mut self, version: i16, req: &R) -> R::Response {
        let (id, frame) = self.frame(version, req);
        self.send_raw(&frame).await;
        self.read_response::<R>(version, id).await
    }

    /// True when the broker closed the connection (EOF) within a few seconds.
    pub async fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut b)).await, Ok(Ok(0)) | Ok(Err(_)))
    }
}

/// A TCP proxy on 127.0.0.1 in front of `upstream` that can stall: while stalled it passes
/// nothing on, in either direction and for new connections too, yet keeps every connection
/// open, as a server that stopped answering or a network that drops packets would. What came
/// in meanwhile is passed on once it flows again.
pub struct StallingProxy {
    pub addr: SocketAddr,
    flowing: tokio::sync::watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl StallingProxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (flowing, rx) = tokio::sync::watch::channel(true);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut rx = rx.clone();
                tokio::spawn(async move {
                    if rx.wait_for(|f| *f).await.is_err() {
                        return;
                    }
                    let Ok(server) = TcpStream::connect(upstream).await else { return };
                    let ((client_in, client_out), (server_in, server_out)) = (client.into_split(), server.into_split());
                    tokio::join!(pass_on(client_in, server_out, rx.clone()), pass_on(server_in, client_out, rx));
                });
            }
        });
        Self { addr, flowing, accept }
    }

    pub fn stall(&self) {
        self.flowing.send_replace(false);
    }

    pub fn flow(&self) {
        self.flowing.send_replace(true);
    }
}

impl Drop for StallingProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Copies `from` to `to` while the proxy flows, until either end closes.
async fn pass_on(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut flowing: tokio::sync::watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if flowing.wait_for(|f| *f).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// The real `gregor` binary as a child process, for tests that kill it or measure its memory.
pub struct BrokerProcess {
    pub child: std::process::Child,
    pub addr: SocketAddr,
    pub log_path: PathBuf,
}

impl BrokerProcess {
    pub fn spawn(data_dir: &Path, extra_env: &[(&str, &str)]) -> Self {
        Self::spawn_with(data_dir, extra_env, |_| {})
    }

    /// [`BrokerProcess::spawn`], letting the caller adjust the command first (e.g. a `pre_exec`
    /// that lowers a resource limit).
    pub fn spawn_with(
        data_dir: &Path,
        extra_env: &[(&str, &str)],
        tweak: impl FnOnce(&mut std::process::Command),
    ) -> Self {
        // Reserve a free port, then hand it to the broker (the tiny race is acceptable in tests).
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        Self::spawn_at(data_dir, addr, extra_env, tweak)
    }

    /// Starts the broker on a given address: a restart where clients expect it again.
    pub fn spawn_at(
        data_dir: &Path,
        addr: SocketAddr,
        extra_env: &[(&str, &str)],
        tweak: impl FnOnce(&mut std::process::Command),
    ) -> Self {
        Self::spawn_inner(data_dir, addr, true, extra_env, tweak)
    }

    /// Starts the broker with its listeners from `extra_env` (`KAFKA_LISTENERS`, which must
    /// include `addr`) rather than `--listen`, which would replace them with one PLAINTEXT
    /// listener; waits until `addr` accepts connections.
    pub fn spawn_with_listeners(data_dir: &Path, addr: SocketAddr, extra_env: &[(&str, &str)]) -> Self {
        Self::spawn_inner(data_dir, addr, false, extra_env, |_| {})
    }

    fn spawn_inner(
        data_dir: &Path,
        addr: SocketAddr,
        listen_flag: bool,
        extra_env: &[(&str, &str)],
        tweak: impl FnOnce(&mut std::process::Command),
    ) -> Self {
        let port = addr.port();
        let log_path = data_dir.with_extension(format!("{port}.log"));
        // Appended to, so a restart on the same port keeps the earlier run's lines.
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gregor"));
        if listen_flag {
            cmd.arg("--listen").arg(addr.to_string());
        }
        cmd.arg("--data-dir").arg(data_dir);
        // Tests run brokers side by side: each HTTP endpoint on a port of its own.
        cmd.env("GREGOR__SERVER__HTTP_LISTEN", "127.0.0.1:0");
        cmd.stdout(log.try_clone().unwrap()).stderr(log);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        tweak(&mut cmd);
        let mut child = cmd.spawn().expect("spawn gregor");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("gregor exited with {status}: {}", std::fs::read_to_string(&log_path).unwrap_or_default());
            }
            assert!(Instant::now() < deadline, "gregor did not listen on {addr} within 30s");
            std::thread::sleep(Duration::from_millis(10));
        }
        Self { child, addr, log_path }
    }

    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// User plus system CPU time the process has used, in clock ticks (usually 1/100 s).
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name, which is in parentheses and may contain spaces.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        let field = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        field(11) + field(12)
    }

    /// Sends a signal (e.g. `libc::SIGTERM`).
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill only sends a signal to our own child.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// Waits for the process to exit, up to `timeout`; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        // A failing test shows what each of its brokers said (how it exited, and its last lines):
        // the temp dir with the log is gone afterwards.
        if std::thread::panicking() {
            let status = match self.child.try_wait() {
                Ok(Some(s)) => format!("exited with {s}"),
                _ => "still running".to_string(),
            };
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(40)..].join("\n");
            eprintln!("--- broker {} ({status}), last lines of {}:\n{tail}\n---", self.addr, self.log_path.display());
        }
        self.kill_9();
    }
}

/// Produces `values` in order through librdkafka configured by `config` (acks=all), and checks
/// that each one was acknowledged.
pub async fn produce_all(config: &rdkafka::config::ClientConfig, topic: &str, values: &[String]) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = config.clone().set("acks", "all").create().unwrap();
    for v in values {
        let delivered = producer.send(FutureRecord::<str, str>::to(topic).key("k").payload(v), Duration::ZERO).await;
        if let Err((e, _)) = delivered {
            panic!("producing {v} to {topic}: {e}");
        }
    }
}

/// Reads up to `count` values of `topic` as a member of `group` through librdkafka configured by
/// `config` (from the earliest offset, 60 s at most), and commits what it read.
pub fn consume_group(config: &rdkafka::config::ClientConfig, topic: &str, group: &str, count: usize) -> Vec<String> {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    use rdkafka::message::Message;
    let consumer: BaseConsumer =
        config.clone().set("group.id", group).set("auto.offset.reset", "earliest").create().unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < count && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            seen.push(String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap());
        }
    }
    consumer.commit_consumer_state(CommitMode::Sync).unwrap();
    seen
}

/// Keeps the errors librdkafka reports through its error callback (a refused login or TLS
/// handshake is one, with its reason). A consumer hands them over while it is polled.
#[derive(Default)]
pub struct ClientErrors(pub std::sync::Mutex<Vec<String>>);

impl ClientErrors {
    pub fn reported(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl rdkafka::ClientContext for ClientErrors {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.0.lock().unwrap().push(format!("{error}: {reason}"));
    }
}

impl rdkafka::consumer::ConsumerContext for ClientErrors {}

/// The broker count `fetch` (a client's metadata call, given its timeout) gets within `timeout`,
/// or the error of its last attempt with what the client `reported` (its error callback's lines).
/// Metadata is asked for in slices of half a second and a client that has reported an error is
/// given no more: a refused login or handshake is reported within milliseconds, so waiting out
/// the whole timeout for it would only be waiting. A client that reports nothing gets the whole
/// `timeout`, then up to 3 s for its reason.
pub fn metadata_unless_refused(
    timeout: Duration,
    mut fetch: impl FnMut(Duration) -> Result<usize, String>,
    mut reported: impl FnMut() -> Vec<String>,
) -> Result<usize, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let slice = deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(500));
        let error = match fetch(slice) {
            Ok(brokers) => return Ok(brokers),
            Err(e) => e,
        };
        let mut errors = reported();
        if errors.is_empty() && Instant::now() < deadline {
            continue;
        }
        let reason_deadline = Instant::now() + Duration::from_secs(3);
        while errors.is_empty() && Instant::now() < reason_deadline {
            errors = reported();
        }
        return Err(format!("{error}; {}", errors.join("; ")));
    }
}

/// [`metadata_unless_refused`] with 8 s for a consumer made from `config`.
pub fn metadata(config: &rdkafka::config::ClientConfig) -> Result<usize, String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer<ClientErrors> =
        config.create_with_context(ClientErrors::default()).map_err(|e| e.to_string())?;
    metadata_unless_refused(
        Duration::from_secs(8),
        |slice| consumer.fetch_metadata(None, slice).map(|m| m.brokers().len()).map_err(|e| e.to_string()),
        || {
            // Errors reach the context while the client is polled.
            let _ = consumer.poll(Duration::from_millis(100));
            consumer.context().reported()
        },
    )
}

/// An uncompressed v2 batch of `n` records with values `value-<i>` and timestamps `ts + i`.
pub fn batch(n: usize, ts: i64) -> Bytes {
    fn varint(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        while z >= 0x80 {
            out.push((z as u8) | 0x80);
            z >>= 7;
        }
        out.push(z as u8);
    }
    let mut records = Vec::new();
    for i in 0..n {
        let value = format!("value-{i}");
        let mut r = vec![0u8];
        varint(&mut r, i as i64);
        varint(&mut r, i as i64);
        varint(&mut r, -1);
        varint(&mut r, value.len() as i64);
        r.extend_from_slice(value.as_bytes());
        varint(&mut r, 0);
        varint(&mut records, r.len() as i64);
        records.extend_from_slice(&r);
    }
    let mut b = BytesMut::new();
    b.put_i64(0);
    b.put_i32((49 + records.len()) as i32);
    b.put_i32(-1);
    b.put_i8(2);
    b.put_u32(0);
    b.put_i16(0);
    b.put_i32(n as i32 - 1);
    b.put_i64(ts);
    b.put_i64(ts + n as i64 - 1);
    b.put_i64(-1);
    b.put_i16(-1);
    b.put_i32(-1);
    b.put_i32(n as i32);
    b.extend_from_slice(&records);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}
