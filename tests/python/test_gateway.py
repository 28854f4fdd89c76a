"""Gateways (super-clusters) with nats-py: request-reply across a gateway.

Two one-server clusters, ``A`` (rnats) and ``B`` (rnats, or the reference
nats-server when available), each with a ``gateway {}`` listing both. A
requester on ``A`` asks a responder on ``B`` (and the other way round) with
``nc.request``: the reply comes back across the gateway (``_GR_.`` routed
replies while the requester's inbox is new). The mixed case is skipped, with
the reason, when the reference binary is missing.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from conftest import ServerProcess, reference_available, reference_bin, server_bin
from helpers import close_all, connect, sync
from test_cluster import _free_ports

READY = 15.0


def _start(binary, name: str, port: int, gw_port: int, gw_a: int, gw_b: int, tmp_path) -> ServerProcess:
    conf = tmp_path / f"{name}.conf"
    conf.write_text(
        f'server_name: "{name}1"\n'
        "gateway {\n"
        f'  name: "{name}"\n'
        f'  listen: "127.0.0.1:{gw_port}"\n'
        "  gateways: [\n"
        f'    {{ name: "A", url: "nats://127.0.0.1:{gw_a}" }}\n'
        f'    {{ name: "B", url: "nats://127.0.0.1:{gw_b}" }}\n'
        "  ]\n"
        "}\n"
    )
    srv = ServerProcess(binary, ["-c", str(conf)], port)
    srv.start()
    if not srv.ready:
        srv.stop()
        pytest.fail(f"{name} did not start:\n{srv.log()}", pytrace=False)
    return srv


async def _reachable(src, dst) -> None:
    """Publishes to a fresh subject subscribed on ``dst`` until it arrives."""
    subject = f"probe.{uuid.uuid4().hex[:12]}"
    got = asyncio.Event()

    async def cb(_msg):
        got.set()

    sub = await dst.subscribe(subject, cb=cb)
    await sync(dst)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY
    while not got.is_set():
        if loop.time() > deadline:
            pytest.fail(f"{subject} not delivered across the gateway within {READY}s", pytrace=False)
        await src.publish(subject, b"")
        await src.flush()
        try:
            await asyncio.wait_for(got.wait(), 0.1)
        except asyncio.TimeoutError:
            pass
    await sub.unsubscribe()


async def _request_reply(b_binary, tmp_path) -> None:
    ports = _free_ports(4)
    a = _start(server_bin(), "A", ports[0], ports[2], ports[2], ports[3], tmp_path)
    b = _start(b_binary, "B", ports[1], ports[3], ports[2], ports[3], tmp_path)
    na = nb = None
    try:
        na = await connect(a.url)
        nb = await connect(b.url)
        await _reachable(na, nb)
        await _reachable(nb, na)
        for requester, responder, tag in ((na, nb, "a_to_b"), (nb, na, "b_to_a")):
            async def handler(msg):
                await msg.respond(b"re: " + msg.data)

            sub = await responder.subscribe(f"svc.{tag}", cb=handler)
            await sync(responder)
            await _reachable(requester, responder)
            for i in range(3):
                resp = await requester.request(f"svc.{tag}", f"q{i}".encode(), timeout=5)
                assert resp.data == f"re: q{i}".encode(), tag
            await sub.unsubscribe()
    except BaseException:
        print(f"==== A ====\n{a.log()}\n==== B ====\n{b.log()}")
        raise
    finally:
        await close_all(na, nb)
        a.stop()
        b.stop()


@pytest.mark.asyncio
async def test_request_reply_across_rnats_gateway(tmp_path):
    await _request_reply(server_bin(), tmp_path)


@pytest.mark.asyncio
async def test_request_reply_across_gateway_to_nats_server(tmp_path):
    ok, why = reference_available()
    if not ok:
        pytest.skip(f"reference nats-server unavailable: {why}")
    await _request_reply(reference_bin(), tmp_path)
