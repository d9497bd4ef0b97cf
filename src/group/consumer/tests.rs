use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use super::assignor::AssignorMember;
use super::*;

fn cfg() -> ConsumerConfig {
    ConsumerConfig {
        session_timeout: Duration::from_secs(45),
        heartbeat_interval: Duration::from_secs(5),
        max_size: 10,
    }
}

fn topics(name: &str) -> Option<(uuid::Uuid, i32)> {
    match name {
        "t" => Some((uuid::Uuid::from_u128(1), 6)),
        "u" => Some((uuid::Uuid::from_u128(2), 3)),
        _ => None,
    }
}

fn a(pairs: &[(&str, &[i32])]) -> Assignment {
    pairs.iter().filter(|(_, ps)| !ps.is_empty()).map(|(t, ps)| (t.to_string(), ps.iter().copied().collect())).collect()
}

fn count(x: &Assignment) -> usize {
    x.values().map(BTreeSet::len).sum()
}

fn join(g: &mut ConsumerGroup, id: &str, now: Instant) -> HeartbeatResult {
    let p = HeartbeatParams {
        member_id: id.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 10_000,
        subscribed_topic_names: Some(vec!["t".into()]),
        owned: Some(Assignment::new()),
        ..Default::default()
    };
    g.heartbeat(p, 1, &topics, now, &cfg()).expect("join")
}

/// A heartbeat that reports `owned` (what the member holds after applying its last answer).
fn beat(
    g: &mut ConsumerGroup,
    id: &str,
    epoch: i32,
    owned: &Assignment,
    now: Instant,
) -> Result<HeartbeatResult, HeartbeatError> {
    let p = HeartbeatParams {
        member_id: id.into(),
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        owned: Some(owned.clone()),
        ..Default::default()
    };
    g.heartbeat(p, 1, &topics, now, &cfg())
}

/// A simulated client: its epoch and what it owns, updated from each answer.
struct Client {
    id: String,
    epoch: i32,
    owned: Assignment,
}

impl Client {
    fn beat(&mut self, g: &mut ConsumerGroup, now: Instant) -> HeartbeatResult {
        let r = beat(g, &self.id, self.epoch, &self.owned, now).expect("heartbeat");
        self.epoch = r.member_epoch;
        if let Some(x) = &r.assignment {
            self.owned = x.clone();
        }
        r
    }
}

/// Heartbeats every client until nothing changes; checks no partition is ever owned twice.
fn settle(g: &mut ConsumerGroup, clients: &mut [Client], now: Instant) {
    for _ in 0..10 {
        for c in clients.iter_mut() {
            c.beat(g, now);
            let mut seen = BTreeSet::new();
            for m in g.members.values() {
                for (t, ps) in m.assigned.iter().chain(m.pending_revocation.iter()) {
                    for p in ps {
                        assert!(seen.insert((t.clone(), *p)), "{t}-{p} held by two members: {:?}", g.members);
                    }
                }
            }
        }
    }
}

#[test]
fn range_assignor_gives_contiguous_ranges_in_member_order() {
    let subs: BTreeSet<String> = ["t".to_string(), "u".to_string()].into();
    let empty = Assignment::new();
    let members: BTreeMap<String, AssignorMember<'_>> = ["a", "b", "c", "d"]
        .iter()
        .map(|id| (id.to_string(), AssignorMember { subscribed: &subs, current: &empty }))
        .collect();
    let out = Assignor::Range.assign(&members, &[("t".to_string(), 6), ("u".to_string(), 3)].into());
    assert_eq!(out["a"], a(&[("t", &[0, 1]), ("u", &[0])]));
    assert_eq!(out["b"], a(&[("t", &[2, 3]), ("u", &[1])]));
    assert_eq!(out["c"], a(&[("t", &[4]), ("u", &[2])]));
    assert_eq!(out["d"], a(&[("t", &[5])]));
}

#[test]
fn uniform_assignor_balances_and_sticks() {
    let t: BTreeSet<String> = ["t".to_string()].into();
    let tu: BTreeSet<String> = ["t".to_string(), "u".to_string()].into();
    let parts: BTreeMap<String, i32> = [("t".to_string(), 6), ("u".to_string(), 3)].into();
    let empty = Assignment::new();
    // Homogeneous: 6 partitions over 3 members, 2 each.
    let members: BTreeMap<String, AssignorMember<'_>> =
        ["a", "b", "c"].iter().map(|id| (id.to_string(), AssignorMember { subscribed: &t, current: &empty })).collect();
    let first = Assignor::Uniform.assign(&members, &parts);
    assert!(first.values().all(|x| count(x) == 2), "{first:?}");
    // One leaves: the two others keep what they had and share its partitions.
    let members: BTreeMap<String, AssignorMember<'_>> =
        ["a", "b"].iter().map(|id| (id.to_string(), AssignorMember { subscribed: &t, current: &first[*id] })).collect();
    let second = Assignor::Uniform.assign(&members, &parts);
    for id in ["a", "b"] {
        assert_eq!(count(&second[id]), 3);
        assert!(first[id]["t"].is_subset(&second[id]["t"]), "{id} kept its partitions");
    }
    // Heterogeneous: only "b" reads "u"; "a" takes more of "t" to even out.
    let members: BTreeMap<String, AssignorMember<'_>> = [
        ("a".to_string(), AssignorMember { subscribed: &t, current: &empty }),
        ("b".to_string(), AssignorMember { subscribed: &tu, current: &empty }),
    ]
    .into();
    let het = Assignor::Uniform.assign(&members, &parts);
    assert_eq!(het["b"]["u"].len(), 3);
    assert!(!het["a"].contains_key("u"));
    assert_eq!(count(&het["a"]) + count(&het["b"]), 9);
    assert!(count(&het["a"]).abs_diff(count(&het["b"])) <= 1, "{het:?}");
}

#[test]
fn three_members_join_then_one_leaves_and_one_crashes() {
    let now = Instant::now();
    let mut g = ConsumerGroup::new("g");
    let mut clients: Vec<Client> = ["m1", "m2", "m3"]
        .iter()
        .map(|id| {
            let r = join(&mut g, id, now);
            Client { id: id.to_string(), epoch: r.member_epoch, owned: r.assignment.unwrap_or_default() }
        })
        .collect();
    settle(&mut g, &mut clients, now);
    assert_eq!(g.group_epoch, 3);
    assert_eq!(g.state(), ConsumerGroupState::Stable);
    for c in &clients {
        assert_eq!(c.epoch, 3);
        assert_eq!(count(&c.owned), 2, "{} owns {:?}", c.id, c.owned);
    }

    // m3 leaves: its partitions go to the others, the group epoch moves on.
    let left = beat(&mut g, "m3", LEAVE_EPOCH, &Assignment::new(), now).expect("leave");
    assert_eq!(left.member_epoch, LEAVE_EPOCH);
    clients.pop();
    settle(&mut g, &mut clients, now);
    assert_eq!(g.group_epoch, 4);
    assert!(clients.iter().all(|c| count(&c.owned) == 3 && c.epoch == 4));

    // m2 stops heartbeating: fenced after the session timeout, m1 gets everything.
    let later = now + Duration::from_secs(30);
    clients[0].beat(&mut g, later);
    assert!(g.tick(later + Duration::from_secs(20)) == vec!["m2".to_string()]);
    clients.pop();
    settle(&mut g, &mut clients, later + Duration::from_secs(20));
    assert_eq!(clients[0].owned, a(&[("t", &[0, 1, 2, 3, 4, 5])]));
    assert_eq!(g.state(), ConsumerGroupState::Stable);
    // The crashed member's heartbeats are answered UNKNOWN_MEMBER_ID: it must rejoin.
    let e = beat(&mut g, "m2", 4, &Assignment::new(), later).unwrap_err();
    assert!(matches!(e, HeartbeatError::UnknownMemberId(_)), "{e:?}");
}

#[test]
fn partitions_are_revoked_before_they_are_reassigned() {
    let now = Instant::now();
    let mut g = ConsumerGroup::new("g");
    let r = join(&mut g, "m1", now);
    let mut m1 = Client { id: "m1".into(), epoch: r.member_epoch, owned: r.assignment.unwrap() };
    assert_eq!(count(&m1.owned), 6);
    // m2 joins: its target has half of m1's partitions, which m1 still owns.
    let r = join(&mut g, "m2", now);
    let mut m2 = Client { id: "m2".into(), epoch: r.member_epoch, owned: r.assignment.unwrap() };
    assert_eq!(g.group_epoch, 2);
    assert!(m2.owned.is_empty(), "nothing until m1 revokes: {:?}", m2.owned);
    assert_eq!(m2.epoch, 2, "m2 is at the new epoch, waiting for partitions");
    assert_eq!(g.members["m2"].state, MemberState::UnreleasedPartitions);
    // m1 is told to keep 3 partitions: its epoch stays until it acknowledges the revocation.
    let r = beat(&mut g, "m1", 1, &m1.owned, now).unwrap();
    assert_eq!(r.member_epoch, 1);
    assert_eq!(count(r.assignment.as_ref().unwrap()), 3);
    assert_eq!(g.members["m1"].state, MemberState::UnrevokedPartitions);
    // m2 asks again before m1 revoked: still nothing.
    assert!(m2.beat(&mut g, now).assignment.is_none());
    assert!(m2.owned.is_empty());
    // m1 heartbeats again still owning all 6: no progress.
    let r = beat(&mut g, "m1", 1, &m1.owned, now).unwrap();
    assert_eq!(r.member_epoch, 1);
    // m1 acknowledges (owns only its 3): epoch 2; then m2 gets the 3 released partitions.
    m1.owned = r.assignment.clone().unwrap_or_else(|| g.members["m1"].assigned.clone());
    let r = m1.beat(&mut g, now);
    assert_eq!(r.member_epoch, 2);
    let r = m2.beat(&mut g, now);
    assert_eq!(count(r.assignment.as_ref().unwrap()), 3);
    assert_eq!(g.state(), ConsumerGroupState::Stable);
}

#[test]
fn a_member_that_does_not_revoke_in_time_is_fenced() {
    let now = Instant::now();
    let mut g = ConsumerGroup::new("g");
    let r = join(&mut g, "m1", now);
    let owned = r.assignment.unwrap();
    join(&mut g, "m2", now);
    beat(&mut g, "m1", 1, &owned, now).unwrap();
    assert_eq!(g.members["m1"].state, MemberState::UnrevokedPartitions);
    // The rebalance timeout (10 s) passes while m1 holds on: fenced, its partitions freed.
    assert_eq!(g.tick(now + Duration::from_secs(11)), vec!["m1".to_string()]);
    let r = beat(&mut g, "m2", 2, &Assignment::new(), now + Duration::from_secs(11)).unwrap();
    assert_eq!(count(r.assignment.as_ref().unwrap()), 6);
}

#[test]
fn member_epochs_are_fenced() {
    let now = Instant::now();
    let mut g = ConsumerGroup::new("g");
    let r = join(&mut g, "m1", now);
    assert_eq!(r.member_epoch, 1);
    let owned = r.assignment.unwrap();
    let e = beat(&mut g, "m1", 2, &owned, now).unwrap_err();
    assert!(matches!(e, HeartbeatError::FencedMemberEpoch(_)), "greater: {e:?}");
    join(&mut g, "m2", now);
    beat(&mut g, "m1", 1, &owned, now).unwrap();
    let kept = g.members["m1"].assigned.clone();
    beat(&mut g, "m1", 1, &kept, now).unwrap();
    assert_eq!(g.members["m1"].member_epoch, 2);
    // The previous epoch is accepted with no more than the assignment (a lost answer) ...
    assert!(beat(&mut g, "m1", 1, &kept, now).is_ok());
    // ... but not with partitions it gave up, nor an older one.
    let e = beat(&mut g, "m1", 1, &owned, now).unwrap_err();
    assert!(matches!(e, HeartbeatError::FencedMemberEpoch(_)), "{e:?}");
    let e = beat(&mut g, "nobody", 3, &kept, now).unwrap_err();
    assert!(matches!(e, HeartbeatError::UnknownMemberId(_)), "{e:?}");
    // Offset commits use the member epoch.
    let epoch = g.members["m2"].member_epoch;
    assert_eq!(g.check_commit("m2", epoch), Ok(()));
    assert_eq!(g.check_commit("m2", epoch - 1), Err(CommitCheck::StaleMemberEpoch));
    assert_eq!(g.check_commit("zz", epoch), Err(CommitCheck::UnknownMemberId));
    assert_eq!(g.check_commit("", -1), Err(CommitCheck::UnknownMemberId), "a simple commit needs an empty group");
}

#[test]
fn invalid_requests_get_kafkas_messages() {
    let now = Instant::now();
    let mut g = ConsumerGroup::new("g");
    let p = HeartbeatParams { member_id: "m".into(), member_epoch: 0, rebalance_timeout_ms: -1, ..Default::default() };
    let e = g.heartbeat(p.clone(), 1, &topics, now, &cfg()).unwrap_err();
    assert_eq!(e, HeartbeatError::InvalidRequest("RebalanceTimeoutMs must be provided in first request.".into()));
    let regex = HeartbeatParams { subscribed_topic_regex: Some("t.*".into()), ..p.clone() };
    assert!(matches!(g.heartbeat(regex, 1, &topics, now, &cfg()), Err(HeartbeatError::InvalidRequest(_))));
    // librdkafka sends an empty regex along with topic names: no regex.
    let empty_regex = HeartbeatParams {
        subscribed_topic_regex: Some(String::new()),
        rebalance_timeout_ms: 1000,
        owned: Some(Assignment::new()),
        subscribed_topic_names: Some(vec!["t".into()]),
        ..p.clone()
    };
    assert!(g.heartbeat(empty_regex, 1, &topics, now, &cfg()).is_ok());
    let mut g = ConsumerGroup::new("g");
    let bad = HeartbeatParams {
        rebalance_timeout_ms: 1000,
        owned: Some(Assignment::new()),
        subscribed_topic_names: Some(vec!["t".into()]),
        server_assignor: Some("sticky".into()),
        ..p.clone()
    };
    assert!(matches!(g.heartbeat(bad, 1, &topics, now, &cfg()), Err(HeartbeatError::UnsupportedAssignor(_))));
    let no_id = HeartbeatParams { member_id: String::new(), ..p };
    assert_eq!(
        g.heartbeat(no_id, 1, &topics, now, &cfg()).unwrap_err(),
        HeartbeatError::InvalidRequest("MemberId can't be empty.".into())
    );
}

#[test]
fn a_static_member_that_left_with_minus_two_comes_back_to_its_partitions() {
    let now = Instant::now();
    let mut g = ConsumerGroup::new("g");
    let join_static = |g: &mut ConsumerGroup, id: &str, instance: &str| {
        let p = HeartbeatParams {
            member_id: id.into(),
            member_epoch: 0,
            instance_id: Some(instance.into()),
            rebalance_timeout_ms: 10_000,
            subscribed_topic_names: Some(vec!["t".into()]),
            owned: Some(Assignment::new()),
            ..Default::default()
        };
        g.heartbeat(p, 1, &topics, now, &cfg())
    };
    let r = join_static(&mut g, "a1", "i").unwrap();
    let owned = r.assignment.unwrap();
    assert!(matches!(join_static(&mut g, "a2", "i"), Err(HeartbeatError::UnreleasedInstanceId(_))));
    let p = HeartbeatParams {
        member_id: "a1".into(),
        member_epoch: LEAVE_STATIC_EPOCH,
        instance_id: Some("i".into()),
        ..Default::default()
    };
    assert_eq!(g.heartbeat(p, 1, &topics, now, &cfg()).unwrap().member_epoch, LEAVE_STATIC_EPOCH);
    let epoch = g.group_epoch;
    let r = join_static(&mut g, "a2", "i").unwrap();
    assert_eq!(r.assignment.unwrap(), owned, "the same partitions, without a rebalance");
    assert_eq!(g.group_epoch, epoch);
}
