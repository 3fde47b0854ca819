//! `sim merge`: one report from the JSON summaries of a sharded sweep.
//!
//! A large sweep is split with `--shard i/n` over machines (a GitHub Actions matrix, a
//! Kubernetes Indexed Job), each writing its [`Summary`](crate::sweep::Summary) with `--json`.
//! This module reads those files back, groups them into *runs* (the same workload, bug, seed
//! range, overrides, configuration and shard count), and reports for each run the seeds that
//! ran, every failure with its reproduce command, which shards are missing or duplicated, and
//! the figures of each shard. A missing shard is an error of the report, not a silent gap:
//! the seeds it would have run were not tested.

use crate::coverage::ShapeSeeds;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One shard's summary as read back from its JSON file (the fields of
/// [`Summary`](crate::sweep::Summary) this report uses).
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize, PartialEq)]
pub struct ShardSummary {
    /// The service under test.
    pub workload: String,
    /// The planted bug, if any.
    pub bug: Option<String>,
    /// The seed range, `A..B`.
    pub seed_range: String,
    /// `i/n`, or `None` for an unsharded sweep (a run of one shard).
    pub shard: Option<String>,
    /// The configuration overrides, as flags.
    pub overrides: String,
    /// Whether the standard configuration was used.
    pub standard: bool,
    /// The binary that ran it.
    pub version: MergedVersion,
    /// Seeds run.
    pub seeds: u64,
    /// Seeds that passed.
    pub passed: u64,
    /// Seeds that failed.
    pub failed: Vec<MergedFailure>,
    /// Wall-clock seconds.
    pub wall_secs: f64,
    /// Simulated seconds, summed over seeds.
    pub sim_secs: f64,
    /// Messages sent, summed over seeds.
    pub messages: u64,
    /// Seeds per rare shape (absent from summaries of older binaries).
    #[serde(default)]
    pub shapes: Vec<ShapeSeeds>,
}

/// The version block of a summary.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct MergedVersion {
    /// The crate version.
    pub version: String,
    /// The commit, if known.
    pub commit: Option<String>,
}

/// A failing seed of a summary.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct MergedFailure {
    /// The seed.
    pub seed: u64,
    /// What failed.
    pub failure: String,
    /// The command that reproduces it.
    pub reproduce: String,
}

/// What identifies one sharded run: summaries agreeing on all of it are shards of one sweep.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct RunKey {
    /// The service under test.
    pub workload: String,
    /// The planted bug.
    pub bug: Option<String>,
    /// The seed range.
    pub seed_range: String,
    /// The overrides.
    pub overrides: String,
    /// The standard configuration.
    pub standard: bool,
    /// The shard count `n` of `i/n` (1 for an unsharded sweep).
    pub shards: u64,
    /// The binary: shards built from different commits are different runs, since a seed's
    /// schedule depends on the binary.
    pub version: MergedVersion,
}

/// One shard's figures in the merged report.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ShardFigures {
    /// The shard index `i`.
    pub index: u64,
    /// The file it came from.
    pub file: String,
    /// Seeds run.
    pub seeds: u64,
    /// Seeds failed.
    pub failed: u64,
    /// Wall-clock seconds.
    pub wall_secs: f64,
    /// Seeds per wall-clock second.
    pub seeds_per_sec: f64,
    /// Simulated seconds per wall-clock second.
    pub sim_per_wall: f64,
    /// Messages sent.
    pub messages: u64,
}

/// One run, merged from its shards.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MergedRun {
    /// What the shards have in common.
    pub key: RunKey,
    /// Seeds run over all shards.
    pub seeds: u64,
    /// Seeds passed over all shards.
    pub passed: u64,
    /// Every failure, sorted by seed.
    pub failed: Vec<MergedFailure>,
    /// Shard indexes `0..n` with no summary.
    pub missing_shards: Vec<u64>,
    /// Shard indexes given by more than one file (their seeds are counted once per file).
    pub duplicate_shards: Vec<u64>,
    /// Simulated seconds over all shards.
    pub sim_secs: f64,
    /// Messages over all shards.
    pub messages: u64,
    /// Wall-clock seconds summed over shards (machine time, not elapsed time).
    pub machine_secs: f64,
    /// Each shard's figures, by index.
    pub per_shard: Vec<ShardFigures>,
    /// Seeds per rare shape over all shards (the first seed is the smallest of any shard).
    pub shapes: Vec<ShapeSeeds>,
}

impl MergedRun {
    /// Whether every shard is there exactly once and every seed passed.
    pub fn complete_and_passed(&self) -> bool {
        self.failed.is_empty() && self.missing_shards.is_empty() && self.duplicate_shards.is_empty()
    }
}

/// The merged report of many summaries.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MergedReport {
    /// Summary files read.
    pub files: usize,
    /// Seeds run over every run.
    pub seeds: u64,
    /// Failures over every run.
    pub failures: usize,
    /// The runs, sorted by key.
    pub runs: Vec<MergedRun>,
}

impl MergedReport {
    /// Whether every run is complete and passed.
    pub fn complete_and_passed(&self) -> bool {
        self.runs.iter().all(MergedRun::complete_and_passed)
    }

    /// The report as text: one block per run, failures with their reproduce commands, then a
    /// table of the shards.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for run in &self.runs {
            let k = &run.key;
            let _ = writeln!(
                out,
                "run: workload {}, seeds {}{}{}{}, {} shard(s), sim {}{}",
                k.workload,
                k.seed_range,
                k.bug
                    .as_ref()
                    .map_or(String::new(), |b| format!(", bug {b}")),
                if k.standard { ", standard" } else { "" },
                if k.overrides.is_empty() {
                    String::new()
                } else {
                    format!(", overrides {}", k.overrides)
                },
                k.shards,
                k.version.version,
                k.version
                    .commit
                    .as_ref()
                    .map_or(String::new(), |c| format!(" ({c})"))
            );
            let _ = writeln!(
                out,
                "  {} seeds: {} passed, {} failed; {:.0} simulated s, {} messages, {:.1} machine s",
                run.seeds,
                run.passed,
                run.failed.len(),
                run.sim_secs,
                run.messages,
                run.machine_secs
            );
            if !run.shapes.is_empty() {
                let _ = writeln!(out, "  {}", crate::coverage::line(&run.shapes));
            }
            if !run.missing_shards.is_empty() {
                let _ = writeln!(
                    out,
                    "  MISSING shards (their seeds did not run): {:?}",
                    run.missing_shards
                );
            }
            if !run.duplicate_shards.is_empty() {
                let _ = writeln!(
                    out,
                    "  DUPLICATE shards (counted once per file): {:?}",
                    run.duplicate_shards
                );
            }
            for f in &run.failed {
                let _ = writeln!(
                    out,
                    "  seed {} FAILED: {}\n    reproduce: {}",
                    f.seed, f.failure, f.reproduce
                );
            }
            let _ = writeln!(
                out,
                "  | shard | seeds | failed | wall s | seeds/s | sim s per wall s | messages | file |"
            );
            let _ = writeln!(out, "  |---|---|---|---|---|---|---|---|");
            for s in &run.per_shard {
                let _ = writeln!(
                    out,
                    "  | {}/{} | {} | {} | {:.1} | {:.1} | {:.0} | {} | {} |",
                    s.index,
                    k.shards,
                    s.seeds,
                    s.failed,
                    s.wall_secs,
                    s.seeds_per_sec,
                    s.sim_per_wall,
                    s.messages,
                    s.file
                );
            }
        }
        let _ = writeln!(
            out,
            "{} file(s), {} run(s), {} seeds, {} failure(s){}",
            self.files,
            self.runs.len(),
            self.seeds,
            self.failures,
            if self.runs.iter().any(|r| !r.missing_shards.is_empty()) {
                "; INCOMPLETE: shards missing"
            } else {
                ""
            }
        );
        out
    }
}

/// Why summaries could not be merged.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MergeError {
    /// No file was given.
    #[error("no summary files given")]
    Empty,
    /// A file is not a sweep summary.
    #[error("{file}: not a `sim --json` sweep summary: {why}")]
    Parse {
        /// The file.
        file: String,
        /// The parser's message.
        why: String,
    },
    /// A shard field that is not `i/n` with `i < n`.
    #[error("{file}: bad shard `{shard}` (want i/n with 0 <= i < n)")]
    Shard {
        /// The file.
        file: String,
        /// The field.
        shard: String,
    },
}

/// Parses `i/n`.
fn parse_shard(text: &str) -> Option<(u64, u64)> {
    let (i, n) = text.split_once('/')?;
    let (i, n): (u64, u64) = (i.trim().parse().ok()?, n.trim().parse().ok()?);
    (i < n).then_some((i, n))
}

/// Merges summaries given as `(file name, JSON text)`.
///
/// # Errors
/// No input, a text that is not a summary, or a malformed shard field.
pub fn merge(inputs: &[(String, String)]) -> Result<MergedReport, MergeError> {
    if inputs.is_empty() {
        return Err(MergeError::Empty);
    }
    let mut runs: BTreeMap<RunKey, Vec<(u64, String, ShardSummary)>> = BTreeMap::new();
    for (file, text) in inputs {
        let summary: ShardSummary = serde_json::from_str(text).map_err(|e| MergeError::Parse {
            file: file.clone(),
            why: e.to_string(),
        })?;
        let (index, shards) = match &summary.shard {
            None => (0, 1),
            Some(shard) => parse_shard(shard).ok_or_else(|| MergeError::Shard {
                file: file.clone(),
                shard: shard.clone(),
            })?,
        };
        let key = RunKey {
            workload: summary.workload.clone(),
            bug: summary.bug.clone(),
            seed_range: summary.seed_range.clone(),
            overrides: summary.overrides.clone(),
            standard: summary.standard,
            shards,
            version: summary.version.clone(),
        };
        runs.entry(key)
            .or_default()
            .push((index, file.clone(), summary));
    }
    let runs: Vec<MergedRun> = runs
        .into_iter()
        .map(|(key, mut shards)| merge_run(key, &mut shards))
        .collect();
    Ok(MergedReport {
        files: inputs.len(),
        seeds: runs.iter().map(|r| r.seeds).sum(),
        failures: runs.iter().map(|r| r.failed.len()).sum(),
        runs,
    })
}

fn merge_run(key: RunKey, shards: &mut [(u64, String, ShardSummary)]) -> MergedRun {
    shards.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let mut failed: Vec<MergedFailure> = shards
        .iter()
        .flat_map(|(_, _, s)| s.failed.iter().cloned())
        .collect();
    failed.sort_by_key(|f| f.seed);
    let mut seen = vec![
        0u32;
        usize::try_from(key.shards)
            .unwrap_or(usize::MAX)
            .min(1 << 20)
    ];
    let mut duplicate_shards = Vec::new();
    for (index, _, _) in shards.iter() {
        if let Some(count) = seen.get_mut(*index as usize) {
            *count += 1;
            if *count == 2 {
                duplicate_shards.push(*index);
            }
        }
    }
    let missing_shards = (0..key.shards)
        .filter(|&i| seen.get(i as usize).is_some_and(|&c| c == 0))
        .collect();
    let per_shard = shards
        .iter()
        .map(|(index, file, s)| {
            let wall = s.wall_secs.max(1e-9);
            ShardFigures {
                index: *index,
                file: file.clone(),
                seeds: s.seeds,
                failed: s.failed.len() as u64,
                wall_secs: s.wall_secs,
                seeds_per_sec: s.seeds as f64 / wall,
                sim_per_wall: s.sim_secs / wall,
                messages: s.messages,
            }
        })
        .collect();
    let mut shapes: Vec<ShapeSeeds> = Vec::new();
    for (_, _, s) in shards.iter() {
        for shape in &s.shapes {
            match shapes.iter_mut().find(|m| m.shape == shape.shape) {
                Some(merged) => {
                    merged.seeds += shape.seeds;
                    merged.first = merged.first.into_iter().chain(shape.first).min();
                }
                None => shapes.push(shape.clone()),
            }
        }
    }
    MergedRun {
        shapes,
        seeds: shards.iter().map(|(_, _, s)| s.seeds).sum(),
        passed: shards.iter().map(|(_, _, s)| s.passed).sum(),
        failed,
        missing_shards,
        duplicate_shards,
        sim_secs: shards.iter().map(|(_, _, s)| s.sim_secs).sum(),
        messages: shards.iter().map(|(_, _, s)| s.messages).sum(),
        machine_secs: shards.iter().map(|(_, _, s)| s.wall_secs).sum(),
        per_shard,
        key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::{FailedSeed, Summary, SweepOptions, Version};
    use crate::workload::Workload;

    /// A summary exactly as `sim --json` writes it.
    fn summary(shard: Option<(u64, u64)>, seeds: u64, failed: &[u64]) -> (String, String) {
        let mut options = SweepOptions::new(0..100, 2, Workload::Kv);
        options.shard = shard;
        let failed: Vec<FailedSeed> = failed
            .iter()
            .map(|&seed| FailedSeed {
                seed,
                failure: format!("safety: seed {seed}"),
                reproduce: options.reproduce(seed),
            })
            .collect();
        // Say the failing seeds are the ones that reached a shape.
        let shape = ShapeSeeds {
            shape: "joint_leader".to_string(),
            seeds: failed.len() as u64,
            first: failed.first().map(|f| f.seed),
        };
        let s = Summary {
            workload: "kv",
            bug: None,
            seed_range: "0..100".to_string(),
            shard: shard.map(|(i, n)| format!("{i}/{n}")),
            overrides: String::new(),
            standard: false,
            version: Version::current(),
            seeds,
            passed: seeds - failed.len() as u64,
            failed,
            wall_secs: 2.0,
            sim_secs: 30.0 * seeds as f64,
            seeds_per_sec: seeds as f64 / 2.0,
            sim_per_wall: 15.0 * seeds as f64,
            messages: 1000 * seeds,
            shapes: vec![shape],
        };
        let name = shard.map_or("all.json".to_string(), |(i, _)| format!("shard-{i}.json"));
        (name, serde_json::to_string_pretty(&s).expect("encodes"))
    }

    #[test]
    fn shards_merge_into_one_run_with_every_failure() {
        let inputs = vec![
            summary(Some((2, 3)), 33, &[62, 5]),
            summary(Some((0, 3)), 34, &[]),
            summary(Some((1, 3)), 33, &[7]),
        ];
        let report = merge(&inputs).expect("merges");
        assert_eq!(report.runs.len(), 1);
        let run = &report.runs[0];
        assert_eq!((run.seeds, run.passed), (100, 97));
        let seeds: Vec<u64> = run.failed.iter().map(|f| f.seed).collect();
        assert_eq!(seeds, [5, 7, 62]);
        assert!(run.failed[0].reproduce.contains("--seed 5 --workload kv"));
        assert!(run.missing_shards.is_empty() && run.duplicate_shards.is_empty());
        let shape = ShapeSeeds {
            shape: "joint_leader".to_string(),
            seeds: 3,
            first: Some(7),
        };
        assert_eq!(run.shapes, [shape]);
        assert_eq!(
            run.per_shard.iter().map(|s| s.index).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert_eq!(run.per_shard[0].seeds_per_sec, 17.0);
        assert_eq!(run.messages, 100_000);
        assert!(!report.complete_and_passed());
        let text = report.to_text();
        assert!(text.contains("100 seeds: 97 passed, 3 failed"), "{text}");
        assert!(text.contains("reproduce: cargo run --release --bin sim -- --seed 62"));
        assert!(text.contains("| 1/3 | 33 | 1 |"), "{text}");
    }

    #[test]
    fn missing_and_duplicate_shards_are_reported_not_hidden() {
        let inputs = vec![
            summary(Some((0, 4)), 25, &[]),
            summary(Some((0, 4)), 25, &[]),
            summary(Some((3, 4)), 25, &[]),
        ];
        let report = merge(&inputs).expect("merges");
        let run = &report.runs[0];
        assert_eq!(run.missing_shards, [1, 2]);
        assert_eq!(run.duplicate_shards, [0]);
        assert!(!report.complete_and_passed());
        assert!(report.to_text().contains("MISSING shards"));
        let whole = merge(&[summary(None, 100, &[])]).expect("merges");
        assert!(whole.complete_and_passed());
        assert_eq!(whole.runs[0].key.shards, 1);
    }

    #[test]
    fn different_runs_stay_apart_and_bad_input_is_an_error() {
        let (name, kv) = summary(Some((0, 1)), 10, &[]);
        let raft = kv.replace("\"workload\": \"kv\"", "\"workload\": \"raft\"");
        assert_ne!(kv, raft);
        let report = merge(&[(name.clone(), kv.clone()), ("raft.json".into(), raft)]).unwrap();
        assert_eq!(report.runs.len(), 2);
        assert_eq!(report.seeds, 20);
        assert_eq!(merge(&[]), Err(MergeError::Empty));
        let err = merge(&[("x.json".into(), "{\"seeds\": 3}".into())]).unwrap_err();
        assert!(matches!(err, MergeError::Parse { .. }), "{err}");
        let bad = kv.replace("\"0/1\"", "\"3/2\"");
        let err = merge(&[("bad.json".into(), bad)]).unwrap_err();
        assert!(err.to_string().contains("bad shard `3/2`"), "{err}");
    }
}
