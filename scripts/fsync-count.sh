#!/usr/bin/env bash
# Counts the fsync-family syscalls a server makes per synchronous JetStream publish and per KV
# put with `jetstream { sync_interval: always }`: the server runs under
# `strace -f -c -e trace=fsync,fdatasync,sync_file_range`, a nats-py client (from
# /work/main/.venv or $PYTHON) does N one-at-a-time publishes (PubAck awaited) and then N KV
# puts, and the syscall totals (minus those of an idle start/stop) are divided by N.
# Usage: scripts/fsync-count.sh <server binary> [N]   (a measuring tool, not a test)
set -euo pipefail
BIN=${1:?server binary}
N=${2:-500}
PY=${PYTHON:-/work/main/.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
port=$((20000 + RANDOM % 20000))
cat >"$work/s.conf" <<CONF
port: $port
jetstream { store_dir: "$work/js", sync_interval: always }
CONF

run() { # $1 = what the client does: none | pub | kv
    rm -rf "$work/js"
    strace -f -c -e trace=fsync,fdatasync,sync_file_range -o "$work/strace.$1" \
        "$BIN" -c "$work/s.conf" >"$work/log.$1" 2>&1 &
    local pid=$!
    for _ in $(seq 100); do
        (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
        sleep 0.1
    done
    "$PY" - "$port" "$N" "$1" <<'PY'
import asyncio, sys
import nats

async def main(port, n, what):
    nc = await nats.connect(f"nats://127.0.0.1:{port}")
    js = nc.jetstream()
    if what == "pub":
        await js.add_stream(name="S", subjects=["s"])
        for i in range(n):
            await js.publish("s", b"x" * 128)
    elif what == "kv":
        kv = await js.create_key_value(bucket="b")
        for i in range(n):
            await kv.put(f"k{i % 100}", b"x" * 128)
    await nc.close()

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))
PY
    kill -TERM "$(pgrep -P $pid | head -1 || echo $pid)" 2>/dev/null || kill -TERM $pid
    wait $pid || true
    awk '/fsync|fdatasync|sync_file_range/ {n += $4} END {print n + 0}' "$work/strace.$1"
}

base=$(run none)
pub=$(run pub)
kv=$(run kv)
echo "server: $BIN"
echo "idle start/stop: $base syscalls"
awk -v b="$base" -v p="$pub" -v k="$kv" -v n="$N" 'BEGIN {
    printf "sync publish: %.2f fsync-family syscalls per publish (%d for %d, minus idle)\n", (p - b) / n, p - b, n
    printf "KV put:       %.2f fsync-family syscalls per put (%d for %d, minus idle, incl. bucket creation)\n", (k - b) / n, k - b, n
}'
