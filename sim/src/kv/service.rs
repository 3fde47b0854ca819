//! The kv service as a [`Service`]: every node runs `workloads::KvStateMachine` and a
//! `workloads::KvServer`; the clerks ([`super::clients`]) drive them and record a history
//! that is checked for linearizability when the seed ends ([`super::check`]).

use super::check::{check_history, LinCheck};
use super::clients::KvDriver;
use crate::cluster::{Failure, SimNode, World};
use crate::config::SwarmConfig;
use crate::runner::{Run, RunOptions, SeedReport};
use crate::service::Service;
use raft_core::{Event, NodeId};
use std::rc::Rc;
use workloads::{
    Attempt, Envelope, KvCommand, KvHandled, KvServer, KvServerConfig, KvStateMachine,
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

impl KvDriver {
    /// The run of one seed of the kv service.
    pub fn build(config: SwarmConfig, options: &RunOptions) -> Rc<Run<KvDriver>> {
        let workload = options.kv_workload().expect("a kv run");
        let driver = KvDriver::new(
            config.seed,
            workload,
            options.service_bugs.kv,
            &config.all_ids(),
        );
        Run::single(Rc::new(driver), config, options)
    }

    /// The settings of the run's replicas.
    pub fn server_config(&self) -> KvServerConfig {
        KvServerConfig {
            reads_through_log: self.config.reads_through_log,
            bugs: self.bugs,
            ..KvServerConfig::default()
        }
    }
}

impl Service for KvDriver {
    type Machine = KvStateMachine;
    type Request = KvRequest;
    type Process = KvServer<ReplyTo>;
    type Group = ();

    fn machine(&self, _: &()) -> KvStateMachine {
        self.server_config().state_machine()
    }

    fn process(&self, _: &(), _: NodeId) -> KvServer<ReplyTo> {
        // `local_reads`, if planted, comes with the configuration's bugs.
        KvServer::new(self.server_config(), WAITERS_MAX)
    }

    fn tune(&self, _: &(), config: &mut raft_core::Config) {
        if self.config.small_snapshots {
            config.snapshot_threshold_bytes = 4 << 10;
        }
    }

    fn on_request(
        &self,
        world: &Rc<World<Self>>,
        index: usize,
        node: &mut SimNode<Self>,
        server: &mut KvServer<ReplyTo>,
        req: KvRequest,
    ) {
        let to = ReplyTo {
            clerk: req.clerk,
            attempt: req.attempt,
        };
        let mut replies = Vec::new();
        let read_only = req.envelope.command.is_read_only();
        let handled = server.request(node, to, req.envelope, &mut replies);
        let id = world.slot(index).id;
        match handled {
            KvHandled::Answered => {}
            KvHandled::ReadBarrier => world.record(id, "kv-read", req.attempt.seq.0),
            KvHandled::Proposed => world.record(id, "kv-propose", req.attempt.seq.0),
        }
        if read_only && handled == KvHandled::Proposed && !self.config.reads_through_log {
            // Reads are configured to be served after a ReadIndex barrier; one in the log
            // still answers correctly but leaves the barrier path (the one that can serve
            // stale reads) untested.
            world.fail(Failure::Node(format!(
                "n{id} proposed a read through the log although reads_through_log is off"
            )));
        }
        for (to, reply) in replies {
            self.deliver_reply(world, to, reply);
        }
    }

    fn on_events(
        &self,
        world: &Rc<World<Self>>,
        _: usize,
        node: &SimNode<Self>,
        server: &mut KvServer<ReplyTo>,
        events: &[Event],
    ) {
        let mut replies = Vec::new();
        server.on_events(node.state_machine(), events, &mut replies);
        for (to, reply) in replies {
            self.deliver_reply(world, to, reply);
        }
    }

    fn start_group(&self, world: &Rc<World<Self>>) {
        KvDriver::start(world);
    }

    fn heal(&self, run: &Rc<Run<Self>>) {
        // One last Get per idle clerk: recovery must include making progress.
        KvDriver::final_reads(&run.worlds()[0]);
    }

    fn waiting(&self, _: &Run<Self>) -> Option<String> {
        let pending = self.pending();
        (pending > 0).then(|| format!("{pending} client operation(s) pending"))
    }

    fn finish(&self, _: &Run<Self>) -> Result<(), Failure> {
        match check_history(&self.history()).0 {
            LinCheck::Ok => Ok(()),
            LinCheck::Illegal(what) | LinCheck::Unknown(what) => {
                Err(Failure::Linearizability(what))
            }
        }
    }

    fn report(&self, report: &mut SeedReport) {
        report.kv = Some(self.stats());
        report.history = Some(self.history());
    }
}
