//! Feeding the checkers and the client with what nodes do.

use crate::checkers::{AppliedEntry, LogSnapshot, NodeObservation, Violation};
use crate::cluster::{Failure, Slot, World};
use crate::workload::parse_payload;
use raft_core::Event;
use std::rc::Rc;

impl World {
    /// Routes outgoing messages, hands events to the client and checkers, observes status.
    pub(crate) fn after_step(self: &Rc<Self>, index: usize) {
        let slot = &self.slots[index];
        self.route_outbox(index);
        let (events, status) = {
            let mut guard = slot.node.borrow_mut();
            let Some(node) = guard.as_mut() else { return };
            (node.take_events(), node.status())
        };
        if self.kv.is_some() {
            self.kv_events(slot, &events);
        }
        for event in events {
            if let Err(v) = self.handle_event(slot, event) {
                return self.fail(Failure::Safety(v));
            }
        }
        let guard = slot.node.borrow();
        let Some(node) = guard.as_ref() else { return };
        let obs = NodeObservation {
            at: self.now(),
            incarnation: slot.incarnation(),
            status,
            log: node,
        };
        let checked = self.checkers.borrow_mut().observe(&obs);
        drop(guard);
        if let Err(v) = checked {
            self.fail(Failure::Safety(v));
        }
    }

    fn handle_event(&self, slot: &Slot, event: Event) -> Result<(), Violation> {
        let now = self.now();
        match event {
            Event::Applied {
                index,
                term,
                data,
                result,
            } => {
                self.record(slot.id, "apply", index.0 ^ (term.0 << 40));
                let entry = AppliedEntry {
                    incarnation: slot.incarnation(),
                    index,
                    term,
                    data: &data,
                    result: &result,
                };
                self.checkers.borrow_mut().applied(now, slot.id, entry)?;
                if let Some(op) = parse_payload(&data) {
                    self.client.borrow_mut().write_applied(op);
                }
            }
            Event::Committed { id, .. } => {
                slot.proposals.borrow_mut().remove(&id);
            }
            Event::ProposalFailed { id, .. } => {
                if let Some(op) = slot.proposals.borrow_mut().remove(&id) {
                    self.client.borrow_mut().retry_soon(now, op);
                }
            }
            Event::ReadReady { id, index } => {
                if let Some((op, bound)) = slot.reads.borrow_mut().remove(&id) {
                    self.record(slot.id, "read-ready", index.0);
                    self.checkers
                        .borrow_mut()
                        .read
                        .read_ready(now, slot.id, bound, index)?;
                    self.client.borrow_mut().read_done(op, index);
                }
            }
            Event::ReadFailed { id, .. } => {
                if let Some((op, _)) = slot.reads.borrow_mut().remove(&id) {
                    self.client.borrow_mut().retry_soon(now, op);
                }
            }
            Event::LeaderChanged { leader, .. } => self.client.borrow_mut().leader_hint(leader),
        }
        Ok(())
    }

    /// Runs the whole-cluster log checks (log matching, committed entries held).
    pub fn check_logs(&self) -> Result<(), Violation> {
        self.with_running_logs(|snapshots| {
            self.checkers
                .borrow()
                .log
                .check_matching(self.now(), snapshots)
        })
    }

    /// End of run: every committed entry is still held by a majority.
    pub fn check_durable(&self) -> Result<(), Violation> {
        self.with_running_logs(|snapshots| {
            let down = self.slots.len() - snapshots.len();
            self.checkers
                .borrow()
                .log
                .check_durable(self.now(), snapshots, down, self.slots.len())
        })
    }

    /// Calls `f` with a view of every running node's log (down nodes are left out).
    fn with_running_logs<R>(&self, f: impl FnOnce(&[LogSnapshot<'_>]) -> R) -> R {
        let guards: Vec<_> = self.slots.iter().map(|s| s.node.borrow()).collect();
        let snapshots: Vec<LogSnapshot<'_>> = guards
            .iter()
            .filter_map(|g| g.as_ref())
            .map(|node| LogSnapshot {
                status: node.status(),
                log: node,
            })
            .collect();
        f(&snapshots)
    }

    /// Statuses of the running nodes.
    pub fn statuses(&self) -> Vec<raft_core::Status> {
        self.slots
            .iter()
            .filter_map(|s| s.node.borrow().as_ref().map(|n| n.status()))
            .collect()
    }
}
