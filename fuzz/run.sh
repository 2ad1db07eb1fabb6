#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (libFuzzer via cargo-fuzz).
#
#   fuzz/run.sh [SECONDS_PER_TARGET]        (default 60)
#   TARGETS="json_stream greeting" fuzz/run.sh 300
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# New inputs go to work/<target>/ in this directory (not checked in); corpus/<target>/
# is the seed corpus, read only. A crash is saved under fuzz/artifacts/<target>/
# and the script stops: minimise it (`cargo +nightly fuzz tmin <target> <file>`),
# copy it to fuzz/regressions/<target>/, fix the bug, and add a test named
# after it. Every file in corpus/ and regressions/ also runs on stable in the
# normal test suite: `cargo test -p aemp-tests --test fuzz_corpus`.
#
# node_port makes a node act on what it is sent, including dialling the
# addresses Global's `connect_nodes` names: run it without network access.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
targets="${TARGETS:-greeting auth_line json_stream msgpack_frames node_port}"

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "cargo fuzz with a nightly toolchain is needed (rustup toolchain install nightly; cargo install cargo-fuzz)." >&2
  echo "The corpus still runs on stable: cargo test -p aemp-tests --test fuzz_corpus" >&2
  exit 2
fi

cargo +nightly fuzz build -O
for t in $targets; do
  mkdir -p "work/$t" "regressions/$t"
  echo "== $t: ${secs}s"
  cargo +nightly fuzz run -O "$t" "work/$t" "corpus/$t" "regressions/$t" -- \
    -max_total_time="$secs" -max_len=65536 -timeout=30 -rss_limit_mb=2048 -print_final_stats=1
done
echo "no crash in: $targets"
