//! The long help's closing sections, generated so they cannot go stale: the workloads, every
//! planted bug from the registry (`sim::bugs`), the randomized features a seed may turn on,
//! and the exit codes.

use sim::workload::Workload;
use std::fmt::Write as _;

/// The text after the options in `sim --help`.
pub fn after_help() -> String {
    let mut text = String::from(
        "Workloads (--workload):\n  \
         kv       (default) the kv service on every node; 1-6 clerks retry across servers; the\n           \
         history is checked for linearizability per key when the seed ends\n  \
         raft     raw Raft: one client proposing opaque writes and read barriers\n  \
         shardkv  a shard controller group and 2-4 replica groups; shards migrate while groups\n           \
         join and leave\n\n\
         Planted bugs (--bug NAME; `sim canaries` measures each on the first workload listed):\n",
    );
    let registry = sim::bugs::registry();
    let width = registry.iter().map(|b| b.name.len()).max().unwrap_or(0);
    for bug in &registry {
        let workloads: Vec<&str> = bug.workloads.iter().map(|w| w.name()).collect();
        let _ = writeln!(
            text,
            "  {:width$}  [{}] {}",
            bug.name,
            workloads.join(", "),
            bug.what
        );
    }
    let _ = write!(
        text,
        "\nWhat a seed may turn on (`--seed N` prints the configuration it derived):\n  \
         faults     message drops, duplicates and delays; partitions; crashes and pauses; disk\n             \
         faults on at most (n-1)/2 nodes; clock skew, drift and jumps (off one by one:\n             \
         --no-partitions, --no-crashes, --no-pauses, --no-message-faults,\n             \
         --no-disk-faults, --no-clock-faults)\n  \
         nemeses    on about half of the seeds, spare nodes join as learners, are promoted,\n             \
         replace voters and leave (joint consensus), and leadership is transferred\n             \
         (--no-nemeses turns them off; not on {})\n  \
         lease reads  on about half of the CheckQuorum seeds, leaders serve reads from a lease\n             \
         over clocks that drift within a declared bound\n\n\
         Replay: `sim replay seeds/FILE.seed` runs a corpus file exactly as `cargo test` does,\n\
         and refuses it when the seed's configuration no longer has the file's `config`\n\
         fingerprint; `sim replay --refresh FILE...` rewrites the fingerprint of files whose\n\
         recorded outcome still holds.\n\n\
         Exit codes:\n  \
         0  every seed passed (replay: the file's expectation holds; canaries: every bug caught)\n  \
         1  a seed failed, a run was not deterministic, a replay contradicted its file, or a\n     \
         canary went uncaught\n  \
         2  bad arguments, or a file that could not be read or written\n",
        Workload::ShardKv.name()
    );
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_help_lists_every_bug_and_workload() {
        let help = super::after_help();
        for bug in sim::bugs::registry() {
            assert!(help.contains(bug.name), "{} missing", bug.name);
        }
        for word in ["shardkv", "lease reads", "nemeses", "Exit codes"] {
            assert!(help.contains(word), "{word} missing");
        }
    }
}
