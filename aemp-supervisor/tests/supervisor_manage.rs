//! Managing children by hand, as OTP users do: terminate, restart, delete,
//! count and list them; start timeouts; and what stopping or removing a
//! child means while it waits between restart attempts.

mod common;

use std::time::Duration;

use aemp::{msg, Reason};
use aemp_supervisor::{
    root_cause, Backoff, ChildCounts, ChildSpec, ChildStatus, Error, EventKind, EventStream, Intensity,
    Restart, Strategy, Supervisor, SupervisorSpec, MAX_RESTARTS,
};
use common::{collector, down, event_of, node, up, within, worker};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn counts(specs: usize, active: usize, supervisors: usize) -> ChildCounts {
    let mut c = ChildCounts::default();
    (c.specs, c.active, c.supervisors, c.workers) = (specs, active, supervisors, specs - supervisors);
    c
}

/// Starts a supervisor in a task, so that the test can act meanwhile.
fn start_in_background(
    n: &aemp::Node,
    spec: SupervisorSpec,
) -> tokio::task::JoinHandle<aemp_supervisor::Result<Supervisor>> {
    let n = n.clone();
    tokio::spawn(async move { Supervisor::start(&n, spec).await })
}

fn status(kids: &[aemp_supervisor::ChildInfo], id: &str) -> Option<ChildStatus> {
    kids.iter().find(|k| k.id == id).map(|k| k.status)
}

#[tokio::test]
async fn terminate_restart_delete_and_count_children_as_in_otp() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(worker("a", &c))
        .child(worker("b", &c))
        .child(worker("tmp", &c).restart(Restart::Temporary))
        .child(ChildSpec::supervisor("inner", SupervisorSpec::new(Strategy::OneForOne)));
    let sup = Supervisor::start(&n, spec).await.unwrap();
    let pa = up(&mut rx, "a").await;
    up(&mut rx, "b").await;
    up(&mut rx, "tmp").await;
    assert_eq!(within(sup.count_children()).await.unwrap(), counts(4, 4, 1));

    // terminate_child stops the child and keeps its spec; again is a no-op.
    within(sup.terminate_child("b")).await.unwrap();
    down(&mut rx, "b").await;
    let kids = within(sup.which_children()).await.unwrap();
    assert_eq!((status(&kids, "b"), kids[1].port.as_ref()), (Some(ChildStatus::Stopped), None));
    within(sup.terminate_child("b")).await.unwrap();
    assert_eq!(within(sup.count_children()).await.unwrap(), counts(4, 3, 1));

    // A running child can be neither restarted nor deleted.
    let not_stopped =
        |r| matches!(r, Err(Error::ChildNotStopped { ref id, status: ChildStatus::Running }) if id == "a");
    assert!(not_stopped(within(sup.restart_child("a")).await.map(|_| ())));
    assert!(not_stopped(within(sup.delete_child("a")).await));

    // restart_child starts the stopped one again.
    let pb = within(sup.restart_child("b")).await.unwrap();
    assert_eq!(up(&mut rx, "b").await, pb);
    let kids = within(sup.which_children()).await.unwrap();
    assert_eq!((status(&kids, "b"), kids[1].total_restarts), (Some(ChildStatus::Running), 0));

    // A temporary child is forgotten once terminated, as in OTP.
    within(sup.terminate_child("tmp")).await.unwrap();
    down(&mut rx, "tmp").await;
    assert_eq!(status(&within(sup.which_children()).await.unwrap(), "tmp"), None);

    // By port, then delete: the spec is gone.
    within(sup.terminate_child(&pa)).await.unwrap();
    down(&mut rx, "a").await;
    within(sup.delete_child("a")).await.unwrap();
    let ids: Vec<_> = within(sup.which_children()).await.unwrap().into_iter().map(|k| k.id).collect();
    assert_eq!(ids, ["b", "inner"]);
    assert!(matches!(within(sup.restart_child("a")).await, Err(Error::NoSuchChild(id)) if id == "a"));
    assert!(matches!(within(sup.terminate_child(&pa)).await, Err(Error::NoSuchChild(_))));
    assert_eq!(within(sup.count_children()).await.unwrap(), counts(2, 2, 1));
    within(sup.stop()).await.unwrap();
    n.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn which_children_tells_recent_restarts_from_all_restarts_and_the_next_attempt() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let mut events = EventStream::new(&n);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(Intensity::new(5, secs(10)))
        .backoff(Backoff::new(secs(1), secs(4)).random_factor(0.0).reset_after(secs(3600)))
        .observer(events.port())
        .child(worker("a", &c))
        .child(worker("b", &c));
    let sup = Supervisor::start(&n, spec).await.unwrap();
    let mut pa = up(&mut rx, "a").await;
    up(&mut rx, "b").await;
    for _ in 0..2 {
        n.snd(&pa, msg!["crash"]);
        event_of(&mut events, "restarting", "a").await;
        pa = up(&mut rx, "a").await;
    }
    let restarts = |i: &aemp_supervisor::SupervisorInfo| {
        let a = &i.children[0];
        (i.recent_restarts, i.total_restarts, a.recent_restarts, a.total_restarts)
    };
    assert_eq!(restarts(&within(sup.info()).await.unwrap()), (2, 2, 2, 2));
    // Past the intensity period the recent restarts are gone, not the total.
    tokio::time::sleep(secs(11)).await;
    assert_eq!(restarts(&within(sup.info()).await.unwrap()), (0, 2, 0, 2));

    // Backing off: the time until the next attempt.
    n.snd(&pa, msg!["crash"]);
    let EventKind::Restarting { delay, .. } = event_of(&mut events, "restarting", "a").await else {
        unreachable!()
    };
    assert_eq!(delay, secs(4));
    let kids = within(sup.which_children()).await.unwrap();
    let next = kids[0].next_attempt_in.expect("a waits for its next attempt");
    assert_eq!(kids[0].status, ChildStatus::Backoff);
    assert!(!next.is_zero() && next <= delay, "{next:?}");
    assert_eq!(kids[1].next_attempt_in, None);
    up(&mut rx, "a").await;
    assert_eq!(restarts(&within(sup.info()).await.unwrap()), (1, 3, 1, 3));
    within(sup.stop()).await.unwrap();
    n.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_child_that_does_not_confirm_its_start_in_time_is_killed_and_counts_as_failed() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let deferred = |id: &str| ChildSpec::new(id, "Test::deferred").args(msg![&c, id]).start_timeout(secs(2));

    // At boot: the supervisor's start fails with the child's timeout.
    let spec = SupervisorSpec::new(Strategy::OneForOne).child(deferred("slow"));
    let starting = start_in_background(&n, spec);
    let slow = up(&mut rx, "slow").await;
    let slow_dead = n.dead(&slow);
    match within(starting).await.unwrap() {
        Err(Error::StartFailed { id, reason }) => {
            assert_eq!(id, "slow");
            assert_eq!(reason.kind(), Some("start_timeout"), "{reason}");
            assert_eq!(within(slow_dead).await, reason, "the child was killed with it");
        }
        other => panic!("expected a failed start, got {other:?}"),
    }

    // A start that is confirmed in time succeeds; a restart that is not
    // counts as one more exit: here one too many.
    let mut events = EventStream::new(&n);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(Intensity::new(1, secs(3600)))
        .observer(events.port())
        .child(deferred("d"));
    let starting = start_in_background(&n, spec);
    let pd = up(&mut rx, "d").await;
    n.snd(&pd, msg!["ready"]);
    let sup = within(starting).await.unwrap().unwrap();
    let dead = sup.dead();
    n.kil(&pd, msg!["boom"]);
    up(&mut rx, "d").await;
    let EventKind::StartFailed { reason, .. } = event_of(&mut events, "start_failed", "d").await else {
        unreachable!()
    };
    assert_eq!(reason.kind(), Some("start_timeout"));
    let r = within(dead).await;
    assert_eq!(r.kind(), Some(MAX_RESTARTS), "{r}");
    let cause = root_cause(&r);
    assert_eq!((cause.path, cause.reason), (vec!["d".to_owned()], reason));
    n.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn stopping_or_removing_a_child_between_restart_attempts_cancels_the_attempt() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let mut events = EventStream::new(&n);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .backoff(Backoff::new(secs(10), secs(10)).random_factor(0.0))
        .observer(events.port())
        .child(worker("a", &c))
        .child(worker("b", &c));
    let sup = Supervisor::start(&n, spec).await.unwrap();
    let pa = up(&mut rx, "a").await;
    let pb = up(&mut rx, "b").await;

    n.snd(&pa, msg!["crash"]);
    event_of(&mut events, "restarting", "a").await;
    // Neither restarted nor deleted while it waits: it is not stopped.
    let backing_off =
        |r: Result<(), Error>| matches!(r, Err(Error::ChildNotStopped { status: ChildStatus::Backoff, .. }));
    assert!(backing_off(within(sup.restart_child("a")).await.map(|_| ())));
    assert!(backing_off(within(sup.delete_child("a")).await));
    // Terminated: the pending attempt is cancelled, the spec kept.
    within(sup.terminate_child("a")).await.unwrap();
    assert_eq!(
        event_of(&mut events, "stopped", "a").await,
        EventKind::Stopped { id: "a".into(), reason: Reason::from(msg!["shutdown", "restart cancelled"]) }
    );
    // Removed: cancelled too, and forgotten.
    n.snd(&pb, msg!["crash"]);
    event_of(&mut events, "restarting", "b").await;
    within(sup.remove_child("b")).await.unwrap();
    event_of(&mut events, "removed", "b").await;

    tokio::time::sleep(secs(60)).await;
    assert!(rx.try_recv().is_err(), "nothing was started");
    let kids = within(sup.which_children()).await.unwrap();
    assert_eq!(
        kids.iter().map(|k| (k.id.as_str(), k.status)).collect::<Vec<_>>(),
        [("a", ChildStatus::Stopped)]
    );
    let pa = within(sup.restart_child("a")).await.unwrap();
    assert_eq!(up(&mut rx, "a").await, pa);
    within(sup.stop()).await.unwrap();
    n.shutdown().await;
}
