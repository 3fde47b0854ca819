//! Feeding the checkers and the client with what nodes do.

use crate::checkers::{AppliedEntry, LogSnapshot, NodeObservation, Promise, Violation};
use crate::cluster::{Failure, Slot, World};
use crate::kv::SimStateMachine;
use crate::workload::parse_payload;
use raft_core::{Event, NodeId, Role};
use std::rc::Rc;

impl World {
    /// Routes outgoing messages, hands events to the client and checkers, observes status.
    pub(crate) fn after_step(self: &Rc<Self>, index: usize) {
        let slot = &self.slots[index];
        let (events, status) = {
            let mut guard = slot.node.borrow_mut();
            let Some(node) = guard.as_mut() else { return };
            slot.schedule_syncs(node.syncs_pending());
            (node.take_events(), node.status())
        };
        // Promises first: the answers the node sent in this step are checked against them.
        self.note_promises(slot, &events);
        self.route_outbox(index);
        if self.finished() {
            return;
        }
        if self.kv.is_some() {
            self.kv_events(slot, &events);
        }
        if self.shard.get().is_some() {
            self.shard_events(index, &events);
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
            return self.fail(Failure::Safety(v));
        }
        self.nemesis_saw(index, &status);
    }

    /// On a step that failed: records what the node promised before it stopped.
    pub(crate) fn take_promises(&self, index: usize) {
        let slot = &self.slots[index];
        let events = match slot.node.borrow_mut().as_mut() {
            Some(node) => node.take_events(),
            None => return,
        };
        self.note_promises(slot, &events);
    }

    fn note_promises(&self, slot: &Slot, events: &[Event]) {
        for event in events {
            if let Event::Persisted {
                index,
                log_term,
                term,
                vote,
            } = *event
            {
                self.record(slot.id, "persisted", index.0 ^ (log_term.0 << 40));
                let promise = Promise {
                    incarnation: slot.incarnation(),
                    index,
                    log_term,
                    term,
                    vote,
                };
                self.checkers
                    .borrow_mut()
                    .durable
                    .persisted(slot.id, promise);
            }
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
                    self.check_served_state(slot, index)?;
                    self.client.borrow_mut().read_done(op, index);
                }
            }
            Event::ReadFailed { id, .. } => {
                if let Some((op, _)) = slot.reads.borrow_mut().remove(&id) {
                    self.client.borrow_mut().retry_soon(now, op);
                }
            }
            Event::LeaderChanged { leader, .. } if self.config.client.leader_oracle => {
                self.client.borrow_mut().leader_hint(leader)
            }
            Event::LeaderChanged { .. } | Event::Persisted { .. } => {}
        }
        Ok(())
    }

    /// Raw workload: the state a read at `index` is served from (the node's state machine as
    /// the client would read it now) must hold every command up to `index`.
    fn check_served_state(&self, slot: &Slot, index: raft_core::LogIndex) -> Result<(), Violation> {
        let served = {
            let guard = slot.node.borrow();
            guard.as_ref().and_then(|node| match node.state_machine() {
                SimStateMachine::Chain(sm) => Some((node.status().applied, sm.last_command())),
                _ => None,
            })
        };
        let Some((applied, sm_last_command)) = served else {
            return Ok(());
        };
        let mut checkers = self.checkers.borrow_mut();
        let history = checkers.apply.last_command_through(index);
        let now = self.now();
        checkers
            .read
            .served_state(now, slot.id, index, applied, sm_last_command, history)
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

    /// End of run: every committed entry is still held by a majority of `voters` (the live
    /// leader's configuration; removed nodes and learners do not count).
    pub fn check_durable(&self, voters: &[NodeId]) -> Result<(), Violation> {
        self.with_running_logs(|snapshots| {
            let running: Vec<LogSnapshot<'_>> = snapshots
                .iter()
                .filter(|s| voters.contains(&s.status.id))
                .map(|s| LogSnapshot {
                    status: s.status,
                    log: s.log,
                })
                .collect();
            let down = voters.len() - running.len();
            self.checkers
                .borrow()
                .log
                .check_durable(self.now(), &running, down, voters.len())
        })
    }

    /// The leader the liveness phase waits for, with the voters of its configuration: a
    /// running leader that is a voter of its latest committed configuration and whose term is
    /// the highest among the running members of that configuration and of its latest one.
    /// A removed node may campaign in ever higher terms without being needed or heard.
    pub fn live_leader(&self) -> Option<(raft_core::Status, Vec<NodeId>)> {
        let statuses = self.statuses();
        self.slots.iter().find_map(|slot| {
            let guard = slot.node.borrow();
            let node = guard.as_ref()?;
            let status = node.status();
            if status.role != Role::Leader {
                return None;
            }
            let committed = node.raft().membership_at(status.commit);
            let current = node.membership();
            if !committed.voters.contains(&status.id) {
                return None;
            }
            let top = statuses
                .iter()
                .filter(|s| committed.contains(s.id) || current.contains(s.id))
                .map(|s| s.term)
                .max();
            (top == Some(status.term)).then(|| (status, current.voters.clone()))
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
