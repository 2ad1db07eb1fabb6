//! What the relay does to each packet (pure, seeded): lose it, or hold it
//! for a delay with jitter and release it in order, or hold it longer so
//! that later packets overtake it; and the timed queue of held packets.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;

use crate::schedule::Rng;

/// How a degraded link treats its packets (each direction alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Impairment {
    /// The base delay of every packet kept, in milliseconds.
    pub delay_ms: u32,
    /// Up to this much more, drawn per packet, in milliseconds. Packets
    /// not picked for reordering still leave in the order they came.
    pub jitter_ms: u32,
    /// Packets lost, per thousand.
    pub loss_permille: u32,
    /// Packets held back so that later ones overtake them, per thousand.
    pub reorder_permille: u32,
    /// The seed of the per-packet choices.
    pub seed: u64,
}

impl Impairment {
    /// How much longer than the others a reordered packet is held, in ms
    /// (the base delay, at least 20 ms: a stream of the lab sends every 20 ms).
    pub fn reorder_extra_ms(&self) -> u32 {
        self.delay_ms.max(20)
    }
}

impl fmt::Display for Impairment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |p: u32| format!("{}.{}%", p / 10, p % 10);
        write!(
            f,
            "delay {}+{}ms, loss {}, reorder {}",
            self.delay_ms,
            self.jitter_ms,
            pct(self.loss_permille),
            pct(self.reorder_permille)
        )
    }
}

/// What happens to one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Dropped.
    Drop,
    /// Released at a time (CLOCK_MONOTONIC ns).
    Release {
        /// When.
        at_ns: u64,
        /// Whether it is held back for later packets to overtake.
        reordered: bool,
    },
}

/// The per-packet decisions of one direction of a degraded link.
#[derive(Debug, Clone)]
pub struct Policy {
    imp: Impairment,
    rng: Rng,
    /// The release time of the last packet kept in order.
    in_order_until: u64,
}

const MS: u64 = 1_000_000;

impl Policy {
    /// The policy of an impairment, seeded by it.
    pub fn new(imp: Impairment) -> Policy {
        Policy { imp, rng: Rng::new(imp.seed), in_order_until: 0 }
    }

    /// Decides the fate of a packet that came at `now_ns`. Every call
    /// draws the same amount of randomness, so a seed gives the same
    /// sequence of decisions whatever they are.
    pub fn decide(&mut self, now_ns: u64) -> Decision {
        let lose = self.rng.range(0, 999) < u64::from(self.imp.loss_permille);
        let jitter = self.rng.range(0, u64::from(self.imp.jitter_ms));
        let reorder = self.rng.range(0, 999) < u64::from(self.imp.reorder_permille);
        if lose {
            return Decision::Drop;
        }
        let at = now_ns + (u64::from(self.imp.delay_ms) + jitter) * MS;
        if reorder {
            let at_ns = at + u64::from(self.imp.reorder_extra_ms()) * MS;
            return Decision::Release { at_ns, reordered: true };
        }
        let at_ns = at.max(self.in_order_until);
        self.in_order_until = at_ns;
        Decision::Release { at_ns, reordered: false }
    }
}

/// Held packets (by the kernel's packet ID), released by time; packets due
/// at the same time leave in the order they came.
#[derive(Debug, Default)]
pub struct Held {
    heap: BinaryHeap<Reverse<(u64, u64, u32)>>,
    next: u64,
}

impl Held {
    /// Holds packet `id` until `at_ns`.
    pub fn push(&mut self, at_ns: u64, id: u32) {
        self.heap.push(Reverse((at_ns, self.next, id)));
        self.next += 1;
    }

    /// When the next packet is due, if one is held.
    pub fn next_due(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Takes the packets due by `now_ns`, in release order.
    pub fn take_due(&mut self, now_ns: u64) -> Vec<u32> {
        let mut out = Vec::new();
        while let Some(Reverse((at, _, id))) = self.heap.peek() {
            if *at > now_ns {
                break;
            }
            out.push(*id);
            self.heap.pop();
        }
        out
    }

    /// Takes every held packet, in release order.
    pub fn take_all(&mut self) -> Vec<u32> {
        self.take_due(u64::MAX)
    }

    /// How many are held.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn imp(delay: u32, jitter: u32, loss: u32, reorder: u32) -> Impairment {
        Impairment {
            delay_ms: delay,
            jitter_ms: jitter,
            loss_permille: loss,
            reorder_permille: reorder,
            seed: 7,
        }
    }

    /// Decisions for packets arriving every 5 ms.
    fn run(i: Impairment, n: u64) -> Vec<Decision> {
        let mut p = Policy::new(i);
        (0..n).map(|k| p.decide(1_000 * MS + k * 5 * MS)).collect()
    }

    fn releases(d: &[Decision]) -> Vec<(u64, bool)> {
        d.iter()
            .filter_map(|d| match d {
                Decision::Release { at_ns, reordered } => Some((*at_ns, *reordered)),
                Decision::Drop => None,
            })
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_decisions() {
        let i = imp(100, 50, 30, 50);
        assert_eq!(run(i, 500), run(i, 500));
        assert_ne!(run(i, 500), run(Impairment { seed: 8, ..i }, 500));
    }

    #[test]
    fn delay_with_jitter_keeps_the_order_and_the_bounds() {
        let d = run(imp(100, 80, 0, 0), 1000);
        let r = releases(&d);
        assert_eq!(r.len(), 1000, "nothing lost");
        for (k, (at, reordered)) in r.iter().enumerate() {
            let came = 1_000 * MS + k as u64 * 5 * MS;
            assert!(!reordered);
            assert!(*at >= came + 100 * MS, "packet {k} early");
            assert!(*at <= came + 180 * MS, "packet {k} held past delay + jitter");
        }
        assert!(r.windows(2).all(|w| w[0].0 <= w[1].0), "released out of order");
        assert!(r.windows(2).any(|w| w[1].0 - w[0].0 != 5 * MS), "no jitter at all");
    }

    #[test]
    fn loss_is_about_its_rate() {
        let d = run(imp(50, 0, 40, 0), 10_000);
        let lost = d.iter().filter(|d| **d == Decision::Drop).count();
        assert!((250..=550).contains(&lost), "{lost} lost of 10000 at 4%");
        assert_eq!(run(imp(50, 0, 0, 0), 1000).iter().filter(|d| **d == Decision::Drop).count(), 0);
    }

    #[test]
    fn reordered_packets_are_overtaken() {
        let i = imp(60, 0, 0, 100);
        let r = releases(&run(i, 2000));
        let picked = r.iter().filter(|x| x.1).count();
        assert!((100..=300).contains(&picked), "{picked} reordered of 2000 at 10%");
        // Every reordered packet leaves after the packet that came next.
        for (k, w) in r.windows(2).enumerate() {
            if w[0].1 && !w[1].1 {
                assert!(w[0].0 > w[1].0, "packet {k} not overtaken");
            }
        }
        // The others keep their order among themselves.
        let kept: Vec<u64> = r.iter().filter(|x| !x.1).map(|x| x.0).collect();
        assert!(kept.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn held_packets_leave_by_time_then_by_arrival() {
        let mut h = Held::default();
        h.push(30, 1);
        h.push(10, 2);
        h.push(20, 3);
        h.push(10, 4);
        assert_eq!(h.next_due(), Some(10));
        assert_eq!(h.take_due(9), Vec::<u32>::new());
        assert_eq!(h.take_due(20), vec![2, 4, 3]);
        assert_eq!(h.len(), 1);
        h.push(5, 5);
        assert_eq!(h.take_all(), vec![5, 1]);
        assert!(h.is_empty() && h.next_due().is_none());
    }
}
