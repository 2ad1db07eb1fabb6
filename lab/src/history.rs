//! The lab's history: the events that node processes and the lab itself
//! append, one JSON line each, with a CLOCK_MONOTONIC timestamp that is
//! comparable across network namespaces (they share the kernel's clock).

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Nanoseconds of CLOCK_MONOTONIC.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// One line of history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// CLOCK_MONOTONIC, nanoseconds.
    pub t: u64,
    /// Who wrote it: a node ID, or `lab` for the lab itself.
    pub by: String,
    /// What happened.
    #[serde(flatten)]
    pub ev: Event,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum Event {
    /// A node process started (a new incarnation of `by`).
    Start {
        /// Its process ID.
        pid: u32,
    },
    /// A node registered its receiver port in the lab's group.
    Registered {
        /// The receiver port.
        port: String,
    },
    /// The node saw a link come up (`Node::mon_nodes`).
    LinkUp {
        /// The other node.
        peer: String,
    },
    /// The node saw a link go down.
    LinkDown {
        /// The other node.
        peer: String,
        /// The reason its monitors got.
        reason: String,
    },
    /// The node's view of the group gained a member.
    GroupJoin {
        /// The member.
        port: String,
    },
    /// The node's view of the group lost a member.
    GroupLeave {
        /// The member.
        port: String,
    },
    /// A sender started a stream: it monitors `receiver`, then sends 1, 2, ...
    StreamStart {
        /// The stream's ID, unique in the run.
        stream: String,
        /// The sender's port.
        sender: String,
        /// The receiver's port.
        receiver: String,
    },
    /// A message of a stream was sent.
    Sent {
        /// The stream.
        stream: String,
        /// Its sequence number.
        seq: u64,
    },
    /// A message of a stream arrived at its receiver.
    Recv {
        /// The stream.
        stream: String,
        /// Its sequence number.
        seq: u64,
    },
    /// The sender's monitor on the receiver fired; the stream ends.
    MonFired {
        /// The stream.
        stream: String,
        /// The reason given.
        reason: String,
    },
    /// The node stopped sending (the run is ending); what was sent before
    /// must arrive or be reported by a monitor.
    StopSending,
    /// The node process ends normally.
    Exit,
    /// A supervised child started on this node.
    ChildStart {
        /// The child's port.
        port: String,
    },
    /// A supervised child on this node died.
    ChildStop {
        /// The child's port.
        port: String,
        /// Why.
        reason: String,
    },
    /// The lab started a fault.
    Fault {
        /// Its number in the run.
        id: u32,
        /// Its kind (`partition`, `oneway`, `vanish`, `kill`, `pause`, `blip`, `seedmove`, ...).
        kind: String,
        /// The hosts it touches, in order (for `oneway`: from, to).
        hosts: Vec<String>,
    },
    /// The lab ended a fault.
    Heal {
        /// The fault's number.
        id: u32,
    },
    /// The lab killed a node process (SIGKILL); its children and links are gone.
    Killed {
        /// The node.
        node: String,
        /// The process.
        pid: u32,
    },
    /// Everything is healed: from here, the network must converge within the bound.
    Quiet {
        /// The bound, in milliseconds.
        bound_ms: u64,
    },
    /// The lab starts a schedule.
    Schedule {
        /// Its seed.
        seed: u64,
    },
    /// A known issue the lab met (e.g. a seed unreachable by its name).
    Finding {
        /// What.
        text: String,
    },
    /// What a relay did to one direction of a degraded link, written when
    /// the link healed.
    Relayed {
        /// The host the packets left.
        from: String,
        /// The host they went to.
        to: String,
        /// Packets that went through the relay.
        packets: u64,
        /// Packets it dropped.
        dropped: u64,
        /// Packets it held back for later ones to overtake.
        reordered: u64,
        /// The most packets it held at once.
        max_held: u64,
    },
}

impl Record {
    /// A record made now.
    pub fn now(by: &str, ev: Event) -> Record {
        Record { t: now_ns(), by: by.to_owned(), ev }
    }
}

/// Appends records to a file, one write per line, so that a killed
/// process leaves whole lines behind.
#[derive(Debug)]
pub struct Writer {
    file: std::fs::File,
    by: String,
}

impl Writer {
    /// Opens (creates, appends to) a history file for writer `by`.
    ///
    /// # Errors
    /// When the file cannot be opened.
    pub fn open(path: &Path, by: &str) -> std::io::Result<Writer> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Writer { file, by: by.to_owned() })
    }

    /// Appends an event stamped now.
    pub fn log(&mut self, ev: Event) {
        let rec = Record::now(&self.by, ev);
        let mut line = serde_json::to_vec(&rec).expect("a record serialises");
        line.push(b'\n');
        let _ = self.file.write_all(&line);
    }
}

/// Parses history lines; a torn last line (a process killed mid-write) is skipped.
pub fn parse_lines(text: &str) -> Vec<Record> {
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

/// Reads and merges every `*.jsonl` file of a directory, ordered by time
/// (ties keep each file's order).
///
/// # Errors
/// When the directory or a file cannot be read.
pub fn read_dir(dir: &Path) -> std::io::Result<Vec<Record>> {
    let mut all = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    names.sort();
    for p in names {
        all.extend(parse_lines(&std::fs::read_to_string(&p)?));
    }
    all.sort_by_key(|r| r.t);
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_a_torn_line_is_skipped() {
        let r = Record { t: 5, by: "h1".into(), ev: Event::Sent { stream: "s".into(), seq: 3 } };
        let line = serde_json::to_string(&r).unwrap();
        assert!(line.contains("\"ev\":\"sent\""), "{line}");
        let text = format!("{line}\n{}", &line[..line.len() / 2]);
        assert_eq!(parse_lines(&text), vec![r]);
    }
}
