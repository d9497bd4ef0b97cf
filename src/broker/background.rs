//! The broker's background work: group and transaction timers, retention and compaction
//! passes, timed flushes, and the final flush of a clean stop.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info};

use super::{now_ms, Broker};

impl Broker {
    /// Starts retention, timed-flush and group timer tasks. They run until the returned
    /// [`BackgroundTasks`] is stopped (or the runtime ends).
    pub fn spawn_background(self: &Arc<Self>) -> BackgroundTasks {
        let mut tasks = Vec::new();
        let broker = self.clone();
        tasks.push(tokio::spawn(async move {
            // Session timeouts are at least a few seconds; 100 ms keeps expiry prompt.
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                // Expiry appends tombstones to `__consumer_offsets`: off the runtime.
                let b = broker.clone();
                let now = tokio::time::Instant::now();
                let _ = tokio::task::spawn_blocking(move || {
                    b.groups.tick(now, now_ms());
                    // Share-partition state changed without a request to write it (a member
                    // left or timed out and its records were released).
                    let _ = b.share_groups.persist();
                })
                .await;
            }
        }));
        let broker = self.clone();
        let every = Duration::from_millis(self.config.transaction.abort_check_interval_ms.max(1));
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                // Aborting writes markers and fsyncs: off the runtime.
                let b = broker.clone();
                let _ = tokio::task::spawn_blocking(move || b.txns.tick(&b.markers(), &b.producer_ids, now_ms())).await;
            }
        }));
        let broker = self.clone();
        let every = Duration::from_millis(self.config.log.retention_check_interval_ms.max(1));
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let b = broker.clone();
                let _ = tokio::task::spawn_blocking(move || b.run_retention()).await;
            }
        }));
        if self.config.log.cleaner_enable {
            let broker = self.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    // Read at every pause: `log.cleaner.backoff.ms` is a dynamic setting.
                    let pause = Duration::from_millis(broker.log_defaults().cleaner_backoff_ms.max(1));
                    tokio::time::sleep(pause).await;
                    let b = broker.clone();
                    let _ = tokio::task::spawn_blocking(move || b.run_cleaner()).await;
                }
            }));
        }
        if let Some(ms) = self.config.log.flush_interval_ms {
            let broker = self.clone();
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(ms));
                loop {
                    tick.tick().await;
                    for p in broker.logs.all() {
                        let end = p.offsets().log_end_offset;
                        if p.durable_offset() < end {
                            if let Err(e) = p.flush_to(end).await {
                                error!(partition = %p.tp, error = %e, "scheduled fsync failed");
                            }
                        }
                    }
                }
            }));
        }
        BackgroundTasks(tasks)
    }

    /// The last step of a clean stop, once no request can reach the logs any more: fsyncs every
    /// partition, then writes the clean-shutdown marker so the next start trusts segment tails.
    /// Blocking (fsync); run it off the async workers. Without the marker the next start
    /// verifies every tail, so a failure here costs start-up time, never data.
    pub fn shutdown(&self) -> io::Result<()> {
        let started = std::time::Instant::now();
        let partitions = self.logs.all().len();
        self.logs.flush_all()?;
        self.logs.write_clean_shutdown_marker()?;
        info!(partitions, elapsed_ms = started.elapsed().as_millis() as u64, "logs flushed; clean shutdown recorded");
        Ok(())
    }

    /// One compaction pass over every partition whose topic asks for it.
    pub fn run_cleaner(&self) {
        let now = now_ms();
        let c = &self.config.log;
        let limits = crate::log::CleanerLimits {
            map_bytes: (c.cleaner_dedupe_buffer_size as f64 * c.cleaner_io_buffer_load_factor) as usize,
            io_bytes_per_second: c.cleaner_io_max_bytes_per_second,
        };
        for p in self.logs.all() {
            match p.compact(now, &limits) {
                // In shared mode the store's copy is cleaned too, by the partition's leader.
                Ok(stats) => {
                    if let (Some(from), Some(shipper)) = (stats.rewritten_from, &self.shipper) {
                        shipper.cleaned(&p.tp, from);
                    }
                }
                Err(e) => crate::warn_limited!("compaction", partition = %p.tp, error = %e, "compaction failed"),
            }
        }
    }

    pub fn run_retention(&self) {
        let now = now_ms();
        for p in self.logs.all() {
            // Shared mode: a log whose oldest part only the store holds has its retention
            // worked out there; the log start moves, and the store follows it.
            match &self.shipper {
                Some(shipper) if p.has_stored_head() => match shipper.stored_retention(&p, now) {
                    Ok(Some(start)) => match p.advance_log_start(start) {
                        Ok(_) => info!(partition = %p.tp, log_start_offset = start, "log start moved past retention"),
                        Err(e) => error!(partition = %p.tp, error = %e, "retention failed"),
                    },
                    Ok(None) => {}
                    Err(e) => {
                        crate::warn_limited!("stored retention", partition = %p.tp, error = %e, "retention failed")
                    }
                },
                _ => {
                    if let Err(e) = p.apply_retention(now) {
                        error!(partition = %p.tp, error = %e, "retention failed");
                    }
                }
            }
            // Shared mode: what `local.retention.bytes` does not keep is read from the store.
            if let Err(e) = p.trim_local() {
                error!(partition = %p.tp, error = %e, "cannot let go of local segments");
            }
            let max_idle = i64::try_from(self.config.transaction.producer_id_expiration_ms).unwrap_or(i64::MAX);
            p.expire_producers(now, max_idle);
        }
    }
}

/// Handles of the tasks [`Broker::spawn_background`] started.
#[derive(Debug)]
pub struct BackgroundTasks(Vec<tokio::task::JoinHandle<()>>);

impl BackgroundTasks {
    /// Stops the tasks and waits until they are gone. A retention pass already handed to a
    /// blocking thread still runs to its end; it only deletes whole old segments, never the
    /// active one the shutdown flush syncs.
    pub async fn stop(self) {
        for task in &self.0 {
            task.abort();
        }
        for task in self.0 {
            let _ = task.await;
        }
    }
}
