//! The cost of derived messages against hand-written code, measured in the
//! same run: `cargo bench -p aemp --bench derive`.
//!
//! Encoding: `Message::to_msg` of a derived enum against the same message
//! built with `msg![...]`. Decoding: `Message::from_msg` against a `match`
//! on `Msg::tag` with the `Msg` accessors. Prints ns per message and the
//! ratio derived / hand-written (1.00 means no overhead).

use std::hint::black_box;
use std::time::Instant;

use aemp::{msg, AempMessage, Error, Message, Msg, PortId};

#[path = "support/mode.rs"]
mod mode;

fn messages() -> u32 {
    mode::count(1_000_000, 10_000)
}
const RUNS: usize = 5;

#[derive(AempMessage, Debug, Clone, PartialEq)]
enum Chat {
    Join { client: PortId, nick: String },
    Say { room: String, text: String, seq: u64 },
    Leave,
}

fn hand_encode(c: &Chat) -> Msg {
    match c {
        Chat::Join { client, nick } => msg!["join", client, nick],
        Chat::Say { room, text, seq } => msg!["say", room, text, *seq],
        Chat::Leave => msg!["leave"],
    }
}

fn hand_decode(m: &Msg) -> aemp::Result<Chat> {
    let want = |n: usize| if m.len() == n { Ok(()) } else { Err(Error::Value("wrong length".into())) };
    match m.tag() {
        Some("join") => {
            want(3)?;
            Ok(Chat::Join { client: m.port(1)?, nick: m.str(2)?.to_owned() })
        }
        Some("say") => {
            want(4)?;
            Ok(Chat::Say { room: m.str(1)?.to_owned(), text: m.str(2)?.to_owned(), seq: m.get(3)? })
        }
        Some("leave") => {
            want(1)?;
            Ok(Chat::Leave)
        }
        _ => Err(Error::Value("unknown tag".into())),
    }
}

/// ns per call of `derived` and of `hand`: the best of [`RUNS`] runs of
/// [`messages`] calls each, the two alternating so that drift (frequency,
/// cache) hits both alike.
fn compare(mut derived: impl FnMut(), mut hand: impl FnMut()) -> (f64, f64) {
    let time = |f: &mut dyn FnMut()| {
        let t0 = Instant::now();
        for _ in 0..messages() {
            f();
        }
        t0.elapsed().as_nanos() as f64 / f64::from(messages())
    };
    let (mut best_d, mut best_h) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..RUNS {
        best_d = best_d.min(time(&mut derived));
        best_h = best_h.min(time(&mut hand));
    }
    (best_d, best_h)
}

fn line(what: &str, derived: f64, hand: f64, hand_name: &str) {
    println!(
        "{what:<34} derived {derived:>7.1} ns   {hand_name} {hand:>7.1} ns   ratio {:>5.2}",
        derived / hand
    );
}

fn main() {
    mode::banner();
    let cases = [
        (
            "join (port ID + string)",
            Chat::Join { client: "bench-node#abc.17".parse().unwrap(), nick: "bob".into() },
        ),
        (
            "say (2 strings + integer)",
            Chat::Say { room: "lobby".into(), text: "hello, world".into(), seq: 123_456 },
        ),
        ("leave (tag only)", Chat::Leave),
    ];
    println!("derived messages vs hand-written, ns/message, best of {RUNS} x {}", messages());
    for (name, value) in &cases {
        assert_eq!(value.to_msg().unwrap(), hand_encode(value));
        let (derived, hand) = compare(
            || {
                black_box(black_box(value).to_msg().unwrap());
            },
            || {
                black_box(hand_encode(black_box(value)));
            },
        );
        line(&format!("encode {name}"), derived, hand, "msg![...]");

        let m = hand_encode(value);
        assert_eq!(&Chat::from_msg(&m).unwrap(), value);
        assert_eq!(&hand_decode(&m).unwrap(), value);
        let (derived, hand) = compare(
            || {
                black_box(Chat::from_msg(black_box(&m)).unwrap());
            },
            || {
                black_box(hand_decode(black_box(&m)).unwrap());
            },
        );
        line(&format!("decode {name}"), derived, hand, "accessors");
    }
}
