//! `--seeds A..B`: a sweep that prints each failure with its reproduce command as it happens,
//! then a summary.

use crate::json_out::JsonOut;
use crate::single::report_artifacts;
use crate::Cli;
use sim::sweep::{describe, sweep_with, Summary, SweepOptions};
use std::ops::Range;

/// Runs every seed of the range (and shard).
pub fn many_seeds(cli: &Cli, seeds: Range<u64>) -> Result<bool, String> {
    let json = JsonOut::open_if(cli.json.as_deref())?;
    let (bugs, service_bugs) = sim::bugs::plant(cli.bug.as_deref());
    let options = SweepOptions {
        seeds,
        jobs: cli.jobs.unwrap_or(1) as usize,
        bugs,
        bug_name: cli.bug.clone(),
        standard: cli.standard,
        stop_at_first_failure: false,
        progress: true,
        workload: cli.workload,
        service_bugs,
        shard: cli.shard,
        overrides: cli.overrides.to_overrides(),
    };
    let set = options.seed_set();
    println!(
        "running {} seed(s) of {}..{}{} on workload {}{} with {} job(s)",
        set.len(),
        options.seeds.start,
        options.seeds.end,
        options
            .shard
            .map_or(String::new(), |(i, n)| format!(" (shard {i}/{n})")),
        options.workload.name(),
        cli.bug
            .as_ref()
            .map_or(String::new(), |b| format!(", bug {b}")),
        options.jobs
    );
    std::panic::set_hook(Box::new(|_| {}));
    let summary = sweep_with(&options, |report, printer| {
        if report.passed() {
            return;
        }
        let run = crate::single::options(cli, report.seed);
        printer.println(&format!(
            "seed {} FAILED: {}\n  reproduce: {}\n{}",
            report.seed,
            describe(&report.outcome),
            options.reproduce(report.seed),
            report_artifacts(&cli.out, &run, report)
        ));
    });
    let _ = std::panic::take_hook();
    print_summary(&summary);
    if let Some(json) = json {
        json.write(&summary)?;
    }
    Ok(summary.all_passed())
}

fn print_summary(summary: &Summary) {
    if !summary.failed.is_empty() {
        let seeds: Vec<String> = summary.failed.iter().map(|f| f.seed.to_string()).collect();
        println!("failed seeds: {}", seeds.join(", "));
    }
    println!(
        "{} seeds: {} passed, {} failed",
        summary.seeds,
        summary.passed,
        summary.failed.len()
    );
    if !summary.shapes.is_empty() {
        println!("{}", crate::coverage::line(&summary.shapes));
    }
    eprintln!(
        "{:.1} s wall: {:.1} seeds/s, {:.0} simulated s per wall s (wall clock; not part of \
         the replayable output)",
        summary.wall_secs, summary.seeds_per_sec, summary.sim_per_wall
    );
}
