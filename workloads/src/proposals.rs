//! Waiting clients keyed by `raft_core::ProposalId`, resolved straight from `Node` events.
//!
//! [`PendingRequests`](crate::pending::PendingRequests) needs each proposal's `(index, term)`
//! up front. A server built on `raft_core::Node` gets a [`ProposalId`] instead, and the node
//! already tracks positions and terms: it reports `Committed { id, index, .. }` (the entry at
//! `index` is this proposal, in its term) followed by `Applied { index, result, .. }`, or
//! `ProposalFailed { id, error }` (`ProposalDropped`: another leader's entry took the position;
//! `Indeterminate`: a snapshot covered it). [`ProposalWaiters`] turns that event stream into
//! the same [`Resolution`]s.

use crate::pending::Resolution;
use raft_core::{Error, Event, LogIndex, ProposalId};
use std::collections::BTreeMap;

/// Clients waiting for their proposals, keyed by the node's proposal id.
#[derive(Debug, Clone)]
pub struct ProposalWaiters<W> {
    /// Proposed, not yet committed.
    proposed: BTreeMap<ProposalId, W>,
    /// Committed at an index whose `Applied` event (with the result) has not been seen yet.
    committed: BTreeMap<LogIndex, W>,
    waiters_max: usize,
}

impl<W> ProposalWaiters<W> {
    /// An empty table that holds at most `waiters_max` waiters.
    ///
    /// # Panics
    /// If `waiters_max` is zero.
    pub fn new(waiters_max: usize) -> Self {
        assert!(
            waiters_max > 0,
            "a waiter table must hold at least one waiter"
        );
        ProposalWaiters {
            proposed: BTreeMap::new(),
            committed: BTreeMap::new(),
            waiters_max,
        }
    }

    /// Number of waiters.
    pub fn len(&self) -> usize {
        self.proposed.len() + self.committed.len()
    }

    /// Whether nobody is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether no more waiter fits; a server should then refuse new proposals (busy).
    pub fn is_full(&self) -> bool {
        self.len() >= self.waiters_max
    }

    /// Parks `waiter` until proposal `id` resolves.
    ///
    /// # Panics
    /// If the table is full (check [`ProposalWaiters::is_full`] first) or `id` is already
    /// registered: the node never hands out one id twice.
    pub fn register(&mut self, id: ProposalId, waiter: W) {
        assert!(
            !self.is_full(),
            "waiter table full ({} waiters)",
            self.waiters_max
        );
        let previous = self.proposed.insert(id, waiter);
        assert!(previous.is_none(), "proposal {id:?} registered twice");
    }

    /// Consumes one batch of node events (from `Node::take_events`) and returns the waiters
    /// it resolves, in event order. Events for proposals nobody waits for are ignored.
    ///
    /// `Committed` events are taken first, so a batch resolves the same way whichever of
    /// `Committed` and `Applied` comes first inside it.
    pub fn on_events(&mut self, events: &[Event]) -> Vec<Resolution<W>> {
        for event in events {
            if let Event::Committed { id, index, .. } = event {
                if let Some(waiter) = self.proposed.remove(id) {
                    let previous = self.committed.insert(*index, waiter);
                    assert!(
                        previous.is_none(),
                        "two proposals committed at index {index}"
                    );
                }
            }
        }
        events
            .iter()
            .filter_map(|event| self.resolve(event))
            .collect()
    }

    fn resolve(&mut self, event: &Event) -> Option<Resolution<W>> {
        match event {
            Event::Applied { index, result, .. } => {
                let waiter = self.committed.remove(index)?;
                Some(Resolution::Applied {
                    waiter,
                    index: *index,
                    result: result.clone(),
                })
            }
            Event::ProposalFailed { id, error } => {
                let waiter = self.proposed.remove(id)?;
                Some(match error {
                    Error::ProposalDropped { index } => Resolution::Superseded {
                        waiter,
                        index: *index,
                    },
                    Error::Indeterminate { index } => Resolution::Unknown {
                        waiter,
                        index: Some(*index),
                    },
                    _ => Resolution::Unknown {
                        waiter,
                        index: None,
                    },
                })
            }
            _ => None,
        }
    }

    /// Resolves every waiter as unknown (the server stops or crashes).
    pub fn drain(&mut self) -> Vec<Resolution<W>> {
        let committed = std::mem::take(&mut self.committed)
            .into_iter()
            .map(|(index, waiter)| Resolution::Unknown {
                waiter,
                index: Some(index),
            });
        let proposed = std::mem::take(&mut self.proposed)
            .into_values()
            .map(|waiter| Resolution::Unknown {
                waiter,
                index: None,
            });
        committed.chain(proposed).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::{NodeId, Term};

    fn applied(index: u64, result: &[u8]) -> Event {
        Event::Applied {
            index: LogIndex(index),
            term: Term(1),
            data: vec![],
            result: result.to_vec(),
        }
    }

    fn committed(id: u64, index: u64) -> Event {
        Event::Committed {
            id: ProposalId(id),
            index: LogIndex(index),
            term: Term(1),
        }
    }

    #[test]
    fn committed_then_applied_answers_with_the_result() {
        let mut waiters = ProposalWaiters::new(4);
        waiters.register(ProposalId(1), "c1");
        let events = vec![applied(1, b""), committed(1, 2), applied(2, b"ok")];
        let resolved = waiters.on_events(&events);
        let want = Resolution::Applied {
            waiter: "c1",
            index: LogIndex(2),
            result: b"ok".to_vec(),
        };
        assert_eq!(resolved, vec![want]);
        assert!(waiters.is_empty());
    }

    #[test]
    fn order_inside_a_batch_and_across_batches_does_not_matter() {
        let mut waiters = ProposalWaiters::new(4);
        waiters.register(ProposalId(1), 'a');
        waiters.register(ProposalId(2), 'b');
        let first = waiters.on_events(&[applied(3, b"x"), committed(1, 3), committed(2, 4)]);
        assert_eq!(first.len(), 1);
        assert_eq!(
            waiters.len(),
            1,
            "b is committed but its result is still to come"
        );
        let second = waiters.on_events(&[applied(4, b"y")]);
        let want = Resolution::Applied {
            waiter: 'b',
            index: LogIndex(4),
            result: b"y".to_vec(),
        };
        assert_eq!(second, vec![want]);
    }

    #[test]
    fn failures_map_to_superseded_or_unknown() {
        let mut waiters = ProposalWaiters::new(4);
        for id in 1..=3 {
            waiters.register(ProposalId(id), id);
        }
        let fail = |id: u64, error: Error| Event::ProposalFailed {
            id: ProposalId(id),
            error,
        };
        let events = vec![
            fail(1, Error::ProposalDropped { index: LogIndex(7) }),
            fail(2, Error::Indeterminate { index: LogIndex(8) }),
            fail(
                3,
                Error::NotLeader {
                    hint: Some(NodeId(2)),
                },
            ),
            fail(9, Error::Indeterminate { index: LogIndex(9) }),
            Event::LeaderChanged {
                leader: None,
                term: Term(2),
            },
        ];
        let resolved = waiters.on_events(&events);
        assert_eq!(
            resolved,
            vec![
                Resolution::Superseded {
                    waiter: 1,
                    index: LogIndex(7)
                },
                Resolution::Unknown {
                    waiter: 2,
                    index: Some(LogIndex(8))
                },
                Resolution::Unknown {
                    waiter: 3,
                    index: None
                },
            ]
        );
        assert!(waiters.is_empty());
    }

    #[test]
    fn drain_resolves_everyone_as_unknown() {
        let mut waiters = ProposalWaiters::new(2);
        waiters.register(ProposalId(1), 'a');
        waiters.register(ProposalId(2), 'b');
        assert!(waiters.is_full());
        waiters.on_events(&[committed(2, 5)]);
        let drained = waiters.drain();
        assert_eq!(
            drained,
            vec![
                Resolution::Unknown {
                    waiter: 'b',
                    index: Some(LogIndex(5))
                },
                Resolution::Unknown {
                    waiter: 'a',
                    index: None
                },
            ]
        );
        assert!(waiters.is_empty());
    }

    #[test]
    #[should_panic(expected = "registered twice")]
    fn one_id_twice_is_a_broken_invariant() {
        let mut waiters = ProposalWaiters::new(4);
        waiters.register(ProposalId(1), ());
        waiters.register(ProposalId(1), ());
    }
}
