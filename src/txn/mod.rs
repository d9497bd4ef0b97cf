//! The transaction coordinator and producer ids.
//!
//! The per-partition producer state (sequences, epochs, open transactions) belongs to the log
//! (`log::producer_state`), as Kafka's producer state manager does. This module keeps what
//! spans partitions: which producer id and epoch a transactional id has, which partitions its
//! current transaction touched, and the transaction's state, persisted in
//! `__transaction_state` (Kafka's record schemas) and replayed at start. Ending a transaction
//! writes a commit or abort marker into every partition of it (through a [`MarkerWriter`]),
//! durably, between a durable "prepare" record and a "complete" one, so a crash at any point is
//! finished by the next start.

mod coordinator;
mod producer_ids;
pub mod record;
pub mod state;

pub use coordinator::{
    AddResult, MarkerWriter, ProduceGuard, RemoteTxns, TxnConfig, TxnCoordinator, TxnError, TxnListing, TXN_TOPIC,
};
pub use producer_ids::{IdBlocks, ProducerIdManager};

#[cfg(test)]
mod tests;
