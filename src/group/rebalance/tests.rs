use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot::error::TryRecvError;
use tokio::time::Instant;

use super::*;

fn cfg(initial_delay_ms: u64) -> RebalanceConfig {
    RebalanceConfig {
        initial_rebalance_delay: Duration::from_millis(initial_delay_ms),
        min_session_timeout: Duration::from_millis(100),
        max_session_timeout: Duration::from_secs(600),
        max_size: 100,
    }
}

fn params(member_id: &str, instance: Option<&str>, protocols: &[&str]) -> JoinParams {
    JoinParams {
        member_id: member_id.to_string(),
        group_instance_id: instance.map(str::to_string),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout: Duration::from_secs(10),
        rebalance_timeout: Duration::from_secs(30),
        protocol_type: "consumer".into(),
        protocols: protocols.iter().map(|p| (p.to_string(), Bytes::from(format!("meta-{p}")))).collect(),
        require_known_member_id: true,
    }
}

fn wait<T: std::fmt::Debug>(w: Waiting<T>) -> tokio::sync::oneshot::Receiver<Result<T, GroupError>> {
    match w {
        Waiting::Wait(rx) => rx,
        Waiting::Ready(r) => panic!("expected to wait, got {r:?}"),
    }
}

fn ready<T: std::fmt::Debug>(w: Waiting<T>) -> Result<T, GroupError> {
    match w {
        Waiting::Ready(r) => r,
        Waiting::Wait(_) => panic!("expected an immediate answer"),
    }
}

fn done<T>(rx: &mut tokio::sync::oneshot::Receiver<Result<T, GroupError>>) -> Result<T, GroupError> {
    match rx.try_recv() {
        Ok(r) => r,
        Err(TryRecvError::Empty) => panic!("no answer yet"),
        Err(TryRecvError::Closed) => panic!("waiter dropped"),
    }
}

/// KIP-394 two-step join; returns the member id and the pending join.
fn join_new(
    g: &mut Group,
    now: Instant,
    c: &RebalanceConfig,
) -> (String, tokio::sync::oneshot::Receiver<Result<JoinResult, GroupError>>) {
    let Err(GroupError::MemberIdRequired(id)) = ready(g.join(params("", None, &["range"]), now, c)) else {
        panic!("first join must ask for a member id")
    };
    let rx = wait(g.join(params(&id, None, &["range"]), now, c));
    (id, rx)
}

#[test]
fn two_members_form_a_generation_and_each_gets_its_assignment() {
    let c = cfg(3000);
    let t0 = Instant::now();
    let mut g = Group::new("g");
    let (a, mut ja) = join_new(&mut g, t0, &c);
    let (b, mut jb) = join_new(&mut g, t0 + Duration::from_millis(100), &c);
    assert_eq!(g.state, GroupState::PreparingRebalance);
    // The initial delay holds the join phase open.
    g.tick(t0 + Duration::from_millis(2000));
    assert!(matches!(ja.try_recv(), Err(TryRecvError::Empty)));
    g.tick(t0 + Duration::from_millis(3200));
    let (ra, rb) = (done(&mut ja).unwrap(), done(&mut jb).unwrap());
    assert_eq!(g.state, GroupState::CompletingRebalance);
    assert_eq!((ra.generation_id, rb.generation_id), (1, 1));
    assert_eq!(ra.leader_id, a);
    assert_eq!(ra.members.len(), 2, "the leader sees every member");
    assert!(rb.members.is_empty());
    assert_eq!(ra.protocol_name.as_deref(), Some("range"));

    // The follower syncs first and waits for the leader.
    let now = t0 + Duration::from_secs(4);
    let mut sb = wait(g.sync(&b, None, 1, vec![], now));
    assert!(matches!(sb.try_recv(), Err(TryRecvError::Empty)));
    let mut sa = wait(g.sync(&a, None, 1, vec![(a.clone(), Bytes::from("A")), (b.clone(), Bytes::from("B"))], now));
    assert_eq!(done(&mut sa).unwrap().assignment, Bytes::from("A"));
    assert_eq!(done(&mut sb).unwrap().assignment, Bytes::from("B"));
    assert_eq!(g.state, GroupState::Stable);
    assert_eq!(g.heartbeat(&b, None, 1, now), Ok(()));
    assert_eq!(g.heartbeat(&b, None, 0, now), Err(GroupError::IllegalGeneration));
    assert_eq!(g.heartbeat("nobody", None, 1, now), Err(GroupError::UnknownMemberId));
}

/// Two members in one generation. The initial delay gathers them; without one, the first
/// member would complete a generation on its own (as in Kafka with a zero delay).
fn stable_pair(_c: &RebalanceConfig, t0: Instant) -> (Group, String, String) {
    let forming = cfg(100);
    let mut g = Group::new("g");
    let (a, mut ja) = join_new(&mut g, t0, &forming);
    let (b, mut jb) = join_new(&mut g, t0, &forming);
    g.tick(t0 + Duration::from_millis(100));
    done(&mut ja).unwrap();
    done(&mut jb).unwrap();
    let _ = g.sync(&b, None, 1, vec![], t0);
    let _ = g.sync(&a, None, 1, vec![(a.clone(), Bytes::from("A")), (b.clone(), Bytes::from("B"))], t0);
    assert_eq!(g.state, GroupState::Stable);
    (g, a, b)
}

#[test]
fn an_expired_session_rebalances_the_rest() {
    let c = cfg(0);
    let t0 = Instant::now();
    let (mut g, a, b) = stable_pair(&c, t0);
    // a keeps heartbeating, b goes silent.
    let t1 = t0 + Duration::from_secs(8);
    g.heartbeat(&a, None, 1, t1).unwrap();
    g.tick(t0 + Duration::from_secs(11));
    assert_eq!(g.state, GroupState::PreparingRebalance);
    assert!(!g.members.contains_key(&b));
    assert_eq!(g.heartbeat(&a, None, 1, t1), Err(GroupError::RebalanceInProgress));
    let mut ja = wait(g.join(params(&a, None, &["range"]), t1, &c));
    let r = done(&mut ja).unwrap();
    assert_eq!((r.generation_id, r.leader_id.as_str(), r.members.len()), (2, a.as_str(), 1));
}

#[test]
fn members_that_do_not_rejoin_are_dropped_at_the_rebalance_deadline() {
    let c = cfg(0);
    let t0 = Instant::now();
    let (mut g, a, b) = stable_pair(&c, t0);
    // A third member triggers a rebalance; b never rejoins, but heartbeats (a consumer busy
    // past max.poll.interval.ms).
    let (_, mut jc) = join_new(&mut g, t0, &c);
    let mut ja = wait(g.join(params(&a, None, &["range"]), t0, &c));
    for s in [8, 16, 24] {
        assert_eq!(g.heartbeat(&b, None, 1, t0 + Duration::from_secs(s)), Err(GroupError::RebalanceInProgress));
        g.tick(t0 + Duration::from_secs(s));
    }
    g.tick(t0 + Duration::from_secs(29));
    assert!(matches!(ja.try_recv(), Err(TryRecvError::Empty)));
    g.tick(t0 + Duration::from_secs(31));
    assert_eq!(done(&mut ja).unwrap().generation_id, 2);
    assert_eq!(done(&mut jc).unwrap().generation_id, 2);
    assert!(!g.members.contains_key(&b));
}

#[test]
fn a_silent_member_is_dropped_at_its_session_timeout_during_a_rebalance() {
    let c = cfg(0);
    let t0 = Instant::now();
    let (mut g, a, b) = stable_pair(&c, t0);
    // A third member triggers a rebalance; a rejoins, b went away without leaving. The join
    // completes once b's session (10 s) runs out, not at the rebalance deadline (30 s).
    let (_, mut jc) = join_new(&mut g, t0, &c);
    let mut ja = wait(g.join(params(&a, None, &["range"]), t0, &c));
    g.tick(t0 + Duration::from_millis(9_900));
    assert!(matches!(ja.try_recv(), Err(TryRecvError::Empty)));
    g.tick(t0 + Duration::from_millis(10_100));
    assert_eq!(done(&mut ja).unwrap().generation_id, 2);
    assert_eq!(done(&mut jc).unwrap().members.len(), 0, "only the leader gets the members");
    assert!(!g.members.contains_key(&b));
    assert_eq!(g.members.len(), 2);
}

#[test]
fn leaving_rebalances_and_the_last_member_leaves_an_empty_group() {
    let c = cfg(0);
    let t0 = Instant::now();
    let (mut g, a, b) = stable_pair(&c, t0);
    assert_eq!(g.leave(&[(b.clone(), None)], t0), vec![Ok(b.clone())]);
    assert_eq!(g.state, GroupState::PreparingRebalance);
    assert_eq!(g.leave(&[(a.clone(), None)], t0), vec![Ok(a.clone())]);
    assert_eq!(g.state, GroupState::Empty);
    assert_eq!(g.leave(&[(a.clone(), None)], t0), vec![Err(GroupError::UnknownMemberId)]);
    // Simple (generation -1) commits are for groups without members only.
    assert_eq!(g.check_commit("", None, -1), Ok(()));
}

#[test]
fn commits_are_checked_against_member_and_generation() {
    let c = cfg(0);
    let t0 = Instant::now();
    let (g, a, _) = stable_pair(&c, t0);
    assert_eq!(g.check_commit(&a, None, 1), Ok(()));
    assert_eq!(g.check_commit(&a, None, 7), Err(GroupError::IllegalGeneration));
    assert_eq!(g.check_commit("x", None, 1), Err(GroupError::UnknownMemberId));
    assert_eq!(g.check_commit("", None, -1), Err(GroupError::UnknownMemberId));
}

#[test]
fn a_static_member_rejoins_without_a_rebalance_and_fences_its_old_self() {
    let c = cfg(100);
    let t0 = Instant::now();
    let mut g = Group::new("g");
    // Static members skip MEMBER_ID_REQUIRED.
    let mut j1 = wait(g.join(params("", Some("i1"), &["range"]), t0, &c));
    let mut j2 = wait(g.join(params("", Some("i2"), &["range"]), t0, &c));
    g.tick(t0 + Duration::from_millis(100));
    let r1 = done(&mut j1).unwrap();
    let r2 = done(&mut j2).unwrap();
    let (leader, follower) = (r1.member_id.clone(), r2.member_id.clone());
    let _ = g.sync(&follower, Some("i2"), 1, vec![], t0);
    let _ = g.sync(&leader, Some("i1"), 1, vec![(follower.clone(), Bytes::from("F"))], t0);
    assert_eq!(g.state, GroupState::Stable);

    // The follower restarts: new member id, same generation, same assignment, no rebalance.
    let r = ready(g.join(params("", Some("i2"), &["range"]), t0, &c)).unwrap();
    assert_eq!(g.state, GroupState::Stable);
    assert_eq!(r.generation_id, 1);
    assert_ne!(r.member_id, follower);
    let synced = ready(g.sync(&r.member_id, Some("i2"), 1, vec![], t0)).unwrap();
    assert_eq!(synced.assignment, Bytes::from("F"));
    // The old incarnation is fenced.
    assert_eq!(g.heartbeat(&follower, Some("i2"), 1, t0), Err(GroupError::FencedInstanceId));
}

#[test]
fn protocols_must_match_the_group() {
    let c = cfg(0);
    let t0 = Instant::now();
    let (mut g, _, _) = stable_pair(&c, t0);
    let mut other = params("", None, &["roundrobin"]);
    other.require_known_member_id = false;
    assert_eq!(ready(g.join(other, t0, &c)).unwrap_err(), GroupError::InconsistentGroupProtocol);
    let mut wrong_type = params("", None, &["range"]);
    wrong_type.protocol_type = "connect".into();
    assert_eq!(ready(g.join(wrong_type, t0, &c)).unwrap_err(), GroupError::InconsistentGroupProtocol);
    let mut short = params("", None, &["range"]);
    short.session_timeout = Duration::from_millis(1);
    assert_eq!(ready(g.join(short, t0, &c)).unwrap_err(), GroupError::InvalidSessionTimeout);
}

#[test]
fn the_most_preferred_common_protocol_wins() {
    let c = cfg(100);
    let t0 = Instant::now();
    let mut g = Group::new("g");
    let mut p1 = params("", None, &["cooperative-sticky", "range"]);
    p1.require_known_member_id = false;
    let mut p2 = params("", None, &["range", "cooperative-sticky"]);
    p2.require_known_member_id = false;
    let mut p3 = params("", None, &["cooperative-sticky"]);
    p3.require_known_member_id = false;
    let mut j1 = wait(g.join(p1, t0, &c));
    let _j2 = wait(g.join(p2, t0, &c));
    let _j3 = wait(g.join(p3, t0, &c));
    g.tick(t0 + Duration::from_millis(100));
    assert_eq!(done(&mut j1).unwrap().protocol_name.as_deref(), Some("cooperative-sticky"));
}
