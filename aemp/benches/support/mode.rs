//! Full runs and smoke runs of a benchmark.
//!
//! `cargo bench` passes `--bench` to each benchmark, which then runs in
//! full. `cargo test` runs the benchmarks too (they are declared with
//! `test = true`), without that flag: they then run with small counts, so
//! the test suite checks that every benchmark command works and prints its
//! figures, in seconds. A benchmark that starts a helper process passes the
//! mode on in `AEMP_BENCH_FULL`.

use std::sync::LazyLock;

static FULL: LazyLock<bool> = LazyLock::new(|| {
    std::env::args().any(|a| a == "--bench") || std::env::var("AEMP_BENCH_FULL").as_deref() == Ok("1")
});

/// Whether this is a full run (`cargo bench`).
pub fn full() -> bool {
    *FULL
}

/// `n` in a full run, `smoke` in a smoke run.
pub fn count<T>(n: T, smoke: T) -> T {
    if full() {
        n
    } else {
        smoke
    }
}

/// Says so when this is a smoke run, whose figures mean nothing.
pub fn banner() {
    if !full() {
        println!("smoke run (small counts, test build): `cargo bench` gives the real figures");
    }
}

/// The value of `AEMP_BENCH_FULL` for a helper process.
#[allow(dead_code)]
pub fn env_value() -> &'static str {
    if full() {
        "1"
    } else {
        "0"
    }
}
