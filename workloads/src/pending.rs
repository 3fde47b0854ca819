//! Proposals waiting to be applied: the "block until commit" part of a replicated service.
//!
//! A server proposes a client's request and learns its log position `(index, term)` (the
//! leader appends it at once). It then parks the waiting client here. As the node reports
//! applied entries (`Event::Applied { index, term, result, .. }`), each waiter is resolved:
//!
//! - the entry at its index has its term: the entry *is* the proposal (Raft's Log Matching
//!   property: one index and one term identify one entry), so `result` is its answer;
//! - the entry at its index has another term: another leader's entry took the position, so
//!   the proposal was not applied there. The client retries with the same seq; the session
//!   table keeps that exactly-once even if a copy of the request is applied elsewhere;
//! - its index was skipped (a snapshot was restored past it): the outcome is unknown here.
//!
//! A server on `raft_core::Node`, which identifies proposals by `ProposalId`, can use
//! [`ProposalWaiters`](crate::proposals::ProposalWaiters) instead; it yields the same
//! [`Resolution`]s from the node's events.
//!
//! Nothing here is replicated or persisted: waiters are connections of this server, and are
//! all dropped (as unknown) when it stops.

use raft_core::{LogIndex, Term};
use std::collections::BTreeMap;

/// How a waiting proposal ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution<W> {
    /// The proposal was applied; `result` is the state machine's result bytes.
    Applied {
        /// The waiter.
        waiter: W,
        /// The proposal's index.
        index: LogIndex,
        /// The result bytes (for [`Deduplicated`](crate::rsm::Deduplicated), an encoded
        /// [`ApplyOutcome`](crate::rsm::ApplyOutcome)).
        result: Vec<u8>,
    },
    /// An entry of another term took the proposal's position (leadership was lost). The
    /// proposal was not applied at that position.
    Superseded {
        /// The waiter.
        waiter: W,
        /// The proposal's index.
        index: LogIndex,
    },
    /// The outcome cannot be known here: a snapshot covered the position, or the server is
    /// stopping. The request may or may not have been applied.
    Unknown {
        /// The waiter.
        waiter: W,
        /// The proposal's index, when known.
        index: Option<LogIndex>,
    },
}

impl<W> Resolution<W> {
    /// The waiter, whatever the outcome.
    pub fn waiter(&self) -> &W {
        match self {
            Resolution::Applied { waiter, .. }
            | Resolution::Superseded { waiter, .. }
            | Resolution::Unknown { waiter, .. } => waiter,
        }
    }
}

/// Clients waiting for their proposals, keyed by log position. At most one waiter per index.
#[derive(Debug, Clone)]
pub struct PendingRequests<W> {
    waiting: BTreeMap<LogIndex, (Term, W)>,
    waiters_max: usize,
}

impl<W> PendingRequests<W> {
    /// An empty table that holds at most `waiters_max` waiters.
    ///
    /// # Panics
    /// If `waiters_max` is zero.
    pub fn new(waiters_max: usize) -> Self {
        assert!(
            waiters_max > 0,
            "a pending table must hold at least one waiter"
        );
        PendingRequests {
            waiting: BTreeMap::new(),
            waiters_max,
        }
    }

    /// Whether no more waiter fits; a server should then refuse new proposals (busy).
    pub fn is_full(&self) -> bool {
        self.waiting.len() >= self.waiters_max
    }

    /// Number of waiters.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether nobody is waiting.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Parks `waiter` until the entry proposed at `(index, term)` is resolved.
    ///
    /// A waiter already at `index` belongs to an older term whose entry this proposal has
    /// replaced; it is returned as [`Resolution::Superseded`].
    ///
    /// # Panics
    /// If the table is full (check [`PendingRequests::is_full`] first), if `index` is 0, or
    /// if a waiter at `index` has a term not older than `term` (one leader never proposes
    /// twice at one index).
    pub fn register(&mut self, index: LogIndex, term: Term, waiter: W) -> Option<Resolution<W>> {
        assert!(index > LogIndex(0), "a proposal has an index of at least 1");
        let displaced = self.waiting.remove(&index).map(|(old_term, old)| {
            assert!(
                old_term < term,
                "two proposals at index {index} in term {term}"
            );
            Resolution::Superseded { waiter: old, index }
        });
        assert!(
            !self.is_full(),
            "pending table full ({} waiters)",
            self.waiters_max
        );
        self.waiting.insert(index, (term, waiter));
        displaced
    }

    /// Resolves waiters after the entry `(index, term)` was applied with `result`.
    ///
    /// Waiters below `index` were skipped (the node only skips positions by restoring a
    /// snapshot), so they end as [`Resolution::Unknown`]. Resolutions come in index order.
    pub fn on_applied(&mut self, index: LogIndex, term: Term, result: &[u8]) -> Vec<Resolution<W>> {
        let mut resolved = self.unknown_through(index.prev());
        if let Some((waiter_term, waiter)) = self.waiting.remove(&index) {
            resolved.push(if waiter_term == term {
                Resolution::Applied {
                    waiter,
                    index,
                    result: result.to_vec(),
                }
            } else {
                Resolution::Superseded { waiter, index }
            });
        }
        debug_assert!(self.waiting.keys().all(|&waiting| waiting > index));
        resolved
    }

    /// Resolves every waiter at or below `index` as unknown: a snapshot up to `index` was
    /// restored, so those entries will never be reported as applied.
    pub fn on_snapshot_restored(&mut self, index: LogIndex) -> Vec<Resolution<W>> {
        self.unknown_through(index)
    }

    /// Fails waiters whose position now holds an entry of another term, without waiting for
    /// that entry to be applied; call it when leadership changes. `term_at(index)` is the
    /// term of the entry currently at `index` (for example `Node::entry_term`); positions
    /// where it returns `None` (compacted, or beyond the end of the log) keep waiting, to be
    /// resolved by [`PendingRequests::on_applied`] or the client's timeout.
    pub fn fail_superseded(
        &mut self,
        term_at: impl Fn(LogIndex) -> Option<Term>,
    ) -> Vec<Resolution<W>> {
        let lost: Vec<LogIndex> = self
            .waiting
            .iter()
            .filter(|(&index, (term, _))| term_at(index).is_some_and(|actual| actual != *term))
            .map(|(&index, _)| index)
            .collect();
        lost.into_iter()
            .map(|index| {
                let (_, waiter) = self.waiting.remove(&index).expect("index was just listed");
                Resolution::Superseded { waiter, index }
            })
            .collect()
    }

    /// Resolves every waiter as unknown (the server stops or crashes).
    pub fn drain(&mut self) -> Vec<Resolution<W>> {
        std::mem::take(&mut self.waiting)
            .into_iter()
            .map(|(index, (_, waiter))| Resolution::Unknown {
                waiter,
                index: Some(index),
            })
            .collect()
    }

    fn unknown_through(&mut self, index: LogIndex) -> Vec<Resolution<W>> {
        let above = self.waiting.split_off(&index.next());
        let below = std::mem::replace(&mut self.waiting, above);
        below
            .into_iter()
            .map(|(index, (_, waiter))| Resolution::Unknown {
                waiter,
                index: Some(index),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(index: u64, term: u64) -> (LogIndex, Term) {
        (LogIndex(index), Term(term))
    }

    #[test]
    fn same_term_is_answered_with_the_result() {
        let mut pending = PendingRequests::new(8);
        let (index, term) = at(3, 2);
        assert_eq!(pending.register(index, term, "c1"), None);
        assert_eq!(
            pending.on_applied(index, term, b"ok"),
            vec![Resolution::Applied {
                waiter: "c1",
                index,
                result: b"ok".to_vec()
            }]
        );
        assert!(pending.is_empty());
    }

    #[test]
    fn another_term_at_the_index_means_leadership_was_lost() {
        let mut pending = PendingRequests::new(8);
        pending.register(LogIndex(3), Term(2), "c1");
        pending.register(LogIndex(4), Term(2), "c2");
        let resolved = pending.on_applied(LogIndex(3), Term(3), b"other");
        assert_eq!(
            resolved,
            vec![Resolution::Superseded {
                waiter: "c1",
                index: LogIndex(3)
            }]
        );
        assert_eq!(
            pending.len(),
            1,
            "index 4 still waits: it may yet be applied"
        );
    }

    #[test]
    fn skipped_positions_are_unknown() {
        let mut pending = PendingRequests::new(8);
        pending.register(LogIndex(2), Term(1), 'a');
        pending.register(LogIndex(5), Term(1), 'b');
        pending.register(LogIndex(9), Term(1), 'c');
        let resolved = pending.on_applied(LogIndex(7), Term(1), b"");
        assert_eq!(
            resolved,
            vec![
                Resolution::Unknown {
                    waiter: 'a',
                    index: Some(LogIndex(2))
                },
                Resolution::Unknown {
                    waiter: 'b',
                    index: Some(LogIndex(5))
                },
            ]
        );
        assert_eq!(
            pending.on_snapshot_restored(LogIndex(9)),
            vec![Resolution::Unknown {
                waiter: 'c',
                index: Some(LogIndex(9))
            }]
        );
        assert!(pending.is_empty());
    }

    #[test]
    fn re_proposal_at_the_same_index_displaces_the_older_term() {
        let mut pending = PendingRequests::new(8);
        pending.register(LogIndex(4), Term(1), "old");
        let displaced = pending.register(LogIndex(4), Term(3), "new");
        assert_eq!(
            displaced,
            Some(Resolution::Superseded {
                waiter: "old",
                index: LogIndex(4)
            })
        );
        assert_eq!(pending.len(), 1);
    }

    #[test]
    fn fail_superseded_uses_the_current_log() {
        let mut pending = PendingRequests::new(8);
        pending.register(LogIndex(1), Term(1), 1);
        pending.register(LogIndex(2), Term(1), 2);
        pending.register(LogIndex(3), Term(1), 3);
        // The log now has term 1 at 1, term 2 at 2, and nothing at 3.
        let log = |index: LogIndex| match index.0 {
            1 => Some(Term(1)),
            2 => Some(Term(2)),
            _ => None,
        };
        let lost = pending.fail_superseded(log);
        assert_eq!(
            lost,
            vec![Resolution::Superseded {
                waiter: 2,
                index: LogIndex(2)
            }]
        );
        assert_eq!(pending.len(), 2);
        let drained = pending.drain();
        assert_eq!(drained.len(), 2);
        assert_eq!(
            drained.iter().map(|r| *r.waiter()).collect::<Vec<_>>(),
            vec![1, 3]
        );
    }

    #[test]
    #[should_panic(expected = "pending table full")]
    fn registering_beyond_the_bound_is_a_broken_invariant() {
        let mut pending = PendingRequests::new(1);
        assert!(!pending.is_full());
        pending.register(LogIndex(1), Term(1), ());
        assert!(pending.is_full());
        pending.register(LogIndex(2), Term(1), ());
    }

    #[test]
    #[should_panic(expected = "two proposals at index 4 in term 2")]
    fn two_proposals_at_one_index_in_one_term_are_impossible() {
        let mut pending = PendingRequests::new(4);
        pending.register(LogIndex(4), Term(2), ());
        pending.register(LogIndex(4), Term(2), ());
    }
}
