//! Random bytes on a node's peer and client ports never crash it: each bad connection is
//! closed with a logged reason, and the cluster keeps serving.

use crate::common;

use common::Scratch;
use raft_core::{Message, MessageBody, NodeId, Term};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use workloads::{KvCommand, KvReply};

/// One hostile connection: what it sends.
fn garbage(rng: &mut SmallRng, kind: u32) -> Vec<u8> {
    let random = |rng: &mut SmallRng, n: usize| (0..n).map(|_| rng.gen()).collect::<Vec<u8>>();
    match kind % 6 {
        // Raw noise.
        0 => {
            let n = rng.gen_range(1..4096);
            random(rng, n)
        }
        // A well-formed frame of noise.
        1 => {
            let n = rng.gen_range(0..2048);
            let payload = random(rng, n);
            let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
            bytes.extend(payload);
            bytes
        }
        // A length prefix far beyond any limit, then a little data.
        2 => {
            let mut bytes = u32::MAX.to_be_bytes().to_vec();
            bytes.extend(random(rng, 100));
            bytes
        }
        // A frame cut short.
        3 => {
            let mut bytes = 1000u32.to_be_bytes().to_vec();
            bytes.extend(random(rng, 10));
            bytes
        }
        // A valid Raft message from a node that is not a peer.
        4 => {
            let msg = Message {
                from: NodeId(99),
                to: NodeId(1),
                term: Term(u64::MAX),
                body: MessageBody::TimeoutNow,
            };
            let payload = raft_core::encode(&msg);
            let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
            bytes.extend(payload);
            bytes
        }
        // Noise with a prefix claiming a large but allowed frame.
        _ => {
            let mut bytes = (8u32 << 20).to_be_bytes().to_vec();
            bytes.extend(random(rng, 512));
            bytes
        }
    }
}

/// Sends garbage and waits (briefly) for the node to close the connection.
async fn attack(addr: SocketAddr, bytes: Vec<u8>) {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return;
    };
    let _ = stream.write_all(&bytes).await;
    let mut buf = [0u8; 1024];
    // The node answers garbage by closing; a cut-short frame waits for more bytes, so give
    // up after a moment and close from this side.
    let _ = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf)).await;
}

async fn run(tls: bool) {
    let _turn = common::processes_turn().await;
    let scratch = Scratch::new(if tls { "garbage-tls" } else { "garbage" });
    let mut cluster = common::cluster(&scratch, 3, tls).await;
    let mut rng = SmallRng::seed_from_u64(if tls { 2 } else { 1 });
    for round in 0..30u32 {
        let mut attacks = Vec::new();
        for id in cluster.ids() {
            let addrs = cluster.addrs[&id];
            attacks.push(tokio::spawn(attack(addrs.peer, garbage(&mut rng, round))));
            attacks.push(tokio::spawn(attack(
                addrs.client,
                garbage(&mut rng, round + 1),
            )));
        }
        for attack in attacks {
            attack.await.unwrap();
        }
    }
    for id in cluster.ids() {
        assert!(
            cluster.exited(id).is_none(),
            "{id} died on garbage; logs:\n{}",
            common::logs(&cluster)
        );
    }
    let put = KvCommand::Put {
        key: "after".into(),
        value: "garbage".into(),
    };
    assert_eq!(common::call(&cluster, 7, put).await, KvReply::Done);
    let get = KvCommand::Get {
        key: "after".into(),
    };
    assert_eq!(
        common::call(&cluster, 8, get).await,
        KvReply::Value(Some("garbage".into()))
    );
    let logs: String = cluster
        .ids()
        .into_iter()
        .map(|id| std::fs::read_to_string(cluster.log_file(id)).unwrap())
        .collect();
    assert!(
        logs.contains("closed peer connection"),
        "no peer refusal logged"
    );
    assert!(
        logs.contains("closed client connection"),
        "no client refusal logged"
    );
    if !tls {
        assert!(
            logs.contains("not a peer"),
            "the forged message was not refused"
        );
        assert!(logs.contains("exceeds"), "the huge prefix was not refused");
    }
    assert!(cluster.stop_all(Duration::from_secs(10)).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_never_crash_a_node() {
    run(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_never_crash_a_tls_node() {
    run(true).await;
}
