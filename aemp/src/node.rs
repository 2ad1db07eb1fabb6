//! The node handle and its builder.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::core::{self, Action, Cmd, Core, Handler, Key, PortEntry, Shared};
use crate::error::{Error, Result};
use crate::id::{NodeId, PortId};
use crate::inbox::{Inbox, InboxShared};
use crate::monitor::{IntoMonAction, MonGuard, MonTarget};
use crate::port::{boxed, boxed_tag, local_key, CallbackResult, Ctx, PortBuilder};
use crate::reason::Reason;
use crate::value::Msg;

/// A node: a set of ports, their dispatcher, and (when configured) the
/// network layer that connects it to other nodes.
///
/// `Node` is a cheap handle (an `Arc`); clone it freely. Every method
/// returns at once: requests are queued for the node's dispatcher and run in
/// order. Inside a callback, the [`Ctx`] it receives offers the same
/// operations and acts immediately.
///
/// ```
/// use aemp::{msg, Node, Reason};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> aemp::Result<()> {
/// let node = Node::builder().id("doc-node").build().await?;
/// let (tx, rx) = tokio::sync::oneshot::channel();
/// let mut tx = Some(tx);
/// let port = node.port_with(move |_ctx, m| {
///     if let Some(tx) = tx.take() { let _ = tx.send(m); }
/// });
/// node.snd(&port, msg!["hello", 1]);
/// assert_eq!(rx.await.unwrap(), msg!["hello", 1]);
/// node.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Node(Arc<Shared>);

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Node").field(&self.0.id).finish()
    }
}

/// Cancels a timer made by [`Node::after`] when dropped, unless
/// [`TimerGuard::keep`] was called.
#[must_use = "a dropped TimerGuard cancels its timer at once, and `let _ = ...` drops it: write `.keep()` after the call to let the timer fire, or hold the guard in a named variable (`let _timer = ...`)"]
#[derive(Debug)]
pub struct TimerGuard(Option<tokio::task::AbortHandle>);

impl TimerGuard {
    /// Lets the timer fire whatever happens to the guard.
    pub fn keep(mut self) {
        self.0 = None;
    }

    /// Cancels the timer now (the same as dropping the guard).
    pub fn cancel(self) {}
}

impl Drop for TimerGuard {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.abort();
        }
    }
}

impl Node {
    /// A builder for a node.
    pub fn builder() -> NodeBuilder {
        NodeBuilder::default()
    }

    pub(crate) fn from_shared(shared: Arc<Shared>) -> Node {
        Node(shared)
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.0
    }

    /// This node's ID (AnyEvent::MP's `NODE` / `$NODE`).
    pub fn id(&self) -> &NodeId {
        &self.0.id
    }

    /// Sends a message to a local or remote port. Never blocks:
    /// local messages are queued for the dispatcher, remote ones for the
    /// connection (which is made in the background if needed).
    pub fn snd(&self, port: &PortId, msg: Msg) {
        if self.0.is_local(port) {
            self.0.push(Cmd::Deliver(self.0.key_of(port.name()), msg));
        } else {
            self.0.remote().send(port, msg);
        }
    }

    /// Creates a port without callbacks: a message to it kills it.
    pub fn port(&self) -> PortId {
        let n = self.0.next_port();
        self.0.push(Cmd::Create(n, Handler::Empty));
        self.0.num_port_id(n)
    }

    /// Creates a port whose callback gets every message.
    pub fn port_with<F, R>(&self, f: F) -> PortId
    where
        F: FnMut(&mut Ctx<'_>, Msg) -> R + Send + 'static,
        R: CallbackResult,
    {
        let n = self.0.next_port();
        self.0.push(Cmd::Create(n, Handler::Cb(boxed(f))));
        self.0.num_port_id(n)
    }

    /// A builder for a port with several tag callbacks.
    pub fn port_builder(&self) -> PortBuilder {
        PortBuilder::new(self.clone())
    }

    /// Gives a port a fixed, well-known name on this node (for services such
    /// as `echo`): creates it if the name is unused and sets its default
    /// callback, as the original's `rcv "$NODE#name", ...` does.
    ///
    /// # Errors
    /// [`Error::BadId`] for a name with `#`, CR or LF, or an empty name (the
    /// node port).
    pub fn named_port<F, R>(&self, name: &str, f: F) -> Result<PortId>
    where
        F: FnMut(&mut Ctx<'_>, Msg) -> R + Send + 'static,
        R: CallbackResult,
    {
        if name.is_empty() {
            return Err(Error::BadId { id: name.into(), problem: "the empty name is the node port".into() });
        }
        let port = self.0.id.port(name)?;
        self.rcv(&port, f);
        Ok(port)
    }

    /// Replaces the default callback of a local port.
    pub fn rcv<F, R>(&self, port: &PortId, f: F)
    where
        F: FnMut(&mut Ctx<'_>, Msg) -> R + Send + 'static,
        R: CallbackResult,
    {
        if let Some(key) = local_key(&self.0, port) {
            let h = Handler::Cb(boxed(f));
            self.0.call(move |core| core.set_default(&key, h));
        }
    }

    /// Registers or replaces the callback for `tag` on a local port; it gets
    /// the message without the tag. Returns the port, for chaining.
    pub fn rcv_tag<F, R>(&self, port: &PortId, tag: &str, f: F) -> PortId
    where
        F: FnMut(&mut Ctx<'_>, Msg) -> R + Send + 'static,
        R: CallbackResult,
    {
        if let Some(key) = local_key(&self.0, port) {
            let h = Handler::Cb(boxed_tag(tag, f));
            let tag = tag.to_owned();
            self.0.call(move |core| core.set_tag(&key, &tag, Some(h)));
        }
        port.clone()
    }

    /// Removes the callback for `tag`.
    pub fn unrcv(&self, port: &PortId, tag: &str) {
        if let Some(key) = local_key(&self.0, port) {
            let tag = tag.to_owned();
            self.0.call(move |core| core.set_tag(&key, &tag, None));
        }
    }

    /// Kills a port. With [`Reason::normal()`] the kill is normal:
    /// monitors that kill other ports ignore it. A remote port is killed
    /// through its node (`kil1`, aemp peers only: an AnyEvent::MP 0.9 node
    /// cannot be asked to kill its ports, and the request is dropped there).
    pub fn kil(&self, port: &PortId, reason: impl Into<Reason>) {
        let reason = reason.into();
        if self.0.is_local(port) {
            let port = port.clone();
            self.0.call(move |core| core.kil(&port, reason));
        } else {
            // Straight to the link, as `snd` does, so that the two keep
            // their order on the wire.
            self.0.remote().kil(port, reason);
        }
    }

    /// Monitors a port and returns a guard that stops the monitor
    /// when dropped.
    ///
    /// The action is one of AnyEvent::MP's forms of `mon`: a closure `|reason| ...`
    /// (form 1), a [`PortId`] to kill with the same reason when the death is
    /// abnormal (forms 2 and 3), or [`MonAction::send`](crate::MonAction::send)
    /// (form 4). A port that is already dead or unknown fires at once with
    /// `("no_such_port", ...)`. A remote port's monitor also fires with
    /// `("transport_error", node, text)` when the connection to its node is
    /// lost; after that no further message reaches the port unnoticed.
    pub fn mon(&self, port: &PortId, action: impl IntoMonAction) -> MonGuard {
        self.mon_action(port, crate::monitor::action_of(action))
    }

    /// Places a monitor with `action` on a local or remote port; the guard
    /// removes it.
    fn mon_action(&self, port: &PortId, action: Action) -> MonGuard {
        let id = self.0.next_mon();
        if self.0.is_local(port) {
            let p = port.clone();
            self.0.call(move |core| core.mon(&p, id, action));
        } else if let Some((name, action, reason)) = self.0.remote().mon(port, id, action) {
            self.0.call(move |core| core.fire(&name, action, reason));
        }
        MonGuard::new(self.clone(), MonTarget::Port(port.clone()), id)
    }

    /// Keeps `value` alive until `port` dies, then drops it.
    pub fn mon_guard<T: Send + 'static>(&self, port: &PortId, value: T) -> MonGuard {
        self.mon_action(port, Action::Keep(Box::new(value)))
    }

    /// Waits until `port` dies and returns the reason.
    ///
    /// For this node's own node port ([`NodeId::node_port`]) that is when
    /// the node shuts down: the reason is then `("die", "node shut down")`.
    /// The same reason comes when the node shuts down before `port` died.
    pub fn dead(&self, port: &PortId) -> impl Future<Output = Reason> + Send + 'static {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let guard = self.mon_action(port, Action::Notify(tx));
        async move {
            let r = rx.await.unwrap_or_else(|_| core::shutdown_reason());
            guard.keep();
            r
        }
    }

    /// Registers an init function under a `::`-separated name (for example
    /// `"MyApp::Chat::init"`), so that [`spawn`](Node::spawn) on this node,
    /// from here or from another node, can start it. The function runs in
    /// the new port's context with the spawn arguments; it usually installs
    /// callbacks on `ctx.self_id()`. An error or panic kills the new port
    /// with `("die", text)`.
    pub fn register<F, R>(&self, name: &str, f: F)
    where
        F: Fn(&mut Ctx<'_>, Msg) -> R + Send + Sync + 'static,
        R: CallbackResult,
    {
        self.0
            .inits
            .write()
            .insert(name.to_owned(), Arc::new(move |ctx: &mut Ctx<'_>, m| spawn_result(f(ctx, m))));
    }

    /// Creates a port on `node` and runs the init function `init` in it with
    /// `args`. The port ID is returned at once: messages can be
    /// sent to it and it can be monitored immediately. An unknown name or a
    /// failing init function kills the port with `("die", text)`.
    pub fn spawn(&self, node: &NodeId, init: &str, args: Msg) -> PortId {
        let n = self.0.next_port();
        if *node == self.0.id {
            let init = init.to_owned();
            self.0.call(move |core| core.spawn_local(Key::Num(n), &init, args));
            self.0.num_port_id(n)
        } else {
            spawn_remote(&self.0, node, &self.0.num_port_name(n), init, args)
        }
    }

    /// Sends `msg` to `port` after `delay`.
    pub fn after(&self, delay: Duration, port: &PortId, msg: Msg) -> TimerGuard {
        let node = self.clone();
        let port = port.clone();
        self.after_fn(delay, move || node.snd(&port, msg))
    }

    /// Calls `f` after `delay`, on a runtime thread.
    pub fn after_fn(&self, delay: Duration, f: impl FnOnce() + Send + 'static) -> TimerGuard {
        let h = self.spawn_task(async move {
            tokio::time::sleep(delay).await;
            f();
        });
        TimerGuard(Some(h))
    }

    /// Runs a task that ends when the node shuts down.
    pub(crate) fn spawn_task(
        &self,
        fut: impl Future<Output = ()> + Send + 'static,
    ) -> tokio::task::AbortHandle {
        self.0.spawn_tracked(fut)
    }

    /// Creates an async port: messages to it are queued (at most `bound`)
    /// and read by the task that `f` returns, with
    /// [`Inbox::recv`](crate::Inbox::recv). The port dies normally when the
    /// task ends with `Ok`, with `("die", text)` when it returns an error,
    /// and with `("overflow", ...)` when a message finds the inbox full.
    /// Killing the port cancels the task.
    pub fn spawn_async<F, Fut, E>(&self, bound: usize, f: F) -> PortId
    where
        F: FnOnce(Inbox) -> Fut,
        Fut: Future<Output = std::result::Result<(), E>> + Send + 'static,
        E: fmt::Display + 'static,
    {
        let n = self.0.next_port();
        let port = self.0.num_port_id(n);
        let q = InboxShared::new(bound);
        self.0.push(Cmd::Create(n, Handler::Inbox(q.clone())));
        let fut = f(Inbox::new(q, port.clone(), self.clone()));
        let node = self.clone();
        let p = port.clone();
        let h = self.spawn_task(async move {
            let reason = match fut.await {
                Ok(()) => Reason::normal(),
                Err(e) => Reason::die(e),
            };
            node.kil(&p, reason);
        });
        self.0.call(move |core| core.attach_task(&Key::Num(n), h));
        port
    }

    /// Sends `msg` with a fresh reply port appended and waits for the first
    /// message to that port (the `aemp rpc` pattern).
    ///
    /// # Errors
    /// [`Error::Timeout`] when no reply comes within `timeout`;
    /// [`Error::NoSuchPort`] when the port is dead or its node is lost.
    pub async fn call(&self, port: &PortId, mut msg: Msg, timeout: Duration) -> Result<Msg> {
        self.call_with(
            port,
            move |reply| {
                msg.push(reply);
                msg
            },
            timeout,
        )
        .await
    }

    /// [`call`](Node::call) for a request whose reply port is not the last
    /// element: `make` builds the message around the fresh reply port's ID.
    ///
    /// ```
    /// use aemp::{msg, Node};
    /// # use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> aemp::Result<()> {
    /// let node = Node::builder().build().await?;
    /// // Takes ["get", reply, key].
    /// let store = node.port_builder().on("get", |ctx, m| {
    ///     ctx.snd(&m.port(0)?, msg!["value", m.str(1)?.len()]);
    ///     Ok(())
    /// }).create();
    /// let answer = node.call_with(&store, |reply| msg!["get", reply, "abc"], Duration::from_secs(5)).await?;
    /// assert_eq!(answer, msg!["value", 3]);
    /// # node.shutdown().await; Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`call`](Node::call).
    pub async fn call_with(
        &self,
        port: &PortId,
        make: impl FnOnce(&PortId) -> Msg,
        timeout: Duration,
    ) -> Result<Msg> {
        self.request(port, |reply| Ok(make(reply)), timeout).await
    }

    /// The request behind the calls: `make` builds the request around the
    /// reply port's ID (nothing is sent when it fails).
    pub(crate) async fn request(
        &self,
        port: &PortId,
        make: impl FnOnce(&PortId) -> Result<Msg>,
        timeout: Duration,
    ) -> Result<Msg> {
        let shared = &self.0;
        let n = shared.next_port();
        let msg = make(&shared.num_port_id(n))?;
        let mon = shared.next_mon();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (dead_tx, dead_rx) = tokio::sync::oneshot::channel();
        let mut tx = Some(tx);
        let on_reply = move |ctx: &mut Ctx<'_>, m: Msg| {
            if let Some(tx) = tx.take() {
                let _ = tx.send(m);
            }
            ctx.kil_self(Reason::normal());
        };
        // Port, monitor and request in one command, in that order.
        let target = port.clone();
        // On this task when the dispatcher is idle: a local target's reply
        // is then often here before the first poll below.
        shared.run_or_call(move |core| {
            core.insert(Key::Num(n), PortEntry::new(Handler::Cb(boxed(on_reply))));
            core.mon(&target, mon, Action::Notify(dead_tx));
            core.snd(&target, msg);
        });
        let r = tokio::select! {
            // A reply that came before the target died wins.
            biased;
            r = rx => r.map_err(|_| Error::Shutdown),
            reason = dead_rx => {
                let reason = reason.unwrap_or_else(|_| Reason::die("node shut down"));
                Err(Error::NoSuchPort(format!("{port}: {reason}")))
            }
            _ = tokio::time::sleep(timeout) => Err(self.timed_out(format!("no reply from {port}"), &port.node())),
        };
        // The monitor goes once the caller has its answer (taken off by the
        // reply port itself, it could close `dead_rx` before the reply was
        // seen); the reply port is gone already unless the call failed.
        let target = port.clone();
        let failed = r.is_err();
        shared.run_or_call(move |core| {
            core.unmon(&target, mon);
            if failed {
                core.kill(&Key::Num(n), Reason::normal());
            }
        });
        r
    }

    /// A timeout waiting on `node`, with why the last attempt to link to it
    /// failed, if it did (a wrong secret, say, is otherwise only logged).
    pub(crate) fn timed_out(&self, what: String, node: &NodeId) -> Error {
        match self.0.remote().last_failure(node) {
            Some(last) => Error::Timeout(format!("{what} (last attempt: {last})")),
            None => Error::Timeout(what),
        }
    }

    /// Runs `f` on the dispatcher with the number of live ports; for
    /// benchmarks and introspection.
    pub async fn port_count(&self) -> usize {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.0.call(move |core: &mut Core| {
            let _ = tx.send(core.port_count());
        });
        rx.await.unwrap_or(0)
    }

    /// Shuts the node down: closes its connections (so peers' monitors fire
    /// at once), stops its listeners and ends every task it started, then
    /// returns. Ports die without firing local monitors; only monitors on
    /// this node's own node port ([`NodeId::node_port`]) fire, with
    /// `("die", "node shut down")`.
    pub async fn shutdown(&self) {
        self.0.remote().shutdown();
        self.0.shut_down();
        self.0.tasks.close();
        self.0.tasks.wait().await;
    }

    /// Whether [`shutdown`](Node::shutdown) has been called.
    pub fn is_shut_down(&self) -> bool {
        self.0.cancel.is_cancelled()
    }
}

/// What an init function returned, for the runtime: its arguments are not a
/// tagged message, so element errors name no tag.
pub(crate) fn spawn_result(r: impl CallbackResult) -> Result<()> {
    r.into_result().map_err(Error::in_spawn_arguments)
}

/// `spawn` on another node: the port's name is chosen here, the port
/// lives there. Returns its ID at once.
pub(crate) fn spawn_remote(shared: &Shared, node: &NodeId, name: &str, init: &str, args: Msg) -> PortId {
    let port = node.port(name).unwrap_or_else(|_| node.node_port());
    let mut m = vec![
        crate::value::Value::from(""),
        crate::value::Value::from(crate::kernel::SPAWN),
        crate::value::Value::from(name),
        crate::value::Value::from(init),
    ];
    m.extend(args.0);
    shared.remote().send_to_node(node, Msg::from(m));
    port
}

/// Configures and starts a [`Node`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> aemp::Result<()> {
/// let node = aemp::Node::builder().id("n1").build().await?;
/// assert_eq!(node.id().as_str(), "n1");
/// node.shutdown().await;
/// # Ok(()) }
/// ```
#[must_use = "call .build().await to start the node"]
#[derive(Debug, Default)]
pub struct NodeBuilder {
    pub(crate) id: Option<String>,
    pub(crate) net: crate::net::NetConfig,
}

impl NodeBuilder {
    /// The node ID; `anon/` (the default) makes a random one.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Adds a listener address (`ip:port`; port 0 picks a free port).
    pub fn bind(mut self, addr: impl Into<String>) -> Self {
        self.net.binds.push(addr.into());
        self
    }

    /// Adds a seed address (`host:port`).
    pub fn seed(mut self, addr: impl Into<String>) -> Self {
        self.net.seeds.push(addr.into());
        self
    }

    /// The shared secret that authenticates connections.
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.net.secret = Some(secret.into());
        self
    }

    /// A PEM holding the private key and the certificate chain; enables TLS.
    /// The certificates in it are also the only ones trusted for peers.
    pub fn cert_pem(mut self, pem: impl Into<String>) -> Self {
        self.net.cert_pem = Some(pem.into());
        self
    }

    /// A builder from a configuration profile (see [`crate::initialise_node`]).
    ///
    /// # Errors
    /// [`Error::Config`] for an extra key of the wrong type.
    pub fn from_profile(p: &crate::config::Profile) -> Result<NodeBuilder> {
        let mut net = crate::net::NetConfig {
            binds: p.binds.clone(),
            seeds: p.seeds.clone(),
            secret: p.secret.clone(),
            cert_pem: p.cert.clone(),
            monitor_timeout: p.monitor_timeout,
            network_latency: p.network_latency,
            connect_interval: p.connect_interval,
            ..Default::default()
        };
        let flag = |k: &str| -> Result<Option<bool>> {
            match p.extra.get(k) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::Bool(b)) => Ok(Some(*b)),
                Some(_) => Err(Error::Config(format!("profile {:?}: {k} must be true or false", p.name))),
            }
        };
        let size = |k: &str| -> Result<Option<usize>> {
            match p.extra.get(k) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(v) => v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| {
                    Error::Config(format!("profile {:?}: {k} must be a whole number", p.name))
                }),
            }
        };
        if let Some(b) = flag("allow_cleartext")? {
            net.allow_cleartext = b;
        }
        if let Some(b) = flag("allow_tls_anon")? {
            net.allow_tls_anon = b;
        }
        if let Some(n) = size("max_message")? {
            net.max_message = n;
        }
        if let Some(n) = size("send_queue_limit")? {
            net.send_queue_limit = n;
        }
        if let Some(n) = size("max_connections")? {
            net.max_connections = n;
        }
        if let Some(n) = size("max_handshakes_per_ip")? {
            net.max_handshakes_per_ip = n;
        }
        Ok(NodeBuilder { id: Some(p.nodeid.clone()), net })
    }

    /// Network settings in full.
    pub fn net_config(mut self, cfg: crate::net::NetConfig) -> Self {
        self.net = cfg;
        self
    }

    /// Starts the node: its dispatcher, and its listeners and seed
    /// connections when binds or seeds are configured. Must be called inside
    /// a tokio runtime.
    ///
    /// # Errors
    /// [`Error::BadId`] for a malformed node ID, [`Error::Io`] when a bind
    /// fails, [`Error::Tls`] for an unusable certificate.
    pub async fn build(self) -> Result<Node> {
        let id = match self.id.as_deref() {
            None | Some("anon/") => NodeId::anon(),
            Some(s) => NodeId::new(s)?,
        };
        let shared = Arc::new(Shared::new(id));
        shared.install_core(Core::new(shared.clone()));
        shared.tasks.spawn(core::run(shared.clone()));
        let node = Node(shared);
        if self.net.is_active() {
            if let Err(e) = crate::global::start_network(node.shared(), self.net).await {
                node.shutdown().await;
                return Err(e);
            }
        }
        Ok(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_sets_the_network_limits_and_refuses_bad_values() {
        let text = r#"{"version":1,"secret":"s","profile":{"p":{"nodeid":"n","binds":["127.0.0.1:0"],
            "max_connections":7,"max_handshakes_per_ip":2,"send_queue_limit":4096,"max_message":1024}}}"#;
        let cfg = crate::config::Config::parse(text, "test").unwrap();
        let b = NodeBuilder::from_profile(&cfg.profile("p").unwrap()).unwrap();
        assert_eq!(
            (b.net.max_connections, b.net.max_handshakes_per_ip, b.net.send_queue_limit, b.net.max_message),
            (7, 2, 4096, 1024)
        );
        let bad = text.replace("\"max_handshakes_per_ip\":2", "\"max_handshakes_per_ip\":\"two\"");
        let cfg = crate::config::Config::parse(&bad, "test").unwrap();
        let e = NodeBuilder::from_profile(&cfg.profile("p").unwrap()).expect_err("refused");
        assert!(e.to_string().contains("max_handshakes_per_ip"), "{e}");
    }
}
