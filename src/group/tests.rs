use std::time::Duration;

use super::*;
use crate::log::LogManager;

fn cfg(checkpoint_bytes: u64) -> CoordinatorConfig {
    CoordinatorConfig {
        rebalance: RebalanceConfig {
            initial_rebalance_delay: Duration::ZERO,
            min_session_timeout: Duration::from_millis(1),
            max_session_timeout: Duration::from_secs(600),
            max_size: 100,
        },
        offsets_retention: Duration::from_secs(3600),
        offset_metadata_max_bytes: 16,
        checkpoint_bytes,
        consumer: consumer::ConsumerConfig {
            session_timeout: Duration::from_secs(45),
            heartbeat_interval: Duration::from_secs(5),
            max_size: 100,
            migration: consumer::MigrationPolicy::Bidirectional,
        },
    }
}

fn commit(c: &GroupCoordinator, group: &str, partition: i32, offset: i64) -> CommitOutcome {
    let o = CommittedOffset { offset, leader_epoch: 0, metadata: format!("m{offset}"), commit_timestamp: 1 };
    c.commit(group, "", None, -1, vec![("t".into(), partition, o)], |_, _| true).unwrap()
}

#[test]
fn offsets_replay_and_the_log_is_compacted_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let c = GroupCoordinator::open(
        &LogManager::new(dir.path().to_owned(), crate::log::files::FileCache::unbounded()),
        cfg(1 << 40),
        &NoTopics,
        0,
    )
    .unwrap();
    for i in 0..500 {
        commit(&c, "g", i % 3, i64::from(i));
    }
    commit(&c, "other", 0, 7);
    c.delete_group("other").unwrap();
    let big = c.log.size_bytes();
    drop(c);

    // Reopen with a tiny threshold: the log shrinks to the live state, which is unchanged.
    let c = GroupCoordinator::open(
        &LogManager::new(dir.path().to_owned(), crate::log::files::FileCache::unbounded()),
        cfg(1024),
        &NoTopics,
        0,
    )
    .unwrap();
    assert!(c.log.size_bytes() < big / 10, "{} -> {}", big, c.log.size_bytes());
    assert!(c.log.offsets().log_start_offset > 0);
    let fetched = c.fetch_offsets("g", None);
    let offsets: Vec<(i32, i64, String)> = fetched
        .iter()
        .map(|(_, p, o)| (*p, o.as_ref().unwrap().offset, o.as_ref().unwrap().metadata.clone()))
        .collect();
    assert_eq!(offsets, vec![(0, 498, "m498".into()), (1, 499, "m499".into()), (2, 497, "m497".into())]);
    assert!(c.fetch_offsets("other", None).is_empty(), "deleted group stays deleted");
    drop(c);
    // And once more from the compacted log.
    let c = GroupCoordinator::open(
        &LogManager::new(dir.path().to_owned(), crate::log::files::FileCache::unbounded()),
        cfg(1 << 40),
        &NoTopics,
        0,
    )
    .unwrap();
    assert_eq!(c.fetch_offsets("g", None).len(), 3);
}

#[test]
fn commit_checks_metadata_size_and_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let c = GroupCoordinator::open(
        &LogManager::new(dir.path().to_owned(), crate::log::files::FileCache::unbounded()),
        cfg(1 << 40),
        &NoTopics,
        0,
    )
    .unwrap();
    let long = CommittedOffset { offset: 1, leader_epoch: 0, metadata: "x".repeat(17), commit_timestamp: 1 };
    let out = c
        .commit(
            "g",
            "",
            None,
            -1,
            vec![
                ("t".into(), 0, long),
                (
                    "gone".into(),
                    0,
                    CommittedOffset { offset: 1, leader_epoch: 0, metadata: String::new(), commit_timestamp: 1 },
                ),
            ],
            |t, _| t == "t",
        )
        .unwrap();
    assert_eq!(out.results, vec![Err(GroupError::OffsetMetadataTooLarge), Err(GroupError::UnknownTopicOrPartition)]);
    assert!(out.durable_at.is_none());
    assert_eq!(c.commit("", "", None, -1, vec![], |_, _| true).err(), Some(GroupError::InvalidGroupId));
}

#[test]
fn offsets_of_an_empty_group_expire_after_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    let c = GroupCoordinator::open(
        &LogManager::new(dir.path().to_owned(), crate::log::files::FileCache::unbounded()),
        cfg(1 << 40),
        &NoTopics,
        0,
    )
    .unwrap();
    let base = crate::clock::now_ms();
    commit(&c, "idle", 0, 5);
    let now = tokio::time::Instant::now();
    // Retention is an hour from when the group became empty: still there after 59 minutes,
    // gone (and the group with it) after 61.
    c.tick(now, base + 59 * 60 * 1000);
    assert_eq!(c.fetch_offsets("idle", None).len(), 1);
    c.tick(now, base + 61 * 60 * 1000);
    assert!(c.fetch_offsets("idle", None).is_empty());
    assert!(c.list().is_empty());
    drop(c);
    // The expiry was written as tombstones: it holds after a restart.
    let c = GroupCoordinator::open(
        &LogManager::new(dir.path().to_owned(), crate::log::files::FileCache::unbounded()),
        cfg(1 << 40),
        &NoTopics,
        0,
    )
    .unwrap();
    assert!(c.fetch_offsets("idle", None).is_empty());
}

/// A record of a version gregor does not know (a newer release's, or Kafka's), for a key that
/// has a committed offset, must not delete that offset at the next start, and must itself
/// survive the start-time compaction. Before, it was replayed as a tombstone.
#[test]
fn records_of_unknown_versions_are_kept_and_never_delete_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let c = GroupCoordinator::open(
        &LogManager::new(dir.path().to_owned(), crate::log::files::FileCache::unbounded()),
        cfg(1 << 40),
        &NoTopics,
        0,
    )
    .unwrap();
    commit(&c, "g", 0, 42);
    commit(&c, "g", 1, 7);
    // Same key as (g, t, 0), a value in a version from the future; and a key kind gregor does
    // not know at all (Kafka's ConsumerGroupPartitionMetadata, key version 4, which 4.1 no longer writes).
    let key = offsets::encode_key("g", "t", 0);
    let future_value = [&[0u8, 9][..], &[1, 2, 3, 4, 5, 6, 7, 8, 9]].concat();
    let other_key = [&[0u8, 4][..], b"\x00\x01g"].concat();
    let raw = batch::build(&[(Some(&key), Some(&future_value)), (Some(&other_key), Some(b"\x00\x00opaque"))], 0);
    c.log.append(&raw, 0).unwrap();
    c.log.flush_blocking().unwrap();
    drop(c);

    let offsets_of = |c: &GroupCoordinator| -> Vec<(i32, i64)> {
        c.fetch_offsets("g", None).iter().map(|(_, p, o)| (*p, o.as_ref().unwrap().offset)).collect()
    };
    let c = GroupCoordinator::open(
        &LogManager::new(dir.path().to_owned(), crate::log::files::FileCache::unbounded()),
        cfg(1 << 40),
        &NoTopics,
        0,
    )
    .unwrap();
    assert_eq!(offsets_of(&c), vec![(0, 42), (1, 7)], "the unknown record deleted a committed offset");
    drop(c);
    // Compacted at start (tiny threshold), then read again: same offsets, records still there.
    let c = GroupCoordinator::open(
        &LogManager::new(dir.path().to_owned(), crate::log::files::FileCache::unbounded()),
        cfg(1),
        &NoTopics,
        0,
    )
    .unwrap();
    assert!(c.log.offsets().log_start_offset > 0, "the log was compacted");
    assert_eq!(offsets_of(&c), vec![(0, 42), (1, 7)]);
    let kept = c.replay(0, &NoTopics).unwrap();
    assert_eq!(kept, vec![(key, future_value), (other_key, b"\x00\x00opaque".to_vec())]);
}

/// An empty group without offsets is forgotten only after it has lingered as Kafka's cleanup
/// period: DeleteGroups right after the last member left (or its offsets were deleted) finds
/// it instead of racing the 100 ms timer (GROUP_ID_NOT_FOUND).
#[test]
fn an_empty_group_without_offsets_lingers_before_it_is_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let c = GroupCoordinator::open(
        &LogManager::new(dir.path().to_owned(), crate::log::files::FileCache::unbounded()),
        cfg(1 << 40),
        &NoTopics,
        0,
    )
    .unwrap();
    commit(&c, "g", 0, 5);
    c.delete_offsets("g", &[("t".into(), 0)]).unwrap();
    let now = Instant::now();
    let emptied = c.groups.read().get("g").unwrap().lock().empty_since_ms;
    c.tick(now, emptied + 1_000);
    assert!(c.list().iter().any(|(id, _, _)| id == "g"), "forgotten a second after it emptied");
    c.tick(now, emptied + expiry::EMPTY_GROUP_LINGER_MS);
    assert!(!c.list().iter().any(|(id, _, _)| id == "g"), "kept past the cleanup period");
}

/// Committed offsets of `group`: (partition, offset).
fn committed(c: &GroupCoordinator, group: &str) -> Vec<(i32, i64)> {
    c.fetch_offsets(group, None).iter().map(|(_, p, o)| (*p, o.as_ref().unwrap().offset)).collect()
}

fn txn_commit(c: &GroupCoordinator, producer_id: i64, partition: i32, offset: i64) {
    let o = CommittedOffset { offset, leader_epoch: 0, metadata: String::new(), commit_timestamp: 1 };
    c.txn_commit("g", producer_id, 0, None, vec![("t".into(), partition, o)], |_, _| true).unwrap();
}

#[test]
fn transactional_and_plain_commits_replay_alike_before_and_after_background_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        let logs = LogManager::new(dir.path().to_owned(), crate::log::files::FileCache::unbounded());
        GroupCoordinator::open(&logs, cfg(1 << 40), &NoTopics, 0).unwrap()
    };
    let live = {
        let c = open();
        for i in 0..50 {
            commit(&c, "g", 3, i);
        }
        // Partition 0: a transaction's offset, then a plain commit, then the commit marker.
        // The plain commit was written later, so it stays (Kafka's rule).
        commit(&c, "g", 0, 5);
        txn_commit(&c, 1, 0, 10);
        commit(&c, "g", 0, 12);
        c.end_txn(1, 0, ControlType::Commit).unwrap();
        // Partition 1: a plain commit, then a transaction's: the transaction's wins.
        commit(&c, "g", 1, 15);
        txn_commit(&c, 2, 1, 20);
        c.end_txn(2, 0, ControlType::Commit).unwrap();
        // Partition 2: OffsetDelete while a transaction holds an offset: both go.
        commit(&c, "g", 2, 25);
        txn_commit(&c, 3, 2, 30);
        c.delete_offsets("g", &[("t".into(), 2)]).unwrap();
        c.end_txn(3, 0, ControlType::Commit).unwrap();
        // An aborted one changes nothing.
        txn_commit(&c, 4, 3, 99);
        c.end_txn(4, 0, ControlType::Abort).unwrap();
        let live = committed(&c, "g");
        assert_eq!(live, [(0, 12), (1, 20), (3, 49)]);
        live
    };
    assert_eq!(committed(&open(), "g"), live, "replay of the whole log");
    {
        let c = open();
        c.log.roll(1).unwrap();
        let stats = c.log.compact(1, &crate::log::CleanerLimits::default()).unwrap();
        assert!(stats.records_removed >= 50, "{stats:?}");
    }
    assert_eq!(committed(&open(), "g"), live, "replay of the compacted log");
}

/// A coordinator started without user topics (classic groups and offsets need none).
struct NoTopics;

impl consumer::TopicNames for NoTopics {
    fn topic_name(&self, _: &uuid::Uuid) -> Option<String> {
        None
    }
}

mod consumer_restart;
mod mixed;
