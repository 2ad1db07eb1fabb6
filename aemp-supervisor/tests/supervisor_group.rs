//! Group restarts (one-for-all, rest-for-one) with OTP's semantics: every
//! child of the group that is still in the spec runs again, in spec
//! order, stopped ones included; a start that fails in the middle holds
//! back the children after it until it succeeds.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aemp::{msg, Node, Reason};
use aemp_supervisor::{ChildSpec, ChildStatus, Intensity, Restart, Strategy, Supervisor, SupervisorSpec};
use common::{collector, down, next, node, up, within, worker};
use tokio::sync::mpsc::UnboundedReceiver;

fn lenient() -> Intensity {
    Intensity::new(100, Duration::from_secs(3600))
}

/// The statuses of a supervisor's children, by ID.
async fn statuses(sup: &Supervisor) -> Vec<(String, ChildStatus)> {
    within(sup.which_children()).await.unwrap().into_iter().map(|c| (c.id, c.status)).collect()
}

#[tokio::test]
async fn a_group_restart_starts_stopped_children_again_in_spec_order() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    // one_for_all: t exits normally (transient: left stopped), h is
    // stopped by hand, tmp is temporary; then z crashes.
    let spec = SupervisorSpec::new(Strategy::OneForAll)
        .intensity(lenient())
        .child(worker("a", &c))
        .child(worker("t", &c).restart(Restart::Transient))
        .child(worker("h", &c))
        .child(worker("tmp", &c).restart(Restart::Temporary))
        .child(worker("z", &c));
    let sup = Supervisor::start(&n, spec).await.unwrap();
    for name in ["a", "t", "h", "tmp"] {
        up(&mut rx, name).await;
    }
    let pz = up(&mut rx, "z").await;
    let pt = within(sup.which_children()).await.unwrap()[1].port.clone().unwrap();
    let t_gone = n.dead(&pt);
    n.kil(&pt, Reason::normal());
    within(t_gone).await;
    within(sup.terminate_child("h")).await.unwrap();
    down(&mut rx, "h").await;
    assert_eq!(
        statuses(&sup).await[1..3],
        [("t".into(), ChildStatus::Stopped), ("h".into(), ChildStatus::Stopped)]
    );

    n.snd(&pz, msg!["crash"]);
    // The running siblings stop, last started first (the temporary one for
    // good), then every other child of the group starts, in spec order.
    down(&mut rx, "tmp").await;
    down(&mut rx, "a").await;
    for name in ["a", "t", "h", "z"] {
        up(&mut rx, name).await;
    }
    let all: Vec<_> =
        statuses(&sup).await.into_iter().map(|(id, s)| (id, s == ChildStatus::Running)).collect();
    assert_eq!(all, [("a".into(), true), ("t".into(), true), ("h".into(), true), ("z".into(), true)]);

    // rest_for_one: the same for the children after the one that failed.
    within(sup.stop()).await.unwrap();
    while next(&mut rx).await != msg!["down", "a"] {}
    let spec = SupervisorSpec::new(Strategy::RestForOne)
        .intensity(lenient())
        .child(worker("a", &c))
        .child(worker("b", &c).restart(Restart::Transient))
        .child(worker("c", &c));
    let sup = Supervisor::start(&n, spec).await.unwrap();
    let pa = up(&mut rx, "a").await;
    let pb = up(&mut rx, "b").await;
    up(&mut rx, "c").await;
    let b_gone = n.dead(&pb);
    n.kil(&pb, Reason::normal());
    within(b_gone).await;
    n.snd(&pa, msg!["crash"]);
    down(&mut rx, "c").await;
    for name in ["a", "b", "c"] {
        up(&mut rx, name).await;
    }
    within(sup.stop()).await.unwrap();
    n.shutdown().await;
}

/// Registers `Test::flaky [collector, name]` on `node`: a worker whose
/// start fails (reporting `["failed", name]`) while `failures` is above 0,
/// counting it down.
fn flaky(node: &Node) -> Arc<AtomicU32> {
    let failures = Arc::new(AtomicU32::new(0));
    let left = failures.clone();
    node.register("Test::flaky", move |ctx, args| -> aemp::Result<()> {
        let collector = args.port(0)?;
        let name: String = args.get(1)?;
        if left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            ctx.snd(&collector, msg!["failed", &name]);
            return Err(aemp::Error::Die("flaky start".into()));
        }
        let me = ctx.self_id();
        ctx.snd(&collector, msg!["up", &name, &me]);
        ctx.rcv_tag(&me, "shutdown", move |ctx, _m| {
            ctx.snd(&collector, msg!["down", &name]);
            ctx.kil_self(Reason::normal());
        });
        Ok(())
    });
    failures
}

/// The next report, as `"up b"`, `"down c"`, `"failed b"`.
async fn report(rx: &mut UnboundedReceiver<aemp::Msg>) -> String {
    let m = next(rx).await;
    format!("{} {}", m.tag().unwrap(), m.str(1).unwrap())
}

/// The next `n` reports.
async fn reports(rx: &mut UnboundedReceiver<aemp::Msg>, n: usize) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..n {
        seen.push(report(rx).await);
    }
    seen
}

/// A supervisor of children a, b (`Test::flaky`) and c; their ports once
/// they run.
async fn start_abc(
    n: &Node,
    strategy: Strategy,
    c: &aemp::PortId,
    rx: &mut UnboundedReceiver<aemp::Msg>,
) -> (Supervisor, [aemp::PortId; 3]) {
    let spec = SupervisorSpec::new(strategy)
        .intensity(lenient())
        .child(worker("a", c))
        .child(ChildSpec::new("b", "Test::flaky").args(msg![c, "b"]))
        .child(worker("c", c));
    let sup = Supervisor::start(n, spec).await.unwrap();
    (sup, [up(rx, "a").await, up(rx, "b").await, up(rx, "c").await])
}

#[tokio::test]
async fn a_failed_start_in_a_group_restart_holds_back_the_children_after_it() {
    let n = node().await;
    let failures = flaky(&n);
    let (c, mut rx) = collector(&n);
    let rx = &mut rx;
    // rest_for_one: a crashes, b's restart fails once; c waits for b.
    let (sup, [pa, _, _]) = start_abc(&n, Strategy::RestForOne, &c, rx).await;
    failures.store(1, Ordering::SeqCst);
    n.snd(&pa, msg!["crash"]);
    assert_eq!(reports(rx, 6).await, ["down c", "down b", "up a", "failed b", "up b", "up c"]);
    let kids = within(sup.which_children()).await.unwrap();
    assert!(kids.iter().all(|k| k.status == ChildStatus::Running), "{kids:?}");
    assert_eq!(kids.iter().map(|k| k.total_restarts).collect::<Vec<_>>(), [1, 2, 2]);
    within(sup.stop()).await.unwrap();
    reports(rx, 3).await;

    // one_for_all: the retry is a group restart of its own, as in OTP: a,
    // started before b, is stopped and started again; c only runs once b
    // does.
    let (sup, [_, _, pc]) = start_abc(&n, Strategy::OneForAll, &c, rx).await;
    failures.store(1, Ordering::SeqCst);
    n.snd(&pc, msg!["crash"]);
    let expected = ["down b", "down a", "up a", "failed b", "down a", "up a", "up b", "up c"];
    assert_eq!(reports(rx, 8).await, expected);
    within(sup.stop()).await.unwrap();
    n.shutdown().await;
}
