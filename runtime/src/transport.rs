//! The peer transport: Raft messages between nodes over TCP (TLS unless `--insecure`).
//!
//! * **Sending.** One outgoing connection per peer, owned by one task ([`PeerNet`] hands it
//!   messages through a bounded queue). The task dials on demand, reconnects with exponential
//!   backoff, and drops what was queued while the peer was unreachable: Raft retransmits, and
//!   stale appends only cost the peer work. A full queue (a slow or stopped peer) drops the
//!   new message instead of growing memory; a write that does not finish in
//!   [`WRITE_TIMEOUT`] closes the connection.
//! * **Receiving.** A listener accepts at most [`PEER_CONNECTIONS_MAX`] connections; each
//!   reads length-prefixed frames (limit checked before allocating, see [`crate::frame`]),
//!   decodes them with `raft_core::decode` and hands them to the node's inbox, dropping them
//!   if the inbox is full. A malformed frame, a message for another node or from an unknown
//!   one, or a failed TLS handshake closes that connection with a logged reason; nothing a
//!   peer sends can panic the node.

use crate::frame::{read_frame, write_frame, FrameError};
use crate::server::Input;
use crate::tls::PeerTls;
use crate::wire::PEER_FRAME_BYTES_MAX;
use raft_core::{Message, Net, NodeId};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, Semaphore};

/// Messages queued per peer before new ones are dropped.
pub const PEER_QUEUE_MESSAGES: usize = 1024;
/// Incoming peer connections served at once; more are closed at accept.
pub const PEER_CONNECTIONS_MAX: usize = 64;
/// First reconnect delay.
pub const BACKOFF_MIN: Duration = Duration::from_millis(20);
/// Longest reconnect delay.
pub const BACKOFF_MAX: Duration = Duration::from_millis(1000);
/// Longest wait for a TCP connect or a TLS handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// Longest wait for one frame to be written; a stopped peer must not hold the link forever.
pub const WRITE_TIMEOUT: Duration = Duration::from_millis(2000);

/// A byte stream, plain or TLS.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}
/// A boxed [`Stream`].
pub type BoxStream = Box<dyn Stream>;

/// Counters of the transport, for logs and tests.
#[derive(Debug, Default)]
pub struct NetStats {
    /// Messages dropped because a peer's queue was full.
    pub dropped_queue_full: AtomicU64,
    /// Messages dropped because the peer was unreachable.
    pub dropped_unreachable: AtomicU64,
    /// Incoming connections closed for a malformed frame or a refused handshake.
    pub refused: AtomicU64,
}

/// raft-core's [`Net`] over the peer links: `send` never blocks.
pub struct PeerNet {
    links: BTreeMap<NodeId, mpsc::Sender<Message>>,
    stats: Arc<NetStats>,
}

impl Net for PeerNet {
    fn send(&mut self, msg: Message) {
        let Some(link) = self.links.get(&msg.to) else {
            tracing::warn!(to = %msg.to, "message for a node that is not a peer; dropped");
            return;
        };
        if let Err(error) = link.try_send(msg) {
            if matches!(error, mpsc::error::TrySendError::Full(_)) {
                self.stats
                    .dropped_queue_full
                    .fetch_add(1, Ordering::Relaxed);
                tracing::trace!("peer queue full; message dropped");
            }
        }
    }
}

/// Starts one link task per peer on `runtime` and returns the [`Net`] that feeds them.
pub fn start_links(
    runtime: &Handle,
    peers: &BTreeMap<NodeId, SocketAddr>,
    tls: Option<PeerTls>,
    stats: Arc<NetStats>,
) -> PeerNet {
    let mut links = BTreeMap::new();
    for (&peer, &addr) in peers {
        let (tx, rx) = mpsc::channel(PEER_QUEUE_MESSAGES);
        links.insert(peer, tx);
        runtime.spawn(link(peer, addr, rx, tls.clone(), stats.clone()));
    }
    PeerNet { links, stats }
}

/// Dials `addr` (and completes TLS, checking that the certificate is `peer`'s).
async fn dial(peer: NodeId, addr: SocketAddr, tls: &Option<PeerTls>) -> std::io::Result<BoxStream> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    match tls {
        None => Ok(Box::new(stream)),
        Some(tls) => {
            let handshake = tls.connector.connect(PeerTls::server_name(peer), stream);
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, handshake)
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "tls handshake timed out")
                })??;
            Ok(Box::new(stream))
        }
    }
}

/// The sending side of one peer link; ends when the [`PeerNet`] is dropped.
async fn link(
    peer: NodeId,
    addr: SocketAddr,
    mut queue: mpsc::Receiver<Message>,
    tls: Option<PeerTls>,
    stats: Arc<NetStats>,
) {
    let mut backoff = BACKOFF_MIN;
    // Dial only when there is something to say.
    while let Some(first) = queue.recv().await {
        let mut stream = match dial(peer, addr, &tls).await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(%peer, %addr, %error, ?backoff, "cannot reach peer");
                let mut dropped = 1;
                tokio::time::sleep(backoff).await;
                while queue.try_recv().is_ok() {
                    dropped += 1;
                }
                stats
                    .dropped_unreachable
                    .fetch_add(dropped, Ordering::Relaxed);
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        tracing::debug!(%peer, %addr, "connected to peer");
        backoff = BACKOFF_MIN;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            let bytes = raft_core::encode(&msg);
            let write = write_frame(&mut stream, &bytes, PEER_FRAME_BYTES_MAX);
            match tokio::time::timeout(WRITE_TIMEOUT, write).await {
                Ok(Ok(())) => next = queue.recv().await,
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "peer link failed; reconnecting");
                }
                Err(_) => tracing::debug!(%peer, "peer write timed out; reconnecting"),
            }
        }
    }
}

/// Accepts peer connections on `listener` and feeds their messages to `inbox`.
pub async fn serve_peers(
    listener: TcpListener,
    me: NodeId,
    peers: Vec<NodeId>,
    tls: Option<PeerTls>,
    inbox: SyncSender<Input>,
    stats: Arc<NetStats>,
) {
    let permits = Arc::new(Semaphore::new(PEER_CONNECTIONS_MAX));
    let peers = Arc::new(peers);
    loop {
        let (stream, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accepting a peer connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%addr, "too many peer connections; closing the new one");
            continue;
        };
        let (tls, inbox, stats, peers) = (tls.clone(), inbox.clone(), stats.clone(), peers.clone());
        tokio::spawn(async move {
            let reason = peer_connection(stream, me, &peers, tls, &inbox).await;
            match reason {
                Ok(()) => tracing::debug!(%addr, "peer connection closed"),
                Err(reason) => {
                    stats.refused.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%addr, %reason, "closed peer connection");
                }
            }
            drop(permit);
        });
    }
}

/// Serves one incoming peer connection until it ends; `Err` says why it was closed.
async fn peer_connection(
    stream: TcpStream,
    me: NodeId,
    peers: &[NodeId],
    tls: Option<PeerTls>,
    inbox: &SyncSender<Input>,
) -> Result<(), String> {
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut stream: BoxStream = match tls {
        None => Box::new(stream),
        Some(tls) => match tokio::time::timeout(CONNECT_TIMEOUT, tls.acceptor.accept(stream)).await
        {
            Ok(Ok(stream)) => Box::new(stream),
            Ok(Err(error)) => return Err(format!("tls handshake refused: {error}")),
            Err(_) => return Err("tls handshake timed out".to_string()),
        },
    };
    loop {
        let bytes = match read_frame(&mut stream, PEER_FRAME_BYTES_MAX).await {
            Ok(bytes) => bytes,
            Err(FrameError::Closed) => return Ok(()),
            Err(error) => return Err(format!("bad frame: {error}")),
        };
        let msg = raft_core::decode(&bytes).map_err(|e| format!("malformed message: {e}"))?;
        if msg.to != me {
            return Err(format!("message for {} reached {me}", msg.to));
        }
        if msg.from == me || !peers.contains(&msg.from) {
            return Err(format!("message from {}, which is not a peer", msg.from));
        }
        match inbox.try_send(Input::Peer(msg)) {
            Ok(()) | Err(TrySendError::Full(_)) => {}
            Err(TrySendError::Disconnected(_)) => return Ok(()),
        }
    }
}
