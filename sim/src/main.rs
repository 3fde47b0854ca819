//! `sim` command-line entry point.
fn main() {}
