//! `kvnode`: one replica of the replicated kv service, or `kvnode certs` to make a cluster's
//! certificates.
//!
//! ```sh
//! kvnode certs                      # CA and certificates for nodes 1..3 in kvdata/certs
//! kvnode run --id 1                 # node 1 of the default local 3-node cluster
//! kvnode run --config node1.toml    # or from a file (see runtime/src/config.rs)
//! ```
//!
//! Logs go to stderr through `tracing`; set `RUST_LOG` (default `info`).

use clap::{Parser, Subcommand};
use raft_core::NodeId;
use runtime::config::{parse_member, NodeConfig, PeerSecurity};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "kvnode", about = "A replica of the Raft-replicated kv service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs a node until SIGTERM.
    Run(RunArgs),
    /// Makes a CA and node certificates for a local cluster.
    Certs {
        /// Directory to write into.
        #[arg(long, default_value = "kvdata/certs")]
        dir: PathBuf,
        /// Certificates for nodes 1..=N.
        #[arg(long, default_value_t = 3)]
        nodes: u64,
    },
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// A TOML configuration file; the other flags are then not allowed.
    #[arg(long, conflicts_with_all = ["id", "data_dir", "peer_listen", "client_listen", "peer", "certs", "insecure", "tick_ms", "bug", "local_nodes"])]
    config: Option<PathBuf>,
    /// This node's id (without --peer: node ID of the default local 3-node cluster).
    #[arg(long)]
    id: Option<u64>,
    /// Data directory [default: kvdata/n<ID>].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address for peers [default: 127.0.0.1:710<ID>].
    #[arg(long)]
    peer_listen: Option<SocketAddr>,
    /// Address for clients [default: 127.0.0.1:720<ID>].
    #[arg(long)]
    client_listen: Option<SocketAddr>,
    /// Another voter and the address to dial it at, as ID=ADDR; repeat for each.
    #[arg(long)]
    peer: Vec<String>,
    /// Without --peer: the size of the default local cluster (1 for a single node).
    #[arg(long, default_value_t = 3, conflicts_with = "peer")]
    local_nodes: u64,
    /// Directory with ca.pem and node-<ID>.{pem,key} [default: kvdata/certs].
    #[arg(long)]
    certs: Option<PathBuf>,
    /// Plain TCP between peers and on the client port, no TLS.
    #[arg(long, conflicts_with = "certs")]
    insecure: bool,
    /// Milliseconds per Raft tick.
    #[arg(long)]
    tick_ms: Option<u64>,
    /// Turns on a planted bug (for showing that the chaos test catches it).
    #[arg(long)]
    bug: Option<String>,
}

fn config(args: RunArgs) -> Result<NodeConfig, String> {
    if let Some(path) = args.config {
        return NodeConfig::from_file(&path).map_err(|e| e.to_string());
    }
    let id = args.id.ok_or("give --id (or --config)")?;
    if !(1..=9).contains(&args.local_nodes) {
        return Err("--local-nodes must be 1..=9".to_string());
    }
    let mut config = NodeConfig::local(id, args.local_nodes);
    if !args.peer.is_empty() {
        config.peers.clear();
        for text in &args.peer {
            let (peer, addr) = parse_member(text)?;
            if config.peers.insert(peer, addr).is_some() {
                return Err(format!("peer {peer} is given twice"));
            }
        }
    }
    config.data_dir = args.data_dir.unwrap_or(config.data_dir);
    config.peer_listen = args.peer_listen.unwrap_or(config.peer_listen);
    config.client_listen = args.client_listen.unwrap_or(config.client_listen);
    if args.insecure {
        config.security = PeerSecurity::Insecure;
    } else if let Some(dir) = args.certs {
        config.security = PeerSecurity::Tls(dir);
    }
    config.tick_ms = args.tick_ms.unwrap_or(config.tick_ms);
    config.bug = args.bug;
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Certs { dir, nodes } => {
            let ids: Vec<NodeId> = (1..=nodes).map(NodeId).collect();
            match runtime::tls::generate(&dir, &ids) {
                Ok(files) => {
                    for file in files {
                        println!("wrote {}", file.display());
                    }
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("kvnode certs: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run(args) => {
            let config = match config(args) {
                Ok(config) => config,
                Err(error) => {
                    eprintln!("kvnode: {error}");
                    return ExitCode::from(2);
                }
            };
            match runtime::node::run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    tracing::error!(%error, "kvnode failed");
                    eprintln!("kvnode: {error}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
