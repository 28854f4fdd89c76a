#!/usr/bin/env bash
# Installs Debian's chromium for the dashboard's headless-browser test
# (tests/python/test_dashboard.py), when it is missing and this can be done
# here: as root, with apt-get, and the Debian archive reachable. Otherwise it
# prints why not and exits 0 (the test then skips with its own reason).
set -euo pipefail

CHROMIUM="${RNATS_CHROMIUM:-/usr/bin/chromium}"
skip() { echo "chromium: not installed: $*; the dashboard browser test will be skipped"; exit 0; }

if [[ -x "$CHROMIUM" ]]; then
  echo "chromium: $CHROMIUM present"
  exit 0
fi
[[ $(id -u) -eq 0 ]] || skip "$CHROMIUM missing and not running as root (install the chromium package)"
command -v apt-get >/dev/null || skip "$CHROMIUM missing and apt-get not found (not Debian?)"

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "chromium: $CHROMIUM missing; apt-get update && apt-get install chromium"
if ! apt-get update -qq >"$log" 2>&1; then
  # Lists already on the machine may still do; the install says if not.
  tail -5 "$log"
  echo "chromium: apt-get update failed; trying the package lists present"
fi
if [[ "$(apt-cache policy chromium 2>/dev/null | awk '/Candidate:/ {print $2}')" =~ ^(|\(none\))$ ]]; then
  skip "no chromium package in the configured apt sources"
fi
if ! apt-get install -y -qq --no-install-recommends chromium >"$log" 2>&1; then
  tail -20 "$log"
  if grep -qE "Failed to fetch|Temporary failure resolving|Could not (resolve|connect)" "$log"; then
    skip "the Debian archive is not reachable (download failed)"
  fi
  echo "chromium: apt-get install chromium failed (see above)" >&2
  exit 1
fi
[[ -x "$CHROMIUM" ]] || { echo "chromium: installed, but $CHROMIUM is missing" >&2; exit 1; }
echo "chromium: installed $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
