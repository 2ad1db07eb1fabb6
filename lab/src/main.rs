//! The `aemp-lab` command: `run` (one schedule), `ci` (many, on labs in
//! parallel), `soak` (for a time), `check` (a kept history), and the `node`
//! and `relay` programs the lab starts inside its namespaces.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aemp_lab::checker::{self, Kind, Report};
use aemp_lab::history::{Event, Record};
use aemp_lab::lab::{Lab, Settings};
use aemp_lab::netns;
use aemp_lab::schedule::{self, Schedule};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "aemp-lab", about = "aemp nodes on namespace hosts, with faults, a history and its checker")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// Labs (sets of hosts and node processes) run in parallel.
    #[arg(long, default_value_t = 1)]
    labs: usize,
    /// Hosts per lab.
    #[arg(long, default_value_t = 3)]
    hosts: usize,
    /// The nodes' monitor_timeout (link timeout), seconds.
    #[arg(long, default_value_t = 3.0)]
    timeout: f64,
    /// How long the network may take to converge after a heal, seconds.
    #[arg(long, default_value_t = 15.0)]
    bound: f64,
    /// Milliseconds between the messages of a stream.
    #[arg(long, default_value_t = 20)]
    interval_ms: u64,
    /// Keep the history folder when the run fails.
    #[arg(long)]
    keep: bool,
    /// Violation kinds that are known issues: listed, but do not fail the
    /// run (comma-separated: hole, silent-loss, late, reorder, duplicate,
    /// not-converged, no-failover; also env AEMP_LAB_EXPECT).
    #[arg(long, value_delimiter = ',')]
    expect: Vec<String>,
    /// Exit 0 with a notice when not root or `ip`/`nft` are missing (also env AEMP_LAB_SKIP=1).
    #[arg(long)]
    skip_if_unavailable: bool,
    /// Delay, loss and reordering faults through the relay: `auto` (when
    /// `iptables-legacy` and NFQUEUE are there), `on` (required), `off`.
    /// The schedule of a seed depends on it.
    #[arg(long, value_enum, default_value_t = RelayMode::Auto)]
    relay: RelayMode,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum RelayMode {
    Auto,
    On,
    Off,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs the schedule of one seed (the replay command of a failure).
    Run {
        /// The schedule's seed.
        #[arg(long)]
        seed: u64,
        #[command(flatten)]
        common: Common,
    },
    /// Runs many random schedules (derived from one seed) over parallel labs.
    Ci {
        /// How many schedules.
        #[arg(long, default_value_t = 100)]
        schedules: u64,
        /// The run's seed (default: from the clock).
        #[arg(long)]
        seed: Option<u64>,
        #[command(flatten)]
        common: Common,
    },
    /// Runs random schedules for a while.
    Soak {
        /// For how long.
        #[arg(long, default_value_t = 30)]
        minutes: u64,
        /// The run's seed (default: from the clock).
        #[arg(long)]
        seed: Option<u64>,
        #[command(flatten)]
        common: Common,
    },
    /// Checks a kept history folder (one lab's `*.jsonl`).
    Check {
        /// The folder.
        dir: PathBuf,
    },
    /// (internal) The node program, run inside a host namespace.
    Node(aemp_lab::node::NodeArgs),
    /// (internal) The relay program, run inside a host namespace.
    Relay(aemp_lab::relay::RelayArgs),
}

fn main() {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Node(a) => {
            tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .init();
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
            let r = rt.expect("a runtime").block_on(aemp_lab::node::run(a));
            if let Err(e) = r {
                eprintln!("aemp-lab node: {e}");
                std::process::exit(1);
            }
            // Tasks of the node may still run; the history is complete.
            std::process::exit(0);
        }
        Cmd::Relay(a) => {
            if let Err(e) = aemp_lab::relay::run(a) {
                eprintln!("aemp-lab relay: {e}");
                std::process::exit(1);
            }
        }
        Cmd::Check { dir } => {
            let h = aemp_lab::history::read_dir(&dir).unwrap_or_else(|e| {
                eprintln!("{}: {e}", dir.display());
                std::process::exit(2)
            });
            let r = checker::check(&h, &checker::Options::default());
            for v in &r.violations {
                println!("{v}");
            }
            println!("{} messages, {} streams, {} violations", r.messages, r.streams, r.violations.len());
            std::process::exit(if r.violations.is_empty() { 0 } else { 1 });
        }
        Cmd::Run { seed, common } => drive(common, Plan::List(vec![seed]), None),
        Cmd::Ci { schedules, seed, common } => {
            let seed = seed.unwrap_or_else(clock_seed);
            println!("run seed {seed} ({schedules} schedules)");
            let seeds = (0..schedules).map(|i| schedule::nth_seed(seed, i)).collect();
            drive(common, Plan::List(seeds), None)
        }
        Cmd::Soak { minutes, seed, common } => {
            let seed = seed.unwrap_or_else(clock_seed);
            println!("run seed {seed} (for {minutes} minutes)");
            drive(common, Plan::Endless(seed), Some(Instant::now() + Duration::from_secs(minutes * 60)))
        }
    }
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_secs()) % 1_000_000
}

enum Plan {
    List(Vec<u64>),
    Endless(u64),
}

struct Queue {
    list: VecDeque<u64>,
    endless: Option<(u64, u64)>,
    deadline: Option<Instant>,
}

impl Queue {
    fn next(&mut self) -> Option<u64> {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        if let Some((seed, i)) = &mut self.endless {
            *i += 1;
            return Some(schedule::nth_seed(*seed, *i - 1));
        }
        self.list.pop_front()
    }
}

struct LabResult {
    name: String,
    dir: PathBuf,
    history: Vec<Record>,
    report: Report,
    schedules: u64,
    error: Option<String>,
}

fn expected_kinds(c: &Common) -> BTreeSet<Kind> {
    let mut names: Vec<String> = c.expect.clone();
    if let Ok(e) = std::env::var("AEMP_LAB_EXPECT") {
        names.extend(e.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()));
    }
    names
        .iter()
        .map(|n| {
            Kind::from_name(n).unwrap_or_else(|| {
                eprintln!("aemp-lab: unknown violation kind {n:?}");
                std::process::exit(2)
            })
        })
        .collect()
}

fn drive(c: Common, plan: Plan, deadline: Option<Instant>) {
    let expected = expected_kinds(&c);
    if let Some(why) = netns::unavailable() {
        let skip = c.skip_if_unavailable || std::env::var("AEMP_LAB_SKIP").is_ok_and(|v| v == "1");
        if skip {
            println!("aemp-lab: SKIPPED: {why}");
            std::process::exit(0);
        }
        eprintln!("\n*** aemp-lab cannot run: {why}. ***");
        eprintln!("*** It needs root, iproute2 and nftables to make network namespaces. ***");
        eprintln!("*** Pass --skip-if-unavailable (or AEMP_LAB_SKIP=1) to skip instead. ***\n");
        std::process::exit(2);
    }
    let relay = match (c.relay, aemp_lab::relay::unavailable()) {
        (RelayMode::Off, _) => false,
        (RelayMode::On, Some(why)) => {
            eprintln!("\n*** aemp-lab: --relay on, but {why}. ***\n");
            std::process::exit(2);
        }
        (RelayMode::Auto, Some(why)) => {
            println!("relay: off ({why}): no delay/loss/reorder faults");
            false
        }
        (_, None) => true,
    };
    netns::install_signal_cleanup();
    let stale = netns::clean_stale();
    if stale > 0 {
        println!("removed {stale} stale namespaces of earlier runs");
    }
    clean_stale_dirs();
    let pid = std::process::id();
    let top = std::env::temp_dir().join(format!("{}{pid}-run", netns::PREFIX));
    netns::track_dir(&top);
    let settings = Settings {
        hosts: c.hosts.max(3),
        timeout: c.timeout,
        latency: (c.timeout / 6.0).max(0.2),
        interval_ms: c.interval_ms,
        bound_ms: (c.bound * 1000.0) as u64,
        relay,
    };
    let queue = Arc::new(Mutex::new(match plan {
        Plan::List(l) => Queue { list: l.into(), endless: None, deadline },
        Plan::Endless(s) => Queue { list: VecDeque::new(), endless: Some((s, 0)), deadline },
    }));
    let started = Instant::now();
    let results: Vec<LabResult> = std::thread::scope(|sc| {
        let handles: Vec<_> = (1..=c.labs.max(1))
            .map(|k| {
                let (queue, settings, top) = (queue.clone(), settings.clone(), top.clone());
                sc.spawn(move || run_lab(k, pid, &top, settings, &queue))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a lab thread")).collect()
    });
    let failed = summarise(&results, &expected, started, relay);
    if failed && c.keep {
        for r in &results {
            let _ = std::fs::write(r.dir.join("KEEP"), "");
        }
        netns::untrack_dir(&top);
        println!("history kept in {}", top.display());
    }
    netns::cleanup_all();
    std::process::exit(if failed { 1 } else { 0 });
}

fn clean_stale_dirs() {
    let Ok(rd) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(netns::PREFIX) else { continue };
        let pid = rest.split('-').next().unwrap_or("");
        let keep = std::fs::read_dir(e.path())
            .map(|d| d.flatten().any(|l| l.path().join("KEEP").exists()))
            .unwrap_or(false);
        if !keep && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn run_lab(k: usize, pid: u32, top: &Path, s: Settings, queue: &Mutex<Queue>) -> LabResult {
    let name = format!("lab{k}");
    let dir = top.join(&name);
    let prefix = format!("{}{pid}-{k}-", netns::PREFIX);
    let mut res = LabResult {
        name: name.clone(),
        dir: dir.clone(),
        history: Vec::new(),
        report: Report::default(),
        schedules: 0,
        error: None,
    };
    let gen = schedule::Settings { hosts: s.hosts, timeout_ms: (s.timeout * 1000.0) as u64, relay: s.relay };
    let mut lab = match Lab::start(&name, &prefix, &dir, s) {
        Ok(l) => l,
        Err(e) => {
            res.error = Some(e);
            return res;
        }
    };
    loop {
        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
        let Some(seed) = next else { break };
        let sch: Schedule = schedule::generate(seed, &gen);
        let t = Instant::now();
        match lab.run_schedule(&sch) {
            Ok(o) => {
                res.schedules += 1;
                let conv = match o.converged {
                    Some(d) => format!("converged in {:.1}s", d.as_secs_f64()),
                    None => format!("NOT CONVERGED: {}", o.why.join("; ")),
                };
                println!("{name}: {sch} -> {conv} ({:.0}s)", t.elapsed().as_secs_f64());
            }
            Err(e) => {
                res.error = Some(format!("schedule {sch}: {e}"));
                break;
            }
        }
    }
    match lab.finish() {
        Ok(h) => res.history = h,
        Err(e) => res.error = Some(e),
    }
    res.report = checker::check(&res.history, &checker::Options::default());
    res
}

/// The seed of the schedule running at time `t` of a lab's history.
fn seed_at(history: &[Record], t: u64) -> Option<u64> {
    history
        .iter()
        .take_while(|r| r.t <= t)
        .filter_map(|r| match r.ev {
            Event::Schedule { seed } => Some(seed),
            _ => None,
        })
        .last()
}

fn stats(v: &mut [u64]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    v.sort();
    let s = |ns: u64| format!("{:.2}s", ns as f64 / 1e9);
    format!("min {} median {} max {} (n={})", s(v[0]), s(v[v.len() / 2]), s(v[v.len() - 1]), v.len())
}

/// The figures of the `degrade` faults: what the relays did, what got
/// through and how late, and which links and monitors gave up.
fn print_degradations(degraded: &[(&LabResult, &checker::Degradation)], relayed: &checker::Relayed) {
    let pct = |n: u64| if relayed.packets == 0 { 0.0 } else { n as f64 * 100.0 / relayed.packets as f64 };
    println!("under degradation (delay/loss/reorder by the relay, {} faults):", degraded.len());
    println!(
        "  relayed packets: {}, dropped {} ({:.1}%), held back to reorder {} ({:.1}%), most held at once {}",
        relayed.packets,
        relayed.dropped,
        pct(relayed.dropped),
        relayed.reordered,
        pct(relayed.reordered),
        relayed.max_held
    );
    let mut lat: Vec<u64> = degraded.iter().flat_map(|(_, d)| d.latencies_ns.iter().copied()).collect();
    let delivered: u64 = degraded.iter().map(|(_, d)| d.delivered).sum();
    println!("  messages delivered between the degraded hosts meanwhile: {delivered}");
    println!("  their latency (sent -> received): {}", stats(&mut lat));
    let downs: u64 = degraded.iter().map(|(_, d)| d.link_downs).sum();
    let fired: u64 = degraded.iter().map(|(_, d)| d.monitors_fired).sum();
    let other: u64 = degraded.iter().map(|(_, d)| d.link_downs_other).sum();
    println!(
        "  links given up by the degradation alone: {downs}, stream monitors fired: {fired} ({other} more links given up while another fault touched the hosts)"
    );
    for (lab, d) in degraded.iter().filter(|(_, d)| d.link_downs > 0) {
        let seed = seed_at(&lab.history, d.t).map_or("?".to_owned(), |s| s.to_string());
        println!(
            "    {}: schedule seed {seed}: {} links given up ({}), {} monitors fired",
            lab.name,
            d.link_downs,
            d.reasons.join("; "),
            d.monitors_fired
        );
    }
}

fn summarise(results: &[LabResult], expected: &BTreeSet<Kind>, started: Instant, relay: bool) -> bool {
    let mut failed = false;
    let mut first: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut all: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut undetected: BTreeMap<String, u64> = BTreeMap::new();
    let (mut conv, mut failovers) = (Vec::new(), Vec::new());
    let mut degraded: Vec<(&LabResult, &checker::Degradation)> = Vec::new();
    let mut relayed = checker::Relayed::default();
    let (mut messages, mut streams, mut fired, mut schedules, mut blips) = (0, 0, 0, 0, 0);
    let mut by_kind: BTreeMap<Kind, usize> = BTreeMap::new();
    println!("\n== violations ==");
    for r in results {
        if let Some(e) = &r.error {
            println!("{}: ERROR: {e}", r.name);
            failed = true;
        }
        let rep = &r.report;
        messages += rep.messages;
        streams += rep.streams;
        fired += rep.monitors_fired;
        schedules += r.schedules;
        blips += rep.blip_downs;
        for d in &rep.detections {
            match d.first_ns {
                Some(f) => first.entry(d.kind.clone()).or_default().push(f),
                None => *undetected.entry(d.kind.clone()).or_default() += 1,
            }
            if let Some(a) = d.all_ns {
                all.entry(d.kind.clone()).or_default().push(a);
            }
        }
        conv.extend(rep.convergences.iter().flatten().copied());
        degraded.extend(rep.degradations.iter().map(|d| (r, d)));
        relayed.packets += rep.relayed.packets;
        relayed.dropped += rep.relayed.dropped;
        relayed.reordered += rep.relayed.reordered;
        relayed.max_held = relayed.max_held.max(rep.relayed.max_held);
        failovers.extend(rep.failovers.iter().copied());
        for v in &rep.violations {
            *by_kind.entry(v.kind).or_default() += 1;
            let known = expected.contains(&v.kind);
            failed |= !known;
            let seed = seed_at(&r.history, v.t).map_or("start".to_owned(), |s| s.to_string());
            println!(
                "{}{}: schedule seed {seed}: {v}\n    replay: cargo run -p aemp-lab -- run --seed {seed} --relay {}",
                if known { "(expected, known issue) " } else { "" },
                r.name,
                if relay { "on" } else { "off" }
            );
        }
    }
    if by_kind.is_empty() {
        println!("none");
    }
    println!("\n== figures ==");
    println!(
        "schedules run: {schedules} on {} labs in {:.0}s",
        results.len(),
        started.elapsed().as_secs_f64()
    );
    println!("messages checked: {messages} on {streams} streams ({fired} monitors fired)");
    for k in Kind::ALL {
        println!("  {}: {}", k.name(), by_kind.get(&k).copied().unwrap_or(0));
    }
    println!("detection (fault start -> first link down seen | -> every expected side saw it):");
    for (kind, v) in first.iter_mut() {
        let mut a = all.get(kind).cloned().unwrap_or_default();
        println!("  {kind:10} first: {}", stats(v));
        println!("  {:10} all:   {}", "", stats(&mut a));
    }
    for (kind, n) in &undetected {
        println!("  {kind:10} not detected before its heal: {n}");
    }
    println!("links dropped by blips (shorter than the timeout): {blips}");
    if relay {
        print_degradations(&degraded, &relayed);
    }
    println!("convergence after heal (links, groups, new messages, one child): {}", stats(&mut conv));
    println!("supervised child fail-over (fault start -> new child elsewhere): {}", stats(&mut failovers));
    println!("\nverdict: {}", if failed { "FAILED" } else { "ok" });
    failed
}
