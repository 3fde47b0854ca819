//! A history checked partition by partition from a spill file (`linearizability::spill`)
//! gets the report, explanations, HTML page and errors that the whole history gets in memory,
//! and leaves no file behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use linearizability::explain::{explain_numbered, explain_within};
use linearizability::generate::{self, Shape, Violation};
use linearizability::jsonl::{read_file, to_jsonl};
use linearizability::models::{KvModel, RegisterModel};
use linearizability::numbering::Numbering;
use linearizability::spill::{self, localize, Loaded, Spill};
use linearizability::{check_with, visualize, CheckOptions, CheckReport};

/// A fresh directory for one test, removed first if an earlier run left it.
fn scratch(test: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("lincheck-spill-test-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writes");
    path
}

fn spilled(path: &Path) -> Spill {
    match spill::read(&KvModel::new(), path).expect("reads") {
        Loaded::Spilled(spill) => spill,
        Loaded::Whole(_) => panic!("a kv history is spilled"),
    }
}

fn shape(ops: usize, keys: usize, pending: f64, violation: Option<Violation>) -> Shape {
    Shape {
        ops,
        keys,
        clients: 8,
        pending,
        violation: violation.is_some(),
        kind: violation.unwrap_or(Violation::StaleRead),
        seed: 7 + ops as u64 + keys as u64,
    }
}

/// Everything a report says except the time taken.
fn summary(report: &CheckReport) -> Vec<String> {
    report
        .partitions
        .iter()
        .map(|p| {
            format!(
                "{} {:?} ops={:?} order={:?} blocked={:?} configurations={}",
                p.name, p.verdict, p.ops, p.linearization, p.blocked, p.configurations
            )
        })
        .collect()
}

#[test]
fn spilled_and_whole_histories_get_the_same_report_explanations_and_page() {
    let dir = scratch("same");
    let model = KvModel::new();
    let cases = [
        shape(2000, 30, 0.0, None),
        shape(2000, 30, 0.05, None),
        shape(2000, 30, 0.05, Some(Violation::StaleRead)),
        shape(1500, 5, 0.1, Some(Violation::LostAppend)),
        shape(800, 1, 0.0, Some(Violation::FutureRead)),
    ];
    let mut illegal_seen = 0;
    for (n, s) in cases.iter().enumerate() {
        let g = generate::kv(s).expect("shape");
        let path = write(&dir, &format!("h{n}.jsonl"), &to_jsonl(&model, &g.history));
        let spill = spilled(&path);
        assert_eq!(spill.operations(), g.history.len());
        for threads in [1, 2] {
            let options = CheckOptions {
                threads,
                ..CheckOptions::default()
            };
            let whole = check_with(&model, &g.history, &options);
            let streamed = spill.check(&model, &options).expect("checks");
            assert_eq!(summary(&streamed), summary(&whole), "case {n}");
            assert_eq!(streamed.result(), whole.result(), "case {n}");
        }
        let options = CheckOptions {
            threads: 1,
            ..CheckOptions::default()
        };
        let whole = check_with(&model, &g.history, &options);
        let streamed = spill.check(&model, &options).expect("checks");
        assert_eq!(
            whole.result() != linearizability::CheckResult::Ok,
            g.violation.is_some(),
            "case {n}: the planted violation is found"
        );
        for (k, p) in streamed.partitions.iter().enumerate() {
            let ops = spill.load(&model, k).expect("loads");
            assert_eq!(ops.len(), p.ops.len());
            for (op, &number) in ops.iter().zip(&p.ops) {
                assert_eq!(op, &g.history[number], "case {n}: #{number}");
            }
            // A budget that lets the shrinking finish, and none: the account of where the
            // search got stuck.
            for budget in [Duration::from_secs(5), Duration::ZERO] {
                let expected = explain_within(&model, &g.history, &whole.partitions[k], budget);
                let got = explain_numbered(
                    &model,
                    &ops,
                    &localize(p),
                    budget,
                    Numbering::Numbers(&p.ops),
                );
                if let Some(e) = &expected {
                    illegal_seen += 1;
                    assert_eq!(e.conflicting, !budget.is_zero(), "case {n}");
                }
                assert_eq!(got, expected, "case {n}: {}", p.name);
            }
        }
        let title = path.display().to_string();
        let page = visualize::section(&title, &model, &g.history, &whole);
        let mut pieces = String::new();
        visualize::section_loaded(
            &title,
            &model,
            spill.operations(),
            &streamed,
            |k| spill.load(&model, k),
            |piece: &str| {
                pieces.push_str(piece);
                Ok(())
            },
        )
        .expect("renders");
        assert!(pieces == page, "case {n}: the HTML sections differ");
    }
    assert!(illegal_seen >= 6, "the planted violations were explained");
    std::fs::remove_dir_all(&dir).expect("cleans up");
}

#[test]
fn the_spill_directory_is_removed_on_drop() {
    let dir = scratch("drop");
    let model = KvModel::new();
    let g = generate::kv(&shape(500, 4, 0.0, None)).expect("shape");
    let path = write(&dir, "h.jsonl", &to_jsonl(&model, &g.history));
    let spill = spilled(&path);
    let spill_dir = spill.directory().to_path_buf();
    assert!(spill_dir.starts_with(std::env::temp_dir()));
    let files: Vec<_> = std::fs::read_dir(&spill_dir).expect("exists").collect();
    assert!(!files.is_empty(), "the operations are on disk");
    assert_eq!(spill.partitions(), 4);
    drop(spill);
    assert!(
        !spill_dir.exists(),
        "{} is left behind",
        spill_dir.display()
    );
    std::fs::remove_dir_all(&dir).expect("cleans up");
}

#[test]
fn malformed_lines_are_reported_with_their_numbers_and_nothing_is_lost() {
    let dir = scratch("malformed");
    let model = KvModel::new();
    let g = generate::kv(&shape(300, 6, 0.05, None)).expect("shape");
    let text = to_jsonl(&model, &g.history);
    let lines: Vec<&str> = text.lines().collect();
    // Blank lines and CRLF endings: line numbers are not operation numbers.
    let mut mixed = String::from("\n");
    for (i, line) in lines.iter().enumerate() {
        mixed.push_str(line);
        mixed.push_str(if i % 3 == 0 { "\r\n" } else { "\n" });
        if i % 50 == 0 {
            mixed.push_str("  \n");
        }
    }
    let good = write(&dir, "good.jsonl", &mixed);
    // The default buffer, one that fills many times, and one that writes every line at once.
    for buffer in [None, Some(2000), Some(0)] {
        let spill = match buffer {
            None => spilled(&good),
            Some(bytes) => match spill::read_buffered(&model, &good, bytes).expect("reads") {
                Loaded::Spilled(spill) => spill,
                Loaded::Whole(_) => panic!("a kv history is spilled"),
            },
        };
        assert_eq!(spill.operations(), g.history.len());
        let mut numbers: Vec<usize> = (0..spill.partitions())
            .flat_map(|k| spill.numbers(k).to_vec())
            .collect();
        numbers.sort_unstable();
        assert_eq!(numbers, (0..g.history.len()).collect::<Vec<_>>());
        let mut loaded = 0;
        for k in 0..spill.partitions() {
            let ops = spill.load(&model, k).expect("loads");
            for (op, &number) in ops.iter().zip(spill.numbers(k)) {
                assert_eq!(op, &g.history[number], "buffer {buffer:?}: #{number}");
            }
            loaded += ops.len();
        }
        assert_eq!(loaded, g.history.len(), "buffer {buffer:?}");
    }

    // Line 1 is blank, so operation i is on line i + 2 up to the first extra blank line.
    let mut broken: Vec<String> = std::iter::once(String::new())
        .chain(lines.iter().map(|l| (*l).to_string()))
        .collect();
    broken[41] = broken[41].replace("\"client\"", "\"clinet\"");
    broken[200] = "{not json".to_string();
    let bad = write(&dir, "bad.jsonl", &(broken.join("\n") + "\n"));
    let whole = read_file(&model, &bad).expect_err("malformed").to_string();
    let streamed = match spill::read(&model, &bad) {
        Err(error) => error.to_string(),
        Ok(_) => panic!("a malformed line is an error"),
    };
    assert_eq!(streamed, whole);
    assert!(
        streamed.starts_with(&format!("{}:42: ", bad.display())),
        "{streamed}"
    );

    // An unreadable file is reported as such, before any malformed line, as when it is read
    // whole.
    let mut bytes = broken.join("\n").into_bytes();
    bytes.extend_from_slice(b"\n\xff\xfe\n");
    let invalid = dir.join("invalid.jsonl");
    std::fs::write(&invalid, bytes).expect("writes");
    let whole = read_file(&model, &invalid)
        .expect_err("invalid")
        .to_string();
    let streamed = spill::read(&model, &invalid).err().expect("invalid");
    assert_eq!(streamed.to_string(), whole);
    std::fs::remove_dir_all(&dir).expect("cleans up");
}

#[test]
fn a_model_that_partitions_whole_histories_is_read_into_memory() {
    let dir = scratch("register");
    let g = generate::register(&shape(300, 1, 0.05, None)).expect("shape");
    let path = write(&dir, "r.jsonl", &to_jsonl(&RegisterModel, &g.history));
    match spill::read(&RegisterModel, &path).expect("reads") {
        Loaded::Whole(history) => assert_eq!(history, g.history),
        Loaded::Spilled(_) => panic!("the register cannot be split while reading"),
    }
    std::fs::remove_dir_all(&dir).expect("cleans up");
}

/// `lincheck check` with `TMPDIR` set to `tmp`: exit code and stdout, with times masked.
fn lincheck(tmp: &Path, args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_lincheck"))
        .env("TMPDIR", tmp)
        .args(args)
        .output()
        .expect("runs");
    let out = String::from_utf8_lossy(&output.stdout);
    let masked: Vec<String> = out
        .lines()
        .map(|line| match line.rsplit_once(" configurations, ") {
            Some((head, _)) => format!("{head} configurations, (time))"),
            None => line.to_string(),
        })
        .collect();
    (output.status.code().expect("exits"), masked.join("\n"))
}

#[test]
fn the_cli_prints_the_same_with_and_without_spilling_and_leaves_no_file() {
    let dir = scratch("cli");
    let tmp = dir.join("tmp");
    std::fs::create_dir(&tmp).expect("tmp");
    let model = KvModel::new();
    let ok = generate::kv(&shape(3000, 40, 0.05, None)).expect("shape");
    let ok = write(&dir, "ok.jsonl", &to_jsonl(&model, &ok.history));
    let bad = generate::kv(&shape(3000, 40, 0.05, Some(Violation::StaleRead))).expect("shape");
    let bad = write(&dir, "bad.jsonl", &to_jsonl(&model, &bad.history));
    let (ok, bad) = (ok.display().to_string(), bad.display().to_string());
    let html = |name: &str| dir.join(name).display().to_string();
    let (html_spilled, html_whole) = (html("spilled.html"), html("whole.html"));
    let (code, spilled) = lincheck(
        &tmp,
        &["check", "--model", "kv", "--html", &html_spilled, &ok, &bad],
    );
    let (whole_code, whole) = lincheck(
        &tmp,
        &[
            "check",
            "--model",
            "kv",
            "--in-memory",
            "--html",
            &html_whole,
            &ok,
            &bad,
        ],
    );
    assert_eq!((code, whole_code), (1, 1), "{spilled}");
    assert_eq!(
        spilled.replace(&html_spilled, "(page)"),
        whole.replace(&html_whole, "(page)")
    );
    assert!(spilled.contains("these "), "an explanation: {spilled}");
    let page = std::fs::read(&html_spilled).expect("page");
    assert!(
        page == std::fs::read(&html_whole).expect("page"),
        "pages differ"
    );
    assert!(std::fs::read_dir(&tmp).expect("tmp").next().is_none());

    // A malformed line after many good ones: reported with its line number, and the spill
    // directory made before it was found is removed.
    let mut text = std::fs::read_to_string(&ok).expect("reads");
    text.push_str("{\"id\": 3000}\n");
    let broken = write(&dir, "broken.jsonl", &text);
    let output = Command::new(env!("CARGO_BIN_EXE_lincheck"))
        .env("TMPDIR", &tmp)
        .args(["check", "--model", "kv"])
        .arg(&broken)
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{}:3001: ", broken.display())),
        "{stderr}"
    );
    assert!(std::fs::read_dir(&tmp).expect("tmp").next().is_none());
    std::fs::remove_dir_all(&dir).expect("cleans up");
}
