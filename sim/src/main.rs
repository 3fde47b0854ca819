//! `sim` command-line entry point: run seeds, replay corpus files, canaries and the benchmark
//! (the command line itself is [`sim::cli`]).

fn main() -> std::process::ExitCode {
    sim::cli::main_with(None)
}
