"""The example programs of seed document 001 (JetStream with nats-py), run as-is.

``tests/python/seeds/`` holds the programs copied from
``/work/shared/seeds/001_9fe27590119590c9.txt`` (only their indentation, lost in
the document, is restored).  Each run copies a program to a temporary
directory with its hard-coded server address (``localhost:4222``, or
``nats.nats:4222`` for ``worker.py``) replaced by the test server's, runs it
with this interpreter, and checks what it prints and what it left in the
server.

The subscriber, request/reply and queue-worker programs need JetStream
consumers; they are skipped with "needs consumers (issue 5)" while the server
under test cannot create one, and run (and must pass) as soon as it can.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
import time
from pathlib import Path
from typing import Optional

import pytest

from helpers import close_all, connect

SEEDS = Path(__file__).resolve().parent / "seeds"
SEED_ADDRS = ("localhost:4222", "nats.nats:4222")
STREAM = "example_stream"


@pytest.fixture
def js_server(start_server, tmp_path):
    store = tmp_path / "jsstore"
    store.mkdir()
    return start_server("-js", "-sd", str(store))


def seed_program(name: str, server, tmp_path: Path) -> Path:
    """Copy seed ``name`` into ``tmp_path`` pointing at ``server``."""
    text = (SEEDS / name).read_text()
    assert any(a in text for a in SEED_ADDRS), f"{name}: no server address to substitute"
    for addr in SEED_ADDRS:
        text = text.replace(addr, f"127.0.0.1:{server.port}")
    dst = tmp_path / "seedrun" / name
    dst.parent.mkdir(exist_ok=True)
    dst.write_text(text)
    return dst


class SeedProc:
    """A running seed program whose output is read line by line."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str):
        self.proc = proc
        self.name = name
        self.lines: list[str] = []

    @classmethod
    async def start(cls, path: Path) -> "SeedProc":
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-u",
            str(path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=str(path.parent),
        )
        return cls(proc, path.name)

    async def _read_line(self, timeout: float) -> Optional[str]:
        raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not raw:
            return None
        line = raw.decode("utf-8", "replace").rstrip("\n")
        self.lines.append(line)
        return line

    async def wait_line(self, pattern: str, timeout: float = 10.0) -> re.Match:
        """Read until a line matches ``pattern`` (searched in lines read so far, too)."""
        rx = re.compile(pattern)
        for line in self.lines:
            m = rx.search(line)
            if m:
                return m
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = await self._read_line(max(left, 0.01)) if left > 0 else None
            except asyncio.TimeoutError:
                line = None
            if line is None:
                raise AssertionError(
                    f"{self.name}: no line matching {pattern!r} within {timeout}s; output so far:\n"
                    + "\n".join(self.lines)
                )
            m = rx.search(line)
            if m:
                return m

    async def finish(self, timeout: float) -> tuple[int, list[str]]:
        """Wait for exit; returns (returncode, all output lines)."""
        try:
            rest, _ = await asyncio.wait_for(self.proc.communicate(), timeout)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(f"{self.name} did not finish within {timeout}s; output:\n" + "\n".join(self.lines))
        self.lines.extend(rest.decode("utf-8", "replace").splitlines())
        return self.proc.returncode, self.lines

    async def interrupt(self, timeout: float = 5.0) -> list[str]:
        """SIGINT (Ctrl+C), then SIGKILL if it lingers; returns all output lines."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                rest, _ = await asyncio.wait_for(self.proc.communicate(), timeout)
                self.lines.extend(rest.decode("utf-8", "replace").splitlines())
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        return self.lines

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()


async def run_seed(name: str, server, tmp_path: Path, timeout: float = 20.0) -> list[str]:
    p = await SeedProc.start(seed_program(name, server, tmp_path))
    rc, lines = await p.finish(timeout)
    assert rc == 0, f"{name} exited {rc}; output:\n" + "\n".join(lines)
    return lines


async def api_req(nc, subject: str, body=None) -> dict:
    data = b"" if body is None else json.dumps(body).encode()
    msg = await nc.request(subject, data, timeout=5)
    return json.loads(msg.data)


async def require_consumers(nc) -> None:
    """Skip unless the server can create a JetStream consumer at all."""
    reason = "needs consumers (issue 5)"
    try:
        resp = await api_req(nc, "$JS.API.STREAM.CREATE._SEED_PROBE", {"name": "_SEED_PROBE", "subjects": ["_seed_probe"]})
        if "error" in resp:
            raise RuntimeError(resp["error"])
        resp = await api_req(
            nc,
            "$JS.API.CONSUMER.CREATE._SEED_PROBE",
            {"stream_name": "_SEED_PROBE", "config": {"ack_policy": "explicit"}},
        )
        if "error" in resp:
            raise RuntimeError(resp["error"])
    except Exception as e:  # no responders, timeout or an API error
        print(f"skipping: {reason} (consumer create probe: {e!r})")
        pytest.skip(reason)
    finally:
        try:
            await api_req(nc, "$JS.API.STREAM.DELETE._SEED_PROBE")
        except Exception:
            pass


STREAM_CREATED = [
    f"Stream '{STREAM}' does not exist. Proceeding to create a new one.",
    f"Stream '{STREAM}' created successfully.",
]


async def setup_stream(server, tmp_path) -> None:
    assert await run_seed("stream.py", server, tmp_path) == STREAM_CREATED


# --------------------------------------------------------------------------
# stream.py / publisher.py
# --------------------------------------------------------------------------


async def test_seed_stream_creates_example_stream(js_server, tmp_path):
    assert await run_seed("stream.py", js_server, tmp_path) == STREAM_CREATED

    nc = await connect(js_server.url)
    try:
        info = await api_req(nc, f"$JS.API.STREAM.INFO.{STREAM}")
        cfg = info["config"]
        assert cfg["subjects"] == ["my.subject.*"]
        assert cfg["retention"] == "limits"
        assert cfg["storage"] == "file"
        assert cfg["max_msgs"] == 1000
        assert cfg["max_bytes"] == 10 * 1024 * 1024
        # The seed means 9 s, but nats-py takes max_age in seconds and sends
        # 9e9 s in nanoseconds: the server stores (and echoes) 9e18.
        assert cfg["max_age"] == 9 * 10**18
        assert info["state"]["messages"] == 0

        js = nc.jetstream()
        await js.publish("my.subject.x", b"before re-create")
        assert (await js.stream_info(STREAM)).state.messages == 1
    finally:
        await close_all(nc)

    # Run again: the program deletes the existing stream and creates it anew.
    lines = await run_seed("stream.py", js_server, tmp_path)
    assert lines == [f"Existing stream '{STREAM}' deleted.", f"Stream '{STREAM}' created successfully."]
    nc = await connect(js_server.url)
    try:
        st = (await api_req(nc, f"$JS.API.STREAM.INFO.{STREAM}"))["state"]
        assert st["messages"] == 0 and st["last_seq"] == 0
    finally:
        await close_all(nc)


async def test_seed_publisher_publishes_five_messages(js_server, tmp_path):
    await setup_stream(js_server, tmp_path)
    nc = await connect(js_server.url)
    try:
        sub = await nc.subscribe("my.subject.*")
        await nc.flush()
        lines = await run_seed("publisher.py", js_server, tmp_path, timeout=30)
        assert lines == [
            "Publisher connected to NATS server.",
            *[f"Published: Message {i}" for i in range(1, 6)],
            "Publisher disconnected from NATS server.",
        ]
        got = [(await sub.next_msg(timeout=5)) for _ in range(5)]
        assert [(m.subject, m.data) for m in got] == [("my.subject.test", f"Message {i}".encode()) for i in range(1, 6)]

        js = nc.jetstream()
        si = await js.stream_info(STREAM, subjects_filter=">")
        assert si.state.messages == 5
        assert si.state.first_seq == 1 and si.state.last_seq == 5
        assert si.state.subjects == {"my.subject.test": 5}
        for seq in range(1, 6):
            m = await js.get_msg(STREAM, seq)
            assert (m.subject, m.data) == ("my.subject.test", f"Message {seq}".encode())
    finally:
        await close_all(nc)


async def test_seed_publisher_without_stream_reports_error(js_server, tmp_path):
    # No stream captures my.subject.test: the first JetStream publish fails
    # (no responders) and the program reports it and disconnects.
    lines = await run_seed("publisher.py", js_server, tmp_path)
    assert lines == [
        "Publisher connected to NATS server.",
        "Error publishing message: nats: no response from stream",
        "Publisher disconnected from NATS server.",
    ]


# --------------------------------------------------------------------------
# consumer-dependent programs
# --------------------------------------------------------------------------


async def test_seed_subscribers_receive_published_messages(js_server, tmp_path):
    nc = await connect(js_server.url)
    subs: list[SeedProc] = []
    try:
        await require_consumers(nc)
        await setup_stream(js_server, tmp_path)
        path = seed_program("subscriber.py", js_server, tmp_path)
        for _ in range(2):
            p = await SeedProc.start(path)
            subs.append(p)
            await p.wait_line(r"^Subscriber is listening on 'my\.subject\.\*'\.$")
            await p.wait_line(r"^Subscriber is running\. Press Ctrl\+C to exit\.$")

        lines = await run_seed("publisher.py", js_server, tmp_path, timeout=30)
        assert lines[1:6] == [f"Published: Message {i}" for i in range(1, 6)]

        for p in subs:
            for i in range(1, 6):
                await p.wait_line(rf"^Received a message on 'my\.subject\.test': Message {i}$")
        # Each subscriber has its own consumer, and each got everything once.
        for p in subs:
            out = await p.interrupt()
            received = [line for line in out if line.startswith("Received a message")]
            assert received == [f"Received a message on 'my.subject.test': Message {i}" for i in range(1, 6)]
    finally:
        for p in subs:
            await p.kill()
        await close_all(nc)


async def test_seed_request_reply_through_stream(js_server, tmp_path):
    nc = await connect(js_server.url)
    replier: Optional[SeedProc] = None
    try:
        await require_consumers(nc)
        await setup_stream(js_server, tmp_path)
        js = nc.jetstream()
        replier = await SeedProc.start(seed_program("replier.py", js_server, tmp_path))
        m = await replier.wait_line(r"^(consumer_[0-9a-f-]+) is listening for messages\.\.\.$")
        consumer = m.group(1)

        # The durable consumer exists once the replier has subscribed.
        async def has_consumer() -> bool:
            return (await js.stream_info(STREAM)).state.consumer_count == 1

        deadline = time.monotonic() + 10
        while not await has_consumer():
            assert time.monotonic() < deadline, "replier's consumer was never created"
            await asyncio.sleep(0.05)

        lines = await run_seed("requester.py", js_server, tmp_path)
        expected = f"Response from {consumer} : HELLO, CONSUMERS!"
        # The program prints "Published ..." after its PubAck arrives and
        # "Received response" from the reply subscription's callback: two
        # tasks, so when the replier is quick the response can be printed
        # first (the same race exists against nats-server). Order-free for
        # those two; the rest is sequential in the program.
        assert len(lines) == 4, lines
        first_two = sorted(lines[:2])
        assert first_two[0].startswith("Published request with reply subject in headers: _INBOX."), lines
        assert first_two[1] == f"Received response: {expected}", lines
        assert lines[2:] == ["Collected all responses", f"All responses: ['{expected}']"], lines
        await replier.wait_line(rf"^{consumer} received request: Hello, Consumers!$")
        await replier.wait_line(rf"^{consumer} sent response$")
    finally:
        if replier:
            await replier.kill()
        await close_all(nc)


async def test_seed_queue_workers_share_the_work(js_server, tmp_path):
    nc = await connect(js_server.url)
    worker: Optional[SeedProc] = None
    try:
        await require_consumers(nc)
        await setup_stream(js_server, tmp_path)
        worker = await SeedProc.start(seed_program("worker.py", js_server, tmp_path))
        for name in ("Consumer1", "Consumer2"):
            await worker.wait_line(rf"^Subscriber '{name}' is running\. Press Ctrl\+C to exit\.$")
        # The two workers create the queue group's durable consumer "workers"
        # concurrently; on nats-server the loser of that race may get 10013
        # and then just idles, so one or two of them end up listening.
        listening = worker.lines.count("Subscriber is listening on 'my.subject.*' with queue group 'workers'.")
        lost_race = worker.lines.count(
            "Error subscribing to subject: nats: BadRequestError: code=400 err_code=10013 "
            "description='consumer name already in use'"
        )
        assert listening >= 1 and listening + lost_race == 2, worker.lines

        lines = await run_seed("task_publisher.py", js_server, tmp_path, timeout=30)
        assert lines[1:6] == [f"Published: Message {i}" for i in range(1, 6)]
        for i in range(1, 6):
            await worker.wait_line(rf"^\[Consumer[12]\] Received a message on 'my\.subject\.test': Message {i}$")

        # Wait for every ack to land (so nothing is pending redelivery), then stop.
        js = nc.jetstream()
        deadline = time.monotonic() + 10
        while True:
            ci = await js.consumer_info(STREAM, "workers")
            if ci.ack_floor.stream_seq == 5 and ci.num_ack_pending == 0:
                break
            assert time.monotonic() < deadline, f"acks never completed: {ci}"
            await asyncio.sleep(0.05)
        out = await worker.interrupt()
        received = sorted(
            line.split(": ", 1)[1] for line in out if re.match(r"^\[Consumer[12]\] Received a message", line)
        )
        # Each task went to exactly one worker of the queue group.
        assert received == [f"Message {i}" for i in range(1, 6)]
    finally:
        if worker:
            await worker.kill()
        await close_all(nc)
