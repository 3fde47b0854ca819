//! Property tests of the shard controller's rebalancing.
//!
//! Goal: after any sequence of Join, Leave and Move, every configuration is valid, balanced
//! within one shard after each Join or Leave, places no shard on a departed group, and moves
//! exactly as many shards as the lower bound, computed here independently by brute force over
//! every balanced target. A second replica behind the exactly-once wrapper, fed every command
//! twice, ends with the identical history. Method: proptest generates the command sequences.

use proptest::prelude::*;
use raft_core::{LogIndex, NodeId, StateMachine};
use std::collections::BTreeSet;
use workloads::rsm::{App, Deduplicated, Envelope};
use workloads::shardctrler::{
    is_balanced, moved_shards, CtrlerCommand, Gid, ShardCtrler, ShardId, NSHARDS,
};
use workloads::{ClientId, Seq};

/// The fewest shards any balanced assignment over `gids` must move away from `before`,
/// by trying every choice of which groups get the larger share.
fn lower_bound(before: &[Gid; NSHARDS], gids: &BTreeSet<Gid>) -> usize {
    if gids.is_empty() {
        return before.iter().filter(|&&gid| gid != Gid::NONE).count();
    }
    let list: Vec<Gid> = gids.iter().copied().collect();
    let count = |gid: Gid| before.iter().filter(|&&g| g == gid).count();
    let (base, extra) = (NSHARDS / list.len(), NSHARDS % list.len());
    let mut best_kept = 0;
    for mask in 0u32..(1 << list.len()) {
        if mask.count_ones() as usize != extra {
            continue;
        }
        let kept: usize = list
            .iter()
            .enumerate()
            .map(|(i, &gid)| count(gid).min(base + usize::from(mask & (1 << i) != 0)))
            .sum();
        best_kept = best_kept.max(kept);
    }
    NSHARDS - best_kept
}

/// A raw step: kind and a list of small numbers, interpreted against the current state.
fn steps() -> impl Strategy<Value = Vec<(u8, Vec<u32>)>> {
    prop::collection::vec((0u8..10, prop::collection::vec(1u32..=12, 1..4)), 1..25)
}

fn to_command(kind: u8, numbers: &[u32], current: &BTreeSet<Gid>) -> CtrlerCommand {
    let gids: BTreeSet<Gid> = numbers.iter().map(|&n| Gid(n)).collect();
    match kind {
        0..=4 => CtrlerCommand::Join {
            groups: gids
                .iter()
                .map(|&gid| (gid, vec![NodeId(u64::from(gid.0))]))
                .collect(),
        },
        5..=8 => CtrlerCommand::Leave {
            gids: gids.into_iter().collect(),
        },
        _ => CtrlerCommand::Move {
            shard: ShardId((numbers[0] % NSHARDS as u32) as u8),
            gid: current.iter().next().copied().unwrap_or(Gid(numbers[0])),
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn join_and_leave_keep_balance_and_move_the_minimum(raw in steps()) {
        let mut ctrler = ShardCtrler::new();
        let mut replica = Deduplicated::new(ShardCtrler::new());
        let mut index = LogIndex(0);
        for (seq, (kind, numbers)) in raw.iter().enumerate() {
            let before = ctrler.clone();
            let gids_before: BTreeSet<Gid> = before.latest().groups.keys().copied().collect();
            let command = to_command(*kind, numbers, &gids_before);
            let result = ctrler.execute(command.clone());
            // The replicated path: the same command, committed twice (a retry).
            let envelope = Envelope { client: ClientId(1), seq: Seq(seq as u64 + 1), command };
            let bytes = envelope.encode().unwrap();
            for _ in 0..2 {
                index = index.next();
                replica.apply(index, &bytes);
            }
            if result.is_err() {
                prop_assert_eq!(&ctrler, &before, "a refused command changed the state");
                continue;
            }
            let latest = ctrler.latest();
            prop_assert_eq!(latest.validate(), Ok(()));
            if *kind >= 9 {
                // A Move assigns without rebalancing; balance is not expected after it.
                continue;
            }
            let gids: BTreeSet<Gid> = latest.groups.keys().copied().collect();
            prop_assert!(is_balanced(&latest.shards, &gids), "unbalanced: {:?}", latest.shards);
            for gid in gids_before.difference(&gids) {
                prop_assert!(!latest.shards.contains(gid), "shard left on departed {:?}", gid);
            }
            let moved = moved_shards(&before.latest().shards, &latest.shards);
            prop_assert_eq!(moved, lower_bound(&before.latest().shards, &gids));
        }
        prop_assert_eq!(replica.app().configs(), ctrler.configs());
        prop_assert_eq!(App::snapshot(replica.app()), App::snapshot(&ctrler));
    }
}

/// The brute-force bound itself is checked on a case worked out by hand, so a wrong bound
/// cannot make the property vacuous.
#[test]
fn lower_bound_matches_hand_computed_cases() {
    let five_five: [Gid; NSHARDS] = [1, 1, 1, 1, 1, 2, 2, 2, 2, 2].map(Gid);
    let three: BTreeSet<Gid> = [1, 2, 3].map(Gid).into();
    assert_eq!(lower_bound(&five_five, &three), 3);
    let only_two: BTreeSet<Gid> = [2].map(Gid).into();
    assert_eq!(lower_bound(&five_five, &only_two), 5);
    assert_eq!(lower_bound(&five_five, &BTreeSet::new()), 10);
    let skewed: [Gid; NSHARDS] = [1, 1, 1, 1, 1, 1, 1, 1, 2, 2].map(Gid);
    let two: BTreeSet<Gid> = [1, 2].map(Gid).into();
    assert_eq!(lower_bound(&skewed, &two), 3);
}
