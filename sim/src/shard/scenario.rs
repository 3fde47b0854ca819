//! Scripted sharded kv runs, for directed tests: a fixed sequence of Joins, Leaves, Moves
//! and whole groups (or single servers) going down and coming back, at fixed simulated
//! times, instead of the seed's random churn.

use super::config::ShardWorkload;
use super::driver::{ShardDriver, ShardRun};
use super::member::GroupLayout;
use crate::bugs::ServiceBugs;
use crate::cluster::Phase;
use crate::disk::CrashLoss;
use crate::overrides::Overrides;
use crate::runner::{Outcome, RunOptions, SeedReport};
use crate::workload::Workload;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;
use workloads::shardctrler::{CtrlerCommand, Gid, ShardId};
use workloads::shardkv::ShardBugs;

/// One step of a script. Groups are named by world index: 0 is the controller, `g` is gid
/// `g`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// These gids join (one configuration).
    Join(Vec<u32>),
    /// These gids leave (one configuration).
    Leave(Vec<u32>),
    /// Shard `shard` moves to gid `gid`.
    Move {
        /// The shard.
        shard: u8,
        /// Its new group.
        gid: u32,
    },
    /// Every server of the group crashes and stays down.
    Down(usize),
    /// Every server of the group that is down restarts.
    Up(usize),
    /// Server `server` (an index, from 0) of the group crashes and stays down.
    DownServer(usize, usize),
    /// Server `server` of the group restarts.
    UpServer(usize, usize),
}

/// A scripted run.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The seed: message fates, clerks' choices, and (with `faults`) the fault schedule.
    pub seed: u64,
    /// Replica groups.
    pub groups: usize,
    /// Concurrent clerks.
    pub clients: usize,
    /// Distinct keys.
    pub keys: usize,
    /// Fraction of requests that are Gets.
    pub get_fraction: f64,
    /// Mean pause between a clerk's requests.
    pub think: Duration,
    /// Each group's swarm faults (drawn from the seed) on; otherwise none at all.
    pub faults: bool,
    /// Loss of messages between groups and clerks while the fault phase lasts.
    pub loss: f64,
    /// Snapshots every 2 KiB of log.
    pub small_snapshots: bool,
    /// Length of the scripted phase; then everything heals and must settle.
    pub fault_phase: Duration,
    /// The steps, at simulated times, in order; a configuration change waits until the
    /// previous one is done.
    pub script: Vec<(Duration, Step)>,
    /// Planted bugs.
    pub bugs: ShardBugs,
    /// Each clerk uses only its own keys (see `ShardWorkload::own_keys`).
    pub own_keys: bool,
}

impl Scenario {
    /// A fault-free scenario of `groups` groups, 3 clerks, 10 keys and 6 s, with no script.
    pub fn new(seed: u64, groups: usize) -> Scenario {
        Scenario {
            seed,
            groups,
            clients: 3,
            keys: 10,
            get_fraction: 0.3,
            think: Duration::from_millis(20),
            faults: false,
            loss: 0.0,
            small_snapshots: false,
            fault_phase: Duration::from_secs(6),
            script: Vec::new(),
            bugs: ShardBugs::default(),
            own_keys: false,
        }
    }
}

/// What a scripted run produced.
#[derive(Clone, Debug)]
pub struct ScenarioReport {
    /// The run's report (outcome, history, counters).
    pub report: SeedReport,
    /// Whether some server compacted its log into a snapshot.
    pub compacted: bool,
    /// Configurations the controller created.
    pub changes: u64,
}

impl ScenarioReport {
    /// Whether the run passed every check.
    pub fn passed(&self) -> bool {
        self.report.outcome == Outcome::Passed
    }
}

/// Runs `scenario` on a fresh thread in its own madsim runtime.
///
/// # Panics
/// If the simulation panics (a broken invariant), with its message.
pub fn run_scenario(scenario: &Scenario) -> ScenarioReport {
    let scenario = scenario.clone();
    std::thread::Builder::new()
        .name(format!("scenario-{}", scenario.seed))
        .spawn(move || run_here(&scenario))
        .expect("spawning a scenario thread")
        .join()
        .unwrap_or_else(|payload| std::panic::resume_unwind(payload))
}

fn run_here(scenario: &Scenario) -> ScenarioReport {
    let mut overrides = Overrides {
        fault_phase_ms: Some(scenario.fault_phase.as_millis() as u64),
        ..Overrides::default()
    };
    if !scenario.faults {
        overrides.no_partitions = true;
        overrides.no_crashes = true;
        overrides.no_pauses = true;
        overrides.no_message_faults = true;
        overrides.no_disk_faults = true;
        overrides.no_clock_faults = true;
    }
    let options = RunOptions {
        workload: Workload::ShardKv,
        service_bugs: ServiceBugs {
            shard: scenario.bugs,
            ..ServiceBugs::default()
        },
        overrides,
        ..RunOptions::new(scenario.seed)
    };
    let base = options.config();
    let mut workload = ShardWorkload::from_seed(scenario.seed);
    workload.groups = scenario.groups;
    workload.initial = 0;
    workload.clients = scenario.clients;
    workload.keys = scenario.keys;
    workload.get_fraction = scenario.get_fraction;
    workload.think = scenario.think;
    workload.loss = scenario.loss;
    workload.small_snapshots = scenario.small_snapshots;
    workload.moves = false;
    workload.own_keys = scenario.own_keys;
    let script = scenario.script.clone();
    let mut runtime =
        madsim::runtime::Runtime::with_seed_and_config(scenario.seed, madsim::Config::default());
    runtime.set_time_limit(base.fault_phase + Duration::from_secs(700));
    let wall = std::time::Instant::now();
    let (mut report, compacted, changes) = runtime.block_on(async move {
        let run = ShardDriver::build(&base, &options, workload, Some(script));
        let driver = run.service().clone();
        let report = crate::runner::simulate(run).await;
        let changes = driver.state.borrow().admin.changes;
        (report, driver.compacted.get(), changes)
    });
    report.wall_time = wall.elapsed();
    ScenarioReport {
        report,
        compacted,
        changes,
    }
}

/// Plays the script (instead of the random churn).
pub(crate) async fn play(driver: Rc<ShardRun>, script: Vec<(Duration, Step)>) {
    for (at, step) in script {
        while driver.now() < at && !driver.finished() {
            madsim::time::sleep(at - driver.now()).await;
        }
        if let Some(command) = command(&step) {
            while driver.state.borrow().admin.busy() && !driver.finished() {
                madsim::time::sleep(Duration::from_millis(5)).await;
            }
            if driver.phase() != Phase::Faults {
                return;
            }
            super::admin::issue(&driver, command);
            continue;
        }
        if driver.phase() != Phase::Faults {
            return;
        }
        tracing::info!(?step, "script");
        let servers = |world: usize| 0..driver.worlds()[world].slots().len();
        match step {
            Step::Down(w) => servers(w).for_each(|i| down(&driver, w, i)),
            Step::Up(w) => servers(w).for_each(|i| up(&driver, w, i)),
            Step::DownServer(w, i) => down(&driver, w, i),
            Step::UpServer(w, i) => up(&driver, w, i),
            _ => unreachable!("configuration changes are handled above"),
        }
    }
}

fn down(driver: &ShardRun, world: usize, index: usize) {
    driver.worlds()[world].crash(index, CrashLoss::KeepAll);
}

fn up(driver: &ShardRun, world: usize, index: usize) {
    let world = &driver.worlds()[world];
    if !world.slot(index).is_up() {
        world.start_node(index);
    }
}

/// The controller command of a configuration step.
fn command(step: &Step) -> Option<CtrlerCommand> {
    let gids = |list: &[u32]| list.iter().map(|&g| Gid(g)).collect::<Vec<_>>();
    match step {
        Step::Join(list) => {
            let groups: BTreeMap<Gid, _> = gids(list)
                .into_iter()
                .map(|gid| (gid, workloads::shardkv::GroupRole::Replica(gid).servers()))
                .collect();
            Some(CtrlerCommand::Join { groups })
        }
        Step::Leave(list) => Some(CtrlerCommand::Leave { gids: gids(list) }),
        Step::Move { shard, gid } => Some(CtrlerCommand::Move {
            shard: ShardId(*shard),
            gid: Gid(*gid),
        }),
        _ => None,
    }
}
