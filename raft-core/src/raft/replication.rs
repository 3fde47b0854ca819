//! Log replication: pipelined AppendEntries with probe/replicate flow control, fast
//! backtracking, heartbeats and the commit rule (Raft §5.3, §5.4.2, thesis §10.2).

use super::reorder::EarlyAppend;
use super::Raft;
use crate::message::{AppendResult, MessageBody};
use crate::progress::ReplicationState;
use crate::types::{Entry, LogIndex, NodeId, Role, Term};

/// Ticks a `Replicate` pipeline waits for appends in flight to fill a gap the follower
/// reported, before it presumes one lost and probes (at least one full tick).
const GAP_TICKS: u32 = 2;

/// What became of one append on a follower.
enum AppendOutcome {
    /// Appended: the log matches the leader's up to this index.
    Appended(LogIndex),
    /// Refused as impossible from a correct leader (it would overwrite a committed entry).
    Refused,
    /// The entry before it conflicts.
    Rejected(AppendResult),
    /// It starts beyond the end of the log: rejected, and worth keeping for later.
    Early(AppendResult, EarlyAppend),
}

impl Raft {
    /// Sends every follower whatever it is missing, as far as flow control allows.
    pub(super) fn broadcast_append(&mut self) {
        for i in 0..self.others.len() {
            let peer = self.other(i);
            while self.send_append(peer) {}
        }
    }

    /// Sends one AppendEntries to `to` if flow control allows; returns true if one was sent
    /// and another might follow.
    pub(super) fn send_append(&mut self, to: NodeId) -> bool {
        let max_inflight = self.cfg.max_inflight_appends;
        let Some(pr) = self.progress.get_mut(&to) else {
            return false;
        };
        match pr.state {
            ReplicationState::Snapshot { .. } => return false,
            ReplicationState::Probe if pr.probe_sent => return false,
            ReplicationState::Replicate if pr.inflight_full(max_inflight) => return false,
            _ => {}
        }
        let last = self.log.last_index();
        if pr.next_index > last.next() {
            // Only reachable after a bogus acknowledgement; restart from what is known.
            pr.become_probe();
        }
        let prev_log_index = pr.next_index.prev();
        let Some(prev_log_term) = self.log.term(prev_log_index) else {
            // The follower needs entries that were compacted away.
            self.start_snapshot(to);
            return false;
        };
        let replicating = pr.is_replicating();
        let entries = if pr.next_index <= last {
            let count = if !self.cfg.dynamic_append_batch {
                self.cfg.max_entries_per_append
            } else if !replicating {
                pr.window.size()
            } else {
                // The window bounds the entries in flight, not only each batch, so a lost
                // append wastes at most one window.
                let in_flight = (pr.next_index.0 - 1).saturating_sub(pr.match_index.0) as usize;
                match pr.window.size().checked_sub(in_flight) {
                    Some(room) if room > 0 => room,
                    _ => return false,
                }
            };
            let bytes = self.cfg.max_bytes_per_append;
            self.log.slice(pr.next_index, last, count, bytes)
        } else {
            Vec::new()
        };
        if entries.is_empty() && replicating {
            return false;
        }
        if let Some(last_sent) = entries.last().map(|e| e.index) {
            if replicating {
                pr.next_index = last_sent.next();
                pr.inflight.push_back(last_sent);
            }
        }
        if !replicating {
            pr.probe_sent = true;
        }
        let leader_commit = self.commit;
        let body = MessageBody::AppendEntries {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit,
        };
        self.send(to, body);
        replicating
    }

    pub(super) fn broadcast_heartbeat(&mut self) {
        let read_round = self.heartbeat_round();
        for i in 0..self.others.len() {
            let peer = self.other(i);
            let match_index = self.progress[&peer].match_index;
            // BUG (planted, `commit_beyond_verified`): the follower is told the whole commit
            // index, and caps it only by the end of its own log, unverified past its match.
            let commit = if self.cfg.bugs.commit_beyond_verified {
                self.commit
            } else {
                self.commit.min(match_index)
            };
            self.send(peer, MessageBody::Heartbeat { commit, read_round });
        }
    }

    /// Per-tick flow-control housekeeping: unstick stalled pipelines and resend snapshot chunks.
    pub(super) fn tick_replication(&mut self) {
        let last = self.log.last_index();
        // Longer than any healthy round trip: after this long without progress, the appends
        // (or chunks) in flight are presumed lost.
        let stall_ticks = self
            .cfg
            .election_ticks_min
            .max(2 * self.cfg.heartbeat_ticks + 1);
        let mut resend = Vec::new();
        for (peer, pr) in self.progress.iter_mut() {
            if pr.match_index >= last {
                pr.stalled_ticks = 0;
                continue;
            }
            pr.stalled_ticks += 1;
            match &mut pr.state {
                ReplicationState::Snapshot { idle_ticks, .. } => {
                    *idle_ticks += 1;
                    if *idle_ticks >= stall_ticks {
                        resend.push(*peer);
                    }
                }
                ReplicationState::Replicate if pr.stalled_ticks >= stall_ticks => {
                    // Appends or their answers were lost: fall back to probing from the match.
                    pr.window.on_failure();
                    pr.become_probe();
                    pr.stalled_ticks = 0;
                }
                ReplicationState::Replicate => {
                    if let Some((_, ticks)) = &mut pr.gap {
                        *ticks += 1;
                        if *ticks >= GAP_TICKS {
                            // The appends in flight did not fill the gap: one was lost.
                            pr.window.on_failure();
                            pr.become_probe();
                        }
                    }
                }
                _ => {}
            }
        }
        for peer in resend {
            self.send_snapshot_chunk(peer);
        }
    }

    pub(super) fn handle_append_response(&mut self, from: NodeId, result: AppendResult) {
        let last = self.log.last_index();
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        match result {
            AppendResult::Success { match_index } => {
                if match_index > last {
                    tracing::warn!(%from, %match_index, "ignoring ack beyond the log");
                    return;
                }
                let old_match = pr.match_index;
                let advanced = pr.ack(match_index);
                if advanced {
                    pr.window.on_success();
                }
                match pr.state {
                    ReplicationState::Probe => pr.become_replicate(),
                    ReplicationState::Snapshot { ref snapshot, .. }
                        if match_index >= snapshot.meta.index =>
                    {
                        pr.become_replicate()
                    }
                    _ => {}
                }
                if advanced && self.maybe_commit() {
                    self.on_commit_advanced();
                } else if advanced && old_match < self.commit && !self.heartbeat_pending {
                    // The commit index moved while this follower lagged: it can now learn the
                    // part of it its log holds (no broadcast is due to tell it).
                    let commit = self.commit.min(match_index);
                    self.send(
                        from,
                        MessageBody::Heartbeat {
                            commit,
                            read_round: 0,
                        },
                    );
                }
                while self.send_append(from) {}
                self.maybe_send_timeout_now(from);
            }
            AppendResult::Reject {
                rejected_index,
                conflict_index,
                conflict_term,
            } => self.handle_append_reject(from, rejected_index, conflict_index, conflict_term),
        }
    }

    fn handle_append_reject(
        &mut self,
        from: NodeId,
        rejected_index: LogIndex,
        conflict_index: LogIndex,
        conflict_term: Option<Term>,
    ) {
        let pr = self
            .progress
            .get_mut(&from)
            .expect("caller checked the peer");
        if rejected_index <= pr.match_index || rejected_index >= pr.next_index {
            // Stale (we know the follower matches further), or not a position we sent.
            return;
        }
        let current = match pr.state {
            ReplicationState::Replicate => true,
            ReplicationState::Probe => rejected_index == pr.next_index.prev(),
            ReplicationState::Snapshot { .. } => false,
        };
        if !current {
            return;
        }
        if pr.is_replicating() && conflict_term.is_none() {
            // The follower's log is short of an append it received, but every index from
            // its end up to that append was sent: they are in flight or lost. Restarting the
            // pipeline here would resend the whole window for each append that arrived out of
            // order (quadratic under reordering); wait a little for them to land instead.
            if pr.gap.is_none() {
                pr.gap = Some((conflict_index, 0));
            }
            return;
        }
        // Fast backtracking: skip the follower's whole conflicting term at once.
        let hint = conflict_term
            .and_then(|term| self.log.last_index_of_term(term, rejected_index))
            .map_or(conflict_index, LogIndex::next);
        let next = hint.max(pr.match_index.next()).min(rejected_index);
        pr.window.on_failure();
        pr.become_probe();
        pr.next_index = next;
        tracing::debug!(%from, %rejected_index, %next, "append rejected, probing");
        self.send_append(from);
    }

    pub(super) fn handle_heartbeat_response(&mut self, from: NodeId, read_round: u64) {
        let last = self.log.last_index();
        // With dynamic batches the window often holds a single append, so a lost one would
        // otherwise wait for the stall timer: a follower that answers heartbeats but has not
        // acknowledged anything for over two heartbeat intervals is presumed to have lost it
        // (this assumes appends are answered about as fast as heartbeats).
        let fast_retransmit_ticks = self
            .cfg
            .dynamic_append_batch
            .then_some(2 * self.cfg.heartbeat_ticks);
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        pr.read_round = pr.read_round.max(read_round);
        if pr.match_index < last {
            let stalled = fast_retransmit_ticks.is_some_and(|t| pr.stalled_ticks > t);
            if stalled && pr.is_replicating() {
                pr.window.on_failure();
                pr.become_probe();
                pr.stalled_ticks = 0;
            }
            if let ReplicationState::Probe = pr.state {
                pr.probe_sent = false;
            }
            while self.send_append(from) {}
        }
        self.update_lease();
        self.confirm_reads();
    }

    /// Advances the commit index to the highest index stored on a quorum, counting only
    /// entries of the current term (Raft §5.4.2, Figure 8). Returns true if it moved.
    pub(super) fn maybe_commit(&mut self) -> bool {
        assert_eq!(self.role, Role::Leader);
        // The leader counts its own log only as far as it is durable on its own disk: its
        // appends went out before its write (thesis §10.2.1), and a crash may still lose it.
        let stable = self.log.stable();
        // BUG (planted, `leader_counts_unsynced_entry`): counts its whole log instead.
        let stable = if self.cfg.bugs.leader_counts_unsynced_entry {
            self.log.last_index()
        } else {
            stable
        };
        let (me, progress) = (self.cfg.id, &self.progress);
        let of = |id| {
            if id == me {
                stable
            } else {
                progress.get(&id).map_or(LogIndex(0), |p| p.match_index)
            }
        };
        let candidate = self
            .configs
            .current()
            .quorum_index(of, &mut self.match_scratch);
        if candidate <= self.commit {
            return false;
        }
        let own_term = self.log.term(candidate) == Some(self.term);
        // BUG (planted, `figure8_commit`): with the bug, an earlier-term entry is committed
        // because it is on a majority, which Figure 8 shows can later be overwritten.
        if !own_term && !self.cfg.bugs.figure8_commit {
            return false;
        }
        self.commit = candidate;
        true
    }

    pub(super) fn on_commit_advanced(&mut self) {
        // Tell the followers at once (a heartbeat carries the commit index), instead of
        // leaving them a step behind until the next append or heartbeat tick.
        self.heartbeat_pending = true;
        if self.log.term(self.commit) == Some(self.term) {
            self.release_reads_waiting_for_commit();
        }
        self.membership_commit_advanced();
    }

    pub(super) fn handle_append(
        &mut self,
        from: NodeId,
        prev_log_index: LogIndex,
        prev_log_term: Term,
        entries: Vec<Entry>,
        leader_commit: LogIndex,
    ) {
        self.heard_from_leader(from);
        if !entries_well_formed(prev_log_index, prev_log_term, self.term, &entries) {
            tracing::warn!(%from, "ignoring malformed AppendEntries");
            return;
        }
        let append = EarlyAppend {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit,
        };
        let last_new = match self.follow_append(from, append) {
            AppendOutcome::Appended(last_new) => last_new,
            AppendOutcome::Refused => return,
            AppendOutcome::Rejected(reject) => {
                return self.send(from, MessageBody::AppendEntriesResponse(reject));
            }
            AppendOutcome::Early(reject, append) => {
                // Still tell the leader about the gap: if the missing appends stay lost, it
                // probes, and its probe fills the gap for everything kept here.
                let (count, bytes) = (
                    self.cfg.max_inflight_appends,
                    self.cfg.max_bytes_per_append.saturating_mul(4),
                );
                self.early_appends
                    .keep(from, self.term, append, count, bytes);
                return self.send(from, MessageBody::AppendEntriesResponse(reject));
            }
        };
        let matched = self.take_early_appends(from, last_new);
        self.ack(from, matched);
    }

    /// Appends kept in the reorder buffer that the log now reaches, taken in order as if they
    /// arrived just now; returns the highest index known to match the leader, starting at
    /// `matched`.
    fn take_early_appends(&mut self, from: NodeId, mut matched: LogIndex) -> LogIndex {
        let term = self.term;
        while let Some(append) =
            self.early_appends
                .take_next(from, term, self.log.last_index(), self.commit)
        {
            match self.follow_append(from, append) {
                AppendOutcome::Appended(last_new) => matched = matched.max(last_new),
                // A kept append no longer fits (the log moved on differently): a late
                // delivery of it would be answered the same way, so drop it.
                AppendOutcome::Refused | AppendOutcome::Rejected(_) | AppendOutcome::Early(..) => {}
            }
        }
        matched
    }

    /// The follower's side of one append from the current leader (Raft §5.3): check the
    /// entry before it, append what is new, advance the commit index.
    fn follow_append(&mut self, from: NodeId, append: EarlyAppend) -> AppendOutcome {
        let EarlyAppend {
            prev_log_index,
            prev_log_term,
            mut entries,
            leader_commit,
        } = append;
        let (mut prev, mut prev_term) = (prev_log_index, prev_log_term);
        if prev < self.commit {
            // Everything up to our commit index matches any current leader (Leader
            // Completeness), so skip that part of the request.
            let skip = ((self.commit.0 - prev.0) as usize).min(entries.len());
            entries.drain(..skip);
            prev = self.commit;
            prev_term = self.log.term(prev).expect("commit index is in the log");
            if entries.first().is_some_and(|e| e.term < prev_term) {
                // A correct leader's entries after our commit point never have lower terms.
                tracing::warn!(%from, "ignoring AppendEntries inconsistent with our commit");
                return AppendOutcome::Refused;
            }
        }
        if let Err(reject) = self.check_prev(prev, prev_term) {
            if let AppendResult::Reject {
                conflict_term: None,
                ..
            } = reject
            {
                let early = EarlyAppend {
                    prev_log_index: prev,
                    prev_log_term: prev_term,
                    entries,
                    leader_commit,
                };
                return AppendOutcome::Early(reject, early);
            }
            return AppendOutcome::Rejected(reject);
        }
        let last_new = LogIndex(prev.0 + entries.len() as u64);
        if !self.append_from_leader(entries, last_new) {
            return AppendOutcome::Refused;
        }
        // BUG (planted, `commit_beyond_verified`): caps the leader's commit by the end of our
        // log, not by the last entry this append verified, so a divergent suffix past it can
        // be committed.
        let verified = if self.cfg.bugs.commit_beyond_verified {
            self.log.last_index()
        } else {
            last_new
        };
        let new_commit = leader_commit.min(verified);
        if new_commit > self.commit {
            self.commit = new_commit;
        }
        AppendOutcome::Appended(last_new)
    }

    /// A message from the current leader: follow it and restart the election timer. From
    /// here on CheckQuorum's ordinary lease covers what a restart's vote embargo did.
    fn heard_from_leader(&mut self, from: NodeId) {
        self.leader = Some(from);
        self.election_elapsed = 0;
        self.leader_silent_ticks = 0;
        self.vote_embargo = false;
    }

    fn ack(&mut self, to: NodeId, match_index: LogIndex) {
        self.send(
            to,
            MessageBody::AppendEntriesResponse(AppendResult::Success { match_index }),
        );
    }

    fn check_prev(&self, prev: LogIndex, prev_term: Term) -> Result<(), AppendResult> {
        match self.log.term(prev) {
            Some(term) if term == prev_term => Ok(()),
            Some(term) => Err(AppendResult::Reject {
                rejected_index: prev,
                conflict_index: self.log.first_index_of_term_at(prev),
                conflict_term: Some(term),
            }),
            None => Err(AppendResult::Reject {
                rejected_index: prev,
                conflict_index: self.log.last_index().next(),
                conflict_term: None,
            }),
        }
    }

    /// Appends the leader's entries after a matching `prev`, replacing a conflicting suffix
    /// (Raft §5.3). Returns false if the request would overwrite a committed entry, which a
    /// correct leader never asks for; the request is then refused.
    fn append_from_leader(&mut self, mut entries: Vec<Entry>, last_new: LogIndex) -> bool {
        let conflict = entries
            .iter()
            .position(|e| self.log.term(e.index) != Some(e.term));
        match conflict {
            Some(position) => {
                let first_new = entries[position].index;
                if first_new <= self.log.last_index() {
                    if first_new <= self.commit {
                        tracing::error!(index = %first_new, commit = %self.commit,
                            "leader tried to overwrite a committed entry; refusing");
                        return false;
                    }
                    self.log.truncate_after(first_new.prev());
                    self.configs_truncated(first_new.prev());
                }
                self.configs_appended(&entries[position..]);
                for entry in entries.drain(position..) {
                    self.log.push(entry);
                }
            }
            None => {
                if self.cfg.bugs.truncate_on_stale_append
                    && !entries.is_empty()
                    && last_new < self.log.last_index()
                {
                    // BUG (planted, `truncate_on_stale_append`): a stale or duplicated append
                    // whose entries all match still cuts off the (acknowledged) suffix.
                    self.log.truncate_after(last_new.max(self.commit));
                    self.configs_truncated(last_new.max(self.commit));
                }
            }
        }
        true
    }

    pub(super) fn handle_heartbeat(&mut self, from: NodeId, commit: LogIndex, read_round: u64) {
        self.heard_from_leader(from);
        // The leader sends min(commit, our match), so our log holds that prefix.
        let commit = commit.min(self.log.last_index());
        if commit > self.commit && !self.cfg.bugs.heartbeat_ignores_commit {
            self.commit = commit;
        }
        self.send(from, MessageBody::HeartbeatResponse { read_round });
    }
}

/// True if `entries` directly follow `prev`, with terms that never decrease, start no lower
/// than `prev_term` and never exceed the sender's `term`.
fn entries_well_formed(prev: LogIndex, prev_term: Term, term: Term, entries: &[Entry]) -> bool {
    if prev_term > term {
        return false;
    }
    let mut last_term = prev_term;
    for (offset, entry) in entries.iter().enumerate() {
        let expected = prev.0.checked_add(offset as u64 + 1);
        if Some(entry.index.0) != expected || entry.term < last_term || entry.term > term {
            return false;
        }
        last_term = entry.term;
    }
    true
}
