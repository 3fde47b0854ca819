//! Directed checks that each planted bug really changes behaviour in its code path (the
//! Figure 8, read and WAL bugs have their own scenario tests next to the correct behaviour).

mod common;

use common::sm::TestSm;
use common::{Outbox, TestClock};
use raft_core::{
    AppendResult, Bugs, Config, CrashMode, Entry, EntryKind, LogIndex, MemDisk, Message,
    MessageBody, Node, NodeId, Persistence, Term,
};

type TestNode = Node<Outbox, MemDisk, TestClock, TestSm>;

fn open(disk: MemDisk, bugs: Bugs) -> (TestNode, Outbox) {
    open_with(disk, bugs, Persistence::Synchronous)
}

fn open_with(disk: MemDisk, bugs: Bugs, persistence: Persistence) -> (TestNode, Outbox) {
    let mut config = Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)]);
    config.bugs = bugs;
    let outbox = Outbox::default();
    let node = Node::open_with(
        config,
        outbox.clone(),
        disk,
        TestClock::default(),
        TestSm::default(),
        1,
        persistence,
    )
    .unwrap();
    (node, outbox)
}

/// Power fails now: whatever is not synced is lost, pending fsyncs included.
fn crash(node: TestNode) -> MemDisk {
    let mut disk = node.disk().clone();
    drop(node);
    disk.crash(CrashMode::DropUnsynced);
    disk
}

fn vote_request(from: u64) -> Message {
    let body = MessageBody::RequestVote {
        pre_vote: false,
        last_log_index: LogIndex(0),
        last_log_term: Term(0),
    };
    Message {
        from: NodeId(from),
        to: NodeId(1),
        term: Term(1),
        body,
    }
}

fn granted(outbox: &Outbox) -> bool {
    outbox.0.borrow().iter().any(|m| {
        matches!(
            m.body,
            MessageBody::RequestVoteResponse { granted: true, .. }
        )
    })
}

/// Votes for node 2 in term 1, crashes before the vote's fsync completed, then is asked by
/// node 3 in the same term. Returns whether the first vote left before its fsync and whether
/// the node voted again.
fn votes_twice(bugs: Bugs) -> (bool, bool) {
    let (mut node, outbox) = open_with(MemDisk::new(), bugs, Persistence::Asynchronous);
    node.receive(vote_request(2)).unwrap();
    assert_eq!(node.syncs_pending(), 1, "the vote waits for its fsync");
    let early = granted(&outbox);
    let (mut node, outbox) = open(crash(node), bugs);
    node.receive(vote_request(3)).unwrap();
    (early, granted(&outbox))
}

#[test]
fn vote_before_persist_lets_a_node_vote_twice_in_a_term() {
    // Correct: the first vote never left, so granting the second is not voting twice.
    assert_eq!(votes_twice(Bugs::default()), (false, true));
    let bugs = Bugs::from_name("vote_before_persist").unwrap();
    assert_eq!(votes_twice(bugs), (true, true));
}

#[test]
fn a_vote_leaves_once_its_fsync_completes() {
    let (mut node, outbox) = open_with(MemDisk::new(), Bugs::default(), Persistence::Asynchronous);
    node.receive(vote_request(2)).unwrap();
    assert!(!granted(&outbox));
    node.complete_sync().unwrap();
    assert!(granted(&outbox));
    assert_eq!(node.syncs_pending(), 0);
}

fn entry(index: u64) -> Entry {
    Entry {
        term: Term(1),
        index: LogIndex(index),
        kind: EntryKind::Normal(vec![index as u8].into()),
    }
}

fn append(prev: u64, entries: Vec<Entry>) -> Message {
    let body = MessageBody::AppendEntries {
        prev_log_index: LogIndex(prev),
        prev_log_term: Term(if prev == 0 { 0 } else { 1 }),
        entries,
        leader_commit: LogIndex(0),
    };
    Message {
        from: NodeId(2),
        to: NodeId(1),
        term: Term(1),
        body,
    }
}

fn acked(outbox: &Outbox, index: u64) -> bool {
    outbox.0.borrow().iter().any(|m| {
        m.body
            == MessageBody::AppendEntriesResponse(AppendResult::Success {
                match_index: LogIndex(index),
            })
    })
}

/// A follower with asynchronous persistence receives an entry; the power fails before its
/// fsync completes. Returns whether the ack left before the fsync, and the last index after
/// the restart.
fn acked_then_crashed(bugs: Bugs) -> (bool, LogIndex) {
    let (mut node, outbox) = open_with(MemDisk::new(), bugs, Persistence::Asynchronous);
    let heartbeat = MessageBody::Heartbeat {
        commit: LogIndex(0),
        read_round: 0,
    };
    node.receive(Message {
        from: NodeId(2),
        to: NodeId(1),
        term: Term(1),
        body: heartbeat,
    })
    .unwrap();
    while node.syncs_pending() > 0 {
        node.complete_sync().unwrap();
    }
    node.receive(append(0, vec![entry(1)])).unwrap();
    assert_eq!(
        node.syncs_pending(),
        1,
        "the entry is written, its fsync pending"
    );
    let early = acked(&outbox, 1);
    let (node, _) = open(crash(node), bugs);
    (early, node.status().last_index)
}

#[test]
fn an_ack_leaves_only_after_its_fsync_completed() {
    let (mut node, outbox) = open_with(MemDisk::new(), Bugs::default(), Persistence::Asynchronous);
    node.receive(append(0, vec![entry(1), entry(2)])).unwrap();
    node.receive(append(2, vec![entry(3)])).unwrap();
    assert_eq!(node.syncs_pending(), 2, "two Readies wait for their fsyncs");
    assert!(
        !acked(&outbox, 2) && !acked(&outbox, 3),
        "no ack before its fsync"
    );
    node.complete_sync().unwrap();
    assert!(acked(&outbox, 2), "the first fsync releases the first ack");
    assert!(!acked(&outbox, 3), "but not the second Ready's");
    node.complete_sync().unwrap();
    assert!(acked(&outbox, 3));
}

#[test]
fn ack_before_fsync_loses_acknowledged_entries_on_crash() {
    // Correct: the ack had not left, and the entry it would have promised is lost.
    assert_eq!(acked_then_crashed(Bugs::default()), (false, LogIndex(0)));
    let bugs = Bugs::from_name("ack_before_fsync").unwrap();
    assert_eq!(acked_then_crashed(bugs), (true, LogIndex(0)));
}

#[test]
fn a_crash_between_write_and_fsync_loses_exactly_the_unsynced_suffix() {
    let (mut node, _) = open_with(MemDisk::new(), Bugs::default(), Persistence::Asynchronous);
    node.receive(append(0, vec![entry(1), entry(2)])).unwrap();
    node.complete_sync().unwrap();
    node.receive(append(2, vec![entry(3)])).unwrap();
    node.receive(append(3, vec![entry(4), entry(5)])).unwrap();
    assert_eq!(node.syncs_pending(), 2);
    let (node, _) = open(crash(node), Bugs::default());
    assert_eq!(
        node.status().last_index,
        LogIndex(2),
        "synced prefix kept, suffix lost"
    );
}

fn last_index_after_stale_append(bugs: Bugs) -> LogIndex {
    let (mut node, _) = open(MemDisk::new(), bugs);
    node.receive(append(0, vec![entry(1), entry(2), entry(3)]))
        .unwrap();
    node.receive(append(0, vec![entry(1)])).unwrap(); // delayed duplicate
    node.status().last_index
}

#[test]
fn truncate_on_stale_append_drops_acknowledged_entries() {
    assert_eq!(last_index_after_stale_append(Bugs::default()), LogIndex(3));
    let bugs = Bugs::from_name("truncate_on_stale_append").unwrap();
    assert_eq!(last_index_after_stale_append(bugs), LogIndex(1));
}
