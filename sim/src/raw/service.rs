//! Raw Raft as a [`Service`]: the client's writes are proposed as they are, its reads are
//! read barriers, and every completed read is checked against the state it is served from.

use super::chain::ChainStateMachine;
use super::client::{parse_payload, Client, OpId, RawRequest};
use crate::checkers::Violation;
use crate::cluster::{SimNode, World};
use crate::config::{stream_rng, Stream, SwarmConfig};
use crate::runner::{faulting, Run, RunOptions, SeedReport};
use crate::service::Service;
use raft_core::{Event, LogIndex, NodeId, ProposalId, ReadId};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// The raw Raft service: one client.
pub struct RawService {
    /// The client.
    pub client: RefCell<Client>,
}

/// What one node's process waits for on the client's behalf.
#[derive(Debug, Default)]
pub struct RawProcess {
    proposals: BTreeMap<ProposalId, OpId>,
    /// Read barriers, with the read checker's bound when each was asked for.
    reads: BTreeMap<ReadId, (OpId, LogIndex)>,
}

impl RawService {
    /// The run of one seed of raw Raft.
    pub fn build(config: SwarmConfig, options: &RunOptions) -> Rc<Run<RawService>> {
        let client = Client::new(
            config.client.clone(),
            config.all_ids(),
            stream_rng(config.seed, Stream::Client),
        );
        let service = Rc::new(RawService {
            client: RefCell::new(client),
        });
        Run::single(service, config, options)
    }

    /// The state a read at `index` is served from (the node's state machine as the client
    /// would read it now) must hold every command up to `index`.
    fn check_served_state(
        world: &World<Self>,
        index: usize,
        read: LogIndex,
    ) -> Result<(), Violation> {
        let slot = world.slot(index);
        let served = {
            let guard = slot.node.borrow();
            guard
                .as_ref()
                .map(|node| (node.status().applied, node.state_machine().last_command()))
        };
        let Some((applied, sm_last_command)) = served else {
            return Ok(());
        };
        let mut checkers = world.checkers.borrow_mut();
        let history = checkers.apply.last_command_through(read);
        let now = world.now();
        checkers
            .read
            .served_state(now, slot.id, read, applied, sm_last_command, history)
    }
}

impl Service for RawService {
    type Machine = ChainStateMachine;
    type Request = RawRequest;
    type Process = RawProcess;
    type Group = ();

    fn machine(&self, _: &()) -> ChainStateMachine {
        ChainStateMachine::default()
    }

    fn process(&self, _: &(), _: NodeId) -> RawProcess {
        RawProcess::default()
    }

    fn on_request(
        &self,
        world: &Rc<World<Self>>,
        index: usize,
        node: &mut SimNode<Self>,
        process: &mut RawProcess,
        request: RawRequest,
    ) {
        let id = world.slot(index).id;
        let now = world.now();
        let (op, result) = match request {
            RawRequest::Write { op, data } => {
                world.record(id, "propose", op.0);
                let result = node.propose(data).map(|proposal| {
                    process.proposals.insert(proposal, op);
                });
                (op, result)
            }
            RawRequest::Read { op } => {
                world.record(id, "read", op.0);
                let bound = world.checkers.borrow().read.read_bound();
                let result = node.read_barrier().map(|read| {
                    process.reads.insert(read, (op, bound));
                });
                (op, result)
            }
        };
        if let Err(error) = result {
            let mut client = self.client.borrow_mut();
            if let raft_core::Error::NotLeader { hint } = error {
                client.leader_hint(hint);
            }
            client.retry_soon(now, op);
        }
    }

    fn on_event(
        &self,
        world: &World<Self>,
        index: usize,
        process: &mut RawProcess,
        event: &Event,
    ) -> Result<(), Violation> {
        let now = world.now();
        match event {
            Event::Applied { data, .. } => {
                if let Some(op) = parse_payload(data) {
                    self.client.borrow_mut().write_applied(op);
                }
            }
            Event::Committed { id, .. } => {
                process.proposals.remove(id);
            }
            Event::ProposalFailed { id, .. } => {
                if let Some(op) = process.proposals.remove(id) {
                    self.client.borrow_mut().retry_soon(now, op);
                }
            }
            Event::ReadReady { id, index: read } => {
                if let Some((op, bound)) = process.reads.remove(id) {
                    let node = world.slot(index).id;
                    world.record(node, "read-ready", read.0);
                    world
                        .checkers
                        .borrow_mut()
                        .read
                        .read_ready(now, node, bound, *read)?;
                    Self::check_served_state(world, index, *read)?;
                    self.client.borrow_mut().read_done(op, *read);
                }
            }
            Event::ReadFailed { id, .. } => {
                if let Some((op, _)) = process.reads.remove(id) {
                    self.client.borrow_mut().retry_soon(now, op);
                }
            }
            Event::LeaderChanged { leader, .. } if world.config.client.leader_oracle => {
                self.client.borrow_mut().leader_hint(*leader)
            }
            Event::LeaderChanged { .. } | Event::Persisted { .. } => {}
        }
        Ok(())
    }

    fn start_group(&self, world: &Rc<World<Self>>) {
        madsim::task::spawn_local(client_task(world.clone()));
    }

    fn heal(&self, run: &Rc<Run<Self>>) {
        // One last write and read: recovery must include making progress.
        let now = run.now();
        let mut client = self.client.borrow_mut();
        client.start(now, false);
        client.start(now, true);
    }

    fn waiting(&self, _: &Run<Self>) -> Option<String> {
        let pending = self.client.borrow().pending();
        (pending > 0).then(|| format!("{pending} client operation(s) pending"))
    }

    fn report(&self, report: &mut SeedReport) {
        report.client = self.client.borrow().stats;
    }
}

async fn client_task(world: Rc<World<RawService>>) {
    loop {
        let pause = world.service.client.borrow_mut().tick_every();
        madsim::time::sleep(pause).await;
        if world.finished() {
            return;
        }
        let now = world.now();
        let requests = world
            .service
            .client
            .borrow_mut()
            .tick(now, faulting(&world));
        for (target, request) in requests {
            world.send_client(target, request);
        }
    }
}
