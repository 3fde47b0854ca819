//! The end-of-seed linearizability check and the artifacts written for a failing seed.

use linearizability::models::{KvInput, KvModel, KvOutput};
use linearizability::{check_with, CheckOptions, CheckReport, CheckResult, Operation};
use std::path::{Path, PathBuf};

/// A kv run's recorded history.
pub type KvHistory = Vec<Operation<KvInput, KvOutput>>;

/// Per key, the search gives up (verdict Unknown, which fails the seed) after this many
/// configurations. A bound instead of a timeout keeps the check deterministic.
pub const CONFIGURATIONS_MAX: u64 = 2_000_000;

/// The verdict on one history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinCheck {
    /// Every key is linearizable.
    Ok,
    /// A key is not linearizable.
    Illegal(String),
    /// The search hit its bound on some key.
    Unknown(String),
}

fn options() -> CheckOptions {
    CheckOptions {
        timeout: None,
        threads: 1,
        configurations_max: Some(CONFIGURATIONS_MAX),
        stop_at_first_illegal: true,
        measure_time: false,
        ..CheckOptions::default()
    }
}

/// Checks every key of `history` (not stopping at the first illegal one), deterministically:
/// what a failure report shows.
pub fn check_every_key(history: &KvHistory) -> CheckReport {
    let options = CheckOptions {
        stop_at_first_illegal: false,
        ..options()
    };
    check_with(&KvModel::new(), history, &options)
}

/// Checks `history` per key, deterministically.
pub fn check_history(history: &KvHistory) -> (LinCheck, CheckReport) {
    let report = check_with(&KvModel::new(), history, &options());
    let verdict = match report.result() {
        CheckResult::Ok => LinCheck::Ok,
        CheckResult::Illegal(counterexample) => {
            let blocked = counterexample
                .blocked
                .map(|i| describe_op(&history[i]))
                .unwrap_or_else(|| "?".to_string());
            LinCheck::Illegal(format!(
                "{} is not linearizable ({} ops of {} linearized; stuck at {blocked})",
                counterexample.partition,
                counterexample.longest_prefix.len(),
                report
                    .partitions
                    .iter()
                    .find(|p| p.name == counterexample.partition)
                    .map_or(0, |p| p.ops.len()),
            ))
        }
        CheckResult::Unknown => {
            let keys: Vec<&str> = report
                .partitions
                .iter()
                .filter(|p| matches!(p.verdict, linearizability::Verdict::Unknown(_)))
                .map(|p| p.name.as_str())
                .collect();
            LinCheck::Unknown(format!(
                "the check gave up after {CONFIGURATIONS_MAX} configurations on key(s) {}",
                keys.join(", ")
            ))
        }
    };
    (verdict, report)
}

/// Longest rendering of one operation's argument or result in a failure line; the full
/// values are in the history files.
const SHOWN_CHARS_MAX: usize = 60;

/// `text`, cut to [`SHOWN_CHARS_MAX`] characters with the length of what was left out.
fn abbreviate(text: String) -> String {
    match text.char_indices().nth(SHOWN_CHARS_MAX) {
        Some((cut, _)) => format!("{}...({} bytes)", &text[..cut], text.len()),
        None => text,
    }
}

fn describe_op(op: &Operation<KvInput, KvOutput>) -> String {
    format!(
        "{} {} called at {}us, {}",
        op.client,
        abbreviate(format!("{:?}", op.input.action)),
        op.call,
        match (&op.return_time, op.outcome.output()) {
            (Some(at), Some(out)) =>
                format!("returned {} at {at}us", abbreviate(format!("{out:?}"))),
            (Some(at), None) => format!("returned unknown at {at}us"),
            _ => "never returned".to_string(),
        }
    )
}

/// Writes `history.jsonl` and `history.html` (the checker's visualization) into
/// `dir/seed-N/`, and returns their paths.
///
/// # Errors
/// Creating the directory or writing a file failed.
pub fn write_artifacts(
    dir: &Path,
    seed: u64,
    history: &KvHistory,
) -> std::io::Result<(PathBuf, PathBuf)> {
    let dir = dir.join(format!("seed-{seed}"));
    std::fs::create_dir_all(&dir)?;
    let model = KvModel::new();
    let jsonl = dir.join("history.jsonl");
    std::fs::write(&jsonl, linearizability::jsonl::to_jsonl(&model, history))?;
    let (_, report) = check_history(history);
    let title = format!("seed {seed}");
    let section = linearizability::visualize::section(&title, &model, history, &report);
    let html = dir.join("history.html");
    std::fs::write(&html, linearizability::visualize::page(&title, &[section]))?;
    Ok((jsonl, html))
}

#[cfg(test)]
mod tests {
    use super::*;
    use linearizability::models::KvAction;
    use linearizability::{ClientId, Recorder, Timestamp};

    fn input(action: KvAction) -> KvInput {
        KvInput {
            key: "k".to_string(),
            action,
        }
    }

    #[test]
    fn a_stale_read_is_illegal_and_artifacts_are_written() {
        let mut r = Recorder::new();
        let w = r.call(ClientId(1), Timestamp(0), input(KvAction::Put("a".into())));
        r.ok(w.unwrap(), Timestamp(10), KvOutput::Done).unwrap();
        let g = r
            .call(ClientId(2), Timestamp(20), input(KvAction::Get))
            .unwrap();
        r.ok(g, Timestamp(30), KvOutput::Value(String::new()))
            .unwrap();
        let history = r.finish();
        assert!(matches!(check_history(&history).0, LinCheck::Illegal(_)));
        assert_eq!(check_history(&history[..1].to_vec()).0, LinCheck::Ok);
        let dir = std::env::temp_dir().join(format!("sim-kv-check-{}", std::process::id()));
        let (jsonl, html) = write_artifacts(&dir, 7, &history).unwrap();
        assert!(std::fs::read_to_string(jsonl).unwrap().lines().count() == 2);
        assert!(std::fs::read_to_string(html).unwrap().contains("seed 7"));
        let long = abbreviate("x".repeat(500));
        assert!(
            long.len() < 80 && long.ends_with("...(500 bytes)"),
            "{long}"
        );
        assert_eq!(abbreviate("short".to_string()), "short");
        let _ = std::fs::remove_dir_all(dir);
    }
}
