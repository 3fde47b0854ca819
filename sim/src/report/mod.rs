//! The failure report of a failing seed, written to `DIR/seed-N/`.
//!
//! A kv or shardkv seed writes its history (`history.jsonl`, the `lincheck` format) and the
//! checker's HTML page (`history.html`).

use crate::runner::{RunOptions, SeedReport};
use std::path::{Path, PathBuf};

/// Writes the report of a failing seed and returns what it wrote (a label and a path each).
///
/// # Errors
/// Creating the directory or writing a file failed.
pub fn write(
    out: &Path,
    opts: &RunOptions,
    report: &SeedReport,
) -> std::io::Result<Vec<(&'static str, PathBuf)>> {
    let _ = opts;
    let mut written = Vec::new();
    if let Some(history) = &report.history {
        let (jsonl, html) = crate::kv::write_artifacts(out, report.seed, history)?;
        written.push(("history", jsonl));
        written.push(("visualization", html));
    }
    Ok(written)
}
