//! Replays `testdata/shardkv.txt`: two replica groups and a controller, driven by hand.
//!
//! Goal: the shard lifecycle of the sharded kv service (install, pull, serve, delete,
//! confirm), wrong-group answers, sessions that move with shards and refused or repeated
//! reconfiguration commands are written down as readable cases. Method: each `> ...` line is
//! one step; its result, rendered as text, must equal the line below. Every mismatch is
//! reported with its line number.

mod common;

use raft_core::NodeId;
use std::collections::BTreeMap;
use workloads::rsm::App;
use workloads::shardctrler::{key_to_shard, ConfigNum, CtrlerCommand, Gid, ShardCtrler, ShardId};
use workloads::shardkv::{ShardBugs, ShardKv, ShardKvCommand, ShardKvReply, ShardState};
use workloads::{ApplyOutcome, ClientId, Envelope, KvCommand, KvReply, Seq};

struct Table {
    ctrler: ShardCtrler,
    groups: BTreeMap<Gid, ShardKv>,
}

fn number<T: std::str::FromStr>(text: Option<&&str>) -> Result<T, String> {
    let text = text.ok_or("missing argument")?;
    text.parse().map_err(|_| format!("not a number: {text:?}"))
}

fn render_reply(reply: &ShardKvReply) -> String {
    let kv = |reply: &KvReply| match reply {
        KvReply::Done => "done".to_string(),
        KvReply::Value(value) => format!("value {}", value.as_deref().unwrap_or("-")),
        other => format!("{other:?}"),
    };
    match reply {
        ShardKvReply::Kv(ApplyOutcome::Applied(reply)) => format!("applied {}", kv(reply)),
        ShardKvReply::Kv(ApplyOutcome::Duplicate(reply)) => format!("duplicate {}", kv(reply)),
        ShardKvReply::Kv(ApplyOutcome::Stale { last }) => format!("stale last={}", last.0),
        ShardKvReply::Kv(ApplyOutcome::Malformed(_)) => "malformed".to_string(),
        ShardKvReply::WrongGroup { shard, num } => format!("wrong-group {shard} at {num}"),
        ShardKvReply::Installed(num) => format!("installed {num}"),
        ShardKvReply::Inserted { num, shard } => format!("inserted {shard} at {num}"),
        ShardKvReply::Deleted { num, shard } => format!("deleted {shard} at {num}"),
        ShardKvReply::Confirmed { num, shard } => format!("confirmed {shard} at {num}"),
        ShardKvReply::Ignored(reason) => format!("ignored: {reason}"),
        ShardKvReply::Malformed(_) => "malformed".to_string(),
    }
}

fn render_states(group: &ShardKv) -> String {
    let letter = |state| match state {
        ShardState::Absent => '.',
        ShardState::Serving => 'S',
        ShardState::Pulling => 'P',
        ShardState::Offering => 'O',
        ShardState::GcPending => 'G',
    };
    let states: String = ShardId::all()
        .map(|s| letter(group.state(s).unwrap()))
        .collect();
    format!(
        "config {} shards {states} items {}",
        group.config().num,
        group.stored_items()
    )
}

fn client_command(words: &[&str]) -> Result<ShardKvCommand, String> {
    let (client, seq) = words
        .first()
        .and_then(|w| w.split_once(':'))
        .ok_or("CLIENT:SEQ")?;
    let key = words.get(2).ok_or("missing key")?.to_string();
    let value = || words.get(3).map(|v| v.to_string()).ok_or("missing value");
    let command = match words.get(1).copied() {
        Some("put") => KvCommand::Put {
            key,
            value: value()?,
        },
        Some("append") => KvCommand::Append {
            key,
            value: value()?,
        },
        Some("get") => KvCommand::Get { key },
        other => return Err(format!("unknown operation {other:?}")),
    };
    let client = ClientId(number(Some(&client))?);
    let seq = Seq(number(Some(&seq))?);
    Ok(ShardKvCommand::Client(Envelope {
        client,
        seq,
        command,
    }))
}

impl Table {
    fn controller(&mut self, words: &[&str]) -> Result<String, String> {
        let gids: Vec<Gid> = words[1..]
            .iter()
            .map(|w| number(Some(w)).map(Gid))
            .collect::<Result<_, _>>()?;
        let command = match words.first().copied() {
            Some("join") => CtrlerCommand::Join {
                groups: gids
                    .iter()
                    .map(|&g| (g, vec![NodeId(u64::from(g.0))]))
                    .collect(),
            },
            Some("leave") => CtrlerCommand::Leave { gids },
            other => return Err(format!("unknown controller command {other:?}")),
        };
        let created = self.ctrler.execute(command).map_err(|e| e.to_string())?;
        for gid in self.ctrler.latest().groups.keys() {
            self.groups
                .entry(*gid)
                .or_insert_with(|| ShardKv::new(*gid, ShardBugs::default()));
        }
        Ok(format!("{created:?}"))
    }

    fn group_step(&mut self, gid: Gid, words: &[&str]) -> Result<String, String> {
        let group = self.groups.get(&gid).ok_or(format!("no group {}", gid.0))?;
        let shard = || number(words.get(1)).map(ShardId);
        let command = match words.first().copied() {
            Some("states") => return Ok(render_states(group)),
            Some("install") => {
                let next = group.config().num.next();
                ShardKvCommand::InstallConfig(self.ctrler.query(Some(next)).clone())
            }
            Some("pull") => {
                let shard = shard()?;
                let peer = group.previous_config().owner(shard);
                let peer = self.groups.get(&peer).ok_or("no previous owner")?;
                match peer.transfer(group.config().num, shard) {
                    Ok(transfer) => ShardKvCommand::InsertShard(transfer),
                    Err(error) => return Ok(format!("transfer refused: {error}")),
                }
            }
            Some("delete") => {
                let num = match words.get(2) {
                    Some(_) => ConfigNum(number(words.get(2))?),
                    None => group.config().num,
                };
                ShardKvCommand::DeleteShard {
                    num,
                    shard: shard()?,
                }
            }
            Some("confirm") => ShardKvCommand::ConfirmGc {
                num: group.config().num,
                shard: shard()?,
            },
            Some("restart") => {
                let mut fresh = ShardKv::new(gid, ShardBugs::default());
                fresh.restore(&group.snapshot())?;
                self.groups.insert(gid, fresh);
                return Ok("restarted".to_string());
            }
            _ => client_command(words)?,
        };
        let group = self.groups.get_mut(&gid).expect("checked above");
        Ok(render_reply(&group.execute(command)))
    }

    fn step(&mut self, line: &str) -> Result<String, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.first().copied() {
            Some("ctrl") => self.controller(&words[1..]),
            Some("shard") => Ok(key_to_shard(words.get(1).ok_or("missing key")?).to_string()),
            Some(group) if group.starts_with('g') => {
                let gid = Gid(number(Some(&&group[1..]))?);
                self.group_step(gid, &words[1..])
            }
            other => Err(format!("unknown step {other:?}")),
        }
    }
}

/// Runs one table; returns the mismatches.
fn run(text: &str) -> Vec<String> {
    let mut table = Table {
        ctrler: ShardCtrler::new(),
        groups: BTreeMap::new(),
    };
    common::run_table(text, |request| {
        let got = table
            .step(request)
            .unwrap_or_else(|error| format!("error: {error}"));
        Ok(Some(got))
    })
}

#[test]
fn shardkv_table() {
    let text = include_str!("../testdata/shardkv.txt");
    common::assert_table_passes(text, &run(text), 30);
}

#[test]
fn a_wrong_expectation_is_reported() {
    let failures = run("> shard a\nshard-0\n> frobnicate\nx\n");
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(failures[0].contains("shard-6"), "{failures:?}");
    assert!(failures[1].contains("unknown step"), "{failures:?}");
}
