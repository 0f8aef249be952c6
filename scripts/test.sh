#!/usr/bin/env bash
# Runs every test: Rust unit, contract and integration tests; the web app's unit tests, lint
# and type check; and the end-to-end tests of the stock automerge-repo client and of the web
# app in headless Chromium against the real server binary.
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

echo "== end-to-end: stock automerge-repo client and headless Chromium against the real server"
(cd tests && npm install --no-audit --no-fund && npm test)
