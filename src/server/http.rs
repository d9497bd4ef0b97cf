//! The operator's HTTP endpoint (`server.http_listen`): `/healthz` (the process serves),
//! `/readyz` (recovery is done and the Kafka listeners accept; 503 before and while stopping)
//! and `/metrics` (Prometheus, see [`crate::metrics`]). HTTP/1 with hyper; it answers from
//! the start, before the data directory is recovered.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tracing::debug;

use crate::broker::Broker;

/// What the endpoint reports on.
#[derive(Default)]
pub struct HttpState {
    ready: AtomicBool,
    broker: OnceLock<Arc<Broker>>,
}

impl HttpState {
    /// The broker is open (recovery done): `/metrics` reads its state from now on.
    pub fn set_broker(&self, broker: Arc<Broker>) {
        let _ = self.broker.set(broker);
    }

    /// Whether `/readyz` answers 200.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }
}

/// Connections the endpoint serves at once; more are closed at once.
const MAX_CONNECTIONS: usize = 32;

/// Serves the endpoint on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, state: Arc<HttpState>) {
    let room = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(_) => {
                // Out of descriptors, most likely: the Kafka listeners come first.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = room.clone().try_acquire_owned() else { continue };
        let state = state.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(answer(&state, &req)) }
            });
            if let Err(e) =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await
            {
                debug!(%peer, error = %e, "http connection ended");
            }
        });
    }
}

fn answer(state: &HttpState, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, body: &'static str| {
        Response::builder()
            .status(status)
            .header("content-type", "text/plain; charset=utf-8")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .expect("a static response")
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
    }
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if state.ready.load(Ordering::Acquire) => text(StatusCode::OK, "ready\n"),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready: recovering or stopping\n"),
        "/metrics" => Response::builder()
            .header("content-type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
            .body(Full::new(Bytes::from(crate::metrics::get().render(state.broker.get()))))
            .expect("a metrics response"),
        _ => text(StatusCode::NOT_FOUND, "not found: try /healthz, /readyz or /metrics\n"),
    }
}
