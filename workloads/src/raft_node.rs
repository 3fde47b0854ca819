//! The Raft node as a server sees it.
//!
//! A server (the kv server, the shard servers) decides what to do with a client's request
//! from its node's status, proposes entries, starts read barriers and reads the applied
//! state. [`RaftNode`] is exactly that much of `raft_core::Node`, so a server is sans-IO and
//! can be tested against a scripted node without a cluster, and the same server runs under
//! the simulator and on real I/O.

use raft_core::{Clock, Disk, Error, Net, Node, ProposalId, ReadId, StateMachine, Status};

/// What a server uses of its Raft node.
pub trait RaftNode {
    /// The state machine the node applies entries to.
    type Machine;

    /// The node's role, term, leader hint and indexes.
    fn status(&self) -> Status;

    /// Proposes `data` for the log (`Node::propose`).
    ///
    /// # Errors
    /// Whatever the node refuses: not the leader (with its hint), busy, stopped.
    fn propose(&mut self, data: Vec<u8>) -> Result<ProposalId, Error>;

    /// Starts a ReadIndex barrier (`Node::read_barrier`).
    ///
    /// # Errors
    /// Whatever the node refuses: not the leader (with its hint), stopped.
    fn read_barrier(&mut self) -> Result<ReadId, Error>;

    /// The applied state.
    fn state_machine(&self) -> &Self::Machine;
}

impl<N: Net, D: Disk, C: Clock, S: StateMachine> RaftNode for Node<N, D, C, S> {
    type Machine = S;

    fn status(&self) -> Status {
        Node::status(self)
    }

    fn propose(&mut self, data: Vec<u8>) -> Result<ProposalId, Error> {
        Node::propose(self, data)
    }

    fn read_barrier(&mut self) -> Result<ReadId, Error> {
        Node::read_barrier(self)
    }

    fn state_machine(&self) -> &S {
        Node::state_machine(self)
    }
}
