//! Deterministic simulation testing for `raft-core` on madsim.
//!
//! One *seed* is one reproducible run of a whole Raft cluster: the seed derives the cluster size
//! (3, 5 or 7), which fault classes are on and at what rates ([`config::SwarmConfig`]), and
//! every random decision afterwards. A run has four phases:
//!
//! 1. **Faults**: messages are dropped, duplicated, delayed and reordered; named partitions come
//!    and go; nodes crash (losing unsynced writes, also between a write and its fsync's
//!    completion, and on some seeds at crash points inside snapshot installs and log resets),
//!    restart from their own simulated disk, or
//!    freeze; disks on at most `(n - 1) / 2` nodes rot, fail reads, writes and fsyncs, or slow
//!    down; clocks are skewed, drift and jump forward; on some seeds the [`nemesis`] changes
//!    the membership (spare nodes join as learners, are promoted, replace voters, leave) and
//!    transfers leadership, and some seeds run lease reads on rate-skewed clocks. A client
//!    proposes writes and issues read barriers throughout.
//! 2. **Heal**: faults stop, the network heals, every crashed node restarts.
//! 3. **Liveness**: within a bound in simulated time, a leader must lead the highest term and
//!    every pending client operation must complete; otherwise the seed fails.
//! 4. **Settle** ([`settle`]): the recovered cluster must also be calm: its leader keeps its
//!    term, every member catches up, and replication quiets down to heartbeats.
//!
//! [`checkers`] watch every node after every step, from outside the code under test: election
//! safety, log matching, leader completeness, the Figure 8 commit rule, state machine safety,
//! monotonic commit and applied indexes, committed entries never lost, durability of votes and
//! acknowledged entries across restarts, read freshness, the membership change rules, term
//! inflation under PreVote, CheckQuorum's leader lease, and the leadership transfer bound.
//!
//! What runs on the cluster is a [`Service`] ([`service`]): the state machine, the server
//! side, the per-process state, the clients and the end-of-run checks. [`World`] is one Raft
//! group of a run and [`simulate`] the one runner for every service. Three ship here: the kv
//! service ([`kv`], the default of the CLI), where concurrent `workloads::Clerk`s drive
//! `workloads::KvStateMachine` replicas served by `workloads::KvServer` and the recorded
//! history is checked for linearizability per key at the end of the seed; raw Raft
//! ([`raw`]), one client proposing opaque writes and read barriers; and the sharded kv
//! ([`shard`], `--workload shardkv`), a shard controller group and several replica groups,
//! each a `World` of its own under its own faults, with shards migrating between them. A
//! user's service runs the same way ([`workload::Custom`], [`cli::main_with`],
//! [`testing`]; see `sim/examples/counter.rs`). One node step's data path is in `step.rs`.
//!
//! Planted bugs (`raft_core::Bugs` and [`bugs::ServiceBugs`], `--bug NAME`) prove the checkers can
//! fail: `sim canaries` reports, per bug, the fraction of seeds that catch it and the first one
//! that does ([`bugs`] is the registry of them). [`minimize`] shrinks a failing seed through
//! [`overrides`]; [`report`] writes a failing seed's HTML report; [`corpus`] is the
//! regression seed corpus that `cargo test` replays.
//!
//! # How the simulation uses madsim
//!
//! madsim provides the virtual clock, the seeded task scheduler (ready tasks run in a random
//! order drawn from the seed) and the deterministic runtime. Everything madsim does not model,
//! the simulator models itself, with generators seeded from the seed ([`config::stream_rng`]):
//!
//! - **Network** ([`net`]): madsim's network has one global loss rate, no duplication and
//!   adds at least 1 ms on each side of every datagram. Instead, each message's fate is decided
//!   by [`net::Network::route`], and each copy is delivered by its own madsim task that sleeps
//!   for the chosen latency. (madsim clamps sleeps to at least 1 ms, so sub-millisecond link
//!   latencies round up to 1 ms.)
//! - **Nodes** ([`node_host`], [`cluster`]): each node is a madsim task driving a
//!   `raft_core::Node` with asynchronous persistence over [`cluster::SimNet`],
//!   [`disk::SimDisk`] and [`clock::SimClock`]: writes land in the page cache, and each fsync
//!   completes after a drawn latency, delivered as an event. A crash drops the node's process
//!   (not its disk) and a restart reopens it from the disk.
//! - **Disk** ([`disk`]) and **clocks** ([`clock`]) are pure simulations keyed by simulated time.
//!
//! Each seed runs in its own madsim runtime on a fresh OS thread (madsim seeds std `HashMap`
//! keys only for the first runtime on a thread), so a seed's result never depends on which
//! seeds ran before it or on `--jobs`.
//!
//! # Running
//!
//! `.cargo/config.toml` sets `--cfg madsim` for the whole workspace, so no environment is
//! needed (a `RUSTFLAGS` variable would *replace* that flag; include `--cfg madsim` in it):
//!
//! ```text
//! cargo run --release --bin sim -- --seed 42              # one seed, prints its configuration
//! cargo run --release --bin sim -- --seed 42 --trace      # full log with simulated timestamps
//! cargo run --release --bin sim -- --seeds 1..10000 --jobs 2
//! cargo run --release --bin sim -- --seed 42 --check-determinism
//! cargo run --release --bin sim -- --seed 7 --workload raft --bug figure8_commit
//! cargo run --release --bin sim -- --seed 4 --bug local_reads --out sim-failures
//! cargo run --release --bin sim -- --seed 4 --bug sessions_not_in_snapshot --minimize
//! cargo run --release --bin sim -- --seeds 1..100000 --shard 0/8 --jobs 2
//! cargo run --release --bin sim -- add-seed --seed 17 --found "what it found"
//! cargo run --release --bin sim -- replay seeds/kv-4-local_reads.seed
//! cargo run --release --bin sim -- canaries --seeds 1..1000 --jobs 2
//! cargo run --release --bin sim -- bench
//! ```
#![deny(missing_docs)]

// The command-line modules below were written as the `sim` binary's and name the crate `sim`.
extern crate self as sim;

pub mod bench;
pub mod bugs;
pub mod checkers;
pub mod clerks;
pub mod cli;
mod cli_flags;
mod cli_help;
mod cli_parse;
mod cli_rules;
pub mod clock;
pub mod cluster;
mod commands;
pub mod config;
pub mod corpus;
pub mod coverage;
mod delivery;
pub mod disk;
pub mod event_log;
mod json_out;
pub mod kv;
pub mod log_bound;
mod many;
pub mod merge;
pub mod minimize;
pub mod nemesis;
pub mod net;
pub mod node_host;
mod observe;
pub mod overrides;
pub mod raw;
pub mod report;
pub mod run_config;
pub mod runner;
pub mod service;
pub mod settle;
pub mod shard;
mod single;
pub mod snapshot_check;
mod step;
pub mod sweep;
pub mod testing;
pub mod trace;
pub mod workload;

#[cfg(test)]
pub(crate) use cli::parse;
pub(crate) use cli::{Cli, Command};
pub use cluster::World;
pub use config::SwarmConfig;
pub use runner::{run_seed, run_seed_isolated, simulate, Outcome, Run, RunOptions, SeedReport};
pub use service::Service;
