//! One seed, start to finish: build the service's groups, run the fault phase, heal, demand
//! liveness, check. One runner ([`simulate`]) drives every [`Service`].
//!
//! Each seed runs in its own `madsim::runtime::Runtime` on a fresh OS thread
//! ([`run_seed_isolated`]): madsim seeds std's `HashMap` keys only for the first runtime on a
//! thread, and nothing of one seed can leak into the next through thread-locals.

use crate::bugs::ServiceBugs;
use crate::checkers::Violation;
use crate::cluster::{Failure, GroupSpec, Phase, Stats, World};
use crate::config::{stream_rng, Stream, SwarmConfig};
use crate::event_log::EventRecord;
use crate::kv::{KvDriver, KvHistory, KvStats, KvWorkload};
use crate::nemesis::nemesis_task;
use crate::net::PartitionShape;
use crate::overrides::Overrides;
use crate::raw::{ClientStats, RawService};
use crate::service::Service;
use crate::shard::{ShardDriver, ShardWorkload};
use crate::workload::Workload;
use raft_core::{Bugs, NodeId, Role};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::Rng;
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::time::Duration;

/// How often the liveness phase looks for a leader and an idle client.
const LIVENESS_POLL: Duration = Duration::from_millis(20);
/// How often the whole-cluster log checks run.
const LOG_CHECK_EVERY: Duration = Duration::from_millis(250);

/// What to run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunOptions {
    /// The seed.
    pub seed: u64,
    /// Planted bugs.
    pub bugs: Bugs,
    /// Use the benchmark's standard configuration instead of the swarm one.
    pub standard: bool,
    /// Keep every event record (for `--check-determinism`).
    pub keep_events: bool,
    /// Which service the cluster runs.
    pub workload: Workload,
    /// Planted kv bugs (kv workload only).
    pub service_bugs: ServiceBugs,
    /// Changes to the derived configuration (the minimizer's knobs).
    pub overrides: Overrides,
}

impl RunOptions {
    /// A plain run of `seed` with the raw Raft workload.
    pub fn new(seed: u64) -> RunOptions {
        RunOptions {
            seed,
            bugs: Bugs::default(),
            standard: false,
            keep_events: false,
            workload: Workload::Raft,
            service_bugs: ServiceBugs::default(),
            overrides: Overrides::default(),
        }
    }

    /// A plain run of `seed` with the kv workload.
    pub fn kv(seed: u64) -> RunOptions {
        RunOptions {
            workload: Workload::Kv,
            ..RunOptions::new(seed)
        }
    }

    /// The kv workload this run uses, if it runs the kv service.
    pub fn kv_workload(&self) -> Option<KvWorkload> {
        (self.workload == Workload::Kv).then(|| {
            let mut kv = KvWorkload::from_seed(self.seed);
            self.overrides.apply_kv(&mut kv);
            kv
        })
    }

    /// The configuration this run uses.
    pub fn config(&self) -> SwarmConfig {
        let mut config = if self.standard {
            SwarmConfig::standard(self.seed)
        } else {
            SwarmConfig::from_seed(self.seed)
        };
        self.overrides.apply(&mut config);
        config
    }
}

/// How a seed ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every check passed and the cluster recovered.
    Passed,
    /// A checker, the liveness bound or a node failed.
    Failed(Failure),
    /// Something panicked inside the simulation.
    Panicked(String),
}

/// Everything a seed's run produced.
#[derive(Clone, Debug)]
pub struct SeedReport {
    /// The seed.
    pub seed: u64,
    /// The result.
    pub outcome: Outcome,
    /// Simulated time the run took.
    pub sim_time: Duration,
    /// Wall-clock time the run took.
    pub wall_time: Duration,
    /// Chained hash of every event (equal for two runs exactly when they are identical).
    pub event_hash: u64,
    /// Number of events.
    pub events: u64,
    /// Cluster counters.
    pub stats: Stats,
    /// Client counters.
    pub client: ClientStats,
    /// The event records, if kept.
    pub records: Vec<EventRecord>,
    /// Kv clerk counters (kv workload).
    pub kv: Option<KvStats>,
    /// The kv clerks' recorded history (kv workload).
    pub history: Option<KvHistory>,
}

impl SeedReport {
    /// Whether the seed passed.
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Passed
    }
}

/// Runs one seed on a fresh thread, catching panics. Never panics itself.
pub fn run_seed_isolated(options: &RunOptions) -> SeedReport {
    let opts = options.clone();
    let wall = std::time::Instant::now();
    let joined = std::thread::Builder::new()
        .name(format!("seed-{}", opts.seed))
        .spawn(move || std::panic::catch_unwind(|| run_seed(&opts)))
        .expect("spawning a seed thread")
        .join();
    match joined {
        Ok(Ok(report)) => report,
        Ok(Err(payload)) | Err(payload) => SeedReport {
            seed: options.seed,
            outcome: Outcome::Panicked(panic_message(&payload)),
            sim_time: Duration::ZERO,
            wall_time: wall.elapsed(),
            event_hash: 0,
            events: 0,
            stats: Stats::default(),
            client: ClientStats::default(),
            records: Vec::new(),
            kv: None,
            history: None,
        },
    }
}

fn panic_message(payload: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

/// Runs one seed on the current thread. Call it on a fresh thread (see the module docs).
pub fn run_seed(options: &RunOptions) -> SeedReport {
    let config = options.config();
    let wall = std::time::Instant::now();
    let mut runtime =
        madsim::runtime::Runtime::with_seed_and_config(options.seed, madsim::Config::default());
    runtime.set_time_limit(
        config.fault_phase + config.liveness_bound + Duration::from_secs(60) + DRAIN_MAX,
    );
    let mut report = runtime.block_on(simulate_workload(config, options.clone()));
    drop(runtime);
    // The report names the seed the run was started with: a multi-group service's first world
    // runs on a seed derived from it, which reproduces nothing on the command line.
    report.seed = options.seed;
    report.wall_time = wall.elapsed();
    report
}

/// Runs the service `options` names (inside the seed's madsim runtime).
async fn simulate_workload(config: SwarmConfig, options: RunOptions) -> SeedReport {
    match options.workload {
        Workload::Raft => simulate(RawService::build(config, &options)).await,
        Workload::Kv => simulate(KvDriver::build(config, &options)).await,
        Workload::ShardKv => {
            let mut workload = ShardWorkload::from_seed(config.seed);
            workload.apply(&options.overrides);
            simulate(ShardDriver::build(&config, &options, workload, None)).await
        }
        Workload::Custom(custom) => (custom.run)(config, options).await,
    }
}

/// One run of a service: its groups, its phase and its first failure.
///
/// A service of one Raft group (raw, kv) has one [`World`]; the sharded kv has one per
/// group. Every world has its own network, disks, clocks, fault tasks and checkers; the run
/// moves them through the phases together and takes up the first failure any of them records.
pub struct Run<S: Service> {
    service: Rc<S>,
    worlds: Vec<Rc<World<S>>>,
    failure: RefCell<Option<Failure>>,
    phase: Cell<Phase>,
}

impl<S: Service> Run<S> {
    /// A run of `service` over the worlds `build` makes (it gets the run's handle, for
    /// service state that must reach the run later).
    pub fn new(
        service: Rc<S>,
        build: impl FnOnce(&Weak<Run<S>>, &Rc<S>) -> Vec<Rc<World<S>>>,
    ) -> Rc<Run<S>> {
        Rc::new_cyclic(|weak| {
            let worlds = build(weak, &service);
            assert!(!worlds.is_empty(), "a run has at least one group");
            Run {
                service,
                worlds,
                failure: RefCell::new(None),
                phase: Cell::new(Phase::Faults),
            }
        })
    }

    /// The service.
    pub fn service(&self) -> &Rc<S> {
        &self.service
    }

    /// The groups' worlds.
    pub fn worlds(&self) -> &[Rc<World<S>>] {
        &self.worlds
    }

    /// Simulated time since the run started.
    pub fn now(&self) -> Duration {
        self.worlds[0].now()
    }

    /// The run's phase.
    pub fn phase(&self) -> Phase {
        self.phase.get()
    }

    /// Whether the run is over.
    pub fn finished(&self) -> bool {
        self.phase.get() == Phase::Finished
    }

    /// Moves every world to `phase`.
    pub fn set_phase(&self, phase: Phase) {
        self.phase.set(phase);
        for world in &self.worlds {
            if !world.finished() {
                world.set_phase(phase);
            }
        }
    }

    /// The first failure, if any.
    pub fn failure(&self) -> Option<Failure> {
        self.failure.borrow().clone()
    }

    /// Records a failure (the first one wins) and ends the run.
    pub fn fail(&self, failure: Failure) {
        tracing::error!(%failure, "seed failed");
        self.failure.borrow_mut().get_or_insert(failure);
        self.set_phase(Phase::Finished);
    }

    /// A safety violation one of the service's own checks found.
    pub fn violation(&self, checker: &'static str, detail: String) {
        let at = self.now();
        self.fail(Failure::Safety(Violation {
            checker,
            at,
            detail,
        }));
    }

    /// Takes up a failure one world recorded (its checkers, its nodes), naming the group.
    pub fn collect_failures(&self) {
        if self.failure.borrow().is_some() {
            return;
        }
        let found = self
            .worlds
            .iter()
            .enumerate()
            .find_map(|(index, world)| world.failure().map(|f| (index, f)));
        if let Some((index, failure)) = found {
            let failure = match self.service.group_name(index) {
                Some(group) => name_group(&group, failure),
                None => failure,
            };
            if self.worlds.len() == 1 {
                // One group: the world has ended itself; the run just takes up its failure.
                self.failure.borrow_mut().get_or_insert(failure);
                self.phase.set(Phase::Finished);
            } else {
                self.fail(failure);
            }
        }
    }
}

impl<S: Service<Group = ()>> Run<S> {
    /// The run of a service of one Raft group, with the seed's configuration and the Raft
    /// bugs `options` plants.
    pub fn single(service: Rc<S>, config: SwarmConfig, options: &RunOptions) -> Rc<Run<S>> {
        Run::new(service, |_, service| {
            let spec = GroupSpec {
                config,
                bugs: options.bugs,
                keep_events: options.keep_events,
                id_base: 0,
                group: (),
            };
            vec![World::new(service.clone(), spec)]
        })
    }
}

impl<S: Service> std::ops::Deref for Run<S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.service
    }
}

/// Names the group in a failure one group's world found.
fn name_group(group: &str, failure: Failure) -> Failure {
    match failure {
        Failure::Safety(mut v) => {
            v.detail = format!("{group}: {}", v.detail);
            Failure::Safety(v)
        }
        Failure::Liveness(s) => Failure::Liveness(format!("{group}: {s}")),
        Failure::Node(s) => Failure::Node(format!("{group}: {s}")),
        Failure::Linearizability(s) => Failure::Linearizability(s),
    }
}

/// Drives one run of a service from start to finish: every group's nodes, faults and log
/// checks start, then the service's clients; the fault phase runs; every group heals and the
/// service gets its last requests in; within the service's bound every group must have a
/// leader and the service nothing left waiting; then the Raft log checks of every group, the
/// service's own checks, and its end-of-run check.
pub async fn simulate<S: Service>(run: Rc<Run<S>>) -> SeedReport {
    for world in run.worlds() {
        for index in 0..world.slots().len() {
            world.start_node(index);
        }
        spawn_fault_tasks(world);
        run.service().start_group(world);
        madsim::task::spawn_local(log_check_task(world.clone()));
    }
    run.service().start(&run);
    let fault_end = run.worlds()[0].config.fault_phase;
    while !run.finished() && run.now() < fault_end {
        madsim::time::sleep(S::FAULT_POLL).await;
        run.collect_failures();
    }
    if !run.finished() {
        tracing::info!("heal: faults off in every group");
        run.set_phase(Phase::Liveness);
        for world in run.worlds() {
            heal_faults(world);
        }
        run.service().heal(&run);
        let healed_at = run.now();
        await_liveness(&run).await;
        if !run.finished() {
            crate::settle::settle(&run, healed_at).await;
        }
    }
    run.collect_failures();
    run.set_phase(Phase::Finished);
    if run.failure().is_none() {
        if let Err(failure) = run.service().finish(&run) {
            run.fail(failure);
        }
    }
    let report = report(&run);
    drain(run).await;
    report
}

/// What the run reports: the outcome, counters summed over the groups, and the event hash
/// (one group's is its log's; several groups' are chained in order).
fn report<S: Service>(run: &Run<S>) -> SeedReport {
    let outcome = run.failure().map_or(Outcome::Passed, Outcome::Failed);
    let mut stats = Stats::default();
    let (mut hash, mut events, mut records) = (0u64, 0u64, Vec::new());
    for world in run.worlds() {
        let s = *world.stats.borrow();
        stats.sent += s.sent;
        stats.entries_sent += s.entries_sent;
        stats.snapshots_sent += s.snapshots_sent;
        stats.delivered += s.delivered;
        stats.steps += s.steps;
        stats.crashes += s.crashes;
        stats.pauses += s.pauses;
        stats.partitions += s.partitions;
        stats.refused_to_open += s.refused_to_open;
        stats.shapes.add(&s.shapes);
        let mut log = world.log.borrow_mut();
        hash = if run.worlds().len() == 1 {
            log.hash()
        } else {
            crate::checkers::fingerprint(&[hash.to_le_bytes(), log.hash().to_le_bytes()].concat())
        };
        events += log.count();
        records.extend(log.take_records());
    }
    let mut report = SeedReport {
        seed: run.worlds()[0].config.seed,
        outcome,
        sim_time: run.now(),
        wall_time: Duration::ZERO,
        event_hash: hash,
        events,
        stats,
        client: ClientStats::default(),
        records,
        kv: None,
        history: None,
    };
    run.service().report(&mut report);
    report
}

/// Simulated time the tasks of a finished run get to exit before the runtime is dropped.
pub(crate) const DRAIN_MAX: Duration = Duration::from_secs(600);

/// Lets every task of a finished run return before the runtime is dropped.
///
/// madsim leaks a task that is still pending when its runtime is dropped (the task's own
/// bookkeeping holds a waker of the task), and with it everything the task holds: here the
/// whole `World` with its disks, nodes and checkers. Every task returns soon after the run is
/// finished (they check the phase each time they wake), so waiting until this future holds
/// the last reference frees the run's memory; a sweep of many seeds in one process then stays
/// flat. The report is taken before, so this changes nothing a run reports.
async fn drain<S: Service>(run: Rc<Run<S>>) {
    debug_assert!(run.finished());
    for world in run.worlds() {
        for slot in world.slots() {
            slot.wake();
        }
    }
    let start = run.now();
    let held = |run: &Rc<Run<S>>| {
        Rc::strong_count(run) > 1 || run.worlds().iter().any(|w| Rc::strong_count(w) > 1)
    };
    while held(&run) && run.now() - start < DRAIN_MAX {
        madsim::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Stops `world`'s faults: the network heals, disks behave, every node runs again.
pub(crate) fn heal_faults<S: Service>(world: &Rc<World<S>>) {
    tracing::info!("heal: faults off, network healed, restarting crashed nodes");
    world.set_phase(Phase::Liveness);
    {
        let mut net = world.net.borrow_mut();
        net.heal();
        net.set_faults(world.config.net.reliable());
    }
    world.disable_disk_faults();
    for index in 0..world.slots().len() {
        world.set_paused(index, false);
        if !world.slot(index).is_up() {
            world.start_node(index);
        }
    }
}

/// The liveness phase: within the service's bound, every group must have a leader that
/// leads the highest term, and the service must have nothing left waiting.
async fn await_liveness<S: Service>(run: &Rc<Run<S>>) {
    let start = run.now();
    let bound = run.service().liveness_bound(run);
    loop {
        madsim::time::sleep(LIVENESS_POLL).await;
        run.collect_failures();
        if run.finished() {
            return;
        }
        let leaders: Vec<_> = run.worlds().iter().map(|w| w.live_leader()).collect();
        let waiting = run.service().waiting(run);
        if leaders.iter().all(Option::is_some) && waiting.is_none() {
            tracing::info!(after = ?run.now() - start, "cluster recovered");
            return recovered(run, &leaders);
        }
        if run.now() - start >= bound {
            let leaderless: Vec<usize> = (0..leaders.len())
                .filter(|&i| leaders[i].is_none())
                .collect();
            let nodes: Vec<String> = run
                .worlds()
                .iter()
                .flat_map(|w| w.statuses())
                .map(|s| format!("n{} {} term {} commit {}", s.id, s.role, s.term, s.commit))
                .collect();
            let leader = match (run.worlds().len(), leaderless.is_empty()) {
                (1, true) => "leader elected".to_string(),
                (1, false) => "leader missing".to_string(),
                _ => format!("groups without a leader {leaderless:?}"),
            };
            let what = format!(
                "no recovery within {bound:?} after the faults stopped: {leader}, {}; nodes: \
                 [{}]",
                waiting.as_deref().unwrap_or("nothing pending"),
                nodes.join(", ")
            );
            return run.fail(Failure::Liveness(what));
        }
    }
}

/// The recovered run's checks: log matching and durability in every group and every node's
/// snapshot round trip, then the service's own. (The log bound waits for the end of the
/// settle phase, once every follower caught up: see `settle.rs`.)
fn recovered<S: Service>(run: &Run<S>, leaders: &[Option<(raft_core::Status, Vec<NodeId>)>]) {
    for (world, leader) in run.worlds().iter().zip(leaders) {
        let voters = leader.as_ref().map(|(_, v)| v.clone()).unwrap_or_default();
        let checked = world
            .check_logs()
            .and_then(|()| world.check_durable(&voters))
            .and_then(|()| world.check_snapshot_round_trip());
        if let Err(v) = checked {
            // Recorded in the group's world, so the failure names the group.
            world.fail(Failure::Safety(v));
            return run.collect_failures();
        }
    }
    if let Err(failure) = run.service().recovered(run) {
        run.fail(failure);
    }
}

/// An exponentially distributed delay with the given mean, at least 1 ms.
fn exp_delay(rng: &mut SmallRng, mean: Duration) -> Duration {
    let u: f64 = rng.gen_range(0.0..1.0);
    let secs = -mean.as_secs_f64() * (1.0 - u).ln();
    Duration::from_secs_f64(secs.min(mean.as_secs_f64() * 20.0)).max(Duration::from_millis(1))
}

fn uniform(rng: &mut SmallRng, max: Duration) -> Duration {
    Duration::from_micros(rng.gen_range(1_000..=max.as_micros().max(1_000) as u64))
}

pub(crate) fn spawn_fault_tasks<S: Service>(world: &Rc<World<S>>) {
    let seed = world.config.seed;
    let rng = |k: u64| {
        stream_rng(
            seed.wrapping_add(k.wrapping_mul(0x1000_0000_01B3)),
            Stream::Faults,
        )
    };
    if let Some(every) = world.config.net.partition_every {
        madsim::task::spawn_local(partition_task(world.clone(), every, rng(1)));
    }
    if let Some(every) = world.config.node_faults.crash_every {
        madsim::task::spawn_local(crash_task(world.clone(), every, rng(2)));
    }
    if let Some(every) = world.config.node_faults.pause_every {
        madsim::task::spawn_local(pause_task(world.clone(), every, rng(3)));
    }
    if let Some(nemesis) = world.config.nemesis.clone() {
        madsim::task::spawn_local(nemesis_task(world.clone(), nemesis, rng(4)));
    }
}

pub(crate) fn faulting<S: Service>(world: &World<S>) -> bool {
    world.phase() == Phase::Faults
}

async fn partition_task<S: Service>(world: Rc<World<S>>, every: Duration, mut rng: SmallRng) {
    let nodes: Vec<_> = world.slots().iter().map(|s| s.id).collect();
    loop {
        madsim::time::sleep(exp_delay(&mut rng, every)).await;
        if !faulting(&world) {
            return;
        }
        let shapes = world.config.partition_shapes();
        let shape: PartitionShape = *shapes.choose(&mut rng).expect("at least one shape");
        let leader = world
            .statuses()
            .into_iter()
            .find(|s| s.role == Role::Leader)
            .map(|s| s.id);
        let cut = shape.cut(&mut rng, &nodes, leader);
        tracing::info!(?shape, ?cut, "partition");
        world.net.borrow_mut().partition(cut);
        world.stats.borrow_mut().partitions += 1;
        madsim::time::sleep(uniform(&mut rng, world.config.net.partition_max)).await;
        if !faulting(&world) {
            return;
        }
        tracing::info!("partition healed");
        world.net.borrow_mut().heal();
    }
}

async fn crash_task<S: Service>(world: Rc<World<S>>, every: Duration, mut rng: SmallRng) {
    let n = world.slots().len();
    loop {
        madsim::time::sleep(exp_delay(&mut rng, every)).await;
        if !faulting(&world) {
            return;
        }
        let index = rng.gen_range(0..n);
        if !world.slot(index).is_up() {
            continue;
        }
        world.crash(index, world.config.node_faults.crash_loss);
        let down = uniform(&mut rng, world.config.node_faults.down_max);
        world.restart_after(index, down);
    }
}

async fn pause_task<S: Service>(world: Rc<World<S>>, every: Duration, mut rng: SmallRng) {
    let n = world.slots().len();
    loop {
        madsim::time::sleep(exp_delay(&mut rng, every)).await;
        if !faulting(&world) {
            return;
        }
        let index = rng.gen_range(0..n);
        world.set_paused(index, true);
        madsim::time::sleep(uniform(&mut rng, world.config.node_faults.down_max)).await;
        world.set_paused(index, false);
    }
}

pub(crate) async fn log_check_task<S: Service>(world: Rc<World<S>>) {
    loop {
        madsim::time::sleep(LOG_CHECK_EVERY).await;
        if world.finished() {
            return;
        }
        if let Err(v) = world.check_logs() {
            return world.fail(Failure::Safety(v));
        }
    }
}
