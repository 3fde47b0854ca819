//! The subcommands: canaries, add-seed, bench (and the JSON writer they share).

use crate::{bugs_of, kv_bugs_of};
use raft_core::Bugs;
use sim::kv::{SimKvBugs, Workload};
use sim::sweep::{describe, sweep, SweepOptions};
use sim::{run_seed_isolated, RunOptions, SwarmConfig};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use workloads::shardkv::ShardBugs;

/// For each planted bug: the seeds that catch it, the first one, and seeds that fail without it.
pub fn canaries(seeds: Range<u64>, jobs: u64, json: &Option<PathBuf>) -> Result<bool, String> {
    std::panic::set_hook(Box::new(|_| {}));
    let mut rows = Vec::new();
    // A seed counts for a bug only if it passes without the bug, so failures the unmodified
    // code also has are not credited to the canary.
    let mut clean: BTreeMap<(u64, &str), bool> = BTreeMap::new();
    println!(
        "| bug | workload | seeds caught | first caught seed | also failing without the bug |"
    );
    println!("|---|---|---|---|---|");
    let raft = Bugs::NAMES.iter().map(|name| (name, Workload::Raft));
    let kv = SimKvBugs::NAMES.iter().map(|name| (name, Workload::Kv));
    let shard = ShardBugs::NAMES
        .iter()
        .map(|name| (name, Workload::ShardKv));
    for (name, workload) in raft.chain(kv).chain(shard) {
        let options = SweepOptions {
            bugs: bugs_of(Some(name)),
            kv_bugs: kv_bugs_of(Some(name)),
            bug_name: Some(name.to_string()),
            progress: true,
            ..SweepOptions::new(seeds.clone(), jobs as usize, workload)
        };
        let summary = sweep(&options, |_| {});
        let (caught, baseline): (Vec<_>, Vec<_>) = summary.failed.iter().partition(|f| {
            *clean.entry((f.seed, workload.name())).or_insert_with(|| {
                let plain = RunOptions {
                    workload,
                    ..RunOptions::new(f.seed)
                };
                run_seed_isolated(&plain).passed()
            })
        });
        let first = caught.first().map(|f| f.seed);
        let fraction = caught.len() as f64 / summary.seeds.max(1) as f64;
        println!(
            "| {name} | {} | {}/{} ({:.1}%) | {} | {} |",
            workload.name(),
            caught.len(),
            summary.seeds,
            fraction * 100.0,
            first.map_or("none".to_string(), |s| s.to_string()),
            baseline.len()
        );
        rows.push(serde_json::json!({
            "bug": name, "workload": workload.name(), "caught": caught.len(), "seeds": summary.seeds,
            "fraction": fraction, "first_caught_seed": first,
            "first_failure": caught.first().map(|f| f.failure.clone()),
            "failing_without_bug": baseline.iter().map(|f| f.seed).collect::<Vec<_>>(),
        }));
    }
    let _ = std::panic::take_hook();
    if let Some(path) = json {
        write_json(path, &serde_json::Value::Array(rows.clone()))?;
    }
    Ok(rows.iter().all(|row| row["caught"].as_u64() > Some(0)))
}

/// Runs the seed once and writes its corpus file with the outcome it has now.
pub fn add_seed(
    seed: u64,
    found: &str,
    workload: Workload,
    bug: Option<&str>,
    dir: &std::path::Path,
) -> Result<bool, String> {
    use sim::corpus::{Expect, SeedEntry};
    let mut entry = SeedEntry {
        seed,
        workload,
        bug: bug.map(str::to_string),
        expect: Expect::Pass,
        found: found.to_string(),
    };
    // The expected outcome is what the seed does now, so the file starts out true.
    let report = run_seed_isolated(&entry.run_options());
    if !report.passed() {
        entry.expect = Expect::Fail;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let path = dir.join(entry.file_name());
    std::fs::write(&path, entry.to_text())
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    println!(
        "wrote {} (seed {seed} {} now: {})",
        path.display(),
        if report.passed() { "passes" } else { "fails" },
        describe(&report.outcome)
    );
    Ok(true)
}

/// Seeds per second: bare madsim, the standard Raft seed, the standard kv seed.
pub fn bench(seeds: u64, baseline_seeds: u64) -> Result<bool, String> {
    if seeds == 0 || baseline_seeds == 0 {
        return Err("bench needs at least one seed of each kind".to_string());
    }
    println!("standard seed: {}", SwarmConfig::standard(1));
    let base = sim::bench::baseline(baseline_seeds);
    println!(
        "bare madsim baseline (5 nodes, heartbeat every 50 ms, 10 simulated s): {:.1} seeds/s, \
         {:.0} simulated s per wall s, {:.0} messages per seed",
        base.seeds_per_sec, base.sim_per_wall, base.messages_per_seed
    );
    let (std_figures, failed) = sim::bench::standard(seeds);
    println!(
        "standard Raft seed (5 nodes, client, 20 simulated s of faults): {:.1} seeds/s, {:.0} \
         simulated s per wall s, {:.0} messages per seed",
        std_figures.seeds_per_sec, std_figures.sim_per_wall, std_figures.messages_per_seed
    );
    let (kv_figures, kv_failed) = sim::bench::standard_kv(seeds);
    println!(
        "standard kv seed (same faults, clerks, history checked per key): {:.1} seeds/s, {:.0} \
         simulated s per wall s, {:.0} messages per seed ({:.2} x the standard Raft seed)",
        kv_figures.seeds_per_sec,
        kv_figures.sim_per_wall,
        kv_figures.messages_per_seed,
        std_figures.seeds_per_sec / kv_figures.seeds_per_sec
    );
    let ratio = base.seeds_per_sec / std_figures.seeds_per_sec;
    println!("cost of one standard seed = {ratio:.2} x one baseline seed (goal: at most 3 x)");
    let ten_k_two_cores = 10_000.0 / (std_figures.seeds_per_sec * 2.0) / 60.0;
    println!("10,000 standard seeds on 2 cores: about {ten_k_two_cores:.1} min (goal: under 10)");
    if !failed.is_empty() {
        println!("failing standard seeds: {failed:?}");
    }
    if !kv_failed.is_empty() {
        println!("failing standard kv seeds: {kv_failed:?}");
    }
    Ok(failed.is_empty() && kv_failed.is_empty())
}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json(path: &PathBuf, value: &impl serde::Serialize) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).map_err(|e| format!("encoding JSON: {e}"))?;
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}
