//! Starting a kvnode process: open the data directory, bind the ports, run until SIGTERM.

use crate::client_port::serve_clients;
use crate::clock::SystemClock;
use crate::config::{NodeConfig, PeerSecurity};
use crate::file_disk::FileDisk;
use crate::server::{kv_server, run_node, status, Input, INBOX_CAPACITY};
use crate::tls::{PeerTls, TlsError};
use crate::transport::{serve_peers, start_links, NetStats};
use raft_core::{Config, DiskError, Node};
use std::path::PathBuf;
use std::sync::mpsc::TrySendError;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use workloads::KvServerConfig;

/// Why a node could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The configuration is invalid.
    #[error("{0}")]
    Config(String),
    /// The data directory cannot be used.
    #[error("data directory {dir}: {error}")]
    Disk {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        error: DiskError,
    },
    /// Recovery failed (a corrupt WAL names the file and the offset).
    #[error("cannot recover from {dir}: {error}")]
    Open {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        error: raft_core::Error,
    },
    /// The TLS identity cannot be loaded.
    #[error("tls: {0}")]
    Tls(#[from] TlsError),
    /// A port cannot be bound, or the runtime not started.
    #[error("{0}")]
    Io(String),
    /// The node stopped after a fatal error (a failed disk).
    #[error("node stopped: {0}")]
    Stopped(raft_core::Error),
}

/// Runs one node until SIGTERM (or SIGINT), then shuts down cleanly.
///
/// # Errors
/// See [`NodeError`].
pub fn run(config: NodeConfig) -> Result<(), NodeError> {
    config
        .validate()
        .map_err(|e| NodeError::Config(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("kvnode-net")
        .enable_all()
        .build()
        .map_err(|e| NodeError::Io(format!("starting the runtime: {e}")))?;
    let tls = match &config.security {
        PeerSecurity::Tls(dir) => Some(PeerTls::load(dir, config.id)?),
        PeerSecurity::Insecure => {
            tracing::warn!("peer and client traffic is plain TCP (--insecure)");
            None
        }
    };
    let disk = FileDisk::open(&config.data_dir).map_err(|error| NodeError::Disk {
        dir: config.data_dir.clone(),
        error,
    })?;
    let bind = |addr| {
        runtime
            .block_on(TcpListener::bind(addr))
            .map_err(|e| NodeError::Io(format!("binding {addr}: {e}")))
    };
    let peer_listener = bind(config.peer_listen)?;
    let client_listener = bind(config.client_listen)?;

    let mut kv = KvServerConfig {
        snapshot_threshold_bytes: config.snapshot_threshold_bytes,
        ..KvServerConfig::default()
    };
    let mut raft = Config::new(config.id, config.voters());
    raft.tick_micros = config.tick_ms * 1000;
    if let Some(bug) = &config.bug {
        tracing::warn!(%bug, "running with a planted bug");
        raft.bugs = raft_core::Bugs::from_name(bug).unwrap_or_default();
        kv.bugs = workloads::KvBugs::from_name(bug).unwrap_or_default();
    }
    let raft = kv
        .raft_config(raft)
        .map_err(|e| NodeError::Config(e.to_string()))?;
    let stats = Arc::new(NetStats::default());
    let net = start_links(runtime.handle(), &config.peers, tls.clone(), stats.clone());
    let clock = SystemClock::new();
    let node =
        Node::open(raft, net, disk, clock, kv.state_machine(), rng_seed()).map_err(|error| {
            NodeError::Open {
                dir: config.data_dir.clone(),
                error,
            }
        })?;
    let recovered = status(&node);
    tracing::info!(
        id = %config.id,
        term = recovered.term,
        commit = recovered.commit,
        applied = recovered.applied,
        last_index = recovered.last_index,
        dir = %config.data_dir.display(),
        "recovered"
    );

    let (inbox, inputs) = std::sync::mpsc::sync_channel::<Input>(INBOX_CAPACITY);
    let peers = config.peers.keys().copied().collect();
    let client_tls = tls.as_ref().map(|tls| tls.client_acceptor.clone());
    runtime.spawn(serve_peers(
        peer_listener,
        config.id,
        peers,
        tls,
        inbox.clone(),
        stats,
    ));
    runtime.spawn(serve_clients(client_listener, client_tls, inbox.clone()));
    runtime.spawn(shutdown_on_signal(inbox));
    tracing::info!(
        id = %config.id,
        peers = %config.peer_listen,
        clients = %config.client_listen,
        "kvnode ready"
    );

    let server = kv_server(kv, config.bug.as_deref());
    let node_thread = std::thread::Builder::new()
        .name("raft".to_string())
        .spawn(move || run_node(node, clock, inputs, server))
        .map_err(|e| NodeError::Io(format!("starting the node thread: {e}")))?;
    let result = match node_thread.join() {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    runtime.shutdown_timeout(Duration::from_millis(500));
    result.map_err(NodeError::Stopped)
}

/// Waits for SIGTERM or SIGINT and asks the node thread to stop.
async fn shutdown_on_signal(inbox: std::sync::mpsc::SyncSender<Input>) {
    let (Ok(mut term), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the node with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = interrupt.recv() => tracing::info!("SIGINT: shutting down"),
    }
    // Bounded: the node thread drains its inbox, so a full inbox frees up quickly.
    for _ in 0..1000 {
        match inbox.try_send(Input::Shutdown) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => return,
            Err(TrySendError::Full(_)) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    tracing::error!("the node thread does not take the shutdown request; exiting");
    std::process::exit(1);
}

/// A seed for the election timeouts that differs between processes and restarts.
fn rng_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}
