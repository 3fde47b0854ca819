//! What a leader knows about each follower's log, and its flow control (Raft thesis §10.2).

use crate::append_window::AppendWindow;
use crate::types::{LogIndex, Snapshot};
use std::collections::VecDeque;

/// How the leader replicates to one follower.
#[derive(Debug, Clone)]
pub(crate) enum ReplicationState {
    /// The follower's match point is unknown: send one append at a time and wait.
    Probe,
    /// The follower is caught up to `match_index`: pipeline appends optimistically.
    Replicate,
    /// The follower needs entries the leader has compacted: stream a snapshot, one chunk in
    /// flight at a time.
    Snapshot {
        /// The snapshot being sent (kept even if the leader takes a newer one meanwhile).
        snapshot: Snapshot,
        /// Bytes the follower has acknowledged.
        offset: u64,
        /// Ticks since the last chunk went out, for retransmission.
        idle_ticks: u32,
        /// CRC32 of the whole snapshot, computed once per transfer.
        checksum: u32,
    },
}

/// Per-follower replication progress.
#[derive(Debug, Clone)]
pub(crate) struct Progress {
    /// Highest index known to match the leader's log.
    pub(crate) match_index: LogIndex,
    /// Next index to send.
    pub(crate) next_index: LogIndex,
    pub(crate) state: ReplicationState,
    /// In `Probe`, an append is outstanding; wait for its answer or the next heartbeat.
    pub(crate) probe_sent: bool,
    /// Last index of each append in flight, oldest first (`Replicate` only).
    pub(crate) inflight: VecDeque<LogIndex>,
    /// Heard from since the last CheckQuorum round.
    pub(crate) recent_active: bool,
    /// Ticks since `match_index` last advanced, to detect a stalled pipeline.
    pub(crate) stalled_ticks: u32,
    /// Highest read-confirmation round the follower has answered.
    pub(crate) read_round: u64,
    /// Dynamic batch size (used only with `Config::dynamic_append_batch`).
    pub(crate) window: AppendWindow,
    /// `Replicate` only: the follower said its log ends before an append it received, at
    /// this first missing index, so appends were reordered or lost; with the ticks since.
    /// The appends in flight usually fill the gap within a tick; if not, the leader probes.
    pub(crate) gap: Option<(LogIndex, u32)>,
}

impl Progress {
    /// A follower about which nothing is known yet; `max_entries` caps its batch window.
    pub(crate) fn new(next_index: LogIndex, max_entries: usize) -> Progress {
        Progress {
            match_index: LogIndex(0),
            next_index,
            state: ReplicationState::Probe,
            probe_sent: false,
            inflight: VecDeque::new(),
            recent_active: false,
            stalled_ticks: 0,
            read_round: 0,
            window: AppendWindow::new(max_entries),
            gap: None,
        }
    }

    pub(crate) fn become_probe(&mut self) {
        self.state = ReplicationState::Probe;
        self.next_index = self.match_index.next();
        self.probe_sent = false;
        self.inflight.clear();
        self.gap = None;
    }

    pub(crate) fn become_replicate(&mut self) {
        self.state = ReplicationState::Replicate;
        self.next_index = self.match_index.next();
        self.probe_sent = false;
        self.inflight.clear();
        self.gap = None;
    }

    pub(crate) fn is_replicating(&self) -> bool {
        matches!(self.state, ReplicationState::Replicate)
    }

    /// Records an acknowledged match; returns true if it is new information.
    pub(crate) fn ack(&mut self, index: LogIndex) -> bool {
        while self.inflight.front().is_some_and(|last| *last <= index) {
            self.inflight.pop_front();
        }
        if index <= self.match_index {
            return false;
        }
        self.match_index = index;
        self.next_index = self.next_index.max(index.next());
        self.stalled_ticks = 0;
        if self.gap.is_some_and(|(missing, _)| index >= missing) {
            self.gap = None;
        }
        true
    }

    pub(crate) fn inflight_full(&self, max_inflight: usize) -> bool {
        self.inflight.len() >= max_inflight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_frees_inflight_and_moves_next() {
        let mut p = Progress::new(LogIndex(1), 16);
        p.become_replicate();
        p.inflight.extend([LogIndex(3), LogIndex(6), LogIndex(9)]);
        p.next_index = LogIndex(10);
        assert!(p.ack(LogIndex(6)));
        assert_eq!(p.inflight, VecDeque::from([LogIndex(9)]));
        assert_eq!(p.next_index, LogIndex(10));
        assert!(!p.ack(LogIndex(4)), "stale ack is not new information");
        assert_eq!(p.match_index, LogIndex(6));
    }
}
