//! Replays every regression seed in `seeds/` and demands its recorded outcome and its recorded
//! configuration fingerprint (a file without one fails too), through the same
//! [`SeedEntry::replay`](sim::corpus::SeedEntry::replay) that `sim replay FILE` uses.

use sim::corpus::replay_dir;
use std::path::Path;

#[test]
fn every_corpus_seed_replays_to_its_expected_outcome() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../seeds");
    let wrong = replay_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
