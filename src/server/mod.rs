//! The network side: accept loop with a connection limit, and per-connection tasks.

pub mod connection;
pub mod framing;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{info, info_span, warn, Instrument};

use crate::broker::Broker;

/// Serves connections until `shutdown` resolves.
pub async fn run(listener: TcpListener, broker: Arc<Broker>, shutdown: impl Future<Output = ()>) {
    let limit = Arc::new(Semaphore::new(broker.config.server.max_connections));
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, advertised = %format!("{}:{}", broker.node.host, broker.node.port), "listening");
    }
    broker.spawn_background();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "accept failed");
                continue;
            }
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            warn!(%peer, "connection limit reached, refusing connection");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let broker = broker.clone();
        tokio::spawn(
            async move {
                connection::serve(stream, peer, broker).await;
                drop(permit);
            }
            .instrument(info_span!("conn", %peer)),
        );
    }
    info!("shutting down");
}
