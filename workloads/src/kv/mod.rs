//! The replicated key-value service: commands, the pure store, its errors and configuration.
//!
//! [`KvStore`] is plain data plus a pure `apply`; it knows nothing about Raft, sessions or
//! networks. Exactly-once execution comes from wrapping it in
//! [`Deduplicated`](crate::rsm::Deduplicated), which is what a Raft node runs
//! ([`KvStateMachine`]).

mod command;
mod config;
mod error;
pub mod server;
mod store;

pub use command::{KvCommand, KvReply};
pub use config::{KvBugs, KvServerConfig};
pub use error::KvError;
pub use server::{KvAnswer, KvHandled, KvServer};
pub use store::{KvStore, VALUE_BYTES_MAX};

/// The state machine a kv replica hands to `raft_core::Node`: the store behind the
/// exactly-once session table.
pub type KvStateMachine = crate::rsm::Deduplicated<KvStore>;
