//! Message routing and delivery, service requests, and targeted crashes.

use crate::cluster::{Failure, Input, Phase, World, MAILBOX_MAX};
use crate::service::Service;
use raft_core::{Message, MessageBody, NodeId};
use rand::Rng;
use std::rc::Rc;
use std::time::Duration;

impl<S: Service> World<S> {
    /// Routes everything node `index` sent during its last step, checking votes and
    /// acknowledgements against the node's durable state and rolling for targeted crashes.
    pub(crate) fn route_outbox(self: &Rc<Self>, index: usize) {
        let outgoing: Vec<Message> = std::mem::take(&mut *self.slots[index].outbox.borrow_mut());
        for msg in outgoing {
            let checked = self.checkers.borrow_mut().durable.sent(self.now(), &msg);
            if let Err(v) = checked {
                return self.fail(Failure::Safety(v));
            }
            self.targeted_crash(index, &msg);
            self.route(msg);
        }
    }

    /// A BUGGIFY-style targeted crash *inside* a step: a leader whose step first sends the
    /// final configuration that leaves a joint one dies before anything it sent leaves, as if
    /// the process stopped before its send calls. Returns whether it died.
    ///
    /// This is how a new leader comes to hold a joint configuration only in its snapshot: the
    /// leader that committed the joint configuration applies it and snapshots in the same step
    /// in which it appends the final configuration, and that entry is lost with the crash
    /// (unsent, unsynced). Random crashes land there about once in a few thousand seeds, so
    /// the moment, which comes only a few times a seed, gets at least even odds.
    pub(crate) fn dies_before_sending(self: &Rc<Self>, index: usize) -> bool {
        let p = self.config.node_faults.targeted_crash;
        if p == 0.0 || self.phase() != Phase::Faults {
            return false;
        }
        let slot = &self.slots[index];
        let leaves_joint = {
            let guard = slot.node.borrow();
            let Some(raft) = guard.as_ref().map(|node| node.raft()) else {
                return false;
            };
            // The newest entry is a final configuration after a joint one, and this step
            // sends it (an append carrying it ends with it).
            let newest = raft.last_index();
            !raft.membership().is_joint()
                && raft.config_indexes().last() == Some(newest)
                && raft.membership_at(newest.prev()).is_joint()
                && slot.outbox.borrow().iter().any(|msg| {
                    matches!(&msg.body, MessageBody::AppendEntries { entries, .. }
                        if entries.last().is_some_and(|e| e.index == newest))
                })
        };
        if !leaves_joint || !self.node_rng.borrow_mut().gen_bool(p.max(0.5)) {
            return false;
        }
        let snapshot_first = self.node_rng.borrow_mut().gen_bool(0.5);
        let down = Duration::from_millis(self.node_rng.borrow_mut().gen_range(1..300));
        if snapshot_first {
            // The snapshot policy fires in this very step, so the joint configuration, just
            // committed and applied, lives on only in the snapshot. A disk error here ends the
            // process as the crash below does.
            let taken = slot
                .node
                .borrow_mut()
                .as_mut()
                .map(|node| node.snapshot_now());
            if let Some(Err(error)) = taken {
                slot.disk.borrow_mut().take_crash_point();
                tracing::info!(node = slot.id.0, %error, "snapshot failed before the crash");
            }
        }
        tracing::info!(
            node = slot.id.0,
            snapshot_first,
            "crashed before sending a configuration"
        );
        slot.outbox.borrow_mut().clear();
        self.crash(index, self.config.node_faults.crash_loss);
        self.restart_after(index, down);
        true
    }

    /// BUGGIFY-style targeted faults, which random crashes rarely hit: crash a node right after
    /// it grants a vote (is the vote durable?), or a leader right after it sends new entries
    /// (before they reach a majority: the Figure 8 set-up).
    fn targeted_crash(self: &Rc<Self>, index: usize, msg: &Message) {
        let p = self.config.node_faults.targeted_crash;
        if p == 0.0 || self.phase() != Phase::Faults {
            return;
        }
        let trigger = match &msg.body {
            MessageBody::RequestVoteResponse {
                pre_vote: false,
                granted: true,
            } => p,
            MessageBody::AppendEntries { entries, .. } if !entries.is_empty() => p / 20.0,
            _ => return,
        };
        if !self.node_rng.borrow_mut().gen_bool(trigger) {
            return;
        }
        let delay = Duration::from_micros(self.node_rng.borrow_mut().gen_range(0..3_000));
        let down = Duration::from_millis(self.node_rng.borrow_mut().gen_range(50..1_000));
        let incarnation = self.slots[index].incarnation();
        let world = self.clone();
        madsim::task::spawn_local(async move {
            madsim::time::sleep(delay).await;
            if world.slots[index].incarnation() != incarnation || world.phase() != Phase::Faults {
                return;
            }
            world.crash(index, world.config.node_faults.crash_loss);
            let incarnation = world.slots[index].incarnation();
            madsim::time::sleep(down).await;
            world.restart_if_down(index, incarnation);
        });
    }

    /// Decides the fate of one message and schedules its deliveries.
    fn route(self: &Rc<Self>, msg: Message) {
        let (from, to) = (msg.from, msg.to);
        let Some(target) = self.slots.iter().position(|s| s.id == to) else {
            return;
        };
        {
            let mut stats = self.stats.borrow_mut();
            stats.sent += 1;
            // What a down node is sent it cannot answer, so the leader rightly sends it
            // again; only what reaches a running node counts as resent.
            match &msg.body {
                _ if !self.slots[target].is_up() => {}
                MessageBody::AppendEntries { entries, .. } => {
                    stats.entries_sent += entries.len() as u64;
                }
                MessageBody::InstallSnapshot { .. } => stats.snapshots_sent += 1,
                _ => {}
            }
        }
        let delays = self.net.borrow_mut().route(from, to);
        if delays.is_empty() {
            return;
        }
        let bytes: Rc<[u8]> = raft_core::encode(&msg).into();
        for delay in delays {
            let world = self.clone();
            let bytes = bytes.clone();
            madsim::task::spawn_local(async move {
                madsim::time::sleep(delay).await;
                world.deliver(from, target, bytes);
            });
        }
    }

    /// Puts a message copy into the target's mailbox if the link is still up and the target
    /// runs.
    pub(crate) fn deliver(&self, from: NodeId, target: usize, bytes: Rc<[u8]>) {
        let slot = &self.slots[target];
        // The link must still be up on arrival (see net.rs on partitions and in-flight data).
        if self.finished() || !slot.is_up() || !self.net.borrow().link_up(from, slot.id) {
            return;
        }
        let mut mailbox = slot.mailbox.borrow_mut();
        if mailbox.len() < MAILBOX_MAX {
            mailbox.push_back(Input::Message(bytes));
            self.stats.borrow_mut().delivered += 1;
        }
        drop(mailbox);
        slot.wake();
    }

    /// Hands a client request to node `target` (the client sits next to every node: requests
    /// arrive at once and are lost only if the node is down).
    pub fn send_client(&self, target: NodeId, request: S::Request) {
        let Some(slot) = self.slots.iter().find(|s| s.id == target) else {
            return;
        };
        if slot.is_up() {
            slot.mailbox.borrow_mut().push_back(Input::Client(request));
            slot.wake();
        }
    }
}
