//! Exit codes and output of the `lincheck` binary.

mod common;

use std::path::PathBuf;
use std::process::Command;

use linearizability::jsonl::to_jsonl;
use linearizability::models::RegisterModel;

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

fn corpus(file: &str) -> String {
    common::corpus_dir()
        .join("jsonl")
        .join(file)
        .display()
        .to_string()
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
    let (code, out, _) = lincheck(&[
        "check",
        "--model",
        "kv",
        &corpus("kv/c10-ok.jsonl"),
        &corpus("kv/c01-ok.jsonl"),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("c10-ok.jsonl: linearizable"), "{out}");
    assert!(out.contains("  key \"0\": linearizable"), "{out}");
}

#[test]
fn illegal_file_exits_one_and_explains() {
    let (code, out, _) = lincheck(&[
        "check",
        "--model",
        "register",
        &corpus("jepsen/etcd_002.jsonl"),
        &corpus("jepsen/etcd_000.jsonl"),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("etcd_000.jsonl: NOT linearizable"), "{out}");
    assert!(out.contains("operations conflict"), "{out}");
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
        &corpus("jepsen/etcd_000.jsonl"),
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code, 3, "{out}");
    assert!(err.contains("bad.jsonl:1: "), "{err}");
    let (code, _, _) = lincheck(&["check", "--model", "kv", "/nonexistent.jsonl"]);
    assert_eq!(code, 3);
    let (code, _, _) = lincheck(&[
        "check",
        "--model",
        "nosuchmodel",
        &corpus("kv/c01-ok.jsonl"),
    ]);
    assert_eq!(code, 3);
    let (code, _, _) = lincheck(&["check", "--model", "kv"]);
    assert_eq!(code, 3);
    // The kv model on a register file is bad input too.
    let (code, _, err) = lincheck(&["check", "--model", "kv", &corpus("jepsen/etcd_000.jsonl")]);
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
        &corpus("kv/c01-bad.jsonl"),
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
