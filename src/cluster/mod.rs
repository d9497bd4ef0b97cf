//! Beyond one machine: shared mode, where several brokers run over PostgreSQL (coordination)
//! and an object store (data) instead of replicating between themselves (see
//! ARCHITECTURE.md, "Beyond one machine"). Being built: what is here is the coordination
//! store ([`store`]: schema migrations, broker registrations and leases, partition leadership
//! with leader epochs, the fenced batch index) and the lease plan ([`leases`]). The broker does
//! not use them yet: it always runs as a single node.

pub mod leases;
pub mod store;
#[cfg(test)]
pub mod testing;
