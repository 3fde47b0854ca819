//! Per-node clocks with skew, drift and forward jumps, layered over madsim's single clock.
//!
//! madsim has one global virtual clock. Real machines disagree about time, so each node sees
//!
//! ```text
//! local(t) = skew + t * (1 + drift_ppm / 1e6) + sum of jumps whose sim time is <= t
//! ```
//!
//! where `t` is madsim's elapsed simulated time. The mapping is a pure function of simulated time
//! and the seed, so it survives crashes (the clock belongs to the machine, not the process) and
//! is strictly increasing in `t` (drift is bounded well above -100%, jumps only go forward), so
//! each node's clock is monotonic as the `raft_core::Clock` contract requires.

use rand::rngs::SmallRng;
use rand::Rng;
use std::fmt;
use std::time::Duration;

/// One forward clock jump: at simulated time `at`, the node's clock leaps by `by`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockJump {
    /// Simulated time of the jump.
    pub at: Duration,
    /// How far the local clock leaps forward.
    pub by: Duration,
}

/// The parameters of one node's clock.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ClockParams {
    /// Constant offset of the node's clock from the simulated clock, in microseconds.
    pub skew_micros: u64,
    /// Rate error, in parts per million; negative runs slow. Bounded to +-5%.
    pub drift_ppm: i64,
    /// Forward jumps, sorted by time.
    pub jumps: Vec<ClockJump>,
}

/// The largest drift a seed may draw: 5%, far beyond real quartz (about 100 ppm), so that
/// timeout code is exercised well past its comfort zone without making time run backwards.
pub const DRIFT_PPM_MAX: i64 = 50_000;

impl ClockParams {
    /// Draws clock parameters; with `enabled == false` the clock is perfect.
    pub fn draw(rng: &mut SmallRng, enabled: bool, span: Duration) -> ClockParams {
        if !enabled {
            return ClockParams::default();
        }
        let jump_count = rng.gen_range(0..3);
        let mut jumps: Vec<ClockJump> = (0..jump_count)
            .map(|_| ClockJump {
                at: Duration::from_micros(rng.gen_range(0..span.as_micros() as u64)),
                by: Duration::from_millis(rng.gen_range(10..2_000)),
            })
            .collect();
        jumps.sort_by_key(|jump| jump.at);
        ClockParams {
            skew_micros: rng.gen_range(0..5_000_000),
            drift_ppm: rng.gen_range(-DRIFT_PPM_MAX..=DRIFT_PPM_MAX),
            jumps,
        }
    }

    /// The node's local time, in microseconds, at simulated time `sim`.
    pub fn local_micros(&self, sim: Duration) -> u64 {
        assert!(self.drift_ppm.abs() <= DRIFT_PPM_MAX, "drift out of range");
        let t = sim.as_micros() as i128;
        let drifted = t + t * self.drift_ppm as i128 / 1_000_000;
        let jumped: u128 = self
            .jumps
            .iter()
            .filter(|jump| jump.at <= sim)
            .map(|jump| jump.by.as_micros())
            .sum();
        let local = self.skew_micros as i128 + drifted + jumped as i128;
        assert!(local >= 0, "local clock before its origin");
        local as u64
    }

    /// A simulated duration after which the local clock has advanced by at least `local`
    /// (ignoring jumps, which only make it arrive sooner). Used to sleep until a deadline.
    pub fn sim_duration_for(&self, local: Duration) -> Duration {
        let micros = local.as_micros() as i128;
        let rate = 1_000_000 + self.drift_ppm as i128;
        // Round up so the deadline has really passed when we wake.
        let sim = (micros * 1_000_000 + rate - 1) / rate;
        Duration::from_micros(sim as u64)
    }
}

impl fmt::Display for ClockParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "skew {}us, drift {}ppm, jumps [",
            self.skew_micros, self.drift_ppm
        )?;
        for (i, jump) in self.jumps.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}+{:?} at {:?}", jump.by, jump.at)?;
        }
        write!(f, "]")
    }
}

/// The `raft_core::Clock` given to one node: reads madsim's clock through the node's params.
#[derive(Clone, Debug)]
pub struct SimClock {
    params: ClockParams,
    origin: madsim::time::Instant,
}

impl SimClock {
    /// A clock for one node; `origin` is the simulated instant the run started.
    pub fn new(params: ClockParams, origin: madsim::time::Instant) -> SimClock {
        SimClock { params, origin }
    }

    /// The node's clock parameters.
    pub fn params(&self) -> &ClockParams {
        &self.params
    }

    /// Simulated time elapsed since the run started.
    pub fn sim_elapsed(&self) -> Duration {
        madsim::time::Instant::now().duration_since(self.origin)
    }
}

impl raft_core::Clock for SimClock {
    fn now(&self) -> raft_core::Instant {
        raft_core::Instant(self.params.local_micros(self.sim_elapsed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn perfect_clock_is_identity() {
        let clock = ClockParams::default();
        assert_eq!(clock.local_micros(Duration::from_millis(1500)), 1_500_000);
    }

    #[test]
    fn clocks_are_monotonic_and_jump_forward() {
        for seed in 0..200 {
            let mut rng = SmallRng::seed_from_u64(seed);
            let params = ClockParams::draw(&mut rng, true, Duration::from_secs(10));
            let mut last = 0;
            for ms in 0..12_000 {
                let now = params.local_micros(Duration::from_millis(ms));
                assert!(now > last || ms == 0, "clock went backwards at {ms} ms");
                last = now;
            }
        }
    }

    #[test]
    fn sleeping_for_the_inverse_reaches_the_deadline() {
        let params = ClockParams {
            skew_micros: 7,
            drift_ppm: -DRIFT_PPM_MAX,
            jumps: vec![],
        };
        let start = Duration::from_millis(100);
        let local_wait = Duration::from_millis(37);
        let sim_wait = params.sim_duration_for(local_wait);
        let before = params.local_micros(start);
        let after = params.local_micros(start + sim_wait);
        assert!(after - before >= local_wait.as_micros() as u64 - 1);
    }
}
