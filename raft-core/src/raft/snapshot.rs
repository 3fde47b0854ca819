//! Chunked InstallSnapshot: the leader streams its latest snapshot to a follower whose next
//! entry was compacted away, one chunk in flight at a time (Raft §7).

use super::Raft;
use crate::membership::Membership;
use crate::message::MessageBody;
use crate::progress::ReplicationState;
use crate::types::{LogIndex, NodeId, Snapshot, SnapshotMeta};
use std::sync::Arc;

/// Largest snapshot a follower accepts, in bytes; bounds the receive buffer.
pub const SNAPSHOT_BYTES_MAX: u64 = 1 << 32;

/// A snapshot being received, chunk by chunk.
#[derive(Debug)]
pub(crate) struct IncomingSnapshot {
    meta: SnapshotMeta,
    total_len: u64,
    checksum: u32,
    data: Vec<u8>,
    membership: Membership,
}

impl Raft {
    pub(super) fn start_snapshot(&mut self, to: NodeId) {
        let snapshot = self
            .snapshot
            .clone()
            .expect("a compacted log implies a snapshot");
        let pr = self.progress.get_mut(&to).expect("peer has progress");
        tracing::info!(%to, index = %snapshot.meta.index, "sending snapshot");
        pr.state = ReplicationState::Snapshot {
            checksum: crc32fast::hash(&snapshot.data),
            snapshot,
            offset: 0,
            idle_ticks: 0,
        };
        pr.inflight.clear();
        self.send_snapshot_chunk(to);
    }

    pub(super) fn send_snapshot_chunk(&mut self, to: NodeId) {
        let chunk_bytes = self.cfg.snapshot_chunk_bytes;
        let Some(pr) = self.progress.get_mut(&to) else {
            return;
        };
        let ReplicationState::Snapshot {
            snapshot,
            offset,
            idle_ticks,
            checksum,
        } = &mut pr.state
        else {
            return;
        };
        *idle_ticks = 0;
        let total_len = snapshot.data.len() as u64;
        let start = (*offset).min(total_len);
        let end = start.saturating_add(chunk_bytes).min(total_len);
        let body = MessageBody::InstallSnapshot {
            meta: snapshot.meta,
            offset: start,
            data: snapshot.data[start as usize..end as usize].to_vec(),
            total_len,
            checksum: *checksum,
            membership: Box::new(snapshot.membership.clone()),
        };
        self.send(to, body);
    }

    pub(super) fn handle_snapshot_response(
        &mut self,
        from: NodeId,
        meta: SnapshotMeta,
        next_offset: u64,
        done: bool,
    ) {
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        pr.recent_active = true;
        let ReplicationState::Snapshot {
            snapshot, offset, ..
        } = &mut pr.state
        else {
            return;
        };
        if snapshot.meta != meta {
            return;
        }
        if done {
            pr.ack(meta.index);
            pr.become_probe();
            tracing::info!(%from, index = %meta.index, "snapshot delivered");
            if self.maybe_commit() {
                self.on_commit_advanced();
            }
            self.send_append(from);
            return;
        }
        *offset = next_offset.min(snapshot.data.len() as u64);
        self.send_snapshot_chunk(from);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn handle_snapshot_chunk(
        &mut self,
        from: NodeId,
        meta: SnapshotMeta,
        offset: u64,
        data: Vec<u8>,
        total_len: u64,
        checksum: u32,
        membership: Membership,
    ) {
        self.leader = Some(from);
        self.election_elapsed = 0;
        self.leader_silent_ticks = 0;
        // BUG (planted, `stale_snapshot_installed`): a snapshot we are past is installed.
        if meta.index <= self.commit && !self.cfg.bugs.stale_snapshot_installed {
            // We already have everything the snapshot covers.
            let body = MessageBody::InstallSnapshotResponse {
                meta,
                next_offset: total_len,
                done: true,
            };
            return self.send(from, body);
        }
        let chunk_end = offset.checked_add(data.len() as u64);
        if total_len > SNAPSHOT_BYTES_MAX || chunk_end.is_none_or(|end| end > total_len) {
            tracing::warn!(%from, "ignoring malformed snapshot chunk");
            return;
        }
        let fresh = self
            .incoming
            .as_ref()
            .is_none_or(|s| s.meta != meta || s.total_len != total_len);
        if fresh && offset == 0 {
            self.incoming = Some(IncomingSnapshot {
                meta,
                total_len,
                checksum,
                data: Vec::new(),
                membership,
            });
        }
        let received = match self.incoming.as_mut() {
            Some(incoming) if incoming.meta == meta && incoming.data.len() as u64 == offset => {
                incoming.data.extend_from_slice(&data);
                incoming.data.len() as u64
            }
            Some(incoming) if incoming.meta == meta => incoming.data.len() as u64,
            _ => 0,
        };
        if received == total_len {
            return self.finish_snapshot(from);
        }
        let body = MessageBody::InstallSnapshotResponse {
            meta,
            next_offset: received,
            done: false,
        };
        self.send(from, body);
    }

    fn finish_snapshot(&mut self, from: NodeId) {
        let incoming = self
            .incoming
            .take()
            .expect("a complete snapshot is being received");
        let meta = incoming.meta;
        if crc32fast::hash(&incoming.data) != incoming.checksum {
            tracing::warn!(%from, index = %meta.index, "snapshot checksum mismatch; restarting");
            let body = MessageBody::InstallSnapshotResponse {
                meta,
                next_offset: 0,
                done: false,
            };
            return self.send(from, body);
        }
        let snapshot = Snapshot {
            meta,
            data: Arc::new(incoming.data),
            membership: incoming.membership,
        };
        self.install_snapshot(snapshot);
        let next_offset = incoming.total_len;
        self.send(
            from,
            MessageBody::InstallSnapshotResponse {
                meta,
                next_offset,
                done: true,
            },
        );
    }

    /// Replaces the log with a snapshot from the leader (or just advances commit if the log
    /// already holds the snapshot's last entry).
    fn install_snapshot(&mut self, snapshot: Snapshot) {
        let meta = snapshot.meta;
        assert!(
            meta.index > self.commit || self.cfg.bugs.stale_snapshot_installed,
            "installing an already committed snapshot"
        );
        tracing::info!(index = %meta.index, term = %meta.term, "installing snapshot");
        if self.log.term(meta.index) == Some(meta.term) {
            // Log Matching: our prefix up to there equals the leader's, and it is committed.
            self.commit = meta.index;
            return;
        }
        self.log.restore(meta);
        self.configs_restored(snapshot.membership.clone());
        self.commit = meta.index;
        self.applied = meta.index;
        self.snapshot = Some(snapshot.clone());
        self.snapshot_to_install = Some(Box::new(snapshot));
    }

    /// Index of the latest local snapshot.
    pub fn snapshot_index(&self) -> LogIndex {
        self.log.snapshot_meta().index
    }
}
