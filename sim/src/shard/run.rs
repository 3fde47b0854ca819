//! One sharded kv seed, start to finish: build the groups, run the fault phase with churn,
//! heal every group, demand liveness (leaders, settled migrations, answered requests), then
//! check storage and the clerks' history.

use super::config::ShardWorkload;
use super::driver::ShardDriver;
use super::{admin, clerks};
use crate::cluster::{Failure, Phase, Stats};
use crate::config::SwarmConfig;
use crate::kv::{check_history, LinCheck};
use crate::runner::{self, Outcome, RunOptions, SeedReport};
use crate::workload::{ClientStats, Request};
use std::rc::Rc;
use std::time::Duration;
use workloads::shardctrler::Gid;

use super::scenario::{play, Step};
use workloads::shardkv::ShardRequest;

/// How often the run looks at its groups for failures and recovery.
const POLL: Duration = Duration::from_millis(20);

/// Runs one seed of the shardkv workload (inside its madsim runtime).
pub(crate) async fn simulate(base: SwarmConfig, options: RunOptions) -> SeedReport {
    let mut workload = ShardWorkload::from_seed(base.seed);
    workload.apply(&options.overrides);
    simulate_with(base, options, workload, None).await.0
}

/// Runs one sharded kv run with `workload`, and the `script` instead of the random churn if
/// given. Also says whether a server compacted its log and how many configurations the
/// controller created.
pub(crate) async fn simulate_with(
    base: SwarmConfig,
    options: RunOptions,
    workload: ShardWorkload,
    script: Option<Vec<(Duration, Step)>>,
) -> (SeedReport, bool, u64) {
    let driver = ShardDriver::new(&base, &options, workload);
    for world in driver.worlds() {
        for index in 0..world.slots().len() {
            world.start_node(index);
        }
        runner::spawn_fault_tasks(world);
        madsim::task::spawn_local(runner::log_check_task(world.clone()));
    }
    for index in 1..driver.worlds().len() {
        madsim::task::spawn_local(tick_task(driver.clone(), index));
    }
    match script {
        Some(script) => drop(madsim::task::spawn_local(play(driver.clone(), script))),
        None => admin::start(&driver),
    }
    clerks::start(&driver);
    while !driver.finished() && driver.now() < base.fault_phase {
        madsim::time::sleep(POLL).await;
        driver.collect_failures();
    }
    if !driver.finished() {
        tracing::info!("heal: faults off in every group");
        driver.set_phase(Phase::Liveness);
        for world in driver.worlds() {
            runner::heal_faults(world);
        }
        clerks::final_reads(&driver);
        await_liveness(&driver).await;
    }
    driver.collect_failures();
    driver.set_phase(Phase::Finished);
    let history = driver.history();
    if driver.failure().is_none() {
        if let LinCheck::Illegal(what) | LinCheck::Unknown(what) = check_history(&history).0 {
            driver.fail(Failure::Linearizability(what));
        }
    }
    let report = report(&driver, &options, history);
    let compacted = driver.compacted.get();
    let changes = driver.state.borrow().admin.changes;
    drain(driver).await;
    (report, compacted, changes)
}

/// Hands every running, unfrozen server of group `index` a `Tick` every poll interval; the
/// leader does its reconfiguration work then.
async fn tick_task(driver: Rc<ShardDriver>, index: usize) {
    let every = driver.workload.poll_every;
    loop {
        madsim::time::sleep(every).await;
        if driver.finished() {
            return;
        }
        let world = &driver.worlds()[index];
        for slot in world.slots() {
            if slot.is_up() && !slot.paused() {
                world.send_client(slot.id, Request::Shard(ShardRequest::Tick));
            }
        }
    }
}

/// Within the bound, every group (the controller's too) must have a live leader, every
/// replica group must have installed the latest configuration with every shard settled, and
/// every clerk and the administrator must be idle. Then the log and storage checks run.
async fn await_liveness(driver: &Rc<ShardDriver>) {
    let start = driver.now();
    let bound = super::config::LIVENESS_BOUND;
    let gids: Vec<Gid> = (1..driver.worlds().len() as u32).map(Gid).collect();
    loop {
        madsim::time::sleep(POLL).await;
        driver.collect_failures();
        if driver.finished() {
            return;
        }
        let leaderless: Vec<usize> = (0..driver.worlds().len())
            .filter(|&i| driver.worlds()[i].live_leader().is_none())
            .collect();
        let unsettled = driver.observer.borrow().unsettled(&gids);
        let pending = clerks::pending(driver);
        let admin = driver.state.borrow().admin.busy();
        if leaderless.is_empty() && unsettled.is_none() && pending == 0 && !admin {
            tracing::info!(after = ?driver.now() - start, "every group recovered");
            return final_checks(driver);
        }
        if driver.now() - start >= bound {
            let what = format!(
                "not recovered within {bound:?} after the faults stopped: groups without a \
                 leader {leaderless:?} (0 is the controller); migrations: {}; {pending} clerk \
                 request(s) pending; administrator {}",
                unsettled.as_deref().unwrap_or("settled"),
                if admin { "busy" } else { "idle" }
            );
            return driver.fail(Failure::Liveness(what));
        }
    }
}

/// Log matching and durability in every group, and bounded storage after GC.
fn final_checks(driver: &ShardDriver) {
    for world in driver.worlds() {
        let voters = world.live_leader().map(|(_, v)| v).unwrap_or_default();
        if let Err(v) = world
            .check_logs()
            .and_then(|()| world.check_durable(&voters))
        {
            // Recorded in the group's world, so the failure names the group.
            world.fail(Failure::Safety(v));
            return driver.collect_failures();
        }
    }
    if let Err(detail) = driver.observer.borrow().check_storage() {
        driver.violation("storage bounded after GC", detail);
    }
}

fn report(driver: &ShardDriver, options: &RunOptions, history: crate::kv::KvHistory) -> SeedReport {
    let outcome = driver.failure().map_or(Outcome::Passed, Outcome::Failed);
    let mut stats = Stats::default();
    let (mut hash, mut events, mut records) = (0u64, 0u64, Vec::new());
    for world in driver.worlds() {
        let s = *world.stats.borrow();
        stats.sent += s.sent;
        stats.delivered += s.delivered;
        stats.steps += s.steps;
        stats.crashes += s.crashes;
        stats.pauses += s.pauses;
        stats.partitions += s.partitions;
        stats.refused_to_open += s.refused_to_open;
        let mut log = world.log.borrow_mut();
        hash =
            crate::checkers::fingerprint(&[hash.to_le_bytes(), log.hash().to_le_bytes()].concat());
        events += log.count();
        records.extend(log.take_records());
    }
    SeedReport {
        seed: options.seed,
        outcome,
        sim_time: driver.now(),
        wall_time: Duration::ZERO,
        event_hash: hash,
        events,
        stats,
        client: ClientStats::default(),
        records,
        kv: Some(driver.stats()),
        history: Some(history),
    }
}

/// Lets every task of the finished run return before the runtime drops (see
/// `runner::drain`): the driver and its worlds are freed only then.
async fn drain(driver: Rc<ShardDriver>) {
    for world in driver.worlds() {
        for slot in world.slots() {
            slot.wake();
        }
    }
    let start = driver.now();
    let held = |d: &Rc<ShardDriver>| {
        Rc::strong_count(d) > 1 || d.worlds().iter().any(|w| Rc::strong_count(w) > 1)
    };
    while held(&driver) && driver.now() - start < runner::DRAIN_MAX {
        madsim::time::sleep(Duration::from_millis(100)).await;
    }
}
