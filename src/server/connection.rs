//! One task pair per client socket: the reader decodes frames and runs each request's
//! handler in arrival order (so appends from one connection keep their order); the writer sends
//! replies in that same order, awaiting deferred ones (long-poll fetches, `acks=all` waits)
//! without holding up the reader or other connections.
//!
//! Timeouts: a connection must send its first complete request within
//! `server.first_request_timeout_ms`, later ones within `connections.max.idle.ms`. Buffers are
//! small and per connection ([`BUF_BYTES`] each way); large frames and record sets bypass them.
//!
//! Stopping: once `draining` turns true the reader takes no further request, and the writer
//! still answers every request already read (deferred ones included), then closes.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::{mpsc, watch};
use tracing::{debug, Instrument};

use super::framing::{self, FrameError};
use crate::broker::Broker;
use crate::handlers::{self, Frame, Reply};

/// Read and write buffer size. Frames larger than this are read straight into their own
/// buffer and large record sets written straight to the socket, so more would only cost memory
/// per idle connection.
pub const BUF_BYTES: usize = 8 * 1024;

/// A reply the client takes none of for this long closes the connection: its unread fetch
/// responses hold room in the broker's fetch memory that other clients need. Clients read
/// continuously (librdkafka gives up on a socket after 60 s of silence, Java after 30 s).
const WRITE_STALL: Duration = Duration::from_secs(60);

/// After a last reply (a failed authentication's answer), how long the broker waits for the
/// client to close before it closes itself. A client that reads the answer and then closes
/// sees the answer; one that finds the broker's close first may drop the answer unread
/// (kafka-python 3.0 does, and reports only a lost connection).
const FINAL_LINGER: Duration = Duration::from_secs(1);

/// Why the reader stopped without an error.
enum ReadEnd {
    /// The client closed its side between requests.
    ClientClosed,
    /// The broker is stopping.
    Draining,
}

/// Who a connection's client is, as far as the transport knows, and whether it must still
/// authenticate.
pub struct Security {
    /// From the TLS certificate, or `User:ANONYMOUS`; a SASL client's once it authenticates.
    pub principal: crate::auth::Principal,
    /// The listener's SASL settings: the client must authenticate before anything is served.
    pub sasl: Option<Arc<crate::config::SaslSettings>>,
    /// The listener's name (Metadata lists the other brokers' addresses on the same one).
    pub listener: Arc<str>,
}

/// Serves one client. `local` is the address the client dialled (the socket's local address),
/// which the broker advertises back when its listener has no `advertised` address; `security`
/// is who the client is and whether it must authenticate with SASL.
pub async fn serve<S>(
    stream: S,
    peer: std::net::SocketAddr,
    local: Option<std::net::SocketAddr>,
    advertised: Option<handlers::Advertised>,
    broker: Arc<Broker>,
    draining: watch::Receiver<bool>,
    security: Security,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    crate::alloc::note_activity();
    let (rd, wr) = tokio::io::split(stream);
    let (tx, rx) = mpsc::channel::<Reply>(broker.config.server.max_inflight_requests);
    // Set once reading stops, so the writer abandons replies nobody will read (a long poll
    // with a huge max_wait must not outlive its client).
    let (closed_tx, closed_rx) = watch::channel(false);
    let writer = tokio::spawn(write_loop(wr, rx, closed_rx).in_current_span());
    let Security { principal, sasl, listener } = security;
    let mut session = handlers::Session::new(&broker, format!("/{}", peer.ip()), local, advertised, principal)
        .with_listener(listener);
    if let Some(settings) = sasl {
        session = session.with_sasl(settings);
    }
    let result = read_loop(rd, &session, &broker, tx, draining).await;
    // When the broker stops, the writer answers what was read; otherwise nobody will read them.
    if !matches!(result, Ok(ReadEnd::Draining)) {
        let _ = closed_tx.send(true);
    }
    match result {
        Err(e) if e.is_expected() => debug!(reason = %e, "connection closed"),
        Err(e) => crate::warn_limited!("closing connection", error = %e, "closing connection"),
        Ok(ReadEnd::ClientClosed) => debug!("connection closed by client"),
        Ok(ReadEnd::Draining) => debug!("broker stopping: no further requests read from this connection"),
    }
    let _ = writer.await;
    crate::alloc::note_activity();
}

async fn read_loop<R: AsyncRead + Unpin>(
    rd: R,
    session: &handlers::Session,
    broker: &Arc<Broker>,
    tx: mpsc::Sender<Reply>,
    mut draining: watch::Receiver<bool>,
) -> Result<ReadEnd, FrameError> {
    let mut rd = BufReader::with_capacity(BUF_BYTES, rd);
    let cfg = &broker.config.server;
    let max = cfg.max_request_bytes;
    let idle = Duration::from_millis(cfg.connections_max_idle_ms);
    // A socket that never completes a request is closed sooner than an established client.
    let mut wait = Duration::from_millis(cfg.first_request_timeout_ms).min(idle);
    loop {
        // A client past its quota is not read from until its wait is over (KIP-219 muting).
        if let Some(until) = session.mute.take() {
            tokio::select! {
                biased;
                _ = draining.wait_for(|d| *d) => return Ok(ReadEnd::Draining),
                _ = tokio::time::sleep_until(until) => {}
            }
        }
        let read = tokio::select! {
            biased;
            _ = draining.wait_for(|d| *d) => return Ok(ReadEnd::Draining),
            r = framing::read_frame(&mut rd, session.max_frame_bytes(max), wait) => r?,
        };
        let Some(frame) = read else {
            return Ok(ReadEnd::ClientClosed);
        };
        wait = idle;
        crate::alloc::note_activity();
        let reply = handlers::dispatch(broker, session, frame).await;
        let close = match &reply {
            Reply::Close(reason) | Reply::Final(reason, _) => Some(FrameError::Protocol(reason.clone())),
            _ => None,
        };
        let last = matches!(reply, Reply::Final(..));
        if tx.send(reply).await.is_err() {
            return Err(FrameError::Closed);
        }
        if let Some(reason) = close {
            if last {
                // The writer closes once reading stops: leave the client time to read the
                // last answer and close first. What it still sends is read and dropped.
                let mut sink = [0u8; 512];
                let drained = async { while matches!(rd.read(&mut sink).await, Ok(n) if n > 0) {} };
                tokio::select! {
                    biased;
                    _ = draining.wait_for(|d| *d) => {}
                    _ = tokio::time::timeout(FINAL_LINGER, drained) => {}
                }
            }
            return Err(reason);
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(wr: W, mut rx: mpsc::Receiver<Reply>, mut closed: watch::Receiver<bool>) {
    let mut wr = BufWriter::with_capacity(BUF_BYTES, wr);
    while let Some(reply) = rx.recv().await {
        let frame = match reply {
            Reply::Ready(b) => b,
            Reply::Deferred(fut) => {
                // Replies already buffered go out now, not after this one is ready (a long
                // poll could otherwise hold an earlier answer back for its whole wait).
                if !wr.buffer().is_empty() && wr.flush().await.is_err() {
                    return;
                }
                let ready = tokio::select! {
                    r = fut => r,
                    _ = closed.wait_for(|c| *c) => None,
                };
                match ready {
                    Some(b) => b,
                    None => break,
                }
            }
            Reply::NoResponse => continue,
            Reply::Close(_) => break,
            // The last reply (a failed authentication's answer, sent after its delay), then the
            // connection closes when reading stops: when the client closes, or after
            // FINAL_LINGER.
            Reply::Final(_, fut) => {
                if let Some(b) = fut.await {
                    let written = match &b {
                        Frame::One(b) => write_all(&mut wr, b).await,
                        Frame::Parts(parts) => write_parts(&mut wr, parts).await,
                    };
                    if written.is_err() || wr.flush().await.is_err() {
                        return;
                    }
                    let _ = closed.wait_for(|c| *c).await;
                }
                break;
            }
        };
        // Large parts (record sets) bypass the buffer: BufWriter writes a slice at least its
        // capacity straight to the socket after flushing what it holds.
        let written = match &frame {
            Frame::One(b) => write_all(&mut wr, b).await,
            Frame::Parts(parts) => write_parts(&mut wr, parts).await,
        };
        if written.is_err() {
            return;
        }
        // Batch socket writes: flush only when no further reply is ready.
        if rx.is_empty() && wr.flush().await.is_err() {
            return;
        }
    }
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
}

async fn write_parts<W: AsyncWrite + Unpin>(wr: &mut W, parts: &[bytes::Bytes]) -> std::io::Result<()> {
    for part in parts {
        write_all(wr, part).await?;
    }
    Ok(())
}

/// `write_all`, failing when the socket takes no byte for [`WRITE_STALL`].
async fn write_all<W: AsyncWrite + Unpin>(wr: &mut W, mut buf: &[u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        match tokio::time::timeout(WRITE_STALL, wr.write(buf)).await {
            Ok(Ok(0)) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(Ok(n)) => buf = &buf[n..],
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                crate::warn_limited!("client reads nothing", "closing a connection whose client read nothing for 60 s");
                return Err(std::io::ErrorKind::TimedOut.into());
            }
        }
    }
    Ok(())
}
