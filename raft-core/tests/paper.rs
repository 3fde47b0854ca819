//! Scenario tests that follow the Raft paper section by section, on the in-process network.
//! Each test states its goal; the cluster harness checks election safety, leader completeness
//! and state machine safety after every step, and tests call the log matching check.

mod common;

use common::Cluster;
use raft_core::{Config, CrashMode, Event, LogIndex, Message, MessageBody, NodeId, Role};

fn is_append_with_entries(msg: &Message) -> bool {
    matches!(&msg.body, MessageBody::AppendEntries { entries, .. } if !entries.is_empty())
}

fn is_vote_request(msg: &Message) -> bool {
    matches!(msg.body, MessageBody::RequestVote { .. })
}

/// The paper's basic algorithm with elections only when a test asks for one.
fn manual_elections(config: &mut Config) {
    config.pre_vote = false;
    config.check_quorum = false;
    config.election_ticks_min = 1000;
    config.election_ticks_max = 1001;
}

/// Reference: Raft §5.2. Goal: a cluster elects exactly one leader and every node learns it.
#[test]
fn election_elects_one_leader_that_everyone_follows() {
    let mut c = Cluster::new(3, 1);
    let leader = c.elect();
    let term = c.node(leader).status().term;
    for node in c.nodes.values() {
        assert_eq!(node.status().leader, Some(leader));
        assert_eq!(node.status().term, term);
    }
    assert_eq!(
        c.nodes
            .values()
            .filter(|n| n.status().role == Role::Leader)
            .count(),
        1
    );
}

/// Reference: Raft §5.2, election safety. Goal: with lossy, reordering links and repeated
/// leader crashes there is never more than one leader per term (checked on every step).
#[test]
fn election_safety_under_crashes_and_lossy_links() {
    for seed in 0..4 {
        let mut c = Cluster::new(5, seed);
        c.drop_rate = 0.1;
        c.reorder = true;
        for round in 0..6 {
            let leader = c.elect();
            c.propose(&[round]);
            c.run_ticks(5);
            c.crash(leader, CrashMode::DropUnsynced);
            c.run_ticks(30);
            c.start(leader).expect("restart");
        }
        assert!(c.leaders.len() >= 6, "several terms had leaders");
        c.check_log_matching();
    }
}

/// Reference: Raft §5.3. Goal: proposals reach every state machine in the same order.
#[test]
fn replication_applies_proposals_everywhere_in_order() {
    let mut c = Cluster::new(5, 2);
    c.elect();
    for i in 0..20u8 {
        c.propose(&[i]).expect("leader accepts");
    }
    c.run_ticks(3);
    let expected: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i]).collect();
    for node in c.nodes.values() {
        assert_eq!(node.state_machine().commands, expected);
    }
    c.check_log_matching();
}

/// Reference: Raft §5.3, log matching and fast backtracking. Goal: a follower whose log
/// diverges over many entries from an old term is repaired by the next leader, and the logs
/// match afterwards.
#[test]
fn divergent_follower_log_is_repaired() {
    let mut c = Cluster::with_config(3, 3, manual_elections);
    let (a, b, x) = (NodeId(1), NodeId(2), NodeId(3));
    c.campaign(a);
    c.deliver_all();
    // `a` appends 30 entries nobody else receives.
    c.isolate(a);
    for i in 0..30u8 {
        c.propose(&[100, i]);
    }
    c.deliver_all();
    c.crash(a, CrashMode::KeepUnsynced);
    c.heal();
    c.campaign(b);
    c.deliver_all();
    for i in 0..10u8 {
        c.propose(&[200, i]);
    }
    c.deliver_all();
    c.start(a).unwrap();
    c.run_ticks(3);
    c.with_node(b, |n| n.propose(vec![9])).unwrap();
    c.deliver_all();
    c.run_ticks(2);
    c.check_log_matching();
    assert_eq!(c.node(a).state_machine(), c.node(b).state_machine());
    assert_eq!(c.node(x).state_machine(), c.node(b).state_machine());
    assert!(
        !c.node(a).state_machine().contains(&[100, 0]),
        "uncommitted entries were replaced"
    );
}

/// Reference: Raft §5.4.2, Figure 8. Goal: a leader does not commit an entry from an earlier
/// term just because it is stored on a majority; the entry is later overwritten safely.
#[test]
fn figure8_old_term_entry_is_not_committed_by_counting() {
    let c = figure8_scenario(false);
    assert!(c.violations.is_empty(), "{:?}", c.violations);
    assert_eq!(c.applied_count(b"x"), 0, "x was never committed");
}

/// The same scenario with the planted `figure8_commit` bug must break safety, showing the
/// scenario (and the harness's checkers) really exercise the rule.
#[test]
fn figure8_planted_bug_is_caught() {
    let c = figure8_scenario(true);
    assert!(
        !c.violations.is_empty(),
        "the bug should break leader completeness"
    );
}

fn figure8_scenario(bug: bool) -> Cluster {
    let mut c = Cluster::with_config(5, 4, |config| {
        manual_elections(config);
        config.max_entries_per_append = 1;
        config.bugs.figure8_commit = bug;
    });
    c.strict = false;
    let [s1, s2, s3, s4, s5] = [1, 2, 3, 4, 5].map(NodeId);
    // (a) s1 leads term 2 and replicates `x` to s2 only.
    c.campaign(s1);
    c.deliver_all();
    let x_index = LogIndex(c.node(s1).status().last_index.0 + 1);
    c.filters
        .push(Box::new(move |m| is_append_with_entries(m) && m.to != s2));
    c.propose(b"x");
    c.deliver_all();
    assert_eq!(
        c.node(s2).entry_term(x_index),
        c.node(s1).entry_term(x_index)
    );
    // (b) s1 crashes; s5 is elected by s3, s4 and itself, and keeps its no-op at x's index.
    c.crash(s1, CrashMode::KeepUnsynced);
    c.heal();
    c.filters
        .push(Box::new(move |m| m.from == s5 && is_append_with_entries(m)));
    c.filters
        .push(Box::new(move |m| m.from == s2 && is_vote_request(m)));
    c.campaign(s5);
    c.deliver_all();
    assert_eq!(c.node(s5).status().role, Role::Leader);
    assert_eq!(c.node(s5).status().last_index, x_index);
    // (c) s5 crashes; s1 restarts, leads term 4 and copies `x` (term 2) to s3, but nothing of
    // its own term gets out.
    c.crash(s5, CrashMode::KeepUnsynced);
    c.heal();
    c.start(s1).unwrap();
    let term_before = c.node(s1).status().term;
    c.filters
        .push(Box::new(move |m| m.from != s1 && is_vote_request(m)));
    c.filters.push(Box::new(move |m| {
        if let MessageBody::AppendEntries { entries, .. } = &mut m.body {
            entries.retain(|e| e.term <= term_before); // s1's own-term entries are lost
        }
        false
    }));
    assert!(c.campaign_until_leader(s1));
    assert_eq!(
        c.node(s3).entry_term(x_index),
        c.node(s2).entry_term(x_index)
    );
    if !bug {
        assert!(
            c.node(s1).status().commit < x_index,
            "old-term entry must not commit"
        );
    }
    c.tick();
    c.deliver_all();
    // (d) s1 crashes; s5 restarts and is elected by s2, s3, s4: its entry replaces `x`.
    c.crash(s1, CrashMode::KeepUnsynced);
    c.heal();
    c.start(s5).unwrap();
    c.filters
        .push(Box::new(move |m| m.from != s5 && is_vote_request(m)));
    assert!(c.campaign_until_leader(s5));
    c.heal();
    c.start(s1).unwrap();
    c.run_ticks(3);
    let _ = (s4, s3);
    c
}

/// Reference: Raft §5.1. Goal: a leader cut off from the cluster steps down as soon as it
/// hears of a newer term, and its uncommitted proposal fails rather than committing.
#[test]
fn stale_leader_steps_down_and_its_proposal_fails() {
    let mut c = Cluster::with_config(3, 5, |config| config.check_quorum = false);
    let old = c.elect();
    c.isolate(old);
    let id = c.with_node(old, |n| n.propose(b"lost".to_vec())).unwrap();
    c.deliver_all();
    let new = loop {
        c.run_ticks(1);
        if let Some(l) = c.leader().filter(|l| *l != old) {
            break l;
        }
    };
    c.propose(b"kept").unwrap();
    c.run_ticks(2);
    assert_eq!(
        c.node(old).status().role,
        Role::Leader,
        "isolated leader does not know yet"
    );
    c.heal();
    c.run_ticks(3);
    assert_eq!(c.node(old).status().role, Role::Follower);
    assert_eq!(c.node(old).status().leader, Some(new));
    assert!(c.node(old).state_machine().contains(b"kept"));
    assert!(!c.node(old).state_machine().contains(b"lost"));
    let failed = c.events[&old]
        .iter()
        .any(|e| matches!(e, Event::ProposalFailed { id: f, .. } if *f == id));
    assert!(failed, "the stale proposal is reported as failed");
}

/// Reference: Raft thesis §9.6. Goal: a partitioned node that keeps timing out does not
/// inflate its term with PreVote, so rejoining does not depose the leader.
#[test]
fn pre_vote_stops_term_inflation_of_a_partitioned_node() {
    let mut c = Cluster::new(3, 6);
    let leader = c.elect();
    let term = c.node(leader).status().term;
    let loner = c.ids.iter().copied().find(|id| *id != leader).unwrap();
    c.isolate(loner);
    c.run_ticks(200);
    assert_eq!(
        c.node(loner).status().term,
        term,
        "no term inflation while partitioned"
    );
    c.heal();
    c.run_ticks(20);
    assert_eq!(c.leader(), Some(leader));
    assert_eq!(c.node(leader).status().term, term);
}

/// Without PreVote the same partitioned node inflates its term and deposes the leader on
/// rejoining; this shows the previous test can fail.
#[test]
fn without_pre_vote_a_partitioned_node_inflates_its_term() {
    let mut c = Cluster::with_config(3, 6, |config| {
        config.pre_vote = false;
        config.check_quorum = false;
    });
    let leader = c.elect();
    let term = c.node(leader).status().term;
    let loner = c.ids.iter().copied().find(|id| *id != leader).unwrap();
    c.isolate(loner);
    c.run_ticks(200);
    assert!(c.node(loner).status().term > term);
}

/// Reference: Raft thesis §6.2. Goal: with CheckQuorum a leader that cannot reach a majority
/// steps down within about two election timeouts, failing its pending reads.
#[test]
fn check_quorum_makes_an_isolated_leader_step_down() {
    let mut c = Cluster::new(5, 7);
    let leader = c.elect();
    c.isolate(leader);
    let read = c.with_node(leader, |n| n.read_barrier()).unwrap();
    c.run_ticks(45);
    assert_ne!(c.node(leader).status().role, Role::Leader);
    let failed = c.events[&leader]
        .iter()
        .any(|e| matches!(e, Event::ReadFailed { id, .. } if *id == read));
    assert!(failed, "the unconfirmed read fails");
}

/// Reference: Raft §7. Goal: a follower that missed entries the leader has compacted catches
/// up through a chunked InstallSnapshot, then through normal appends.
#[test]
fn lagging_follower_catches_up_through_install_snapshot() {
    let mut c = Cluster::with_config(3, 8, |config| {
        config.snapshot_threshold_bytes = 4096;
        config.snapshot_chunk_bytes = 512;
    });
    let leader = c.elect();
    let lagger = c.ids.iter().copied().find(|id| *id != leader).unwrap();
    c.crash(lagger, CrashMode::DropUnsynced);
    for i in 0..400u32 {
        c.propose(&i.to_le_bytes());
        if i % 50 == 0 {
            c.run_ticks(1);
        }
    }
    c.run_ticks(2);
    assert!(
        c.node(leader).status().first_index > LogIndex(10),
        "leader compacted its log"
    );
    c.start(lagger).unwrap();
    let chunks = std::rc::Rc::new(std::cell::Cell::new(0));
    let counter = chunks.clone();
    c.filters.push(Box::new(move |m| {
        if matches!(m.body, MessageBody::InstallSnapshot { .. }) {
            counter.set(counter.get() + 1);
        }
        false
    }));
    c.run_ticks(20);
    assert!(chunks.get() > 1, "the snapshot went out in several chunks");
    c.propose(b"after").unwrap();
    c.run_ticks(3);
    assert_eq!(
        c.node(lagger).state_machine().commands,
        c.node(leader).state_machine().commands
    );
    assert!(c.node(lagger).state_machine().contains(b"after"));
    assert!(
        c.node(lagger).status().first_index > LogIndex(1),
        "follower restored from snapshot"
    );
}

/// Reference: Raft §5 (persistent state) and §7. Goal: restarting every node from its WAL
/// (and snapshot) keeps term, vote, log and state machine.
#[test]
fn restart_from_wal_keeps_term_vote_and_log() {
    let mut c = Cluster::with_config(3, 9, |config| config.snapshot_threshold_bytes = 8192);
    let leader = c.elect();
    for i in 0..300u32 {
        c.propose(&i.to_le_bytes());
        c.deliver_all();
    }
    c.run_ticks(2);
    let before: Vec<_> = c
        .nodes
        .values()
        .map(|n| (n.status(), n.raft().hard_state(), n.state_machine().clone()))
        .collect();
    for id in c.ids.clone() {
        c.crash(id, CrashMode::DropUnsynced);
    }
    for id in c.ids.clone() {
        c.start(id).unwrap();
    }
    for (status, hard_state, sm) in before {
        let node = c.node(status.id);
        assert_eq!(node.raft().hard_state().term, hard_state.term);
        assert_eq!(node.raft().hard_state().vote, hard_state.vote);
        assert_eq!(node.status().last_index, status.last_index);
        let restored = &node.state_machine().commands;
        assert!(
            sm.commands.starts_with(restored),
            "state machine rebuilt from snapshot + log"
        );
        assert!(
            restored.len() + 5 >= sm.commands.len(),
            "at most the unsynced commit is lost"
        );
        for i in node.status().first_index.0..=status.last_index.0 {
            assert!(node.entry_term(LogIndex(i)).is_some());
        }
    }
    let _ = leader;
    c.elect();
    c.propose(b"more").unwrap();
    c.run_ticks(2);
    assert_eq!(c.applied_count(b"more"), 3);
}

/// Reference: Raft §5.4.1, leader completeness. Goal: after the leader crashes, the next
/// leader's log holds every entry that was committed (applied anywhere) before.
#[test]
fn leader_completeness_new_leader_holds_every_committed_entry() {
    let mut c = Cluster::new(5, 17);
    let old = c.elect();
    for i in 0..40u8 {
        c.propose(&[i]).unwrap();
    }
    c.deliver_all();
    let committed: Vec<(LogIndex, raft_core::Term)> = c
        .applied
        .iter()
        .map(|(index, (term, _))| (*index, *term))
        .collect();
    assert!(committed.len() >= 40);
    c.crash(old, CrashMode::DropUnsynced);
    let new = loop {
        c.run_ticks(1);
        if let Some(l) = c.stable_leader() {
            break l;
        }
    };
    assert_ne!(new, old);
    for (index, term) in committed {
        assert_eq!(c.node(new).entry_term(index), Some(term), "entry {index}");
    }
}

/// Reference: Raft §5.4.3, state machine safety. Goal: with message loss, duplication and
/// reordering, every state machine applies a prefix of the same command sequence.
#[test]
fn state_machine_safety_under_a_hostile_network() {
    let mut c = Cluster::new(5, 18);
    c.drop_rate = 0.2;
    c.duplicate_rate = 0.2;
    c.reorder = true;
    for round in 0..30u8 {
        c.propose(&[round]);
        c.run_ticks(2);
    }
    c.drop_rate = 0.0;
    c.duplicate_rate = 0.0;
    c.run_ticks(30);
    let longest = c
        .nodes
        .values()
        .map(|n| n.state_machine().commands.clone())
        .max_by_key(Vec::len)
        .unwrap();
    assert!(longest.len() >= 10, "progress despite the faults");
    for node in c.nodes.values() {
        assert!(longest.starts_with(&node.state_machine().commands));
    }
    c.check_log_matching();
}
