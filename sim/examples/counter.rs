//! A replicated counter on raft-core under the simulator's whole fault model: the smallest
//! service to copy. Clerks (`sim::clerks`, which retry with the same seq) send `Add` and
//! `Get`; both go through the log, `Deduplicated` runs each request once, and the recorded
//! history is checked against [`CounterModel`] when the seed ends.
//!
//! Planted bug `local_gets`: a leader answers `Get` from its own state instead of through
//! the log, so a deposed leader that still believes it leads returns a stale total.
//!
//! `cargo run --release -p sim --example counter -- --seeds 1..201 [--bug local_gets]`

use linearizability::Model;
use raft_core::{Event, NodeId, Role};
use rand::{rngs::SmallRng, Rng};
use serde::{Deserialize, Serialize};
use sim::clerks::{ClerkRequest, Clerks, HasClerks};
use sim::cluster::{Failure, SimNode, World};
use sim::runner::{Run, RunOptions};
use sim::workload::{Custom, SeedFuture, Workload};
use sim::{Service, SwarmConfig};
use std::rc::Rc;
use workloads::{App, ApplyOutcome, Attempt, Deduplicated, KvError, ProposalWaiters, Resolution};

/// What a clerk asks; both return the total after the operation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
enum Op {
    Add(u64),
    Get,
}

/// The replicated state: one number.
struct Counter(u64);

impl App for Counter {
    type Command = Op;
    type Reply = u64;
    fn apply(&mut self, op: Op) -> u64 {
        self.0 += if let Op::Add(n) = op { n } else { 0 };
        self.0
    }
    fn snapshot(&self) -> Vec<u8> {
        self.0.to_le_bytes().to_vec()
    }
    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        self.0 = u64::from_le_bytes(data.try_into().map_err(|_| "not 8 bytes")?);
        Ok(())
    }
}

/// The specification: one number; `Add` adds, and both return the total.
struct CounterModel;

impl Model for CounterModel {
    type State = u64;
    type Input = Op;
    type Output = u64;
    fn init(&self) -> u64 {
        0
    }
    fn step(&self, total: &u64, op: &Op, out: Option<&u64>) -> Option<u64> {
        let next = total + if let Op::Add(n) = op { *n } else { 0 };
        out.is_none_or(|&out| out == next).then_some(next)
    }
}

/// The service: its clerks, and whether the planted bug is on.
struct CounterService {
    local_gets: bool,
    clerks: Clerks<Op, u64>,
}

impl HasClerks<Op, u64> for CounterService {
    fn clerks(&self) -> &Clerks<Op, u64> {
        &self.clerks
    }
}

/// A node's server process: the clerks waiting for their proposals.
type Waiters = ProposalWaiters<(usize, Attempt)>;

impl Service for CounterService {
    type Machine = Deduplicated<Counter>;
    type Request = ClerkRequest<Op>;
    type Process = Waiters;
    type Group = ();

    fn machine(&self, _: &()) -> Deduplicated<Counter> {
        Deduplicated::new(Counter(0))
    }

    fn process(&self, _: &(), _: NodeId) -> Waiters {
        ProposalWaiters::new(64)
    }

    fn on_request(
        &self,
        world: &Rc<World<Self>>,
        _: usize,
        node: &mut SimNode<Self>,
        waiters: &mut Waiters,
        request: ClerkRequest<Op>,
    ) {
        let to = (request.clerk, request.attempt);
        let (role, hint) = (node.status().role, node.status().leader);
        if role != Role::Leader {
            return Clerks::reply(world, to, Err(KvError::WrongLeader { hint }));
        }
        if request.envelope.command == Op::Get && self.local_gets {
            // BUG (planted, `local_gets`): no trip through the log.
            return Clerks::reply(world, to, Ok(node.state_machine().app().0));
        }
        let proposed = request.envelope.encode().map(|bytes| node.propose(bytes));
        match proposed {
            Ok(Ok(id)) if !waiters.is_full() => waiters.register(id, to),
            // Not proposed, or no room to wait for it: the clerk retries (the same seq).
            _ => Clerks::reply(world, to, Err(KvError::Timeout)),
        }
    }

    fn on_events(
        &self,
        world: &Rc<World<Self>>,
        _: usize,
        _: &SimNode<Self>,
        waiters: &mut Waiters,
        events: &[Event],
    ) {
        for resolution in waiters.on_events(events) {
            match resolution {
                Resolution::Applied { waiter, result, .. } => {
                    let outcome = ApplyOutcome::<u64>::decode(&result).expect("our encoding");
                    Clerks::reply(world, waiter, outcome.into_response());
                }
                Resolution::Superseded { waiter, .. } | Resolution::Unknown { waiter, .. } => {
                    Clerks::reply(world, waiter, Err(KvError::Timeout))
                }
            }
        }
    }

    fn start_group(&self, world: &Rc<World<Self>>) {
        Clerks::start(world);
    }

    fn waiting(&self, _: &Run<Self>) -> Option<String> {
        let busy = self.clerks.busy();
        (busy > 0).then(|| format!("{busy} clerk request(s) pending"))
    }

    fn finish(&self, _: &Run<Self>) -> Result<(), Failure> {
        sim::service::check_linearizable(&CounterModel, &self.clerks.history())
    }
}

/// What clerk `clerk` asks next: as often a read as an add of its own amount.
fn next_op(rng: &mut SmallRng, clerk: usize) -> Op {
    if rng.gen_bool(0.5) {
        Op::Get
    } else {
        Op::Add(clerk as u64 + 1)
    }
}

/// One seed of the counter (inside its madsim runtime).
fn run(config: SwarmConfig, options: RunOptions) -> SeedFuture {
    let Workload::Custom(custom) = options.workload else {
        unreachable!("the counter runs only itself")
    };
    let service = Rc::new(CounterService {
        local_gets: custom.bug == Some("local_gets"),
        clerks: Clerks::new(config.seed, 4, &config.all_ids(), next_op),
    });
    Box::pin(sim::simulate(Run::single(service, config, &options)))
}

/// The counter as the command line, the sweeps and the tests run it.
const COUNTER: Custom = Custom {
    name: "counter",
    command: "cargo run --release -p sim --example counter --",
    bugs: &[(
        "local_gets",
        "a leader answers Get from its own state, not the log",
    )],
    bug: None,
    run,
};

fn main() -> std::process::ExitCode {
    sim::cli::main_with(Some(COUNTER))
}

#[test]
fn the_counter_survives_the_fault_model_and_its_planted_bug_is_caught() {
    sim::testing::assert_seeds_pass(Workload::Custom(COUNTER), 1..6);
    let buggy = Workload::Custom(COUNTER.with_bug("local_gets").expect("a planted bug"));
    let caught = sim::testing::first_failure(buggy, 1..41).expect("local_gets is caught");
    println!("{caught}");
    assert!(caught.reproduce.contains("--example counter -- --seed"));
    assert!(caught.what.contains("not linearizable"), "{caught}");
}
