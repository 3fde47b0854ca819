//! `kvctl`: a client of the kv service. It finds the leader, retries across servers with one
//! exactly-once session per invocation, and prints the reply.
//!
//! ```sh
//! kvctl put greeting hello
//! kvctl get greeting
//! kvctl cas greeting hello bye       # or --absent instead of the expected value
//! kvctl status                       # role, term, leader, commit of every node
//! ```
//!
//! The client ports speak TLS: `kvctl` trusts the CA in `--certs DIR/ca.pem` (default
//! `kvdata/certs`, where `kvnode certs` puts it) and checks that server N presents the CA's
//! `node-N`; it presents no certificate itself. `--insecure` talks plain TCP to nodes that
//! run with `--insecure`.

use clap::{Parser, Subcommand};
use raft_core::NodeId;
use runtime::client::fresh_client_id;
use runtime::config::{local_client_addr, parse_member};
use runtime::{CallError, ClientSecurity, KvClient};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use workloads::{KvCommand, KvReply};

#[derive(Parser, Debug)]
#[command(name = "kvctl", about = "Client of the Raft-replicated kv service")]
struct Cli {
    /// Client addresses of the servers, as ID=ADDR [default: the local 3-node cluster].
    #[arg(long, value_delimiter = ',')]
    servers: Vec<String>,
    /// Give up after this many seconds (the outcome of a write is then unknown).
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Directory with the cluster CA's ca.pem, to check the servers' certificates.
    #[arg(long, default_value = "kvdata/certs")]
    certs: PathBuf,
    /// Plain TCP, for nodes started with --insecure.
    #[arg(long)]
    insecure: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Sets KEY to VALUE.
    Put { key: String, value: String },
    /// Reads KEY.
    Get { key: String },
    /// Appends VALUE to KEY.
    Append { key: String, value: String },
    /// Removes KEY.
    Delete { key: String },
    /// Sets KEY to NEW if it holds EXPECTED (or is absent, with --absent).
    Cas {
        key: String,
        /// The value the key must hold (omit with --absent).
        expected: Option<String>,
        new: Option<String>,
        /// Swap only if the key is absent; then the one value given is NEW.
        #[arg(long)]
        absent: bool,
    },
    /// Shows every node's Raft status.
    Status,
}

fn print_reply(reply: &KvReply) {
    match reply {
        KvReply::Done => println!("ok"),
        KvReply::Value(Some(value)) => println!("{value}"),
        KvReply::Value(None) => println!("(absent)"),
        KvReply::Deleted { existed } => println!("deleted (existed: {existed})"),
        KvReply::Exists(present) => println!("{present}"),
        KvReply::CompareAndSet { swapped, previous } => {
            println!("swapped: {swapped}, previous: {previous:?}")
        }
        KvReply::ValueTooLarge { len } => println!("refused: the value would be {len} bytes"),
    }
}

fn command(command: Command) -> Result<Option<KvCommand>, String> {
    Ok(Some(match command {
        Command::Put { key, value } => KvCommand::Put { key, value },
        Command::Get { key } => KvCommand::Get { key },
        Command::Append { key, value } => KvCommand::Append { key, value },
        Command::Delete { key } => KvCommand::Delete { key },
        Command::Cas {
            key,
            expected,
            new,
            absent,
        } => match (absent, expected, new) {
            (true, Some(new), None) => KvCommand::CompareAndSet {
                key,
                expected: None,
                new,
            },
            (false, Some(expected), Some(new)) => KvCommand::CompareAndSet {
                key,
                expected: Some(expected),
                new,
            },
            _ => return Err("cas KEY EXPECTED NEW, or cas --absent KEY NEW".to_string()),
        },
        Command::Status => return Ok(None),
    }))
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    let mut servers = BTreeMap::new();
    for text in &cli.servers {
        let (id, addr) = parse_member(text)?;
        servers.insert(id, addr);
    }
    if servers.is_empty() {
        servers = (1..=3)
            .map(|id| (NodeId(id), local_client_addr(id)))
            .collect();
    }
    if !(cli.timeout > 0.0 && cli.timeout < 3600.0) {
        return Err("--timeout must be between 0 and 3600 seconds".to_string());
    }
    let deadline = Duration::from_secs_f64(cli.timeout);
    let attempt = Duration::from_millis(1000).min(deadline);
    let ids: Vec<NodeId> = servers.keys().copied().collect();
    let security = if cli.insecure {
        ClientSecurity::Plain
    } else {
        ClientSecurity::tls_from_certs_dir(&cli.certs).map_err(|e| {
            format!("{e} (the client port is TLS: give --certs DIR with ca.pem, or --insecure)")
        })?
    };
    let mut client = KvClient::new(fresh_client_id(), servers.clone(), security, attempt)
        .map_err(|e| e.to_string())?;
    let Some(command) = command(cli.command)? else {
        for id in ids {
            match client.status(id).await {
                Some(s) => println!(
                    "{id} {} term {} leader {} commit {} applied {} last {} ({})",
                    s.role,
                    s.term,
                    s.leader.map_or("-".to_string(), |l| l.to_string()),
                    s.commit,
                    s.applied,
                    s.last_index,
                    servers[&id]
                ),
                None => println!("{id} unreachable ({})", servers[&id]),
            }
        }
        return Ok(ExitCode::SUCCESS);
    };
    match client.call(command, deadline).await {
        Ok(reply) => {
            print_reply(&reply);
            Ok(ExitCode::SUCCESS)
        }
        Err(error @ CallError::GaveUp(_)) => {
            eprintln!("kvctl: {error}");
            Ok(ExitCode::from(3))
        }
        Err(error) => Err(error.to_string()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("kvctl: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("kvctl: {error}");
            ExitCode::from(2)
        }
    }
}
