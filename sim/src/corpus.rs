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
//! ```
//!
//! `bug` is optional. `expect` is `pass` or `fail`: replaying the seed (with the bug, if any)
//! must give that outcome. `cargo test -p sim` replays every file ([`SeedEntry::replay`]), `sim replay FILE` replays
//! one the same way, and `sim add-seed` writes one. A bug the workload cannot plant is refused
//! ([`crate::bugs::check_plantable`]).

use crate::runner::{run_seed_isolated, RunOptions, SeedReport};
use crate::sweep::describe;
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
    /// Unknown or repeated keys, bad values, missing `seed`, `expect` or `found`.
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
                "workload" | "bug" | "expect" | "found" => unquote(value)
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
        Ok(SeedEntry {
            seed,
            workload,
            bug,
            expect,
            found: need("found")?,
        })
    }

    /// The run this entry replays.
    pub fn run_options(&self) -> RunOptions {
        let (bugs, kv_bugs) = crate::bugs::plant(self.bug.as_deref());
        RunOptions {
            workload: self.workload,
            bugs,
            kv_bugs,
            ..RunOptions::new(self.seed)
        }
    }

    /// Replays the entry as the corpus test does: the run with its bug (if any) must give the
    /// expected outcome, and a seed credited to a planted bug must pass without it.
    pub fn replay(&self) -> Replay {
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
        let mut clean = None;
        if self.bug.is_some() && self.expect == Expect::Fail {
            let mut plain = self.run_options();
            plain.bugs = Default::default();
            plain.kv_bugs = Default::default();
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
    /// Every way the replay disagrees with the file (empty: it holds).
    pub problems: Vec<String>,
}

impl Replay {
    /// Whether the file's claims hold.
    pub fn holds(&self) -> bool {
        self.problems.is_empty()
    }
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
        };
        let path = Path::new("x.seed");
        assert_eq!(SeedEntry::parse(path, &entry.to_text()).unwrap(), entry);
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
            "no equals sign",
        ] {
            assert!(SeedEntry::parse(path, bad).is_err(), "{bad}");
        }
    }
}
