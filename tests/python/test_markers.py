"""Subject delete markers (ADR-43) and KV limit markers through nats-py.

Runs against rnats and, when present, the reference nats-server v2.15.0
(skipped with the reason otherwise): both must give the same answers.

- ``subject_delete_marker_ttl`` validation and the flags it turns on;
- ``max_age`` and ``Nats-TTL`` expiry of a subject's last message leave a
  marker (``Nats-Marker-Reason: MaxAge``, ``Nats-TTL: <ttl>``,
  ``Nats-Rollup: sub``) that itself expires; ``Nats-TTL: never`` outlives
  ``max_age``; a TTL below the marker TTL is raised to it; purges and
  deletes leave no marker;
- a KV bucket with ``limit_marker_ttl``: ``create(msg_ttl=...)`` and
  ``purge(msg_ttl=...)``, with watchers seeing the expiry as a purge.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time

import pytest
from nats.js.api import KeyValueConfig

from conftest import reference_available, reference_bin
from helpers import close_all, connect

IMPLS = ["rnats", "reference"]
NS = 1_000_000_000
MARKER_2S = "NATS/1.0\r\nNats-Marker-Reason: MaxAge\r\nNats-TTL: 2s\r\nNats-Rollup: sub\r\n\r\n"


@pytest.fixture(params=IMPLS)
async def nc(request, start_server, tmp_path):
    """A connection to a JetStream server: rnats, or the reference nats-server."""
    binary = None
    if request.param == "reference":
        ok, why = reference_available()
        if not ok:
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


async def api(nc, subject: str, body=None) -> dict:
    data = b"" if body is None else json.dumps(body).encode()
    return json.loads((await nc.request(subject, data, timeout=5)).data)


async def contents(nc, stream: str) -> list[tuple[int, str, str, bytes]]:
    """Every stored message as (seq, subject, raw header block, payload)."""
    out = []
    seq = 1
    while True:
        r = await api(nc, f"$JS.API.STREAM.MSG.GET.{stream}", {"seq": seq, "next_by_subj": ">"})
        if "error" in r:
            assert r["error"]["err_code"] == 10037, r
            return out
        m = r["message"]
        hdrs = base64.b64decode(m["hdrs"]).decode() if m.get("hdrs") else ""
        out.append((m["seq"], m["subject"], hdrs, base64.b64decode(m.get("data") or "")))
        seq = m["seq"] + 1


async def wait_for(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        v = await pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def test_marker_ttl_validation(nc):
    r = await api(nc, "$JS.API.STREAM.CREATE.V1", {"name": "V1", "subject_delete_marker_ttl": NS // 2})
    assert r["error"] == {
        "code": 500,
        "err_code": 10052,
        "description": "subject delete marker TTL must be at least 1 second",
    }
    r = await api(nc, "$JS.API.STREAM.CREATE.V2", {"name": "V2", "subject_delete_marker_ttl": -1})
    assert r["error"]["description"] == "subject delete marker TTL must not be negative"
    cfg = {"name": "V3", "subject_delete_marker_ttl": 2 * NS, "allow_msg_ttl": False, "deny_purge": True}
    r = await api(nc, "$JS.API.STREAM.CREATE.V3", cfg)
    got = {k: r["config"][k] for k in ("allow_msg_ttl", "allow_rollup_hdrs", "deny_purge", "subject_delete_marker_ttl")}
    assert got == {"allow_msg_ttl": True, "allow_rollup_hdrs": True, "deny_purge": False, "subject_delete_marker_ttl": 2 * NS}
    r = await api(
        nc,
        "$JS.API.STREAM.CREATE.V4",
        {"name": "V4", "mirror": {"name": "V3"}, "subject_delete_marker_ttl": 2 * NS},
    )
    assert r["error"]["description"] == "subject delete markers forbidden on mirrors"


@pytest.mark.parametrize("storage", ["file", "memory"])
async def test_max_age_leaves_markers_that_expire(nc, storage):
    cfg = {"name": "S", "subjects": ["s.>"], "max_age": NS, "subject_delete_marker_ttl": 2 * NS, "storage": storage}
    assert "error" not in await api(nc, "$JS.API.STREAM.CREATE.S", cfg)
    js = nc.jetstream()
    await js.publish("s.a", b"a1")
    await js.publish("s.a", b"a2")
    await js.publish("s.b", b"b1")
    await js.publish("s.n", b"kept", headers={"Nats-TTL": "never"})
    sub = await js.subscribe("s.>", ordered_consumer=True)
    for want in (b"a1", b"a2", b"b1", b"kept"):
        assert (await sub.next_msg(timeout=5)).data == want

    async def markers_written():
        c = await contents(nc, "S")
        return c if len(c) == 3 and c[-1][0] == 6 else None

    c = await wait_for(markers_written, 5, "the max_age markers")
    # a1 expires plainly; a2 and b1 were their subjects' last: markers replace them.
    assert c == [
        (4, "s.n", "NATS/1.0\r\nNats-TTL: never\r\n\r\n", b"kept"),
        (5, "s.a", MARKER_2S, b""),
        (6, "s.b", MARKER_2S, b""),
    ]
    m = await sub.next_msg(timeout=5)
    assert (m.subject, m.headers, m.data) == (
        "s.a",
        {"Nats-Marker-Reason": "MaxAge", "Nats-TTL": "2s", "Nats-Rollup": "sub"},
        b"",
    )
    assert (await sub.next_msg(timeout=5)).subject == "s.b"

    # The markers go after their own TTL, leaving no markers behind.
    async def markers_gone():
        c = await contents(nc, "S")
        return c if len(c) == 1 else None

    c = await wait_for(markers_gone, 6, "the markers to expire")
    assert [x[0] for x in c] == [4]
    st = (await api(nc, "$JS.API.STREAM.INFO.S"))["state"]
    assert (st["messages"], st["last_seq"], st["num_subjects"]) == (1, 6, 1)


async def test_msg_ttl_raised_to_marker_ttl_and_marked(nc):
    cfg = {"name": "T", "subjects": ["t.>"], "subject_delete_marker_ttl": 3 * NS, "storage": "memory"}
    assert "error" not in await api(nc, "$JS.API.STREAM.CREATE.T", cfg)
    js = nc.jetstream()
    await js.publish("t.a", b"x", headers={"A": "1", "Nats-TTL": "1s", "B": "2"})
    await js.publish("t.b", b"y", headers={"Nats-TTL": "90s"})
    c = await contents(nc, "T")
    assert c == [
        (1, "t.a", "NATS/1.0\r\nA: 1\r\nB: 2\r\nNats-TTL: 3\r\n\r\n", b"x"),
        (2, "t.b", "NATS/1.0\r\nNats-TTL: 90s\r\n\r\n", b"y"),
    ]
    t0 = time.monotonic()

    async def marked():
        c = await contents(nc, "T")
        return c if c and c[0][0] == 2 else None

    c = await wait_for(marked, 6, "t.a to expire")
    assert time.monotonic() - t0 > 1.5, "expired at its own 1s TTL, not the raised 3s"
    assert c[1] == (3, "t.a", MARKER_2S.replace("2s", "3s"), b"")


async def test_purge_and_delete_leave_no_marker(nc):
    cfg = {"name": "P", "subjects": ["p.>"], "subject_delete_marker_ttl": 2 * NS, "storage": "memory"}
    assert "error" not in await api(nc, "$JS.API.STREAM.CREATE.P", cfg)
    js = nc.jetstream()
    await js.publish("p.a", b"1")
    ack = await js.publish("p.b", b"2")
    assert (await api(nc, "$JS.API.STREAM.PURGE.P", {"filter": "p.a"}))["purged"] == 1
    assert (await api(nc, "$JS.API.STREAM.MSG.DELETE.P", {"seq": ack.seq}))["success"] is True
    st = (await api(nc, "$JS.API.STREAM.INFO.P"))["state"]
    assert (st["messages"], st["last_seq"]) == (0, 2)


async def test_kv_limit_markers_per_key_ttl(nc):
    js = nc.jetstream()
    kv = await js.create_key_value(KeyValueConfig(bucket="LM", limit_marker_ttl=2))
    info = (await api(nc, "$JS.API.STREAM.INFO.KV_LM"))["config"]
    assert (info["subject_delete_marker_ttl"], info["allow_msg_ttl"]) == (2 * NS, True)
    w = await kv.watchall()
    assert await asyncio.wait_for(w._updates.get(), 5) is None

    assert await kv.create("k", b"v", msg_ttl=1) == 1
    e = await asyncio.wait_for(w._updates.get(), 5)
    assert (e.key, e.value, e.operation) == ("k", b"v", None)
    # The key's TTL ends: a MaxAge marker arrives, seen as a purge.
    e = await asyncio.wait_for(w._updates.get(), 5)
    assert (e.key, e.revision, e.operation) == ("k", 2, "PURGE")
    # (nats-py's get() reads only KV-Operation, so look at the stored marker.)
    assert await contents(nc, "KV_LM") == [(2, "$KV.LM.k", MARKER_2S, b"")]
    # The marker is the key's last revision (nats-py's create() does not
    # treat it as a deletion, async-nats' does: see Rust js_markers.rs).
    assert await kv.update("k", b"again", last=2) == 3
    e = await asyncio.wait_for(w._updates.get(), 5)
    assert (e.key, e.value, e.revision) == ("k", b"again", 3)

    # A purge with a TTL: the purge marker goes after it, leaving nothing.
    await kv.purge("p", msg_ttl=1)
    e = await asyncio.wait_for(w._updates.get(), 5)
    assert (e.key, e.operation) == ("p", "PURGE")

    async def only_k_left():
        c = await contents(nc, "KV_LM")
        return c if [x[1] for x in c] == ["$KV.LM.k"] else None

    c = await wait_for(only_k_left, 6, "the purge marker to expire")
    assert c[0][0] == 3
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(w._updates.get(), 0.5)
