//! Child and supervisor specs, and their wire form (a map of plain values,
//! so that any node, aemp or AnyEvent::MP, can build one).

use std::collections::HashSet;
use std::time::Duration;

use aemp::{Map, Msg, NodeId, PortId, Value};

use crate::error::{Error, Result};
use crate::intensity::{Backoff, Intensity};
use crate::strategy::Strategy;

/// The init function name under which [`install`](crate::install) registers
/// the generic supervisor: spawn it with one argument, a supervisor spec map
/// ([`SupervisorSpec::to_value`]).
pub const SUPERVISOR_INIT: &str = "aemp_supervisor::init";

/// When a child is restarted after it exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Restart {
    /// Always.
    #[default]
    Permanent,
    /// Only after an abnormal exit (not normal, not `("shutdown", ...)`).
    Transient,
    /// Never; the child is forgotten once it exits.
    Temporary,
}

impl Restart {
    /// The wire name (`"permanent"`, `"transient"`, `"temporary"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Restart::Permanent => "permanent",
            Restart::Transient => "transient",
            Restart::Temporary => "temporary",
        }
    }

    /// The restart type of a wire name.
    pub fn from_name(s: &str) -> Option<Restart> {
        Some(match s {
            "permanent" => Restart::Permanent,
            "transient" => Restart::Transient,
            "temporary" => Restart::Temporary,
            _ => return None,
        })
    }
}

/// Where a child runs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Placement {
    /// On the supervisor's node.
    #[default]
    Local,
    /// On this node (spawned there by name; it needs
    /// [`install`](crate::install) and the child's init function).
    Node(NodeId),
    /// On any node that has a port in this Global group and is connected
    /// (or is the supervisor's own). The least loaded one (fewest children
    /// of this supervisor) wins, ties broken at random; a node just lost is
    /// skipped when the child is restarted.
    Group(String),
}

impl Placement {
    /// The wire form: `"local"`, `{"node": id}` or `{"group": name}`.
    pub(crate) fn to_value(&self) -> Value {
        match self {
            Placement::Local => Value::from("local"),
            Placement::Node(n) => one("node", Value::from(n)),
            Placement::Group(g) => one("group", Value::from(g)),
        }
    }

    /// Reads the wire form.
    pub(crate) fn from_value(p: &Value) -> std::result::Result<Placement, String> {
        Ok(match (p.as_str(), p.as_map()) {
            (Some("local"), _) => Placement::Local,
            (_, Some(pm)) if pm.len() == 1 && pm.contains_key("node") => {
                let n = pm["node"].as_str().unwrap_or_default();
                Placement::Node(NodeId::new(n).map_err(|e| e.to_string())?)
            }
            (_, Some(pm)) if pm.len() == 1 && pm.contains_key("group") => {
                Placement::Group(pm["group"].as_str().unwrap_or_default().to_owned())
            }
            _ => return Err(format!("must be \"local\", {{\"node\": id}} or {{\"group\": name}}, not {p}")),
        })
    }
}

/// How a child is stopped by its supervisor.
///
/// The supervisor asks a child to stop by sending it `["shutdown"]`; a
/// child started with [`on_shutdown`](crate::on_shutdown) handles that by
/// itself (runs its cleanup, exits with `("shutdown", ...)`). A child that
/// ignores the request is killed once its time is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Kill it at once with `("shutdown", "killed by supervisor")`.
    Kill,
    /// Send it `["shutdown"]` and kill it with `("shutdown", "timeout")` if
    /// it has not died after this long (the default: 5 seconds).
    Timeout(Duration),
    /// Send it `["shutdown"]` and wait as long as it takes (the default for
    /// child supervisors, which stop their own children first).
    Infinity,
}

impl Default for Shutdown {
    /// Five seconds.
    fn default() -> Shutdown {
        Shutdown::Timeout(Duration::from_secs(5))
    }
}

/// Whether a child is a worker or a supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChildKind {
    /// Any port started by an init function.
    #[default]
    Worker,
    /// A supervisor started by [`SUPERVISOR_INIT`]: its start is confirmed
    /// once its own children have started.
    Supervisor,
}

impl ChildKind {
    /// The wire name (`"worker"` or `"supervisor"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChildKind::Worker => "worker",
            ChildKind::Supervisor => "supervisor",
        }
    }
}

/// How to start, restart and stop one child.
///
/// ```
/// use std::time::Duration;
/// use aemp_supervisor::{ChildSpec, Restart, Shutdown};
/// let spec = ChildSpec::new("cache", "MyApp::Cache::init")
///     .args(aemp::msg![1024])
///     .in_group("cache-nodes")
///     .restart(Restart::Transient)
///     .shutdown(Shutdown::Timeout(Duration::from_secs(2)))
///     .start_timeout(Duration::from_secs(10));
/// assert_eq!(spec.id, "cache");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ChildSpec {
    /// The child's ID, unique within its supervisor.
    pub id: String,
    /// The registered init function that starts it (see [`aemp::Node::register`]).
    pub init: String,
    /// The init function's arguments.
    pub args: Msg,
    /// Where it runs.
    pub placement: Placement,
    /// When it is restarted.
    pub restart: Restart,
    /// How it is stopped.
    pub shutdown: Shutdown,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// How long its start may take before the child is killed with
    /// `("start_timeout", text)` and counts as failed to start; `None`
    /// (the default, as in OTP) waits as long as it takes.
    pub start_timeout: Option<Duration>,
}

impl ChildSpec {
    /// A permanent worker on the supervisor's node, started by `init` without
    /// arguments, stopped with a 5 s timeout.
    pub fn new(id: impl Into<String>, init: impl Into<String>) -> ChildSpec {
        ChildSpec {
            id: id.into(),
            init: init.into(),
            args: Msg::new(),
            placement: Placement::Local,
            restart: Restart::Permanent,
            shutdown: Shutdown::default(),
            kind: ChildKind::Worker,
            start_timeout: None,
        }
    }

    /// A child supervisor running `spec` (started by [`SUPERVISOR_INIT`],
    /// stopped with [`Shutdown::Infinity`]).
    pub fn supervisor(id: impl Into<String>, spec: SupervisorSpec) -> ChildSpec {
        ChildSpec {
            id: id.into(),
            init: SUPERVISOR_INIT.to_owned(),
            args: Msg::from_array([spec.to_value()]),
            placement: Placement::Local,
            restart: Restart::Permanent,
            shutdown: Shutdown::Infinity,
            kind: ChildKind::Supervisor,
            start_timeout: None,
        }
    }

    /// Sets the init function's arguments.
    #[must_use]
    pub fn args(mut self, args: Msg) -> ChildSpec {
        self.args = args;
        self
    }

    /// Sets the placement.
    #[must_use]
    pub fn placement(mut self, placement: Placement) -> ChildSpec {
        self.placement = placement;
        self
    }

    /// Runs the child on `node`.
    #[must_use]
    pub fn on_node(self, node: &NodeId) -> ChildSpec {
        self.placement(Placement::Node(node.clone()))
    }

    /// Runs the child on any node of the Global group `group`.
    #[must_use]
    pub fn in_group(self, group: impl Into<String>) -> ChildSpec {
        self.placement(Placement::Group(group.into()))
    }

    /// Sets the restart type.
    #[must_use]
    pub fn restart(mut self, restart: Restart) -> ChildSpec {
        self.restart = restart;
        self
    }

    /// Sets how the child is stopped.
    #[must_use]
    pub fn shutdown(mut self, shutdown: Shutdown) -> ChildSpec {
        self.shutdown = shutdown;
        self
    }

    /// Kills the child and counts it as failed to start when its start is
    /// not confirmed within `timeout`: when its init function has not
    /// returned (on another node), a start deferred with
    /// [`defer_start`](crate::defer_start) is not confirmed, or a child
    /// supervisor's children have not all started.
    #[must_use]
    pub fn start_timeout(mut self, timeout: Duration) -> ChildSpec {
        self.start_timeout = Some(timeout);
        self
    }

    /// The wire form: a map with `id`, `init`, `args` (an array),
    /// `placement` (`"local"`, `{"node": id}` or `{"group": name}`),
    /// `restart` (`"permanent"`, `"transient"`, `"temporary"`), `shutdown`
    /// (`"kill"`, `"infinity"` or seconds), `kind` (`"worker"`,
    /// `"supervisor"`) and `start_timeout` (seconds or `null`).
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), Value::from(&self.id));
        m.insert("init".into(), Value::from(&self.init));
        m.insert("args".into(), Value::from(self.args.clone()));
        m.insert("placement".into(), self.placement.to_value());
        m.insert("restart".into(), Value::from(self.restart.as_str()));
        m.insert(
            "shutdown".into(),
            match self.shutdown {
                Shutdown::Kill => Value::from("kill"),
                Shutdown::Infinity => Value::from("infinity"),
                Shutdown::Timeout(d) => Value::from(d.as_secs_f64()),
            },
        );
        m.insert("kind".into(), Value::from(self.kind.as_str()));
        m.insert("start_timeout".into(), Value::from(self.start_timeout.map(|d| d.as_secs_f64())));
        Value::Map(m)
    }

    /// Reads the wire form; missing optional keys take the defaults of
    /// [`ChildSpec::new`].
    ///
    /// # Errors
    /// [`Error::InvalidSpec`] naming the offending key.
    pub fn from_value(v: &Value) -> Result<ChildSpec> {
        let m = v.as_map().ok_or_else(|| bad(format!("a child spec must be a map, not a {}", v.kind())))?;
        let id = string(m, "id")?.ok_or_else(|| bad("a child spec needs an \"id\""))?;
        let init = string(m, "init")?.ok_or_else(|| bad(format!("child {id:?} needs an \"init\"")))?;
        let mut spec = ChildSpec::new(id, init);
        let at = |k: &str| format!("child {:?}: {k}", spec.id);
        if let Some(a) = get(m, "args") {
            let a = a.as_array().ok_or_else(|| bad(format!("{} must be an array", at("args"))))?;
            spec.args = a.iter().cloned().collect();
        }
        if let Some(p) = get(m, "placement") {
            spec.placement = Placement::from_value(p).map_err(|e| bad(format!("{} {e}", at("placement"))))?;
        }
        if let Some(r) = string(m, "restart")? {
            spec.restart = Restart::from_name(&r)
                .ok_or_else(|| bad(format!("{} must be permanent, transient or temporary", at("restart"))))?;
        }
        if let Some(s) = get(m, "shutdown") {
            spec.shutdown = match (s.as_str(), s.as_f64()) {
                (Some("kill"), _) => Shutdown::Kill,
                (Some("infinity"), _) => Shutdown::Infinity,
                (_, Some(secs)) => {
                    Shutdown::Timeout(seconds(secs).map_err(|e| bad(format!("{}: {e}", at("shutdown"))))?)
                }
                _ => {
                    return Err(bad(format!("{} must be \"kill\", \"infinity\" or seconds", at("shutdown"))))
                }
            };
        }
        if let Some(k) = string(m, "kind")? {
            spec.kind = match k.as_str() {
                "worker" => ChildKind::Worker,
                "supervisor" => ChildKind::Supervisor,
                _ => return Err(bad(format!("{} must be worker or supervisor", at("kind")))),
            };
        }
        if let Some(t) = get(m, "start_timeout") {
            let secs = t.as_f64().ok_or_else(|| bad(format!("{} must be seconds", at("start_timeout"))))?;
            spec.start_timeout =
                Some(seconds(secs).map_err(|e| bad(format!("{}: {e}", at("start_timeout"))))?);
        }
        Ok(spec)
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.id.is_empty() {
            return Err(bad("a child ID must not be empty"));
        }
        if self.init.is_empty() {
            return Err(bad(format!("child {:?} has an empty init function name", self.id)));
        }
        if let Placement::Group(g) = &self.placement {
            if g.is_empty() {
                return Err(bad(format!("child {:?} has an empty placement group", self.id)));
            }
        }
        if self.kind == ChildKind::Supervisor && !matches!(self.args.first(), Some(Value::Map(_))) {
            return Err(bad(format!(
                "supervisor child {:?} needs a supervisor spec map as argument",
                self.id
            )));
        }
        Ok(())
    }
}

/// A supervisor: its strategy, restart intensity, optional backoff and
/// children (started in this order, stopped in reverse).
///
/// ```
/// use std::time::Duration;
/// use aemp_supervisor::{ChildSpec, Intensity, Strategy, SupervisorSpec};
/// let spec = SupervisorSpec::new(Strategy::RestForOne)
///     .intensity(Intensity::new(5, Duration::from_secs(30)))
///     .child(ChildSpec::new("db", "MyApp::Db::init"))
///     .child(ChildSpec::new("web", "MyApp::Web::init"));
/// assert_eq!(spec.children.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SupervisorSpec {
    /// The restart strategy.
    pub strategy: Strategy,
    /// At most so many restarts in so much time.
    pub intensity: Intensity,
    /// Delays between restarts, if any.
    pub backoff: Option<Backoff>,
    /// The children; for [`Strategy::SimpleOneForOne`] exactly one, the
    /// template, which is not started by itself.
    pub children: Vec<ChildSpec>,
    /// A port that gets the supervisor's events (see
    /// [`SupervisorSpec::observer`]).
    pub observer: Option<PortId>,
    /// The most children the supervisor may have; adding one more at run
    /// time fails with [`Error::TooManyChildren`]. `None`: no limit.
    pub max_children: Option<usize>,
}

impl SupervisorSpec {
    /// A supervisor without children, with the default intensity (3
    /// restarts in 5 s) and no backoff.
    pub fn new(strategy: Strategy) -> SupervisorSpec {
        SupervisorSpec {
            strategy,
            intensity: Intensity::default(),
            backoff: None,
            children: Vec::new(),
            observer: None,
            max_children: None,
        }
    }

    /// A simple-one-for-one supervisor: children are made at run time from
    /// `template` by [`Supervisor::start_dynamic`](crate::Supervisor::start_dynamic),
    /// which appends its arguments to the template's (and may place each
    /// child elsewhere). Its children are kept by ID, so adding, removing
    /// and restarting one costs the same with ten children as with ten
    /// thousand, and they are stopped all at once when it stops, within one
    /// shared deadline (the template's [`Shutdown`]).
    pub fn simple_one_for_one(template: ChildSpec) -> SupervisorSpec {
        SupervisorSpec::new(Strategy::SimpleOneForOne).child(template)
    }

    /// Sets the restart intensity.
    #[must_use]
    pub fn intensity(mut self, intensity: Intensity) -> SupervisorSpec {
        self.intensity = intensity;
        self
    }

    /// Waits between restarts (see [`Backoff`]).
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> SupervisorSpec {
        self.backoff = Some(backoff);
        self
    }

    /// Limits the number of children (see
    /// [`max_children`](SupervisorSpec::max_children)).
    #[must_use]
    pub fn max_children(mut self, max: usize) -> SupervisorSpec {
        self.max_children = Some(max);
        self
    }

    /// Adds a child (after the ones added before).
    #[must_use]
    pub fn child(mut self, child: ChildSpec) -> SupervisorSpec {
        self.children.push(child);
        self
    }

    /// Sends the supervisor's events to `port`, in order, each numbered,
    /// and all of them before the supervisor's monitors learn of its death
    /// (see [`Event`](crate::Event) for their wire form, and
    /// [`EventStream`](crate::EventStream) for a port that decodes them).
    #[must_use]
    pub fn observer(mut self, port: &PortId) -> SupervisorSpec {
        self.observer = Some(port.clone());
        self
    }

    /// Checks the spec: child IDs present and unique, one template for
    /// simple-one-for-one, a sane backoff.
    ///
    /// # Errors
    /// [`Error::InvalidSpec`] naming the problem.
    pub fn validate(&self) -> Result<()> {
        let mut ids = HashSet::new();
        for c in &self.children {
            c.check()?;
            if !ids.insert(c.id.as_str()) {
                return Err(bad(format!("two children have the ID {:?}", c.id)));
            }
        }
        if self.strategy == Strategy::SimpleOneForOne && self.children.len() != 1 {
            return Err(bad("a simple_one_for_one supervisor needs exactly one child spec, its template"));
        }
        if let Some(b) = &self.backoff {
            if b.min > b.max {
                return Err(bad("the backoff minimum must not exceed its maximum"));
            }
        }
        if let Some(max) = self.max_children {
            if self.strategy != Strategy::SimpleOneForOne && self.children.len() > max {
                return Err(bad(format!("{} children, but at most {max} allowed", self.children.len())));
            }
        }
        Ok(())
    }

    /// The wire form: a map with `strategy`, `max_restarts`, `period`
    /// (seconds), `backoff` (`null` or `{"min", "max", "reset_after"}` in
    /// seconds, `"random_factor"` and `"seed"` or `null`), `children` (an
    /// array of [`ChildSpec::to_value`] maps), `observer` (a port or
    /// `null`) and `max_children` (a number or `null`).
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("strategy".into(), Value::from(self.strategy.as_str()));
        m.insert("max_restarts".into(), Value::from(self.intensity.max_restarts));
        m.insert("period".into(), Value::from(self.intensity.period.as_secs_f64()));
        m.insert(
            "backoff".into(),
            match &self.backoff {
                None => Value::Null,
                Some(b) => {
                    let mut bm = Map::new();
                    bm.insert("min".into(), Value::from(b.min.as_secs_f64()));
                    bm.insert("max".into(), Value::from(b.max.as_secs_f64()));
                    bm.insert("random_factor".into(), Value::from(b.random_factor));
                    bm.insert("reset_after".into(), Value::from(b.reset_after.as_secs_f64()));
                    bm.insert("seed".into(), Value::from(b.seed));
                    Value::Map(bm)
                }
            },
        );
        m.insert("children".into(), Value::Array(self.children.iter().map(ChildSpec::to_value).collect()));
        m.insert("observer".into(), Value::from(self.observer.clone()));
        m.insert("max_children".into(), Value::from(self.max_children));
        Value::Map(m)
    }

    /// Reads the wire form (and [`validate`](SupervisorSpec::validate)s it);
    /// missing optional keys take the defaults of [`SupervisorSpec::new`].
    ///
    /// # Errors
    /// [`Error::InvalidSpec`] naming the offending key.
    pub fn from_value(v: &Value) -> Result<SupervisorSpec> {
        let m =
            v.as_map().ok_or_else(|| bad(format!("a supervisor spec must be a map, not a {}", v.kind())))?;
        let strategy = match string(m, "strategy")? {
            None => Strategy::OneForOne,
            Some(s) => Strategy::from_name(&s).ok_or_else(|| bad(format!("unknown strategy {s:?}")))?,
        };
        let mut spec = SupervisorSpec::new(strategy);
        if let Some(n) = get(m, "max_restarts") {
            let n = n.as_u64().ok_or_else(|| bad("max_restarts must be a whole number"))?;
            spec.intensity.max_restarts = u32::try_from(n).map_err(|_| bad("max_restarts is too large"))?;
        }
        if let Some(p) = get(m, "period") {
            let secs = p.as_f64().ok_or_else(|| bad("period must be seconds"))?;
            spec.intensity.period = seconds(secs).map_err(|e| bad(format!("period: {e}")))?;
        }
        if let Some(b) = get(m, "backoff") {
            let bm = b.as_map().ok_or_else(|| bad("backoff must be a map or null"))?;
            let secs = |k: &str| -> Result<Duration> {
                let v =
                    get(bm, k).and_then(Value::as_f64).ok_or_else(|| bad(format!("backoff needs {k:?}")))?;
                seconds(v).map_err(|e| bad(format!("backoff {k}: {e}")))
            };
            let mut b = Backoff::new(secs("min")?, secs("max")?);
            if let Some(f) = get(bm, "random_factor") {
                b = b.random_factor(f.as_f64().ok_or_else(|| bad("backoff random_factor must be a number"))?);
            }
            if get(bm, "reset_after").is_some() {
                b = b.reset_after(secs("reset_after")?);
            }
            if let Some(seed) = get(bm, "seed") {
                b = b.seed(seed.as_u64().ok_or_else(|| bad("backoff seed must be a whole number"))?);
            }
            spec.backoff = Some(b);
        }
        if let Some(c) = get(m, "children") {
            let c = c.as_array().ok_or_else(|| bad("children must be an array"))?;
            spec.children = c.iter().map(ChildSpec::from_value).collect::<Result<_>>()?;
        }
        if let Some(o) = get(m, "observer") {
            let o = o
                .as_str()
                .and_then(|s| PortId::new(s).ok())
                .ok_or_else(|| bad("observer must be a port ID"))?;
            spec.observer = Some(o);
        }
        if let Some(n) = get(m, "max_children") {
            let n = n.as_u64().ok_or_else(|| bad("max_children must be a whole number"))?;
            spec.max_children = Some(usize::try_from(n).map_err(|_| bad("max_children is too large"))?);
        }
        spec.validate()?;
        Ok(spec)
    }
}

fn bad(text: impl Into<String>) -> Error {
    Error::InvalidSpec(text.into())
}

fn one(key: &str, v: Value) -> Value {
    let mut m = Map::new();
    m.insert(key.into(), v);
    Value::Map(m)
}

/// A present, non-null value.
fn get<'a>(m: &'a Map, key: &str) -> Option<&'a Value> {
    m.get(key).filter(|v| !v.is_null())
}

fn string(m: &Map, key: &str) -> Result<Option<String>> {
    match get(m, key) {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s.clone())),
        Some(v) => Err(bad(format!("{key} must be a string, not a {}", v.kind()))),
    }
}

fn seconds(secs: f64) -> std::result::Result<Duration, String> {
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{secs} is not a usable number of seconds"))
}
