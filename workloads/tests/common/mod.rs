//! The loop shared by the data-driven tables in `testdata/`.
//!
//! A table is a text file of cases: a `> REQUEST` line followed by the line the request must
//! produce. Blank lines and `#` comments are skipped. Keeping one loop means every table reports
//! mismatches, stray lines and unreadable requests the same way, with their line numbers.

/// Runs every request in `text` through `step` and returns the mismatches, one message each,
/// naming the 1-based line of the request.
///
/// `step` answers a request with:
/// - `Ok(Some(result))`: the result, compared with the next non-blank line;
/// - `Ok(None)`: the request has no result line (e.g. a restart), so no line is read;
/// - `Err(message)`: the request could not be run; it is reported at once and, as it produced
///   nothing, no result line is read.
pub fn run_table(
    text: &str,
    mut step: impl FnMut(&str) -> Result<Option<String>, String>,
) -> Vec<String> {
    let mut failures = Vec::new();
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    while let Some((number, line)) = lines.next() {
        let Some(request) = line.strip_prefix("> ") else {
            if !line.starts_with('#') {
                failures.push(format!(
                    "line {}: expected '> ...', found {line:?}",
                    number + 1
                ));
            }
            continue;
        };
        let got = match step(request) {
            Ok(Some(got)) => got,
            Ok(None) => continue,
            Err(error) => {
                failures.push(format!("line {}: {error}", number + 1));
                continue;
            }
        };
        let expected = lines.next().map_or("<end of file>", |(_, l)| l.trim());
        if got != expected {
            failures.push(format!(
                "line {}: {request}: want {expected:?}, got {got:?}",
                number + 1
            ));
        }
    }
    failures
}

/// Asserts that a whole table passed: no mismatches, and more than `more_than` requests, so a
/// table that lost its cases (a bad merge, a truncated file) cannot pass by checking nothing.
#[track_caller]
pub fn assert_table_passes(text: &str, failures: &[String], more_than: usize) {
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        text.matches("\n> ").count() > more_than,
        "the table lost its cases"
    );
}
