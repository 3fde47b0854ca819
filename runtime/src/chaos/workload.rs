//! The chaos test's clients: each runs kv operations one at a time on a few shared keys and
//! records every call and return in one history, with the time read under the history's lock
//! so timestamps never go backwards.

use crate::client::{CallError, KvClient};
use linearizability::models::{KvAction, KvInput, KvOutput};
use linearizability::{Operation, Recorder, Timestamp};
use raft_core::NodeId;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use workloads::{ClientId, KvCommand, KvReply};

/// A client waits this long for one send before trying the next server.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);
/// A client gives up on an operation after this long; its outcome is then unknown.
pub const OPERATION_DEADLINE: Duration = Duration::from_secs(4);

/// The history and the figures the clients collect.
pub struct Shared {
    start: Instant,
    recorder: Mutex<Recorder<KvInput, KvOutput>>,
    latencies_us: Mutex<Vec<u64>>,
    counts: Mutex<Counts>,
}

/// How operations ended.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    /// Completed with a reply.
    pub ok: u64,
    /// Refused for good (did not run).
    pub failed: u64,
    /// Given up on (outcome unknown, left open in the history).
    pub abandoned: u64,
}

impl Shared {
    /// A new history whose time zero is now.
    pub fn new() -> Arc<Shared> {
        Arc::new(Shared {
            start: Instant::now(),
            recorder: Mutex::new(Recorder::new()),
            latencies_us: Mutex::new(Vec::new()),
            counts: Mutex::new(Counts::default()),
        })
    }

    fn now(&self) -> Timestamp {
        Timestamp(self.start.elapsed().as_micros() as u64)
    }

    /// The history so far (operations still open stay open).
    pub fn finish(&self) -> Vec<Operation<KvInput, KvOutput>> {
        let recorder = std::mem::take(&mut *self.recorder.lock().expect("history lock"));
        recorder.finish()
    }

    /// Latencies of completed operations, in microseconds.
    pub fn latencies_us(&self) -> Vec<u64> {
        self.latencies_us.lock().expect("latency lock").clone()
    }

    /// How operations ended.
    pub fn counts(&self) -> Counts {
        *self.counts.lock().expect("count lock")
    }
}

/// The model's view of a command.
pub fn model_input(command: &KvCommand) -> KvInput {
    let action = match command {
        KvCommand::Get { .. } => KvAction::Get,
        KvCommand::Put { value, .. } => KvAction::Put(value.clone()),
        KvCommand::Append { value, .. } => KvAction::Append(value.clone()),
        KvCommand::Delete { .. } => KvAction::Delete,
        KvCommand::Exists { .. } => KvAction::Exists,
        KvCommand::CompareAndSet { expected, new, .. } => KvAction::Cas {
            expected: expected.clone(),
            new: new.clone(),
        },
    };
    KvInput {
        key: command.key().to_string(),
        action,
    }
}

/// The model's view of a reply (`None` for a refused oversized write, which the workload's
/// short values never cause).
pub fn model_output(reply: &KvReply) -> Option<KvOutput> {
    Some(match reply {
        KvReply::Done => KvOutput::Done,
        KvReply::Value(Some(value)) => KvOutput::Value(value.clone()),
        KvReply::Value(None) => KvOutput::Absent,
        KvReply::Deleted { existed } => KvOutput::Deleted { existed: *existed },
        KvReply::Exists(present) => KvOutput::Exists(*present),
        KvReply::CompareAndSet { swapped, previous } => KvOutput::Cas {
            swapped: *swapped,
            previous: previous.clone(),
        },
        KvReply::ValueTooLarge { .. } => return None,
    })
}

/// Draws the next command of client `client`; `last_seen` remembers values read, so most
/// compare-and-sets expect a value the key really held.
fn draw(
    rng: &mut SmallRng,
    client: u64,
    n: u64,
    keys: usize,
    last_seen: &mut BTreeMap<String, Option<String>>,
) -> KvCommand {
    let key = format!("k{}", rng.gen_range(0..keys));
    let value = format!("{client}.{n}");
    match rng.gen_range(0..100) {
        0..=24 => KvCommand::Put { key, value },
        25..=44 => KvCommand::Append {
            key,
            value: format!("{value};"),
        },
        45..=74 => KvCommand::Get { key },
        75..=89 => {
            let expected = last_seen.get(&key).cloned().flatten();
            KvCommand::CompareAndSet {
                key,
                expected,
                new: value,
            }
        }
        90..=94 => KvCommand::Delete { key },
        _ => KvCommand::Exists { key },
    }
}

/// Runs client `index` until `stop` is set; returns the number of operations it started.
pub async fn client(
    index: u64,
    seed: u64,
    servers: BTreeMap<NodeId, SocketAddr>,
    security: crate::ClientSecurity,
    keys: usize,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
) -> u64 {
    let mut rng = SmallRng::seed_from_u64(seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    // Session ids are unique per chaos run (the cluster is fresh).
    let mut kv = KvClient::new(ClientId(1000 + index), servers, security, ATTEMPT_TIMEOUT)
        .expect("the cluster has servers");
    let history_client = linearizability::ClientId(index);
    let mut last_seen = BTreeMap::new();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let command = draw(&mut rng, index, n, keys, &mut last_seen);
        let started = Instant::now();
        let op = {
            let mut recorder = shared.recorder.lock().expect("history lock");
            let at = shared.now();
            recorder
                .call(history_client, at, model_input(&command))
                .expect("one operation at a time per client")
        };
        let result = kv.call(command.clone(), OPERATION_DEADLINE).await;
        let latency = started.elapsed();
        let mut recorder = shared.recorder.lock().expect("history lock");
        let at = shared.now();
        let mut counts = shared.counts.lock().expect("count lock");
        match result {
            Ok(reply) => {
                match &reply {
                    KvReply::Value(value) => {
                        last_seen.insert(command.key().to_string(), value.clone());
                    }
                    KvReply::CompareAndSet { previous, swapped } => {
                        let now = if *swapped {
                            match &command {
                                KvCommand::CompareAndSet { new, .. } => Some(new.clone()),
                                _ => unreachable!("a cas reply answers a cas"),
                            }
                        } else {
                            previous.clone()
                        };
                        last_seen.insert(command.key().to_string(), now);
                    }
                    _ => {}
                }
                match model_output(&reply) {
                    Some(output) => recorder.ok(op, at, output),
                    None => recorder.unknown(op, at),
                }
                .expect("the operation is open");
                counts.ok += 1;
                drop(recorder);
                self::record_latency(&shared, latency);
            }
            Err(CallError::Failed(error)) => {
                tracing::warn!(index, %error, "operation refused");
                recorder.unknown(op, at).expect("the operation is open");
                counts.failed += 1;
            }
            Err(CallError::GaveUp(_)) => {
                recorder.abandon(op).expect("the operation is open");
                counts.abandoned += 1;
            }
        }
    }
    n
}

fn record_latency(shared: &Shared, latency: Duration) {
    shared
        .latencies_us
        .lock()
        .expect("latency lock")
        .push(latency.as_micros() as u64);
}
