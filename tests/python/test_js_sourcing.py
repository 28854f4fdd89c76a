"""Mirrors and sources, run against rnats and (when present) the reference
nats-server with the same assertions: same sequences and gaps in a mirror,
the `Nats-Stream-Source` header of sourced messages, filters and
transforms, sources added/removed by update, stream info's `mirror` /
`sources` shape, a mirror waiting for its origin, and mirror direct gets."""

from __future__ import annotations

import asyncio
import base64
import re
import time

import nats
import nats.js.errors
import pytest

from conftest import reference_available, reference_bin
from helpers import api_req, close_all, connect

IMPLS = ["rnats", "reference"]
IDENT = re.compile(r"^[0-9A-Za-z]{8}$")


@pytest.fixture(params=IMPLS)
async def nc(request, start_server, tmp_path):
    binary = None
    if request.param == "reference":
        ok, why = reference_available()
        if not ok:
            print(f"reference run skipped: {why}")
            pytest.skip(f"reference nats-server not available: {why}")
        binary = reference_bin()
    store = tmp_path / "js"
    store.mkdir()
    srv = start_server("-js", "-sd", str(store), binary=binary)
    conn = await connect(srv.url)
    try:
        yield conn
    finally:
        await close_all(conn)


async def create(nc, cfg: dict) -> dict:
    resp = await api_req(nc, f"$JS.API.STREAM.CREATE.{cfg['name']}", cfg)
    assert "error" not in resp, resp
    return resp


async def info(nc, name: str) -> dict:
    resp = await api_req(nc, f"$JS.API.STREAM.INFO.{name}", {"deleted_details": True})
    assert "error" not in resp, resp
    return resp


async def wait_info(nc, name: str, pred, timeout: float = 10.0) -> dict:
    """Polls stream info until `pred(info)` holds."""
    deadline = time.monotonic() + timeout
    while True:
        i = await info(nc, name)
        if pred(i):
            return i
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} never reached the condition; last info: {i}")
        await asyncio.sleep(0.1)


async def get(nc, stream: str, seq: int) -> dict:
    return await api_req(nc, f"$JS.API.STREAM.MSG.GET.{stream}", {"seq": seq})


def hdrs(msg: dict) -> str:
    return base64.b64decode(msg.get("hdrs", "")).decode()


async def test_mirror_copies_sequences_gaps_and_refuses_publishes(nc):
    js = nc.jetstream()
    await create(nc, {"name": "O", "subjects": ["o.>"]})
    for i in range(5):
        await js.publish(f"o.{i % 2}", f"m{i}".encode(), headers={"X-A": str(i)})
    await api_req(nc, "$JS.API.STREAM.MSG.DELETE.O", {"seq": 2})
    resp = await create(nc, {"name": "M", "mirror": {"name": "O"}})
    assert "subjects" not in resp["config"]
    assert resp["mirror"]["name"] == "O"
    i = await wait_info(nc, "M", lambda i: i["state"]["last_seq"] == 5)
    st = i["state"]
    assert (st["messages"], st["first_seq"], st["num_deleted"], st["deleted"]) == (4, 1, 1, [2])
    assert set(i["mirror"]) == {"name", "lag", "active"}
    assert i["mirror"]["lag"] == 0 and i["mirror"]["active"] >= 0
    # Same sequence, subject, headers, data and time as the origin.
    for seq in (1, 3, 4, 5):
        assert (await get(nc, "M", seq))["message"] == (await get(nc, "O", seq))["message"]
    assert (await get(nc, "M", 2))["error"]["err_code"] == 10037
    # Later publishes follow.
    await js.publish("o.1", b"m5")
    await wait_info(nc, "M", lambda i: i["state"]["last_seq"] == 6)
    # A mirror has no subjects: a publish to its name reaches nobody.
    with pytest.raises(nats.errors.NoRespondersError):
        await nc.request("M", b"x", timeout=2)
    # Its mirror cannot change, nor can it take subjects.
    r = await api_req(nc, "$JS.API.STREAM.UPDATE.M", {"name": "M", "mirror": {"name": "O", "filter_subject": "o.1"}})
    assert r["error"] == {"code": 400, "err_code": 10055, "description": "stream mirror configuration can not be updated"}
    r = await api_req(nc, "$JS.API.STREAM.UPDATE.M", {"name": "M", "subjects": ["m.x"], "mirror": {"name": "O"}})
    assert r["error"]["err_code"] == 10034


async def test_mirror_filter_start_and_purged_origin(nc):
    js = nc.jetstream()
    await create(nc, {"name": "A", "subjects": ["a.>"]})
    for i in range(10):
        await js.publish(f"a.{i % 3}", b"x")
    await api_req(nc, "$JS.API.STREAM.PURGE.A", {"seq": 7})
    await create(nc, {"name": "MA", "mirror": {"name": "A"}})
    await create(nc, {"name": "MF", "mirror": {"name": "A", "filter_subject": "a.1"}})
    await create(nc, {"name": "MS", "mirror": {"name": "A", "opt_start_seq": 9}})
    ma = await wait_info(nc, "MA", lambda i: i["state"]["last_seq"] == 10)
    assert (ma["state"]["first_seq"], ma["state"]["messages"], ma["state"].get("num_deleted")) == (7, 4, None)
    mf = await wait_info(nc, "MF", lambda i: i["state"]["last_seq"] == 8)
    assert (mf["state"]["first_seq"], mf["state"]["messages"]) == (8, 1)
    assert mf["mirror"]["filter_subject"] == "a.1"
    ms = await wait_info(nc, "MS", lambda i: i["state"]["last_seq"] == 10)
    assert (ms["state"]["first_seq"], ms["state"]["messages"]) == (9, 2)
    # The origin is purged and grows again: no gap for the full mirror; the
    # filtered one skips what it did not take as deleted sequences.
    await api_req(nc, "$JS.API.STREAM.PURGE.A", {})
    await js.publish("a.0", b"y")
    await js.publish("a.1", b"y")
    ma = await wait_info(nc, "MA", lambda i: i["state"]["last_seq"] == 12)
    assert (ma["state"]["messages"], ma["state"].get("num_deleted")) == (6, None)
    mf = await wait_info(nc, "MF", lambda i: i["state"]["last_seq"] == 12)
    assert mf["state"]["deleted"] == [9, 10, 11]


async def test_sources_filter_transform_header_and_info(nc):
    js = nc.jetstream()
    await create(nc, {"name": "O", "subjects": ["o.>"]})
    await create(nc, {"name": "P", "subjects": ["p.>"]})
    for i in range(5):
        await js.publish(f"o.{i % 2}", f"m{i}".encode(), headers={"X-A": str(i), "Nats-Expected-Stream": "O"})
    await js.publish("p.x", b"px")
    resp = await create(
        nc,
        {
            "name": "S",
            "subjects": ["s.local"],
            "sources": [
                {"name": "O", "filter_subject": "o.1"},
                {"name": "P", "subject_transforms": [{"src": "p.*", "dest": "q.{{wildcard(1)}}"}]},
                {"name": "NOPE"},
            ],
        },
    )
    assert len(resp["sources"]) == 3
    i = await wait_info(nc, "S", lambda i: i["state"]["messages"] == 3)
    by_name = {s["name"]: s for s in i["sources"]}
    assert by_name["O"]["filter_subject"] == "o.1" and by_name["O"]["seq"] == 4 and by_name["O"]["lag"] == 0
    assert by_name["P"]["subject_transforms"] == [{"src": "p.*", "dest": "q.{{wildcard(1)}}"}]
    assert by_name["P"]["seq"] == 1
    missing = by_name["NOPE"]
    assert missing["active"] == -1 and "seq" not in missing
    assert missing["error"] == {"code": 404, "err_code": 10059, "description": "stream not found"}
    # The sourced copies: new sequences, the origin's headers minus the
    # publish-time expectations, then the source header.
    msgs = [(await get(nc, "S", seq))["message"] for seq in (1, 2, 3)]
    o_msgs = sorted((m for m in msgs if m["subject"].startswith("o.")), key=lambda m: m["seq"])
    assert [m["subject"] for m in o_msgs] == ["o.1", "o.1"]
    h = hdrs(o_msgs[0])
    assert h.startswith("NATS/1.0\r\nX-A: 1\r\nNats-Stream-Source: O 2 o.1 > o.1 "), h
    assert "Nats-Expected-Stream" not in h
    ident = h.split("\r\n")[2].split(" ")[-1]
    assert IDENT.match(ident), h
    q = [m for m in msgs if m["subject"] == "q.x"]
    assert len(q) == 1
    assert hdrs(q[0]).startswith("NATS/1.0\r\nNats-Stream-Source: P 1 p.* q.{{wildcard(1)}} p.x ")
    # The target still takes its own publishes; a client may not forge the header.
    assert (await js.publish("s.local", b"own")).stream == "S"
    with pytest.raises(nats.js.errors.BadRequestError):
        await js.publish("s.local", b"x", headers={"Nats-Stream-Source": "O 1 > > o.1"})


async def test_sources_added_and_removed_by_update(nc):
    js = nc.jetstream()
    await create(nc, {"name": "A", "subjects": ["a"]})
    await create(nc, {"name": "B", "subjects": ["b"]})
    await js.publish("a", b"a1")
    await js.publish("b", b"b1")
    await create(nc, {"name": "AGG", "sources": [{"name": "A"}]})
    await wait_info(nc, "AGG", lambda i: i["state"]["messages"] == 1)
    r = await api_req(nc, "$JS.API.STREAM.UPDATE.AGG", {"name": "AGG", "sources": [{"name": "A"}, {"name": "B"}]})
    assert "error" not in r, r
    await wait_info(nc, "AGG", lambda i: i["state"]["messages"] == 2)
    await js.publish("a", b"a2")
    await wait_info(nc, "AGG", lambda i: i["state"]["messages"] == 3)
    r = await api_req(nc, "$JS.API.STREAM.UPDATE.AGG", {"name": "AGG", "sources": [{"name": "B"}]})
    assert "error" not in r, r
    assert [s["name"] for s in r["sources"]] == ["B"]
    await js.publish("a", b"a3")
    await js.publish("b", b"b2")
    i = await wait_info(nc, "AGG", lambda i: i["state"]["messages"] == 4)
    await asyncio.sleep(0.5)
    i = await info(nc, "AGG")
    assert i["state"]["messages"] == 4, "a removed source kept copying"
    last = (await api_req(nc, "$JS.API.STREAM.MSG.GET.AGG", {"seq": 4}))["message"]
    assert base64.b64decode(last["data"]) == b"b2"


async def test_mirror_waits_for_its_origin(nc):
    await create(nc, {"name": "MX", "mirror": {"name": "X"}})
    i = await info(nc, "MX")
    assert i["mirror"]["active"] == -1
    i = await wait_info(nc, "MX", lambda i: "error" in i["mirror"])
    assert i["mirror"]["error"] == {"code": 404, "err_code": 10059, "description": "stream not found"}
    await create(nc, {"name": "X", "subjects": ["x"]})
    await nc.jetstream().publish("x", b"1")
    # nats-server retries with a back-off (about 12 s here); rnats starts at once.
    i = await wait_info(nc, "MX", lambda i: i["state"]["messages"] == 1, timeout=40)
    assert "error" not in i["mirror"]


async def test_mirror_direct_answers_for_the_origin(nc):
    js = nc.jetstream()
    await create(nc, {"name": "D", "subjects": ["d.>"], "allow_direct": True})
    await js.publish("d.1", b"x1")
    await js.publish("d.2", b"x2")
    r = await api_req(nc, "$JS.API.STREAM.CREATE.E", {"name": "E", "subjects": ["e"], "mirror_direct": True})
    assert r["error"] == {"code": 500, "err_code": 10052, "description": "stream has no mirror but does have mirror direct"}
    # Requested off, inherited from the origin's allow_direct.
    r = await create(nc, {"name": "DM", "mirror": {"name": "D"}, "allow_direct": True})
    assert r["config"]["mirror_direct"] is True
    await wait_info(nc, "DM", lambda i: i["state"]["last_seq"] == 2)
    # With the origin gone, its direct gets are still answered, by the mirror.
    await api_req(nc, "$JS.API.STREAM.DELETE.D")
    deadline = time.monotonic() + 5
    while True:
        try:
            m = await nc.request("$JS.API.DIRECT.GET.D.d.1", b"", timeout=1)
            break
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            assert time.monotonic() < deadline, "the mirror never served direct gets"
            await asyncio.sleep(0.2)
    assert m.data == b"x1"
    assert m.headers["Nats-Stream"] == "DM" and m.headers["Nats-Sequence"] == "1"
