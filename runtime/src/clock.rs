//! [`SystemClock`]: raft-core's [`Clock`] on the operating system's monotonic clock.

use raft_core::{Clock, Instant};

/// Microseconds of `std::time::Instant` (CLOCK_MONOTONIC) since the clock was made. It never
/// goes backwards and does not jump with wall-clock changes, which is what raft-core asks for.
/// Its origin is per process: nothing derived from it is persisted.
#[derive(Clone, Copy, Debug)]
pub struct SystemClock {
    origin: std::time::Instant,
}

impl SystemClock {
    /// A clock starting at zero now.
    pub fn new() -> SystemClock {
        SystemClock {
            origin: std::time::Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        let micros = self.origin.elapsed().as_micros();
        Instant(u64::try_from(micros).expect("a process runs for less than 584,000 years"))
    }
}
