//! Clerks that retry, in simulated time, recording every call and return: the client side a
//! [`Service`] gets for free if its requests are [`ClerkRequest`]s.
//!
//! Each clerk runs one `workloads::Clerk` request at a time: it draws a command (`next`),
//! records the call, sends the first attempt after a latency and arms a timeout; on a
//! timeout or a retryable error it resends the same seq to the next server (following leader
//! hints). New requests stop with the fault phase, so the liveness phase ends once every
//! clerk is idle. A request that failed for good is recorded with an unknown outcome (it may
//! or may not have run); one still in flight when the run ends stays open.

use crate::cluster::{Phase, World};
use crate::config::{stream_rng, Stream};
use crate::service::Service;
use linearizability::{ClientId as LinClient, OpId, Operation, Recorder, Timestamp};
use raft_core::NodeId;
use rand::rngs::SmallRng;
use rand::Rng;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use workloads::{Attempt, Clerk, ClerkStep, ClientId, Envelope, KvError};

/// A clerk's request as it reaches a server; the reply goes to `(clerk, attempt)`.
#[derive(Clone, Debug)]
pub struct ClerkRequest<C> {
    /// Which clerk sent it.
    pub clerk: usize,
    /// The send it is.
    pub attempt: Attempt,
    /// What the clerk asks.
    pub envelope: Envelope<C>,
}

/// A service whose clients are [`Clerks`].
pub trait HasClerks<C, R>: Service<Request = ClerkRequest<C>> {
    /// The service's clerks.
    fn clerks(&self) -> &Clerks<C, R>;
}

struct State<C, R> {
    rng: SmallRng,
    clerks: Vec<(Clerk<C>, Option<OpId>)>,
    history: Recorder<C, R>,
}

/// The clerks of one run and their history (inputs are the commands, outputs the replies).
pub struct Clerks<C, R> {
    state: RefCell<State<C, R>>,
    next: fn(&mut SmallRng, usize) -> C,
    /// Pause between a clerk's requests and latency of each way (uniform below these).
    pub think: Duration,
    /// A clerk resends after this long without an answer.
    pub timeout: Duration,
}

impl<C: Clone + 'static, R: Clone + 'static> Clerks<C, R> {
    /// `count` clerks of `servers` (client ids 1..=count) drawing commands from `next`
    /// (given the seed's generator and the clerk's index).
    pub fn new(
        seed: u64,
        count: usize,
        servers: &[NodeId],
        next: fn(&mut SmallRng, usize) -> C,
    ) -> Self {
        let clerks = (1..=count as u64)
            .map(|id| {
                (
                    Clerk::new(ClientId(id), servers.to_vec()).expect("servers"),
                    None,
                )
            })
            .collect();
        let state = State {
            rng: stream_rng(seed ^ 0x636c_6572_6b73, Stream::Kv),
            clerks,
            history: Recorder::new(),
        };
        Clerks {
            state: RefCell::new(state),
            next,
            think: Duration::from_millis(20),
            timeout: Duration::from_millis(300),
        }
    }

    /// Requests in flight.
    pub fn busy(&self) -> usize {
        self.state
            .borrow()
            .clerks
            .iter()
            .filter(|c| c.1.is_some())
            .count()
    }

    /// The recorded history.
    pub fn history(&self) -> Vec<Operation<C, R>> {
        self.state.borrow().history.clone().finish()
    }

    /// Starts every clerk's loop (call it from `Service::start_group`).
    pub fn start<S: HasClerks<C, R>>(world: &Rc<World<S>>) {
        let count = world.service.clerks().state.borrow().clerks.len();
        for clerk in 0..count {
            next_op(world.clone(), clerk);
        }
    }

    /// A server's reply to `(clerk, attempt)`: delivered after a latency.
    pub fn reply<S: HasClerks<C, R>>(
        world: &Rc<World<S>>,
        to: (usize, Attempt),
        reply: Result<R, KvError>,
    ) {
        let (clerk, attempt) = to;
        let delay = world.service.clerks().delay();
        later(world, delay, move |w| {
            let step = w.service.clerks().state.borrow_mut().clerks[clerk]
                .0
                .on_reply(attempt, reply);
            handle(w, clerk, step);
        });
    }

    fn delay(&self) -> Duration {
        let most = self.think.as_micros().max(1_000) as u64;
        Duration::from_micros(self.state.borrow_mut().rng.gen_range(1_000..=most))
    }
}

/// Runs `f` after `delay` unless the run has finished by then.
fn later<S: Service>(
    world: &Rc<World<S>>,
    delay: Duration,
    f: impl FnOnce(&Rc<World<S>>) + 'static,
) {
    let world = world.clone();
    madsim::task::spawn_local(async move {
        madsim::time::sleep(delay).await;
        if !world.finished() {
            f(&world);
        }
    });
}

fn stamp<S: Service>(world: &World<S>) -> Timestamp {
    Timestamp(world.now().as_micros() as u64)
}

/// Clerk `clerk` thinks, then starts its next request (only while faults are on).
fn next_op<C: Clone + 'static, R: Clone + 'static, S: HasClerks<C, R>>(
    world: Rc<World<S>>,
    clerk: usize,
) {
    let delay = world.service.clerks().delay();
    later(&world, delay, move |w| {
        if w.phase() != Phase::Faults {
            return;
        }
        let clerks = w.service.clerks();
        let first = {
            let mut state = clerks.state.borrow_mut();
            let state = &mut *state;
            let command = (clerks.next)(&mut state.rng, clerk);
            let call = state
                .history
                .call(LinClient(clerk as u64 + 1), stamp(w), command.clone());
            state.clerks[clerk].1 = Some(call.expect("one request per clerk at a time"));
            state.clerks[clerk]
                .0
                .start(command)
                .expect("the clerk is idle")
        };
        handle(w, clerk, ClerkStep::Send(first));
    });
}

/// Acts on what the clerk decided: send (and arm the timeout), or record the return.
fn handle<C: Clone + 'static, R: Clone + 'static, S: HasClerks<C, R>>(
    world: &Rc<World<S>>,
    clerk: usize,
    step: ClerkStep<C, R>,
) {
    let clerks = world.service.clerks();
    match step {
        ClerkStep::Ignored => {}
        ClerkStep::Send(out) => {
            let attempt = out.attempt;
            let request = ClerkRequest {
                clerk,
                attempt,
                envelope: out.envelope,
            };
            later(world, clerks.delay(), move |w| {
                w.send_client(attempt.to, request)
            });
            later(world, clerks.timeout, move |w| {
                let step = w.service.clerks().state.borrow_mut().clerks[clerk]
                    .0
                    .on_timeout(attempt);
                handle(w, clerk, step);
            });
        }
        ClerkStep::Done { .. } | ClerkStep::Failed { .. } => {
            {
                let mut state = clerks.state.borrow_mut();
                let op = state.clerks[clerk]
                    .1
                    .take()
                    .expect("a request was in flight");
                match step {
                    ClerkStep::Done { reply, .. } => state.history.ok(op, stamp(world), reply),
                    _ => state.history.unknown(op, stamp(world)),
                }
                .expect("the request was open");
            }
            next_op(world.clone(), clerk);
        }
    }
}
