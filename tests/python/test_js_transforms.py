"""Stream subject transforms and republish, compared with what nats-server does
(the expected values below were observed on nats-server 2.15)."""

from __future__ import annotations

import asyncio
import json

import pytest

from helpers import close_all, connect, sync


@pytest.fixture
async def nc(start_server, tmp_path):
    store = tmp_path / "js"
    store.mkdir()
    srv = start_server("-js", "-sd", str(store))
    conn = await connect(srv.url)
    try:
        yield conn
    finally:
        await close_all(conn)


async def api(nc, subject: str, body: dict) -> dict:
    return json.loads((await nc.request(subject, json.dumps(body).encode(), timeout=5)).data)


async def test_republish_and_subject_transform(nc):
    resp = await api(
        nc,
        "$JS.API.STREAM.CREATE.RP",
        {
            "name": "RP",
            "subjects": ["rp.>"],
            "republish": {"src": "rp.*", "dest": "out.$1"},
            "subject_transform": {"src": "rp.x.>", "dest": "rp.y.>"},
        },
    )
    assert "error" not in resp, resp
    got = []
    done = asyncio.Event()

    async def cb(m):
        got.append(m)
        done.set()

    await nc.subscribe("out.>", cb=cb)
    await sync(nc)
    js = nc.jetstream()
    assert (await js.publish("rp.a", b"hello")).seq == 1
    await asyncio.wait_for(done.wait(), 5)
    m = got[0]
    assert m.subject == "out.a" and m.data == b"hello"
    assert m.headers["Nats-Stream"] == "RP"
    assert m.headers["Nats-Subject"] == "rp.a"
    assert m.headers["Nats-Sequence"] == "1"
    assert m.headers["Nats-Last-Sequence"] == "0"
    assert m.headers["Nats-Time-Stamp"].endswith("Z")
    # The transformed message is stored under its new subject and, being two
    # tokens deep, does not match the republish source `rp.*`.
    assert (await js.publish("rp.x.z", b"tx")).seq == 2
    assert (await js.get_msg("RP", 2)).subject == "rp.y.z"
    await sync(nc)
    assert len(got) == 1


async def test_republish_cycle_is_refused(nc):
    resp = await api(
        nc,
        "$JS.API.STREAM.CREATE.LOOP",
        {"name": "LOOP", "subjects": ["lp.>"], "republish": {"src": ">", "dest": "lp.again.>"}},
    )
    assert resp["error"] == {
        "code": 500,
        "err_code": 10052,
        "description": "stream configuration for republish destination forms a cycle",
    }
