//! The coordinator's state machine against a recording marker writer: Kafka's answers for
//! each state, fencing, timeouts, and a stop between "prepare" and "complete".

use std::cell::RefCell;
use std::path::Path;

use super::state::TxnState;
use super::*;
use crate::log::files::FileCache;
use crate::log::producer_state::ControlType;
use crate::log::LogManager;

const NOW: i64 = 1_700_000_000_000;

/// (partition, producer id, epoch, marker type) of a marker written.
type Written = ((String, i32), i64, i16, ControlType);

/// Records the markers it is asked to write; fails while `fail` is set.
#[derive(Default)]
struct Recorder {
    written: RefCell<Vec<Written>>,
    fail: RefCell<bool>,
}

impl MarkerWriter for Recorder {
    fn write_marker(&self, tp: &(String, i32), pid: i64, epoch: i16, control: ControlType) -> Result<bool, String> {
        if *self.fail.borrow() {
            return Err("disk full".into());
        }
        self.written.borrow_mut().push((tp.clone(), pid, epoch, control));
        Ok(true)
    }
}

fn open(dir: &Path) -> (TxnCoordinator, ProducerIdManager) {
    let logs = LogManager::new(dir.to_owned(), FileCache::unbounded());
    (TxnCoordinator::open(&logs, TxnConfig::default(), NOW).unwrap(), ProducerIdManager::open(dir).unwrap())
}

fn tps(names: &[(&str, i32)]) -> Vec<(String, i32)> {
    names.iter().map(|(t, p)| (t.to_string(), *p)).collect()
}

#[test]
fn the_state_machine_answers_as_kafkas_coordinator_does() {
    let dir = tempfile::tempdir().unwrap();
    let (c, ids) = open(dir.path());
    let m = Recorder::default();
    assert!(matches!(c.init_producer("t", 0, None, &ids, &m, NOW), Err(TxnError::InvalidTimeout { .. })));
    let (pid, epoch) = c.init_producer("t", 60_000, None, &ids, &m, NOW).unwrap();
    assert_eq!(epoch, 0);
    assert!(matches!(c.end_txn("t", pid, 0, true, &m, NOW), Err(TxnError::InvalidState(_))), "nothing to commit");
    assert!(matches!(c.end_txn("nope", pid, 0, true, &m, NOW), Err(TxnError::NoProducerId(_))));
    let add = |epoch| c.add_partitions("t", pid, epoch, tps(&[("a", 0), ("b", 1)]), |_| true, NOW);
    assert!(matches!(add(1), Err(TxnError::Fenced { got: 1, current: 0 })));
    assert!(add(0).unwrap().iter().all(|(_, r)| r.is_ok()));
    assert!(matches!(
        c.add_partitions("t", pid + 1, 0, tps(&[("a", 0)]), |_| true, NOW),
        Err(TxnError::ProducerIdMapping { .. })
    ));
    let unknown = c.add_partitions("t", pid, 0, tps(&[("a", 0), ("gone", 0)]), |(t, _)| t != "gone", NOW).unwrap();
    assert_eq!(unknown[0].1, Err(TxnError::NotAttempted));
    assert_eq!(unknown[1].1, Err(TxnError::UnknownPartition));
    assert_eq!(c.describe("t").unwrap().state, TxnState::Ongoing);

    c.end_txn("t", pid, 0, true, &m, NOW).unwrap();
    assert_eq!(m.written.borrow().len(), 2, "a marker per partition");
    assert!(m.written.borrow().iter().all(|(_, p, e, ctl)| (*p, *e, *ctl) == (pid, 0, ControlType::Commit)));
    c.end_txn("t", pid, 0, true, &m, NOW).expect("a retried commit succeeds again");
    assert!(matches!(c.end_txn("t", pid, 0, false, &m, NOW), Err(TxnError::InvalidState(_))));
    let done = c.describe("t").unwrap();
    assert_eq!((done.state, done.partitions.len()), (TxnState::CompleteCommit, 0), "no partitions once complete");

    // A second producer of the id while a transaction is open: the open one is aborted with
    // a bumped epoch (fencing the old producer), and the new producer gets the next one.
    add(0).unwrap();
    m.written.borrow_mut().clear();
    let (pid2, epoch2) = c.init_producer("t", 60_000, None, &ids, &m, NOW).unwrap();
    assert_eq!((pid2, epoch2), (pid, 2));
    assert!(m.written.borrow().iter().all(|(_, _, e, ctl)| (*e, *ctl) == (1, ControlType::Abort)));
    assert!(matches!(c.end_txn("t", pid, 0, true, &m, NOW), Err(TxnError::Fenced { .. })));
    // KIP-360: a producer naming an older epoch of the id is fenced too; one naming the
    // current epoch bumps it, and a retry of that call gets the same answer.
    assert!(matches!(c.init_producer("t", 60_000, Some((pid, 0)), &ids, &m, NOW), Err(TxnError::Fenced { .. })));
    assert_eq!(c.init_producer("t", 60_000, Some((pid, 2)), &ids, &m, NOW), Ok((pid, 3)));
    assert_eq!(c.init_producer("t", 60_000, Some((pid, 2)), &ids, &m, NOW), Ok((pid, 3)), "retried");
    assert!(matches!(c.init_producer("t", 60_000, Some((pid, 1)), &ids, &m, NOW), Err(TxnError::Fenced { .. })));
}

#[test]
fn a_stop_between_prepare_and_complete_is_finished_by_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let pid = {
        let (c, ids) = open(dir.path());
        let m = Recorder::default();
        let (pid, _) = c.init_producer("t", 60_000, None, &ids, &m, NOW).unwrap();
        c.add_partitions("t", pid, 0, tps(&[("a", 0), ("a", 1)]), |_| true, NOW).unwrap();
        *m.fail.borrow_mut() = true;
        assert!(matches!(c.end_txn("t", pid, 0, false, &m, NOW), Err(TxnError::Storage(_))));
        assert_eq!(c.describe("t").unwrap().state, TxnState::PrepareAbort);
        pid
    };
    let (c, _) = open(dir.path());
    let m = Recorder::default();
    assert_eq!(c.describe("t").unwrap().state, TxnState::PrepareAbort, "the decision survived");
    c.recover(&m, NOW);
    let written = m.written.borrow().clone();
    assert_eq!(written.len(), 2);
    assert!(written.iter().all(|(_, p, _, ctl)| (*p, *ctl) == (pid, ControlType::Abort)));
    assert_eq!(c.describe("t").unwrap().state, TxnState::CompleteAbort);
    drop(c);
    let (c, _) = open(dir.path());
    assert_eq!(c.describe("t").unwrap().state, TxnState::CompleteAbort);
}

/// Shared mode: the broker that takes `__transaction_state` over rebuilds its log from what the
/// previous coordinator committed, then reloads: it knows that coordinator's transactional ids
/// (and nothing it knew before), and finishes the transaction it left prepared.
#[test]
fn a_reload_after_the_log_was_rebuilt_knows_what_the_previous_coordinator_wrote() {
    let (before, after) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let previous_logs = LogManager::new(before.path().to_owned(), FileCache::unbounded());
    let previous = TxnCoordinator::open(&previous_logs, TxnConfig::default(), NOW).unwrap();
    let ids = ProducerIdManager::open(before.path()).unwrap();
    let m = Recorder::default();
    let (pid, _) = previous.init_producer("moved", 60_000, None, &ids, &m, NOW).unwrap();
    previous.add_partitions("moved", pid, 0, tps(&[("a", 0)]), |_| true, NOW).unwrap();
    *m.fail.borrow_mut() = true;
    assert!(previous.end_txn("moved", pid, 0, true, &m, NOW).is_err(), "left in PrepareCommit");
    *m.fail.borrow_mut() = false;
    previous.init_producer("idle", 60_000, None, &ids, &m, NOW).unwrap();

    let logs = LogManager::new(after.path().to_owned(), FileCache::unbounded());
    let next = TxnCoordinator::open(&logs, TxnConfig::default(), NOW).unwrap();
    let next_ids = ProducerIdManager::open(after.path()).unwrap();
    next.init_producer("stale", 60_000, None, &next_ids, &m, NOW).unwrap();
    // The rebuild: the log is cut to what the store has, then filled with it.
    let tp = crate::log::TopicPartition::new(TXN_TOPIC, 0);
    let log = logs.get(&tp).unwrap();
    log.truncate_to(0, NOW).unwrap();
    let source = previous_logs.get(&tp).unwrap();
    let end = source.offsets().log_end_offset;
    let mut offset = 0;
    while offset < end {
        let read = source.read(offset, 1 << 20, true).unwrap().records;
        log.append_committed(&read, NOW).unwrap();
        offset = log.offsets().log_end_offset;
    }

    let markers = Recorder::default();
    next.reload(&markers, NOW).unwrap();
    assert_eq!(next.describe("stale"), Err(TxnError::NotFound), "what this broker knew before is gone");
    assert_eq!(next.describe("idle").unwrap().state, TxnState::Empty);
    assert_eq!(next.describe("moved").unwrap().state, TxnState::CompleteCommit, "the prepared commit finished");
    assert_eq!(markers.written.borrow().as_slice(), &[(("a".to_string(), 0), pid, 0, ControlType::Commit)]);
}

#[test]
fn a_transaction_past_its_timeout_is_aborted_and_its_producer_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let (c, ids) = open(dir.path());
    let m = Recorder::default();
    let (pid, _) = c.init_producer("t", 1_000, None, &ids, &m, NOW).unwrap();
    c.add_partitions("t", pid, 0, tps(&[("a", 0)]), |_| true, NOW).unwrap();
    c.tick(&m, &ids, NOW + 1_000);
    assert!(m.written.borrow().is_empty(), "not past the timeout yet");
    c.tick(&m, &ids, NOW + 1_001);
    assert_eq!(m.written.borrow().as_slice(), &[(("a".to_string(), 0), pid, 1, ControlType::Abort)]);
    let t = c.describe("t").unwrap();
    assert_eq!((t.state, t.epoch), (TxnState::CompleteAbort, 1));
    assert!(matches!(c.end_txn("t", pid, 0, true, &m, NOW), Err(TxnError::Fenced { .. })));
    // Idle ids are forgotten after transactional.id.expiration.ms.
    c.tick(&m, &ids, NOW + TxnConfig::default().id_expiration_ms + 2_000);
    assert_eq!(c.describe("t"), Err(TxnError::NotFound));
    let (c, _) = open(dir.path());
    assert_eq!(c.describe("t"), Err(TxnError::NotFound), "the tombstone survives a restart");
}

#[test]
fn the_background_cleaner_compacts_the_state_log_and_a_restart_replays_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let ids_and_states = {
        let logs = LogManager::new(dir.path().to_owned(), FileCache::unbounded());
        let c = TxnCoordinator::open(&logs, TxnConfig::default(), NOW).unwrap();
        let ids = ProducerIdManager::open(dir.path()).unwrap();
        let m = Recorder::default();
        for round in 0..5 {
            for t in ["t0", "t1", "t2"] {
                let (pid, epoch) = c.init_producer(t, 60_000, None, &ids, &m, NOW).unwrap();
                c.add_partitions(t, pid, epoch, tps(&[("a", round)]), |_| true, NOW).unwrap();
                c.end_txn(t, pid, epoch, round % 2 == 0, &m, NOW).unwrap();
            }
        }
        let states: Vec<_> = ["t0", "t1", "t2"].iter().map(|t| c.describe(t).unwrap()).collect();
        let log = logs.get(&crate::log::TopicPartition::new(TXN_TOPIC, 0)).expect("opened by the coordinator");
        log.roll(NOW).unwrap();
        let stats = log.compact(NOW, &crate::log::CleanerLimits::default()).unwrap();
        assert!(stats.records_removed > 0, "{stats:?}");
        states
    };
    let (c, _) = open(dir.path());
    let replayed: Vec<_> = ["t0", "t1", "t2"].iter().map(|t| c.describe(t).unwrap()).collect();
    assert_eq!(replayed, ids_and_states);
}
