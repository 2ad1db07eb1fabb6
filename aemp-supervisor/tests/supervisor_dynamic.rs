//! Dynamic (simple-one-for-one) supervisors: per-child arguments, a limit
//! on the number of children, removal by port, and a shutdown that stops
//! every child at once within one shared deadline. How their costs scale
//! with the number of children is measured by `benches/dynamic.rs`.

mod common;

use std::time::Duration;

use aemp::{msg, MonAction, Reason};
use aemp_supervisor::{ChildSpec, Error, Shutdown, Strategy, Supervisor, SupervisorSpec};
use common::{collector, down, next, node, up, within, worker};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn a_dynamic_supervisor_stops_its_children_all_at_once_within_one_deadline() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let deadline = Duration::from_secs(10);
    let template = ChildSpec::new("s", "Test::stubborn").args(msg![&c]).shutdown(Shutdown::Timeout(deadline));
    let sup = Supervisor::start(&n, SupervisorSpec::simple_one_for_one(template)).await.unwrap();
    let mut deaths = Vec::new();
    for name in ["s1", "s2", "s3"] {
        let (_, port) = within(sup.start_dynamic(msg![name])).await.unwrap();
        assert_eq!(up(&mut rx, name).await, port);
        n.mon(&port, MonAction::send(&c, msg!["dead", name])).keep();
        deaths.push(n.dead(&port));
    }
    let t0 = Instant::now();
    within(sup.stop()).await.unwrap();
    // Every child was asked before any was killed, and all were killed
    // when the one deadline they share passed.
    let mut seen = Vec::new();
    for _ in 0..6 {
        seen.push(next(&mut rx).await.tag().unwrap().to_owned());
    }
    assert_eq!(seen, ["asked", "asked", "asked", "dead", "dead", "dead"]);
    for d in deaths {
        assert_eq!(within(d).await, Reason::from(msg!["shutdown", "timeout"]));
    }
    let took = t0.elapsed();
    assert!(took >= deadline && took < 2 * deadline, "one deadline for all, not one each: {took:?}");
    n.shutdown().await;
}

#[tokio::test]
async fn max_children_limits_the_children_and_a_removal_frees_a_place() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let template = ChildSpec::new("job", "Test::worker").args(msg![&c]);
    let sup =
        Supervisor::start(&n, SupervisorSpec::simple_one_for_one(template).max_children(2)).await.unwrap();
    let (first, _) = within(sup.start_dynamic(msg!["j1"])).await.unwrap();
    within(sup.start_dynamic(msg!["j2"])).await.unwrap();
    assert!(matches!(within(sup.start_dynamic(msg!["j3"])).await, Err(Error::TooManyChildren { max: 2 })));
    within(sup.remove_child(first.as_str())).await.unwrap();
    within(sup.start_dynamic(msg!["j3"])).await.unwrap();
    for name in ["j1", "j2"] {
        up(&mut rx, name).await;
    }
    down(&mut rx, "j1").await;
    up(&mut rx, "j3").await;
    within(sup.stop()).await.unwrap();

    // The same limit for children added to any supervisor.
    let spec = SupervisorSpec::new(Strategy::OneForOne).max_children(2).child(worker("a", &c));
    let sup = Supervisor::start(&n, spec).await.unwrap();
    within(sup.start_child(worker("b", &c))).await.unwrap();
    assert!(matches!(within(sup.start_child(worker("c", &c))).await, Err(Error::TooManyChildren { max: 2 })));
    let too_many = SupervisorSpec::new(Strategy::OneForOne).max_children(0).child(worker("a", &c));
    assert!(matches!(Supervisor::start(&n, too_many).await, Err(Error::InvalidSpec(_))));
    within(sup.stop()).await.unwrap();
    n.shutdown().await;
}

#[tokio::test]
async fn dynamic_children_are_removed_by_port_as_well_as_by_id() {
    let n = node().await;
    let (c, mut rx) = collector(&n);
    let template = ChildSpec::new("job", "Test::worker").args(msg![&c]);
    let sup = Supervisor::start(&n, SupervisorSpec::simple_one_for_one(template)).await.unwrap();
    let mut ports = Vec::new();
    for name in ["j1", "j2", "j3"] {
        let (_, port) = within(sup.start_dynamic(msg![name])).await.unwrap();
        assert_eq!(up(&mut rx, name).await, port);
        ports.push(port);
    }
    within(sup.remove_child(&ports[0])).await.unwrap();
    down(&mut rx, "j1").await;
    // terminate_child forgets a dynamic child, as OTP does.
    within(sup.terminate_child(&ports[1])).await.unwrap();
    down(&mut rx, "j2").await;
    let ids: Vec<_> = within(sup.which_children()).await.unwrap().into_iter().map(|k| k.id).collect();
    assert_eq!(ids, ["job-3"]);
    assert!(matches!(within(sup.remove_child(&ports[0])).await, Err(Error::NoSuchChild(_))));
    assert!(matches!(within(sup.restart_child("job-3")).await, Err(Error::Unsupported(_))));
    assert!(matches!(within(sup.delete_child("job-3")).await, Err(Error::Unsupported(_))));
    within(sup.stop()).await.unwrap();
    down(&mut rx, "j3").await;
    n.shutdown().await;
}
