//! How a simulated node runs the kv server (`workloads::KvServer`): the request as it
//! reaches the node, where a reply goes, and the glue between a step and the server.

use crate::cluster::{SimNode, Slot, World};
use crate::kv::{KvDriver, SimStateMachine};
use raft_core::{Event, ProposalId, ReadId, Status};
use std::rc::Rc;
use workloads::{
    Attempt, Envelope, KvBugs, KvCommand, KvHandled, KvServer, KvServerConfig, KvStateMachine,
    RaftNode,
};

/// Requests one server keeps waiting at once; beyond this it answers `Timeout`.
pub const WAITERS_MAX: usize = 256;

/// A clerk's request as it reaches a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvRequest {
    /// Which clerk sent it (index into the driver's clerks).
    pub clerk: usize,
    /// The send it is.
    pub attempt: Attempt,
    /// What the clerk asks.
    pub envelope: Envelope<KvCommand>,
}

/// Where a reply goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyTo {
    /// The clerk.
    pub clerk: usize,
    /// The send being answered.
    pub attempt: Attempt,
}

/// The settings of a kv run's replicas.
pub fn server_config(driver: &KvDriver) -> KvServerConfig {
    let bugs = if driver.bugs.sessions_not_in_snapshot {
        KvBugs::from_name("sessions_not_in_snapshot").expect("a KvBugs name")
    } else {
        KvBugs::default()
    };
    KvServerConfig {
        reads_through_log: driver.config.reads_through_log,
        bugs,
        ..KvServerConfig::default()
    }
}

/// A new server process for a node of a run (`None` outside the kv workload: never used).
pub fn server(kv: Option<&KvDriver>) -> KvServer<ReplyTo> {
    let Some(driver) = kv else {
        return KvServer::new(KvServerConfig::default(), WAITERS_MAX);
    };
    let server = KvServer::new(server_config(driver), WAITERS_MAX);
    if driver.bugs.local_reads {
        server.with_local_reads_bug()
    } else {
        server
    }
}

/// A simulated node seen as a kv server's node.
struct KvNode<'a>(&'a mut SimNode);

impl RaftNode for KvNode<'_> {
    type Machine = KvStateMachine;

    fn status(&self) -> Status {
        self.0.status()
    }

    fn propose(&mut self, data: Vec<u8>) -> Result<ProposalId, raft_core::Error> {
        self.0.propose(data)
    }

    fn read_barrier(&mut self) -> Result<ReadId, raft_core::Error> {
        self.0.read_barrier()
    }

    fn state_machine(&self) -> &KvStateMachine {
        kv_machine(self.0.state_machine())
    }
}

fn kv_machine(sm: &SimStateMachine) -> &KvStateMachine {
    sm.kv().expect("a kv run's nodes run the kv state machine")
}

impl World {
    /// Node `slot` handles a clerk request.
    pub(crate) fn kv_request(self: &Rc<Self>, slot: &Slot, node: &mut SimNode, req: KvRequest) {
        let to = ReplyTo {
            clerk: req.clerk,
            attempt: req.attempt,
        };
        let mut replies = Vec::new();
        let handled =
            slot.kv_server
                .borrow_mut()
                .request(&mut KvNode(node), to, req.envelope, &mut replies);
        match handled {
            KvHandled::Answered => {}
            KvHandled::ReadBarrier => self.record(slot.id, "kv-read", req.attempt.seq.0),
            KvHandled::Proposed => self.record(slot.id, "kv-propose", req.attempt.seq.0),
        }
        self.kv_replies(replies);
    }

    /// Answers the clerks whose proposals or read barriers these events resolve.
    pub(crate) fn kv_events(self: &Rc<Self>, slot: &Slot, events: &[Event]) {
        let mut replies = Vec::new();
        {
            let guard = slot.node.borrow();
            let node = guard.as_ref().expect("a node that just stepped is up");
            let machine = kv_machine(node.state_machine());
            slot.kv_server
                .borrow_mut()
                .on_events(machine, events, &mut replies);
        }
        self.kv_replies(replies);
    }

    /// Sends replies to clerks (through the driver, which may lose them or delay them).
    fn kv_replies(self: &Rc<Self>, replies: Vec<workloads::KvAnswer<ReplyTo>>) {
        if let Some(driver) = &self.kv {
            for (to, reply) in replies {
                driver.deliver_reply(self, to, reply);
            }
        }
    }
}
