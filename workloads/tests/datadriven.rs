//! Replays the table in `testdata/kv_apply.txt` against a `KvStateMachine`.
//!
//! Goal: the behaviour of every command, of duplicates, stale copies, garbage and restarts is
//! written down as readable cases that double as documentation. Method: each `> ...` line is
//! committed at the next log index; its outcome, rendered as text, must equal the line below.
//! Every mismatch is reported with its line number.

mod common;

use raft_core::{LogIndex, StateMachine};
use workloads::{ApplyOutcome, ClientId, Envelope, KvCommand, KvReply, KvStateMachine, Seq};

fn token(text: &str) -> String {
    if text == "''" {
        String::new()
    } else {
        text.to_string()
    }
}

fn optional(text: &str) -> Option<String> {
    (text != "-").then(|| token(text))
}

fn render_optional(value: &Option<String>) -> String {
    match value {
        None => "-".to_string(),
        Some(value) if value.is_empty() => "''".to_string(),
        Some(value) => value.clone(),
    }
}

fn parse_command(words: &[&str]) -> Result<KvCommand, String> {
    let key = || words.get(1).map(|key| token(key)).ok_or("missing key");
    let arg = |i: usize| words.get(i).copied().ok_or(format!("missing argument {i}"));
    Ok(match words.first().copied() {
        Some("put") => KvCommand::Put {
            key: key()?,
            value: token(arg(2)?),
        },
        Some("append") => KvCommand::Append {
            key: key()?,
            value: token(arg(2)?),
        },
        Some("get") => KvCommand::Get { key: key()? },
        Some("delete") => KvCommand::Delete { key: key()? },
        Some("exists") => KvCommand::Exists { key: key()? },
        Some("cas") => KvCommand::CompareAndSet {
            key: key()?,
            expected: optional(arg(2)?),
            new: token(arg(3)?),
        },
        other => return Err(format!("unknown operation {other:?}")),
    })
}

fn parse_request(line: &str) -> Result<Vec<u8>, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let (client, seq) = words
        .first()
        .and_then(|id| id.split_once(':'))
        .ok_or("expected CLIENT:SEQ")?;
    let client = ClientId(client.parse().map_err(|e| format!("client: {e}"))?);
    let seq = Seq(seq.parse().map_err(|e| format!("seq: {e}"))?);
    let command = parse_command(&words[1..])?;
    Envelope {
        client,
        seq,
        command,
    }
    .encode()
    .map_err(|e| e.to_string())
}

fn render_reply(reply: &KvReply) -> String {
    match reply {
        KvReply::Done => "done".to_string(),
        KvReply::Value(value) => format!("value {}", render_optional(value)),
        KvReply::Deleted { existed } => format!("deleted {existed}"),
        KvReply::Exists(exists) => format!("exists {exists}"),
        KvReply::CompareAndSet { swapped, previous } => {
            format!(
                "cas swapped={swapped} previous={}",
                render_optional(previous)
            )
        }
        KvReply::ValueTooLarge { len } => format!("too-large len={len}"),
    }
}

fn render(outcome: &ApplyOutcome<KvReply>) -> String {
    match outcome {
        ApplyOutcome::Applied(reply) => format!("applied {}", render_reply(reply)),
        ApplyOutcome::Duplicate(reply) => format!("duplicate {}", render_reply(reply)),
        ApplyOutcome::Stale { last } => format!("stale last={}", last.0),
        ApplyOutcome::Malformed(_) => "malformed".to_string(),
    }
}

/// Runs one file; returns the mismatches (line number, expected, got).
fn run(text: &str) -> Vec<String> {
    let mut replica = KvStateMachine::new(Default::default());
    let mut index = LogIndex(0);
    common::run_table(text, |request| {
        if request == "restart" {
            let mut restarted = KvStateMachine::new(Default::default());
            restarted
                .restore(&replica.snapshot())
                .expect("own snapshot restores");
            replica = restarted;
            return Ok(None);
        }
        let bytes = if request == "garbage" {
            vec![0xFF; 7]
        } else {
            parse_request(request)?
        };
        index = index.next();
        let outcome = ApplyOutcome::decode(&replica.apply(index, &bytes)).expect("decodes");
        Ok(Some(render(&outcome)))
    })
}

#[test]
fn kv_apply_table() {
    let text = include_str!("../testdata/kv_apply.txt");
    common::assert_table_passes(text, &run(text), 30);
}

#[test]
fn a_wrong_expectation_is_reported() {
    let failures = run("> 1:1 put a x\napplied value x\n> 1:2 frobnicate a\n");
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(failures[0].starts_with("line 1:"), "{failures:?}");
    assert!(failures[1].contains("unknown operation"), "{failures:?}");
}
