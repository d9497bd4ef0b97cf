//! The accept loop and the limits on who may hold a connection.
//!
//! Owns: the global connection cap (the configured `max_connections`, lowered to what the
//! process's descriptor limit allows), the per-address cap (Kafka's `max.connections.per.ip` and
//! its overrides), the slots kept for addresses that have no connection yet, and what to do when
//! `accept` itself fails.
//!
//! Invariants: a connection counts against the limits from accept until its [`ConnectionSlot`]
//! drops; a refused connection is closed at once (the client sees EOF, not a hang); an accept
//! that fails for lack of descriptors or memory never makes the loop spin: the pending
//! connection is closed with the spare descriptor and the loop waits, longer each time, until an
//! accept succeeds again. Warnings go through the rate limiter, whatever a client does.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tracing::{info, warn};

use crate::config::ServerConfig;
use crate::warn_limited;

/// Limits in force, and who holds a slot.
#[derive(Debug)]
pub struct ConnectionLimits {
    cap: usize,
    per_ip: usize,
    overrides: HashMap<IpAddr, usize>,
    /// Slots at the top of `cap` that only an address without connections may take.
    kept_for_new_addresses: usize,
    held: Mutex<Held>,
}

#[derive(Debug, Default)]
struct Held {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the broker holds {cap} connections, its limit (max.connections, or the open-file limit)")]
    Full { cap: usize },
    #[error("{ip} holds {limit} connections, its limit (max.connections.per.ip or its override)")]
    PerIp { ip: IpAddr, limit: usize },
    #[error("{ip} already has connections and the last {kept} of {cap} slots are kept for other addresses")]
    KeptForNewAddresses { ip: IpAddr, kept: usize, cap: usize },
}

/// One accepted connection's place in the limits; frees it on drop.
#[derive(Debug)]
pub struct ConnectionSlot {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut held = self.limits.held.lock();
        held.total = held.total.saturating_sub(1);
        if let Some(n) = held.by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                held.by_ip.remove(&self.ip);
            }
        }
    }
}

impl ConnectionLimits {
    /// `cap` is the global limit in force (see [`connection_cap`]).
    pub fn new(cap: usize, per_ip: usize, overrides: HashMap<IpAddr, usize>) -> Self {
        let cap = cap.max(1);
        // A tenth, at most 100: one busy client never makes the broker unreachable for others.
        let kept_for_new_addresses = (cap / 10).min(100);
        Self { cap, per_ip, overrides, kept_for_new_addresses, held: Mutex::new(Held::default()) }
    }

    /// From the server settings and the descriptor budget; host names in the overrides are
    /// resolved here (one that does not resolve is logged and skipped).
    pub fn from_config(cfg: &ServerConfig, cap: usize) -> Self {
        let mut overrides = HashMap::new();
        for (host, count) in cfg.per_ip_overrides().unwrap_or_default() {
            match (host.as_str(), 0).to_socket_addrs() {
                Ok(addrs) => {
                    for a in addrs {
                        overrides.insert(a.ip(), count);
                    }
                }
                Err(e) => warn!(host, error = %e, "max.connections.per.ip.overrides: cannot resolve host; ignoring it"),
            }
        }
        Self::new(cap, cfg.max_connections_per_ip, overrides)
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    fn limit_for(&self, ip: IpAddr) -> usize {
        self.overrides.get(&ip).copied().unwrap_or(self.per_ip)
    }

    /// Takes a slot for a connection from `ip`, or says why not. Kafka (`ConnectionQuotas`)
    /// also closes a connection over `max.connections.per.ip` right after accepting it; at the
    /// broker-wide `max.connections` Kafka instead stops accepting until a slot frees, which
    /// leaves clients hanging in the backlog, so gregor closes those too.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionSlot, Refusal> {
        let limit = self.limit_for(ip);
        let mut held = self.held.lock();
        let mine = held.by_ip.get(&ip).copied().unwrap_or(0);
        if mine >= limit {
            return Err(Refusal::PerIp { ip, limit });
        }
        if held.total >= self.cap {
            return Err(Refusal::Full { cap: self.cap });
        }
        if mine > 0 && held.total >= self.cap - self.kept_for_new_addresses {
            return Err(Refusal::KeptForNewAddresses { ip, kept: self.kept_for_new_addresses, cap: self.cap });
        }
        held.total += 1;
        *held.by_ip.entry(ip).or_insert(0) += 1;
        Ok(ConnectionSlot { limits: self.clone(), ip })
    }
}

/// The connection cap in force: the configured one, lowered so that connections cannot use the
/// descriptors the broker needs for everything else. `soft_limit` is `RLIMIT_NOFILE`'s soft
/// value and `open_now` the descriptors open at start (segments, indexes, the runtime). The
/// reserve on top of those is an eighth of the limit, at least 32: room for segments rolled,
/// topics created and files written later.
pub fn connection_cap(configured: usize, soft_limit: u64, open_now: u64) -> usize {
    let reserve = open_now.saturating_add((soft_limit / 8).max(32));
    let budget = usize::try_from(soft_limit.saturating_sub(reserve)).unwrap_or(usize::MAX);
    configured.min(budget).max(1)
}

/// `RLIMIT_NOFILE`'s soft value and the number of descriptors open now (Linux).
pub fn descriptor_budget() -> (u64, u64) {
    let soft = crate::log::files::soft_open_file_limit();
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    (soft, open)
}

/// Errors after which `accept` keeps failing until something is released.
fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}

/// Growing wait between accepts that failed for lack of resources.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);

    pub fn new() -> Self {
        Self { next: Self::FIRST }
    }

    /// The wait to use now; the following one is twice as long, up to a second.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        d
    }

    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

/// A descriptor held in reserve (`/dev/null`). When `accept` fails with EMFILE, closing it lets
/// us accept the pending connections just to close them, so those clients get a prompt close
/// instead of waiting in the backlog for a descriptor; then it is reopened.
struct SpareFd(Option<std::fs::File>);

impl SpareFd {
    /// Most connections closed in one go, so shedding cannot keep the loop busy either.
    const MAX_SHED: usize = 1024;

    fn open() -> Self {
        Self(std::fs::File::open("/dev/null").ok())
    }

    /// Closes the connections waiting in the backlog; returns how many.
    async fn shed_pending(&mut self, listener: &TcpListener) -> usize {
        self.0 = None;
        let mut shed = 0;
        // Each accepted stream is dropped at once, so they all reuse the one freed descriptor.
        // The bound only matters when nothing (more) is pending.
        while shed < Self::MAX_SHED {
            match tokio::time::timeout(Duration::from_millis(1), listener.accept()).await {
                Ok(Ok((stream, _))) => {
                    drop(stream);
                    shed += 1;
                }
                _ => break,
            }
        }
        *self = Self::open();
        shed
    }
}

/// Accepts until `shutdown` resolves, handing each admitted connection to `serve`.
pub async fn accept_loop(
    listener: &TcpListener,
    limits: &Arc<ConnectionLimits>,
    shutdown: impl Future<Output = ()>,
    mut serve: impl FnMut(TcpStream, SocketAddr, ConnectionSlot),
) {
    tokio::pin!(shutdown);
    let mut spare = SpareFd::open();
    let mut backoff = Backoff::new();
    info!(max_connections = limits.cap(), "accepting connections");
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff.reset();
                match limits.try_acquire(peer.ip()) {
                    Ok(slot) => serve(stream, peer, slot),
                    Err(refusal) => {
                        warn_limited!("connection refused", %peer, reason = %refusal, "refusing connection");
                        drop(stream);
                    }
                }
            }
            Err(e) if is_resource_exhaustion(&e) => {
                let delay = backoff.next_delay();
                let closed = spare.shed_pending(listener).await;
                warn_limited!(
                    "accept out of resources",
                    error = %e,
                    closed_pending = closed,
                    retry_in_ms = delay.as_millis() as u64,
                    "cannot accept connections (out of descriptors or memory); closed the pending ones, backing off"
                );
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            // ECONNABORTED and the like concern one connection only: go on at once.
            Err(e) => warn_limited!("accept failed", error = %e, "accept failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_ip_limit_and_overrides() {
        let limits = Arc::new(ConnectionLimits::new(100, 2, HashMap::from([(ip("10.0.0.9"), 5), (ip("10.0.0.8"), 0)])));
        let a = ip("10.0.0.1");
        let s1 = limits.try_acquire(a).unwrap();
        let _s2 = limits.try_acquire(a).unwrap();
        assert_eq!(limits.try_acquire(a).unwrap_err(), Refusal::PerIp { ip: a, limit: 2 });
        drop(s1);
        let _s3 = limits.try_acquire(a).unwrap();
        let big: Vec<_> = (0..5).map(|_| limits.try_acquire(ip("10.0.0.9")).unwrap()).collect();
        assert!(limits.try_acquire(ip("10.0.0.9")).is_err());
        assert!(limits.try_acquire(ip("10.0.0.8")).is_err(), "an override of 0 refuses the host");
        drop(big);
        assert_eq!(limits.held.lock().total, 2);
    }

    #[test]
    fn one_address_cannot_take_the_last_slots() {
        let limits = Arc::new(ConnectionLimits::new(20, usize::MAX, HashMap::new()));
        let hog = ip("10.0.0.1");
        let held: Vec<_> = std::iter::from_fn(|| limits.try_acquire(hog).ok()).take(100).collect();
        assert_eq!(held.len(), 18, "20 slots, the last 2 kept for other addresses");
        let _other = limits.try_acquire(ip("10.0.0.2")).unwrap();
        let _third = limits.try_acquire(ip("10.0.0.3")).unwrap();
        assert_eq!(limits.try_acquire(ip("10.0.0.4")).unwrap_err(), Refusal::Full { cap: 20 });
    }

    #[test]
    fn cap_follows_the_descriptor_limit() {
        assert_eq!(connection_cap(10_000, 1_048_576, 20), 10_000);
        assert_eq!(connection_cap(10_000, 1024, 20), 1024 - 20 - 128);
        assert_eq!(connection_cap(100, 1024, 20), 100);
        assert_eq!(connection_cap(10_000, 64, 20), 12);
        assert_eq!(connection_cap(10_000, 40, 20), 1);
    }

    #[test]
    fn backoff_grows_to_a_second_and_resets() {
        let mut b = Backoff::new();
        let delays: Vec<_> = (0..9).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_delay().as_millis(), 10);
    }

    #[test]
    fn descriptor_errors_are_exhaustion() {
        assert!(is_resource_exhaustion(&io::Error::from_raw_os_error(libc::EMFILE)));
        assert!(is_resource_exhaustion(&io::Error::from_raw_os_error(libc::ENFILE)));
        assert!(!is_resource_exhaustion(&io::Error::from_raw_os_error(libc::ECONNABORTED)));
    }
}
