//! Properties of the pure decision logic the supervisor runs on every child
//! exit: random children, random sequences of deaths (random kinds, random
//! times), each strategy's invariants (who is stopped and restarted, in
//! which order, who is forgotten) and the moment the supervisor gives up.

use std::time::Duration;

use aemp::Reason;
use aemp_supervisor::{
    decide, plan, Backoff, ChildState, Decision, ExitKind, Intensity, Restart, RestartWindow, Strategy,
};
use proptest::prelude::{any, prop_assert, prop_assert_eq, prop_oneof, proptest, Just, ProptestConfig};
use proptest::sample::Index;
use proptest::strategy::Strategy as Gen;

// proptest's `Strategy` trait is imported as `Gen`: `Strategy` is the restart strategy here.

fn strategy() -> impl Gen<Value = Strategy> {
    prop_oneof![
        Just(Strategy::OneForOne),
        Just(Strategy::OneForAll),
        Just(Strategy::RestForOne),
        Just(Strategy::SimpleOneForOne),
    ]
}

fn restart() -> impl Gen<Value = Restart> {
    prop_oneof![Just(Restart::Permanent), Just(Restart::Transient), Just(Restart::Temporary)]
}

fn exit() -> impl Gen<Value = ExitKind> {
    prop_oneof![Just(ExitKind::Normal), Just(ExitKind::Shutdown), Just(ExitKind::Abnormal)]
}

#[derive(Debug, Clone, Copy)]
struct Kid {
    restart: Restart,
    active: bool,
}

fn strictly_increasing(v: &[usize]) -> bool {
    v.windows(2).all(|w| w[0] < w[1])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_strategy_stops_restarts_and_forgets_the_right_children_and_gives_up_on_time(
        strat in strategy(),
        types in proptest::collection::vec(restart(), 1..7),
        max_restarts in 0u32..5,
        period_ms in 1u64..5_000,
        deaths in proptest::collection::vec((any::<Index>(), exit(), 0u64..3_000), 1..40),
    ) {
        let mut kids: Vec<Kid> = types.iter().map(|&restart| Kid { restart, active: true }).collect();
        let period = Duration::from_millis(period_ms);
        let mut window = RestartWindow::new(Intensity::new(max_restarts, period));
        let mut restart_times: Vec<u64> = Vec::new();
        let mut now = 0u64;
        for (pick, kind, dt) in deaths {
            now += dt;
            let active: Vec<usize> = (0..kids.len()).filter(|&i| kids[i].active).collect();
            if active.is_empty() {
                break;
            }
            let failed = active[pick.index(active.len())];
            let states: Vec<ChildState> =
                kids.iter().map(|k| ChildState { restart: k.restart, active: k.active }).collect();
            let decision = decide(strat, &states, failed, kind, &mut window, Duration::from_millis(now));
            let me = kids[failed];

            // Restart types: permanent always, transient after abnormal exits only, temporary never.
            let restarted = match me.restart {
                Restart::Permanent => true,
                Restart::Transient => kind == ExitKind::Abnormal,
                Restart::Temporary => false,
            };
            if !restarted {
                let Decision::Leave(p) = decision else {
                    panic!("{:?} child after {kind:?} restarted: {decision:?}", me.restart)
                };
                prop_assert!(p.stop.is_empty() && p.start.is_empty());
                let forget = me.restart == Restart::Temporary || strat == Strategy::SimpleOneForOne;
                prop_assert_eq!(p.remove.clone(), if forget { vec![failed] } else { vec![] });
                if forget {
                    kids.remove(failed);
                } else {
                    kids[failed].active = false;
                }
                continue;
            }

            // Intensity: one restart per exit that restarts; give up past
            // max_restarts within the period.
            restart_times.push(now);
            let recent = restart_times.iter().filter(|&&t| now - t < period_ms).count();
            if recent > max_restarts as usize {
                prop_assert_eq!(decision, Decision::GiveUp { restarts: recent });
                return Ok(());
            }
            let Decision::Restart(p) = decision else { panic!("expected a restart: {decision:?}") };

            // The group, by strategy: stopped children belong to it too.
            let group: Vec<usize> = match strat {
                Strategy::OneForOne | Strategy::SimpleOneForOne => vec![failed],
                Strategy::OneForAll => (0..kids.len()).collect(),
                Strategy::RestForOne => (failed..kids.len()).collect(),
            };
            let sibling = |i: &usize| *i != failed;
            let temporary = |i: &usize| sibling(i) && kids[*i].restart == Restart::Temporary;
            // Stops: every active sibling of the group, last started first; never the failed child.
            let mut stop_sorted = p.stop.clone();
            stop_sorted.reverse();
            prop_assert!(strictly_increasing(&stop_sorted), "stops not in reverse order: {:?}", p.stop);
            prop_assert_eq!(stop_sorted, group.iter().copied().filter(|i| sibling(i) && kids[*i].active).collect::<Vec<_>>());
            // Starts: in spec order, every child of the group that is not a
            // temporary sibling, stopped ones included (as OTP does).
            prop_assert!(strictly_increasing(&p.start), "starts out of order: {:?}", p.start);
            prop_assert_eq!(p.start.clone(), group.iter().copied().filter(|i| !temporary(i)).collect::<Vec<_>>());
            // Temporary siblings caught in the restart are forgotten, nothing else.
            prop_assert_eq!(p.remove.clone(), group.iter().copied().filter(temporary).collect::<Vec<_>>());
            // Strategy-specific: who is never touched.
            match strat {
                Strategy::OneForOne | Strategy::SimpleOneForOne => prop_assert_eq!(p.start.clone(), vec![failed]),
                Strategy::RestForOne => prop_assert!(p.stop.iter().chain(&p.start).all(|&i| i >= failed)),
                Strategy::OneForAll => prop_assert!(
                    (0..kids.len()).all(|i| p.start.contains(&i) || p.remove.contains(&i))
                ),
            }
            // Apply: stopped temporaries go, the started ones run.
            for &i in &p.start {
                kids[i].active = true;
            }
            for &i in p.remove.iter().rev() {
                kids.remove(i);
            }
        }
    }

    #[test]
    fn the_restart_window_counts_exactly_the_restarts_of_the_last_period(
        max_restarts in 0u32..6,
        period_ms in 1u64..2_000,
        gaps in proptest::collection::vec(0u64..1_000, 1..60),
    ) {
        let mut w = RestartWindow::new(Intensity::new(max_restarts, Duration::from_millis(period_ms)));
        let mut times = Vec::new();
        let mut now = 0;
        for g in gaps {
            now += g;
            times.push(now);
            let recent = times.iter().filter(|&&t| now - t < period_ms).count();
            prop_assert_eq!(w.record(Duration::from_millis(now)), recent <= max_restarts as usize);
            prop_assert_eq!(w.count(Duration::from_millis(now)), recent);
        }
    }

    #[test]
    fn backoff_delays_grow_exponentially_up_to_the_maximum_and_jitter_both_ways(
        min_ms in 1u64..1_000,
        extra_ms in 0u64..60_000,
        factor in 0.0f64..=1.0,
        random in 0.0f64..=1.0,
        attempt in 0u32..80,
    ) {
        let b = Backoff::new(Duration::from_millis(min_ms), Duration::from_millis(min_ms + extra_ms))
            .random_factor(factor);
        let plain = b.random_factor(0.0);
        let d = b.delay(attempt, random).as_secs_f64();
        let nominal = plain.delay(attempt, random);
        prop_assert!(nominal <= b.max);
        prop_assert!(plain.delay(attempt + 1, random) >= nominal, "not monotonic");
        let expected = (min_ms as f64 * 2f64.powi(attempt as i32)).min((min_ms + extra_ms) as f64);
        prop_assert!((nominal.as_secs_f64() * 1e3 - expected).abs() < 1e-3);
        // Within the random factor either way, and on the side the random number says.
        let n = nominal.as_secs_f64();
        prop_assert!(d >= n * (1.0 - factor) - 1e-9 && d <= n * (1.0 + factor) + 1e-9);
        prop_assert!((d - n) * (random - 0.5) >= -1e-9);
        prop_assert!((b.delay(attempt, 0.5).as_secs_f64() - n).abs() < 1e-9);
    }
}

#[test]
fn exit_kinds_come_from_reasons() {
    assert_eq!(ExitKind::of(&Reason::normal()), ExitKind::Normal);
    assert_eq!(ExitKind::of(&Reason::from(aemp::msg!["shutdown", "x"])), ExitKind::Shutdown);
    assert_eq!(ExitKind::of(&Reason::die("x")), ExitKind::Abnormal);
    assert_eq!(ExitKind::of(&Reason::transport_error("n", "lost")), ExitKind::Abnormal);
}

#[test]
fn plan_examples_for_each_strategy() {
    let p = |r| ChildState { restart: r, active: true };
    let kids = [p(Restart::Permanent), p(Restart::Temporary), p(Restart::Permanent), p(Restart::Transient)];
    let one = plan(Strategy::OneForOne, &kids, 2, ExitKind::Abnormal);
    assert_eq!((one.stop, one.start, one.remove), (vec![], vec![2], vec![]));
    let all = plan(Strategy::OneForAll, &kids, 2, ExitKind::Abnormal);
    assert_eq!((all.stop, all.start, all.remove), (vec![3, 1, 0], vec![0, 2, 3], vec![1]));
    let rest = plan(Strategy::RestForOne, &kids, 0, ExitKind::Normal);
    assert_eq!((rest.stop, rest.start, rest.remove), (vec![3, 2, 1], vec![0, 2, 3], vec![1]));
    let left = plan(Strategy::RestForOne, &kids, 3, ExitKind::Normal);
    assert_eq!((left.stop, left.start, left.remove), (vec![], vec![], vec![]));
    // A group restart starts stopped children again (not stopped first),
    // in spec order, as OTP does.
    let stopped = |r| ChildState { restart: r, active: false };
    let kids = [
        p(Restart::Permanent),
        stopped(Restart::Transient),
        p(Restart::Permanent),
        stopped(Restart::Permanent),
    ];
    let all = plan(Strategy::OneForAll, &kids, 2, ExitKind::Abnormal);
    assert_eq!((all.stop, all.start, all.remove), (vec![0], vec![0, 1, 2, 3], vec![]));
    let rest = plan(Strategy::RestForOne, &kids, 0, ExitKind::Abnormal);
    assert_eq!((rest.stop, rest.start, rest.remove), (vec![2], vec![0, 1, 2, 3], vec![]));
    assert_eq!(plan(Strategy::OneForOne, &kids, 9, ExitKind::Abnormal), Default::default());
}
