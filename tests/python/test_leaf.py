"""Leaf nodes with nats-py: the user's seed snippet
(``leafnodes { remotes = [{ url: "nats://main-cluster:7422" }] }``, with a
local hub on a free leaf node port instead of ``main-cluster``) joins an
edge server to a hub; messages and requests cross in both directions.
"""

from __future__ import annotations

import asyncio
import socket
import uuid

from helpers import close_all, connect, sync


def _free_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


async def _crosses(frm, to, timeout: float = 10.0) -> bool:
    subject = f"_PROBE.{uuid.uuid4().hex}"
    got = asyncio.Event()

    async def cb(_msg):
        got.set()

    await to.subscribe(subject, cb=cb)
    await sync(to)
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        await frm.publish(subject, b"")
        await frm.flush()
        try:
            await asyncio.wait_for(got.wait(), 0.05)
            return True
        except asyncio.TimeoutError:
            pass
    return False


async def test_seed_leafnode_remote_pubsub(start_server):
    leaf_port = _free_port()
    hub = start_server(config=f"leafnodes {{ port: {leaf_port} }}\n")
    # The seed's snippet, pointed at the local hub.
    edge = start_server(
        config=f'leafnodes {{\nremotes = [{{ url: "nats://127.0.0.1:{leaf_port}" }}]\n}}\n'
    )
    hc = await connect(hub.url)
    ec = await connect(edge.url)
    try:
        assert await _crosses(hc, ec), edge.log()
        assert await _crosses(ec, hc), hub.log()

        received: list[bytes] = []
        done = asyncio.Event()

        async def on_reading(msg):
            received.append(msg.data)
            if len(received) == 3:
                done.set()

        await hc.subscribe("sensors.>", cb=on_reading)
        await sync(hc)
        assert await _crosses(ec, hc)
        for i in range(3):
            await ec.publish(f"sensors.t{i}", f"{20 + i}".encode())
        await ec.flush()
        await asyncio.wait_for(done.wait(), 5)
        assert received == [b"20", b"21", b"22"]

        async def on_cmd(msg):
            await ec.publish(msg.reply, b"ack:" + msg.data)

        await ec.subscribe("edge.cmd", cb=on_cmd)
        await sync(ec)
        assert await _crosses(hc, ec)
        reply = await hc.request("edge.cmd", b"reboot", timeout=5)
        assert reply.data == b"ack:reboot"
    finally:
        await close_all(hc, ec)
