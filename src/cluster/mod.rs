//! Beyond one machine: shared mode, where several brokers run over PostgreSQL (coordination)
//! and an object store (data) instead of replicating between themselves (see
//! ARCHITECTURE.md, "Beyond one machine"). Being built: what is here is the coordination
//! store ([`store`]: schema migrations, broker registrations and leases, partition leadership
//! with leader epochs, the fenced batch index), the lease plan ([`leases`]) and the objects
//! ([`objects`]: batches of several partitions in one object, ranged reads, garbage
//! collection of objects no commit references). The broker does not use them yet: it always
//! runs as a single node.

pub mod leases;
pub mod objects;
pub mod store;
#[cfg(test)]
pub mod testing;
