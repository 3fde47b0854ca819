//! A kvnode's configuration: flags, or a small TOML file.
//!
//! ```toml
//! id = 1
//! data_dir = "kvdata/n1"
//! peer_listen = "127.0.0.1:7101"
//! client_listen = "127.0.0.1:7201"
//! certs_dir = "kvdata/certs"   # or: insecure = true
//! tick_ms = 10
//! snapshot_threshold_bytes = 1048576
//!
//! [[peers]]
//! id = 2
//! addr = "127.0.0.1:7102"
//!
//! [[peers]]
//! id = 3
//! addr = "127.0.0.1:7103"
//! ```
//!
//! `peers` lists the *other* voters and the address to dial for each (which may be a proxy:
//! the chaos test puts one in every link). The cluster's voters are this node plus its peers.

use raft_core::NodeId;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// How peers and clients talk to a node: both TLS, or both plain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerSecurity {
    /// TLS with the certificates in this directory (see [`crate::tls`]): mutual between
    /// peers, server authentication only on the client port (see [`crate::client_port`]).
    Tls(PathBuf),
    /// Plain TCP on both ports (only with `--insecure`).
    Insecure,
}

/// Everything a kvnode needs to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// This node.
    pub id: NodeId,
    /// Its data directory (WAL and snapshot).
    pub data_dir: PathBuf,
    /// Where it accepts peers.
    pub peer_listen: SocketAddr,
    /// Where it accepts clients.
    pub client_listen: SocketAddr,
    /// The other voters and where to dial them.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// TLS or not.
    pub security: PeerSecurity,
    /// Milliseconds per Raft tick (elections take 10 to 20 ticks).
    pub tick_ms: u64,
    /// Log bytes above which the node snapshots.
    pub snapshot_threshold_bytes: u64,
    /// A planted bug to turn on (a `raft_core::Bugs` or `workloads::KvBugs` name, or
    /// [`BUG_ACK_BEFORE_COMMIT`](crate::server::BUG_ACK_BEFORE_COMMIT)), so that
    /// the chaos test can be shown to catch it. Never set in production.
    pub bug: Option<String>,
}

/// A configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// The TOML file's shape.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    id: u64,
    data_dir: PathBuf,
    peer_listen: SocketAddr,
    client_listen: SocketAddr,
    #[serde(default)]
    certs_dir: Option<PathBuf>,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    tick_ms: Option<u64>,
    #[serde(default)]
    snapshot_threshold_bytes: Option<u64>,
    #[serde(default)]
    peers: Vec<FilePeer>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePeer {
    id: u64,
    addr: SocketAddr,
}

/// Default tick.
pub const TICK_MS_DEFAULT: u64 = 10;
/// Default snapshot threshold (1 MiB: a small log, so restarts replay little).
pub const SNAPSHOT_THRESHOLD_BYTES_DEFAULT: u64 = 1024 * 1024;

impl NodeConfig {
    /// Reads a TOML file.
    ///
    /// # Errors
    /// The file cannot be read, does not parse, or fails [`NodeConfig::validate`].
    pub fn from_file(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        NodeConfig::from_toml(&text)
            .map_err(|e| ConfigError(format!("{}: {}", path.display(), e.0)))
    }

    /// Parses TOML text.
    ///
    /// # Errors
    /// As for [`NodeConfig::from_file`].
    pub fn from_toml(text: &str) -> Result<NodeConfig, ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| ConfigError(e.to_string()))?;
        let security =
            match (file.insecure, file.certs_dir) {
                (true, None) => PeerSecurity::Insecure,
                (false, Some(dir)) => PeerSecurity::Tls(dir),
                (true, Some(_)) => {
                    return Err(ConfigError(
                        "give either certs_dir or insecure = true, not both".into(),
                    ))
                }
                (false, None) => return Err(ConfigError(
                    "peer and client traffic is TLS: give certs_dir (see `kvnode certs`), or insecure = true"
                        .into(),
                )),
            };
        let mut peers = BTreeMap::new();
        for peer in file.peers {
            if peers.insert(NodeId(peer.id), peer.addr).is_some() {
                return Err(ConfigError(format!("peer {} is listed twice", peer.id)));
            }
        }
        let config = NodeConfig {
            id: NodeId(file.id),
            data_dir: file.data_dir,
            peer_listen: file.peer_listen,
            client_listen: file.client_listen,
            peers,
            security,
            tick_ms: file.tick_ms.unwrap_or(TICK_MS_DEFAULT),
            snapshot_threshold_bytes: file
                .snapshot_threshold_bytes
                .unwrap_or(SNAPSHOT_THRESHOLD_BYTES_DEFAULT),
            bug: None,
        };
        config.validate()?;
        Ok(config)
    }

    /// Node `id` of the default local cluster of `nodes` nodes: peers on 127.0.0.1:7101...,
    /// clients on 127.0.0.1:7201..., data in `kvdata/n<id>`, certificates in `kvdata/certs`.
    pub fn local(id: u64, nodes: u64) -> NodeConfig {
        let peers = (1..=nodes)
            .filter(|&other| other != id)
            .map(|other| (NodeId(other), local_peer_addr(other)))
            .collect();
        NodeConfig {
            id: NodeId(id),
            data_dir: PathBuf::from(format!("kvdata/n{id}")),
            peer_listen: local_peer_addr(id),
            client_listen: local_client_addr(id),
            peers,
            security: PeerSecurity::Tls(PathBuf::from("kvdata/certs")),
            tick_ms: TICK_MS_DEFAULT,
            snapshot_threshold_bytes: SNAPSHOT_THRESHOLD_BYTES_DEFAULT,
            bug: None,
        }
    }

    /// The voters: this node and its peers, sorted.
    pub fn voters(&self) -> Vec<NodeId> {
        let mut voters: Vec<NodeId> = self.peers.keys().copied().collect();
        voters.push(self.id);
        voters.sort();
        voters
    }

    /// Checks the settings that are not checked by their types.
    ///
    /// # Errors
    /// Node id 0, the node among its own peers, a zero tick.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.id.0 == 0 {
            return Err(ConfigError("node ids start at 1".into()));
        }
        if self.peers.contains_key(&self.id) {
            return Err(ConfigError(format!(
                "node {} lists itself as a peer",
                self.id
            )));
        }
        if self.peers.keys().any(|id| id.0 == 0) {
            return Err(ConfigError("node ids start at 1".into()));
        }
        if !(1..=10_000).contains(&self.tick_ms) {
            return Err(ConfigError(format!(
                "tick_ms {} is not in 1..=10000",
                self.tick_ms
            )));
        }
        if let Some(bug) = &self.bug {
            if raft_core::Bugs::from_name(bug).is_none()
                && workloads::KvBugs::from_name(bug).is_none()
                && bug != crate::server::BUG_ACK_BEFORE_COMMIT
            {
                return Err(ConfigError(format!(
                    "unknown bug {bug:?}; known: {}, {}, {}",
                    crate::server::BUG_ACK_BEFORE_COMMIT,
                    raft_core::Bugs::NAMES.join(", "),
                    workloads::KvBugs::NAMES.join(", ")
                )));
            }
        }
        Ok(())
    }
}

/// Peer address of node `id` in the default local cluster.
pub fn local_peer_addr(id: u64) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7100 + id as u16))
}

/// Client address of node `id` in the default local cluster.
pub fn local_client_addr(id: u64) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7200 + id as u16))
}

/// Parses `ID=ADDR`.
///
/// # Errors
/// Anything else.
pub fn parse_member(text: &str) -> Result<(NodeId, SocketAddr), String> {
    let (id, addr) = text
        .split_once('=')
        .ok_or_else(|| format!("expected ID=ADDR, got {text:?}"))?;
    let id: u64 = id.parse().map_err(|e| format!("node id {id:?}: {e}"))?;
    let addr: SocketAddr = addr.parse().map_err(|e| format!("address {addr:?}: {e}"))?;
    Ok((NodeId(id), addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_file_parses() {
        let text = "id = 1\ndata_dir = \"d\"\npeer_listen = \"127.0.0.1:7101\"\n\
            client_listen = \"127.0.0.1:7201\"\ninsecure = true\n\
            [[peers]]\nid = 2\naddr = \"127.0.0.1:7102\"\n";
        let config = NodeConfig::from_toml(text).unwrap();
        assert_eq!(config.voters(), vec![NodeId(1), NodeId(2)]);
        assert_eq!(config.security, PeerSecurity::Insecure);
    }

    #[test]
    fn bad_files_give_clear_errors() {
        let base = "id = 1\ndata_dir = \"d\"\npeer_listen = \"127.0.0.1:7101\"\n\
            client_listen = \"127.0.0.1:7201\"\n";
        let error = NodeConfig::from_toml(base).unwrap_err();
        assert!(error.0.contains("certs_dir"), "{error}");
        let error =
            NodeConfig::from_toml(&format!("{base}insecure = true\nbogus = 1\n")).unwrap_err();
        assert!(error.0.contains("bogus"), "{error}");
        let error = NodeConfig::from_toml(&format!(
            "{base}insecure = true\n[[peers]]\nid = 1\naddr = \"127.0.0.1:1\"\n"
        ))
        .unwrap_err();
        assert!(error.0.contains("itself"), "{error}");
        assert!(parse_member("2=127.0.0.1:80").is_ok());
        assert!(parse_member("2:127.0.0.1").is_err());
    }
}
