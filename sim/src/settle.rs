//! The settle phase: a recovered cluster must also be a calm one.
//!
//! The liveness phase ends as soon as every group has a leader and the service waits for
//! nothing. Many bugs break no safety rule and still pass that: a removed node or a rejoining
//! one that keeps deposing a healthy leader, a follower that never catches up (a majority
//! commits without it), a leader that resends its log on every heartbeat. So after recovery
//! every group is watched a little longer, with faults off and the clients idle:
//!
//! 1. **Leadership holds.** The leader found at recovery stays leader in the same term, and
//!    no running member of its configuration moves to a higher term, for the whole phase.
//!    A healthy leader on a healed network has no reason to lose its place.
//! 2. **Followers catch up.** Within [`CATCH_UP_BOUND`] (longer when the leader sends fewer
//!    than four entries per round trip), every running member has committed what the leader
//!    had committed at recovery and holds the leader's last entry of then.
//! 3. **Replication quiets down.** Once every member has caught up, over [`World::quiet_window`]
//!    (two of the longest election timeouts, at least ten heartbeats) the group sends no more
//!    than a heartbeat round per heartbeat interval (with a margin for clock drift), a few
//!    messages per new entry, and no entry or snapshot twice. A service whose clients or
//!    servers keep the cluster busy after the heal says so with
//!    [`Service::QUIET_AFTER_HEAL`]; only the first two and the last then apply.
//!    On a lease-read seed the leader also holds its lease at some look over the window
//!    (unless it gave the lease up for its term by sending a transfer's `TimeoutNow`): a
//!    quiet cluster answers every heartbeat, so a leader that never holds one serves every
//!    read with a round trip.
//! 4. **The configuration settles.** By the end of the quiet window the leader's
//!    configuration is final: not joint, and no configuration entry uncommitted. A leader
//!    that never ends a joint configuration (one it learned from a snapshot, say, with no
//!    entry of it left in its log) refuses every later change, and nothing else notices.
//! 5. **A transfer completes.** Then the phase asks the leader to hand leadership to a
//!    running voter of its configuration (the lowest id), which has caught up: on a healed,
//!    quiet cluster the target must lead a later term within [`World::quiet_window`]. Faults
//!    excuse an abandoned transfer during the fault phase; nothing excuses one here, so a
//!    transfer that can never succeed (a target that ignores its leader's `TimeoutNow`, say)
//!    fails the run. Not while a running non-member could take the election over: one with a
//!    term beyond the leader's, or any without PreVote (a removed node's campaigns raise its
//!    term every timeout). Members ignore it only while they know a leader, and the
//!    election the transfer starts is a moment when they know none.
//! 6. **Logs stay bounded.** At the end, every node's log (on disk and in memory) is within
//!    its bound of the snapshot threshold ([`World::check_log_bound`]).
//!
//! It begins once the messages of the fault phase have arrived. Up to rule 5 the phase only
//! watches: it sends nothing and changes no draw, so a seed's schedule up to recovery is what
//! it was without it, and the transfer of rule 5 comes after every rule before it was checked.

use crate::cluster::{Failure, Stats, World};
use crate::runner::Run;
use crate::service::Service;
use raft_core::{LogIndex, NodeId, Role, Term};
use std::rc::Rc;
use std::time::Duration;

/// The end of the phase: every group's logs within their bound, if the service asks for it.
/// Not at recovery: a leader cut off in a minority may have appended entries it could never
/// commit, and until the new leader replaces them on that node no snapshot can cover them;
/// by now every member has caught up.
fn check_log_bounds<S: Service>(run: &Rc<Run<S>>) {
    if !S::CHECK_LOG_BOUND {
        return;
    }
    for world in run.worlds() {
        if let Err(v) = world.check_log_bound() {
            world.fail(Failure::Safety(v));
            return run.collect_failures();
        }
    }
}

/// How long after recovery every running member must have caught up with the leader.
pub const CATCH_UP_BOUND: Duration = Duration::from_secs(3);

/// How often the phase looks at the groups.
const POLL: Duration = Duration::from_millis(10);

/// Heartbeat rounds the quiet window allows per nominal heartbeat interval: a node's clock
/// may run up to 40% fast on lease-read seeds, and a leader sends a round at once when a
/// follower answers out of turn.
const ROUNDS_PER_HEARTBEAT: u64 = 2;

/// What a group looked like when the phase began.
#[derive(Clone, Debug)]
struct Baseline {
    leader: NodeId,
    term: Term,
    commit: LogIndex,
    last: LogIndex,
    last_term: Option<Term>,
    /// Voters (incoming and outgoing) and learners of the leader's configuration.
    members: Vec<NodeId>,
    /// The leadership transfer the leader had under way (a nemesis asked for it before the
    /// heal): it must complete or be abandoned within [`World::quiet_window`].
    transfer: Option<NodeId>,
}

/// Where one group is in the phase.
#[derive(Clone, Debug)]
enum Stage {
    CatchingUp,
    /// Every member caught up at `since`; the counters and the leader's log of then, and
    /// whether the leader has held its lease at some look since.
    Quiet {
        since: Duration,
        stats: Stats,
        last: LogIndex,
        leased: bool,
    },
    /// Rule 5: the leader of `from_term` was asked at `since` to hand leadership to `target`.
    Handover {
        target: NodeId,
        from_term: Term,
        since: Duration,
    },
    Done,
}

/// A leadership transfer under way at recovery, as seen at one instant.
#[derive(PartialEq, Eq)]
enum Transfer {
    Completed,
    Abandoned,
    InFlight,
}

/// Runs the settle phase over every group of `run` (see the module documentation). A broken
/// rule fails the run as a liveness failure of the group.
pub(crate) async fn settle<S: Service>(run: &Rc<Run<S>>, healed_at: Duration) {
    // A message of the fault phase may still be on its way (delayed, say, a TimeoutNow of a
    // transfer abandoned since): what it does is the fault phase's doing. The phase starts
    // once every such message has arrived.
    let in_flight = run
        .worlds()
        .iter()
        .map(|w| w.config.net.latency_max + w.config.net.jitter_max + w.config.net.delay_max)
        .max()
        .unwrap_or_default();
    // A clock may still jump after the heal (the groups of a sharded run draw their jumps
    // over their own spans); a jump is a fault too, and the phase starts once its effect (a
    // leader or follower timing out at once) has had two election timeouts to pass.
    let last_jump = run
        .worlds()
        .iter()
        .flat_map(|w| {
            let settled = 2 * w.election_timeout_max();
            w.config
                .clocks
                .iter()
                .flat_map(move |c| c.jumps.iter().map(move |j| j.at + settled))
        })
        .max()
        .unwrap_or_default();
    let drained = (healed_at + in_flight).max(last_jump) + POLL;
    if run.now() < drained {
        madsim::time::sleep(drained - run.now()).await;
    }
    let start = run.now();
    let mut groups: Vec<(Baseline, Stage)> = Vec::new();
    for world in run.worlds() {
        let baseline = loop {
            run.collect_failures();
            if run.finished() {
                return;
            }
            if let Some(baseline) = world.settle_baseline() {
                break baseline;
            }
            if run.now() - start >= CATCH_UP_BOUND {
                let what = format!(
                    "no live leader within {CATCH_UP_BOUND:?} once the fault phase's messages \
                     had arrived"
                );
                world.fail(Failure::Liveness(what));
                return run.collect_failures();
            }
            madsim::time::sleep(POLL).await;
        };
        groups.push((baseline, Stage::CatchingUp));
    }
    loop {
        if groups.iter().all(|(_, stage)| matches!(stage, Stage::Done)) {
            return check_log_bounds(run);
        }
        madsim::time::sleep(POLL).await;
        run.collect_failures();
        if run.finished() {
            return;
        }
        let now = run.now();
        for (world, (baseline, stage)) in run.worlds().iter().zip(groups.iter_mut()) {
            if let Err(what) = world.settle_step(baseline, stage, now - start) {
                world.fail(Failure::Liveness(what));
                return run.collect_failures();
            }
        }
    }
}

impl<S: Service> World<S> {
    /// The leader and its log at the start of the phase.
    fn settle_baseline(&self) -> Option<Baseline> {
        let (status, _) = self.live_leader()?;
        let slot = self.slots.iter().find(|s| s.id == status.id)?;
        let guard = slot.node.borrow();
        let node = guard.as_ref()?;
        let members = node.membership().members();
        Some(Baseline {
            leader: status.id,
            term: status.term,
            commit: status.commit,
            last: status.last_index,
            last_term: node.entry_term(status.last_index),
            members,
            transfer: node.raft().transfer_target(),
        })
    }

    /// One look at the group: rule 1 always, then rule 2 or 3 by stage.
    fn settle_step(
        &self,
        baseline: &mut Baseline,
        stage: &mut Stage,
        elapsed: Duration,
    ) -> Result<(), String> {
        if matches!(stage, Stage::Done) {
            return Ok(());
        }
        if let Some(target) = baseline.transfer {
            match self.transfer_outcome(baseline, target) {
                Transfer::Completed | Transfer::Abandoned => {
                    // Watch the leader that resulted, from the start.
                    *baseline = self.settle_baseline().ok_or_else(|| {
                        format!("the leadership transfer to n{target} left no live leader")
                    })?;
                    *stage = Stage::CatchingUp;
                }
                Transfer::InFlight if elapsed >= self.quiet_window() => {
                    return Err(format!(
                        "a leadership transfer from n{} (term {}) to n{target} neither \
                         completed nor was abandoned within {:?} of recovery",
                        baseline.leader,
                        baseline.term,
                        self.quiet_window()
                    ));
                }
                Transfer::InFlight => {}
            }
            return Ok(());
        }
        if let Stage::Handover {
            target,
            from_term,
            since,
        } = *stage
        {
            if self.handover_done(baseline, target, from_term, self.now() - since)? {
                *stage = Stage::Done;
            }
            return Ok(());
        }
        self.leadership_held(baseline)?;
        match stage {
            Stage::CatchingUp => {
                let lagging = self.lagging(baseline);
                if lagging.is_empty() {
                    let leader = self.status_of(baseline.leader).map(|s| s.last_index);
                    *stage = Stage::Quiet {
                        since: self.now(),
                        stats: *self.stats.borrow(),
                        last: leader.unwrap_or(baseline.last),
                        leased: false,
                    };
                } else if elapsed >= self.catch_up_bound() {
                    return Err(format!(
                        "followers did not catch up within {:?} of recovery (leader \
                         n{} of term {} had commit {} and last index {}): {}",
                        self.catch_up_bound(),
                        baseline.leader,
                        baseline.term,
                        baseline.commit,
                        baseline.last,
                        lagging.join(", ")
                    ));
                }
            }
            Stage::Quiet {
                since,
                stats,
                last,
                leased,
            } => {
                *leased |= self
                    .with_raft(baseline.leader, raft_core::Raft::holds_lease)
                    .unwrap_or(false);
                if self.now() - *since >= self.quiet_window() {
                    self.quiet_enough(baseline, *since, stats, *last)?;
                    // Not if a transfer's `TimeoutNow` (an abandoned transfer of the fault
                    // phase, say) gave the lease up for the baseline's term.
                    let lease_due = self.config.raft.lease_drift_bound_ppm.is_some()
                        && !self
                            .with_raft(baseline.leader, raft_core::Raft::lease_given_up)
                            .unwrap_or(false);
                    if lease_due && !*leased {
                        return Err(format!(
                            "leader n{} of term {} never held its read lease over {:?} of a \
                             quiet cluster (lease reads on)",
                            baseline.leader,
                            baseline.term,
                            self.now() - *since
                        ));
                    }
                    self.configuration_settled(baseline, elapsed)?;
                    *stage = match self.start_handover(baseline)? {
                        Some(target) => Stage::Handover {
                            target,
                            from_term: baseline.term,
                            since: self.now(),
                        },
                        None => Stage::Done,
                    };
                }
            }
            Stage::Handover { .. } | Stage::Done => {}
        }
        Ok(())
    }

    /// The window of rule 3: two of the longest election timeouts (a removed node's campaign
    /// falls in it), at least ten heartbeats.
    pub fn quiet_window(&self) -> Duration {
        let t = &self.config.raft;
        let ticks = (2 * t.election_ticks_max).max(10 * t.heartbeat_ticks);
        Duration::from_micros(ticks * t.tick_micros)
    }

    /// The longest election timeout of the group, in nominal simulated time.
    fn election_timeout_max(&self) -> Duration {
        let t = &self.config.raft;
        Duration::from_micros(t.election_ticks_max * t.tick_micros)
    }

    /// [`CATCH_UP_BOUND`], stretched for a group whose leader sends a follower fewer than four
    /// entries per round trip (one entry per append with one or two appends in flight, a
    /// flow-control draw): such a follower hundreds of entries behind gains one or two per
    /// round trip, and takes longer than the bound by design, not by a bug.
    fn catch_up_bound(&self) -> Duration {
        let t = &self.config.raft;
        let per_round = (t.max_entries_per_append * t.max_inflight_appends).max(1) as u32;
        if per_round >= 4 {
            CATCH_UP_BOUND
        } else {
            CATCH_UP_BOUND * 4 / per_round
        }
    }

    /// Where the baseline leader's transfer to `target` stands: completed once `target` leads
    /// a later term, abandoned once the leader still leads its term with no transfer.
    fn transfer_outcome(&self, baseline: &Baseline, target: NodeId) -> Transfer {
        let statuses = self.statuses();
        let led_by = |id: NodeId| {
            statuses
                .iter()
                .find(|s| s.id == id && s.role == Role::Leader)
                .map(|s| s.term)
        };
        if led_by(target).is_some_and(|term| term > baseline.term) {
            return Transfer::Completed;
        }
        let pending = self
            .with_raft(baseline.leader, raft_core::Raft::transfer_target)
            .flatten();
        if led_by(baseline.leader) == Some(baseline.term) && pending.is_none() {
            return Transfer::Abandoned;
        }
        Transfer::InFlight
    }

    /// Rule 1: the leader of the baseline still leads its term and no member is beyond it.
    fn leadership_held(&self, baseline: &Baseline) -> Result<(), String> {
        let statuses = self.statuses();
        let leader = statuses.iter().find(|s| s.id == baseline.leader);
        let held = leader.is_some_and(|s| s.role == Role::Leader && s.term == baseline.term);
        let beyond: Vec<String> = statuses
            .iter()
            .filter(|s| baseline.members.contains(&s.id) && s.term > baseline.term)
            .map(|s| format!("n{} {} term {}", s.id, s.role, s.term))
            .collect();
        if held && beyond.is_empty() {
            return Ok(());
        }
        let now = leader.map_or("down".to_string(), |s| {
            format!("{} term {}", s.role, s.term)
        });
        let others: Vec<String> = statuses
            .iter()
            .filter(|s| s.id != baseline.leader)
            .map(|s| {
                let member = if baseline.members.contains(&s.id) {
                    ""
                } else {
                    " (not a member)"
                };
                format!("n{} {} term {}{member}", s.id, s.role, s.term)
            })
            .collect();
        Err(format!(
            "a healthy leader was disrupted after the heal: n{} led term {} at recovery and is \
             now {now}{}; nodes: [{}]",
            baseline.leader,
            baseline.term,
            if beyond.is_empty() {
                String::new()
            } else {
                format!("; beyond its term: {}", beyond.join(", "))
            },
            others.join(", ")
        ))
    }

    /// Rule 2: the running members that have not yet committed the baseline's commit index
    /// or do not hold its last entry.
    fn lagging(&self, baseline: &Baseline) -> Vec<String> {
        let mut lagging = Vec::new();
        for slot in &self.slots {
            if slot.id == baseline.leader || !baseline.members.contains(&slot.id) {
                continue;
            }
            let guard = slot.node.borrow();
            let Some(node) = guard.as_ref() else { continue };
            let status = node.status();
            let term = node.entry_term(baseline.last);
            // A snapshot past the entry covers it; a different term there is a log that
            // still diverges.
            let holds_last = status.last_index >= baseline.last
                && (term.is_none() || baseline.last_term.is_none() || term == baseline.last_term);
            if status.commit < baseline.commit || !holds_last {
                lagging.push(format!(
                    "n{} {} commit {} last index {}",
                    slot.id, status.role, status.commit, status.last_index
                ));
            }
        }
        lagging
    }

    /// Rule 4: the leader's configuration is final (not joint, every configuration entry
    /// committed) `elapsed` after the phase began.
    fn configuration_settled(&self, baseline: &Baseline, elapsed: Duration) -> Result<(), String> {
        let Some(slot) = self.slots.iter().find(|s| s.id == baseline.leader) else {
            return Ok(());
        };
        let guard = slot.node.borrow();
        let Some(node) = guard.as_ref() else {
            return Ok(());
        };
        let raft = node.raft();
        let membership = raft.membership();
        let uncommitted = raft.config_indexes().filter(|&i| i > raft.commit()).last();
        if !membership.is_joint() && uncommitted.is_none() {
            return Ok(());
        }
        let what = match uncommitted {
            Some(index) => format!("its configuration entry {index} is still uncommitted"),
            None if raft.config_indexes().next().is_none() => {
                "it is still joint, a configuration it holds only in its snapshot".to_string()
            }
            None => "it is still joint".to_string(),
        };
        Err(format!(
            "the configuration did not settle within {elapsed:?} of recovery: leader n{} of \
             term {} (commit {}) has voters {:?}, outgoing voters {:?}: {what}",
            baseline.leader,
            baseline.term,
            raft.commit(),
            membership.voters,
            membership.outgoing
        ))
    }

    /// Rule 5: asks the baseline leader to transfer leadership to the lowest running voter
    /// of its configuration but itself; `None` when it has no such voter.
    fn start_handover(&self, baseline: &Baseline) -> Result<Option<NodeId>, String> {
        let Some(slot) = self.slots.iter().find(|s| s.id == baseline.leader) else {
            return Ok(None);
        };
        let voters = match slot.node.borrow().as_ref() {
            Some(node) => node.membership().voters.clone(),
            None => return Ok(None),
        };
        let statuses = self.statuses();
        let disruptive = statuses.iter().any(|s| {
            !voters.contains(&s.id)
                && !baseline.members.contains(&s.id)
                && (s.term > baseline.term || !self.config.raft.pre_vote)
        });
        if disruptive {
            return Ok(None);
        }
        let running = |id: NodeId| statuses.iter().any(|s| s.id == id);
        let Some(target) = voters
            .into_iter()
            .filter(|&id| id != baseline.leader && running(id))
            .min()
        else {
            return Ok(None);
        };
        let mut guard = slot.node.borrow_mut();
        let Some(node) = guard.as_mut() else {
            return Ok(None);
        };
        let _enter = slot.span.enter();
        tracing::info!(%target, "settle: asking for a leadership transfer");
        node.transfer_leadership(target).map_err(|error| {
            format!(
                "leader n{} of term {} refused a transfer to n{target}, a caught-up voter of \
                 its final configuration, on a healed cluster: {error}",
                baseline.leader, baseline.term
            )
        })?;
        Ok(Some(target))
    }

    /// Rule 5: whether the transfer to `target` asked of the leader of `from_term`
    /// `elapsed` ago has completed; an error once it was abandoned, went elsewhere or ran
    /// past [`World::quiet_window`].
    fn handover_done(
        &self,
        baseline: &Baseline,
        target: NodeId,
        from_term: Term,
        elapsed: Duration,
    ) -> Result<bool, String> {
        let leaders: Vec<raft_core::Status> = self
            .statuses()
            .into_iter()
            .filter(|s| s.role == Role::Leader && s.term > from_term)
            .collect();
        if leaders.iter().any(|s| s.id == target) {
            return Ok(true);
        }
        let what = if let Some(other) = leaders.first() {
            format!("n{} leads term {} instead", other.id, other.term)
        } else if self.transfer_outcome(baseline, target) == Transfer::Abandoned {
            "the leader abandoned it".to_string()
        } else if elapsed >= self.quiet_window() {
            format!("it did not complete within {:?}", self.quiet_window())
        } else {
            return Ok(false);
        };
        Err(format!(
            "a leadership transfer from n{} (term {from_term}) to n{target}, a caught-up voter, \
             on a healed and quiet cluster failed: {what}",
            baseline.leader
        ))
    }

    /// `f` of node `id`'s Raft state; `None` while the node is down.
    fn with_raft<R>(&self, id: NodeId, f: impl FnOnce(&raft_core::Raft) -> R) -> Option<R> {
        let slot = self.slots.iter().find(|s| s.id == id)?;
        let guard = slot.node.borrow();
        guard.as_ref().map(|node| f(node.raft()))
    }

    fn status_of(&self, id: NodeId) -> Option<raft_core::Status> {
        self.statuses().into_iter().find(|s| s.id == id)
    }

    /// Rule 3 over the window that began at `since` with counters `before` and the leader's
    /// last index `last_before`.
    fn quiet_enough(
        &self,
        baseline: &Baseline,
        since: Duration,
        before: &Stats,
        last_before: LogIndex,
    ) -> Result<(), String> {
        let window = self.now() - since;
        let now = *self.stats.borrow();
        let sent = now.sent - before.sent;
        let entries = now.entries_sent - before.entries_sent;
        let snapshots = now.snapshots_sent - before.snapshots_sent;
        let last = self
            .status_of(baseline.leader)
            .map_or(last_before, |s| s.last_index);
        let budget = QuietBudget::new(self, baseline, window, last.0 - last_before.0);
        budget.check(sent, entries, snapshots, S::QUIET_AFTER_HEAL)
    }
}

/// What rule 3 allows a group over one quiet window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct QuietBudget {
    window: Duration,
    peers: u64,
    new_entries: u64,
    messages: u64,
    entries: u64,
    snapshots: u64,
}

impl QuietBudget {
    fn new<S: Service>(
        world: &World<S>,
        baseline: &Baseline,
        window: Duration,
        new_entries: u64,
    ) -> QuietBudget {
        let t = &world.config.raft;
        let running = world.statuses();
        // Heartbeats go to every member, running or not.
        let peers = baseline.members.len() as u64 - 1;
        let outsiders = running
            .iter()
            .filter(|s| !baseline.members.contains(&s.id))
            .count() as u64;
        QuietBudget::from_parts(
            window,
            Duration::from_micros(t.heartbeat_ticks * t.tick_micros),
            Duration::from_micros(t.election_ticks_min * t.tick_micros),
            peers,
            outsiders,
            running.len() as u64,
            new_entries,
            t.max_entries_per_append as u64,
        )
    }

    /// The budget of a window: heartbeat rounds (a message and its answer per peer), the
    /// campaigns of running non-members (spares, removed nodes: a pre-vote and a vote with
    /// their answers to every node per election timeout), and four messages per new entry
    /// and peer. Every new entry reaches each peer once, and each peer may get one batch
    /// again (an append that crossed the peer's catching up: the leader learns only from its
    /// answer that it was not needed); no snapshot is sent to a caught-up peer.
    #[allow(clippy::too_many_arguments)]
    fn from_parts(
        window: Duration,
        heartbeat: Duration,
        election_min: Duration,
        peers: u64,
        outsiders: u64,
        nodes: u64,
        new_entries: u64,
        batch: u64,
    ) -> QuietBudget {
        let periods =
            |every: Duration| window.as_micros() as u64 / every.as_micros().max(1) as u64 + 1;
        let rounds = ROUNDS_PER_HEARTBEAT * periods(heartbeat);
        // A slow-clocked outsider may time out at half the nominal timeout.
        let campaigns = 2 * periods(election_min);
        QuietBudget {
            window,
            peers,
            new_entries,
            messages: 2 * peers * rounds
                + 4 * nodes * outsiders * campaigns
                + 4 * peers * new_entries
                + 8,
            entries: peers * (new_entries + batch),
            snapshots: 0,
        }
    }

    /// Checks what a group sent against the budget (its message count only when the service
    /// is quiet after the heal).
    fn check(&self, sent: u64, entries: u64, snapshots: u64, quiet: bool) -> Result<(), String> {
        let over =
            (quiet && sent > self.messages) || entries > self.entries || snapshots > self.snapshots;
        if !over {
            return Ok(());
        }
        Err(format!(
            "replication did not quiet down after the heal: in {:?} with every running member \
             caught up, the group sent {sent} messages, and {entries} entries and {snapshots} \
             snapshots to running nodes, with {} peers and {} new entries (bound: {} messages{}, {} entries, {} snapshots)",
            self.window,
            self.peers,
            self.new_entries,
            self.messages,
            if quiet { "" } else { ", not applied to this service" },
            self.entries,
            self.snapshots
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(new_entries: u64) -> QuietBudget {
        QuietBudget::from_parts(
            Duration::from_millis(400),
            Duration::from_millis(40),
            Duration::from_millis(100),
            2,
            0,
            3,
            new_entries,
            1,
        )
    }

    #[test]
    fn heartbeats_fit_the_budget_and_a_flood_does_not() {
        let b = budget(0);
        // 11 periods, two rounds each, two messages per peer and round, plus slack.
        assert_eq!(b.messages, 2 * 2 * 22 + 8);
        // Nominal heartbeats: 10 rounds of 2 messages to 2 peers.
        assert!(b.check(40, 0, 0, true).is_ok());
        // Probes on every tick instead of every heartbeat.
        let err = b.check(4 * 40, 0, 0, true).unwrap_err();
        assert!(err.contains("160 messages"), "{err}");
        // The message count is not held against a busy service.
        assert!(b.check(4 * 40, 0, 0, false).is_ok());
    }

    #[test]
    fn a_resent_entry_or_snapshot_is_over_the_budget() {
        let b = budget(3);
        // Three new entries to each of two peers, and one batch again to each.
        assert!(b.check(40, 8, 0, true).is_ok());
        assert!(b.check(40, 9, 0, true).unwrap_err().contains("9 entries"));
        assert!(b
            .check(40, 0, 1, false)
            .unwrap_err()
            .contains("1 snapshots"));
    }

    #[test]
    fn outsiders_may_campaign() {
        let quiet = budget(0).messages;
        let with_spare = QuietBudget::from_parts(
            Duration::from_millis(400),
            Duration::from_millis(40),
            Duration::from_millis(100),
            2,
            1,
            4,
            0,
            1,
        );
        assert_eq!(with_spare.messages, quiet + 4 * 4 * 2 * 5);
    }
}
