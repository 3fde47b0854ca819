//! WAL recovery: torn tails are cut, corruption in the middle of the log is refused, and
//! malformed input gives errors rather than panics.

mod common;

use common::sm::TestSm;
use common::{Cluster, Outbox, TestClock};
use raft_core::wal::Wal;
use raft_core::{Bugs, Config, CrashMode, Disk, Error, MemDisk, Node, NodeId, WalError};

fn single_node_disk(commands: u32) -> MemDisk {
    let mut c = Cluster::new(1, 1);
    let id = NodeId(1);
    c.elect();
    for i in 0..commands {
        c.propose(&i.to_le_bytes()).unwrap();
    }
    c.crash(id, CrashMode::KeepUnsynced);
    c.down.remove(&id).unwrap()
}

fn segment(disk: &mut MemDisk) -> String {
    disk.list()
        .unwrap()
        .into_iter()
        .find(|f| f.starts_with("wal-"))
        .unwrap()
}

fn open(disk: MemDisk, bugs: Bugs) -> Result<Node<Outbox, MemDisk, TestClock, TestSm>, Error> {
    let mut config = Config::new(NodeId(1), vec![NodeId(1)]);
    config.bugs = bugs;
    Node::open(
        config,
        Outbox::default(),
        disk,
        TestClock::default(),
        TestSm::default(),
        1,
    )
}

/// Goal: a record cut short by a crash during an unsynced append is dropped on recovery and
/// the node starts with every complete record.
#[test]
fn torn_tail_is_truncated() {
    let mut disk = single_node_disk(10);
    let name = segment(&mut disk);
    let full = disk.len(&name).unwrap();
    for cut in [1u64, 5, 13, 20] {
        let mut torn = disk.clone();
        torn.truncate(&name, full - cut).unwrap();
        let node = open(torn, Bugs::default()).expect("torn tail is recoverable");
        // The last records hold the final entry and then the commit-only hard state; cutting
        // into them loses at most that entry and that commit.
        let commands = node.state_machine().commands.len();
        assert!(
            (9..=10).contains(&commands),
            "cut {cut}: {commands} commands"
        );
        let last = node.status().last_index.0;
        assert!((10..=11).contains(&last), "cut {cut}: last index {last}");
        let (_, mut disk_after, _, _) = node.shutdown();
        assert!(
            disk_after.len(&name).unwrap() < full,
            "tail was cut off on disk"
        );
    }
}

/// Goal: a checksum failure in a record followed by valid records is refused, with an error
/// naming the file and the record's offset.
#[test]
fn mid_log_corruption_is_refused_with_file_and_offset() {
    let mut disk = single_node_disk(10);
    let name = segment(&mut disk);
    let len = disk.len(&name).unwrap();
    let offset = len / 2;
    let byte = disk.read(&name, offset, 1).unwrap()[0];
    disk.corrupt(&name, offset, &[byte ^ 0xff]).unwrap();
    let err = open(disk, Bugs::default())
        .err()
        .expect("corruption must be refused");
    match err {
        Error::Wal(WalError::Corrupt {
            file, offset: at, ..
        }) => {
            assert_eq!(file, name);
            assert!(
                at <= offset,
                "offset {at} is the start of the damaged record"
            );
            assert!(err_text_mentions(&file, at));
        }
        other => panic!("unexpected error {other}"),
    }
}

fn err_text_mentions(file: &str, offset: u64) -> bool {
    let text = Error::Wal(WalError::Corrupt {
        file: file.into(),
        offset,
        reason: "x".into(),
    })
    .to_string();
    text.contains(file) && text.contains(&offset.to_string())
}

/// The planted `mid_log_corruption_as_torn_tail` bug silently truncates instead, losing the
/// records after the damage: the previous test would catch it.
#[test]
fn planted_bug_truncates_mid_log_corruption() {
    let mut disk = single_node_disk(10);
    let name = segment(&mut disk);
    let offset = disk.len(&name).unwrap() / 2;
    let byte = disk.read(&name, offset, 1).unwrap()[0];
    disk.corrupt(&name, offset, &[byte ^ 0xff]).unwrap();
    let bugs = Bugs::from_name("mid_log_corruption_as_torn_tail").unwrap();
    let node = open(disk, bugs).expect("the bug accepts the damage");
    assert!(
        node.state_machine().commands.len() < 10,
        "committed commands were lost"
    );
}

/// Goal: a damaged snapshot file is refused too (it is written atomically, so damage is never
/// a torn write).
#[test]
fn corrupt_snapshot_file_is_refused() {
    let mut c = Cluster::with_config(1, 2, |config| config.snapshot_threshold_bytes = 2048);
    c.elect();
    for i in 0..200u32 {
        c.propose(&i.to_le_bytes()).unwrap();
    }
    c.crash(NodeId(1), CrashMode::KeepUnsynced);
    let mut disk = c.down.remove(&NodeId(1)).unwrap();
    assert!(disk.list().unwrap().contains(&"snapshot".to_string()));
    let good = open(disk.clone(), Bugs::default()).expect("intact disk opens");
    assert_eq!(good.state_machine().commands.len(), 200);
    disk.corrupt("snapshot", 40, &[0xAA]).unwrap();
    let err = open(disk, Bugs::default()).err().expect("refused");
    assert!(err.to_string().contains("snapshot"), "{err}");
}

/// Goal: garbage in a WAL segment is an error, never a panic or a huge allocation.
#[test]
fn garbage_segments_give_errors_not_panics() {
    let mut seed = 0x9e3779b97f4a7c15u64;
    for len in [1usize, 11, 12, 13, 64, 1000] {
        for _ in 0..50 {
            let mut disk = MemDisk::new();
            let mut bytes = Vec::with_capacity(len);
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                bytes.push(seed as u8);
            }
            // A valid segment first, so the garbage is not at the tail of the only file.
            disk.append("wal-00000000000000000002.log", &bytes).unwrap();
            disk.sync("wal-00000000000000000002.log").unwrap();
            let _ = Wal::open(disk.clone(), 4096, Bugs::default());
            disk.append("wal-00000000000000000003.log", b"").unwrap();
            let result = Wal::open(disk, 4096, Bugs::default());
            if let Err(err) = result {
                assert!(matches!(err, Error::Wal(WalError::Corrupt { .. })), "{err}");
            }
        }
    }
}

/// Goal: an incomplete record in a segment that is not the last one is corruption (segments
/// are synced before the next one starts), not a torn tail.
#[test]
fn incomplete_record_in_an_earlier_segment_is_refused() {
    let mut disk = single_node_disk(3);
    let name = segment(&mut disk);
    let len = disk.len(&name).unwrap();
    disk.truncate(&name, len - 3).unwrap();
    disk.append("wal-00000000000000000099.log", b"").unwrap();
    let err = open(disk, Bugs::default()).err().expect("refused");
    assert!(matches!(err, Error::Wal(WalError::Corrupt { .. })), "{err}");
}

/// Regression: commit-only hard state records are written without a sync, so a segment must
/// be synced when it is sealed; otherwise a crash tears a record in a sealed segment and the
/// replica can never restart.
#[test]
fn sealed_segments_survive_a_torn_crash() {
    use raft_core::{Entry, EntryKind, HardState, LogIndex, Ready, ReadyNumber, Term};
    let hard_state = |commit| HardState {
        term: Term(1),
        vote: None,
        commit: LogIndex(commit),
    };
    for seed in 0..30 {
        let (mut wal, _) = Wal::open(MemDisk::new(), 4096, Bugs::default()).unwrap();
        let entries = (1..=20)
            .map(|i| Entry {
                term: Term(1),
                index: LogIndex(i),
                kind: EntryKind::Normal(vec![7; 50].into()),
            })
            .collect();
        let rd = Ready::to_persist(ReadyNumber(1), Some(hard_state(0)), entries, None, true);
        wal.persist(&rd).unwrap();
        // Unsynced commit-only records until the segment fills up and a new one starts.
        let mut commit = 0;
        while wal.disk().clone().list().unwrap().len() < 2 {
            commit = (commit % 20) + 1;
            let commit_only = Ready::to_persist(
                ReadyNumber(2),
                Some(hard_state(commit)),
                vec![],
                None,
                false,
            );
            wal.persist(&commit_only).unwrap();
        }
        let mut disk = wal.into_disk();
        disk.crash(CrashMode::TornPrefix { seed });
        let (_, recovered) =
            Wal::open(disk, 4096, Bugs::default()).expect("recovers after a torn crash");
        assert_eq!(recovered.entries.len(), 20, "synced entries survive");
    }
}

/// Regression: a follower that took a local snapshot while its log ran past it, then installed
/// a newer snapshot from the leader, could not reopen its disk after a crash. The log reset
/// was appended to the segment the local snapshot had started, after a record holding an entry
/// of the old log; deleting the older segments then left that record behind with nothing
/// before it, and replay against the installed snapshot found a gap in the entry indexes.
/// Every intermediate disk state, under every crash mode, must reopen with a contiguous log.
#[test]
fn log_reset_after_a_local_snapshot_survives_a_crash() {
    use raft_core::{
        Entry, EntryKind, HardState, LogIndex, Membership, Ready, ReadyNumber, Snapshot,
        SnapshotMeta, Term,
    };
    use std::sync::Arc;
    let entries = |term, range: std::ops::RangeInclusive<u64>| -> Vec<Entry> {
        range
            .map(|i| Entry {
                term: Term(term),
                index: LogIndex(i),
                kind: EntryKind::Normal(vec![3; 30].into()),
            })
            .collect()
    };
    let snapshot = |index, term| Snapshot {
        meta: SnapshotMeta {
            index: LogIndex(index),
            term: Term(term),
        },
        data: Arc::new(vec![1, 2, 3]),
        membership: Membership::new(vec![NodeId(1), NodeId(2), NodeId(3)]),
    };
    let append = |term, range| {
        let hard_state = HardState {
            term: Term(term),
            vote: None,
            commit: LogIndex(0),
        };
        Ready::to_persist(
            ReadyNumber(1),
            Some(hard_state),
            entries(term, range),
            None,
            true,
        )
    };
    let check = |disk: &MemDisk, step: &str| {
        for (name, mode) in [
            ("drop", CrashMode::DropUnsynced),
            ("keep", CrashMode::KeepUnsynced),
            ("torn", CrashMode::TornPrefix { seed: 7 }),
        ] {
            let mut crashed = disk.clone();
            crashed.crash(mode);
            let (_, recovered) = Wal::open(crashed, 4096, Bugs::default())
                .unwrap_or_else(|e| panic!("{step}, crash {name}: {e}"));
            let base = recovered.snapshot.as_ref().map_or(0, |s| s.meta.index.0);
            for (offset, entry) in recovered.entries.iter().enumerate() {
                assert_eq!(
                    entry.index.0,
                    base + 1 + offset as u64,
                    "{step}, crash {name}"
                );
            }
        }
    };
    let (mut wal, _) = Wal::open(MemDisk::new(), 4096, Bugs::default()).unwrap();
    wal.persist(&append(8, 1..=98)).unwrap();
    check(wal.disk(), "old log written");
    // The local snapshot starts a new segment but keeps the old one, which reaches index 98.
    wal.save_snapshot(&snapshot(96, 8)).unwrap();
    check(wal.disk(), "local snapshot");
    wal.persist(&append(8, 99..=99)).unwrap();
    check(wal.disk(), "entry after the local snapshot");
    // The leader's snapshot conflicts at index 97 and replaces the whole log.
    let install = Ready::to_persist(ReadyNumber(1), None, vec![], Some(snapshot(97, 9)), false);
    wal.persist(&install).unwrap();
    check(wal.disk(), "snapshot installed");
    wal.persist(&append(9, 98..=100)).unwrap();
    check(wal.disk(), "new log written");
    let mut disk = wal.into_disk();
    disk.crash(CrashMode::DropUnsynced);
    let (_, recovered) = Wal::open(disk, 4096, Bugs::default()).expect("reopens");
    assert_eq!(recovered.snapshot.unwrap().meta.index, LogIndex(97));
    let log: Vec<(u64, u64)> = recovered
        .entries
        .iter()
        .map(|e| (e.index.0, e.term.0))
        .collect();
    assert_eq!(log, vec![(98, 9), (99, 9), (100, 9)]);
}

/// Goal: a segment's name is durable before any record in it is acknowledged. The disk may
/// forget a file created since the last directory sync even if its content was synced, so
/// without the directory sync (the planted `new_segment_without_dir_sync`) a crash loses
/// synced, acknowledged entries together with the segment.
#[test]
fn a_new_segment_survives_a_crash_only_with_a_directory_sync() {
    use raft_core::{Entry, EntryKind, HardState, LogIndex, Ready, ReadyNumber, Term};
    let recovered_after_crash = |bugs: Bugs| {
        let (mut wal, _) = Wal::open(MemDisk::new(), 4096, bugs).unwrap();
        let entries = (1..=5)
            .map(|i| Entry {
                term: Term(1),
                index: LogIndex(i),
                kind: EntryKind::Normal(vec![1; 10].into()),
            })
            .collect();
        let hard_state = HardState {
            term: Term(1),
            vote: Some(NodeId(1)),
            commit: LogIndex(0),
        };
        let rd = Ready::to_persist(ReadyNumber(1), Some(hard_state), entries, None, true);
        wal.persist(&rd).unwrap();
        let mut disk = wal.into_disk();
        disk.crash(CrashMode::DropUnsynced);
        let (_, recovered) = Wal::open(disk, 4096, Bugs::default()).unwrap();
        (recovered.entries.len(), recovered.hard_state.vote)
    };
    assert_eq!(recovered_after_crash(Bugs::default()), (5, Some(NodeId(1))));
    let bug = Bugs::from_name("new_segment_without_dir_sync").unwrap();
    assert_eq!(
        recovered_after_crash(bug),
        (0, None),
        "the planted bug loses the segment"
    );
}

/// Regression (kv seed 42678 with `--fault-phase-ms 2000`): a deposed leader's suffix,
/// replaced on its disk by the new leader's entries, kept the old segment's "highest index
/// written" at the dead suffix's end, so no snapshot short of that index covered the segment
/// and a quiet follower kept the dead bytes for good (the log bound caught 35 KB against a
/// 4 KiB threshold). The replaced entries no longer count, both as written and as recovered,
/// and every intermediate disk state still reopens with a contiguous log.
#[test]
fn segments_holding_only_replaced_entries_are_compacted() {
    use raft_core::{
        Entry, EntryKind, HardState, LogIndex, Membership, Ready, ReadyNumber, Snapshot,
        SnapshotMeta, Term,
    };
    use std::sync::Arc;
    let append = |term, range: std::ops::RangeInclusive<u64>| {
        let entries = range
            .map(|i| Entry {
                term: Term(term),
                index: LogIndex(i),
                kind: EntryKind::Normal(vec![5; 40].into()),
            })
            .collect();
        let hard_state = HardState {
            term: Term(term),
            vote: None,
            commit: LogIndex(0),
        };
        Ready::to_persist(ReadyNumber(1), Some(hard_state), entries, None, true)
    };
    let snapshot = |index, term| Snapshot {
        meta: SnapshotMeta {
            index: LogIndex(index),
            term: Term(term),
        },
        data: Arc::new(vec![9]),
        membership: Membership::new(vec![NodeId(1), NodeId(2), NodeId(3)]),
    };
    let segments = |disk: &MemDisk| {
        let mut disk = disk.clone();
        let names = disk.list().unwrap();
        names.into_iter().filter(|f| f.starts_with("wal-")).count()
    };
    let reopens = |disk: &MemDisk, step: &str| {
        let mut crashed = disk.clone();
        crashed.crash(CrashMode::DropUnsynced);
        let (_, recovered) =
            Wal::open(crashed, 4096, Bugs::default()).unwrap_or_else(|e| panic!("{step}: {e}"));
        let base = recovered.snapshot.as_ref().map_or(0, |s| s.meta.index.0);
        for (offset, entry) in recovered.entries.iter().enumerate() {
            assert_eq!(entry.index.0, base + 1 + offset as u64, "{step}");
        }
        recovered
    };
    for reopen_before_compaction in [false, true] {
        let (mut wal, _) = Wal::open(MemDisk::new(), 4096, Bugs::default()).unwrap();
        // Term 1: entries 1..=20, of which only 1..=10 will survive.
        wal.persist(&append(1, 1..=20)).unwrap();
        wal.save_snapshot(&snapshot(5, 1)).unwrap();
        assert_eq!(
            segments(wal.disk()),
            2,
            "the snapshot at 5 covers nothing whole"
        );
        // The new leader replaces everything from 11 on.
        wal.persist(&append(2, 11..=12)).unwrap();
        reopens(wal.disk(), "replaced");
        if reopen_before_compaction {
            // Recovery must count the replacement as writing did.
            let disk = wal.into_disk();
            wal = Wal::open(disk, 4096, Bugs::default()).unwrap().0;
        }
        wal.save_snapshot(&snapshot(12, 2)).unwrap();
        assert_eq!(
            segments(wal.disk()),
            1,
            "a snapshot at 12 covers every live entry before its segment \
             (reopened first: {reopen_before_compaction})"
        );
        let recovered = reopens(wal.disk(), "compacted");
        assert_eq!(recovered.snapshot.unwrap().meta.index, LogIndex(12));
        assert!(recovered.entries.is_empty());
    }
    // The replaced entries span two segments, the second one holding only dead entries (kv
    // seeds 78 and 1743): were the replacing record appended after them in that segment,
    // compacting the first would leave a segment that begins past the snapshot, a gap on
    // recovery; so it opens a segment of its own. And a crash between two deletions may
    // leave the second first, so neither goes until a snapshot reaches its dead entries.
    let (mut wal, _) = Wal::open(MemDisk::new(), 4096, Bugs::default()).unwrap();
    wal.persist(&append(1, 1..=10)).unwrap();
    wal.save_snapshot(&snapshot(3, 1)).unwrap();
    wal.persist(&append(1, 11..=20)).unwrap();
    assert_eq!(segments(wal.disk()), 2);
    wal.persist(&append(2, 5..=6)).unwrap();
    assert_eq!(
        segments(wal.disk()),
        3,
        "the replacing record opens a segment"
    );
    reopens(wal.disk(), "replaced across segments");
    wal.save_snapshot(&snapshot(4, 1)).unwrap();
    assert_eq!(
        segments(wal.disk()),
        4,
        "the dead entries past 5 keep both segments"
    );
    let recovered = reopens(wal.disk(), "snapshot at 4");
    let log: Vec<(u64, u64)> = recovered
        .entries
        .iter()
        .map(|e| (e.index.0, e.term.0))
        .collect();
    assert_eq!(log, vec![(5, 2), (6, 2)]);
    wal.persist(&append(2, 7..=12)).unwrap();
    wal.save_snapshot(&snapshot(12, 2)).unwrap();
    assert_eq!(segments(wal.disk()), 1, "a snapshot at 12 covers them all");
    let recovered = reopens(wal.disk(), "compacted to 12");
    assert!(recovered.entries.is_empty());
}
