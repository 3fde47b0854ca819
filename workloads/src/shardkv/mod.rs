//! The sharded kv service: replica groups that each serve some shards and move shards among
//! themselves as the configuration changes, while clients keep working.
//!
//! Each group is a Raft cluster running [`ShardKvStateMachine`] around the pure [`ShardKv`].
//! Client requests ([`KvCommand`](crate::kv::KvCommand) in an
//! [`Envelope`](crate::rsm::Envelope)), new configurations, arriving shards and deletions are
//! all [`ShardKvCommand`]s in the group's log. Every shard has a lifecycle
//! ([`ShardState`]) whose transitions are checked on every change; the hand-over protocol is
//! described in [`migration`]'s module documentation ([`ShardKv::pulls`],
//! [`ShardKv::transfer`], [`ShardKv::gc_requests`]).
//!
//! Clients use the sans-IO [`ShardClerk`], which routes by configuration and keeps one seq
//! stream across groups.
//!
//! Guarantees, each with a test: at most one group serves a shard at any time; a shard is
//! served as soon as its data arrives; shards a reconfiguration does not touch keep serving;
//! sessions move with their shard, so a retried request never runs twice; a group's storage
//! holds only the shards it owns once garbage collection has run.
//!
//! ```
//! use std::collections::BTreeMap;
//! use raft_core::NodeId;
//! use workloads::shardctrler::{CtrlerCommand, Gid, ShardCtrler};
//! use workloads::shardkv::{ShardBugs, ShardKv, ShardKvCommand, ShardKvReply};
//! use workloads::{ClientId, Envelope, KvCommand, KvReply, ApplyOutcome, Seq};
//!
//! let mut ctrler = ShardCtrler::new();
//! let groups = BTreeMap::from([(Gid(1), vec![NodeId(1)])]);
//! ctrler.execute(CtrlerCommand::Join { groups }).unwrap();
//! let mut group = ShardKv::new(Gid(1), ShardBugs::default());
//! let put = KvCommand::Put { key: "k".into(), value: "v".into() };
//! let envelope = Envelope { client: ClientId(1), seq: Seq(1), command: put };
//! let request = ShardKvCommand::Client(envelope);
//! // Before it installs a configuration that gives it the shard, the group refuses.
//! assert!(matches!(group.execute(request.clone()), ShardKvReply::WrongGroup { .. }));
//! group.execute(ShardKvCommand::InstallConfig(ctrler.latest().clone()));
//! assert_eq!(group.execute(request), ShardKvReply::Kv(ApplyOutcome::Applied(KvReply::Done)));
//! ```

mod bugs;
mod clerk;
mod command;
mod machine;
pub mod messages;
pub mod migration;
mod replica;
pub mod server;
mod state;

pub use bugs::ShardBugs;
pub use clerk::{ShardAttempt, ShardClerk, ShardClerkStep, ShardOutgoing};
pub use command::{ShardKvCommand, ShardKvError, ShardKvReply, ShardTransfer};
pub use machine::ShardKv;
pub use messages::{Answer, GroupRole, ReplyTo, ShardRequest};
pub use migration::{PeerRequest, TransferError};
pub use replica::ShardKvStateMachine;
pub use server::{GroupMachine, ShardOutput, ShardOutputs, ShardServer};
pub use state::ShardState;
