//! One seed, start to finish: build the cluster, run the fault phase, heal, demand liveness.
//!
//! Each seed runs in its own `madsim::runtime::Runtime` on a fresh OS thread
//! ([`run_seed_isolated`]): madsim seeds std's `HashMap` keys only for the first runtime on a
//! thread, and nothing of one seed can leak into the next through thread-locals.

use crate::cluster::{Failure, Phase, Stats, World};
use crate::config::{stream_rng, Stream, SwarmConfig};
use crate::event_log::EventRecord;
use crate::kv::{
    check_history, KvDriver, KvHistory, KvStats, KvWorkload, LinCheck, SimKvBugs, Workload,
};
use crate::nemesis::nemesis_task;
use crate::net::PartitionShape;
use crate::overrides::Overrides;
use crate::workload::ClientStats;
use raft_core::{Bugs, Role};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::Rng;
use std::rc::Rc;
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
    pub kv_bugs: SimKvBugs,
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
            kv_bugs: SimKvBugs::default(),
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
    let mut report = runtime.block_on(simulate(config, options.clone()));
    drop(runtime);
    report.wall_time = wall.elapsed();
    report
}

async fn simulate(config: SwarmConfig, options: RunOptions) -> SeedReport {
    if options.workload == Workload::ShardKv {
        return crate::shard::run::simulate(config, options).await;
    }
    let seed = config.seed;
    let driver = options
        .kv_workload()
        .map(|kv| KvDriver::new(seed, kv, options.kv_bugs, &config.all_ids()));
    let world = World::with_kv(config, options.bugs, options.keep_events, driver);
    for index in 0..world.slots().len() {
        world.start_node(index);
    }
    spawn_fault_tasks(&world);
    if world.kv.is_some() {
        KvDriver::start(&world);
    } else {
        madsim::task::spawn_local(client_task(world.clone()));
    }
    madsim::task::spawn_local(log_check_task(world.clone()));
    let fault_end = world.config.fault_phase;
    while !world.finished() && world.now() < fault_end {
        madsim::time::sleep(Duration::from_millis(50)).await;
    }
    if !world.finished() {
        heal(&world);
        await_liveness(&world).await;
    }
    world.set_phase(Phase::Finished);
    let history = world.kv.as_ref().map(KvDriver::history);
    if let (None, Some(history)) = (world.failure(), &history) {
        match check_history(history).0 {
            LinCheck::Ok => {}
            LinCheck::Illegal(what) | LinCheck::Unknown(what) => {
                world.fail(Failure::Linearizability(what));
            }
        }
    }
    let outcome = world.failure().map_or(Outcome::Passed, Outcome::Failed);
    let (event_hash, events, records) = {
        let mut log = world.log.borrow_mut();
        (log.hash(), log.count(), log.take_records())
    };
    let stats = *world.stats.borrow();
    let client = world.client.borrow().stats;
    let report = SeedReport {
        seed,
        outcome,
        sim_time: world.now(),
        wall_time: Duration::ZERO,
        event_hash,
        events,
        stats,
        client,
        records,
        kv: world.kv.as_ref().map(KvDriver::stats),
        history,
    };
    drain(world).await;
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
async fn drain(world: Rc<World>) {
    debug_assert!(world.finished());
    for slot in world.slots() {
        slot.wake();
    }
    let start = world.now();
    while Rc::strong_count(&world) > 1 && world.now() - start < DRAIN_MAX {
        madsim::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The heal phase: faults stop, the network heals, every node runs again.
fn heal(world: &Rc<World>) {
    heal_faults(world);
    if world.kv.is_some() {
        // One last Get per idle clerk: recovery must include making progress.
        return KvDriver::final_reads(world);
    }
    // One last write and read: recovery must include making progress.
    let now = world.now();
    let mut client = world.client.borrow_mut();
    client.start(now, false);
    client.start(now, true);
}

/// Stops `world`'s faults: the network heals, disks behave, every node runs again.
pub(crate) fn heal_faults(world: &Rc<World>) {
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

/// The liveness phase: within the bound, a leader must lead the highest term and the client
/// must have no pending operation.
async fn await_liveness(world: &Rc<World>) {
    let deadline = world.now() + world.config.liveness_bound;
    let start = world.now();
    while !world.finished() {
        madsim::time::sleep(LIVENESS_POLL).await;
        let statuses = world.statuses();
        let leader = world.live_leader();
        let pending =
            world.client.borrow().pending() + world.kv.as_ref().map_or(0, KvDriver::pending);
        if let (Some((_, voters)), 0) = (&leader, pending) {
            tracing::info!(after = ?world.now() - start, "cluster recovered");
            let checked = world
                .check_logs()
                .and_then(|()| world.check_durable(voters))
                .and_then(|()| world.check_log_bound());
            if let Err(v) = checked {
                world.fail(Failure::Safety(v));
            }
            return;
        }
        if world.now() >= deadline {
            let nodes: Vec<String> = statuses
                .iter()
                .map(|s| format!("n{} {} term {} commit {}", s.id, s.role, s.term, s.commit))
                .collect();
            let what =
                format!(
                "no recovery within {:?} after the faults stopped: leader {}, {pending} client \
                 operation(s) pending; nodes: [{}]",
                world.config.liveness_bound,
                if leader.is_some() { "elected" } else { "missing" },
                nodes.join(", ")
            );
            return world.fail(Failure::Liveness(what));
        }
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

pub(crate) fn spawn_fault_tasks(world: &Rc<World>) {
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

fn faulting(world: &World) -> bool {
    world.phase() == Phase::Faults
}

async fn partition_task(world: Rc<World>, every: Duration, mut rng: SmallRng) {
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

async fn crash_task(world: Rc<World>, every: Duration, mut rng: SmallRng) {
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
        let incarnation = world.slot(index).incarnation();
        let down = uniform(&mut rng, world.config.node_faults.down_max);
        let w = world.clone();
        madsim::task::spawn_local(async move {
            madsim::time::sleep(down).await;
            w.restart_if_down(index, incarnation);
        });
    }
}

async fn pause_task(world: Rc<World>, every: Duration, mut rng: SmallRng) {
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

async fn client_task(world: Rc<World>) {
    loop {
        let pause = world.client.borrow_mut().tick_every();
        madsim::time::sleep(pause).await;
        if world.finished() {
            return;
        }
        let now = world.now();
        let requests = world.client.borrow_mut().tick(now, faulting(&world));
        for (target, request) in requests {
            world.send_client(target, request);
        }
    }
}

pub(crate) async fn log_check_task(world: Rc<World>) {
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
