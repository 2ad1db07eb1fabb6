//! One round of asking the network what the page shows: every node the
//! observer is linked to for its figures (`aemp_stats`; a node that does not
//! speak aemp's extensions for its `up_nodes` instead) and its supervision
//! trees, all nodes at once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aemp::{Node, NodeId, Value};
use tokio::task::JoinSet;

use super::view::{Observation, Report};
use crate::supervisors;

/// What one node said: its report and its supervisors, either missing when
/// it did not answer.
type Answer = (NodeId, Option<Report>, Option<BTreeMap<String, Value>>);

/// Asks every node the observer is linked to, waiting at most `t` for each.
pub(crate) async fn round(node: &Node, t: Duration) -> Observation {
    let at = now();
    let linked: BTreeSet<NodeId> = node.up_nodes().into_iter().collect();
    let known: BTreeSet<NodeId> = node.known_nodes().into_iter().collect();
    // The observer's own links tell which nodes speak aemp's extensions.
    let aemp: BTreeSet<NodeId> =
        node.stats().await.links.into_iter().filter(|l| l.up && l.aemp).map(|l| l.peer).collect();
    let mut asks = JoinSet::new();
    for id in &linked {
        asks.spawn(ask(node.clone(), id.clone(), aemp.contains(id), t));
    }
    let mut obs = Observation { at, linked, known, groups: node.groups(), ..Observation::default() };
    while let Some(answer) = asks.join_next().await {
        let Ok((id, report, sups)) = answer else { continue };
        if let Some(r) = report {
            obs.reports.insert(id.clone(), r);
        }
        if let Some(s) = sups {
            obs.supervisors.insert(id, s);
        }
    }
    obs
}

async fn ask(node: Node, id: NodeId, aemp: bool, t: Duration) -> Answer {
    if aemp {
        match node.remote_stats(&id, t).await {
            Ok(stats) => {
                let sups = match supervisors::list(&node, &id, t).await {
                    Ok(listed) => supervisors::trees(&node, &listed, t)
                        .await
                        .map_err(|e| tracing::debug!(node = %id, "supervisors not read: {e}"))
                        .ok(),
                    // No directory: the node runs no aemp-supervisor.
                    Err(aemp::Error::NoSuchPort(_)) => Some(BTreeMap::new()),
                    Err(e) => {
                        tracing::debug!(node = %id, "supervisors not listed: {e}");
                        None
                    }
                };
                return (id, Some(Report::Stats(Box::new(stats))), sups);
            }
            Err(e) => tracing::debug!(node = %id, "no figures: {e}"),
        }
    }
    // AnyEvent::MP 0.9 answers this one.
    match node.call(&id.node_port(), aemp::msg!["up_nodes"], t).await {
        Ok(m) => {
            let ups = m.iter().filter_map(|v| v.as_str().and_then(|s| NodeId::new(s).ok())).collect();
            (id, Some(Report::UpNodes(ups)), None)
        }
        Err(_) => (id, None, None),
    }
}

/// Seconds since the epoch.
pub(crate) fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}
