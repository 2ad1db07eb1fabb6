//! Hosts made of Linux network namespaces: a bridge namespace holding a
//! bridge, N host namespaces joined to it by veth pairs, nftables drop sets
//! in each host, per-namespace hosts files; and the removal of all of it
//! (also of stale leftovers of earlier runs, and on signals).
//!
//! Nothing is added to the root namespace: the veth pairs are made inside
//! the bridge namespace with their host ends moved straight into the hosts.

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// Every name the lab makes starts with this, then the owning process ID.
pub const PREFIX: &str = "aemplab-";

/// The lab's private network: host `i` (from 0) has `10.213.0.{16 * (i + 1)}`
/// (see [`host_addr`]).
pub const SUBNET: &str = "10.213.0";

/// Host `i`'s first address. Hosts are 16 apart so that an address next to
/// a host's own shares more leading bits with it than any other host's
/// (glibc sorts the addresses of a name by that, RFC 6724 rule 9).
pub fn host_addr(i: usize) -> String {
    format!("{SUBNET}.{}", 16 * (i + 1))
}

/// Where `ip netns exec` finds per-namespace files (bind-mounted over `/etc`).
const NETNS_ETC: &str = "/etc/netns";

/// What the process made and must remove: namespaces, processes, folders.
#[derive(Default)]
struct Registry {
    namespaces: BTreeSet<String>,
    pids: BTreeSet<u32>,
    dirs: BTreeSet<PathBuf>,
}

static REGISTRY: Mutex<Registry> =
    Mutex::new(Registry { namespaces: BTreeSet::new(), pids: BTreeSet::new(), dirs: BTreeSet::new() });

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records a process to kill at cleanup.
pub fn track_pid(pid: u32) {
    registry().pids.insert(pid);
}

/// Forgets a process that was reaped.
pub fn untrack_pid(pid: u32) {
    registry().pids.remove(&pid);
}

/// Records a folder to remove at cleanup (a temp dir).
pub fn track_dir(dir: &Path) {
    registry().dirs.insert(dir.to_owned());
}

/// Stops removing a folder at cleanup (a failed run's history is kept).
pub fn untrack_dir(dir: &Path) {
    registry().dirs.remove(dir);
}

/// Removes everything recorded: kills the processes, deletes the
/// namespaces (after killing what still runs in them) and their
/// `/etc/netns` folders, and the temp folders.
pub fn cleanup_all() {
    let (pids, nss, dirs) = {
        let mut r = registry();
        (std::mem::take(&mut r.pids), std::mem::take(&mut r.namespaces), std::mem::take(&mut r.dirs))
    };
    for pid in pids {
        // SAFETY: kill(2) on a process we started; SIGCONT first so a
        // stopped one can die at once.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
            libc::kill(pid as i32, libc::SIGCONT);
        }
    }
    for ns in nss {
        remove_namespace(&ns);
    }
    for d in dirs {
        let _ = std::fs::remove_dir_all(d);
    }
}

fn remove_namespace(ns: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).stderr(Stdio::null()).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if let Ok(p) = pid.parse::<i32>() {
                // SAFETY: kill(2) of a process inside a namespace the lab made.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
        }
    }
    let _ = Command::new("ip").args(["netns", "del", ns]).stderr(Stdio::null()).status();
    let _ = std::fs::remove_dir_all(Path::new(NETNS_ETC).join(ns));
}

/// Blocks SIGINT and SIGTERM in this thread (and the threads it starts
/// afterwards) and starts a thread that waits for them, cleans up, and
/// exits with 130. Call first thing in `main`.
pub fn install_signal_cleanup() {
    // SAFETY: plain signal-mask calls on a sigset we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        std::thread::spawn(move || {
            let mut sig = 0;
            libc::sigwait(&set, &mut sig);
            eprintln!("aemp-lab: signal {sig}: removing the lab's namespaces and processes");
            cleanup_all();
            libc::_exit(130);
        });
    }
}

/// Makes a command safe to leave running: its process gets SIGKILL when
/// the thread that started it ends, and the lab's blocked signals are
/// unblocked for it.
pub fn child_hygiene(cmd: &mut Command) -> &mut Command {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            Ok(())
        })
    }
}

/// Why the lab cannot run here, if it cannot.
pub fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("the lab must run as root (it makes network namespaces)".into());
    }
    missing_tool("ip", "-V", "iproute2").or_else(|| missing_tool("nft", "--version", "nftables"))
}

/// Why `tool` cannot be used (it does not answer `version_arg`), naming
/// the Debian package `pkg` that has it; `None` when it can.
pub fn missing_tool(tool: &str, version_arg: &str, pkg: &str) -> Option<String> {
    let ok = Command::new(tool)
        .arg(version_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    (!ok).then(|| format!("`{tool}` is missing (Debian: apt-get install -y {pkg})"))
}

/// Runs a command, failing with its stderr.
pub fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ip(args: &[&str]) -> Result<String, String> {
    run(Command::new("ip").args(args))
}

/// Runs a program inside a namespace with `input` on its stdin.
pub fn ns_exec_input(ns: &str, prog: &[&str], input: &str) -> Result<(), String> {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(prog)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("ip netns exec {ns} {prog:?}: {e}"))?;
    child.stdin.take().expect("piped").write_all(input.as_bytes()).map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "ip netns exec {ns} {prog:?}: {}\n{input}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// Removes leftovers of earlier runs whose process is dead: namespaces
/// named `aemplab-<pid>-...`, what runs in them, their `/etc/netns` folders.
pub fn clean_stale() -> usize {
    let mut names: BTreeSet<String> = BTreeSet::new();
    if let Ok(list) = ip(&["netns", "list"]) {
        for l in list.lines() {
            if let Some(name) = l.split_whitespace().next() {
                names.insert(name.to_owned());
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir(NETNS_ETC) {
        for e in rd.flatten() {
            names.insert(e.file_name().to_string_lossy().into_owned());
        }
    }
    let mut n = 0;
    for name in names {
        let Some(rest) = name.strip_prefix(PREFIX) else { continue };
        let pid: Option<u32> = rest.split('-').next().and_then(|p| p.parse().ok());
        let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            remove_namespace(&name);
            n += 1;
        }
    }
    n
}

/// One host: a namespace with an address on the lab's bridge.
#[derive(Debug, Clone)]
pub struct Host {
    /// The namespace's name.
    pub ns: String,
    /// Its current address.
    pub addr: String,
}

/// A lab network: the bridge namespace and the hosts.
#[derive(Debug)]
pub struct Network {
    /// The bridge namespace.
    pub bridge: String,
    /// The hosts, in order.
    pub hosts: Vec<Host>,
}

const NFT_TABLE: &str = "table inet aemplab {
  set blocked { type ipv4_addr; }
  chain input { type filter hook input priority 0; policy accept; ip saddr @blocked drop; }
}
";

impl Network {
    /// Makes the bridge namespace and `n` hosts, all named `prefix...`.
    ///
    /// # Errors
    /// The failing command and its message; what was made is removed by
    /// [`cleanup_all`] (it is registered as it is made).
    pub fn create(prefix: &str, n: usize) -> Result<Network, String> {
        let bridge = format!("{prefix}br");
        let add_ns = |ns: &str| -> Result<(), String> {
            ip(&["netns", "add", ns])?;
            registry().namespaces.insert(ns.to_owned());
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            Ok(())
        };
        add_ns(&bridge)?;
        ip(&["-n", &bridge, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &bridge, "link", "set", "br0", "up"])?;
        // Addresses given to the bridge's own namespace answer ARP but drop
        // every TCP packet: a silent address, as a gone pod behind a router.
        ns_exec_input(
            &bridge,
            &["nft", "-f", "-"],
            "table inet aemplab { chain input { type filter hook input priority 0; policy accept; meta l4proto tcp drop; }; }\n",
        )?;
        let mut hosts = Vec::new();
        for i in 0..n {
            let ns = format!("{prefix}h{}", i + 1);
            add_ns(&ns)?;
            let port = format!("p{}", i + 1);
            ip(&["-n", &bridge, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns])?;
            ip(&["-n", &bridge, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &bridge, "link", "set", &port, "up"])?;
            let addr = host_addr(i);
            ip(&["-n", &ns, "addr", "add", &format!("{addr}/24"), "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ns_exec_input(&ns, &["nft", "-f", "-"], NFT_TABLE)?;
            std::fs::create_dir_all(Path::new(NETNS_ETC).join(&ns)).map_err(|e| e.to_string())?;
            hosts.push(Host { ns, addr });
        }
        Ok(Network { bridge, hosts })
    }

    /// Sets the sources host `i` drops (silently, on input).
    ///
    /// # Errors
    /// When nft fails.
    pub fn set_blocked(&self, i: usize, sources: &[String]) -> Result<(), String> {
        let mut script = String::from("flush set inet aemplab blocked\n");
        if !sources.is_empty() {
            script.push_str(&format!("add element inet aemplab blocked {{ {} }}\n", sources.join(", ")));
        }
        ns_exec_input(&self.hosts[i].ns, &["nft", "-f", "-"], &script)
    }

    /// Makes `addr` a silent address: it answers ARP, drops TCP.
    ///
    /// # Errors
    /// When ip fails.
    pub fn add_blackhole(&self, addr: &str) -> Result<(), String> {
        ip(&["-n", &self.bridge, "addr", "add", &format!("{addr}/24"), "dev", "br0"]).map(|_| ())
    }

    /// Moves host `i` to a new address (the old one is removed).
    ///
    /// # Errors
    /// When ip fails.
    pub fn readdress(&mut self, i: usize, addr: &str) -> Result<(), String> {
        let h = &self.hosts[i];
        ip(&["-n", &h.ns, "addr", "del", &format!("{}/24", h.addr), "dev", "eth0"])?;
        ip(&["-n", &h.ns, "addr", "add", &format!("{addr}/24"), "dev", "eth0"])?;
        self.hosts[i].addr = addr.to_owned();
        Ok(())
    }

    /// Writes host `i`'s hosts file (seen as `/etc/hosts` by what runs
    /// there through `ip netns exec`): `name` resolves to `addrs`, in order.
    /// Written in place: a running process's bind mount keeps the inode.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn write_hosts(&self, i: usize, name: &str, addrs: &[String]) -> Result<(), String> {
        let mut text = String::from("127.0.0.1 localhost\n");
        for a in addrs {
            text.push_str(&format!("{a} {name}\n"));
        }
        for (j, h) in self.hosts.iter().enumerate() {
            text.push_str(&format!("{} h{}.lab\n", h.addr, j + 1));
        }
        let path = Path::new(NETNS_ETC).join(&self.hosts[i].ns).join("hosts");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        f.write_all(text.as_bytes()).map_err(|e| e.to_string())
    }

    /// Removes the namespaces (and what runs in them) and their folders.
    pub fn destroy(&self) {
        let mut r = registry();
        for ns in self.hosts.iter().map(|h| &h.ns).chain([&self.bridge]) {
            r.namespaces.remove(ns);
        }
        drop(r);
        for h in &self.hosts {
            remove_namespace(&h.ns);
        }
        remove_namespace(&self.bridge);
    }
}
