//! The client port: TLS (server authentication) unless `--insecure`, then the tagged
//! request/response protocol of [`crate::wire`] handed to the node thread.
//!
//! **Why server authentication only.** A client checks that the node it reached holds the
//! cluster CA's certificate `node-<id>` (so nobody in the middle reads or changes its
//! requests), but presents no certificate itself. The peer port accepts any certificate the
//! cluster CA signed, so a client certificate from the same CA would also open the peer port
//! and let its holder forge Raft messages; clients would need a CA of their own, or the peer
//! port a check of the node name in the certificate, first. The kv service has no users or
//! permissions to tie a client certificate to anyway. What a client needs is `ca.pem`.
//!
//! A plain TCP client reaching a TLS client port fails the handshake: its first bytes are no
//! TLS ClientHello, the node logs the refusal and closes the connection (a test checks it).
//! Nothing a client sends, before or after the handshake, can panic the node.
//!
//! The protocol is served over any byte stream rather than a TCP stream only, so the TLS
//! stream fits in.

use crate::frame::{read_frame, write_frame, FrameError};
use crate::server::Input;
use crate::transport::{BoxStream, CONNECT_TIMEOUT};
use crate::wire::CLIENT_FRAME_BYTES_MAX;
use crate::wire::{self, ClientRequest, ClientResponse, RequestBody, ResponseBody};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_rustls::TlsAcceptor;
use workloads::KvError;

/// Longest a client request waits for the node before it is answered `Timeout`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(3000);
/// Client connections served at once.
pub const CLIENT_CONNECTIONS_MAX: usize = 256;
/// Requests one client connection may have outstanding.
pub const REQUESTS_PER_CONNECTION_MAX: usize = 64;

/// Accepts client connections on `listener` (TLS with `tls`, plain without) and serves them
/// through `inbox`.
pub async fn serve_clients(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    inbox: SyncSender<Input>,
) {
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
        let (tls, inbox) = (tls.clone(), inbox.clone());
        tokio::spawn(async move {
            if let Err(reason) = client_connection(stream, tls, inbox).await {
                tracing::warn!(%addr, %reason, "closed client connection");
            }
            drop(permit);
        });
    }
}

/// Serves one client connection; `Err` says why it was closed.
async fn client_connection(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    inbox: SyncSender<Input>,
) -> Result<(), String> {
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let stream: BoxStream = match tls {
        None => Box::new(stream),
        Some(acceptor) => {
            match tokio::time::timeout(CONNECT_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => Box::new(stream),
                Ok(Err(error)) => return Err(format!("tls handshake refused: {error}")),
                Err(_) => return Err("tls handshake timed out".to_string()),
            }
        }
    };
    let (mut reader, mut writer) = tokio::io::split(stream);
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
