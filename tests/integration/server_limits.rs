//! Connection limits: per-address caps and their overrides, slots kept for new addresses, the
//! first-request timeout, and a broker under a low open-file limit that neither spins nor floods
//! its log.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::common::{BrokerProcess, RawClient, TestBroker};
use kafka_protocol::messages::ApiVersionsRequest;
use tokio::net::{TcpSocket, TcpStream};

async fn api_versions_ok(c: &mut RawClient) -> bool {
    c.call(0, &ApiVersionsRequest::default()).await.error_code == 0
}

/// A connection from a chosen loopback address (all of 127/8 is loopback on Linux).
async fn connect_from(source: &str, to: SocketAddr) -> RawClient {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let stream: TcpStream = socket.connect(to).await.unwrap();
    RawClient::from_stream(stream)
}

#[tokio::test]
async fn per_ip_limit_closes_the_extra_connection_and_keeps_the_others() {
    let b = TestBroker::start_with(|c| c.server.max_connections_per_ip = 2).await;
    let mut first = RawClient::connect(b.addr).await;
    let mut second = RawClient::connect(b.addr).await;
    assert!(api_versions_ok(&mut first).await);
    assert!(api_versions_ok(&mut second).await);
    let mut third = RawClient::connect(b.addr).await;
    let started = Instant::now();
    assert!(third.is_closed().await, "a third connection from 127.0.0.1 must be closed");
    assert!(started.elapsed() < Duration::from_secs(2), "closed only after {:?}", started.elapsed());
    assert!(api_versions_ok(&mut first).await, "an existing connection keeps working");
    drop(second);
    // Its slot comes back once the broker has seen the close.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut again = RawClient::connect(b.addr).await;
        let (_, frame) = again.frame(0, &ApiVersionsRequest::default());
        again.send_raw(&frame).await;
        if again.read_frame().await.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "the freed slot never came back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.stop().await;
}

#[tokio::test]
async fn per_ip_overrides_apply() {
    let b = TestBroker::start_with(|c| {
        c.server.max_connections_per_ip = 1;
        c.server.max_connections_per_ip_overrides = "127.0.0.1:3,127.0.0.2:0".into();
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = RawClient::connect(b.addr).await;
        assert!(api_versions_ok(&mut c).await, "the override allows 3 from 127.0.0.1");
        held.push(c);
    }
    assert!(RawClient::connect(b.addr).await.is_closed().await, "a 4th from 127.0.0.1 is refused");
    assert!(connect_from("127.0.0.2", b.addr).await.is_closed().await, "an override of 0 refuses the host");
    let mut other = connect_from("127.0.0.3", b.addr).await;
    assert!(api_versions_ok(&mut other).await, "the default of 1 applies to other addresses");
    assert!(connect_from("127.0.0.3", b.addr).await.is_closed().await);
    b.stop().await;
}

#[tokio::test]
async fn one_address_cannot_lock_out_the_others() {
    let b = TestBroker::start_with(|c| c.server.max_connections = 20).await;
    // The hog connects until refused: it gets 18 of 20, the last 2 are kept for others.
    let mut hog = Vec::new();
    loop {
        let mut c = RawClient::connect(b.addr).await;
        let (_, frame) = c.frame(0, &ApiVersionsRequest::default());
        c.send_raw(&frame).await;
        if c.read_frame().await.is_none() {
            break;
        }
        hog.push(c);
        assert!(hog.len() <= 20, "never refused");
    }
    assert_eq!(hog.len(), 18);
    let mut other = connect_from("127.0.0.2", b.addr).await;
    assert!(api_versions_ok(&mut other).await, "another address still gets in");
    b.stop().await;
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_first_request_timeout() {
    let b = TestBroker::start_with(|c| c.server.first_request_timeout_ms = 300).await;
    let started = Instant::now();
    let mut talking = RawClient::connect(b.addr).await;
    let mut silent = RawClient::connect(b.addr).await;
    assert!(api_versions_ok(&mut talking).await);
    assert!(silent.is_closed().await, "a connection that sends nothing is closed");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250), "closed before its timeout: {waited:?}");
    // The one that completed a request is under the 10-minute idle timeout, not the 300 ms one.
    assert!(api_versions_ok(&mut talking).await, "an established connection stays open");
    b.stop().await;
}

/// Lowers `RLIMIT_NOFILE` of the child before it runs.
fn nofile_limit(cmd: &mut std::process::Command, limit: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit { rlim_cur: limit, rlim_max: limit };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

#[test]
fn out_of_descriptors_the_broker_stays_quiet_and_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let mut broker =
        BrokerProcess::spawn_with(&tmp.path().join("data"), &[("RUST_LOG", "info")], |c| nofile_limit(c, 64));
    let addr = broker.addr;
    let lines_at_start = broker.log().lines().count();
    let cpu_at_start = broker.cpu_ticks();

    // Far more connections than 64 descriptors allow, all held open.
    let mut held = Vec::new();
    for _ in 0..300 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(s) => held.push(s),
            Err(_) => break,
        }
    }
    let window = Duration::from_secs(3);
    let ticks_per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let cpu_before = broker.cpu_ticks();
    let lines_before = broker.log().lines().count();
    let measured = Instant::now();
    // Bounded observation window: the broker's CPU use over it is the measurement.
    while measured.elapsed() < window {
        assert!(broker.is_running(), "{}", broker.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let cpu = broker.cpu_ticks() - cpu_before;
    let lines = broker.log().lines().count();
    let log_bytes = broker.log().len();
    eprintln!(
        "held {} connections; over {window:?} the broker used {cpu} CPU ticks ({ticks_per_s}/s), \
         log {lines_at_start} -> {lines_before} -> {lines} lines ({log_bytes} bytes), \
         CPU since start {} ticks",
        held.len(),
        broker.cpu_ticks() - cpu_at_start
    );
    assert!(held.len() > 64, "the test must exceed the descriptor limit");
    // Under a tenth of a core, and a log that does not grow with every connection attempt.
    assert!(cpu * 10 < ticks_per_s * window.as_secs(), "{cpu} ticks in {window:?}: the accept loop spins");
    assert!(lines < lines_at_start + 50, "{lines} log lines: warnings are not rate limited\n{}", broker.log());

    drop(held);
    // A normal client is served again once the connections are gone.
    let deadline = Instant::now() + Duration::from_secs(15);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        loop {
            let mut c = RawClient::connect(addr).await;
            let (_, frame) = c.frame(0, &ApiVersionsRequest::default());
            c.send_raw(&frame).await;
            if c.read_frame().await.is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "not served again after the connections were closed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}
