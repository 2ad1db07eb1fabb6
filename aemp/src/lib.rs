//! # aemp: Erlang-style message passing for Rust
//!
//! aemp gives Rust programs the model of the Perl framework AnyEvent::MP:
//! nodes with string IDs, ports that receive messages through callbacks,
//! monitors that tell you when a port dies or a message may have been lost,
//! spawning ports on other nodes by init-function name, and a wire protocol
//! that talks to AnyEvent::MP 0.9 nodes.
//!
//! The seed's functions map onto this API:
//!
//! | AnyEvent::MP | aemp |
//! |---|---|
//! | `initialise_node $profile` | [`initialise_node`], [`Node::builder`] |
//! | `NODE`, `$NODE` | [`Node::id`], [`Ctx::node_id`] |
//! | `node_of $port` | [`node_of`], [`PortId::node`] |
//! | `$SELF` | [`Ctx::self_id`] |
//! | `snd $port, @msg` | [`Node::snd`], [`Ctx::snd`] with [`msg!`] |
//! | `port`, `port { ... }` | [`Node::port`], [`Node::port_with`] |
//! | `rcv $port, $cb` | [`Node::rcv`] |
//! | `rcv $port, tag => $cb` | [`Node::rcv_tag`], [`Node::unrcv`], [`Node::port_builder`] |
//! | `psub { ... }` | [`Ctx::psub`] |
//! | `kil $port, @reason` | [`Node::kil`], [`Ctx::kil_self`] |
//! | `mon $port, ...` (four forms) | [`Node::mon`], [`Ctx::mon`], [`Ctx::mon_self`], [`MonAction`] |
//! | `mon_guard $port, @refs` | [`Node::mon_guard`] |
//! | `spawn $node, $initfunc, @args` | [`Node::register`], [`Node::spawn`] |
//! | `after $timeout, ...` | [`Node::after`], [`Node::after_fn`] |
//!
//! ```
//! use aemp::{msg, Node};
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> aemp::Result<()> {
//! let node = Node::builder().build().await?;
//! let server = node.port_builder()
//!     .on("ping", |ctx, m| -> aemp::Result<()> {
//!         let reply = m.port(0)?;
//!         ctx.snd(&reply, msg!["pong"]);
//!         Ok(())
//!     })
//!     .create();
//! let answer = node.call(&server, msg!["ping"], std::time::Duration::from_secs(5)).await?;
//! assert_eq!(answer, msg!["pong"]);
//! node.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! ## Execution model
//! Each node has one dispatcher task that owns its ports and runs their
//! callbacks one at a time, in the order messages were queued. Callbacks are
//! plain closures and must not block; long work belongs in a task
//! ([`Ctx::spawn_task`]) or an async port ([`Node::spawn_async`]).

pub mod config;
mod core;
mod de;
mod error;
mod global;
mod id;
mod inbox;
mod kernel;
mod monitor;
mod net;
mod node;
mod port;
mod reason;
mod ser;
pub mod tls;
mod util;
mod value;
pub mod wire;

pub use crate::de::{from_value, from_value_ref, from_values};
pub use crate::error::{Error, Result};
pub use crate::global::GroupEvent;
pub use crate::id::{node_of, NodeId, PortId};
pub use crate::inbox::Inbox;
pub use crate::monitor::{IntoMonAction, MonAction, MonGuard};
pub use crate::net::NetConfig;
pub use crate::node::{Node, NodeBuilder, TimerGuard};
pub use crate::port::{CallbackResult, Ctx, PortBuilder, Psub};
pub use crate::reason::Reason;
pub use crate::ser::to_value;
pub use crate::value::{Bytes, Map, Msg, Value};

/// Starts a node from a profile of the configuration file (the seed's
/// `initialise_node`, P05).
///
/// The file is `$AEMP_CONFIG`, else the per-user default
/// ([`config::Config::default_path`]); a missing file means defaults. An
/// empty `profile` means the host name. The profile's node ID becomes this
/// node's (`anon/` a random one), it binds its `binds` (by default the node
/// ID read as `host:port`), dials its `seeds`, and spawns its `services`
/// (init functions registered with [`register_init`]) on itself.
///
/// # Errors
/// [`Error::Config`] for a malformed file or profile, and what
/// [`NodeBuilder::build`] returns.
pub async fn initialise_node(profile: &str) -> Result<Node> {
    let cfg = config::Config::load(&config::Config::default_path())?;
    let name = if profile.is_empty() { config::hostname() } else { profile.to_owned() };
    let p = cfg.profile(&name)?;
    let node = NodeBuilder::from_profile(&p)?.build().await?;
    for s in &p.services {
        if s.ends_with("::") {
            tracing::debug!(service = %s, "package-only service entry ignored");
            continue;
        }
        node.spawn(node.id(), s, Msg::new());
    }
    Ok(node)
}

/// Makes a new private key and self-signed certificate (CA:TRUE, for 10
/// years) in-process, as one PEM: what `aemp gencert` stores. Nodes that
/// share it trust each other (SPEC A.5).
///
/// # Errors
/// [`Error::Tls`] if key generation fails.
pub fn generate_cert_pem(common_name: &str) -> Result<String> {
    crate::tls::generate_cert_pem(common_name)
}

/// Checks that a PEM holds a usable key and certificate.
///
/// # Errors
/// [`Error::Tls`] naming the problem.
pub fn check_cert_pem(pem: &str) -> Result<()> {
    crate::tls::TlsSetup::from_pem(pem).map(|_| ())
}

/// Registers an init function for every node of this process (see
/// [`Node::register`], which registers for one node and takes precedence).
pub fn register_init<F, R>(name: &str, f: F)
where
    F: Fn(&mut Ctx<'_>, Msg) -> R + Send + Sync + 'static,
    R: CallbackResult,
{
    crate::core::register_global_init(
        name,
        std::sync::Arc::new(move |ctx: &mut Ctx<'_>, m| f(ctx, m).into_result()),
    );
}
