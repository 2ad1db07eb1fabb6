//! Backoff between restarts, as Akka's backoff supervisor does it: delays
//! that double up to a maximum, start over after a child ran long enough,
//! and jitter both ways, repeatably with a seed. On the paused clock.

mod common;

use std::time::Duration;

use aemp::{msg, Node, PortId};
use aemp_supervisor::{Backoff, EventKind, EventStream, Intensity, Strategy, Supervisor, SupervisorSpec};
use common::{collector, event_of, node, up, worker};
use tokio::sync::mpsc::UnboundedReceiver;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Crashes child `a` and returns the delay of its restart, once it runs again.
async fn crash(
    n: &Node,
    pa: &mut PortId,
    rx: &mut UnboundedReceiver<aemp::Msg>,
    events: &mut EventStream,
) -> f64 {
    n.snd(pa, msg!["crash"]);
    let EventKind::Restarting { delay, .. } = event_of(events, "restarting", "a").await else {
        unreachable!()
    };
    *pa = up(rx, "a").await;
    delay.as_secs_f64()
}

/// A supervisor of one child `a` with this backoff; `a`'s port.
async fn supervise(
    n: &Node,
    backoff: Backoff,
) -> (Supervisor, PortId, UnboundedReceiver<aemp::Msg>, EventStream) {
    let (c, mut rx) = collector(n);
    let events = EventStream::new(n);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(Intensity::new(100, Duration::from_secs(3600)))
        .backoff(backoff)
        .observer(events.port())
        .child(worker("a", &c));
    let sup = Supervisor::start(n, spec).await.unwrap();
    let pa = up(&mut rx, "a").await;
    (sup, pa, rx, events)
}

#[tokio::test(start_paused = true)]
async fn backoff_doubles_up_to_its_maximum_and_starts_over_after_reset_after() {
    let n = node().await;
    let b = Backoff::new(secs(1.0), secs(4.0)).random_factor(0.0).reset_after(secs(30.0));
    let (sup, mut pa, mut rx, mut events) = supervise(&n, b).await;
    let mut delays = Vec::new();
    for _ in 0..4 {
        delays.push(crash(&n, &mut pa, &mut rx, &mut events).await);
    }
    assert_eq!(delays, [1.0, 2.0, 4.0, 4.0]);
    // Running for less than reset_after keeps the delay up; for longer,
    // the next one is the minimum again.
    tokio::time::sleep(secs(29.0)).await;
    assert_eq!(crash(&n, &mut pa, &mut rx, &mut events).await, 4.0);
    tokio::time::sleep(secs(30.0)).await;
    assert_eq!(crash(&n, &mut pa, &mut rx, &mut events).await, 1.0);
    assert_eq!(crash(&n, &mut pa, &mut rx, &mut events).await, 2.0);
    sup.stop().await.unwrap();
    n.shutdown().await;
}

/// The delays of eight consecutive restarts of a child, with a nominal
/// delay of one second and this random factor and seed.
async fn jittered(n: &Node, factor: f64, seed: u64) -> Vec<f64> {
    let b = Backoff::new(secs(1.0), secs(1.0)).random_factor(factor).seed(seed);
    let (sup, mut pa, mut rx, mut events) = supervise(n, b).await;
    let mut delays = Vec::new();
    for _ in 0..8 {
        delays.push(crash(n, &mut pa, &mut rx, &mut events).await);
    }
    sup.stop().await.unwrap();
    delays
}

#[tokio::test(start_paused = true)]
async fn backoff_jitters_both_ways_and_a_seed_repeats_the_delays() {
    let n = node().await;
    let first = jittered(&n, 0.5, 7).await;
    assert!(first.iter().all(|d| (0.5..=1.5).contains(d)), "within the random factor: {first:?}");
    assert!(first.iter().any(|d| *d < 1.0) && first.iter().any(|d| *d > 1.0), "both ways: {first:?}");
    assert_eq!(jittered(&n, 0.5, 7).await, first, "the same seed, the same delays");
    assert_ne!(jittered(&n, 0.5, 8).await, first);
    n.shutdown().await;
}
