//! Supervisors and children on different nodes, over real TCP on
//! 127.0.0.1 (port 0), in one process: remote children started by name,
//! links in both directions, lost nodes (shut down) and placement groups,
//! and the discovery data the `aemp` tool reads.

mod common;

use aemp::{msg, GroupEvent, Node, NodeId, PortId, Reason};
use aemp_supervisor::{
    ChildSpec, EventKind, EventStream, Placement, Strategy, Supervisor, SupervisorInfo, SupervisorSpec,
    DIRECTORY, GROUP,
};
use common::{collector, event_of, net_node, up, within, worker, PATIENCE};

/// Two public nodes that know each other's address.
async fn pair(a: &str, b: &str) -> (Node, Node) {
    let na = net_node(a, vec![]).await;
    let nb = net_node(b, vec![]).await;
    na.add_node_addr(nb.id(), nb.listen_addrs()[0].clone());
    nb.add_node_addr(na.id(), na.listen_addrs()[0].clone());
    (na, nb)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_child_is_started_by_name_restarted_there_and_dies_with_its_supervisor() {
    let (a, b) = pair("rc-a", "rc-b").await;
    let (c, mut rx) = collector(&a);
    let spec = SupervisorSpec::new(Strategy::OneForOne).child(worker("w", &c).on_node(b.id()));
    let sup = within(Supervisor::start(&a, spec)).await.unwrap();
    let pw = up(&mut rx, "w").await;
    assert_eq!(pw.node(), *b.id());
    let kids = within(sup.which_children()).await.unwrap();
    assert_eq!(kids[0].node.as_ref(), Some(b.id()));

    // A crash on b is seen on a, with the child's own reason, and the child
    // is started on b again.
    a.snd(&pw, msg!["crash"]);
    let pw2 = up(&mut rx, "w").await;
    assert_eq!(pw2.node(), *b.id());
    assert_ne!(pw, pw2);
    let kids = within(sup.which_children()).await.unwrap();
    assert_eq!(kids[0].total_restarts, 1);
    assert_eq!(kids[0].last_exit.as_ref().and_then(|r| r.kind().map(str::to_owned)).as_deref(), Some("die"));

    // The supervisor dies abnormally: the child on b follows (back-monitor).
    let gone = b.dead(&pw2);
    a.kil(sup.port(), msg!["supervisor", "crashed"]);
    assert_eq!(within(gone).await, Reason::from(msg!["supervisor", "crashed"]));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_supervisors_node_is_lost_its_remote_children_die() {
    let (a, b) = pair("ls-a", "ls-b").await;
    let (c, mut rx) = collector(&a);
    let spec = SupervisorSpec::new(Strategy::OneForOne).child(worker("w", &c).on_node(b.id())).child(
        ChildSpec::supervisor("inner", SupervisorSpec::new(Strategy::OneForOne).child(worker("x", &c)))
            .on_node(b.id()),
    );
    let _sup = within(Supervisor::start(&a, spec)).await.unwrap();
    let pw = up(&mut rx, "w").await;
    let px = up(&mut rx, "x").await;
    assert_eq!((pw.node(), px.node()), (b.id().clone(), b.id().clone()));
    let (dw, dx) = (b.dead(&pw), b.dead(&px));
    a.shutdown().await;
    let rw = within(dw).await;
    assert_eq!(rw.kind(), Some("transport_error"), "{rw}");
    assert_eq!(rw.values()[1].as_str(), Some("ls-a"));
    // The nested supervisor on b died the same way and took its child along.
    assert_eq!(within(dx).await.kind(), Some("transport_error"));
    b.shutdown().await;
}

/// Waits until `node` sees members of `group` on every node of `nodes`.
async fn await_group(node: &Node, group: &str, nodes: &[&NodeId]) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let id = node.mon_group(group, move |ev| {
        if let GroupEvent::Joined(p) = ev {
            let _ = tx.send(p.node());
        }
    });
    let mut seen = std::collections::HashSet::new();
    while !nodes.iter().all(|n| seen.contains(*n)) {
        seen.insert(within(rx.recv()).await.expect("group monitor"));
    }
    node.unmon_group(group, id);
}

/// A node seeded by `seed` with a port in the group "workers".
async fn worker_in_group(id: &str, seed: &str) -> Node {
    let n = net_node(id, vec![seed.to_owned()]).await;
    let presence = n.port_with(|_ctx, _m| {});
    n.register_group(&presence, "workers").unwrap();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_on_a_lost_node_is_restarted_on_another_node_of_its_group() {
    // Both workers join at once: each node brings up links to several
    // peers at the same moment.
    let a = net_node("gr-a", vec![]).await;
    let seed = a.listen_addrs()[0].clone();
    let (b, c) = tokio::join!(worker_in_group("gr-b", &seed), worker_in_group("gr-c", &seed));
    await_group(&a, "workers", &[b.id(), c.id()]).await;

    let (col, mut rx) = collector(&a);
    let mut events = EventStream::new(&a);
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .observer(events.port())
        .child(worker("svc", &col).in_group("workers"));
    let sup = within(Supervisor::start(&a, spec)).await.unwrap();
    let first = up(&mut rx, "svc").await;
    let (lost, other) = if first.node() == *b.id() { (&b, &c) } else { (&c, &b) };
    assert_eq!(first.node(), *lost.id());

    within(lost.shutdown()).await;
    let EventKind::Lost { node, reason, .. } = event_of(&mut events, "lost", "svc").await else {
        unreachable!()
    };
    assert_eq!(&node, lost.id());
    assert_eq!(reason.kind(), Some("transport_error"), "{reason}");
    assert!(matches!(event_of(&mut events, "restarting", "svc").await, EventKind::Restarting { .. }));
    let EventKind::Started { port: moved, .. } = event_of(&mut events, "started", "svc").await else {
        unreachable!()
    };
    assert_eq!(moved.node(), *other.id(), "restarted on the surviving node of the group");
    assert_eq!(up(&mut rx, "svc").await, moved);
    // And it serves.
    let pong = within(a.call(&moved, msg!["ping"], PATIENCE)).await.unwrap();
    assert_eq!(pong, msg!["pong", "svc", other.id()]);
    let kids = within(sup.which_children()).await.unwrap();
    assert_eq!((kids[0].total_restarts, kids[0].node.as_ref()), (1, Some(other.id())));
    within(sup.stop()).await.unwrap();
    within(a.shutdown()).await;
    within(other.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nodes_supervisors_are_listed_by_its_directory_port_and_describe_themselves() {
    let (a, b) = pair("dir-a", "dir-b").await;
    let (c, mut rx) = collector(&a);
    let inner = SupervisorSpec::new(Strategy::OneForAll).child(worker("x", &c));
    let spec = SupervisorSpec::new(Strategy::OneForOne)
        .child(worker("w", &c))
        .child(ChildSpec::supervisor("inner", inner));
    let sup = within(Supervisor::start(&a, spec)).await.unwrap();
    up(&mut rx, "w").await;
    up(&mut rx, "x").await;
    assert!(a.find_group(GROUP).contains(sup.port()));

    // From b, as the aemp tool would: list, then which_children.
    let dir = a.id().port(DIRECTORY).unwrap();
    let list = within(b.call(&dir, msg!["list"], PATIENCE)).await.unwrap();
    let listed: Vec<PortId> = list.iter().map(|v| PortId::new(v.as_str().unwrap()).unwrap()).collect();
    assert_eq!(listed.len(), 2, "the top supervisor and the nested one: {list}");
    assert!(listed.contains(sup.port()));
    let raw = within(b.call(sup.port(), msg!["which_children"], PATIENCE)).await.unwrap();
    let info = SupervisorInfo::from_value(raw.at(0).unwrap()).unwrap();
    assert_eq!(info.children.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(), ["w", "inner"]);
    let inner_port = info.children[1].port.clone().unwrap();
    assert!(listed.contains(&inner_port));
    // The handle works remotely too.
    let remote = Supervisor::attach(&b, inner_port);
    let inner_info = within(remote.info()).await.unwrap();
    assert_eq!(inner_info.parent.as_ref(), Some(sup.port()));
    assert_eq!(inner_info.strategy, Strategy::OneForAll);

    within(sup.stop()).await.unwrap();
    let list = within(b.call(&dir, msg!["list"], PATIENCE)).await.unwrap();
    assert!(list.is_empty(), "stopped supervisors leave the directory: {list}");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_one_for_all_children_on_a_lost_node_are_recorded_lost_and_sent_nothing() {
    // y and z start on b, the only node of "workers"; then c joins.
    let a = net_node("ofa-a", vec![]).await;
    let seed = a.listen_addrs()[0].clone();
    let b = worker_in_group("ofa-b", &seed).await;
    await_group(&a, "workers", &[b.id()]).await;
    let (col, mut rx) = collector(&a);
    let mut events = EventStream::new(&a);
    let spec = SupervisorSpec::new(Strategy::OneForAll)
        .observer(events.port())
        .child(worker("x", &col))
        .child(worker("y", &col).in_group("workers"))
        .child(worker("z", &col).in_group("workers"));
    let sup = within(Supervisor::start(&a, spec)).await.unwrap();
    up(&mut rx, "x").await;
    assert_eq!(up(&mut rx, "y").await.node(), *b.id());
    assert_eq!(up(&mut rx, "z").await.node(), *b.id());
    let c = worker_in_group("ofa-c", &seed).await;
    await_group(&a, "workers", &[c.id()]).await;

    within(b.shutdown()).await;
    // Both children on b are recorded lost (none is asked to stop: its
    // node is gone), x is stopped, and all three start again, in order.
    let mut lost = Vec::new();
    let mut stopped = Vec::new();
    let restarting = loop {
        let e = common::event(&mut events).await;
        match e.kind {
            EventKind::Lost { id, node, reason } => {
                assert_eq!((&node, reason.kind()), (b.id(), Some("transport_error")));
                lost.push(id);
            }
            EventKind::Stopped { id, .. } => stopped.push(id),
            EventKind::Restarting { children, .. } => break children,
            _ => {}
        }
    };
    lost.sort();
    assert_eq!(lost, ["y", "z"]);
    assert_eq!(restarting, ["x", "y", "z"]);
    let mut started = Vec::new();
    while started.len() < 3 {
        match common::event(&mut events).await.kind {
            EventKind::Started { id, node, .. } => started.push((id, node)),
            EventKind::Stopped { id, .. } => stopped.push(id),
            _ => {}
        }
    }
    let moved: Vec<_> = started.iter().map(|(id, n)| (id.as_str(), n == c.id())).collect();
    assert_eq!(
        moved,
        [("x", false), ("y", true), ("z", true)],
        "y and z moved to the node left in the group"
    );
    assert_eq!(stopped, ["x"], "only the child on a live node was stopped");
    let kids = within(sup.which_children()).await.unwrap();
    assert_eq!(kids[2].last_exit.as_ref().and_then(|r| r.kind()), Some("transport_error"));
    within(sup.stop()).await.unwrap();
    within(a.shutdown()).await;
    within(c.shutdown()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dynamic_child_takes_its_own_arguments_and_placement() {
    let (a, b) = pair("dyn-a", "dyn-b").await;
    let (c, mut rx) = collector(&a);
    let template = ChildSpec::new("job", "Test::worker").args(msg![&c]);
    let sup = within(Supervisor::start(&a, SupervisorSpec::simple_one_for_one(template))).await.unwrap();
    let (_, here) = within(sup.start_dynamic(msg!["here"])).await.unwrap();
    let (_, there) =
        within(sup.start_dynamic_on(msg!["there"], Placement::Node(b.id().clone()))).await.unwrap();
    assert_eq!(up(&mut rx, "here").await, here);
    assert_eq!(up(&mut rx, "there").await, there);
    assert_eq!((here.node(), there.node()), (a.id().clone(), b.id().clone()));
    within(sup.stop()).await.unwrap();
    a.shutdown().await;
    b.shutdown().await;
}
