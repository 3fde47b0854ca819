//! The explicit effects type of the protocol core.
//!
//! After any input, the caller takes a [`Ready`] and carries it out in this order:
//!
//! 1. send [`Ready::messages`] (the leader's appends go out while it writes its own log),
//! 2. install [`Ready::snapshot`], if any, into storage and the state machine,
//! 3. persist [`Ready::hard_state`] and [`Ready::entries`]; syncing yields a
//!    [`PersistReceipt`],
//! 4. send the messages released by [`Ready::take_messages_after_persist`], which demands
//!    that receipt: votes and append acknowledgements cannot leave before their state is durable,
//! 5. apply [`Ready::committed_entries`] and serve [`Ready::read_states`],
//! 6. call [`Raft::advance`](crate::Raft::advance) with the receipt.

use crate::error::Error;
use crate::message::Message;
use crate::types::{Entry, HardState, LogIndex, NodeId, Snapshot, Term};

/// The outcome of a linearizable read request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadState {
    /// The identifier given to [`Raft::read_index`](crate::Raft::read_index).
    pub request: u64,
    /// The read index (serve the read once applied reaches it), or why the read failed.
    pub result: Result<LogIndex, Error>,
}

/// A change of the known leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaderChange {
    /// The leader, if any.
    pub leader: Option<NodeId>,
    /// The term.
    pub term: Term,
}

/// Proof that a [`Ready`]'s state reached stable storage; issued by
/// [`Wal::persist`](crate::Wal::persist) only after `sync` returned `Ok`.
#[derive(Debug)]
pub struct PersistReceipt {
    /// The last entry made durable (or the installed snapshot's last entry).
    pub(crate) last: Option<(LogIndex, Term)>,
}

/// Everything the protocol core wants done after an input.
#[derive(Debug, Default)]
pub struct Ready {
    /// Hard state to persist, if it changed.
    pub hard_state: Option<HardState>,
    /// Entries to persist. If the first one is at or below the stored last index, storage must
    /// first drop its entries from that index on (a conflicting suffix was replaced).
    pub entries: Vec<Entry>,
    /// A snapshot received from the leader, to install before `entries`.
    pub snapshot: Option<Snapshot>,
    /// Messages that may be sent right away.
    pub messages: Vec<Message>,
    /// Committed entries to apply, in order, once this `Ready` is persisted.
    pub committed_entries: Vec<Entry>,
    /// Completed (or failed) read requests.
    pub read_states: Vec<ReadState>,
    /// Set if the known leader changed.
    pub leader_change: Option<LeaderChange>,
    /// True if the persisted state must be synced before the receipt is issued (commit-only
    /// hard state changes do not need a sync).
    pub must_sync: bool,
    /// Messages that depend on this `Ready` being durable.
    messages_after_persist: Vec<Message>,
}

impl Ready {
    pub(crate) fn set_messages_after_persist(&mut self, messages: Vec<Message>) {
        self.messages_after_persist = messages;
    }

    /// Releases the messages that may only be sent once this `Ready` is durable.
    pub fn take_messages_after_persist(&mut self, receipt: &PersistReceipt) -> Vec<Message> {
        let _ = receipt;
        std::mem::take(&mut self.messages_after_persist)
    }

    /// Number of messages waiting for persistence.
    pub fn messages_after_persist_len(&self) -> usize {
        self.messages_after_persist.len()
    }
}
