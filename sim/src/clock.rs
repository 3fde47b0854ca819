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

/// A drift whose sign changes over time: in each period the clock runs slow (by the drift's
/// magnitude) for `slow`, then fast for the rest. An oscillator that wanders within its
/// bound, which makes the fast and the slow nodes of a cluster change over time (a leader
/// elected while fast may run slow later).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wander {
    /// Full period of the wave.
    pub period: Duration,
    /// Where in the wave the clock starts.
    pub phase: Duration,
    /// How long the clock runs slow at the start of each period (at most `period`).
    pub slow: Duration,
}

impl Wander {
    /// Integral of the rate's sign over `[0, t]`, in microseconds: -1 during the slow part of
    /// each period, +1 during the rest.
    fn integral(&self, t: i128) -> i128 {
        let period = self.period.as_micros() as i128;
        let slow = (self.slow.as_micros() as i128).min(period);
        let phase = self.phase.as_micros() as i128;
        let g = |x: i128| {
            let m = x.rem_euclid(period);
            let within = if m < slow { -m } else { m - 2 * slow };
            x.div_euclid(period) * (period - 2 * slow) + within
        };
        g(t + phase) - g(phase)
    }
}

/// The parameters of one node's clock.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ClockParams {
    /// Constant offset of the node's clock from the simulated clock, in microseconds.
    pub skew_micros: u64,
    /// Rate error, in parts per million; negative runs slow. Bounded to +-5%, or to the
    /// lease drift bound (up to 40%) on seeds with lease reads.
    pub drift_ppm: i64,
    /// Forward jumps, sorted by time.
    pub jumps: Vec<ClockJump>,
    /// With `Some`, the clock runs slow, then fast, by the drift's magnitude (see [`Wander`]).
    pub wander: Option<Wander>,
}

/// The largest drift a seed may draw: 5%, far beyond real quartz (about 100 ppm), so that
/// timeout code is exercised well past its comfort zone without making time run backwards.
pub const DRIFT_PPM_MAX: i64 = 50_000;

/// The largest drift on seeds with lease reads, whose clocks are skewed on purpose (see
/// `config::draw_lease_reads`).
pub const LEASE_DRIFT_PPM_MAX: i64 = 400_000;

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
            wander: None,
        }
    }

    /// The node's local time, in microseconds, at simulated time `sim`.
    pub fn local_micros(&self, sim: Duration) -> u64 {
        assert!(
            self.drift_ppm.abs() <= LEASE_DRIFT_PPM_MAX,
            "drift out of range"
        );
        let t = sim.as_micros() as i128;
        let drifted = match self.wander {
            None => t + t * self.drift_ppm as i128 / 1_000_000,
            Some(w) => t + w.integral(t) * self.drift_ppm.abs() as i128 / 1_000_000,
        };
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

    /// A simulated duration from `now` after which the local clock has advanced by at least
    /// `local` (ignoring jumps, which only make it arrive sooner). Used to sleep until a
    /// deadline.
    pub fn sim_duration_for(&self, now: Duration, local: Duration) -> Duration {
        let micros = local.as_micros() as i128;
        let Some(_) = self.wander else {
            let rate = 1_000_000 + self.drift_ppm as i128;
            // Round up so the deadline has really passed when we wake.
            let sim = (micros * 1_000_000 + rate - 1) / rate;
            return Duration::from_micros(sim as u64);
        };
        // The rate changes along the way: search for the first instant that is late enough.
        let slowest = 1_000_000 - self.drift_ppm.abs() as i128;
        let start = self.local_micros(now) as i128;
        let (mut low, mut high) = (0i128, (micros * 1_000_000 + slowest - 1) / slowest);
        while low < high {
            let mid = (low + high) / 2;
            let at = now + Duration::from_micros(mid as u64);
            if self.local_micros(at) as i128 - start >= micros {
                high = mid;
            } else {
                low = mid + 1;
            }
        }
        Duration::from_micros(low as u64)
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
        write!(f, "]")?;
        match self.wander {
            Some(w) => write!(f, ", slow for {:?} of every {:?}", w.slow, w.period),
            None => Ok(()),
        }
    }
}

/// The `raft_core::Clock` given to one node: reads madsim's clock through the node's params.
#[derive(Clone, Debug)]
pub struct SimClock {
    params: ClockParams,
    origin: madsim::time::Instant,
    drift_bound_ppm: u64,
}

impl SimClock {
    /// A clock for one node; `origin` is the simulated instant the run started. It reports
    /// [`DRIFT_PPM_MAX`] as its drift bound, which its rate honours (its jumps do not: seeds
    /// with lease reads have none, see [`SimClock::with_drift_bound`]).
    pub fn new(params: ClockParams, origin: madsim::time::Instant) -> SimClock {
        SimClock {
            params,
            origin,
            drift_bound_ppm: DRIFT_PPM_MAX as u64,
        }
    }

    /// The same clock, reporting `ppm` as its drift bound. The bound must hold: the clock
    /// must not drift further and must not jump, or lease reads may be stale through no fault
    /// of the code under test.
    pub fn with_drift_bound(mut self, ppm: u64) -> SimClock {
        assert!(
            self.params.drift_ppm.unsigned_abs() <= ppm && self.params.jumps.is_empty(),
            "clock {} breaks the drift bound {ppm}ppm it would report",
            self.params
        );
        self.drift_bound_ppm = ppm;
        self
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

    fn drift_bound_ppm(&self) -> u64 {
        self.drift_bound_ppm
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
            let mut params = ClockParams::draw(&mut rng, true, Duration::from_secs(10));
            if seed % 2 == 0 {
                params.wander = Some(Wander {
                    period: Duration::from_millis(700 + seed),
                    phase: Duration::from_millis(seed * 3),
                    slow: Duration::from_millis(seed * 2),
                });
            }
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
            wander: None,
        };
        let start = Duration::from_millis(100);
        let local_wait = Duration::from_millis(37);
        let sim_wait = params.sim_duration_for(start, local_wait);
        let before = params.local_micros(start);
        let after = params.local_micros(start + sim_wait);
        assert!(after - before >= local_wait.as_micros() as u64 - 1);
    }

    #[test]
    fn a_wandering_clock_stays_within_its_bound_and_flips() {
        let params = ClockParams {
            skew_micros: 0,
            drift_ppm: 200_000,
            jumps: vec![],
            wander: Some(Wander {
                period: Duration::from_millis(1000),
                phase: Duration::from_millis(750),
                slow: Duration::from_millis(500),
            }),
        };
        let rate = |from: u64, ms: u64| {
            let a = params.local_micros(Duration::from_millis(from));
            let b = params.local_micros(Duration::from_millis(from + ms));
            (b - a) as f64 / (ms * 1000) as f64
        };
        // Phase 750 ms: fast until 250 ms, slow until 750 ms, fast again.
        assert!((rate(0, 200) - 1.2).abs() < 1e-6);
        assert!((rate(300, 400) - 0.8).abs() < 1e-6);
        assert!((rate(800, 100) - 1.2).abs() < 1e-6);
        let mut last = 0;
        for ms in 1..3_000 {
            let now = params.local_micros(Duration::from_millis(ms));
            assert!(now > last);
            last = now;
        }
        for from in [0, 240, 700, 1234] {
            let start = Duration::from_millis(from);
            let wait = params.sim_duration_for(start, Duration::from_millis(90));
            let advanced = params.local_micros(start + wait) - params.local_micros(start);
            assert!(advanced >= 90_000, "woke early from {from} ms");
            let earlier = params.local_micros(start + wait - Duration::from_micros(1));
            assert!(
                earlier - params.local_micros(start) < 90_000,
                "overslept from {from}"
            );
        }
    }
}
