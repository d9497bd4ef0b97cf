//! `consumer` protocol groups across a restart of the coordinator: the group comes back from
//! its records in `__consumer_offsets` with its members' epochs and assignments; members that
//! left or were fenced, and deleted or expired groups, stay gone; the start-time compaction
//! keeps the state. Time is stepped, never slept.

use std::collections::BTreeMap;
use std::path::Path;

use tokio::time::Instant;

use super::*;
use crate::group::consumer::{Assignment, HeartbeatError, HeartbeatParams, TopicNames, TopicSource};

/// The cluster's topics: name -> (id, partitions).
pub(super) struct Cluster(BTreeMap<String, (uuid::Uuid, i32)>);

pub(super) fn cluster() -> Cluster {
    Cluster(BTreeMap::from([
        ("t".to_string(), (uuid::Uuid::from_u128(0x71), 6)),
        ("u".to_string(), (uuid::Uuid::from_u128(0x72), 3)),
    ]))
}

impl TopicSource for Cluster {
    fn topic(&self, name: &str) -> Option<(uuid::Uuid, i32)> {
        self.0.get(name).copied()
    }

    fn describable_topics(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }
}

impl TopicNames for Cluster {
    fn topic_name(&self, id: &uuid::Uuid) -> Option<String> {
        self.0.iter().find(|(_, (i, _))| i == id).map(|(n, _)| n.clone())
    }
}

pub(super) fn open(dir: &Path, checkpoint_bytes: u64) -> GroupCoordinator {
    let logs = LogManager::new(dir.to_owned(), crate::log::files::FileCache::unbounded());
    GroupCoordinator::open(&logs, cfg(checkpoint_bytes), &cluster(), crate::clock::now_ms()).unwrap()
}

/// A simulated consumer: its epoch and what it owns, updated from each answer.
#[derive(Debug, Clone)]
pub(super) struct Client {
    pub(super) group: &'static str,
    pub(super) id: String,
    pub(super) epoch: i32,
    pub(super) owned: Assignment,
}

impl Client {
    pub(super) fn join(c: &GroupCoordinator, group: &'static str, id: &str, topics: &[&str], now: Instant) -> Self {
        let p = HeartbeatParams {
            member_id: id.into(),
            member_epoch: 0,
            rebalance_timeout_ms: 30_000,
            subscribed_topic_names: Some(topics.iter().map(|t| t.to_string()).collect()),
            owned: Some(Assignment::new()),
            ..Default::default()
        };
        let r = c.consumer_heartbeat(group, p, 1, &cluster(), now).expect("join");
        Self { group, id: id.into(), epoch: r.member_epoch, owned: r.assignment.unwrap_or_default() }
    }

    pub(super) fn try_beat(
        &self,
        c: &GroupCoordinator,
        epoch: i32,
        now: Instant,
    ) -> Result<consumer::HeartbeatResult, HeartbeatError> {
        let p = HeartbeatParams {
            member_id: self.id.clone(),
            member_epoch: epoch,
            rebalance_timeout_ms: -1,
            owned: Some(self.owned.clone()),
            ..Default::default()
        };
        c.consumer_heartbeat(self.group, p, 1, &cluster(), now)
    }

    pub(super) fn beat(&mut self, c: &GroupCoordinator, now: Instant) {
        let r = self.try_beat(c, self.epoch, now).expect("heartbeat");
        self.epoch = r.member_epoch;
        if let Some(a) = r.assignment {
            self.owned = a;
        }
    }
}

/// Heartbeats every client until the group is Stable.
fn settle(c: &GroupCoordinator, clients: &mut [Client], now: Instant) {
    for _ in 0..10 {
        for cl in clients.iter_mut() {
            cl.beat(c, now);
        }
        if c.consumer_group(clients[0].group).unwrap().state() == consumer::ConsumerGroupState::Stable {
            return;
        }
    }
    panic!("the group did not settle: {:?}", c.consumer_group(clients[0].group).unwrap());
}

/// (member, epoch, assigned) of every member, and the group and assignment epochs.
type Snapshot = (Vec<(String, i32, Assignment)>, i32, i32);

fn snapshot(c: &GroupCoordinator, group: &str) -> Snapshot {
    let g = c.consumer_group(group).expect("the group exists");
    let members = g.members.values().map(|m| (m.member_id.clone(), m.member_epoch, m.assigned.clone())).collect();
    (members, g.group_epoch, g.assignment_epoch)
}

fn log_end(c: &GroupCoordinator) -> i64 {
    c.log.offsets().log_end_offset
}

/// Three members settle, one leaves: the two others' state as the coordinator has it, with the
/// simulated clients and the one that left.
fn stable_group(c: &GroupCoordinator, now: Instant) -> (Vec<Client>, Client) {
    let mut clients: Vec<Client> =
        ["m1", "m2", "m3"].iter().map(|id| Client::join(c, "g", id, &["t", "u"], now)).collect();
    settle(c, &mut clients, now);
    // m3 leaves; the two others take over its partitions.
    let m3 = clients.pop().unwrap();
    m3.try_beat(c, consumer::LEAVE_EPOCH, now).unwrap();
    settle(c, &mut clients, now);
    (clients, m3)
}

#[test]
fn a_stable_consumer_group_carries_on_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), 1 << 40);
    let (mut clients, m3) = stable_group(&c, Instant::now());
    let before = snapshot(&c, "g");
    assert_eq!(before.0.len(), 2);
    assert_eq!(before.0.iter().map(|(_, _, a)| a.values().map(|p| p.len()).sum::<usize>()).sum::<usize>(), 9);
    // A heartbeat that changes nothing writes nothing.
    let end = log_end(&c);
    clients[0].beat(&c, Instant::now());
    assert_eq!(log_end(&c), end, "an idle heartbeat appended records");
    drop(c);

    let c = open(dir.path(), 1 << 40);
    assert_eq!(snapshot(&c, "g"), before, "restored as it was");
    let now = Instant::now();
    for cl in &mut clients {
        let epoch = cl.epoch;
        let r = cl.try_beat(&c, epoch, now).expect("the member is known after the restart");
        assert_eq!(r.member_epoch, epoch, "{}: no new epoch, no rebalance", cl.id);
        assert!(r.assignment.is_none(), "{}: the assignment did not change", cl.id);
    }
    assert_eq!(snapshot(&c, "g"), before);
    assert!(
        matches!(m3.try_beat(&c, m3.epoch, now), Err(HeartbeatError::UnknownMemberId(_))),
        "a member that left before the restart stays gone"
    );
    // Sessions start at the restore: 44 s later the members are still there.
    c.tick(now + Duration::from_secs(44), crate::clock::now_ms());
    assert_eq!(snapshot(&c, "g"), before);
}

#[test]
fn a_deleted_consumer_group_stays_deleted_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), 1 << 40);
    let now = Instant::now();
    let gone = Client::join(&c, "gone", "x", &["t"], now);
    gone.try_beat(&c, consumer::LEAVE_EPOCH, now).unwrap();
    c.delete_group("gone").unwrap();
    drop(c);
    let c = open(dir.path(), 1 << 40);
    assert!(c.consumer_group("gone").is_err(), "a deleted group stays deleted");
    assert!(matches!(gone.try_beat(&c, 1, Instant::now()), Err(HeartbeatError::UnknownMemberId(_))));
}

#[test]
fn the_start_time_compaction_keeps_consumer_groups() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), 1 << 40);
    let (mut clients, _) = stable_group(&c, Instant::now());
    let before = snapshot(&c, "g");
    drop(c);
    // Compacted at start (tiny threshold), then read again from the compacted log.
    let c = open(dir.path(), 1);
    assert!(c.log.offsets().log_start_offset > 0, "the log was compacted");
    assert_eq!(snapshot(&c, "g"), before);
    drop(c);
    let c = open(dir.path(), 1);
    assert_eq!(snapshot(&c, "g"), before);
    let now = Instant::now();
    for cl in &mut clients {
        let epoch = cl.epoch;
        assert_eq!(cl.try_beat(&c, epoch, now).unwrap().member_epoch, epoch);
    }
}

#[test]
fn fenced_members_and_expired_groups_stay_gone_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), 1 << 40);
    let now = Instant::now();
    let mut clients: Vec<Client> = ["a", "b"].iter().map(|id| Client::join(&c, "g", id, &["t"], now)).collect();
    settle(&c, &mut clients, now);
    // "b" stops heartbeating: fenced by its session timeout, "a" gets everything.
    let later = now + Duration::from_secs(30);
    clients[0].beat(&c, later);
    c.tick(now + Duration::from_secs(46), crate::clock::now_ms());
    let mut a = clients.remove(0);
    for _ in 0..3 {
        a.beat(&c, later);
    }
    let before = snapshot(&c, "g");
    assert_eq!(before.0.len(), 1);
    assert_eq!(a.owned.values().map(|p| p.len()).sum::<usize>(), 6);
    drop(c);

    let c = open(dir.path(), 1 << 40);
    assert_eq!(snapshot(&c, "g"), before, "the fenced member stays gone");
    let now = Instant::now();
    let r = a.try_beat(&c, a.epoch, now).unwrap();
    assert_eq!(r.member_epoch, a.epoch);
    // The last member leaves; the empty group is forgotten after it lingered, and its
    // records' tombstones keep it forgotten.
    a.try_beat(&c, consumer::LEAVE_EPOCH, now).unwrap();
    assert!(c.consumer_group("g").is_ok());
    c.tick(now, crate::clock::now_ms() + expiry::EMPTY_GROUP_LINGER_MS + 1);
    assert!(c.consumer_group("g").is_err(), "expired");
    drop(c);
    let c = open(dir.path(), 1 << 40);
    assert!(c.consumer_group("g").is_err(), "an expired group stays expired");
}

#[test]
fn a_static_member_that_left_is_replaced_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), 1 << 40);
    let now = Instant::now();
    let p = |id: &str, epoch: i32| HeartbeatParams {
        member_id: id.into(),
        member_epoch: epoch,
        instance_id: Some("instance-1".into()),
        rebalance_timeout_ms: if epoch == 0 { 30_000 } else { -1 },
        subscribed_topic_names: (epoch == 0).then(|| vec!["t".into()]),
        owned: Some(Assignment::new()),
        ..Default::default()
    };
    let r = c.consumer_heartbeat("s", p("old", 0), 1, &cluster(), now).unwrap();
    let assigned = r.assignment.unwrap();
    c.consumer_heartbeat("s", p("old", consumer::LEAVE_STATIC_EPOCH), 1, &cluster(), now).unwrap();
    drop(c);

    let c = open(dir.path(), 1 << 40);
    let now = Instant::now();
    let r = c.consumer_heartbeat("s", p("new", 0), 1, &cluster(), now).unwrap();
    assert_eq!(r.assignment, Some(assigned), "the new incarnation takes over the old one's partitions");
    drop(c);
    let c = open(dir.path(), 1 << 40);
    let g = c.consumer_group("s").unwrap();
    assert_eq!(g.members.keys().collect::<Vec<_>>(), vec!["new"], "the replacement was persisted");
}

#[test]
fn a_regex_subscription_carries_on_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), 1 << 40);
    let now = Instant::now();
    let p = |epoch: i32| HeartbeatParams {
        member_id: "r1".into(),
        member_epoch: epoch,
        rebalance_timeout_ms: if epoch == 0 { 30_000 } else { -1 },
        subscribed_topic_regex: (epoch == 0).then(|| "u.*".into()),
        owned: Some(Assignment::new()),
        ..Default::default()
    };
    let r = c.consumer_heartbeat("rx", p(0), 1, &cluster(), now).unwrap();
    let assigned = r.assignment.unwrap();
    assert_eq!(assigned.keys().collect::<Vec<_>>(), vec!["u"]);
    let before = snapshot(&c, "rx");
    drop(c);

    let c = open(dir.path(), 1 << 40);
    let g = c.consumer_group("rx").unwrap();
    assert_eq!(g.resolved_regexes["u.*"].topics.iter().collect::<Vec<_>>(), vec!["u"], "the resolution was kept");
    let end = log_end(&c);
    let mut beat = p(r.member_epoch);
    beat.owned = Some(assigned);
    let again = c.consumer_heartbeat("rx", beat, 1, &cluster(), Instant::now()).unwrap();
    assert_eq!((again.member_epoch, again.assignment), (r.member_epoch, None), "no new epoch");
    assert_eq!(snapshot(&c, "rx"), before);
    assert_eq!(log_end(&c), end, "nothing changed, nothing written");
}
