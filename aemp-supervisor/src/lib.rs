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
//! A child is an ordinary init function. To stop it, its supervisor sends
//! it `["shutdown"]` and waits 5 seconds (the default [`Shutdown`]); a child
//! still alive then is killed with `("shutdown", "timeout")`. [`on_shutdown`]
//! gives a child a graceful stop without writing one: it handles the
//! request, runs a cleanup and exits at once with `("shutdown", "stopped
//! by supervisor")`, an orderly exit.
//!
//! ```
//! use aemp::{msg, Node};
//! use aemp_supervisor::{on_shutdown, ChildSpec, Strategy, Supervisor, SupervisorSpec};
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let node = Node::builder().build().await?;
//! node.register("Doc::worker", |ctx, _args| {
//!     let me = ctx.self_id();
//!     ctx.rcv(&me, |_ctx, _m| { /* the work */ });
//!     // Without this, stopping the child would take the 5 s shutdown timeout.
//!     on_shutdown(ctx, |_ctx| { /* flush, close, say goodbye */ });
//! });
//! let spec = SupervisorSpec::new(Strategy::OneForOne)
//!     .child(ChildSpec::new("a", "Doc::worker"))
//!     .child(ChildSpec::new("b", "Doc::worker"));
//! let sup = Supervisor::start(&node, spec).await?;
//! assert_eq!(sup.count_children().await?.active, 2);
//! sup.terminate_child("b").await?; // stopped, its spec kept
//! sup.restart_child("b").await?;
//! sup.stop().await?; // b, then a
//! node.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! ## What it follows
//! The semantics are OTP's supervisor's where it has them: the three
//! strategies and simple-one-for-one, restart types, intensity, group
//! restarts that start every non-temporary child of the group again in
//! spec order (stopped ones included), a failed start that holds back the
//! rest of its group until it succeeds or the supervisor gives up,
//! [`terminate_child`](Supervisor::terminate_child),
//! [`restart_child`](Supervisor::restart_child),
//! [`delete_child`](Supervisor::delete_child),
//! [`count_children`](Supervisor::count_children),
//! [`which_children`](Supervisor::which_children). Dynamic supervisors
//! also take Elixir's `max_children`, removal by port and per-child
//! arguments and placement, and stop their children all at once on
//! shutdown. [`Backoff`] follows Akka's backoff supervisor.
//!
//! Where it differs, and why:
//! - Children are asked to stop by a message, not an exit signal (ports do
//!   not trap exits), hence [`on_shutdown`]; exit reasons are lists such as
//!   `("shutdown", text)` rather than atoms.
//! - A child may have a [start timeout](ChildSpec::start_timeout) and may
//!   [defer its start](defer_start): OTP waits for `init/1` however long it
//!   takes, which across nodes can be forever.
//! - Children can run on other nodes. When a child's node is lost, the
//!   other children on it count as lost too: nothing is sent there, no stop
//!   is awaited, and they are started again as their strategy says (on
//!   another node of their [group](Placement::Group)).
//! - [`terminate_child`](Supervisor::terminate_child) of a child waiting
//!   out a backoff delay cancels the pending restart (OTP has no backoff);
//!   [`restart_child`](Supervisor::restart_child) and
//!   [`delete_child`](Supervisor::delete_child) refuse such a child with
//!   [`Error::ChildNotStopped`], as OTP refuses a restarting one.
//! - [`remove_child`](Supervisor::remove_child) (terminate and delete in
//!   one) and [`max_children`](SupervisorSpec::max_children) work for every
//!   strategy; dynamic children get IDs (`template-n`) besides their ports.
//! - Progress is reported as typed [`Event`]s to an observer rather than
//!   logger reports (`tracing` gets them too).
//!
//! ## Links
//! Each child is started through a small wrapper port ([`CHILD_INIT`], on
//! the child's node) that monitors the supervisor, spawns the user's init
//! function by name in a new port on its node, and links itself and that
//! port both ways: AnyEvent::MP's two-way `mon` idiom. The supervisor monitors
//! the wrapper. So a child dies with its supervisor (also across nodes, and
//! when the supervisor's node is lost), and the supervisor learns every
//! child exit with the child's own reason, `("transport_error", node, ...)`
//! when the child's node is lost. A node hosts children only if its process
//! called [`install`] ([`Supervisor::start`] does); elsewhere a start fails
//! with a reason that says so.
//!
//! ## Confirmed starts
//! The wrapper confirms a start to the supervisor once the user's init
//! function returned and the port lives, or, if the init function called
//! [`defer_start`], once the child confirms it (a child supervisor confirms
//! once its own children are up). A child that dies before that, or is not
//! confirmed within its [start timeout](ChildSpec::start_timeout), failed
//! to start, and the caller gets its reason ([`Error::StartFailed`]).
//!
//! ## Introspection
//! [`Supervisor::which_children`] and [`Supervisor::info`] (each child's
//! status, node, restarts within the intensity period and in all, and the
//! time to its next attempt while it backs off),
//! [`Supervisor::count_children`]; every start, exit and restart is an
//! [`Event`] sent to an observer port ([`SupervisorSpec::observer`],
//! [`EventStream`]) and a `tracing` event with target `aemp_supervisor`. A
//! supervisor answers `["which_children", reply]` with a map (see
//! [`SupervisorInfo`]); on a networked node it joins the Global group
//! [`GROUP`], and the port `NODE#aemp_supervisors` ([`DIRECTORY`]) answers
//! `["list", reply]` with the node's supervisors: what `aemp supervisors
//! NODE` shows.
//!
//! ## Reasons
//! - `("max_restarts", "restart intensity exceeded: 4 restarts in 5s (at most
//!   3 allowed)", child ID, [the child's reason])`: the supervisor gave up
//!   ([`MAX_RESTARTS`]); its parent sees this abnormal exit and applies its
//!   own strategy and intensity, so failures escalate up the tree.
//! - `("start_failed", child ID, [the child's reason])`: an initial child
//!   failed to start ([`START_FAILED`]).
//! - [`root_cause`] (and [`Error::root_cause`]) takes these layers off:
//!   which child, of which child supervisor, failed, and why.
//! - `("start_timeout", text)`: a child did not confirm its start in time.
//! - `("shutdown", "killed by supervisor")`, `("shutdown", "timeout")`,
//!   `("shutdown", "stopped by supervisor")`: a child stopped by its
//!   supervisor; `("shutdown", ...)` counts as an orderly exit for
//!   transient children.
//!
//! ## Protocol
//! Everything is a plain message, so other nodes (and AnyEvent::MP code)
//! can drive a supervisor. It answers `["which_children", reply]` and
//! `["count_children", reply]` at once, and handles in turn, after the
//! current restart work, `["start_child", child spec map, reply]`,
//! `["start_dynamic", [args], reply]` (or with a placement before the
//! reply), `["terminate_child", child, reply]`, `["restart_child", id,
//! reply]`, `["delete_child", id, reply]`, `["remove_child", child,
//! reply]` (a child is an ID or `{"port": port}`; each answers `["ok",
//! ...]` or `["error", kind, detail...]`), `["stop", reply]` and
//! `["shutdown"]`. Specs travel as maps ([`SupervisorSpec::to_value`],
//! [`ChildSpec::to_value`]); spawning [`SUPERVISOR_INIT`] with a spec map
//! starts a supervisor on any node that called [`install`].

mod cause;
mod child;
mod children;
mod error;
mod event;
mod handle;
mod info;
mod intensity;
mod server;
mod spec;
mod strategy;

pub use crate::cause::{root_cause, RootCause};
pub use crate::child::{defer_start, on_shutdown, StartToken, CHILD_INIT};
pub use crate::error::{Error, Result};
pub use crate::event::{Event, EventKind, EventStream};
pub use crate::handle::{ChildRef, Supervisor};
pub use crate::info::{ChildCounts, ChildInfo, ChildStatus, SupervisorInfo};
pub use crate::intensity::{Backoff, Intensity, RestartWindow};
pub use crate::server::{install, DIRECTORY, GROUP, MAX_RESTARTS, START_FAILED};
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
