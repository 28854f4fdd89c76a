"""Clusters (routes) driven by nats-py clients connected to different nodes.

Every node is started from here on loopback with fixed free ports: node i is
``-a 127.0.0.1 -p P -n n<i> --cluster nats://127.0.0.1:CP --cluster_name C
--routes <every cluster URL>``.  A cluster counts as formed once every node
delivers to every other (probes published until seen, bounded).

* a 3-node rnats cluster: pub/sub (plain, ``*``, ``>``, headers), queue
  groups spread over nodes, request-reply, no responders, unsubscribe;
  ``discovered_servers`` / ``servers`` learned from INFO ``connect_urls``;
  failover of a client when its node is killed;
* mixed clusters (rnats + the reference nats-server): the same checks across
  every ordered pair of nodes, failover from an rnats node to a Go one.
  Skipped, with the reason, when the reference binary is missing.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import uuid
from pathlib import Path
from typing import Optional

import nats
import pytest
from nats.errors import NoRespondersError

from conftest import ServerProcess, reference_available, reference_bin, server_bin
from helpers import close_all, connect, sync

FORM_TIMEOUT = 20.0
RNATS = "rnats"
REF = "ref"


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _uid() -> str:
    return uuid.uuid4().hex[:12]


class Node:
    def __init__(self, idx: int, kind: str, port: int, cport: int, routes: list[str]):
        self.idx = idx
        self.kind = kind
        self.port = port
        self.cport = cport
        self.name = f"n{idx}"
        self.url = f"nats://127.0.0.1:{port}"
        self.args = ["-n", self.name, "--cluster", f"nats://127.0.0.1:{cport}",
                     "--cluster_name", "C", "--routes", ",".join(routes)]
        # Extra arguments for every node of a kind (e.g. -DV to trace routes),
        # as in the Rust harness.
        extra = os.environ.get("RNATS_ITEST_REFERENCE_ARGS" if kind == REF else "RNATS_ITEST_RNATS_ARGS", "")
        self.args += extra.split()
        self.proc: Optional[ServerProcess] = None
        self.old_logs = ""

    @property
    def binary(self) -> Path:
        return reference_bin() if self.kind == REF else server_bin()

    def start(self) -> None:
        srv = ServerProcess(self.binary, self.args, self.port)
        srv.start()
        if not srv.ready:
            srv.stop()
            pytest.fail(f"node {self.name} ({self.kind}) did not start:\n{srv.log()}", pytrace=False)
        self.proc = srv

    def kill(self) -> None:
        if self.proc and self.proc.proc and self.proc.proc.poll() is None:
            self.proc.proc.kill()
            self.proc.proc.wait(5)
        if self.proc:
            self.old_logs += self.proc.log()
        self.proc = None

    def log(self) -> str:
        return self.old_logs + (self.proc.log() if self.proc else "")


class Cluster:
    def __init__(self, kinds: list[str]):
        ports = _free_ports(2 * len(kinds))
        routes = [f"nats://127.0.0.1:{ports[2 * i + 1]}" for i in range(len(kinds))]
        self.nodes = [Node(i, k, ports[2 * i], ports[2 * i + 1], routes) for i, k in enumerate(kinds)]
        self._conns: list = []

    def start(self) -> "Cluster":
        for n in self.nodes:
            n.start()
        return self

    def stop(self) -> None:
        for n in self.nodes:
            if n.proc:
                n.proc.stop()

    def logs(self) -> str:
        return "\n".join(f"==== {n.name} ({n.kind}) ====\n{n.log()}" for n in self.nodes)

    def dump_logs(self) -> None:
        """With RNATS_ITEST_LOG_DIR set, write every node's log there."""
        d = os.environ.get("RNATS_ITEST_LOG_DIR")
        if d:
            os.makedirs(d, exist_ok=True)
            for n in self.nodes:
                Path(d, f"{n.name}-{n.kind}-{n.port}.log").write_text(n.log())

    async def connect(self, i: int, **kw):
        nc = await connect(self.nodes[i].url, **kw)
        self._conns.append(nc)
        return nc

    async def close_clients(self) -> None:
        await close_all(*self._conns)

    async def wait_formed(self, among: Optional[list[int]] = None, timeout: float = FORM_TIMEOUT) -> None:
        """Publish probes until every node of ``among`` delivers to every other."""
        among = among if among is not None else [n.idx for n in self.nodes if n.proc]
        ncs = {i: await connect(self.nodes[i].url) for i in among}
        uid = _uid()
        seen: set[tuple[int, int]] = set()
        try:
            for j in among:
                async def cb(msg, j=j):
                    seen.add((int(msg.data), j))
                await ncs[j].subscribe(f"_FORM.{uid}.{j}", cb=cb)
                await sync(ncs[j])
            want = {(i, j) for i in among for j in among if i != j}
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while not want <= seen:
                if loop.time() > deadline:
                    self.dump_logs()
                    raise AssertionError(
                        f"cluster did not form: missing (from, to) {sorted(want - seen)}\n{self.logs()}")
                for i, j in want - seen:
                    await ncs[i].publish(f"_FORM.{uid}.{j}", str(i).encode())
                for nc in ncs.values():
                    await sync(nc)
                await asyncio.sleep(0.05)
        finally:
            await close_all(*ncs.values())


@pytest.fixture
def make_cluster():
    made: list[Cluster] = []

    async def _make(kinds: list[str]) -> Cluster:
        if REF in kinds:
            ok, why = reference_available()
            if not ok:
                pytest.skip(f"mixed cluster needs the reference nats-server: {why}")
        c = Cluster(kinds).start()
        made.append(c)
        await c.wait_formed()
        return c

    yield _make
    for c in made:
        c.stop()


async def barrier(pub_nc, sub_nc) -> None:
    """Return once interest registered on ``sub_nc``'s node before the call is
    known on ``pub_nc``'s node (a probe subscribed now arrives there)."""
    subj = f"_BARRIER.{_uid()}"
    sub = await sub_nc.subscribe(subj)
    await sync(sub_nc)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        await pub_nc.publish(subj, b"")
        await sync(pub_nc)
        try:
            await sub.next_msg(timeout=0.05)
            break
        except nats.errors.TimeoutError:
            assert loop.time() < deadline, f"probe {subj} never crossed"
    await sub.unsubscribe()


# --------------------------------------------------------------------------
# Checks shared by the rnats-only and the mixed clusters
# --------------------------------------------------------------------------


async def check_pubsub(c: Cluster, frm: int, to: int) -> None:
    p, s = await c.connect(frm), await c.connect(to)
    base = f"ps.{_uid()}"
    plain = await s.subscribe(f"{base}.x")
    star = await s.subscribe(f"{base}.*")
    gt = await s.subscribe(f"{base}.>")
    await barrier(p, s)
    await p.publish(f"{base}.a.b", b"deep")
    await p.publish(f"{base}.x", b"hello", headers={"X-Test": "v1", "X-From": f"n{frm}"})
    await sync(p)
    ctx = f"n{frm} ({c.nodes[frm].kind}) -> n{to} ({c.nodes[to].kind})"
    for name, sub in (("plain", plain), ("*", star)):
        m = await sub.next_msg(timeout=5)
        assert (m.subject, m.data) == (f"{base}.x", b"hello"), f"{ctx}: {name}"
        assert m.headers == {"X-Test": "v1", "X-From": f"n{frm}"}, f"{ctx}: {name} headers {m.headers}"
    m1 = await gt.next_msg(timeout=5)
    m2 = await gt.next_msg(timeout=5)
    assert [(m1.subject, m1.data), (m2.subject, m2.data)] == [(f"{base}.a.b", b"deep"), (f"{base}.x", b"hello")], ctx
    # Nothing extra: a final marker is the next message everywhere.
    await p.publish(f"{base}.x", b"end")
    await sync(p)
    for name, sub in (("plain", plain), ("*", star), (">", gt)):
        m = await sub.next_msg(timeout=5)
        assert m.data == b"end", f"{ctx}: {name}: extra message {m.subject} {m.data!r}"


async def check_request_reply(c: Cluster, requester: int, responder: int) -> None:
    rq, rs = await c.connect(requester), await c.connect(responder)
    subj = f"svc.{_uid()}"

    async def handler(msg):
        await msg.respond(b"re:" + msg.data)

    await rs.subscribe(subj, cb=handler)
    await barrier(rq, rs)
    for k in range(5):
        resp = await rq.request(subj, f"q{k}".encode(), timeout=5)
        assert resp.data == f"re:q{k}".encode(), f"n{responder} -> n{requester}"


async def check_no_responders(c: Cluster, node: int) -> None:
    nc = await c.connect(node)
    with pytest.raises(NoRespondersError):
        await nc.request(f"nobody.{_uid()}", b"", timeout=5)


async def check_unsubscribe(c: Cluster, frm: int, to: int) -> None:
    p, s = await c.connect(frm), await c.connect(to)
    subj = f"unsub.{_uid()}"
    sub = await s.subscribe(subj)
    await barrier(p, s)
    await p.publish(subj, b"before")
    assert (await sub.next_msg(timeout=5)).data == b"before"
    await sub.unsubscribe()
    await barrier(p, s)
    # n<frm> no longer routes the subject anywhere.
    with pytest.raises(NoRespondersError):
        await p.request(subj, b"", timeout=5)


async def check_queue(c: Cluster, publisher: int, members: list[int], n: int) -> list[int]:
    p = await c.connect(publisher)
    base = f"q.{_uid()}"
    subs = []
    for m in members:
        nc = await c.connect(m)
        q = await nc.subscribe(f"{base}.work", queue="workers")
        done = await nc.subscribe(f"{base}.done")
        await barrier(p, nc)
        subs.append((q, done))
    for i in range(n):
        await p.publish(f"{base}.work", str(i).encode())
    await p.publish(f"{base}.done", b"")
    await sync(p)
    seen: dict[int, int] = {}
    counts = []
    for k, (q, done) in enumerate(subs):
        # One publisher's messages reach a connection in order: once `done`
        # is here, every work message for this member is queued already.
        await done.next_msg(timeout=10)
        got = 0
        while True:
            try:
                m = await q.next_msg(timeout=0.05)
            except nats.errors.TimeoutError:
                break
            seen[int(m.data)] = seen.get(int(m.data), 0) + 1
            got += 1
        counts.append(got)
    dups = sorted(i for i, k in seen.items() if k > 1)
    missing = sorted(set(range(n)) - set(seen))
    assert not dups and not missing, (
        f"queue (pub n{publisher}, members {members}, counts {counts}): dup {dups[:10]} missing {missing[:10]}")
    return counts


async def run_matrix(c: Cluster) -> None:
    n = len(c.nodes)
    for frm, to in itertools.permutations(range(n), 2):
        await check_pubsub(c, frm, to)
        await check_request_reply(c, frm, to)
        await check_unsubscribe(c, frm, to)
    for node in range(n):
        await check_no_responders(c, node)
    for pub in range(n):
        counts = await check_queue(c, pub, list(range(n)), 150)
        assert all(k > 0 for k in counts), f"every node's member gets some (pub n{pub}): {counts}"
    # Members only on other nodes.
    counts = await check_queue(c, 0, [1, 2, 2], 100)
    assert sum(counts) == 100


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------


async def test_rnats_cluster_messages_queues_requests(make_cluster):
    c = await make_cluster([RNATS, RNATS, RNATS])
    try:
        await run_matrix(c)
    finally:
        await c.close_clients()


async def test_rnats_cluster_discovered_servers(make_cluster):
    c = await make_cluster([RNATS, RNATS, RNATS])
    want = {n.port for n in c.nodes}
    try:
        for i in range(3):
            # Only node i's URL given; the others come from INFO connect_urls.
            nc = await c.connect(i)
            others = want - {c.nodes[i].port}
            found = {u.port for u in nc.discovered_servers}
            assert found == others, f"n{i}: discovered {found}, want {others}"
            assert {u.port for u in nc.servers} == want, f"n{i}: servers {nc.servers}"
            assert {u.hostname for u in nc.discovered_servers} == {"127.0.0.1"}
    finally:
        await c.close_clients()


async def _failover(c: Cluster, victim: int, publisher: int) -> None:
    reconnected = asyncio.Event()

    async def on_reconnect():
        reconnected.set()

    nc = await c.connect(
        victim,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.1,
        reconnected_cb=on_reconnect,
    )
    sub = await nc.subscribe("fo.>")
    pub = await c.connect(publisher)
    await barrier(pub, nc)
    await pub.publish("fo.before", b"1")
    assert (await sub.next_msg(timeout=5)).subject == "fo.before"

    c.nodes[victim].kill()
    await asyncio.wait_for(reconnected.wait(), 15)
    survivors = {n.port for n in c.nodes if n.idx != victim}
    assert nc.connected_url.port in survivors, f"reconnected to {nc.connected_url}"
    # The client resubscribed on its new node: publish from the third node
    # until a message arrives.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    k = 0
    while True:
        await pub.publish(f"fo.after.{k}", b"")
        await sync(pub)
        k += 1
        try:
            m = await sub.next_msg(timeout=0.1)
            assert m.subject.startswith("fo.after."), m.subject
            break
        except nats.errors.TimeoutError:
            assert loop.time() < deadline, f"no message after failover to {nc.connected_url}\n{c.logs()}"


async def test_rnats_cluster_failover(make_cluster):
    c = await make_cluster([RNATS, RNATS, RNATS])
    try:
        await _failover(c, victim=0, publisher=2)
        await check_request_reply(c, 1, 2)
    finally:
        await c.close_clients()


@pytest.mark.parametrize("kinds", [[REF, RNATS, REF], [RNATS, REF, RNATS]], ids=["2ref_1rnats", "1ref_2rnats"])
async def test_mixed_cluster_messages_queues_requests(make_cluster, kinds):
    c = await make_cluster(kinds)
    try:
        await run_matrix(c)
    finally:
        await c.close_clients()
    for n in c.nodes:
        if n.kind == REF:
            errs = [l for l in n.log().splitlines() if "[ERR]" in l and "connection refused" not in l.lower()]
            assert not errs, f"{n.name} (nats-server) logged errors:\n" + "\n".join(errs)


async def test_mixed_cluster_failover_and_discovery(make_cluster):
    # A client of the rnats node learns the Go nodes and fails over to one.
    c = await make_cluster([REF, RNATS, REF])
    try:
        nc = await c.connect(1)
        assert {u.port for u in nc.discovered_servers} == {c.nodes[0].port, c.nodes[2].port}
        await nc.close()
        await _failover(c, victim=1, publisher=2)
    finally:
        await c.close_clients()
