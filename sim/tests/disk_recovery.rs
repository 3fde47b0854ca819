//! raft-core recovers what it synced from the simulated disk, whatever a crash loses.

use raft_core::message::MessageBody;
use raft_core::{Config, Instant, LogIndex, Message, Node, NodeId, Term};
use sim::disk::{CrashLoss, DiskState, SimDisk};
use sim::raw::ChainStateMachine;
use std::cell::RefCell;
use std::rc::Rc;

struct NoNet;
impl raft_core::Net for NoNet {
    fn send(&mut self, _msg: Message) {}
}

struct FixedClock;
impl raft_core::Clock for FixedClock {
    fn now(&self) -> Instant {
        Instant(1_000)
    }
}

fn open(state: &Rc<RefCell<DiskState>>) -> Node<NoNet, SimDisk, FixedClock, ChainStateMachine> {
    let config = Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)]);
    let disk = SimDisk::new(state.clone());
    Node::open(
        config,
        NoNet,
        disk,
        FixedClock,
        ChainStateMachine::default(),
        7,
    )
    .expect("open")
}

#[test]
fn a_granted_vote_survives_every_crash_mode() {
    for loss in [
        CrashLoss::KeepAll,
        CrashLoss::LoseAll,
        CrashLoss::TornPrefix,
    ] {
        for seed in 0..20 {
            let state = Rc::new(RefCell::new(DiskState::new(seed, NodeId(1), None)));
            let mut node = open(&state);
            let vote = Message {
                from: NodeId(2),
                to: NodeId(1),
                term: Term(1),
                body: MessageBody::RequestVote {
                    pre_vote: false,
                    last_log_index: LogIndex(0),
                    last_log_term: Term(0),
                },
            };
            node.receive(vote).expect("receive");
            assert_eq!(node.status().term, Term(1));
            drop(node);
            state.borrow_mut().crash(loss);
            let node = open(&state);
            assert_eq!(
                node.status().term,
                Term(1),
                "{loss:?} seed {seed} lost the term"
            );
        }
    }
}
