//! Who leads which partition and coordinates which group, and what the cluster looks like
//! ([`view::Cluster`], asked by handlers and coordinators). A single node answers "this
//! broker"; in shared mode several brokers run over PostgreSQL (coordination) and an object
//! store (data) instead of replicating between themselves (ARCHITECTURE.md, "Beyond one
//! machine").
//!
//! Shared mode is being built. Here now: the coordination store ([`store`]: schema migrations,
//! broker registrations and leases, topics, partition leadership with leader epochs, the
//! fenced batch index) and the bounded connections to it ([`connection`]), the lease plan ([`leases`]), a broker's membership and view of the
//! cluster ([`shared`]), the objects ([`objects`]: batches of several partitions in one
//! object, ranged reads, garbage collection), and the data path ([`shipping`]: appends are
//! durable once committed as objects and index rows; a new leader rebuilds its log from them,
//! and a new group or transaction coordinator reloads its state; small objects are merged per
//! partition and compacted logs written again), and the reads of what only the store holds
//! ([`reading`]: index look-ups, ranged GETs, a bounded cache). Brokers reach each other on
//! the inter-broker listener, with its TLS and SASL settings (`handlers::peers`).

pub mod connection;
pub mod leases;
pub mod objects;
pub mod reading;
pub mod shared;
pub mod shipping;
pub mod store;
#[cfg(test)]
pub mod testing;
pub mod view;

pub use view::{Cluster, Leadership, Node};

/// An internal topic's id: the same at every start of one cluster, different across clusters.
pub fn internal_topic_id(cluster_id: &str, name: &str) -> uuid::Uuid {
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, format!("gregor/{cluster_id}/{name}").as_bytes())
}
