//! The network side: the accept loop and its limits ([`listener`]), one task pair per connection
//! ([`connection`]), framing ([`framing`]), TLS for SSL listeners ([`tls`]), and the orderly
//! stop. A TLS handshake runs in its connection's task, never in the accept loop.
//!
//! Stop sequence, once the `shutdown` future resolves: stop accepting and close the listener;
//! tell every connection to read no further request; let them answer what they already read for
//! at most `server.shutdown_grace_ms`, then close whatever is left; stop the background tasks;
//! fsync every partition and write the clean-shutdown marker ([`Broker::shutdown`]).

pub mod connection;
pub mod framing;
pub mod http;
pub mod listener;
pub mod tls;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::{debug, error, info, info_span, warn, Instrument};

use crate::broker::Broker;
use crate::handlers::Advertised;
use listener::ConnectionLimits;

/// A bound listener (Kafka's named listener) and what clients that connect through it are
/// told the broker's address is: `None` for the address each of them dialled.
#[derive(Debug)]
pub struct Listener {
    pub name: String,
    pub socket: TcpListener,
    pub advertised: Option<Advertised>,
    /// The TLS side of an SSL or SASL_SSL listener; `None` for PLAINTEXT.
    pub tls: Option<Arc<tls::TlsListener>>,
    /// The SASL settings of a SASL_PLAINTEXT or SASL_SSL listener: its clients must
    /// authenticate before anything else is served.
    pub sasl: Option<Arc<crate::config::SaslSettings>>,
}

/// How often the heap is checked for memory to give back once the broker is quiet.
const TRIM_TICK: Duration = Duration::from_secs(1);
/// After the grace period, how long closed connections get to let go of the logs.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Serves connections until `shutdown` resolves, then stops in order (see the module docs).
/// Errors are logged: without the clean-shutdown marker the next start verifies every tail.
pub async fn run(listener: TcpListener, broker: Arc<Broker>, shutdown: impl Future<Output = ()>) {
    if let Err(e) = serve(listener, broker, shutdown).await {
        error!(error = %e, "could not flush the logs at shutdown; the next start will verify every partition");
    }
}

/// [`run`], returning whether the logs were flushed and the clean stop recorded. One listener,
/// which advertises the broker's own address when `server.advertised` is configured.
pub async fn serve(listener: TcpListener, broker: Arc<Broker>, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    let advertised = broker
        .config
        .server
        .advertised
        .as_ref()
        .map(|_| Advertised { host: Arc::from(broker.node.host.as_str()), port: broker.node.port });
    let listener = Listener { name: "PLAINTEXT".into(), socket: listener, advertised, tls: None, sasl: None };
    serve_listeners(vec![listener], broker, shutdown).await
}

/// Serves every listener until `shutdown` resolves, then stops in order (see the module docs).
/// The connection limits are shared by all listeners.
pub async fn serve_listeners(
    listeners: Vec<Listener>,
    broker: Arc<Broker>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let cfg = &broker.config.server;
    let (soft_limit, open_now) = listener::descriptor_budget();
    // Segment files may fill their whole budget later, whatever they hold open now.
    let files = broker.logs.files();
    let committed = open_now.saturating_sub(files.open_count() as u64).saturating_add(files.cap() as u64);
    let cap = listener::connection_cap(cfg.max_connections, soft_limit, committed);
    if cap < cfg.max_connections {
        warn!(
            max_connections = cfg.max_connections,
            open_file_limit = soft_limit,
            open_now,
            cap,
            "the open-file limit (ulimit -n) allows fewer connections than max_connections; raise it to serve more"
        );
    }
    let limits = Arc::new(ConnectionLimits::from_config(cfg, cap));
    for l in &listeners {
        if let Ok(addr) = l.socket.local_addr() {
            match &l.advertised {
                Some(a) => {
                    info!(listener = %l.name, %addr, advertised = %format!("{}:{}", a.host, a.port), "listening")
                }
                None => info!(listener = %l.name, %addr, advertised = "the address each client dialled", "listening"),
            }
        }
    }
    let background = broker.spawn_background();
    let trimmer = tokio::spawn(crate::alloc::release_when_quiet(TRIM_TICK));
    let (draining_tx, draining_rx) = watch::channel(false);
    let (closing_tx, closing_rx) = watch::channel(false);
    // Every connection task holds a sender; recv() returns None once all are gone.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut accepting = JoinSet::new();
    for l in listeners {
        let (limits, broker) = (limits.clone(), broker.clone());
        let (draining_rx, closing_rx, alive_tx) = (draining_rx.clone(), closing_rx.clone(), alive_tx.clone());
        let mut stop = stop_rx.clone();
        accepting.spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            listener::accept_loop(&l.socket, &limits, stopped, |stream, peer, slot| {
                let _ = stream.set_nodelay(true);
                let local = stream.local_addr().ok();
                let broker = broker.clone();
                let advertised = l.advertised.clone();
                let tls = l.tls.clone();
                let sasl = l.sasl.clone();
                let listener: Arc<str> = Arc::from(l.name.as_str());
                let draining = draining_rx.clone();
                let mut closing = closing_rx.clone();
                let alive = alive_tx.clone();
                crate::metrics::get().connection_opened();
                let span = info_span!("conn", %peer, listener = %l.name, tls = tls.is_some(), sasl = sasl.is_some());
                tokio::spawn(
                    async move {
                        let conn = Conn { peer, local, advertised, broker, draining, sasl, listener };
                        tokio::select! {
                            _ = conn.serve(stream, tls) => {}
                            _ = closing.wait_for(|c| *c) => {}
                        }
                        crate::metrics::get().connection_closed();
                        drop(slot);
                        drop(alive);
                    }
                    .instrument(span),
                );
            })
            .await;
            // The socket closes here: no connection is accepted any more.
        });
    }
    shutdown.await;
    let _ = stop_tx.send(true);
    while accepting.join_next().await.is_some() {}

    let grace = Duration::from_millis(cfg.shutdown_grace_ms);
    info!(grace_ms = grace.as_millis() as u64, "shutting down: no new connections; answering requests already read");
    let _ = draining_tx.send(true);
    drop(alive_tx);
    if tokio::time::timeout(grace, alive_rx.recv()).await.is_err() {
        warn!("connections still busy after the grace period; closing them");
        let _ = closing_tx.send(true);
        let _ = tokio::time::timeout(CLOSE_WAIT, alive_rx.recv()).await;
    }
    background.stop().await;
    trimmer.abort();
    let b = broker.clone();
    tokio::task::spawn_blocking(move || b.shutdown()).await.map_err(io::Error::other)?
}

/// What a new connection's task needs, before the stream is known to be TLS or not.
struct Conn {
    peer: std::net::SocketAddr,
    local: Option<std::net::SocketAddr>,
    advertised: Option<Advertised>,
    broker: Arc<Broker>,
    draining: watch::Receiver<bool>,
    sasl: Option<Arc<crate::config::SaslSettings>>,
    listener: Arc<str>,
}

impl Conn {
    /// Serves the connection: in the clear, or after a TLS handshake. The handshake runs here,
    /// in the connection's own task, so a slow or silent client holds up nobody else, and it
    /// gets as long as a first request would (`server.first_request_timeout_ms`).
    async fn serve(self, stream: tokio::net::TcpStream, tls: Option<Arc<tls::TlsListener>>) {
        let Conn { peer, local, advertised, broker, draining, sasl, listener } = self;
        let Some(tls) = tls else {
            let principal = crate::auth::Principal::anonymous();
            let security = connection::Security { principal, sasl, listener };
            return connection::serve(stream, peer, local, advertised, broker, draining, security).await;
        };
        let cfg = &broker.config.server;
        let deadline = Duration::from_millis(cfg.first_request_timeout_ms.min(cfg.connections_max_idle_ms));
        match tls.accept(stream, deadline).await {
            Ok((stream, principal)) => {
                debug!(%principal, "TLS handshake done");
                // On SASL_SSL the principal is the SASL one, once the client authenticates.
                let principal = if sasl.is_some() { crate::auth::Principal::anonymous() } else { principal };
                let security = connection::Security { principal, sasl, listener };
                connection::serve(stream, peer, local, advertised, broker, draining, security).await
            }
            // One line per failed handshake, limited: a client can fail handshakes at will.
            Err(e) => {
                crate::info_limited!("tls handshake failed", error = %e, "closing connection: TLS handshake failed")
            }
        }
    }
}
