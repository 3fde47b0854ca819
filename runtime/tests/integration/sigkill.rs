//! A node killed with SIGKILL during writes recovers every acknowledged write: all three
//! processes are killed at once while clients write, so no replica keeps anything in memory,
//! and after the restart every write that was acknowledged must be readable.

use crate::common;

use common::Scratch;
use runtime::{CallError, KvClient};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use workloads::{ClientId, KvCommand, KvReply};

/// Writes unique keys until `stop`; returns the keys whose put was acknowledged.
async fn writer(
    client: u64,
    servers: std::collections::BTreeMap<raft_core::NodeId, std::net::SocketAddr>,
    security: runtime::ClientSecurity,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<(String, String)>>>,
) {
    let mut kv = KvClient::new(
        ClientId(client),
        servers,
        security,
        Duration::from_millis(300),
    )
    .unwrap();
    // Bounded by `stop` and by a count.
    for n in 0..100_000u64 {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let (key, value) = (format!("c{client}-{n}"), format!("v{n}"));
        let put = KvCommand::Put {
            key: key.clone(),
            value: value.clone(),
        };
        match kv.call(put, Duration::from_secs(2)).await {
            Ok(KvReply::Done) => acked.lock().unwrap().push((key, value)),
            Ok(other) => panic!("put answered {other:?}"),
            Err(CallError::GaveUp(_)) | Err(CallError::Failed(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_writes_loses_no_acknowledged_write() {
    let _turn = common::processes_turn().await;
    let scratch = Scratch::new("sigkill");
    let mut cluster = common::cluster(&scratch, 3, true).await;
    let acked = Arc::new(Mutex::new(Vec::new()));
    for round in 0..3u64 {
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|i| {
                tokio::spawn(writer(
                    100 + round * 10 + i,
                    cluster.client_addrs(),
                    cluster.client_security(),
                    stop.clone(),
                    acked.clone(),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // Every process dies at once, with writes in flight.
        for id in cluster.ids() {
            cluster.kill(id);
        }
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            writer.await.unwrap();
        }
        cluster.start_all().unwrap();
        common::wait_for_leader(&cluster).await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 50,
        "only {} writes were acknowledged",
        acked.len()
    );
    let mut kv = KvClient::new(
        ClientId(9),
        cluster.client_addrs(),
        cluster.client_security(),
        Duration::from_millis(500),
    )
    .unwrap();
    for (key, value) in &acked {
        let get = KvCommand::Get { key: key.clone() };
        let reply = kv.call(get, Duration::from_secs(10)).await;
        assert_eq!(
            reply,
            Ok(KvReply::Value(Some(value.clone()))),
            "acknowledged write {key}={value} lost; logs:\n{}",
            common::logs(&cluster)
        );
    }
    println!(
        "{} acknowledged writes survived 3 rounds of SIGKILL of every node",
        acked.len()
    );
    assert!(cluster.stop_all(Duration::from_secs(10)).is_empty());
}
