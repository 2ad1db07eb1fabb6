//! # aemp-supervisor: supervision trees for aemp
//!
//! A supervisor is a port that starts children from [`ChildSpec`]s (a
//! registered init function name, its arguments, a [`Placement`], a
//! [`Restart`] type and a [`Shutdown`]), watches them, and restarts them by
//! its [`Strategy`] when they exit, as long as the restart intensity
//! ([`Intensity`]: at most N restarts in T) allows. Past it, the supervisor
//! stops its children and exits with `("max_restarts", text, child ID,
//! [reason])`, and its own supervisor deals with that:
//!
//! ```text
//!                       top (one_for_one, node A)
//!                      /            |             \
//!         db (worker, A)   web (supervisor, A)    cache (worker, group "cache")
//!                          /       |        \
//!                   http-1 (B)  http-2 (C)  http-3 (B)      rest_for_one
//!
//!   http-2 crashes  -> web restarts http-2 and http-3 (rest_for_one)
//!   web gives up    -> top restarts web (and with it the http workers)
//!   node B is lost  -> cache moves to another node of its group
//! ```
//!
//! ## Links
//! Each child is started through a small wrapper port ([`CHILD_INIT`], on
//! the child's node) that monitors the supervisor, spawns the user's init
//! function by name in a new port on its node, and links itself and that
//! port both ways: AnyEvent::MP's two-way `mon` idiom. The supervisor monitors
//! the wrapper. So a child dies with its supervisor (also across nodes, and
//! when the supervisor's node is lost), and the supervisor learns every
//! child exit with the child's own reason, `("transport_error", node, ...)`
//! when the child's node is lost.
//!
//! ## Confirmed starts
//! The wrapper sends the supervisor `["started", id, generation, port]`
//! once the user's init function returned and the port lives (a child
//! supervisor sends it itself once its own children are up). A child that
//! dies before that failed to start, and the caller gets its reason
//! ([`Error::StartFailed`]).
//!
//! ## Introspection
//! [`Supervisor::which_children`]; every start, exit and restart is a
//! `tracing` event with target `aemp_supervisor`, and optionally a message
//! to an observer port ([`SupervisorSpec::observer`]). A supervisor answers
//! `["which_children", reply]` with a map (see [`SupervisorInfo`]); on a
//! networked node it joins the Global group [`GROUP`], and the port
//! `NODE#aemp_supervisors` ([`DIRECTORY`]) answers `["list", reply]` with the
//! node's supervisors: what `aemp supervisors NODE` shows.
//!
//! ## Reasons
//! - `("max_restarts", "restart intensity exceeded: 4 restarts in 5s (at most
//!   3 allowed)", child ID, [the child's reason])`: the supervisor gave up
//!   ([`MAX_RESTARTS`]); its parent sees this abnormal exit and applies its
//!   own strategy and intensity, so failures escalate up the tree.
//! - `("start_failed", child ID, [the child's reason])`: an initial child
//!   failed to start ([`START_FAILED`]).
//! - `("shutdown", "killed by supervisor")`, `("shutdown", "timeout")`: a
//!   child stopped by its supervisor; `("shutdown", ...)` counts as an orderly
//!   exit for transient children.
//!
//! ## Protocol
//! Everything is a plain message, so other nodes (and AnyEvent::MP code)
//! can drive a supervisor. It accepts `["which_children", reply]` (answered
//! at once), and, handled in turn after the current restart work,
//! `["start_child", child spec map, reply]`, `["start_dynamic", [args],
//! reply]`, `["remove_child", id, reply]` (answers `["ok", ...]` or
//! `["error", kind, detail...]`), `["stop", reply]` and `["shutdown"]`.
//! Specs travel as maps ([`SupervisorSpec::to_value`],
//! [`ChildSpec::to_value`]); spawning [`SUPERVISOR_INIT`] with a spec map
//! starts a supervisor on any node that called [`install`].
//!
//! ```
//! use aemp::{msg, Node};
//! use aemp_supervisor::{ChildSpec, Strategy, Supervisor, SupervisorSpec};
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let node = Node::builder().build().await?;
//! node.register("Doc::worker", |ctx, _args| {
//!     let me = ctx.self_id();
//!     ctx.rcv(&me, |_ctx, _m| {});
//! });
//! let spec = SupervisorSpec::new(Strategy::OneForOne)
//!     .child(ChildSpec::new("a", "Doc::worker"))
//!     .child(ChildSpec::new("b", "Doc::worker"));
//! let sup = Supervisor::start(&node, spec).await?;
//! let children = sup.which_children().await?;
//! assert_eq!(children.len(), 2);
//! sup.stop().await?;
//! node.shutdown().await;
//! # Ok(()) }
//! ```

mod error;
mod handle;
mod info;
mod intensity;
mod server;
mod spec;
mod strategy;

pub use crate::error::{Error, Result};
pub use crate::handle::Supervisor;
pub use crate::info::{ChildInfo, ChildStatus, SupervisorInfo};
pub use crate::intensity::{Backoff, Intensity, RestartWindow};
pub use crate::server::{install, CHILD_INIT, DIRECTORY, GROUP, MAX_RESTARTS, START_FAILED};
pub use crate::spec::{ChildKind, ChildSpec, Placement, Restart, Shutdown, SupervisorSpec, SUPERVISOR_INIT};
pub use crate::strategy::{decide, plan, ChildState, Decision, ExitKind, Plan, Strategy};

/// A supervisor error as an [`aemp::Error`], so that `?` works in functions
/// that return [`aemp::Result`]: [`Error::Aemp`] gives back the node's error,
/// every other one becomes [`aemp::Error::Other`], from which
/// [`aemp::Error::other_ref`] gets it back.
impl From<Error> for aemp::Error {
    fn from(e: Error) -> aemp::Error {
        match e {
            Error::Aemp(e) => e,
            other => aemp::Error::other(other),
        }
    }
}
