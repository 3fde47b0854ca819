//! The configuration text of a run: what `sim --seed N` prints before it runs, and what a
//! corpus file's `config` fingerprint covers ([`fingerprint`]), so the two cannot disagree.
//!
//! Everything a run derives from its seed goes in: the cluster, fault, Raft and client
//! configuration, the workload's own drawn configuration (kv clerks, shardkv groups) and the
//! planted bug. When any of it changes for a seed, the text changes, and so does the
//! fingerprint.

use crate::runner::RunOptions;
use crate::workload::Workload;

/// A configuration's text without the raw Raft client's line, for the workloads where that
/// client does not run.
fn without_raw_client(config: &impl std::fmt::Display) -> String {
    let text = config.to_string();
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| !line.starts_with("  client:"))
        .collect();
    lines.join("\n")
}

/// A sharded run has one configuration per Raft group, each derived from the seed: those
/// rather than the seed's single-cluster configuration, which no group uses as is.
fn shard_config(opts: &RunOptions) -> String {
    let base = opts.config();
    let mut shard = crate::shard::ShardWorkload::from_seed(opts.seed);
    shard.apply(&opts.overrides);
    let mut text = String::new();
    for index in 0..=shard.groups {
        let name = match index {
            0 => "controller group (nodes 1..=3)".to_string(),
            gid => format!(
                "replica group {gid} (node ids are these plus {})",
                100 * gid
            ),
        };
        let config = crate::shard::config::group_config(&base, index, &opts.overrides);
        text.push_str(&format!("{name}:\n{}\n", without_raw_client(&config)));
    }
    text.push_str(&shard.to_string());
    text
}

/// The configuration `opts` runs with, `bug` planted, as lines of text (no trailing newline).
pub fn text(opts: &RunOptions, bug: Option<&str>) -> String {
    let mut text = match opts.kv_workload() {
        Some(kv) => format!("{}\n{kv}", without_raw_client(&opts.config())),
        None if opts.workload == Workload::ShardKv => shard_config(opts),
        None if opts.workload == Workload::Raft => format!("{}\n  workload raft", opts.config()),
        None => format!(
            "{}\n  workload {}",
            without_raw_client(&opts.config()),
            opts.workload.name()
        ),
    };
    if let Some(bug) = bug {
        text.push_str(&format!("\n  planted bug: {bug}"));
    }
    text
}

/// A stable fingerprint of [`text`]: equal in every process and on every machine, and
/// different (but for a 2^-64 chance) whenever the text differs.
pub fn fingerprint(opts: &RunOptions, bug: Option<&str>) -> u64 {
    crate::checkers::fingerprint(text(opts, bug).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_follows_seed_workload_and_bug() {
        let kv = RunOptions::kv(7);
        let base = fingerprint(&kv, None);
        assert_eq!(base, fingerprint(&RunOptions::kv(7), None));
        assert_ne!(base, fingerprint(&RunOptions::kv(8), None));
        assert_ne!(base, fingerprint(&kv, Some("local_reads")));
        assert_ne!(base, fingerprint(&RunOptions::new(7), None));
        assert!(text(&kv, Some("local_reads")).ends_with("planted bug: local_reads"));
    }
}
