//! [`TxnCoordinator`]: every transactional id's state, its changes, and their persistence.
//!
//! Each transactional id has its own lock, held for the whole of an operation on it,
//! including the writes and fsyncs it waits for, so the operations of one producer happen one
//! at a time and in order. Transactional produces hold it too ([`TxnCoordinator::lock_for_produce`]):
//! a produce can then never land in a partition after the marker that ended its transaction.
//! Lock order: a transactional id, then partition logs. Calls block on disk: run them off the
//! async runtime.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use parking_lot::{ArcMutexGuard, Mutex, RawMutex, RwLock};
use tracing::{info, warn};

use super::producer_ids::ProducerIdManager;
use super::record;
use super::state::{TxnMetadata, TxnState};
use crate::log::batch;
use crate::log::producer_state::ControlType;
use crate::log::{LogManager, PartitionConfig, PartitionLog, TopicPartition};

pub const TXN_TOPIC: &str = "__transaction_state";

/// Kafka's `transaction.max.timeout.ms`, `transactional.id.expiration.ms`.
#[derive(Debug, Clone)]
pub struct TxnConfig {
    pub max_timeout_ms: i32,
    pub id_expiration_ms: i64,
    /// Compact `__transaction_state` at start once it is larger than this.
    pub checkpoint_bytes: u64,
}

impl Default for TxnConfig {
    fn default() -> Self {
        Self { max_timeout_ms: 900_000, id_expiration_ms: 7 * 24 * 3600 * 1000, checkpoint_bytes: 64 << 20 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    #[error("the transaction timeout of {got} ms is not between 1 and transaction.max.timeout.ms ({max} ms)")]
    InvalidTimeout { got: i32, max: i32 },
    #[error("transactional id {0:?} has no producer id yet: call InitProducerId first")]
    NoProducerId(String),
    #[error("producer id {got} does not belong to this transactional id (it has {current})")]
    ProducerIdMapping { got: i64, current: i64 },
    #[error("producer epoch {got} is fenced: the transactional id is at epoch {current} (another producer with the same transactional id started, or the transaction timed out)")]
    Fenced { got: i16, current: i16 },
    #[error("the previous transaction of this transactional id is still being completed; retry")]
    Concurrent,
    #[error("{0}")]
    InvalidState(String),
    #[error("the partition was not added to the transaction (AddPartitionsToTxn) before this produce")]
    PartitionNotAdded,
    #[error("the transactional id is not known")]
    NotFound,
    #[error("the topic or partition does not exist")]
    UnknownPartition,
    #[error("not attempted: another partition of the request does not exist")]
    NotAttempted,
    #[error("the transaction state could not be written: {0}")]
    Storage(String),
    /// Shared mode: the transaction coordinator on another broker could not be asked (moved,
    /// unreachable); the client retries.
    #[error("the transaction coordinator could not check this write: {0}")]
    Unverified(String),
    /// Shared mode: the transaction coordinator on another broker refused with this Kafka
    /// error code.
    #[error("the transaction coordinator (broker {node}) refused: {message}")]
    Remote { node: i32, code: i16, message: String },
}

/// Where the coordinator writes markers: the broker's partitions, including the group
/// coordinator's `__consumer_offsets`.
pub trait MarkerWriter {
    /// Appends a marker for `producer_id` at `epoch` to the partition and waits until it is
    /// durable. `Ok(false)` when the partition no longer exists (its topic was deleted).
    fn write_marker(
        &self,
        tp: &(String, i32),
        producer_id: i64,
        epoch: i16,
        control: ControlType,
    ) -> Result<bool, String>;
}

/// Shared mode: what transactions need from the other brokers. The coordinator writes markers
/// into partitions another broker leads through it, and a leader that is not the coordinator
/// checks a transactional write with the coordinator (KIP-890's verification; with Transaction
/// Version 2 the check adds the partition). Implemented over the network by `handlers::peers`;
/// calls block: make them off the async runtime.
pub trait RemoteTxns: Send + Sync + std::fmt::Debug {
    /// Writes a marker into `tp`, which broker `node` leads, once it is durable there.
    /// `Ok(false)`: the partition does not exist; `Err`: not written (moved, unreachable), retry.
    fn write_marker(
        &self,
        node: i32,
        tp: &(String, i32),
        producer_id: i64,
        epoch: i16,
        control: ControlType,
    ) -> Result<bool, String>;

    /// Asks the transaction coordinator `node` whether `tp` is in the ongoing transaction of
    /// `transactional_id` under this producer id and epoch; `add` adds it if not.
    fn check_partition(
        &self,
        node: i32,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        tp: &(String, i32),
        add: bool,
    ) -> Result<(), TxnError>;
}

/// Per-partition outcome of AddPartitionsToTxn.
pub type AddResult = Vec<((String, i32), Result<(), TxnError>)>;

/// One transaction as ListTransactions and DescribeTransactions show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnListing {
    pub transactional_id: String,
    pub producer_id: i64,
    pub epoch: i16,
    pub state: TxnState,
    pub timeout_ms: i32,
    pub start_ms: i64,
    pub partitions: Vec<(String, i32)>,
}

type Entry = Arc<Mutex<TxnMetadata>>;

#[derive(Debug)]
pub struct TxnCoordinator {
    txns: RwLock<HashMap<String, Entry>>,
    log: Arc<PartitionLog>,
    cfg: TxnConfig,
}

/// A transactional id's state, locked for a produce of its producer (see the module docs).
pub struct ProduceGuard {
    meta: Option<ArcMutexGuard<RawMutex, TxnMetadata>>,
}

impl ProduceGuard {
    /// Whether the producer may write transactional records to the partition now: its
    /// transaction is ongoing, under this producer id and epoch, and includes the partition.
    pub fn verify(&self, producer_id: i64, epoch: i16, tp: &(String, i32)) -> Result<(), TxnError> {
        let Some(m) = &self.meta else {
            return Err(TxnError::PartitionNotAdded);
        };
        if producer_id != m.producer_id {
            return Err(TxnError::ProducerIdMapping { got: producer_id, current: m.producer_id });
        }
        if epoch < m.epoch {
            return Err(TxnError::Fenced { got: epoch, current: m.epoch });
        }
        if m.state != TxnState::Ongoing || epoch != m.epoch || !m.partitions.contains(tp) {
            return Err(TxnError::PartitionNotAdded);
        }
        Ok(())
    }
}

impl TxnCoordinator {
    /// Opens `__transaction_state` and replays it. Transactions caught between "prepare" and
    /// "complete" are finished by [`TxnCoordinator::recover`] once the partitions are open.
    pub fn open(logs: &LogManager, cfg: TxnConfig, now_ms: i64) -> io::Result<Self> {
        // Compacted in the background like any compacted topic: replay keeps the latest
        // record per key and lets a tombstone delete, which is what compaction preserves.
        let config = PartitionConfig { compact: true, ..PartitionConfig::internal() };
        let log = logs.open(TopicPartition::new(TXN_TOPIC, 0), config, now_ms)?;
        let coordinator = Self { txns: RwLock::new(HashMap::new()), log, cfg };
        let kept = coordinator.replay()?;
        if coordinator.log.size_bytes() >= coordinator.cfg.checkpoint_bytes {
            let mut live: Vec<(Vec<u8>, Option<Vec<u8>>)> = coordinator
                .txns
                .read()
                .values()
                .map(|e| {
                    let m = e.lock();
                    (record::encode_key(&m.transactional_id), Some(record::encode_value(&m)))
                })
                .collect();
            live.extend(kept.into_iter().map(|(k, v)| (k, Some(v))));
            coordinator.log.rewrite_as(&live, now_ms)?;
            info!(transactional_ids = live.len(), "compacted {TXN_TOPIC}");
        }
        Ok(coordinator)
    }

    /// Rebuilds every transactional id's state. Returns the records gregor cannot read (a
    /// version it does not know), latest per key, which change nothing and are kept.
    fn replay(&self) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut kept: indexmap::IndexMap<Vec<u8>, Vec<u8>> = indexmap::IndexMap::new();
        let mut txns = self.txns.write();
        let mut records = 0usize;
        self.log.for_each_record(|key, value| {
            records += 1;
            let Some(id) = key.and_then(record::decode_key) else {
                warn!("{TXN_TOPIC} holds a record with a key gregor cannot read; ignoring it");
                return;
            };
            match value {
                None => {
                    txns.remove(&id);
                    kept.shift_remove(key.unwrap_or_default());
                }
                Some(v) => match record::decode_value(&id, v) {
                    Some(m) => {
                        txns.insert(id, Arc::new(Mutex::new(m)));
                        kept.shift_remove(key.unwrap_or_default());
                    }
                    None => {
                        warn!(transactional_id = %id, "{TXN_TOPIC} holds a state record gregor cannot read; keeping it and changing nothing");
                        kept.insert(key.unwrap_or_default().to_vec(), v.to_vec());
                    }
                },
            }
        })?;
        if records > 0 {
            info!(transactional_ids = txns.len(), records, "replayed {TXN_TOPIC}");
        }
        Ok(kept.into_iter().collect())
    }

    /// Forgets every transactional id and replays the state log again, then finishes what was
    /// left between "prepare" and "complete" (as at start). Shared mode calls it when this
    /// broker becomes the transaction coordinator: its log of `__transaction_state` was just
    /// rebuilt from the store, with what the previous coordinator wrote.
    pub fn reload(&self, markers: &dyn MarkerWriter, now_ms: i64) -> io::Result<()> {
        self.txns.write().clear();
        self.replay()?;
        self.recover(markers, now_ms);
        Ok(())
    }

    /// Finishes the transactions a stop left between "prepare" and "complete": their markers
    /// are written (again; a repeated marker changes nothing) and the state completed.
    pub fn recover(&self, markers: &dyn MarkerWriter, now_ms: i64) {
        for entry in self.entries() {
            let mut m = entry.lock();
            if m.state.is_preparing() {
                let control = if m.state == TxnState::PrepareCommit { ControlType::Commit } else { ControlType::Abort };
                if let Err(e) = self.finish(&mut m, control, markers, now_ms) {
                    warn!(transactional_id = %m.transactional_id, error = %e, "cannot finish a transaction at start; retrying later");
                }
            }
        }
    }

    fn entries(&self) -> Vec<Entry> {
        self.txns.read().values().cloned().collect()
    }

    fn entry(&self, transactional_id: &str) -> Option<Entry> {
        self.txns.read().get(transactional_id).cloned()
    }

    /// Writes the state record and waits until it is durable.
    fn persist(&self, m: &TxnMetadata) -> Result<(), TxnError> {
        self.write_state(m, true)
    }

    fn write_state(&self, m: &TxnMetadata, durable: bool) -> Result<(), TxnError> {
        let key = record::encode_key(&m.transactional_id);
        let value = record::encode_value(m);
        self.append(&[(Some(&key[..]), Some(&value[..]))], durable)
    }

    /// Appends records; with `durable`, returns once they are fsynced (an fsync another
    /// caller made after the append counts).
    fn append(&self, records: &[batch::KeyValue<'_>], durable: bool) -> Result<(), TxnError> {
        let now = crate::clock::now_ms();
        let storage = |e: String| {
            warn!(error = %e, "cannot write to {TXN_TOPIC}");
            TxnError::Storage(e)
        };
        let info = self.log.append(&batch::build(records, now), now).map_err(|e| storage(e.to_string()))?;
        if !durable || self.log.durable_offset() > info.last_offset {
            return Ok(());
        }
        self.log.flush_blocking().map_err(|e| storage(e.to_string()))
    }

    /// InitProducerId with a transactional id: a producer id (new for a new transactional
    /// id) at the next epoch, fencing every older producer of the id. An ongoing transaction
    /// of the id is aborted first. `expected` is the (producer id, epoch) a producer that
    /// already had one says it has (KIP-360); it must be the current one.
    pub fn init_producer(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        ids: &ProducerIdManager,
        markers: &dyn MarkerWriter,
        now_ms: i64,
    ) -> Result<(i64, i16), TxnError> {
        if timeout_ms <= 0 || timeout_ms > self.cfg.max_timeout_ms {
            return Err(TxnError::InvalidTimeout { got: timeout_ms, max: self.cfg.max_timeout_ms });
        }
        let entry = {
            let mut txns = self.txns.write();
            txns.entry(transactional_id.to_string())
                .or_insert_with(|| Arc::new(Mutex::new(TxnMetadata::new(transactional_id))))
                .clone()
        };
        let mut m = entry.lock();
        let before = m.clone();
        let new_id = || ids.next_id().map_err(|e| TxnError::Storage(e.to_string()));
        if m.producer_id < 0 {
            m.producer_id = new_id()?;
            m.epoch = 0;
        } else {
            if let Some((pid, epoch)) = expected {
                if pid != m.producer_id {
                    return Err(TxnError::ProducerIdMapping { got: pid, current: m.producer_id });
                }
                if epoch == m.last_epoch && m.state == TxnState::Empty {
                    // A retry of the bump that got this epoch: the same answer again.
                    return Ok((m.producer_id, m.epoch));
                }
                if epoch != m.epoch {
                    return Err(TxnError::Fenced { got: epoch, current: m.epoch });
                }
            }
            if m.state.is_preparing() {
                return Err(TxnError::Concurrent);
            }
            if m.state == TxnState::Ongoing {
                // The old producer is fenced by the epoch the abort markers carry.
                bump_epoch(&mut m, &new_id)?;
                self.finish(&mut m, ControlType::Abort, markers, now_ms)?;
            }
            let previous = m.epoch;
            bump_epoch(&mut m, &new_id)?;
            m.last_epoch = if expected.is_some() { previous } else { -1 };
        }
        m.timeout_ms = timeout_ms;
        m.state = TxnState::Empty;
        m.partitions.clear();
        m.start_ms = -1;
        m.last_update_ms = now_ms;
        if let Err(e) = self.persist(&m) {
            *m = before;
            return Err(e);
        }
        Ok((m.producer_id, m.epoch))
    }

    /// Checks that a request comes from the current producer of the transactional id.
    fn check_producer(m: &TxnMetadata, producer_id: i64, epoch: i16) -> Result<(), TxnError> {
        if m.producer_id < 0 {
            return Err(TxnError::NoProducerId(m.transactional_id.clone()));
        }
        if producer_id != m.producer_id {
            return Err(TxnError::ProducerIdMapping { got: producer_id, current: m.producer_id });
        }
        if epoch != m.epoch {
            return Err(TxnError::Fenced { got: epoch, current: m.epoch });
        }
        Ok(())
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, with the offsets partition): the partitions
    /// join the producer's transaction, which begins if it has not. `exists` tells whether a
    /// partition exists; when one does not, nothing is added (the others are "not attempted").
    pub fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: Vec<(String, i32)>,
        exists: impl Fn(&(String, i32)) -> bool,
        now_ms: i64,
    ) -> Result<AddResult, TxnError> {
        let entry = self.entry(transactional_id).ok_or_else(|| TxnError::NoProducerId(transactional_id.into()))?;
        let mut m = entry.lock();
        Self::check_producer(&m, producer_id, epoch)?;
        if m.state.is_preparing() {
            return Err(TxnError::Concurrent);
        }
        if partitions.iter().any(|tp| !exists(tp)) {
            return Ok(partitions
                .into_iter()
                .map(|tp| {
                    let r = if exists(&tp) { Err(TxnError::NotAttempted) } else { Err(TxnError::UnknownPartition) };
                    (tp, r)
                })
                .collect());
        }
        let ongoing = m.state == TxnState::Ongoing;
        if ongoing && partitions.iter().all(|tp| m.partitions.contains(tp)) {
            return Ok(partitions.into_iter().map(|tp| (tp, Ok(()))).collect());
        }
        let before = m.clone();
        if !ongoing {
            m.state = TxnState::Ongoing;
            m.partitions.clear();
            m.start_ms = now_ms;
        }
        m.partitions.extend(partitions.iter().cloned());
        m.last_update_ms = now_ms;
        if let Err(e) = self.persist(&m) {
            *m = before;
            return Err(e);
        }
        Ok(partitions.into_iter().map(|tp| (tp, Ok(()))).collect())
    }

    /// AddPartitionsToTxn v4+ with `verify_only`: whether each partition is in the producer's
    /// ongoing transaction, changing nothing.
    pub fn verify_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: Vec<(String, i32)>,
    ) -> Result<AddResult, TxnError> {
        let entry = self.entry(transactional_id).ok_or_else(|| TxnError::NoProducerId(transactional_id.into()))?;
        let m = entry.lock();
        Self::check_producer(&m, producer_id, epoch)?;
        Ok(partitions
            .into_iter()
            .map(|tp| {
                let added = m.state == TxnState::Ongoing && m.partitions.contains(&tp);
                (tp, if added { Ok(()) } else { Err(TxnError::PartitionNotAdded) })
            })
            .collect())
    }

    /// EndTxn: commits or aborts the ongoing transaction. A retry of the EndTxn that already
    /// completed it succeeds again.
    pub fn end_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        markers: &dyn MarkerWriter,
        now_ms: i64,
    ) -> Result<(), TxnError> {
        let entry = self.entry(transactional_id).ok_or_else(|| TxnError::NoProducerId(transactional_id.into()))?;
        let mut m = entry.lock();
        Self::check_producer(&m, producer_id, epoch)?;
        match (m.state, commit) {
            (TxnState::Ongoing, _) => {
                let control = if commit { ControlType::Commit } else { ControlType::Abort };
                self.finish(&mut m, control, markers, now_ms)
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Ok(()),
            (s, _) if s.is_preparing() => Err(TxnError::Concurrent),
            (s, _) => Err(TxnError::InvalidState(format!(
                "cannot {} the transaction: it is in state {}",
                if commit { "commit" } else { "abort" },
                s.name()
            ))),
        }
    }

    /// EndTxn v5+ (Transaction Version 2, KIP-890): every transaction ends with a new epoch.
    /// The markers carry it, fencing any late write of the ended transaction, and the client
    /// goes on with it (the response's producer id and epoch). An abort with nothing added
    /// still moves the epoch; a retry of an EndTxn that completed (one epoch behind) gets the
    /// current id and epoch again. Follows Kafka 4.1's `endTransaction` for TV2.
    #[allow(clippy::too_many_arguments)]
    pub fn end_txn_v2(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        ids: &ProducerIdManager,
        markers: &dyn MarkerWriter,
        now_ms: i64,
    ) -> Result<(i64, i16), TxnError> {
        let entry = self.entry(transactional_id).ok_or_else(|| TxnError::NoProducerId(transactional_id.into()))?;
        let mut m = entry.lock();
        if m.producer_id < 0 {
            return Err(TxnError::NoProducerId(transactional_id.into()));
        }
        if producer_id != m.producer_id {
            return Err(TxnError::ProducerIdMapping { got: producer_id, current: m.producer_id });
        }
        if m.state.is_preparing() {
            return Err(TxnError::Concurrent);
        }
        let current = epoch == m.epoch;
        let retry = i32::from(epoch) + 1 == i32::from(m.epoch);
        let fenced = TxnError::Fenced { got: epoch, current: m.epoch };
        let invalid = |s: TxnState| {
            TxnError::InvalidState(format!(
                "cannot {} the transaction: it is in state {}",
                if commit { "commit" } else { "abort" },
                s.name()
            ))
        };
        let new_id = || ids.next_id().map_err(|e| TxnError::Storage(e.to_string()));
        match (m.state, commit) {
            (TxnState::Ongoing, _) if current => {
                let before = m.clone();
                bump_epoch(&mut m, &new_id)?;
                let control = if commit { ControlType::Commit } else { ControlType::Abort };
                if let Err(e) = self.finish(&mut m, control, markers, now_ms) {
                    if m.state == TxnState::Ongoing {
                        // Nothing was recorded: the client may retry at its epoch.
                        *m = before;
                    }
                    return Err(e);
                }
                Ok((m.producer_id, m.epoch))
            }
            (TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort, false) if current => {
                let before = m.clone();
                bump_epoch(&mut m, &new_id)?;
                m.state = TxnState::CompleteAbort;
                m.partitions.clear();
                m.last_update_ms = now_ms;
                if let Err(e) = self.persist(&m) {
                    *m = before;
                    return Err(e);
                }
                Ok((m.producer_id, m.epoch))
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) if retry => {
                Ok((m.producer_id, m.epoch))
            }
            (s, _) if current || retry => Err(invalid(s)),
            _ => Err(fenced),
        }
    }

    /// A transactional produce (v12+) or TxnOffsetCommit (v5+) of a Transaction Version 2
    /// client adds its partition to the transaction itself, starting the transaction if it
    /// has not begun (there is no AddPartitionsToTxn in TV2).
    pub fn add_implicitly(
        &self,
        guard: &mut ProduceGuard,
        producer_id: i64,
        epoch: i16,
        tp: &(String, i32),
        now_ms: i64,
    ) -> Result<(), TxnError> {
        let Some(m) = guard.meta.as_mut() else {
            return Err(TxnError::PartitionNotAdded);
        };
        Self::check_producer(m, producer_id, epoch)?;
        if m.state.is_preparing() {
            return Err(TxnError::Concurrent);
        }
        if m.state == TxnState::Ongoing && m.partitions.contains(tp) {
            return Ok(());
        }
        let before = m.clone();
        if m.state != TxnState::Ongoing {
            m.state = TxnState::Ongoing;
            m.partitions.clear();
            m.start_ms = now_ms;
        }
        m.partitions.insert(tp.clone());
        m.last_update_ms = now_ms;
        if let Err(e) = self.persist(m) {
            **m = before;
            return Err(e);
        }
        Ok(())
    }

    /// Prepare (durably), write every partition's marker (durably), complete. On a failure
    /// the state stays "prepare" and [`TxnCoordinator::tick`] finishes it later.
    fn finish(
        &self,
        m: &mut TxnMetadata,
        control: ControlType,
        markers: &dyn MarkerWriter,
        now_ms: i64,
    ) -> Result<(), TxnError> {
        let prepare = if control == ControlType::Commit { TxnState::PrepareCommit } else { TxnState::PrepareAbort };
        if m.state != prepare {
            let before = m.clone();
            m.state = prepare;
            m.last_update_ms = now_ms;
            if let Err(e) = self.persist(m) {
                *m = before;
                return Err(e);
            }
        }
        for tp in &m.partitions {
            match markers.write_marker(tp, m.producer_id, m.epoch, control) {
                Ok(_) => {}
                Err(e) => {
                    warn!(transactional_id = %m.transactional_id, partition = %format!("{}-{}", tp.0, tp.1), error = %e,
                        "cannot write a transaction marker; retrying later");
                    return Err(TxnError::Storage(e));
                }
            }
        }
        m.state = if control == ControlType::Commit { TxnState::CompleteCommit } else { TxnState::CompleteAbort };
        // As Kafka: a completed transaction lists no partitions (DescribeTransactions).
        m.partitions.clear();
        m.last_update_ms = now_ms;
        // Not waited for: were this record lost, the next start would write the markers again
        // (harmless), and the next durable write of this log makes it durable anyway.
        self.write_state(m, false)
    }

    /// Locks the transactional id for a produce of its producer (see [`ProduceGuard`]).
    pub fn lock_for_produce(&self, transactional_id: &str) -> ProduceGuard {
        ProduceGuard { meta: self.entry(transactional_id).map(|e| e.lock_arc()) }
    }

    /// The timers: a transaction ongoing for longer than its timeout is aborted with a new
    /// epoch (its producer is fenced); one stuck in "prepare" is finished; an idle
    /// transactional id older than `transactional.id.expiration.ms` is forgotten.
    pub fn tick(&self, markers: &dyn MarkerWriter, ids: &ProducerIdManager, now_ms: i64) {
        for entry in self.entries() {
            let mut m = entry.lock();
            let result = match m.state {
                TxnState::Ongoing if now_ms - m.start_ms > i64::from(m.timeout_ms) => {
                    info!(transactional_id = %m.transactional_id, producer_id = m.producer_id, epoch = m.epoch,
                        timeout_ms = m.timeout_ms, "aborting a transaction that timed out; its producer is fenced");
                    let new_id = || ids.next_id().map_err(|e| TxnError::Storage(e.to_string()));
                    bump_epoch(&mut m, &new_id).and_then(|()| self.finish(&mut m, ControlType::Abort, markers, now_ms))
                }
                TxnState::PrepareCommit => self.finish(&mut m, ControlType::Commit, markers, now_ms),
                TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                    self.finish(&mut m, ControlType::Abort, markers, now_ms)
                }
                TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
                    if now_ms - m.last_update_ms > self.cfg.id_expiration_ms =>
                {
                    let key = record::encode_key(&m.transactional_id);
                    self.append(&[(Some(&key[..]), None)], true).map(|()| {
                        m.state = TxnState::Dead;
                    })
                }
                _ => Ok(()),
            };
            if let Err(e) = result {
                crate::warn_limited!("transaction timer", transactional_id = %m.transactional_id, error = %e, "transaction timer failed");
            }
            if m.state == TxnState::Dead {
                let id = m.transactional_id.clone();
                drop(m);
                self.txns.write().remove(&id);
            }
        }
    }

    /// Every transaction, for ListTransactions.
    pub fn list(&self) -> Vec<TxnListing> {
        let mut out: Vec<TxnListing> = self.entries().iter().map(|e| listing(&e.lock())).collect();
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        out
    }

    /// One transaction, for DescribeTransactions.
    pub fn describe(&self, transactional_id: &str) -> Result<TxnListing, TxnError> {
        let entry = self.entry(transactional_id).ok_or(TxnError::NotFound)?;
        let m = entry.lock();
        Ok(listing(&m))
    }
}

fn listing(m: &TxnMetadata) -> TxnListing {
    TxnListing {
        transactional_id: m.transactional_id.clone(),
        producer_id: m.producer_id,
        epoch: m.epoch,
        state: m.state,
        timeout_ms: m.timeout_ms,
        start_ms: m.start_ms,
        partitions: m.partitions.iter().cloned().collect(),
    }
}

/// The next epoch; an exhausted epoch moves the id to a fresh producer id at epoch 0.
fn bump_epoch(m: &mut TxnMetadata, new_id: &dyn Fn() -> Result<i64, TxnError>) -> Result<(), TxnError> {
    if m.epoch >= i16::MAX - 1 {
        m.producer_id = new_id()?;
        m.epoch = 0;
    } else {
        m.epoch += 1;
    }
    Ok(())
}
