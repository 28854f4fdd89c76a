"""Batched direct gets (`batch`, `next_by_subj`) and `multi_last`, as the
newer clients use them for KV: the messages with `Nats-Num-Pending` and
`Nats-Last-Sequence`, then a `204 EOB` status. Expected values observed on
nats-server 2.15."""

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
        js = conn.jetstream()
        await js.add_stream(name="DG", subjects=["dg.>"], allow_direct=True)
        for i, s in enumerate(["dg.a", "dg.b", "dg.a", "dg.c", "dg.b"]):
            await js.publish(s, f"m{i}".encode(), headers={"X": str(i)} if i == 2 else None)
        yield conn
    finally:
        await close_all(conn)


async def batch(nc, req: dict) -> list:
    """Sends a direct get and collects answers until the EOB/404 status."""
    out = []
    done = asyncio.Event()

    async def cb(m):
        h = dict(m.headers or {})
        h.pop("Nats-Time-Stamp", None)
        out.append((h, m.data))
        if h.get("Status") in ("204", "404"):
            done.set()

    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox, cb=cb)
    await sync(nc)
    await nc.publish("$JS.API.DIRECT.GET.DG", json.dumps(req).encode(), reply=inbox)
    await asyncio.wait_for(done.wait(), 5)
    await sub.unsubscribe()
    return out


def seqs(out):
    return [(h.get("Nats-Sequence"), h.get("Nats-Num-Pending"), h.get("Nats-Last-Sequence")) for h, _ in out[:-1]]


async def test_batch_from_sequence(nc):
    out = await batch(nc, {"seq": 2, "batch": 3})
    assert seqs(out) == [("2", "3", "0"), ("3", "2", "2"), ("4", "1", "3")]
    assert [d for _, d in out[:-1]] == [b"m1", b"m2", b"m3"]
    # The message's own headers come first, then the Nats-* ones.
    assert list(out[1][0])[:2] == ["X", "Nats-Stream"]
    eob = out[-1][0]
    assert (eob["Status"], eob["Nats-Num-Pending"], eob["Nats-Last-Sequence"]) == ("204", "1", "4")


async def test_batch_next_by_subject(nc):
    out = await batch(nc, {"seq": 1, "batch": 10, "next_by_subj": "dg.a"})
    assert seqs(out) == [("1", "1", "0"), ("3", "0", "1")]
    assert out[-1][0]["Nats-Last-Sequence"] == "3"


async def test_multi_last(nc):
    out = await batch(nc, {"multi_last": ["dg.>"]})
    assert seqs(out) == [("3", "2", "0"), ("4", "1", "3"), ("5", "0", "4")]
    eob = out[-1][0]
    assert (eob["Status"], eob["Nats-Last-Sequence"], eob["Nats-UpTo-Sequence"]) == ("204", "5", "5")
