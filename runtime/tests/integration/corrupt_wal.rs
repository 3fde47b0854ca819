//! A kvnode whose WAL is damaged refuses to start, and says which file and offset.

use crate::common;

use common::Scratch;
use raft_core::NodeId;
use std::time::{Duration, Instant};
use workloads::{KvCommand, KvReply};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_wal_stops_the_node_with_the_file_and_offset() {
    let _turn = common::processes_turn().await;
    let scratch = Scratch::new("corrupt-wal");
    let mut cluster = common::cluster(&scratch, 1, false).await;
    for n in 0..20 {
        let put = KvCommand::Put {
            key: format!("k{n}"),
            value: "v".repeat(100),
        };
        assert_eq!(common::call(&cluster, 1, put).await, KvReply::Done);
    }
    assert!(cluster.stop_all(Duration::from_secs(10)).is_empty());
    let dir = cluster.data_dir(NodeId(1));
    let wal = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|name| name.starts_with("wal-"))
        .expect("a WAL segment");
    let path = dir.join(&wal);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();

    cluster.start(NodeId(1)).unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = cluster.exited(NodeId(1)) {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the node did not stop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        !status.success(),
        "a node with a corrupt WAL exited with {status}"
    );
    let log = std::fs::read_to_string(cluster.log_file(NodeId(1))).unwrap();
    let line = log
        .lines()
        .find(|line| line.contains("cannot recover"))
        .unwrap_or_else(|| panic!("no recovery error in the log:\n{log}"));
    println!("{line}");
    assert!(line.contains(&wal) && line.contains("offset"), "{line}");
}
