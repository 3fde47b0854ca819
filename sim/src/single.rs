//! One seed: run it and print what it did, check that it is deterministic, or minimize it.

use crate::json_out::JsonOut;
use crate::Cli;
use sim::event_log::first_difference;
use sim::sweep::{describe, reproduce_command, Version};
use sim::workload::Workload;
use sim::{run_seed_isolated, RunOptions, SeedReport};

/// The run `--seed` asks for.
pub fn options(cli: &Cli, seed: u64) -> RunOptions {
    let (bugs, service_bugs) = sim::bugs::plant(cli.bug.as_deref());
    RunOptions {
        seed,
        bugs,
        standard: cli.standard,
        keep_events: false,
        workload: cli.workload,
        service_bugs,
        overrides: cli.overrides.to_overrides(),
    }
}

/// Writes a failing seed's report (history, HTML page); returns the lines that name them.
pub fn report_artifacts(out: &std::path::Path, opts: &RunOptions, report: &SeedReport) -> String {
    match sim::report::write(out, opts, report) {
        Ok(paths) => paths
            .iter()
            .map(|(what, path)| format!("  {what}: {}", path.display()))
            .collect::<Vec<_>>()
            .join("\n"),
        Err(error) => format!("  could not write the failure report: {error}"),
    }
}

/// Runs one seed. Everything on stdout (and, with `--trace`, the log on stderr) is the same
/// on every run of the seed; the wall time goes to stderr on a line that says so.
pub fn one_seed(cli: &Cli, seed: u64) -> Result<bool, String> {
    let json = JsonOut::open_if(cli.json.as_deref())?;
    if cli.trace {
        sim::trace::init();
    }
    let opts = options(cli, seed);
    println!("{}", sim::run_config::text(&opts, cli.bug.as_deref()));
    let report = run_seed_isolated(&opts);
    let passed = report.passed();
    // The raw Raft client only runs in the raft workload; elsewhere its counters are zeros.
    let client = match opts.workload {
        Workload::Raft => format!(
            "; client: {} writes, {} reads",
            report.client.writes, report.client.reads
        ),
        _ => String::new(),
    };
    println!(
        "seed {seed}: {} after {:?} simulated; {} messages, {} steps, {} crashes, \
         {} partitions, {} pauses{client}; event hash {:016x}",
        if passed { "passed" } else { "FAILED" },
        report.sim_time,
        report.stats.sent,
        report.stats.steps,
        report.stats.crashes,
        report.stats.partitions,
        report.stats.pauses,
        report.event_hash
    );
    if let Some(kv) = &report.kv {
        println!(
            "  kv: {} requests completed, {} resends, {} replies lost, {} ops recorded",
            kv.completed,
            kv.resends,
            kv.replies_lost,
            report.history.as_ref().map_or(0, Vec::len)
        );
    }
    if !passed {
        println!("  {}", describe(&report.outcome));
        println!("  reproduce: {}", reproduce(&opts, cli.bug.as_deref()));
        println!("{}", report_artifacts(&cli.out, &opts, &report));
    }
    eprintln!(
        "wall time {:.1} ms (varies run to run; not part of the replayable output)",
        report.wall_time.as_secs_f64() * 1e3
    );
    if let Some(json) = json {
        let summary = serde_json::json!({
            "seed": seed,
            "workload": cli.workload.name(),
            "bug": cli.bug,
            "overrides": opts.overrides.to_flags(),
            "standard": cli.standard,
            "version": Version::current(),
            "passed": passed,
            "outcome": describe(&report.outcome),
            "reproduce": reproduce(&opts, cli.bug.as_deref()),
            "sim_secs": report.sim_time.as_secs_f64(),
            "wall_secs": report.wall_time.as_secs_f64(),
            "event_hash": format!("{:016x}", report.event_hash),
            "stats": report.stats,
            "client": report.client,
            "kv": report.kv,
        });
        json.write(&summary)?;
    }
    Ok(passed)
}

/// The command that replays `opts` exactly, overrides included.
pub fn reproduce(opts: &RunOptions, bug: Option<&str>) -> String {
    let mut cmd = reproduce_command(opts.seed, bug, opts.standard, opts.workload);
    let flags = opts.overrides.to_flags();
    if !flags.is_empty() {
        cmd.push(' ');
        cmd.push_str(&flags);
    }
    cmd
}

/// Shrinks a failing seed and prints the minimal case as a command.
pub fn minimize(cli: &Cli, seed: u64) -> Result<bool, String> {
    let opts = options(cli, seed);
    std::panic::set_hook(Box::new(|_| {}));
    let found = sim::minimize::minimize(&opts, cli.minimize_runs.unwrap_or(80));
    let _ = std::panic::take_hook();
    let Some(min) = found else {
        println!("seed {seed} passes: nothing to minimize");
        return Ok(true);
    };
    println!(
        "minimized seed {seed} in {} replays; still fails ({}):",
        min.runs, min.signature
    );
    println!("  {}", describe(&min.report.outcome));
    let config = min.options.config();
    println!(
        "  fault phase {:?}, {} ops recorded",
        config.fault_phase,
        min.report.history.as_ref().map_or(0, Vec::len)
    );
    println!(
        "  reproduce: {}",
        reproduce(&min.options, cli.bug.as_deref())
    );
    println!("{}", report_artifacts(&cli.out, &min.options, &min.report));
    Ok(false)
}

/// Runs the seed twice and compares the event logs. Exits 1 when the runs differ **or** when
/// the seed fails (deterministically): a failing seed is a failure in every mode.
pub fn check_determinism(cli: &Cli, seed: u64) -> Result<bool, String> {
    let mut opts = options(cli, seed);
    opts.keep_events = true;
    let first = run_seed_isolated(&opts);
    let second = run_seed_isolated(&opts);
    println!(
        "seed {seed}: run 1 {} events hash {:016x}; run 2 {} events hash {:016x}",
        first.events, first.event_hash, second.events, second.event_hash
    );
    let deterministic = match first_difference(&first.records, &second.records) {
        None if first.event_hash == second.event_hash && first.outcome == second.outcome => {
            println!("deterministic: both runs are identical");
            true
        }
        None => {
            println!("NOT deterministic: same events but outcomes differ");
            println!("  run 1: {}", describe(&first.outcome));
            println!("  run 2: {}", describe(&second.outcome));
            false
        }
        Some((i, a, b)) => {
            let show = |r: Option<sim::event_log::EventRecord>| {
                r.map_or("(run ended)".to_string(), |r| r.to_string())
            };
            println!("NOT deterministic: first difference at event #{i}");
            println!("  run 1: {}", show(a));
            println!("  run 2: {}", show(b));
            false
        }
    };
    let passed = first.passed() && second.passed();
    if deterministic && !passed {
        println!(
            "seed {seed} FAILED (the same way in both runs): {}",
            describe(&first.outcome)
        );
        println!("  reproduce: {}", reproduce(&opts, cli.bug.as_deref()));
    }
    Ok(deterministic && passed)
}
