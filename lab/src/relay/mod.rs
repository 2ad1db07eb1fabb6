//! The delay/loss/reorder relay (the kernel has no netem, and nft no
//! `queue`): the lab's side. Degrading the link between hosts A and B
//! starts a relay program in each of the two host namespaces and adds an
//! `iptables-legacy` rule there that sends the host's TCP packets for the
//! other host to the relay's NFQUEUE (with `--queue-bypass`: no relay, no
//! queueing). Healing removes the rules, then closes the relays' stdin:
//! they release what they hold and exit. Everything lives in the two host
//! namespaces, so removing them (netns.rs) removes any leftover too.

mod nfqueue;
pub mod policy;
mod program;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

pub use program::{run, RelayArgs};

use crate::netns::{self, Network};
use policy::Impairment;

/// The iptables that can send packets to a queue here (nft has no `queue`).
const IPTABLES: &str = "iptables-legacy";

/// Why the relay cannot be used here, if it cannot.
pub fn unavailable() -> Option<String> {
    netns::missing_tool(IPTABLES, "--version", "iptables").or_else(|| {
        let queue = Path::new("/proc/net/netfilter/nfnetlink_queue").exists();
        (!queue).then(|| "the kernel has no NFQUEUE (nfnetlink_queue)".to_owned())
    })
}

/// One direction of a degraded link: the relay in host `host` for packets
/// to `peer`.
#[derive(Debug)]
struct Side {
    host: usize,
    rule: Vec<String>,
    /// Whether the rule was added (and so must be removed).
    ruled: bool,
    child: Child,
    stdin: Option<ChildStdin>,
    log: PathBuf,
}

/// The relays of a lab: the degraded links and their relay processes.
#[derive(Debug)]
pub struct Relays {
    exe: PathBuf,
    dir: PathBuf,
    links: Vec<((usize, usize), Vec<Side>)>,
}

fn iptables(ns: &str, op: &str, rule: &[String]) -> Result<(), String> {
    netns::run(Command::new("ip").args(["netns", "exec", ns, IPTABLES, "-w", "10", op]).args(rule))
        .map(|_| ())
}

/// The rule that sends host traffic for `dest` to queue `queue`.
fn queue_rule(dest: &str, queue: u16) -> Vec<String> {
    let q = queue.to_string();
    ["OUTPUT", "-p", "tcp", "-d", dest, "-j", "NFQUEUE", "--queue-num", &q, "--queue-bypass"]
        .map(str::to_owned)
        .to_vec()
}

fn host_name(i: usize) -> String {
    format!("h{}", i + 1)
}

impl Relays {
    /// Checks that the host namespaces of `net` take an NFQUEUE rule
    /// (adds one and removes it); `exe` is the lab's program, `dir` the
    /// folder for the relays' logs and history.
    ///
    /// # Errors
    /// When the rule is refused.
    pub fn start(net: &Network, exe: &Path, dir: &Path) -> Result<Relays, String> {
        let ns = &net.hosts[0].ns;
        let rule = queue_rule("127.0.0.2", u16::MAX);
        iptables(ns, "-A", &rule).map_err(|e| format!("the relay's NFQUEUE rule is refused: {e}"))?;
        iptables(ns, "-D", &rule)?;
        Ok(Relays { exe: exe.to_owned(), dir: dir.to_owned(), links: Vec::new() })
    }

    /// Degrades the link between hosts `a` and `b` (both directions) as
    /// `imp` says, until [`Relays::heal`].
    ///
    /// # Errors
    /// When a relay does not start or a rule is refused (what was started
    /// is stopped by `heal` or when the relays are dropped).
    pub fn degrade(&mut self, net: &Network, a: usize, b: usize, imp: &Impairment) -> Result<(), String> {
        if self.links.iter().any(|(l, _)| *l == (a, b) || *l == (b, a)) {
            return Err(format!("{}<->{} is already degraded", host_name(a), host_name(b)));
        }
        self.links.push(((a, b), Vec::new()));
        for (k, (host, peer)) in [(a, b), (b, a)].into_iter().enumerate() {
            let mut side = self.spawn(net, host, peer, imp, imp.seed.wrapping_add(k as u64))?;
            let added = iptables(&net.hosts[host].ns, "-A", &side.rule);
            side.ruled = added.is_ok();
            self.links.last_mut().expect("pushed").1.push(side);
            added?;
        }
        Ok(())
    }

    fn spawn(
        &self,
        net: &Network,
        host: usize,
        peer: usize,
        imp: &Impairment,
        seed: u64,
    ) -> Result<Side, String> {
        let (from, to) = (host_name(host), host_name(peer));
        let log = self.dir.join(format!("relay-{from}-{to}.log"));
        let logf =
            std::fs::OpenOptions::new().create(true).append(true).open(&log).map_err(|e| e.to_string())?;
        let queue = peer as u16;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &net.hosts[host].ns])
            .arg(&self.exe)
            .args(["relay", "--queue", &queue.to_string(), "--delay-ms", &imp.delay_ms.to_string()])
            .args([
                "--jitter-ms",
                &imp.jitter_ms.to_string(),
                "--loss-permille",
                &imp.loss_permille.to_string(),
            ])
            .args(["--reorder-permille", &imp.reorder_permille.to_string(), "--seed", &seed.to_string()])
            .arg("--history")
            .arg(self.dir.join(format!("relay-{from}-{to}.jsonl")))
            .args(["--from", &from, "--to", &to])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(logf);
        netns::child_hygiene(&mut cmd);
        let mut child = cmd.spawn().map_err(|e| format!("starting the relay {from}->{to}: {e}"))?;
        netns::track_pid(child.id());
        let stdin = child.stdin.take();
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped");
        let _ = BufReader::new(stdout).read_line(&mut line);
        let side =
            Side { host, rule: queue_rule(&net.hosts[peer].addr, queue), ruled: false, child, stdin, log };
        if line.trim() != "ready" {
            let why = side.stop();
            return Err(format!("the relay {from}->{to} did not start: {}", why.err().unwrap_or_default()));
        }
        Ok(side)
    }

    /// Ends the degradation of the link between `a` and `b`: removes the
    /// rules, lets the relays release what they hold, and waits for them.
    ///
    /// # Errors
    /// When a rule cannot be removed or a relay failed.
    pub fn heal(&mut self, net: &Network, a: usize, b: usize) -> Result<(), String> {
        let Some(i) = self.links.iter().position(|(l, _)| *l == (a, b) || *l == (b, a)) else {
            return Ok(());
        };
        let (_, sides) = self.links.remove(i);
        let mut errors = Vec::new();
        for s in sides.iter().filter(|s| s.ruled) {
            if let Err(e) = iptables(&net.hosts[s.host].ns, "-D", &s.rule) {
                errors.push(e);
            }
        }
        for s in sides {
            if let Err(e) = s.stop() {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

impl Side {
    /// Closes the relay's stdin and waits for it to exit (a few seconds at
    /// most, then it is killed).
    fn stop(mut self) -> Result<(), String> {
        drop(self.stdin.take());
        let limit = Instant::now() + Duration::from_secs(3);
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(st)) => break Some(st),
                Ok(None) if Instant::now() < limit => std::thread::sleep(Duration::from_millis(10)),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
            }
        };
        netns::untrack_pid(self.child.id());
        match status {
            Some(st) if st.success() => Ok(()),
            _ => {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(3).collect();
                Err(format!("a relay failed ({status:?}): {}", tail.join(" / ")))
            }
        }
    }
}

impl Drop for Relays {
    fn drop(&mut self) {
        for (_, sides) in self.links.drain(..) {
            for mut s in sides {
                let _ = s.child.kill();
                let _ = s.child.wait();
                netns::untrack_pid(s.child.id());
            }
        }
    }
}
