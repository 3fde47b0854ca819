//! [`KvClient`]: the sans-IO [`Clerk`] driven over TCP (TLS unless `--insecure`, see
//! [`ClientSecurity`]), used by `kvctl` and the chaos test.
//!
//! The clerk decides where each send goes (following leader hints, rotating on failures) and
//! keeps one seq per request, so every retry is the same request to the servers' session
//! table and it runs at most once. This file only moves bytes: one connection per server,
//! opened on demand and dropped on any error or timeout (a late answer on a dropped
//! connection can then never be mistaken for the answer to a later send).

use crate::frame::{read_frame, write_frame};
use crate::tls::{client_connector, PeerTls, TlsError};
use crate::transport::BoxStream;
use crate::wire::{
    self, ClientRequest, ClientResponse, NodeStatus, RequestBody, ResponseBody,
    CLIENT_FRAME_BYTES_MAX,
};
use raft_core::NodeId;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
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

/// How a client reaches the nodes' client ports.
#[derive(Clone)]
pub enum ClientSecurity {
    /// TLS: each server must present the cluster CA's certificate for its node id.
    Tls(TlsConnector),
    /// Plain TCP, for nodes run with `--insecure`.
    Plain,
}

impl ClientSecurity {
    /// TLS trusting the CA in `dir/ca.pem` (a certificate directory of `kvnode certs`).
    ///
    /// # Errors
    /// A missing or malformed `ca.pem`.
    pub fn tls_from_certs_dir(dir: &Path) -> Result<ClientSecurity, TlsError> {
        Ok(ClientSecurity::Tls(client_connector(&dir.join("ca.pem"))?))
    }
}

impl std::fmt::Debug for ClientSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ClientSecurity::Tls(_) => "Tls",
            ClientSecurity::Plain => "Plain",
        })
    }
}

/// A kv client over a fixed set of servers.
pub struct KvClient {
    servers: BTreeMap<NodeId, SocketAddr>,
    security: ClientSecurity,
    clerk: Clerk<KvCommand>,
    conns: BTreeMap<NodeId, BoxStream>,
    attempt_timeout: Duration,
    next_tag: u64,
}

impl KvClient {
    /// A client with id `client` (it must be unique among the cluster's clients for the
    /// exactly-once guarantee) that reaches `servers` with `security` and waits
    /// `attempt_timeout` for each send.
    ///
    /// # Errors
    /// An empty server list.
    pub fn new(
        client: ClientId,
        servers: BTreeMap<NodeId, SocketAddr>,
        security: ClientSecurity,
        attempt_timeout: Duration,
    ) -> Result<KvClient, ClerkError> {
        let clerk = Clerk::new(client, servers.keys().copied().collect())?;
        Ok(KvClient {
            servers,
            security,
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
            None => tokio::time::timeout(wait, connect(&self.security, to, addr))
                .await
                .ok()??,
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

/// Opens a connection to server `to` at `addr`: TCP, then (with TLS) the handshake that
/// checks the server is the CA's `node-<to>`. `None` for any failure.
async fn connect(security: &ClientSecurity, to: NodeId, addr: SocketAddr) -> Option<BoxStream> {
    let stream = TcpStream::connect(addr).await.ok()?;
    stream.set_nodelay(true).ok()?;
    match security {
        ClientSecurity::Plain => Some(Box::new(stream)),
        ClientSecurity::Tls(connector) => {
            match connector.connect(PeerTls::server_name(to), stream).await {
                Ok(tls) => Some(Box::new(tls)),
                Err(error) => {
                    tracing::debug!(server = %to, %error, "tls handshake with a server failed");
                    None
                }
            }
        }
    }
}

/// A client id that is unique with high probability: wall-clock nanoseconds and the pid.
pub fn fresh_client_id() -> ClientId {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    ClientId(nanos ^ (u64::from(std::process::id()).rotate_left(40)) | 1)
}
