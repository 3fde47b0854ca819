//! The subcommands: canaries, add-seed, replay, merge, bench.

use crate::json_out::JsonOut;
use sim::corpus::{load_file, Expect, SeedEntry};
use sim::sweep::{describe, sweep, SweepOptions};
use sim::workload::Workload;
use sim::{run_seed_isolated, RunOptions, SwarmConfig};
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// For each planted bug of the registry, on its home workload: the seeds that catch it, the
/// first one, and seeds that fail without it.
pub fn canaries(seeds: Range<u64>, jobs: u64, json: Option<&Path>) -> Result<bool, String> {
    let json = JsonOut::open_if(json)?;
    std::panic::set_hook(Box::new(|_| {}));
    let mut rows = Vec::new();
    // A seed counts for a bug only if it passes without the bug, so failures the unmodified
    // code also has are not credited to the canary.
    let mut clean: BTreeMap<(u64, &str), bool> = BTreeMap::new();
    println!(
        "| bug | workload | seeds caught | first caught seed | also failing without the bug |"
    );
    println!("|---|---|---|---|---|");
    for bug in sim::bugs::registry() {
        let (name, workload) = (bug.name, bug.home);
        let (bugs, service_bugs) = sim::bugs::plant(Some(name));
        let options = SweepOptions {
            bugs,
            service_bugs,
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
            "seed_range": summary.seed_range, "version": summary.version,
            "fraction": fraction, "first_caught_seed": first,
            "first_failure": caught.first().map(|f| f.failure.clone()),
            "failing_without_bug": baseline.iter().map(|f| f.seed).collect::<Vec<_>>(),
        }));
    }
    let _ = std::panic::take_hook();
    if let Some(json) = json {
        json.write(&serde_json::Value::Array(rows.clone()))?;
    }
    Ok(rows.iter().all(|row| row["caught"].as_u64() > Some(0)))
}

/// Runs the seed once and writes its corpus file with the outcome it has now. An existing
/// file is kept unless `force`: it may record an expectation someone relies on.
/// With `reaches`, the run must reach that rare shape, or no file is written.
pub fn add_seed(
    seed: u64,
    found: &str,
    workload: Workload,
    bug: Option<&str>,
    reaches: Option<&str>,
    dir: &Path,
    force: bool,
) -> Result<bool, String> {
    if let Some(bug) = bug {
        sim::bugs::check_plantable(bug, workload)?;
    }
    if let Some(shape) = reaches {
        sim::corpus::check_shape(shape)?;
    }
    let mut entry = SeedEntry {
        seed,
        workload,
        bug: bug.map(str::to_string),
        expect: Expect::Pass,
        found: found.to_string(),
        reaches: reaches.map(str::to_string),
        config: None,
    };
    entry.config = Some(entry.config_now());
    let path = dir.join(entry.file_name());
    if path.exists() && !force {
        return Err(format!(
            "{} already exists; add --force to replace it",
            path.display()
        ));
    }
    // The expected outcome is what the seed does now, so the file starts out true.
    let report = run_seed_isolated(&entry.run_options());
    if !report.passed() {
        entry.expect = Expect::Fail;
    }
    if let Some(shape) = reaches {
        if report.stats.shapes.get(shape) == Some(0) {
            return Err(format!(
                "seed {seed} does not reach {shape}; no file written (a sweep prints the seeds \
                 that reach each shape)"
            ));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
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

/// Replays seed files as the corpus test does ([`SeedEntry::replay`]). With `refresh`, a file
/// whose recorded outcome still holds gets the fingerprint of the configuration its seed
/// derives now; one whose outcome does not is left as it is.
pub fn replay(files: &[PathBuf], refresh: bool) -> Result<bool, String> {
    // Every file must parse before any seed runs.
    let entries = files
        .iter()
        .map(|path| load_file(path).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut all_hold = true;
    for (path, entry) in files.iter().zip(&entries) {
        let bug = entry
            .bug
            .as_ref()
            .map_or(String::new(), |b| format!(" --bug {b}"));
        println!(
            "{}: seed {} --workload {}{bug}, expect {} ({})",
            path.display(),
            entry.seed,
            entry.workload.name(),
            entry.expect.word(),
            entry.found
        );
        let replay = entry.replay(path);
        println!(
            "  {}: {}",
            if replay.report.passed() {
                "passed"
            } else {
                "FAILED"
            },
            describe(&replay.report.outcome)
        );
        if let Some(clean) = &replay.clean {
            println!("  without the bug: {}", describe(&clean.outcome));
        }
        for problem in &replay.problems {
            println!("  WRONG: {problem}");
        }
        if refresh && replay.outcome_holds() {
            if replay.drift.is_some() {
                let fresh = SeedEntry {
                    config: Some(entry.config_now()),
                    ..entry.clone()
                };
                std::fs::write(path, fresh.to_text())
                    .map_err(|e| format!("writing {}: {e}", path.display()))?;
                println!(
                    "  as expected; refreshed config = \"{:016x}\"",
                    entry.config_now()
                );
            } else {
                println!("  as expected; config fingerprint already current");
            }
            continue;
        }
        if let Some(drift) = &replay.drift {
            println!("  WRONG: {drift}");
        }
        if replay.holds() {
            println!("  as expected");
        } else if refresh {
            println!("  not refreshed: the recorded outcome does not hold");
        }
        all_hold &= replay.holds();
    }
    Ok(all_hold)
}

/// Merges sweep summaries ([`sim::merge`]); true when every run is complete and passed.
pub fn merge(files: &[PathBuf], json: Option<&Path>) -> Result<bool, String> {
    let json = JsonOut::open_if(json)?;
    let inputs = files
        .iter()
        .map(|path| {
            std::fs::read_to_string(path)
                .map(|text| (path.display().to_string(), text))
                .map_err(|e| format!("reading {}: {e}", path.display()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let report = sim::merge::merge(&inputs).map_err(|e| e.to_string())?;
    print!("{}", report.to_text());
    if let Some(json) = json {
        json.write(&report)?;
    }
    Ok(report.complete_and_passed())
}

/// The per-core benchmark ([`sim::bench`]): a table, the goals, and JSON for CI.
pub fn bench(
    seeds: u64,
    baseline_seeds: u64,
    rounds: u64,
    json: Option<&Path>,
) -> Result<bool, String> {
    if seeds == 0 || baseline_seeds == 0 {
        return Err("bench needs at least one seed of each kind".to_string());
    }
    let json = JsonOut::open_if(json)?;
    let load = |l: Option<[f64; 3]>| {
        l.map_or("unknown".to_string(), |[a, b, c]| {
            format!("{a:.2} {b:.2} {c:.2}")
        })
    };
    println!("standard seed: {}", SwarmConfig::standard(1));
    println!(
        "load average before: {} (figures are per core, on CPU time; the ratios against bare \
         madsim are what compare across machines)",
        load(sim::bench::load_average())
    );
    std::panic::set_hook(Box::new(|_| {}));
    let report = sim::bench::run(&sim::bench::default_rows(), seeds, baseline_seeds, rounds);
    let _ = std::panic::take_hook();
    if !report.cpu_time {
        println!("(no CPU clock here: figures are on wall time)");
    }
    print!("{}", report.to_table());
    println!("load average after: {}", load(report.load_after));
    if let Some(kv) = report.row("kv standard") {
        println!(
            "standard kv seed: {:.2} bare madsim seeds (goal: at most 1.5), {:.0} simulated s \
             per s per core (goal: at least 2,000)",
            kv.cost_vs_baseline, kv.sim_per_core_sec
        );
        println!(
            "1,000,000 standard kv seeds a night: about {:.0} core-hours",
            1e6 / kv.seeds_per_core_sec / 3600.0
        );
    }
    let failures = report.failures();
    for failure in &failures {
        println!("failing: {failure}");
    }
    if let Some(json) = json {
        json.write(&report)?;
    }
    Ok(failures.is_empty())
}
