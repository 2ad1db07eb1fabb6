//! aemp beside the other Rust actor libraries: the same workloads on aemp,
//! plain tokio channels (current-thread and multi-thread runtimes), actix,
//! ractor and kameo, in one process run, printed as one table with each
//! figure's ratio to aemp's.
//!
//! ```sh
//! cargo run --release --manifest-path bench-peers/Cargo.toml
//! cargo run --release --manifest-path bench-peers/Cargo.toml -- --rounds 5
//! cargo run --release --manifest-path bench-peers/Cargo.toml -- --quick   # small counts, a check that it runs
//! cargo run --release --manifest-path bench-peers/Cargo.toml -- aemp tokio one-way   # some cells only
//! ```
//!
//! Every library runs each workload in every round, the libraries taking
//! turns, so that a slow spell of a shared machine hits all alike; the table
//! shows the best round of each.
//!
//! Each library is used the way its documentation shows: a typed message
//! struct for the peers (aemp's messages are its dynamic `Msg`), tokio's
//! multi-thread runtime with two workers for aemp, ractor and kameo (what
//! `#[tokio::main]` gives on two CPUs), actix's own `System` (one thread).
//! Mailboxes are unbounded where a library lets one choose (kameo), as
//! aemp's ports are.

mod alloc;
mod libs;

use std::time::Duration;

use alloc::{Made, Meter};

/// How much work each workload does.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// Messages of the one-way and fan-in workloads.
    pub messages: u64,
    /// Round trips of the ping-pong workload.
    pub round_trips: u64,
    /// Requests of the request/reply workload.
    pub calls: u64,
    /// Actors made by the creation and memory workloads.
    pub actors: u64,
}

/// How many threads send in the fan-in workload.
pub const FAN_IN_SENDERS: u64 = 4;

/// One library's implementation of the workloads. Each call builds what it
/// needs (runtime, actors), measures, and tears it down.
pub trait Library {
    /// The column heading.
    fn name(&self) -> &'static str;
    /// Messages per second from `senders` plain threads to one receiver,
    /// `n` messages in all.
    fn sends(&self, senders: u64, n: u64) -> f64;
    /// The mean round trip of a counter bounced `n` times between two actors.
    fn ping_pong(&self, n: u64) -> Duration;
    /// The mean time of `n` requests answered by an actor, one at a time.
    fn call(&self, n: u64) -> Duration;
    /// Makes `n` idle actors, keeping their handles, until every one has
    /// started, measured by `meter` (started after the handles' vector is
    /// allocated).
    fn create(&self, n: u64, meter: Meter) -> Made;
}

/// What a row measures, and how its figures print.
#[derive(Clone, Copy)]
enum Row {
    OneWay,
    FanIn,
    PingPong,
    Call,
    Create,
    Memory,
}

impl Row {
    const ALL: [Row; 6] = [Row::OneWay, Row::FanIn, Row::PingPong, Row::Call, Row::Create, Row::Memory];

    fn title(self) -> &'static str {
        match self {
            Row::OneWay => "one-way (M msg/s)",
            Row::FanIn => "fan-in, 4 senders (M msg/s)",
            Row::PingPong => "ping-pong round trip (ns)",
            Row::Call => "request/reply (ns)",
            Row::Create => "create actors (M/s)",
            Row::Memory => "memory per idle actor (B)",
        }
    }

    /// Whether a higher figure is better.
    fn higher_is_better(self) -> bool {
        matches!(self, Row::OneWay | Row::FanIn | Row::Create)
    }

    fn measure(self, lib: &dyn Library, s: Sizes) -> f64 {
        match self {
            Row::OneWay => lib.sends(1, s.messages) / 1e6,
            Row::FanIn => lib.sends(FAN_IN_SENDERS, s.messages) / 1e6,
            Row::PingPong => lib.ping_pong(s.round_trips).as_secs_f64() * 1e9,
            Row::Call => lib.call(s.calls).as_secs_f64() * 1e9,
            Row::Create => s.actors as f64 / lib.create(s.actors, Meter::time()).elapsed.as_secs_f64() / 1e6,
            Row::Memory => lib.create(s.actors, Meter::bytes()).bytes as f64 / s.actors as f64,
        }
    }

    fn format(self, v: f64) -> String {
        match self {
            Row::OneWay | Row::FanIn | Row::Create => format!("{v:.2}"),
            Row::PingPong | Row::Call | Row::Memory => format!("{v:.0}"),
        }
    }

    fn legend(self, s: Sizes) -> String {
        match self {
            Row::OneWay => format!(
                "one-way: one plain thread sends {} messages to one actor, which counts them; \
                 messages per second until the last is handled",
                s.messages
            ),
            Row::FanIn => format!(
                "fan-in: the same with {FAN_IN_SENDERS} sender threads sending {} each",
                s.messages / FAN_IN_SENDERS
            ),
            Row::PingPong => format!(
                "ping-pong: two actors that know each other bounce a counter {} times; \
                 mean round trip",
                s.round_trips
            ),
            Row::Call => format!(
                "request/reply: a task asks an actor {} times, one request at a time, \
                 with the library's request call (aemp `Node::call`, actix `send`, ractor \
                 `call`, kameo `ask`, tokio a oneshot channel in the message); mean time",
                s.calls
            ),
            Row::Create => format!(
                "create: {} idle actors made one after another, until every one has \
                 started (aemp: the dispatcher has made every port); actors per second",
                s.actors
            ),
            Row::Memory => format!(
                "memory: heap bytes allocated and still held per idle actor after {} \
                 were made and started, their handles kept (counted by the allocator)",
                s.actors
            ),
        }
    }
}

struct Options {
    rounds: usize,
    sizes: Sizes,
    quick: bool,
    /// Words that pick rows and libraries (all when empty).
    only: Vec<String>,
}

impl Options {
    /// Whether the cell of this row and library is to be measured: every
    /// word given names a library or a word of a row's title, and a row or
    /// library is kept when a word picks it or no word picks any of its kind.
    fn wanted(&self, row: Row, lib: &str) -> bool {
        let names: Vec<&'static str> = libs::all().iter().map(|l| l.name()).collect();
        let (lib_words, row_words): (Vec<&String>, Vec<&String>) =
            self.only.iter().partition(|w| names.iter().any(|n| n.starts_with(w.as_str())));
        (lib_words.is_empty() || lib_words.iter().any(|w| lib.starts_with(w.as_str())))
            && (row_words.is_empty() || row_words.iter().any(|w| row.title().contains(w.as_str())))
    }
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .and_then(|r| r.parse().ok())
        .unwrap_or(if quick { 1 } else { 3 });
    let sizes = if quick {
        Sizes { messages: 20_000, round_trips: 2_000, calls: 2_000, actors: 2_000 }
    } else {
        Sizes { messages: 2_000_000, round_trips: 200_000, calls: 100_000, actors: 100_000 }
    };
    let mut only = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--rounds" {
            it.next();
        } else if !a.starts_with("--") {
            only.push(a.clone());
        }
    }
    Options { rounds, sizes, quick, only }
}

fn main() {
    let opts = options();
    let libs = libs::all();
    if opts.quick {
        println!("quick run (small counts): the figures mean little");
    }
    println!(
        "{} CPUs; best of {} round(s); ratio = figure / aemp's figure (rates: above 1 is faster \
         than aemp; times and bytes: above 1 is slower or bigger)\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        opts.rounds
    );
    let mut best = vec![vec![None::<f64>; libs.len()]; Row::ALL.len()];
    for round in 0..opts.rounds {
        for (r, row) in Row::ALL.iter().enumerate() {
            // Start each round with a different library, so that none is
            // always the one that runs right after a given other.
            for k in 0..libs.len() {
                let l = (k + round) % libs.len();
                if !opts.wanted(*row, libs[l].name()) {
                    continue;
                }
                let v = row.measure(&*libs[l], opts.sizes);
                let cell = &mut best[r][l];
                *cell = Some(match *cell {
                    None => v,
                    Some(b) if row.higher_is_better() => b.max(v),
                    Some(b) => b.min(v),
                });
            }
        }
        eprintln!("round {} of {} done", round + 1, opts.rounds);
    }
    let name_w = Row::ALL.iter().map(|r| r.title().len()).max().unwrap_or(0);
    let col_w = 17;
    print!("{:<name_w$}", "");
    for lib in &libs {
        print!("  {:>col_w$}", lib.name());
    }
    println!();
    for (r, row) in Row::ALL.iter().enumerate() {
        if best[r].iter().all(Option::is_none) {
            continue;
        }
        print!("{:<name_w$}", row.title());
        for (l, v) in best[r].iter().enumerate() {
            let cell = match (v, best[r][0]) {
                (None, _) => "-".to_owned(),
                (Some(v), Some(ours)) if l > 0 => format!("{} ({:.2}x)", row.format(*v), v / ours),
                (Some(v), _) => row.format(*v),
            };
            print!("  {cell:>col_w$}");
        }
        println!();
    }
    println!();
    for row in Row::ALL {
        println!("- {}", row.legend(opts.sizes));
    }
    println!(
        "- runtimes: aemp, tokio 2-thread, ractor and kameo on tokio's multi-thread runtime with \
         two workers; tokio 1-thread on the current-thread runtime (the receiving task on the \
         thread that runs the runtime); actix in its own System (one thread). Senders in the \
         one-way and fan-in rows are plain threads outside the runtime."
    );
    println!(
        "- messages: the peers send a typed struct holding a u64; aemp sends a Msg holding one \
         integer (`msg![i]`), its dynamic message type. kameo's mailboxes are unbounded, as \
         aemp's ports are (its default is a bounded mailbox of 64)."
    );
}
