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
        migration: MigrationPolicy::Bidirectional,
    }
}

/// A test cluster's topics (name -> id, partitions); `hidden` ones exist but the member may not
/// DESCRIBE them.
#[derive(Debug, Clone, Default)]
struct Cluster {
    topics: BTreeMap<String, (uuid::Uuid, i32)>,
    hidden: BTreeSet<String>,
}

impl Cluster {
    fn with(mut self, name: &str, partitions: i32) -> Self {
        self.create(name, partitions);
        self
    }

    fn create(&mut self, name: &str, partitions: i32) {
        let id = uuid::Uuid::from_u128(self.topics.len() as u128 + 1);
        self.topics.insert(name.to_string(), (id, partitions));
    }
}

impl TopicSource for Cluster {
    fn topic(&self, name: &str) -> Option<(uuid::Uuid, i32)> {
        self.topics.get(name).copied()
    }

    fn describable_topics(&self) -> Vec<String> {
        self.topics.keys().filter(|t| !self.hidden.contains(*t)).cloned().collect()
    }
}

fn topics() -> Cluster {
    Cluster::default().with("t", 6).with("u", 3)
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
    g.heartbeat(p, 1, &topics(), now, &cfg()).expect("join")
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
    g.heartbeat(p, 1, &topics(), now, &cfg())
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
    let e = g.heartbeat(p.clone(), 1, &topics(), now, &cfg()).unwrap_err();
    assert_eq!(e, HeartbeatError::InvalidRequest("RebalanceTimeoutMs must be provided in first request.".into()));
    // Kafka 4.1 (KAFKA-18095): names or a regex must be there, but may be empty.
    let neither = HeartbeatParams { rebalance_timeout_ms: 1000, owned: Some(Assignment::new()), ..p.clone() };
    assert_eq!(
        g.heartbeat(neither.clone(), 1, &topics(), now, &cfg()).unwrap_err(),
        HeartbeatError::InvalidRequest(
            "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.".into()
        )
    );
    let no_names = HeartbeatParams { subscribed_topic_names: Some(Vec::new()), ..neither };
    let r = g.heartbeat(no_names, 1, &topics(), now, &cfg()).expect("an empty subscription joins");
    assert_eq!(r.assignment, Some(Assignment::new()));
    let mut g = ConsumerGroup::new("g");
    // librdkafka sends an empty regex along with topic names: no regex.
    let empty_regex = HeartbeatParams {
        subscribed_topic_regex: Some(String::new()),
        rebalance_timeout_ms: 1000,
        owned: Some(Assignment::new()),
        subscribed_topic_names: Some(vec!["t".into()]),
        ..p.clone()
    };
    assert!(g.heartbeat(empty_regex, 1, &topics(), now, &cfg()).is_ok());
    let mut g = ConsumerGroup::new("g");
    let bad = HeartbeatParams {
        rebalance_timeout_ms: 1000,
        owned: Some(Assignment::new()),
        subscribed_topic_names: Some(vec!["t".into()]),
        server_assignor: Some("sticky".into()),
        ..p.clone()
    };
    assert!(matches!(g.heartbeat(bad, 1, &topics(), now, &cfg()), Err(HeartbeatError::UnsupportedAssignor(_))));
    let no_id = HeartbeatParams { member_id: String::new(), ..p };
    assert_eq!(
        g.heartbeat(no_id, 1, &topics(), now, &cfg()).unwrap_err(),
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
        g.heartbeat(p, 1, &topics(), now, &cfg())
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
    assert_eq!(g.heartbeat(p, 1, &topics(), now, &cfg()).unwrap().member_epoch, LEAVE_STATIC_EPOCH);
    let epoch = g.group_epoch;
    let r = join_static(&mut g, "a2", "i").unwrap();
    assert_eq!(r.assignment.unwrap(), owned, "the same partitions, without a rebalance");
    assert_eq!(g.group_epoch, epoch);
}

/// A member subscribing by regex (and names) with epoch 0.
fn join_regex(
    g: &mut ConsumerGroup,
    cluster: &Cluster,
    id: &str,
    names: Option<&[&str]>,
    regex: &str,
) -> Result<HeartbeatResult, HeartbeatError> {
    let p = HeartbeatParams {
        member_id: id.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 10_000,
        subscribed_topic_names: names.map(|ns| ns.iter().map(|n| n.to_string()).collect()),
        subscribed_topic_regex: Some(regex.into()),
        owned: Some(Assignment::new()),
        ..Default::default()
    };
    g.heartbeat(p, 1, cluster, Instant::now(), &cfg())
}

/// Heartbeats `client` against `cluster` until its answer stops changing what it owns.
fn settle_on(g: &mut ConsumerGroup, cluster: &Cluster, client: &mut Client) {
    for _ in 0..5 {
        let r = beat_on(g, cluster, &client.id, client.epoch, &client.owned, None).expect("heartbeat");
        client.epoch = r.member_epoch;
        if let Some(x) = r.assignment {
            client.owned = x;
        }
    }
}

fn beat_on(
    g: &mut ConsumerGroup,
    cluster: &Cluster,
    id: &str,
    epoch: i32,
    owned: &Assignment,
    regex: Option<&str>,
) -> Result<HeartbeatResult, HeartbeatError> {
    let p = HeartbeatParams {
        member_id: id.into(),
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        subscribed_topic_regex: regex.map(str::to_string),
        owned: Some(owned.clone()),
        ..Default::default()
    };
    g.heartbeat(p, 1, cluster, Instant::now(), &cfg())
}

#[test]
fn a_regex_subscription_follows_topics_created_and_deleted() {
    let mut cluster = Cluster::default().with("orders-eu", 2).with("orders-us", 2).with("payments", 2);
    let mut g = ConsumerGroup::new("g");
    let r = join_regex(&mut g, &cluster, "m1", None, "orders-.*").expect("join");
    let mut m1 = Client { id: "m1".into(), epoch: r.member_epoch, owned: r.assignment.unwrap() };
    assert_eq!(m1.owned, a(&[("orders-eu", &[0, 1]), ("orders-us", &[0, 1])]));
    assert_eq!(g.members["m1"].subscribed_regex.as_deref(), Some("orders-.*"));
    let epoch = g.group_epoch;

    // A matching topic created later: the next heartbeat bumps the group epoch and assigns it;
    // a topic that does not match changes nothing.
    cluster.create("orders-asia", 3);
    cluster.create("payments-eu", 1);
    settle_on(&mut g, &cluster, &mut m1);
    assert_eq!(g.group_epoch, epoch + 1);
    assert_eq!(m1.epoch, epoch + 1);
    assert_eq!(m1.owned, a(&[("orders-asia", &[0, 1, 2]), ("orders-eu", &[0, 1]), ("orders-us", &[0, 1])]));

    // A deleted one is dropped.
    cluster.topics.remove("orders-eu");
    settle_on(&mut g, &cluster, &mut m1);
    assert_eq!(m1.owned, a(&[("orders-asia", &[0, 1, 2]), ("orders-us", &[0, 1])]));
    assert_eq!(g.state(), ConsumerGroupState::Stable);

    // The last member with the regex leaves: the group forgets it.
    beat_on(&mut g, &cluster, "m1", LEAVE_EPOCH, &m1.owned, None).expect("leave");
    assert!(g.resolved_regexes.is_empty(), "{:?}", g.resolved_regexes);
}

#[test]
fn a_regex_matches_whole_topic_names_the_member_may_describe() {
    let mut cluster = Cluster::default()
        .with("orders", 1)
        .with("orders-eu", 1)
        .with("old-orders", 1)
        .with("orders-secret", 1)
        .with("__consumer_offsets", 1);
    cluster.hidden.insert("orders-secret".into());
    let mut g = ConsumerGroup::new("g");
    // RE2/J `matches()`: the whole name, not a part of it.
    let r = join_regex(&mut g, &cluster, "m1", None, "orders").unwrap();
    assert_eq!(r.assignment.unwrap(), a(&[("orders", &[0])]));
    let r = join_regex(&mut g, &cluster, "m2", None, "rders-e").unwrap();
    assert_eq!(r.assignment.unwrap(), Assignment::new());
    assert!(g.resolved_regexes["rders-e"].topics.is_empty());
    // Only what the member may DESCRIBE; internal topics are not left out (as Kafka's).
    let r = join_regex(&mut g, &cluster, "m3", None, ".*s.*").unwrap();
    assert_eq!(
        g.resolved_regexes[".*s.*"].topics,
        ["__consumer_offsets", "old-orders", "orders", "orders-eu"].map(String::from).into()
    );
    assert!(!r.assignment.unwrap().contains_key("orders-secret"));
}

#[test]
fn names_and_a_regex_are_a_union_and_an_empty_regex_drops_it() {
    let cluster = Cluster::default().with("t", 2).with("orders-eu", 2).with("orders-us", 2);
    let mut g = ConsumerGroup::new("g");
    let r = join_regex(&mut g, &cluster, "m1", Some(&["t"]), "orders-e.").unwrap();
    let mut m1 = Client { id: "m1".into(), epoch: r.member_epoch, owned: r.assignment.unwrap() };
    assert_eq!(m1.owned, a(&[("orders-eu", &[0, 1]), ("t", &[0, 1])]));
    // The member changes its regex: a new group epoch, the new matches.
    let epoch = g.group_epoch;
    let r = beat_on(&mut g, &cluster, "m1", m1.epoch, &m1.owned, Some("orders-u.")).unwrap();
    assert_eq!(g.group_epoch, epoch + 1);
    m1.owned = r.assignment.unwrap();
    settle_on(&mut g, &cluster, &mut m1);
    assert_eq!(m1.owned, a(&[("orders-us", &[0, 1]), ("t", &[0, 1])]));
    assert_eq!(g.resolved_regexes.keys().collect::<Vec<_>>(), ["orders-u."], "the old regex is forgotten");
    // An empty regex is no regex: only the names are left.
    let r = beat_on(&mut g, &cluster, "m1", m1.epoch, &m1.owned, Some("")).unwrap();
    m1.owned = r.assignment.unwrap();
    settle_on(&mut g, &cluster, &mut m1);
    assert_eq!(m1.owned, a(&[("t", &[0, 1])]));
    assert_eq!(g.members["m1"].subscribed_regex, None);
    assert!(g.resolved_regexes.is_empty());
}

#[test]
fn an_invalid_regex_is_refused_and_changes_nothing() {
    let cluster = Cluster::default().with("orders-eu", 2);
    let mut g = ConsumerGroup::new("g");
    let e = join_regex(&mut g, &cluster, "m1", None, "orders-(eu").unwrap_err();
    assert_eq!(
        e,
        HeartbeatError::InvalidRegularExpression(
            "SubscribedTopicRegex `orders-(eu` is not a valid regular expression: unclosed group.".into()
        )
    );
    assert!(g.is_empty(), "a refused join adds no member");
    assert_eq!(g.group_epoch, 0);
    // Valid only once wrapped in the anchoring group: RE2/J refuses it, so do we.
    let e = join_regex(&mut g, &cluster, "m1", None, "orders)|(eu").unwrap_err();
    assert!(matches!(e, HeartbeatError::InvalidRegularExpression(ref m) if m.contains("unopened group")), "{e:?}");
    // A member of the group changing to an invalid regex keeps its subscription.
    let r = join_regex(&mut g, &cluster, "m1", None, "orders-.*").unwrap();
    let owned = r.assignment.unwrap();
    let epoch = g.group_epoch;
    let e = beat_on(&mut g, &cluster, "m1", r.member_epoch, &owned, Some("[orders")).unwrap_err();
    assert!(matches!(e, HeartbeatError::InvalidRegularExpression(_)), "{e:?}");
    assert_eq!(g.members["m1"].subscribed_regex.as_deref(), Some("orders-.*"));
    assert_eq!(g.group_epoch, epoch);
}
