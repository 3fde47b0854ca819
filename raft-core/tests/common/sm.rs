//! A small state machine for tests: the list of applied commands.

use raft_core::{LogIndex, StateMachine};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TestSm {
    pub commands: Vec<Vec<u8>>,
    pub last_applied: LogIndex,
}

impl TestSm {
    pub fn contains(&self, data: &[u8]) -> bool {
        self.commands.iter().any(|c| c == data)
    }
}

impl StateMachine for TestSm {
    fn apply(&mut self, index: LogIndex, data: &[u8]) -> Vec<u8> {
        assert!(index > self.last_applied, "applied out of order");
        self.last_applied = index;
        self.commands.push(data.to_vec());
        (self.commands.len() as u64).to_le_bytes().to_vec()
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut out = self.last_applied.0.to_le_bytes().to_vec();
        for command in &self.commands {
            out.extend_from_slice(&(command.len() as u32).to_le_bytes());
            out.extend_from_slice(command);
        }
        out
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        let take = |data: &[u8], at: usize, n: usize| -> Result<Vec<u8>, String> {
            data.get(at..at + n)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| "truncated snapshot".to_string())
        };
        let last = u64::from_le_bytes(take(data, 0, 8)?.try_into().expect("8 bytes"));
        let mut commands = Vec::new();
        let mut at = 8;
        while at < data.len() {
            let len = u32::from_le_bytes(take(data, at, 4)?.try_into().expect("4 bytes")) as usize;
            commands.push(take(data, at + 4, len)?);
            at += 4 + len;
        }
        *self = TestSm {
            commands,
            last_applied: LogIndex(last),
        };
        Ok(())
    }
}
