//! Services run under test by the simulator, starting with a replicated key-value store.
//!
//! Everything here is pure and runtime-independent: no async, no I/O, no clocks. The pieces:
//!
//! - [`kv`]: the commands ([`KvCommand`], [`KvReply`]), the pure [`KvStore`], the service
//!   errors ([`KvError`]) and a replica's settings ([`KvServerConfig`], with the planted
//!   [`KvBugs`]).
//! - [`sessions`]: the exactly-once [`SessionTable`] (client id → last seq and its reply).
//! - [`rsm`]: [`Deduplicated`], which puts any [`App`] behind the session table and
//!   implements [`raft_core::StateMachine`], snapshots included.
//! - [`pending`]: [`PendingRequests`], the clients of a server waiting for their proposals,
//!   keyed by log position; [`proposals`]: [`ProposalWaiters`], the same keyed by
//!   `raft_core::ProposalId` and fed straight from `raft_core::Node` events.
//! - [`clerk`]: the sans-IO [`Clerk`], which retries across servers with one seq per request.
//! - [`shardctrler`]: the shard controller, numbered configurations of which replica group
//!   serves each shard, with a deterministic, minimal-move [`shardctrler::rebalance`].
//! - [`shardkv`]: the sharded kv state of one replica group, whose shards move between groups
//!   (with their sessions) as configurations change.
//!
//! A request's path: the clerk wraps a command in an [`Envelope`] (client id, seq, command);
//! a server that leads proposes its bytes and parks the client in [`ProposalWaiters`] (or
//! [`PendingRequests`]); every replica applies the entry through [`Deduplicated`], which runs
//! it once per (client, seq); the leader's `Applied` event resolves the waiter with the encoded
//! [`ApplyOutcome`], which becomes the reply. Automatic snapshots (which carry the session
//! table) are raft-core's: see [`KvServerConfig::snapshot_threshold_bytes`].
//!
//! ```
//! use raft_core::{LogIndex, StateMachine};
//! use workloads::{ApplyOutcome, ClientId, Envelope, KvCommand, KvReply, KvStateMachine, Seq};
//!
//! let mut replica = KvStateMachine::new(Default::default());
//! let append = KvCommand::Append { key: "k".into(), value: "x".into() };
//! let bytes = Envelope { client: ClientId(7), seq: Seq(1), command: append }.encode().unwrap();
//! // The same request committed twice (a retry) runs once.
//! let first = replica.apply(LogIndex(1), &bytes);
//! let second = replica.apply(LogIndex(2), &bytes);
//! assert_eq!(ApplyOutcome::decode(&first).unwrap(), ApplyOutcome::Applied(KvReply::Done));
//! assert_eq!(ApplyOutcome::decode(&second).unwrap(), ApplyOutcome::Duplicate(KvReply::Done));
//! assert_eq!(replica.app().get("k"), Some("x"));
//! ```
#![deny(missing_docs)]

pub mod clerk;
pub mod codec;
pub mod kv;
pub mod pending;
pub mod proposals;
pub mod raft_node;
pub mod rsm;
pub mod sessions;
pub mod shardctrler;
pub mod shardkv;

pub use clerk::{Attempt, Clerk, ClerkError, ClerkStep, Outgoing};
pub use codec::{CodecError, COMMAND_BYTES_MAX, SNAPSHOT_BYTES_MAX};
pub use kv::{
    KvAnswer, KvBugs, KvCommand, KvError, KvHandled, KvReply, KvServer, KvServerConfig,
    KvStateMachine, KvStore, VALUE_BYTES_MAX,
};
pub use pending::{PendingRequests, Resolution};
pub use proposals::ProposalWaiters;
pub use raft_node::RaftNode;
pub use rsm::{App, ApplyOutcome, Deduplicated, Envelope};
pub use sessions::{ClientId, Seq, SessionCheck, SessionTable};
