//! Flow control under reordering: a follower far behind catches up without the leader
//! resending its whole pipeline for every append that arrives out of order.

mod common;

use common::Cluster;

/// Goal: a lagging follower catches up without a flood when every message can overtake every
/// other. Each append that overtook an earlier one used to make the leader restart the
/// pipeline and resend its whole window (up to 256 appends): about 150,000 messages for the
/// 200 entries here. Giving the appends in flight two ticks to fill the gap brought that to
/// about 16,000, since the follower still forgot every append that arrived ahead of a gap.
/// Now the follower keeps those (its reorder buffer) and takes them once the gap fills:
/// about 450.
/// Method: one entry per append, isolate a follower while 200 entries commit, heal, turn on
/// full reordering and count deliveries until it has applied them all.
#[test]
fn lagging_follower_catches_up_under_reordering_without_a_flood() {
    let mut c = Cluster::with_config(3, 91, |config| {
        config.max_entries_per_append = 1;
    });
    let leader = c.elect();
    let lagging = c.ids.iter().copied().find(|id| *id != leader).unwrap();
    c.isolate(lagging);
    for i in 0..200u32 {
        c.propose(&i.to_le_bytes()).unwrap();
        c.deliver_all();
    }
    c.run_ticks(2);
    c.heal();
    c.reorder = true;
    let target = c.node(leader).status().commit;
    let mut delivered = 0u64;
    for _ in 0..500 {
        if c.node(lagging).status().applied >= target {
            break;
        }
        c.tick();
        while c.deliver_one() {
            delivered += 1;
        }
    }
    assert!(
        c.node(lagging).status().applied >= target,
        "{lagging} did not catch up"
    );
    assert!(
        delivered < 2_000,
        "{delivered} messages to catch up 200 entries"
    );
}
