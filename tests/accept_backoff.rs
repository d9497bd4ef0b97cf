//! At the descriptor limit `accept` fails with EMFILE. The broker must neither spin on it nor
//! leave the waiting clients hanging: it closes them promptly and backs off until it can accept
//! again. This file holds a single test because it lowers the whole test process's
//! `RLIMIT_NOFILE`.

mod common;

use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant};

use common::{RawClient, TestBroker};
use kafka_protocol::messages::ApiVersionsRequest;

fn cpu_time() -> Duration {
    // getrusage needs no descriptor, unlike /proc/self/stat.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we pass.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn set_soft_nofile(limit: u64) -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain getrlimit/setrlimit on our own process.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        let old = lim.rlim_cur;
        lim.rlim_cur = limit;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        old
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_at_the_descriptor_limit_backs_off_and_closes_pending_clients() {
    let b = TestBroker::start().await;
    let mut control = RawClient::connect(b.addr).await;
    assert_eq!(control.call(0, &ApiVersionsRequest::default()).await.error_code, 0);

    // Client sockets are made before the limit drops; connecting them needs no new descriptor.
    let fds: Vec<i32> =
        (0..40).map(|_| unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) }).collect();
    assert!(fds.iter().all(|&fd| fd >= 0));
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    // No descriptor left: the broker's next accept fails with EMFILE.
    let old_limit = set_soft_nofile(open.saturating_sub(1));

    let std::net::SocketAddr::V4(v4) = b.addr else { panic!("IPv4 expected") };
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(v4.ip().octets()) },
        sin_zero: [0; 8],
    };
    let clients: Vec<std::net::TcpStream> = fds
        .iter()
        .map(|&fd| {
            // SAFETY: fd is a socket we own; sin is a valid IPv4 address of the right size.
            let rc = unsafe {
                libc::connect(fd, (&sin as *const libc::sockaddr_in).cast(), std::mem::size_of_val(&sin) as u32)
            };
            assert_eq!(rc, 0, "connect: {}", std::io::Error::last_os_error());
            // SAFETY: we own fd and hand it to the TcpStream, which closes it.
            unsafe { std::net::TcpStream::from_raw_fd(fd) }
        })
        .collect();

    let cpu_before = cpu_time();
    let window = Duration::from_secs(2);
    let started = Instant::now();
    // Every waiting client gets an answer promptly: closed (it could not be accepted), or
    // served (a descriptor was free when it came) — never left hanging in the backlog.
    let api_versions_v0: [u8; 14] = [0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xff];
    let (closed, served) = tokio::task::block_in_place(|| {
        let (mut closed, mut served) = (0, 0);
        for c in &clients {
            let mut c: &std::net::TcpStream = c;
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = c.write_all(&api_versions_v0);
            let mut buf = [0u8; 1];
            match c.read(&mut buf) {
                Ok(0) => closed += 1,
                Ok(_) => served += 1,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => closed += 1,
                Err(_) => {}
            }
        }
        (closed, served)
    });
    let shed_in = started.elapsed();
    if started.elapsed() < window {
        tokio::time::sleep(window - started.elapsed()).await;
    }
    let cpu = cpu_time() - cpu_before;
    let elapsed = started.elapsed();
    set_soft_nofile(old_limit);
    eprintln!(
        "of {} waiting clients {closed} closed, {served} served, within {shed_in:?}; process CPU {cpu:?} over {elapsed:?}",
        clients.len()
    );
    assert_eq!(closed + served, clients.len(), "clients left hanging at the descriptor limit");
    assert!(closed > 0, "the descriptor limit was never reached");
    assert!(cpu < elapsed / 4, "{cpu:?} of CPU in {elapsed:?}: the accept loop spins on EMFILE");

    drop(clients);
    assert_eq!(control.call(0, &ApiVersionsRequest::default()).await.error_code, 0);
    // New connections are served again once descriptors are available (after the back-off).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = RawClient::connect(b.addr).await;
        let (_, frame) = c.frame(0, &ApiVersionsRequest::default());
        c.send_raw(&frame).await;
        if c.read_frame().await.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "not serving new connections again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.stop().await;
}
