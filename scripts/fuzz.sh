#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer, through cargo-fuzz) of what a client controls: the CBOR
# decoder of client messages (`decode`) and the check of an incoming sync message over a real
# outcome document (`accept`). Each target runs for FUZZ_SECONDS (default 60).
#
# The committed seeds in fuzz/corpus/<target> are read, never written: new inputs go to
# fuzz/target/corpus/<target>, crashes to fuzz/artifacts/<target>. A crash worth keeping is
# copied into fuzz/corpus/<target>, where `cargo test` replays it on every run.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`, about two minutes); the stable
# toolchain is enough: RUSTC_BOOTSTRAP lets cargo-fuzz pass its nightly-only flags. The
# targets are built optimised without debug assertions (-O), as production runs, and without
# a sanitizer (-s none): the code under test is safe Rust.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
# FUZZ_RUNS instead of a time budget makes a run reproducible (with FUZZ_SEED): CI uses it, so
# that its verdict does not depend on the machine's speed or luck.
runs="${FUZZ_RUNS:-}"
seed="${FUZZ_SEED:-1}"
if [ -n "$runs" ]; then budget=(-runs="$runs" -seed="$seed"); else budget=(-max_total_time="$seconds"); fi
targets="${FUZZ_TARGETS:-decode accept}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is not installed: cargo install cargo-fuzz --locked" >&2
  exit 2
fi

cargo fuzz build -O -s none
mkdir -p fuzz/target/logs
for target in $targets; do
  mkdir -p "fuzz/target/corpus/$target"
  if [ -n "$runs" ]; then echo "== fuzz $target: $runs runs, seed $seed"; else echo "== fuzz $target: ${seconds}s"; fi
  cargo fuzz run -O -s none "$target" "fuzz/target/corpus/$target" "fuzz/corpus/$target" -- \
    "${budget[@]}" -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 \
    2>&1 | tee "fuzz/target/logs/$target.log" | grep -E "^(#[0-9]+.*(INITED|DONE)|Done|stat::number_of_executed_units|stat::average_exec_per_sec|==|SUMMARY)" || true
  # libFuzzer exits non-zero on a crash; `tee` hides it, so look at the log.
  if grep -qE "^==[0-9]+== ?ERROR|panicked at|SUMMARY: libFuzzer" "fuzz/target/logs/$target.log"; then
    echo "fuzz target $target crashed; see fuzz/target/logs/$target.log and fuzz/artifacts/$target" >&2
    exit 1
  fi
done
