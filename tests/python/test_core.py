"""Core NATS behaviour through the official nats-py client (plus raw checks)."""

from __future__ import annotations

import asyncio
import time

import nats
import pytest
from nats.errors import BadSubjectError, MaxPayloadError, NoRespondersError

from helpers import close_all, connect, sync, wait_for


async def drain_queue(sub, timeout: float = 0.0) -> list:
    """All messages currently queued on a (non-callback) subscription."""
    out = []
    while True:
        try:
            out.append(await sub.next_msg(timeout=timeout or 0.05))
        except nats.errors.TimeoutError:
            return out


# --------------------------------------------------------------------------
# pub/sub and subjects
# --------------------------------------------------------------------------


async def test_pub_sub_roundtrip(server):
    nc = await connect(server.url)
    try:
        sub = await nc.subscribe("greet.joe")
        await nc.publish("greet.joe", b"hello", reply="answer.here")
        msg = await sub.next_msg(timeout=5)
        assert msg.subject == "greet.joe"
        assert msg.data == b"hello"
        assert msg.reply == "answer.here"
        await nc.publish("greet.joe", b"")
        msg = await sub.next_msg(timeout=5)
        assert msg.data == b""
    finally:
        await close_all(nc)


async def test_pub_sub_between_connections_preserves_order(server):
    sub_nc = await connect(server.url)
    pub_nc = await connect(server.url)
    try:
        sub = await sub_nc.subscribe("order.test")
        await sync(sub_nc)
        for i in range(500):
            await pub_nc.publish("order.test", str(i).encode())
        await sync(pub_nc)
        got = [int((await sub.next_msg(timeout=5)).data) for _ in range(500)]
        assert got == list(range(500))
    finally:
        await close_all(sub_nc, pub_nc)


@pytest.mark.parametrize(
    "pattern,matching,non_matching",
    [
        ("wc.*", ["wc.a", "wc.bcd"], ["wc", "wc.a.b", "wcx.a", "x.wc.a"]),
        ("wc.*.end", ["wc.a.end", "wc.zz.end"], ["wc.end", "wc.a.b.end", "wc.a.endx"]),
        ("wc.>", ["wc.a", "wc.a.b", "wc.a.b.c.d"], ["wc", "wcx.a", "x.wc.a"]),
        ("*.mid.>", ["a.mid.b", "b.mid.c.d"], ["mid.b", "a.mid", "a.b.mid.c"]),
        ("lit.eral", ["lit.eral"], ["lit.eral.x", "lit", "lit.era"]),
    ],
)
async def test_wildcards(server, pattern, matching, non_matching):
    nc = await connect(server.url)
    try:
        sub = await nc.subscribe(pattern)
        for subj in non_matching + matching:
            await nc.publish(subj, subj.encode())
        # The server answers the flush PING only after delivering everything
        # that preceded it on this connection.
        await sync(nc)
        got = [m.subject for m in await drain_queue(sub)]
        assert got == matching
    finally:
        await close_all(nc)


async def test_queue_group_distribution(server):
    members = [await connect(server.url) for _ in range(3)]
    pub = await connect(server.url)
    received: list[list[int]] = [[] for _ in members]
    try:
        for idx, nc in enumerate(members):

            async def cb(msg, idx=idx):
                received[idx].append(int(msg.data))

            await nc.subscribe("work.items", queue="workers", cb=cb)
            await sync(nc)
        for i in range(300):
            await pub.publish("work.items", str(i).encode())
        await sync(pub)
        await wait_for(lambda: sum(map(len, received)) >= 300, 10, "300 queue deliveries")
        # Round-trip every member so any duplicate would have arrived by now.
        for nc in members:
            await sync(nc)
        await asyncio.sleep(0)
        all_ids = sorted(i for r in received for i in r)
        assert all_ids == list(range(300)), "each message must be delivered exactly once to the group"
        shares = [len(r) for r in received]
        assert all(s > 0 for s in shares), f"every member should get a share: {shares}"
    finally:
        await close_all(pub, *members)


async def test_mixed_plain_and_queue_subscribers(server):
    plain_nc = await connect(server.url)
    q_ncs = [await connect(server.url) for _ in range(2)]
    pub = await connect(server.url)
    try:
        plain = await plain_nc.subscribe("mixed.x")
        q_subs = [await nc.subscribe("mixed.x", queue="q") for nc in q_ncs]
        for nc in [plain_nc, *q_ncs]:
            await sync(nc)
        n = 100
        for i in range(n):
            await pub.publish("mixed.x", str(i).encode())
        await sync(pub)
        plain_got = [int((await plain.next_msg(timeout=5)).data) for _ in range(n)]
        assert plain_got == list(range(n))
        for nc in q_ncs:
            await sync(nc)
        q_got = []
        for s in q_subs:
            q_got += [int(m.data) for m in await drain_queue(s)]
        assert sorted(q_got) == list(range(n))
    finally:
        await close_all(plain_nc, pub, *q_ncs)


async def test_invalid_subjects(server, raw_conn):
    nc = await connect(server.url)
    try:
        with pytest.raises(BadSubjectError):
            await nc.publish("", b"x")
        with pytest.raises(BadSubjectError):
            await nc.subscribe("")
        assert nc.is_connected
    finally:
        await close_all(nc)
    # The server itself rejects malformed subscription subjects but keeps the
    # connection open.
    c = raw_conn(server.port)
    c.send(b'CONNECT {"verbose":false}\r\nSUB bad..subject 1\r\nSUB bad.>.x 2\r\nSUB ok.x 3\r\nPUB ok.x 1\r\nz\r\nPING\r\n')
    data = c.read_until(b"PONG\r\n", 5)
    assert data.count(b"-ERR 'Invalid Subject'\r\n") == 2
    assert b"MSG ok.x 3 1\r\nz\r\n" in data
    assert not c.closed


# --------------------------------------------------------------------------
# request / reply, headers, no responders
# --------------------------------------------------------------------------


async def test_request_reply(server):
    svc = await connect(server.url)
    cli = await connect(server.url)
    try:

        async def handler(msg):
            await msg.respond(b"echo:" + msg.data)

        await svc.subscribe("svc.echo", cb=handler)
        await sync(svc)
        for i in range(20):
            resp = await cli.request("svc.echo", f"n{i}".encode(), timeout=5)
            assert resp.data == f"echo:n{i}".encode()
    finally:
        await close_all(svc, cli)


async def test_headers_roundtrip(server):
    nc = await connect(server.url)
    try:
        sub = await nc.subscribe("hdr.x")
        await nc.publish("hdr.x", b"body", headers={"X-One": "1", "X-Two": "two words"})
        msg = await sub.next_msg(timeout=5)
        assert msg.data == b"body"
        assert msg.headers == {"X-One": "1", "X-Two": "two words"}
        # headers with an empty body
        await nc.publish("hdr.x", b"", headers={"Only": "hdr"})
        msg = await sub.next_msg(timeout=5)
        assert msg.data == b"" and msg.headers == {"Only": "hdr"}
    finally:
        await close_all(nc)


async def test_multi_value_header_keeps_order(server, raw_conn):
    nc = await connect(server.url)
    try:
        sub = await nc.subscribe("hdr.multi")
        await sync(nc)
        raw_sub = raw_conn(server.port)
        raw_sub.send(b'CONNECT {"verbose":false,"headers":true}\r\nSUB hdr.multi 9\r\nPING\r\n')
        raw_sub.read_until(b"PONG\r\n")
        raw_sub.take()

        hdr = b"NATS/1.0\r\nX-Multi: first\r\nX-Other: o\r\nX-Multi: second\r\nX-Multi: third\r\n\r\n"
        payload = b"payload!"
        pub = raw_conn(server.port)
        pub.send(
            b'CONNECT {"verbose":false,"headers":true}\r\n'
            + b"HPUB hdr.multi %d %d\r\n" % (len(hdr), len(hdr) + len(payload))
            + hdr + payload + b"\r\nPING\r\n"
        )
        pub.read_until(b"PONG\r\n")
        expected = b"HMSG hdr.multi 9 %d %d\r\n" % (len(hdr), len(hdr) + len(payload)) + hdr + payload + b"\r\n"
        assert raw_sub.read_until(expected) == expected, "header block must be forwarded byte for byte"

        msg = await sub.next_msg(timeout=5)
        assert msg.data == payload
        assert msg.headers is not None and msg.headers.get("X-Other") == "o"
        assert msg.headers.get("X-Multi") in {"first", "second", "third"}
    finally:
        await close_all(nc)


async def test_no_responders(server):
    nc = await connect(server.url)
    try:
        with pytest.raises(NoRespondersError):
            await nc.request("nobody.listens.here", b"?", timeout=3)
        # and the connection is still usable afterwards
        sub = await nc.subscribe("after.nr")
        await nc.publish("after.nr", b"ok")
        assert (await sub.next_msg(timeout=5)).data == b"ok"
    finally:
        await close_all(nc)


async def test_request_timeout_when_responder_is_silent(server):
    nc = await connect(server.url)
    try:
        await nc.subscribe("silent.svc")  # subscribed, never answers
        await sync(nc)
        t0 = time.monotonic()
        with pytest.raises(nats.errors.TimeoutError):
            await nc.request("silent.svc", b"?", timeout=0.5)
        assert time.monotonic() - t0 < 5
    finally:
        await close_all(nc)


# --------------------------------------------------------------------------
# subscription lifecycle
# --------------------------------------------------------------------------


async def test_unsubscribe_with_limit(server):
    nc = await connect(server.url)
    pub = await connect(server.url)
    try:
        sub = await nc.subscribe("limit.x")
        await sub.unsubscribe(limit=3)
        await sync(nc)
        for i in range(6):
            await pub.publish("limit.x", str(i).encode())
        await sync(pub)
        got = [int((await sub.next_msg(timeout=5)).data) for _ in range(3)]
        assert got == [0, 1, 2]
        await sync(nc)
        with pytest.raises((nats.errors.TimeoutError, nats.errors.ConnectionClosedError, nats.errors.BadSubscriptionError)):
            await sub.next_msg(timeout=0.3)
    finally:
        await close_all(nc, pub)


async def test_subscribe_max_msgs(server):
    nc = await connect(server.url)
    pub = await connect(server.url)
    got: list[bytes] = []
    try:

        async def cb(msg):
            got.append(msg.data)

        await nc.subscribe("maxmsgs.x", cb=cb, max_msgs=2)
        await sync(nc)
        for i in range(5):
            await pub.publish("maxmsgs.x", str(i).encode())
        await sync(pub)
        await wait_for(lambda: len(got) >= 2, 10, "two deliveries")
        await sync(nc)
        await asyncio.sleep(0)
        assert got == [b"0", b"1"]
    finally:
        await close_all(nc, pub)


async def test_unsubscribe_stops_delivery(server):
    nc = await connect(server.url)
    pub = await connect(server.url)
    try:
        keep = await nc.subscribe("unsub.x")
        gone = await nc.subscribe("unsub.x")
        await gone.unsubscribe()
        await sync(nc)
        await pub.publish("unsub.x", b"1")
        await sync(pub)
        assert (await keep.next_msg(timeout=5)).data == b"1"
        await sync(nc)
        assert await drain_queue(gone) == []
    finally:
        await close_all(nc, pub)


async def test_no_echo(server):
    quiet = await connect(server.url, no_echo=True)
    other = await connect(server.url)
    try:
        s_quiet = await quiet.subscribe("echo.x")
        s_other = await other.subscribe("echo.x")
        await sync(quiet)
        await sync(other)
        await quiet.publish("echo.x", b"from-quiet")
        await sync(quiet)
        assert (await s_other.next_msg(timeout=5)).data == b"from-quiet"
        # A message published by the other connection still reaches the no-echo one,
        # and it arrives after anything the quiet connection might have echoed.
        await other.publish("echo.x", b"from-other")
        await sync(other)
        assert (await s_quiet.next_msg(timeout=5)).data == b"from-other"
        assert await drain_queue(s_quiet) == []
    finally:
        await close_all(quiet, other)


async def test_echo_default_on(server):
    nc = await connect(server.url)
    try:
        sub = await nc.subscribe("echo.on")
        await nc.publish("echo.on", b"me")
        assert (await sub.next_msg(timeout=5)).data == b"me"
    finally:
        await close_all(nc)


async def test_flush_and_rtt(server):
    nc = await connect(server.url)
    try:
        for _ in range(10):
            await sync(nc)
        rtt = await nc.rtt()
        assert 0 <= rtt < 1.0
    finally:
        await close_all(nc)


async def test_drain_delivers_pending_then_closes(server):
    nc = None
    pub = await connect(server.url)
    got: list[int] = []
    closed = asyncio.Event()
    try:

        async def cb(msg):
            await asyncio.sleep(0.001)
            got.append(int(msg.data))

        async def on_closed():
            closed.set()

        nc = await connect(server.url, closed_cb=on_closed)
        await nc.subscribe("drain.x", cb=cb)
        await sync(nc)
        for i in range(200):
            await pub.publish("drain.x", str(i).encode())
        await sync(pub)
        await sync(nc)  # everything published is now delivered to nc's socket/queue
        await nc.drain()
        await asyncio.wait_for(closed.wait(), 5)
        assert nc.is_closed
        assert got == list(range(200))
        # messages published after the drain don't matter; the publisher is still fine
        await pub.publish("drain.x", b"999")
        await sync(pub)
    finally:
        await close_all(nc, pub)


async def test_subscription_drain(server):
    nc = await connect(server.url)
    try:
        got = []

        async def cb(msg):
            got.append(msg.data)

        sub = await nc.subscribe("subdrain.x", cb=cb)
        for i in range(20):
            await nc.publish("subdrain.x", b"%d" % i)
        await sync(nc)
        await sub.drain()
        assert len(got) == 20
        await nc.publish("subdrain.x", b"late")
        await sync(nc)
        await asyncio.sleep(0)
        assert len(got) == 20
        assert nc.is_connected
    finally:
        await close_all(nc)


# --------------------------------------------------------------------------
# limits and INFO
# --------------------------------------------------------------------------


async def test_server_info_fields(server):
    nc = await connect(server.url)
    try:
        info = nc._server_info
        assert isinstance(info.get("server_id"), str) and info["server_id"]
        assert str(info.get("version", "")).startswith("2."), info.get("version")
        assert info.get("proto") == 1
        assert info.get("headers") is True
        assert info.get("max_payload") == 1048576
        assert nc.max_payload == 1048576
        assert info.get("port") == server.port
        assert not info.get("auth_required", False)
    finally:
        await close_all(nc)


async def test_max_payload_client_side(server):
    nc = await connect(server.url)
    try:
        sub = await nc.subscribe("big.x")
        payload = b"p" * nc.max_payload
        await nc.publish("big.x", payload)  # exactly max_payload is fine
        msg = await sub.next_msg(timeout=5)
        assert msg.data == payload
        with pytest.raises(MaxPayloadError):
            await nc.publish("big.x", payload + b"!")
        assert nc.is_connected
    finally:
        await close_all(nc)


def test_max_payload_server_side(server, raw_conn):
    c = raw_conn(server.port)
    assert c.info["max_payload"] == 1048576
    c.send(b'CONNECT {"verbose":false}\r\nPUB big.raw 1048577\r\n')
    assert c.wait_closed(5), f"server should close the connection; got {bytes(c.buf)!r}"
    assert bytes(c.buf) == b"-ERR 'Maximum Payload Violation'\r\n"


async def test_many_concurrent_connections_each_request(server):
    svc = await connect(server.url)
    try:

        async def handler(msg):
            await msg.respond(b"re:" + msg.data)

        await svc.subscribe("conc.svc", cb=handler)
        await sync(svc)

        async def one(i: int) -> bytes:
            nc = await connect(server.url, connect_timeout=10)
            try:
                return (await nc.request("conc.svc", b"%d" % i, timeout=10)).data
            finally:
                await nc.close()

        t0 = time.monotonic()
        replies = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(200))), 30)
        assert replies == [b"re:%d" % i for i in range(200)]
        assert time.monotonic() - t0 < 30
    finally:
        await close_all(svc)
