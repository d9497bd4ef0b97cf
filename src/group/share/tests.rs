use super::*;

fn join(c: &ShareCoordinator, member: &str, topics: &[&str], now: Instant) -> ShareHeartbeatResult {
    let hb = ShareHeartbeat {
        member_id: member.into(),
        member_epoch: 0,
        subscribed_topic_names: Some(topics.iter().map(|t| t.to_string()).collect()),
        ..Default::default()
    };
    c.heartbeat("g", hb, &|t| (t == "t").then_some(1).or((t == "t3").then_some(3)), now).unwrap()
}

fn beat(c: &ShareCoordinator, member: &str, epoch: i32, now: Instant) -> Result<ShareHeartbeatResult, HeartbeatError> {
    let hb = ShareHeartbeat { member_id: member.into(), member_epoch: epoch, ..Default::default() };
    c.heartbeat("g", hb, &|t| (t == "t").then_some(1).or((t == "t3").then_some(3)), now)
}

fn parts(r: &ShareHeartbeatResult, topic: &str) -> Vec<i32> {
    r.assignment.as_ref().and_then(|a| a.get(topic)).map(|s| s.iter().copied().collect()).unwrap_or_default()
}

#[test]
fn one_partition_is_shared_by_every_member() {
    let c = ShareCoordinator::new(ShareConfig::default());
    let now = Instant::now();
    let a = join(&c, "a", &["t"], now);
    let b = join(&c, "b", &["t"], now);
    let x = join(&c, "x", &["t"], now);
    assert_eq!((parts(&a, "t"), parts(&b, "t"), parts(&x, "t")), (vec![0], vec![0], vec![0]));
    assert_eq!(x.member_epoch, 3);
    // a learns nothing new: its partition did not change, but its epoch moves on.
    let a2 = beat(&c, "a", a.member_epoch, now).unwrap();
    assert_eq!(a2.member_epoch, 3);
    assert_eq!(parts(&a2, "t"), vec![0]);
}

#[test]
fn more_partitions_than_members_are_dealt_out() {
    let c = ShareCoordinator::new(ShareConfig::default());
    let now = Instant::now();
    let a = join(&c, "a", &["t3"], now);
    assert_eq!(parts(&a, "t3"), vec![0, 1, 2]);
    let b = join(&c, "b", &["t3"], now);
    let a = beat(&c, "a", a.member_epoch, now).unwrap();
    let mut all = parts(&a, "t3");
    all.extend(parts(&b, "t3"));
    all.sort();
    assert_eq!(all, vec![0, 1, 2], "every partition once");
    assert!(!parts(&b, "t3").is_empty());
}

#[test]
fn a_stale_epoch_is_fenced_and_an_unknown_member_must_join() {
    let c = ShareCoordinator::new(ShareConfig::default());
    let now = Instant::now();
    let a = join(&c, "a", &["t"], now);
    assert!(matches!(beat(&c, "a", a.member_epoch + 1, now), Err(HeartbeatError::FencedMemberEpoch(_))));
    assert!(matches!(beat(&c, "zz", 1, now), Err(HeartbeatError::UnknownMemberId(_))));
    let empty = ShareHeartbeat { member_id: String::new(), ..Default::default() };
    assert!(matches!(c.heartbeat("g", empty, &|_| None, now), Err(HeartbeatError::InvalidRequest(_))));
    let no_topics = ShareHeartbeat { member_id: "n".into(), ..Default::default() };
    assert!(matches!(c.heartbeat("g", no_topics, &|_| None, now), Err(HeartbeatError::InvalidRequest(_))));
}

#[test]
fn a_member_past_its_session_timeout_is_removed_and_its_records_released() {
    let cfg = ShareConfig::default();
    let c = ShareCoordinator::new(cfg.clone());
    c.set_settings("g", GroupSettings { auto_offset_reset: Some(OffsetReset::Earliest), ..Default::default() })
        .unwrap();
    let now = Instant::now();
    let tp = (Uuid::from_u128(7), 0);
    join(&c, "a", &["t"], now);
    let b = join(&c, "b", &["t"], now);
    c.plan("g", tp, 0, 10, now).unwrap();
    let got = c.acquire("g", "a", tp, &[BatchSpan { base_offset: 0, last_offset: 9, skip: false }], 100, now);
    assert_eq!(got.len(), 1);
    // b keeps heartbeating; a does not.
    let later = now + cfg.session_timeout - Duration::from_millis(1);
    let b = beat(&c, "b", b.member_epoch, later).unwrap();
    let later = now + cfg.session_timeout;
    beat(&c, "b", b.member_epoch, later).unwrap();
    assert!(!c.describe("g").unwrap().members.contains_key("a"));
    assert_eq!(c.plan("g", tp, 0, 10, later).unwrap(), ReadPlan { read_from: 0, available: true });
}

#[test]
fn share_sessions_open_move_on_and_close() {
    let c = ShareCoordinator::new(ShareConfig::default());
    let t = Uuid::from_u128(1);
    assert!(matches!(c.session("g", "a", 1, true, &[], &[]), Err(SessionError::NotFound(_))));
    assert!(matches!(c.session("g", "a", 0, false, &[], &[]), Err(SessionError::InvalidEpoch(_))));
    assert_eq!(c.session("g", "a", 0, true, &[(t, 0)], &[]).unwrap(), vec![(t, 0)]);
    assert!(matches!(c.session("g", "a", 2, true, &[], &[]), Err(SessionError::InvalidEpoch(_))));
    assert_eq!(c.session("g", "a", 1, true, &[(t, 1)], &[]).unwrap(), vec![(t, 0), (t, 1)]);
    assert_eq!(c.session("g", "a", 2, false, &[], &[(t, 0)]).unwrap(), vec![(t, 1)]);
    assert_eq!(c.session("g", "a", -1, true, &[], &[]).unwrap(), vec![(t, 1)]);
    assert!(matches!(c.session("g", "a", 3, true, &[], &[]), Err(SessionError::NotFound(_))));
}

#[test]
fn the_session_limit_holds() {
    let c = ShareCoordinator::new(ShareConfig { max_sessions: 1, ..ShareConfig::default() });
    c.session("g", "a", 0, true, &[], &[]).unwrap();
    assert!(matches!(c.session("g", "b", 0, true, &[], &[]), Err(SessionError::LimitReached(_))));
    // Reopening one's own session is not a new one.
    c.session("g", "a", 0, true, &[], &[]).unwrap();
}

#[test]
fn a_group_starts_where_its_offset_reset_says() {
    let c = ShareCoordinator::new(ShareConfig::default());
    let now = Instant::now();
    join(&c, "a", &["t"], now);
    let tp = (Uuid::from_u128(3), 0);
    assert_eq!(c.plan("g", tp, 5, 20, now).unwrap(), ReadPlan { read_from: 20, available: false });
    c.set_settings("h", GroupSettings { auto_offset_reset: Some(OffsetReset::Earliest), ..Default::default() })
        .unwrap();
    let hb =
        ShareHeartbeat { member_id: "a".into(), subscribed_topic_names: Some(vec!["t".into()]), ..Default::default() };
    c.heartbeat("h", hb, &|_| Some(1), now).unwrap();
    assert_eq!(c.plan("h", tp, 5, 20, now).unwrap(), ReadPlan { read_from: 5, available: true });
    assert!(c.plan("nope", tp, 5, 20, now).is_none());
}

#[test]
fn a_member_that_leaves_keeps_its_session_for_its_last_acknowledgements() {
    let c = ShareCoordinator::new(ShareConfig::default());
    c.set_settings("g", GroupSettings { auto_offset_reset: Some(OffsetReset::Earliest), ..Default::default() })
        .unwrap();
    let now = Instant::now();
    let tp = (Uuid::from_u128(9), 0);
    let a = join(&c, "a", &["t"], now);
    c.session("g", "a", 0, true, &[tp], &[]).unwrap();
    c.plan("g", tp, 0, 4, now).unwrap();
    let span = [BatchSpan { base_offset: 0, last_offset: 3, skip: false }];
    assert_eq!(c.acquire("g", "a", tp, &span, 100, now).len(), 1);
    // The leaving heartbeat comes first, the final acknowledgement right after (librdkafka).
    let hb = ShareHeartbeat { member_id: "a".into(), member_epoch: LEAVE_EPOCH, ..Default::default() };
    c.heartbeat("g", hb, &|_| Some(1), now).unwrap();
    assert!(!c.describe("g").unwrap().members.contains_key("a"));
    c.session("g", "a", LEAVE_EPOCH, false, &[], &[]).unwrap();
    c.acknowledge("g", "a", tp, &[(0, 3, vec![partition::ACK_ACCEPT])]).unwrap();
    assert_eq!(c.plan("g", tp, 0, 4, now).unwrap(), ReadPlan { read_from: 4, available: false });

    // Without a final acknowledgement, the records go back once the grace has passed.
    let b = join(&c, "b", &["t"], now);
    let _ = (a, b);
    c.session("g", "b", 0, true, &[tp], &[]).unwrap();
    let span = [BatchSpan { base_offset: 0, last_offset: 7, skip: false }];
    c.plan("g", tp, 0, 8, now).unwrap();
    assert_eq!(c.acquire("g", "b", tp, &span, 100, now).len(), 1);
    let hb = ShareHeartbeat { member_id: "b".into(), member_epoch: LEAVE_EPOCH, ..Default::default() };
    c.heartbeat("g", hb, &|_| Some(1), now).unwrap();
    assert!(!c.plan("g", tp, 0, 8, now + DEPARTURE_GRACE / 2).unwrap().available, "held during the grace");
    assert_eq!(
        c.plan("g", tp, 0, 8, now + DEPARTURE_GRACE).unwrap(),
        ReadPlan { read_from: 4, available: true },
        "released after it"
    );
}

fn open_at(dir: &std::path::Path, cfg: ShareConfig) -> ShareCoordinator {
    let logs = crate::log::LogManager::new(dir.to_owned(), crate::log::files::FileCache::unbounded());
    ShareCoordinator::open(dir.to_owned(), &logs, cfg, 0).unwrap()
}

#[test]
fn share_partition_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (tp, other) = ((Uuid::from_u128(5), 0), (Uuid::from_u128(5), 1));
    let now = Instant::now();
    {
        let c = open_at(dir.path(), ShareConfig::default());
        join(&c, "a", &["t"], now);
        c.session("g", "a", 0, true, &[tp, other], &[]).unwrap();
        // Starts at `latest` (10): where it started is kept before anything is delivered.
        assert_eq!(c.plan("g", other, 0, 10, now).unwrap().read_from, 10);
        c.plan("g", tp, 0, 10, now).unwrap();
        c.persist().unwrap();
        // 10..=29 delivered: 10..=14 accepted, 15..=16 rejected, 17..=19 released, the rest held.
        let span = [BatchSpan { base_offset: 10, last_offset: 29, skip: false }];
        assert_eq!(c.acquire("g", "a", tp, &span, 100, now).len(), 1);
        c.acknowledge("g", "a", tp, &[(10, 14, vec![partition::ACK_ACCEPT]), (15, 16, vec![partition::ACK_REJECT])])
            .unwrap();
        c.acknowledge("g", "a", tp, &[(17, 19, vec![partition::ACK_RELEASE])]).unwrap();
        c.persist().unwrap();
    }
    let c = open_at(dir.path(), ShareConfig::default());
    assert_eq!(c.list(), vec![("g".to_string(), "Empty")], "the group is back, without members");
    assert_eq!(c.describe("g").unwrap().start_offsets(), vec![(tp, 17), (other, 10)]);
    join(&c, "b", &["t"], now);
    c.session("g", "b", 0, true, &[tp], &[]).unwrap();
    // The high watermark moved on: `latest` must not be taken again for a kept share-partition.
    assert_eq!(c.plan("g", tp, 0, 50, now).unwrap(), ReadPlan { read_from: 17, available: true });
    let span = [BatchSpan { base_offset: 17, last_offset: 49, skip: false }];
    let got = c.acquire("g", "b", tp, &span, 100, now);
    // Released ones go out a second time, the ones held at the restart a second time too, and
    // what was never delivered for the first time; nothing accepted or rejected comes back.
    assert_eq!(
        got,
        vec![
            Acquired { first_offset: 17, last_offset: 29, delivery_count: 2 },
            Acquired { first_offset: 30, last_offset: 49, delivery_count: 1 },
        ]
    );
}

#[test]
fn deleted_share_state_stays_deleted_and_a_large_log_is_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let tp = (Uuid::from_u128(6), 0);
    // checkpoint_bytes 0: every start rewrites the log to its live records.
    let cfg = ShareConfig { checkpoint_bytes: 0, ..ShareConfig::default() };
    {
        let c = open_at(dir.path(), cfg.clone());
        c.reset("kept", &[(tp, Some(7))]).unwrap();
        c.reset("gone", &[(tp, Some(3))]).unwrap();
        c.reset("offsets-gone", &[(tp, Some(4))]).unwrap();
        c.persist().unwrap();
        assert!(c.delete("gone").unwrap());
        c.reset("offsets-gone", &[(tp, None)]).unwrap();
        c.persist().unwrap();
    }
    for _ in 0..2 {
        let c = open_at(dir.path(), cfg.clone());
        assert_eq!(c.list(), vec![("kept".to_string(), "Empty")]);
        assert_eq!(c.describe("kept").unwrap().start_offsets(), vec![(tp, 7)]);
    }
}

/// Shared mode's store of share-partition state, in memory: what was written, and the
/// partitions whose rows it refuses (led elsewhere now).
#[derive(Debug, Default)]
struct FakeStates {
    written: Mutex<Vec<StateWrite>>,
    refuse: Mutex<Vec<(Uuid, i32)>>,
}

impl ClusterStates for FakeStates {
    fn write(&self, rows: Vec<StateWrite>) -> io::Result<Vec<(Uuid, i32)>> {
        self.written.lock().extend(rows);
        Ok(self.refuse.lock().clone())
    }
    fn forget_group(&self, _: &str) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn in_shared_mode_a_partition_is_served_once_loaded_in_its_epoch_and_let_go_of_when_refused() {
    let states = Arc::new(FakeStates::default());
    let c =
        ShareCoordinator { keeping: Keeping::Cluster(states.clone()), ..ShareCoordinator::new(ShareConfig::default()) };
    let (tp, now) = ((Uuid::new_v4(), 0), Instant::now());
    let span = [BatchSpan { base_offset: 5, last_offset: 9, skip: false }];
    // Nothing is handed out before the store's state is loaded, though no member joined here
    // (the group's coordinator is another broker).
    assert!(c.needs_load(tp, 3));
    assert_eq!(c.plan("g", tp, 0, 10, now), None);
    let kept =
        Snapshot { snapshot_epoch: 4, start_offset: 5, create_timestamp: 1, write_timestamp: 1, batches: vec![] };
    let rows = vec![("g".to_string(), store::encode_value(&kept))];
    c.load(tp, 3, rows.clone());
    assert!(!c.needs_load(tp, 3));
    assert_eq!(c.plan("g", tp, 0, 10, now), Some(ReadPlan { read_from: 5, available: true }));
    assert_eq!(c.acquire("g", "m", tp, &span, 100, now).len(), 1);
    // A racing load in the same epoch undoes nothing: the records stay acquired.
    c.load(tp, 3, rows);
    assert!(c.acquire("g", "m2", tp, &span, 100, now).is_empty());
    c.persist().unwrap();
    let written = std::mem::take(&mut *states.written.lock());
    assert_eq!(written.len(), 1);
    assert_eq!((written[0].key.clone(), written[0].leader_epoch), (("g".to_string(), tp.0, 0), 3));
    let snap = store::decode_value(written[0].state.as_deref().unwrap()).unwrap();
    assert_eq!((snap.snapshot_epoch, snap.start_offset, snap.batches.len()), (5, 5, 1));

    // The store refuses the next write (another broker leads the partition now): this broker
    // lets go of it and loads it again before it serves it.
    *states.refuse.lock() = vec![tp];
    c.acknowledge("g", "m", tp, &[(5, 9, vec![partition::ACK_RELEASE])]).unwrap();
    c.persist().unwrap();
    assert!(c.needs_load(tp, 3));
    assert_eq!(c.plan("g", tp, 0, 10, now), None);
}

#[test]
fn a_reset_at_the_leader_replaces_or_forgets_what_it_holds_and_is_written_in_its_epoch() {
    let states = Arc::new(FakeStates::default());
    let c =
        ShareCoordinator { keeping: Keeping::Cluster(states.clone()), ..ShareCoordinator::new(ShareConfig::default()) };
    let (tp, other, now) = ((Uuid::new_v4(), 0), (Uuid::new_v4(), 1), Instant::now());
    let held =
        Snapshot { snapshot_epoch: 2, start_offset: 5, create_timestamp: 1, write_timestamp: 1, batches: vec![] };
    c.load(tp, 4, vec![("g".to_string(), store::encode_value(&held))]);
    c.load(other, 4, vec![]);
    let span = [BatchSpan { base_offset: 5, last_offset: 9, skip: false }];
    assert_eq!(c.acquire("g", "m", tp, &span, 100, now).len(), 1);
    c.persist().unwrap();
    states.written.lock().clear();

    // A new start offset drops what was in flight: the next fetch starts there.
    c.reset("g", &[(tp, Some(8))]).unwrap();
    c.persist().unwrap();
    let written = std::mem::take(&mut *states.written.lock());
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!((written[0].key.clone(), written[0].leader_epoch), (("g".to_string(), tp.0, 0), 4));
    let snap = store::decode_value(written[0].state.as_deref().unwrap()).unwrap();
    assert_eq!((snap.start_offset, snap.batches.len()), (8, 0));
    assert_eq!(c.plan("g", tp, 0, 10, now), Some(ReadPlan { read_from: 8, available: true }));

    // Forgotten: a tombstone for the one held, nothing for the one this broker holds nothing
    // of, and the next fetch starts from `share.auto.offset.reset` (latest: the end).
    c.reset("g", &[(tp, None), (other, None)]).unwrap();
    c.persist().unwrap();
    let written = std::mem::take(&mut *states.written.lock());
    assert_eq!(written, vec![StateWrite { key: ("g".to_string(), tp.0, 0), leader_epoch: 4, state: None }]);
    assert_eq!(c.plan("g", tp, 0, 10, now), Some(ReadPlan { read_from: 10, available: false }));
}

#[test]
fn a_group_with_members_is_not_reset_and_forgetting_creates_no_group() {
    let c = ShareCoordinator::new(ShareConfig::default());
    let tp = (Uuid::new_v4(), 0);
    c.reset("nobody", &[(tp, None)]).unwrap();
    assert!(!c.is_share_group("nobody"), "forgetting created the group");
    join(&c, "m", &["t"], Instant::now());
    assert!(c.reset("g", &[(tp, Some(3))]).unwrap_err().contains("has members"));
    assert!(c.open_empty("g").unwrap_err().contains("has members"));
    c.open_empty("fresh").unwrap();
    assert_eq!(c.list(), vec![("fresh".to_string(), "Empty"), ("g".to_string(), "Stable")]);
}
