//! Global: seed connectivity, the full mesh and port groups (SPEC A.10).

use crate::core::{Core, Key};
use crate::id::NodeId;
use crate::value::Msg;

/// Runs `AnyEvent::MP::Global::connect` for a peer (placeholder).
pub(crate) fn connect_port(core: &mut Core, from: Option<&NodeId>, key: Key, _args: Msg) {
    let _ = (core, from, key);
}
