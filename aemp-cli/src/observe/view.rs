//! What the page shows, kept from one round of observation to the next:
//! every node seen (up or down), the links between them with their rates,
//! the counters of each node over time, Global's groups, the supervision
//! trees, and the events seen on the way (a node up or down, a child
//! restarted). Pure: rounds of observations in, JSON out.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use aemp::{LinkStats, NodeId, NodeStats, PortId, Value};
use serde_json::{json, Value as Json};

use crate::supervisors::{children_of, field};
use crate::to_json;

/// Samples kept per node for its charts.
pub(crate) const HISTORY: usize = 120;
/// Events kept for the page.
pub(crate) const EVENTS: usize = 100;

/// What one round of asking the network found.
#[derive(Debug, Default)]
pub(crate) struct Observation {
    /// Seconds since the epoch.
    pub(crate) at: f64,
    /// The nodes the observer has a link to.
    pub(crate) linked: BTreeSet<NodeId>,
    /// Every node the observer knows of.
    pub(crate) known: BTreeSet<NodeId>,
    /// What each node asked said.
    pub(crate) reports: BTreeMap<NodeId, Report>,
    /// Global's groups, as the observer's node sees them.
    pub(crate) groups: BTreeMap<String, Vec<PortId>>,
    /// Each node's supervisors, by port, with their `which_children` maps
    /// (a node missing here was not asked, or did not answer).
    pub(crate) supervisors: BTreeMap<NodeId, BTreeMap<String, Value>>,
}

/// A node's answer to one round.
#[derive(Debug)]
pub(crate) enum Report {
    /// An aemp node's figures.
    Stats(Box<NodeStats>),
    /// A node that does not give figures (AnyEvent::MP 0.9): the nodes it
    /// says it is linked to.
    UpNodes(Vec<NodeId>),
}

/// One sample of a node's counters.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    at: f64,
    msgs_per_s: f64,
    queue: usize,
    bytes_in_per_s: f64,
    bytes_out_per_s: f64,
}

#[derive(Debug, Default)]
struct NodeView {
    up: bool,
    /// When `up` last changed.
    changed: f64,
    /// The figures last received, and when.
    stats: Option<(f64, NodeStats)>,
    /// Whether the node gives figures (`None`: not known yet).
    aemp: Option<bool>,
    history: VecDeque<Sample>,
}

/// A child as last seen, to tell what changed.
#[derive(Debug, Clone, PartialEq)]
struct ChildSeen {
    status: String,
    port: String,
    node: String,
    restarts: String,
    /// The port it last ran with.
    ran_as: String,
}

/// Everything the page shows.
#[derive(Debug, Default)]
pub(crate) struct View {
    observer: String,
    nodes: BTreeMap<NodeId, NodeView>,
    /// Links by their two ends in order: up, and each side's figures.
    links: BTreeMap<(NodeId, NodeId), LinkView>,
    groups: BTreeMap<String, Vec<PortId>>,
    /// Supervisors by port: their `which_children` maps, and their node.
    supervisors: BTreeMap<String, (NodeId, Value)>,
    children: BTreeMap<(String, String), ChildSeen>,
    events: VecDeque<Json>,
    updated: f64,
}

#[derive(Debug, Default)]
struct LinkView {
    up: bool,
    /// `a`'s and `b`'s figures of the link, with their message rates.
    ends: [Option<(LinkStats, Rates)>; 2],
}

#[derive(Debug, Default, Clone, Copy)]
struct Rates {
    sent_per_s: f64,
    received_per_s: f64,
}

impl View {
    /// A view for the observer node `observer` (not shown as a node).
    pub(crate) fn new(observer: &NodeId) -> View {
        View { observer: observer.to_string(), ..View::default() }
    }

    /// Notes an event now (`kind` is `node`, `child` or `supervisor`).
    pub(crate) fn event(&mut self, at: f64, kind: &str, text: String) {
        if self.events.len() == EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(json!({ "at": at, "kind": kind, "text": text }));
    }

    /// A link of the observer came up or went down (it learns this before
    /// the next round).
    pub(crate) fn node_event(&mut self, at: f64, node: &NodeId, up: bool, reason: Option<String>) {
        if node.as_str() == self.observer {
            return;
        }
        let v = self.nodes.entry(node.clone()).or_default();
        if v.up != up {
            v.up = up;
            v.changed = at;
            let text = match (up, reason) {
                (true, _) => format!("{node} up"),
                (false, Some(r)) => format!("{node} down: {r}"),
                (false, None) => format!("{node} down"),
            };
            self.event(at, "node", text);
        }
    }

    /// Takes in one round.
    pub(crate) fn apply(&mut self, obs: Observation) {
        let at = obs.at;
        self.updated = at;
        let me = self.observer.clone();
        let not_me = |n: &NodeId| n.as_str() != me;
        // Who is up: linked to the observer, answering, or linked to a node
        // that answered.
        let mut up: BTreeSet<NodeId> = obs.linked.iter().filter(|n| not_me(n)).cloned().collect();
        let mut shown: BTreeSet<NodeId> = obs.known.iter().filter(|n| not_me(n)).cloned().collect();
        let mut links: BTreeMap<(NodeId, NodeId), LinkView> = BTreeMap::new();
        for (node, report) in &obs.reports {
            up.insert(node.clone());
            shown.insert(node.clone());
            let peers: Vec<(NodeId, bool, Option<&LinkStats>)> = match report {
                Report::Stats(s) => s.links.iter().map(|l| (l.peer.clone(), l.up, Some(l))).collect(),
                Report::UpNodes(v) => v.iter().map(|p| (p.clone(), true, None)).collect(),
            };
            for (peer, link_up, figures) in peers {
                if !not_me(&peer) || peer == *node {
                    continue;
                }
                shown.insert(peer.clone());
                if link_up {
                    up.insert(peer.clone());
                }
                let (key, end) =
                    if *node < peer { ((node.clone(), peer), 0) } else { ((peer, node.clone()), 1) };
                let l = links.entry(key).or_default();
                l.up |= link_up;
                l.ends[end] = figures.map(|f| (f.clone(), Rates::default()));
            }
        }
        // Nodes no one knows any more and that are down (clients that left);
        // one the observer just saw come up stays.
        let gone: Vec<NodeId> =
            self.nodes.iter().filter(|(n, v)| !shown.contains(*n) && !v.up).map(|(n, _)| n.clone()).collect();
        for n in gone {
            self.nodes.remove(&n);
        }
        for n in &shown {
            // What the observer saw happen after the round began wins over
            // what the round found.
            if self.nodes.get(n).is_some_and(|v| v.changed > at) {
                continue;
            }
            self.node_event(at, n, up.contains(n), None);
        }
        for (node, report) in obs.reports {
            let v = self.nodes.entry(node.clone()).or_default();
            match report {
                Report::Stats(s) => {
                    v.aemp = Some(true);
                    if let Some((t0, old)) = &v.stats {
                        let dt = (at - t0).max(1e-3);
                        let rate = |new: u64, old: u64| new.saturating_sub(old) as f64 / dt;
                        let sum =
                            |s: &NodeStats, f: fn(&LinkStats) -> u64| s.links.iter().map(f).sum::<u64>();
                        let sample = Sample {
                            at,
                            msgs_per_s: rate(s.messages_dispatched, old.messages_dispatched),
                            queue: s.queue_depth,
                            bytes_in_per_s: rate(
                                sum(&s, |l| l.bytes_received),
                                sum(old, |l| l.bytes_received),
                            ),
                            bytes_out_per_s: rate(sum(&s, |l| l.bytes_sent), sum(old, |l| l.bytes_sent)),
                        };
                        if v.history.len() == HISTORY {
                            v.history.pop_front();
                        }
                        v.history.push_back(sample);
                        // Each link's message rates, from this node's side.
                        for (key, l) in links.iter_mut() {
                            let end = if key.0 == node {
                                0
                            } else if key.1 == node {
                                1
                            } else {
                                continue;
                            };
                            if let Some((now, rates)) = &mut l.ends[end] {
                                if let Some(before) = old.links.iter().find(|b| b.peer == now.peer) {
                                    rates.sent_per_s = rate(now.messages_sent, before.messages_sent);
                                    rates.received_per_s =
                                        rate(now.messages_received, before.messages_received);
                                }
                            }
                        }
                    }
                    v.stats = Some((at, *s));
                }
                Report::UpNodes(_) => v.aemp = Some(false),
            }
        }
        // A link whose two ends are down is not shown; one with an end down
        // is down.
        links.retain(|(a, b), _| up.contains(a) || up.contains(b));
        let is_up = |n: &NodeId| self.nodes.get(n).is_some_and(|v| v.up);
        for ((a, b), l) in links.iter_mut() {
            l.up &= is_up(a) && is_up(b);
        }
        self.links = links;
        self.groups = obs.groups;
        self.apply_supervisors(at, obs.supervisors, &up);
    }

    /// Takes in the supervisors found, noting what changed for each child.
    fn apply_supervisors(
        &mut self,
        at: f64,
        found: BTreeMap<NodeId, BTreeMap<String, Value>>,
        up: &BTreeSet<NodeId>,
    ) {
        // Nodes that are up but did not answer in time keep what they had.
        let mut next: BTreeMap<String, (NodeId, Value)> = self
            .supervisors
            .iter()
            .filter(|(_, (n, _))| !found.contains_key(n) && up.contains(n))
            .map(|(p, v)| (p.clone(), v.clone()))
            .collect();
        for (node, sups) in found {
            for (port, info) in sups {
                next.insert(port, (node.clone(), info));
            }
        }
        let mut events: Vec<(&str, String)> = self
            .supervisors
            .keys()
            .filter(|p| !next.contains_key(*p))
            .map(|p| ("supervisor", format!("supervisor {p} gone")))
            .collect();
        let mut seen = BTreeMap::new();
        for (port, (_, info)) in &next {
            if !self.supervisors.contains_key(port) {
                events.push(("supervisor", format!("supervisor {port} found ({})", field(info, "strategy"))));
            }
            for c in children_of(info) {
                let id = field(c, "id");
                let mut now = ChildSeen {
                    status: field(c, "status"),
                    port: field(c, "port"),
                    node: field(c, "node"),
                    restarts: field(c, "total_restarts"),
                    ran_as: String::new(),
                };
                let key = (port.clone(), id.clone());
                if let Some(text) = child_change(&id, self.children.get(&key), &mut now) {
                    events.push(("child", text));
                }
                seen.insert(key, now);
            }
        }
        for (kind, text) in events {
            self.event(at, kind, text);
        }
        self.children = seen;
        self.supervisors = next;
    }

    /// The ports of the children that run now, to watch between rounds.
    pub(crate) fn child_ports(&self) -> Vec<String> {
        self.children.values().filter(|c| !c.port.is_empty()).map(|c| c.port.clone()).collect()
    }

    /// The page's data.
    pub(crate) fn to_json(&self) -> Json {
        let nodes: Vec<Json> = self
            .nodes
            .iter()
            .map(|(id, v)| {
                let history: Vec<Json> = v
                    .history
                    .iter()
                    .map(|s| {
                        json!([
                            round3(s.at),
                            round3(s.msgs_per_s),
                            s.queue,
                            round3(s.bytes_in_per_s),
                            round3(s.bytes_out_per_s)
                        ])
                    })
                    .collect();
                let mut members: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
                for (g, ports) in &self.groups {
                    for p in ports.iter().filter(|p| p.node_str() == id.as_str()) {
                        members.entry(g).or_default().push(p.as_str());
                    }
                }
                json!({
                    "id": id.as_str(),
                    "up": v.up,
                    "aemp": v.aemp,
                    "stats": v.stats.as_ref().map(|(_, s)| serde_json::to_value(s).unwrap_or(Json::Null)),
                    "stats_at": v.stats.as_ref().map(|(t, _)| *t),
                    "history": history,
                    "groups": members,
                })
            })
            .collect();
        let links: Vec<Json> = self
            .links
            .iter()
            .map(|((a, b), l)| {
                let end = |e: &Option<(LinkStats, Rates)>| match e {
                    Some((s, r)) => {
                        let mut j = serde_json::to_value(s).unwrap_or(Json::Null);
                        j["sent_per_s"] = json!(r.sent_per_s);
                        j["received_per_s"] = json!(r.received_per_s);
                        j
                    }
                    None => Json::Null,
                };
                json!({ "a": a.as_str(), "b": b.as_str(), "up": l.up, "from_a": end(&l.ends[0]), "from_b": end(&l.ends[1]) })
            })
            .collect();
        let groups: BTreeMap<&String, Vec<&str>> =
            self.groups.iter().map(|(g, m)| (g, m.iter().map(PortId::as_str).collect())).collect();
        let supervisors: Vec<Json> = self
            .supervisors
            .iter()
            .map(|(port, (node, info))| {
                let mut j = to_json(info.clone());
                j["port"] = json!(port);
                j["node"] = json!(node.as_str());
                j
            })
            .collect();
        json!({
            "observer": self.observer,
            "updated": self.updated,
            "nodes": nodes,
            "links": links,
            "groups": groups,
            "supervisors": supervisors,
            "events": self.events.iter().rev().collect::<Vec<_>>(),
        })
    }
}

/// Three decimals are enough for the page.
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// What changed for a child since it was last seen, as an event's text;
/// notes in `now` the port it runs with. A child that runs again with
/// another port has restarted, whatever the rounds saw in between.
fn child_change(id: &str, before: Option<&ChildSeen>, now: &mut ChildSeen) -> Option<String> {
    let running = now.status == "running";
    let place = if now.node.is_empty() { String::new() } else { format!(" on {}", now.node) };
    let ran_as = before.map(|b| b.ran_as.clone()).unwrap_or_default();
    now.ran_as = if running { now.port.clone() } else { ran_as.clone() };
    let Some(before) = before else {
        return Some(format!("child {id} {}{place}", now.status));
    };
    if running && !ran_as.is_empty() && ran_as != now.port {
        return Some(format!("child {id} restarted{place} (restarts: {})", now.restarts));
    }
    if before.status != now.status {
        return Some(format!("child {id} {} -> {}{place}", before.status, now.status));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    /// An aemp node's figures: `dispatched` messages so far, links up to `peers`.
    fn stats(node: &str, dispatched: u64, peers: &[&str]) -> Report {
        let links: Vec<(&str, bool)> = peers.iter().map(|p| (*p, true)).collect();
        stats_with(node, dispatched, &links)
    }

    /// The same with links up or down: `(peer, up)`.
    fn stats_with(node: &str, dispatched: u64, peers: &[(&str, bool)]) -> Report {
        let links: Vec<Json> = peers
            .iter()
            .map(|(p, up)| json!({"peer": p, "up": up, "messages_sent": dispatched, "messages_received": 0}))
            .collect();
        let v: Value = json!({"node": node, "messages_dispatched": dispatched, "links": links}).into();
        Report::Stats(Box::new(NodeStats::from_value(&v).unwrap()))
    }

    fn round(at: f64, linked: &[&str], reports: Vec<(&str, Report)>) -> Observation {
        Observation {
            at,
            linked: linked.iter().map(|n| id(n)).collect(),
            known: linked.iter().map(|n| id(n)).collect(),
            reports: reports.into_iter().map(|(n, r)| (id(n), r)).collect(),
            ..Observation::default()
        }
    }

    fn node<'a>(j: &'a Json, n: &str) -> &'a Json {
        j["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == n)
            .unwrap_or_else(|| panic!("no {n} in {j}"))
    }

    #[test]
    fn rates_come_from_two_rounds_and_links_are_shown_once() {
        let mut v = View::new(&id("anon/me"));
        v.apply(round(
            10.0,
            &["a", "b"],
            vec![("a", stats("a", 100, &["b", "anon/me"])), ("b", stats("b", 0, &["a"]))],
        ));
        v.apply(round(
            12.0,
            &["a", "b"],
            vec![("a", stats("a", 300, &["b", "anon/me"])), ("b", stats("b", 0, &["a"]))],
        ));
        let j = v.to_json();
        assert_eq!(node(&j, "a")["history"][0][1], json!(100.0), "200 messages in 2 s");
        let links = j["links"].as_array().unwrap();
        assert_eq!(links.len(), 1, "a-b once, and no link to the observer: {links:?}");
        assert_eq!((links[0]["a"].as_str(), links[0]["up"].as_bool()), (Some("a"), Some(true)));
        assert_eq!(links[0]["from_a"]["sent_per_s"], json!(100.0));
        assert!(j["nodes"].as_array().unwrap().iter().all(|n| n["id"] != "anon/me"));
    }

    #[test]
    fn a_node_without_figures_is_shown_with_what_it_said() {
        let mut v = View::new(&id("anon/me"));
        let old = Report::UpNodes(vec![id("a"), id("perl")]);
        v.apply(round(1.0, &["a", "perl"], vec![("a", stats("a", 1, &["perl"])), ("perl", old)]));
        let j = v.to_json();
        let perl = node(&j, "perl");
        assert_eq!(
            (perl["up"].as_bool(), perl["aemp"].as_bool(), perl["stats"].is_null()),
            (Some(true), Some(false), true)
        );
        assert_eq!(j["links"].as_array().unwrap().len(), 1, "{j}");
    }

    #[test]
    fn a_node_that_goes_down_stays_shown_down_and_the_event_says_why() {
        let mut v = View::new(&id("anon/me"));
        v.apply(round(1.0, &["a", "b"], vec![("a", stats("a", 1, &["b"])), ("b", stats("b", 1, &["a"]))]));
        v.node_event(2.0, &id("b"), false, Some("connection closed by peer".into()));
        let mut lost = round(3.0, &["a"], vec![("a", stats_with("a", 2, &[("b", false)]))]);
        lost.known.insert(id("b"));
        v.apply(lost);
        let j = v.to_json();
        assert_eq!(node(&j, "b")["up"], json!(false));
        assert_eq!(j["links"][0]["up"], json!(false), "{j}");
        let texts: Vec<&str> =
            j["events"].as_array().unwrap().iter().filter_map(|e| e["text"].as_str()).collect();
        assert!(texts.contains(&"b down: connection closed by peer"), "{texts:?}");
        assert_eq!(texts.iter().filter(|t| t.starts_with("b down")).count(), 1, "{texts:?}");
    }

    #[test]
    fn a_round_that_began_before_a_node_went_down_does_not_bring_it_back() {
        let mut v = View::new(&id("anon/me"));
        v.apply(round(1.0, &["a", "b"], vec![("a", stats("a", 1, &["b"])), ("b", stats("b", 1, &["a"]))]));
        v.node_event(5.0, &id("b"), false, None);
        // Asked at 4.0, before b died: a still had its link to b.
        v.apply(round(4.0, &["a", "b"], vec![("a", stats("a", 2, &["b"]))]));
        let j = v.to_json();
        assert_eq!(node(&j, "b")["up"], json!(false));
        assert_eq!(j["links"][0]["up"], json!(false), "a link to a node that is down is down");
        let ups = j["events"].as_array().unwrap().iter().filter(|e| e["text"] == "b up").count();
        assert_eq!(ups, 1, "{j}");
    }

    #[test]
    fn a_child_that_moves_after_its_node_is_lost_makes_a_restart_event() {
        let sup = |node: &str, status: &str, restarts: u32| -> BTreeMap<NodeId, BTreeMap<String, Value>> {
            let info: Value = json!({
                "supervisor": "a#sup", "strategy": "one_for_one", "total_restarts": restarts,
                "children": [{"id": "w", "status": status, "node": node, "port": format!("{node}#p{restarts}"),
                              "total_restarts": restarts, "kind": "worker"}]
            })
            .into();
            [(id("a"), [("a#sup".to_owned(), info)].into_iter().collect())].into_iter().collect()
        };
        let mut v = View::new(&id("anon/me"));
        let with = |at: f64, s| Observation { at, supervisors: s, ..round(at, &["a"], vec![]) };
        v.apply(with(1.0, sup("b", "running", 0)));
        assert_eq!(v.child_ports(), vec!["b#p0".to_owned()]);
        v.apply(with(2.0, sup("", "backoff", 0)));
        v.apply(with(2.5, sup("c", "starting", 1)));
        v.apply(with(3.0, sup("c", "running", 1)));
        // A round in which the supervisor's node did not answer keeps the tree.
        v.apply(with(4.0, BTreeMap::new()));
        let j = v.to_json();
        let texts: Vec<&str> =
            j["events"].as_array().unwrap().iter().filter_map(|e| e["text"].as_str()).collect();
        assert!(texts.contains(&"child w restarted on c (restarts: 1)"), "{texts:?}");
        assert!(texts.contains(&"child w running -> backoff"), "{texts:?}");
        assert_eq!(j["supervisors"][0]["children"][0]["node"], json!("c"));
    }
}
