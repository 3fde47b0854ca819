//! The snapshot round trip checked at the end of a run: every running node's state machine,
//! snapshotted, restores into a fresh one that snapshots to the same bytes.
//!
//! A snapshot is restored only when a node restarts from one or installs a leader's, which
//! some services' logs (a shard controller's, say) rarely grow enough to need; an encoding
//! that cannot be read back would otherwise wait for the first run that compacts.

use crate::checkers::Violation;
use crate::cluster::World;
use crate::service::Service;
use raft_core::StateMachine;

impl<S: Service> World<S> {
    /// End of run: for every running node, `restore(snapshot())` into a fresh state machine of
    /// its group succeeds and gives back the same snapshot bytes (snapshots are a function of
    /// the state: the simulator's determinism needs that anyway, as they go to disk).
    pub fn check_snapshot_round_trip(&self) -> Result<(), Violation> {
        for slot in &self.slots {
            let guard = slot.node.borrow();
            let Some(node) = guard.as_ref() else {
                continue;
            };
            let bytes = node.state_machine().snapshot();
            let mut fresh = self.service.machine(&self.group);
            let fail = |detail: String| Violation {
                checker: "snapshot round trip",
                at: self.now(),
                detail: format!("n{}: {detail}", slot.id),
            };
            fresh.restore(&bytes).map_err(|why| {
                fail(format!(
                    "its state machine's snapshot ({} bytes) does not restore: {why}",
                    bytes.len()
                ))
            })?;
            let again = fresh.snapshot();
            if again != bytes {
                return Err(fail(format!(
                    "a state machine restored from its snapshot ({} bytes) snapshots to \
                     different bytes ({} bytes)",
                    bytes.len(),
                    again.len()
                )));
            }
        }
        Ok(())
    }
}
