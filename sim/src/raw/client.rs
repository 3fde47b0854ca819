//! The raw Raft client: opaque writes and read barriers.
//!
//! The client proposes writes and issues read barriers, always to the node it believes leads.
//! A write is identified by the bytes it carries (`"op"` + its id), so it completes when any
//! node applies it, whichever attempt got it there. Requests that get no answer within
//! `retry_after` (the node crashed, the leader was deposed, the message was lost) are retried,
//! possibly on another node; a write may therefore be applied twice, which the state machine
//! tolerates (it just chains commands).

use crate::config::ClientConfig;
use raft_core::{LogIndex, NodeId};
use rand::rngs::SmallRng;
use rand::Rng;
use std::collections::BTreeMap;
use std::time::Duration;

/// Identifies one client operation across its attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub u64);

const WRITE_TAG: &[u8; 2] = b"op";

/// The bytes of write `op`: a tag, the id, and some padding so entries vary in size.
pub fn write_payload(op: OpId, padding: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(10 + padding);
    data.extend_from_slice(WRITE_TAG);
    data.extend_from_slice(&op.0.to_le_bytes());
    data.extend((0..padding).map(|i| (op.0 as usize + i) as u8));
    data
}

/// The op id carried by an applied command, if it is a client write.
pub fn parse_payload(data: &[u8]) -> Option<OpId> {
    let rest = data.strip_prefix(WRITE_TAG)?;
    let id: [u8; 8] = rest.get(..8)?.try_into().ok()?;
    Some(OpId(u64::from_le_bytes(id)))
}

/// A request the client hands to one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawRequest {
    /// Propose this command.
    Write {
        /// The operation.
        op: OpId,
        /// Command bytes.
        data: Vec<u8>,
    },
    /// Start a read barrier.
    Read {
        /// The operation.
        op: OpId,
    },
}

#[derive(Clone, Debug)]
enum OpKind {
    Write(Vec<u8>),
    Read,
}

#[derive(Clone, Debug)]
struct PendingOp {
    kind: OpKind,
    retry_at: Duration,
    attempts: u32,
}

/// Counters for the run summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClientStats {
    /// Writes that completed.
    pub writes: u64,
    /// Reads that completed.
    pub reads: u64,
    /// Attempts beyond the first.
    pub retries: u64,
}

/// The client; a pure state machine driven by the cluster.
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    nodes: Vec<NodeId>,
    rng: SmallRng,
    next_op: u64,
    pending: BTreeMap<OpId, PendingOp>,
    leader: Option<NodeId>,
    /// Counters.
    pub stats: ClientStats,
}

impl Client {
    /// A client of `nodes`.
    pub fn new(config: ClientConfig, nodes: Vec<NodeId>, rng: SmallRng) -> Client {
        assert!(!nodes.is_empty(), "a client needs nodes");
        Client {
            config,
            nodes,
            rng,
            next_op: 1,
            pending: BTreeMap::new(),
            leader: None,
            stats: ClientStats::default(),
        }
    }

    /// The mean pause between ticks.
    pub fn tick_every(&mut self) -> Duration {
        let mean = self.config.op_every.as_micros() as u64;
        Duration::from_micros(self.rng.gen_range(mean / 2..=mean * 3 / 2).max(1_000))
    }

    /// Operations still waiting for completion.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Starts a new operation if `new_ops` and there is room, and retries every due one.
    /// Returns the requests to send, with their target nodes.
    pub fn tick(&mut self, now: Duration, new_ops: bool) -> Vec<(NodeId, RawRequest)> {
        if new_ops && self.pending.len() < self.config.outstanding_max {
            let read = self.rng.gen_bool(self.config.read_fraction);
            self.start(now, read);
        }
        let due: Vec<OpId> = self
            .pending
            .iter()
            .filter(|(_, op)| op.retry_at <= now)
            .map(|(id, _)| *id)
            .collect();
        due.into_iter().map(|id| self.attempt(now, id)).collect()
    }

    /// Starts one operation now (the first attempt goes out on the next `tick`).
    pub fn start(&mut self, now: Duration, read: bool) -> OpId {
        let op = OpId(self.next_op);
        self.next_op += 1;
        let kind = if read {
            OpKind::Read
        } else {
            OpKind::Write(write_payload(op, self.rng.gen_range(0..48)))
        };
        self.pending.insert(
            op,
            PendingOp {
                kind,
                retry_at: now,
                attempts: 0,
            },
        );
        op
    }

    fn attempt(&mut self, now: Duration, id: OpId) -> (NodeId, RawRequest) {
        let target = match self.leader {
            Some(leader) if self.rng.gen_bool(self.config.leader_affinity) => leader,
            _ => self.nodes[self.rng.gen_range(0..self.nodes.len())],
        };
        let retry_after = self.config.retry_after;
        let op = self.pending.get_mut(&id).expect("attempted op is pending");
        op.attempts += 1;
        self.stats.retries += u64::from(op.attempts > 1);
        op.retry_at = now + retry_after;
        let request = match &op.kind {
            OpKind::Write(data) => RawRequest::Write {
                op: id,
                data: data.clone(),
            },
            OpKind::Read => RawRequest::Read { op: id },
        };
        (target, request)
    }

    /// A node named a leader (or said it knows none).
    pub fn leader_hint(&mut self, leader: Option<NodeId>) {
        self.leader = leader;
    }

    /// An attempt failed quickly (not leader, proposal dropped): retry soon, elsewhere.
    pub fn retry_soon(&mut self, now: Duration, op: OpId) {
        let backoff = Duration::from_millis(self.rng.gen_range(5..30));
        if let Some(pending) = self.pending.get_mut(&op) {
            pending.retry_at = pending.retry_at.min(now + backoff);
        }
    }

    /// A write was applied somewhere.
    pub fn write_applied(&mut self, op: OpId) {
        if matches!(
            self.pending.get(&op),
            Some(PendingOp {
                kind: OpKind::Write(_),
                ..
            })
        ) {
            self.pending.remove(&op);
            self.stats.writes += 1;
        }
    }

    /// A read barrier completed.
    pub fn read_done(&mut self, op: OpId, _index: LogIndex) {
        if matches!(
            self.pending.get(&op),
            Some(PendingOp {
                kind: OpKind::Read,
                ..
            })
        ) {
            self.pending.remove(&op);
            self.stats.reads += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn client() -> Client {
        let config = ClientConfig {
            op_every: Duration::from_millis(10),
            read_fraction: 0.5,
            outstanding_max: 2,
            retry_after: Duration::from_millis(100),
            leader_affinity: 0.9,
            leader_oracle: true,
        };
        Client::new(
            config,
            vec![NodeId(1), NodeId(2)],
            SmallRng::seed_from_u64(1),
        )
    }

    #[test]
    fn payload_round_trips() {
        assert_eq!(parse_payload(&write_payload(OpId(77), 13)), Some(OpId(77)));
        assert_eq!(parse_payload(b"xx"), None);
        assert_eq!(parse_payload(b""), None);
    }

    #[test]
    fn ops_are_retried_until_done() {
        let mut c = client();
        let w = c.start(Duration::ZERO, false);
        let sent = c.tick(Duration::ZERO, false);
        assert_eq!(sent.len(), 1);
        assert!(c.tick(Duration::from_millis(50), false).is_empty());
        assert_eq!(c.tick(Duration::from_millis(100), false).len(), 1);
        c.write_applied(w);
        c.write_applied(w);
        assert_eq!(c.pending(), 0);
        assert_eq!(c.stats.writes, 1);
        assert_eq!(c.stats.retries, 1);
    }

    #[test]
    fn outstanding_ops_are_bounded() {
        let mut c = client();
        for ms in 0..10 {
            c.tick(Duration::from_millis(ms), true);
        }
        assert_eq!(c.pending(), 2);
    }
}
