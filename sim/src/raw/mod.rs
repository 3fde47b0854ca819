//! Raw Raft as a service: one client proposing opaque writes and issuing read barriers
//! against a hash-chain state machine, with every read checked for freshness.
//!
//! - [`client`]: the client, retrying until every operation completes.
//! - [`chain`]: the state machine, which also tells which command a read is served from.
//! - [`service`]: the [`Service`](crate::service::Service) that ties them to the nodes.

pub mod chain;
pub mod client;
pub mod service;

pub use chain::ChainStateMachine;
pub use client::{parse_payload, write_payload, Client, ClientStats, OpId, RawRequest};
pub use service::{RawProcess, RawService};
