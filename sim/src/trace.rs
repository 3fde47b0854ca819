//! `--trace`: a tracing subscriber whose timestamps are simulated time.

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// Prints madsim's elapsed simulated time (outside a simulation: `-`).
#[derive(Clone, Copy, Debug, Default)]
pub struct SimTime;

impl FormatTime for SimTime {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        match madsim::time::TimeHandle::try_current() {
            Some(handle) => {
                let t = handle.elapsed();
                write!(w, "{:>5}.{:06}s", t.as_secs(), t.subsec_micros())
            }
            None => write!(w, "{:>13}", "-"),
        }
    }
}

/// Installs the trace subscriber: every span (one per node) and event, with simulated
/// timestamps, to stderr. `RUST_LOG` overrides the default filter (`debug,madsim=warn`).
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("debug,madsim=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_timer(SimTime)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .init();
}
