//! The failure report of a failing seed, written to `DIR/seed-N/`.
//!
//! - `report.html`: opens on what failed. For a history that is not linearizable, the failing
//!   key with its small conflicting set, each operation with the server that answered it and
//!   the faults active meanwhile; for any other failure (a Raft checker, liveness), the
//!   checker's message. Then the cluster timeline around the failing moment: each node's role
//!   and term, crashes, pauses and partitions ([`timeline`]).
//! - `history.jsonl` (kv and shardkv): the history in the `lincheck` format.
//!
//! The timeline comes from replaying the seed under a tracing capture ([`capture`]): the same
//! seed and binary give the same run, and the page says whether the replay's event hash
//! matched the failing run's.

pub mod capture;
pub mod page;
pub mod timeline;

use crate::cluster::Failure;
use crate::kv::check::check_every_key;
use crate::runner::{run_seed, Outcome, RunOptions, SeedReport};
use crate::sweep::{describe, reproduce_command};
use capture::Captured;
use linearizability::history::Timestamp;
use linearizability::models::KvModel;
use linearizability::visualize::{self, Band, Notes};
use page::escape;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;
use timeline::{NodeState, Timeline, REPLY_ACCEPTED};

/// How much of the run before the failing moment the timeline shows.
const BEFORE: Duration = Duration::from_secs(3);
/// And after it.
const AFTER: Duration = Duration::from_millis(300);

/// The failing run replayed with its events captured.
struct Replayed {
    report: Option<SeedReport>,
    events: Vec<Captured>,
}

/// Replays `opts` on a fresh thread (as every seed runs) with the trace captured.
fn replay(opts: &RunOptions) -> Replayed {
    let mut opts = opts.clone();
    opts.keep_events = true;
    let joined = std::thread::Builder::new()
        .name(format!("report-{}", opts.seed))
        .spawn(move || {
            capture::capture(|| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_seed(&opts))).ok()
            })
        })
        .expect("spawning a replay thread")
        .join();
    match joined {
        Ok((report, events)) => Replayed { report, events },
        Err(_) => Replayed {
            report: None,
            events: Vec::new(),
        },
    }
}

/// When the failure happened: a safety violation's own time, else when the seed failed.
fn failure_time(outcome: &Outcome, events: &[Captured]) -> Option<Duration> {
    if let Outcome::Failed(Failure::Safety(v)) = outcome {
        return Some(v.at);
    }
    events
        .iter()
        .find(|e| e.message == "seed failed")
        .map(|e| e.at)
}

/// The name of the bug `opts` plants, for the reproduce command.
fn bug_name(opts: &RunOptions) -> Option<&'static str> {
    crate::bugs::registry()
        .into_iter()
        .find(|bug| crate::bugs::plant(Some(bug.name)) == (opts.bugs, opts.service_bugs))
        .map(|bug| bug.name)
}

/// Writes the report of a failing seed and returns what it wrote (a label and a path each).
///
/// # Errors
/// Creating the directory or writing a file failed.
pub fn write(
    out: &Path,
    opts: &RunOptions,
    report: &SeedReport,
) -> std::io::Result<Vec<(&'static str, PathBuf)>> {
    let dir = out.join(format!("seed-{}", report.seed));
    std::fs::create_dir_all(&dir)?;
    let mut written = Vec::new();
    let replayed = replay(opts);
    let (records, end, same) = match &replayed.report {
        Some(r) => (
            r.records.as_slice(),
            r.sim_time,
            r.event_hash == report.event_hash && r.outcome == report.outcome,
        ),
        None => (
            &[][..],
            replayed.events.last().map_or(Duration::ZERO, |e| e.at),
            false,
        ),
    };
    let timeline = Timeline::build(records, &replayed.events, end);
    let failed_at = failure_time(&report.outcome, &replayed.events);
    let mut sections = vec![header(opts, report, same)];
    let mut window = failed_at.map(|at| (at.saturating_sub(BEFORE), (at + AFTER).min(end)));
    if let Outcome::Failed(Failure::Liveness(_)) = &report.outcome {
        // The failing moment is the end of the bound; show it from the heal on.
        let heal = replayed
            .events
            .iter()
            .find(|e| e.message.starts_with("heal:"));
        window = Some((
            heal.map_or(Duration::ZERO, |h| h.at.saturating_sub(BEFORE / 3)),
            end,
        ));
    }
    if let Some(history) = &report.history {
        let jsonl = dir.join("history.jsonl");
        let model = KvModel::new();
        std::fs::write(&jsonl, linearizability::jsonl::to_jsonl(&model, history))?;
        written.push(("history", jsonl));
        let check = check_every_key(history);
        // For a history that is not linearizable, the moment is the blocked operation.
        if let Some(b) = check.partitions.iter().find_map(|p| {
            p.blocked
                .filter(|_| p.verdict == linearizability::Verdict::Illegal)
        }) {
            let op = &history[b];
            let from = Duration::from_micros(op.call.0);
            let to = op.return_time.map_or(end, |t| Duration::from_micros(t.0));
            window = Some((from.saturating_sub(BEFORE), (to + AFTER).min(end)));
        }
        let notes = notes(history, &replayed.events, &timeline, end);
        let title = format!("history of seed {}", report.seed);
        sections.push(visualize::section_with_notes(
            &title, &model, history, &check, &notes,
        ));
    }
    let window = window.unwrap_or((end.saturating_sub(BEFORE), end));
    sections.push(page::timeline_section(&timeline, window, failed_at));
    let html = dir.join("report.html");
    let title = format!("seed {}: {}", report.seed, headline(&report.outcome));
    std::fs::write(&html, visualize::page(&title, &sections))?;
    written.push(("report", html));
    Ok(written)
}

fn headline(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Passed => "passed",
        Outcome::Failed(Failure::Safety(_)) => "FAILED a safety check",
        Outcome::Failed(Failure::Liveness(_)) => "FAILED to recover (liveness)",
        Outcome::Failed(Failure::Node(_)) => "FAILED: a node misbehaved",
        Outcome::Failed(Failure::Linearizability(_)) => "FAILED: not linearizable",
        Outcome::Panicked(_) => "PANICKED",
    }
}

/// The checker's message, the command that replays the seed, and whether the replay that the
/// timeline comes from was the same run.
fn header(opts: &RunOptions, report: &SeedReport, same: bool) -> String {
    let mut cmd = reproduce_command(report.seed, bug_name(opts), opts.standard, opts.workload);
    let flags = opts.overrides.to_flags();
    if !flags.is_empty() {
        cmd = format!("{cmd} {flags}");
    }
    let mut html = format!(
        "<div class=\"conflicts\"><b>What failed</b><pre>{}</pre>\
         <p>Reproduce: <code>{}</code> (add <code>--trace</code> for the full log, \
         <code>--minimize</code> to shrink it)</p>",
        escape(&describe(&report.outcome)),
        escape(&cmd)
    );
    let _ = writeln!(
        html,
        "<p>{}</p></div>",
        if same {
            "The timeline below comes from a replay of the seed; its event hash matches the \
             failing run's, so it is the same run."
        } else {
            "Warning: the replay the timeline comes from did not end like the failing run (a \
             different event hash or outcome); the timeline may not show the failing run."
        }
    );
    html
}

/// Per operation: the server that answered it and the faults active while it ran; and the
/// faults as bands behind the history's timelines.
fn notes<I, O>(
    history: &[linearizability::Operation<I, O>],
    events: &[Captured],
    timeline: &Timeline,
    end: Duration,
) -> Notes {
    let mut answered: BTreeMap<(u64, u64), String> = BTreeMap::new();
    for e in events.iter().filter(|e| e.message == REPLY_ACCEPTED) {
        if let (Some(clerk), Some(server)) = (
            e.field("clerk").and_then(|c| c.parse().ok()),
            e.field("server"),
        ) {
            answered.insert((clerk, e.at.as_micros() as u64), format!("n{server}"));
        }
    }
    let mut notes = Notes::default();
    for (i, op) in history.iter().enumerate() {
        let from = Duration::from_micros(op.call.0);
        let to = op.return_time.map_or(end, |t| Duration::from_micros(t.0));
        let server = match op.return_time {
            Some(t) => answered
                .get(&(op.client.0, t.0))
                .map_or("answer: no server recorded".to_string(), |s| {
                    format!("answered by {s}")
                }),
            None => "never answered".to_string(),
        };
        let faults = timeline.faults_during(from, to);
        let faults = if faults.is_empty() {
            "no partition, crash or pause meanwhile".to_string()
        } else {
            format!("meanwhile: {}", faults.join("; "))
        };
        notes.per_op.insert(i, format!("{server}; {faults}"));
    }
    let stamp = |t: Duration| Timestamp(t.as_micros() as u64);
    for p in &timeline.partitions {
        notes.bands.push(Band {
            label: format!("partition {} ({:?} to {:?})", p.what, p.from, p.to),
            from: stamp(p.from),
            to: stamp(p.to),
        });
    }
    for (id, segments) in &timeline.nodes {
        for s in segments
            .iter()
            .filter(|s| !matches!(s.state, NodeState::Running(_)))
        {
            notes.bands.push(Band {
                label: format!("n{id} {} ({:?} to {:?})", s.state.name(), s.from, s.to),
                from: stamp(s.from),
                to: stamp(s.to),
            });
        }
    }
    notes
}
