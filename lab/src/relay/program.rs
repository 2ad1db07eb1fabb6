//! The relay program (`aemp-lab relay`), run inside one host namespace for
//! one direction of a degraded link: it binds the NFQUEUE the lab's
//! iptables rule feeds, decides each packet's fate by the policy, holds the
//! kept ones until they are due, and says "ready" on stdout once bound.
//! When its stdin closes (the lab healed the link, or died) it releases
//! what it holds, passes what still comes for a moment, writes what it did
//! to the history and exits.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use super::nfqueue::NfQueue;
use super::policy::{Decision, Held, Impairment, Policy};
use crate::history::{now_ns, Event, Writer};

/// The relay program's settings.
#[derive(Debug, Clone, clap::Args)]
pub struct RelayArgs {
    /// The NFQUEUE number to bind.
    #[arg(long)]
    pub queue: u16,
    /// Base delay, ms.
    #[arg(long)]
    pub delay_ms: u32,
    /// Extra random delay, up to this, ms.
    #[arg(long, default_value_t = 0)]
    pub jitter_ms: u32,
    /// Packets lost, per thousand.
    #[arg(long, default_value_t = 0)]
    pub loss_permille: u32,
    /// Packets held back to be overtaken, per thousand.
    #[arg(long, default_value_t = 0)]
    pub reorder_permille: u32,
    /// The seed of the per-packet choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The history file to write the relay's counts to.
    #[arg(long)]
    pub history: PathBuf,
    /// The host it runs on (for the history).
    #[arg(long)]
    pub from: String,
    /// The host the packets go to (for the history).
    #[arg(long)]
    pub to: String,
}

/// How long after its stdin closed the relay still passes packets (those
/// the kernel queued just before the lab removed the rule).
const LINGER: Duration = Duration::from_millis(100);

/// The most packets waiting in the kernel's queue.
const MAX_QUEUED: u32 = 65_536;

/// Runs the relay until its stdin closes.
///
/// # Errors
/// When the queue cannot be bound or the socket fails.
pub fn run(a: RelayArgs) -> Result<(), String> {
    let mut q = NfQueue::bind(a.queue, MAX_QUEUED).map_err(|e| e.to_string())?;
    let imp = Impairment {
        delay_ms: a.delay_ms,
        jitter_ms: a.jitter_ms,
        loss_permille: a.loss_permille,
        reorder_permille: a.reorder_permille,
        seed: a.seed,
    };
    let mut policy = Policy::new(imp);
    let mut held = Held::default();
    let mut counts = Counts::default();
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready").and_then(|()| out.flush()).map_err(|e| e.to_string())?;
    }
    let mut linger_until: Option<u64> = None;
    let mut ids = Vec::new();
    loop {
        let now = now_ns();
        for id in held.take_due(now) {
            q.verdict(id, true).map_err(|e| e.to_string())?;
        }
        if linger_until.is_some_and(|t| now >= t) {
            break;
        }
        let wake = [held.next_due(), linger_until].into_iter().flatten().min();
        let timeout_ms = wake.map_or(1000, |t| t.saturating_sub(now).div_ceil(1_000_000).min(1000)) as i32;
        let mut fds = [
            libc::pollfd { fd: q.fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd {
                fd: if linger_until.is_none() { 0 } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: fds is an array we own, its length is given.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout_ms) };
        if r < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("poll: {}", std::io::Error::last_os_error()));
        }
        if fds[1].revents != 0 && stdin_closed() {
            // Healed: what is held goes now, what comes passes.
            for id in held.take_all() {
                q.verdict(id, true).map_err(|e| e.to_string())?;
            }
            linger_until = Some(now_ns() + LINGER.as_nanos() as u64);
        }
        if fds[0].revents != 0 {
            q.read_ready(&mut ids).map_err(|e| e.to_string())?;
            let now = now_ns();
            for id in ids.drain(..) {
                counts.packets += 1;
                if linger_until.is_some() {
                    q.verdict(id, true).map_err(|e| e.to_string())?;
                    continue;
                }
                match policy.decide(now) {
                    Decision::Drop => {
                        counts.dropped += 1;
                        q.verdict(id, false).map_err(|e| e.to_string())?;
                    }
                    Decision::Release { at_ns, reordered } => {
                        counts.reordered += u64::from(reordered);
                        held.push(at_ns, id);
                        counts.max_held = counts.max_held.max(held.len() as u64);
                    }
                }
            }
        }
    }
    let mut w = Writer::open(&a.history, "relay").map_err(|e| e.to_string())?;
    w.log(Event::Relayed {
        from: a.from,
        to: a.to,
        packets: counts.packets,
        dropped: counts.dropped,
        reordered: counts.reordered,
        max_held: counts.max_held,
    });
    Ok(())
}

#[derive(Default)]
struct Counts {
    packets: u64,
    dropped: u64,
    reordered: u64,
    max_held: u64,
}

/// Reads what stdin has; true when it is closed (or failed).
fn stdin_closed() -> bool {
    let mut buf = [0u8; 256];
    !matches!(std::io::stdin().read(&mut buf), Ok(n) if n > 0)
}
