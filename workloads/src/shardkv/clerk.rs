//! The client side of the sharded kv service, as a sans-IO state machine.
//!
//! A [`ShardClerk`] routes each request to the group that serves its key in the newest
//! configuration it knows, rotates among that group's servers on timeouts and wrong-leader
//! answers, and asks its caller for a newer configuration ([`ShardClerkStep::NeedConfig`])
//! when a group answers `WrongGroup` or no group serves the key. Like
//! [`Clerk`](crate::clerk::Clerk) it never sends, sleeps or reads a clock.
//!
//! One seq stream serves all groups: sessions are kept per shard and move with their shard,
//! so a retry that reaches the shard's new owner must carry the same seq as the first try,
//! and a client's later requests must carry higher seqs wherever they go.

use super::command::ShardKvError;
use crate::clerk::ClerkError;
use crate::kv::{KvCommand, KvError, KvReply};
use crate::rsm::Envelope;
use crate::sessions::{ClientId, Seq};
use crate::shardctrler::{ConfigNum, Gid, ShardConfig};
use raft_core::NodeId;
use std::collections::BTreeMap;

/// Names one send of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardAttempt {
    /// The request.
    pub seq: Seq,
    /// Which send of it this is, from 1.
    pub number: u64,
    /// The group it went to.
    pub gid: Gid,
    /// The server it went to.
    pub to: NodeId,
}

/// A request to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardOutgoing {
    /// Where it goes (and the token to return with its reply or timeout).
    pub attempt: ShardAttempt,
    /// What to send.
    pub envelope: Envelope<KvCommand>,
}

/// What the caller must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardClerkStep {
    /// Send this and arm a timer for it.
    Send(ShardOutgoing),
    /// Query the controller for a configuration newer than `known` and pass it to
    /// [`ShardClerk::on_config`] (after a pause if the latest is not newer).
    NeedConfig {
        /// The configuration the clerk routes by now.
        known: ConfigNum,
    },
    /// The request completed; the clerk is idle.
    Done {
        /// The request.
        seq: Seq,
        /// Its reply.
        reply: KvReply,
    },
    /// The request failed for good; the clerk is idle.
    Failed {
        /// The request.
        seq: Seq,
        /// Why.
        error: ShardKvError,
    },
    /// A late reply or timeout; nothing to do.
    Ignored,
}

#[derive(Debug, Clone)]
struct InFlight {
    seq: Seq,
    command: KvCommand,
    /// The latest send, if the request has been sent at all.
    attempt: Option<ShardAttempt>,
}

/// A sans-IO sharded kv client: one request in flight, one seq stream for all groups.
#[derive(Debug, Clone)]
pub struct ShardClerk {
    client: ClientId,
    config: ShardConfig,
    next_seq: Seq,
    current: Option<InFlight>,
    /// Per group, the index of the server believed to lead.
    targets: BTreeMap<Gid, usize>,
    /// Per group, the round-robin position and the hints followed since it last moved. Apart
    /// from `targets` so that hints never reset the round: a stale server naming a dead
    /// leader, or two servers naming each other, cannot keep the clerk from the others.
    rounds: BTreeMap<Gid, (usize, usize)>,
}

impl ShardClerk {
    /// A clerk for `client` that knows no configuration yet.
    pub fn new(client: ClientId) -> Self {
        ShardClerk {
            client,
            config: ShardConfig::initial(),
            next_seq: Seq(1),
            current: None,
            targets: BTreeMap::new(),
            rounds: BTreeMap::new(),
        }
    }

    /// The configuration requests are routed by.
    pub fn config(&self) -> &ShardConfig {
        &self.config
    }

    /// The seq the next new request will get.
    pub fn next_seq(&self) -> Seq {
        self.next_seq
    }

    /// Starts a request.
    ///
    /// # Errors
    /// [`ClerkError::Busy`] if a request is in flight; the clerk is then unchanged.
    pub fn start(&mut self, command: KvCommand) -> Result<ShardClerkStep, ClerkError> {
        if let Some(current) = &self.current {
            return Err(ClerkError::Busy(current.seq));
        }
        let seq = self.next_seq;
        self.next_seq = seq.next();
        self.current = Some(InFlight {
            seq,
            command,
            attempt: None,
        });
        Ok(self.send())
    }

    /// Gives up on the request in flight; a copy may still run (see
    /// [`Clerk::abandon`](crate::clerk::Clerk::abandon)).
    pub fn abandon(&mut self) -> Option<Seq> {
        self.current.take().map(|current| current.seq)
    }

    /// Adopts `config` if it is newer than the one known, then (re)sends the request in
    /// flight. An older or equal configuration changes nothing but still resends, so a
    /// caller that found nothing newer can simply try again.
    pub fn on_config(&mut self, config: ShardConfig) -> ShardClerkStep {
        if config.num > self.config.num && config.validate().is_ok() {
            self.config = config;
        }
        if self.current.is_none() {
            return ShardClerkStep::Ignored;
        }
        self.send()
    }

    /// Consumes the reply to `attempt`. Success from any send completes the request; an
    /// error counts only if it answers the latest send.
    pub fn on_reply(
        &mut self,
        attempt: ShardAttempt,
        reply: Result<KvReply, ShardKvError>,
    ) -> ShardClerkStep {
        let Some(current) = &self.current else {
            return ShardClerkStep::Ignored;
        };
        let seq = current.seq;
        if seq != attempt.seq {
            return ShardClerkStep::Ignored;
        }
        let latest = current.attempt == Some(attempt);
        match reply {
            Ok(reply) => {
                let position = self.position(attempt.gid, attempt.to);
                self.targets.insert(attempt.gid, position);
                self.rounds.insert(attempt.gid, (position, 0));
                self.current = None;
                ShardClerkStep::Done { seq, reply }
            }
            Err(_) if !latest => ShardClerkStep::Ignored,
            Err(ShardKvError::WrongGroup { .. }) => ShardClerkStep::NeedConfig {
                known: self.config.num,
            },
            Err(ShardKvError::Kv(KvError::WrongLeader { hint })) => {
                self.follow(attempt, hint);
                self.send()
            }
            Err(ShardKvError::Kv(KvError::Timeout)) => {
                self.follow(attempt, None);
                self.send()
            }
            Err(error) => {
                debug_assert!(!error.is_retryable(), "retryable errors are handled above");
                self.current = None;
                ShardClerkStep::Failed { seq, error }
            }
        }
    }

    /// Consumes the timer of `attempt`: the latest send moves on to the group's next server.
    pub fn on_timeout(&mut self, attempt: ShardAttempt) -> ShardClerkStep {
        match &self.current {
            Some(current) if current.attempt == Some(attempt) => {
                self.follow(attempt, None);
                self.send()
            }
            _ => ShardClerkStep::Ignored,
        }
    }

    fn position(&self, gid: Gid, server: NodeId) -> usize {
        let servers = self
            .config
            .groups
            .get(&gid)
            .map(Vec::as_slice)
            .unwrap_or_default();
        servers.iter().position(|&s| s == server).unwrap_or(0)
    }

    /// Points the group's target at the hinted server if it is one of the group's (at most
    /// one hint per server in a row), else at the next server of the round.
    fn follow(&mut self, attempt: ShardAttempt, hint: Option<NodeId>) {
        let Some(servers) = self.config.groups.get(&attempt.gid) else {
            return;
        };
        let hinted = hint
            .filter(|&h| h != attempt.to)
            .and_then(|h| servers.iter().position(|&s| s == h));
        let failed = self.position(attempt.gid, attempt.to);
        let (round, hints) = self.rounds.entry(attempt.gid).or_insert((failed, 0));
        let next = match hinted {
            Some(position) if *hints < servers.len() => {
                *hints += 1;
                position
            }
            _ => {
                *round = (*round + 1) % servers.len();
                if *round == failed {
                    // The round had come back to the server that just failed (after a hint).
                    *round = (*round + 1) % servers.len();
                }
                *hints = 0;
                *round
            }
        };
        self.targets.insert(attempt.gid, next);
    }

    /// Sends the request in flight to the owner of its key, or asks for a configuration.
    fn send(&mut self) -> ShardClerkStep {
        let current = self
            .current
            .as_ref()
            .expect("send without a request in flight");
        let gid = self.config.owner_of_key(current.command.key());
        let Some(servers) = self.config.groups.get(&gid) else {
            return ShardClerkStep::NeedConfig {
                known: self.config.num,
            };
        };
        assert!(!servers.is_empty(), "validated configurations list servers");
        let index = self.targets.get(&gid).copied().unwrap_or(0) % servers.len();
        let attempt = ShardAttempt {
            seq: current.seq,
            number: current.attempt.map_or(1, |a| a.number + 1),
            gid,
            to: servers[index],
        };
        let envelope = Envelope {
            client: self.client,
            seq: current.seq,
            command: current.command.clone(),
        };
        self.current.as_mut().expect("checked above").attempt = Some(attempt);
        ShardClerkStep::Send(ShardOutgoing { attempt, envelope })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shardctrler::{key_to_shard, CtrlerCommand, ShardCtrler};

    fn config_with(gids: &[u32]) -> ShardConfig {
        let mut ctrler = ShardCtrler::new();
        let groups = gids
            .iter()
            .map(|&g| {
                (
                    Gid(g),
                    vec![NodeId(u64::from(g) * 10), NodeId(u64::from(g) * 10 + 1)],
                )
            })
            .collect();
        ctrler.execute(CtrlerCommand::Join { groups }).unwrap();
        ctrler.latest().clone()
    }

    fn sent(step: ShardClerkStep) -> ShardOutgoing {
        match step {
            ShardClerkStep::Send(outgoing) => outgoing,
            other => panic!("expected a send, got {other:?}"),
        }
    }

    #[test]
    fn without_a_configuration_it_asks_for_one_then_routes_by_key() {
        let mut clerk = ShardClerk::new(ClientId(1));
        let get = KvCommand::Get { key: "k".into() };
        let step = clerk.start(get.clone()).unwrap();
        assert_eq!(
            step,
            ShardClerkStep::NeedConfig {
                known: ConfigNum(0)
            }
        );
        assert_eq!(clerk.start(get), Err(ClerkError::Busy(Seq(1))));
        let config = config_with(&[1, 2]);
        let owner = config.owner(key_to_shard("k"));
        let outgoing = sent(clerk.on_config(config));
        assert_eq!(outgoing.attempt.gid, owner);
        assert_eq!(outgoing.envelope.seq, Seq(1));
        let done = clerk.on_reply(outgoing.attempt, Ok(KvReply::Value(None)));
        assert_eq!(
            done,
            ShardClerkStep::Done {
                seq: Seq(1),
                reply: KvReply::Value(None)
            }
        );
        assert_eq!(clerk.next_seq(), Seq(2));
    }

    #[test]
    fn wrong_group_asks_for_a_config_and_keeps_the_seq() {
        let mut clerk = ShardClerk::new(ClientId(1));
        clerk.on_config(config_with(&[1]));
        let put = KvCommand::Put {
            key: "k".into(),
            value: "v".into(),
        };
        let first = sent(clerk.start(put).unwrap());
        let wrong = Err(ShardKvError::WrongGroup {
            shard: key_to_shard("k"),
            num: ConfigNum(1),
        });
        assert_eq!(
            clerk.on_reply(first.attempt, wrong),
            ShardClerkStep::NeedConfig {
                known: ConfigNum(1)
            }
        );
        let mut newer = config_with(&[2]);
        newer.num = ConfigNum(2);
        let second = sent(clerk.on_config(newer));
        assert_eq!(second.attempt.gid, Gid(2));
        assert_eq!(
            second.envelope.seq, first.envelope.seq,
            "a retry keeps its seq"
        );
        assert_eq!(second.attempt.number, 2);
    }

    /// Found by the kv clerk's twin under simulation: a stale server naming a dead leader
    /// must not keep the clerk from the group's other servers.
    #[test]
    fn a_stale_hint_to_a_dead_server_cannot_trap_the_clerk() {
        let mut ctrler = ShardCtrler::new();
        let three = vec![NodeId(10), NodeId(11), NodeId(12)];
        let groups = BTreeMap::from([(Gid(1), three)]);
        ctrler.execute(CtrlerCommand::Join { groups }).unwrap();
        let mut clerk = ShardClerk::new(ClientId(1));
        clerk.on_config(ctrler.latest().clone());
        let mut out = sent(clerk.start(KvCommand::Get { key: "k".into() }).unwrap());
        let servers = clerk.config.groups[&out.attempt.gid].clone();
        let (stale, leader, dead) = (servers[0], servers[1], servers[2]);
        assert_eq!(out.attempt.to, stale);
        for _ in 0..12 {
            let step = if out.attempt.to == leader {
                clerk.on_reply(out.attempt, Ok(KvReply::Value(None)))
            } else if out.attempt.to == dead {
                clerk.on_timeout(out.attempt)
            } else {
                let hint = KvError::WrongLeader { hint: Some(dead) };
                clerk.on_reply(out.attempt, Err(ShardKvError::Kv(hint)))
            };
            match step {
                ShardClerkStep::Done { .. } => return,
                step => out = sent(step),
            }
        }
        panic!("the clerk never reached {leader}");
    }

    #[test]
    fn wrong_leader_and_timeouts_rotate_within_the_group_and_late_errors_are_ignored() {
        let mut clerk = ShardClerk::new(ClientId(1));
        clerk.on_config(config_with(&[1]));
        let first = sent(clerk.start(KvCommand::Get { key: "k".into() }).unwrap());
        assert_eq!(first.attempt.to, NodeId(10));
        let hint = Err(ShardKvError::Kv(KvError::WrongLeader {
            hint: Some(NodeId(11)),
        }));
        let second = sent(clerk.on_reply(first.attempt, hint.clone()));
        assert_eq!(second.attempt.to, NodeId(11));
        assert_eq!(clerk.on_reply(first.attempt, hint), ShardClerkStep::Ignored);
        let third = sent(clerk.on_timeout(second.attempt));
        assert_eq!(third.attempt.to, NodeId(10));
        let stale = Err(ShardKvError::Kv(KvError::Stale { last: Seq(3) }));
        assert!(matches!(
            clerk.on_reply(third.attempt, stale),
            ShardClerkStep::Failed { .. }
        ));
        assert_eq!(clerk.on_timeout(third.attempt), ShardClerkStep::Ignored);
    }
}
