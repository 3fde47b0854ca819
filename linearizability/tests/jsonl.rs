//! Reading and writing the JSON Lines format.

mod common;

use std::path::Path;

use common::*;
use linearizability::jsonl::{parse, read_file, to_jsonl};
use linearizability::models::{KvModel, KvOutput, RegisterInput, RegisterModel, RegisterOutput};
use linearizability::{ClientId, HistoryError, Outcome, Recorder, Timestamp};

fn error_of(model_is_kv: bool, text: &str) -> (usize, String) {
    let file = Path::new("history.jsonl");
    let result = if model_is_kv {
        parse(&KvModel::new(), text, file).map(|_| ())
    } else {
        parse(&RegisterModel, text, file).map(|_| ())
    };
    match result {
        Err(HistoryError::Line {
            file: f,
            line,
            message,
        }) => {
            assert_eq!(f, file);
            let shown = HistoryError::Line {
                file: f,
                line,
                message: message.clone(),
            }
            .to_string();
            assert!(
                shown.starts_with(&format!("history.jsonl:{line}: ")),
                "{shown}"
            );
            (line, message)
        }
        other => panic!("expected a line error, got {other:?}"),
    }
}

/// One JSONL line with client 0 (fields given as raw JSON).
#[allow(clippy::too_many_arguments)]
fn rec(
    id: u64,
    call: u64,
    ret: &str,
    op: &str,
    key: &str,
    value: &str,
    output: &str,
    status: &str,
) -> String {
    format!(
        concat!(
            r#"{{"id":{id},"client":0,"call":{call},"return":{ret},"op":"{op}","#,
            r#""key":{key},"value":{value},"output":{output},"status":"{status}"}}"#
        ),
        id = id,
        call = call,
        ret = ret,
        op = op,
        key = key,
        value = value,
        output = output,
        status = status
    )
}

#[test]
fn malformed_lines_name_file_and_line() {
    let cases = [
        ("not json".to_string(), "expected"),
        (
            rec(1, 8, "9", "read", "null", "null", r#""x""#, "ok"),
            "integer",
        ),
        (
            rec(1, 8, "9", "fly", "null", "null", "null", "ok"),
            "unknown register operation",
        ),
        (
            rec(1, 8, "9", "cas", "null", r#"[1]"#, r#"true"#, "ok"),
            "[from, to]",
        ),
        (
            rec(1, 8, "2", "read", "null", "null", "null", "ok"),
            "before call",
        ),
        (
            rec(1, 8, "null", "read", "null", "null", "null", "ok"),
            "null",
        ),
        (
            rec(5, 8, "9", "read", "null", "null", "null", "ok"),
            "out of sequence",
        ),
        (
            rec(1, 8, "9", "read", "null", "null", "null", "maybe"),
            "unknown variant",
        ),
        (
            rec(1, 8, "9", "read", r#""k""#, "null", "null", "ok"),
            "no keys",
        ),
        (
            rec(1, 8, "9", "read", "null", "null", "null", "ok").replace(r#""op":"read","#, ""),
            "missing field",
        ),
    ];
    for (line, needle) in cases {
        let good = rec(0, 1, "7", "write", "null", "3", "null", "ok");
        let text = format!("{good}\n\n{line}\n");
        let (number, message) = error_of(false, &text);
        assert_eq!(number, 3, "{line}");
        assert!(message.contains(needle), "{line}: {message}");
    }
    let kv_cases = [
        (
            rec(0, 1, "2", "get", "null", "null", r#""""#, "ok"),
            "string key",
        ),
        (
            rec(0, 1, "2", "put", r#""k""#, r#"3"#, "null", "ok"),
            "string",
        ),
        (
            rec(0, 1, "2", "append", r#""k""#, r#""v""#, r#""x""#, "ok"),
            "expected null",
        ),
    ];
    for (line, needle) in kv_cases {
        let (number, message) = error_of(true, &line);
        assert_eq!(number, 1);
        assert!(message.contains(needle), "{line}: {message}");
    }
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let error = read_file(&RegisterModel, Path::new("/nonexistent/h.jsonl")).unwrap_err();
    assert!(matches!(error, HistoryError::Io { .. }));
    assert!(error.to_string().starts_with("/nonexistent/h.jsonl: "));
}

#[test]
fn unknown_status_ignores_the_output() {
    let text = rec(0, 1, "2", "read", "null", "null", r#""garbage""#, "unknown");
    let history = parse(&RegisterModel, &text, Path::new("x")).expect("parses");
    assert_eq!(history[0].outcome, Outcome::Unknown);
    assert_eq!(history[0].return_time, Some(Timestamp(2)));
}

#[test]
fn recorder_histories_round_trip_through_jsonl() {
    let mut recorder = Recorder::new();
    let a = recorder
        .call(ClientId(3), Timestamp(1), RegisterInput::Write(4))
        .unwrap();
    let b = recorder.call(ClientId(4), Timestamp(2), cas(4, 5)).unwrap();
    recorder.ok(a, Timestamp(3), RegisterOutput::Write).unwrap();
    recorder
        .ok(b, Timestamp(4), RegisterOutput::Cas(true))
        .unwrap();
    let c = recorder
        .call(ClientId(3), Timestamp(5), RegisterInput::Read)
        .unwrap();
    recorder
        .ok(c, Timestamp(6), RegisterOutput::Read(None))
        .unwrap();
    let d = recorder
        .call(ClientId(3), Timestamp(7), RegisterInput::Read)
        .unwrap();
    recorder.unknown(d, Timestamp(8)).unwrap();
    recorder
        .call(ClientId(5), Timestamp(9), RegisterInput::Write(1))
        .unwrap();
    let text = recorder.to_jsonl(&RegisterModel);
    let history = recorder.finish();
    assert_eq!(text, to_jsonl(&RegisterModel, &history));
    assert_eq!(text.lines().count(), 5);
    assert!(text.lines().last().unwrap().contains(r#""return":null"#));
    let parsed = parse(&RegisterModel, &text, Path::new("x")).expect("parses");
    assert_eq!(parsed, history);

    let kv = vec![
        op(0, 1, 2, append("k", "a"), KvOutput::Done),
        op(1, 1, 3, get("k"), value("a")),
        open(2, 4, put("j", "b")),
    ];
    let text = to_jsonl(&KvModel::new(), &kv);
    assert_eq!(
        parse(&KvModel::new(), &text, Path::new("x")).expect("parses"),
        kv
    );
}
