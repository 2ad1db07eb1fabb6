//! What the tool learns about its connection attempts from aemp's log
//! events: a `tracing` layer that keeps every event about a seed, an
//! address or a replaced connection (dial failures, refusals, reconnects),
//! whatever the log level shown on the terminal.
//!
//! `aemp trace` prints them as they come; the client commands use the
//! failures per seed to stop waiting, and say why, once every seed has
//! failed ([`wait_for_seeds`]).

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use aemp::{Node, NodeEvent};
use tokio::sync::{mpsc, Notify};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// One connection event from aemp's log.
#[derive(Debug, Clone)]
pub(crate) struct ConnEvent {
    pub(crate) level: Level,
    /// The seed address the event is about, if any.
    pub(crate) seed: Option<String>,
    /// `node N`, `ADDR` or `node N at ADDR`.
    pub(crate) place: String,
    /// What happened.
    pub(crate) text: String,
}

impl fmt::Display for ConnEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.text)
    }
}

#[derive(Default)]
struct Log {
    /// The last failure of each seed address.
    seed_failures: BTreeMap<String, String>,
    /// Where `aemp trace` wants the events.
    watchers: Vec<mpsc::UnboundedSender<ConnEvent>>,
}

/// The events seen so far, and who waits for more.
#[derive(Default)]
struct Shared {
    log: Mutex<Log>,
    changed: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn shared() -> &'static Arc<Shared> {
    static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();
    SHARED.get_or_init(Default::default)
}

/// The layer that records connection events; install it with a filter
/// that lets aemp's `debug` events through.
pub(crate) struct ConnLayer;

impl<S: Subscriber> Layer<S> for ConnLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let Some(ev) = fields.into_event(*event.metadata().level()) else { return };
        let shared = shared();
        let mut log = shared.lock();
        // aemp logs a seed's failed attempts as warnings (refusals) or at
        // debug level, and what went right at info level.
        let failed = matches!(ev.level, Level::ERROR | Level::WARN | Level::DEBUG);
        if let (Some(seed), true) = (&ev.seed, failed) {
            log.seed_failures.insert(seed.clone(), ev.text.clone());
        }
        log.watchers.retain(|w| w.send(ev.clone()).is_ok());
        drop(log);
        shared.changed.notify_waiters();
    }
}

/// The fields of one event that say where it happened.
#[derive(Default)]
struct Fields {
    message: String,
    seed: Option<String>,
    addr: Option<String>,
    node: Option<String>,
    reason: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.set(field, text);
    }
}

impl Fields {
    fn set(&mut self, field: &Field, value: String) {
        match field.name() {
            "message" => self.message = value,
            "seed" => self.seed = Some(value),
            "addr" => self.addr = Some(value),
            "node" => self.node = Some(value),
            "reason" => self.reason = Some(value),
            _ => {}
        }
    }

    /// A connection event: one about a seed, an address, or a connection
    /// replaced for a reason; `None` for any other event.
    fn into_event(self, level: Level) -> Option<ConnEvent> {
        if self.seed.is_none() && self.addr.is_none() && self.reason.is_none() {
            return None;
        }
        let place = match (&self.seed, &self.node, &self.addr) {
            (Some(seed), Some(node), _) => format!("seed {seed} (node {node})"),
            (Some(seed), None, _) => format!("seed {seed}"),
            (None, Some(node), Some(addr)) => format!("node {node} at {addr}"),
            (None, Some(node), None) => format!("node {node}"),
            (None, None, Some(addr)) => addr.clone(),
            (None, None, None) => "connection".into(),
        };
        let text = match self.reason {
            Some(r) => format!("{} ({r})", self.message),
            None => self.message,
        };
        Some(ConnEvent { level, seed: self.seed, place, text })
    }
}

/// Every connection event from now on.
pub(crate) fn watch() -> mpsc::UnboundedReceiver<ConnEvent> {
    let (tx, rx) = mpsc::unbounded_channel();
    shared().lock().watchers.push(tx);
    rx
}

/// Waits until `node` has a link (the first ones a client node makes are
/// to its seeds), or every seed has failed at least once, or `patience` is
/// over.
///
/// # Errors
/// When no seed answered: each seed's last failure, or that it did not
/// answer in time.
pub(crate) async fn wait_for_seeds(node: &Node, seeds: &[String], patience: Duration) -> Result<(), String> {
    let shared = shared().clone();
    // A link coming up is a change too.
    let on_link = shared.clone();
    let watch = node.mon_nodes(move |ev| {
        if let NodeEvent::Up(_) = ev {
            on_link.changed.notify_waiters();
        }
    });
    let deadline = tokio::time::Instant::now() + patience;
    let result = loop {
        let changed = shared.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if !node.seed_nodes().is_empty() || !node.up_nodes().is_empty() {
            break Ok(());
        }
        let failures = shared.lock().seed_failures.clone();
        if seeds.iter().all(|s| failures.contains_key(s)) {
            break Err(no_seed(seeds, &failures, None));
        }
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep_until(deadline) => break Err(no_seed(seeds, &failures, Some(patience))),
        }
    };
    node.unmon_nodes(watch);
    result
}

/// "no seed answered" with each seed's story.
fn no_seed(seeds: &[String], failures: &BTreeMap<String, String>, waited: Option<Duration>) -> String {
    let mut text = String::from("no seed answered");
    for (i, s) in seeds.iter().enumerate() {
        let sep = if i == 0 { ": " } else { "; " };
        match failures.get(s) {
            Some(why) => {
                let _ = write!(text, "{sep}{s}: {why}");
            }
            None => {
                let waited = waited.map_or(String::new(), |w| format!(" within {:.1} s", w.as_secs_f64()));
                let _ = write!(text, "{sep}{s}: no answer{waited}");
            }
        }
    }
    text
}
