#!/usr/bin/env bash
# Builds the fuzz targets in fuzz/ and runs each for a bounded time.
#
#   scripts/fuzz.sh [target...]        (default: every target in fuzz/Cargo.toml)
#
# Environment:
#   FUZZ_SECONDS   time per target (default 25)
#
# Uses cargo-fuzz (installed with `cargo install --locked cargo-fuzz` when
# missing) on the stable toolchain: `--sanitizer none` needs no nightly-only
# flags; `--debug-assertions` makes integer overflow panic. A crash, or fuzz
# infrastructure that cannot be built, fails the script; only crates.io being
# unreachable skips it, with the reason printed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECS="${FUZZ_SECONDS:-25}"
cd "$ROOT/fuzz"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# True when the failure logged in $log is the network (crates.io unreachable).
offline() {
  grep -qiE "failed to (download|query|get|fetch|update)|could not resolve|couldn't resolve|network (is )?unreachable|failed to connect|spurious network error|operation timed out" "$log"
}
fail() { tail -40 "$log" >&2; echo "fuzz: FAILED: $*" >&2; exit 1; }

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: cargo-fuzz missing; cargo install --locked cargo-fuzz"
  if ! cargo install --locked cargo-fuzz >"$log" 2>&1; then
    if offline; then
      tail -5 "$log"
      echo "fuzz: SKIPPED: crates.io unreachable, cannot install cargo-fuzz"
      exit 0
    fi
    fail "cargo install cargo-fuzz"
  fi
fi
echo "fuzz: $(cargo fuzz --version)"

FLAGS=(--sanitizer none --debug-assertions)
if ! cargo fuzz build "${FLAGS[@]}" >"$log" 2>&1; then
  if offline; then
    tail -5 "$log"
    echo "fuzz: SKIPPED: crates.io unreachable, cannot fetch the fuzz targets' dependencies"
    exit 0
  fi
  fail "cargo fuzz build ${FLAGS[*]}"
fi

if (($# == 0)); then
  mapfile -t targets < <(cargo fuzz list)
else
  targets=("$@")
fi
((${#targets[@]} > 0)) || fail "no fuzz targets found"
for t in "${targets[@]}"; do
  start=$SECONDS
  # -rss_limit_mb bounds memory; -timeout makes a hang (one input > 10 s) a crash.
  if ! cargo fuzz run "${FLAGS[@]}" "$t" -- \
      -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    grep -E "panicked|ERROR: libFuzzer|SUMMARY|Test unit written|Reproduce with" "$log" >&2 || true
    fail "target $t crashed (input saved under fuzz/artifacts/$t/)"
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -oE 'DONE +cov: [0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
  echo "fuzz: $t: ${runs:-?} runs in $((SECONDS - start)) s (cov ${cov:-?}), no crash"
done
