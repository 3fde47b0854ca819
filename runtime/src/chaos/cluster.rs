//! A local cluster of kvnode processes for the chaos test (and the process-level tests):
//! ports on 127.0.0.1, a data directory and a log file per node, a proxy on every directed
//! peer link, and the process faults (SIGKILL and restart, SIGSTOP and SIGCONT).

use crate::chaos::proxy::{self, Link};
use raft_core::NodeId;
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where a node listens.
#[derive(Clone, Copy, Debug)]
pub struct NodeAddrs {
    /// Its peer port.
    pub peer: SocketAddr,
    /// Its client port.
    pub client: SocketAddr,
}

/// A running (or stopped) cluster of kvnode processes.
pub struct LocalCluster {
    kvnode: PathBuf,
    dir: PathBuf,
    tls: bool,
    /// How clients reach the client ports: TLS with the cluster's CA, or plain.
    client_security: crate::ClientSecurity,
    /// A planted bug every node runs with.
    pub bug: Option<String>,
    /// Listening addresses, by node.
    pub addrs: BTreeMap<NodeId, NodeAddrs>,
    /// The proxy of each directed link `(from, to)`.
    pub links: BTreeMap<(NodeId, NodeId), Link>,
    proxy_addrs: BTreeMap<(NodeId, NodeId), SocketAddr>,
    procs: BTreeMap<NodeId, Child>,
    paused: BTreeMap<NodeId, bool>,
    /// Times each node was started.
    pub starts: BTreeMap<NodeId, u64>,
}

/// `n` free ports on 127.0.0.1, held until the caller drops the listeners.
fn free_listeners(n: usize) -> std::io::Result<Vec<StdListener>> {
    (0..n).map(|_| StdListener::bind("127.0.0.1:0")).collect()
}

impl LocalCluster {
    /// Sets up `nodes` nodes under `dir` (which must not hold an earlier cluster) and the
    /// proxies, without starting any process. With `tls`, makes certificates in `dir/certs`.
    /// Must be called inside a tokio runtime (the proxies run on it).
    ///
    /// # Errors
    /// A directory, certificate or port could not be made.
    pub fn create(
        kvnode: &Path,
        dir: &Path,
        nodes: u64,
        tls: bool,
    ) -> Result<LocalCluster, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let ids: Vec<NodeId> = (1..=nodes).map(NodeId).collect();
        let client_security = if tls {
            let certs = dir.join("certs");
            crate::tls::generate(&certs, &ids).map_err(|e| e.to_string())?;
            crate::ClientSecurity::tls_from_certs_dir(&certs).map_err(|e| e.to_string())?
        } else {
            crate::ClientSecurity::Plain
        };
        let n = ids.len();
        let listeners = free_listeners(2 * n + n * (n - 1)).map_err(|e| e.to_string())?;
        let mut ports = listeners.into_iter();
        let mut addrs = BTreeMap::new();
        let mut held = Vec::new();
        for &id in &ids {
            let (peer, client) = (
                ports.next().expect("counted"),
                ports.next().expect("counted"),
            );
            let local = |l: &StdListener| l.local_addr().map_err(|e| e.to_string());
            addrs.insert(
                id,
                NodeAddrs {
                    peer: local(&peer)?,
                    client: local(&client)?,
                },
            );
            held.push(peer);
            held.push(client);
        }
        drop(held); // the nodes bind these themselves
        let mut links = BTreeMap::new();
        let mut proxy_addrs = BTreeMap::new();
        for &from in &ids {
            for &to in &ids {
                if from == to {
                    continue;
                }
                let listener = ports.next().expect("counted");
                proxy_addrs.insert(
                    (from, to),
                    listener.local_addr().map_err(|e| e.to_string())?,
                );
                listener.set_nonblocking(true).map_err(|e| e.to_string())?;
                let listener =
                    tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
                links.insert((from, to), proxy::start(listener, addrs[&to].peer));
            }
        }
        Ok(LocalCluster {
            kvnode: kvnode.to_path_buf(),
            dir: dir.to_path_buf(),
            tls,
            client_security,
            bug: None,
            addrs,
            links,
            proxy_addrs,
            procs: BTreeMap::new(),
            paused: BTreeMap::new(),
            starts: BTreeMap::new(),
        })
    }

    /// The nodes.
    pub fn ids(&self) -> Vec<NodeId> {
        self.addrs.keys().copied().collect()
    }

    /// Client addresses, for a [`KvClient`](crate::KvClient).
    pub fn client_addrs(&self) -> BTreeMap<NodeId, SocketAddr> {
        self.addrs.iter().map(|(&id, a)| (id, a.client)).collect()
    }

    /// How a [`KvClient`](crate::KvClient) reaches the client ports (TLS unless the cluster
    /// is insecure).
    pub fn client_security(&self) -> crate::ClientSecurity {
        self.client_security.clone()
    }

    /// Node `id`'s data directory.
    pub fn data_dir(&self, id: NodeId) -> PathBuf {
        self.dir.join(format!("n{}", id.0))
    }

    /// Node `id`'s log file (every run of the node appends to it).
    pub fn log_file(&self, id: NodeId) -> PathBuf {
        self.dir.join(format!("n{}.log", id.0))
    }

    /// Whether node `id` has a process (running or paused).
    pub fn is_up(&self, id: NodeId) -> bool {
        self.procs.contains_key(&id)
    }

    /// Starts node `id`'s process (it recovers from its data directory).
    ///
    /// # Errors
    /// The process could not be spawned.
    pub fn start(&mut self, id: NodeId) -> Result<(), String> {
        assert!(!self.is_up(id), "{id} is already running");
        let addrs = self.addrs[&id];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_file(id))
            .map_err(|e| e.to_string())?;
        let log_err = log.try_clone().map_err(|e| e.to_string())?;
        let mut command = Command::new(&self.kvnode);
        command
            .arg("run")
            .arg("--id")
            .arg(id.0.to_string())
            .arg("--data-dir")
            .arg(self.data_dir(id))
            .arg("--peer-listen")
            .arg(addrs.peer.to_string())
            .arg("--client-listen")
            .arg(addrs.client.to_string());
        if self.addrs.len() == 1 {
            command.arg("--local-nodes").arg("1");
        }
        for (&(from, to), _) in self.links.iter().filter(|((from, _), _)| *from == id) {
            debug_assert_eq!(from, id);
            let proxy = self.proxy_addr(from, to);
            command.arg("--peer").arg(format!("{}={proxy}", to.0));
        }
        if self.tls {
            command.arg("--certs").arg(self.dir.join("certs"));
        } else {
            command.arg("--insecure");
        }
        if let Some(bug) = &self.bug {
            command.arg("--bug").arg(bug);
        }
        command
            .env(
                "RUST_LOG",
                std::env::var("CHAOS_NODE_LOG").unwrap_or_else(|_| "info".to_string()),
            )
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let child = command
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", self.kvnode.display()))?;
        self.procs.insert(id, child);
        self.paused.insert(id, false);
        *self.starts.entry(id).or_default() += 1;
        Ok(())
    }

    fn proxy_addr(&self, from: NodeId, to: NodeId) -> SocketAddr {
        self.proxy_addrs[&(from, to)]
    }

    /// Starts every node that is down.
    ///
    /// # Errors
    /// As for [`LocalCluster::start`].
    pub fn start_all(&mut self) -> Result<(), String> {
        for id in self.ids() {
            if !self.is_up(id) {
                self.start(id)?;
            }
        }
        Ok(())
    }

    /// SIGKILLs node `id` and reaps it.
    pub fn kill(&mut self, id: NodeId) {
        if let Some(mut child) = self.procs.remove(&id) {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused.insert(id, false);
    }

    fn signal(&self, id: NodeId, signal: libc::c_int) -> bool {
        let Some(child) = self.procs.get(&id) else {
            return false;
        };
        let pid = child.id() as libc::pid_t;
        // SAFETY: kill(2) on a child we spawned and have not reaped.
        unsafe { libc::kill(pid, signal) == 0 }
    }

    /// SIGSTOPs node `id`.
    pub fn pause(&mut self, id: NodeId) {
        if self.signal(id, libc::SIGSTOP) {
            self.paused.insert(id, true);
        }
    }

    /// SIGCONTs node `id`.
    pub fn resume(&mut self, id: NodeId) {
        if self.paused.get(&id) == Some(&true) && self.signal(id, libc::SIGCONT) {
            self.paused.insert(id, false);
        }
    }

    /// Resumes every paused node and heals every link.
    pub fn heal(&mut self) {
        for id in self.ids() {
            self.resume(id);
        }
        for link in self.links.values() {
            link.set_cut(false);
        }
    }

    /// Whether node `id`'s process has exited on its own (a crash), with its status.
    pub fn exited(&mut self, id: NodeId) -> Option<std::process::ExitStatus> {
        self.procs.get_mut(&id)?.try_wait().ok().flatten()
    }

    /// Stops every node with SIGTERM and waits up to `grace` for each; returns the nodes that
    /// did not exit cleanly (non-zero status, or SIGKILLed after the grace period).
    pub fn stop_all(&mut self, grace: Duration) -> Vec<(NodeId, String)> {
        let mut unclean = Vec::new();
        for id in self.ids() {
            self.resume(id);
            self.signal(id, libc::SIGTERM);
        }
        for id in self.ids() {
            let Some(mut child) = self.procs.remove(&id) else {
                continue;
            };
            let start = Instant::now();
            let status = loop {
                match child.try_wait() {
                    Ok(Some(status)) => break Some(status),
                    Ok(None) if start.elapsed() < grace => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    _ => break None,
                }
            };
            match status {
                Some(status) if status.success() => {}
                Some(status) => unclean.push((id, format!("exited with {status}"))),
                None => {
                    let _ = child.kill();
                    let _ = child.wait();
                    unclean.push((id, format!("did not stop within {grace:?} of SIGTERM")));
                }
            }
        }
        unclean
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for id in self.ids() {
            self.kill(id);
        }
    }
}
