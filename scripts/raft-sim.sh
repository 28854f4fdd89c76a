#!/usr/bin/env bash
# Long deterministic-simulation run of rnats-consensus (turmoil): many seeds, longer fault phases.
# Usage: scripts/raft-sim.sh [seeds=200] [fault-seconds=30] [first-seed=1]
# A failure prints the seed; rerun just it with RAFT_SIM_BASE=<seed> RAFT_SIM_SEEDS=1.
set -euo pipefail
cd "$(dirname "$0")/.."
export RAFT_SIM_SEEDS="${1:-200}" RAFT_SIM_SECS="${2:-30}" RAFT_SIM_BASE="${3:-1}"
cargo test -p rnats-consensus --test sim -- --nocapture --test-threads=1 2>&1 | grep --line-buffered -E "^sim |panicked|seed [0-9]+:|test result"
