//! Rate-limited warnings: at most one log line per key per interval, with a count of the lines
//! left out in between.
//!
//! A warning that a client can trigger at will (a refused connection, a rejected produce, a
//! failing `accept`) must not turn into gigabytes of log and a busy core. Call sites use
//! [`warn_limited!`](crate::warn_limited) with a fixed key; the first occurrence is logged, the
//! next ones within [`INTERVAL`] are only counted, and the next line logged for that key carries
//! `suppressed = N`.
//!
//! Invariant: the table holds one entry per distinct key. Keys are `&'static str`, so it is
//! bounded by the number of call sites, never by anything a client sends.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most one line per key this often.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// The process-wide limiter [`warn_limited!`](crate::warn_limited) uses.
pub static WARNINGS: RateLimiter = RateLimiter::new(INTERVAL);

#[derive(Debug)]
pub struct RateLimiter {
    every: Duration,
    slots: Mutex<Vec<Slot>>,
}

#[derive(Debug)]
struct Slot {
    key: &'static str,
    last_logged: Instant,
    suppressed: u64,
}

impl RateLimiter {
    pub const fn new(every: Duration) -> Self {
        Self { every, slots: Mutex::new(Vec::new()) }
    }

    /// Whether a line for `key` may be logged at `now`. `Some(n)`: log it, mentioning that `n`
    /// similar lines were left out since the last one. `None`: leave it out (it is counted).
    pub fn check(&self, key: &'static str, now: Instant) -> Option<u64> {
        // A poisoned lock only means another thread panicked while counting; the counts are
        // still usable.
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        match slots.iter_mut().find(|s| s.key == key) {
            None => {
                slots.push(Slot { key, last_logged: now, suppressed: 0 });
                Some(0)
            }
            Some(slot) if now.saturating_duration_since(slot.last_logged) >= self.every => {
                slot.last_logged = now;
                Some(std::mem::take(&mut slot.suppressed))
            }
            Some(slot) => {
                slot.suppressed += 1;
                None
            }
        }
    }
}

/// `tracing::warn!` through [`WARNINGS`]: `warn_limited!("key", field = %x, "message")`.
/// Logged lines carry `suppressed`, the number of lines with this key left out before them.
#[macro_export]
macro_rules! warn_limited {
    ($key:expr, $($arg:tt)+) => {
        if let Some(suppressed) = $crate::ratelimit::WARNINGS.check($key, ::std::time::Instant::now()) {
            ::tracing::warn!(suppressed, $($arg)+);
        }
    };
}

/// `tracing::info!` through [`WARNINGS`], for events that are routine for one client but that a
/// client can repeat at will (a failed TLS handshake): `info_limited!("key", ..., "message")`.
#[macro_export]
macro_rules! info_limited {
    ($key:expr, $($arg:tt)+) => {
        if let Some(suppressed) = $crate::ratelimit::WARNINGS.check($key, ::std::time::Instant::now()) {
            ::tracing::info!(suppressed, $($arg)+);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_key_per_interval_with_a_count_of_the_rest() {
        let limiter = RateLimiter::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(limiter.check("a", t0), Some(0));
        for i in 1..=1000 {
            assert_eq!(limiter.check("a", t0 + Duration::from_millis(i)), None);
        }
        // Another key is independent.
        assert_eq!(limiter.check("b", t0 + Duration::from_secs(1)), Some(0));
        assert_eq!(limiter.check("a", t0 + Duration::from_secs(10)), Some(1000));
        assert_eq!(limiter.check("a", t0 + Duration::from_secs(11)), None);
        assert_eq!(limiter.check("a", t0 + Duration::from_secs(20)), Some(1));
    }
}
