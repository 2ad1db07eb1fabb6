//! The chat server, untyped: one port that takes `["join", client, nick]`
//! and `["privmsg", nick, text]` and tells every client what happens.

// ANCHOR: imports
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aemp::{msg, Ctx, MonAction, Msg, Node, PortId, Reason};
// ANCHOR_END: imports

// ANCHOR: room
/// The server's state: every client port that joined, with its nick.
#[derive(Debug, Default)]
pub struct Room {
    clients: BTreeMap<PortId, String>,
}

impl Room {
    /// Sends `m` to every client.
    fn broadcast(&self, ctx: &mut Ctx<'_>, m: Msg) {
        for client in self.clients.keys() {
            ctx.snd(client, m.clone());
        }
    }
}
// ANCHOR_END: room

// ANCHOR: server
/// Creates the chat server's port on `node`.
pub fn server_port(node: &Node) -> PortId {
    // Three tag callbacks share the room; the node runs them one at a
    // time, so the lock is never contended.
    let room = Arc::new(Mutex::new(Room::default()));
    let (for_join, for_privmsg, for_gone) = (room.clone(), room.clone(), room);
    node.port_builder()
        // ["join", client, nick]: the callback gets [client, nick].
        .on("join", move |ctx, m| {
            let client = m.port(0)?;
            let nick = m.str(1)?.to_owned();
            let mut room = for_join.lock().expect("room lock");
            if room.clients.insert(client.clone(), nick.clone()).is_none() {
                watch(ctx, &client, &nick);
            }
            room.broadcast(ctx, msg!["joined", nick]);
            Ok(())
        })
        // ["privmsg", nick, text]
        .on("privmsg", move |ctx, m| {
            let (nick, text) = (m.str(0)?, m.str(1)?);
            for_privmsg.lock().expect("room lock").broadcast(ctx, msg!["said", nick, text]);
            Ok(())
        })
        // ["gone", client, nick, reason...]: sent by the monitors of `watch`.
        .on("gone", move |ctx, m| {
            let client = m.port(0)?;
            let nick = m.str(1)?.to_owned();
            let reason = Reason::from(m.rest(2));
            let mut room = for_gone.lock().expect("room lock");
            if room.clients.remove(&client).is_some() {
                room.broadcast(ctx, msg!["quit", nick, reason.to_string()]);
            }
            Ok(())
        })
        .create()
}
// ANCHOR_END: server

// ANCHOR: watch
/// Monitors a client: when its port dies, for whatever reason, this port
/// (the server) receives `["gone", client, nick, reason...]`.
fn watch(ctx: &mut Ctx<'_>, client: &PortId, nick: &str) {
    let me = ctx.self_id();
    ctx.mon(client, MonAction::send(&me, msg!["gone", client, nick])).keep();
}
// ANCHOR_END: watch

// ANCHOR: register
/// Starts the chat server on a networked node and registers it in the
/// Global group [`GROUP`](super::GROUP), where clients look for it.
///
/// # Errors
/// When the node has no network (groups need one).
pub fn start(node: &Node) -> aemp::Result<PortId> {
    let server = server_port(node);
    node.register_group(&server, super::GROUP)?;
    Ok(server)
}
// ANCHOR_END: register
