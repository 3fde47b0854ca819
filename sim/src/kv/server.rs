//! A node as a kv server: how it answers a clerk.
//!
//! Writes (and Gets when reads go through the log) are proposed and answered when the leader
//! applies them, with the result the state machine computed (through the session table, so a
//! retried request gets its first reply). Gets are answered from local state after a ReadIndex
//! barrier. A node that does not lead says so, with its leader hint. A request whose fate the
//! server cannot know (its entry was superseded or covered by a snapshot, the barrier failed)
//! is answered `Timeout`, which the clerk retries with the same seq. A crash forgets every
//! waiting request: the clerk's timer covers those.

use crate::cluster::{SimNode, Slot, World};
use raft_core::{Event, Role};
use std::rc::Rc;
use workloads::{
    ApplyOutcome, Attempt, Envelope, KvCommand, KvError, KvReply, ProposalWaiters, Resolution,
};

/// Requests one server keeps waiting at once; beyond this it answers `Timeout`.
pub const WAITERS_MAX: usize = 256;

/// A clerk's request as it reaches a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvRequest {
    /// Which clerk sent it (index into the driver's clerks).
    pub clerk: usize,
    /// The send it is.
    pub attempt: Attempt,
    /// What the clerk asks.
    pub envelope: Envelope<KvCommand>,
}

/// Where a reply goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyTo {
    /// The clerk.
    pub clerk: usize,
    /// The send being answered.
    pub attempt: Attempt,
}

/// A new, empty waiter table for a server.
pub fn waiters() -> ProposalWaiters<ReplyTo> {
    ProposalWaiters::new(WAITERS_MAX)
}

impl World {
    /// Node `slot` handles a clerk request.
    pub(crate) fn kv_request(self: &Rc<Self>, slot: &Slot, node: &mut SimNode, req: KvRequest) {
        let to = ReplyTo {
            clerk: req.clerk,
            attempt: req.attempt,
        };
        let status = node.status();
        if status.role != Role::Leader {
            return self.kv_reply(
                to,
                Err(KvError::WrongLeader {
                    hint: status.leader,
                }),
            );
        }
        let driver = self.kv.as_ref().expect("kv request in a kv run");
        let command = &req.envelope.command;
        if command.is_read_only() && driver.bugs.local_reads && !driver.config.reads_through_log {
            // BUG (planted, `local_reads`): no barrier, so a deposed leader answers stale.
            return self.kv_reply(to, Ok(local_query(node, command)));
        }
        if command.is_read_only() && !driver.config.reads_through_log {
            self.record(slot.id, "kv-read", req.attempt.seq.0);
            return match node.read_barrier() {
                Ok(id) => {
                    slot.kv_reads.borrow_mut().insert(id, (to, command.clone()));
                }
                Err(error) => self.kv_reply(to, Err(refusal(error))),
            };
        }
        if slot.kv_waiters.borrow().is_full() {
            return self.kv_reply(to, Err(KvError::Timeout));
        }
        let bytes = match req.envelope.encode() {
            Ok(bytes) => bytes,
            Err(error) => return self.kv_reply(to, Err(KvError::Malformed(error.to_string()))),
        };
        self.record(slot.id, "kv-propose", req.attempt.seq.0);
        match node.propose(bytes) {
            Ok(id) => slot.kv_waiters.borrow_mut().register(id, to),
            Err(error) => self.kv_reply(to, Err(refusal(error))),
        }
    }

    /// Answers the clerks whose proposals or read barriers these events resolve.
    pub(crate) fn kv_events(self: &Rc<Self>, slot: &Slot, events: &[Event]) {
        let resolved = slot.kv_waiters.borrow_mut().on_events(events);
        for resolution in resolved {
            match resolution {
                Resolution::Applied { waiter, result, .. } => {
                    let reply = match ApplyOutcome::<KvReply>::decode(&result) {
                        Ok(outcome) => outcome.into_response(),
                        Err(error) => Err(KvError::Malformed(error.to_string())),
                    };
                    self.kv_reply(waiter, reply);
                }
                Resolution::Superseded { waiter, .. } | Resolution::Unknown { waiter, .. } => {
                    self.kv_reply(waiter, Err(KvError::Timeout));
                }
            }
        }
        for event in events {
            match event {
                Event::ReadReady { id, .. } => {
                    let Some((to, command)) = slot.kv_reads.borrow_mut().remove(id) else {
                        continue;
                    };
                    let guard = slot.node.borrow();
                    let node = guard.as_ref().expect("a node that just stepped is up");
                    let reply = local_query(node, &command);
                    drop(guard);
                    self.kv_reply(to, Ok(reply));
                }
                Event::ReadFailed { id, error } => {
                    if let Some((to, _)) = slot.kv_reads.borrow_mut().remove(id) {
                        self.kv_reply(to, Err(refusal(error.clone())));
                    }
                }
                _ => {}
            }
        }
    }

    /// Sends a reply to a clerk (through the driver, which may lose it or delay it).
    fn kv_reply(self: &Rc<Self>, to: ReplyTo, reply: Result<KvReply, KvError>) {
        if let Some(driver) = &self.kv {
            driver.deliver_reply(self, to, reply);
        }
    }
}

/// Reads `command` from the node's local state machine.
fn local_query(node: &SimNode, command: &KvCommand) -> KvReply {
    let kv = node
        .state_machine()
        .kv()
        .expect("a kv run's nodes run the kv state machine");
    kv.app()
        .query(command)
        .expect("only read-only commands are served locally")
}

/// The reply for a request the node refused or could not finish.
fn refusal(error: raft_core::Error) -> KvError {
    match error {
        raft_core::Error::NotLeader { hint } => KvError::WrongLeader { hint },
        _ => KvError::Timeout,
    }
}
