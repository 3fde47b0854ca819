//! What a [`Node`](crate::Node) reports to its application.

use crate::error::Error;
use crate::types::{LogIndex, NodeId, Role, Term};

/// Identifies a proposal made through [`Node::propose`](crate::Node::propose).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProposalId(pub u64);

/// Identifies a read barrier requested through [`Node::read_barrier`](crate::Node::read_barrier).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReadId(pub u64);

/// Something the application should know about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The proposal was committed at `index` in `term` (and has been applied).
    Committed {
        /// The proposal.
        id: ProposalId,
        /// Its log position.
        index: LogIndex,
        /// Its term.
        term: Term,
    },
    /// The proposal failed; see the error for whether it may still have been committed.
    ProposalFailed {
        /// The proposal.
        id: ProposalId,
        /// Why.
        error: Error,
    },
    /// An entry was applied to the state machine (no-op entries have empty data and result).
    Applied {
        /// Its log position.
        index: LogIndex,
        /// Its term.
        term: Term,
        /// The command bytes.
        data: Vec<u8>,
        /// What the state machine returned.
        result: Vec<u8>,
    },
    /// The read barrier passed: the state machine, applied up to at least `index`, may be read.
    ReadReady {
        /// The barrier.
        id: ReadId,
        /// The read index.
        index: LogIndex,
    },
    /// The read barrier failed; the read must be retried.
    ReadFailed {
        /// The barrier.
        id: ReadId,
        /// Why.
        error: Error,
    },
    /// What this replica promises to recover after a crash changed: the log up to `index`
    /// (whose entry has `log_term`) and the term and vote. Reported when a receipt made more
    /// durable, and also when an entry that was durable is replaced in memory by a newer
    /// leader's (the promise then shrinks before the replacement is written).
    Persisted {
        /// Last log entry promised.
        index: LogIndex,
        /// Its term.
        log_term: Term,
        /// The durable current term.
        term: Term,
        /// The durable vote in that term.
        vote: Option<NodeId>,
    },
    /// The replica learned of a new leader (or lost its leader).
    LeaderChanged {
        /// The new leader, if known.
        leader: Option<NodeId>,
        /// The term.
        term: Term,
    },
}

/// A snapshot of a replica's observable state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    /// This replica.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its current term.
    pub term: Term,
    /// The leader it believes in.
    pub leader: Option<NodeId>,
    /// Its commit index.
    pub commit: LogIndex,
    /// Its applied index.
    pub applied: LogIndex,
    /// First index still in the log (entries before it are in the snapshot).
    pub first_index: LogIndex,
    /// Last index in the log.
    pub last_index: LogIndex,
}
