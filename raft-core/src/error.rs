//! Errors returned by the driver and the protocol core.

use crate::config::ConfigError;
use crate::io::DiskError;
use crate::types::{LogIndex, NodeId};
use crate::wal::WalError;

/// An operating error: bad input, a lost race with another leader, or a failed disk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// This replica is not the leader; `hint` is the leader it knows of, if any.
    #[error("not the leader (leader hint: {hint:?})")]
    NotLeader {
        /// The leader this replica believes in, if any.
        hint: Option<NodeId>,
    },
    /// The proposal was definitely not committed: another entry took its log position.
    #[error("proposal at index {index} was overwritten by another leader")]
    ProposalDropped {
        /// The position the proposal had been given.
        index: LogIndex,
    },
    /// The command is larger than [`PROPOSAL_BYTES_MAX`](crate::PROPOSAL_BYTES_MAX).
    #[error("proposal of {len} bytes exceeds the {max} byte limit")]
    ProposalTooLarge {
        /// Size of the command.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The leader is handing leadership to `target` and accepts no proposals until the
    /// transfer completes (it then answers `NotLeader`) or aborts after an election timeout.
    /// Retry later, ideally on the new leader.
    #[error("leadership transfer to {target} in progress")]
    TransferInProgress {
        /// The replica leadership is being handed to.
        target: NodeId,
    },
    /// A membership change was refused: another one is in progress, the leader has not yet
    /// committed an entry of its term, the learner has not caught up, or the change does not
    /// apply to the current configuration. The text says which.
    #[error("membership change refused: {0}")]
    MembershipChange(String),
    /// The request named a replica that is not a voter of this cluster.
    #[error("{0} is not a voter of this cluster")]
    UnknownPeer(NodeId),
    /// The outcome of the proposal cannot be known here (for example, a snapshot replaced the
    /// log around it). It may or may not have been committed.
    #[error("outcome of the proposal at index {index} is unknown")]
    Indeterminate {
        /// The position the proposal had been given.
        index: LogIndex,
    },
    /// A read could not be confirmed in time (no quorum, or the leader changed).
    #[error("read could not be confirmed: {0}")]
    ReadAborted(String),
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The disk failed.
    #[error("disk error: {0}")]
    Disk(#[from] DiskError),
    /// The write-ahead log or a snapshot file is damaged.
    #[error("storage error: {0}")]
    Wal(#[from] WalError),
    /// The state machine rejected a snapshot.
    #[error("state machine could not restore a snapshot: {0}")]
    Restore(String),
    /// The node stopped after an earlier fatal error and accepts no more work.
    #[error("node stopped: {0}")]
    Stopped(String),
}
