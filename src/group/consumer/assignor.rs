//! Server-side assignors of `consumer` protocol groups (KIP-848): `uniform` (the default) and
//! `range`, as Kafka 4.1 names them (`UniformAssignor`, `RangeAssignor` in
//! `org.apache.kafka.coordinator.group.assignor`).
//!
//! Both are pure functions from (members with their subscriptions and current target, topic
//! partition counts) to a new target assignment. Both are sticky: a partition stays with the
//! member that has it in the current target as long as that keeps the assignment balanced, so a
//! membership change moves as few partitions as it can.

use std::collections::{BTreeMap, BTreeSet};

/// Topic name -> partitions.
pub type Assignment = BTreeMap<String, BTreeSet<i32>>;

/// What an assignor knows of one member.
#[derive(Debug, Clone)]
pub struct AssignorMember<'a> {
    pub subscribed: &'a BTreeSet<String>,
    /// The member's current target assignment (stickiness).
    pub current: &'a Assignment,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignor {
    Uniform,
    Range,
}

impl Assignor {
    pub const DEFAULT: Assignor = Assignor::Uniform;

    pub fn name(self) -> &'static str {
        match self {
            Self::Uniform => "uniform",
            Self::Range => "range",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Uniform, Self::Range].into_iter().find(|a| a.name() == name)
    }

    /// The new target: one entry per member (possibly empty). `partitions` gives the partition
    /// count of every subscribed topic that exists; subscriptions to other topics are ignored.
    pub fn assign(
        self,
        members: &BTreeMap<String, AssignorMember<'_>>,
        partitions: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, Assignment> {
        match self {
            Self::Uniform => uniform(members, partitions),
            Self::Range => range(members, partitions),
        }
    }
}

/// Kafka's range assignor: per topic, the members subscribed to it (in member id order) get
/// contiguous ranges, the first `partitions % members` one partition more. Kafka 4.1's version
/// keeps a member's partitions where they fit its quota; ranges make that a no-op for the
/// common case of co-partitioned topics, so plain ranges are computed here.
fn range(
    members: &BTreeMap<String, AssignorMember<'_>>,
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members.keys().map(|m| (m.clone(), Assignment::new())).collect();
    for (topic, &count) in partitions {
        let subscribed: Vec<&String> =
            members.iter().filter(|(_, m)| m.subscribed.contains(topic)).map(|(id, _)| id).collect();
        if subscribed.is_empty() || count <= 0 {
            continue;
        }
        let n = subscribed.len() as i32;
        let (quota, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, id) in subscribed.into_iter().enumerate() {
            let take = quota + i32::from((i as i32) < extra);
            if take > 0 {
                out.entry(id.clone()).or_default().entry(topic.clone()).or_default().extend(next..next + take);
            }
            next += take;
        }
    }
    out
}

/// Kafka's uniform assignor: every member gets as close to the same number of partitions as its
/// subscriptions allow, keeping partitions where they are when that stays balanced.
///
/// One pass covers both of Kafka's builders (homogeneous and heterogeneous subscriptions):
/// keep each member's current partitions up to its fair share, give the free partitions to the
/// least-loaded subscribed member, then move partitions from members that have two or more
/// above another subscribed member until no such pair is left.
fn uniform(
    members: &BTreeMap<String, AssignorMember<'_>>,
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members.keys().map(|m| (m.clone(), Assignment::new())).collect();
    if members.is_empty() {
        return out;
    }
    let all: Vec<(String, i32)> = partitions
        .iter()
        .filter(|(t, _)| members.values().any(|m| m.subscribed.contains(*t)))
        .flat_map(|(t, &n)| (0..n.max(0)).map(move |p| (t.clone(), p)))
        .collect();
    // Fair share if everyone could take everything: a ceiling for stickiness.
    let share = all.len().div_ceil(members.len());
    let mut load: BTreeMap<&String, usize> = members.keys().map(|m| (m, 0)).collect();
    let mut owner: BTreeMap<(String, i32), String> = BTreeMap::new();
    // 1. Stickiness.
    for (id, m) in members {
        for (topic, parts) in m.current {
            if !m.subscribed.contains(topic) {
                continue;
            }
            let count = partitions.get(topic).copied().unwrap_or(0);
            for &p in parts {
                if p < count && load[id] < share && !owner.contains_key(&(topic.clone(), p)) {
                    owner.insert((topic.clone(), p), id.clone());
                    *load.get_mut(id).expect("every member has a load") += 1;
                }
            }
        }
    }
    // 2. Free partitions to the least-loaded subscribed member (ties: member id order).
    for tp in &all {
        if owner.contains_key(tp) {
            continue;
        }
        let best = members
            .iter()
            .filter(|(_, m)| m.subscribed.contains(&tp.0))
            .min_by_key(|(id, _)| (load[id], *id))
            .map(|(id, _)| id.clone());
        if let Some(id) = best {
            *load.get_mut(&id).expect("every member has a load") += 1;
            owner.insert(tp.clone(), id);
        }
    }
    // 3. Balance: move a partition from a member to a subscribed one with two fewer.
    loop {
        let mut moved = false;
        for tp in &all {
            let Some(from) = owner.get(tp).cloned() else { continue };
            let target = members
                .iter()
                .filter(|(id, m)| **id != from && m.subscribed.contains(&tp.0))
                .min_by_key(|(id, _)| (load[id], *id))
                .map(|(id, _)| id.clone());
            if let Some(to) = target {
                if load[&to] + 1 < load[&from] {
                    *load.get_mut(&from).expect("load") -= 1;
                    *load.get_mut(&to).expect("load") += 1;
                    owner.insert(tp.clone(), to);
                    moved = true;
                }
            }
        }
        if !moved {
            break;
        }
    }
    for ((topic, p), id) in owner {
        out.entry(id).or_default().entry(topic).or_default().insert(p);
    }
    out
}
