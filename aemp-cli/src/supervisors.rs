//! `aemp supervisors NODE`: the supervision trees (aemp-supervisor) running
//! on a node, read from the supervisors' `which_children` answers.

use std::collections::BTreeMap;
use std::time::Duration;

use aemp::{Node, NodeId, Value};

use crate::commands::port_arg;
use crate::{to_json, Res};

/// `aemp supervisors NODE`: asks `NODE#aemp_supervisors` for `["list"]`
/// (the node's supervisor ports), then every supervisor, and every child
/// supervisor found on the way (on any node), for `["which_children"]` (a
/// map, see aemp-supervisor's `SupervisorInfo`), and prints the trees whose
/// root has no parent on that node.
pub(crate) async fn supervisors(node: &Node, id: &NodeId, t: Duration, json: bool) -> Res {
    let (listed, infos) = fetch(node, id, t).await?;
    let roots: Vec<&String> =
        listed.iter().filter(|p| !listed.contains(&field(&infos[*p], "parent"))).collect();
    if json {
        let trees: Vec<serde_json::Value> = roots.iter().map(|p| tree_json(p, &infos)).collect();
        println!("{}", serde_json::json!({ "node": id.as_str(), "supervisors": trees }));
        return Ok(());
    }
    if roots.is_empty() {
        println!("no supervisors on {id}");
    }
    for p in roots {
        print_tree(p, &infos, "");
    }
    Ok(())
}

/// The supervisors of node `id` (its directory's `["list"]` answer), and
/// the `which_children` map of each and of every child supervisor found
/// under them (on any node), by port.
async fn fetch(node: &Node, id: &NodeId, t: Duration) -> Res<(Vec<String>, BTreeMap<String, Value>)> {
    let listed = list(node, id, t).await.map_err(|e| format!("no supervisors on {id}: {e}"))?;
    let infos = trees(node, &listed, t).await?;
    Ok((listed, infos))
}

/// The supervisors of node `id`: its directory's `["list"]` answer.
///
/// # Errors
/// [`aemp::Error::NoSuchPort`] when the node has no directory (it runs no
/// aemp-supervisor), and what [`Node::call`] returns.
pub(crate) async fn list(node: &Node, id: &NodeId, t: Duration) -> aemp::Result<Vec<String>> {
    let dir = id.port("aemp_supervisors")?;
    let list = node.call(&dir, aemp::msg!["list"], t).await?;
    Ok(list.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
}

/// The `which_children` map of each supervisor of `listed` and of every
/// child supervisor found under them (on any node), by port.
pub(crate) async fn trees(node: &Node, listed: &[String], t: Duration) -> Res<BTreeMap<String, Value>> {
    let mut infos: BTreeMap<String, Value> = BTreeMap::new();
    let mut todo = listed.to_vec();
    while let Some(p) = todo.pop() {
        if infos.contains_key(&p) {
            continue;
        }
        let m = node
            .call(&port_arg(&p)?, aemp::msg!["which_children"], t)
            .await
            .map_err(|e| format!("{p}: {e}"))?;
        let info = m.into_iter().next().unwrap_or(Value::Null);
        for c in children_of(&info) {
            if field(c, "kind") == "supervisor" && !field(c, "port").is_empty() {
                todo.push(field(c, "port"));
            }
        }
        infos.insert(p, info);
    }
    Ok(infos)
}

/// A field of a `which_children` map as text (empty when missing or null).
pub(crate) fn field(v: &Value, key: &str) -> String {
    match v.as_map().and_then(|m| m.get(key)) {
        Some(Value::Str(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The children listed in a `which_children` map.
pub(crate) fn children_of(info: &Value) -> &[Value] {
    info.as_map().and_then(|m| m.get("children")).and_then(Value::as_array).unwrap_or(&[])
}

/// Prints the tree under the supervisor `port`, child supervisors indented.
fn print_tree(port: &str, infos: &BTreeMap<String, Value>, indent: &str) {
    let Some(info) = infos.get(port) else { return };
    if indent.is_empty() {
        println!(
            "{port}  {}  restarts {} ({} recent)",
            field(info, "strategy"),
            field(info, "total_restarts"),
            field(info, "recent_restarts")
        );
    }
    let kids = children_of(info);
    for (i, c) in kids.iter().enumerate() {
        let last = i + 1 == kids.len();
        let p = field(c, "port");
        println!(
            "{indent}{} {:<12} {:<9} {:<10} restarts {:<3} {}",
            if last { "└─" } else { "├─" },
            field(c, "id"),
            field(c, "status"),
            field(c, "kind"),
            field(c, "total_restarts"),
            if p.is_empty() { "-".to_owned() } else { p.clone() }
        );
        if field(c, "kind") == "supervisor" && infos.contains_key(&p) {
            print_tree(&p, infos, &format!("{indent}{}", if last { "   " } else { "│  " }));
        }
    }
}

/// The tree under the supervisor `port` as JSON, each child supervisor's
/// own answer under its `supervisor` key.
fn tree_json(port: &str, infos: &BTreeMap<String, Value>) -> serde_json::Value {
    let mut v = infos.get(port).cloned().map(to_json).unwrap_or(serde_json::Value::Null);
    if let Some(kids) = v.get_mut("children").and_then(serde_json::Value::as_array_mut) {
        for k in kids {
            let p = k.get("port").and_then(serde_json::Value::as_str).unwrap_or("").to_owned();
            if k.get("kind").and_then(serde_json::Value::as_str) == Some("supervisor")
                && infos.contains_key(&p)
            {
                k["supervisor"] = tree_json(&p, infos);
            }
        }
    }
    v
}
