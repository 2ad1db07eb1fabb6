//! The context of a running callback (`$SELF`), `psub`, and port builders.

use std::cell::OnceCell;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::core::{Action, Callback, Cmd, Core, Handler, Key, PortEntry};
use crate::error::Error;
use crate::id::{NodeId, PortId};
use crate::monitor::{IntoMonAction, MonGuard, MonTarget};
use crate::node::{Node, TimerGuard};
use crate::reason::Reason;
use crate::value::Msg;

/// What a callback may return: `()`, or [`aemp::Result<()>`](crate::Result)
/// whose error kills the port with `("die", error text)`.
///
/// Only one `Result` type is accepted, so a callback that uses `?` and ends
/// with `Ok(())` needs no annotation: the compiler knows the error type.
/// An error of another type converts with `?` when it implements
/// `Into<aemp::Error>` (I/O errors, `aemp-supervisor`'s errors), or with
/// `.map_err(aemp::Error::die)` when it only implements `Display`.
///
/// ```
/// use aemp::{msg, Node};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> aemp::Result<()> {
/// let node = Node::builder().build().await?;
/// let server = node.port_builder()
///     .on("ping", |ctx, m| {
///         let reply = m.port(0)?;
///         ctx.snd(&reply, msg!["pong"]);
///         Ok(())
///     })
///     .on("parse", |_ctx, m| {
///         let n: u32 = m.str(0)?.parse().map_err(aemp::Error::die)?;
///         assert!(n > 0);
///         Ok(())
///     })
///     .create();
/// let answer = node.call(&server, msg!["ping"], std::time::Duration::from_secs(5)).await?;
/// assert_eq!(answer, msg!["pong"]);
/// # node.shutdown().await; Ok(()) }
/// ```
#[diagnostic::on_unimplemented(
    message = "a callback returns `()` or `aemp::Result<()>`, not `{Self}`",
    label = "this callback's return type",
    note = "turn another error into an `aemp::Error` with `?` (for types that implement `Into<aemp::Error>`) or `.map_err(aemp::Error::die)`"
)]
pub trait CallbackResult {
    /// Converts to the result the runtime acts on.
    fn into_result(self) -> Result<(), Error>;
}

impl CallbackResult for () {
    fn into_result(self) -> Result<(), Error> {
        Ok(())
    }
}

impl CallbackResult for Result<(), Error> {
    fn into_result(self) -> Result<(), Error> {
        self
    }
}

pub(crate) fn boxed<F, R>(mut f: F) -> Callback
where
    F: FnMut(&mut Ctx<'_>, Msg) -> R + Send + 'static,
    R: CallbackResult,
{
    Box::new(move |ctx, msg| f(ctx, msg).into_result())
}

/// A tag callback: it gets the message without its tag, so an error about
/// one of its elements is told with the tag and counted from after it
/// ([`Error::Element`]).
pub(crate) fn boxed_tag<F, R>(tag: &str, mut f: F) -> Callback
where
    F: FnMut(&mut Ctx<'_>, Msg) -> R + Send + 'static,
    R: CallbackResult,
{
    let tag: Box<str> = tag.into();
    Box::new(move |ctx, msg| f(ctx, msg).into_result().map_err(|e| e.in_tag_callback(&tag)))
}

/// The context a callback runs in: the port it runs for (`$SELF`) and
/// direct access to the node.
///
/// Everything a [`Node`] handle can do, a `Ctx` can do too, with one
/// difference: a `Ctx` acts at once, inside the dispatcher, while a `Node`
/// handle queues a request for it. So inside a callback, prefer the `Ctx`:
/// a `rcv` made through it is in place before the next message is handled.
pub struct Ctx<'a> {
    pub(crate) core: &'a mut Core,
    key: &'a Key,
    self_id: OnceCell<PortId>,
}

impl fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx").field("self", &self.self_id()).finish()
    }
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(core: &'a mut Core, key: &'a Key) -> Ctx<'a> {
        Ctx { core, key, self_id: OnceCell::new() }
    }

    /// The port this callback runs for: AnyEvent::MP's `$SELF`.
    pub fn self_id(&self) -> PortId {
        self.self_id.get_or_init(|| self.core.port_id_of(self.key)).clone()
    }

    /// This node's ID (`NODE`).
    pub fn node_id(&self) -> &NodeId {
        &self.core.shared.id
    }

    /// A handle to this node, for use outside the callback (tasks, threads).
    pub fn node(&self) -> Node {
        Node::from_shared(self.core.shared.clone())
    }

    /// Sends a message to a local or remote port. Never blocks.
    pub fn snd(&mut self, port: &PortId, msg: Msg) {
        self.core.snd(port, msg);
    }

    /// Creates a port without callbacks.
    pub fn port(&mut self) -> PortId {
        let n = self.core.shared.next_port();
        self.core.insert(Key::Num(n), PortEntry::new(Handler::Empty));
        self.core.shared.num_port_id(n)
    }

    /// Creates a port with a default callback.
    pub fn port_with<F, R>(&mut self, f: F) -> PortId
    where
        F: FnMut(&mut Ctx<'_>, Msg) -> R + Send + 'static,
        R: CallbackResult,
    {
        let n = self.core.shared.next_port();
        self.core.insert(Key::Num(n), PortEntry::new(Handler::Cb(boxed(f))));
        self.core.shared.num_port_id(n)
    }

    /// Replaces the default callback of a local port.
    pub fn rcv<F, R>(&mut self, port: &PortId, f: F)
    where
        F: FnMut(&mut Ctx<'_>, Msg) -> R + Send + 'static,
        R: CallbackResult,
    {
        if let Some(key) = local_key(&self.core.shared, port) {
            self.core.set_default(&key, Handler::Cb(boxed(f)));
        }
    }

    /// Registers or replaces the callback for messages whose first element is
    /// `tag`; the callback gets the message without its tag.
    pub fn rcv_tag<F, R>(&mut self, port: &PortId, tag: &str, f: F) -> PortId
    where
        F: FnMut(&mut Ctx<'_>, Msg) -> R + Send + 'static,
        R: CallbackResult,
    {
        if let Some(key) = local_key(&self.core.shared, port) {
            self.core.set_tag(&key, tag, Some(Handler::Cb(boxed_tag(tag, f))));
        }
        port.clone()
    }

    /// Removes the callback for `tag` (`rcv $port, tag` without callback).
    pub fn unrcv(&mut self, port: &PortId, tag: &str) {
        if let Some(key) = local_key(&self.core.shared, port) {
            self.core.set_tag(&key, tag, None);
        }
    }

    /// Kills a port; [`Reason::normal()`] for a normal kill.
    pub fn kil(&mut self, port: &PortId, reason: impl Into<Reason>) {
        self.core.kil(port, reason.into());
    }

    /// Kills this port (`kil $SELF, @reason`).
    pub fn kil_self(&mut self, reason: impl Into<Reason>) {
        let key = self.key.clone();
        self.core.kill(&key, reason.into());
    }

    /// Monitors a port: see [`Node::mon`].
    pub fn mon(&mut self, port: &PortId, action: impl IntoMonAction) -> MonGuard {
        let id = self.core.shared.next_mon();
        self.core.mon(port, id, crate::monitor::action_of(action));
        MonGuard::new(self.node(), MonTarget::Port(port.clone()), id)
    }

    /// `mon $port` without action: kill this port when `port` dies
    /// abnormally.
    pub fn mon_self(&mut self, port: &PortId) -> MonGuard {
        let me = self.self_id();
        self.mon(port, me)
    }

    /// Keeps `value` alive until `port` dies.
    pub fn mon_guard<T: Send + 'static>(&mut self, port: &PortId, value: T) -> MonGuard {
        let id = self.core.shared.next_mon();
        self.core.mon(port, id, Action::Keep(Box::new(value)));
        MonGuard::new(self.node(), MonTarget::Port(port.clone()), id)
    }

    /// Spawns a port on `node` running the registered init function `init`
    /// ; returns its ID at once.
    pub fn spawn(&mut self, node: &NodeId, init: &str, args: Msg) -> PortId {
        let shared = self.core.shared.clone();
        let n = shared.next_port();
        if *node == shared.id {
            self.core.spawn_local(Key::Num(n), init, args);
            shared.num_port_id(n)
        } else {
            crate::node::spawn_remote(&shared, node, &shared.num_port_name(n), init, args)
        }
    }

    /// Runs the registered init function `init` with `args` in this port's
    /// context, as if this port had been spawned with it (for wrappers that
    /// set a port up and then hand it to a user's init function).
    ///
    /// # Errors
    /// [`Error::NoSuchPort`] when no init function of that name is
    /// registered; otherwise what the init function returns.
    pub fn run_init(&mut self, init: &str, args: Msg) -> Result<(), Error> {
        let f = self
            .core
            .init_fn(init)
            .ok_or_else(|| Error::NoSuchPort(format!("unknown init function {init:?}")))?;
        f(self, args)
    }

    /// Sends `msg` to `port` after `delay`.
    pub fn after(&mut self, delay: Duration, port: &PortId, msg: Msg) -> TimerGuard {
        self.node().after(delay, port, msg)
    }

    /// Captures `$SELF`: the returned [`Psub`] runs `f` later in this port's
    /// context, from anywhere (a timer, a task, another thread). An error
    /// or panic in `f` kills the port. Once the port is dead, calls do
    /// nothing.
    pub fn psub<A, F, R>(&self, f: F) -> Psub<A>
    where
        A: Send + 'static,
        F: FnMut(&mut Ctx<'_>, A) -> R + Send + 'static,
        R: CallbackResult,
    {
        let mut f = f;
        Psub {
            node: self.node(),
            key: self.key.clone(),
            f: Arc::new(Mutex::new(Box::new(move |ctx: &mut Ctx<'_>, a: A| f(ctx, a).into_result()))),
        }
    }

    /// Runs a future tied to this port: it is cancelled when the port dies,
    /// and an error it returns kills the port with `("die", text)`.
    pub fn spawn_task<Fut, E>(&mut self, fut: Fut)
    where
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display + 'static,
    {
        let node = self.node();
        let port = self.self_id();
        let handle = self.core.shared.tasks.spawn(async move {
            if let Err(e) = fut.await {
                node.kil(&port, Reason::die(e));
            }
        });
        let key = self.key.clone();
        self.core.attach_task(&key, handle.abort_handle());
    }
}

/// Finds the table key of a port that must be local.
pub(crate) fn local_key(shared: &crate::core::Shared, port: &PortId) -> Option<Key> {
    if shared.is_local(port) {
        Some(shared.key_of(port.name()))
    } else {
        tracing::warn!(%port, "rcv on a port of another node ignored");
        None
    }
}

type PsubFn<A> = Box<dyn FnMut(&mut Ctx<'_>, A) -> Result<(), Error> + Send>;

/// A closure bound to a port's context, made by [`Ctx::psub`].
pub struct Psub<A = ()> {
    node: Node,
    key: Key,
    f: Arc<Mutex<PsubFn<A>>>,
}

impl<A> Clone for Psub<A> {
    fn clone(&self) -> Self {
        Psub { node: self.node.clone(), key: self.key.clone(), f: self.f.clone() }
    }
}

impl<A> fmt::Debug for Psub<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Psub").field("port", &self.key).finish()
    }
}

impl<A: Send + 'static> Psub<A> {
    /// Queues a call of the closure with `arg` in the port's context.
    pub fn call(&self, arg: A) {
        let key = self.key.clone();
        let f = self.f.clone();
        self.node.shared().push(Cmd::Call(Box::new(move |core: &mut Core| {
            core.run_in(&key, |ctx| (f.lock())(ctx, arg));
        })));
    }
}

/// Builds a port with several tag callbacks at once, from
/// [`Node::port_builder`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let node = aemp::Node::builder().build().await.unwrap();
/// let port = node
///     .port_builder()
///     .on("ping", |ctx, m| { let r = m.port(0)?; ctx.snd(&r, aemp::msg!["pong"]); Ok(()) })
///     .on("quit", |ctx, _| ctx.kil_self(aemp::Reason::normal()))
///     .create();
/// # let _ = port; node.shutdown().await; }
/// ```
#[must_use = "call .create() to make the port"]
pub struct PortBuilder {
    node: Node,
    default: Option<Callback>,
    tags: Vec<(String, Callback)>,
}

impl fmt::Debug for PortBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortBuilder")
            .field("tags", &self.tags.iter().map(|t| &t.0).collect::<Vec<_>>())
            .finish()
    }
}

impl PortBuilder {
    pub(crate) fn new(node: Node) -> PortBuilder {
        PortBuilder { node, default: None, tags: Vec::new() }
    }

    /// Adds a callback for messages tagged `tag`.
    pub fn on<F, R>(mut self, tag: &str, f: F) -> Self
    where
        F: FnMut(&mut Ctx<'_>, Msg) -> R + Send + 'static,
        R: CallbackResult,
    {
        self.tags.push((tag.to_owned(), boxed_tag(tag, f)));
        self
    }

    /// Sets the default callback.
    pub fn default<F, R>(mut self, f: F) -> Self
    where
        F: FnMut(&mut Ctx<'_>, Msg) -> R + Send + 'static,
        R: CallbackResult,
    {
        self.default = Some(boxed(f));
        self
    }

    /// Creates the port and returns its ID; it can be used at once.
    pub fn create(self) -> PortId {
        let shared = self.node.shared().clone();
        let n = shared.next_port();
        let default = self.default.map_or(Handler::Empty, Handler::Cb);
        let tags = self.tags;
        shared.push(Cmd::Call(Box::new(move |core: &mut Core| {
            let key = Key::Num(n);
            core.insert(key.clone(), PortEntry::new(default));
            for (t, cb) in tags {
                core.set_tag(&key, &t, Some(Handler::Cb(cb)));
            }
        })));
        shared.num_port_id(n)
    }
}
