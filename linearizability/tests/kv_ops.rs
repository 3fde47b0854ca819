//! The key-value model's delete, exists and compare-and-set, and the difference between an
//! absent key and one holding `""`: for each operation a linearizable history and one that is
//! not, checked both by the search and through the JSON Lines round trip.

mod common;

use std::path::Path;

use common::*;
use linearizability::jsonl::{parse, to_jsonl};
use linearizability::models::{KvModel, KvOutput};
use linearizability::{check, CheckResult};

fn verdict(history: &[KvOp]) -> &'static str {
    let model = KvModel::new();
    // Every history also survives the file format unchanged.
    let text = to_jsonl(&model, history);
    let parsed = parse(&model, &text, Path::new("x")).expect("parses");
    assert_eq!(parsed, history, "round trip of {text}");
    match check(&model, history, None) {
        CheckResult::Ok => "ok",
        CheckResult::Illegal(_) => "illegal",
        CheckResult::Unknown => "unknown",
    }
}

const DONE: KvOutput = KvOutput::Done;

#[test]
fn delete_removes_the_key_and_reports_presence() {
    let legal = [
        op(0, 0, 1, put("k", "a"), DONE),
        op(0, 2, 3, delete("k"), KvOutput::Deleted { existed: true }),
        op(1, 4, 5, get("k"), KvOutput::Absent),
        op(1, 6, 7, delete("k"), KvOutput::Deleted { existed: false }),
    ];
    assert_eq!(verdict(&legal), "ok");
    // A delete of a key that was written before it began cannot find it absent.
    let missed = [
        op(0, 0, 1, put("k", "a"), DONE),
        op(1, 2, 3, delete("k"), KvOutput::Deleted { existed: false }),
    ];
    assert_eq!(verdict(&missed), "illegal");
    // After a completed delete the old value is gone.
    let resurrected = [
        op(0, 0, 1, put("k", "a"), DONE),
        op(0, 2, 3, delete("k"), KvOutput::Deleted { existed: true }),
        op(1, 4, 5, get("k"), value("a")),
    ];
    assert_eq!(verdict(&resurrected), "illegal");
    // A delete whose outcome is unknown may or may not have happened.
    let maybe = [
        op(0, 0, 1, put("k", "a"), DONE),
        closed_unknown(0, 2, 3, delete("k")),
        op(1, 4, 5, get("k"), KvOutput::Absent),
        op(1, 6, 7, exists("k"), KvOutput::Exists(false)),
    ];
    assert_eq!(verdict(&maybe), "ok");
}

#[test]
fn exists_tells_absent_from_empty() {
    let legal = [
        op(0, 0, 1, exists("k"), KvOutput::Exists(false)),
        op(0, 2, 3, put("k", ""), DONE),
        op(1, 4, 5, exists("k"), KvOutput::Exists(true)),
        op(1, 6, 7, get("k"), value("")),
    ];
    assert_eq!(verdict(&legal), "ok");
    let empty_is_present = [
        op(0, 0, 1, append("k", ""), DONE),
        op(1, 2, 3, exists("k"), KvOutput::Exists(false)),
    ];
    assert_eq!(verdict(&empty_is_present), "illegal");
    let nothing_written = [op(0, 0, 1, exists("k"), KvOutput::Exists(true))];
    assert_eq!(verdict(&nothing_written), "illegal");
    // Concurrent with the put, either answer is fine.
    let concurrent = [
        op(0, 0, 10, put("k", "a"), DONE),
        op(1, 1, 2, exists("k"), KvOutput::Exists(true)),
        op(2, 3, 4, exists("k"), KvOutput::Exists(true)),
    ];
    assert_eq!(verdict(&concurrent), "ok");
    let flip_flop = [
        op(0, 0, 10, put("k", "a"), DONE),
        op(1, 1, 2, exists("k"), KvOutput::Exists(true)),
        op(2, 3, 4, exists("k"), KvOutput::Exists(false)),
    ];
    assert_eq!(verdict(&flip_flop), "illegal");
}

#[test]
fn get_tells_absent_from_a_value_but_empty_reads_absent_too() {
    assert_eq!(verdict(&[op(0, 0, 1, get("k"), KvOutput::Absent)]), "ok");
    // Porcupine-style stores read a missing key as "".
    assert_eq!(verdict(&[op(0, 0, 1, get("k"), value(""))]), "ok");
    let present = [
        op(0, 0, 1, put("k", ""), DONE),
        op(1, 2, 3, get("k"), KvOutput::Absent),
    ];
    assert_eq!(verdict(&present), "illegal");
}

#[test]
fn cas_swaps_only_on_the_expected_value() {
    let legal = [
        op(0, 0, 1, kv_cas("k", None, "a"), cas_out(true, None)),
        op(
            0,
            2,
            3,
            kv_cas("k", Some("x"), "b"),
            cas_out(false, Some("a")),
        ),
        op(
            1,
            4,
            5,
            kv_cas("k", Some("a"), "c"),
            cas_out(true, Some("a")),
        ),
        op(1, 6, 7, get("k"), value("c")),
        op(1, 8, 9, append("k", "d"), DONE),
        op(
            0,
            10,
            11,
            kv_cas("k", Some("cd"), "e"),
            cas_out(true, Some("cd")),
        ),
    ];
    assert_eq!(verdict(&legal), "ok");
    // Expecting absence does not match an empty value.
    let empty_is_not_absent = [
        op(0, 0, 1, put("k", ""), DONE),
        op(1, 2, 3, kv_cas("k", None, "a"), cas_out(true, None)),
    ];
    assert_eq!(verdict(&empty_is_not_absent), "illegal");
    // Two swaps from the same value cannot both succeed.
    let double = [
        op(0, 0, 1, put("k", "a"), DONE),
        op(
            1,
            2,
            6,
            kv_cas("k", Some("a"), "b"),
            cas_out(true, Some("a")),
        ),
        op(
            2,
            2,
            6,
            kv_cas("k", Some("a"), "c"),
            cas_out(true, Some("a")),
        ),
    ];
    assert_eq!(verdict(&double), "illegal");
    // A failed swap must report the value it found.
    let wrong_previous = [
        op(0, 0, 1, put("k", "a"), DONE),
        op(
            1,
            2,
            3,
            kv_cas("k", Some("x"), "b"),
            cas_out(false, Some("z")),
        ),
    ];
    assert_eq!(verdict(&wrong_previous), "illegal");
    // A swap that should have matched cannot report failure.
    let spurious_failure = [
        op(0, 0, 1, put("k", "a"), DONE),
        op(
            1,
            2,
            3,
            kv_cas("k", Some("a"), "b"),
            cas_out(false, Some("a")),
        ),
    ];
    assert_eq!(verdict(&spurious_failure), "illegal");
}

#[test]
fn a_cas_with_unknown_outcome_swaps_only_if_it_matched() {
    // The appended value is never read, but the compare names it, so it stays observable.
    let matched = [
        op(0, 0, 1, put("k", "a"), DONE),
        op(0, 2, 3, append("k", "b"), DONE),
        closed_unknown(1, 4, 5, kv_cas("k", Some("ab"), "z")),
        op(2, 6, 7, get("k"), value("z")),
    ];
    assert_eq!(verdict(&matched), "ok");
    let unmatched = [
        op(0, 0, 1, put("k", "a"), DONE),
        op(0, 2, 3, append("k", "c"), DONE),
        closed_unknown(1, 4, 5, kv_cas("k", Some("ab"), "z")),
        op(2, 6, 7, get("k"), value("z")),
    ];
    assert_eq!(verdict(&unmatched), "illegal");
    let never_returned = [
        op(0, 0, 1, put("k", "a"), DONE),
        open(1, 2, kv_cas("k", Some("a"), "z")),
        op(2, 3, 4, get("k"), value("a")),
        op(2, 5, 6, get("k"), value("z")),
    ];
    assert_eq!(verdict(&never_returned), "ok");
}

#[test]
fn malformed_new_operations_are_refused_with_the_line() {
    let model = KvModel::new();
    let line = |op: &str, value: &str, output: &str| {
        format!(
            concat!(
                r#"{{"id":0,"client":0,"call":1,"return":2,"op":"{op}","key":"k","#,
                r#""value":{value},"output":{output},"status":"ok"}}"#
            ),
            op = op,
            value = value,
            output = output,
        )
    };
    for (op, value, output, expected) in [
        ("cas", r#""a""#, "null", "cas value: expected an object"),
        ("cas", r#"{"expected":"a"}"#, "null", "missing \"new\""),
        ("cas", r#"{"new":"a","x":1}"#, "null", "unknown field \"x\""),
        (
            "cas",
            r#"{"new":"a"}"#,
            "true",
            "cas output: expected an object",
        ),
        (
            "cas",
            r#"{"new":"a"}"#,
            r#"{"previous":"a"}"#,
            "missing \"swapped\"",
        ),
        (
            "delete",
            "null",
            r#""yes""#,
            "delete output: expected true or false",
        ),
        ("exists", r#""k""#, "true", "exists value: expected null"),
        ("remove", "null", "null", "unknown kv operation"),
    ] {
        let error = parse(&model, &line(op, value, output), Path::new("h.jsonl"))
            .expect_err(expected)
            .to_string();
        assert!(error.starts_with("h.jsonl:1: "), "{error}");
        assert!(error.contains(expected), "{error} should say {expected}");
    }
}
