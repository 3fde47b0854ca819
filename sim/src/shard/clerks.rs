//! The clerks: concurrent `workloads::ShardClerk`s in simulated time, and the recorder.
//!
//! Each clerk runs one request at a time and records its call and return. It routes by the
//! newest configuration it knows; on `WrongGroup` (or no group for the key) it asks the
//! controller for the latest configuration, after a short pause. Every send and every query
//! arms a timeout. New requests stop with the fault phase; after the heal the clerks read
//! every key once more, and the liveness phase demands that all of it completes.

use super::driver::ShardRun;
use super::member::GroupLayout;
use crate::cluster::{Failure, Phase};
use linearizability::models::{KvAction, KvInput, KvOutput};
use linearizability::{ClientId as LinClient, OpId as LinOp, Timestamp};
use rand::Rng;
use std::rc::Rc;
use std::time::Duration;
use workloads::shardkv::{Answer, GroupRole, ReplyTo, ShardRequest};
use workloads::shardkv::{ShardAttempt, ShardClerk, ShardClerkStep};
use workloads::{ClientId, KvCommand, KvError, KvReply};

/// One clerk and its request in flight.
pub(crate) struct ClerkSlot {
    clerk: ShardClerk,
    op: Option<LinOp>,
    /// The query in flight, if any (its number).
    query: Option<u64>,
    queries: u64,
    /// Index of the controller server to ask next.
    ctrler_target: usize,
}

impl ClerkSlot {
    /// Clerk `index` (client id `index + 1`).
    pub(crate) fn new(index: usize) -> ClerkSlot {
        ClerkSlot {
            clerk: ShardClerk::new(ClientId(index as u64 + 1)),
            op: None,
            query: None,
            queries: 0,
            ctrler_target: 0,
        }
    }

    /// Whether a request is in flight.
    pub(crate) fn busy(&self) -> bool {
        self.op.is_some()
    }
}

fn key_name(index: usize) -> String {
    format!("k{index}")
}

fn stamp(driver: &ShardRun) -> Timestamp {
    Timestamp(driver.now().as_micros() as u64)
}

/// Starts every clerk's loop.
pub(crate) fn start(driver: &Rc<ShardRun>) {
    for clerk in 0..driver.workload.clients {
        madsim::task::spawn_local(think_then_start(driver.clone(), clerk));
    }
}

/// After the heal: every key is read once more, by whichever clerks are idle.
pub(crate) fn final_reads(driver: &Rc<ShardRun>) {
    {
        let mut state = driver.state.borrow_mut();
        state.final_keys = (0..driver.workload.keys).map(key_name).collect();
    }
    for clerk in 0..driver.workload.clients {
        next_final_read(driver, clerk);
    }
}

/// Requests in flight or still to start (final reads).
pub(crate) fn pending(driver: &ShardRun) -> usize {
    let state = driver.state.borrow();
    state.clerks.iter().filter(|c| c.busy()).count() + state.final_keys.len()
}

fn next_final_read(driver: &Rc<ShardRun>, clerk: usize) {
    let key = {
        let mut state = driver.state.borrow_mut();
        if state.clerks[clerk].busy() {
            return;
        }
        state.final_keys.pop_front()
    };
    if let Some(key) = key {
        start_op(driver, clerk, KvCommand::Get { key });
    }
}

async fn think_then_start(driver: Rc<ShardRun>, clerk: usize) {
    let pause = {
        let mut state = driver.state.borrow_mut();
        let mean = driver.workload.think.as_micros() as u64;
        Duration::from_micros(state.rng.gen_range(mean / 2..=mean * 3 / 2).max(1_000))
    };
    madsim::time::sleep(pause).await;
    if driver.phase() != Phase::Faults {
        return next_final_read(&driver, clerk);
    }
    {
        let mut state = driver.state.borrow_mut();
        if driver
            .workload
            .ops_max
            .is_some_and(|max| state.started >= max)
        {
            return;
        }
        state.started += 1;
    }
    let command = next_command(&driver, clerk);
    start_op(&driver, clerk, command);
}

/// Draws the next command from the workload mix; values are unique (a counter).
fn next_command(driver: &ShardRun, clerk: usize) -> KvCommand {
    let w = &driver.workload;
    let mut state = driver.state.borrow_mut();
    let state = &mut *state;
    let key = if w.own_keys && clerk < w.keys {
        let mine = (w.keys - clerk).div_ceil(w.clients);
        key_name(clerk + w.clients * state.rng.gen_range(0..mine))
    } else {
        key_name(state.rng.gen_range(0..w.keys))
    };
    if state.rng.gen_bool(w.get_fraction) {
        return KvCommand::Get { key };
    }
    let tag = state.next_value;
    state.next_value += 1;
    let len = state.rng.gen_range(1..=w.value_max);
    let mut value = format!("{tag}.");
    while value.len() < len {
        value.push((b'a' + (value.len() % 26) as u8) as char);
    }
    let appended = state.appended.entry(key.clone()).or_insert(0);
    if state.rng.gen_bool(w.append_fraction) && *appended + value.len() <= w.append_budget {
        *appended += value.len();
        KvCommand::Append { key, value }
    } else {
        *appended = value.len();
        KvCommand::Put { key, value }
    }
}

fn model_input(command: &KvCommand) -> KvInput {
    let action = match command {
        KvCommand::Get { .. } => KvAction::Get,
        KvCommand::Put { value, .. } => KvAction::Put(value.clone()),
        KvCommand::Append { value, .. } => KvAction::Append(value.clone()),
        other => panic!("the shardkv workload never issues {other:?}"),
    };
    KvInput {
        key: command.key().to_string(),
        action,
    }
}

fn start_op(driver: &Rc<ShardRun>, clerk: usize, command: KvCommand) {
    let step = {
        let mut state = driver.state.borrow_mut();
        let input = model_input(&command);
        let op = state
            .recorder
            .call(LinClient(clerk as u64 + 1), stamp(driver), input)
            .expect("one request per clerk at a time");
        let slot = &mut state.clerks[clerk];
        slot.op = Some(op);
        slot.clerk.start(command).expect("the clerk is idle")
    };
    handle_step(driver, clerk, step, Duration::ZERO);
}

/// Acts on what the clerk decided; `delay` holds back a resend after a refusal.
fn handle_step(driver: &Rc<ShardRun>, clerk: usize, step: ShardClerkStep, delay: Duration) {
    match step {
        ShardClerkStep::Ignored => {}
        ShardClerkStep::Send(outgoing) => {
            let attempt = outgoing.attempt;
            if attempt.number > 1 {
                driver.state.borrow_mut().stats.resends += 1;
            }
            let request = ShardRequest::Client {
                reply: ReplyTo::Clerk { clerk, attempt },
                envelope: outgoing.envelope,
            };
            let world = attempt.gid.0 as usize;
            driver.send(None, world, attempt.to, request, delay);
            let timeout = delay + driver.workload.timeout;
            let d = driver.clone();
            madsim::task::spawn_local(async move {
                madsim::time::sleep(timeout).await;
                if d.finished() {
                    return;
                }
                let step = d.state.borrow_mut().clerks[clerk].clerk.on_timeout(attempt);
                handle_step(&d, clerk, step, Duration::ZERO);
            });
        }
        ShardClerkStep::NeedConfig { .. } => {
            let pause = Duration::from_millis(driver.state.borrow_mut().rng.gen_range(20..60));
            query(driver, clerk, pause);
        }
        ShardClerkStep::Done { reply, .. } => finish_op(driver, clerk, reply),
        ShardClerkStep::Failed { seq, error } => {
            let what = format!("clerk {} request {seq} failed for good: {error}", clerk + 1);
            driver.fail(Failure::Node(what));
        }
    }
}

/// Asks the controller for the latest configuration after `pause`, with a timeout.
fn query(driver: &Rc<ShardRun>, clerk: usize, pause: Duration) {
    let (number, target) = {
        let mut state = driver.state.borrow_mut();
        let slot = &mut state.clerks[clerk];
        slot.queries += 1;
        slot.query = Some(slot.queries);
        (slot.queries, slot.ctrler_target)
    };
    let servers = GroupRole::Ctrler.servers();
    let to = servers[target % servers.len()];
    let request = ShardRequest::Query {
        reply: ReplyTo::ClerkQuery {
            clerk,
            query: number,
        },
        num: None,
    };
    driver.send(None, 0, to, request, pause);
    let timeout = pause + driver.workload.timeout;
    let d = driver.clone();
    madsim::task::spawn_local(async move {
        madsim::time::sleep(timeout).await;
        if d.finished() || d.state.borrow().clerks[clerk].query != Some(number) {
            return;
        }
        d.state.borrow_mut().clerks[clerk].ctrler_target += 1;
        query(&d, clerk, Duration::ZERO);
    });
}

/// A controller's answer to a clerk's query.
pub(crate) fn on_query_answer(driver: &Rc<ShardRun>, clerk: usize, number: u64, answer: Answer) {
    if driver.state.borrow().clerks[clerk].query != Some(number) {
        return;
    }
    let config = match answer {
        Answer::Config(Ok(config)) => config,
        Answer::Config(Err(KvError::WrongLeader { hint })) => {
            {
                let mut state = driver.state.borrow_mut();
                let slot = &mut state.clerks[clerk];
                slot.ctrler_target = match hint {
                    Some(leader) => GroupRole::Ctrler
                        .servers()
                        .iter()
                        .position(|&s| s == leader)
                        .unwrap_or(slot.ctrler_target + 1),
                    None => slot.ctrler_target + 1,
                };
            }
            let pause = Duration::from_millis(driver.state.borrow_mut().rng.gen_range(5..30));
            return query(driver, clerk, pause);
        }
        _ => {
            driver.state.borrow_mut().clerks[clerk].ctrler_target += 1;
            return query(driver, clerk, Duration::from_millis(10));
        }
    };
    let step = {
        let mut state = driver.state.borrow_mut();
        let slot = &mut state.clerks[clerk];
        slot.query = None;
        slot.clerk.on_config(config)
    };
    handle_step(driver, clerk, step, Duration::ZERO);
}

/// A group's answer to a clerk's request.
pub(crate) fn on_kv_answer(
    driver: &Rc<ShardRun>,
    clerk: usize,
    attempt: ShardAttempt,
    answer: Answer,
) {
    let Answer::Kv(reply) = answer else {
        return;
    };
    let refused = reply.is_err();
    let step = driver.state.borrow_mut().clerks[clerk]
        .clerk
        .on_reply(attempt, reply);
    if matches!(step, ShardClerkStep::Done { .. }) {
        // Which server answered, for a failure report (matched by clerk and return time).
        tracing::info!(
            clerk = clerk as u64 + 1,
            server = attempt.to.0,
            "reply accepted"
        );
    }
    // A refusal (wrong leader, not applied) is retried after a pause, so a group without a
    // leader is not hammered at the speed of the network.
    let delay = if refused {
        Duration::from_millis(driver.state.borrow_mut().rng.gen_range(10..40))
    } else {
        Duration::ZERO
    };
    handle_step(driver, clerk, step, delay);
}

/// Records the return and moves on: the next request, or the next final read.
fn finish_op(driver: &Rc<ShardRun>, clerk: usize, reply: KvReply) {
    {
        let mut state = driver.state.borrow_mut();
        let op = state.clerks[clerk]
            .op
            .take()
            .expect("a request was in flight");
        let at = stamp(driver);
        let output = match reply {
            KvReply::Done => KvOutput::Done,
            // The model reads a missing key as the empty string.
            KvReply::Value(value) => KvOutput::Value(value.unwrap_or_default()),
            other => panic!("a sharded kv clerk got {other:?}"),
        };
        state.recorder.ok(op, at, output).expect("the op was open");
        state.stats.completed += 1;
    }
    if driver.phase() == Phase::Faults {
        madsim::task::spawn_local(think_then_start(driver.clone(), clerk));
    } else {
        next_final_read(driver, clerk);
    }
}
