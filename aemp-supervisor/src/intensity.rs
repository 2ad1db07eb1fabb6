//! Restart intensity (at most N restarts in T) and backoff, as pure state.
//!
//! Nothing here reads a clock: time is passed in as a [`Duration`] since any
//! fixed origin, so the rules can be tested (and simulated) without a runtime.

use std::collections::VecDeque;
use std::time::Duration;

/// At most `max_restarts` restarts within `period`; one more and the
/// supervisor gives up (OTP's `intensity` and `period`).
///
/// `max_restarts = 0` makes the first restart fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intensity {
    /// Restarts allowed within `period`.
    pub max_restarts: u32,
    /// The sliding window.
    pub period: Duration,
}

impl Intensity {
    /// `max_restarts` restarts within `period`.
    pub fn new(max_restarts: u32, period: Duration) -> Intensity {
        Intensity { max_restarts, period }
    }
}

impl Default for Intensity {
    /// 3 restarts in 5 seconds.
    fn default() -> Intensity {
        Intensity { max_restarts: 3, period: Duration::from_secs(5) }
    }
}

/// The restarts of the last [`Intensity::period`], as a sliding window.
///
/// ```
/// use std::time::Duration;
/// use aemp_supervisor::{Intensity, RestartWindow};
/// let mut w = RestartWindow::new(Intensity::new(2, Duration::from_secs(10)));
/// let s = Duration::from_secs;
/// assert!(w.record(s(0)));
/// assert!(w.record(s(1)));
/// assert!(!w.record(s(2)), "a third restart within 10 s is one too many");
/// let mut w = RestartWindow::new(Intensity::new(2, Duration::from_secs(10)));
/// assert!(w.record(s(0)) && w.record(s(1)));
/// assert!(w.record(s(10)), "the restart at 0 s has left the window");
/// ```
#[derive(Debug, Clone)]
pub struct RestartWindow {
    limit: Intensity,
    times: VecDeque<Duration>,
}

impl RestartWindow {
    /// An empty window for `limit`.
    pub fn new(limit: Intensity) -> RestartWindow {
        RestartWindow { limit, times: VecDeque::new() }
    }

    /// The limit this window enforces.
    pub fn limit(&self) -> Intensity {
        self.limit
    }

    /// Records a restart at `now` and tells whether it is within the limit:
    /// `false` means more than `max_restarts` restarts happened less than
    /// `period` ago (this one included), and the supervisor must give up.
    pub fn record(&mut self, now: Duration) -> bool {
        self.prune(now);
        self.times.push_back(now);
        self.times.len() <= self.limit.max_restarts as usize
    }

    /// The restarts less than `period` before `now`.
    pub fn count(&self, now: Duration) -> usize {
        self.times.iter().filter(|t| now.saturating_sub(**t) < self.limit.period).count()
    }

    fn prune(&mut self, now: Duration) {
        while self.times.front().is_some_and(|t| now.saturating_sub(*t) >= self.limit.period) {
            self.times.pop_front();
        }
    }
}

/// Exponential backoff between restarts, as Akka's backoff supervisor does
/// it (OTP restarts at once).
///
/// The `n`-th consecutive restart of a child waits `d = min(max, min *
/// 2^n)`, then scaled at random by a factor in `1 - random_factor ..= 1 +
/// random_factor`: jitter in both directions, so that children that failed
/// together do not all come back at the same moment. `max` caps the
/// computed delay before the jitter, so a delay can exceed it by up to
/// `random_factor` of itself (as in Akka).
///
/// A child that ran for at least `reset_after` before it exited starts
/// again from `n = 0`. With a `seed`, the jitter is the same on every run
/// (for tests and simulations).
///
/// ```
/// use std::time::Duration;
/// use aemp_supervisor::Backoff;
/// let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1)).random_factor(0.0);
/// let ms = |n| b.delay(n, 0.5).as_millis();
/// assert_eq!([ms(0), ms(1), ms(2), ms(3), ms(4), ms(10)], [100, 200, 400, 800, 1000, 1000]);
/// let j = b.random_factor(0.5);
/// assert_eq!([j.delay(1, 0.0).as_millis(), j.delay(1, 0.5).as_millis(), j.delay(1, 1.0).as_millis()], [100, 200, 300]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Backoff {
    /// The first delay.
    pub min: Duration,
    /// The longest delay before jitter.
    pub max: Duration,
    /// How far, as a share of the delay, the jitter may move it either way,
    /// from 0 (none) to 1.
    pub random_factor: f64,
    /// A child that ran this long before it exited starts again from the
    /// first delay.
    pub reset_after: Duration,
    /// Seeds the jitter's random numbers (and the choice between equally
    /// loaded nodes): the same seed gives the same delays.
    pub seed: Option<u64>,
}

impl Backoff {
    /// Doubling delays from `min` up to `max`, a random factor of 0.2, reset
    /// after a child ran for `max`, no seed.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff { min, max, random_factor: 0.2, reset_after: max, seed: None }
    }

    /// Sets the random factor (clamped to 0..=1; 0 turns the jitter off).
    #[must_use]
    pub fn random_factor(mut self, random_factor: f64) -> Backoff {
        self.random_factor = unit(random_factor);
        self
    }

    /// Sets how long a child must run to start again from the first delay.
    #[must_use]
    pub fn reset_after(mut self, reset_after: Duration) -> Backoff {
        self.reset_after = reset_after;
        self
    }

    /// Makes the jitter deterministic.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Backoff {
        self.seed = Some(seed);
        self
    }

    /// The delay before restart number `attempt` (0 for the first), given a
    /// random number `random` in `0..=1` (0.5 gives the delay without
    /// jitter): `d * (1 + random_factor * (2 * random - 1))` for `d =
    /// min(max, min * 2^attempt)`.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let d = (self.min.as_secs_f64() * 2f64.powi(attempt.min(1000) as i32)).min(self.max.as_secs_f64());
        let scale = 1.0 + unit(self.random_factor) * (2.0 * unit(random) - 1.0);
        Duration::try_from_secs_f64(d * scale).unwrap_or(self.max)
    }
}

/// `x` clamped to 0..=1, NaN as 0.
fn unit(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, 1.0)
    }
}
