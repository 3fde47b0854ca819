//! What travels between the clerks, the administrator, the controller group and the replica
//! groups.
//!
//! Every request is handled by one server ([`ShardServer`](super::ShardServer)) in one step of
//! its node; every answer names where it goes ([`ReplyTo`]) and travels back over whatever
//! network carries the requests (the simulator's may lose or delay it).

use crate::clerk::Attempt;
use crate::kv::{KvCommand, KvError, KvReply};
use crate::rsm::Envelope;
use crate::shardctrler::{ConfigNum, CtrlerCommand, CtrlerError, CtrlerReply, ShardConfig};
use crate::shardctrler::{Gid, ShardId};
use crate::shardkv::{ShardAttempt, ShardKvError, ShardTransfer, TransferError};
use raft_core::NodeId;

/// Which service a Raft group of the sharded kv runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum GroupRole {
    /// The shard controller.
    Ctrler,
    /// A replica group of the sharded kv.
    Replica(Gid),
}

/// Where a node sends its answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyTo {
    /// A clerk's request to a replica group.
    Clerk {
        /// The clerk (an index the caller chose).
        clerk: usize,
        /// The send being answered.
        attempt: ShardAttempt,
    },
    /// A clerk's configuration query.
    ClerkQuery {
        /// The clerk.
        clerk: usize,
        /// Which of the clerk's queries this answers.
        query: u64,
    },
    /// The administrator's Join, Leave or Move.
    Admin {
        /// The send being answered.
        attempt: Attempt,
    },
    /// A replica group's server (its reconfiguration work).
    Server {
        /// The group.
        gid: Gid,
        /// The server.
        node: NodeId,
    },
}

/// A request handled in one step of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShardRequest {
    /// A replica group's server: if you lead, do your reconfiguration work now (fetch the next
    /// configuration, pull shards, ask for deletions).
    Tick,
    /// A clerk's Get, Put or Append, to a replica group.
    Client {
        /// Where the answer goes.
        reply: ReplyTo,
        /// The request.
        envelope: Envelope<KvCommand>,
    },
    /// A Join, Leave or Move, to the controller.
    Admin {
        /// Where the answer goes.
        reply: ReplyTo,
        /// The command.
        envelope: Envelope<CtrlerCommand>,
    },
    /// Read configuration `num` (the latest for `None`), to the controller.
    Query {
        /// Where the answer goes.
        reply: ReplyTo,
        /// The configuration wanted.
        num: Option<ConfigNum>,
    },
    /// Hand over `shard` for configuration `num`, to the previous owner's servers.
    Pull {
        /// Where the answer goes.
        reply: ReplyTo,
        /// The configuration of the hand-over.
        num: ConfigNum,
        /// The shard.
        shard: ShardId,
    },
    /// Delete your copy of `shard` handed over in `num`, to the previous owner's servers.
    Gc {
        /// Where the answer goes.
        reply: ReplyTo,
        /// The configuration of the hand-over.
        num: ConfigNum,
        /// The shard.
        shard: ShardId,
    },
    /// An answer to one of this server's own requests.
    Answer(Answer),
}

/// An answer to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// To a clerk's Get, Put or Append.
    Kv(Result<KvReply, ShardKvError>),
    /// To the administrator.
    Admin(Result<Result<CtrlerReply, CtrlerError>, KvError>),
    /// To a query.
    Config(Result<ShardConfig, KvError>),
    /// To a pull.
    Transfer {
        /// The configuration asked for.
        num: ConfigNum,
        /// The shard asked for.
        shard: ShardId,
        /// The data, or why not.
        result: Result<ShardTransfer, TransferError>,
    },
    /// To a deletion request: the previous owner holds no copy any more.
    Deleted {
        /// The configuration of the hand-over.
        num: ConfigNum,
        /// The shard.
        shard: ShardId,
    },
    /// A server that does not lead (with its hint) or could not finish the request.
    Refused(KvError),
}
