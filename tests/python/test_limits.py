"""Server limits configured through a config file: slow consumers, stale
connections, max_connections, max_subscriptions.

Expected error texts and close/keep-open behaviour are those of nats-server 2.15.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from helpers import close_all, connect, sync, wait_for

NV = b'CONNECT {"verbose":false}\r\n'


async def test_slow_consumer_is_disconnected(start_server, raw_conn):
    # nats-server refuses to start with max_payload (default 1 MiB) > max_pending.
    srv = start_server(config="max_pending: 65536\nmax_payload: 32768\n")

    # A subscriber that never reads, with a tiny receive window.
    slow = raw_conn(srv.port, rcvbuf=4096)
    slow.send(NV + b"SUB sc.data 1\r\nPING\r\n")
    slow.read_until(b"PONG\r\n")
    slow.take()

    good = await connect(srv.url)
    pub = await connect(srv.url)
    received = [0]
    try:

        async def cb(msg):
            received[0] += 1

        await good.subscribe("sc.data", cb=cb, pending_bytes_limit=256 * 1024 * 1024)
        await sync(good)

        payload = b"s" * 16384
        # 8 MiB in total, in small batches: the good subscriber is subject to the
        # same 64 KiB max_pending, so a batch must fit in its socket buffers.
        batches, per_batch = 256, 2  # 32 KiB per batch, half of max_pending
        worst_flush = 0.0
        t_start = time.monotonic()
        for b in range(batches):
            for _ in range(per_batch):
                await pub.publish("sc.data", payload)
            t0 = time.monotonic()
            await sync(pub)
            worst_flush = max(worst_flush, time.monotonic() - t0)
            # Keep the well-behaved subscriber caught up so only the raw one is slow.
            try:
                await wait_for(
                    lambda: received[0] >= (b + 1) * per_batch or not good.is_connected,
                    10,
                    "good subscriber to catch up",
                )
            except AssertionError as e:
                raise AssertionError(
                    f"{e}: received {received[0]} of {(b + 1) * per_batch}; "
                    f"client errors {good.errors_seen!r}\n--- server log ---\n{srv.log()[-3000:]}"
                ) from None
            assert good.is_connected, f"well-behaved subscriber was disconnected: {good.last_error!r}"
        total = batches * per_batch
        assert worst_flush < 2.0, f"publisher flush took {worst_flush:.2f}s: publisher was blocked by a slow consumer"
        assert time.monotonic() - t_start < 20
        await sync(good)
        assert received[0] == total, "the well-behaved subscriber must receive everything"
        assert good.is_connected and pub.is_connected

        # The slow subscriber's connection must have been closed: reading what
        # the kernel buffered ends in EOF, and it holds fewer than all messages.
        closed = await asyncio.to_thread(slow.wait_closed, 15)
        assert closed, "slow consumer connection was not closed by the server"
        got = bytes(slow.buf)
        assert got.count(b"MSG sc.data 1 16384\r\n") < total
    finally:
        await close_all(good, pub)


async def test_stale_connection(start_server, raw_conn):
    srv = start_server(config='ping_interval: "1s"\nping_max: 2\n')
    nc = await connect(srv.url)  # nats-py answers the server's PINGs
    try:
        c = raw_conn(srv.port)
        c.send(NV + b"PING\r\n")
        c.read_until(b"PONG\r\n")
        c.take()
        t0 = time.monotonic()
        # Off the event loop, so that nats-py keeps answering PINGs meanwhile.
        closed = await asyncio.to_thread(c.wait_closed, 8)
        assert closed, f"stale connection not closed; got {bytes(c.buf)!r}"
        elapsed = time.monotonic() - t0
        assert bytes(c.buf) == b"PING\r\nPING\r\n-ERR 'Stale Connection'\r\n"
        assert 1.5 < elapsed < 5.5, elapsed
        # The client that answers PINGs is still fine.
        assert nc.is_connected
        await sync(nc)
    finally:
        await close_all(nc)


async def test_max_connections(start_server, raw_conn):
    srv = start_server(config="max_connections: 2\n")
    first = raw_conn(srv.port)
    second = raw_conn(srv.port)
    for c in (first, second):
        c.send(NV + b"PING\r\n")
        assert c.read_until(b"PONG\r\n") == b"PONG\r\n"
        c.take()

    # The third connection still gets INFO, then the error, then is closed,
    # without the server waiting for CONNECT.
    third = raw_conn(srv.port)
    assert third.wait_closed(5), f"third connection not closed; got {bytes(third.buf)!r}"
    assert bytes(third.buf) == b"-ERR 'maximum connections exceeded'\r\n"

    # nats-py cannot connect either (the server may close before nats-py has
    # read the -ERR, so only the failure itself is asserted).
    with pytest.raises(Exception):
        nc = await connect(srv.url)
        await close_all(nc)

    # The existing ones are unaffected.
    second.send(b"PING\r\n")
    assert second.read_until(b"PONG\r\n") == b"PONG\r\n"
    second.take()

    # Freeing a slot lets a new client in (once the server has noticed the close).
    first.close()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while True:
        try:
            nc = await connect(srv.url)
            break
        except Exception:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.05)
    try:
        await sync(nc)
    finally:
        await close_all(nc)


def test_max_subscriptions(start_server, raw_conn):
    srv = start_server(config="max_subscriptions: 2\n")
    c = raw_conn(srv.port)
    c.send(NV + b"SUB ms.a 1\r\nSUB ms.b 2\r\nSUB ms.c 3\r\nPUB ms.a 1\r\nx\r\nPUB ms.c 1\r\ny\r\nPING\r\n")
    data = c.read_until(b"PONG\r\n")
    # Third SUB is refused with -ERR, the connection stays open, the first two
    # subscriptions work and the refused one delivers nothing.
    assert data == b"-ERR 'maximum subscriptions exceeded'\r\nMSG ms.a 1 1\r\nx\r\nPONG\r\n"
    c.take()
    got, closed = c.collect(0.2, 1)
    assert got == b"" and not closed

    # After an UNSUB there is room again.
    c.send(b"UNSUB 1\r\nSUB ms.d 4\r\nPUB ms.d 1\r\nz\r\nPUB ms.b 1\r\nw\r\nPING\r\n")
    assert c.read_until(b"PONG\r\n") == b"MSG ms.d 4 1\r\nz\r\nMSG ms.b 2 1\r\nw\r\nPONG\r\n"


def test_max_subscriptions_verbose(start_server, raw_conn):
    srv = start_server(config="max_subscriptions: 2\n")
    c = raw_conn(srv.port)
    c.send(b'CONNECT {"verbose":true}\r\nSUB mv.a 1\r\nSUB mv.b 2\r\nSUB mv.c 3\r\nPING\r\n')
    data = c.read_until(b"PONG\r\n")
    assert data == b"+OK\r\n+OK\r\n+OK\r\n-ERR 'maximum subscriptions exceeded'\r\nPONG\r\n"
    assert not c.closed


async def test_max_subscriptions_nats_py(start_server):
    srv = start_server(config="max_subscriptions: 2\n")
    nc = await connect(srv.url)
    try:
        await nc.subscribe("mp.a")
        await nc.subscribe("mp.b")
        await sync(nc)
        assert nc.is_connected
        await nc.subscribe("mp.c")
        # nats-py treats any -ERR as fatal and closes; it must see the server's text.
        await wait_for(lambda: nc.last_error is not None, 5, "the -ERR to reach the client")
        assert "maximum subscriptions exceeded" in str(nc.last_error)
    finally:
        await close_all(nc)
