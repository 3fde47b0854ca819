//! The persistence contract of the pure protocol core: receipts are bound to their own `Ready`
//! and come in order, and a leader counts its own log toward a commit only once it is durable.

use raft_core::{
    AppendResult, Bugs, Config, HardState, LogIndex, Message, MessageBody, NodeId, Raft, Ready,
    Role, Ticket,
};

fn single_voter(bugs: Bugs) -> Raft {
    let mut cfg = Config::new(NodeId(1), vec![NodeId(1)]);
    cfg.bugs = bugs;
    Raft::new(cfg, HardState::default(), None, Vec::new(), 1).unwrap()
}

/// Runs Readies, persisting each at once, until there is nothing to do.
fn settle(raft: &mut Raft) {
    while raft.has_ready() {
        let rd = raft.ready();
        let _ = raft.on_persisted(rd.ticket().into_receipt());
    }
}

fn leader(bugs: Bugs) -> Raft {
    let mut raft = single_voter(bugs);
    raft.campaign();
    settle(&mut raft);
    assert!(
        raft.propose(b"x".to_vec()).is_ok(),
        "a single voter elects itself"
    );
    settle(&mut raft);
    raft
}

/// Node 1 of three voters, elected by answering its (pre-)vote requests; every Ready is
/// persisted at once. Returns the leader and its last index.
fn three_voter_leader(bugs: Bugs) -> Raft {
    let mut cfg = Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)]);
    cfg.bugs = bugs;
    let mut raft = Raft::new(cfg, HardState::default(), None, Vec::new(), 1).unwrap();
    raft.campaign();
    for _ in 0..10 {
        let mut sent: Vec<Message> = Vec::new();
        while raft.has_ready() {
            let mut rd = raft.ready();
            sent.extend(rd.take_messages());
            sent.extend(raft.on_persisted(rd.ticket().into_receipt()));
        }
        for msg in sent {
            let reply = match msg.body {
                MessageBody::RequestVote { pre_vote, .. } => MessageBody::RequestVoteResponse {
                    pre_vote,
                    granted: true,
                },
                _ => continue,
            };
            raft.step(Message {
                from: msg.to,
                to: NodeId(1),
                term: msg.term,
                body: reply,
            });
        }
        if raft.role() == Role::Leader {
            return raft;
        }
    }
    panic!("node 1 was not elected");
}

fn ack(raft: &mut Raft, from: u64, index: LogIndex) {
    let body = MessageBody::AppendEntriesResponse(AppendResult::Success { match_index: index });
    raft.step(Message {
        from: NodeId(from),
        to: NodeId(1),
        term: raft.term(),
        body,
    });
}

/// A leader of three proposes one entry; its write is not yet durable when one follower's
/// ack arrives. Reports the commit index before and after the leader's own receipt.
fn commit_around_the_receipt(bugs: Bugs) -> (LogIndex, LogIndex, LogIndex) {
    let mut raft = three_voter_leader(bugs);
    let last = raft.last_index();
    ack(&mut raft, 2, last);
    let mut rd = raft.ready();
    let _ = raft.on_persisted(rd.ticket().into_receipt());
    let _ = rd.take_messages();
    let start = raft.commit();
    let (index, _) = raft.propose(b"y".to_vec()).unwrap();
    let rd: Ready = raft.ready();
    assert_eq!(rd.entries().last().map(|e| e.index), Some(index));
    ack(&mut raft, 2, index);
    let before = raft.commit();
    let ticket: Ticket = rd.ticket();
    let _ = raft.on_persisted(ticket.into_receipt());
    (start, before, raft.commit())
}

#[test]
fn a_leader_does_not_commit_on_its_unsynced_entry() {
    let (start, before, after) = commit_around_the_receipt(Bugs::default());
    assert_eq!(
        before, start,
        "one follower's ack is not a majority without the leader"
    );
    assert_eq!(
        after,
        start.next(),
        "committed once the leader's own write is durable"
    );
    let bugs = Bugs::from_name("leader_counts_unsynced_entry").unwrap();
    let (start, before, _) = commit_around_the_receipt(bugs);
    assert_eq!(
        before,
        start.next(),
        "the planted bug commits on the unsynced entry"
    );
}

#[test]
#[should_panic(expected = "is the oldest in flight")]
fn a_receipt_of_another_ready_is_refused() {
    let mut raft = leader(Bugs::default());
    raft.propose(b"a".to_vec()).unwrap();
    let first = raft.ready();
    raft.propose(b"b".to_vec()).unwrap();
    let second = raft.ready();
    assert_eq!(raft.readies_in_flight(), 2);
    let _keep = first;
    let _ = raft.on_persisted(second.ticket().into_receipt());
}

#[test]
fn receipts_in_order_release_each_ready() {
    let mut raft = leader(Bugs::default());
    let start = raft.commit();
    raft.propose(b"a".to_vec()).unwrap();
    let first = raft.ready();
    raft.propose(b"b".to_vec()).unwrap();
    let second = raft.ready();
    let _ = raft.on_persisted(first.ticket().into_receipt());
    assert_eq!(raft.commit(), start.next());
    let _ = raft.on_persisted(second.ticket().into_receipt());
    assert_eq!(raft.commit(), start.next().next());
    assert_eq!(raft.readies_in_flight(), 0);
}
