//! FileDisk: the Disk contract on a real directory, agreement with MemDisk, recovery of a
//! Node from files, and a clear error for a corrupt WAL.

use crate::common;

use common::Scratch;
use raft_core::{
    Clock, Config, Disk, DiskError, Error, Event, Instant, MemDisk, Message, Net, Node, NodeId,
    WalError,
};
use rand::{Rng, SeedableRng};
use runtime::FileDisk;
use std::cell::Cell;
use std::rc::Rc;
use workloads::{ClientId, Envelope, KvCommand, KvServerConfig, Seq};

#[test]
fn basic_operations_and_errors() {
    let scratch = Scratch::new("disk-basic");
    let mut disk = FileDisk::open(&scratch.0).unwrap();
    assert_eq!(disk.len("a").unwrap(), 0);
    assert!(matches!(disk.read("a", 0, 1), Err(DiskError::NotFound(_))));
    disk.append("a", b"hello ").unwrap();
    disk.append("a", b"world").unwrap();
    assert_eq!(disk.read("a", 6, 5).unwrap(), b"world");
    assert!(matches!(
        disk.read("a", 8, 5),
        Err(DiskError::OutOfRange {
            offset: 8,
            len: 5,
            file_len: 11,
            ..
        })
    ));
    disk.truncate("a", 5).unwrap();
    assert_eq!(disk.len("a").unwrap(), 5);
    disk.sync("a").unwrap();
    disk.write_atomic("b", b"one").unwrap();
    disk.write_atomic("b", b"two!").unwrap();
    assert_eq!(disk.read("b", 0, 4).unwrap(), b"two!");
    assert_eq!(disk.list().unwrap(), vec!["a".to_string(), "b".to_string()]);
    disk.remove("a").unwrap();
    disk.remove("a").unwrap();
    assert_eq!(disk.list().unwrap(), vec!["b".to_string()]);
    for bad in ["", "../x", "a/b", ".hidden", "x.tmp", "LOCK"] {
        assert!(
            matches!(disk.append(bad, b"x"), Err(DiskError::Io(ref m)) if m.contains("invalid file name")),
            "{bad:?} accepted"
        );
    }
}

#[test]
fn a_directory_has_one_user_and_crash_leftovers_are_removed() {
    let scratch = Scratch::new("disk-lock");
    let disk = FileDisk::open(&scratch.0).unwrap();
    let second = FileDisk::open(&scratch.0).unwrap_err();
    assert!(second.to_string().contains("in use"), "{second}");
    drop(disk);
    std::fs::write(scratch.0.join("snapshot.tmp"), b"half").unwrap();
    let mut disk = FileDisk::open(&scratch.0).unwrap();
    assert!(disk.list().unwrap().is_empty());
    assert!(!scratch.0.join("snapshot.tmp").exists());
}

/// The directory is fsynced when the caller asks (`sync_dir`) and a name changed, never behind
/// its back; reopening fsyncs every file and the directory.
#[test]
fn the_directory_is_synced_by_sync_dir_after_a_name_changes() {
    let scratch = Scratch::new("disk-dirsync");
    let mut disk = FileDisk::open(&scratch.0).unwrap();
    fn count(disk: &FileDisk, before: &mut u64) -> u64 {
        let now = disk.sync_count();
        now - std::mem::replace(before, now)
    }
    let mut before = disk.sync_count();
    disk.append("new", b"x").unwrap();
    disk.sync("new").unwrap();
    assert_eq!(count(&disk, &mut before), 1, "the file only");
    disk.sync_dir().unwrap();
    assert_eq!(
        count(&disk, &mut before),
        1,
        "the directory: a file was created"
    );
    disk.sync_dir().unwrap();
    disk.append("new", b"y").unwrap();
    disk.sync("new").unwrap();
    disk.sync_dir().unwrap();
    assert_eq!(count(&disk, &mut before), 1, "no name changed since");
    disk.write_atomic("snap", b"v1").unwrap();
    assert_eq!(count(&disk, &mut before), 1, "the temporary file");
    disk.sync_dir().unwrap();
    assert_eq!(count(&disk, &mut before), 1, "the rename");
    disk.remove("new").unwrap();
    disk.sync_dir().unwrap();
    assert_eq!(count(&disk, &mut before), 1, "the removal");
    drop(disk);
    let disk = FileDisk::open(&scratch.0).unwrap();
    assert_eq!(disk.sync_count(), 2, "the one file and the directory");
}

/// Random operations on a FileDisk and a MemDisk give the same answers, and a reopened
/// FileDisk holds what the MemDisk holds.
#[test]
fn agrees_with_mem_disk() {
    let scratch = Scratch::new("disk-model");
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    let mut real = FileDisk::open(&scratch.0).unwrap();
    let mut model = MemDisk::new();
    let names = ["wal-1.log", "wal-2.log", "snapshot"];
    for step in 0..2000 {
        let file = names[rng.gen_range(0..names.len())];
        match rng.gen_range(0..7) {
            0 | 1 => {
                let bytes: Vec<u8> = (0..rng.gen_range(0..64)).map(|_| rng.gen()).collect();
                assert_eq!(real.append(file, &bytes), model.append(file, &bytes));
            }
            2 => {
                let len = model.len(file).unwrap();
                if len > 0 {
                    let cut = rng.gen_range(0..=len);
                    assert_eq!(real.truncate(file, cut), model.truncate(file, cut));
                }
            }
            3 => {
                let bytes: Vec<u8> = (0..rng.gen_range(0..64)).map(|_| rng.gen()).collect();
                assert_eq!(
                    real.write_atomic(file, &bytes),
                    model.write_atomic(file, &bytes)
                );
            }
            4 => assert_eq!(real.sync(file).is_ok(), model.sync(file).is_ok()),
            5 if rng.gen_bool(0.5) => {
                assert_eq!(real.sync_dir().is_ok(), model.sync_dir().is_ok())
            }
            5 if rng.gen_bool(0.2) => {
                assert_eq!(real.remove(file), model.remove(file));
            }
            _ => {
                let len = model.len(file).unwrap();
                assert_eq!(real.len(file).unwrap(), len, "step {step}");
                if len > 0 {
                    let offset = rng.gen_range(0..len);
                    let n = rng.gen_range(0..=(len - offset)) as usize;
                    assert_eq!(real.read(file, offset, n), model.read(file, offset, n));
                }
            }
        }
        assert_eq!(real.list().unwrap(), model.list().unwrap(), "step {step}");
    }
    drop(real);
    let mut reopened = FileDisk::open(&scratch.0).unwrap();
    for file in model.list().unwrap() {
        let len = model.len(&file).unwrap();
        assert_eq!(
            reopened.read(&file, 0, len as usize).unwrap(),
            model.read(&file, 0, len as usize).unwrap()
        );
    }
}

struct NoNet;
impl Net for NoNet {
    fn send(&mut self, _msg: Message) {}
}

#[derive(Clone, Default)]
struct ManualClock(Rc<Cell<u64>>);
impl Clock for ManualClock {
    fn now(&self) -> Instant {
        Instant(self.0.get())
    }
}

type TestNode = Node<NoNet, FileDisk, ManualClock, workloads::KvStateMachine>;

fn open(dir: &std::path::Path, clock: &ManualClock) -> Result<TestNode, Error> {
    let kv = KvServerConfig {
        snapshot_threshold_bytes: 1 << 30,
        ..Default::default()
    };
    let config = kv
        .raft_config(Config::new(NodeId(1), vec![NodeId(1)]))
        .unwrap();
    let disk = FileDisk::open(dir).map_err(Error::Disk)?;
    Node::open(config, NoNet, disk, clock.clone(), kv.state_machine(), 1)
}

fn put(node: &mut TestNode, clock: &ManualClock, seq: u64) {
    while node.status().role != raft_core::Role::Leader {
        clock.0.set(node.next_deadline().0);
        node.on_timer().unwrap();
    }
    let envelope = Envelope {
        client: ClientId(9),
        seq: Seq(seq),
        command: KvCommand::Append {
            key: "k".into(),
            value: format!("{seq},"),
        },
    };
    node.propose(envelope.encode().unwrap()).unwrap();
    assert!(node
        .take_events()
        .iter()
        .any(|e| matches!(e, Event::Committed { .. })));
}

#[test]
fn a_node_recovers_its_state_from_files() {
    let scratch = Scratch::new("disk-node");
    let clock = ManualClock::default();
    let mut node = open(&scratch.0, &clock).unwrap();
    for seq in 1..=50 {
        put(&mut node, &clock, seq);
    }
    let expected = node.state_machine().app().get("k").unwrap().to_string();
    drop(node); // no shutdown: as after a crash, only what was synced counts
    let node = open(&scratch.0, &clock).unwrap();
    assert_eq!(node.state_machine().app().get("k"), Some(expected.as_str()));
}

#[test]
fn a_corrupt_wal_is_refused_naming_the_file_and_offset() {
    let scratch = Scratch::new("disk-corrupt");
    let clock = ManualClock::default();
    let mut node = open(&scratch.0, &clock).unwrap();
    for seq in 1..=20 {
        put(&mut node, &clock, seq);
    }
    drop(node);
    let wal = std::fs::read_dir(&scratch.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|name| name.starts_with("wal-"))
        .expect("a WAL segment");
    let path = scratch.0.join(&wal);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    let error = open(&scratch.0, &clock)
        .err()
        .expect("a corrupt WAL is refused");
    match &error {
        Error::Wal(WalError::Corrupt { file, offset, .. }) => {
            assert_eq!(file, &wal);
            assert!(
                *offset <= middle as u64,
                "offset {offset} after the flip at {middle}"
            );
        }
        other => panic!("expected a corruption error, got {other}"),
    }
    let text = error.to_string();
    assert!(text.contains(&wal) && text.contains("offset"), "{text}");
}
