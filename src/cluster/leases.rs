//! Who leads which partition in shared mode: a plan that spreads the partitions over the live
//! brokers evenly and moves as few as it can. Pure: the store applies the plan in one
//! transaction (bumping each moved partition's leader epoch).
//!
//! Rules: every partition ends with a live leader; brokers lead `floor(n/b)` or `ceil(n/b)`
//! partitions each; a partition whose leader is live and not over its share stays where it
//! is (no data moves in shared mode, but every move costs its clients a NOT_LEADER_OR_FOLLOWER
//! and the new leader a reload). Of the brokers, those already leading the most keep the
//! larger shares, so a joining broker takes a share from every broker and a departing one's
//! partitions are spread over the rest.

use std::collections::BTreeMap;

/// A partition by topic id and index.
pub type PartitionKey = (uuid::Uuid, i32);

/// The leader each partition should have: only partitions that move are returned.
pub fn plan(live: &[i32], leaders: &[(PartitionKey, Option<i32>)]) -> Vec<(PartitionKey, i32)> {
    if live.is_empty() {
        return Vec::new();
    }
    let mut led: BTreeMap<i32, Vec<PartitionKey>> = live.iter().map(|b| (*b, Vec::new())).collect();
    let mut homeless = Vec::new();
    for (key, leader) in leaders {
        match leader.and_then(|l| led.get_mut(&l)) {
            Some(list) => list.push(*key),
            None => homeless.push(*key),
        }
    }
    let n = leaders.len();
    let b = led.len();
    let (base, extra) = (n / b, n % b);
    // The `extra` brokers leading the most (ties: lowest node id) may keep one more.
    let mut by_load: Vec<(i32, usize)> = led.iter().map(|(id, l)| (*id, l.len())).collect();
    by_load.sort_by_key(|(id, load)| (std::cmp::Reverse(*load), *id));
    let quota: BTreeMap<i32, usize> =
        by_load.iter().enumerate().map(|(rank, (id, _))| (*id, base + usize::from(rank < extra))).collect();
    for (id, list) in &mut led {
        list.sort();
        while list.len() > quota[id] {
            homeless.push(list.pop().expect("longer than its quota"));
        }
    }
    homeless.sort();
    let mut moves = Vec::with_capacity(homeless.len());
    let mut homeless = homeless.into_iter();
    for (id, list) in &led {
        for _ in list.len()..quota[id] {
            match homeless.next() {
                Some(key) => moves.push((key, *id)),
                None => return moves,
            }
        }
    }
    moves
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(i: usize) -> PartitionKey {
        (uuid::Uuid::from_u128(1), i as i32)
    }

    fn apply(leaders: &[(PartitionKey, Option<i32>)], moves: &[(PartitionKey, i32)]) -> BTreeMap<PartitionKey, i32> {
        let mut out: BTreeMap<PartitionKey, i32> = leaders.iter().filter_map(|(k, l)| Some((*k, (*l)?))).collect();
        for (k, to) in moves {
            out.insert(*k, *to);
        }
        out
    }

    #[test]
    fn a_joining_broker_takes_a_share_from_the_others_and_nothing_else_moves() {
        let leaders: Vec<_> = (0..12).map(|i| (key(i), Some(1 + (i % 3) as i32))).collect();
        let moves = plan(&[1, 2, 3, 4], &leaders);
        assert_eq!(moves.len(), 3, "one from each of the three: {moves:?}");
        assert!(moves.iter().all(|(_, to)| *to == 4));
        let after = apply(&leaders, &moves);
        for b in 1..=4 {
            assert_eq!(after.values().filter(|l| **l == b).count(), 3);
        }
    }

    #[test]
    fn a_dead_brokers_partitions_are_spread_over_the_rest() {
        let leaders: Vec<_> = (0..12).map(|i| (key(i), Some(1 + (i % 3) as i32))).collect();
        let moves = plan(&[1, 3], &leaders);
        assert_eq!(moves.len(), 4, "only broker 2's four partitions move: {moves:?}");
        let after = apply(&leaders, &moves);
        assert_eq!(after.values().filter(|l| **l == 1).count(), 6);
        assert_eq!(after.values().filter(|l| **l == 3).count(), 6);
        assert!(plan(&[], &leaders).is_empty(), "no live broker: nothing to do");
        assert!(plan(&[1, 3], &apply(&leaders, &moves).into_iter().map(|(k, l)| (k, Some(l))).collect::<Vec<_>>())
            .is_empty());
    }

    proptest! {
        #[test]
        fn plans_are_even_complete_and_stable(
            brokers in proptest::collection::btree_set(1i32..8, 1..6),
            leaders in proptest::collection::vec(proptest::option::of(0i32..9), 0..40),
        ) {
            let live: Vec<i32> = brokers.into_iter().collect();
            let leaders: Vec<_> = leaders.into_iter().enumerate().map(|(i, l)| (key(i), l)).collect();
            let moves = plan(&live, &leaders);
            let after = apply(&leaders, &moves);
            // Every partition has a live leader, loads differ by at most one.
            prop_assert_eq!(after.len(), leaders.len());
            prop_assert!(after.values().all(|l| live.contains(l)));
            let loads: Vec<usize> = live.iter().map(|b| after.values().filter(|l| *l == b).count()).collect();
            prop_assert!(loads.iter().max().unwrap() - loads.iter().min().unwrap() <= 1, "{:?}", loads);
            // A second plan has nothing to do, and no partition moves twice or to where it is.
            let again: Vec<_> = after.iter().map(|(k, l)| (*k, Some(*l))).collect();
            prop_assert!(plan(&live, &again).is_empty());
            prop_assert!(moves.iter().all(|(k, to)| leaders.iter().any(|(k2, l)| k2 == k && *l != Some(*to))));
        }
    }
}
