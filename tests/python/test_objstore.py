"""JetStream Object Store buckets through nats-py (``js.create_object_store``).

Every value and error asserted here was observed from the reference
nats-server v2.15.0 (``-js -sd <dir>``, single server); the server under test
must answer the same.  Each test gets its own store directory.

An object store bucket ``B`` is the stream ``OBJ_B`` on ``$O.B.C.>`` (chunks,
one subject per object nuid) and ``$O.B.M.>`` (one meta message per object,
name base64url-encoded, published with ``Nats-Rollup: sub``).  Reads are
ordered push consumers on the chunk subject; meta lookups are
``STREAM.MSG.GET`` last-by-subject.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
from typing import Any

import pytest
from nats.js.errors import APIError, BucketNotFoundError, NotFoundError, ObjectNotFoundError

from helpers import close_all, connect

NS = 1_000_000_000
CHUNK = 128 * 1024
UPDATE_TIMEOUT = 5.0


@pytest.fixture
def js_server(start_server, tmp_path):
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


def digest_of(data: bytes) -> str:
    return "SHA-256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode()


def meta_subject(bucket: str, name: str) -> str:
    return f"$O.{bucket}.M.{base64.urlsafe_b64encode(name.encode()).decode()}"


async def next_update(watcher, what: str = "watch update"):
    try:
        return await asyncio.wait_for(watcher._updates.get(), UPDATE_TIMEOUT)
    except asyncio.TimeoutError:
        raise AssertionError(f"no {what} within {UPDATE_TIMEOUT}s") from None


# --------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------


async def test_bucket_config_in_stream_info(nc):
    js = nc.jetstream()
    obs = await js.create_object_store("CFG", description="things", ttl=3600, max_bytes=64 << 20)
    cfg = (await stream_info(nc, "OBJ_CFG"))["config"]
    assert cfg["name"] == "OBJ_CFG"
    assert cfg["subjects"] == ["$O.CFG.C.>", "$O.CFG.M.>"]
    assert cfg["description"] == "things"
    assert cfg["max_age"] == 3600 * NS
    assert cfg["max_bytes"] == 64 << 20
    assert cfg["discard"] == "new"
    assert cfg["allow_rollup_hdrs"] is True
    assert cfg["allow_direct"] is True
    assert cfg["sealed"] is False
    st = await obs.status()
    assert (st.bucket, st.description, st.ttl, st.sealed, st.size) == ("CFG", "things", 3600, False, 0)
    assert (await js.object_store("CFG"))._stream == "OBJ_CFG"
    with pytest.raises(BucketNotFoundError):
        await js.object_store("NOPE")


async def test_put_get_multi_chunk_object(nc):
    js = nc.jetstream()
    obs = await js.create_object_store("FILES")
    data = os.urandom(5 * 1024 * 1024 + 12345)
    info = await obs.put("blob.bin", data)
    nchunks = -(-len(data) // CHUNK)
    assert (info.name, info.bucket, info.size, info.chunks) == ("blob.bin", "FILES", len(data), nchunks)
    assert info.digest == digest_of(data)
    assert info.options.max_chunk_size == CHUNK

    res = await obs.get("blob.bin")
    assert len(res.data) == len(data)
    assert res.data == data
    assert hashlib.sha256(res.data).digest() == hashlib.sha256(data).digest()

    got = await obs.get_info("blob.bin")
    assert (got.name, got.size, got.chunks, got.digest, got.nuid) == (
        "blob.bin",
        len(data),
        nchunks,
        digest_of(data),
        info.nuid,
    )
    assert not got.deleted

    # Stream: one message per chunk plus the meta message.
    st = (await stream_info(nc, "OBJ_FILES"))["state"]
    assert st["messages"] == nchunks + 1
    assert st["num_subjects"] == 2
    # The meta message is plain JSON on the base64url subject.
    m = await api_req(nc, "$JS.API.STREAM.MSG.GET.OBJ_FILES", {"last_by_subj": meta_subject("FILES", "blob.bin")})
    meta = json.loads(base64.b64decode(m["message"]["data"]))
    assert (meta["name"], meta["size"], meta["chunks"], meta["digest"]) == (
        "blob.bin",
        len(data),
        nchunks,
        digest_of(data),
    )

    # Small and empty objects.
    await obs.put("small", b"hello")
    assert (await obs.get("small")).data == b"hello"
    empty = await obs.put("empty", b"")
    assert (empty.size, empty.chunks) == (0, 0)
    assert (await obs.get("empty")).data == b""


async def test_replace_object_purges_old_chunks(nc):
    js = nc.jetstream()
    obs = await js.create_object_store("REPL")
    first = os.urandom(3 * CHUNK)
    i1 = await obs.put("obj", first)
    second = os.urandom(CHUNK // 2)
    i2 = await obs.put("obj", second)
    assert i1.nuid != i2.nuid
    assert (await obs.get("obj")).data == second
    st = (await stream_info(nc, "OBJ_REPL"))["state"]
    assert st["messages"] == 2  # one chunk + one meta
    resp = await api_req(nc, "$JS.API.STREAM.MSG.GET.OBJ_REPL", {"last_by_subj": f"$O.REPL.C.{i1.nuid}"})
    assert resp["error"]["err_code"] == 10037, resp


async def test_list_and_delete(nc):
    js = nc.jetstream()
    obs = await js.create_object_store("LIST")
    with pytest.raises(NotFoundError):
        await obs.list()
    payloads = {"a.txt": b"A" * 10, "dir/b.txt": os.urandom(CHUNK + 1), "c": b"C"}
    for name, data in payloads.items():
        await obs.put(name, data)
    entries = await obs.list()
    assert sorted((e.name, e.size) for e in entries) == sorted((n, len(d)) for n, d in payloads.items())

    info = await obs.get_info("dir/b.txt")
    await obs.delete("dir/b.txt")
    with pytest.raises(ObjectNotFoundError):
        await obs.get("dir/b.txt")
    with pytest.raises(ObjectNotFoundError):
        await obs.get_info("dir/b.txt")
    deleted = await obs.get_info("dir/b.txt", show_deleted=True)
    assert (deleted.deleted, deleted.size, deleted.chunks) == (True, 0, 0)
    # The chunks are purged; the meta (deleted) remains.
    resp = await api_req(nc, "$JS.API.STREAM.MSG.GET.OBJ_LIST", {"last_by_subj": f"$O.LIST.C.{info.nuid}"})
    assert resp["error"] == {"code": 404, "err_code": 10037, "description": "no message found"}, resp

    live = await obs.list(ignore_deletes=True)
    assert sorted(e.name for e in live) == ["a.txt", "c"]
    everything = await obs.list()
    assert sorted((e.name, bool(e.deleted)) for e in everything) == [
        ("a.txt", False),
        ("c", False),
        ("dir/b.txt", True),
    ]
    with pytest.raises(ObjectNotFoundError):
        await obs.delete("never-there")


async def test_links(nc):
    """nats-py has no add_link: write a link meta the way the Go/Rust clients do."""
    js = nc.jetstream()
    obs = await js.create_object_store("LNK")
    data = os.urandom(CHUNK + 7)
    await obs.put("target", data)
    link = {
        "name": "alias",
        "bucket": "LNK",
        "nuid": "LINKNUID0000000000000",
        "size": 0,
        "chunks": 0,
        "options": {"link": {"bucket": "LNK", "name": "target"}},
    }
    ack = await js.publish(meta_subject("LNK", "alias"), json.dumps(link).encode(), headers={"Nats-Rollup": "sub"})
    assert ack.stream == "OBJ_LNK"
    res = await obs.get("alias")
    assert res.data == data
    assert res.info.name == "target"


async def test_seal_makes_bucket_read_only(nc):
    js = nc.jetstream()
    obs = await js.create_object_store("SEAL")
    await obs.put("kept", b"before the seal")
    await obs.seal()
    st = await obs.status()
    assert st.sealed is True
    cfg = (await stream_info(nc, "OBJ_SEAL"))["config"]
    assert cfg["sealed"] is True
    assert (await obs.get("kept")).data == b"before the seal"
    with pytest.raises(APIError) as ei:
        await obs.put("new", b"after the seal")
    assert (ei.value.code, ei.value.err_code, ei.value.description) == (
        400,
        10109,
        "invalid operation on sealed stream",
    )
    with pytest.raises(APIError) as ei:
        await obs.delete("kept")
    # (the meta publish fails, then the chunk purge, whose error surfaces)
    assert (ei.value.code, ei.value.err_code, ei.value.description) == (
        400,
        10109,
        "invalid operation on sealed stream",
    )
    resp = await api_req(nc, "$JS.API.STREAM.PURGE.OBJ_SEAL")
    assert resp["error"] == {
        "code": 400,
        "err_code": 10109,
        "description": "invalid operation on sealed stream",
    }, resp
    assert (await obs.get("kept")).data == b"before the seal"


async def test_watch_sees_put_and_delete(nc):
    js = nc.jetstream()
    obs = await js.create_object_store("WATCH")
    await obs.put("existing", b"old")
    w = await obs.watch()
    first = await next_update(w, "existing object")
    assert (first.name, first.size) == ("existing", 3)
    assert await next_update(w, "initial marker") is None

    await obs.put("fresh", b"new data")
    e = await next_update(w, "put")
    assert (e.name, e.size, e.deleted) == ("fresh", 8, False)
    assert e.digest == digest_of(b"new data")
    await obs.delete("existing")
    e = await next_update(w, "delete")
    assert (e.name, e.deleted, e.size) == ("existing", True, 0)
    await w.stop()

    # updates_only: nothing from before, no marker.
    w = await obs.watch(updates_only=True)
    await obs.put("later", b"x")
    e = await next_update(w, "update-only put")
    assert e.name == "later"
    await w.stop()


async def test_delete_bucket(nc):
    js = nc.jetstream()
    obs = await js.create_object_store("GONE")
    await obs.put("o", b"data")
    assert await js.delete_object_store("GONE") is True
    with pytest.raises(BucketNotFoundError):
        await js.object_store("GONE")
