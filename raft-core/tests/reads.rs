//! Linearizable reads (ReadIndex, Raft thesis §6.4) and the proposal API.

mod common;

use common::Cluster;
use raft_core::{Error, Event, LogIndex, NodeId, ReadId};

fn read_ready(c: &Cluster, node: NodeId, id: ReadId) -> Option<LogIndex> {
    c.events.get(&node)?.iter().find_map(|e| match e {
        Event::ReadReady { id: r, index } if *r == id => Some(*index),
        _ => None,
    })
}

fn read_failed(c: &Cluster, node: NodeId, id: ReadId) -> bool {
    c.events.get(&node).is_some_and(|events| {
        events
            .iter()
            .any(|e| matches!(e, Event::ReadFailed { id: r, .. } if *r == id))
    })
}

/// Goal: a read on the leader completes after a heartbeat round, at an index covering every
/// write acknowledged before it.
#[test]
fn leader_read_sees_acknowledged_writes() {
    let mut c = Cluster::new(3, 11);
    let leader = c.elect();
    c.propose(b"w1").unwrap();
    c.deliver_all();
    let commit = c.node(leader).status().commit;
    let id = c.with_node(leader, |n| n.read_barrier()).unwrap();
    assert_eq!(
        read_ready(&c, leader, id),
        None,
        "needs a heartbeat round first"
    );
    c.deliver_all();
    let index = read_ready(&c, leader, id).expect("read confirmed");
    assert!(index >= commit);
    assert!(c.node(leader).state_machine().contains(b"w1"));
}

/// Goal: a follower forwards the read to the leader and serves it once it has applied the
/// returned index, so it sees the latest acknowledged write.
#[test]
fn follower_read_is_forwarded_and_waits_for_apply() {
    let mut c = Cluster::new(3, 12);
    let leader = c.elect();
    let follower = c.ids.iter().copied().find(|id| *id != leader).unwrap();
    c.propose(b"w1").unwrap();
    c.deliver_all();
    let id = c.with_node(follower, |n| n.read_barrier()).unwrap();
    c.deliver_all();
    c.run_ticks(2);
    let index = read_ready(&c, follower, id).expect("read confirmed");
    assert!(c.node(follower).status().applied >= index);
    assert!(c.node(follower).state_machine().contains(b"w1"));
}

/// Goal: a deposed leader that has not noticed yet cannot serve a read (no heartbeat quorum),
/// so it never returns data older than a write the new leader acknowledged.
#[test]
fn stale_leader_cannot_serve_reads() {
    let (mut c, old, id) = stale_leader_read(false);
    assert_eq!(read_ready(&c, old, id), None);
    // Without CheckQuorum the stale leader does not step down, but the read times out.
    c.run_ticks(50);
    assert_eq!(read_ready(&c, old, id), None);
    assert!(
        read_failed(&c, old, id),
        "the unconfirmed read fails after its deadline"
    );
}

/// With the planted `read_without_read_index` bug the same stale leader answers at once from
/// stale state: the previous test would catch it.
#[test]
fn planted_bug_serves_stale_reads() {
    let (c, old, id) = stale_leader_read(true);
    assert!(
        read_ready(&c, old, id).is_some(),
        "the bug answers without a quorum"
    );
    assert!(
        !c.node(old).state_machine().contains(b"new"),
        "and the answer is stale"
    );
}

fn stale_leader_read(bug: bool) -> (Cluster, NodeId, ReadId) {
    let mut c = Cluster::with_config(3, 13, |config| {
        config.check_quorum = false;
        config.bugs.read_without_read_index = bug;
    });
    let old = c.elect();
    c.isolate(old);
    loop {
        c.run_ticks(1);
        if c.leader().is_some_and(|l| l != old) {
            break;
        }
    }
    c.propose(b"new").unwrap();
    c.run_ticks(2);
    let id = c.with_node(old, |n| n.read_barrier()).unwrap();
    c.run_ticks(5);
    (c, old, id)
}

/// Goal: proposals on a follower fail with a hint naming the leader; proposals on the leader
/// resolve with their index and term.
#[test]
fn proposals_resolve_or_name_the_leader() {
    let mut c = Cluster::new(3, 14);
    let leader = c.elect();
    let follower = c.ids.iter().copied().find(|id| *id != leader).unwrap();
    let err = c
        .with_node(follower, |n| n.propose(b"x".to_vec()))
        .unwrap_err();
    assert_eq!(err, Error::NotLeader { hint: Some(leader) });
    let huge = vec![0; raft_core::PROPOSAL_BYTES_MAX + 1];
    let err = c.with_node(leader, |n| n.propose(huge)).unwrap_err();
    assert!(matches!(err, Error::ProposalTooLarge { .. }), "{err}");
    let id = c.with_node(leader, |n| n.propose(b"y".to_vec())).unwrap();
    c.deliver_all();
    let committed = c.events[&leader].iter().find_map(|e| match e {
        Event::Committed { id: p, index, term } if *p == id => Some((*index, *term)),
        _ => None,
    });
    let (index, term) = committed.expect("proposal committed");
    assert_eq!(c.node(follower).entry_term(index), Some(term));
}

/// Goal: with no leader known, a read barrier fails at once with `NotLeader`.
#[test]
fn read_without_any_leader_fails_fast() {
    let mut c = Cluster::new(3, 15);
    let err = c.with_node(NodeId(1), |n| n.read_barrier()).unwrap_err();
    assert_eq!(err, Error::NotLeader { hint: None });
}

/// Goal: leader changes are reported as events on every node.
#[test]
fn leader_changes_are_reported() {
    let mut c = Cluster::new(3, 16);
    let leader = c.elect();
    for id in c.ids.clone() {
        let seen = c.events[&id]
            .iter()
            .any(|e| matches!(e, Event::LeaderChanged { leader: Some(l), .. } if *l == leader));
        assert!(seen, "node {id} reported the leader");
    }
}

/// Goal: a reply to a read that a follower forwarded before it crashed cannot resolve a read
/// of its next incarnation, although both are that replica's read number 1: the old reply
/// carries an index from before writes acknowledged since, so serving at it is a stale read.
/// Method: the follower forwards a read; hold the leader's answer; crash and restart the
/// follower; once it knows the leader again, cut the leader's messages to it, commit `w2`
/// through the third replica, let the follower forward a new read and hand it the held answer.
#[test]
fn a_reply_meant_for_the_previous_incarnation_is_dropped() {
    let mut c = Cluster::new(3, 14);
    let leader = c.elect();
    let follower = c.ids.iter().copied().find(|id| *id != leader).unwrap();
    c.propose(b"w1").unwrap();
    c.deliver_all();
    let before_crash = c.with_node(follower, |n| n.read_barrier()).unwrap();
    let is_answer = |m: &raft_core::Message| {
        m.to == follower && matches!(m.body, raft_core::MessageBody::ReadIndexResponse { .. })
    };
    let mut held = None;
    while held.is_none() {
        match c.queue.iter().position(is_answer) {
            Some(at) => held = Some(c.queue.remove(at)),
            None => assert!(c.deliver_one(), "the leader answers the read"),
        }
    }
    let held = held.unwrap();
    assert_eq!(read_ready(&c, follower, before_crash), None);
    c.crash(follower, raft_core::CrashMode::KeepUnsynced);
    c.start(follower).unwrap();
    for _ in 0..100 {
        if c.node(follower).status().leader == Some(leader) {
            break;
        }
        c.run_ticks(1);
    }
    assert_eq!(c.node(follower).status().leader, Some(leader));
    c.cut.insert((leader, follower));
    c.propose(b"w2").unwrap();
    c.deliver_all();
    let w2_index = c.node(leader).status().commit;
    assert!(!c.node(follower).state_machine().contains(b"w2"));
    let after_restart = c.with_node(follower, |n| n.read_barrier()).unwrap();
    assert_eq!(
        after_restart, before_crash,
        "read ids restart with the replica"
    );
    c.with_node(follower, |n| n.receive(held)).unwrap();
    if let Some(index) = read_ready(&c, follower, after_restart) {
        assert!(
            index >= w2_index,
            "stale read: served at {index} although {w2_index} was committed before the read"
        );
    }
    c.heal();
    c.run_ticks(10);
    let index = read_ready(&c, follower, after_restart).expect("read confirmed after healing");
    assert!(index >= w2_index);
    assert!(c.node(follower).state_machine().contains(b"w2"));
}
