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
    pub fn count(&mut self, now: Duration) -> usize {
        self.prune(now);
        self.times.len()
    }

    fn prune(&mut self, now: Duration) {
        while self.times.front().is_some_and(|t| now.saturating_sub(*t) >= self.limit.period) {
            self.times.pop_front();
        }
    }
}

/// Exponential backoff with jitter between restarts (which OTP does not
/// offer): the `n`-th consecutive restart waits `min(max, base * 2^n)`,
/// shortened by up to `jitter` of itself at random.
///
/// A child that ran for a whole intensity period before failing starts
/// again at `n = 0`.
///
/// ```
/// use std::time::Duration;
/// use aemp_supervisor::Backoff;
/// let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1)).jitter(0.0);
/// let ms = |n| b.delay(n, 0.5).as_millis();
/// assert_eq!([ms(0), ms(1), ms(2), ms(3), ms(4), ms(10)], [100, 200, 400, 800, 1000, 1000]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first delay.
    pub base: Duration,
    /// The longest delay.
    pub max: Duration,
    /// The share of a delay that may be cut at random, from 0 (none) to 1.
    pub jitter: f64,
}

impl Backoff {
    /// Doubling delays from `base` up to `max`, with a jitter of 0.2.
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff { base, max, jitter: 0.2 }
    }

    /// Sets the jitter (clamped to 0..=1).
    #[must_use]
    pub fn jitter(mut self, jitter: f64) -> Backoff {
        self.jitter = if jitter.is_nan() { 0.0 } else { jitter.clamp(0.0, 1.0) };
        self
    }

    /// The delay before restart number `attempt` (0 for the first), given a
    /// random number `random` in `0..1`: in `((1 - jitter) * d, d]` for
    /// `d = min(max, base * 2^attempt)`.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let max = self.max.as_secs_f64();
        let d = (self.base.as_secs_f64() * 2f64.powi(attempt.min(1000) as i32)).min(max);
        let jitter = if self.jitter.is_nan() { 0.0 } else { self.jitter.clamp(0.0, 1.0) };
        let random = if random.is_nan() { 0.0 } else { random.clamp(0.0, 1.0) };
        let secs = d * (1.0 - jitter * random);
        Duration::try_from_secs_f64(secs).unwrap_or(self.max).min(self.max)
    }
}
