//! Leadership transfer (Raft thesis §3.10).
//!
//! The leader stops accepting proposals (they fail with [`Error::TransferInProgress`], so the
//! target's log can catch up with a log that no longer grows), replicates to the target until
//! its log matches, then sends it [`MessageBody::TimeoutNow`]. The target starts an election at
//! once, skipping PreVote, and asks for votes with [`MessageBody::RequestVoteForTransfer`],
//! which voters do not ignore while in CheckQuorum's lease. Its up-to-date log wins the
//! election; the old leader steps down when it sees the higher term. If nothing happens within
//! one election timeout (`election_ticks_min` ticks), the transfer is abandoned and the leader
//! accepts proposals again.

use super::Raft;
use crate::error::Error;
use crate::message::MessageBody;
use crate::types::{NodeId, Role};

/// A transfer in progress on the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Transfer {
    /// The replica that should become leader.
    pub(crate) target: NodeId,
    /// Leader ticks since the transfer started.
    pub(crate) elapsed: u32,
}

impl Raft {
    /// Hands leadership to `to`: proposals are refused meanwhile, the target is caught up and
    /// then told to campaign. Transferring to this replica itself cancels a transfer in
    /// progress; asking again for the same target changes nothing; asking for another target
    /// restarts the transfer towards it.
    ///
    /// # Errors
    /// `Error::NotLeader` on a non-leader; `Error::UnknownPeer` if `to` is not a voter.
    pub fn transfer_leadership(&mut self, to: NodeId) -> Result<(), Error> {
        if self.role != Role::Leader {
            return Err(Error::NotLeader { hint: self.leader });
        }
        if !self.is_voter(to) {
            return Err(Error::UnknownPeer(to));
        }
        if to == self.cfg.id {
            self.transfer = None;
            return Ok(());
        }
        if self.transfer.is_some_and(|t| t.target == to) {
            return Ok(());
        }
        tracing::info!(target = %to, term = %self.term, "transferring leadership");
        self.transfer = Some(Transfer {
            target: to,
            elapsed: 0,
        });
        if !self.maybe_send_timeout_now(to) {
            // Restart the target's pipeline from its acknowledged match, so appends lost
            // before the transfer do not hold it up until the stall timer fires.
            if let Some(pr) = self.progress.get_mut(&to) {
                if pr.is_replicating() {
                    pr.become_probe();
                }
            }
            while self.send_append(to) {}
        }
        Ok(())
    }

    /// The replica leadership is being handed to, while a transfer is in progress.
    pub fn transfer_target(&self) -> Option<NodeId> {
        self.transfer.map(|t| t.target)
    }

    /// Sends `TimeoutNow` if `peer` is the transfer target and its log matches ours; returns
    /// whether it did.
    pub(super) fn maybe_send_timeout_now(&mut self, peer: NodeId) -> bool {
        if self.transfer.map(|t| t.target) != Some(peer) {
            return false;
        }
        let caught_up = self
            .progress
            .get(&peer)
            .is_some_and(|p| p.match_index == self.log.last_index());
        if caught_up {
            tracing::info!(target = %peer, "transfer target caught up; sending TimeoutNow");
            // The target's election bypasses the followers' promise to wait, so the lease is
            // gone for the rest of this term even if the transfer is later abandoned.
            self.lease.revoked = true;
            self.send(peer, MessageBody::TimeoutNow);
        }
        caught_up
    }

    /// Abandons a transfer that has not completed within an election timeout.
    pub(super) fn tick_transfer(&mut self) {
        let Some(transfer) = &mut self.transfer else {
            return;
        };
        if !self.cfg.bugs.transfer_never_abandoned {
            transfer.elapsed += 1;
        }
        if transfer.elapsed >= self.cfg.election_ticks_min {
            let target = transfer.target;
            tracing::info!(%target, "leadership transfer timed out; accepting proposals again");
            self.transfer = None;
        }
    }

    /// A follower told by its leader to campaign now.
    pub(super) fn handle_timeout_now(&mut self, from: NodeId) {
        if self.leader != Some(from) {
            tracing::debug!(%from, "ignoring TimeoutNow from a replica that is not our leader");
            return;
        }
        tracing::info!(%from, term = %self.term, "campaigning at the leader's request");
        self.campaign_for_transfer();
    }
}
