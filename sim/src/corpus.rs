//! The regression seed corpus: one small text file per seed in `seeds/`.
//!
//! A file is a few `key = value` lines (values are quoted strings or integers; `#` starts a
//! comment line):
//!
//! ```text
//! seed = 12
//! workload = "kv"
//! bug = "local_reads"
//! expect = "fail"
//! found = "a Get on a deposed leader returned a stale value"
//! config = "3f0c9a1d5e7b2468"
//! ```
//!
//! `bug` is optional. `expect` is `pass` or `fail`: replaying the seed (with the bug, if any)
//! must give that outcome. `reaches` is optional: the rare shape ([`crate::coverage::Shapes`])
//! the seed was filed for, which its run must still reach; a seed filed because it reaches a
//! state few seeds reach stops testing anything once a change to the code or the draws moves
//! it elsewhere, and the replay then says so. `cargo test -p sim` replays every file ([`SeedEntry::replay`]), `sim
//! replay FILE` replays one the same way, and `sim add-seed` writes one. A bug the workload
//! cannot plant is refused ([`crate::bugs::check_plantable`]).
//!
//! `config` is the fingerprint ([`crate::run_config::fingerprint`]) of the configuration the
//! seed derived when the file was written: the text `sim --seed N` prints. A change to how
//! configurations are drawn gives the seed another cluster, fault schedule or workload, and an
//! `expect = "pass"` seed would go on passing without testing what it was filed for; so a
//! replay whose fingerprint differs from the file's (or a file without one) does not hold
//! until someone checks the seed and refreshes the file (`sim replay --refresh FILE`).

use crate::runner::{run_seed_isolated, RunOptions, SeedReport};
use crate::sweep::{describe, reproduce_command};
use crate::workload::Workload;
use std::path::{Path, PathBuf};

/// The expected outcome of a replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The seed passes.
    Pass,
    /// The seed fails.
    Fail,
}

/// One regression seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedEntry {
    /// The seed.
    pub seed: u64,
    /// The service under test.
    pub workload: Workload,
    /// A planted bug (a `raft_core::Bugs` or kv bug name).
    pub bug: Option<String>,
    /// The expected outcome.
    pub expect: Expect,
    /// What the seed once found.
    pub found: String,
    /// The rare shape the run must reach ([`crate::coverage::Shapes::NAMES`]), if any.
    pub reaches: Option<String>,
    /// The fingerprint of the configuration the seed derived when the file was written
    /// ([`crate::run_config::fingerprint`]); `None` in a file that predates fingerprints.
    pub config: Option<u64>,
}

/// Why a seed file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a valid seed entry.
    #[error("{path}: line {line}: {what}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line number (0: the file as a whole).
        line: usize,
        /// What is wrong.
        what: String,
    },
}

fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn unquote(text: &str) -> Option<String> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

impl SeedEntry {
    /// The file text.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "seed = {}\nworkload = {}\n",
            self.seed,
            quote(self.workload.name())
        );
        if let Some(bug) = &self.bug {
            text.push_str(&format!("bug = {}\n", quote(bug)));
        }
        text.push_str(&format!(
            "expect = {}\nfound = {}\n",
            quote(self.expect.word()),
            quote(&self.found)
        ));
        if let Some(shape) = &self.reaches {
            text.push_str(&format!("reaches = {}\n", quote(shape)));
        }
        if let Some(config) = self.config {
            text.push_str(&format!("config = \"{config:016x}\"\n"));
        }
        text
    }

    /// A file name for this entry, unique per (workload, seed, bug).
    pub fn file_name(&self) -> String {
        match &self.bug {
            Some(bug) => format!("{}-{}-{bug}.seed", self.workload.name(), self.seed),
            None => format!("{}-{}.seed", self.workload.name(), self.seed),
        }
    }

    /// Parses a file's text; `path` only names it in errors.
    ///
    /// # Errors
    /// Unknown or repeated keys, bad values, missing `seed`, `expect` or `found`. A missing
    /// `config` parses (as `None`) so `sim replay --refresh` can add it; replaying such a file
    /// does not hold ([`SeedEntry::drift`]).
    pub fn parse(path: &Path, text: &str) -> Result<SeedEntry, CorpusError> {
        let err = |line: usize, what: String| CorpusError::Syntax {
            path: path.to_path_buf(),
            line,
            what,
        };
        let mut fields: std::collections::BTreeMap<String, String> = Default::default();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| err(n + 1, format!("expected `key = value`, got `{line}`")))?;
            let (key, value) = (key.trim().to_string(), value.trim());
            let value = match key.as_str() {
                "seed" => value.to_string(),
                "workload" | "bug" | "expect" | "found" | "config" | "reaches" => unquote(value)
                    .ok_or_else(|| err(n + 1, format!("`{key}` needs a quoted string")))?,
                _ => return Err(err(n + 1, format!("unknown key `{key}`"))),
            };
            if fields.insert(key.clone(), value).is_some() {
                return Err(err(n + 1, format!("`{key}` given twice")));
            }
        }
        let take = |key: &str| fields.get(key).cloned();
        let need = |key: &str| take(key).ok_or_else(|| err(0, format!("missing `{key}`")));
        let seed = need("seed")?
            .parse::<u64>()
            .map_err(|e| err(0, format!("bad seed: {e}")))?;
        let workload_name = take("workload").unwrap_or_else(|| "kv".to_string());
        let workload = Workload::from_name(&workload_name)
            .ok_or_else(|| err(0, format!("unknown workload `{workload_name}`")))?;
        let bug = take("bug");
        if let Some(bug) = &bug {
            crate::bugs::check_plantable(bug, workload).map_err(|what| err(0, what))?;
        }
        let expect = match need("expect")?.as_str() {
            "pass" => Expect::Pass,
            "fail" => Expect::Fail,
            other => {
                return Err(err(
                    0,
                    format!("expect must be pass or fail, not `{other}`"),
                ))
            }
        };
        let reaches = take("reaches");
        if let Some(shape) = &reaches {
            check_shape(shape).map_err(|what| err(0, what))?;
        }
        let config = match take("config") {
            Some(hex) if hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some(u64::from_str_radix(&hex, 16).expect("16 hex digits fit a u64"))
            }
            Some(hex) => return Err(err(0, format!("config must be 16 hex digits, not `{hex}`"))),
            None => None,
        };
        Ok(SeedEntry {
            seed,
            workload,
            bug,
            expect,
            found: need("found")?,
            reaches,
            config,
        })
    }

    /// The fingerprint of the configuration this entry's run derives now.
    pub fn config_now(&self) -> u64 {
        crate::run_config::fingerprint(&self.run_options(), self.bug.as_deref())
    }

    /// Why the file at `path` no longer describes the run it was written for: its recorded
    /// fingerprint is missing or differs from [`SeedEntry::config_now`]. `None` when it matches.
    pub fn drift(&self, path: &Path) -> Option<String> {
        let now = self.config_now();
        let recorded = match self.config {
            Some(recorded) if recorded == now => return None,
            Some(recorded) => format!("records config = \"{recorded:016x}\""),
            None => "records no config fingerprint".to_string(),
        };
        let show = reproduce_command(self.seed, self.bug.as_deref(), false, self.workload);
        Some(format!(
            "{}: the seed's configuration changed: the file {recorded}, the seed now derives \
             config = \"{now:016x}\", so it may no longer test what it was filed for ({}). \
             Check the new configuration (`{show}` prints it) still exercises that, then \
             refresh the file with `cargo run --release --bin sim -- replay --refresh {}` \
             (it rewrites the fingerprint only if the recorded outcome still holds)",
            path.display(),
            self.found,
            path.display()
        ))
    }

    /// The run this entry replays.
    pub fn run_options(&self) -> RunOptions {
        let (bugs, service_bugs) = crate::bugs::plant(self.bug.as_deref());
        RunOptions {
            workload: self.workload,
            bugs,
            service_bugs,
            ..RunOptions::new(self.seed)
        }
    }

    /// Replays the entry read from `path` as the corpus test does: its configuration must not
    /// have drifted ([`SeedEntry::drift`]), the run with its bug (if any) must give the expected
    /// outcome, and a seed credited to a planted bug must pass without it.
    pub fn replay(&self, path: &Path) -> Replay {
        let drift = self.drift(path);
        let report = run_seed_isolated(&self.run_options());
        let mut problems = Vec::new();
        if report.passed() != (self.expect == Expect::Pass) {
            problems.push(format!(
                "expected {}, got: {} (found once: {})",
                self.expect.word(),
                describe(&report.outcome),
                self.found
            ));
        }
        if let Some(shape) = &self.reaches {
            if report.stats.shapes.get(shape) == Some(0) {
                problems.push(format!(
                    "no longer reaches {shape}, the shape it was filed for (found once: {})",
                    self.found
                ));
            }
        }
        let mut clean = None;
        if self.bug.is_some() && self.expect == Expect::Fail {
            let mut plain = self.run_options();
            plain.bugs = Default::default();
            plain.service_bugs = Default::default();
            let run = run_seed_isolated(&plain);
            if !run.passed() {
                problems.push(format!(
                    "fails without its bug too: {}",
                    describe(&run.outcome)
                ));
            }
            clean = Some(run);
        }
        Replay {
            report,
            clean,
            drift,
            problems,
        }
    }
}

impl Expect {
    /// `pass` or `fail`, as written in a seed file.
    pub fn word(self) -> &'static str {
        match self {
            Expect::Pass => "pass",
            Expect::Fail => "fail",
        }
    }
}

/// What replaying one seed file gave.
#[derive(Debug)]
pub struct Replay {
    /// The run the file describes.
    pub report: SeedReport,
    /// For a failing seed with a planted bug: the same seed without the bug.
    pub clean: Option<SeedReport>,
    /// The file's configuration fingerprint is missing or stale ([`SeedEntry::drift`]).
    pub drift: Option<String>,
    /// Every way the outcome disagrees with the file (empty: the outcome holds).
    pub problems: Vec<String>,
}

impl Replay {
    /// Whether the recorded outcome came out, whatever the fingerprint says.
    pub fn outcome_holds(&self) -> bool {
        self.problems.is_empty()
    }

    /// Whether every claim of the file holds: the fingerprint and the outcome.
    pub fn holds(&self) -> bool {
        self.drift.is_none() && self.outcome_holds()
    }
}

/// Checks that `shape` names a rare shape of [`crate::coverage::Shapes`].
///
/// # Errors
/// The name is unknown; the message lists the known ones.
pub fn check_shape(shape: &str) -> Result<(), String> {
    if crate::coverage::Shapes::NAMES.contains(&shape) {
        return Ok(());
    }
    Err(format!(
        "unknown shape `{shape}`; the shapes are {}",
        crate::coverage::Shapes::NAMES.join(", ")
    ))
}

/// Reads and parses one seed file.
///
/// # Errors
/// The file cannot be read or does not parse.
pub fn load_file(path: &Path) -> Result<SeedEntry, CorpusError> {
    let text = std::fs::read_to_string(path).map_err(|source| CorpusError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    SeedEntry::parse(path, &text)
}

/// Reads every `*.seed` file of `dir`, sorted by file name.
///
/// # Errors
/// The directory or a file cannot be read, or a file does not parse.
pub fn load_dir(dir: &Path) -> Result<Vec<(PathBuf, SeedEntry)>, CorpusError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CorpusError::Io { path, source }
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "seed"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| load_file(&path).map(|entry| (path, entry)))
        .collect()
}

/// Replays every seed file of `dir` ([`load_dir`], [`SeedEntry::replay`]) and returns every
/// way the corpus does not hold: stale fingerprints and outcomes that differ from their files,
/// each naming its file as `seeds/NAME` (as from the repository root, where the refresh
/// commands the messages print are run). Empty: the whole corpus holds.
///
/// # Errors
/// A file that cannot be read or parsed, or an empty directory.
pub fn replay_dir(dir: &Path) -> Result<Vec<String>, CorpusError> {
    let entries = load_dir(dir)?;
    if entries.is_empty() {
        return Err(CorpusError::Syntax {
            path: dir.to_path_buf(),
            line: 0,
            what: "no seed files".to_string(),
        });
    }
    let mut wrong = Vec::new();
    for (path, entry) in &entries {
        let name = Path::new("seeds").join(path.file_name().expect("a seed file has a name"));
        let replay = entry.replay(&name);
        // The drift message names the file itself.
        wrong.extend(replay.drift);
        for problem in replay.problems {
            wrong.push(format!("{}: {problem}", name.display()));
        }
    }
    Ok(wrong)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_bad_files_are_explained() {
        let entry = SeedEntry {
            seed: 42,
            workload: Workload::Kv,
            bug: Some("local_reads".into()),
            expect: Expect::Fail,
            found: "a \"stale\" read".into(),
            reaches: Some("joint_leader".into()),
            config: Some(0x00ab_cdef_0123_4567),
        };
        let path = Path::new("x.seed");
        let text = entry.to_text();
        assert!(text.contains("config = \"00abcdef01234567\"\n"), "{text}");
        assert!(text.contains("reaches = \"joint_leader\"\n"), "{text}");
        assert_eq!(SeedEntry::parse(path, &text).unwrap(), entry);
        let without = SeedEntry {
            config: None,
            reaches: None,
            ..entry.clone()
        };
        assert_eq!(SeedEntry::parse(path, &without.to_text()).unwrap(), without);
        assert_eq!(entry.file_name(), "kv-42-local_reads.seed");
        for bad in [
            "seed = x\nexpect = \"pass\"\nfound = \"\"",
            "seed = 1\nexpect = \"maybe\"\nfound = \"\"",
            "seed = 1\nexpect = \"pass\"",
            "seed = 1\nseed = 2\nexpect = \"pass\"\nfound = \"\"",
            "seed = 1\nbug = \"nope\"\nexpect = \"pass\"\nfound = \"\"",
            // A kv bug the raft workload cannot plant: it would run the correct code.
            "seed = 1\nworkload = \"raft\"\nbug = \"local_reads\"\nexpect = \"pass\"\nfound = \"\"",
            "colour = 1",
            "seed = 1\nexpect = \"pass\"\nfound = \"\"\nconfig = \"abc\"",
            "seed = 1\nexpect = \"pass\"\nfound = \"\"\nconfig = \"00abcdef0123456z\"",
            "seed = 1\nexpect = \"pass\"\nfound = \"\"\nconfig = 12",
            "seed = 1\nexpect = \"pass\"\nfound = \"\"\nconfig = \"+0abcdef01234567\"",
            "no equals sign",
            "seed = 1\nexpect = \"pass\"\nfound = \"\"\nreaches = \"nowhere\"",
        ] {
            assert!(SeedEntry::parse(path, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_stale_or_missing_fingerprint_is_named_with_the_fix() {
        let path = Path::new("seeds/kv-3.seed");
        let mut entry = SeedEntry {
            seed: 3,
            workload: Workload::Kv,
            bug: None,
            expect: Expect::Pass,
            found: "something once".into(),
            reaches: None,
            config: None,
        };
        let now = entry.config_now();
        let missing = entry.drift(path).expect("no fingerprint is drift");
        assert!(
            missing.contains("records no config fingerprint"),
            "{missing}"
        );
        entry.config = Some(now);
        assert_eq!(entry.drift(path), None);
        entry.config = Some(now ^ 1);
        let stale = entry.drift(path).expect("a wrong fingerprint is drift");
        for part in [
            "seeds/kv-3.seed: the seed's configuration changed",
            &format!("records config = \"{:016x}\"", now ^ 1),
            &format!("now derives config = \"{now:016x}\""),
            "--seed 3 --workload kv",
            "replay --refresh seeds/kv-3.seed",
            "something once",
        ] {
            assert!(stale.contains(part), "`{part}` missing from: {stale}");
        }
        // The bug is part of the configuration: the same seed with a bug planted drifts.
        entry.config = Some(now);
        entry.bug = Some("local_reads".into());
        assert!(entry.drift(path).is_some());
    }
}
