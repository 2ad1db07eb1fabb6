//! The dispatcher: the one owner of a node's ports.
//!
//! Every node runs one dispatcher task. Everything that touches ports (message
//! delivery, port creation, `rcv`, `kil`, `mon`) is a [`Cmd`] in one FIFO
//! queue, executed in order by the dispatcher, which owns the port tables
//! outright. That gives AnyEvent::MP's guarantees for free: callbacks of one port
//! never run concurrently (nothing runs concurrently on a node), messages from
//! one sender are handled in send order (one FIFO), and `snd` never blocks or
//! re-enters (it only appends to a queue).
//!
//! Code running inside a callback gets a [`Ctx`] holding `&mut Core`, so it
//! acts on the tables directly and appends its sends to the dispatcher's own
//! run queue without taking any lock.

use std::any::Any;
use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_utils::CachePadded;
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::Error;
use crate::id::{NodeId, PortId};
use crate::inbox::InboxShared;
use crate::port::Ctx;
use crate::reason::Reason;
use crate::remote::{Dirty, Offline, Remote};
use crate::value::{Msg, Value};

/// A boxed message callback.
pub(crate) type Callback = Box<dyn FnMut(&mut Ctx<'_>, Msg) -> Result<(), Error> + Send>;
/// A registered init function.
pub(crate) type InitFn = Arc<dyn Fn(&mut Ctx<'_>, Msg) -> Result<(), Error> + Send + Sync>;

/// How a port handles messages (its default slot or one tag's slot).
pub(crate) enum Handler {
    /// No callback: a message kills the port.
    Empty,
    /// A callback.
    Cb(Callback),
    /// The callback is running (taken out of its slot for the call).
    Running,
    /// An async port: messages go to a bounded queue read by a task.
    Inbox(Arc<InboxShared>),
}

/// One port.
pub(crate) struct PortEntry {
    default: Handler,
    // Boxed so that a port without tag callbacks pays one pointer, not a whole map.
    #[allow(clippy::box_collection)]
    tags: Option<Box<HashMap<Box<str>, Handler>>>,
    links: Option<Box<Links>>,
}

#[derive(Default)]
struct Links {
    monitors: Monitors,
    tasks: Vec<tokio::task::AbortHandle>,
}

/// The monitors on one port, in the order placed (the order they fire).
///
/// Removing one leaves a hole (`None`) where it was, found by binary search
/// while the IDs ascend (they do unless requests from several threads
/// crossed on their way to the dispatcher), and the holes go once they are
/// the majority: removing many monitors of one port one by one costs no
/// quadratic time.
#[derive(Default)]
struct Monitors {
    list: Vec<(u64, Option<Action>)>,
    holes: usize,
    /// Some ID was placed after a larger one: search linearly.
    unordered: bool,
}

impl Monitors {
    fn push(&mut self, id: u64, action: Action) {
        if self.list.last().is_some_and(|(last, _)| *last > id) {
            self.unordered = true;
        }
        self.list.push((id, Some(action)));
    }

    fn remove(&mut self, id: u64) {
        let at = if self.unordered {
            self.list.iter().position(|(i, _)| *i == id)
        } else {
            self.list.binary_search_by_key(&id, |(i, _)| *i).ok()
        };
        if at.and_then(|at| self.list[at].1.take()).is_some() {
            self.holes += 1;
            if self.holes * 2 > self.list.len() {
                self.retain(|_| true);
            }
        }
    }

    /// Keeps the monitors whose action passes `keep` (and drops the holes).
    fn retain(&mut self, mut keep: impl FnMut(&Action) -> bool) {
        self.list.retain(|(_, a)| a.as_ref().is_some_and(&mut keep));
        self.holes = 0;
    }

    fn iter(&self) -> impl Iterator<Item = &Action> {
        self.list.iter().filter_map(|(_, a)| a.as_ref())
    }

    fn is_empty(&self) -> bool {
        self.list.len() == self.holes
    }

    /// The actions, in the order placed.
    fn into_actions(self) -> impl Iterator<Item = Action> {
        self.list.into_iter().filter_map(|(_, a)| a)
    }
}

impl PortEntry {
    pub(crate) fn new(default: Handler) -> PortEntry {
        PortEntry { default, tags: None, links: None }
    }

    fn links(&mut self) -> &mut Links {
        self.links.get_or_insert_with(Default::default)
    }
}

/// What a monitor does when its port dies.
pub(crate) enum Action {
    /// Call a closure with the reason.
    Call(Box<dyn FnOnce(Reason) + Send>),
    /// Kill a port with the same reason, unless the reason is normal.
    Kill(PortId),
    /// Send `msg, reason...` to a port.
    Send(PortId, Msg),
    /// Keep values alive until the port dies (`mon_guard`).
    Keep(#[allow(dead_code)] Box<dyn Any + Send>),
    /// A remote node monitors this port: tell it `["", "kil", name, reason...]`.
    Remote(NodeId),
    /// Wake an async waiter.
    Notify(tokio::sync::oneshot::Sender<Reason>),
}

/// The key of a local port in the tables.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub(crate) enum Key {
    /// A generated name `<prefix>.<n>`.
    Num(u64),
    /// Any other name (well-known names, ports spawned by other nodes, the
    /// node port `""`); shared, so that a connection's reader can keep the
    /// keys of the ports its messages go to.
    Name(Arc<str>),
}

/// Where a port's entry is kept: see [`Core::slot`].
#[derive(Clone, Copy)]
enum Slot {
    Num(u64),
    Named(u64),
}

/// A command for the dispatcher.
pub(crate) enum Cmd {
    Deliver(Key, Msg),
    Create(u64, Handler),
    Call(Box<dyn FnOnce(&mut Core) + Send>),
    /// A request to the node port from another node.
    NodePort(NodeId, Msg),
}

/// State shared between the dispatcher and every handle of the node.
pub(crate) struct Shared {
    pub(crate) id: NodeId,
    /// The random per-process prefix of generated port names.
    pub(crate) prefix: Box<str>,
    next_port: AtomicU64,
    next_mon: AtomicU64,
    queue: Mutex<Vec<Cmd>>,
    wake: Notify,
    /// Set by the dispatcher before it sleeps; a push that sees it wakes it.
    sleeping: AtomicBool,
    /// Set by pushes, cleared by the dispatcher: what it spins on briefly
    /// before sleeping, while commands stream in (on its own cache line).
    hint: CachePadded<AtomicBool>,
    pub(crate) inits: RwLock<HashMap<String, InitFn>>,
    pub(crate) tasks: TaskTracker,
    pub(crate) cancel: CancellationToken,
    /// How the dispatcher reaches other nodes (the network, once started).
    pub(crate) remote: std::sync::OnceLock<Arc<dyn Remote>>,
    /// Global's state, when the node has a network.
    pub(crate) global: std::sync::OnceLock<Arc<crate::global::Global>>,
    /// The dispatcher state; whoever holds the lock runs commands (the
    /// dispatcher task, or a connection's reader with fresh messages).
    core: std::sync::OnceLock<Mutex<Option<Core>>>,
}

impl Shared {
    pub(crate) fn new(id: NodeId) -> Shared {
        Shared {
            id,
            prefix: crate::util::random_token(10).into_boxed_str(),
            next_port: AtomicU64::new(1),
            next_mon: AtomicU64::new(1),
            queue: Mutex::new(Vec::with_capacity(1024)),
            wake: Notify::new(),
            sleeping: AtomicBool::new(false),
            hint: CachePadded::new(AtomicBool::new(false)),
            inits: RwLock::new(HashMap::new()),
            tasks: TaskTracker::new(),
            cancel: CancellationToken::new(),
            remote: std::sync::OnceLock::new(),
            global: std::sync::OnceLock::new(),
            core: std::sync::OnceLock::new(),
        }
    }

    /// Appends a command to the node's queue (never blocks for long: one short lock).
    pub(crate) fn push(&self, cmd: Cmd) {
        self.queue.lock().push(cmd);
        self.pushed();
    }

    /// Tells the dispatcher that commands were queued: raises the hint it
    /// spins on, and wakes it if it sleeps.
    fn pushed(&self) {
        if !self.hint.load(Ordering::Relaxed) {
            self.hint.store(true, Ordering::Relaxed);
        }
        // The mutex orders this load after the dispatcher's store of `true`
        // whenever the dispatcher found the queue empty before our push.
        if self.sleeping.load(Ordering::Relaxed) && self.sleeping.swap(false, Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }

    /// Installs the dispatcher state (once, at start).
    pub(crate) fn install_core(&self, core: Core) {
        let _ = self.core.set(Mutex::new(Some(core)));
    }

    /// Appends commands and, if no one is running the node's commands, runs
    /// them on this task at once (saves a task wake-up per message batch
    /// from the network). Empties `cmds`.
    pub(crate) fn push_and_run(&self, cmds: &mut Vec<Cmd>) {
        if cmds.is_empty() {
            return;
        }
        self.queue.lock().append(cmds);
        let Some(slot) = self.core.get() else { return };
        if let Some(mut guard) = slot.try_lock() {
            let more = guard.as_mut().is_some_and(|core| core.step(4096));
            drop(guard);
            if more {
                self.wake.notify_one();
            }
        } else {
            self.pushed();
        }
    }

    /// Runs `f` on the dispatcher's state on this task, if no one else is
    /// running the node's commands and none are left waiting once this task
    /// has run what is queued (`None` otherwise: queue instead). What `f`'s
    /// commands queue runs before it returns.
    pub(crate) fn run_here<R>(&self, f: impl FnOnce(&mut Core) -> R) -> Option<R> {
        let mut guard = self.core.get()?.try_lock()?;
        let core = guard.as_mut()?;
        if core.step(4096) {
            drop(guard);
            self.wake.notify_one();
            return None;
        }
        let r = f(core);
        let more = core.step(4096);
        drop(guard);
        if more {
            self.wake.notify_one();
        }
        Some(r)
    }

    /// Stops the node's tasks: cancels them, and wakes the dispatcher so
    /// that it sees it.
    pub(crate) fn shut_down(&self) {
        self.cancel.cancel();
        self.wake.notify_one();
    }

    /// Runs `f` on the dispatcher.
    pub(crate) fn call(&self, f: impl FnOnce(&mut Core) + Send + 'static) {
        self.push(Cmd::Call(Box::new(f)));
    }

    /// Runs `f` on the dispatcher's state on this task when no one else is
    /// running the node's commands (with what it queues, as [`run_here`]
    /// does), else queues it as [`call`] does. For a caller that waits for
    /// the outcome anyway: it saves two thread wake-ups.
    ///
    /// [`run_here`]: Shared::run_here
    /// [`call`]: Shared::call
    pub(crate) fn run_or_call(&self, f: impl FnOnce(&mut Core) + Send + 'static) {
        let mut f = Some(f);
        let ran = self.run_here(|core| {
            if let Some(f) = f.take() {
                f(core);
            }
        });
        if let (None, Some(f)) = (ran, f) {
            self.call(f);
        }
    }

    pub(crate) fn next_port(&self) -> u64 {
        self.next_port.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn next_mon(&self) -> u64 {
        self.next_mon.fetch_add(1, Ordering::Relaxed)
    }

    /// The port ID of generated port number `n`.
    pub(crate) fn num_port_id(&self, n: u64) -> PortId {
        // Format on the stack when it fits, so the ID costs one allocation.
        let mut buf = [0u8; 160];
        let id = self.id.as_str().as_bytes();
        let len = id.len() + 1 + self.prefix.len() + 1;
        if len + 20 <= buf.len() {
            buf[..id.len()].copy_from_slice(id);
            buf[id.len()] = b'#';
            buf[id.len() + 1..len - 1].copy_from_slice(self.prefix.as_bytes());
            buf[len - 1] = b'.';
            let mut digits = [0u8; 20];
            let digits = crate::util::u64_digits(n, &mut digits);
            let end = len + digits.len();
            buf[len..end].copy_from_slice(digits);
            if let Ok(s) = std::str::from_utf8(&buf[..end]) {
                return PortId::from_trusted_str(s, id.len());
            }
        }
        let mut s = String::with_capacity(len + 20);
        s.push_str(self.id.as_str());
        s.push('#');
        s.push_str(&self.prefix);
        s.push('.');
        push_u64(&mut s, n);
        PortId::from_trusted(s, self.id.as_str().len())
    }

    /// The name of generated port number `n` (without the node ID).
    pub(crate) fn num_port_name(&self, n: u64) -> String {
        let mut s = String::with_capacity(self.prefix.len() + 21);
        s.push_str(&self.prefix);
        s.push('.');
        push_u64(&mut s, n);
        s
    }

    /// The table key of a local port name.
    pub(crate) fn key_of(&self, name: &str) -> Key {
        if let Some(n) = self.num_of(name) {
            return Key::Num(n);
        }
        Key::Name(name.into())
    }

    /// The number of a generated name of this node, if `name` is one.
    pub(crate) fn num_of(&self, name: &str) -> Option<u64> {
        let rest = name.strip_prefix(&*self.prefix)?.strip_prefix('.')?;
        if rest.is_empty() || rest.len() > 20 || (rest.len() > 1 && rest.starts_with('0')) {
            return None;
        }
        let mut n: u64 = 0;
        for b in rest.bytes() {
            if !b.is_ascii_digit() {
                return None;
            }
            n = n.checked_mul(10)?.checked_add((b - b'0') as u64)?;
        }
        Some(n)
    }

    /// Whether a port ID is on this node.
    pub(crate) fn is_local(&self, port: &PortId) -> bool {
        port.node_str() == self.id.as_str()
    }

    /// Holds the dispatcher's state: nothing runs commands until the guard
    /// is dropped (then push a command to wake the dispatcher).
    #[cfg(test)]
    pub(crate) fn hold_dispatcher(&self) -> parking_lot::MutexGuard<'_, Option<Core>> {
        self.core.get().expect("the dispatcher is installed").lock()
    }

    /// The way to other nodes ([`Offline`] until a network is started).
    pub(crate) fn remote(&self) -> &dyn Remote {
        match self.remote.get() {
            Some(r) => &**r,
            None => &Offline,
        }
    }

    /// Global's state, when the node has a network.
    pub(crate) fn global(&self) -> Option<&Arc<crate::global::Global>> {
        self.global.get()
    }

    /// Spawns a task tracked by the node and cancelled on shutdown.
    pub(crate) fn spawn_tracked(
        &self,
        fut: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> tokio::task::AbortHandle {
        let cancel = self.cancel.clone();
        self.tasks
            .spawn(async move {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = fut => {}
                }
            })
            .abort_handle()
    }
}

fn push_u64(s: &mut String, n: u64) {
    // The digits are ASCII.
    s.push_str(std::str::from_utf8(crate::util::u64_digits(n, &mut [0u8; 20])).unwrap_or("0"));
}

/// The dispatcher's state: the port tables and its run queue.
pub(crate) struct Core {
    pub(crate) shared: Arc<Shared>,
    nums: crate::seqtable::SeqTable<PortEntry>,
    /// Named ports: each name's slot in `named`, given in sequence and
    /// never reused, so that a slot found before a callback runs is still
    /// that port's (or empty) after it.
    names: crate::util::FastMap<Arc<str>, u64>,
    named: crate::seqtable::SeqTable<PortEntry>,
    next_named: u64,
    pub(crate) run: VecDeque<Cmd>,
    /// Spawns that failed recently, for `mon1` answers.
    pub(crate) failed_spawns: VecDeque<(Box<str>, Reason)>,
    /// The batch taken from the shared queue.
    spare: Vec<Cmd>,
    /// Connections written to during this step, flushed at its end.
    pub(crate) dirty: Dirty,
    /// The port whose init function is running (its death is remembered).
    spawning: Option<Key>,
    /// Which local ports each remote node monitors (dropped when it goes down).
    remote_mons: HashMap<NodeId, HashSet<Key>>,
    /// Monitors on the node port: it lives as long as the node, so they
    /// fire when the node shuts down.
    node_port_mons: Vec<(u64, Action)>,
    /// The dispatcher's own figures (plain fields: only it writes them).
    pub(crate) counters: crate::stats::Counters,
}

/// How many failed spawns are remembered for later `mon1` requests.
const FAILED_SPAWNS_KEPT: usize = 1024;

impl Core {
    pub(crate) fn new(shared: Arc<Shared>) -> Core {
        Core {
            shared,
            nums: Default::default(),
            names: Default::default(),
            named: Default::default(),
            next_named: 1,
            run: VecDeque::with_capacity(1024),
            failed_spawns: VecDeque::new(),
            spare: Vec::with_capacity(1024),
            dirty: Vec::new(),
            spawning: None,
            remote_mons: HashMap::new(),
            node_port_mons: Vec::new(),
            counters: crate::stats::Counters::new(),
        }
    }

    /// Where the entry of the port `key` is, if the port exists.
    fn slot(&self, key: &Key) -> Option<Slot> {
        match key {
            Key::Num(n) => Some(Slot::Num(*n)),
            Key::Name(s) => self.names.get(s).map(|&i| Slot::Named(i)),
        }
    }

    fn at(&mut self, slot: Slot) -> Option<&mut PortEntry> {
        match slot {
            Slot::Num(n) => self.nums.get_mut(n),
            Slot::Named(i) => self.named.get_mut(i),
        }
    }

    fn entry_mut(&mut self, key: &Key) -> Option<&mut PortEntry> {
        let slot = self.slot(key)?;
        self.at(slot)
    }

    fn remove(&mut self, key: &Key) -> Option<PortEntry> {
        match key {
            Key::Num(n) => self.nums.remove(*n),
            Key::Name(s) => {
                let i = self.names.remove(s)?;
                self.named.remove(i)
            }
        }
    }

    /// Whether a local port exists.
    pub(crate) fn exists(&self, key: &Key) -> bool {
        match key {
            Key::Num(n) => self.nums.contains_key(*n),
            Key::Name(s) => s.is_empty() || self.names.contains_key(s),
        }
    }

    /// The number of live ports (the node port not counted).
    pub(crate) fn port_count(&self) -> usize {
        self.nums.len() + self.named.len()
    }

    pub(crate) fn name_of(&self, key: &Key) -> String {
        match key {
            Key::Num(n) => self.shared.num_port_name(*n),
            Key::Name(s) => s.to_string(),
        }
    }

    pub(crate) fn port_id_of(&self, key: &Key) -> PortId {
        match key {
            Key::Num(n) => self.shared.num_port_id(*n),
            Key::Name(s) => {
                PortId::from_trusted(format!("{}#{s}", self.shared.id), self.shared.id.as_str().len())
            }
        }
    }

    /// Inserts a port. An existing port of that key is not replaced.
    pub(crate) fn insert(&mut self, key: Key, entry: PortEntry) -> bool {
        match key {
            Key::Num(n) => self.nums.insert(n, entry),
            Key::Name(s) => {
                if s.is_empty() || self.names.contains_key(&s) {
                    return false;
                }
                let i = self.next_named;
                self.next_named += 1;
                self.names.insert(s, i);
                self.named.insert(i, entry)
            }
        }
    }

    /// Takes what is queued and runs up to `budget` commands (a whole batch
    /// from the shared queue at least), then writes what the callbacks sent
    /// to other nodes. Returns whether work remains.
    pub(crate) fn step(&mut self, budget: u32) -> bool {
        let shared = self.shared.clone();
        let mut batch = std::mem::take(&mut self.spare);
        std::mem::swap(&mut *shared.queue.lock(), &mut batch);
        self.counters.saw_queue(batch.len() + self.run.len());
        let taken = batch.len();
        if self.run.is_empty() {
            // Handle the batch in place; sends it causes go to `run`, after it.
            for cmd in batch.drain(..) {
                self.exec(cmd);
            }
        } else {
            self.run.extend(batch.drain(..));
        }
        // Keep the batch's memory for the next swap while commands stream
        // in: a fresh vector for each batch would make a fast sender grow
        // it again, page by page (page faults cost it more than the sends).
        // Give it back once a step finds little work: the burst is over.
        self.spare = if batch.capacity() > 65_536 && taken < 1024 { Vec::with_capacity(1024) } else { batch };
        let mut budget = budget;
        while budget > 0 {
            let Some(cmd) = self.run.pop_front() else { break };
            self.exec(cmd);
            budget -= 1;
        }
        if self.run.is_empty() && self.run.capacity() > 65_536 {
            self.run.shrink_to(1024);
        }
        for outbox in self.dirty.drain(..) {
            outbox.flush();
        }
        !self.run.is_empty() || !shared.queue.lock().is_empty()
    }

    pub(crate) fn exec(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Deliver(key, msg) => {
                self.counters.dispatched += 1;
                self.deliver(key, msg)
            }
            Cmd::Create(n, h) => {
                self.nums.insert(n, PortEntry::new(h));
            }
            Cmd::Call(f) => f(self),
            Cmd::NodePort(from, msg) => crate::kernel::handle(self, Some(&from), msg),
        }
    }

    /// Fires the monitors on the node port: the node is shutting down.
    fn node_port_died(&mut self) {
        for (_, action) in std::mem::take(&mut self.node_port_mons) {
            self.fire("", action, shutdown_reason());
        }
    }

    /// Routes a message to a local port (or the node port).
    pub(crate) fn deliver(&mut self, key: Key, mut msg: Msg) {
        if is_node_port(&key) {
            crate::kernel::handle(self, None, msg);
            return;
        }
        let Some((place, entry)) = self.slot(&key).and_then(|place| Some((place, self.at(place)?))) else {
            tracing::trace!(port = ?key, "message to a nonexistent port dropped");
            return;
        };
        // A tag callback?
        if let (Some(tags), Some(Value::Str(tag))) = (entry.tags.as_mut(), msg.0.first()) {
            if let Some(slot) = tags.get_mut(tag.as_str()) {
                if let Handler::Cb(_) = slot {
                    let Handler::Cb(mut cb) = std::mem::replace(slot, Handler::Running) else {
                        unreachable!()
                    };
                    let tag: Box<str> = match msg.0.remove(0) {
                        Value::Str(t) => t.into_boxed_str(),
                        _ => unreachable!(),
                    };
                    let result = self.invoke(&key, &mut cb, msg);
                    // Put the callback back unless it was replaced, removed or the port died.
                    if let Some(slot) =
                        self.at(place).and_then(|e| e.tags.as_mut()).and_then(|t| t.get_mut(&tag))
                    {
                        if matches!(slot, Handler::Running) {
                            *slot = Handler::Cb(cb);
                        }
                    }
                    if let Err(reason) = result {
                        self.kill(&key, reason);
                    }
                    return;
                }
            }
        }
        match &mut entry.default {
            Handler::Cb(_) => {
                let Handler::Cb(mut cb) = std::mem::replace(&mut entry.default, Handler::Running) else {
                    unreachable!()
                };
                let result = self.invoke(&key, &mut cb, msg);
                if let Some(e) = self.at(place) {
                    if matches!(e.default, Handler::Running) {
                        e.default = Handler::Cb(cb);
                    }
                }
                if let Err(reason) = result {
                    self.kill(&key, reason);
                }
            }
            Handler::Inbox(q) => {
                if let Err(reason) = q.push(msg) {
                    self.kill(&key, reason);
                }
            }
            Handler::Empty => {
                let text = format!("port has no callback for message {msg}");
                self.kill(&key, Reason::die(text));
            }
            Handler::Running => {
                // Cannot happen: delivery never re-enters a running callback.
                tracing::error!(port = ?key, "message for a running callback dropped");
            }
        }
    }

    /// Runs a callback in the context of port `key`; a returned error or a
    /// panic becomes a `("die", text)` reason.
    pub(crate) fn invoke<F>(&mut self, key: &Key, cb: F, msg: Msg) -> Result<(), Reason>
    where
        F: FnOnce(&mut Ctx<'_>, Msg) -> Result<(), Error>,
    {
        let mut ctx = Ctx::new(self, key);
        match catch_unwind(AssertUnwindSafe(|| cb(&mut ctx, msg))) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(error_reason(e)),
            Err(panic) => Err(Reason::die(panic_text(&panic))),
        }
    }

    /// Runs `f` in the context of port `key` if the port is alive.
    pub(crate) fn run_in(&mut self, key: &Key, f: impl FnOnce(&mut Ctx<'_>) -> Result<(), Error>) {
        if !self.exists(key) {
            return;
        }
        if let Err(reason) = self.invoke(key, |ctx, _| f(ctx), Msg::new()) {
            self.kill(key, reason);
        }
    }

    /// Sets or replaces the default callback of a local port. An unused
    /// well-known name creates the port; a dead generated port stays dead.
    pub(crate) fn set_default(&mut self, key: &Key, h: Handler) {
        if let Some(e) = self.entry_mut(key) {
            e.default = h;
        } else if let Key::Name(_) = key {
            self.insert(key.clone(), PortEntry::new(h));
        }
    }

    /// Registers (`Some`) or removes (`None`) a tag callback.
    pub(crate) fn set_tag(&mut self, key: &Key, tag: &str, h: Option<Handler>) {
        if !self.exists(key) {
            if h.is_none() {
                return;
            }
            if let Key::Name(_) = key {
                self.insert(key.clone(), PortEntry::new(Handler::Empty));
            } else {
                return;
            }
        }
        let Some(e) = self.entry_mut(key) else { return };
        match h {
            Some(h) => {
                e.tags.get_or_insert_with(Default::default).insert(tag.into(), h);
            }
            None => {
                if let Some(t) = e.tags.as_mut() {
                    t.remove(tag);
                    if t.is_empty() {
                        e.tags = None;
                    }
                }
            }
        }
    }

    /// Attaches a task to a port: it is aborted when the port dies. A dead
    /// port aborts it at once.
    pub(crate) fn attach_task(&mut self, key: &Key, task: tokio::task::AbortHandle) {
        match self.entry_mut(key) {
            Some(e) => {
                let links = e.links();
                links.tasks.retain(|t| !t.is_finished());
                links.tasks.push(task);
            }
            None => task.abort(),
        }
    }

    /// Adds a monitor on a local port; a dead port fires it at once.
    pub(crate) fn mon_local(&mut self, key: &Key, id: u64, action: Action) {
        if is_node_port(key) {
            // The node port lives as long as the node: kept until shutdown.
            self.node_port_mons.push((id, action));
            return;
        }
        match self.entry_mut(key) {
            Some(e) => e.links().monitors.push(id, action),
            None => {
                let name = self.name_of(key);
                let reason = self
                    .failed_spawns
                    .iter()
                    .find(|(n, _)| **n == *name)
                    .map(|(_, r)| r.clone())
                    .unwrap_or_else(Reason::no_such_port);
                self.fire(&name, action, reason)
            }
        }
    }

    /// Removes a monitor from a local port.
    pub(crate) fn unmon_local(&mut self, key: &Key, id: u64) {
        if is_node_port(key) {
            self.node_port_mons.retain(|(i, _)| *i != id);
            return;
        }
        if let Some(links) = self.entry_mut(key).and_then(|e| e.links.as_mut()) {
            links.monitors.remove(id);
        }
    }

    /// Adds the monitor remote node `node` holds on local port `key`
    /// (`mon1`), unless it holds one already: a node asks again after each
    /// reconnection (its own monitors fired when the link dropped, and the
    /// link does not take ours with it), and one `kil` tells it all.
    pub(crate) fn mon_remote(&mut self, key: &Key, node: &NodeId) {
        let held = self
            .entry_mut(key)
            .and_then(|e| e.links.as_ref())
            .is_some_and(|l| l.monitors.iter().any(|a| matches!(a, Action::Remote(n) if n == node)));
        if held {
            return;
        }
        // Indexed only when the port exists (a monitor on a missing port
        // fires at once).
        if self.entry_mut(key).is_some() {
            self.remote_mons.entry(node.clone()).or_default().insert(key.clone());
        }
        let id = self.shared.next_mon();
        self.mon_local(key, id, Action::Remote(node.clone()));
    }

    /// Forgets the monitors a node that went down held on local ports: its
    /// side fired them with `transport_error` when the link was lost.
    pub(crate) fn drop_remote_monitors(&mut self, node: &NodeId) {
        for key in self.remote_mons.remove(node).unwrap_or_default() {
            self.unmon_remote(&key, node);
        }
    }

    /// Removes the monitors that remote node `node` holds on local port `key`.
    pub(crate) fn unmon_remote(&mut self, key: &Key, node: &NodeId) {
        if let Some(links) = self.entry_mut(key).and_then(|e| e.links.as_mut()) {
            links.monitors.retain(|a| !matches!(a, Action::Remote(n) if n == node));
        }
        self.forget_remote_mon(key, node);
    }

    fn forget_remote_mon(&mut self, key: &Key, node: &NodeId) {
        if let Some(keys) = self.remote_mons.get_mut(node) {
            keys.remove(key);
            if keys.is_empty() {
                self.remote_mons.remove(node);
            }
        }
    }

    /// The registered init function of that name (node's, then process-wide).
    pub(crate) fn init_fn(&self, init: &str) -> Option<InitFn> {
        self.shared.inits.read().get(init).cloned().or_else(|| GLOBAL_INITS.read().get(init).cloned())
    }

    /// Remembers why a spawn failed, bounded.
    pub(crate) fn remember_failed_spawn(&mut self, name: &str, reason: Reason) {
        if self.failed_spawns.len() >= FAILED_SPAWNS_KEPT {
            self.failed_spawns.pop_front();
        }
        self.failed_spawns.push_back((name.into(), reason));
    }

    /// Kills a local port: removes it, aborts its tasks, fires its monitors.
    pub(crate) fn kill(&mut self, key: &Key, reason: Reason) {
        let mut work = vec![(key.clone(), reason)];
        while let Some((key, reason)) = work.pop() {
            let Some(entry) = self.remove(&key) else { continue };
            tracing::debug!(port = %self.name_of(&key), %reason, "port killed");
            if self.spawning.as_ref() == Some(&key) {
                // Killed during its own init: a later monitor learns why.
                let name = self.name_of(&key);
                self.remember_failed_spawn(&name, reason.clone());
            }
            let PortEntry { default, tags, links } = entry;
            if let Handler::Inbox(q) = &default {
                q.close(reason.clone());
            }
            drop(default);
            drop(tags);
            let Some(links) = links else { continue };
            let Links { monitors, tasks } = *links;
            for t in tasks {
                t.abort();
            }
            if monitors.is_empty() {
                continue;
            }
            let name = self.name_of(&key);
            for action in monitors.into_actions() {
                match action {
                    Action::Kill(p) if self.shared.is_local(&p) => {
                        if !reason.is_normal() {
                            work.push((self.shared.key_of(p.name()), reason.clone()));
                        }
                    }
                    other => self.fire(&name, other, reason.clone()),
                }
            }
        }
    }

    /// Performs one monitor action for the death of local port `name`.
    pub(crate) fn fire(&mut self, name: &str, action: Action, reason: Reason) {
        match action {
            Action::Call(f) => {
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| f(reason))) {
                    tracing::error!(port = name, "monitor callback panicked: {}", panic_text(&p));
                }
            }
            Action::Kill(p) => {
                if !reason.is_normal() {
                    self.kil(&p, reason);
                }
            }
            Action::Send(p, mut m) => {
                m.0.extend(reason.0);
                self.snd(&p, m);
            }
            Action::Keep(v) => drop(v),
            Action::Remote(node) => {
                let key = self.shared.key_of(name);
                self.forget_remote_mon(&key, &node);
                let mut m = Msg::from_array([Value::from(""), Value::from("kil"), Value::from(name)]);
                m.0.extend(reason.0);
                self.shared.remote().notify_if_up(&node, m);
            }
            Action::Notify(tx) => {
                let _ = tx.send(reason);
            }
        }
    }

    /// Sends a message from the dispatcher (local ports go to the run queue).
    pub(crate) fn snd(&mut self, port: &PortId, msg: Msg) {
        if self.shared.is_local(port) {
            let key = self.shared.key_of(port.name());
            self.run.push_back(Cmd::Deliver(key, msg));
        } else {
            self.shared.remote().send_batched(port, msg, &mut self.dirty);
        }
    }

    /// Kills a local or remote port.
    pub(crate) fn kil(&mut self, port: &PortId, reason: Reason) {
        if self.shared.is_local(port) {
            let key = self.shared.key_of(port.name());
            self.kill(&key, reason);
        } else {
            self.shared.remote().kil(port, reason);
        }
    }

    /// Monitors a local or remote port.
    pub(crate) fn mon(&mut self, port: &PortId, id: u64, action: Action) {
        if self.shared.is_local(port) {
            let key = self.shared.key_of(port.name());
            self.mon_local(&key, id, action);
        } else {
            if let Some((name, action, reason)) = self.shared.remote().mon(port, id, action) {
                self.fire(&name, action, reason);
            }
        }
    }

    /// Removes monitor `id` from a local or remote port.
    pub(crate) fn unmon(&mut self, port: &PortId, id: u64) {
        match self.shared.is_local(port).then(|| self.shared.key_of(port.name())) {
            Some(key) => self.unmon_local(&key, id),
            None => self.shared.remote().unmon(port, id),
        }
    }

    /// Runs a registered init function in a new port (local spawn).
    pub(crate) fn spawn_local(&mut self, key: Key, init: &str, args: Msg) {
        let name = self.name_of(&key);
        let f =
            self.shared.inits.read().get(init).cloned().or_else(|| GLOBAL_INITS.read().get(init).cloned());
        let Some(f) = f else {
            tracing::warn!(init, port = %name, "spawn of an unregistered init function refused");
            self.remember_failed_spawn(&name, Reason::die(format!("unknown init function {init:?}")));
            return;
        };
        if !self.insert(key.clone(), PortEntry::new(Handler::Empty)) {
            tracing::warn!(port = %name, "spawn refused: the port exists");
            return;
        }
        let outer = self.spawning.replace(key.clone());
        let result = self.invoke(&key, |ctx, m| f(ctx, m), args);
        if let Err(reason) = result {
            tracing::warn!(init, port = %name, %reason, "init function failed");
            self.kill(&key, reason);
        }
        self.spawning = outer;
    }
}

impl Core {
    /// The node's ports and the monitors on them, for its figures: walks
    /// every port.
    pub(crate) fn census(&self) -> crate::stats::Census {
        let mut c = crate::stats::Census {
            ports: self.port_count(),
            named_ports: self.names.keys().map(|k| k.to_string()).collect(),
            ..Default::default()
        };
        c.named_ports.sort();
        for e in self.nums.values().chain(self.named.values()) {
            for a in e.links.iter().flat_map(|l| l.monitors.iter()) {
                match a {
                    Action::Remote(_) => c.monitors_from_peers += 1,
                    _ => c.monitors_local += 1,
                }
            }
        }
        c.queue_depth = self.run.len() + self.shared.queue.lock().len();
        c
    }
}

static GLOBAL_INITS: std::sync::LazyLock<RwLock<HashMap<String, InitFn>>> =
    std::sync::LazyLock::new(|| RwLock::new(HashMap::new()));

/// Registers an init function for every node of the process.
pub(crate) fn register_global_init(name: &str, f: InitFn) {
    GLOBAL_INITS.write().insert(name.to_owned(), f);
}

/// Whether `key` is the node port's.
fn is_node_port(key: &Key) -> bool {
    matches!(key, Key::Name(n) if n.is_empty())
}

/// The reason monitors on the node port get when the node shuts down.
pub(crate) fn shutdown_reason() -> Reason {
    Reason::die("node shut down")
}

/// The reason for a callback's error.
pub(crate) fn error_reason(e: Error) -> Reason {
    match e {
        Error::Die(t) => Reason::die(t),
        other => Reason::die(other.to_string()),
    }
}

/// The text of a panic payload.
pub(crate) fn panic_text(p: &Box<dyn Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_owned()
    }
}

/// How long the dispatcher watches for more work before it sleeps, when
/// commands stream in: about what a thread wake-up costs.
const SPIN: std::time::Duration = std::time::Duration::from_micros(5);

/// Spins until a push raises the hint or [`SPIN`] has passed; returns
/// whether work came.
fn spin_for_work(shared: &Shared) -> bool {
    shared.hint.store(false, Ordering::Relaxed);
    let t0 = std::time::Instant::now();
    loop {
        for _ in 0..16 {
            if shared.hint.load(Ordering::Relaxed) {
                return true;
            }
            std::hint::spin_loop();
        }
        if t0.elapsed() >= SPIN {
            return false;
        }
    }
}

/// The dispatcher task: runs the node's commands whenever no connection
/// reader is running them, and sleeps when there are none.
///
/// It does not yield to tokio between batches (only when its coop budget
/// is spent): a yielding task is queued where the other workers may steal
/// it, so tokio wakes one to do so, a thread wake-up per batch. And it
/// spins for more work only briefly, and only when commands stream in (the
/// last step left more behind it): a task that a callback wakes sits in
/// this worker's LIFO slot, which no other worker may take, until the
/// dispatcher returns, so a spin after a request and its reply holds the
/// requester back for the whole spin.
pub(crate) async fn run(shared: Arc<Shared>) {
    let Some(slot) = shared.core.get() else { return };
    let mut streaming = false;
    loop {
        if shared.cancel.is_cancelled() {
            break;
        }
        let (more, held_elsewhere) = match slot.try_lock() {
            Some(mut g) => (g.as_mut().is_some_and(|core| core.step(16_384)), false),
            None => (false, true),
        };
        if more {
            streaming = true;
            tokio::task::consume_budget().await;
            continue;
        }
        if streaming && !held_elsewhere && spin_for_work(&shared) {
            continue;
        }
        streaming = false;
        shared.sleeping.store(true, Ordering::SeqCst);
        if !shared.queue.lock().is_empty() {
            shared.sleeping.store(false, Ordering::SeqCst);
            if held_elsewhere {
                // Whoever holds the state runs the queue; let the tasks
                // that share this thread run meanwhile instead of spinning.
                tokio::task::yield_now().await;
            }
            continue;
        }
        // Shutdown wakes it too (see `Shared::shut_down`).
        shared.wake.notified().await;
        shared.sleeping.store(false, Ordering::SeqCst);
    }
    // The node port dies with the node: its monitors fire. Then drop the
    // ports (and with them the closures they hold) inside the runtime, and
    // the state with its reference to `shared`.
    let core = slot.lock().take();
    if let Some(mut core) = core {
        core.node_port_died();
        drop(core);
    }
    shared.queue.lock().clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{msg, Node};

    fn ids(m: &Monitors) -> Vec<u64> {
        m.list.iter().filter(|(_, a)| a.is_some()).map(|(i, _)| *i).collect()
    }

    #[test]
    fn monitors_keep_their_order_whatever_is_removed() {
        for crossed in [false, true] {
            let mut m = Monitors::default();
            let mut model: Vec<u64> = (1..=1000).collect();
            if crossed {
                // Two requests crossed on their way to the dispatcher.
                model.swap(10, 11);
            }
            for &id in &model {
                m.push(id, Action::Keep(Box::new(())));
            }
            assert_eq!(m.unordered, crossed);
            // Remove every third, then some twice and some never placed.
            for id in (1..=1000).step_by(3).chain([4, 7, 5000]) {
                m.remove(id);
                model.retain(|&i| i != id);
            }
            assert_eq!(ids(&m), model);
            assert!(m.list.len() <= 2 * model.len() + 1, "holes are dropped");
            for id in 1..=1000 {
                m.remove(id);
            }
            assert!(m.is_empty());
            assert_eq!(m.into_actions().count(), 0);
        }
    }

    /// A call may run on the caller's task: what the caller queued before
    /// it still runs first, whoever runs the dispatcher.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_comes_after_what_its_caller_sent_before_it() {
        let node = Node::builder().build().await.unwrap();
        let mut seen = 0u64;
        let counter = node.port_with(move |ctx, m| -> crate::Result<()> {
            match m.port(0) {
                Ok(reply) => ctx.snd(&reply, msg![seen]),
                Err(_) => seen += 1,
            }
            Ok(())
        });
        for round in 1..=20u64 {
            // Held, so that the sends below queue up behind it.
            let held = node.shared().hold_dispatcher();
            for i in 0..100 {
                node.snd(&counter, msg![i]);
            }
            drop(held);
            let r = node.call(&counter, msg![], std::time::Duration::from_secs(30)).await.unwrap();
            assert_eq!(r, msg![round * 100]);
        }
        node.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_answered_call_leaves_no_reply_port_and_no_monitor_behind() {
        let node = Node::builder().build().await.unwrap();
        let echo = node.port_with(|ctx, m| -> crate::Result<()> {
            ctx.snd(&m.port(1)?, msg![m.at(0)?.clone()]);
            Ok(())
        });
        let before = node.port_count().await;
        for i in 0..100 {
            let r = node.call(&echo, msg![i], std::time::Duration::from_secs(30)).await.unwrap();
            assert_eq!(r, msg![i]);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let key = node.shared().key_of(echo.name());
        node.shared().call(move |core| {
            let mons = core.entry_mut(&key).and_then(|e| e.links.as_ref()).map(|l| ids(&l.monitors));
            let _ = tx.send((core.port_count(), mons.unwrap_or_default()));
        });
        let (after, mons) = rx.await.unwrap();
        assert_eq!(after, before);
        assert_eq!(mons, Vec::<u64>::new());
        node.shutdown().await;
    }
}
