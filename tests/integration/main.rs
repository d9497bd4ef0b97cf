//! The integration tests, one module per area, in one test binary: as a binary each, every file
//! was compiled and linked on its own against the whole crate and librdkafka, and those links
//! were most of the build.
//!
//! The test harness runs these tests side by side on its threads, in one process, so a test here
//! must not change anything process-wide (resource limits, the environment, the current
//! directory) nor measure the test process itself; a child process's memory or CPU is fine.
//! Tests that do, or that load the machine so much that their neighbours' deadlines would not
//! hold, stay binaries of their own next to this folder:
//! - `tests/accept_backoff.rs` lowers the test process's `RLIMIT_NOFILE` and measures the
//!   process's CPU time;
//! - `tests/many_partitions.rs` creates, writes and reads 20,000 partitions for minutes.

#[path = "../common/mod.rs"]
mod common;

mod admin_cli;
mod admin_latency;
mod advertise;
mod cli;
mod cluster_admin;
mod compaction;
mod consumer_group_protocol;
mod crash_recovery;
mod delete_records;
mod fetch_memory;
mod graceful_stop;
mod groups;
mod hostile_frames;
mod http;
mod legacy;
mod listeners;
mod memory_release;
mod protocol;
mod quotas;
mod rdkafka_clients;
mod sasl;
mod server_limits;
mod share_groups;
mod shared_mode;
mod tls;
mod topic_admin;
mod transactions;
