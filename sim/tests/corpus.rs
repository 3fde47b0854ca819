//! Replays every regression seed in `seeds/` and demands its recorded outcome.

use sim::corpus::{load_dir, Expect};
use sim::run_seed_isolated;
use sim::sweep::describe;
use std::path::Path;

#[test]
fn every_corpus_seed_replays_to_its_expected_outcome() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../seeds");
    let entries = load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert!(!entries.is_empty(), "no seed files in {}", dir.display());
    let mut wrong = Vec::new();
    for (path, entry) in &entries {
        let report = run_seed_isolated(&entry.run_options());
        let expected = entry.expect == Expect::Pass;
        if report.passed() != expected {
            wrong.push(format!(
                "{}: expected {:?}, got: {} (found once: {})",
                path.display(),
                entry.expect,
                describe(&report.outcome),
                entry.found
            ));
        }
        // A seed credited to a planted bug must pass without it, or it proves nothing.
        if entry.bug.is_some() && entry.expect == Expect::Fail {
            let mut plain = entry.run_options();
            plain.bugs = Default::default();
            plain.kv_bugs = Default::default();
            let clean = run_seed_isolated(&plain);
            if !clean.passed() {
                wrong.push(format!(
                    "{}: fails without its bug too: {}",
                    path.display(),
                    describe(&clean.outcome)
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
