//! The documentation's `sim` commands are part of the test suite: every command the READMEs
//! show runs (with its seed ranges cut to a few seeds, so the suite stays fast), must be
//! accepted (exit 0 or 1, never 2), and every documented sample output (a `$ command` line in
//! a text block, followed by the lines it prints) must be what the binary prints.
//!
//! In a sample, `...` inside a line matches anything, and lines of the real output that the
//! sample leaves out are skipped; the lines shown must come in the order shown.

use std::path::{Path, PathBuf};
use std::process::Command;

const DOCS: &[&str] = &["README.md", "sim/README.md", "seeds/README.md"];
const PREFIXES: &[&str] = &[
    "cargo run --release --bin sim -- ",
    "$ cargo run --release --bin sim -- ",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Shell-like words: double quotes group, `#` outside quotes starts a comment.
fn words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            '#' if !quoted => break,
            c if c.is_whitespace() && !quoted => {
                if any {
                    words.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(word);
    }
    words
}

/// A documented command and, for a sample, the output lines it documents.
#[derive(Debug)]
struct Example {
    source: String,
    args: Vec<String>,
    sample: Option<Vec<String>>,
}

fn examples() -> Vec<Example> {
    let mut all = Vec::new();
    for doc in DOCS {
        let text = std::fs::read_to_string(root().join(doc)).expect("reading the docs");
        let mut in_block = false;
        let mut current: Option<Example> = None;
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("```") {
                in_block = !in_block;
                all.extend(current.take());
                continue;
            }
            if !in_block {
                continue;
            }
            let trimmed = line.trim();
            if let Some(rest) = PREFIXES.iter().find_map(|p| trimmed.strip_prefix(p)) {
                all.extend(current.take());
                let example = Example {
                    source: format!("{doc}:{}", n + 1),
                    args: words(rest),
                    sample: trimmed.starts_with('$').then(Vec::new),
                };
                if example.sample.is_some() {
                    current = Some(example);
                } else {
                    all.push(example);
                }
            } else if let Some(Example {
                sample: Some(lines),
                ..
            }) = &mut current
            {
                lines.push(line.to_string());
            }
        }
    }
    all
}

/// The command with its seed counts cut down: ranges to a few seeds (enough for one per
/// shard), `bench` to one seed of each kind.
fn shrunk(args: &[String]) -> Vec<String> {
    let shard_n: u64 = args
        .iter()
        .position(|a| a == "--shard")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.split_once('/'))
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(1);
    let mut out = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        out.push(arg.clone());
        if arg == "--seeds" {
            let range = iter.next().expect("a range after --seeds");
            let start: u64 = range.split("..").next().unwrap().parse().unwrap();
            out.push(format!("{start}..{}", start + shard_n.max(2) + 1));
        }
    }
    if out.first().map(String::as_str) == Some("bench") {
        out.extend(["--seeds", "1", "--baseline-seeds", "1"].map(String::from));
    }
    out
}

/// Whether `line` matches `pattern`, where `...` matches anything.
fn matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.trim_end().split("...").collect();
    let line = line.trim_end();
    let mut rest = line;
    for (k, part) in parts.iter().enumerate() {
        if k == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if k == parts.len() - 1 {
            return rest.ends_with(part) && rest.len() >= part.len();
        } else {
            let Some(at) = rest.find(part) else {
                return false;
            };
            rest = &rest[at + part.len()..];
        }
    }
    rest.is_empty()
}

fn run(example: &Example, scratch: &Path) -> Result<(), String> {
    let args = shrunk(&example.args);
    // Files the docs name in the repository (seed files) are found there; everything a
    // command writes goes to its own scratch directory.
    let args: Vec<String> = args
        .into_iter()
        .map(|a| {
            let in_repo = root().join(&a);
            if a.starts_with("seeds/") && in_repo.exists() {
                in_repo.display().to_string()
            } else {
                a
            }
        })
        .collect();
    std::fs::create_dir_all(scratch).map_err(|e| e.to_string())?;
    let output = Command::new(env!("CARGO_BIN_EXE_sim"))
        .args(&args)
        .current_dir(scratch)
        .output()
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let code = output.status.code();
    if !matches!(code, Some(0) | Some(1)) {
        return Err(format!(
            "{}: `sim {}` exited {code:?}:\n{}",
            example.source,
            args.join(" "),
            stderr.lines().take(5).collect::<Vec<_>>().join("\n")
        ));
    }
    if let Some(sample) = &example.sample {
        let mut lines = stdout.lines();
        for want in sample.iter().filter(|l| !l.trim().is_empty()) {
            if !lines.any(|got| matches(want, got)) {
                return Err(format!(
                    "{}: `sim {}` does not print (in this order) the documented line\n  \
                     {want}\nit printed:\n{stdout}",
                    example.source,
                    args.join(" ")
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn patterns_match_as_documented() {
    assert!(matches(
        "seed 5: FAILED after ...",
        "seed 5: FAILED after 600ms"
    ));
    assert!(matches("a ... c ... e", "a b c d e"));
    assert!(!matches("a ... c", "a b d"));
    assert!(!matches("exact", "exact and more"));
    assert_eq!(
        words(r#"add-seed --found "what it found"  # comment"#),
        ["add-seed", "--found", "what it found"]
    );
}

#[test]
fn every_documented_sim_command_runs_and_samples_match() {
    let mut examples = examples();
    assert!(
        examples.len() >= 20,
        "only {} examples found",
        examples.len()
    );
    assert!(
        examples.iter().any(|e| e.sample.is_some()),
        "no samples found"
    );
    // Identical commands run once (a sample keeps its own run).
    let mut seen = std::collections::BTreeSet::new();
    examples.retain(|e| e.sample.is_some() || seen.insert(shrunk(&e.args)));
    let base = std::env::temp_dir().join(format!("sim-readme-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let errors = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(example) = examples.get(k) else {
                    return;
                };
                if let Err(e) = run(example, &base.join(k.to_string())) {
                    errors.lock().unwrap().push(e);
                }
            });
        }
    });
    let errors = errors.into_inner().unwrap();
    assert!(errors.is_empty(), "{}", errors.join("\n\n"));
}
