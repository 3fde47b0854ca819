//! The Raft protocol as a pure, sans-IO state machine over abstract Net/Disk/Clock traits.
