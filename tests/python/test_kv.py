"""JetStream Key-Value buckets through nats-py (``js.create_key_value``).

Every value, header, error code and text asserted here was observed from the
reference nats-server v2.15.0 (``-js -sd <dir>``, single server); the server
under test must answer the same.  Each test gets its own store directory.

A KV bucket ``B`` is the stream ``KV_B`` on ``$KV.B.>``; a put is a publish
to ``$KV.B.<key>``, create/update are publishes with
``Nats-Expected-Last-Subject-Sequence``, delete/purge are empty publishes with
``KV-Operation: DEL`` / ``KV-Operation: PURGE`` (+ ``Nats-Rollup: sub``), and
watch/keys/history are ordered push consumers.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Optional

import pytest
from nats.js.errors import (
    APIError,
    BucketNotFoundError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NoKeysError,
    NotFoundError,
)

from helpers import close_all, connect, sync

NS = 1_000_000_000
UPDATE_TIMEOUT = 5.0

# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


@pytest.fixture
def js_server(start_server, tmp_path):
    """A server under test with JetStream on and its own store directory."""
    store = tmp_path / "jsstore"
    store.mkdir()
    srv = start_server("-js", "-sd", str(store))
    srv.store_dir = store  # type: ignore[attr-defined]
    return srv


@pytest.fixture
async def nc(js_server):
    conn = await connect(js_server.url)
    try:
        yield conn
    finally:
        await close_all(conn)


async def api_req(nc, subject: str, body: Any = None, timeout: float = 5.0) -> dict:
    data = b"" if body is None else json.dumps(body).encode()
    msg = await nc.request(subject, data, timeout=timeout)
    return json.loads(msg.data)


async def stream_info(nc, name: str) -> dict:
    resp = await api_req(nc, f"$JS.API.STREAM.INFO.{name}")
    assert "error" not in resp, resp
    return resp


async def next_update(watcher, what: str = "watch update"):
    """The next item of a KV watcher (an Entry, or None for the 'caught up' marker)."""
    try:
        return await asyncio.wait_for(watcher._updates.get(), UPDATE_TIMEOUT)
    except asyncio.TimeoutError:
        raise AssertionError(f"no {what} within {UPDATE_TIMEOUT}s") from None


async def drain_until_marker(watcher, what: str) -> list:
    """Collect entries up to (not including) the initial None marker."""
    out = []
    while True:
        e = await next_update(watcher, what)
        if e is None:
            return out
        out.append(e)


async def no_more_updates(watcher, quiet: float = 0.3) -> None:
    try:
        e = await asyncio.wait_for(watcher._updates.get(), quiet)
    except asyncio.TimeoutError:
        return
    raise AssertionError(f"unexpected extra watch update {e}")


def hdr(msg, name: str) -> Optional[str]:
    return (msg.headers or {}).get(name)


async def raw_last(nc, bucket: str, key: str):
    """Direct get of the last message for a key, as a raw request."""
    return await nc.request(f"$JS.API.DIRECT.GET.KV_{bucket}.$KV.{bucket}.{key}", b"", timeout=5)


async def wait_until(pred, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = await pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


# --------------------------------------------------------------------------
# bucket configuration
# --------------------------------------------------------------------------


async def test_bucket_config_in_stream_info(nc):
    js = nc.jetstream()
    kv = await js.create_key_value(
        bucket="CFG", history=64, ttl=60, max_value_size=1024, max_bytes=1 << 20, direct=True
    )
    cfg = (await stream_info(nc, "KV_CFG"))["config"]
    assert cfg["name"] == "KV_CFG"
    assert cfg["subjects"] == ["$KV.CFG.>"]
    assert cfg["max_msgs_per_subject"] == 64
    assert cfg["max_age"] == 60 * NS
    assert cfg["duplicate_window"] == 60 * NS  # min(ttl, 2m)
    assert cfg["max_msg_size"] == 1024
    assert cfg["max_bytes"] == 1 << 20
    assert cfg["max_msgs"] == -1
    assert cfg["max_consumers"] == -1
    assert cfg["discard"] == "new"
    assert cfg["storage"] == "file"
    assert cfg["allow_rollup_hdrs"] is True
    assert cfg["deny_delete"] is True
    assert cfg["deny_purge"] is False
    assert cfg["allow_direct"] is True
    assert cfg["allow_msg_ttl"] is True

    st = await kv.status()
    assert st.bucket == "CFG"
    assert st.history == 64
    assert st.ttl == 60
    assert st.values == 0

    # nats-py's defaults: history 1, no ttl, file storage, direct off.
    await js.create_key_value(bucket="DEF")
    d = (await stream_info(nc, "KV_DEF"))["config"]
    assert d["max_msgs_per_subject"] == 1
    assert d["max_age"] == 0
    assert d["max_bytes"] == -1
    assert d["max_msg_size"] == -1
    assert d["duplicate_window"] == 120 * NS
    assert d["allow_direct"] is False

    # Binding to an existing bucket reads its config back.
    again = await js.key_value("CFG")
    assert again._direct is True
    with pytest.raises(BucketNotFoundError):
        await js.key_value("NOPE")


async def test_history_limit_keeps_last_n(nc):
    js = nc.jetstream()
    kv = await js.create_key_value(bucket="H", history=3)
    for i in range(1, 6):
        assert await kv.put("k", f"v{i}".encode()) == i
    hist = await kv.history("k")
    assert [(e.revision, e.value) for e in hist] == [(3, b"v3"), (4, b"v4"), (5, b"v5")]
    st = (await stream_info(nc, "KV_H"))["state"]
    assert (st["messages"], st["first_seq"], st["last_seq"]) == (3, 3, 5)
    # An old revision is gone.
    with pytest.raises(KeyNotFoundError):
        await kv.get("k", revision=1)


# --------------------------------------------------------------------------
# put / get / create / update
# --------------------------------------------------------------------------


@pytest.mark.parametrize("direct", [False, True])
async def test_put_get_revisions(nc, direct):
    js = nc.jetstream()
    kv = await js.create_key_value(bucket="PG", history=10, direct=direct)
    assert await kv.put("a", b"1") == 1
    assert await kv.put("b", b"2") == 2
    assert await kv.put("a", b"3") == 3
    assert await kv.put("dir/x.y=z_-", b"odd key") == 4

    e = await kv.get("a")
    assert (e.bucket, e.key, e.value, e.revision) == ("PG", "a", b"3", 3)
    assert (await kv.get("b")).value == b"2"
    assert (await kv.get("dir/x.y=z_-")).value == b"odd key"
    old = await kv.get("a", revision=1)
    assert (old.value, old.revision) == (b"1", 1)
    # A revision that belongs to another key is not this key's.
    with pytest.raises(KeyNotFoundError):
        await kv.get("a", revision=2)
    with pytest.raises(KeyNotFoundError):
        await kv.get("missing")
    # Empty value is a value.
    r = await kv.put("empty", b"")
    e = await kv.get("empty")
    assert (e.value or b"", e.revision) == (b"", r)  # nats-py gives None via MSG.GET
    assert (await kv.status()).values == 5


async def test_create_fails_if_key_exists(nc):
    js = nc.jetstream()
    kv = await js.create_key_value(bucket="CR", history=5)
    assert await kv.create("k", b"first") == 1
    with pytest.raises(KeyWrongLastSequenceError) as ei:
        await kv.create("k", b"second")
    assert ei.value.description == "wrong last sequence: 1"
    assert (await kv.get("k")).value == b"first"

    # The same as a raw publish: code 400 / 10071.
    msg = await nc.request("$KV.CR.k", b"raw", headers={"Nats-Expected-Last-Subject-Sequence": "0"})
    assert json.loads(msg.data) == {
        "error": {"code": 400, "err_code": 10071, "description": "wrong last sequence: 1"},
        "stream": "KV_CR",
        "seq": 0,
    }

    # Create on a deleted key succeeds (the client retries with the marker's revision).
    await kv.delete("k")  # revision 2
    assert await kv.create("k", b"again") == 3
    assert (await kv.get("k")).value == b"again"
    # ... and on a purged key.
    await kv.purge("k")  # revision 4
    assert await kv.create("k", b"after purge") == 5


async def test_update_compare_and_set(nc):
    js = nc.jetstream()
    kv = await js.create_key_value(bucket="UP", history=5)
    r1 = await kv.put("k", b"v1")
    await kv.put("other", b"x")  # stream sequence moves on, the key's does not
    r2 = await kv.update("k", b"v2", last=r1)
    assert r2 == 3
    with pytest.raises(KeyWrongLastSequenceError) as ei:
        await kv.update("k", b"stale", last=r1)
    assert ei.value.description == "wrong last sequence: 3"
    with pytest.raises(KeyWrongLastSequenceError) as ei:
        await kv.update("k", b"future", last=99)
    assert ei.value.description == "wrong last sequence: 3"
    # Update of a key that never existed with a non-zero revision.
    with pytest.raises(KeyWrongLastSequenceError) as ei:
        await kv.update("nokey", b"x", last=1)
    assert ei.value.description == "wrong last sequence: 0"
    e = await kv.get("k")
    assert (e.value, e.revision) == (b"v2", 3)
    assert (await kv.status()).values == 3


async def test_concurrent_updates_exactly_one_wins(js_server, nc):
    js = nc.jetstream()
    kv = await js.create_key_value(bucket="CAS", history=10)
    base = await kv.put("counter", b"0")
    n = 8
    conns = [await connect(js_server.url) for _ in range(n)]
    try:
        kvs = [await c.jetstream().key_value("CAS") for c in conns]
        start = asyncio.Event()

        async def one(i: int):
            await start.wait()
            return await kvs[i].update("counter", f"writer-{i}".encode(), last=base)

        tasks = [asyncio.create_task(one(i)) for i in range(n)]
        await asyncio.sleep(0.05)
        start.set()
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
    finally:
        await close_all(*conns)
    wins = [(i, r) for i, r in enumerate(results) if isinstance(r, int)]
    losses = [r for r in results if not isinstance(r, int)]
    assert len(wins) == 1, results
    assert all(isinstance(r, KeyWrongLastSequenceError) for r in losses), losses
    winner, rev = wins[0]
    assert rev == base + 1
    assert all(r.description == f"wrong last sequence: {rev}" for r in losses), losses
    e = await kv.get("counter")
    assert (e.value, e.revision) == (f"writer-{winner}".encode(), rev)
    assert (await kv.status()).values == 2


# --------------------------------------------------------------------------
# delete / purge
# --------------------------------------------------------------------------


async def test_delete_and_purge_markers(nc):
    js = nc.jetstream()
    kv = await js.create_key_value(bucket="DP", history=10, direct=True)
    await kv.put("k", b"v1")
    await kv.put("k", b"v2")
    await kv.put("keep", b"x")
    assert await kv.delete("k") is True  # revision 4

    with pytest.raises(KeyNotFoundError) as ei:
        await kv.get("k")
    assert ei.value.op == "DEL"
    assert ei.value.entry.revision == 4

    m = await raw_last(nc, "DP", "k")
    assert hdr(m, "KV-Operation") == "DEL", m.headers
    assert hdr(m, "Nats-Sequence") == "4"
    assert m.data == b""

    hist = await kv.history("k")
    assert [(e.revision, e.value, e.operation) for e in hist] == [
        (1, b"v1", None),
        (2, b"v2", None),
        (4, b"", "DEL"),
    ]

    # Purge rolls the key up to the single marker.
    assert await kv.purge("k") is True  # revision 5
    m = await raw_last(nc, "DP", "k")
    assert hdr(m, "KV-Operation") == "PURGE", m.headers
    assert hdr(m, "Nats-Rollup") == "sub", m.headers
    assert hdr(m, "Nats-Sequence") == "5"
    hist = await kv.history("k")
    assert [(e.revision, e.operation) for e in hist] == [(5, "PURGE")]
    with pytest.raises(KeyNotFoundError) as ei:
        await kv.get("k")
    assert ei.value.op == "PURGE"
    with pytest.raises(KeyNotFoundError):
        await kv.get("k", revision=2)

    st = (await stream_info(nc, "KV_DP"))["state"]
    assert st["messages"] == 2  # keep + the purge marker
    assert st["last_seq"] == 5
    assert (await kv.get("keep")).value == b"x"

    # Delete with an expected revision.
    r = await kv.put("cas", b"1")
    with pytest.raises(APIError) as ei:
        await kv.delete("cas", last=r - 1)
    assert (ei.value.code, ei.value.err_code, ei.value.description) == (
        400,
        10071,
        f"wrong last sequence: {r}",
    )
    assert await kv.delete("cas", last=r) is True

    # deny_delete: deleting a KV message by sequence is refused.
    resp = await api_req(nc, "$JS.API.STREAM.MSG.DELETE.KV_DP", {"seq": 3})
    assert resp["error"] == {
        "code": 500,
        "err_code": 10057,
        "description": "message delete not permitted",
    }, resp


# --------------------------------------------------------------------------
# keys / watch
# --------------------------------------------------------------------------


async def test_keys_listing(nc):
    js = nc.jetstream()
    kv = await js.create_key_value(bucket="KEYS", history=5)
    with pytest.raises(NoKeysError):
        await kv.keys()
    for k in ["a.1", "a.2", "b.1", "c"]:
        await kv.put(k, b"v")
    await kv.put("a.1", b"v2")
    await kv.delete("b.1")
    await kv.put("gone", b"x")
    await kv.purge("gone")
    assert sorted(await kv.keys()) == ["a.1", "a.2", "c"]
    assert sorted(await kv.keys(filters=["a."])) == ["a.1", "a.2"]

    # Server-side filtering: a watch on a wildcard key.
    w = await kv.watch("a.*")
    got = await drain_until_marker(w, "a.* initial values")
    await w.stop()
    assert [(e.key, e.value) for e in got] == [("a.2", b"v"), ("a.1", b"v2")]


async def test_watchall_receives_every_update_in_order(nc):
    js = nc.jetstream()
    kv = await js.create_key_value(bucket="W", history=10)
    w = await kv.watchall()
    assert await next_update(w, "initial marker") is None

    ops = [
        ("put", "a", b"1"),
        ("put", "b", b"2"),
        ("put", "a", b"3"),
        ("delete", "a", None),
        ("put", "c.d", b"4"),
        ("purge", "b", None),
    ]
    for op, key, val in ops:
        if op == "put":
            await kv.put(key, val)
        elif op == "delete":
            await kv.delete(key)
        else:
            await kv.purge(key)
    seen = [await next_update(w, f"update {i + 1}") for i in range(len(ops))]
    assert [(e.key, e.revision, e.value, e.operation) for e in seen] == [
        ("a", 1, b"1", None),
        ("b", 2, b"2", None),
        ("a", 3, b"3", None),
        ("a", 4, b"", "DEL"),
        ("c.d", 5, b"4", None),
        ("b", 6, b"", "PURGE"),
    ]
    assert [e.delta for e in seen] == [0] * len(ops)
    await no_more_updates(w)
    await w.stop()


async def test_watch_initial_values_history_and_ignore_deletes(nc):
    js = nc.jetstream()
    kv = await js.create_key_value(bucket="WH", history=10)
    await kv.put("k1", b"a")  # 1
    await kv.put("k2", b"b")  # 2
    await kv.put("k1", b"c")  # 3
    await kv.put("k3", b"d")  # 4
    await kv.delete("k3")  # 5

    # Latest value per key, in stream order, then the marker.
    w = await kv.watchall()
    got = await drain_until_marker(w, "latest values")
    assert [(e.key, e.revision, e.operation) for e in got] == [
        ("k2", 2, None),
        ("k1", 3, None),
        ("k3", 5, "DEL"),
    ]
    assert [e.delta for e in got] == [2, 1, 0]
    # Live updates keep coming after the marker.
    await kv.put("k2", b"live")
    e = await next_update(w, "live update")
    assert (e.key, e.revision, e.value) == ("k2", 6, b"live")
    await w.stop()

    w = await kv.watchall(include_history=True)
    got = await drain_until_marker(w, "full history")
    assert [e.revision for e in got] == [1, 2, 3, 4, 5, 6]
    await w.stop()

    w = await kv.watchall(ignore_deletes=True)
    got = await drain_until_marker(w, "latest values without deletes")
    assert [(e.key, e.revision) for e in got] == [("k1", 3), ("k2", 6)]
    await kv.delete("k1")  # 7: ignored
    await kv.put("k4", b"e")  # 8
    e = await next_update(w, "put after ignored delete")
    assert (e.key, e.revision) == ("k4", 8)
    await w.stop()

    # Watch of one key only.
    w = await kv.watch("k2", include_history=True)
    got = await drain_until_marker(w, "k2 history")
    assert [(e.revision, e.value) for e in got] == [(2, b"b"), (6, b"live")]
    await kv.put("k1", b"not mine")
    await kv.put("k2", b"mine")
    e = await next_update(w, "k2 update")
    assert (e.key, e.value, e.revision) == ("k2", b"mine", 10)
    await w.stop()

    # Headers only (meta_only) watch: values are empty, revisions are there.
    w = await kv.watch("k2", meta_only=True)
    got = await drain_until_marker(w, "meta only")
    assert [(e.key, e.revision, e.value) for e in got] == [("k2", 10, b"")]
    await w.stop()


# --------------------------------------------------------------------------
# limits
# --------------------------------------------------------------------------


async def test_ttl_bucket_expires_values(nc):
    js = nc.jetstream()
    kv = await js.create_key_value(bucket="TTL", ttl=1)
    t0 = time.monotonic()
    await kv.put("k", b"short lived")
    assert (await kv.get("k")).value == b"short lived"

    async def gone():
        try:
            await kv.get("k")
            return False
        except KeyNotFoundError:
            return True

    await wait_until(gone, 6, "the value to expire")
    elapsed = time.monotonic() - t0
    assert elapsed >= 0.9, f"expired too early ({elapsed:.2f}s)"
    st = (await stream_info(nc, "KV_TTL"))["state"]
    assert (st["messages"], st["last_seq"]) == (0, 1)
    # The bucket still works.
    assert await kv.put("k", b"again") == 2


async def test_max_value_size(nc):
    js = nc.jetstream()
    kv = await js.create_key_value(bucket="MVS", max_value_size=128)
    assert await kv.put("k", b"x" * 128) == 1
    with pytest.raises(APIError) as ei:
        await kv.put("k", b"x" * 129)
    assert (ei.value.code, ei.value.err_code, ei.value.description) == (
        400,
        10054,
        "message size exceeds maximum allowed",
    )
    assert (await kv.get("k")).value == b"x" * 128


async def test_max_bytes_discard_new(nc):
    js = nc.jetstream()
    kv = await js.create_key_value(bucket="MB", max_bytes=400, history=5)
    # File store size per message: len(subject) + len(value) + 30.
    assert await kv.put("k1", b"v" * 100) == 1  # 9 + 100 + 30 = 139
    assert await kv.put("k2", b"v" * 100) == 2  # 278
    with pytest.raises(APIError) as ei:
        await kv.put("k3", b"v" * 100)  # would be 417 > 400
    assert (ei.value.code, ei.value.err_code, ei.value.description) == (
        503,
        10077,
        "maximum bytes exceeded",
    )
    st = (await stream_info(nc, "KV_MB"))["state"]
    assert (st["messages"], st["bytes"]) == (2, 278)


async def test_delete_bucket(nc):
    js = nc.jetstream()
    kv = await js.create_key_value(bucket="DEL")
    await kv.put("k", b"v")
    assert await js.delete_key_value("DEL") is True
    with pytest.raises(BucketNotFoundError):
        await js.key_value("DEL")
    resp = await api_req(nc, "$JS.API.STREAM.INFO.KV_DEL")
    assert resp["error"]["err_code"] == 10059, resp
    with pytest.raises(NotFoundError):
        await js.delete_key_value("DEL")
    # A new bucket of the same name starts empty.
    kv = await js.create_key_value(bucket="DEL")
    with pytest.raises(KeyNotFoundError):
        await kv.get("k")
    assert await kv.put("k", b"v2") == 1


# --------------------------------------------------------------------------
# direct get
# --------------------------------------------------------------------------


async def test_get_goes_through_direct_get(js_server, nc):
    js = nc.jetstream()
    kv = await js.create_key_value(bucket="DG", history=5, direct=True)
    await kv.put("k", b"v1")
    await kv.put("k", b"v2")

    spy = await connect(js_server.url)
    try:
        seen: list[str] = []

        async def cb(msg):
            seen.append(msg.subject)

        await spy.subscribe("$JS.API.>", cb=cb)
        await sync(spy)
        e = await kv.get("k")
        assert (e.value, e.revision) == (b"v2", 2)
        await sync(nc)
        await sync(spy)
        assert seen == ["$JS.API.DIRECT.GET.KV_DG.$KV.DG.k"], seen
    finally:
        await close_all(spy)

    # The raw request: the message with its stream headers.
    m = await raw_last(nc, "DG", "k")
    assert m.data == b"v2"
    assert hdr(m, "Nats-Stream") == "KV_DG"
    assert hdr(m, "Nats-Subject") == "$KV.DG.k"
    assert hdr(m, "Nats-Sequence") == "2"
    assert hdr(m, "Nats-Time-Stamp"), m.headers
    assert hdr(m, "Status") is None

    # Missing key: 404 status.
    m = await raw_last(nc, "DG", "nokey")
    assert hdr(m, "Status") == "404", m.headers
    assert hdr(m, "Description") == "Message Not Found", m.headers
    assert m.data == b""

    # By revision, with a JSON body on the stream subject.
    m = await nc.request("$JS.API.DIRECT.GET.KV_DG", json.dumps({"seq": 1}).encode(), timeout=5)
    assert (m.data, hdr(m, "Nats-Sequence"), hdr(m, "Nats-Subject")) == (b"v1", "1", "$KV.DG.k")
