#!/usr/bin/env bash
# The long versions of the reliability tests (docs/reliability.md); `cargo test` runs short
# ones. Every knob has a default that takes a few minutes on two cores:
#
#   CRASH_CYCLES   SIGKILLs of the real binary under six writers      (default 100)
#   CASES          cases of each convergence property                 (default 2000;
#                  the over-sockets property runs CASES/16)
#   FUZZ_SECONDS   seconds of coverage-guided fuzzing per target      (default 300; 0 skips)
#   SEED           seed of the crash harness's edit mix and kill times (default: the time)
set -euo pipefail
cd "$(dirname "$0")/.."
cycles="${CRASH_CYCLES:-100}"
cases="${CASES:-2000}"
fuzz_seconds="${FUZZ_SECONDS:-300}"
seed="${SEED:-$(date +%s)}"

echo "== crash: $cycles SIGKILL cycles (seed $seed)"
RAPPORTEUR_CRASH_CYCLES="$cycles" RAPPORTEUR_CRASH_SEED="$seed" \
  cargo test -p rapporteur --test it crash::acknowledged_edits_survive_repeated_sigkill -- --nocapture

echo "== shutdown and storage faults, network faults, hostile input"
cargo test -p rapporteur --test it -- crash::sigterm storage_faults network hostile forged

echo "== convergence: $cases cases in memory, $((cases / 16)) over sockets"
RAPPORTEUR_PROPTEST_CASES="$cases" cargo test -p rapporteur --test it convergence -- --nocapture

if [ "$fuzz_seconds" != 0 ]; then
  echo "== fuzzing, ${fuzz_seconds}s per target"
  FUZZ_SECONDS="$fuzz_seconds" ./scripts/fuzz.sh
fi
