//! The administrator: Joins, Leaves and Moves sent to the controller during the fault phase.
//!
//! One command at a time through a `workloads::Clerk` (retries keep their seq, so the
//! controller's session table runs each command once). The first command joins the groups
//! that start in the configuration; afterwards, at random intervals, a random group joins or
//! leaves (never the last one: a configuration without groups drops the data by design), or,
//! on seeds with moves, one shard moves to a random member. The controller refusing a
//! command the administrator's own bookkeeping says is valid fails the seed.

use super::driver::ShardRun;
use super::member::GroupLayout;
use crate::cluster::{Failure, Phase};
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;
use workloads::clerk::{Attempt, Clerk, ClerkStep, Outgoing};
use workloads::shardctrler::{CtrlerCommand, CtrlerError, CtrlerReply, Gid, ShardId, NSHARDS};
use workloads::shardkv::{Answer, GroupRole, ReplyTo, ShardRequest};
use workloads::{ClientId, KvError};

/// The administrator's client id (clerks use 1..=clients).
const ADMIN_CLIENT: ClientId = ClientId(1_000_000);

/// The administrator's state.
pub(crate) struct AdminState {
    clerk: Clerk<CtrlerCommand>,
    members: BTreeSet<Gid>,
    /// The command in flight.
    current: Option<CtrlerCommand>,
    /// Configuration changes the controller accepted.
    pub(crate) changes: u64,
}

impl AdminState {
    /// An idle administrator.
    pub(crate) fn new() -> AdminState {
        AdminState {
            clerk: Clerk::new(ADMIN_CLIENT, GroupRole::Ctrler.servers()).expect("distinct servers"),
            members: BTreeSet::new(),
            current: None,
            changes: 0,
        }
    }

    /// Whether a command is in flight.
    pub(crate) fn busy(&self) -> bool {
        self.current.is_some()
    }
}

fn join(gids: impl IntoIterator<Item = Gid>) -> CtrlerCommand {
    let groups: BTreeMap<Gid, _> = gids
        .into_iter()
        .map(|gid| (gid, GroupRole::Replica(gid).servers()))
        .collect();
    CtrlerCommand::Join { groups }
}

/// Joins the initial groups, then churns until the fault phase ends.
pub(crate) fn start(driver: &Rc<ShardRun>) {
    let initial = (1..=driver.workload.initial as u32).map(Gid);
    issue(driver, join(initial));
    madsim::task::spawn_local(churn(driver.clone()));
}

async fn churn(driver: Rc<ShardRun>) {
    loop {
        let pause = {
            let mut state = driver.state.borrow_mut();
            let mean = driver.workload.churn_every.as_millis() as u64;
            Duration::from_millis(state.rng.gen_range(mean / 2..=mean * 3 / 2))
        };
        madsim::time::sleep(pause).await;
        if driver.phase() != Phase::Faults {
            return;
        }
        if driver.state.borrow().admin.busy() {
            continue;
        }
        if let Some(command) = next_command(&driver) {
            issue(&driver, command);
        }
    }
}

fn next_command(driver: &ShardRun) -> Option<CtrlerCommand> {
    let mut state = driver.state.borrow_mut();
    let state = &mut *state;
    let members: Vec<Gid> = state.admin.members.iter().copied().collect();
    if driver.workload.moves && !members.is_empty() && state.rng.gen_bool(0.25) {
        let shard = ShardId(state.rng.gen_range(0..NSHARDS) as u8);
        let gid = members[state.rng.gen_range(0..members.len())];
        return Some(CtrlerCommand::Move { shard, gid });
    }
    let gid = Gid(state.rng.gen_range(1..=driver.workload.groups as u32));
    if !state.admin.members.contains(&gid) {
        Some(join([gid]))
    } else if members.len() > 1 {
        Some(CtrlerCommand::Leave { gids: vec![gid] })
    } else {
        None
    }
}

pub(crate) fn issue(driver: &Rc<ShardRun>, command: CtrlerCommand) {
    tracing::info!(?command, "administrator");
    let outgoing = {
        let mut state = driver.state.borrow_mut();
        state.admin.current = Some(command.clone());
        state
            .admin
            .clerk
            .start(command)
            .expect("one command at a time")
    };
    send(driver, outgoing, Duration::ZERO);
}

fn send(driver: &Rc<ShardRun>, outgoing: Outgoing<CtrlerCommand>, delay: Duration) {
    let attempt = outgoing.attempt;
    let request = ShardRequest::Admin {
        reply: ReplyTo::Admin { attempt },
        envelope: outgoing.envelope,
    };
    driver.send(None, 0, attempt.to, request, delay);
    let timeout = delay + driver.workload.timeout;
    let d = driver.clone();
    madsim::task::spawn_local(async move {
        madsim::time::sleep(timeout).await;
        if d.finished() {
            return;
        }
        let step = d.state.borrow_mut().admin.clerk.on_timeout(attempt);
        handle(&d, step);
    });
}

type Step = ClerkStep<CtrlerCommand, Result<CtrlerReply, CtrlerError>>;

/// The controller's answer to the administrator.
pub(crate) fn on_answer(driver: &Rc<ShardRun>, attempt: Attempt, answer: Answer) {
    let Answer::Admin(reply) = answer else {
        return;
    };
    let refused = matches!(reply, Err(KvError::WrongLeader { .. } | KvError::Timeout));
    let step: Step = driver
        .state
        .borrow_mut()
        .admin
        .clerk
        .on_reply(attempt, reply);
    match step {
        ClerkStep::Send(outgoing) if refused => {
            let pause = Duration::from_millis(driver.state.borrow_mut().rng.gen_range(10..40));
            send(driver, outgoing, pause);
        }
        step => handle(driver, step),
    }
}

fn handle(driver: &Rc<ShardRun>, step: Step) {
    match step {
        ClerkStep::Ignored => {}
        ClerkStep::Send(outgoing) => send(driver, outgoing, Duration::ZERO),
        ClerkStep::Done {
            reply: Ok(CtrlerReply::Created(num)),
            ..
        } => {
            let mut state = driver.state.borrow_mut();
            let admin = &mut state.admin;
            match admin.current.take() {
                Some(CtrlerCommand::Join { groups }) => admin.members.extend(groups.keys()),
                Some(CtrlerCommand::Leave { gids }) => {
                    gids.iter().for_each(|gid| {
                        admin.members.remove(gid);
                    });
                }
                _ => {}
            }
            admin.changes += 1;
            tracing::info!(num = num.0, members = ?admin.members, "configuration created");
        }
        ClerkStep::Done { reply, .. } => {
            let command = driver.state.borrow_mut().admin.current.take();
            let what = format!("the controller answered {command:?} with {reply:?}");
            driver.fail(Failure::Node(what));
        }
        ClerkStep::Failed { error, .. } => {
            let command = driver.state.borrow_mut().admin.current.take();
            let what = format!("the controller refused {command:?} for good: {error}");
            driver.fail(Failure::Node(what));
        }
    }
}
