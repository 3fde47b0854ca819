//! The runtime crate's integration tests, in one binary so they compile and link once.

mod chaos;
mod common;
mod corrupt_wal;
mod file_disk;
mod garbage;
mod sigkill;
mod tls;
