//! Runs one `raft_core::Node` as a madsim task.
//!
//! The node itself lives in its [`Slot`](crate::cluster::Slot), owned by the cluster, so the
//! checkers can look at every node's log at once and a crash can drop the process from outside.
//! The host task only drives it: it waits for the next input (a peer message or a client
//! request) or for the node's next deadline (its timer, or the completion of an fsync it is
//! waiting for), whichever comes first, and hands it to
//! [`World::step`](crate::cluster::World::step). A crash bumps the slot's incarnation, which
//! makes the old host task return; a restart spawns a new one. A paused node's host does not
//! run at all, while messages keep arriving in its mailbox, as with a frozen process.

use crate::cluster::{Input, World};
use crate::service::Service;
use madsim::time::{Instant, Sleep};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

/// madsim's shortest sleep.
const MIN_SLEEP: Duration = Duration::from_millis(1);

/// What woke the host.
enum Woke<S: Service> {
    /// The node was crashed (or the run ended): the host must return.
    Stop,
    /// An input to handle.
    Input(Input<S>),
    /// The node's timer deadline passed.
    Timer,
    /// The timer armed for an earlier deadline fired; arm one for the current deadline.
    Rearm,
}

/// How the host waits for the node's deadline.
///
/// madsim adds a timer entry every time a pending `Sleep` is polled, and the host is woken by
/// every message. Re-arming a timer per message would double the timer load, so a timer that
/// is already armed for an instant no later than the deadline is reused: when it fires, the
/// host re-arms for the current deadline (`Woke::Rearm`).
enum Timer {
    /// The deadline has passed.
    Due,
    /// A timer armed at `armed` will wake the task; the deadline itself is `deadline`.
    Armed { armed: Instant, deadline: Instant },
    /// A fresh timer.
    Fresh(Sleep),
}

/// Waits for the next thing the node must handle.
struct NextWork<'a, S: Service> {
    world: &'a World<S>,
    index: usize,
    incarnation: u64,
    timer: Timer,
}

impl<S: Service> Future for NextWork<'_, S> {
    type Output = Woke<S>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Woke<S>> {
        let slot = self.world.slot(self.index);
        if slot.incarnation() != self.incarnation || self.world.finished() {
            return Poll::Ready(Woke::Stop);
        }
        slot.set_waker(cx.waker());
        if slot.paused() {
            return Poll::Pending;
        }
        if let Some(input) = slot.pop_input() {
            return Poll::Ready(Woke::Input(input));
        }
        match &mut self.timer {
            Timer::Due => Poll::Ready(Woke::Timer),
            Timer::Armed { armed, deadline } => {
                let now = Instant::now();
                if now >= *deadline {
                    Poll::Ready(Woke::Timer)
                } else if now >= *armed {
                    Poll::Ready(Woke::Rearm)
                } else {
                    Poll::Pending
                }
            }
            Timer::Fresh(sleep) => Pin::new(sleep).poll(cx).map(|()| Woke::Timer),
        }
    }
}

/// The host task of node `index` for one incarnation (process lifetime).
pub async fn host<S: Service>(world: Rc<World<S>>, index: usize, incarnation: u64) {
    let mut armed: Option<Instant> = None;
    loop {
        // Recomputed every round: the deadline moves as the node handles inputs.
        let Some(wait) = world.time_to_deadline(index) else {
            return;
        };
        let now = Instant::now();
        armed = armed.filter(|&at| at > now);
        let timer = if wait.is_zero() {
            Timer::Due
        } else {
            // madsim never sleeps less than 1 ms.
            let deadline = now + wait.max(MIN_SLEEP);
            match armed {
                Some(at) if at <= deadline => Timer::Armed {
                    armed: at,
                    deadline,
                },
                _ => {
                    armed = Some(deadline);
                    Timer::Fresh(madsim::time::sleep_until(deadline))
                }
            }
        };
        let next = NextWork {
            world: &world,
            index,
            incarnation,
            timer,
        };
        match next.await {
            Woke::Stop => return,
            Woke::Input(input) => world.step(index, Some(input)),
            Woke::Timer => world.step(index, None),
            Woke::Rearm => continue,
        }
    }
}
