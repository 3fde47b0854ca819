//! Invariant checkers. They watch the nodes from outside the code under test.
//!
//! Each checker is a pure function of what it has been shown: node statuses, applied entries,
//! read results and log contents (through [`LogView`]). The cluster feeds them after every step
//! of every node, so a violation is reported at the simulated instant it becomes visible. Unit
//! tests build observation sequences by hand, with a planted violation for each checker.
//!
//! - [`ElectionSafety`]: at most one leader per term (Raft §5.2).
//! - [`LogChecker`]: log matching (§5.3); leader completeness (§5.4); a committed entry is
//!   never lost or overwritten; a leader commits only entries of its own term (§5.4.2,
//!   Figure 8).
//! - [`ApplyChecker`]: state machine safety (§5.4.3); commit and applied indexes never go
//!   backwards within a process lifetime.
//! - [`DurabilityChecker`]: votes and acknowledgements leave only once durable, and a
//!   restarted node recovers what it reported durable (Figure 2, "persistent state").
//! - [`ReadChecker`]: a read reflects every write committed before it began.
//! - [`TermChecker`]: with PreVote on, a node's term rises only to a term it heard, or by
//!   one after a granted pre-vote or a `TimeoutNow` (thesis §9.6).
//! - [`TransferChecker`]: a leadership transfer completes or is abandoned within twice the
//!   longest election timeout of the leader's ticks (thesis §3.10).
//! - [`LeaderEvents`]: the leader a node's status names is the one its last
//!   `LeaderChanged` event reported, for the same term.
//! - [`MembershipChecker`]: a leader appends a configuration entry only when no earlier one is
//!   uncommitted and after committing an entry of its own term (thesis §4.1).

mod apply;
mod durable;
mod election;
mod leader_events;
mod log;
mod membership;
mod read;
mod terms;
mod transfer;

pub use apply::ApplyChecker;
pub use durable::{DurabilityChecker, Promise};
pub use election::ElectionSafety;
pub use leader_events::LeaderEvents;
pub use log::{LogChecker, LogSnapshot};
pub use membership::MembershipChecker;
pub use read::ReadChecker;
pub use terms::{Heard, TermChecker};
pub use transfer::TransferChecker;

use raft_core::{LogIndex, NodeId, Status, Term};
use std::fmt;
use std::time::Duration;

/// A broken invariant: which checker, when, and what it saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The checker's name, e.g. `"election safety"`.
    pub checker: &'static str,
    /// Simulated time of the observation.
    pub at: Duration,
    /// What went wrong, naming nodes, terms and indexes.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} violated at {:?}: {}",
            self.checker, self.at, self.detail
        )
    }
}

/// Result of one observation.
pub type Checked = Result<(), Violation>;

/// Read access to a node's log, as far as the checkers need it.
pub trait LogView {
    /// Term of the entry at `index`, or `None` if it is not in the log (compacted or beyond).
    fn entry_term(&self, index: LogIndex) -> Option<Term>;

    /// Indexes of the configuration entries in the log, oldest first (compacted ones are
    /// gone). Logs without membership changes have none.
    fn config_indexes(&self) -> Vec<LogIndex> {
        Vec::new()
    }

    /// The voter sets whose majorities a commit needs on this node (one, or two while joint);
    /// empty if unknown.
    fn commit_quorums(&self) -> Vec<Vec<NodeId>> {
        Vec::new()
    }
}

impl<N, D, C, S> LogView for raft_core::Node<N, D, C, S>
where
    N: raft_core::Net,
    D: raft_core::Disk,
    C: raft_core::Clock,
    S: raft_core::StateMachine,
{
    fn entry_term(&self, index: LogIndex) -> Option<Term> {
        raft_core::Node::entry_term(self, index)
    }

    fn config_indexes(&self) -> Vec<LogIndex> {
        self.raft().config_indexes().collect()
    }

    fn commit_quorums(&self) -> Vec<Vec<NodeId>> {
        let membership = self.membership();
        let mut sets = vec![membership.voters.clone()];
        if membership.is_joint() {
            sets.push(membership.outgoing.clone());
        }
        sets
    }
}

/// A log given as a vector of terms starting at index `first` (for tests and tools).
#[derive(Clone, Debug, Default)]
pub struct VecLog {
    /// Index of `terms[0]`.
    pub first: u64,
    /// Terms of consecutive entries.
    pub terms: Vec<u64>,
}

impl LogView for VecLog {
    fn entry_term(&self, index: LogIndex) -> Option<Term> {
        let offset = index.0.checked_sub(self.first)?;
        self.terms.get(offset as usize).map(|&t| Term(t))
    }
}

/// One node as the checkers see it at one instant.
pub struct NodeObservation<'a> {
    /// Simulated time.
    pub at: Duration,
    /// Which process lifetime of the node this is; bumped on every restart.
    pub incarnation: u64,
    /// The node's status.
    pub status: Status,
    /// The node's log.
    pub log: &'a dyn LogView,
}

/// All checkers of one run.
#[derive(Debug, Default)]
pub struct Checkers {
    /// Election safety.
    pub election: ElectionSafety,
    /// Log matching, leader completeness, committed entries never lost.
    pub log: LogChecker,
    /// State machine safety and monotonic indexes.
    pub apply: ApplyChecker,
    /// Read freshness.
    pub read: ReadChecker,
    /// Durable state across restarts.
    pub durable: DurabilityChecker,
    /// Membership change rules.
    pub membership: MembershipChecker,
    /// Term inflation.
    pub terms: TermChecker,
    /// Leadership transfers end.
    pub transfer: TransferChecker,
    /// Leader changes are reported as events.
    pub leaders: LeaderEvents,
}

impl Checkers {
    /// Feeds one node observation to every checker that looks at statuses.
    pub fn observe(&mut self, obs: &NodeObservation<'_>) -> Checked {
        self.election.observe(obs)?;
        self.apply.observe(obs)?;
        self.log.observe(obs)?;
        self.durable.observe(obs)?;
        self.membership.observe(obs)?;
        self.terms.observe(obs)?;
        self.leaders.observe(obs)?;
        self.read.observe_commit(obs.status.commit);
        Ok(())
    }

    /// Feeds one applied entry.
    pub fn applied(&mut self, at: Duration, node: NodeId, entry: AppliedEntry<'_>) -> Checked {
        self.apply.applied(at, node, entry)
    }
}

/// An entry a node applied, as reported in `Event::Applied`.
#[derive(Clone, Copy, Debug)]
pub struct AppliedEntry<'a> {
    /// Which process lifetime applied it.
    pub incarnation: u64,
    /// Log position.
    pub index: LogIndex,
    /// Entry term.
    pub term: Term,
    /// Command bytes.
    pub data: &'a [u8],
    /// State machine result bytes.
    pub result: &'a [u8],
}

/// A fixed, seed-free 64-bit hash (word-at-a-time multiply-rotate, FNV constants), so
/// fingerprints are identical in every run and process. Not cryptographic; collisions only
/// weaken a determinism check or a checker comparison, they never fail a correct run.
pub fn fingerprint(bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("8-byte chunk"));
        hash = (hash ^ word).wrapping_mul(PRIME).rotate_left(29);
    }
    for &b in chunks.remainder() {
        hash = (hash ^ u64::from(b)).wrapping_mul(PRIME);
    }
    mix(hash)
}

/// Scrambles a word so that nearby inputs give unrelated outputs (splitmix64 finalizer).
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::fingerprint;

    #[test]
    fn fingerprints_tell_small_changes_apart() {
        let base = fingerprint(b"hello world, twelve+");
        assert_eq!(base, fingerprint(b"hello world, twelve+"));
        assert_ne!(base, fingerprint(b"hello world, twelve-"));
        assert_ne!(base, fingerprint(b"hello world, twelve"));
        assert_ne!(fingerprint(b""), fingerprint(&[0]));
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;
    use raft_core::Role;

    pub fn status(id: u64, role: Role, term: u64, commit: u64, last: u64) -> Status {
        Status {
            id: NodeId(id),
            role,
            term: Term(term),
            leader: (role == Role::Leader).then_some(NodeId(id)),
            commit: LogIndex(commit),
            applied: LogIndex(commit),
            first_index: LogIndex(1),
            last_index: LogIndex(last),
        }
    }

    pub fn obs<'a>(status: Status, log: &'a dyn LogView) -> NodeObservation<'a> {
        NodeObservation {
            at: Duration::from_millis(1),
            incarnation: 0,
            status,
            log,
        }
    }

    pub fn log(terms: &[u64]) -> VecLog {
        VecLog {
            first: 1,
            terms: terms.to_vec(),
        }
    }
}
