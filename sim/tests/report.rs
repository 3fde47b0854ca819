//! The failure report opens on what failed: the failing key with its conflicting set and, per
//! operation, the server that answered it and the faults active meanwhile; for a Raft checker,
//! the checker's message and a cluster timeline around the failing moment.

use sim::workload::Workload;
use sim::{run_seed_isolated, RunOptions};

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sim-report-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn report_page(opts: &RunOptions, name: &str) -> String {
    let report = run_seed_isolated(opts);
    assert!(!report.passed(), "the seed no longer fails");
    let written = sim::report::write(&scratch(name), opts, &report).expect("writing the report");
    let (_, html) = written
        .iter()
        .find(|(what, _)| *what == "report")
        .expect("a report page");
    std::fs::read_to_string(html).expect("reading the page")
}

#[test]
fn a_raft_checker_failure_shows_its_message_and_the_cluster_timeline() {
    let (bugs, service_bugs) = sim::bugs::plant(Some("figure8_commit"));
    let opts = RunOptions {
        bugs,
        service_bugs,
        workload: Workload::Raft,
        ..RunOptions::new(5)
    };
    let page = report_page(&opts, "raft");
    assert!(page.contains("FAILED a safety check"));
    assert!(page.contains("leader commits only entries of its term violated"));
    assert!(page.contains("--seed 5 --workload raft --bug figure8_commit"));
    assert!(page.contains("its event hash matches the failing run"));
    assert!(page.contains("Cluster timeline"));
    // The leader that broke the rule (the checker names it: "nX, leader of term T,") is on the
    // timeline, and so is the failing moment.
    let named = page
        .split(", leader of term ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .expect("the checker names the leader's term");
    let before = page.split(", leader of term ").next().unwrap();
    let node = &before[before.rfind(": n").expect("the leader's name") + 2..];
    assert!(
        page.contains(&format!("<title>{node} leader term {named} from")),
        "no leader segment"
    );
    assert!(
        page.contains("<title>the failure, at "),
        "no failure marker"
    );
    assert!(page.contains("crashed"));
}

#[test]
fn a_linearizability_failure_opens_on_the_failing_key_with_its_conflicting_set() {
    let (bugs, service_bugs) = sim::bugs::plant(Some("local_reads"));
    let opts = RunOptions {
        bugs,
        service_bugs,
        ..RunOptions::kv(4)
    };
    let page = report_page(&opts, "kv");
    let first = page.find("<details").expect("a partition");
    let first_tag = &page[first..first + 200];
    assert!(first_tag.contains(" open"), "{first_tag}");
    assert!(first_tag.contains("NOT linearizable"), "{first_tag}");
    let first_key = &page[first..];
    let conflicts = first_key
        .find("conflicting operations")
        .expect("the conflicting set");
    assert!(conflicts < first_key.find("<svg").expect("a timeline"));
    assert!(page.contains("answered by n"), "no server per operation");
    assert!(
        page.contains("meanwhile: partition"),
        "no faults per operation"
    );
    assert!(page.contains("Cluster timeline"));
}
