//! The clerks: concurrent `workloads::Clerk`s driven in simulated time, and the recorder.
//!
//! Each clerk runs one request at a time. A request's call is recorded when the clerk starts
//! it and its return when a successful reply arrives; every send arms a timer, and on a
//! timeout or a retryable error the clerk resends the same seq to the next server (following
//! leader hints), backing off after a whole round of failures. New requests stop with the
//! fault phase; after the heal every idle clerk issues one last Get, and the liveness phase
//! demands that every request completes. A request still in flight when the run ends stays
//! open in the history (it may or may not have taken effect).
//!
//! What each clerk asks is drawn in `commands` from the seed's operation mix. The last
//! `readers` clerks only read: a clerk keeps sending to the server that last answered it, so
//! readers stay with a deposed leader for as long as it keeps answering them.

use crate::cluster::{Phase, World};
use crate::config::{stream_rng, Stream};
use crate::kv::config::KvWorkload;
use crate::kv::service::{KvRequest, ReplyTo};
use commands::{key_name, model_input, model_output, CommandDraw};
use linearizability::models::{KvInput, KvOutput};
use linearizability::{ClientId as LinClient, OpId as LinOp, Recorder, Timestamp};
use rand::rngs::SmallRng;
use rand::Rng;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use workloads::KvBugs;
use workloads::{Clerk, ClerkStep, ClientId, KvCommand, KvError, KvReply, Outgoing};

/// One-way latency between a clerk and a server: uniform in this range (milliseconds).
const LATENCY_MS: std::ops::Range<u64> = 1..4;

/// Counters for the run summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct KvStats {
    /// Requests that completed.
    pub completed: u64,
    /// Sends beyond each request's first.
    pub resends: u64,
    /// Replies lost on the way back.
    pub replies_lost: u64,
}

mod commands;

struct ClerkSlot {
    clerk: Clerk<KvCommand>,
    /// The request in flight: its history entry and what it asks.
    op: Option<(LinOp, KvCommand)>,
    /// Whether this clerk only reads.
    reader: bool,
}

struct State {
    rng: SmallRng,
    clerks: Vec<ClerkSlot>,
    recorder: Recorder<KvInput, KvOutput>,
    draw: CommandDraw,
    started: u64,
    stats: KvStats,
}

/// The clerks of one kv run, shared by the run's tasks.
pub struct KvDriver {
    /// The workload shape.
    pub config: KvWorkload,
    /// Planted bugs.
    pub bugs: KvBugs,
    state: RefCell<State>,
}

impl KvDriver {
    /// Clerks over `servers`, with ids 1..=clients.
    pub fn new(seed: u64, config: KvWorkload, bugs: KvBugs, servers: &[raft_core::NodeId]) -> Self {
        // The last `readers` clerks only read, and at least one clerk writes.
        let readers = config.readers.min(config.clients.saturating_sub(1));
        let clerks = (1..=config.clients as u64)
            .map(|id| ClerkSlot {
                clerk: Clerk::new(ClientId(id), servers.to_vec()).expect("distinct servers"),
                op: None,
                reader: id as usize > config.clients - readers,
            })
            .collect();
        // Not the config's stream: the workload shape and the clerks' choices stay separate.
        let rng = stream_rng(seed ^ 0x6b76_636c_6572_6b73, Stream::Kv);
        KvDriver {
            config,
            bugs,
            state: RefCell::new(State {
                rng,
                clerks,
                recorder: Recorder::new(),
                draw: CommandDraw::new(),
                started: 0,
                stats: KvStats::default(),
            }),
        }
    }

    /// Counters.
    pub fn stats(&self) -> KvStats {
        self.state.borrow().stats
    }

    /// Requests in flight.
    pub fn pending(&self) -> usize {
        let state = self.state.borrow();
        state.clerks.iter().filter(|c| c.op.is_some()).count()
    }

    /// The recorded history (requests in flight stay open).
    pub fn history(&self) -> crate::kv::KvHistory {
        self.state.borrow().recorder.clone().finish()
    }

    /// Starts every clerk's loop.
    pub fn start(world: &Rc<World<KvDriver>>) {
        for clerk in 0..world.service.config.clients {
            madsim::task::spawn_local(think_then_start(world.clone(), clerk));
        }
    }

    /// After the heal: every idle clerk issues one last Get.
    pub fn final_reads(world: &Rc<World<KvDriver>>) {
        let driver = &world.service;
        for clerk in 0..driver.config.clients {
            let key = {
                let state = driver.state.borrow();
                if state.clerks[clerk].op.is_some() {
                    continue;
                }
                key_name(clerk % driver.config.keys)
            };
            start_op(world, clerk, KvCommand::Get { key });
        }
    }

    /// A server's reply to `to`: lost (while faults are on) or delivered after the latency.
    pub(crate) fn deliver_reply(
        &self,
        world: &Rc<World<KvDriver>>,
        to: ReplyTo,
        reply: Result<KvReply, KvError>,
    ) {
        let (lost, latency) = {
            let mut state = self.state.borrow_mut();
            let lost = world.phase() == Phase::Faults
                && self.config.reply_loss > 0.0
                && state.rng.gen_bool(self.config.reply_loss);
            state.stats.replies_lost += u64::from(lost);
            (lost, latency(&mut state.rng))
        };
        if lost {
            return;
        }
        let world = world.clone();
        madsim::task::spawn_local(async move {
            madsim::time::sleep(latency).await;
            if world.finished() {
                return;
            }
            let step = {
                let driver = &world.service;
                let mut state = driver.state.borrow_mut();
                state.clerks[to.clerk].clerk.on_reply(to.attempt, reply)
            };
            if matches!(step, ClerkStep::Done { .. }) {
                // Which server answered: a failure report shows it next to the operation
                // (matched by clerk and return time, which `finish_op` records now).
                tracing::info!(
                    clerk = to.clerk as u64 + 1,
                    server = to.attempt.to.0,
                    "reply accepted"
                );
            }
            handle_step(&world, to.clerk, step);
        });
    }
}

fn latency(rng: &mut SmallRng) -> Duration {
    Duration::from_millis(rng.gen_range(LATENCY_MS))
}

/// Waits the think time, then starts the clerk's next request (only while faults are on).
async fn think_then_start(world: Rc<World<KvDriver>>, clerk: usize) {
    let driver = &world.service;
    let pause = {
        let mut state = driver.state.borrow_mut();
        let mean = driver.config.think.as_micros() as u64;
        Duration::from_micros(state.rng.gen_range(mean / 2..=mean * 3 / 2).max(1_000))
    };
    madsim::time::sleep(pause).await;
    if world.phase() != Phase::Faults {
        return;
    }
    {
        let mut state = driver.state.borrow_mut();
        if driver
            .config
            .ops_max
            .is_some_and(|max| state.started >= max)
        {
            return;
        }
        state.started += 1;
    }
    let command = {
        let mut state = driver.state.borrow_mut();
        let state = &mut *state;
        let reader = state.clerks[clerk].reader;
        state.draw.next(&mut state.rng, &driver.config, reader)
    };
    start_op(&world, clerk, command);
}

fn now_stamp(world: &World<KvDriver>) -> Timestamp {
    Timestamp(world.now().as_micros() as u64)
}

/// Records the call and sends the first attempt.
fn start_op(world: &Rc<World<KvDriver>>, clerk: usize, command: KvCommand) {
    let driver = &world.service;
    let outgoing = {
        let mut state = driver.state.borrow_mut();
        let input = model_input(&command);
        let op = state
            .recorder
            .call(LinClient(clerk as u64 + 1), now_stamp(world), input)
            .expect("one request per clerk at a time");
        let slot = &mut state.clerks[clerk];
        let outgoing = slot
            .clerk
            .start(command.clone())
            .expect("the clerk is idle");
        slot.op = Some((op, command));
        outgoing
    };
    send(world, clerk, outgoing, Duration::ZERO);
}

/// Sends one attempt after `delay` plus the link latency and arms its timeout.
fn send(world: &Rc<World<KvDriver>>, clerk: usize, outgoing: Outgoing<KvCommand>, delay: Duration) {
    let driver = &world.service;
    let (latency, timeout) = {
        let mut state = driver.state.borrow_mut();
        (latency(&mut state.rng), driver.config.timeout)
    };
    let attempt = outgoing.attempt;
    let request = KvRequest {
        clerk,
        attempt,
        envelope: outgoing.envelope,
    };
    let w = world.clone();
    madsim::task::spawn_local(async move {
        madsim::time::sleep(delay + latency).await;
        if !w.finished() {
            w.send_client(attempt.to, request);
        }
    });
    let w = world.clone();
    madsim::task::spawn_local(async move {
        madsim::time::sleep(delay + timeout).await;
        if w.finished() {
            return;
        }
        let step = {
            let driver = &w.service;
            let mut state = driver.state.borrow_mut();
            state.clerks[clerk].clerk.on_timeout(attempt)
        };
        handle_step(&w, clerk, step);
    });
}

/// Acts on what the clerk decided after a reply or a timeout.
fn handle_step(world: &Rc<World<KvDriver>>, clerk: usize, step: ClerkStep<KvCommand, KvReply>) {
    let driver = &world.service;
    match step {
        ClerkStep::Ignored => {}
        ClerkStep::Send(outgoing) => {
            let delay = {
                let mut state = driver.state.borrow_mut();
                state.stats.resends += 1;
                let servers = world.slots().len() as u64;
                let failures = state.clerks[clerk].clerk.consecutive_failures();
                if failures.is_multiple_of(servers) {
                    Duration::from_millis(state.rng.gen_range(20..100))
                } else {
                    Duration::ZERO
                }
            };
            send(world, clerk, outgoing, delay);
        }
        ClerkStep::Done { reply, .. } => {
            finish_op(world, clerk, Some(reply));
        }
        ClerkStep::Failed { seq, error } => {
            tracing::warn!(clerk, %seq, %error, "request failed for good");
            finish_op(world, clerk, None);
        }
    }
}

/// Records the return (`None`: the outcome is unknown) and schedules the next request.
fn finish_op(world: &Rc<World<KvDriver>>, clerk: usize, reply: Option<KvReply>) {
    let driver = &world.service;
    {
        let mut state = driver.state.borrow_mut();
        let (op, command) = state.clerks[clerk]
            .op
            .take()
            .expect("a request was in flight");
        let at = now_stamp(world);
        if let Some(reply) = &reply {
            state.draw.completed(&command, reply);
        }
        // A failed request (`None`) may or may not have applied: its outcome stays unknown.
        let output: Option<KvOutput> = reply.as_ref().and_then(model_output);
        match output {
            Some(output) => state.recorder.ok(op, at, output),
            None => state.recorder.unknown(op, at),
        }
        .expect("the op was open");
        state.stats.completed += 1;
    }
    madsim::task::spawn_local(think_then_start(world.clone(), clerk));
}
