//! What a supervisor tells: typed, numbered events, all delivered before
//! its death is seen; reasons of nested supervisors unwrapped; and a
//! graceful stop that children get from a helper.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aemp::{msg, Reason};
use aemp_supervisor::{
    root_cause, ChildSpec, Error, Event, EventKind, EventStream, Intensity, Restart, Strategy, Supervisor,
    SupervisorSpec, MAX_RESTARTS,
};
use common::{collector, event_of, next, node, up, within, worker};

#[tokio::test]
async fn events_are_numbered_in_order_and_all_arrive_before_the_supervisor_is_seen_dead() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    // The observer keeps what it got; a monitor on the supervisor looks at
    // that the moment the death is seen.
    let got: Arc<Mutex<Vec<Event>>> = Arc::default();
    let keep = got.clone();
    let observer = n.port_with(move |_ctx, m| keep.lock().unwrap().push(Event::from_msg(&m).unwrap()));
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(Intensity::new(0, Duration::from_secs(3600)))
        .observer(&observer)
        .child(worker("a", &c))
        .child(worker("b", &c))
        .child(worker("c", &c));
    let sup = Supervisor::start(&n, spec).await.unwrap();
    let (tx, at_death) = tokio::sync::oneshot::channel();
    let look = got.clone();
    n.mon(sup.port(), move |r: Reason| {
        let _ = tx.send((r, look.lock().unwrap().clone()));
    })
    .keep();
    let pa = up(&mut rx, "a").await;
    n.snd(&pa, msg!["crash"]);
    let (reason, seen) = within(at_death).await.unwrap();
    assert_eq!(reason.kind(), Some(MAX_RESTARTS));
    // Every event was there already, in order, numbered without gaps.
    assert!(seen.iter().all(|e| &e.supervisor == sup.port()));
    assert_eq!(seen.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=seen.len() as u64).collect::<Vec<_>>());
    let kinds: Vec<_> = seen.iter().map(|e| (e.kind.as_str(), e.kind.child())).collect();
    assert_eq!(
        kinds,
        [
            ("started", "a"),
            ("started", "b"),
            ("started", "c"),
            ("exited", "a"),
            ("gave_up", "a"),
            ("stopped", "c"),
            ("stopped", "b"),
        ]
    );
    assert_eq!(seen[4].kind, EventKind::GaveUp { id: "a".into(), reason });
    n.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_cause_unwraps_the_reasons_of_nested_supervisors() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let never = || Intensity::new(0, Duration::from_secs(3600));
    let inner = SupervisorSpec::new(Strategy::OneForOne).intensity(never()).child(worker("w", &c));
    let top = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(never())
        .child(ChildSpec::supervisor("inner", inner));
    let sup = Supervisor::start(&n, top).await.unwrap();
    let dead = sup.dead();
    let pw = up(&mut rx, "w").await;
    n.kil(&pw, msg!["disk", "full"]);
    let reason = within(dead).await;
    let cause = root_cause(&reason);
    assert_eq!(cause.path, ["inner", "w"]);
    assert_eq!(cause.reason, Reason::from(msg!["disk", "full"]));

    // A child of a child supervisor that fails to start.
    let inner = SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::new("bad", "Test::failing"));
    let top = SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::supervisor("inner", inner));
    let err = within(Supervisor::start(&n, top)).await.unwrap_err();
    assert!(matches!(err, Error::StartFailed { ref id, .. } if id == "inner"), "{err}");
    let cause = err.root_cause().unwrap();
    assert_eq!(cause.path, ["inner", "bad"]);
    assert_eq!(cause.reason, Reason::die("cannot start"));
    // A reason no supervisor wrapped is its own root cause.
    assert_eq!(root_cause(&Reason::die("x")).path, Vec::<String>::new());
    n.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn on_shutdown_runs_the_cleanup_and_stops_the_child_in_an_orderly_way() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let mut events = EventStream::new(&n);
    let graceful =
        |id: &str| ChildSpec::new(id, "Test::graceful").args(msg![&c, id]).restart(Restart::Transient);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .observer(events.port())
        .child(graceful("g"))
        .child(graceful("h"));
    let sup = Supervisor::start(&n, spec).await.unwrap();
    let pg = up(&mut rx, "g").await;
    let ph = up(&mut rx, "h").await;
    // Stopped by its supervisor: cleanup, then an orderly exit, at once
    // (not killed when the 5 s default shutdown timeout runs out).
    let g_dead = n.dead(&pg);
    within(sup.terminate_child("g")).await.unwrap();
    assert_eq!(next(&mut rx).await, msg!["cleanup", "g"]);
    let stopped = Reason::from(msg!["shutdown", "stopped by supervisor"]);
    assert_eq!(within(g_dead).await, stopped);
    // Asked by someone else: the same orderly exit, so a transient child
    // is not restarted for it.
    n.snd(&ph, msg!["shutdown"]);
    assert_eq!(next(&mut rx).await, msg!["cleanup", "h"]);
    assert_eq!(
        event_of(&mut events, "exited", "h").await,
        EventKind::Exited { id: "h".into(), reason: stopped }
    );
    assert_eq!(event_of(&mut events, "left_stopped", "h").await, EventKind::LeftStopped { id: "h".into() });
    within(sup.stop()).await.unwrap();
    n.shutdown().await;
}
