//! One step of one node, and everything that consumes what it produced, in one fixed order.
//!
//! A node's host task (`node_host.rs`) hands [`World::step`] the next input: a peer message,
//! a request of the service, or nothing (a timer tick, which also completes the fsyncs that
//! are due). The node handles it; then [`World::after_step`] takes what the step produced
//! (the node's events, its status, the messages in its outbox) and hands it on:
//!
//! 1. the durability checker records what the node now promises to recover
//!    (`Event::Persisted`), so the answers it sent in this step are checked against it;
//! 2. the network routes every message the node sent (each checked against those promises
//!    first; a vote or new entries may trigger a targeted crash, and a leader sending a
//!    final configuration may die before anything leaves), see `delivery.rs`;
//! 3. the service's server side answers what the events resolved
//!    ([`Service::on_events`]);
//! 4. the checkers see each event (every applied entry), each followed by the service's own
//!    look at it ([`Service::on_event`]); a node that became leader has its configuration
//!    counted for the rare-shape coverage (`coverage.rs`);
//! 5. the checkers observe the node's status and log (and its leadership transfer);
//! 6. the nemesis sees whether a new leader appeared.
//!
//! The first failure ends the run; nothing after it in the order runs.

use crate::checkers::{AppliedEntry, NodeObservation, Promise, Violation};
use crate::clock::SimClock;
use crate::cluster::{Failure, Input, SimNode, Slot, World};
use crate::service::Service;
use raft_core::{Clock, Event};
use std::rc::Rc;

impl<S: Service> World<S> {
    /// Hands one input (or a timer tick, for `None`) to node `index`, then hands on what the
    /// step produced ([`World::after_step`]).
    pub fn step(self: &Rc<Self>, index: usize, input: Option<Input<S>>) {
        let slot = &self.slots[index];
        let result = {
            let mut guard = slot.node.borrow_mut();
            let Some(node) = guard.as_mut() else { return };
            let _enter = slot.span.enter();
            match input {
                None => self
                    .complete_syncs(slot, node)
                    .and_then(|()| self.fire_timer(slot, node)),
                Some(Input::Message(bytes)) => match raft_core::decode(&bytes) {
                    Ok(msg) => {
                        self.record(slot.id, "deliver", crate::checkers::fingerprint(&bytes));
                        let heard = crate::checkers::Heard::of(&msg);
                        let received = node.receive(msg);
                        let ticks = node.raft().ticks();
                        self.checkers.borrow_mut().terms.delivered(
                            slot.incarnation(),
                            ticks,
                            &heard,
                        );
                        received
                    }
                    Err(error) => {
                        let what = format!("n{} got an undecodable message: {error}", slot.id);
                        return self.fail(Failure::Node(what));
                    }
                },
                Some(Input::Client(request)) => {
                    let mut process = slot.process.borrow_mut();
                    self.service
                        .on_request(self, index, node, &mut process, request);
                    Ok(())
                }
            }
        };
        self.stats.borrow_mut().steps += 1;
        if let Err(error) = result {
            // What the node promised and sent before the failure stands.
            self.take_promises(index);
            self.route_outbox(index);
            return self.node_error(index, error);
        }
        self.after_step(index);
    }

    /// Hands what node `index`'s last step (or operator call) produced to the checkers, the
    /// network, the service and the nemesis, in the order of the module documentation.
    pub(crate) fn after_step(self: &Rc<Self>, index: usize) {
        let slot = &self.slots[index];
        let (events, status) = {
            let mut guard = slot.node.borrow_mut();
            let Some(node) = guard.as_mut() else { return };
            slot.schedule_syncs(node.syncs_pending());
            (node.take_events(), node.status())
        };
        // 1. Promises first: the answers the node sent in this step are checked against them.
        self.note_promises(slot, &events);
        // 2. The network, unless the process dies before it sends (a targeted crash).
        if self.dies_before_sending(index) {
            return;
        }
        self.route_outbox(index);
        if self.finished() {
            return;
        }
        // 3. The server side.
        {
            let guard = slot.node.borrow();
            let node = guard.as_ref().expect("a node that just stepped is up");
            let mut process = slot.process.borrow_mut();
            self.service
                .on_events(self, index, node, &mut process, &events);
        }
        // 4. Each event: the checkers, then the service.
        for event in &events {
            let checked = self.check_event(slot, event).and_then(|()| {
                let mut process = slot.process.borrow_mut();
                self.service.on_event(self, index, &mut process, event)
            });
            if let Err(v) = checked {
                return self.fail(Failure::Safety(v));
            }
            if let Event::LeaderChanged {
                leader: Some(leader),
                term,
            } = event
            {
                if *leader == slot.id {
                    self.note_new_leader(index, slot.id, *term);
                }
            }
        }
        // 5. The node's status and log.
        let guard = slot.node.borrow();
        let Some(node) = guard.as_ref() else { return };
        let obs = NodeObservation {
            at: self.now(),
            incarnation: slot.incarnation(),
            status,
            log: node,
        };
        let checked = {
            let mut checkers = self.checkers.borrow_mut();
            let raft = node.raft();
            self.note_step_shapes(index, raft);
            let (target, ticks) = (raft.transfer_target(), raft.ticks());
            checkers.observe(&obs).and_then(|()| {
                checkers
                    .transfer
                    .observe(obs.at, obs.incarnation, &status, target, ticks)
            })
        };
        drop(guard);
        if let Err(v) = checked {
            return self.fail(Failure::Safety(v));
        }
        // 6. The nemesis.
        self.nemesis_saw(index, &status);
    }

    /// Delivers the completion of every fsync that is due, oldest first.
    fn complete_syncs(
        &self,
        slot: &Slot<S>,
        node: &mut SimNode<S>,
    ) -> Result<(), raft_core::Error> {
        let now = madsim::time::Instant::now();
        while slot.next_sync_due().is_some_and(|at| at <= now) {
            slot.syncs_due.borrow_mut().pop_front();
            self.record(slot.id, "synced", node.syncs_pending() as u64);
            node.complete_sync()?;
        }
        Ok(())
    }

    fn fire_timer(&self, slot: &Slot<S>, node: &mut SimNode<S>) -> Result<(), raft_core::Error> {
        let now = SimClock::new(slot.clock.clone(), self.origin).now();
        if now < node.next_deadline() {
            return Ok(());
        }
        self.record(slot.id, "timer", now.0);
        node.on_timer()
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

    fn note_promises(&self, slot: &Slot<S>, events: &[Event]) {
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

    /// The checkers' look at one event: every applied entry.
    fn check_event(&self, slot: &Slot<S>, event: &Event) -> Result<(), Violation> {
        if let Event::LeaderChanged { leader, term } = event {
            self.checkers.borrow_mut().leaders.reported(
                slot.id,
                slot.incarnation(),
                *leader,
                *term,
            );
        }
        if let Event::Applied {
            index,
            term,
            data,
            result,
        } = event
        {
            self.record(slot.id, "apply", index.0 ^ (term.0 << 40));
            let entry = AppliedEntry {
                incarnation: slot.incarnation(),
                index: *index,
                term: *term,
                data,
                result,
            };
            self.checkers
                .borrow_mut()
                .applied(self.now(), slot.id, entry)?;
        }
        Ok(())
    }
}
