//! Replays every regression seed in `seeds/` and demands its recorded outcome and its recorded
//! configuration fingerprint (a file without one fails too), through the same
//! [`SeedEntry::replay`](sim::corpus::SeedEntry::replay) that `sim replay FILE` uses.

use sim::corpus::load_dir;
use std::path::Path;

#[test]
fn every_corpus_seed_replays_to_its_expected_outcome() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../seeds");
    let entries = load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(!entries.is_empty(), "no seed files in {}", dir.display());
    let mut wrong = Vec::new();
    for (path, entry) in &entries {
        // Named as from the repository root, where the refresh command it prints runs.
        let name = Path::new("seeds").join(path.file_name().expect("a seed file has a name"));
        let replay = entry.replay(&name);
        // The drift message names the file itself.
        wrong.extend(replay.drift);
        for problem in replay.problems {
            wrong.push(format!("{}: {problem}", name.display()));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
