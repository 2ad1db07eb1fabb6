//! The supervisor on one node: strategies, restart types, intensity and
//! escalation, failed starts, dynamic children, shutdown, introspection.
//! Faults are real: panics in callbacks, kills with normal and abnormal
//! reasons, init functions that fail.

mod common;

use std::time::Duration;

use aemp::{msg, Reason};
use aemp_supervisor::{
    ChildKind, ChildSpec, ChildStatus, Error, EventKind, EventStream, Intensity, Restart, Shutdown, Strategy,
    Supervisor, SupervisorSpec, MAX_RESTARTS,
};
use common::{collector, death, down, event_of, event_where, node, up, within, worker};

fn hour() -> Duration {
    Duration::from_secs(3600)
}

#[tokio::test]
async fn children_start_in_spec_order_and_stop_in_reverse() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(worker("a", &c))
        .child(worker("b", &c))
        .child(worker("c", &c));
    let sup = Supervisor::start(&n, spec).await.unwrap();
    for name in ["a", "b", "c"] {
        up(&mut rx, name).await;
    }
    within(sup.stop()).await.unwrap();
    for name in ["c", "b", "a"] {
        down(&mut rx, name).await;
    }
    n.shutdown().await;
}

#[tokio::test]
async fn one_for_one_restarts_only_the_child_that_panicked() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(worker("a", &c))
        .child(worker("b", &c))
        .child(worker("c", &c));
    let sup = Supervisor::start(&n, spec).await.unwrap();
    let pa = up(&mut rx, "a").await;
    let pb = up(&mut rx, "b").await;
    let pc = up(&mut rx, "c").await;
    let died = n.dead(&pb);
    n.snd(&pb, msg!["crash"]);
    let reason = within(died).await;
    assert_eq!(reason.kind(), Some("die"));
    assert!(reason.to_string().contains("crash requested"), "{reason}");
    // The very next report is b's restart: nobody was stopped before it.
    let pb2 = up(&mut rx, "b").await;
    assert_ne!(pb, pb2, "a restart makes a new port");
    let kids = within(sup.which_children()).await.unwrap();
    let ids: Vec<_> = kids.iter().map(|k| (k.id.as_str(), k.total_restarts)).collect();
    assert_eq!(ids, [("a", 0), ("b", 1), ("c", 0)]);
    assert_eq!(kids[0].port.as_ref(), Some(&pa));
    assert_eq!(kids[2].port.as_ref(), Some(&pc));
    assert_eq!(kids[1].last_exit.as_ref(), Some(&reason));
    assert!(rx.try_recv().is_err(), "no other child was touched");
    within(sup.stop()).await.unwrap();
    n.shutdown().await;
}

#[tokio::test]
async fn one_for_all_stops_the_others_in_reverse_then_restarts_all_in_order() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let spec = SupervisorSpec::new(Strategy::OneForAll)
        .child(worker("a", &c))
        .child(worker("b", &c))
        .child(worker("c", &c));
    let sup = Supervisor::start(&n, spec).await.unwrap();
    up(&mut rx, "a").await;
    let pb = up(&mut rx, "b").await;
    up(&mut rx, "c").await;
    n.kil(&pb, msg!["killed", "abnormally"]);
    down(&mut rx, "c").await;
    down(&mut rx, "a").await;
    for name in ["a", "b", "c"] {
        up(&mut rx, name).await;
    }
    let kids = within(sup.which_children()).await.unwrap();
    assert!(kids.iter().all(|k| k.total_restarts == 1), "{kids:?}");
    within(sup.stop()).await.unwrap();
    n.shutdown().await;
}

#[tokio::test]
async fn rest_for_one_restarts_the_failed_child_and_those_started_after_it() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let spec = SupervisorSpec::new(Strategy::RestForOne)
        .child(worker("a", &c))
        .child(worker("b", &c))
        .child(worker("c", &c))
        .child(worker("d", &c));
    let sup = Supervisor::start(&n, spec).await.unwrap();
    let pa = up(&mut rx, "a").await;
    let pb = up(&mut rx, "b").await;
    up(&mut rx, "c").await;
    up(&mut rx, "d").await;
    n.snd(&pb, msg!["crash"]);
    down(&mut rx, "d").await;
    down(&mut rx, "c").await;
    for name in ["b", "c", "d"] {
        up(&mut rx, name).await;
    }
    let kids = within(sup.which_children()).await.unwrap();
    assert_eq!(kids.iter().map(|k| k.total_restarts).collect::<Vec<_>>(), [0, 1, 1, 1]);
    assert_eq!(kids[0].port.as_ref(), Some(&pa), "a kept running");
    within(sup.stop()).await.unwrap();
    n.shutdown().await;
}

/// The decision that follows an exit of child `id`: restarting, left
/// stopped, removed or gave up.
async fn decision(events: &mut EventStream, id: &str) -> EventKind {
    event_where(events, |k| {
        k.child() == id && matches!(k.as_str(), "restarting" | "left_stopped" | "removed" | "gave_up")
    })
    .await
    .kind
}

#[tokio::test]
async fn permanent_transient_and_temporary_children_after_normal_and_abnormal_exits() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let mut events = EventStream::new(&n);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(Intensity::new(10, hour()))
        .observer(events.port())
        .child(worker("p", &c))
        .child(worker("t", &c).restart(Restart::Transient))
        .child(worker("s", &c).restart(Restart::Transient))
        .child(worker("tmp", &c).restart(Restart::Temporary));
    let sup = Supervisor::start(&n, spec).await.unwrap();
    let pp = up(&mut rx, "p").await;
    let pt = up(&mut rx, "t").await;
    let ps = up(&mut rx, "s").await;
    let ptmp = up(&mut rx, "tmp").await;

    // Transient, abnormal exit: restarted.
    n.kil(&pt, msg!["boom"]);
    let e = event_of(&mut events, "exited", "t").await;
    assert_eq!(e, EventKind::Exited { id: "t".into(), reason: Reason::from(msg!["boom"]) });
    assert!(matches!(decision(&mut events, "t").await, EventKind::Restarting { .. }));
    let pt = up(&mut rx, "t").await;

    // Transient, normal exit: left stopped.
    n.kil(&pt, Reason::normal());
    let e = event_of(&mut events, "exited", "t").await;
    assert!(matches!(e, EventKind::Exited { reason, .. } if reason.is_normal()));
    assert_eq!(decision(&mut events, "t").await, EventKind::LeftStopped { id: "t".into() });

    // Transient, ("shutdown", ...) exit: also left stopped.
    n.kil(&ps, msg!["shutdown", "by an operator"]);
    assert_eq!(decision(&mut events, "s").await, EventKind::LeftStopped { id: "s".into() });

    // Permanent, normal exit: restarted all the same.
    n.kil(&pp, Reason::normal());
    assert!(matches!(decision(&mut events, "p").await, EventKind::Restarting { .. }));
    up(&mut rx, "p").await;

    // Temporary, abnormal exit: forgotten.
    n.snd(&ptmp, msg!["crash"]);
    assert_eq!(decision(&mut events, "tmp").await, EventKind::Removed { id: "tmp".into() });

    let kids = within(sup.which_children()).await.unwrap();
    let seen: Vec<_> = kids.iter().map(|k| (k.id.as_str(), k.status, k.total_restarts)).collect();
    assert_eq!(
        seen,
        [("p", ChildStatus::Running, 1), ("t", ChildStatus::Stopped, 1), ("s", ChildStatus::Stopped, 0)]
    );
    within(sup.stop()).await.unwrap();
    n.shutdown().await;
}

#[tokio::test]
async fn past_its_restart_intensity_a_supervisor_stops_its_children_and_exits_with_max_restarts() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(Intensity::new(2, hour()))
        .child(worker("a", &c))
        .child(worker("b", &c));
    let sup = Supervisor::start(&n, spec).await.unwrap();
    let dead = sup.dead();
    let mut pa = up(&mut rx, "a").await;
    up(&mut rx, "b").await;
    for _ in 0..2 {
        n.snd(&pa, msg!["crash"]);
        pa = up(&mut rx, "a").await;
    }
    n.snd(&pa, msg!["crash"]);
    // b is stopped in an orderly way before the supervisor exits.
    down(&mut rx, "b").await;
    let reason = within(dead).await;
    assert_eq!(reason.kind(), Some(MAX_RESTARTS), "{reason}");
    let v = reason.values();
    assert_eq!(v[1].as_str().unwrap(), "restart intensity exceeded: 3 restarts in 3600s (at most 2 allowed)");
    assert_eq!(v[2].as_str().unwrap(), "a");
    assert_eq!(v[3].as_array().unwrap()[0].as_str(), Some("die"));
    n.shutdown().await;
}

#[tokio::test]
async fn a_nested_supervisor_that_gives_up_is_restarted_by_its_parent_which_escalates_in_turn() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let mut events = EventStream::new(&n);
    let inner =
        SupervisorSpec::new(Strategy::OneForOne).intensity(Intensity::new(0, hour())).child(worker("w", &c));
    let top = SupervisorSpec::new(Strategy::OneForOne)
        .intensity(Intensity::new(1, hour()))
        .observer(events.port())
        .child(worker("x", &c))
        .child(ChildSpec::supervisor("inner", inner));
    let sup = Supervisor::start(&n, top).await.unwrap();
    let top_dead = sup.dead();
    up(&mut rx, "x").await;
    let pw = up(&mut rx, "w").await;
    // The inner supervisor's start was confirmed after its own children.
    let EventKind::Started { port: inner_port, .. } = event_of(&mut events, "started", "inner").await else {
        unreachable!()
    };
    let kids = within(sup.which_children()).await.unwrap();
    assert_eq!(kids[1].kind, ChildKind::Supervisor);
    assert_eq!(kids[1].port.as_ref(), Some(&inner_port));
    let inner_info = within(Supervisor::attach(&n, inner_port.clone()).info()).await.unwrap();
    assert_eq!(inner_info.parent.as_ref(), Some(sup.port()));

    // w crashes: the inner supervisor may not restart anything, gives up,
    // and the top one restarts it (and with it w).
    n.snd(&pw, msg!["crash"]);
    let EventKind::Exited { reason: why, .. } = event_of(&mut events, "exited", "inner").await else {
        unreachable!()
    };
    assert_eq!(why.kind(), Some(MAX_RESTARTS));
    assert_eq!(why.values()[2].as_str(), Some("w"));
    assert!(matches!(decision(&mut events, "inner").await, EventKind::Restarting { .. }));
    let pw = up(&mut rx, "w").await;
    let EventKind::Started { port: again, .. } = event_of(&mut events, "started", "inner").await else {
        unreachable!()
    };
    assert_ne!(again, inner_port);

    // Again: now the top supervisor is past its own intensity and escalates.
    n.snd(&pw, msg!["crash"]);
    down(&mut rx, "x").await;
    let reason = within(top_dead).await;
    assert_eq!(reason.kind(), Some(MAX_RESTARTS), "{reason}");
    assert_eq!(reason.values()[2].as_str(), Some("inner"));
    let inner_reason = reason.values()[3].as_array().unwrap();
    assert_eq!(inner_reason[0].as_str(), Some(MAX_RESTARTS));
    n.shutdown().await;
}

#[tokio::test]
async fn a_child_that_fails_to_start_is_reported_with_its_reason() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(worker("a", &c))
        .child(ChildSpec::new("bad", "Test::failing"))
        .child(worker("never", &c));
    match within(Supervisor::start(&n, spec)).await {
        Err(Error::StartFailed { id, reason }) => {
            assert_eq!(id, "bad");
            assert_eq!(reason, Reason::die("cannot start"));
        }
        other => panic!("expected a failed start, got {other:?}"),
    }
    // a had started and is stopped again; the child after bad never started.
    up(&mut rx, "a").await;
    down(&mut rx, "a").await;

    // At run time: the error comes back and the child is not kept.
    let sup =
        Supervisor::start(&n, SupervisorSpec::new(Strategy::OneForOne).child(worker("a", &c))).await.unwrap();
    up(&mut rx, "a").await;
    match within(sup.start_child(ChildSpec::new("ghost", "No::Such::init"))).await {
        Err(Error::StartFailed { id, reason }) => {
            assert_eq!(id, "ghost");
            assert_eq!(reason.kind(), Some("die"));
            let text = reason.to_string();
            assert!(text.contains("No::Such::init") && text.contains("register it there"), "{text}");
        }
        other => panic!("expected a failed start, got {other:?}"),
    }
    match within(sup.start_child(worker("a", &c))).await {
        Err(Error::DuplicateChild(id)) => assert_eq!(id, "a"),
        other => panic!("expected a duplicate, got {other:?}"),
    }
    let kids = within(sup.which_children()).await.unwrap();
    assert_eq!(kids.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(), ["a"]);
    within(sup.stop()).await.unwrap();
    n.shutdown().await;
}

#[tokio::test]
async fn dynamic_children_are_added_and_removed_at_run_time() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    // simple_one_for_one: children from a template, args appended.
    let template = ChildSpec::new("job", "Test::worker").args(msg![&c]);
    let sup = Supervisor::start(&n, SupervisorSpec::simple_one_for_one(template)).await.unwrap();
    assert!(within(sup.which_children()).await.unwrap().is_empty(), "the template is not started");
    let mut ports = Vec::new();
    for name in ["j1", "j2", "j3"] {
        let (id, port) = within(sup.start_dynamic(msg![name])).await.unwrap();
        assert_eq!(up(&mut rx, name).await, port);
        ports.push((id, port));
    }
    assert_eq!(ports.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(), ["job-1", "job-2", "job-3"]);
    n.snd(&ports[1].1, msg!["crash"]);
    up(&mut rx, "j2").await;
    within(sup.remove_child("job-1")).await.unwrap();
    down(&mut rx, "j1").await;
    let kids = within(sup.which_children()).await.unwrap();
    assert_eq!(
        kids.iter().map(|k| (k.id.as_str(), k.total_restarts)).collect::<Vec<_>>(),
        [("job-2", 1), ("job-3", 0)]
    );
    assert!(matches!(within(sup.start_child(worker("x", &c))).await, Err(Error::Unsupported(_))));
    assert!(matches!(within(sup.remove_child("job-1")).await, Err(Error::NoSuchChild(_))));
    within(sup.stop()).await.unwrap();
    down(&mut rx, "j3").await;
    down(&mut rx, "j2").await;

    // Any strategy takes children at run time; they stop first.
    let sup = Supervisor::start(&n, SupervisorSpec::new(Strategy::RestForOne).child(worker("a", &c)))
        .await
        .unwrap();
    up(&mut rx, "a").await;
    let pd = within(sup.start_child(worker("d", &c))).await.unwrap();
    assert_eq!(up(&mut rx, "d").await, pd);
    assert!(matches!(within(sup.start_dynamic(msg![])).await, Err(Error::Unsupported(_))));
    within(sup.stop()).await.unwrap();
    down(&mut rx, "d").await;
    down(&mut rx, "a").await;
    n.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_child_that_ignores_shutdown_is_killed_after_its_timeout_and_kill_is_immediate() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let mut events = EventStream::new(&n);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .observer(events.port())
        .child(worker("polite", &c))
        .child(ChildSpec::new("brutal", "Test::stubborn").args(msg![&c, "brutal"]).shutdown(Shutdown::Kill))
        .child(
            ChildSpec::new("stubborn", "Test::stubborn")
                .args(msg![&c, "stubborn"])
                .shutdown(Shutdown::Timeout(Duration::from_secs(10))),
        );
    let sup = Supervisor::start(&n, spec).await.unwrap();
    up(&mut rx, "polite").await;
    let brutal = up(&mut rx, "brutal").await;
    let stubborn = up(&mut rx, "stubborn").await;
    let (d_brutal, d_stubborn) = (n.dead(&brutal), n.dead(&stubborn));
    within(sup.stop()).await.unwrap();
    assert_eq!(within(d_stubborn).await, Reason::from(msg!["shutdown", "timeout"]));
    assert_eq!(within(d_brutal).await, Reason::from(msg!["shutdown", "killed by supervisor"]));
    assert_eq!(common::next(&mut rx).await, msg!["asked", "stubborn"]);
    down(&mut rx, "polite").await;
    let mut order = Vec::new();
    while order.len() < 3 {
        order.push(event_where(&mut events, |k| k.as_str() == "stopped").await.kind.child().to_owned());
    }
    assert_eq!(order, ["stubborn", "brutal", "polite"]);
    n.shutdown().await;
}

#[tokio::test]
async fn which_children_reports_each_child_with_its_status_and_counts() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(worker("a", &c))
        .child(worker("b", &c).restart(Restart::Temporary));
    let sup = Supervisor::start(&n, spec).await.unwrap();
    let pa = up(&mut rx, "a").await;
    let info = within(sup.info()).await.unwrap();
    assert_eq!(&info.port, sup.port());
    assert_eq!(info.strategy, Strategy::OneForOne);
    assert_eq!(info.parent, None);
    assert_eq!((info.recent_restarts, info.total_restarts), (0, 0));
    let a = &info.children[0];
    assert_eq!((a.id.as_str(), a.init.as_str(), a.status), ("a", "Test::worker", ChildStatus::Running));
    assert_eq!((a.port.as_ref(), a.node.as_ref()), (Some(&pa), Some(n.id())));
    assert_eq!(
        (a.kind, a.restart, a.total_restarts, a.next_attempt_in, a.last_exit.as_ref()),
        (ChildKind::Worker, Restart::Permanent, 0, None, None)
    );
    assert_eq!(info.children[1].restart, Restart::Temporary);
    // The same data as plain values, for other languages and the aemp tool.
    let raw = within(n.call(sup.port(), msg!["which_children"], common::PATIENCE)).await.unwrap();
    let map = raw.at(0).unwrap().as_map().unwrap();
    assert_eq!(map["strategy"].as_str(), Some("one_for_one"));
    assert_eq!(map["children"].as_array().unwrap()[0].as_map().unwrap()["status"].as_str(), Some("running"));
    within(sup.stop()).await.unwrap();
    assert!(matches!(within(sup.which_children()).await, Err(Error::SupervisorDead { .. })));
    n.shutdown().await;
}

#[tokio::test]
async fn a_child_dies_with_its_supervisor() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let spec = SupervisorSpec::new(Strategy::OneForOne).child(worker("a", &c));
    let sup = Supervisor::start(&n, spec).await.unwrap();
    let pa = up(&mut rx, "a").await;
    n.kil(sup.port(), msg!["supervisor", "crashed"]);
    assert_eq!(death(&n, &pa).await, Reason::from(msg!["supervisor", "crashed"]));

    // Also when the supervisor is killed normally: the child gets a shutdown.
    let sup =
        Supervisor::start(&n, SupervisorSpec::new(Strategy::OneForOne).child(worker("a", &c))).await.unwrap();
    let pa = up(&mut rx, "a").await;
    n.kil(sup.port(), Reason::normal());
    assert_eq!(death(&n, &pa).await.kind(), Some("shutdown"));
    n.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_whose_first_child_fails_at_once_always_tells_its_starter_why() {
    // The supervisor may die before its starter's monitor on it is in
    // place; its starter must still learn the child's reason.
    let n = node().await;
    for _ in 0..50 {
        let spec = SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::new("bad", "Test::failing"));
        match within(Supervisor::start(&n, spec)).await {
            Err(Error::StartFailed { id, reason }) => {
                assert_eq!((id.as_str(), reason), ("bad", Reason::die("cannot start")))
            }
            other => panic!("expected a failed start, got {other:?}"),
        }
    }
    n.shutdown().await;
}
