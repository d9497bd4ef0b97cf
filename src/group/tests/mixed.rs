//! Classic and `consumer` protocol members in one group (KIP-848's online migration): a classic
//! group upgraded by a joining consumer member, classic members assigned by the coordinator
//! (eager ones revoking everything before they rejoin, cooperative ones reporting what they
//! own), the group downgraded when the last consumer member leaves, kept across a restart, and
//! refused when the migration policy says no. Time is stepped, never slept.

use std::collections::BTreeSet;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::time::Instant;

use super::consumer_restart::{cluster, open, Client};
use super::*;
use crate::group::consumer::{embedded, Assignment, HeartbeatError, MigrationPolicy};

const SESSION: Duration = Duration::from_secs(10);
const REBALANCE: Duration = Duration::from_secs(20);

/// A v1 ConsumerProtocolSubscription of topic `t` with the partitions the member owns.
fn subscription(owned: &Assignment) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(1);
    b.put_i32(1);
    b.put_i16(1);
    b.put_slice(b"t");
    b.put_i32(-1);
    b.put_i32(owned.len() as i32);
    for (topic, ps) in owned {
        b.put_i16(topic.len() as i16);
        b.put_slice(topic.as_bytes());
        b.put_i32(ps.len() as i32);
        for p in ps {
            b.put_i32(*p);
        }
    }
    b.freeze()
}

fn ready<T>(w: Waiting<T>) -> Result<T, GroupError> {
    match w {
        Waiting::Ready(r) => r,
        Waiting::Wait(mut rx) => rx.try_recv().expect("the phase completed"),
    }
}

fn partitions(a: &Assignment) -> BTreeSet<(String, i32)> {
    a.iter().flat_map(|(t, ps)| ps.iter().map(|p| (t.clone(), *p))).collect()
}

/// A simulated classic consumer (protocol `range`): eager ones revoke everything before they
/// rejoin, cooperative ones report what they own.
#[derive(Debug)]
struct Classic {
    id: String,
    generation: i32,
    owned: Assignment,
    cooperative: bool,
}

impl Classic {
    fn params(&self) -> JoinParams {
        let owned = if self.cooperative { self.owned.clone() } else { Assignment::new() };
        JoinParams {
            member_id: self.id.clone(),
            group_instance_id: None,
            client_id: "classic".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout: SESSION,
            rebalance_timeout: REBALANCE,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), subscription(&owned))],
            require_known_member_id: false,
        }
    }

    /// JoinGroup then SyncGroup (as leader of a classic group, assigning everything to the
    /// members in `assign`); what it owns afterwards is what SyncGroup gave it.
    fn rejoin(&mut self, c: &GroupCoordinator, assign: &[(&str, Assignment)], now: Instant) {
        if !self.cooperative {
            self.owned.clear();
        }
        let j = ready(c.join("g", self.params(), &cluster(), now)).expect("join");
        self.id = j.member_id.clone();
        self.generation = j.generation_id;
        let assignments = if j.leader_id == self.id {
            let id = |m: &str| if m.is_empty() { self.id.clone() } else { m.to_string() };
            assign.iter().map(|(m, a)| (id(m), embedded::encode_assignment(a, 1))).collect()
        } else {
            Vec::new()
        };
        let s = ready(c.sync("g", self.sync_request(), assignments, now)).expect("sync");
        self.owned = embedded::decode_assignment(&s.assignment).expect("an assignment");
    }

    fn sync_request(&self) -> SyncRequest<'_> {
        SyncRequest {
            member_id: &self.id,
            instance: None,
            generation: self.generation,
            protocol_type: Some("consumer"),
            protocol_name: Some("range"),
        }
    }

    /// A Heartbeat; on REBALANCE_IN_PROGRESS the member rejoins. Returns whether it rejoined.
    fn beat(&mut self, c: &GroupCoordinator, now: Instant) -> bool {
        match c.heartbeat("g", &self.id, None, self.generation, now) {
            Ok(()) => false,
            Err(GroupError::RebalanceInProgress) => {
                self.rejoin(c, &[], now);
                true
            }
            Err(e) => panic!("{}: heartbeat: {e}", self.id),
        }
    }
}

/// Everyone heartbeats until nobody had to rejoin and the consumer group is Stable; then no
/// partition has two owners and every partition of `t` has one.
fn settle(c: &GroupCoordinator, classic: &mut [Classic], consumers: &mut [Client], now: Instant) {
    for _ in 0..10 {
        let mut rejoined = false;
        for m in classic.iter_mut() {
            rejoined |= m.beat(c, now);
        }
        for m in consumers.iter_mut() {
            m.beat(c, now);
        }
        let stable = c.consumer_group("g").unwrap().state() == consumer::ConsumerGroupState::Stable;
        if !rejoined && stable {
            let owned: Vec<&Assignment> =
                classic.iter().map(|m| &m.owned).chain(consumers.iter().map(|m| &m.owned)).collect();
            let all: Vec<(String, i32)> = owned.iter().flat_map(|a| partitions(a)).collect();
            let unique: BTreeSet<_> = all.iter().cloned().collect();
            assert_eq!(all.len(), unique.len(), "a partition has two owners: {owned:?}");
            assert_eq!(unique.len(), 6, "every partition of t has an owner: {owned:?}");
            return;
        }
    }
    panic!("the group did not settle: {:?}", c.consumer_group("g"));
}

/// A classic group of one eager member that owns all of `t`.
fn classic_group(c: &GroupCoordinator, now: Instant) -> Classic {
    let mut a = Classic { id: String::new(), generation: -1, owned: Assignment::new(), cooperative: false };
    let all: Assignment = [("t".to_string(), (0..6).collect())].into();
    // The first member of a classic group is its leader: it assigns itself everything.
    a.rejoin(c, &[("", all.clone())], now);
    assert_eq!(a.owned, all);
    a
}

#[test]
fn a_consumer_member_upgrades_a_classic_group_and_the_last_one_leaving_downgrades_it() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), 1 << 40);
    let now = Instant::now();
    let mut a = classic_group(&c, now);
    let generation = a.generation;

    // A consumer member joins: the group is a consumer group now, the classic member keeps
    // its partitions in an epoch equal to its generation until it is told to rejoin.
    let mut z = Client::join(&c, "g", "z", &["t"], now);
    let g = c.consumer_group("g").expect("upgraded to a consumer group");
    assert_eq!(g.members[&a.id].member_epoch, generation);
    assert!(g.members[&a.id].classic.is_some() && g.members["z"].classic.is_none());
    assert_eq!(g.group_epoch, generation + 1);
    assert!(z.owned.is_empty(), "z waits for a to release partitions");
    assert!(matches!(c.heartbeat("g", &a.id, None, generation, now), Err(GroupError::RebalanceInProgress)));
    settle(&c, std::slice::from_mut(&mut a), std::slice::from_mut(&mut z), now);
    assert_eq!(partitions(&a.owned).len(), 3);

    // A cooperative classic member joins the consumer group: assigned by the coordinator.
    let mut b = Classic { id: String::new(), generation: -1, owned: Assignment::new(), cooperative: true };
    b.rejoin(&c, &[], now);
    assert!(!b.id.is_empty(), "a member id was handed out");
    let mut classic = [a, b];
    settle(&c, &mut classic, std::slice::from_mut(&mut z), now);
    for m in &classic {
        assert_eq!(partitions(&m.owned).len(), 2, "{m:?}");
        // A classic member commits with its generation; another one is ILLEGAL_GENERATION.
        let o = CommittedOffset { offset: 1, leader_epoch: 0, metadata: String::new(), commit_timestamp: 1 };
        let ok = c.commit("g", &m.id, None, m.generation, vec![("t".into(), 0, o.clone())], |_, _| true).unwrap();
        assert_eq!(ok.results, vec![Ok(())]);
        let stale = c.commit("g", &m.id, None, m.generation - 1, vec![("t".into(), 0, o)], |_, _| true);
        assert_eq!(stale.err(), Some(GroupError::IllegalGeneration));
    }
    let described = c.consumer_group("g").unwrap();
    assert_eq!(described.members.values().filter(|m| m.classic.is_some()).count(), 2);

    // The last consumer member leaves: a classic group again, rebalancing in the next
    // generation, where the classic members agree on an assignment among themselves.
    let epoch = described.group_epoch;
    z.try_beat(&c, consumer::LEAVE_EPOCH, now).unwrap();
    assert!(c.consumer_group("g").is_err(), "downgraded to a classic group");
    {
        let e = c.entry("g").unwrap();
        let e = e.lock();
        assert_eq!(e.group.state, GroupState::PreparingRebalance);
        assert_eq!(e.group.generation_id, epoch, "the members' generation, until the rebalance completes");
        assert_eq!(e.group.members.len(), 2);
    }
    let [a, b] = &mut classic;
    assert!(matches!(c.heartbeat("g", &a.id, None, a.generation, now), Err(GroupError::RebalanceInProgress)));
    let params = a.params();
    let Waiting::Wait(mut first) = c.join("g", params, &cluster(), now) else { panic!("waits for the other member") };
    let second = ready(c.join("g", b.params(), &cluster(), now)).unwrap();
    let first = first.try_recv().unwrap().unwrap();
    assert_eq!(first.generation_id, second.generation_id);
    assert_eq!(first.protocol_name.as_deref(), Some("range"));
    assert_eq!(first.members.len() + second.members.len(), 2, "the leader learns both subscriptions");
}

#[test]
fn a_commit_with_another_generation_is_illegal_for_a_classic_member() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), 1 << 40);
    let now = Instant::now();
    let a = classic_group(&c, now);
    let _z = Client::join(&c, "g", "z", &["t"], now);
    let o = CommittedOffset { offset: 1, leader_epoch: 0, metadata: String::new(), commit_timestamp: 1 };
    let ok = c.commit("g", &a.id, None, a.generation, vec![("t".into(), 0, o.clone())], |_, _| true).unwrap();
    assert_eq!(ok.results, vec![Ok(())]);
    let refused = c.commit("g", &a.id, None, a.generation + 1, vec![("t".into(), 0, o.clone())], |_, _| true);
    assert_eq!(refused.err(), Some(GroupError::IllegalGeneration));
    let refused = c.commit("g", "z", None, 99, vec![("t".into(), 0, o)], |_, _| true);
    assert_eq!(refused.err(), Some(GroupError::StaleMemberEpoch), "a consumer member's error is its own");
}

#[test]
fn a_mixed_group_keeps_its_classic_members_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), 1 << 40);
    let now = Instant::now();
    let mut a = classic_group(&c, now);
    let mut z = Client::join(&c, "g", "z", &["t"], now);
    settle(&c, std::slice::from_mut(&mut a), std::slice::from_mut(&mut z), now);
    let before = c.consumer_group("g").unwrap();
    drop(c);

    let c = open(dir.path(), 1 << 40);
    let after = c.consumer_group("g").expect("still a consumer group");
    let classic = after.members[&a.id].classic.clone().expect("a is still a classic member");
    assert_eq!(Some(&classic), before.members[&a.id].classic.as_ref());
    assert_eq!(classic.session_timeout, SESSION);
    assert_eq!(after.members[&a.id].assigned, a.owned);
    let now = Instant::now();
    assert_eq!(c.heartbeat("g", &a.id, None, a.generation, now), Ok(()), "carries on in its generation");
    let req = SyncRequest { protocol_type: None, protocol_name: None, ..a.sync_request() };
    let s = ready(c.sync("g", req, Vec::new(), now)).unwrap();
    assert_eq!(embedded::decode_assignment(&s.assignment), Some(a.owned.clone()));
    // Its session is its own (10 s), not the consumer protocol's 45 s.
    c.tick(now + SESSION + Duration::from_millis(1), crate::clock::now_ms());
    assert!(!c.consumer_group("g").unwrap().members.contains_key(&a.id), "a's session ran out");
}

#[test]
fn a_classic_member_that_does_not_rejoin_in_time_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), 1 << 40);
    let now = Instant::now();
    let a = classic_group(&c, now);
    let mut z = Client::join(&c, "g", "z", &["t"], now);
    // Told to rejoin; it keeps heartbeating (the session stays alive) but never rejoins.
    let mut t = now;
    while t < now + REBALANCE {
        assert!(matches!(c.heartbeat("g", &a.id, None, a.generation, t), Err(GroupError::RebalanceInProgress)));
        z.beat(&c, t);
        t += Duration::from_secs(5);
        c.tick(t, crate::clock::now_ms());
    }
    assert!(!c.consumer_group("g").unwrap().members.contains_key(&a.id), "a was removed after its rebalance timeout");
    z.beat(&c, t);
    assert_eq!(partitions(&z.owned).len(), 6, "z took a's partitions");
}

#[test]
fn the_migration_policy_can_refuse_the_upgrade_and_the_downgrade() {
    for policy in [MigrationPolicy::Disabled, MigrationPolicy::Downgrade] {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogManager::new(dir.path().to_owned(), crate::log::files::FileCache::unbounded());
        let mut config = cfg(1 << 40);
        config.consumer.migration = policy;
        let c = GroupCoordinator::open(&logs, config, &cluster(), crate::clock::now_ms()).unwrap();
        let now = Instant::now();
        let a = classic_group(&c, now);
        let p = consumer::HeartbeatParams {
            member_id: "z".into(),
            member_epoch: 0,
            rebalance_timeout_ms: 30_000,
            subscribed_topic_names: Some(vec!["t".into()]),
            owned: Some(Assignment::new()),
            ..Default::default()
        };
        let refused = c.consumer_heartbeat("g", p, 1, &cluster(), now);
        assert!(matches!(refused, Err(HeartbeatError::GroupIdNotFound(_))), "{policy:?}: {refused:?}");
        assert_eq!(c.heartbeat("g", &a.id, None, a.generation, now), Ok(()), "{policy:?}: the classic group is intact");
    }
    // Upgrade only: the last consumer member leaving leaves a consumer group of classic members.
    let dir = tempfile::tempdir().unwrap();
    let logs = LogManager::new(dir.path().to_owned(), crate::log::files::FileCache::unbounded());
    let mut config = cfg(1 << 40);
    config.consumer.migration = MigrationPolicy::Upgrade;
    let c = GroupCoordinator::open(&logs, config, &cluster(), crate::clock::now_ms()).unwrap();
    let now = Instant::now();
    let _a = classic_group(&c, now);
    let z = Client::join(&c, "g", "z", &["t"], now);
    z.try_beat(&c, consumer::LEAVE_EPOCH, now).unwrap();
    let g = c.consumer_group("g").expect("not downgraded");
    assert_eq!(g.members.keys().collect::<Vec<_>>(), [&_a.id]);
}
