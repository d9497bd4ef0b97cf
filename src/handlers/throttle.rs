//! What a request costs against the client's quotas ([`crate::auth::quota`]), and what a
//! throttled client is made to wait.
//!
//! As Kafka 4.1 does (KIP-219): the response says `throttle_time_ms` and is sent at once, then
//! the connection reads nothing more for that long ([`Mute`]); clients too old to honour the
//! field (Produce before v6, Fetch before v8) get their response that much later instead.
//! Produce and Fetch report the larger of their byte-rate and request-time waits in the
//! response; other APIs' request time only mutes the connection (their `throttle_time_ms`
//! stays 0).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Ctx, Reply};
use crate::auth::quota::Kind;
use crate::broker::{now_ms, Broker};

/// Until when a connection reads no further request: set by a throttled request, taken by the
/// connection's reader before it reads the next frame.
#[derive(Debug, Default)]
pub struct Mute(parking_lot::Mutex<Option<tokio::time::Instant>>);

impl Mute {
    /// Mutes for `ms` from now (or longer, if already muted longer).
    pub fn extend(&self, ms: i32) {
        if ms <= 0 {
            return;
        }
        let until = tokio::time::Instant::now() + Duration::from_millis(ms as u64);
        let mut slot = self.0.lock();
        *slot = Some(slot.map_or(until, |u| u.max(until)));
    }

    /// The end of the current mute, if any; clears it.
    pub fn take(&self) -> Option<tokio::time::Instant> {
        self.0.lock().take()
    }
}

/// Who a request is charged to: owned, so that a deferred reply can still record.
#[derive(Clone)]
pub struct Charge {
    broker: Arc<Broker>,
    user: String,
    client_id: String,
    mute: Arc<Mute>,
    started: Instant,
}

impl Charge {
    pub fn new(ctx: &Ctx) -> Self {
        Charge {
            broker: ctx.broker.clone(),
            user: ctx.principal.name.clone(),
            client_id: ctx.client_id.clone().unwrap_or_default(),
            mute: ctx.mute.clone(),
            started: ctx.started,
        }
    }

    /// Whether any quota is set at all (nothing is measured otherwise).
    pub fn active(&self) -> bool {
        self.broker.quotas.any()
    }

    /// Records `value` against the `kind` quota; the wait it costs in ms.
    pub fn record(&self, kind: Kind, value: f64) -> i32 {
        if !self.active() {
            return 0;
        }
        self.broker.quotas.record(kind, &self.user, &self.client_id, value, now_ms())
    }

    /// Takes back a recording (a throttled fetch's response is sent empty).
    pub fn unrecord(&self, kind: Kind, value: f64) {
        if self.active() {
            self.broker.quotas.unrecord(kind, &self.user, &self.client_id, value, now_ms());
        }
    }

    /// Records the time spent on the request so far against `request_percentage`.
    pub fn request_time(&self) -> i32 {
        if !self.active() {
            return 0;
        }
        let percent = self.started.elapsed().as_nanos() as f64 * 100.0 / 1e9;
        self.record(Kind::Request, percent)
    }

    /// The most bytes one window of the client's `kind` quota allows, if it has one.
    pub fn max_in_window(&self, kind: Kind) -> Option<f64> {
        if !self.active() {
            return None;
        }
        self.broker.quotas.max_in_window(kind, &self.user, &self.client_id)
    }

    /// Mutes the connection for `ms`.
    pub fn mute(&self, ms: i32) {
        self.mute.extend(ms);
        if ms > 0 {
            crate::metrics::get().throttled(ms);
        }
    }
}

/// A reply held back `ms` (for clients that do not throttle themselves).
pub fn delayed(reply: Reply, ms: i32) -> Reply {
    if ms <= 0 {
        return reply;
    }
    let wait = Duration::from_millis(ms as u64);
    match reply {
        Reply::Ready(frame) => Reply::Deferred(Box::pin(async move {
            tokio::time::sleep(wait).await;
            Some(frame)
        })),
        Reply::Deferred(fut) => Reply::Deferred(Box::pin(async move {
            let frame = fut.await;
            tokio::time::sleep(wait).await;
            frame
        })),
        other => other,
    }
}
