//! The kv server of one node: the Raft node's own thread.
//!
//! `raft_core::Node` is synchronous and owns no threads, so it runs on one OS thread of its
//! own ([`run_node`]) that takes [`Input`]s from a bounded channel and waits for them no longer
//! than the node's next timer deadline. File I/O (fsync) happens on that thread and blocks
//! only it; the network runs on tokio ([`crate::transport`], [`crate::client_port`]).
//!
//! The kv logic is `workloads::KvServer`, the same code the simulator runs: a node that does
//! not lead answers `WrongLeader` with its hint; writes are proposed and answered when
//! applied, with the result through the exactly-once session table; `Get`/`Exists` are served
//! from local state after a ReadIndex barrier. A request whose fate the node cannot know is
//! answered `Timeout`, which the clerk retries with the same seq. This file only feeds it
//! requests and events and sends its replies down each request's `oneshot` channel.

use crate::clock::SystemClock;
use crate::file_disk::FileDisk;
use crate::transport::PeerNet;
use crate::wire::NodeStatus;
use raft_core::{Clock, Event, Message, Node, ProposalId, ReadId, Status};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;
use tokio::sync::oneshot;
use workloads::{
    Envelope, KvAnswer, KvCommand, KvError, KvReply, KvServer, KvServerConfig, KvStateMachine,
    RaftNode,
};

/// The node a kvnode runs.
pub type KvNode = Node<PeerNet, FileDisk, SystemClock, KvStateMachine>;

/// Inputs queued for the node thread before new ones are refused.
pub const INBOX_CAPACITY: usize = 4096;
/// Proposals one node keeps waiting at once; beyond this it answers `Timeout`.
pub const WAITERS_MAX: usize = 1024;
/// Inputs the node thread handles between two timer checks.
const INPUTS_PER_TURN_MAX: usize = 512;

/// Where the node thread sends a kv reply. Dropping it unanswered (the node thread stopped)
/// reads as `Timeout` on the client port.
pub type ReplyTo = oneshot::Sender<Result<KvReply, KvError>>;

/// What the node thread is asked to do.
pub enum Input {
    /// A message from a peer.
    Peer(Message),
    /// A client's kv request.
    Kv {
        /// The request.
        envelope: Envelope<KvCommand>,
        /// Where the answer goes.
        reply: ReplyTo,
    },
    /// A status query.
    Status(oneshot::Sender<NodeStatus>),
    /// Finish persistence and stop (SIGTERM).
    Shutdown,
}

/// The planted bug of the kv server itself (`kvnode run --bug`), for showing that the chaos
/// test catches a server that acknowledges too early: `KvServer`'s
/// `ack_writes_before_commit`, which answers `Put` and `Append` when they are proposed.
pub const BUG_ACK_BEFORE_COMMIT: &str = "ack_writes_before_commit";

/// The kv server a kvnode runs, with the planted bug `bug` (a `--bug` name) if it is the
/// server's own.
pub fn kv_server(config: KvServerConfig, bug: Option<&str>) -> KvServer<ReplyTo> {
    let server = KvServer::new(config, WAITERS_MAX);
    if bug == Some(BUG_ACK_BEFORE_COMMIT) {
        server.with_ack_writes_before_commit_bug()
    } else {
        server
    }
}

/// The node thread's state besides the node.
struct Service {
    server: KvServer<ReplyTo>,
    /// Replies due, sent after each step.
    replies: Vec<KvAnswer<ReplyTo>>,
}

/// Whether a node error means the node has stopped for good (a disk failure).
fn is_fatal(error: &raft_core::Error) -> bool {
    matches!(
        error,
        raft_core::Error::Disk(_) | raft_core::Error::Wal(_) | raft_core::Error::Stopped(_)
    )
}

/// The node as [`KvServer`] sees it, keeping the first fatal error of a proposal or barrier:
/// `KvServer` answers the client `Timeout` for it, and the node thread must also stop.
struct Watched<'a> {
    node: &'a mut KvNode,
    fatal: Option<raft_core::Error>,
}

impl Watched<'_> {
    fn watch<T>(&mut self, result: Result<T, raft_core::Error>) -> Result<T, raft_core::Error> {
        if let Err(error) = &result {
            if is_fatal(error) && self.fatal.is_none() {
                self.fatal = Some(error.clone());
            }
        }
        result
    }
}

impl RaftNode for Watched<'_> {
    type Machine = KvStateMachine;

    fn status(&self) -> Status {
        self.node.status()
    }

    fn propose(&mut self, data: Vec<u8>) -> Result<ProposalId, raft_core::Error> {
        let result = self.node.propose(data);
        self.watch(result)
    }

    fn read_barrier(&mut self) -> Result<ReadId, raft_core::Error> {
        let result = self.node.read_barrier();
        self.watch(result)
    }

    fn state_machine(&self) -> &KvStateMachine {
        self.node.state_machine()
    }
}

/// The node's status for the client port.
pub fn status(node: &KvNode) -> NodeStatus {
    let status = node.status();
    NodeStatus {
        id: status.id,
        role: format!("{:?}", status.role),
        term: status.term.0,
        leader: status.leader,
        commit: status.commit.0,
        applied: status.applied.0,
        last_index: status.last_index.0,
    }
}

/// Runs `node` until [`Input::Shutdown`] or until every input sender is gone.
///
/// # Errors
/// A fatal node error (a failed disk); the node has stopped.
pub fn run_node(
    mut node: KvNode,
    clock: SystemClock,
    inbox: Receiver<Input>,
    server: KvServer<ReplyTo>,
) -> Result<(), raft_core::Error> {
    let mut service = Service {
        server,
        replies: Vec::new(),
    };
    let result = loop {
        let now = clock.now();
        let deadline = node.next_deadline();
        if now >= deadline {
            if let Err(error) = node.on_timer() {
                break Err(error);
            }
            service.events(&mut node);
            continue;
        }
        let wait = Duration::from_micros(deadline.0 - now.0);
        let first = match inbox.recv_timeout(wait) {
            Ok(input) => input,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break Ok(()),
        };
        let mut next = Some(first);
        let mut handled = 0;
        let mut stop = None;
        while let Some(input) = next.take() {
            match service.handle(&mut node, input) {
                Ok(true) => {}
                Ok(false) => {
                    stop = Some(Ok(()));
                    break;
                }
                Err(error) => {
                    stop = Some(Err(error));
                    break;
                }
            }
            handled += 1;
            if handled < INPUTS_PER_TURN_MAX {
                next = inbox.try_recv().ok();
            }
        }
        service.events(&mut node);
        if let Some(stop) = stop {
            break stop;
        }
    };
    // Dropping the server drops the reply channels of every waiting request, which the
    // client port answers `Timeout`.
    drop(service);
    match &result {
        Ok(()) => {
            tracing::info!("node stopping");
            let _ = node.shutdown();
        }
        Err(error) => tracing::error!(%error, "node stopped after a fatal error"),
    }
    result
}

impl Service {
    /// Handles one input; `Ok(false)` asks the loop to stop.
    fn handle(&mut self, node: &mut KvNode, input: Input) -> Result<bool, raft_core::Error> {
        match input {
            Input::Peer(msg) => node.receive(msg)?,
            Input::Kv { envelope, reply } => self.kv_request(node, envelope, reply)?,
            Input::Status(reply) => {
                let _ = reply.send(status(node));
            }
            Input::Shutdown => return Ok(false),
        }
        Ok(true)
    }

    fn kv_request(
        &mut self,
        node: &mut KvNode,
        envelope: Envelope<KvCommand>,
        reply: ReplyTo,
    ) -> Result<(), raft_core::Error> {
        let mut watched = Watched { node, fatal: None };
        self.server
            .request(&mut watched, reply, envelope, &mut self.replies);
        self.send_replies();
        match watched.fatal {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Answers the clients whose proposals or reads the node's new events resolve.
    fn events(&mut self, node: &mut KvNode) {
        let events = node.take_events();
        if events.is_empty() {
            return;
        }
        self.server
            .on_events(node.state_machine(), &events, &mut self.replies);
        self.send_replies();
        for event in &events {
            if let Event::LeaderChanged { leader, term } = event {
                tracing::info!(?leader, %term, "leader changed");
            }
        }
    }

    fn send_replies(&mut self) {
        for (reply, answer) in self.replies.drain(..) {
            // The client may have given up waiting; its answer has nowhere to go.
            let _ = reply.send(answer);
        }
    }
}
