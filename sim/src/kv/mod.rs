//! The kv service under simulation: every node runs `workloads::KvStateMachine` (a
//! `KvStore` behind the exactly-once session table), servers answer clerk requests, and
//! concurrent `workloads::Clerk`s drive them while every operation's call and return is
//! recorded in simulated time. At the end of the seed the history is checked per key with the
//! `linearizability` crate.
//!
//! - [`config`]: the workload shape drawn from the seed (clients, keys, value sizes, mix).
//! - [`state`]: the state machine a node runs in either workload.
//! - [`server`]: how a node answers a clerk (writes through the log, Gets through ReadIndex).
//! - [`clients`]: the clerks and the recorder.
//! - [`check`]: the end-of-seed check and the failure artifacts (JSONL, HTML).

pub mod check;
pub mod clients;
pub mod config;
pub mod server;
pub mod state;

pub use check::{check_history, write_artifacts, KvHistory, LinCheck};
pub use clients::{KvDriver, KvStats};
pub use config::{KvWorkload, SimKvBugs, Workload};
pub use state::SimStateMachine;
