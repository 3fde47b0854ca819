//! `chaos`: starts a local cluster of kvnode processes, kills, pauses and partitions them while
//! clients record a history, then checks it for linearizability.
//!
//! ```sh
//! cargo run --release --bin chaos -- --nodes 3 --duration 60s
//! ```
//!
//! Exit codes: 0 linearizable and every node stopped cleanly, 1 otherwise, 2 bad arguments or
//! a cluster that could not run.

use clap::Parser;
use runtime::chaos::{run, ChaosOptions, FaultKind};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "chaos", about = "Real-process chaos test of the kv service")]
struct Cli {
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 3)]
    nodes: u64,
    /// Length of the fault phase, like 10s, 10m or 600.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Concurrent clients.
    #[arg(long, default_value_t = 6)]
    clients: u64,
    /// Keys the clients share.
    #[arg(long, default_value_t = 8)]
    keys: usize,
    /// Longest pause between faults, like 3s.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    fault_interval: Duration,
    /// Seed of the fault schedule and the operations.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Working directory (emptied first).
    #[arg(long, default_value = "target/chaos")]
    dir: PathBuf,
    /// Plain TCP between peers and to the client ports instead of TLS.
    #[arg(long)]
    insecure: bool,
    /// The faults of one cycle (shuffled each cycle), comma-separated: kill, pause,
    /// isolate, cut.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "kill,kill,kill,pause,isolate,cut"
    )]
    faults: Vec<String>,
    /// Run every node with this planted bug (the run should then fail).
    #[arg(long)]
    bug: Option<String>,
    /// The kvnode binary [default: next to this binary].
    #[arg(long)]
    kvnode: Option<PathBuf>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number.parse().map_err(|e| format!("{text:?}: {e}"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("{text:?}: unit must be ms, s, m or h")),
    };
    if !(0.0..=86_400.0).contains(&seconds) {
        return Err(format!("{text:?}: at most a day"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    if cli.nodes < 1 || cli.nodes > 9 || cli.clients < 1 || cli.clients > 64 || cli.keys < 1 {
        eprintln!("chaos: --nodes must be 1..=9, --clients 1..=64, --keys at least 1");
        return ExitCode::from(2);
    }
    let fault_cycle: Result<Vec<FaultKind>, String> = cli
        .faults
        .iter()
        .map(|name| FaultKind::from_name(name))
        .collect();
    let fault_cycle = match fault_cycle {
        Ok(cycle) if !cycle.is_empty() => cycle,
        Ok(_) => {
            eprintln!("chaos: --faults is empty");
            return ExitCode::from(2);
        }
        Err(error) => {
            eprintln!("chaos: {error}");
            return ExitCode::from(2);
        }
    };
    let kvnode = cli.kvnode.unwrap_or_else(|| {
        let exe = std::env::current_exe().unwrap_or_default();
        exe.with_file_name("kvnode")
    });
    let options = ChaosOptions {
        kvnode,
        dir: cli.dir,
        nodes: cli.nodes,
        clients: cli.clients,
        keys: cli.keys,
        duration: cli.duration,
        fault_interval_max: cli.fault_interval,
        seed: cli.seed,
        tls: !cli.insecure,
        check_timeout: Duration::from_secs(300),
        bug: cli.bug,
        fault_cycle,
    };
    println!(
        "chaos: {} nodes, {} clients, {:?} of faults, seed {}, {}{}",
        options.nodes,
        options.clients,
        options.duration,
        options.seed,
        if options.tls { "TLS" } else { "plain TCP" },
        options
            .bug
            .as_ref()
            .map_or(String::new(), |bug| format!(", planted bug {bug}"))
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("chaos: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(options)) {
        Ok(report) => {
            println!("{report}");
            if report.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("chaos: {error}");
            ExitCode::from(2)
        }
    }
}
