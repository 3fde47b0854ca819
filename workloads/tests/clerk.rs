//! Unit tests of the sans-IO clerk: routing, retries, late replies, and exactly-once end to
//! end over a toy in-process "cluster".

use raft_core::{LogIndex, NodeId, StateMachine};
use workloads::{
    ApplyOutcome, Attempt, Clerk, ClerkError, ClerkStep, ClientId, KvCommand, KvError, KvReply,
    KvStateMachine, KvStore, Outgoing, Seq,
};

type Step = ClerkStep<KvCommand, KvReply>;

fn servers() -> Vec<NodeId> {
    vec![NodeId(1), NodeId(2), NodeId(3)]
}

fn get(key: &str) -> KvCommand {
    KvCommand::Get { key: key.into() }
}

fn sent(step: Step) -> Outgoing<KvCommand> {
    match step {
        ClerkStep::Send(outgoing) => outgoing,
        other => panic!("expected a send, got {other:?}"),
    }
}

#[test]
fn bad_server_lists_are_rejected() {
    assert_eq!(
        Clerk::<KvCommand>::new(ClientId(1), vec![]).err(),
        Some(ClerkError::NoServers)
    );
    let twice = vec![NodeId(1), NodeId(2), NodeId(1)];
    let error = Clerk::<KvCommand>::new(ClientId(1), twice).err();
    assert_eq!(error, Some(ClerkError::DuplicateServer(NodeId(1))));
}

#[test]
fn first_send_carries_client_seq_and_a_server_chosen_from_the_client_id() {
    let mut clerk = Clerk::new(ClientId(4), servers()).unwrap();
    assert_eq!(clerk.target(), NodeId(2), "4 mod 3 = 1, the second server");
    let out = clerk.start(get("k")).unwrap();
    assert_eq!(
        out.attempt,
        Attempt {
            seq: Seq(1),
            number: 1,
            to: NodeId(2)
        }
    );
    assert_eq!(out.envelope.client, ClientId(4));
    assert_eq!(out.envelope.seq, Seq(1));
    assert_eq!(out.envelope.command, get("k"));
    assert_eq!(clerk.in_flight(), Some(out.attempt));
    assert_eq!(clerk.next_seq(), Seq(2));
}

#[test]
fn one_request_at_a_time() {
    let mut clerk = Clerk::new(ClientId(0), servers()).unwrap();
    clerk.start(get("a")).unwrap();
    assert_eq!(clerk.start(get("b")), Err(ClerkError::Busy(Seq(1))));
    assert_eq!(clerk.next_seq(), Seq(2), "a refused start changes nothing");
}

#[test]
fn wrong_leader_with_a_hint_goes_to_the_hinted_server_with_the_same_seq() {
    let mut clerk = Clerk::new(ClientId(0), servers()).unwrap();
    let first = clerk.start(get("k")).unwrap();
    assert_eq!(first.attempt.to, NodeId(1));
    let hint = Err(KvError::WrongLeader {
        hint: Some(NodeId(3)),
    });
    let retry = sent(clerk.on_reply(first.attempt, hint));
    assert_eq!(
        retry.attempt,
        Attempt {
            seq: Seq(1),
            number: 2,
            to: NodeId(3)
        }
    );
    assert_eq!(
        retry.envelope, first.envelope,
        "a retry is the same request"
    );
    assert_eq!(clerk.consecutive_failures(), 1);
}

#[test]
fn wrong_leader_without_a_hint_and_timeouts_rotate() {
    let mut clerk = Clerk::new(ClientId(0), servers()).unwrap();
    let first = clerk.start(get("k")).unwrap();
    let second = sent(clerk.on_reply(first.attempt, Err(KvError::WrongLeader { hint: None })));
    assert_eq!(second.attempt.to, NodeId(2));
    let third = sent(clerk.on_timeout(second.attempt));
    assert_eq!(third.attempt.to, NodeId(3));
    let fourth = sent(clerk.on_reply(third.attempt, Err(KvError::Timeout)));
    assert_eq!(fourth.attempt.to, NodeId(1));
    assert_eq!(fourth.attempt.seq, Seq(1));
    assert_eq!(fourth.attempt.number, 4);
    assert_eq!(clerk.consecutive_failures(), 3);
}

#[test]
fn a_hint_naming_the_rejecting_server_or_a_stranger_is_not_followed() {
    let mut clerk = Clerk::new(ClientId(0), servers()).unwrap();
    let first = clerk.start(get("k")).unwrap();
    let self_hint = Err(KvError::WrongLeader {
        hint: Some(NodeId(1)),
    });
    let second = sent(clerk.on_reply(first.attempt, self_hint));
    assert_eq!(second.attempt.to, NodeId(2));
    let stranger = Err(KvError::WrongLeader {
        hint: Some(NodeId(99)),
    });
    let third = sent(clerk.on_reply(second.attempt, stranger));
    assert_eq!(third.attempt.to, NodeId(3));
}

#[test]
fn servers_pointing_at_each_other_cannot_trap_the_clerk() {
    // Servers 1 and 2 each name the other as leader; server 3 is never hinted.
    let mut clerk = Clerk::new(ClientId(0), servers()).unwrap();
    let mut out = clerk.start(get("k")).unwrap();
    let mut reached_third = false;
    for _ in 0..20 {
        if out.attempt.to == NodeId(3) {
            reached_third = true;
            break;
        }
        let other = if out.attempt.to == NodeId(1) {
            NodeId(2)
        } else {
            NodeId(1)
        };
        out = sent(clerk.on_reply(out.attempt, Err(KvError::WrongLeader { hint: Some(other) })));
    }
    assert!(reached_third, "the clerk kept following circular hints");
}

/// A stale replica that keeps naming a dead leader must not trap the clerk between the two
/// (found by the simulator: kv seed 7117, a removed learner still naming a crashed leader).
#[test]
fn a_stale_hint_to_a_dead_server_cannot_trap_the_clerk() {
    // Servers 1..=5; the live leader is 1; server 4 keeps naming 3, which never answers.
    let five: Vec<NodeId> = (1..=5).map(NodeId).collect();
    let mut clerk = Clerk::new(ClientId(3), five).unwrap();
    let mut out = clerk.start(get("k")).unwrap();
    assert_eq!(out.attempt.to, NodeId(4));
    let mut tried = Vec::new();
    for _ in 0..12 {
        tried.push(out.attempt.to);
        let step: Step = match out.attempt.to {
            NodeId(1) => clerk.on_reply(out.attempt, Ok(KvReply::Value(None))),
            NodeId(3) => clerk.on_timeout(out.attempt),
            NodeId(4) => clerk.on_reply(
                out.attempt,
                Err(KvError::WrongLeader {
                    hint: Some(NodeId(3)),
                }),
            ),
            _ => clerk.on_reply(out.attempt, Err(KvError::WrongLeader { hint: None })),
        };
        match step {
            ClerkStep::Done { .. } => return,
            step => out = sent(step),
        }
    }
    panic!("the clerk never reached the leader; it tried {tried:?}");
}

#[test]
fn late_errors_are_ignored_but_a_late_success_completes_the_request() {
    let mut clerk = Clerk::new(ClientId(0), servers()).unwrap();
    let first = clerk.start(get("k")).unwrap();
    let second = sent(clerk.on_timeout(first.attempt));
    let step: Step = clerk.on_timeout(first.attempt);
    assert_eq!(step, ClerkStep::Ignored, "timer of a superseded send");
    let step: Step = clerk.on_reply(first.attempt, Err(KvError::Timeout));
    assert_eq!(step, ClerkStep::Ignored, "error of a superseded send");
    assert_eq!(clerk.in_flight(), Some(second.attempt));
    let done = clerk.on_reply(first.attempt, Ok(KvReply::Value(Some("v".into()))));
    assert_eq!(
        done,
        ClerkStep::Done {
            seq: Seq(1),
            reply: KvReply::Value(Some("v".into()))
        }
    );
    assert_eq!(clerk.in_flight(), None);
    assert_eq!(
        clerk.target(),
        NodeId(1),
        "the server that answered is the leader guess"
    );
    assert_eq!(clerk.consecutive_failures(), 0);
}

#[test]
fn next_request_gets_a_new_seq_and_goes_to_the_last_leader() {
    let mut clerk = Clerk::new(ClientId(0), servers()).unwrap();
    let first = clerk.start(get("k")).unwrap();
    let hint = Err(KvError::WrongLeader {
        hint: Some(NodeId(3)),
    });
    let retry = sent(clerk.on_reply(first.attempt, hint));
    let _ = clerk.on_reply(retry.attempt, Ok(KvReply::Done));
    let next = clerk.start(get("k")).unwrap();
    assert_eq!(
        next.attempt,
        Attempt {
            seq: Seq(2),
            number: 1,
            to: NodeId(3)
        }
    );
    // A reply for the finished request is ignored.
    let step = clerk.on_reply(retry.attempt, Ok(KvReply::Done));
    assert_eq!(step, ClerkStep::Ignored);
}

#[test]
fn stale_and_malformed_end_the_request() {
    let mut clerk = Clerk::new(ClientId(0), servers()).unwrap();
    let first = clerk.start(get("k")).unwrap();
    let step: Step = clerk.on_reply(first.attempt, Err(KvError::Stale { last: Seq(7) }));
    assert_eq!(
        step,
        ClerkStep::Failed {
            seq: Seq(1),
            error: KvError::Stale { last: Seq(7) }
        }
    );
    assert_eq!(clerk.in_flight(), None);
    let second = clerk.start(get("k")).unwrap();
    let step: Step = clerk.on_reply(second.attempt, Err(KvError::Malformed("x".into())));
    assert!(matches!(step, ClerkStep::Failed { seq: Seq(2), .. }));
}

#[test]
fn abandoned_requests_free_the_clerk_and_late_replies_are_ignored() {
    let mut clerk = Clerk::new(ClientId(0), servers()).unwrap();
    assert_eq!(clerk.abandon(), None);
    let first = clerk.start(get("k")).unwrap();
    assert_eq!(clerk.abandon(), Some(Seq(1)));
    let second = clerk.start(get("k")).unwrap();
    assert_eq!(second.attempt.seq, Seq(2));
    assert_eq!(
        clerk.on_reply(first.attempt, Ok(KvReply::Done)),
        ClerkStep::Ignored
    );
    assert_eq!(clerk.in_flight(), Some(second.attempt));
}

/// Goal: clerk + exactly-once wrapper give exactly-once appends when replies are lost.
/// Method: a toy cluster where server 2 leads and applies through a `KvStateMachine`; the
/// others answer WrongLeader (one with a hint, one without); the leader's first two replies
/// are lost, so the clerk times out and retries. Each append must land exactly once.
#[test]
fn lost_replies_and_retries_still_apply_each_append_once() {
    let mut sm = KvStateMachine::new(KvStore::new());
    let mut index = LogIndex(0);
    let mut replies_to_drop = 2;
    let mut clerk = Clerk::new(ClientId(9), servers()).unwrap();
    for value in ["a", "b", "c"] {
        let first = clerk.start(KvCommand::Append {
            key: "k".into(),
            value: value.into(),
        });
        let mut step = ClerkStep::Send(first.unwrap());
        for _ in 0..20 {
            let out = match step {
                ClerkStep::Send(out) => out,
                ClerkStep::Done { reply, .. } => {
                    assert_eq!(reply, KvReply::Done);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            };
            step = match out.attempt.to {
                NodeId(2) => {
                    index = index.next();
                    let result = sm.apply(index, &out.envelope.encode().unwrap());
                    if replies_to_drop > 0 {
                        replies_to_drop -= 1;
                        clerk.on_timeout(out.attempt)
                    } else {
                        let outcome = ApplyOutcome::<KvReply>::decode(&result).unwrap();
                        clerk.on_reply(out.attempt, outcome.into_response())
                    }
                }
                NodeId(1) => clerk.on_reply(out.attempt, Err(KvError::WrongLeader { hint: None })),
                _ => clerk.on_reply(
                    out.attempt,
                    Err(KvError::WrongLeader {
                        hint: Some(NodeId(2)),
                    }),
                ),
            };
        }
        assert_eq!(
            clerk.in_flight(),
            None,
            "request for {value} did not finish"
        );
    }
    assert_eq!(sm.app().get("k"), Some("abc"));
    assert!(index.0 > 3, "some requests were committed more than once");
}
