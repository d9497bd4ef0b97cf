//! gregor: a Kafka wire-protocol compatible broker.
//!
//! # Layout
//!
//! - [`config`]: layered configuration (defaults, `config/gregor.toml`, `--config`, environment,
//!   and Kafka's own `server.properties` / `KAFKA_*` names).
//! - [`server`]: the TCP listener and one task per connection: cutting frames off the socket,
//!   and writing responses back in request order.
//! - [`handlers`]: one file per Kafka API, and `handlers::codec` for request headers and
//!   response framing: the only code that knows request/response types. The registry in
//!   `handlers/mod.rs` is the single list of supported APIs and versions.
//! - [`log`]: partition logs on disk in Kafka's layout (segments, offset and time indexes),
//!   recovery, group-committed fsync, producer state (sequences, open transactions, the LSO).
//! - [`metadata`]: topics, partitions, topic configs, and the broker's own identity.
//! - [`txn`]: producer ids and the transaction coordinator (`__transaction_state`, markers).
//! - [`auth`]: who a connection is (its principal, from a TLS client certificate through
//!   `ssl.principal.mapping.rules`), the ACL store and SCRAM credentials.
//! - [`alloc`]: the global allocator guard that keeps hostile wire counts from exhausting memory.
//! - [`clock`]: the wall clock, for the code that drives the state machines.
//! - [`cluster`]: shared mode's coordination store in PostgreSQL (being built, not used yet).
//! - [`ratelimit`]: warnings a client can trigger at will, limited to one line per key per interval.

pub mod alloc;
pub mod auth;
pub mod blocking;
pub mod broker;
pub mod cli;
pub mod client;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod group;
pub mod handlers;
pub mod log;
pub mod metadata;
pub mod metrics;
pub mod ratelimit;
pub mod server;
pub mod txn;

#[global_allocator]
static GLOBAL: alloc::LazyLargeAlloc = alloc::LazyLargeAlloc;
