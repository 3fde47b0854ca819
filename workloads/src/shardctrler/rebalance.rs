//! The pure rebalancing function: which group serves each shard after groups join or leave.

use super::config::{Gid, NSHARDS};
use std::collections::{BTreeMap, BTreeSet};

/// Assigns every shard to one of `gids`, keeping shard counts within one of each other and
/// moving as few shards as possible. With no group, every shard goes to [`Gid::NONE`].
///
/// The result depends only on the arguments (no hash order, no randomness), so every replica
/// of the controller computes the same configuration from the same log.
///
/// Why the number of moves is minimal: with `n` groups, a balanced assignment gives
/// `NSHARDS / n + 1` shards to exactly `NSHARDS % n` groups and `NSHARDS / n` to the others.
/// A group keeps at most `min(current, target)` of its shards, and shards of departed groups
/// (or unassigned ones) must all move, so the moves are at least
/// `NSHARDS - Σ min(current, target)`. Giving the larger targets to the groups that hold the
/// most shards maximises that sum, and the algorithm then moves exactly the excess of each
/// group plus the orphans: the bound is met.
///
/// # Panics
/// If a postcondition fails (a shard left on a departed group, an unbalanced result): a bug
/// in this function, not in its input.
pub fn rebalance(shards: &[Gid; NSHARDS], gids: &BTreeSet<Gid>) -> [Gid; NSHARDS] {
    assert!(!gids.contains(&Gid::NONE), "gid 0 cannot serve shards");
    if gids.is_empty() {
        return [Gid::NONE; NSHARDS];
    }
    let mut held: BTreeMap<Gid, Vec<usize>> = gids.iter().map(|&gid| (gid, Vec::new())).collect();
    let mut free = Vec::new();
    for (index, gid) in shards.iter().enumerate() {
        match held.get_mut(gid) {
            Some(list) => list.push(index),
            None => free.push(index),
        }
    }
    let targets = targets(&held);
    let mut result = *shards;
    for (gid, list) in &mut held {
        let target = targets[gid];
        if list.len() > target {
            // Keep the lowest-numbered shards; the rest are handed over.
            free.extend(list.drain(target..));
        }
    }
    free.sort_unstable();
    let mut free = free.into_iter();
    for (gid, list) in &mut held {
        while list.len() < targets[gid] {
            let index = free.next().expect("free shards cover every deficit");
            result[index] = *gid;
            list.push(index);
        }
    }
    assert!(free.next().is_none(), "every free shard found a group");
    assert!(
        result.iter().all(|gid| gids.contains(gid)),
        "a shard stayed on a departed group"
    );
    assert!(is_balanced(&result, gids), "rebalance produced {result:?}");
    result
}

/// The number of shards each group should end with: the larger share goes to the groups that
/// already hold the most (ties broken by the smaller gid), which keeps moves minimal.
fn targets(held: &BTreeMap<Gid, Vec<usize>>) -> BTreeMap<Gid, usize> {
    let groups = held.len();
    assert!(groups > 0);
    let base = NSHARDS / groups;
    let extra = NSHARDS % groups;
    let mut order: Vec<(usize, Gid)> = held.iter().map(|(gid, list)| (list.len(), *gid)).collect();
    order.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let targets: BTreeMap<Gid, usize> = order
        .iter()
        .enumerate()
        .map(|(rank, &(_, gid))| (gid, base + usize::from(rank < extra)))
        .collect();
    assert_eq!(targets.values().sum::<usize>(), NSHARDS);
    targets
}

/// Whether every group in `gids` serves `NSHARDS / n` or `NSHARDS / n + 1` shards and no
/// shard is served by a group outside `gids`.
pub fn is_balanced(shards: &[Gid; NSHARDS], gids: &BTreeSet<Gid>) -> bool {
    if gids.is_empty() {
        return shards.iter().all(|&gid| gid == Gid::NONE);
    }
    if !shards.iter().all(|gid| gids.contains(gid)) {
        return false;
    }
    let counts: Vec<usize> = gids
        .iter()
        .map(|gid| shards.iter().filter(|&s| s == gid).count())
        .collect();
    let low = counts.iter().min().copied().unwrap_or(0);
    let high = counts.iter().max().copied().unwrap_or(0);
    high - low <= 1
}

/// The number of shards whose group differs between two assignments.
pub fn moved_shards(before: &[Gid; NSHARDS], after: &[Gid; NSHARDS]) -> usize {
    before.iter().zip(after).filter(|(a, b)| a != b).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gids(list: &[u32]) -> BTreeSet<Gid> {
        list.iter().map(|&g| Gid(g)).collect()
    }

    fn shards(list: [u32; NSHARDS]) -> [Gid; NSHARDS] {
        list.map(Gid)
    }

    #[test]
    fn first_group_takes_everything_and_the_last_leave_empties_it() {
        let none = [Gid::NONE; NSHARDS];
        assert_eq!(rebalance(&none, &gids(&[7])), [Gid(7); NSHARDS]);
        assert_eq!(rebalance(&[Gid(7); NSHARDS], &gids(&[])), none);
    }

    #[test]
    fn a_join_moves_only_what_the_new_group_receives() {
        let before = shards([1, 1, 1, 1, 1, 2, 2, 2, 2, 2]);
        let after = rebalance(&before, &gids(&[1, 2, 3]));
        assert_eq!(after, shards([1, 1, 1, 1, 3, 2, 2, 2, 3, 3]));
        assert_eq!(moved_shards(&before, &after), 3);
    }

    #[test]
    fn a_leave_moves_only_the_departed_groups_shards() {
        let before = shards([1, 1, 1, 1, 3, 2, 2, 2, 3, 3]);
        let after = rebalance(&before, &gids(&[2, 3]));
        assert_eq!(after, shards([2, 2, 3, 3, 3, 2, 2, 2, 3, 3]));
        assert_eq!(moved_shards(&before, &after), 4);
    }

    #[test]
    fn more_groups_than_shards_leaves_some_idle() {
        let all: Vec<u32> = (1..=12).collect();
        let after = rebalance(&[Gid(1); NSHARDS], &gids(&all));
        assert!(is_balanced(&after, &gids(&all)));
        assert_eq!(after[0], Gid(1), "the old owner keeps one shard");
        assert_eq!(moved_shards(&[Gid(1); NSHARDS], &after), NSHARDS - 1);
    }

    #[test]
    fn is_balanced_detects_skew_and_strays() {
        assert!(!is_balanced(
            &shards([1, 1, 1, 1, 1, 1, 1, 2, 2, 2]),
            &gids(&[1, 2])
        ));
        assert!(!is_balanced(
            &shards([1, 1, 1, 1, 1, 2, 2, 2, 2, 9]),
            &gids(&[1, 2])
        ));
        assert!(is_balanced(
            &shards([1, 1, 1, 1, 1, 2, 2, 2, 2, 2]),
            &gids(&[1, 2])
        ));
    }
}
