//! The chat client's port, untyped.

// ANCHOR: imports
use aemp::{Msg, Node, PortId};
// ANCHOR_END: imports

// ANCHOR: client_port
/// Creates a client's port: every message from the server becomes a line
/// of text, handed to `show`.
pub fn client_port(node: &Node, mut show: impl FnMut(String) + Send + 'static) -> PortId {
    node.port_with(move |_ctx, m| show(render(&m)))
}

/// The line a client shows for a message from the server.
pub fn render(m: &Msg) -> String {
    let text = |i| m.str(i).unwrap_or("?");
    match m.tag() {
        Some("joined") => format!("{} joins", text(1)),
        Some("said") => format!("<{}> {}", text(1), text(2)),
        Some("quit") => format!("{} quits ({})", text(1), text(2)),
        _ => format!("(unexpected message {m})"),
    }
}
// ANCHOR_END: client_port
