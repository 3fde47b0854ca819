//! The group-to-group side of a shard move: what a group must ask of others, and how it
//! answers their requests. Pure reads of [`ShardKv`]; the server sends and proposes.
//!
//! The protocol, for a shard that moves from group A to group B in configuration `n`:
//!
//! 1. Both groups log `InstallConfig(n)` (each when it is settled in `n - 1`). A's copy
//!    becomes `Offering` (no longer served); B's becomes `Pulling`.
//! 2. B asks A for the shard ([`ShardKv::pulls`]); A answers from its state
//!    ([`ShardKv::transfer`]), which works only once A is in configuration `n`, so A has
//!    stopped serving the shard before B gets it.
//! 3. B logs `InsertShard` with the data and sessions and serves the shard from then on.
//! 4. B asks A to delete its copy ([`ShardKv::gc_requests`]); A logs `DeleteShard` and
//!    answers once it has applied it (`Deleted`).
//! 5. B logs `ConfirmGc`; the shard is settled at both groups, which may now move on.

use super::command::{ShardKvCommand, ShardTransfer};
use super::machine::ShardKv;
use super::state::ShardState;
use crate::shardctrler::{ConfigNum, Gid, ShardId};
use raft_core::NodeId;

/// One request this group must send to another group: fetch a shard it is pulling, or ask
/// for the deletion of a shard it has received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRequest {
    /// The configuration of the hand-over.
    pub num: ConfigNum,
    /// The shard.
    pub shard: ShardId,
    /// The previous owner, who holds (or held) the shard.
    pub peer: Gid,
    /// The previous owner's servers, from the previous configuration.
    pub servers: Vec<NodeId>,
}

/// Why a group cannot hand over a shard.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// The group has not yet reached the configuration of the hand-over; ask again later.
    #[error("not yet at configuration {wanted} (at {current})")]
    NotReady {
        /// The configuration asked for.
        wanted: ConfigNum,
        /// The group's configuration.
        current: ConfigNum,
    },
    /// The group no longer holds the shard from that hand-over: it deleted it, which it does
    /// only after the receiver has the data. A receiver that is still pulling the shard and
    /// gets this answer has lost it; checkers treat that as a violation.
    #[error("shard already handed over and deleted")]
    Gone,
    /// The group is not handing this shard over in that configuration.
    #[error("shard not offered in that configuration")]
    NotOffered,
    /// The shard number is out of range.
    #[error("no such shard")]
    UnknownShard,
}

impl ShardKv {
    /// The shards this group is waiting for, and whom to ask.
    pub fn pulls(&self) -> Vec<PeerRequest> {
        self.requests_in(ShardState::Pulling)
    }

    /// The shards this group has received but whose previous owner has not confirmed the
    /// deletion of its copy: ask it to log `DeleteShard`, then log `ConfirmGc`.
    pub fn gc_requests(&self) -> Vec<PeerRequest> {
        self.requests_in(ShardState::GcPending)
    }

    fn requests_in(&self, state: ShardState) -> Vec<PeerRequest> {
        ShardId::all()
            .filter(|&shard| self.state(shard) == Some(state))
            .map(|shard| {
                let peer = self.previous_config().owner(shard);
                assert_ne!(
                    peer,
                    Gid::NONE,
                    "{shard} is {state:?} with no previous owner"
                );
                let servers = self.previous_config().groups.get(&peer).cloned();
                PeerRequest {
                    num: self.config().num,
                    shard,
                    peer,
                    servers: servers.expect("the previous owner is in the previous configuration"),
                }
            })
            .collect()
    }

    /// Answers another group's pull of `shard` for configuration `num`: the data and
    /// sessions to put in its `InsertShard`.
    ///
    /// # Errors
    /// [`TransferError`]: not there yet, already deleted, not ours to give, or no such shard.
    pub fn transfer(&self, num: ConfigNum, shard: ShardId) -> Result<ShardTransfer, TransferError> {
        let state = self.state(shard).ok_or(TransferError::UnknownShard)?;
        let current = self.config().num;
        if num > current {
            return Err(TransferError::NotReady {
                wanted: num,
                current,
            });
        }
        if num < current {
            return Err(TransferError::Gone);
        }
        match state {
            ShardState::Offering => Ok(ShardTransfer {
                num,
                shard,
                data: self.store(shard).expect("in range").clone(),
                sessions: self.sessions(shard).expect("in range").clone(),
            }),
            ShardState::Absent if self.previous_config().owner(shard) == self.gid() => {
                Err(TransferError::Gone)
            }
            _ => Err(TransferError::NotOffered),
        }
    }

    /// What this group proposes after answering a pull of `shard` for configuration `num`.
    ///
    /// Nothing: the copy may be deleted only once the receiver has logged the data and asks
    /// for the deletion, because the answer may be lost or the receiver may crash first.
    pub fn after_transfer(&self, num: ConfigNum, shard: ShardId) -> Option<ShardKvCommand> {
        // BUG (planted, `delete_before_confirm`): delete as soon as the answer is sent.
        self.bugs
            .delete_before_confirm
            .then_some(ShardKvCommand::DeleteShard { num, shard })
    }
}
