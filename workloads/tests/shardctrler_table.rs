//! Replays `testdata/shardctrler.txt` against a `ShardCtrler`.
//!
//! Goal: Join, Leave, Move and Query, refused commands and the exact shard assignments that
//! rebalancing produces are written down as readable cases. Method: each `> ...` line runs one
//! command; its result, rendered as text, must equal the line below. Every mismatch is
//! reported with its line number.

mod common;

use raft_core::NodeId;
use std::collections::BTreeMap;
use workloads::rsm::App;
use workloads::shardctrler::{
    moved_shards, ConfigNum, CtrlerCommand, CtrlerReply, Gid, ShardConfig, ShardCtrler, ShardId,
};

fn number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.parse().map_err(|_| format!("not a number: {text:?}"))
}

/// `GID=SERVER,SERVER,...` (an empty server list is written `GID=`).
fn parse_group(word: &str) -> Result<(Gid, Vec<NodeId>), String> {
    let (gid, servers) = word.split_once('=').ok_or("expected GID=SERVERS")?;
    let servers = servers
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| number(s).map(NodeId))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((Gid(number(gid)?), servers))
}

fn parse(words: &[&str]) -> Result<CtrlerCommand, String> {
    let rest = &words[1..];
    Ok(match words[0] {
        "join" => CtrlerCommand::Join {
            groups: rest
                .iter()
                .map(|w| parse_group(w))
                .collect::<Result<BTreeMap<_, _>, _>>()?,
        },
        "leave" => CtrlerCommand::Leave {
            gids: rest
                .iter()
                .map(|w| number(w).map(Gid))
                .collect::<Result<_, _>>()?,
        },
        "move" if rest.len() == 2 => CtrlerCommand::Move {
            shard: ShardId(number(rest[0])?),
            gid: Gid(number(rest[1])?),
        },
        "query" => CtrlerCommand::Query {
            num: rest.first().map(|w| number(w).map(ConfigNum)).transpose()?,
        },
        other => return Err(format!("unknown command {other:?}")),
    })
}

fn render_config(config: &ShardConfig) -> String {
    let shards: Vec<String> = config.shards.iter().map(|gid| gid.0.to_string()).collect();
    let groups: Vec<String> = config
        .groups
        .iter()
        .map(|(gid, servers)| {
            let servers: Vec<String> = servers.iter().map(|s| s.0.to_string()).collect();
            format!("{}={}", gid.0, servers.join(","))
        })
        .collect();
    let groups = if groups.is_empty() {
        "-".to_string()
    } else {
        groups.join(" ")
    };
    format!(
        "config {} shards {} groups {groups}",
        config.num.0,
        shards.join(" ")
    )
}

fn render(ctrler: &ShardCtrler, reply: Result<CtrlerReply, impl std::fmt::Display>) -> String {
    match reply {
        Ok(CtrlerReply::Created(num)) => {
            let configs = ctrler.configs();
            let index = num.0 as usize;
            let moved = moved_shards(&configs[index - 1].shards, &configs[index].shards);
            format!("created {} moved {moved}", num.0)
        }
        Ok(CtrlerReply::Config(config)) => render_config(&config),
        Err(error) => format!("error: {error}"),
    }
}

/// Runs one table; returns the mismatches.
fn run(text: &str) -> Vec<String> {
    let mut ctrler = ShardCtrler::new();
    common::run_table(text, |request| {
        if request == "restart" {
            let mut restarted = ShardCtrler::new();
            restarted
                .restore(&ctrler.snapshot())
                .expect("own snapshot restores");
            ctrler = restarted;
            return Ok(None);
        }
        let words: Vec<&str> = request.split_whitespace().collect();
        Ok(Some(match parse(&words) {
            Ok(command) => {
                let reply = ctrler.execute(command);
                render(&ctrler, reply)
            }
            Err(error) => format!("parse error: {error}"),
        }))
    })
}

#[test]
fn shardctrler_table() {
    let text = include_str!("../testdata/shardctrler.txt");
    common::assert_table_passes(text, &run(text), 25);
}

#[test]
fn a_wrong_expectation_is_reported() {
    let failures = run("> join 1=1\ncreated 1 moved 0\n> frobnicate\nx\n");
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert!(failures[0].contains("moved 10"), "{failures:?}");
    assert!(failures[1].contains("unknown command"), "{failures:?}");
}
