//! The raw workload's replicated state machine: a hash chain over every applied command.

use raft_core::LogIndex;

/// The replicated state machine: a hash chain over every applied command.
///
/// Each result is the chain value after the command, so two nodes that applied different
/// histories (or restored a wrong snapshot) return different results for the same entry. It
/// also keeps the log index of the last command it applied (snapshots carry it), so a read
/// can be checked against the state it is actually served from, not only against the index
/// the node reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainStateMachine {
    chain: u64,
    count: u64,
    last_command: LogIndex,
}

/// Bytes of a [`ChainStateMachine`] snapshot: chain, count and last command index.
const CHAIN_SNAPSHOT_BYTES: usize = 24;

impl ChainStateMachine {
    /// Index of the last command applied (0 if none), whether applied here or before the
    /// snapshot this state machine was restored from.
    pub fn last_command(&self) -> LogIndex {
        self.last_command
    }
}

impl raft_core::StateMachine for ChainStateMachine {
    fn apply(&mut self, index: LogIndex, data: &[u8]) -> Vec<u8> {
        assert!(
            index > self.last_command,
            "commands are applied in log order"
        );
        let mut bytes = self.chain.to_le_bytes().to_vec();
        bytes.extend_from_slice(data);
        self.chain = crate::checkers::fingerprint(&bytes);
        self.count += 1;
        self.last_command = index;
        self.snapshot()
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut bytes = self.chain.to_le_bytes().to_vec();
        bytes.extend_from_slice(&self.count.to_le_bytes());
        bytes.extend_from_slice(&self.last_command.0.to_le_bytes());
        bytes
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        if data.len() != CHAIN_SNAPSHOT_BYTES {
            let expected = CHAIN_SNAPSHOT_BYTES;
            return Err(format!(
                "snapshot is {} bytes, expected {expected}",
                data.len()
            ));
        }
        let word = |at: usize| u64::from_le_bytes(data[at..at + 8].try_into().expect("8 bytes"));
        self.chain = word(0);
        self.count = word(8);
        self.last_command = LogIndex(word(16));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_core::StateMachine;

    #[test]
    fn state_machine_snapshot_round_trips() {
        let mut a = ChainStateMachine::default();
        a.apply(LogIndex(1), b"x");
        let mut b = ChainStateMachine::default();
        b.restore(&a.snapshot()).unwrap();
        assert_eq!(b.last_command(), LogIndex(1));
        assert_eq!(a.apply(LogIndex(2), b"y"), b.apply(LogIndex(2), b"y"));
        assert_eq!(b.last_command(), LogIndex(2));
        assert!(b.restore(b"short").is_err());
    }
}
