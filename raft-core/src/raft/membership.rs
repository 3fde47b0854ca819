//! Membership changes on the protocol core: the configuration in effect, which is the latest
//! one in the log (used as soon as it is appended, committed or not, thesis §4.1), and the
//! leader's rules for proposing changes:
//!
//! * one change at a time: none may start while a configuration entry is uncommitted or the
//!   configuration is joint;
//! * the leader first commits an entry of its own term, so the configuration it changes is
//!   known to be the committed one (thesis §4.1, the single-server-change bug);
//! * a learner is promoted only once it holds every committed entry;
//! * a joint configuration is followed by the final one as soon as it is committed, and a
//!   leader that is not a voter of the final configuration steps down once that commits.

use super::Raft;
use crate::error::Error;
use crate::membership::{Membership, MembershipChange};
use crate::progress::Progress;
use crate::types::{Entry, EntryKind, LogIndex, NodeId, Role, Term};

/// Maximal election timeouts without a leader after which a learner campaigns (see
/// `Raft::may_campaign`); long enough that voters nearly always settle an election first.
const LEARNER_SILENT_TIMEOUTS: u64 = 4;

/// Configurations known to one replica.
#[derive(Debug, Default)]
pub(crate) struct Configs {
    /// The configuration at the snapshot index (or the initial one).
    pub(crate) base: Membership,
    /// Configuration entries in the log, by index, oldest first.
    pub(crate) in_log: Vec<(LogIndex, Membership)>,
}

impl Configs {
    /// Configurations recovered from a snapshot (or the initial one) and the log after it.
    pub(crate) fn recovered(base: Membership, entries: &[Entry]) -> Configs {
        let in_log = entries
            .iter()
            .filter_map(|e| match &e.kind {
                EntryKind::Config(m) => Some((e.index, Membership::clone(m))),
                _ => None,
            })
            .collect();
        Configs { base, in_log }
    }

    pub(crate) fn current(&self) -> &Membership {
        self.in_log.last().map_or(&self.base, |(_, m)| m)
    }

    /// Index of the latest configuration entry still in the log.
    fn last_index(&self) -> Option<LogIndex> {
        self.in_log.last().map(|(index, _)| *index)
    }

    /// The configuration in effect at `index` (which must not precede the snapshot).
    pub(crate) fn at(&self, index: LogIndex) -> &Membership {
        self.in_log
            .iter()
            .rev()
            .find(|(i, _)| *i <= index)
            .map_or(&self.base, |(_, m)| m)
    }
}

impl Raft {
    /// The configuration in effect (the latest in the log, committed or not).
    pub fn membership(&self) -> &Membership {
        self.configs.current()
    }

    /// The configuration in effect at `index`, for snapshots taken there.
    pub fn membership_at(&self, index: LogIndex) -> Membership {
        self.configs.at(index).clone()
    }

    /// Indexes of the configuration entries still in the log (not yet compacted), oldest
    /// first. Lets an observer check the change rules from outside.
    pub fn config_indexes(&self) -> impl Iterator<Item = LogIndex> + '_ {
        self.configs.in_log.iter().map(|(index, _)| *index)
    }

    /// Proposes a membership change; it resolves like a proposal. Voter changes go through a
    /// joint configuration, which the leader ends by itself once it commits.
    ///
    /// # Errors
    /// `Error::NotLeader`, `Error::TransferInProgress`, or `Error::MembershipChange` saying
    /// why the change cannot start now.
    pub fn propose_membership(
        &mut self,
        change: MembershipChange,
    ) -> Result<(LogIndex, Term), Error> {
        if self.role != Role::Leader {
            return Err(Error::NotLeader { hint: self.leader });
        }
        if let Some(transfer) = self.transfer {
            let target = transfer.target;
            return Err(Error::TransferInProgress { target });
        }
        let refuse = |why: String| Err(Error::MembershipChange(why));
        // BUG (planted, `two_config_changes_in_flight`): without the check, a second change
        // starts from an uncommitted (possibly joint) configuration.
        if !self.cfg.bugs.two_config_changes_in_flight && self.config_change_in_flight() {
            return refuse("another membership change is in progress".to_string());
        }
        // BUG (planted, `config_before_own_term_commit`): without the check, a new leader
        // changes a configuration it does not yet know to be the committed one.
        let own_term_committed = self.log.term(self.commit) == Some(self.term);
        if !self.cfg.bugs.config_before_own_term_commit && !own_term_committed {
            return refuse("the leader has not yet committed an entry of its term".to_string());
        }
        if let MembershipChange::PromoteLearner(id)
        | MembershipChange::ReplaceVoter { new: id, .. } = change
        {
            let caught_up = self
                .progress
                .get(&id)
                .is_some_and(|p| p.match_index >= self.commit);
            if !caught_up {
                return refuse(format!(
                    "learner {id} has not caught up with the commit index"
                ));
            }
        }
        let next = self
            .membership()
            .apply(change)
            .map_err(Error::MembershipChange)?;
        tracing::info!(?change, ?next, "proposing membership change");
        Ok(self.append_config(next))
    }

    fn config_change_in_flight(&self) -> bool {
        self.membership().is_joint() || self.configs.last_index().is_some_and(|i| i > self.commit)
    }

    /// Appends a configuration entry on the leader; it takes effect at once.
    fn append_config(&mut self, membership: Membership) -> (LogIndex, Term) {
        let index = self.log.last_index().next();
        let entry = Entry {
            term: self.term,
            index,
            kind: EntryKind::Config(Box::new(membership)),
        };
        self.log.push(entry.clone());
        self.configs_appended(std::slice::from_ref(&entry));
        self.append_pending = true;
        (index, self.term)
    }

    /// Records configuration entries just appended to the log.
    pub(super) fn configs_appended(&mut self, entries: &[Entry]) {
        let mut changed = false;
        for entry in entries {
            if let EntryKind::Config(m) = &entry.kind {
                self.configs
                    .in_log
                    .push((entry.index, Membership::clone(m)));
                changed = true;
            }
        }
        if changed {
            self.membership_changed();
        }
    }

    /// Forgets configuration entries removed from the log after `index`.
    pub(super) fn configs_truncated(&mut self, index: LogIndex) {
        let before = self.configs.in_log.len();
        self.configs.in_log.retain(|(i, _)| *i <= index);
        if self.configs.in_log.len() != before {
            self.membership_changed();
        }
    }

    /// The log up to `index` is now in a snapshot.
    pub(super) fn configs_compacted(&mut self, index: LogIndex) {
        let base = self.configs.at(index).clone();
        self.configs.in_log.retain(|(i, _)| *i > index);
        self.configs.base = base;
    }

    /// The whole log was replaced by a snapshot carrying `membership`.
    pub(super) fn configs_restored(&mut self, membership: Membership) {
        self.configs = super::membership::Configs {
            base: membership,
            in_log: Vec::new(),
        };
        self.membership_changed();
    }

    /// Recomputes who this replica talks to, and on a leader, whom it tracks.
    pub(super) fn membership_changed(&mut self) {
        let me = self.cfg.id;
        let members = self.membership().members();
        tracing::info!(membership = ?self.membership(), "configuration in effect");
        self.others = members.iter().copied().filter(|id| *id != me).collect();
        if self.role != Role::Leader {
            return;
        }
        self.lease.expire();
        self.progress.retain(|id, _| members.contains(id));
        let next = self.log.last_index().next();
        let cap = self.cfg.max_entries_per_append;
        for id in self.others.clone() {
            self.progress.entry(id).or_insert_with(|| {
                let mut pr = Progress::new(next, cap);
                // A new member has had no chance to answer yet; do not count it as silent.
                pr.recent_active = true;
                pr
            });
        }
    }

    /// After the commit index moved on the leader: end a committed joint configuration, and
    /// step down once a final configuration without this replica as a voter is committed.
    ///
    /// The configuration in effect is committed when its entry is at or below the commit
    /// index, or when no configuration entry is left in the log: then it came with the
    /// snapshot (or is the initial one), which holds only committed state. A leader that
    /// learned a joint configuration from a snapshot must end it as well, or the cluster stays
    /// joint and refuses every later change.
    pub(super) fn membership_commit_advanced(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        if self
            .configs
            .last_index()
            .is_some_and(|index| index > self.commit)
        {
            return;
        }
        // BUG (planted, `joint_from_snapshot_never_left`): only a configuration entry still
        // in the log counts as a configuration to end.
        if self.cfg.bugs.joint_from_snapshot_never_left && self.configs.last_index().is_none() {
            return;
        }
        // Runs on every commit advance: look at the configuration in place, not at a copy.
        let current = self.membership();
        if current.is_joint() {
            let final_config = current.leave_joint();
            tracing::info!("joint configuration committed; appending the final one");
            self.append_config(final_config);
        } else if !current.voters.contains(&self.cfg.id) {
            tracing::info!("removed from the voters; stepping down");
            let term = self.term;
            self.become_follower(term, None);
        }
    }

    /// Whether `id` may take part in elections with this replica.
    pub(super) fn is_voter(&self, id: NodeId) -> bool {
        self.membership().is_voter(id)
    }

    /// Whether this replica may start an election: if it votes in its latest configuration,
    /// or that configuration is uncommitted and it votes in the one before. A replica that
    /// holds the newest log but was just removed may be needed to finish the change (thesis
    /// §4.1); it does not count its own vote unless it is a voter. Joining replicas and
    /// replicas whose removal is committed never campaign.
    ///
    /// A learner campaigns only once no leader has been heard from for
    /// [`LEARNER_SILENT_TIMEOUTS`] maximal election timeouts: it may hold the newest log, so
    /// that no voter can win without it, yet refuse every voter its vote for that very reason.
    /// (Seen with a voter lost for good: a survivor held an uncommitted joint configuration
    /// that needed the learner's vote, the learner held a later leader's uncommitted entry,
    /// and the third voter was behind the survivor.) Its election is safe as anyone's: it
    /// needs a quorum of its configuration's voters, each granting only to a log at least as
    /// up to date as its own, and never counts itself. Once its first entry commits it steps
    /// down (`membership_commit_advanced`), having brought the voters up to date.
    pub(super) fn may_campaign(&self) -> bool {
        let me = self.cfg.id;
        if self.is_voter(me) {
            return true;
        }
        let silent_enough = u64::from(self.leader_silent_ticks)
            >= LEARNER_SILENT_TIMEOUTS * u64::from(self.cfg.election_ticks_max);
        if self.membership().is_learner(me) && silent_enough {
            return true;
        }
        match self.configs.last_index() {
            Some(index) if index > self.commit => self.configs.at(index.prev()).is_voter(me),
            _ => false,
        }
    }
}
