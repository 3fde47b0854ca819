//! The client side of a replicated service, as a sans-IO state machine.
//!
//! A [`Clerk`] owns a client id and the next request number. For each request it says what
//! to send to whom ([`Outgoing`]); the caller delivers it, arms a timer, and feeds back the
//! reply ([`Clerk::on_reply`]) or the timeout ([`Clerk::on_timeout`]). The clerk then either
//! finishes the request or says where to send it next. It never sleeps, sends or reads a
//! clock, so the simulator (or a test) drives it deterministically.
//!
//! Every retry of one request carries the same seq, so the servers' session table applies it
//! at most once however many copies reach the log. One request is in flight at a time: the
//! session table only remembers each client's latest request.

use crate::kv::KvError;
use crate::rsm::Envelope;
use crate::sessions::{ClientId, Seq};
use raft_core::NodeId;

/// Names one send of one request; hand it back with the reply or the timeout so the clerk
/// can tell current answers from late ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Attempt {
    /// The request.
    pub seq: Seq,
    /// Which send of it this is, from 1.
    pub number: u64,
    /// The server it went to.
    pub to: NodeId,
}

/// A request to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing<C> {
    /// Where to send it (and the token to return with its reply or timeout).
    pub attempt: Attempt,
    /// What to send; encode it with [`Envelope::encode`].
    pub envelope: Envelope<C>,
}

/// What the caller must do after a reply or a timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClerkStep<C, R> {
    /// Send this (a retry of the current request, same seq) and arm a timer for it.
    Send(Outgoing<C>),
    /// The request completed with `reply`; the clerk is idle.
    Done {
        /// The request.
        seq: Seq,
        /// Its reply.
        reply: R,
    },
    /// The request failed for good (a stale or malformed request); the clerk is idle.
    Failed {
        /// The request.
        seq: Seq,
        /// Why.
        error: KvError,
    },
    /// The reply or timeout belonged to an earlier attempt or request; nothing to do.
    Ignored,
}

/// Why a clerk cannot be built or cannot start a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClerkError {
    /// The server list is empty.
    #[error("a clerk needs at least one server")]
    NoServers,
    /// A server appears twice in the list.
    #[error("server {0} is listed twice")]
    DuplicateServer(NodeId),
    /// A request is already in flight; finish or abandon it first.
    #[error("request {0} is still in flight")]
    Busy(Seq),
}

#[derive(Debug, Clone)]
struct InFlight<C> {
    seq: Seq,
    command: C,
    attempt: Attempt,
}

/// A sans-IO client that retries across servers, follows leader hints and reuses one seq per
/// request.
#[derive(Debug, Clone)]
pub struct Clerk<C> {
    client: ClientId,
    servers: Vec<NodeId>,
    /// Index into `servers` of the server believed to lead (the next one to try).
    target: usize,
    /// Index into `servers` of the round-robin position, advanced on every failure that is not
    /// a usable hint. Kept apart from `target` so that following a hint never resets the
    /// round: a stale replica that keeps pointing at a dead leader would otherwise send the
    /// clerk back and forth between the two (hint, time out, the server after the dead one,
    /// the same hint) and the other servers would never be tried.
    rotation: usize,
    next_seq: Seq,
    current: Option<InFlight<C>>,
    failures_in_row: u64,
    /// Hints followed since the last success or round-robin move. Bounded by the number of
    /// servers, so two servers pointing at each other cannot trap the clerk.
    hints_in_row: usize,
}

impl<C: Clone> Clerk<C> {
    /// A clerk for `client` over `servers`. The first server tried is chosen from the client
    /// id, which spreads clients over servers deterministically.
    ///
    /// # Errors
    /// An empty server list, or a server listed twice.
    pub fn new(client: ClientId, servers: Vec<NodeId>) -> Result<Self, ClerkError> {
        if servers.is_empty() {
            return Err(ClerkError::NoServers);
        }
        let mut sorted = servers.clone();
        sorted.sort();
        if let Some(pair) = sorted.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(ClerkError::DuplicateServer(pair[0]));
        }
        let target = (client.0 % servers.len() as u64) as usize;
        Ok(Clerk {
            client,
            servers,
            target,
            rotation: target,
            next_seq: Seq(1),
            current: None,
            failures_in_row: 0,
            hints_in_row: 0,
        })
    }

    /// This clerk's client id.
    pub fn client(&self) -> ClientId {
        self.client
    }

    /// The server the next send goes to.
    pub fn target(&self) -> NodeId {
        self.servers[self.target]
    }

    /// The seq the next new request will get.
    pub fn next_seq(&self) -> Seq {
        self.next_seq
    }

    /// The latest send of the request in flight, if any.
    pub fn in_flight(&self) -> Option<Attempt> {
        self.current.as_ref().map(|current| current.attempt)
    }

    /// Failed sends (errors and timeouts) of the current request. A caller backs off when
    /// this reaches a multiple of the number of servers (a whole round failed).
    pub fn consecutive_failures(&self) -> u64 {
        self.failures_in_row
    }

    /// Starts a request and returns its first send.
    ///
    /// # Errors
    /// [`ClerkError::Busy`] if a request is in flight; the clerk is then unchanged.
    pub fn start(&mut self, command: C) -> Result<Outgoing<C>, ClerkError> {
        if let Some(current) = &self.current {
            return Err(ClerkError::Busy(current.seq));
        }
        let seq = self.next_seq;
        self.next_seq = seq.next();
        self.failures_in_row = 0;
        self.hints_in_row = 0;
        let attempt = Attempt {
            seq,
            number: 1,
            to: self.target(),
        };
        self.current = Some(InFlight {
            seq,
            command,
            attempt,
        });
        Ok(self.outgoing())
    }

    /// Gives up on the request in flight and returns its seq. Its outcome stays unknown: a
    /// copy may still be applied. The next request gets a new seq, so a late copy of this one
    /// is then stale and cannot run after it.
    pub fn abandon(&mut self) -> Option<Seq> {
        self.current.take().map(|current| current.seq)
    }

    /// Consumes the reply to `attempt`.
    ///
    /// A successful reply to *any* send of the current request completes it: every send
    /// carries the same seq, so all of them have the same answer. An error only counts if it
    /// answers the latest send; older errors are stale news.
    pub fn on_reply<R>(&mut self, attempt: Attempt, reply: Result<R, KvError>) -> ClerkStep<C, R> {
        let Some(current) = &self.current else {
            return ClerkStep::Ignored;
        };
        if current.seq != attempt.seq {
            return ClerkStep::Ignored;
        }
        let seq = current.seq;
        match reply {
            Ok(reply) => {
                if let Some(position) = self.position(attempt.to) {
                    self.target = position;
                    self.rotation = position;
                }
                self.current = None;
                self.failures_in_row = 0;
                self.hints_in_row = 0;
                ClerkStep::Done { seq, reply }
            }
            Err(_) if current.attempt != attempt => ClerkStep::Ignored,
            Err(KvError::WrongLeader { hint }) => {
                self.failures_in_row += 1;
                self.follow_hint_or_rotate(attempt.to, hint);
                ClerkStep::Send(self.resend())
            }
            Err(KvError::Timeout) => {
                self.failures_in_row += 1;
                self.rotate(attempt.to);
                ClerkStep::Send(self.resend())
            }
            Err(error) => {
                debug_assert!(!error.is_retryable());
                self.current = None;
                ClerkStep::Failed { seq, error }
            }
        }
    }

    /// Consumes the timer of `attempt`: if it is the latest send, the request goes to the
    /// next server, with the same seq.
    pub fn on_timeout<R>(&mut self, attempt: Attempt) -> ClerkStep<C, R> {
        match &self.current {
            Some(current) if current.attempt == attempt => {
                self.failures_in_row += 1;
                self.rotate(attempt.to);
                ClerkStep::Send(self.resend())
            }
            _ => ClerkStep::Ignored,
        }
    }

    fn position(&self, server: NodeId) -> Option<usize> {
        self.servers
            .iter()
            .position(|&candidate| candidate == server)
    }

    /// Moves the round on past `failed`, the server that just failed.
    fn rotate(&mut self, failed: NodeId) {
        self.rotation = (self.rotation + 1) % self.servers.len();
        if self.position(failed) == Some(self.rotation) {
            // The round had come back to the server that just failed (after a hint).
            self.rotation = (self.rotation + 1) % self.servers.len();
        }
        self.target = self.rotation;
        self.hints_in_row = 0;
    }

    fn follow_hint_or_rotate(&mut self, rejected_by: NodeId, hint: Option<NodeId>) {
        let hinted = hint
            .filter(|&leader| leader != rejected_by)
            .and_then(|h| self.position(h));
        match hinted {
            Some(position) if self.hints_in_row < self.servers.len() => {
                self.target = position;
                self.hints_in_row += 1;
            }
            _ => self.rotate(rejected_by),
        }
    }

    fn resend(&mut self) -> Outgoing<C> {
        let to = self.target();
        let current = self
            .current
            .as_mut()
            .expect("resend without a request in flight");
        current.attempt = Attempt {
            seq: current.seq,
            number: current.attempt.number + 1,
            to,
        };
        self.outgoing()
    }

    fn outgoing(&self) -> Outgoing<C> {
        let current = self.current.as_ref().expect("no request in flight");
        assert_eq!(current.attempt.seq, current.seq);
        let envelope = Envelope {
            client: self.client,
            seq: current.seq,
            command: current.command.clone(),
        };
        Outgoing {
            attempt: current.attempt,
            envelope,
        }
    }
}
