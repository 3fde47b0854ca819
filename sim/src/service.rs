//! What a service implements once to run on raft-core under the simulator's whole fault
//! model, with every Raft checker watching.
//!
//! A [`Service`] is the user's system: the state machine each node runs, the server side that
//! turns client requests into proposals, read barriers and replies, the per-process state a
//! crash drops, the client workload (clerks that retry, spawned as madsim tasks), what the
//! service still waits for after the heal, and its end-of-run checks (typically a
//! linearizability check of the recorded history against the service's model). The
//! simulator supplies the rest: one [`World`] per Raft group (nodes, disks, clocks, network,
//! faults, nemeses, checkers) and one runner ([`crate::runner::simulate`]) that drives the
//! fault, heal and liveness phases.
//!
//! One step of a node, in order (see `step.rs`): the node handles one input (a peer message,
//! a timer, or a request handed to [`Service::on_request`]); the durability checker records
//! what it promised; the network routes what it sent; [`Service::on_events`] sees the step's
//! events (servers answer what the step resolved); the checkers see each event, each followed
//! by [`Service::on_event`]; the checkers observe the node's status; the nemesis looks at it.
//!
//! Three services ship with the simulator: raw Raft ([`crate::raw`]), the kv service
//! ([`crate::kv`]) and the sharded kv ([`crate::shard`], several Raft groups). A small one a
//! user would copy is `sim/examples/counter.rs`.

use crate::checkers::Violation;
use crate::cluster::{Failure, SimNode, World};
use crate::runner::{Run, SeedReport};
use raft_core::{Event, NodeId, StateMachine};
use std::rc::Rc;
use std::time::Duration;

/// A service run on raft-core under the simulator.
pub trait Service: Sized + 'static {
    /// The state machine every node of a group runs.
    type Machine: StateMachine + 'static;
    /// A request as it reaches a node (a clerk's, or a tick the service sends itself).
    type Request: std::fmt::Debug + 'static;
    /// The server's per-process state on one node; a crash drops it.
    type Process: 'static;
    /// What one world (Raft group) of the service knows about its part (`()` for a service
    /// of one group).
    type Group: 'static;

    /// How often the runner looks at the run during the fault phase.
    const FAULT_POLL: Duration = Duration::from_millis(50);
    /// Whether the end of the run checks that every node's log stays within a bound of its
    /// snapshot threshold (`World::check_log_bound`).
    const CHECK_LOG_BOUND: bool = true;
    /// Whether the cluster has nothing to do once the service recovered, so the settle
    /// phase may hold its message count to heartbeats and new entries (`settle.rs`). A
    /// service whose clients or servers keep polling after the heal says `false`; its
    /// groups must then still keep their leader, catch up and resend nothing.
    const QUIET_AFTER_HEAL: bool = true;

    /// A fresh state machine for a node of `group` (at its start and every restart).
    fn machine(&self, group: &Self::Group) -> Self::Machine;

    /// Fresh per-process state for node `id` of `group` (at its start and after a crash).
    fn process(&self, group: &Self::Group, id: NodeId) -> Self::Process;

    /// Adjusts the Raft configuration of the nodes of `group` (a snapshot threshold).
    fn tune(&self, group: &Self::Group, config: &mut raft_core::Config) {
        let _ = (group, config);
    }

    /// Node `index` handles `request` (its process is `process`).
    fn on_request(
        &self,
        world: &Rc<World<Self>>,
        index: usize,
        node: &mut SimNode<Self>,
        process: &mut Self::Process,
        request: Self::Request,
    );

    /// The events of one step of node `index`, before the checkers see them: the server
    /// answers what they resolve.
    fn on_events(
        &self,
        world: &Rc<World<Self>>,
        index: usize,
        node: &SimNode<Self>,
        process: &mut Self::Process,
        events: &[Event],
    ) {
        let _ = (world, index, node, process, events);
    }

    /// One event of a step, right after the checkers saw it (a client that watches the
    /// Raft events themselves).
    ///
    /// # Errors
    /// A violation the service's own check of the event found.
    fn on_event(
        &self,
        world: &World<Self>,
        index: usize,
        process: &mut Self::Process,
        event: &Event,
    ) -> Result<(), Violation> {
        let _ = (world, index, process, event);
        Ok(())
    }

    /// Spawns what runs with one group from the start (after its nodes and fault tasks).
    fn start_group(&self, world: &Rc<World<Self>>) {
        let _ = world;
    }

    /// Spawns what spans groups (after every group has started).
    fn start(&self, run: &Rc<Run<Self>>) {
        let _ = run;
    }

    /// The heal phase began: faults are off and every node runs again (clerks issue a last
    /// read, say: recovery must include making progress). Nothing by default.
    fn heal(&self, run: &Rc<Run<Self>>) {
        let _ = run;
    }

    /// What the service still waits for after the heal (`None`: nothing; the liveness phase
    /// ends when every group has a leader and this is `None`).
    fn waiting(&self, run: &Run<Self>) -> Option<String>;

    /// How long after the heal the service must have recovered.
    fn liveness_bound(&self, run: &Run<Self>) -> Duration {
        run.worlds()[0].config.liveness_bound
    }

    /// The service's checks once it has recovered (after the Raft log checks).
    ///
    /// # Errors
    /// The failure.
    fn recovered(&self, run: &Run<Self>) -> Result<(), Failure> {
        let _ = run;
        Ok(())
    }

    /// The end-of-run check (if nothing failed before): the history against the model.
    ///
    /// # Errors
    /// The failure.
    fn finish(&self, run: &Run<Self>) -> Result<(), Failure> {
        let _ = run;
        Ok(())
    }

    /// The name of group `index` in failure messages (`None`: one group, no name).
    fn group_name(&self, index: usize) -> Option<String> {
        let _ = index;
        None
    }

    /// Fills the service's part of the seed's report (client counters, history).
    fn report(&self, report: &mut SeedReport) {
        let _ = report;
    }
}

/// Per partition, the linearizability search gives up (and the seed fails as undecided)
/// after this many configurations: a bound instead of a timeout keeps the check
/// deterministic.
pub const CONFIGURATIONS_MAX: u64 = 2_000_000;

/// A service's end-of-run check: `history` is linearizable against `model` (per partition).
///
/// # Errors
/// A `Failure::Linearizability` naming the partition, how far it linearized and the operation
/// it is stuck at, or that the search hit its bound.
pub fn check_linearizable<M>(
    model: &M,
    history: &[linearizability::Operation<M::Input, M::Output>],
) -> Result<(), Failure>
where
    M: linearizability::Model + Sync,
    M::State: Send,
    M::Input: Sync,
    M::Output: Sync,
{
    use linearizability::{check_with, CheckOptions, CheckResult};
    let options = CheckOptions {
        timeout: None,
        threads: 1,
        configurations_max: Some(CONFIGURATIONS_MAX),
        stop_at_first_illegal: true,
        measure_time: false,
        ..CheckOptions::default()
    };
    match check_with(model, history, &options).result() {
        CheckResult::Ok => Ok(()),
        CheckResult::Illegal(c) => Err(Failure::Linearizability(format!(
            "{} is not linearizable ({} ops of {} linearized; stuck at {:?})",
            c.partition,
            c.longest_prefix.len(),
            history.len(),
            c.blocked.map(|i| &history[i])
        ))),
        CheckResult::Unknown => Err(Failure::Linearizability(format!(
            "the check gave up after {CONFIGURATIONS_MAX} configurations"
        ))),
    }
}
