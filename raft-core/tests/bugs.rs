//! Directed checks that each planted bug really changes behaviour in its code path (the
//! Figure 8, read and WAL bugs have their own scenario tests next to the correct behaviour).

mod common;

use common::sm::TestSm;
use common::{Outbox, TestClock};
use raft_core::{
    AppendResult, Bugs, Config, CrashMode, Entry, EntryKind, LogIndex, MemDisk, Message,
    MessageBody, Node, NodeId, Term,
};

type TestNode = Node<Outbox, MemDisk, TestClock, TestSm>;

fn open(disk: MemDisk, bugs: Bugs) -> (TestNode, Outbox) {
    let mut config = Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)]);
    config.bugs = bugs;
    let outbox = Outbox::default();
    let node = Node::open(
        config,
        outbox.clone(),
        disk,
        TestClock::default(),
        TestSm::default(),
        1,
    )
    .unwrap();
    (node, outbox)
}

fn crash(node: TestNode) -> MemDisk {
    let (_, mut disk, _, _) = node.shutdown();

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

/// Votes for node 2 in term 1, crashes, then is asked by node 3 in the same term.
fn votes_twice(bugs: Bugs) -> bool {
    let (mut node, outbox) = open(MemDisk::new(), bugs);
    node.receive(vote_request(2)).unwrap();
    assert!(granted(&outbox));
    let (mut node, outbox) = open(crash(node), bugs);
    node.receive(vote_request(3)).unwrap();
    granted(&outbox)
}

#[test]
fn vote_before_persist_lets_a_node_vote_twice_in_a_term() {
    assert!(!votes_twice(Bugs::default()));
    assert!(votes_twice(Bugs::from_name("vote_before_persist").unwrap()));
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

/// Acknowledges an entry, crashes, and reports the last index after restart.
fn last_index_after_acked_crash(bugs: Bugs) -> LogIndex {
    let (mut node, outbox) = open(MemDisk::new(), bugs);
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
    node.receive(append(0, vec![entry(1)])).unwrap();
    let acked = outbox.0.borrow().iter().any(|m| {
        m.body
            == MessageBody::AppendEntriesResponse(AppendResult::Success {
                match_index: LogIndex(1),
            })
    });
    assert!(acked);
    let (node, _) = open(crash(node), bugs);
    node.status().last_index
}

#[test]
fn ack_before_fsync_loses_acknowledged_entries_on_crash() {
    assert_eq!(last_index_after_acked_crash(Bugs::default()), LogIndex(1));
    assert_eq!(
        last_index_after_acked_crash(Bugs::from_name("ack_before_fsync").unwrap()),
        LogIndex(0)
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
