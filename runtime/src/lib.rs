//! The Raft core outside simulation: the same `raft_core::Node` and `workloads` kv service the
//! simulator tests, on real files ([`FileDisk`]), TCP with TLS ([`transport`], [`tls`],
//! [`client_port`]) and
//! the system clock ([`SystemClock`]).
//!
//! Binaries:
//! - `kvnode`: one replica of the kv service (`kvnode run`), and `kvnode certs`, which makes
//!   a cluster CA and node certificates;
//! - `kvctl`: a client (put, get, append, delete, cas, status) that finds the leader and
//!   retries with its exactly-once session;
//! - `chaos`: starts a local cluster of kvnode processes, kills, pauses and partitions them
//!   while clients record a history, then checks the history for linearizability.
//!
//! This crate is plain tokio, not madsim: nothing here runs inside the simulator.
#![deny(missing_docs)]

pub mod chaos;
pub mod client;
pub mod client_port;
pub mod clock;
pub mod config;
pub mod file_disk;
pub mod frame;
pub mod node;
pub mod server;
pub mod tls;
pub mod transport;
pub mod wire;

pub use client::{CallError, ClientSecurity, KvClient};
pub use clock::SystemClock;
pub use config::{NodeConfig, PeerSecurity};
pub use file_disk::FileDisk;
