//! Lease reads (`Config::lease_reads`, Raft thesis §6.4.1) and their clock-drift margin.

mod common;

use common::Cluster;
use raft_core::{Bugs, Config, Event, NodeId, ReadId, Role};

fn read_ready(c: &Cluster, node: NodeId, id: ReadId) -> bool {
    c.events.get(&node).is_some_and(|events| {
        events
            .iter()
            .any(|e| matches!(e, Event::ReadReady { id: r, .. } if *r == id))
    })
}

fn lease_config(bugs: Bugs) -> impl Fn(&mut Config) {
    move |config: &mut Config| {
        config.lease_reads = true;
        config.bugs = bugs;
    }
}

/// Goal: lease reads are off by default, need CheckQuorum, and when on, a leader holding a
/// lease serves a read at once, without a heartbeat round. Method: read on the leader and
/// check the answer is there before any message is delivered.
#[test]
fn leader_serves_reads_from_its_lease_without_a_round_trip() {
    let mut config = Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)]);
    assert!(!config.lease_reads, "off by default");
    config.lease_reads = true;
    config.check_quorum = false;
    assert!(config.validate().unwrap_err().0.contains("check_quorum"));

    let mut c = Cluster::with_config(3, 61, lease_config(Bugs::default()));
    let leader = c.elect();
    c.propose(b"w").unwrap();
    c.run_ticks(2);
    let id = c.with_node(leader, |n| n.read_barrier()).unwrap();
    assert!(
        read_ready(&c, leader, id),
        "served from the lease immediately"
    );
    assert!(c.node(leader).state_machine().contains(b"w"));

    // Without the option the same read needs a heartbeat round.
    let mut c = Cluster::new(3, 61);
    let leader = c.elect();
    let id = c.with_node(leader, |n| n.read_barrier()).unwrap();
    assert!(!read_ready(&c, leader, id));
    c.deliver_all();
    assert!(read_ready(&c, leader, id));
}

/// Goal: a leader that lost its quorum stops serving lease reads once the lease runs out, and
/// falls back to ReadIndex (which cannot complete without a quorum). Method: isolate the
/// leader, keep reading each tick; once one read is not served locally, none after it is.
#[test]
fn lease_expires_when_the_quorum_is_gone() {
    let mut c = Cluster::with_config(3, 62, lease_config(Bugs::default()));
    let leader = c.elect();
    c.run_ticks(2);
    c.isolate(leader);
    let mut served = Vec::new();
    for _ in 0..8 {
        c.run_ticks(1);
        let id = c.with_node(leader, |n| n.read_barrier()).unwrap();
        served.push(read_ready(&c, leader, id));
    }
    let first_refused = served.iter().position(|s| !s).expect("the lease ran out");
    assert!(first_refused > 0, "served within the lease: {served:?}");
    assert!(served[first_refused..].iter().all(|s| !s), "{served:?}");
}

/// Outcome of the stale-read scenario: whether the old leader served a read that missed a
/// write the new leader had already committed.
fn stale_read_after_partition(bugs: Bugs) -> bool {
    // Clocks may be off by up to 25 %: node 1, made leader, runs 20 % slow, the others 20 %
    // fast.
    let rates = [-200_000, 200_000, 200_000];
    let mut c = Cluster::with_clocks(3, 63, 250_000, &rates, lease_config(bugs));
    let old = NodeId(1);
    let first = c.elect();
    if first != old {
        c.with_node(first, |n| n.transfer_leadership(old)).unwrap();
        c.deliver_all();
    }
    assert_eq!(c.node(old).status().role, Role::Leader);
    c.run_ticks(3);
    let id = c.with_node(old, |n| n.read_barrier()).unwrap();
    assert!(
        read_ready(&c, old, id),
        "the lease works under skew within the bound"
    );
    // The last heartbeat round was acknowledged; now cut the leader off.
    c.isolate(old);
    let new = c.ids.iter().copied().find(|id| *id != old).unwrap();
    let mut ticks = 0;
    while c.node(new).status().role != Role::Leader {
        c.run_ticks(1);
        c.campaign(new);
        c.deliver_all();
        ticks += 1;
        assert!(ticks < 40, "no new leader");
    }
    // The new leader commits a write; it is acknowledged before the read below begins.
    c.propose(b"acknowledged").expect("new leader accepts");
    c.deliver_all();
    assert!(c.node(new).state_machine().contains(b"acknowledged"));
    let id = c.with_node(old, |n| n.read_barrier()).unwrap();
    c.deliver_all();
    let served = read_ready(&c, old, id);
    served && !c.node(old).state_machine().contains(b"acknowledged")
}

/// Goal: the drift margin is what keeps lease reads linearizable under clock skew, and the
/// planted bug `lease_read_no_drift_margin` (the canary) breaks it. Method: skew the clocks
/// within the declared bound, partition the leader right after a quorum heartbeat, elect a
/// new leader as early as the followers allow, commit a write there, then read on the old
/// leader: with the margin the old lease has run out (no read is served); without it the old
/// leader serves a stale read.
#[test]
fn drift_margin_prevents_stale_lease_reads_and_the_canary_breaks_it() {
    assert!(
        !stale_read_after_partition(Bugs::default()),
        "correct lease served a stale read"
    );
    let bug = Bugs::from_name("lease_read_no_drift_margin").unwrap();
    assert!(
        stale_read_after_partition(bug),
        "the planted bug must produce a stale read"
    );
}

/// Goal: once the leader sends TimeoutNow it never serves lease reads again in its term,
/// even if the transfer is abandoned, since the target's election bypasses the followers'
/// promise to wait. Method: drop the target's vote requests so the transfer fails, wait for
/// the abort, and check that a read needs a heartbeat round again.
#[test]
fn transfer_revokes_the_lease_for_the_term() {
    let mut c = Cluster::with_config(3, 64, lease_config(Bugs::default()));
    let leader = c.elect();
    c.run_ticks(2);
    let target = c.ids.iter().copied().find(|id| *id != leader).unwrap();
    c.filters.push(Box::new(move |msg| {
        msg.from == target && !matches!(msg.body, raft_core::MessageBody::AppendEntriesResponse(_))
    }));
    c.with_node(leader, |n| n.transfer_leadership(target))
        .unwrap();
    c.deliver_all();
    c.heal();
    // The target campaigned in a later term, which its peers will see; keep the old leader
    // in place by isolating the target until the transfer aborts.
    c.isolate(target);
    let ticks = c.configs[&leader].election_ticks_min;
    c.run_ticks(ticks);
    assert_eq!(c.node(leader).status().role, Role::Leader);
    assert_eq!(c.node(leader).raft().transfer_target(), None);
    let id = c.with_node(leader, |n| n.read_barrier()).unwrap();
    assert!(
        !read_ready(&c, leader, id),
        "no lease read after TimeoutNow"
    );
    c.deliver_all();
    assert!(read_ready(&c, leader, id), "ReadIndex still works");
}

fn grants_vote(c: &mut Cluster, voter: NodeId, candidate: NodeId) -> bool {
    let term = raft_core::Term(c.node(voter).status().term.0 + 5);
    let status = c.node(voter).status();
    let body = raft_core::MessageBody::RequestVote {
        pre_vote: false,
        last_log_index: status.last_index,
        last_log_term: c
            .node(voter)
            .entry_term(status.last_index)
            .unwrap_or_default(),
    };
    let msg = raft_core::Message {
        from: candidate,
        to: voter,
        term,
        body,
    };
    c.queue.clear();
    c.with_node(voter, |n| n.receive(msg)).unwrap();
    c.queue.iter().any(|m| {
        m.to == candidate
            && matches!(
                m.body,
                raft_core::MessageBody::RequestVoteResponse { granted: true, .. }
            )
    })
}

/// Goal: with lease reads on, a restarted replica refuses votes for its first election
/// timeout, since before the crash it may have answered a heartbeat that extended a lease;
/// without lease reads it votes at once, as before. Method: crash and restart a follower and
/// send it a vote request for a higher term right away, then again after an election timeout.
#[test]
fn restarted_replica_refuses_votes_for_an_election_timeout() {
    for lease in [true, false] {
        let mut c = Cluster::with_config(3, 65, |config| config.lease_reads = lease);
        let leader = c.elect();
        let mut others = c.ids.iter().copied().filter(|id| *id != leader);
        let (voter, candidate) = (others.next().unwrap(), others.next().unwrap());
        c.crash(voter, raft_core::CrashMode::KeepUnsynced);
        c.isolate(voter);
        c.start(voter).unwrap();
        assert_eq!(
            grants_vote(&mut c, voter, candidate),
            !lease,
            "lease {lease}"
        );
        if lease {
            let ticks = c.configs[&voter].election_ticks_min;
            for _ in 0..ticks {
                c.tick();
                c.queue.clear();
            }
            assert!(grants_vote(&mut c, voter, candidate), "embargo over");
        }
    }
}

/// Goal: a configuration change ends the leader's lease, since the acknowledgements behind
/// it were counted against the old voters; the next quorum heartbeat starts a new one.
/// Method: with a lease held, add a learner, read at once (needs a round trip), then read
/// again after the round (served from the new lease).
#[test]
fn configuration_change_ends_the_lease() {
    let mut c = Cluster::with_config(3, 66, lease_config(Bugs::default()));
    let leader = c.elect();
    c.run_ticks(2);
    c.add_node(NodeId(4));
    c.with_node(leader, |n| {
        n.change_membership(raft_core::MembershipChange::AddLearner(NodeId(4)))
    })
    .unwrap();
    let id = c.with_node(leader, |n| n.read_barrier()).unwrap();
    assert!(
        !read_ready(&c, leader, id),
        "the old lease no longer counts"
    );
    c.run_ticks(2);
    assert!(read_ready(&c, leader, id));
    let id = c.with_node(leader, |n| n.read_barrier()).unwrap();
    assert!(
        read_ready(&c, leader, id),
        "a new lease under the new configuration"
    );
}

/// Goal: a leader whose driver was late to call `on_timer` (a paused process, a long fsync)
/// does not serve a read from a lease that has run out on its clock; the lease is counted in
/// ticks, so the ticks must catch up with the clock first. Method: establish a lease, move
/// time past the election timeout without ticking the leader, then read on it.
#[test]
fn a_late_timer_does_not_stretch_the_lease() {
    let mut c = Cluster::with_config(3, 64, lease_config(Bugs::default()));
    let leader = c.elect();
    c.run_ticks(2);
    let id = c.with_node(leader, |n| n.read_barrier()).unwrap();
    assert!(read_ready(&c, leader, id), "the lease holds");
    let tick = c.configs[&leader].tick_micros;
    let timeout = u64::from(c.configs[&leader].election_ticks_max);
    c.clock.0.set(c.clock.0.get() + 2 * timeout * tick);
    // Catching up may also end the leadership (CheckQuorum); then the read is refused.
    if let Ok(id) = c.with_node(leader, |n| n.read_barrier()) {
        assert!(
            !read_ready(&c, leader, id),
            "served a read from a lease that expired while the leader was not ticked"
        );
    }
    let now = c.clock.0.get();
    assert!(
        c.node(leader).next_deadline().0 > now,
        "the read caught the ticks up with the clock"
    );
}

/// Goal: a read refused because the ticks it ran first ended the replica's leader still hands
/// out what those ticks produced: the campaign's messages leave and the leader change is
/// reported in the same call, not at the next one. Method: let a follower's clock run past its
/// election timeout without calling its timer, then ask it for a read.
#[test]
fn a_refused_read_still_reports_what_its_ticks_did() {
    let mut c = Cluster::with_config(3, 64, lease_config(Bugs::default()));
    let leader = c.elect();
    let follower = c.ids.iter().copied().find(|&id| id != leader).unwrap();
    c.events.clear();
    c.queue.clear();
    let tick = c.configs[&follower].tick_micros;
    c.clock.0.set(c.clock.0.get() + 100 * tick);
    let refused = c.with_node(follower, |n| n.read_barrier());
    assert!(refused.is_err(), "no leader is known once the timeout ran");
    assert_ne!(c.node(follower).status().role, Role::Follower);
    let events = c.events.get(&follower).cloned().unwrap_or_default();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::LeaderChanged { leader: None, .. })),
        "the lost leader is reported: {events:?}"
    );
    assert!(
        c.queue.iter().any(|m| m.from == follower),
        "the campaign's requests left"
    );
}
