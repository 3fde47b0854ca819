//! The explicit effects type of the protocol core, and the receipts that prove persistence.
//!
//! After any input, the caller takes a numbered [`Ready`] and carries it out in this order:
//!
//! 1. send [`Ready::take_messages`] (the leader's appends go out while it writes its own log),
//! 2. install [`Ready::snapshot`], if any, into the state machine,
//! 3. hand the `Ready` to a [`Storage`](crate::Storage): `write` puts its snapshot, hard state
//!    and entries into the page cache and returns a [`Ticket`]; `sync(ticket)`, now or later,
//!    makes them durable and mints the [`PersistReceipt`],
//! 4. apply [`Ready::take_committed_entries`] and serve [`Ready::take_read_states`] (committed
//!    entries are only handed out once they are durable on this replica),
//! 5. give each receipt to [`Raft::on_persisted`](crate::Raft::on_persisted), in `Ready` order;
//!    it returns the messages that waited for that `Ready` to be durable (votes, append
//!    acknowledgements), which may then be sent.
//!
//! The messages that wait for durability never leave [`Raft`](crate::Raft): they are kept there
//! under the `Ready`'s number and released only by the receipt of that very `Ready`, so a
//! receipt for one write can never unlock the acknowledgements of another. Several `Ready`s may
//! be written before the first is synced (an asynchronous disk): their receipts are accepted
//! only in order, and a receipt for `Ready` N means that every `Ready` up to N is durable.

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

/// The number of a [`Ready`]: 1, 2, 3, ... in the order [`Raft::ready`](crate::Raft::ready)
/// hands them out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReadyNumber(pub u64);

impl std::fmt::Display for ReadyNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What a [`Ready`] asks storage to make durable, remembered from `write` until `sync`.
///
/// A storage mints it with [`Ready::ticket`] once the `Ready`'s state is written (not yet
/// synced), and turns it into the receipt with [`Ticket::into_receipt`] once the sync returned.
#[derive(Debug)]
#[must_use = "a ticket must be synced and its receipt given to Raft::on_persisted"]
pub struct Ticket {
    number: ReadyNumber,
    last: Option<(LogIndex, Term)>,
    hard_state: Option<HardState>,
    needs_sync: bool,
}

impl Ticket {
    /// The `Ready` this ticket belongs to.
    pub fn number(&self) -> ReadyNumber {
        self.number
    }

    /// True if an fsync is needed before the receipt may be issued (the `Ready` carried
    /// entries, a snapshot or a term/vote change that storage has not synced yet).
    pub fn needs_sync(&self) -> bool {
        self.needs_sync
    }

    /// Records that storage already made this ticket's state durable (for example a snapshot
    /// install, which syncs as it goes), so no further sync is needed.
    pub fn mark_synced(&mut self) {
        self.needs_sync = false;
    }

    /// The receipt, to be issued only once the state is durable (the sync returned `Ok`).
    pub fn into_receipt(self) -> PersistReceipt {
        PersistReceipt {
            number: self.number,
            last: self.last,
            hard_state: self.hard_state,
        }
    }
}

/// Proof that a [`Ready`]'s state reached stable storage, bound to that `Ready` by its number.
#[derive(Debug)]
pub struct PersistReceipt {
    pub(crate) number: ReadyNumber,
    /// The last entry made durable (or the installed snapshot's last entry).
    pub(crate) last: Option<(LogIndex, Term)>,
    /// The hard state made durable, if the `Ready` carried one.
    pub(crate) hard_state: Option<HardState>,
}

impl PersistReceipt {
    /// The `Ready` this receipt proves durable.
    pub fn number(&self) -> ReadyNumber {
        self.number
    }

    /// The hard state made durable by this `Ready`, if it carried one.
    pub fn hard_state(&self) -> Option<HardState> {
        self.hard_state
    }
}

/// Everything the protocol core wants done after an input.
///
/// Built field by field by [`Raft::ready`](crate::Raft::ready) and moved to the caller once per
/// `Ready`, so it is kept small: the rare snapshot is boxed.
#[derive(Debug, Default)]
pub struct Ready {
    pub(crate) number: ReadyNumber,
    pub(crate) hard_state: Option<HardState>,
    pub(crate) entries: Vec<Entry>,
    pub(crate) snapshot: Option<Box<Snapshot>>,
    pub(crate) messages: Vec<Message>,
    pub(crate) committed_entries: Vec<Entry>,
    pub(crate) read_states: Vec<ReadState>,
    pub(crate) leader_change: Option<LeaderChange>,
    pub(crate) must_sync: bool,
}

impl Ready {
    /// A `Ready` that only carries state to persist, for driving a storage on its own (storage
    /// tests and tools). `must_sync` is derived as [`Raft::ready`](crate::Raft::ready) would:
    /// entries, a snapshot or a term/vote change need a sync, a commit-only change does not
    /// (pass `term_or_vote_changed`).
    pub fn to_persist(
        number: ReadyNumber,
        hard_state: Option<HardState>,
        entries: Vec<Entry>,
        snapshot: Option<Snapshot>,
        term_or_vote_changed: bool,
    ) -> Ready {
        let must_sync = term_or_vote_changed || !entries.is_empty() || snapshot.is_some();
        Ready {
            number,
            hard_state,
            entries,
            snapshot: snapshot.map(Box::new),
            must_sync,
            ..Ready::default()
        }
    }

    /// This `Ready`'s number; its receipt must carry the same one.
    pub fn number(&self) -> ReadyNumber {
        self.number
    }

    /// Hard state to persist, if it changed.
    pub fn hard_state(&self) -> Option<&HardState> {
        self.hard_state.as_ref()
    }

    /// Entries to persist. If the first one is at or below the stored last index, storage must
    /// first drop its entries from that index on (a conflicting suffix was replaced).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// A snapshot received from the leader, to install before `entries`.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_deref()
    }

    /// True if the persisted state must be synced before the receipt is issued (commit-only
    /// hard state changes do not need a sync: the commit index can always be relearned).
    pub fn must_sync(&self) -> bool {
        self.must_sync
    }

    /// True if storage has nothing to write for this `Ready`.
    pub fn nothing_to_persist(&self) -> bool {
        self.hard_state.is_none() && self.entries.is_empty() && self.snapshot.is_none()
    }

    /// The ticket for this `Ready`, to be minted by a storage once it has written the
    /// `Ready`'s state (see [`Storage`](crate::Storage)).
    pub fn ticket(&self) -> Ticket {
        let last = self
            .entries
            .last()
            .map(|e| (e.index, e.term))
            .or(self.snapshot.as_ref().map(|s| (s.meta.index, s.meta.term)));
        Ticket {
            number: self.number,
            last,
            hard_state: self.hard_state,
            needs_sync: self.must_sync,
        }
    }

    /// Messages that may be sent right away.
    pub fn take_messages(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.messages)
    }

    /// Committed entries to apply, in order; all of them are durable on this replica.
    pub fn take_committed_entries(&mut self) -> Vec<Entry> {
        std::mem::take(&mut self.committed_entries)
    }

    /// Completed (or failed) read requests.
    pub fn take_read_states(&mut self) -> Vec<ReadState> {
        std::mem::take(&mut self.read_states)
    }

    /// Set if the known leader changed.
    pub fn take_leader_change(&mut self) -> Option<LeaderChange> {
        self.leader_change.take()
    }

    /// Messages that may be sent right away, without taking them.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }
}
