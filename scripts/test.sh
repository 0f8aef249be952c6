#!/usr/bin/env bash
# Runs every test: Rust unit, contract and integration tests (with the reliability tests of
# docs/reliability.md in their short forms, the fuzz corpus among them; fuzzing if FUZZ_SECONDS
# is set); the web app's unit tests, lint and type check; and the end-to-end tests of the stock
# automerge-repo client and of the web app in headless Chromium against the real server binary.
#
# Needs: PostgreSQL answering on 127.0.0.1:5432 (DATABASE_URL_PG overrides), Chromium at
# /usr/bin/chromium, and LibreOffice (`soffice`, to read the DOCX exports back). `.ci/run`
# makes sure of all three.
set -euo pipefail
cd "$(dirname "$0")/.."
# `npm install` rather than `npm ci`: npm 11 refuses `ci` when the lock file leaves out other
# platforms' optional packages (cbor-extract's), which it does; the lock file is still honoured.

echo "== web app: install, lint, type check, unit tests, build"
(cd web && npm install --no-audit --no-fund && npm run lint && npm run typecheck && npm test && npm run build)

echo "== server: build, unit, contract and integration tests"
cargo build --bin rapporteur
cargo test --workspace

# The fuzz corpus is replayed by `cargo test` above. Coverage-guided fuzzing needs cargo-fuzz
# and about twelve minutes on two cores to build its instrumented targets, too long for every
# run: it runs when asked, for FUZZ_SECONDS per target (docs/reliability.md).
if [ -n "${FUZZ_SECONDS:-}${FUZZ_RUNS:-}" ]; then
  echo "== fuzzing"
  ./scripts/fuzz.sh
fi

echo "== end-to-end: stock automerge-repo client and headless Chromium against the real server"
(cd tests && npm install --no-audit --no-fund && npm test)
