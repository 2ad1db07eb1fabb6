//! One lab: its network, its node processes, the faults of its schedules
//! and the history they leave; the lab follows the history as it grows to
//! know when the network has converged after a heal.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::checker::Replay;
use crate::history::{Event, Record, Writer};
use crate::netns::{self, Network, SUBNET};
use crate::schedule::{Fault, Schedule};

/// The seed name every node is given (resolving to several addresses).
pub const SEED_NAME: &str = "seeds.lab";
/// The port every node listens on.
pub const PORT: u16 = 4040;
const SECRET: &str = "aemp-lab-secret";

/// What the seed name resolves to on each host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SeedNames {
    /// Every seed, the host itself included.
    WithSelf,
    /// An address nobody has, then the other seeds.
    DeadFirst,
    /// The other seeds.
    Others,
}

/// How a lab runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Number of hosts (and node processes).
    pub hosts: usize,
    /// The nodes' `monitor_timeout`, seconds.
    pub timeout: f64,
    /// The nodes' `network_latency`, seconds.
    pub latency: f64,
    /// Milliseconds between the messages of a stream.
    pub interval_ms: u64,
    /// How long the network may take to converge after everything healed.
    pub bound_ms: u64,
    /// Whether the delay/loss/reorder relay is used.
    pub relay: bool,
}

/// Follows the history files of a folder as they grow.
#[derive(Default)]
struct Tail {
    files: HashMap<PathBuf, (u64, Vec<u8>)>,
}

impl Tail {
    fn poll(&mut self, dir: &Path) -> Vec<Record> {
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(dir) else { return out };
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_none_or(|x| x != "jsonl") {
                continue;
            }
            let (off, part) = self.files.entry(p.clone()).or_default();
            let Ok(mut f) = std::fs::File::open(&p) else { continue };
            if f.seek(SeekFrom::Start(*off)).is_err() {
                continue;
            }
            let mut buf = Vec::new();
            if let Ok(n) = f.read_to_end(&mut buf) {
                *off += n as u64;
            }
            part.extend_from_slice(&buf);
            if let Some(end) = part.iter().rposition(|b| *b == b'\n') {
                let whole: Vec<u8> = part.drain(..=end).collect();
                out.extend(crate::history::parse_lines(&String::from_utf8_lossy(&whole)));
            }
        }
        out.sort_by_key(|r| r.t);
        out
    }
}

/// A fault under way: its number, what it is, the drops it added.
type Active = (u32, Fault, Vec<(usize, usize)>);

/// What one schedule did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Time from the last heal to convergence, if it converged in the bound.
    pub converged: Option<Duration>,
    /// What kept it from converging.
    pub why: Vec<String>,
}

/// A running lab.
pub struct Lab {
    /// Its name (`lab1`, ...).
    pub name: String,
    net: Network,
    dir: PathBuf,
    exe: PathBuf,
    s: Settings,
    procs: Vec<Option<Child>>,
    paused: Vec<bool>,
    w: Writer,
    tail: Tail,
    replay: Replay,
    drops: Vec<(usize, usize)>,
    next_fault: u32,
    moves: u32,
    nodes: Vec<String>,
    relay: Option<crate::relay::Relays>,
}

/// The silent address next to a host's own (glibc sorts it first).
fn dead_addr(own: &str) -> String {
    let (net, last) = own.rsplit_once('.').unwrap_or((SUBNET, "16"));
    format!("{net}.{}", last.parse::<u32>().unwrap_or(16) + 1)
}

fn node_name(i: usize) -> String {
    format!("h{}", i + 1)
}

impl Lab {
    /// Makes the network (namespaces named `prefix...`), starts the nodes,
    /// and checks how they find each other through the seed name.
    ///
    /// # Errors
    /// When the network cannot be made or a node cannot start.
    pub fn start(name: &str, prefix: &str, dir: &Path, s: Settings) -> Result<Lab, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let net = Network::create(prefix, s.hosts)?;
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let w = Writer::open(&dir.join("lab.jsonl"), "lab").map_err(|e| e.to_string())?;
        let relay = if s.relay { Some(crate::relay::Relays::start(&net, &exe, dir)?) } else { None };
        let mut lab = Lab {
            name: name.to_owned(),
            net,
            dir: dir.to_owned(),
            exe,
            procs: (0..s.hosts).map(|_| None).collect(),
            paused: vec![false; s.hosts],
            w,
            tail: Tail::default(),
            replay: Replay::default(),
            drops: Vec::new(),
            next_fault: 0,
            moves: 0,
            nodes: (0..s.hosts).map(node_name).collect(),
            s,
            relay,
        };
        // 1. The seed name resolves to every seed, this host's own address
        //    included, as a headless service's name does.
        lab.write_seed_hosts(SeedNames::WithSelf)?;
        for i in 0..lab.s.hosts {
            lab.spawn_node(i)?;
        }
        let nodes = lab.nodes.clone();
        let ok = lab.wait_for(Duration::from_secs(4), |r| r.links_complete(&nodes));
        if !ok {
            return Err(format!(
                "{}: seed name that includes the node itself: no full mesh after 4s ({})",
                lab.name,
                lab.replay.missing_links(&nodes).join(", ")
            ));
        }
        lab.finding("seed name that includes the node itself: full mesh".to_owned());
        // 2. The name lists an address nobody answers on first (glibc puts
        //    it first: it shares the most leading bits with the host's).
        for i in 0..lab.s.hosts {
            lab.kill_node(i);
        }
        for i in 0..lab.s.hosts {
            let a = dead_addr(&lab.net.hosts[i].addr);
            lab.net.add_blackhole(&a)?;
        }
        lab.write_seed_hosts(SeedNames::DeadFirst)?;
        for i in 0..lab.s.hosts {
            lab.spawn_node(i)?;
        }
        let t0 = Instant::now();
        if !lab.wait_for(Duration::from_secs(5), |r| !r.links_empty()) {
            return Err(format!(
                "{}: seed name with a silent first address: no link in 5s (the addresses after it were not tried)",
                lab.name
            ));
        }
        lab.finding(format!("seed name with a silent first address: a link came up in {:.1}s", secs(t0)));
        // 3. The name is fixed (the others only): nodes that re-resolve it
        //    find the seeds.
        lab.write_seed_hosts(SeedNames::Others)?;
        let o = lab.quiet()?;
        match o.converged {
            Some(d) => lab.say(&format!("seed name fixed: converged in {:.1}s", d.as_secs_f64())),
            None => {
                return Err(format!(
                    "{}: the network never converged at start: {}",
                    lab.name,
                    o.why.join("; ")
                ))
            }
        }
        Ok(lab)
    }

    fn say(&self, text: &str) {
        println!("{}: {text}", self.name);
    }

    fn finding(&mut self, text: String) {
        self.say(&text);
        self.w.log(Event::Finding { text });
    }

    /// Writes every host's hosts file: the seed name resolves to the seeds
    /// (the first two hosts) as `how` says.
    fn write_seed_hosts(&self, how: SeedNames) -> Result<(), String> {
        let seeds: Vec<usize> = (0..self.s.hosts.min(2)).collect();
        for i in 0..self.s.hosts {
            let mut addrs: Vec<String> = Vec::new();
            if how == SeedNames::DeadFirst {
                addrs.push(dead_addr(&self.net.hosts[i].addr));
            }
            for j in &seeds {
                if *j != i || how == SeedNames::WithSelf {
                    addrs.push(self.net.hosts[*j].addr.clone());
                }
            }
            self.net.write_hosts(i, SEED_NAME, &addrs)?;
        }
        Ok(())
    }

    fn spawn_node(&mut self, i: usize) -> Result<(), String> {
        let h = &self.net.hosts[i];
        let name = node_name(i);
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{name}.log")))
            .map_err(|e| e.to_string())?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &h.ns])
            .arg(&self.exe)
            .args(["node", "--id", &name, "--bind", &format!("{}:{PORT}", h.addr)])
            .args(["--seed", &format!("{SEED_NAME}:{PORT}"), "--secret", SECRET])
            .arg("--history")
            .arg(self.dir.join(format!("{name}.jsonl")))
            .args(["--interval-ms", &self.s.interval_ms.to_string()])
            .args(["--timeout", &self.s.timeout.to_string(), "--latency", &self.s.latency.to_string()])
            .arg(if i == 0 { "--supervisor" } else { "--worker" })
            .env("RUST_LOG", std::env::var("AEMP_LAB_LOG").unwrap_or_else(|_| "aemp=info".into()))
            .stdin(Stdio::null())
            .stdout(logf.try_clone().map_err(|e| e.to_string())?)
            .stderr(logf);
        netns::child_hygiene(&mut cmd);
        let child = cmd.spawn().map_err(|e| format!("starting node {name}: {e}"))?;
        netns::track_pid(child.id());
        self.procs[i] = Some(child);
        Ok(())
    }

    fn signal(&self, i: usize, sig: i32) {
        if let Some(c) = &self.procs[i] {
            // SAFETY: kill(2) of our own child.
            unsafe { libc::kill(c.id() as i32, sig) };
        }
    }

    fn kill_node(&mut self, i: usize) {
        if let Some(mut c) = self.procs[i].take() {
            let pid = c.id();
            let _ = c.kill();
            let _ = c.wait();
            netns::untrack_pid(pid);
            self.paused[i] = false;
            self.w.log(Event::Killed { node: node_name(i), pid });
        }
    }

    fn apply_drops(&self) -> Result<(), String> {
        for j in 0..self.s.hosts {
            let mut src: Vec<String> =
                self.drops.iter().filter(|d| d.1 == j).map(|d| self.net.hosts[d.0].addr.clone()).collect();
            src.sort();
            src.dedup();
            self.net.set_blocked(j, &src)?;
        }
        Ok(())
    }

    /// Reads what the nodes wrote since the last call into the replay.
    fn follow(&mut self) {
        for r in self.tail.poll(&self.dir) {
            self.replay.apply(&r);
        }
    }

    /// Follows the history until `cond` holds or `limit` passes.
    fn wait_for(&mut self, limit: Duration, cond: impl Fn(&Replay) -> bool) -> bool {
        let end = Instant::now() + limit;
        loop {
            self.follow();
            if cond(&self.replay) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything is healed: waits for convergence (within the bound).
    fn quiet(&mut self) -> Result<Outcome, String> {
        self.w.log(Event::Quiet { bound_ms: self.s.bound_ms });
        let t0 = Instant::now();
        self.follow();
        self.replay.reset_flows(crate::history::now_ns());
        let nodes = self.nodes.clone();
        let ok = self.wait_for(Duration::from_millis(self.s.bound_ms), |r| r.unconverged(&nodes).is_empty());
        Ok(Outcome {
            converged: ok.then(|| t0.elapsed()),
            why: if ok { Vec::new() } else { self.replay.unconverged(&nodes) },
        })
    }

    /// Runs one schedule: its faults at their times, then the heal, then
    /// waits for convergence.
    ///
    /// # Errors
    /// When a fault cannot be applied (a command failed).
    pub fn run_schedule(&mut self, sch: &Schedule) -> Result<Outcome, String> {
        self.w.log(Event::Schedule { seed: sch.seed });
        let mut timeline: Vec<(u64, bool, usize)> = Vec::new();
        for (i, st) in sch.steps.iter().enumerate() {
            timeline.push((st.at_ms, true, i));
            timeline.push((st.at_ms + st.hold_ms, false, i));
        }
        timeline.sort();
        let t0 = Instant::now();
        let mut active: HashMap<usize, Active> = HashMap::new();
        for (at, start, i) in timeline {
            let due = t0 + Duration::from_millis(at);
            while Instant::now() < due {
                self.follow();
                std::thread::sleep((due - Instant::now()).min(Duration::from_millis(100)));
            }
            if start {
                let mut f = sch.steps[i].fault;
                if f == Fault::VanishChildHost {
                    self.follow();
                    let h = self.replay.child_host().and_then(|h| h.strip_prefix('h')?.parse::<usize>().ok());
                    f = Fault::Vanish(h.map_or(1, |h| h - 1));
                }
                self.next_fault += 1;
                let id = self.next_fault;
                let hosts: Vec<String> = f.hosts().into_iter().map(node_name).collect();
                let hosts = if f == Fault::SeedMoves { vec![node_name(0)] } else { hosts };
                self.w.log(Event::Fault { id, kind: f.kind().into(), hosts });
                let drops = self.start_fault(&f)?;
                active.insert(i, (id, f, drops));
            } else if let Some((id, f, drops)) = active.remove(&i) {
                self.end_fault(&f, &drops)?;
                self.w.log(Event::Heal { id });
            }
        }
        self.quiet()
    }

    fn start_fault(&mut self, f: &Fault) -> Result<Vec<(usize, usize)>, String> {
        let n = self.s.hosts;
        let drops: Vec<(usize, usize)> = match *f {
            Fault::Partition(a, b) | Fault::Blip(a, b) => vec![(a, b), (b, a)],
            Fault::OneWay(a, b) => vec![(a, b)],
            Fault::Vanish(a) => (0..n).filter(|x| *x != a).flat_map(|x| [(a, x), (x, a)]).collect(),
            _ => Vec::new(),
        };
        match *f {
            Fault::Kill(a) => self.kill_node(a),
            Fault::Pause(a) => {
                self.signal(a, libc::SIGSTOP);
                self.paused[a] = true;
            }
            Fault::SeedMoves => {
                self.kill_node(0);
                self.moves += 1;
                let addr = format!("{SUBNET}.{}", 200 + self.moves % 50);
                self.net.readdress(0, &addr)?;
            }
            Fault::Degrade(a, b, imp) => match &mut self.relay {
                Some(r) => r.degrade(&self.net, a, b, &imp)?,
                None => return Err("a degrade fault, but the lab runs without the relay".into()),
            },
            _ => {}
        }
        self.drops.extend(drops.iter().copied());
        self.apply_drops()?;
        Ok(drops)
    }

    fn end_fault(&mut self, f: &Fault, drops: &[(usize, usize)]) -> Result<(), String> {
        for d in drops {
            if let Some(p) = self.drops.iter().position(|x| x == d) {
                self.drops.remove(p);
            }
        }
        self.apply_drops()?;
        match *f {
            Fault::Kill(a) => self.spawn_node(a)?,
            Fault::Pause(a) => {
                self.signal(a, libc::SIGCONT);
                self.paused[a] = false;
            }
            Fault::SeedMoves => {
                self.write_seed_hosts(SeedNames::Others)?;
                self.spawn_node(0)?;
            }
            Fault::Degrade(a, b, _) => {
                if let Some(r) = &mut self.relay {
                    r.heal(&self.net, a, b)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Stops the nodes in order (they stop sending, let what is in flight
    /// arrive, and exit), removes the network, and returns the history.
    ///
    /// # Errors
    /// When the history cannot be read.
    pub fn finish(mut self) -> Result<Vec<Record>, String> {
        self.stop_nodes();
        self.relay.take();
        self.net.destroy();
        crate::history::read_dir(&self.dir).map_err(|e| e.to_string())
    }

    fn stop_nodes(&mut self) {
        for i in 0..self.s.hosts {
            self.signal(i, libc::SIGCONT);
            self.signal(i, libc::SIGTERM);
        }
        let limit = Instant::now() + Duration::from_secs_f64(self.s.timeout + 5.0);
        for c in self.procs.iter_mut() {
            let Some(mut child) = c.take() else { continue };
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if Instant::now() > limit {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            netns::untrack_pid(child.id());
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in self.procs.iter_mut() {
            if let Some(mut child) = c.take() {
                let _ = child.kill();
                let _ = child.wait();
                netns::untrack_pid(child.id());
            }
        }
        self.relay.take();
        self.net.destroy();
    }
}

fn secs(t0: Instant) -> f64 {
    t0.elapsed().as_secs_f64()
}
