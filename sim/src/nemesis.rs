//! Nemeses of the fault phase: membership changes and leadership transfers, while partitions,
//! crashes and disk faults go on.
//!
//! A seed with nemeses gets spare nodes, ids after the initial voters, that run from the start
//! as replicas that belong to no configuration (`raft_core::Config::join_existing`). At random
//! times the nemesis asks the current leader, through the same `Node` calls an operator would
//! use, to add a non-member as a learner, promote a learner, remove a learner or a voter,
//! replace a voter with a learner, or hand leadership to another voter. Sometimes it asks for
//! a second change right after an accepted one (correct code refuses it while the first is in
//! flight), and sometimes right after a new leader appears (correct code refuses it until the
//! leader has committed an entry of its own term). Refusals (`Error::MembershipChange` and the
//! like) are logged and the nemesis moves on.
//!
//! The disk-fault budget stays honest: faulty disks are drawn among the initial voters only
//! (at most `(n - 1) / 2` of them), only nodes with healthy disks become voters, and the voters
//! never shrink below the initial count, so every configuration, joint ones included, keeps its
//! faulty voters within its own tolerance.

use crate::cluster::World;
use crate::config::{stream_rng, Stream};
use crate::service::Service;
use raft_core::{Error, Membership, MembershipChange, NodeId, Role, Term};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::Rng;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

/// The nemesis settings of one seed.
#[derive(Clone, Debug, PartialEq)]
pub struct NemesisConfig {
    /// Mean time between nemesis actions.
    pub every: Duration,
    /// Spare nodes the cluster gets (1 or 2).
    pub spares: usize,
    /// Relative weight of a leadership transfer against one membership change.
    pub transfer_weight: u32,
    /// Probability of a second change right after an accepted one.
    pub burst: f64,
    /// Probability of a change right after a new leader is first seen.
    pub after_election: f64,
}

impl NemesisConfig {
    /// Draws the nemesis of a seed: on for about half of the seeds.
    pub fn draw(rng: &mut SmallRng) -> Option<NemesisConfig> {
        if !rng.gen_bool(0.5) {
            return None;
        }
        Some(NemesisConfig {
            every: Duration::from_millis(rng.gen_range(150..1_500)),
            spares: rng.gen_range(1..=2),
            transfer_weight: rng.gen_range(0..4),
            burst: rng.gen_range(0.0..0.5),
            after_election: rng.gen_range(0.0..0.6),
        })
    }
}

impl fmt::Display for NemesisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "every {:?}, transfer weight {}, bursts {:.2}, after elections {:.2}",
            self.every, self.transfer_weight, self.burst, self.after_election
        )
    }
}

/// One thing the nemesis asks of a leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `Node::change_membership`.
    Change(MembershipChange),
    /// `Node::transfer_leadership`.
    Transfer(NodeId),
}

/// What the nemesis may do to a configuration, as a pure function of it.
pub struct Choices<'a> {
    /// Every node of the cluster.
    pub all: &'a [NodeId],
    /// The leader asked.
    pub leader: NodeId,
    /// Nodes whose disks never fail (the only ones that may become voters).
    pub healthy: &'a dyn Fn(NodeId) -> bool,
    /// Voters are never removed below this count (the initial cluster size).
    pub min_voters: usize,
    /// Relative weight of transfers.
    pub transfer_weight: u32,
    /// Offer only membership changes.
    pub changes_only: bool,
}

impl Choices<'_> {
    /// Every action allowed on `m`, each listed once per unit of weight.
    pub fn actions(&self, m: &Membership) -> Vec<Action> {
        use MembershipChange::*;
        let mut out = Vec::new();
        let healthy_learners: Vec<NodeId> = m
            .learners
            .iter()
            .copied()
            .filter(|id| (self.healthy)(*id))
            .collect();
        for &id in self.all.iter().filter(|id| !m.contains(**id)) {
            out.push(Action::Change(AddLearner(id)));
        }
        for &id in &healthy_learners {
            out.push(Action::Change(PromoteLearner(id)));
            for &old in &m.voters {
                out.push(Action::Change(ReplaceVoter { old, new: id }));
            }
        }
        for &id in &m.learners {
            out.push(Action::Change(RemoveNode(id)));
        }
        if m.voters.len() > self.min_voters {
            out.extend(m.voters.iter().map(|&id| Action::Change(RemoveNode(id))));
        }
        if !self.changes_only {
            for &to in m.voters.iter().filter(|id| **id != self.leader) {
                for _ in 0..self.transfer_weight {
                    out.push(Action::Transfer(to));
                }
            }
        }
        out
    }
}

/// The nemesis state of one run.
#[derive(Debug)]
pub struct NemesisState {
    rng: SmallRng,
    /// The highest term in which each node was seen leading.
    leading: BTreeMap<NodeId, Term>,
    /// Changes and transfers the leaders accepted.
    pub accepted: u64,
    /// Requests the leaders refused.
    pub refused: u64,
}

impl NemesisState {
    /// The state for `seed`'s run.
    pub fn new(seed: u64) -> NemesisState {
        NemesisState {
            rng: stream_rng(seed ^ 0x6e65_6d65_7369_7321, Stream::Nemesis),
            leading: BTreeMap::new(),
            accepted: 0,
            refused: 0,
        }
    }
}

/// An exponentially distributed delay with the given mean, at least 1 ms.
fn exp_delay(rng: &mut SmallRng, mean: Duration) -> Duration {
    let u: f64 = rng.gen_range(0.0..1.0);
    let secs = -mean.as_secs_f64() * (1.0 - u).ln();
    Duration::from_secs_f64(secs.min(mean.as_secs_f64() * 20.0)).max(Duration::from_millis(1))
}

/// The nemesis task of a run: acts at random times until the fault phase ends.
pub(crate) async fn nemesis_task<S: Service>(
    world: Rc<World<S>>,
    config: NemesisConfig,
    mut rng: SmallRng,
) {
    loop {
        madsim::time::sleep(exp_delay(&mut rng, config.every)).await;
        if world.phase() != crate::cluster::Phase::Faults {
            return;
        }
        let Some(index) = world.acting_leader() else {
            continue;
        };
        if !world.nemesis_act(index, &mut rng, false) {
            continue;
        }
        if rng.gen_bool(config.burst) {
            world.nemesis_act(index, &mut rng, true);
        }
    }
}

impl<S: Service> World<S> {
    /// The slot of the running, unpaused leader of the highest term, if any.
    fn acting_leader(&self) -> Option<usize> {
        (0..self.slots().len())
            .filter_map(|i| {
                let slot = self.slot(i);
                let guard = slot.node.borrow();
                let status = guard.as_ref()?.status();
                (status.role == Role::Leader && !slot.paused()).then_some((status.term, i))
            })
            .max()
            .map(|(_, i)| i)
    }

    /// Picks an action for the leader in slot `index` and asks for it; returns whether the
    /// leader accepted it.
    fn nemesis_act(self: &Rc<Self>, index: usize, rng: &mut SmallRng, changes_only: bool) -> bool {
        let Some(nemesis) = &self.config.nemesis else {
            return false;
        };
        let slot = self.slot(index);
        let Some(membership) = slot.node.borrow().as_ref().map(|n| n.membership().clone()) else {
            return false;
        };
        let all: Vec<NodeId> = self.slots().iter().map(|s| s.id).collect();
        let healthy = |id: NodeId| self.slots().iter().any(|s| s.id == id && !s.disk_faulty);
        let choices = Choices {
            all: &all,
            leader: slot.id,
            healthy: &healthy,
            min_voters: self.config.nodes,
            transfer_weight: nemesis.transfer_weight,
            changes_only,
        };
        let Some(&action) = choices.actions(&membership).choose(rng) else {
            return false;
        };
        self.ask(index, action)
    }

    /// Asks the node in slot `index` for `action`, as an operator would.
    fn ask(self: &Rc<Self>, index: usize, action: Action) -> bool {
        let slot = self.slot(index);
        let result = {
            let mut guard = slot.node.borrow_mut();
            let Some(node) = guard.as_mut() else {
                return false;
            };
            let _enter = slot.span.enter();
            match action {
                Action::Change(change) => node.change_membership(change).map(|_| ()),
                Action::Transfer(to) => node.transfer_leadership(to),
            }
        };
        match result {
            Ok(()) => {
                tracing::info!(node = slot.id.0, ?action, "nemesis: accepted");
                self.nemesis.borrow_mut().accepted += 1;
                self.record(slot.id, "nemesis", 1);
                self.after_step(index);
                true
            }
            Err(
                error @ (Error::NotLeader { .. }
                | Error::TransferInProgress { .. }
                | Error::MembershipChange(_)
                | Error::UnknownPeer(_)),
            ) => {
                // Every action is drawn from the leader's own configuration of this instant, so
                // only the timing rules may refuse it: never for a member it does not know.
                let invalid = match &error {
                    Error::UnknownPeer(id) => Some(format!(
                        "n{} refused {action:?}: it does not know {id}, a member of the \
                         configuration the action was drawn from",
                        slot.id
                    )),
                    Error::MembershipChange(why) if !in_flight_refusal(why) => Some(format!(
                        "n{} refused {action:?}, which is valid for its configuration: {why}",
                        slot.id
                    )),
                    _ => None,
                };
                if let Some(what) = invalid {
                    self.fail(crate::cluster::Failure::Node(what));
                    return false;
                }
                tracing::info!(node = slot.id.0, ?action, %error, "nemesis: refused");
                self.nemesis.borrow_mut().refused += 1;
                self.record(slot.id, "nemesis", 0);
                false
            }
            Err(error) => {
                self.route_outbox(index);
                self.node_error(index, error);
                false
            }
        }
    }

    /// Called after every step: the first time a node is seen leading a term, the nemesis may
    /// ask it for a membership change almost at once, before its first entry can commit.
    pub(crate) fn nemesis_saw(self: &Rc<Self>, index: usize, status: &raft_core::Status) {
        let Some(nemesis) = &self.config.nemesis else {
            return;
        };
        if status.role != Role::Leader || self.phase() != crate::cluster::Phase::Faults {
            return;
        }
        let (delay, seed) = {
            let mut state = self.nemesis.borrow_mut();
            let seen = state.leading.insert(status.id, status.term);
            if seen.is_some_and(|term| term >= status.term) {
                return;
            }
            if !state.rng.gen_bool(nemesis.after_election) {
                return;
            }
            let delay = Duration::from_micros(state.rng.gen_range(0..2_000));
            (delay, state.rng.gen())
        };
        let (world, term, incarnation) =
            (self.clone(), status.term, self.slot(index).incarnation());
        madsim::task::spawn_local(async move {
            madsim::time::sleep(delay).await;
            let slot = world.slot(index);
            let still = slot.node.borrow().as_ref().map(|n| n.status());
            let leading = still.is_some_and(|s| s.role == Role::Leader && s.term == term);
            if leading && slot.incarnation() == incarnation && !slot.paused() {
                let mut rng = stream_rng(seed, Stream::Nemesis);
                if world.phase() == crate::cluster::Phase::Faults {
                    world.nemesis_act(index, &mut rng, true);
                }
            }
        });
    }
}

/// Whether a refused membership change was refused for its timing (another change in flight,
/// no own-term commit yet, a learner still catching up) rather than for what it asks.
fn in_flight_refusal(why: &str) -> bool {
    why == "another membership change is in progress"
        || why == "the leader has not yet committed an entry of its term"
        || why.ends_with("has not caught up with the commit index")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(raw: &[u64]) -> Vec<NodeId> {
        raw.iter().copied().map(NodeId).collect()
    }

    #[test]
    fn only_healthy_nodes_become_voters_and_voters_never_shrink_below_the_start() {
        let all = ids(&[1, 2, 3, 4, 5]);
        let healthy = |id: NodeId| id != NodeId(5);
        let choices = Choices {
            all: &all,
            leader: NodeId(1),
            healthy: &healthy,
            min_voters: 3,
            transfer_weight: 1,
            changes_only: false,
        };
        let mut m = Membership::new(ids(&[1, 2, 3]));
        m.learners = ids(&[4, 5]);
        let actions = choices.actions(&m);
        for action in &actions {
            match action {
                Action::Change(MembershipChange::PromoteLearner(id))
                | Action::Change(MembershipChange::ReplaceVoter { new: id, .. }) => {
                    assert_ne!(*id, NodeId(5), "a faulty disk became a voter")
                }
                Action::Change(MembershipChange::RemoveNode(id)) => {
                    assert!(m.is_learner(*id), "removed a voter at the minimum")
                }
                Action::Transfer(to) => assert!(*to != NodeId(1) && m.voters.contains(to)),
                Action::Change(MembershipChange::AddLearner(_)) => panic!("all are members"),
            }
        }
        assert!(actions.contains(&Action::Change(MembershipChange::PromoteLearner(NodeId(4)))));
        m.voters = ids(&[1, 2, 3, 4]);
        m.learners = ids(&[5]);
        let actions = choices.actions(&m);
        assert!(actions.contains(&Action::Change(MembershipChange::RemoveNode(NodeId(2)))));
        let only = Choices {
            changes_only: true,
            ..choices
        };
        assert!(only
            .actions(&m)
            .iter()
            .all(|a| matches!(a, Action::Change(_))));
    }

    #[test]
    fn non_members_can_be_added() {
        let all = ids(&[1, 2, 3, 4]);
        let healthy = |_| true;
        let choices = Choices {
            all: &all,
            leader: NodeId(2),
            healthy: &healthy,
            min_voters: 3,
            transfer_weight: 0,
            changes_only: false,
        };
        let actions = choices.actions(&Membership::new(ids(&[1, 2, 3])));
        assert_eq!(
            actions,
            vec![Action::Change(MembershipChange::AddLearner(NodeId(4)))]
        );
    }
}
