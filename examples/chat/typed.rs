//! The chat service with typed messages (`#[derive(AempMessage)]`), and
//! per-client sessions spawned on the server's node.
//!
//! On the wire nothing changes: [`ToServer`] and [`ToClient`] are the
//! messages of the untyped version, so typed and untyped servers and
//! clients can be mixed.
//!
//! The fields of the message variants are described by the variants'
//! docs, which show each message's wire shape.
#![allow(missing_docs)]

// ANCHOR: imports
use std::collections::HashMap;

use aemp::{AempMessage, Ctx, Node, NodeId, Reason, TypedPortId};
// ANCHOR_END: imports

// ANCHOR: messages
/// What the server takes.
#[derive(AempMessage, Debug, Clone, PartialEq)]
pub enum ToServer {
    /// `["join", client, nick]`
    Join { client: TypedPortId<ToClient>, nick: String },
    /// `["privmsg", nick, text]`
    Privmsg { nick: String, text: String },
    /// `["gone", client, nick, reason]`: sent by the server's own monitors.
    Gone { client: TypedPortId<ToClient>, nick: String, reason: String },
}

/// What the server sends to every client.
#[derive(AempMessage, Debug, Clone, PartialEq)]
pub enum ToClient {
    /// `["joined", nick]`
    Joined { nick: String },
    /// `["said", nick, text]`
    Said { nick: String, text: String },
    /// `["quit", nick, reason]`
    Quit { nick: String, reason: String },
}
// ANCHOR_END: messages

// ANCHOR: server
/// Creates the typed chat server's port on `node`.
pub fn server_port(node: &Node) -> TypedPortId<ToServer> {
    // One callback gets every message, so it can own the state: no lock.
    let mut clients: HashMap<TypedPortId<ToClient>, String> = HashMap::new();
    node.port_typed(move |ctx, m: ToServer| {
        let event = match m {
            ToServer::Join { client, nick } => {
                if clients.insert(client.clone(), nick.clone()).is_none() {
                    watch(ctx, client, nick.clone());
                }
                ToClient::Joined { nick }
            }
            ToServer::Privmsg { nick, text } => ToClient::Said { nick, text },
            ToServer::Gone { client, nick, reason } => {
                if clients.remove(&client).is_none() {
                    return Ok(());
                }
                ToClient::Quit { nick, reason }
            }
        };
        for client in clients.keys() {
            ctx.snd_typed(client, &event)?;
        }
        Ok(())
    })
}

/// Monitors a client with a closure: when its port dies, the server gets
/// a typed `Gone` message with the reason as text.
fn watch(ctx: &mut Ctx<'_>, client: TypedPortId<ToClient>, nick: String) {
    let node = ctx.node();
    let me: TypedPortId<ToServer> = ctx.self_typed();
    let port = client.id().clone();
    ctx.mon(&port, move |reason: Reason| {
        let gone = ToServer::Gone { client, nick, reason: reason.to_string() };
        let _ = node.snd_typed(&me, &gone);
    })
    .keep();
}
// ANCHOR_END: server

// ANCHOR: client_port
/// Creates a typed client port: every event becomes a line for `show`.
pub fn client_port(node: &Node, mut show: impl FnMut(String) + Send + 'static) -> TypedPortId<ToClient> {
    node.port_typed(move |_ctx, event: ToClient| {
        show(match event {
            ToClient::Joined { nick } => format!("{nick} joins"),
            ToClient::Said { nick, text } => format!("<{nick}> {text}"),
            ToClient::Quit { nick, reason } => format!("{nick} quits ({reason})"),
        })
    })
}
// ANCHOR_END: client_port

// ANCHOR: session
/// What a client sends to its session.
#[derive(AempMessage, Debug, Clone, PartialEq)]
pub enum ToSession {
    /// `["say", text]`: say something under the session's nick.
    Say { text: String },
}

/// The name under which the server's node registers [`session_init`].
pub const SESSION_INIT: &str = "eg_chat::session";

/// The init function of a session, run on the server's node in a port
/// that a client spawned, with the arguments `[server, client, nick]`.
///
/// # Errors
/// When the join message cannot be encoded (the session then dies).
pub fn session_init(
    ctx: &mut Ctx<'_>,
    (server, client, nick): (TypedPortId<ToServer>, TypedPortId<ToClient>, String),
) -> aemp::Result<()> {
    // The other half of the two-way monitoring: if the client dies
    // abnormally (its node is lost, say), this session dies with it.
    ctx.mon_self(client.id()).keep();
    // And if the server dies, so does the session (and, through its link,
    // the client's port: the client then looks for a server again).
    ctx.mon_self(server.id()).keep();
    ctx.snd_typed(&server, &ToServer::Join { client, nick: nick.clone() })?;
    let me = ctx.self_id();
    ctx.rcv_typed(&me, move |ctx, m: ToSession| match m {
        // The session, not the client, decides the nick.
        ToSession::Say { text } => ctx.snd_typed(&server, &ToServer::Privmsg { nick: nick.clone(), text }),
    });
    Ok(())
}
// ANCHOR_END: session

// ANCHOR: start
/// Starts the typed server on a networked node: its port in the group
/// [`GROUP`](super::GROUP), and the session init function registered.
///
/// # Errors
/// When the node has no network.
pub fn start(node: &Node) -> aemp::Result<TypedPortId<ToServer>> {
    node.register_typed(SESSION_INIT, session_init);
    let server = server_port(node);
    node.register_group(server.id(), super::GROUP)?;
    Ok(server)
}
// ANCHOR_END: start

// ANCHOR: connect
/// A client's connection to the chat: its port and its session.
#[derive(Debug)]
pub struct Connection {
    /// The client's port, which receives [`ToClient`] events.
    pub me: TypedPortId<ToClient>,
    /// The session on the server's node.
    pub session: TypedPortId<ToSession>,
}

/// Joins the chat served by `server` as `nick`: creates the client port,
/// spawns a session for it on the server's node, and links the two.
///
/// # Errors
/// When the spawn arguments cannot be encoded.
pub fn connect(
    node: &Node,
    server: &TypedPortId<ToServer>,
    nick: &str,
    show: impl FnMut(String) + Send + 'static,
) -> aemp::Result<Connection> {
    let me = client_port(node, show);
    let server_node: NodeId = server.id().node();
    let session: TypedPortId<ToSession> =
        node.spawn_typed(&server_node, SESSION_INIT, &(server, &me, nick))?;
    // The spawned port's ID is known at once: monitor it right away. If
    // the session dies abnormally (also if the spawn failed), so does the
    // client's port.
    node.mon(session.id(), me.id()).keep();
    Ok(Connection { me, session })
}

impl Connection {
    /// Says something in the chat.
    ///
    /// # Errors
    /// When the message cannot be encoded.
    pub fn say(&self, node: &Node, text: &str) -> aemp::Result<()> {
        node.snd_typed(&self.session, &ToSession::Say { text: text.to_owned() })
    }

    /// Leaves: kills the session (a remote kill, which only aemp nodes
    /// accept) and then the client's own port, both normally.
    pub async fn leave(self, node: &Node) {
        node.kil(self.session.id(), Reason::normal());
        let server = self.session.id().clone();
        super::leave(node, self.me.id(), &server).await;
    }
}
// ANCHOR_END: connect
