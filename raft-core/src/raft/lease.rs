//! Lease reads (Raft thesis §6.4.1), enabled by `Config::lease_reads`.
//!
//! With CheckQuorum, a follower that heard from the leader refuses to vote for anyone else for
//! `election_ticks_min` of its own ticks. So once a quorum has answered a heartbeat the leader
//! sent at time `s`, no other leader can be elected before `s + (election_ticks_min - 1)`
//! follower ticks (one tick is lost to rounding: a follower's first tick may come right after
//! the heartbeat). The leader serves reads locally until then, measured on its own clock and
//! shortened by the drift margin: if every clock's rate is within `ρ` of real time
//! ([`Clock::drift_bound_ppm`](crate::Clock::drift_bound_ppm)), the lease is
//! `(election_ticks_min - 1) · (1 - ρ) / (1 + ρ)` leader ticks after the heartbeat was sent.
//!
//! A configuration change ends the lease (the acknowledgements were counted against the
//! old voters); the next quorum heartbeat under the new configuration starts a new one.
//! The lease is given up for the rest of the term once the leader sends TimeoutNow (the
//! target's election bypasses the followers' refusal), and a restarted replica refuses votes
//! for its first `election_ticks_min` ticks, since it cannot know whether it had promised a
//! leader to wait.

use super::Raft;
use crate::types::Role;
use std::collections::VecDeque;

/// The leader's lease bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct Lease {
    /// Clock drift bound in parts per million, from the replica's clock.
    pub(crate) drift_ppm: u64,
    /// Heartbeat rounds not yet acknowledged by a quorum, with the leader tick they left at.
    rounds: VecDeque<(u64, u64)>,
    /// Leader tick at which the lease ends.
    expires: Option<u64>,
    /// TimeoutNow was sent in this term: never serve from the lease again in it.
    pub(crate) revoked: bool,
}

impl Lease {
    /// A new term: no lease, nothing revoked.
    pub(crate) fn reset(&mut self) {
        self.expire();
        self.revoked = false;
    }

    /// Ends the current lease; acknowledgements collected so far no longer count. Used when
    /// the configuration changes, since they were counted against the old voters.
    pub(crate) fn expire(&mut self) {
        self.rounds.clear();
        self.expires = None;
    }
}

impl Raft {
    /// Sets the clock-drift bound the lease margin is computed from (the driver passes
    /// [`Clock::drift_bound_ppm`](crate::Clock::drift_bound_ppm)). Only matters with
    /// `Config::lease_reads`.
    pub fn set_clock_drift_bound_ppm(&mut self, ppm: u64) {
        self.lease.drift_ppm = ppm;
    }

    /// The driver skipped ticks that elapsed on the clock (it replays a bounded number per
    /// timer call): a lease counted in ticks would outlive its real time, so it ends here.
    pub fn ticks_skipped(&mut self) {
        self.lease.expire();
    }

    /// Leader ticks a lease lasts after the heartbeat that started it was sent.
    fn lease_ticks(&self) -> u64 {
        let base = u64::from(self.cfg.election_ticks_min).saturating_sub(1);
        if self.cfg.bugs.lease_read_no_drift_margin {
            // BUG (planted, `lease_read_no_drift_margin`): the lease ignores clock drift, so a
            // leader whose clock runs slow keeps serving after followers stopped waiting.
            return base;
        }
        let ppm = self.lease.drift_ppm.min(999_999);
        // base · (1 - ρ) / (1 + ρ), rounded down.
        base * (1_000_000 - ppm) / (1_000_000 + ppm)
    }

    /// The read round a heartbeat broadcast carries; with lease reads, every broadcast starts
    /// a new round so its acknowledgements can be dated.
    pub(super) fn heartbeat_round(&mut self) -> u64 {
        if !self.cfg.lease_reads {
            return self.reads.round();
        }
        let round = self.reads.next_round();
        self.lease.rounds.push_back((round, self.reads.ticks()));
        round
    }

    /// Extends the lease to the newest heartbeat round a quorum has answered.
    pub(super) fn update_lease(&mut self) {
        if !self.cfg.lease_reads {
            return;
        }
        let mut sent_at = None;
        while let Some(&(round, tick)) = self.lease.rounds.front() {
            // This replica counts as one acknowledgement of every round.
            let (me, progress) = (self.cfg.id, &self.progress);
            let acked = self.membership().has_quorum(|id| {
                id == me || progress.get(&id).is_some_and(|p| p.read_round >= round)
            });
            if !acked {
                break;
            }
            sent_at = Some(tick);
            self.lease.rounds.pop_front();
        }
        if let Some(tick) = sent_at {
            let expires = tick + self.lease_ticks();
            self.lease.expires = Some(self.lease.expires.map_or(expires, |e| e.max(expires)));
        }
    }

    /// Whether a read asked of this replica now would be served from its lease, without a
    /// heartbeat round: what a service's metrics or a test of lease reads look at (a lease
    /// that is never held costs a round per read and breaks no rule).
    pub fn holds_lease(&self) -> bool {
        self.lease_valid()
    }

    /// Whether this leader gave its lease up for the rest of its term (it sent `TimeoutNow`
    /// for a transfer): then [`Raft::holds_lease`] stays false until a new term, by design.
    pub fn lease_given_up(&self) -> bool {
        self.lease.revoked
    }

    /// True if the leader may serve a read at its commit index without a heartbeat round.
    pub(super) fn lease_valid(&self) -> bool {
        self.cfg.lease_reads
            && self.role == Role::Leader
            && !self.lease.revoked
            && self.transfer.is_none()
            && self.log.term(self.commit) == Some(self.term)
            && self
                .lease
                .expires
                .is_some_and(|expires| self.reads.ticks() < expires)
    }
}
