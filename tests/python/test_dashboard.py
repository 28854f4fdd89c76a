"""The built-in ``/dashboard`` page, rendered by headless Chromium.

rnats runs with ``-m`` while a background thread publishes; Chromium loads
``http://127.0.0.1:<port>/dashboard`` (relative URLs to /varz and /jsz),
and the dumped DOM must show a non-zero message rate in ``#in-msgs-rate``
(its ``data-value``), the stream table must list the stream with its
consumer's lag, and a screenshot must come out as a non-empty PNG.

Needs ``/usr/bin/chromium`` (Debian's ``chromium`` package); without it the
test is skipped with the reason printed.  Set ``RNATS_DASHBOARD_SHOT`` to a
path to keep the screenshot.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("RNATS_CHROMIUM") or "/usr/bin/chromium")

CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
]


def _need_chromium() -> None:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        reason = f"{CHROMIUM} not found (install Debian's chromium package to run this test)"
        print(f"test_dashboard skipped: {reason}")
        pytest.skip(reason)


def _monitor_port(srv) -> int:
    m = re.search(r"Starting http monitor on \S+:(\d+)", srv.log())
    assert m, f"no monitor line in log:\n{srv.log()}"
    return int(m.group(1))


def _get(port: int, path: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read().decode()


class _Conn:
    """A raw NATS client: enough to publish, subscribe and make requests."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""
        self._until(b"\r\n")
        self.buf = b""
        self.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true}\r\nPING\r\n')
        self._until(b"PONG\r\n")
        self.buf = b""

    def _until(self, needle: bytes) -> bytes:
        deadline = time.time() + 5
        while needle not in self.buf:
            assert time.time() < deadline, f"no {needle!r} in {self.buf!r}"
            chunk = self.sock.recv(65536)
            assert chunk, f"closed before {needle!r}"
            self.buf += chunk
        return self.buf

    def request(self, subject: str, body: dict) -> dict:
        payload = json.dumps(body).encode()
        self.buf = b""
        self.sock.sendall(b"SUB _r.1 99\r\nPUB %s _r.1 %d\r\n%s\r\nPING\r\n" % (subject.encode(), len(payload), payload))
        data = self._until(b"PONG\r\n")
        # The answer may arrive after the PONG: read until the MSG body is complete.
        while True:
            m = re.search(rb"MSG _r\.1 99 (\d+)\r\n", data)
            if m and len(data) >= m.end() + int(m.group(1)):
                body = data[m.end(): m.end() + int(m.group(1))]
                break
            chunk = self.sock.recv(65536)
            assert chunk, "closed"
            data = self.buf = self.buf + chunk
        self.sock.sendall(b"UNSUB 99\r\n")
        self.buf = b""
        return json.loads(body)

    def close(self) -> None:
        self.sock.close()


def _publisher(port: int, stop: threading.Event) -> None:
    """Publishes to a core subject (with a subscriber) and to the stream."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.recv(4096)
    s.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB load.> 1\r\n')
    drain = threading.Thread(target=lambda: _drain(s, stop), daemon=True)
    drain.start()
    batch = b"".join(b"PUB load.x 16\r\n0123456789abcdef\r\n" for _ in range(200))
    i = 0
    try:
        while not stop.is_set():
            s.sendall(batch)
            if i % 10 == 0:
                s.sendall(b"PUB orders.new 5\r\norder\r\n")
            i += 1
            time.sleep(0.01)
    except OSError:
        pass
    finally:
        s.close()


def _drain(s: socket.socket, stop: threading.Event) -> None:
    s.settimeout(0.2)
    while not stop.is_set():
        try:
            if not s.recv(1 << 16):
                return
        except socket.timeout:
            continue
        except OSError:
            return


def _chromium(args: list[str], tmp_path: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    # A fresh profile for every launch: no lock or state left by the last one.
    profile = Path(tempfile.mkdtemp(prefix="chrome-profile-", dir=tmp_path))
    argv = [str(CHROMIUM), *CHROME_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(argv, capture_output=True, timeout=timeout, text=True)


def test_dashboard_renders_live_rates(start_server, tmp_path):
    _need_chromium()
    srv = start_server("-js", "-sd", str(tmp_path / "store"), "-m", "-1")
    mport = _monitor_port(srv)

    status, ctype, page = _get(mport, "/dashboard")
    assert status == 200 and ctype == "text/html; charset=utf-8"
    assert 'id="in-msgs-rate"' in page

    api = _Conn(srv.port)
    r = api.request("$JS.API.STREAM.CREATE.ORDERS", {"name": "ORDERS", "subjects": ["orders.>"], "storage": "memory"})
    assert "error" not in r, r
    r = api.request(
        "$JS.API.CONSUMER.CREATE.ORDERS.billing",
        {"stream_name": "ORDERS", "config": {"durable_name": "billing", "ack_policy": "explicit"}},
    )
    assert "error" not in r, r
    api.close()

    stop = threading.Event()
    load = threading.Thread(target=_publisher, args=(srv.port, stop), daemon=True)
    load.start()
    try:
        url = f"http://127.0.0.1:{mport}/dashboard"
        dom = ""
        for _ in range(3):  # virtual time is not wall time: allow a retry on a slow machine
            res = _chromium(["--virtual-time-budget=4000", "--dump-dom", url], tmp_path)
            dom = res.stdout
            m = re.search(r'id="in-msgs-rate"[^>]*data-value="([0-9.eE+-]+)"', dom)
            if m and float(m.group(1)) > 0:
                break
        else:
            pytest.fail(f"no non-zero #in-msgs-rate in the dumped DOM:\n{dom[:4000]}\n--- stderr ---\n{res.stderr[-2000:]}")
        m = re.search(r'id="out-msgs-rate"[^>]*data-value="([0-9.eE+-]+)"', dom)
        assert m and float(m.group(1)) > 0, "out rate"
        assert re.search(r'id="status"[^>]*>live<', dom), "status pill says live"
        # The stream table: the stream and its consumer, with a lag.
        assert ">ORDERS<" in dom, "stream row"
        m = re.search(r'data-stream="ORDERS" data-consumer="billing".*?data-value="(\d+)"', dom, re.S)
        assert m and int(m.group(1)) > 0, "consumer lag shown"

        shot = tmp_path / "d.png"
        res = _chromium(
            ["--virtual-time-budget=4000", f"--screenshot={shot}", "--window-size=1280,800", url], tmp_path
        )
        assert shot.is_file(), f"no screenshot: {res.stderr[-2000:]}"
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, len(data)
        keep = os.environ.get("RNATS_DASHBOARD_SHOT")
        if keep:
            shutil.copyfile(shot, keep)
    finally:
        stop.set()
        load.join(5)
