#!/usr/bin/env bash
# Builds the web app and the server, then starts the server with its embedded default: a SQLite
# file (rapporteur.db), the demo meeting of the concept note, and the web app.
# Extra arguments go to `rapporteur serve` (for example --bind 0.0.0.0:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
(cd web && npm install --no-audit --no-fund && npm run build)
cargo build --release --bin rapporteur
exec target/release/rapporteur serve --web-dir web/dist "$@"
