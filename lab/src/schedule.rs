//! Random fault schedules, generated from a seed: which faults, on which
//! hosts, when, and for how long.

use std::fmt;

use crate::relay::policy::Impairment;

/// A small deterministic generator (splitmix64): the same seed gives the
/// same schedule on every machine and version.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// One fault. Hosts are numbered from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Both directions between two hosts silently dropped.
    Partition(usize, usize),
    /// Packets from the first host to the second dropped; the other way flows.
    OneWay(usize, usize),
    /// All traffic of a host dropped.
    Vanish(usize),
    /// All traffic of whichever host runs the supervised child dropped.
    VanishChildHost,
    /// The node process SIGKILLed; restarted under the same node ID when the fault ends.
    Kill(usize),
    /// The node process SIGSTOPped; SIGCONT when the fault ends.
    Pause(usize),
    /// A partition shorter than the link timeout: nothing should notice.
    Blip(usize, usize),
    /// The seed host's node restarts on a new address; the seed name is
    /// updated to it.
    SeedMoves,
    /// Packets between two hosts delayed, lost and reordered by the relay.
    Degrade(usize, usize, Impairment),
}

impl Fault {
    /// The kind's name, as in the history.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Partition(..) => "partition",
            Fault::OneWay(..) => "oneway",
            Fault::Vanish(_) | Fault::VanishChildHost => "vanish",
            Fault::Kill(_) => "kill",
            Fault::Pause(_) => "pause",
            Fault::Blip(..) => "blip",
            Fault::SeedMoves => "seedmove",
            Fault::Degrade(..) => "degrade",
        }
    }

    /// The hosts it names (the child's host is not known in advance).
    pub fn hosts(&self) -> Vec<usize> {
        match *self {
            Fault::Partition(a, b) | Fault::OneWay(a, b) | Fault::Blip(a, b) | Fault::Degrade(a, b, _) => {
                vec![a, b]
            }
            Fault::Vanish(a) | Fault::Kill(a) | Fault::Pause(a) => vec![a],
            Fault::VanishChildHost | Fault::SeedMoves => vec![],
        }
    }

    /// Whether it stops or replaces a process (at most one such fault per host at a time).
    fn touches_process(&self) -> bool {
        matches!(self, Fault::Kill(_) | Fault::Pause(_) | Fault::SeedMoves)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = |i: usize| format!("h{}", i + 1);
        match *self {
            Fault::Partition(a, b) => write!(f, "partition {}<->{}", h(a), h(b)),
            Fault::OneWay(a, b) => write!(f, "oneway {}->{} dropped", h(a), h(b)),
            Fault::Vanish(a) => write!(f, "vanish {}", h(a)),
            Fault::VanishChildHost => write!(f, "vanish the child's host"),
            Fault::Kill(a) => write!(f, "kill {}", h(a)),
            Fault::Pause(a) => write!(f, "pause {}", h(a)),
            Fault::Blip(a, b) => write!(f, "blip {}<->{}", h(a), h(b)),
            Fault::SeedMoves => write!(f, "seed moves"),
            Fault::Degrade(a, b, i) => write!(f, "degrade {}<->{} ({i})", h(a), h(b)),
        }
    }
}

/// A fault at a time, for a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Milliseconds from the schedule's start.
    pub at_ms: u64,
    /// How long it lasts, in milliseconds.
    pub hold_ms: u64,
    /// What.
    pub fault: Fault,
}

/// A schedule: one or two steps (the second may overlap the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The seed it was made from.
    pub seed: u64,
    /// Its steps, by start time.
    pub steps: Vec<Step>,
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seed {}:", self.seed)?;
        for s in &self.steps {
            write!(f, " [{} at {}ms for {}ms]", s.fault, s.at_ms, s.hold_ms)?;
        }
        Ok(())
    }
}

/// What the generator may use.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Number of hosts (at least 3).
    pub hosts: usize,
    /// The link timeout the nodes use, in milliseconds.
    pub timeout_ms: u64,
    /// Whether the delay/loss/reorder relay is available.
    pub relay: bool,
}

fn pick_fault(rng: &mut Rng, s: &Settings) -> Fault {
    let n = s.hosts as u64;
    let a = rng.range(0, n - 1) as usize;
    let b = (a + rng.range(1, n - 1) as usize) % s.hosts;
    // Without the relay, the kinds (and so the schedules of the seeds
    // named in the README) are those from before it existed.
    let kinds = if s.relay { 12 } else { 10 };
    match rng.range(0, kinds - 1) {
        0 | 1 => Fault::Partition(a, b),
        2 => Fault::OneWay(a, b),
        3 => Fault::Vanish(a),
        4 => Fault::VanishChildHost,
        5 => Fault::Kill(a),
        6 => Fault::Pause(a),
        7 => Fault::Blip(a, b),
        8 => Fault::SeedMoves,
        9 => Fault::Kill(a),
        _ => Fault::Degrade(a, b, pick_impairment(rng)),
    }
}

/// Delay 50-300 ms with up to half as much jitter; in about half the
/// cases also loss (0.5-5%), in about half reordering (2-15%).
fn pick_impairment(rng: &mut Rng) -> Impairment {
    let delay_ms = rng.range(50, 300) as u32;
    let jitter_ms = rng.range(0, u64::from(delay_ms / 2)) as u32;
    let loss_permille = if rng.range(0, 1) == 0 { 0 } else { rng.range(5, 50) as u32 };
    let reorder_permille = if rng.range(0, 1) == 0 { 0 } else { rng.range(20, 150) as u32 };
    Impairment { delay_ms, jitter_ms, loss_permille, reorder_permille, seed: rng.next_u64() }
}

fn hold_for(rng: &mut Rng, f: &Fault, s: &Settings) -> u64 {
    let t = s.timeout_ms;
    match f {
        // Under the timeout, with a margin for keepalive phase.
        Fault::Blip(..) => rng.range(200, t / 3),
        Fault::Kill(_) | Fault::SeedMoves => rng.range(100, 1500),
        // From the timeout to more than twice it: long enough for a link
        // to be given up if the degradation starves it.
        Fault::Degrade(..) => rng.range(t, 2 * t + t / 2),
        // Long enough to be detected (and for a fail-over: timeout + restart).
        _ => rng.range(t + t / 2, 2 * t),
    }
}

/// The schedule of a seed.
pub fn generate(seed: u64, s: &Settings) -> Schedule {
    assert!(s.hosts >= 3, "the lab needs three hosts");
    let mut rng = Rng::new(seed);
    let first = pick_fault(&mut rng, s);
    let mut steps = vec![Step { at_ms: 0, hold_ms: hold_for(&mut rng, &first, s), fault: first }];
    if rng.range(0, 2) == 0 {
        // A second fault, overlapping, on other processes.
        for _ in 0..8 {
            let f = pick_fault(&mut rng, s);
            let clash = (f.touches_process() || first.touches_process())
                && (f.hosts().iter().any(|h| first.hosts().contains(h))
                    || matches!(f, Fault::SeedMoves | Fault::VanishChildHost)
                    || matches!(first, Fault::SeedMoves | Fault::VanishChildHost)
                    || f == first);
            if clash || f.kind() == first.kind() {
                continue;
            }
            let at = rng.range(0, steps[0].hold_ms);
            steps.push(Step { at_ms: at, hold_ms: hold_for(&mut rng, &f, s), fault: f });
            break;
        }
    }
    Schedule { seed, steps }
}

/// The seed of schedule `i` of a run seeded with `run_seed`.
pub fn nth_seed(run_seed: u64, i: u64) -> u64 {
    let mut r = Rng::new(run_seed ^ i.wrapping_mul(0xa076_1d64_78bd_642f));
    r.next_u64() % 1_000_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Settings = Settings { hosts: 3, timeout_ms: 3000, relay: false };

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        for seed in 0..50 {
            assert_eq!(generate(seed, &S), generate(seed, &S));
        }
        assert_ne!(generate(1, &S), generate(2, &S));
    }

    #[test]
    fn schedules_are_well_formed() {
        for seed in 0..2000 {
            let sch = generate(seed, &S);
            assert!(!sch.steps.is_empty() && sch.steps.len() <= 2, "{sch}");
            for st in &sch.steps {
                for h in st.fault.hosts() {
                    assert!(h < S.hosts, "{sch}");
                }
                if let Fault::Partition(a, b)
                | Fault::OneWay(a, b)
                | Fault::Blip(a, b)
                | Fault::Degrade(a, b, _) = st.fault
                {
                    assert_ne!(a, b, "{sch}");
                }
                match st.fault {
                    Fault::Blip(..) => assert!(st.hold_ms < S.timeout_ms / 2, "{sch}"),
                    Fault::Partition(..) | Fault::Vanish(_) | Fault::Pause(_) | Fault::OneWay(..) => {
                        assert!(st.hold_ms > S.timeout_ms, "{sch}")
                    }
                    _ => {}
                }
                assert!(st.fault.kind() != "degrade", "no relay, no degrade: {sch}");
            }
            if let [a, b] = &sch.steps[..] {
                assert!(b.at_ms <= a.hold_ms, "{sch}");
                let both = |x: &Fault, y: &Fault| x.touches_process() && y.touches_process();
                if both(&a.fault, &b.fault) {
                    assert!(a.fault.hosts().iter().all(|h| !b.fault.hosts().contains(h)), "{sch}");
                }
            }
        }
    }

    #[test]
    fn every_kind_comes_up() {
        let s = Settings { relay: true, ..S };
        let mut kinds = std::collections::BTreeSet::new();
        for seed in 0..500 {
            for st in generate(seed, &s).steps {
                kinds.insert(st.fault.kind());
            }
        }
        assert_eq!(kinds.len(), 8, "{kinds:?}");
    }

    #[test]
    fn degradations_come_with_the_relay_only_and_within_bounds() {
        let s = Settings { relay: true, ..S };
        let mut n = 0;
        let (mut lossy, mut reordering) = (0, 0);
        for seed in 0..2000 {
            assert_eq!(generate(seed, &s), generate(seed, &s));
            for st in generate(seed, &s).steps {
                let Fault::Degrade(a, b, i) = st.fault else { continue };
                n += 1;
                assert_ne!(a, b);
                assert!((50..=300).contains(&i.delay_ms), "{i}");
                assert!(i.jitter_ms <= i.delay_ms / 2, "{i}");
                assert!(i.loss_permille <= 50 && i.reorder_permille <= 150, "{i}");
                assert!((S.timeout_ms..=S.timeout_ms * 5 / 2).contains(&st.hold_ms), "{}", st.hold_ms);
                lossy += usize::from(i.loss_permille > 0);
                reordering += usize::from(i.reorder_permille > 0);
            }
        }
        assert!(n > 200, "{n} degradations in 2000 schedules");
        assert!(lossy > n / 4 && lossy < n * 3 / 4, "{lossy} of {n} lossy");
        assert!(reordering > n / 4 && reordering < n * 3 / 4, "{reordering} of {n} reordering");
    }

    #[test]
    fn without_the_relay_the_schedules_are_unchanged() {
        // The seed the README names for `pause h1` keeps its schedule.
        let sch = generate(7775120, &S);
        assert!(sch.steps.iter().any(|st| st.fault == Fault::Pause(0)), "{sch}");
    }

    #[test]
    fn run_seeds_differ_per_schedule() {
        let seeds: std::collections::BTreeSet<u64> = (0..100).map(|i| nth_seed(7, i)).collect();
        assert_eq!(seeds.len(), 100);
    }
}
