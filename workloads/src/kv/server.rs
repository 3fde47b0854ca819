//! The kv server of one node: how it answers a clerk, sans-IO.
//!
//! Writes (and reads, when they go through the log) are proposed and answered when the
//! leader applies them, with the result the state machine computed (through the session
//! table, so a retried request gets its first reply). Reads are answered from local state
//! after a ReadIndex barrier. A node that does not lead says so, with its leader hint. A
//! request whose fate the server cannot know (its entry was superseded or covered by a
//! snapshot, the barrier failed) is answered `Timeout`, which the clerk retries with the same
//! seq.
//!
//! The server is per-process state: a crash forgets every waiting request (make a new
//! [`KvServer`]); the clerk's timer covers those. Where a reply goes (`To`) is the caller's:
//! the simulator names a clerk and its attempt, a real server a response channel.

use crate::kv::{KvCommand, KvError, KvReply, KvServerConfig, KvStateMachine};
use crate::pending::Resolution;
use crate::proposals::ProposalWaiters;
use crate::raft_node::RaftNode;
use crate::rsm::{ApplyOutcome, Envelope};
use raft_core::{Event, ReadId, Role};
use std::collections::BTreeMap;

/// A reply and where it goes.
pub type KvAnswer<To> = (To, Result<KvReply, KvError>);

/// What the server did with a request, beyond the replies it produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvHandled {
    /// Answered at once (not the leader, busy, malformed, or a planted local read).
    /// A write the planted `ack_writes_before_commit` bug answers at once is `Proposed`.
    Answered,
    /// A read barrier was asked for (its reply comes with the barrier's event, or at once if
    /// the node refused).
    ReadBarrier,
    /// The request was proposed (its reply comes when it applies, or at once if the node
    /// refused).
    Proposed,
}

/// The server side of the kv service on one node, for one process lifetime.
#[derive(Debug, Clone)]
pub struct KvServer<To> {
    config: KvServerConfig,
    /// BUG (planted, `ack_writes_before_commit`): answer `Put` and `Append` `Done` as soon as
    /// they are proposed, so a leader that is deposed or killed before they commit has
    /// acknowledged writes that never happen.
    ack_writes_before_commit: bool,
    waiters: ProposalWaiters<To>,
    reads: BTreeMap<ReadId, (To, KvCommand)>,
}

impl<To> KvServer<To> {
    /// A server with `config` that keeps at most `waiters_max` proposals waiting (beyond
    /// that it answers `Timeout`).
    ///
    /// # Panics
    /// If `waiters_max` is zero.
    pub fn new(config: KvServerConfig, waiters_max: usize) -> Self {
        KvServer {
            config,
            ack_writes_before_commit: false,
            waiters: ProposalWaiters::new(waiters_max),
            reads: BTreeMap::new(),
        }
    }

    /// The same server with the planted `local_reads` bug (as `config.bugs.local_reads` plants
    /// it).
    pub fn with_local_reads_bug(mut self) -> Self {
        self.config.bugs.local_reads = true;
        self
    }

    /// The same server with the planted `ack_writes_before_commit` bug.
    pub fn with_ack_writes_before_commit_bug(mut self) -> Self {
        self.ack_writes_before_commit = true;
        self
    }

    /// Requests waiting for a proposal or a barrier.
    pub fn waiting(&self) -> usize {
        self.waiters.len() + self.reads.len()
    }

    /// Handles one clerk request on `node`; replies that are due now go to `replies`.
    pub fn request<N: RaftNode<Machine = KvStateMachine>>(
        &mut self,
        node: &mut N,
        to: To,
        envelope: Envelope<KvCommand>,
        replies: &mut Vec<KvAnswer<To>>,
    ) -> KvHandled {
        let status = node.status();
        if status.role != Role::Leader {
            let hint = status.leader;
            replies.push((to, Err(KvError::WrongLeader { hint })));
            return KvHandled::Answered;
        }
        let command = &envelope.command;
        if self.config.serves_from_read_index(command) {
            // BUG (planted, `local_reads`): answer reads from local state without a barrier,
            // so a deposed leader that still believes it leads answers stale values.
            if self.config.bugs.local_reads {
                replies.push((to, Ok(query(node.state_machine(), command))));
                return KvHandled::Answered;
            }
            match node.read_barrier() {
                Ok(id) => {
                    self.reads.insert(id, (to, envelope.command));
                }
                Err(error) => replies.push((to, Err(refusal(error)))),
            }
            return KvHandled::ReadBarrier;
        }
        if self.waiters.is_full() {
            replies.push((to, Err(KvError::Timeout)));
            return KvHandled::Answered;
        }
        let bytes = match envelope.encode() {
            Ok(bytes) => bytes,
            Err(error) => {
                replies.push((to, Err(KvError::Malformed(error.to_string()))));
                return KvHandled::Answered;
            }
        };
        let early = self.ack_writes_before_commit
            && matches!(
                envelope.command,
                KvCommand::Put { .. } | KvCommand::Append { .. }
            );
        match node.propose(bytes) {
            Ok(_) if early => replies.push((to, Ok(KvReply::Done))),
            Ok(id) => self.waiters.register(id, to),
            Err(error) => replies.push((to, Err(refusal(error)))),
        }
        KvHandled::Proposed
    }

    /// Answers the requests whose proposals or read barriers `events` (one batch from
    /// `Node::take_events`) resolve, in event order; reads are served from `machine`, the
    /// node's state machine after the step that produced the events.
    pub fn on_events(
        &mut self,
        machine: &KvStateMachine,
        events: &[Event],
        replies: &mut Vec<KvAnswer<To>>,
    ) {
        for resolution in self.waiters.on_events(events) {
            match resolution {
                Resolution::Applied { waiter, result, .. } => {
                    let reply = match ApplyOutcome::<KvReply>::decode(&result) {
                        Ok(outcome) => outcome.into_response(),
                        Err(error) => Err(KvError::Malformed(error.to_string())),
                    };
                    replies.push((waiter, reply));
                }
                Resolution::Superseded { waiter, .. } | Resolution::Unknown { waiter, .. } => {
                    replies.push((waiter, Err(KvError::Timeout)));
                }
            }
        }
        for event in events {
            match event {
                Event::ReadReady { id, .. } => {
                    if let Some((to, command)) = self.reads.remove(id) {
                        replies.push((to, Ok(query(machine, &command))));
                    }
                }
                Event::ReadFailed { id, error } => {
                    if let Some((to, _)) = self.reads.remove(id) {
                        replies.push((to, Err(refusal(error.clone()))));
                    }
                }
                _ => {}
            }
        }
    }
}

/// Reads `command` from the node's applied state.
fn query(machine: &KvStateMachine, command: &KvCommand) -> KvReply {
    machine
        .app()
        .query(command)
        .expect("only read-only commands are served locally")
}

/// The reply for a request the node refused or could not finish.
pub fn refusal(error: raft_core::Error) -> KvError {
    match error {
        raft_core::Error::NotLeader { hint } => KvError::WrongLeader { hint },
        _ => KvError::Timeout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::{ClientId, Seq};
    use raft_core::{LogIndex, NodeId, ProposalId, StateMachine, Status, Term};

    /// A scripted node: a role, a state machine the test applies to, and counters for ids.
    struct FakeNode {
        role: Role,
        leader: Option<NodeId>,
        machine: KvStateMachine,
        next_id: u64,
        proposed: Vec<Vec<u8>>,
        refuse: Option<raft_core::Error>,
    }

    impl FakeNode {
        fn leader() -> FakeNode {
            FakeNode {
                role: Role::Leader,
                leader: Some(NodeId(1)),
                machine: KvServerConfig::default().state_machine(),
                next_id: 1,
                proposed: Vec::new(),
                refuse: None,
            }
        }
    }

    impl RaftNode for FakeNode {
        type Machine = KvStateMachine;

        fn status(&self) -> Status {
            Status {
                id: NodeId(1),
                role: self.role,
                term: Term(1),
                leader: self.leader,
                commit: LogIndex(0),
                applied: LogIndex(0),
                first_index: LogIndex(1),
                last_index: LogIndex(0),
            }
        }

        fn propose(&mut self, data: Vec<u8>) -> Result<ProposalId, raft_core::Error> {
            if let Some(error) = self.refuse.clone() {
                return Err(error);
            }
            self.proposed.push(data);
            self.next_id += 1;
            Ok(ProposalId(self.next_id - 1))
        }

        fn read_barrier(&mut self) -> Result<ReadId, raft_core::Error> {
            if let Some(error) = self.refuse.clone() {
                return Err(error);
            }
            self.next_id += 1;
            Ok(ReadId(self.next_id - 1))
        }

        fn state_machine(&self) -> &KvStateMachine {
            &self.machine
        }
    }

    fn envelope(seq: u64, command: KvCommand) -> Envelope<KvCommand> {
        Envelope {
            client: ClientId(7),
            seq: Seq(seq),
            command,
        }
    }

    fn put(key: &str, value: &str) -> KvCommand {
        KvCommand::Put {
            key: key.into(),
            value: value.into(),
        }
    }

    fn get(key: &str) -> KvCommand {
        KvCommand::Get { key: key.into() }
    }

    /// Applies the node's proposals at `index..` and returns the events the node would emit.
    fn commit_all(node: &mut FakeNode, first: u64) -> Vec<Event> {
        let mut events = Vec::new();
        for (i, data) in std::mem::take(&mut node.proposed).into_iter().enumerate() {
            let index = LogIndex(first + i as u64);
            let result = node.machine.apply(index, &data);
            events.push(Event::Committed {
                id: ProposalId(first + i as u64),
                index,
                term: Term(1),
            });
            events.push(Event::Applied {
                index,
                term: Term(1),
                data,
                result,
            });
        }
        events
    }

    #[test]
    fn a_follower_answers_wrong_leader_with_its_hint() {
        let mut node = FakeNode {
            role: Role::Follower,
            leader: Some(NodeId(3)),
            ..FakeNode::leader()
        };
        let mut server = KvServer::new(KvServerConfig::default(), 4);
        let mut replies = Vec::new();
        let handled = server.request(&mut node, 'a', envelope(1, put("k", "v")), &mut replies);
        assert_eq!(handled, KvHandled::Answered);
        let hint = Some(NodeId(3));
        assert_eq!(replies, vec![('a', Err(KvError::WrongLeader { hint }))]);
        assert!(node.proposed.is_empty());
    }

    #[test]
    fn a_write_is_answered_when_applied_and_a_read_after_its_barrier() {
        let mut node = FakeNode::leader();
        let mut server = KvServer::new(KvServerConfig::default(), 4);
        let mut replies = Vec::new();
        let handled = server.request(&mut node, 'w', envelope(1, put("k", "v")), &mut replies);
        assert_eq!(handled, KvHandled::Proposed);
        assert!(replies.is_empty());
        let events = commit_all(&mut node, 1);
        server.on_events(&node.machine, &events, &mut replies);
        assert_eq!(replies, vec![('w', Ok(KvReply::Done))]);
        replies.clear();
        let handled = server.request(&mut node, 'r', envelope(2, get("k")), &mut replies);
        assert_eq!(handled, KvHandled::ReadBarrier);
        assert!(replies.is_empty() && node.proposed.is_empty());
        assert_eq!(server.waiting(), 1);
        let ready = Event::ReadReady {
            id: ReadId(2),
            index: LogIndex(1),
        };
        server.on_events(&node.machine, &[ready], &mut replies);
        let value = Some("v".to_string());
        assert_eq!(replies, vec![('r', Ok(KvReply::Value(value)))]);
        assert_eq!(server.waiting(), 0);
    }

    #[test]
    fn refusals_and_superseded_entries_are_answered_timeout_or_wrong_leader() {
        let mut node = FakeNode::leader();
        let mut server = KvServer::new(KvServerConfig::default(), 1);
        let mut replies = Vec::new();
        server.request(&mut node, 'a', envelope(1, put("k", "v")), &mut replies);
        // The table holds one waiter: the next write is refused as busy.
        server.request(&mut node, 'b', envelope(2, put("k", "w")), &mut replies);
        assert_eq!(replies, vec![('b', Err(KvError::Timeout))]);
        replies.clear();
        let dropped = Event::ProposalFailed {
            id: ProposalId(1),
            error: raft_core::Error::ProposalDropped { index: LogIndex(1) },
        };
        server.on_events(&node.machine, &[dropped], &mut replies);
        assert_eq!(replies, vec![('a', Err(KvError::Timeout))]);
        replies.clear();
        node.refuse = Some(raft_core::Error::NotLeader {
            hint: Some(NodeId(2)),
        });
        server.request(&mut node, 'c', envelope(3, get("k")), &mut replies);
        let hint = Some(NodeId(2));
        assert_eq!(replies, vec![('c', Err(KvError::WrongLeader { hint }))]);
    }

    #[test]
    fn the_planted_local_reads_bug_skips_the_barrier_and_reads_through_log_proposes() {
        let mut node = FakeNode::leader();
        let mut server = KvServer::new(KvServerConfig::default(), 4).with_local_reads_bug();
        let mut replies = Vec::new();
        let handled = server.request(&mut node, 'r', envelope(1, get("k")), &mut replies);
        assert_eq!(handled, KvHandled::Answered);
        assert_eq!(replies, vec![('r', Ok(KvReply::Value(None)))]);
        let config = KvServerConfig {
            reads_through_log: true,
            ..KvServerConfig::default()
        };
        let mut server = KvServer::new(config, 4).with_local_reads_bug();
        replies.clear();
        let handled = server.request(&mut node, 'r', envelope(1, get("k")), &mut replies);
        assert_eq!(handled, KvHandled::Proposed);
        assert_eq!(node.proposed.len(), 1);
    }

    #[test]
    fn the_planted_ack_writes_before_commit_bug_answers_writes_when_proposed() {
        let mut node = FakeNode::leader();
        let mut server =
            KvServer::new(KvServerConfig::default(), 4).with_ack_writes_before_commit_bug();
        let mut replies = Vec::new();
        let handled = server.request(&mut node, 'w', envelope(1, put("k", "v")), &mut replies);
        assert_eq!(handled, KvHandled::Proposed);
        assert_eq!(replies, vec![('w', Ok(KvReply::Done))]);
        assert_eq!((node.proposed.len(), server.waiting()), (1, 0));
        // Applying the entry later answers nobody a second time.
        replies.clear();
        let events = commit_all(&mut node, 1);
        server.on_events(&node.machine, &events, &mut replies);
        assert!(replies.is_empty());
        // Other writes still wait for their result.
        let cas = KvCommand::CompareAndSet {
            key: "k".into(),
            expected: Some("v".into()),
            new: "w".into(),
        };
        server.request(&mut node, 'c', envelope(2, cas), &mut replies);
        assert!(replies.is_empty());
        assert_eq!(server.waiting(), 1);
    }
}
