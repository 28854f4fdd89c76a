"""JetStream streams through nats-py (``nc.jetstream()``) and raw ``$JS.API`` requests.

Every error code and text asserted here was observed from the reference
nats-server v2.15.0 (``-js -sd <dir>``, single server); the server under test
must answer the same.  Each test gets its own store directory.

Byte accounting observed on nats-server (used in the ``bytes`` assertions):
memory store: ``len(subject) + len(headers) + len(payload) + 16``; file store:
``len(subject) + len(headers) + len(payload) + 30`` (+4 when there are headers).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any, Optional

import pytest
from nats.errors import NoRespondersError
from nats.js import api
from nats.js.errors import (
    APIError,
    BadRequestError,
    NoStreamResponseError,
    NotFoundError,
    ServerError,
    ServiceUnavailableError,
)

from helpers import api_req, close_all, connect

# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

NS = 1_000_000_000


def mem_size(subject: str, payload: bytes, hdr: bytes = b"") -> int:
    return len(subject) + len(hdr) + len(payload) + 16


def file_size(subject: str, payload: bytes, hdr: bytes = b"") -> int:
    return len(subject) + len(hdr) + len(payload) + 30 + (4 if hdr else 0)


async def create(nc, name: str, **cfg) -> dict:
    """Create a stream via the raw API (subjects default to ``<name lower>.>``)."""
    body = {"name": name, "subjects": [name.lower() + ".>"], "storage": "memory", **cfg}
    resp = await api_req(nc, f"$JS.API.STREAM.CREATE.{name}", body)
    assert "error" not in resp, resp
    return resp


async def info(nc, name: str, **req) -> dict:
    resp = await api_req(nc, f"$JS.API.STREAM.INFO.{name}", req or None)
    assert "error" not in resp, resp
    return resp


async def state(nc, name: str, **req) -> dict:
    return (await info(nc, name, **req))["state"]


async def jpub(nc, subject: str, data: bytes = b"x", headers: Optional[dict] = None) -> dict:
    """Publish with a reply and return the decoded PubAck (or error) JSON."""
    msg = await nc.request(subject, data, timeout=5, headers=headers)
    return json.loads(msg.data)


def assert_api_error(resp: dict, code: int, err_code: int, description: str) -> None:
    assert "error" in resp, f"expected error {err_code}, got {resp}"
    assert resp["error"] == {"code": code, "err_code": err_code, "description": description}, resp


def assert_pub_error(resp: dict, stream: str, code: int, err_code: int, description: str) -> None:
    assert_api_error(resp, code, err_code, description)
    assert resp.get("stream") == stream and resp.get("seq") == 0, resp


def assert_exc(exc: APIError, code: int, err_code: int, description: str) -> None:
    assert (exc.code, exc.err_code, exc.description) == (code, err_code, description), exc


async def wait_until(pred, timeout: float, what: str, interval: float = 0.05):
    """Await ``pred()`` (a coroutine function) until truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        v = await pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


# --------------------------------------------------------------------------
# create / info
# --------------------------------------------------------------------------


async def test_create_file_and_memory_streams(nc):
    js = nc.jetstream()
    fi = await js.add_stream(name="FILE", subjects=["file.>"], storage=api.StorageType.FILE)
    assert fi.config.name == "FILE"
    assert fi.config.subjects == ["file.>"]
    assert fi.config.storage == api.StorageType.FILE
    assert fi.state.messages == 0 and fi.state.last_seq == 0

    mi = await js.add_stream(name="MEM", subjects=["mem.a", "mem.b"], storage=api.StorageType.MEMORY)
    assert mi.config.storage == api.StorageType.MEMORY
    assert mi.config.subjects == ["mem.a", "mem.b"]

    # Defaults filled in by the server, as seen in the raw response.
    raw = await api_req(nc, "$JS.API.STREAM.CREATE.RAW", {"name": "RAW", "subjects": ["raw"]})
    assert raw["type"] == "io.nats.jetstream.api.v1.stream_create_response"
    assert raw["did_create"] is True
    c = raw["config"]
    assert c["retention"] == "limits"
    assert c["storage"] == "file"
    assert c["discard"] == "old"
    assert c["num_replicas"] == 1
    assert c["max_msgs"] == -1 and c["max_bytes"] == -1 and c["max_msg_size"] == -1
    assert c["max_msgs_per_subject"] == -1 and c["max_consumers"] == -1
    assert c["max_age"] == 0
    assert c["duplicate_window"] == 120 * NS
    assert c["allow_direct"] is False and c["sealed"] is False
    assert raw["state"]["messages"] == 0 and raw["state"]["first_seq"] == 0


async def test_create_without_subjects_defaults_to_name(nc):
    raw = await api_req(nc, "$JS.API.STREAM.CREATE.NOSUBJ", {"name": "NOSUBJ"})
    assert raw["config"]["subjects"] == ["NOSUBJ"]
    ack = await jpub(nc, "NOSUBJ", b"hi")
    assert ack == {"stream": "NOSUBJ", "seq": 1}


async def test_create_again_same_config_is_ok_different_config_rejected(nc):
    js = nc.jetstream()
    cfg = api.StreamConfig(name="IDEM", subjects=["idem.>"], storage=api.StorageType.FILE)
    await js.add_stream(cfg)
    await js.publish("idem.a", b"1")
    again = await js.add_stream(cfg)  # same config: no error, state untouched
    assert again.state.messages == 1
    raw = await api_req(nc, "$JS.API.STREAM.CREATE.IDEM", cfg.as_dict())
    assert "error" not in raw
    # nats-server answers an identical re-create with did_create true as well.
    assert raw["did_create"] is True

    with pytest.raises(BadRequestError) as ei:
        await js.add_stream(cfg, max_msgs=5)
    assert_exc(ei.value, 400, 10058, "stream name already in use with a different configuration")
    assert (await js.stream_info("IDEM")).config.max_msgs == -1


async def test_create_validation_errors(nc):
    await create(nc, "OVL", subjects=["ovl.>"])
    resp = await api_req(nc, "$JS.API.STREAM.CREATE.OVL2", {"name": "OVL2", "subjects": ["ovl.a"]})
    assert_api_error(resp, 400, 10065, "subjects overlap with an existing stream")
    assert resp["type"] == "io.nats.jetstream.api.v1.stream_create_response"

    resp = await api_req(nc, "$JS.API.STREAM.CREATE.AAA", {"name": "BBB", "subjects": ["bbb"]})
    assert_api_error(resp, 400, 10056, "stream name in subject does not match request")

    resp = await api_req(nc, "$JS.API.STREAM.CREATE.SEALED", {"name": "SEALED", "subjects": ["s1"], "sealed": True})
    assert_api_error(resp, 500, 10052, "stream configuration for create can not be sealed")

    resp = await api_req(
        nc,
        "$JS.API.STREAM.CREATE.DNPS1",
        {"name": "DNPS1", "subjects": ["d1"], "max_msgs_per_subject": 1, "discard_new_per_subject": True},
    )
    assert_api_error(resp, 500, 10052, "discard new per subject requires discard new policy to be set")

    resp = await api_req(
        nc,
        "$JS.API.STREAM.CREATE.DNPS2",
        {"name": "DNPS2", "subjects": ["d2"], "discard": "new", "discard_new_per_subject": True},
    )
    assert_api_error(resp, 500, 10052, "discard new per subject requires max msgs per subject > 0")

    resp = await api_req(
        nc,
        "$JS.API.STREAM.CREATE.DUPW",
        {"name": "DUPW", "subjects": ["dupw"], "max_age": 1 * NS, "duplicate_window": 5 * NS},
    )
    assert_api_error(resp, 500, 10052, "duplicates window can not be larger then max age")

    resp = await api_req(nc, "$JS.API.STREAM.CREATE.APIC", {"name": "APIC", "subjects": ["$JS.API.>"]})
    assert_api_error(resp, 500, 10052, "subjects that overlap with jetstream api require no-ack to be true")

    resp = await api_req(nc, "$JS.API.STREAM.CREATE.BADSUBJ", {"name": "BADSUBJ", "subjects": ["a..b"]})
    assert_api_error(resp, 500, 10052, "invalid subject")
    resp = await api_req(nc, "$JS.API.STREAM.CREATE.SELFO", {"name": "SELFO", "subjects": ["selfo.>", "selfo.a"]})
    assert_api_error(resp, 500, 10052, 'subject "selfo.>" overlaps with "selfo.a"')
    resp = await api_req(nc, "$JS.API.STREAM.CREATE.TWICE", {"name": "TWICE", "subjects": ["twice", "twice"]})
    assert_api_error(resp, 500, 10052, 'subject "twice" overlaps with "twice"')
    # An empty body has no name, so it does not match the one in the subject.
    resp = await api_req(nc, "$JS.API.STREAM.CREATE.EMPTY")
    assert_api_error(resp, 400, 10056, "stream name in subject does not match request")

    resp = await api_req(nc, "$JS.API.STREAM.CREATE.BADJ", b"{nope")
    assert resp["error"]["code"] == 400 and resp["error"]["err_code"] == 10025
    # The rest of the text is Go's encoding/json message.
    assert resp["error"]["description"].startswith("invalid JSON: "), resp

    # None of the rejected streams exist.
    names = await api_req(nc, "$JS.API.STREAM.NAMES", {})
    assert names["streams"] == ["OVL"]


async def test_jetstream_api_without_js_has_no_responders(start_server):
    srv = start_server()  # no -js
    nc = await connect(srv.url)
    try:
        for subject, body in (
            ("$JS.API.INFO", b""),
            ("$JS.API.STREAM.CREATE.X", b'{"name":"X"}'),
            ("$JS.API.STREAM.NAMES", b"{}"),
        ):
            with pytest.raises(NoRespondersError):
                await nc.request(subject, body, timeout=2)
    finally:
        await close_all(nc)


async def test_duplicate_window_defaults_to_max_age_when_shorter(nc):
    resp = await create(nc, "DWAGE", max_age=1 * NS)
    assert resp["config"]["duplicate_window"] == 1 * NS


async def test_stream_info_state_subjects_filter_and_deleted_details(nc):
    js = nc.jetstream()
    await js.add_stream(name="INF", subjects=["inf.>"], storage=api.StorageType.MEMORY)
    subjects = ["inf.a", "inf.b", "inf.a", "inf.c.x", "inf.a"]
    for i, s in enumerate(subjects, start=1):
        ack = await js.publish(s, b"payload")
        assert (ack.stream, ack.seq) == ("INF", i)

    si = await js.stream_info("INF")
    assert si.state.messages == 5
    assert si.state.first_seq == 1 and si.state.last_seq == 5
    assert si.state.bytes == sum(mem_size(s, b"payload") for s in subjects)
    assert si.state.subjects is None  # only with a subjects_filter

    raw = await info(nc, "INF")
    assert raw["type"] == "io.nats.jetstream.api.v1.stream_info_response"
    assert raw["state"]["num_subjects"] == 3
    assert "subjects" not in raw["state"]

    si = await js.stream_info("INF", subjects_filter=">")
    assert si.state.subjects == {"inf.a": 3, "inf.b": 1, "inf.c.x": 1}
    raw = await info(nc, "INF", subjects_filter="inf.*")
    assert raw["state"]["subjects"] == {"inf.a": 3, "inf.b": 1}
    raw = await info(nc, "INF", subjects_filter="inf.a")
    assert raw["state"]["subjects"] == {"inf.a": 3}

    await js.delete_msg("INF", 2)
    await js.delete_msg("INF", 4)
    raw = await info(nc, "INF")
    assert raw["state"]["num_deleted"] == 2
    assert "deleted" not in raw["state"]
    raw = await info(nc, "INF", deleted_details=True)
    st = raw["state"]
    assert st["deleted"] == [2, 4] and st["num_deleted"] == 2
    assert st["messages"] == 3 and st["first_seq"] == 1 and st["last_seq"] == 5
    assert st["num_subjects"] == 1


async def test_file_stream_byte_accounting(nc):
    await create(nc, "FB", storage="file")
    await jpub(nc, "fb.a", b"x")
    assert (await state(nc, "FB"))["bytes"] == file_size("fb.a", b"x")
    await jpub(nc, "fb.abc", b"hello", headers={"A": "b"})
    hdr = b"NATS/1.0\r\nA: b\r\n\r\n"
    assert (await state(nc, "FB"))["bytes"] == file_size("fb.a", b"x") + file_size("fb.abc", b"hello", hdr)


async def test_stream_info_not_found(nc):
    js = nc.jetstream()
    with pytest.raises(NotFoundError) as ei:
        await js.stream_info("NOPE")
    assert_exc(ei.value, 404, 10059, "stream not found")
    resp = await api_req(nc, "$JS.API.STREAM.INFO.NOPE")
    assert_api_error(resp, 404, 10059, "stream not found")
    assert resp["type"] == "io.nats.jetstream.api.v1.stream_info_response"


# --------------------------------------------------------------------------
# list / names
# --------------------------------------------------------------------------


async def test_stream_names_and_list_with_paging_and_subject_filter(nc):
    js = nc.jetstream()
    names = ["ECHO", "ALPHA", "DELTA", "CHARLIE", "BRAVO"]
    for n in names:
        await create(nc, n)

    resp = await api_req(nc, "$JS.API.STREAM.NAMES", {})
    assert resp["type"] == "io.nats.jetstream.api.v1.stream_names_response"
    assert resp["total"] == 5 and resp["offset"] == 0 and resp["limit"] == 1024
    assert resp["streams"] == sorted(names)

    resp = await api_req(nc, "$JS.API.STREAM.NAMES", {"offset": 2})
    assert resp["total"] == 5 and resp["offset"] == 2
    assert resp["streams"] == ["CHARLIE", "DELTA", "ECHO"]

    resp = await api_req(nc, "$JS.API.STREAM.NAMES", {"subject": "delta.x"})
    assert resp["total"] == 1 and resp["streams"] == ["DELTA"]
    resp = await api_req(nc, "$JS.API.STREAM.NAMES", {"subject": "*.x"})
    assert resp["streams"] == sorted(names)
    resp = await api_req(nc, "$JS.API.STREAM.NAMES", {"subject": "nothing.here"})
    assert resp["total"] == 0 and not resp["streams"]  # nats-server sends null

    assert await js.find_stream_name_by_subject("bravo.q") == "BRAVO"
    with pytest.raises(NotFoundError):
        await js.find_stream_name_by_subject("nothing.here")

    resp = await api_req(nc, "$JS.API.STREAM.LIST", {})
    assert resp["type"] == "io.nats.jetstream.api.v1.stream_list_response"
    assert resp["total"] == 5 and resp["limit"] == 256
    assert [s["config"]["name"] for s in resp["streams"]] == sorted(names)
    assert all("state" in s and "created" in s for s in resp["streams"])

    resp = await api_req(nc, "$JS.API.STREAM.LIST", {"offset": 3})
    assert [s["config"]["name"] for s in resp["streams"]] == ["DELTA", "ECHO"]
    resp = await api_req(nc, "$JS.API.STREAM.LIST", {"offset": 10})
    assert resp["total"] == 5 and not resp["streams"]

    infos = await js.streams_info()
    assert sorted(i.config.name for i in infos) == sorted(names)
    infos = await js.streams_info(offset=4)
    assert [i.config.name for i in infos] == ["ECHO"]


# --------------------------------------------------------------------------
# update / delete
# --------------------------------------------------------------------------


async def test_update_allowed_fields(nc):
    js = nc.jetstream()
    cfg = api.StreamConfig(name="UPD", subjects=["upd.a"], storage=api.StorageType.FILE)
    await js.add_stream(cfg)
    for _ in range(10):
        await js.publish("upd.a", b"m")

    with pytest.raises(NoStreamResponseError):
        await js.publish("upd.b", b"m")

    si = await js.update_stream(cfg, max_msgs=4, description="updated", subjects=["upd.a", "upd.b"])
    assert si.config.max_msgs == 4
    assert si.config.description == "updated"
    assert si.config.subjects == ["upd.a", "upd.b"]
    # Lowering max_msgs applies the limit to what is already stored.
    assert si.state.messages == 4 and si.state.first_seq == 7 and si.state.last_seq == 10

    ack = await js.publish("upd.b", b"m")
    assert (ack.stream, ack.seq) == ("UPD", 11)
    si = await js.stream_info("UPD")
    assert si.config.description == "updated"
    assert si.state.messages == 4 and si.state.first_seq == 8

    # max_msgs_per_subject lowered: keep only the newest per subject.
    si = await js.update_stream(si.config, max_msgs_per_subject=1)
    assert si.state.messages == 2
    assert (await js.stream_info("UPD", subjects_filter=">")).state.subjects == {"upd.a": 1, "upd.b": 1}


async def test_update_refused_changes(nc):
    js = nc.jetstream()
    cfg = api.StreamConfig(name="UPR", subjects=["upr.>"], storage=api.StorageType.FILE)
    await js.add_stream(cfg)

    with pytest.raises(ServerError) as ei:
        await js.update_stream(cfg, storage=api.StorageType.MEMORY)
    assert_exc(ei.value, 500, 10052, "stream configuration update can not change storage type")

    with pytest.raises(ServerError) as ei:
        await js.update_stream(cfg, retention=api.RetentionPolicy.WORK_QUEUE)
    assert_exc(
        ei.value, 500, 10052, "stream configuration update can not change retention policy to/from workqueue"
    )

    with pytest.raises(NotFoundError) as ei:
        await js.update_stream(name="MISSING", subjects=["missing"])
    assert_exc(ei.value, 404, 10059, "stream not found")

    await create(nc, "OTHER", subjects=["other.>"])
    resp = await api_req(nc, "$JS.API.STREAM.UPDATE.UPR", {**cfg.as_dict(), "subjects": ["upr.>", "other.x"]})
    assert_api_error(resp, 400, 10065, "subjects overlap with an existing stream")
    assert resp["type"] == "io.nats.jetstream.api.v1.stream_update_response"

    # Nothing changed.
    si = await js.stream_info("UPR")
    assert si.config.storage == api.StorageType.FILE
    assert si.config.retention == api.RetentionPolicy.LIMITS
    assert si.config.subjects == ["upr.>"]


async def test_delete_stream(nc):
    js = nc.jetstream()
    await js.add_stream(name="DEL", subjects=["del.>"], storage=api.StorageType.FILE)
    await js.publish("del.a", b"x")
    assert await js.delete_stream("DEL") is True

    resp = await api_req(nc, "$JS.API.STREAM.INFO.DEL")
    assert_api_error(resp, 404, 10059, "stream not found")
    resp = await api_req(nc, "$JS.API.STREAM.DELETE.DEL")
    assert_api_error(resp, 404, 10059, "stream not found")
    assert resp["type"] == "io.nats.jetstream.api.v1.stream_delete_response"
    names = await api_req(nc, "$JS.API.STREAM.NAMES", {})
    assert names["total"] == 0

    # Its subjects are no longer captured.
    with pytest.raises(NoRespondersError):
        await nc.request("del.a", b"x", timeout=2)
    # And a stream of the same name starts from scratch.
    si = await js.add_stream(name="DEL", subjects=["del.>"], storage=api.StorageType.FILE)
    assert si.state.messages == 0 and si.state.last_seq == 0
    assert (await js.publish("del.a", b"x")).seq == 1


# --------------------------------------------------------------------------
# publishing
# --------------------------------------------------------------------------


async def test_publish_ack_and_no_stream(nc):
    js = nc.jetstream()
    await js.add_stream(name="PUB", subjects=["pub.*"], storage=api.StorageType.MEMORY)
    for i in range(1, 6):
        ack = await js.publish("pub.x", f"m{i}".encode())
        assert (ack.stream, ack.seq, ack.duplicate) == ("PUB", i, None)
    assert await jpub(nc, "pub.y") == {"stream": "PUB", "seq": 6}

    # A subject no stream captures: a request gets no responders ...
    with pytest.raises(NoRespondersError):
        await nc.request("nostream.here", b"x", timeout=2)
    with pytest.raises(NoStreamResponseError):
        await js.publish("nostream.here", b"x")
    # ... and neither does one outside the stream's wildcard.
    with pytest.raises(NoRespondersError):
        await nc.request("pub.x.y", b"x", timeout=2)

    # A plain publish (no reply) is stored too.
    await nc.publish("pub.z", b"fire-and-forget")
    ack = await js.publish("pub.z", b"after")
    assert ack.seq == 8
    m = await js.get_msg("PUB", 7)
    assert m.subject == "pub.z" and m.data == b"fire-and-forget"


async def test_duplicate_detection(nc):
    js = nc.jetstream()
    await js.add_stream(name="DUP", subjects=["dup"], storage=api.StorageType.MEMORY)
    a1 = await js.publish("dup", b"one", headers={"Nats-Msg-Id": "id-1"})
    assert (a1.seq, a1.duplicate) == (1, None)
    a2 = await js.publish("dup", b"one again", headers={"Nats-Msg-Id": "id-1"})
    assert (a2.stream, a2.seq, a2.duplicate) == ("DUP", 1, True)
    raw = await jpub(nc, "dup", b"x", headers={"Nats-Msg-Id": "id-1"})
    assert raw == {"stream": "DUP", "seq": 1, "duplicate": True}
    a3 = await js.publish("dup", b"two", headers={"Nats-Msg-Id": "id-2"})
    assert (a3.seq, a3.duplicate) == (2, None)
    si = await js.stream_info("DUP")
    assert si.state.messages == 2
    assert (await js.get_msg("DUP", 1)).data == b"one"


async def test_duplicate_window_expires(nc):
    await create(nc, "DW", subjects=["dw"], duplicate_window=1 * NS)
    assert await jpub(nc, "dw", headers={"Nats-Msg-Id": "a"}) == {"stream": "DW", "seq": 1}
    assert (await jpub(nc, "dw", headers={"Nats-Msg-Id": "a"}))["duplicate"] is True
    t0 = time.monotonic()

    async def not_dup():
        r = await jpub(nc, "dw", headers={"Nats-Msg-Id": "a"})
        return r if not r.get("duplicate") else None

    r = await wait_until(not_dup, 5.0, "the duplicate window to pass", interval=0.1)
    assert r == {"stream": "DW", "seq": 2}
    assert time.monotonic() - t0 >= 0.5


async def test_expected_headers(nc):
    await create(nc, "EXP", subjects=["exp.>"])
    # Empty stream: last sequence 0 is right, any last msg id is wrong.
    assert_pub_error(
        await jpub(nc, "exp.a", headers={"Nats-Expected-Last-Msg-Id": "x"}), "EXP", 400, 10070, "wrong last msg ID: "
    )
    assert await jpub(nc, "exp.a", headers={"Nats-Expected-Last-Sequence": "0"}) == {"stream": "EXP", "seq": 1}

    # Nats-Expected-Stream
    assert_pub_error(
        await jpub(nc, "exp.a", headers={"Nats-Expected-Stream": "OTHER"}),
        "EXP", 400, 10060, "expected stream does not match",
    )
    assert await jpub(nc, "exp.a", headers={"Nats-Expected-Stream": "EXP"}) == {"stream": "EXP", "seq": 2}
    js = nc.jetstream()
    assert (await js.publish("exp.b", b"x", stream="EXP")).seq == 3
    with pytest.raises(BadRequestError) as ei:
        await js.publish("exp.b", b"x", stream="WRONG")
    assert_exc(ei.value, 400, 10060, "expected stream does not match")

    # Nats-Expected-Last-Sequence (stream's last seq is 3)
    assert_pub_error(
        await jpub(nc, "exp.a", headers={"Nats-Expected-Last-Sequence": "2"}), "EXP", 400, 10071, "wrong last sequence: 3"
    )
    assert await jpub(nc, "exp.a", headers={"Nats-Expected-Last-Sequence": "3"}) == {"stream": "EXP", "seq": 4}

    # Nats-Expected-Last-Subject-Sequence (exp.a last at 4, exp.b at 3)
    assert_pub_error(
        await jpub(nc, "exp.a", headers={"Nats-Expected-Last-Subject-Sequence": "2"}),
        "EXP", 400, 10071, "wrong last sequence: 4",
    )
    assert_pub_error(
        await jpub(nc, "exp.b", headers={"Nats-Expected-Last-Subject-Sequence": "0"}),
        "EXP", 400, 10071, "wrong last sequence: 3",
    )
    assert await jpub(nc, "exp.b", headers={"Nats-Expected-Last-Subject-Sequence": "3"}) == {"stream": "EXP", "seq": 5}
    # 0 means "no message on this subject yet".
    assert await jpub(nc, "exp.new", headers={"Nats-Expected-Last-Subject-Sequence": "0"}) == {"stream": "EXP", "seq": 6}

    # Nats-Expected-Last-Msg-Id: the id of the stream's last message ("" if it had none).
    assert_pub_error(
        await jpub(nc, "exp.a", headers={"Nats-Expected-Last-Msg-Id": "m1"}), "EXP", 400, 10070, "wrong last msg ID: "
    )
    assert await jpub(nc, "exp.a", headers={"Nats-Msg-Id": "m1"}) == {"stream": "EXP", "seq": 7}
    assert_pub_error(
        await jpub(nc, "exp.a", headers={"Nats-Expected-Last-Msg-Id": "zz"}), "EXP", 400, 10070, "wrong last msg ID: m1"
    )
    assert await jpub(nc, "exp.a", headers={"Nats-Expected-Last-Msg-Id": "m1"}) == {"stream": "EXP", "seq": 8}

    # Failed publishes stored nothing.
    st = await state(nc, "EXP")
    assert st["messages"] == 8 and st["last_seq"] == 8


# --------------------------------------------------------------------------
# limits
# --------------------------------------------------------------------------


async def test_max_msgs_discard_old(nc):
    js = nc.jetstream()
    await js.add_stream(name="LIM", subjects=["lim"], storage=api.StorageType.MEMORY, max_msgs=3)
    for i in range(1, 6):
        assert (await js.publish("lim", str(i).encode())).seq == i
    si = await js.stream_info("LIM")
    assert si.state.messages == 3 and si.state.first_seq == 3 and si.state.last_seq == 5
    with pytest.raises(NotFoundError) as ei:
        await js.get_msg("LIM", 2)
    assert_exc(ei.value, 404, 10037, "no message found")
    assert (await js.get_msg("LIM", 3)).data == b"3"


async def test_discard_new_limits(nc):
    await create(nc, "DNM", max_msgs=2, discard="new")
    assert (await jpub(nc, "dnm.a"))["seq"] == 1
    assert (await jpub(nc, "dnm.a"))["seq"] == 2
    assert_pub_error(await jpub(nc, "dnm.a"), "DNM", 503, 10077, "maximum messages exceeded")
    st = await state(nc, "DNM")
    assert (st["messages"], st["first_seq"], st["last_seq"]) == (2, 1, 2)

    js = nc.jetstream()
    with pytest.raises(ServiceUnavailableError) as ei:
        await js.publish("dnm.a", b"x")
    assert_exc(ei.value, 503, 10077, "maximum messages exceeded")

    # max_bytes: each message is 7 + 40 + 16 = 63 bytes; 3 fit in 200.
    await create(nc, "DNB", max_bytes=200, discard="new")
    for i in range(1, 4):
        assert (await jpub(nc, "dnb.a", b"x" * 40))["seq"] == i
    assert_pub_error(await jpub(nc, "dnb.a", b"x" * 40), "DNB", 503, 10077, "maximum bytes exceeded")
    assert (await state(nc, "DNB"))["bytes"] == 3 * mem_size("dnb.a", b"x" * 40)

    # discard new per subject
    await create(nc, "DNS", max_msgs_per_subject=1, discard="new", discard_new_per_subject=True)
    assert (await jpub(nc, "dns.a"))["seq"] == 1
    assert_pub_error(await jpub(nc, "dns.a"), "DNS", 503, 10077, "maximum messages per subject exceeded")
    assert (await jpub(nc, "dns.b"))["seq"] == 2


async def test_max_bytes_discard_old(nc):
    await create(nc, "MB", max_bytes=200)
    size = mem_size("mb.a", b"x" * 40)  # 60
    for i in range(1, 11):
        assert (await jpub(nc, "mb.a", b"x" * 40))["seq"] == i
    st = await state(nc, "MB")
    assert st["messages"] == 200 // size == 3
    assert st["bytes"] == 3 * size
    assert (st["first_seq"], st["last_seq"]) == (8, 10)


async def test_max_msgs_per_subject_discard_old(nc):
    js = nc.jetstream()
    await js.add_stream(name="PER", subjects=["per.*"], storage=api.StorageType.FILE, max_msgs_per_subject=2)
    for i in range(1, 4):
        await js.publish("per.a", f"a{i}".encode())
        await js.publish("per.b", f"b{i}".encode())
    si = await js.stream_info("PER", subjects_filter=">")
    assert si.state.messages == 4
    assert si.state.subjects == {"per.a": 2, "per.b": 2}
    assert si.state.first_seq == 3 and si.state.last_seq == 6
    assert (await js.get_msg("PER", subject="per.a")).data == b"a3"
    with pytest.raises(NotFoundError):
        await js.get_msg("PER", 1)


async def test_max_age_expiry(nc):
    js = nc.jetstream()
    await js.add_stream(name="AGE", subjects=["age"], storage=api.StorageType.FILE, max_age=1.0)
    cfg = (await info(nc, "AGE"))["config"]
    assert cfg["max_age"] == 1 * NS
    for _ in range(3):
        await js.publish("age", b"x")
    t0 = time.monotonic()
    assert (await js.stream_info("AGE")).state.messages == 3

    async def empty():
        st = await state(nc, "AGE")
        return st if st["messages"] == 0 else None

    st = await wait_until(empty, 5.0, "messages to expire")
    assert time.monotonic() - t0 >= 0.5
    assert st["bytes"] == 0 and st["first_seq"] == 4 and st["last_seq"] == 3
    # Sequences continue after expiry.
    assert (await js.publish("age", b"y")).seq == 4


async def test_max_msg_size(nc):
    await create(nc, "MSZ", max_msg_size=10)
    assert_pub_error(await jpub(nc, "msz.a", b"x" * 11), "MSZ", 400, 10054, "message size exceeds maximum allowed")
    assert await jpub(nc, "msz.a", b"x" * 10) == {"stream": "MSZ", "seq": 1}
    js = nc.jetstream()
    with pytest.raises(BadRequestError) as ei:
        await js.publish("msz.a", b"y" * 100)
    assert_exc(ei.value, 400, 10054, "message size exceeds maximum allowed")
    assert (await state(nc, "MSZ"))["messages"] == 1


async def test_per_message_ttl(nc):
    js = nc.jetstream()
    await create(nc, "TTL", allow_msg_ttl=True)
    assert await jpub(nc, "ttl.keep", b"stays") == {"stream": "TTL", "seq": 1}
    assert await jpub(nc, "ttl.a", b"t", headers={"Nats-TTL": "1s"}) == {"stream": "TTL", "seq": 2}
    assert (await js.publish("ttl.b", b"t", msg_ttl=1)).seq == 3
    assert_pub_error(
        await jpub(nc, "ttl.a", b"t", headers={"Nats-TTL": "garbage"}), "TTL", 400, 10165, "invalid per-message TTL"
    )
    t0 = time.monotonic()

    async def expired():
        st = await state(nc, "TTL")
        return st if st["messages"] == 1 else None

    st = await wait_until(expired, 5.0, "TTL'd messages to expire")
    assert time.monotonic() - t0 >= 0.5
    assert st["first_seq"] == 1 and st["last_seq"] == 3
    assert (await js.get_msg("TTL", 1)).data == b"stays"

    await create(nc, "NOTTL")
    assert_pub_error(
        await jpub(nc, "nottl.a", b"t", headers={"Nats-TTL": "1s"}), "NOTTL", 400, 10166, "per-message TTL is disabled"
    )


# --------------------------------------------------------------------------
# purge
# --------------------------------------------------------------------------


async def test_purge_variants(nc):
    js = nc.jetstream()
    await js.add_stream(name="PRG", subjects=["prg.*"], storage=api.StorageType.FILE)
    for i in range(1, 11):
        await js.publish("prg.a" if i % 2 else "prg.b", str(i).encode())

    # by subject
    resp = await api_req(nc, "$JS.API.STREAM.PURGE.PRG", {"filter": "prg.a"})
    assert resp == {"type": "io.nats.jetstream.api.v1.stream_purge_response", "success": True, "purged": 5}
    si = await js.stream_info("PRG", subjects_filter=">")
    assert si.state.messages == 5 and si.state.subjects == {"prg.b": 5}

    # keep
    for i in range(11, 21):
        await js.publish("prg.a" if i % 2 else "prg.b", str(i).encode())
    resp = await api_req(nc, "$JS.API.STREAM.PURGE.PRG", {"keep": 4})
    assert resp["success"] is True and resp["purged"] == 11
    st = await state(nc, "PRG")
    assert (st["messages"], st["first_seq"], st["last_seq"]) == (4, 17, 20)

    # seq: purge everything below 19
    resp = await api_req(nc, "$JS.API.STREAM.PURGE.PRG", {"seq": 19})
    assert resp["success"] is True and resp["purged"] == 2
    st = await state(nc, "PRG")
    assert (st["messages"], st["first_seq"], st["last_seq"]) == (2, 19, 20)

    # filter + keep
    for i in range(21, 27):
        await js.publish("prg.a", str(i).encode())
    resp = await api_req(nc, "$JS.API.STREAM.PURGE.PRG", {"filter": "prg.a", "keep": 2})
    assert resp["purged"] == 5
    si = await js.stream_info("PRG", subjects_filter=">")
    assert si.state.subjects == {"prg.a": 2, "prg.b": 1}

    # seq and keep together are refused
    resp = await api_req(nc, "$JS.API.STREAM.PURGE.PRG", {"seq": 3, "keep": 1})
    assert_api_error(resp, 400, 10003, "bad request")
    assert resp["purged"] == 0

    # everything, through the client
    assert await js.purge_stream("PRG") is True
    si = await js.stream_info("PRG")
    assert si.state.messages == 0 and si.state.bytes == 0
    assert si.state.first_seq == 27 and si.state.last_seq == 26
    # sequences continue after a purge
    assert (await js.publish("prg.a", b"x")).seq == 27

    resp = await api_req(nc, "$JS.API.STREAM.PURGE.NOPE", {})
    assert_api_error(resp, 404, 10059, "stream not found")


# --------------------------------------------------------------------------
# message get / delete
# --------------------------------------------------------------------------


async def test_msg_get_and_delete(nc):
    js = nc.jetstream()
    await js.add_stream(name="GET", subjects=["get.*"], storage=api.StorageType.FILE)
    await js.publish("get.a", b"a1", headers={"X-Test": "yes"})
    await js.publish("get.b", b"b1")
    await js.publish("get.a", b"a2")
    await js.publish("get.b", b"b2")

    m = await js.get_msg("GET", 1)
    assert (m.subject, m.seq, m.data) == ("get.a", 1, b"a1")
    assert m.headers == {"X-Test": "yes"}

    raw = await api_req(nc, "$JS.API.STREAM.MSG.GET.GET", {"seq": 2})
    assert raw["type"] == "io.nats.jetstream.api.v1.stream_msg_get_response"
    msg = raw["message"]
    assert msg["subject"] == "get.b" and msg["seq"] == 2
    assert base64.b64decode(msg["data"]) == b"b1"
    assert "hdrs" not in msg and "time" in msg
    raw = await api_req(nc, "$JS.API.STREAM.MSG.GET.GET", {"seq": 1})
    assert base64.b64decode(raw["message"]["hdrs"]) == b"NATS/1.0\r\nX-Test: yes\r\n\r\n"

    # last_by_subj
    m = await js.get_msg("GET", subject="get.a")
    assert (m.seq, m.data) == (3, b"a2")
    m = await js.get_last_msg("GET", "get.b")
    assert (m.seq, m.data) == (4, b"b2")
    # next_by_subj: first message on the subject at or after seq
    m = await js.get_msg("GET", seq=2, subject="get.a", next=True)
    assert (m.seq, m.data) == (3, b"a2")
    raw = await api_req(nc, "$JS.API.STREAM.MSG.GET.GET", {"seq": 1, "next_by_subj": "get.*"})
    assert raw["message"]["seq"] == 1
    raw = await api_req(nc, "$JS.API.STREAM.MSG.GET.GET", {"seq": 5, "next_by_subj": "get.a"})
    assert_api_error(raw, 404, 10037, "no message found")

    # not found / bad requests
    with pytest.raises(NotFoundError) as ei:
        await js.get_msg("GET", 99)
    assert_exc(ei.value, 404, 10037, "no message found")
    raw = await api_req(nc, "$JS.API.STREAM.MSG.GET.GET", {"last_by_subj": "get.zz"})
    assert_api_error(raw, 404, 10037, "no message found")
    for bad in ({}, {"seq": 0}, {"seq": 1, "last_by_subj": "get.a"}):
        raw = await api_req(nc, "$JS.API.STREAM.MSG.GET.GET", bad)
        assert_api_error(raw, 400, 10003, "bad request")
    raw = await api_req(nc, "$JS.API.STREAM.MSG.GET.NOPE", {"seq": 1})
    assert_api_error(raw, 404, 10059, "stream not found")

    # delete
    assert await js.delete_msg("GET", 2) is True
    with pytest.raises(NotFoundError) as ei:
        await js.get_msg("GET", 2)
    assert_exc(ei.value, 404, 10037, "no message found")
    raw = await api_req(nc, "$JS.API.STREAM.MSG.DELETE.GET", {"seq": 2})
    assert raw["type"] == "io.nats.jetstream.api.v1.stream_msg_delete_response"
    assert_api_error(raw, 400, 10043, "sequence 2 not found")
    raw = await api_req(nc, "$JS.API.STREAM.MSG.DELETE.GET", {"seq": 3, "no_erase": True})
    assert raw == {"type": "io.nats.jetstream.api.v1.stream_msg_delete_response", "success": True}
    raw = await api_req(nc, "$JS.API.STREAM.MSG.DELETE.GET")
    assert_api_error(raw, 400, 10003, "bad request")
    st = await state(nc, "GET", deleted_details=True)
    assert st["messages"] == 2 and st["deleted"] == [2, 3]
    # last_by_subj skips deleted messages
    m = await js.get_msg("GET", subject="get.a")
    assert m.seq == 1


# --------------------------------------------------------------------------
# sealed / deny delete / deny purge / rollup
# --------------------------------------------------------------------------


async def test_sealed_stream(nc):
    js = nc.jetstream()
    await create(nc, "SEAL")
    await jpub(nc, "seal.a")
    si = await js.stream_info("SEAL")
    si2 = await js.update_stream(si.config, sealed=True)
    assert si2.config.sealed is True

    assert_pub_error(await jpub(nc, "seal.a"), "SEAL", 400, 10109, "invalid operation on sealed stream")
    resp = await api_req(nc, "$JS.API.STREAM.PURGE.SEAL")
    assert_api_error(resp, 400, 10109, "invalid operation on sealed stream")
    resp = await api_req(nc, "$JS.API.STREAM.MSG.DELETE.SEAL", {"seq": 1})
    assert_api_error(resp, 400, 10109, "invalid operation on sealed stream")
    resp = await api_req(nc, "$JS.API.STREAM.UPDATE.SEAL", {**si2.config.as_dict(), "sealed": False})
    assert_api_error(resp, 500, 10052, "stream configuration update can not unseal a sealed stream")

    st = await state(nc, "SEAL")
    assert st["messages"] == 1 and st["last_seq"] == 1
    assert (await js.get_msg("SEAL", 1)).data == b"x"
    assert await js.delete_stream("SEAL") is True


async def test_deny_delete_and_deny_purge(nc):
    await create(nc, "DENY", deny_delete=True, deny_purge=True)
    await jpub(nc, "deny.a")
    resp = await api_req(nc, "$JS.API.STREAM.MSG.DELETE.DENY", {"seq": 1})
    assert_api_error(resp, 500, 10057, "message delete not permitted")
    resp = await api_req(nc, "$JS.API.STREAM.PURGE.DENY", {})
    assert_api_error(resp, 500, 10110, "stream purge not permitted")
    assert resp["purged"] == 0

    cfg = (await info(nc, "DENY"))["config"]
    resp = await api_req(nc, "$JS.API.STREAM.UPDATE.DENY", {**cfg, "deny_delete": False})
    assert_api_error(resp, 500, 10052, "stream configuration update can not cancel deny message deletes")
    resp = await api_req(nc, "$JS.API.STREAM.UPDATE.DENY", {**cfg, "deny_purge": False})
    assert_api_error(resp, 500, 10052, "stream configuration update can not cancel deny purge")
    assert (await state(nc, "DENY"))["messages"] == 1


async def test_rollup_headers(nc):
    await create(nc, "RU", allow_rollup_hdrs=True)
    for s in ["ru.a", "ru.a", "ru.b"]:
        await jpub(nc, s)
    assert await jpub(nc, "ru.a", b"r", headers={"Nats-Rollup": "sub"}) == {"stream": "RU", "seq": 4}
    st = await state(nc, "RU", subjects_filter=">")
    assert st["subjects"] == {"ru.a": 1, "ru.b": 1}
    assert (st["messages"], st["first_seq"], st["last_seq"]) == (2, 3, 4)

    assert await jpub(nc, "ru.b", b"r", headers={"Nats-Rollup": "all"}) == {"stream": "RU", "seq": 5}
    st = await state(nc, "RU", subjects_filter=">")
    assert st["subjects"] == {"ru.b": 1}
    assert (st["messages"], st["first_seq"], st["last_seq"]) == (1, 5, 5)

    assert_pub_error(
        await jpub(nc, "ru.b", b"r", headers={"Nats-Rollup": "xyz"}), "RU", 500, 10111, 'rollup value invalid: "xyz"'
    )

    await create(nc, "NORU")
    await jpub(nc, "noru.a")
    assert_pub_error(
        await jpub(nc, "noru.a", b"r", headers={"Nats-Rollup": "all"}), "NORU", 500, 10111, "rollup not permitted"
    )
    assert (await state(nc, "NORU"))["messages"] == 1


# --------------------------------------------------------------------------
# direct get
# --------------------------------------------------------------------------


async def test_direct_get(nc):
    js = nc.jetstream()
    await create(nc, "DG", allow_direct=True)
    await jpub(nc, "dg.a", b"one", headers={"H": "v"})
    await jpub(nc, "dg.b", b"two")
    await jpub(nc, "dg.a", b"three")

    m = await nc.request("$JS.API.DIRECT.GET.DG", json.dumps({"seq": 1}).encode(), timeout=5)
    assert m.data == b"one"
    assert m.headers["Nats-Stream"] == "DG"
    assert m.headers["Nats-Subject"] == "dg.a"
    assert m.headers["Nats-Sequence"] == "1"
    assert m.headers["H"] == "v"
    ts = m.headers["Nats-Time-Stamp"]
    assert ts.endswith("Z") and "T" in ts

    m = await nc.request("$JS.API.DIRECT.GET.DG", json.dumps({"last_by_subj": "dg.a"}).encode(), timeout=5)
    assert (m.data, m.headers["Nats-Sequence"], m.headers["Nats-Subject"]) == (b"three", "3", "dg.a")
    m = await nc.request("$JS.API.DIRECT.GET.DG", json.dumps({"seq": 2, "next_by_subj": "dg.a"}).encode(), timeout=5)
    assert m.headers["Nats-Sequence"] == "3"

    # last-for-subject form: the subject is in the request subject, empty body.
    m = await nc.request("$JS.API.DIRECT.GET.DG.dg.b", b"", timeout=5)
    assert (m.data, m.headers["Nats-Sequence"], m.headers["Nats-Subject"]) == (b"two", "2", "dg.b")

    # nats-py helpers
    rm = await js.get_msg("DG", 1, direct=True)
    assert (rm.subject, rm.seq, rm.data) == ("dg.a", 1, b"one")
    rm = await js.get_last_msg("DG", "dg.a", direct=True)
    assert (rm.seq, rm.data) == (3, b"three")

    # missing message: status 404 with no body
    for subj, body in (
        ("$JS.API.DIRECT.GET.DG", json.dumps({"seq": 99}).encode()),
        ("$JS.API.DIRECT.GET.DG.dg.zz", b""),
        ("$JS.API.DIRECT.GET.DG", json.dumps({"last_by_subj": "dg.zz"}).encode()),
    ):
        m = await nc.request(subj, body, timeout=5)
        assert m.data == b""
        assert m.headers["Status"] == "404"
        assert m.headers["Description"] == "Message Not Found"
    with pytest.raises(NotFoundError):
        await js.get_msg("DG", 99, direct=True)

    m = await nc.request("$JS.API.DIRECT.GET.DG", b"", timeout=5)
    assert (m.headers["Status"], m.headers["Description"]) == ("408", "Empty Request")
    m = await nc.request("$JS.API.DIRECT.GET.DG", b"{bad", timeout=5)
    assert (m.headers["Status"], m.headers["Description"]) == ("408", "Malformed Request")

    # Without allow_direct nobody answers.
    await create(nc, "NODG")
    await jpub(nc, "nodg.a")
    with pytest.raises(NoRespondersError):
        await nc.request("$JS.API.DIRECT.GET.NODG", json.dumps({"seq": 1}).encode(), timeout=2)


# --------------------------------------------------------------------------
# account info
# --------------------------------------------------------------------------


async def test_account_info(nc):
    js = nc.jetstream()
    ai = await api_req(nc, "$JS.API.INFO")
    assert ai["type"] == "io.nats.jetstream.api.v1.account_info_response"
    assert (ai["streams"], ai["consumers"], ai["memory"], ai["storage"]) == (0, 0, 0, 0)
    assert ai["limits"]["max_streams"] == -1 and ai["limits"]["max_memory"] == -1
    assert ai["api"]["level"] >= 1

    await create(nc, "AM", storage="memory")
    await create(nc, "AF", storage="file")
    for _ in range(3):
        await jpub(nc, "am.x", b"hello")
        await jpub(nc, "af.x", b"hello")
    ai = await js.account_info()
    assert ai.streams == 2 and ai.consumers == 0
    assert ai.memory == 3 * mem_size("am.x", b"hello")
    assert ai.storage == 3 * file_size("af.x", b"hello")

    await js.delete_stream("AM")
    ai = await api_req(nc, "$JS.API.INFO")
    assert ai["streams"] == 1 and ai["memory"] == 0
    assert ai["storage"] == 3 * file_size("af.x", b"hello")


# --------------------------------------------------------------------------
# durability
# --------------------------------------------------------------------------


async def test_restart_durability_after_sigkill(start_server, tmp_path):
    store = tmp_path / "durable"
    store.mkdir()
    srv = start_server("-js", "-sd", str(store))
    nc = await connect(srv.url)
    try:
        js = nc.jetstream()
        await js.add_stream(name="DUR", subjects=["dur.*"], storage=api.StorageType.FILE)
        await js.add_stream(name="VOL", subjects=["vol"], storage=api.StorageType.MEMORY)
        await js.publish("vol", b"gone")
        futs = [await js.publish_async(f"dur.{i % 7}", f"msg-{i}".encode()) for i in range(1, 1001)]
        acks = await asyncio.wait_for(asyncio.gather(*futs), 30)
        assert [a.seq for a in acks] == list(range(1, 1001))
        assert all(a.stream == "DUR" for a in acks)
    finally:
        await close_all(nc)

    srv.proc.kill()  # SIGKILL: no chance to flush or close anything
    srv.proc.wait(5)

    srv2 = start_server("-js", "-sd", str(store))
    nc = await connect(srv2.url)
    try:
        js = nc.jetstream()
        si = await js.stream_info("DUR")
        assert si.state.messages == 1000
        assert si.state.first_seq == 1 and si.state.last_seq == 1000
        for seq in (1, 2, 500, 999, 1000):
            m = await js.get_msg("DUR", seq)
            assert (m.seq, m.subject, m.data) == (seq, f"dur.{seq % 7}", f"msg-{seq}".encode())
        m = await js.get_msg("DUR", subject="dur.3")
        assert m.seq == 997
        # Memory streams do not survive a restart of a single server.
        names = await api_req(nc, "$JS.API.STREAM.NAMES", {})
        assert names["streams"] == ["DUR"]
        # New publishes continue the sequence.
        assert (await js.publish("dur.0", b"after")).seq == 1001
    finally:
        await close_all(nc)
