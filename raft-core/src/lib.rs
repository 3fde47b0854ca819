//! The Raft consensus protocol as a pure, sans-IO state machine, with a durable WAL, snapshots
//! and linearizable reads, over abstract [`Net`], [`Disk`] and [`Clock`] traits.
//!
//! # Layers
//!
//! * [`Raft`] is the protocol core. It never performs I/O: inputs are peer messages, ticks,
//!   proposals, read requests and "persisted"/"snapshot taken" notifications; outputs come in
//!   one numbered [`Ready`]. Messages that promise durable state (votes, append
//!   acknowledgements) stay inside `Raft` until [`Raft::on_persisted`] is given the
//!   [`PersistReceipt`] of that very `Ready`, which a [`Storage`] mints only after its sync
//!   succeeded, so "persist before you vote or acknowledge" is enforced by the types.
//! * [`Wal`] is a [`Storage`]: it stores hard state, entries and snapshots on a [`Disk`], with
//!   checksummed framing and a documented recovery rule (see the [`wal`] module).
//! * [`Node`] drives one replica: it feeds inputs to `Raft`, persists, sends, applies committed
//!   entries to your [`StateMachine`] and reports [`Event`]s. It owns no threads, so it runs
//!   the same under a deterministic simulator and in a real process.
//!
//! # Driving a node
//!
//! A runtime gives the node three things: incoming messages ([`Node::receive`]), timer calls
//! ([`Node::on_timer`] at [`Node::next_deadline`]) and client requests ([`Node::propose`],
//! [`Node::read_barrier`]). After each call it drains [`Node::take_events`].
//!
//! ```
//! use raft_core::{Clock, Config, Event, Instant, LogIndex, MemDisk, Message, Net, Node, NodeId,
//!     StateMachine};
//! use std::cell::Cell;
//! use std::rc::Rc;
//!
//! /// Messages would go to a transport; a single-voter cluster sends none.
//! struct NoNet;
//! impl Net for NoNet {
//!     fn send(&mut self, _msg: Message) {}
//! }
//!
//! /// A manual clock in microseconds.
//! #[derive(Clone, Default)]
//! struct ManualClock(Rc<Cell<u64>>);
//! impl Clock for ManualClock {
//!     fn now(&self) -> Instant {
//!         Instant(self.0.get())
//!     }
//! }
//!
//! /// A counter: every command adds its first byte.
//! #[derive(Default)]
//! struct Counter(u64);
//! impl StateMachine for Counter {
//!     fn apply(&mut self, _index: LogIndex, data: &[u8]) -> Vec<u8> {
//!         self.0 += u64::from(data[0]);
//!         self.0.to_le_bytes().to_vec()
//!     }
//!     fn snapshot(&self) -> Vec<u8> {
//!         self.0.to_le_bytes().to_vec()
//!     }
//!     fn restore(&mut self, data: &[u8]) -> Result<(), String> {
//!         let bytes = data.try_into().map_err(|_| "bad snapshot".to_string())?;
//!         self.0 = u64::from_le_bytes(bytes);
//!         Ok(())
//!     }
//! }
//!
//! # fn main() -> Result<(), raft_core::Error> {
//! let config = Config::new(NodeId(1), vec![NodeId(1)]);
//! let clock = ManualClock::default();
//! let mut node = Node::open(config, NoNet, MemDisk::new(), clock.clone(), Counter::default(), 7)?;
//!
//! // Let time pass until the election timeout fires and the node elects itself.
//! while node.propose(vec![1]).is_err() {
//!     clock.0.set(node.next_deadline().0);
//!     node.on_timer()?;
//! }
//! node.propose(vec![2])?;
//! let committed = node
//!     .take_events()
//!     .into_iter()
//!     .filter(|e| matches!(e, Event::Committed { .. }))
//!     .count();
//! assert_eq!(committed, 2);
//! assert_eq!(node.state_machine().0, 3);
//!
//! // A linearizable read: wait for ReadReady, then read the state machine.
//! let read = node.read_barrier()?;
//! assert!(node.take_events().contains(&Event::ReadReady { id: read, index: LogIndex(3) }));
//!
//! // Restart from the same disk: the log and state come back.
//! let (net, disk, clock, _) = node.shutdown();
//! let config = Config::new(NodeId(1), vec![NodeId(1)]);
//! let node = Node::open(config, net, disk, clock, Counter::default(), 8)?;
//! assert_eq!(node.state_machine().0, 3);
//! # Ok(())
//! # }
//! ```
//!
//! In a multi-node cluster, `send` hands each [`Message`] to the transport (use [`encode`] /
//! [`decode`] for bytes) and the runtime calls [`Node::receive`] for each one that arrives.
//!
//! # Optional protocol features
//!
//! Leadership transfer ([`Node::transfer_leadership`]), membership changes with joint
//! consensus ([`Node::change_membership`], [`Membership`]), lease reads
//! ([`Config::lease_reads`], off by default, relying on [`Clock::drift_bound_ppm`]) and
//! dynamic AppendEntries batch sizes ([`Config::dynamic_append_batch`], off by default). The
//! crate README describes each one's rules and assumptions.
//!
//! # Testing hooks
//!
//! [`MemDisk`] models durability (live versus synced bytes) and can [`MemDisk::crash`].
//! [`Bugs`] holds deliberately planted bugs, all off by default, for checking that a test
//! harness catches them.
#![deny(missing_docs)]

mod append_window;
mod chunked_deque;
mod config;
mod error;
mod events;
mod io;
mod log;
mod mem_disk;
mod membership;
pub mod message;
mod node;
mod planted;
mod progress;
mod raft;
pub mod ready;
mod state_machine;
mod types;
pub mod wal;

pub use config::{Bugs, Config, ConfigError};
pub use error::Error;
pub use io::{Clock, Disk, DiskError, Instant, Net, Storage};
pub use mem_disk::{CrashMode, MemDisk};
pub use membership::{Membership, MembershipChange};
pub use message::{
    decode, encode, AppendResult, DecodeError, ForwardedReadId, Message, MessageBody,
};
pub use node::{Event, Node, Persistence, ProposalId, ReadId, Status};
pub use raft::{Raft, PROPOSAL_BYTES_MAX};
pub use ready::{LeaderChange, PersistReceipt, ReadState, Ready, ReadyNumber, Ticket};
pub use state_machine::StateMachine;
pub use types::{
    Entry, EntryKind, HardState, LogIndex, NodeId, Role, Snapshot, SnapshotMeta, Term,
};
pub use wal::{Recovered, Wal, WalError};
