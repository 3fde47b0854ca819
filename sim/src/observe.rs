//! The whole-cluster views the checkers and the runner take: every running node's log, the
//! leader the liveness phase waits for, the statuses.

use crate::checkers::{LogSnapshot, Violation};
use crate::cluster::World;
use crate::service::Service;
use raft_core::{NodeId, Role};

impl<S: Service> World<S> {
    /// Runs the whole-cluster log checks (log matching, committed entries held).
    pub fn check_logs(&self) -> Result<(), Violation> {
        self.with_running_logs(|snapshots| {
            self.checkers
                .borrow()
                .log
                .check_matching(self.now(), snapshots)
        })
    }

    /// End of run: every committed entry is still held by a majority of `voters` (the live
    /// leader's configuration; removed nodes and learners do not count).
    pub fn check_durable(&self, voters: &[NodeId]) -> Result<(), Violation> {
        self.with_running_logs(|snapshots| {
            let running: Vec<LogSnapshot<'_>> = snapshots
                .iter()
                .filter(|s| voters.contains(&s.status.id))
                .map(|s| LogSnapshot {
                    status: s.status,
                    log: s.log,
                })
                .collect();
            let down = voters.len() - running.len();
            self.checkers
                .borrow()
                .log
                .check_durable(self.now(), &running, down, voters.len())
        })
    }

    /// The leader the liveness phase waits for, with the voters of its configuration: a
    /// running leader that is a voter of its latest committed configuration and whose term is
    /// the highest among the running members of that configuration and of its latest one.
    /// A removed node may campaign in ever higher terms without being needed or heard.
    pub fn live_leader(&self) -> Option<(raft_core::Status, Vec<NodeId>)> {
        let statuses = self.statuses();
        self.slots.iter().find_map(|slot| {
            let guard = slot.node.borrow();
            let node = guard.as_ref()?;
            let status = node.status();
            if status.role != Role::Leader {
                return None;
            }
            let committed = node.raft().membership_at(status.commit);
            let current = node.membership();
            if !committed.voters.contains(&status.id) {
                return None;
            }
            let top = statuses
                .iter()
                .filter(|s| committed.contains(s.id) || current.contains(s.id))
                .map(|s| s.term)
                .max();
            (top == Some(status.term)).then(|| (status, current.voters.clone()))
        })
    }

    /// Calls `f` with a view of every running node's log (down nodes are left out).
    fn with_running_logs<R>(&self, f: impl FnOnce(&[LogSnapshot<'_>]) -> R) -> R {
        let guards: Vec<_> = self.slots.iter().map(|s| s.node.borrow()).collect();
        let snapshots: Vec<LogSnapshot<'_>> = guards
            .iter()
            .filter_map(|g| g.as_ref())
            .map(|node| LogSnapshot {
                status: node.status(),
                log: node,
            })
            .collect();
        f(&snapshots)
    }

    /// Statuses of the running nodes.
    pub fn statuses(&self) -> Vec<raft_core::Status> {
        self.slots
            .iter()
            .filter_map(|s| s.node.borrow().as_ref().map(|n| n.status()))
            .collect()
    }
}
