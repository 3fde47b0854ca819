//! [`KvClient`]: the sans-IO [`Clerk`] driven over TCP, used by `kvctl` and the chaos test.
//!
//! The clerk decides where each send goes (following leader hints, rotating on failures) and
//! keeps one seq per request, so every retry is the same request to the servers' session
//! table and it runs at most once. This file only moves bytes: one connection per server,
//! opened on demand and dropped on any error or timeout (a late answer on a dropped
//! connection can then never be mistaken for the answer to a later send).

use crate::frame::{read_frame, write_frame};
use crate::wire::{
    self, ClientRequest, ClientResponse, NodeStatus, RequestBody, ResponseBody,
    CLIENT_FRAME_BYTES_MAX,
};
use raft_core::NodeId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use workloads::{Clerk, ClerkError, ClerkStep, ClientId, KvCommand, KvError, KvReply};

/// Pause after a whole round of servers failed, so a client does not spin during an election.
pub const ROUND_BACKOFF: Duration = Duration::from_millis(50);

/// How a call ended without a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The servers refused the request for good (stale or malformed); it did not run.
    #[error("request failed: {0}")]
    Failed(KvError),
    /// The deadline passed. The request may still run later: its outcome is unknown.
    #[error("gave up after {0:?}; the outcome is unknown")]
    GaveUp(Duration),
}

/// A kv client over a fixed set of servers.
pub struct KvClient {
    servers: BTreeMap<NodeId, SocketAddr>,
    clerk: Clerk<KvCommand>,
    conns: BTreeMap<NodeId, TcpStream>,
    attempt_timeout: Duration,
    next_tag: u64,
}

impl KvClient {
    /// A client with id `client` (it must be unique among the cluster's clients for the
    /// exactly-once guarantee) that waits `attempt_timeout` for each send.
    ///
    /// # Errors
    /// An empty server list.
    pub fn new(
        client: ClientId,
        servers: BTreeMap<NodeId, SocketAddr>,
        attempt_timeout: Duration,
    ) -> Result<KvClient, ClerkError> {
        let clerk = Clerk::new(client, servers.keys().copied().collect())?;
        Ok(KvClient {
            servers,
            clerk,
            conns: BTreeMap::new(),
            attempt_timeout,
            next_tag: 1,
        })
    }

    /// The server the next request goes to first (the leader, once one answered).
    pub fn target(&self) -> NodeId {
        self.clerk.target()
    }

    /// Runs `command` to completion, retrying across servers until `deadline` has passed.
    ///
    /// # Errors
    /// See [`CallError`].
    pub async fn call(
        &mut self,
        command: KvCommand,
        deadline: Duration,
    ) -> Result<KvReply, CallError> {
        let start = Instant::now();
        let mut outgoing = self
            .clerk
            .start(command)
            .expect("calls are sequential, so the clerk is idle");
        let servers = self.servers.len() as u64;
        loop {
            let Some(remaining) = deadline.checked_sub(start.elapsed()) else {
                self.clerk.abandon();
                return Err(CallError::GaveUp(deadline));
            };
            let attempt = outgoing.attempt;
            let wait = remaining.min(self.attempt_timeout);
            let body = RequestBody::Kv(outgoing.envelope.clone());
            let step = match self.send(attempt.to, body, wait).await {
                Some(ResponseBody::Kv(reply)) => self.clerk.on_reply(attempt, reply),
                _ => self.clerk.on_timeout::<KvReply>(attempt),
            };
            match step {
                ClerkStep::Send(next) => {
                    if self.clerk.consecutive_failures().is_multiple_of(servers) {
                        tokio::time::sleep(ROUND_BACKOFF.min(remaining)).await;
                    }
                    outgoing = next;
                }
                ClerkStep::Done { reply, .. } => return Ok(reply),
                ClerkStep::Failed { error, .. } => return Err(CallError::Failed(error)),
                ClerkStep::Ignored => {
                    unreachable!("the clerk ignored the answer to its latest send")
                }
            }
        }
    }

    /// Asks server `id` for its Raft status.
    pub async fn status(&mut self, id: NodeId) -> Option<NodeStatus> {
        match self
            .send(id, RequestBody::Status, self.attempt_timeout)
            .await
        {
            Some(ResponseBody::Status(status)) => Some(status),
            _ => None,
        }
    }

    /// Sends one request to `to` and waits at most `wait` for its response. `None` for any
    /// failure; the connection is then dropped.
    async fn send(
        &mut self,
        to: NodeId,
        body: RequestBody,
        wait: Duration,
    ) -> Option<ResponseBody> {
        let tag = self.next_tag;
        self.next_tag += 1;
        let addr = *self.servers.get(&to)?;
        let mut stream = match self.conns.remove(&to) {
            Some(stream) => stream,
            None => {
                let stream = tokio::time::timeout(wait, TcpStream::connect(addr))
                    .await
                    .ok()?
                    .ok()?;
                stream.set_nodelay(true).ok()?;
                stream
            }
        };
        let request = wire::encode(&ClientRequest { tag, body }, "request").ok()?;
        let exchange = async {
            write_frame(&mut stream, &request, CLIENT_FRAME_BYTES_MAX)
                .await
                .ok()?;
            // Bounded: responses to earlier tags on this connection are skipped, and there
            // are at most as many of those as sends on it.
            for _ in 0..tag {
                let bytes = read_frame(&mut stream, CLIENT_FRAME_BYTES_MAX).await.ok()?;
                let response: ClientResponse = wire::decode(&bytes, "response").ok()?;
                if response.tag == tag {
                    return Some(response.body);
                }
            }
            None
        };
        let body = tokio::time::timeout(wait, exchange).await.ok()??;
        self.conns.insert(to, stream);
        Some(body)
    }
}

/// A client id that is unique with high probability: wall-clock nanoseconds and the pid.
pub fn fresh_client_id() -> ClientId {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    ClientId(nanos ^ (u64::from(std::process::id()).rotate_left(40)) | 1)
}
