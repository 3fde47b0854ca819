//! What a replica group logs through Raft, and what applying it returns.

use crate::codec::{self, CodecError, Kind};
use crate::kv::{KvCommand, KvError, KvReply, KvStore};
use crate::rsm::{ApplyOutcome, Envelope};
use crate::sessions::SessionTable;
use crate::shardctrler::{ConfigNum, ShardConfig, ShardId};
use serde::{Deserialize, Serialize};

/// One shard's data and sessions, as the previous owner hands it over.
///
/// The sessions travel with the data: a client whose request ran at the previous owner may
/// retry it at the new owner after the move, and only the moved session tells the new owner
/// that the request already ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardTransfer {
    /// The configuration in which the receiver gained the shard.
    pub num: ConfigNum,
    /// The shard.
    pub shard: ShardId,
    /// Its keys and values.
    pub data: KvStore,
    /// The exactly-once sessions of the requests that touched it.
    pub sessions: SessionTable<KvReply>,
}

/// One entry in a replica group's log.
///
/// Configuration changes and shard moves are logged like client requests, so every member of
/// the group agrees which requests came before a change and which after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShardKvCommand {
    /// A client request.
    Client(Envelope<KvCommand>),
    /// Move to this configuration: accepted only if it is the next one and every shard is
    /// settled (no pull, hand-over or deletion in progress).
    InstallConfig(ShardConfig),
    /// The data of a shard this group is pulling, from its previous owner.
    InsertShard(ShardTransfer),
    /// Delete the copy of a shard handed over in configuration `num`: the receiver has it.
    DeleteShard {
        /// The configuration of the hand-over.
        num: ConfigNum,
        /// The shard.
        shard: ShardId,
    },
    /// The previous owner has deleted its copy of `shard`: nothing more to do for it.
    ConfirmGc {
        /// The configuration of the hand-over.
        num: ConfigNum,
        /// The shard.
        shard: ShardId,
    },
}

/// What applying one [`ShardKvCommand`] produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShardKvReply {
    /// A client request ran, was a duplicate, or was stale (see [`ApplyOutcome`]).
    Kv(ApplyOutcome<KvReply>),
    /// The group does not serve the key's shard now (not ours, or not arrived yet); nothing
    /// ran and no session was recorded, so the client may retry elsewhere with the same seq.
    WrongGroup {
        /// The key's shard.
        shard: ShardId,
        /// The group's configuration when the request was applied.
        num: ConfigNum,
    },
    /// The configuration was installed.
    Installed(ConfigNum),
    /// The shard's data was inserted; it is served from now on.
    Inserted {
        /// The configuration of the hand-over.
        num: ConfigNum,
        /// The shard.
        shard: ShardId,
    },
    /// This group holds no copy of the shard from that hand-over any more (deleted now or
    /// earlier): the receiver may log [`ShardKvCommand::ConfirmGc`].
    Deleted {
        /// The configuration of the hand-over.
        num: ConfigNum,
        /// The shard.
        shard: ShardId,
    },
    /// The confirmation was recorded; the shard is settled.
    Confirmed {
        /// The configuration of the hand-over.
        num: ConfigNum,
        /// The shard.
        shard: ShardId,
    },
    /// A reconfiguration command that does not apply now (a duplicate, or one that is early or
    /// late); nothing changed. Normal under retries.
    Ignored(String),
    /// The entry could not be decoded; nothing changed.
    Malformed(String),
}

/// Why a client request to a group produced no result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ShardKvError {
    /// The group does not serve the key's shard; re-read the configuration and retry.
    #[error("wrong group for {shard} at configuration {num}")]
    WrongGroup {
        /// The key's shard.
        shard: ShardId,
        /// The group's configuration.
        num: ConfigNum,
    },
    /// An error of the underlying kv service.
    #[error(transparent)]
    Kv(#[from] KvError),
    /// The reply was not to a client request.
    #[error("not a client reply: {0}")]
    NotAClientReply(String),
}

impl ShardKvError {
    /// Whether sending the same request again (possibly to another group) can succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            ShardKvError::WrongGroup { .. } => true,
            ShardKvError::Kv(error) => error.is_retryable(),
            ShardKvError::NotAClientReply(_) => false,
        }
    }
}

impl ShardKvReply {
    /// What to answer the client that sent the request.
    ///
    /// # Errors
    /// [`ShardKvError::WrongGroup`], the kv errors of [`ApplyOutcome::into_response`], or
    /// [`ShardKvError::NotAClientReply`] for the reply of a reconfiguration command.
    pub fn into_client_response(self) -> Result<KvReply, ShardKvError> {
        match self {
            ShardKvReply::Kv(outcome) => outcome.into_response().map_err(ShardKvError::Kv),
            ShardKvReply::WrongGroup { shard, num } => Err(ShardKvError::WrongGroup { shard, num }),
            other => Err(ShardKvError::NotAClientReply(format!("{other:?}"))),
        }
    }
}

impl ShardKvCommand {
    /// The bytes to propose.
    ///
    /// # Errors
    /// [`CodecError::TooLarge`] beyond [`COMMAND_BYTES_MAX`](crate::codec::COMMAND_BYTES_MAX)
    /// (for instance a shard too big to move in one entry).
    pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
        codec::encode(self, Kind::Command)
    }

    /// Decodes bytes made by [`ShardKvCommand::encode`].
    ///
    /// # Errors
    /// Malformed, oversized or trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        codec::decode(bytes, Kind::Command)
    }
}

impl ShardKvReply {
    /// The result bytes of an applied entry.
    ///
    /// # Errors
    /// [`CodecError::TooLarge`] beyond [`COMMAND_BYTES_MAX`](crate::codec::COMMAND_BYTES_MAX).
    pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
        codec::encode(self, Kind::Command)
    }

    /// Decodes the result bytes of an applied entry.
    ///
    /// # Errors
    /// Malformed, oversized or trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        codec::decode(bytes, Kind::Command)
    }
}
