//! Load in one test process, checked for correctness only (the figures are
//! printed by `cargo bench -p aemp --bench soak`).

use std::time::Duration;

use aemp::{msg, NetConfig, Node};
use aemp_tests::PATIENCE;

/// P35 at scale: 20 nodes that know only a seed end up connected to each
/// other (190 links), and every node reaches a port on every other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p35_a_20_node_mesh_forms_through_one_seed_and_every_pair_talks() {
    const N: usize = 20;
    let mut c = NetConfig::default();
    c.binds = vec!["127.0.0.1:0".into()];
    c.secret = Some("mesh-secret".into());
    c.connect_interval = 0.05;
    let seed = Node::builder().id("mesh-00").net_config(c.clone()).build().await.unwrap();
    c.seeds = vec![seed.listen_addrs()[0].clone()];
    let mut nodes = vec![seed];
    for i in 1..N {
        nodes.push(Node::builder().id(format!("mesh-{i:02}")).net_config(c.clone()).build().await.unwrap());
    }
    for n in &nodes {
        n.named_port("echo", |ctx, m| -> aemp::Result<()> {
            ctx.snd(&m.port(1)?, msg![m.at(0)?.clone(), ctx.node_id()]);
            Ok(())
        })
        .unwrap();
    }
    aemp_tests::within(async {
        while nodes.iter().any(|n| n.up_nodes().len() < N - 1) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    for a in &nodes {
        for b in &nodes {
            if a.id() == b.id() {
                continue;
            }
            let r = a.call(&b.id().port("echo").unwrap(), msg![a.id()], PATIENCE).await.unwrap();
            assert_eq!(r, msg![a.id(), b.id()]);
        }
    }
    // Still a full mesh: no link was dropped or duplicated on the way.
    for n in &nodes {
        assert_eq!(n.up_nodes().len(), N - 1, "{}", n.id());
    }
    for n in nodes {
        n.shutdown().await;
    }
}
