//! Helpers shared by the integration tests: scratch directories and free ports.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT: AtomicU64 = AtomicU64::new(0);

/// Tests that start kvnode processes take turns: they are timing-sensitive, and the machine
/// has few cores.
/// (An async mutex: the turn is held across awaits, and a failed test releases it.)
static PROCESSES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Holds the turn of a process-level test.
pub async fn processes_turn() -> tokio::sync::MutexGuard<'static, ()> {
    PROCESSES.lock().await
}

/// A fresh, empty directory under the target directory's tmp (removed on drop).
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

use raft_core::NodeId;
use runtime::chaos::cluster::LocalCluster;
use runtime::KvClient;
use std::time::{Duration, Instant};
use workloads::{ClientId, KvCommand, KvReply};

/// The kvnode binary cargo built for this test.
pub fn kvnode() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kvnode"))
}

/// A started cluster of `n` nodes under `scratch`, with a leader.
pub async fn cluster(scratch: &Scratch, n: u64, tls: bool) -> LocalCluster {
    let mut cluster = LocalCluster::create(&kvnode(), &scratch.0.join("cluster"), n, tls).unwrap();
    cluster.start_all().unwrap();
    wait_for_leader(&cluster).await;
    cluster
}

/// Waits (at most 20 s) for a leader; panics with the nodes' logs otherwise.
pub async fn wait_for_leader(cluster: &LocalCluster) -> NodeId {
    let mut client = KvClient::new(
        ClientId(1),
        cluster.client_addrs(),
        cluster.client_security(),
        Duration::from_millis(200),
    )
    .unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        for id in cluster.ids() {
            if let Some(status) = client.status(id).await {
                if status.role == "Leader" {
                    return id;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no leader within 20 s; logs:\n{}", logs(cluster));
}

/// Every node's log, for failure messages.
pub fn logs(cluster: &LocalCluster) -> String {
    cluster
        .ids()
        .into_iter()
        .map(|id| {
            let text = std::fs::read_to_string(cluster.log_file(id)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            format!("--- {id} ---\n{}\n", tail.join("\n"))
        })
        .collect()
}

/// Runs `command` through a fresh client and returns the reply, panicking on failure.
pub async fn call(cluster: &LocalCluster, client: u64, command: KvCommand) -> KvReply {
    let mut kv = KvClient::new(
        ClientId(client),
        cluster.client_addrs(),
        cluster.client_security(),
        Duration::from_millis(500),
    )
    .unwrap();
    match kv.call(command.clone(), Duration::from_secs(15)).await {
        Ok(reply) => reply,
        Err(error) => panic!("{command:?}: {error}; logs:\n{}", logs(cluster)),
    }
}
