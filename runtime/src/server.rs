//! The kv server of one node: the Raft node's own thread, and the client port.
//!
//! `raft_core::Node` is synchronous and owns no threads, so it runs on one OS thread of its
//! own ([`run_node`]) that takes [`Input`]s from a bounded channel and waits for them no longer
//! than the node's next timer deadline. File I/O (fsync) happens on that thread and blocks
//! only it; the network runs on tokio. The kv logic is the simulator's (`sim/src/kv/server.rs`):
//! a node that does not lead answers `WrongLeader` with its hint; writes are proposed and
//! answered when applied, with the result through the exactly-once session table
//! ([`ProposalWaiters`]); `Get`/`Exists` are served from local state after a ReadIndex barrier.
//! A request whose fate the node cannot know is answered `Timeout`, which the clerk retries
//! with the same seq.

use crate::clock::SystemClock;
use crate::file_disk::FileDisk;
use crate::frame::{read_frame, write_frame, FrameError};
use crate::transport::PeerNet;
use crate::wire::{
    self, ClientRequest, ClientResponse, NodeStatus, RequestBody, ResponseBody,
    CLIENT_FRAME_BYTES_MAX,
};
use raft_core::{Clock, Event, Message, Node, ReadId, Role};
use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, Semaphore};
use workloads::{
    ApplyOutcome, Envelope, KvCommand, KvError, KvReply, KvServerConfig, KvStateMachine,
    ProposalWaiters, Resolution,
};

/// The node a kvnode runs.
pub type KvNode = Node<PeerNet, FileDisk, SystemClock, KvStateMachine>;

/// Inputs queued for the node thread before new ones are refused.
pub const INBOX_CAPACITY: usize = 4096;
/// Proposals one node keeps waiting at once; beyond this it answers `Timeout`.
pub const WAITERS_MAX: usize = 1024;
/// Inputs the node thread handles between two timer checks.
const INPUTS_PER_TURN_MAX: usize = 512;
/// Longest a client request waits for the node before it is answered `Timeout`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(3000);
/// Client connections served at once.
pub const CLIENT_CONNECTIONS_MAX: usize = 256;
/// Requests one client connection may have outstanding.
pub const REQUESTS_PER_CONNECTION_MAX: usize = 64;

/// Where the node thread sends a kv reply.
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
/// test catches a server that acknowledges too early.
pub const BUG_ACK_BEFORE_COMMIT: &str = "ack_writes_before_commit";

/// The node thread's state besides the node.
struct Service {
    config: KvServerConfig,
    /// BUG (planted, [`BUG_ACK_BEFORE_COMMIT`]): answer Put and Append as soon as they are
    /// proposed, so a leader that is deposed or killed before they commit has acknowledged
    /// writes that never happen.
    ack_before_commit: bool,
    waiters: ProposalWaiters<ReplyTo>,
    reads: BTreeMap<ReadId, (ReplyTo, KvCommand)>,
}

/// Whether a node error means the node has stopped for good (a disk failure).
fn is_fatal(error: &raft_core::Error) -> bool {
    matches!(
        error,
        raft_core::Error::Disk(_) | raft_core::Error::Wal(_) | raft_core::Error::Stopped(_)
    )
}

/// The reply for a request the node refused or could not finish.
fn refusal(error: raft_core::Error) -> KvError {
    match error {
        raft_core::Error::NotLeader { hint } => KvError::WrongLeader { hint },
        _ => KvError::Timeout,
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
    config: KvServerConfig,
    ack_before_commit: bool,
) -> Result<(), raft_core::Error> {
    let mut service = Service {
        config,
        ack_before_commit,
        waiters: ProposalWaiters::new(WAITERS_MAX),
        reads: BTreeMap::new(),
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
    for resolution in service.waiters.drain() {
        let Resolution::Unknown { waiter, .. } = resolution else {
            unreachable!("drain resolves every waiter as unknown");
        };
        let _ = waiter.send(Err(KvError::Timeout));
    }
    for (_, (reply, _)) in std::mem::take(&mut service.reads) {
        let _ = reply.send(Err(KvError::Timeout));
    }
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
        let status = node.status();
        if status.role != Role::Leader {
            let _ = reply.send(Err(KvError::WrongLeader {
                hint: status.leader,
            }));
            return Ok(());
        }
        let command = envelope.command.clone();
        if self.config.serves_from_read_index(&command) {
            match node.read_barrier() {
                Ok(id) => {
                    self.reads.insert(id, (reply, command));
                }
                Err(error) if is_fatal(&error) => return Err(error),
                Err(error) => {
                    let _ = reply.send(Err(refusal(error)));
                }
            }
            return Ok(());
        }
        if self.waiters.is_full() {
            let _ = reply.send(Err(KvError::Timeout));
            return Ok(());
        }
        let bytes = match envelope.encode() {
            Ok(bytes) => bytes,
            Err(error) => {
                let _ = reply.send(Err(KvError::Malformed(error.to_string())));
                return Ok(());
            }
        };
        let early = self.ack_before_commit
            && matches!(command, KvCommand::Put { .. } | KvCommand::Append { .. });
        match node.propose(bytes) {
            Ok(_) if early => {
                let _ = reply.send(Ok(KvReply::Done));
            }
            Ok(id) => self.waiters.register(id, reply),
            Err(error) if is_fatal(&error) => return Err(error),
            Err(error) => {
                let _ = reply.send(Err(refusal(error)));
            }
        }
        Ok(())
    }

    /// Answers the clients whose proposals or reads the node's new events resolve.
    fn events(&mut self, node: &mut KvNode) {
        let events = node.take_events();
        if events.is_empty() {
            return;
        }
        for resolution in self.waiters.on_events(&events) {
            match resolution {
                Resolution::Applied { waiter, result, .. } => {
                    let answer = match ApplyOutcome::<KvReply>::decode(&result) {
                        Ok(outcome) => outcome.into_response(),
                        Err(error) => Err(KvError::Malformed(error.to_string())),
                    };
                    let _ = waiter.send(answer);
                }
                Resolution::Superseded { waiter, .. } | Resolution::Unknown { waiter, .. } => {
                    let _ = waiter.send(Err(KvError::Timeout));
                }
            }
        }
        for event in &events {
            match event {
                Event::ReadReady { id, .. } => {
                    if let Some((reply, command)) = self.reads.remove(id) {
                        let answer = node
                            .state_machine()
                            .app()
                            .query(&command)
                            .ok_or_else(|| KvError::Malformed("not a read".to_string()));
                        let _ = reply.send(answer);
                    }
                }
                Event::ReadFailed { id, error } => {
                    if let Some((reply, _)) = self.reads.remove(id) {
                        let _ = reply.send(Err(refusal(error.clone())));
                    }
                }
                Event::LeaderChanged { leader, term } => {
                    tracing::info!(?leader, %term, "leader changed");
                }
                _ => {}
            }
        }
    }
}

/// Accepts client connections on `listener` and serves them through `inbox`.
pub async fn serve_clients(listener: TcpListener, inbox: SyncSender<Input>) {
    let permits = Arc::new(Semaphore::new(CLIENT_CONNECTIONS_MAX));
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accepting a client connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%addr, "too many client connections; closing the new one");
            continue;
        };
        let inbox = inbox.clone();
        tokio::spawn(async move {
            if let Err(reason) = client_connection(stream, inbox).await {
                tracing::warn!(%addr, %reason, "closed client connection");
            }
            drop(permit);
        });
    }
}

/// Serves one client connection; `Err` says why it was closed.
async fn client_connection(
    stream: tokio::net::TcpStream,
    inbox: SyncSender<Input>,
) -> Result<(), String> {
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (mut reader, mut writer) = stream.into_split();
    let (responses, mut outgoing) = mpsc::channel::<ClientResponse>(REQUESTS_PER_CONNECTION_MAX);
    let writer_task = tokio::spawn(async move {
        while let Some(response) = outgoing.recv().await {
            let Ok(bytes) = wire::encode(&response, "response") else {
                continue;
            };
            if write_frame(&mut writer, &bytes, CLIENT_FRAME_BYTES_MAX)
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let outstanding = Arc::new(Semaphore::new(REQUESTS_PER_CONNECTION_MAX));
    let result = loop {
        let bytes = match read_frame(&mut reader, CLIENT_FRAME_BYTES_MAX).await {
            Ok(bytes) => bytes,
            Err(FrameError::Closed) => break Ok(()),
            Err(error) => break Err(format!("bad frame: {error}")),
        };
        let request: ClientRequest = match wire::decode(&bytes, "request") {
            Ok(request) => request,
            Err(error) => break Err(error.to_string()),
        };
        if let RequestBody::Kv(envelope) = &request.body {
            if envelope.seq == workloads::Seq(0) {
                break Err("request seq 0 is reserved".to_string());
            }
        }
        let Ok(permit) = outstanding.clone().acquire_owned().await else {
            break Ok(());
        };
        let (inbox, responses) = (inbox.clone(), responses.clone());
        tokio::spawn(async move {
            let body = answer(request.body, &inbox).await;
            let _ = responses
                .send(ClientResponse {
                    tag: request.tag,
                    body,
                })
                .await;
            drop(permit);
        });
    };
    drop(responses);
    let _ = writer_task.await;
    result
}

/// Asks the node thread and waits (at most [`REQUEST_TIMEOUT`]) for its answer.
async fn answer(body: RequestBody, inbox: &SyncSender<Input>) -> ResponseBody {
    let timeout = ResponseBody::Kv(Err(KvError::Timeout));
    match body {
        RequestBody::Kv(envelope) => {
            let (reply, answer) = oneshot::channel();
            match inbox.try_send(Input::Kv { envelope, reply }) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => return timeout,
            }
            match tokio::time::timeout(REQUEST_TIMEOUT, answer).await {
                Ok(Ok(result)) => ResponseBody::Kv(result),
                _ => timeout,
            }
        }
        RequestBody::Status => {
            let (reply, answer) = oneshot::channel();
            if inbox.try_send(Input::Status(reply)).is_err() {
                return timeout;
            }
            match tokio::time::timeout(REQUEST_TIMEOUT, answer).await {
                Ok(Ok(status)) => ResponseBody::Status(status),
                _ => timeout,
            }
        }
    }
}
