//! Membership changes with joint consensus (Raft §6, thesis §4.3): learners, promotion,
//! removal and replacement of voters, one change at a time, own-term commit first, removed
//! replicas that cannot disrupt, and configurations in snapshots.

mod common;

use common::Cluster;
use raft_core::{
    Bugs, Config, EntryKind, Error, LogIndex, Membership, MembershipChange, MessageBody, NodeId,
    Role,
};

fn ids(raw: &[u64]) -> Vec<NodeId> {
    raw.iter().copied().map(NodeId).collect()
}

/// Elections only when a test asks for one, and no CheckQuorum or PreVote to hide behind.
fn manual_elections(config: &mut Config) {
    config.pre_vote = false;
    config.check_quorum = false;
    config.election_ticks_min = 1000;
    config.election_ticks_max = 1001;
}

fn change(c: &mut Cluster, leader: NodeId, change: MembershipChange) -> Result<(), Error> {
    c.with_node(leader, |n| n.change_membership(change))
        .map(|_| ())
}

/// True if some configuration between the first and last index of `node`'s log was joint.
fn saw_joint(c: &Cluster, node: NodeId) -> bool {
    let status = c.node(node).status();
    (status.first_index.0..=status.last_index.0)
        .any(|i| c.node(node).raft().membership_at(LogIndex(i)).is_joint())
}

/// Goal: a new replica joins as a learner, catches up, and only then can be promoted; the
/// promotion goes through a joint configuration that the leader ends by itself. Method: add
/// replica 4 while it is cut off (promotion refused), reconnect it, promote, check every
/// replica ends with voters 1..4 and that the new voter can lead.
#[test]
fn learner_catches_up_then_is_promoted_through_joint_consensus() {
    let mut c = Cluster::new(3, 71);
    let leader = c.elect();
    for i in 0..20u8 {
        c.propose(&[i]).unwrap();
    }
    c.run_ticks(2);
    c.add_node(NodeId(4));
    c.isolate(NodeId(4));
    change(&mut c, leader, MembershipChange::AddLearner(NodeId(4))).unwrap();
    c.run_ticks(3);
    let err = change(&mut c, leader, MembershipChange::PromoteLearner(NodeId(4))).unwrap_err();
    assert!(matches!(err, Error::MembershipChange(ref why) if why.contains("caught up")));
    c.heal();
    c.run_ticks(5);
    assert_eq!(c.applied_count(&[19]), 4, "the learner has the log");
    assert_eq!(c.node(NodeId(4)).status().role, Role::Follower);
    change(&mut c, leader, MembershipChange::PromoteLearner(NodeId(4))).unwrap();
    c.run_ticks(5);
    let expected = Membership::new(ids(&[1, 2, 3, 4]));
    for id in c.ids.clone() {
        assert_eq!(c.node(id).membership(), &expected, "node {id}");
    }
    assert!(
        saw_joint(&c, leader),
        "the change went through a joint configuration"
    );
    c.with_node(leader, |n| n.transfer_leadership(NodeId(4)))
        .unwrap();
    c.deliver_all();
    assert_eq!(c.node(NodeId(4)).status().role, Role::Leader);
    c.propose(b"from 4").unwrap();
    c.run_ticks(2);
    assert_eq!(c.applied_count(b"from 4"), 4);
    c.check_log_matching();
}

/// Goal: only one change may be in flight, and the planted bug lifts that rule. Method:
/// propose two changes without delivering anything in between.
#[test]
fn only_one_change_in_flight() {
    for bug in [false, true] {
        let mut c = Cluster::with_config(3, 72, |config| {
            config.bugs.two_config_changes_in_flight = bug;
        });
        let leader = c.elect();
        c.run_ticks(2);
        change(&mut c, leader, MembershipChange::AddLearner(NodeId(4))).unwrap();
        let second = change(&mut c, leader, MembershipChange::AddLearner(NodeId(5)));
        if bug {
            assert!(second.is_ok(), "the planted bug accepts a second change");
        } else {
            let err = second.unwrap_err();
            assert!(matches!(err, Error::MembershipChange(ref why) if why.contains("progress")));
            c.run_ticks(2);
            change(&mut c, leader, MembershipChange::AddLearner(NodeId(5))).unwrap();
        }
    }
}

/// Goal: a new leader commits an entry of its own term before it changes the configuration,
/// and the planted bug lifts that rule. Method: elect a leader whose no-op cannot commit (all
/// append acknowledgements to it are dropped), try a change, then let the no-op commit.
#[test]
fn leader_commits_an_own_term_entry_before_changing_configuration() {
    for bug in [false, true] {
        let mut c = Cluster::with_config(3, 73, |config| {
            manual_elections(config);
            config.bugs.config_before_own_term_commit = bug;
        });
        assert!(c.campaign_until_leader(NodeId(1)));
        c.run_ticks(2);
        c.filters.push(Box::new(|msg| {
            matches!(msg.body, MessageBody::AppendEntriesResponse(_)) && msg.to == NodeId(2)
        }));
        assert!(c.campaign_until_leader(NodeId(2)));
        let status = c.node(NodeId(2)).status();
        assert!(c.node(NodeId(2)).entry_term(status.commit) != Some(status.term));
        let result = change(&mut c, NodeId(2), MembershipChange::AddLearner(NodeId(4)));
        if bug {
            assert!(
                result.is_ok(),
                "the planted bug changes the configuration early"
            );
            continue;
        }
        let err = result.unwrap_err();
        assert!(
            matches!(err, Error::MembershipChange(ref why) if why.contains("entry of its term"))
        );
        c.heal();
        c.run_ticks(2);
        change(&mut c, NodeId(2), MembershipChange::AddLearner(NodeId(4))).unwrap();
    }
}

/// Goal: a removed voter cannot disrupt the cluster, even without PreVote and CheckQuorum.
/// Method: remove replica 3 while it is cut off (so it never learns of its removal), reconnect
/// it and make it campaign again and again in ever higher terms; the leader and its term stay.
#[test]
fn removed_voter_cannot_disrupt() {
    let mut c = Cluster::with_config(3, 74, manual_elections);
    assert!(c.campaign_until_leader(NodeId(1)));
    c.run_ticks(2);
    c.isolate(NodeId(3));
    change(&mut c, NodeId(1), MembershipChange::RemoveNode(NodeId(3))).unwrap();
    c.run_ticks(3);
    assert_eq!(
        c.node(NodeId(1)).membership(),
        &Membership::new(ids(&[1, 2]))
    );
    assert!(c.node(NodeId(3)).membership().is_voter(NodeId(3)));
    let term = c.node(NodeId(1)).status().term;
    c.heal();
    for _ in 0..10 {
        c.campaign(NodeId(3));
        c.run_ticks(1);
    }
    assert!(c.node(NodeId(3)).status().term > term, "it did campaign");
    assert_eq!(c.node(NodeId(1)).status().role, Role::Leader);
    assert_eq!(c.node(NodeId(1)).status().term, term);
    assert_eq!(c.node(NodeId(2)).status().term, term);
    c.propose(b"still").unwrap();
    c.run_ticks(2);
    assert!(c.node(NodeId(2)).state_machine().contains(b"still"));
}

/// Goal: a leader that removes itself keeps leading through the joint configuration, steps
/// down once the final one commits, and never campaigns again; the rest elect a leader.
#[test]
fn leader_removing_itself_steps_down() {
    let mut c = Cluster::new(3, 75);
    let old = c.elect();
    c.run_ticks(2);
    change(&mut c, old, MembershipChange::RemoveNode(old)).unwrap();
    c.run_ticks(3);
    assert_eq!(c.node(old).status().role, Role::Follower);
    assert!(!c.node(old).membership().contains(old));
    let old_term = c.node(old).status().term;
    c.run_ticks(60);
    let new = c.leader().expect("the remaining voters elect a leader");
    assert_ne!(new, old);
    assert_eq!(
        c.node(old).status().term,
        old_term,
        "the removed replica never campaigns"
    );
    c.propose(b"after").unwrap();
    c.run_ticks(2);
    assert_eq!(c.applied_count(b"after"), 2);
}

/// Goal: replacing a voter with a caught-up learner keeps the cluster size and works through
/// a joint configuration. Method: replace 3 by 4, crash 3, check 4 counts for commits.
#[test]
fn replace_voter_with_learner() {
    let mut c = Cluster::new(3, 76);
    let leader = c.elect();
    let victim = c.ids.iter().copied().find(|id| *id != leader).unwrap();
    c.add_node(NodeId(4));
    change(&mut c, leader, MembershipChange::AddLearner(NodeId(4))).unwrap();
    c.run_ticks(3);
    let replace = MembershipChange::ReplaceVoter {
        old: victim,
        new: NodeId(4),
    };
    change(&mut c, leader, replace).unwrap();
    c.run_ticks(3);
    let mut voters: Vec<NodeId> = c.ids.iter().copied().filter(|id| *id != victim).collect();
    voters.sort();
    assert_eq!(c.node(leader).membership(), &Membership::new(voters));
    assert!(saw_joint(&c, leader));
    c.crash(victim, raft_core::CrashMode::KeepUnsynced);
    let other = c
        .ids
        .iter()
        .copied()
        .find(|id| ![leader, victim, NodeId(4)].contains(id));
    c.isolate(other.unwrap());
    c.propose(b"needs 4").unwrap();
    c.run_ticks(2);
    assert!(c.node(NodeId(4)).state_machine().contains(b"needs 4"));
    assert!(c.node(leader).state_machine().contains(b"needs 4"));
}

/// Goal: the configuration is stored in snapshots: after the log is compacted past every
/// configuration entry, a restarted replica and a replica that catches up by InstallSnapshot
/// both know the configuration. Method: small snapshot threshold, change the configuration,
/// write enough to compact, restart a follower, add a learner that needs the snapshot.
#[test]
fn configuration_survives_compaction_restart_and_install_snapshot() {
    let mut c = Cluster::with_config(3, 77, |config| {
        config.snapshot_threshold_bytes = 1024;
        config.snapshot_chunk_bytes = 256;
    });
    let leader = c.elect();
    c.add_node(NodeId(4));
    change(&mut c, leader, MembershipChange::AddLearner(NodeId(4))).unwrap();
    c.run_ticks(3);
    change(&mut c, leader, MembershipChange::PromoteLearner(NodeId(4))).unwrap();
    c.run_ticks(3);
    for i in 0..100u8 {
        c.propose(&[i; 64]).unwrap();
        c.deliver_all();
    }
    c.run_ticks(2);
    let expected = Membership::new(ids(&[1, 2, 3, 4]));
    let follower = c.ids.iter().copied().find(|id| *id != leader).unwrap();
    assert!(
        c.node(follower).raft().snapshot_index() > LogIndex(10),
        "log was compacted"
    );
    c.crash(follower, raft_core::CrashMode::DropUnsynced);
    c.start(follower).unwrap();
    assert_eq!(
        c.node(follower).membership(),
        &expected,
        "recovered from the snapshot"
    );
    c.add_node(NodeId(5));
    change(&mut c, leader, MembershipChange::AddLearner(NodeId(5))).unwrap();
    c.run_ticks(10);
    let mut with_learner = expected.clone();
    with_learner.learners = ids(&[5]);
    assert_eq!(c.node(NodeId(5)).membership(), &with_learner);
    assert!(
        c.node(NodeId(5)).raft().snapshot_index() > LogIndex(10),
        "caught up by snapshot"
    );
    assert_eq!(c.applied_count(&[99; 64]), 5);
}

/// Outcome of a split-brain attempt: a stale leader with one follower, cut off from the other
/// three voters of five, removes those three one after the other. Returns the safety
/// violations the harness saw.
fn remove_majority_while_partitioned(bugs: Bugs) -> Vec<String> {
    let mut c = Cluster::with_config(5, 78, |config| {
        manual_elections(config);
        config.bugs = bugs;
    });
    c.strict = false;
    assert!(c.campaign_until_leader(NodeId(1)));
    c.run_ticks(2);
    c.partition(&ids(&[1, 2]));
    for id in [3, 4, 5] {
        let result = change(&mut c, NodeId(1), MembershipChange::RemoveNode(NodeId(id)));
        assert_eq!(result.is_ok(), bugs.two_config_changes_in_flight || id == 3);
        c.deliver_all();
    }
    let _ = c.with_node(NodeId(1), |n| n.propose(b"minority".to_vec()));
    c.run_ticks(2);
    assert!(c.campaign_until_leader(NodeId(3)));
    c.propose(b"majority").unwrap();
    c.run_ticks(2);
    c.violations.clone()
}

/// Goal: the one-change-at-a-time rule is what keeps consecutive joint configurations
/// overlapping; the planted bug `two_config_changes_in_flight` breaks safety. Method: a stale
/// two-replica minority removes the three others one change after another while they elect
/// their own leader; with the bug both sides commit different entries at the same index.
#[test]
fn two_changes_in_flight_canary_breaks_state_machine_safety() {
    assert_eq!(
        remove_majority_while_partitioned(Bugs::default()),
        Vec::<String>::new()
    );
    let bug = Bugs::from_name("two_config_changes_in_flight").unwrap();
    let violations = remove_majority_while_partitioned(bug);
    assert!(
        violations
            .iter()
            .any(|v| v.contains("state machine safety")),
        "{violations:?}"
    );
}

/// Goal: a leader ends a joint configuration it learned from a snapshot, not only one whose
/// entry is still in its log; otherwise the cluster stays joint and refuses every later
/// change. Method: promote learner 4 while every append carrying the final configuration is
/// dropped, so the followers commit only the joint entry; restart follower 2 with a small
/// snapshot threshold so it compacts its log through the joint entry; crash the old leader
/// and elect 2.
#[test]
fn a_joint_configuration_learned_from_a_snapshot_is_ended() {
    let mut c = Cluster::with_config(3, 79, manual_elections);
    assert!(c.campaign_until_leader(NodeId(1)));
    for i in 0..16u8 {
        c.propose(&[i; 128]).unwrap();
    }
    c.run_ticks(2);
    c.add_node(NodeId(4));
    change(&mut c, NodeId(1), MembershipChange::AddLearner(NodeId(4))).unwrap();
    c.run_ticks(3);
    let is_final = |m: &Membership| !m.is_joint() && m.voters.contains(&NodeId(4));
    c.filters.push(Box::new(move |msg| match &msg.body {
        MessageBody::AppendEntries { entries, .. } => entries
            .iter()
            .any(|e| matches!(&e.kind, EntryKind::Config(m) if is_final(m))),
        _ => false,
    }));
    change(
        &mut c,
        NodeId(1),
        MembershipChange::PromoteLearner(NodeId(4)),
    )
    .unwrap();
    c.run_ticks(3);
    let joint = c.node(NodeId(2)).membership().clone();
    assert!(joint.is_joint(), "followers hold the joint configuration");
    let status = c.node(NodeId(2)).status();
    assert_eq!(status.commit, status.last_index, "and have committed it");

    c.crash(NodeId(2), raft_core::CrashMode::KeepUnsynced);
    c.configs
        .get_mut(&NodeId(2))
        .unwrap()
        .snapshot_threshold_bytes = 1024;
    c.start(NodeId(2)).unwrap();
    let raft = c.node(NodeId(2)).raft();
    assert_eq!(
        raft.snapshot_index(),
        status.last_index,
        "compacted on restart"
    );
    assert_eq!(
        raft.config_indexes().count(),
        0,
        "no configuration entry left"
    );
    assert_eq!(
        raft.membership(),
        &joint,
        "the joint configuration is in the snapshot"
    );

    c.crash(NodeId(1), raft_core::CrashMode::DropUnsynced);
    c.heal();
    assert!(c.campaign_until_leader(NodeId(2)));
    c.run_ticks(5);
    let expected = Membership::new(ids(&[1, 2, 3, 4]));
    for id in [2, 3, 4] {
        assert_eq!(c.node(NodeId(id)).membership(), &expected, "node {id}");
    }
    change(&mut c, NodeId(2), MembershipChange::RemoveNode(NodeId(1)))
        .expect("later changes are accepted");
}

/// Goal: the cluster elects a leader again when the newest log is on a learner that no voter
/// can win without (kv seed 4755). Method: leader 2 appends a joint configuration replacing
/// voter 3 by learner 4 while cut off, so only 2 holds it; 1 is elected by 3 and replicates
/// its no-op, at the same index, to learner 4 only; then 1 is lost for good. Now 2 needs 4's
/// vote under the joint configuration but 4's log is newer, and 3 needs 2's vote but 2's log
/// is newer. The learner campaigns once no leader has been heard from for long, wins the
/// votes of 2 and 3, brings them up to date, and steps down; a voter then leads.
#[test]
fn a_learner_with_the_newest_log_unblocks_an_election() {
    let mut c = Cluster::with_config(3, 80, |config| {
        manual_elections(config);
        config.pre_vote = true;
        // Spread wide enough that the two live voters do not split every vote.
        config.election_ticks_min = 100;
        config.election_ticks_max = 200;
    });
    assert!(c.campaign_until_leader(NodeId(2)));
    c.propose(b"first").unwrap();
    c.deliver_all();
    c.add_node(NodeId(4));
    change(&mut c, NodeId(2), MembershipChange::AddLearner(NodeId(4))).unwrap();
    c.deliver_all();
    c.propose(b"second").unwrap();
    c.run_ticks(3);
    assert_eq!(c.applied_count(b"second"), 4);

    c.isolate(NodeId(2));
    let replace = MembershipChange::ReplaceVoter {
        old: NodeId(3),
        new: NodeId(4),
    };
    change(&mut c, NodeId(2), replace).unwrap();
    c.deliver_all();
    c.filters.push(Box::new(|msg| {
        (msg.from, msg.to) == (NodeId(1), NodeId(3))
            && matches!(msg.body, MessageBody::AppendEntries { .. })
    }));
    assert!(c.campaign_until_leader(NodeId(1)));
    let (s2, s4) = (c.node(NodeId(2)).status(), c.node(NodeId(4)).status());
    assert_eq!(s2.last_index, s4.last_index, "one index, two terms");
    let last = s2.last_index;
    let term = |id| c.node(NodeId(id)).entry_term(last);
    assert!(term(4) > term(2), "the learner holds the newer entry");
    assert!(c.node(NodeId(2)).membership().is_joint());
    assert!(c.node(NodeId(3)).status().last_index < last);
    assert!(c.node(NodeId(4)).membership().is_learner(NodeId(4)));
    c.crash(NodeId(1), raft_core::CrashMode::DropUnsynced);
    c.heal();

    let mut voter_leads = false;
    for _ in 0..100 {
        c.run_ticks(100);
        let leader = c.leader().filter(|id| *id != NodeId(4));
        if leader.is_some_and(|id| c.node(id).membership().is_voter(id)) {
            voter_leads = true;
            break;
        }
    }
    assert!(voter_leads, "a voter leads again");
    c.propose(b"after").unwrap();
    c.run_ticks(5);
    assert_eq!(c.applied_count(b"after"), 3);
    assert!(!c.node(NodeId(2)).membership().is_joint());
    c.check_log_matching();
}
