//! Exit codes and output of the `lincheck` binary.

mod common;

use std::path::PathBuf;
use std::process::Command;

use linearizability::generate::{self, Shape};
use linearizability::jsonl::to_jsonl;
use linearizability::models::{KvModel, RegisterModel};

fn lincheck(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_lincheck"))
        .args(args)
        .output()
        .expect("runs");
    let code = output.status.code().expect("exited normally");
    (
        code,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A small history kept in the test directory.
fn data(file: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(file)
        .display()
        .to_string()
}

/// A generated history written to a temp file.
fn generated(name: &str, model: &str, shape: &Shape) -> String {
    let text = match model {
        "kv" => to_jsonl(
            &KvModel::new(),
            &generate::kv(shape).expect("shape").history,
        ),
        _ => to_jsonl(
            &RegisterModel,
            &generate::register(shape).expect("shape").history,
        ),
    };
    temp_file(name, &text).display().to_string()
}

fn shape(keys: usize, clients: usize, violation: bool) -> Shape {
    Shape {
        ops: 400,
        keys,
        clients,
        pending: 0.05,
        violation,
        kind: generate::Violation::StaleRead,
        seed: 3,
    }
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lincheck-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writes");
    path
}

#[test]
fn linearizable_files_exit_zero() {
    let many = generated("kv-ok.jsonl", "kv", &shape(4, 10, false));
    let (code, out, _) = lincheck(&["check", "--model", "kv", &many, &data("kv-ok.jsonl")]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("kv-ok.jsonl: linearizable (400 operations"),
        "{out}"
    );
    assert!(out.contains("  key \"0\": linearizable"), "{out}");
    assert!(out.contains("  key \"b\": linearizable"), "{out}");
    let (code, out, _) = lincheck(&["check", "--model", "register", &data("register-ok.jsonl")]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn illegal_file_exits_one_and_explains() {
    let ok = generated("register-ok.jsonl", "register", &shape(1, 5, false));
    let bad = generated("register-bad.jsonl", "register", &shape(1, 5, true));
    let (code, out, _) = lincheck(&["check", "--model", "register", &ok, &bad]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("register-bad.jsonl: NOT linearizable"),
        "{out}"
    );
    assert!(out.contains("register-ok.jsonl: linearizable"), "{out}");
    assert!(out.contains("operations conflict"), "{out}");
    // The stale read in the test directory: exactly the two writes and the read conflict.
    let (code, out, _) = lincheck(&[
        "check",
        "--model",
        "register",
        &data("register-stale.jsonl"),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("these 3 operations conflict"), "{out}");
    assert!(out.contains("#4 client 1 [6, 8] read() -> 1"), "{out}");
    let (code, out, _) = lincheck(&["check", "--model", "kv", &data("kv-bad.jsonl")]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("key \"a\": NOT linearizable"), "{out}");
    assert!(out.contains("key \"b\": linearizable"), "{out}");
}

#[test]
fn generate_writes_a_checkable_history() {
    let dir = std::env::temp_dir().join(format!("lincheck-gen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (model, violation, expected) in [
        ("kv", false, 0),
        ("kv", true, 1),
        ("register", false, 0),
        ("register", true, 1),
    ] {
        let mut args = vec![
            "generate",
            "--model",
            model,
            "--ops",
            "300",
            "--keys",
            "3",
            "--clients",
            "8",
            "--pending",
            "0.05",
        ];
        if violation {
            args.push("--violation");
        }
        let (code, text, err) = lincheck(&args);
        assert_eq!(code, 0, "{err}");
        assert_eq!(text.lines().count(), 300);
        let path = dir.join(format!("{model}-{violation}.jsonl"));
        std::fs::write(&path, text).expect("writes");
        let (code, out, _) = lincheck(&["check", "--model", model, path.to_str().unwrap()]);
        assert_eq!(code, expected, "{model} violation={violation}: {out}");
    }
    let (code, _, err) = lincheck(&["generate", "--model", "kv", "--ops", "0"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("ops must be at least 1"), "{err}");
    let (code, _, _) = lincheck(&["generate", "--model", "kv", "--pending", "2"]);
    assert_eq!(code, 3);
}

#[test]
fn timeout_exits_two() {
    let history = common::exploding_register_history(60);
    let path = temp_file("exploding.jsonl", &to_jsonl(&RegisterModel, &history));
    let (code, out, _) = lincheck(&[
        "check",
        "--model",
        "register",
        "--timeout",
        "0.3",
        path.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("unknown"), "{out}");
}

#[test]
fn bad_input_exits_three_and_wins() {
    let bad = temp_file("bad.jsonl", "{\"id\":0}\n");
    let (code, out, err) = lincheck(&[
        "check",
        "--model",
        "register",
        &data("register-stale.jsonl"),
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code, 3, "{out}");
    assert!(err.contains("bad.jsonl:1: "), "{err}");
    let (code, _, _) = lincheck(&["check", "--model", "kv", "/nonexistent.jsonl"]);
    assert_eq!(code, 3);
    let (code, _, _) = lincheck(&["check", "--model", "nosuchmodel", &data("kv-ok.jsonl")]);
    assert_eq!(code, 3);
    let (code, _, _) = lincheck(&["check", "--model", "kv"]);
    assert_eq!(code, 3);
    // The kv model on a register file is bad input too.
    let (code, _, err) = lincheck(&["check", "--model", "kv", &data("register-stale.jsonl")]);
    assert_eq!(code, 3, "{err}");
}

#[test]
fn html_report_is_self_contained() {
    let html = std::env::temp_dir().join(format!("lincheck-test-{}.html", std::process::id()));
    let (code, _, _) = lincheck(&[
        "check",
        "--model",
        "kv",
        "--no-explain",
        "--html",
        html.to_str().unwrap(),
        &data("kv-bad.jsonl"),
    ]);
    assert_eq!(code, 1);
    let page = std::fs::read_to_string(&html).expect("written");
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("NOT linearizable"));
    assert!(page.contains("first operation that cannot be linearized"));
    assert!(page.contains("<svg"));
    for forbidden in ["http://", "https://", "<script src", "<link"] {
        let outside_svg_namespace = page.replace("http://www.w3.org/2000/svg", "");
        assert!(
            !outside_svg_namespace.contains(forbidden),
            "page references {forbidden}"
        );
    }
    let _ = std::fs::remove_file(html);
}
