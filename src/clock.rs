//! The wall clock, at the bottom of the layers so that any of them may read it. State machines
//! do not call it: they take `now` as a parameter (see `group::rebalance`), and the code that
//! drives them reads the clock here and passes the time in.

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock milliseconds since the epoch (Kafka timestamps).
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
