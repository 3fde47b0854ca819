//! Leadership transfer (Raft thesis §3.10) with TimeoutNow, and leader-change notifications.

mod common;

use common::Cluster;
use raft_core::{Error, Event, MessageBody, NodeId, Role};

fn follower_of(c: &Cluster, leader: NodeId) -> NodeId {
    c.ids.iter().copied().find(|p| *p != leader).unwrap()
}

fn last_leader_event(c: &Cluster, node: NodeId) -> Option<Option<NodeId>> {
    c.events.get(&node)?.iter().rev().find_map(|e| match e {
        Event::LeaderChanged { leader, .. } => Some(*leader),
        _ => None,
    })
}

/// Goal: with PreVote and CheckQuorum on (the defaults), a transfer makes the target leader in
/// the next term without waiting for any election timeout, and every replica reports the new
/// leader through `Event::LeaderChanged`. Method: transfer, deliver messages only (no ticks).
#[test]
fn transfer_elects_the_target_without_a_timeout() {
    let mut c = Cluster::new(3, 51);
    let old = c.elect();
    let target = follower_of(&c, old);
    let term = c.node(old).status().term;
    c.with_node(old, |n| n.transfer_leadership(target))
        .expect("leader accepts the transfer");
    c.deliver_all();
    let status = c.node(target).status();
    assert_eq!(status.role, Role::Leader);
    assert_eq!(status.term.0, term.0 + 1);
    assert_eq!(c.node(old).status().role, Role::Follower);
    for id in c.ids.clone() {
        assert_eq!(last_leader_event(&c, id), Some(Some(target)), "node {id}");
    }
    c.propose(b"after").expect("new leader accepts proposals");
    c.run_ticks(2);
    assert_eq!(c.applied_count(b"after"), 3);
}

/// Goal: a lagging target is caught up before it is told to campaign, so no acknowledged
/// entry is lost and the target wins. Method: cut the leader's link to the target, commit
/// entries with the third replica, heal, transfer, and check TimeoutNow is only sent once the
/// target has every entry.
#[test]
fn lagging_target_is_caught_up_first() {
    let mut c = Cluster::new(3, 52);
    let old = c.elect();
    let target = follower_of(&c, old);
    c.cut.insert((old, target));
    for i in 0..10u8 {
        c.propose(&[i]).expect("leader accepts");
    }
    c.run_ticks(2);
    assert_eq!(c.applied_count(&[9]), 2, "committed without the target");
    c.heal();
    let timeout_sent_at = std::rc::Rc::new(std::cell::Cell::new(None));
    let seen = timeout_sent_at.clone();
    c.filters.push(Box::new(move |msg| {
        if matches!(msg.body, MessageBody::TimeoutNow) && seen.get().is_none() {
            seen.set(Some(msg.to));
        }
        false
    }));
    let last = c.node(old).status().last_index;
    c.with_node(old, |n| n.transfer_leadership(target)).unwrap();
    assert!(
        c.node(target).status().last_index < last,
        "the target still lags when the transfer starts"
    );
    c.deliver_all();
    assert_eq!(timeout_sent_at.get(), Some(target));
    assert_eq!(c.node(target).status().role, Role::Leader);
    c.run_ticks(2);
    assert_eq!(c.applied_count(&[9]), 3);
    c.check_log_matching();
}

/// Goal: during a transfer the leader refuses proposals with `TransferInProgress` (the
/// documented choice), and afterwards answers `NotLeader` naming the new leader. Method:
/// hold back TimeoutNow so the transfer stays in progress, propose, then release it.
#[test]
fn proposals_during_a_transfer_fail_clearly() {
    let mut c = Cluster::new(3, 53);
    let old = c.elect();
    let target = follower_of(&c, old);
    c.filters
        .push(Box::new(|msg| matches!(msg.body, MessageBody::TimeoutNow)));
    c.with_node(old, |n| n.transfer_leadership(target)).unwrap();
    c.deliver_all();
    assert_eq!(c.node(old).raft().transfer_target(), Some(target));
    let err = c.with_node(old, |n| n.propose(b"x".to_vec())).unwrap_err();
    assert_eq!(err, Error::TransferInProgress { target });
    let err = c
        .with_node(old, |n| n.propose_many(vec![b"y".to_vec()]))
        .unwrap_err();
    assert_eq!(err, Error::TransferInProgress { target });
    // Reads still work during the transfer.
    let read = c.with_node(old, |n| n.read_barrier()).unwrap();
    c.deliver_all();
    assert!(c.events[&old]
        .iter()
        .any(|e| matches!(e, Event::ReadReady { id, .. } if *id == read)));
    // Asking again for the same target is harmless; now let TimeoutNow through.
    c.heal();
    c.with_node(old, |n| n.transfer_leadership(target)).unwrap();
    let msg = timeout_now(old, target, &c);
    c.with_node(target, |n| n.receive(msg)).unwrap();
    c.deliver_all();
    assert_eq!(c.node(target).status().role, Role::Leader);
    let err = c.with_node(old, |n| n.propose(b"z".to_vec())).unwrap_err();
    assert_eq!(err, Error::NotLeader { hint: Some(target) });
    assert_eq!(c.applied_count(b"x"), 0);
}

fn timeout_now(from: NodeId, to: NodeId, c: &Cluster) -> raft_core::Message {
    raft_core::Message {
        from,
        to,
        term: c.node(from).status().term,
        body: MessageBody::TimeoutNow,
    }
}

/// Goal: a transfer to an unreachable target aborts after an election timeout and the leader
/// then accepts proposals again, still in its own term. Method: isolate the target, transfer,
/// tick `election_ticks_min` ticks.
#[test]
fn transfer_to_unreachable_target_aborts_after_election_timeout() {
    let mut c = Cluster::new(3, 54);
    let old = c.elect();
    let target = follower_of(&c, old);
    let term = c.node(old).status().term;
    c.isolate(target);
    c.with_node(old, |n| n.transfer_leadership(target)).unwrap();
    let ticks = c.configs[&old].election_ticks_min;
    c.run_ticks(ticks - 1);
    assert!(c.propose(b"early").is_none(), "still transferring");
    c.run_ticks(1);
    assert_eq!(c.node(old).raft().transfer_target(), None);
    assert_eq!(c.node(old).status().term, term);
    assert_eq!(c.propose(b"later"), Some(old));
    c.run_ticks(2);
    assert_eq!(c.applied_count(b"later"), 2);
}

/// Goal: bad transfer requests give clear errors and change nothing. Method: ask a follower,
/// name an unknown node, and transfer to the leader itself to cancel a transfer.
#[test]
fn invalid_transfer_requests() {
    let mut c = Cluster::new(3, 55);
    let leader = c.elect();
    let follower = follower_of(&c, leader);
    let err = c
        .with_node(follower, |n| n.transfer_leadership(leader))
        .unwrap_err();
    assert_eq!(err, Error::NotLeader { hint: Some(leader) });
    let err = c
        .with_node(leader, |n| n.transfer_leadership(NodeId(9)))
        .unwrap_err();
    assert_eq!(err, Error::UnknownPeer(NodeId(9)));
    c.filters
        .push(Box::new(|msg| matches!(msg.body, MessageBody::TimeoutNow)));
    c.with_node(leader, |n| n.transfer_leadership(follower))
        .unwrap();
    c.with_node(leader, |n| n.transfer_leadership(leader))
        .unwrap();
    assert_eq!(c.node(leader).raft().transfer_target(), None);
    assert_eq!(c.propose(b"ok"), Some(leader));
}
