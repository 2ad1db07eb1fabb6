//! What a node tells about itself: [`NodeStats`] and [`LinkStats`], from
//! [`Node::stats`], from another node with [`Node::remote_stats`], and in
//! the Prometheus text format ([`NodeStats::to_prometheus`],
//! [`Node::serve_metrics`](crate::Node::serve_metrics)).
//!
//! The counters cost next to nothing, so they are always on: the
//! dispatcher keeps its own in plain fields of its state (only it writes
//! them), and each link counts what it carries in its peer's state, under
//! the lock the send path holds anyway and once per batch of messages
//! read. The rest (ports, monitors, groups) is counted when the figures
//! are asked for.
//!
//! On the wire, the node port answers `["", "aemp_stats", reply, @prefix]`
//! with `[@prefix, stats]`, `stats` being the map of
//! [`NodeStats::to_value`]. An AnyEvent::MP 0.9 node logs the unknown
//! request and does not answer.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::core::Core;
use crate::error::{Error, Result};
use crate::id::{NodeId, PortId};
use crate::node::Node;
use crate::value::{Msg, Value};

/// The node-port request for a node's figures.
pub(crate) const STATS_REQUEST: &str = "aemp_stats";

/// The dispatcher's own counters, kept in its state.
#[derive(Debug)]
pub(crate) struct Counters {
    started: Instant,
    /// Messages handed to ports (and to the node port).
    pub(crate) dispatched: u64,
    high_water: usize,
}

impl Counters {
    pub(crate) fn new() -> Counters {
        Counters { started: Instant::now(), dispatched: 0, high_water: 0 }
    }

    /// Notes the depth of the queue the dispatcher is about to work on.
    #[inline]
    pub(crate) fn saw_queue(&mut self, depth: usize) {
        if depth > self.high_water {
            self.high_water = depth;
        }
    }
}

/// Ports and monitors, counted by walking the dispatcher's tables.
#[derive(Debug, Default)]
pub(crate) struct Census {
    pub(crate) ports: usize,
    pub(crate) named_ports: Vec<String>,
    pub(crate) monitors_local: usize,
    pub(crate) monitors_from_peers: usize,
    pub(crate) queue_depth: usize,
}

/// A node's figures at one moment, as [`Node::stats`] returns them.
///
/// Counters (`messages_dispatched`, and the messages and bytes of each
/// link) only grow while the node runs: rates are differences between
/// two snapshots. The wire form is a map with the field names as keys,
/// durations in seconds ([`NodeStats::to_value`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NodeStats {
    /// The node.
    pub node: NodeId,
    /// Time since the node started.
    #[serde(with = "secs", default)]
    pub uptime: Duration,
    /// Live ports (the node port not counted).
    #[serde(default)]
    pub ports: usize,
    /// The ports with a chosen name (`echo`, ports spawned by other
    /// nodes, ...), as opposed to generated ones, sorted.
    #[serde(default)]
    pub named_ports: Vec<String>,
    /// Monitors, by who holds them on what.
    #[serde(default)]
    pub monitors: MonitorCounts,
    /// Messages handed to ports since the node started (local and remote
    /// senders alike, node-port requests included).
    #[serde(default)]
    pub messages_dispatched: u64,
    /// Commands (mostly messages) waiting for the dispatcher now.
    #[serde(default)]
    pub queue_depth: usize,
    /// The most commands the dispatcher has found waiting when it took
    /// its next batch, since the node started.
    #[serde(default)]
    pub queue_high_water: usize,
    /// The Global groups that have members on this node, with how many.
    #[serde(default)]
    pub groups: BTreeMap<String, usize>,
    /// Every other node this node has an entry for (linked, being
    /// dialled, or linked before), sorted by node ID.
    #[serde(default)]
    pub links: Vec<LinkStats>,
}

/// Monitors a node holds and serves, part of [`NodeStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
#[serde(default)]
pub struct MonitorCounts {
    /// Monitors on this node's ports placed by this node.
    pub local: usize,
    /// Monitors other nodes hold on this node's ports.
    pub from_peers: usize,
    /// Monitors this node holds on other nodes' ports.
    pub on_peers: usize,
}

/// What a node knows of its link to another node, part of [`NodeStats`].
///
/// The counters add up over every link to that node since this node first
/// knew it; `reconnects` tells how many links there were after the first.
/// The fields from `incarnation` to `age` describe the live link and are
/// empty while there is none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LinkStats {
    /// The other node.
    pub peer: NodeId,
    /// Whether a link is up now.
    #[serde(default)]
    pub up: bool,
    /// The addresses the other node listens on, as far as this node knows.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Messages sent to the node.
    #[serde(default)]
    pub messages_sent: u64,
    /// Messages received from it (keepalives not counted).
    #[serde(default)]
    pub messages_received: u64,
    /// Bytes written to it.
    #[serde(default)]
    pub bytes_sent: u64,
    /// Bytes of messages read from it.
    #[serde(default)]
    pub bytes_received: u64,
    /// Bytes waiting to be written to it: encoded for the live link, or
    /// (roughly) queued while it comes up.
    #[serde(default)]
    pub send_queue_bytes: usize,
    /// Messages queued while no link is up.
    #[serde(default)]
    pub pending_messages: usize,
    /// Links to the node that came up after the first.
    #[serde(default)]
    pub reconnects: u64,
    /// Monitors this node holds on the node's ports.
    #[serde(default)]
    pub monitors: usize,
    /// The other node's incarnation (aemp nodes; it changes when the node
    /// restarts).
    #[serde(default)]
    pub incarnation: Option<String>,
    /// The address at the other end of the link's connection.
    #[serde(default)]
    pub remote_addr: Option<String>,
    /// The framing this node sends (`msgpack` or `json`).
    #[serde(default)]
    pub send_framing: Option<String>,
    /// The framing the other node sends.
    #[serde(default)]
    pub recv_framing: Option<String>,
    /// The auth method the other node proved itself with
    /// (`hmac_blake3_256`, `tls_md6_64_256`, ...).
    #[serde(default)]
    pub auth: Option<String>,
    /// Whether the link runs over TLS.
    #[serde(default)]
    pub tls: bool,
    /// Whether the other node speaks aemp's extensions (false for an
    /// AnyEvent::MP 0.9 node).
    #[serde(default)]
    pub aemp: bool,
    /// Whether this node dialled the link's connection.
    #[serde(default)]
    pub dialed_here: bool,
    /// How long the link has been up.
    #[serde(with = "opt_secs", default)]
    pub age: Option<Duration>,
}

impl LinkStats {
    /// Figures of a node with nothing counted yet.
    pub(crate) fn new(peer: NodeId) -> LinkStats {
        LinkStats {
            peer,
            up: false,
            addresses: Vec::new(),
            messages_sent: 0,
            messages_received: 0,
            bytes_sent: 0,
            bytes_received: 0,
            send_queue_bytes: 0,
            pending_messages: 0,
            reconnects: 0,
            monitors: 0,
            incarnation: None,
            remote_addr: None,
            send_framing: None,
            recv_framing: None,
            auth: None,
            tls: false,
            aemp: false,
            dialed_here: false,
            age: None,
        }
    }
}

/// Durations as seconds (a float) on the wire.
mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let x = f64::deserialize(d)?;
        Ok(Duration::try_from_secs_f64(x).unwrap_or_default())
    }
}

/// Optional durations as seconds or null on the wire.
mod opt_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_f64(d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let x = Option::<f64>::deserialize(d)?;
        Ok(x.and_then(|x| Duration::try_from_secs_f64(x).ok()))
    }
}

impl NodeStats {
    /// The wire form: a map with the field names as keys (durations in
    /// seconds, absent values as null), as the node port sends it.
    pub fn to_value(&self) -> Value {
        crate::ser::to_value(self).unwrap_or(Value::Null)
    }

    /// Reads the wire form. Keys it does not know are ignored and missing
    /// ones (but `node`, and `peer` in a link) take their empty value, so
    /// that nodes of other versions can be read.
    ///
    /// # Errors
    /// [`Error::Value`] naming what does not fit.
    pub fn from_value(v: &Value) -> Result<NodeStats> {
        crate::de::from_value_ref(v)
    }

    /// The figures in the Prometheus text exposition format (version
    /// 0.0.4), every series labelled with `node` (and `peer` for a link's).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let node = aemp::Node::builder().id("doc-metrics").build().await.unwrap();
    /// let text = node.stats().await.to_prometheus();
    /// assert!(text.contains("aemp_ports{node=\"doc-metrics\"} 0\n"));
    /// node.shutdown().await;
    /// # }
    /// ```
    pub fn to_prometheus(&self) -> String {
        let node = format!("node=\"{}\"", escape_label(self.node.as_str()));
        let mut out = String::with_capacity(4096 + self.links.len() * 1024);
        let one = |v: String| vec![(node.clone(), v)];
        let m = self.monitors;
        let by = |label: &str, rows: &mut dyn Iterator<Item = (&str, String)>| -> Rows {
            rows.map(|(k, v)| (format!("{node},{label}=\"{}\"", escape_label(k)), v)).collect()
        };
        let node_families: [(&str, &str, &str, Rows); 9] = [
            ("aemp_uptime_seconds", "gauge", "Seconds since the node started.", one(secs_text(self.uptime))),
            ("aemp_ports", "gauge", "Live ports.", one(self.ports.to_string())),
            ("aemp_named_ports", "gauge", "Ports with a chosen name.", one(self.named_ports.len().to_string())),
            (
                "aemp_monitors",
                "gauge",
                "Monitors: this node's on its ports (local), other nodes' on its ports (from_peers), its own on other nodes' ports (on_peers).",
                by(
                    "kind",
                    &mut [("local", m.local), ("from_peers", m.from_peers), ("on_peers", m.on_peers)]
                        .into_iter()
                        .map(|(k, n)| (k, n.to_string())),
                ),
            ),
            (
                "aemp_messages_dispatched_total",
                "counter",
                "Messages handed to ports since the node started.",
                one(self.messages_dispatched.to_string()),
            ),
            ("aemp_dispatcher_queue_depth", "gauge", "Commands waiting for the dispatcher.", one(self.queue_depth.to_string())),
            (
                "aemp_dispatcher_queue_high_water",
                "gauge",
                "The most commands the dispatcher found waiting, since the node started.",
                one(self.queue_high_water.to_string()),
            ),
            (
                "aemp_group_members",
                "gauge",
                "Members on this node of each Global group.",
                by("group", &mut self.groups.iter().map(|(g, n)| (g.as_str(), n.to_string()))),
            ),
            (
                "aemp_link_info",
                "gauge",
                "What each live link is, in its labels.",
                self.links.iter().filter(|l| l.up).map(|l| (link_info_labels(&node, l), "1".to_owned())).collect(),
            ),
        ];
        for (name, kind, help, rows) in &node_families {
            write_family(&mut out, name, kind, help, rows);
        }
        type Figure = fn(&LinkStats) -> Option<String>;
        let link_families: [(&str, &str, &str, Figure); 10] = [
            ("aemp_link_up", "gauge", "1 while a link to the peer is up.", |l| {
                Some(u8::from(l.up).to_string())
            }),
            ("aemp_link_age_seconds", "gauge", "Seconds since the live link came up.", |l| {
                l.age.map(secs_text)
            }),
            ("aemp_link_messages_sent_total", "counter", "Messages sent to the peer.", |l| {
                Some(l.messages_sent.to_string())
            }),
            ("aemp_link_messages_received_total", "counter", "Messages received from the peer.", |l| {
                Some(l.messages_received.to_string())
            }),
            ("aemp_link_bytes_sent_total", "counter", "Bytes written to the peer.", |l| {
                Some(l.bytes_sent.to_string())
            }),
            ("aemp_link_bytes_received_total", "counter", "Bytes of messages read from the peer.", |l| {
                Some(l.bytes_received.to_string())
            }),
            ("aemp_link_send_queue_bytes", "gauge", "Bytes waiting to be written to the peer.", |l| {
                Some(l.send_queue_bytes.to_string())
            }),
            ("aemp_link_pending_messages", "gauge", "Messages queued while no link is up.", |l| {
                Some(l.pending_messages.to_string())
            }),
            ("aemp_link_reconnects_total", "counter", "Links to the peer after the first.", |l| {
                Some(l.reconnects.to_string())
            }),
            ("aemp_link_monitors", "gauge", "Monitors on the peer's ports.", |l| {
                Some(l.monitors.to_string())
            }),
        ];
        for (name, kind, help, figure) in link_families {
            let rows =
                by("peer", &mut self.links.iter().filter_map(|l| figure(l).map(|v| (l.peer.as_str(), v))));
            write_family(&mut out, name, kind, help, &rows);
        }
        out
    }
}

/// A metric family's samples: `(labels, value)`.
type Rows = Vec<(String, String)>;

/// One metric family: its help and type lines, then a sample per row of
/// `(labels, value)`.
fn write_family(out: &mut String, name: &str, kind: &str, help: &str, rows: &[(String, String)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in rows {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

/// The labels of a live link's `aemp_link_info` sample.
fn link_info_labels(node: &str, l: &LinkStats) -> String {
    let mut labels = format!("{node},peer=\"{}\"", escape_label(l.peer.as_str()));
    for (k, v) in [
        ("incarnation", &l.incarnation),
        ("remote_addr", &l.remote_addr),
        ("send_framing", &l.send_framing),
        ("recv_framing", &l.recv_framing),
        ("auth", &l.auth),
    ] {
        let _ = write!(labels, ",{k}=\"{}\"", escape_label(v.as_deref().unwrap_or("")));
    }
    let _ = write!(labels, ",tls=\"{}\",aemp=\"{}\"", l.tls, l.aemp);
    labels
}

/// Seconds with millisecond precision.
fn secs_text(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// A Prometheus label value: backslash, double quote and line feed escaped.
fn escape_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The node's figures, made on the dispatcher.
pub(crate) fn node_stats(core: &Core) -> NodeStats {
    let census = core.census();
    let shared = &core.shared;
    let links = shared.remote().link_stats();
    let groups = Node::from_shared(shared.clone())
        .groups()
        .into_iter()
        .filter_map(|(g, members)| {
            let here = members.iter().filter(|p| shared.is_local(p)).count();
            (here > 0).then_some((g, here))
        })
        .collect();
    NodeStats {
        node: shared.id.clone(),
        uptime: core.counters.started.elapsed(),
        ports: census.ports,
        named_ports: census.named_ports,
        monitors: MonitorCounts {
            local: census.monitors_local,
            from_peers: census.monitors_from_peers,
            on_peers: links.iter().map(|l| l.monitors).sum(),
        },
        messages_dispatched: core.counters.dispatched,
        queue_depth: census.queue_depth,
        queue_high_water: core.counters.high_water.max(census.queue_depth),
        groups,
        links,
    }
}

/// Answers the node port's `aemp_stats` request: `[@prefix, stats]` to `reply`.
pub(crate) fn answer(core: &mut Core, reply: &PortId, mut prefix: Msg) {
    prefix.push(node_stats(core).to_value());
    core.snd(reply, prefix);
}

impl Node {
    /// This node's figures now: ports, monitors, the dispatcher's queue,
    /// and every link (see [`NodeStats`]). They are made on the dispatcher,
    /// in turn with the messages queued before the call.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> aemp::Result<()> {
    /// let node = aemp::Node::builder().build().await?;
    /// let port = node.port_with(|_ctx, _m| {});
    /// node.snd(&port, aemp::msg!["hello"]);
    /// let s = node.stats().await;
    /// assert_eq!((s.ports, s.messages_dispatched), (1, 1));
    /// node.shutdown().await;
    /// # Ok(()) }
    /// ```
    pub async fn stats(&self) -> NodeStats {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.shared().call(move |core: &mut Core| {
            let _ = tx.send(node_stats(core));
        });
        match rx.await {
            Ok(s) => s,
            // Shut down: nothing runs any more.
            Err(_) => NodeStats {
                node: self.id().clone(),
                uptime: Duration::ZERO,
                ports: 0,
                named_ports: Vec::new(),
                monitors: MonitorCounts::default(),
                messages_dispatched: 0,
                queue_depth: 0,
                queue_high_water: 0,
                groups: BTreeMap::new(),
                links: Vec::new(),
            },
        }
    }

    /// Asks another node for its figures (the node port's `aemp_stats`
    /// request), as [`Node::stats`] there returns them.
    ///
    /// # Errors
    /// [`Error::Timeout`] when no answer comes within `timeout` (an
    /// AnyEvent::MP 0.9 node never answers), [`Error::NoSuchPort`] when the
    /// node is lost, [`Error::Value`] for an answer that cannot be read.
    pub async fn remote_stats(&self, node: &NodeId, timeout: Duration) -> Result<NodeStats> {
        if node == self.id() {
            return Ok(self.stats().await);
        }
        let m = self.call(&node.node_port(), Msg::from_array([Value::from(STATS_REQUEST)]), timeout).await?;
        let v = m.0.first().ok_or_else(|| Error::Value(format!("{node}: empty {STATS_REQUEST} answer")))?;
        NodeStats::from_value(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg;

    async fn public(id: &str) -> Node {
        Node::builder().id(id).bind("127.0.0.1:0").secret("stats-test").build().await.unwrap()
    }

    #[tokio::test]
    async fn a_node_counts_its_ports_named_ports_monitors_and_messages() {
        let node = Node::builder().id("census").build().await.unwrap();
        let a = node.port_with(|_ctx, _m| {});
        node.named_port("echo", |_ctx, _m| {}).unwrap();
        let _m1 = node.mon(&a, |_r| {});
        let _m2 = node.mon(&a, |_r| {});
        for _ in 0..5 {
            node.snd(&a, msg!["x"]);
        }
        let s = node.stats().await;
        assert_eq!(s.node.as_str(), "census");
        assert_eq!(s.ports, 2);
        assert_eq!(s.named_ports, vec!["echo".to_owned()]);
        assert_eq!(s.monitors, MonitorCounts { local: 2, from_peers: 0, on_peers: 0 });
        assert_eq!(s.messages_dispatched, 5);
        assert!(s.queue_high_water >= 1, "{s:?}");
        assert!(s.links.is_empty());
        node.shutdown().await;
    }

    #[tokio::test]
    async fn the_dispatcher_records_the_deepest_queue_it_found() {
        let node = Node::builder().build().await.unwrap();
        let a = node.port_with(|_ctx, _m| {});
        {
            // Held: the messages wait in the queue, all found at once.
            let _held = node.shared().hold_dispatcher();
            for _ in 0..100 {
                node.snd(&a, msg!["x"]);
            }
        }
        let s = node.stats().await;
        assert!(s.queue_high_water >= 100, "{s:?}");
        assert_eq!(s.queue_depth, 0, "the stats request itself is running, nothing waits");
        node.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_link_counts_messages_and_bytes_both_ways_and_a_peer_answers_for_its_figures() {
        let a = public("stats-a").await;
        let b = public("stats-b").await;
        a.add_node_addr(b.id(), b.listen_addrs()[0].clone());
        let echo = b
            .named_port("echo", |ctx, m| -> crate::Result<()> {
                let reply = m.port(0)?;
                ctx.snd(&reply, msg!["back"]);
                Ok(())
            })
            .unwrap();
        b.register_group(&echo, "echoes").unwrap();
        for _ in 0..10 {
            a.call(&echo, msg![], Duration::from_secs(20)).await.unwrap();
        }
        let s = a.stats().await;
        let l = s.links.iter().find(|l| l.peer == *b.id()).expect("a link to b");
        assert!(l.up);
        // Ten requests, and Global's and the monitors' traffic.
        assert!(l.messages_sent >= 10 && l.messages_received >= 10, "{l:?}");
        assert!(l.bytes_sent > 0 && l.bytes_received > 0, "{l:?}");
        assert_eq!(l.send_framing.as_deref(), Some("msgpack"));
        assert_eq!(l.auth.as_deref(), Some("hmac_blake3_256"));
        assert!(l.aemp && !l.tls && l.age.is_some() && l.remote_addr.is_some());
        assert!(l.incarnation.is_some());
        assert_eq!(l.addresses, b.listen_addrs());

        // The same figures, asked for over the link.
        let remote = a.remote_stats(b.id(), Duration::from_secs(20)).await.unwrap();
        assert_eq!(remote.node, *b.id());
        assert_eq!(remote.groups.get("echoes"), Some(&1));
        assert!(remote.named_ports.contains(&"echo".to_owned()), "{remote:?}");
        let back = remote.links.iter().find(|l| l.peer == *a.id()).expect("b's link to a");
        assert!(back.messages_received >= 10, "{back:?}");
        assert!(!back.dialed_here);
        a.shutdown().await;
        b.shutdown().await;
    }

    #[tokio::test]
    async fn the_wire_form_reads_back_and_tolerates_unknown_and_missing_keys() {
        let node = Node::builder().id("wire-form").build().await.unwrap();
        node.named_port("x", |_ctx, _m| {}).unwrap();
        let s = node.stats().await;
        assert_eq!(NodeStats::from_value(&s.to_value()).unwrap(), s);
        let v: Value = serde_json::json!({"node": "old", "ports": 3, "from_the_future": [1, 2]}).into();
        let old = NodeStats::from_value(&v).unwrap();
        assert_eq!((old.node.as_str(), old.ports, old.links.len()), ("old", 3, 0));
        assert!(NodeStats::from_value(&Value::from("nonsense")).is_err());
        node.shutdown().await;
    }

    #[test]
    fn the_prometheus_text_has_one_type_per_family_and_escaped_labels() {
        let mut s = NodeStats::from_value(&serde_json::json!({"node": "n"}).into()).unwrap();
        s.groups.insert("we\"ird\\gr\noup".into(), 2);
        let mut l = LinkStats::new(NodeId::new("peer").unwrap());
        l.up = true;
        l.messages_sent = 7;
        s.links.push(l);
        let text = s.to_prometheus();
        assert!(
            text.contains("aemp_group_members{node=\"n\",group=\"we\\\"ird\\\\gr\\noup\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("aemp_link_messages_sent_total{node=\"n\",peer=\"peer\"} 7\n"), "{text}");
        let mut families = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert!(families.insert(name.to_owned()), "{name} typed twice");
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            // name{labels} value: a sample of a family typed above it.
            let (series, value) = line.rsplit_once(' ').unwrap();
            let name = series.split('{').next().unwrap();
            assert!(families.contains(name), "{name} not typed");
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
