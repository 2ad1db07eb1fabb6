//! The node port (`nodeid#`): kernel requests from local and remote senders
//! (AnyEvent::MP's `snd`, `mon`, `kil` and `spawn` between nodes).

use crate::core::{Core, Key};
use crate::id::{NodeId, PortId};
use crate::reason::Reason;
use crate::value::{Msg, Value};

/// The init function name of Global's per-peer port.
pub(crate) const GLOBAL_CONNECT: &str = "AnyEvent::MP::Global::connect";
/// The node-port tag of a spawn request.
pub(crate) const SPAWN: &str = "AnyEvent::MP::_spawn";

/// Handles a message to the node port. `from` is the sending node for
/// messages that came over a connection, `None` for local ones.
pub(crate) fn handle(core: &mut Core, from: Option<&NodeId>, mut msg: Msg) {
    let Some(first) = msg.shift() else { return };
    let tag = match first {
        Value::Str(s) => s,
        other => {
            tracing::warn!(from = ?from.map(NodeId::as_str), "node-port request whose tag is a {} dropped", other.kind());
            return;
        }
    };
    let args = msg;
    match tag.as_str() {
        "" | "devnull" => {}
        "mon1" => {
            let (Some(node), Ok(name)) = (from, args.str(0)) else { return bad(from, &tag) };
            let key = core.shared.key_of(name);
            if core.exists(&key) && !name.is_empty() {
                core.mon_remote(&key, node);
            } else if !name.is_empty() {
                let reason = core
                    .failed_spawns
                    .iter()
                    .find(|(n, _)| **n == *name)
                    .map(|(_, r)| r.clone())
                    .unwrap_or_else(Reason::no_such_port);
                let mut m = Msg::from_array([Value::from(""), Value::from("kil"), Value::from(name)]);
                m.0.extend(reason.0);
                send_to_node(core, node, m);
            }
        }
        "mon0" => {
            let (Some(node), Ok(name)) = (from, args.str(0)) else { return bad(from, &tag) };
            let key = core.shared.key_of(name);
            core.unmon_remote(&key, node);
        }
        "kil" => {
            // The sender's port `name` died: fire our monitors on it.
            let (Some(node), Ok(name)) = (from, args.str(0)) else { return bad(from, &tag) };
            let name = name.to_owned();
            let reason = Reason(args.0[1..].to_vec());
            let actions = core.shared.remote().remote_port_died(node, &name);
            for action in actions {
                core.fire(&name, action, reason.clone());
            }
        }
        "kil1" => {
            let Ok(name) = args.str(0) else { return bad(from, &tag) };
            if name.is_empty() {
                tracing::warn!(from = ?from.map(NodeId::as_str), "request to kill the node port refused");
                return;
            }
            let key = core.shared.key_of(name);
            core.kill(&key, Reason(args.0[1..].to_vec()));
        }
        "snd" => {
            let Ok(port) = args.port(0) else { return bad(from, &tag) };
            core.snd(&port, args.rest(1));
        }
        "snd_multiple" => {
            for item in args.0 {
                let Value::Array(mut parts) = item else { return bad(from, &tag) };
                if parts.is_empty() {
                    continue;
                }
                let Some(Ok(port)) = parts.remove(0).as_str().map(PortId::new) else {
                    return bad(from, &tag);
                };
                core.snd(&port, Msg::from(parts));
            }
        }
        "info" | "known_nodes" | "up_nodes" | "time" => {
            let Ok(reply) = args.port(0) else { return bad(from, &tag) };
            let mut m = args.rest(1);
            match tag.as_str() {
                "info" => m.push(core.shared.id.as_str()),
                "time" => m.push(crate::util::epoch_f64()),
                "known_nodes" => {
                    m.push(&core.shared.id);
                    m.0.extend(core.shared.remote().known_nodes().into_iter().map(Value::from));
                }
                _ => {
                    m.0.extend(core.shared.remote().up_nodes().into_iter().map(Value::from));
                }
            }
            core.snd(&reply, m);
        }
        "eval" => {
            tracing::warn!(from = ?from.map(NodeId::as_str), "eval request refused");
            if let Ok(reply) = args.port(1) {
                let mut m = args.rest(2);
                m.push("eval is not supported by aemp");
                core.snd(&reply, m);
            }
        }
        SPAWN => spawn_request(core, from, args),
        other => {
            tracing::warn!(from = ?from.map(NodeId::as_str), tag = other, "unknown node-port request ignored");
        }
    }
}

fn bad(from: Option<&NodeId>, tag: &str) {
    tracing::warn!(from = ?from.map(NodeId::as_str), tag, "malformed node-port request dropped");
}

fn send_to_node(core: &mut Core, node: &NodeId, msg: Msg) {
    core.shared.remote().send_to_node(node, msg);
}

/// `["", "AnyEvent::MP::_spawn", name, init, args...]` (what AnyEvent::MP's `spawn` sends).
fn spawn_request(core: &mut Core, from: Option<&NodeId>, mut args: Msg) {
    let (Ok(name), Ok(init)) = (args.str(0).map(str::to_owned), args.str(1).map(str::to_owned)) else {
        return bad(from, SPAWN);
    };
    args.0.drain(..2);
    let refuse = |core: &mut Core, why: &str| {
        tracing::warn!(from = ?from.map(NodeId::as_str), port = %name, init = %init, "spawn refused: {why}");
        if !name.is_empty() && !name.contains('#') {
            core.remember_failed_spawn(&name, Reason::die(format!("spawn refused: {why}")));
        }
    };
    if name.is_empty() || name.contains('#') || name.contains('\n') {
        return refuse(core, "invalid port name");
    }
    if core.shared.num_of(&name).is_some() {
        return refuse(core, "the name belongs to this node's own name space");
    }
    let key = Key::Name(name.as_str().into());
    if core.exists(&key) {
        return refuse(core, "a port of that name exists");
    }
    if init == GLOBAL_CONNECT {
        crate::global::connect_port(core, from, key, args);
        return;
    }
    core.spawn_local(key, &init, args);
}
