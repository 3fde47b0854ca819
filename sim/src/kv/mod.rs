//! The kv service under simulation: every node runs `workloads::KvStateMachine` (a
//! `KvStore` behind the exactly-once session table) and a `workloads::KvServer`, and
//! concurrent `workloads::Clerk`s drive them while every operation's call and return is
//! recorded in simulated time. At the end of the seed the history is checked per key with the
//! `linearizability` crate.
//!
//! - [`config`]: the workload shape drawn from the seed (clients, keys, value sizes, mix).
//! - [`service`]: the kv service as a [`Service`](crate::service::Service).
//! - [`clients`]: the clerks and the recorder.
//! - [`check`]: the end-of-seed check and the failure artifacts (JSONL, HTML).

pub mod check;
pub mod clients;
pub mod config;
pub mod service;

pub use check::{check_history, write_artifacts, KvHistory, LinCheck};
pub use clients::{KvDriver, KvStats};
pub use config::KvWorkload;
