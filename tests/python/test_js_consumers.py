"""JetStream consumers through raw ``$JS.API.CONSUMER.*`` requests and nats-py.

Every error code/text and status line asserted here was observed from the
reference nats-server v2.15.0 (``-js -sd <dir>``, single server); the server
under test must answer the same.  Each test gets its own store directory.

Ack reply subjects have the 9-token form
``$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>``.
Pull status messages carry headers (``Status`` / ``Description``):
``404 No Messages``, ``408 Request Timeout``, ``409 Exceeded MaxWaiting``,
``409 Message Size Exceeds MaxBytes``, ``100 Idle Heartbeat``,
``100 FlowControl Request`` (push).
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

import pytest
from nats.js import api
from nats.js.errors import NotFoundError

from helpers import api_req, close_all, connect, sync

NS = 1_000_000_000
MS = 1_000_000

# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


async def stream(nc, name: str, **cfg) -> dict:
    """Create a memory stream (subjects default to ``<name lower>.>``)."""
    body = {"name": name, "subjects": [name.lower() + ".>"], "storage": "memory", **cfg}
    resp = await api_req(nc, f"$JS.API.STREAM.CREATE.{name}", body)
    assert "error" not in resp, resp
    return resp


async def pub(nc, subject: str, data: bytes = b"x", headers: Optional[dict] = None) -> int:
    """Publish to a stream and return the stream sequence from the PubAck."""
    msg = await nc.request(subject, data, timeout=5, headers=headers)
    ack = json.loads(msg.data)
    assert "error" not in ack, ack
    return ack["seq"]


async def consumer_raw(nc, stream_name: str, cfg: dict, action: Optional[str] = None,
                       subject: Optional[str] = None) -> dict:
    """``$JS.API.CONSUMER.CREATE.<stream>[.<name>]`` with ``cfg``; the raw reply."""
    name = cfg.get("durable_name") or cfg.get("name")
    if subject is None:
        subject = f"$JS.API.CONSUMER.CREATE.{stream_name}" + (f".{name}" if name else "")
    body: dict = {"stream_name": stream_name, "config": cfg}
    if action is not None:
        body["action"] = action
    return await api_req(nc, subject, body)


async def consumer(nc, stream_name: str, **cfg) -> dict:
    resp = await consumer_raw(nc, stream_name, cfg)
    assert "error" not in resp, resp
    return resp


async def cinfo(nc, stream_name: str, name: str) -> dict:
    resp = await api_req(nc, f"$JS.API.CONSUMER.INFO.{stream_name}.{name}")
    assert "error" not in resp, resp
    return resp


def assert_api_error(resp: dict, code: int, err_code: int, description: str) -> None:
    assert "error" in resp, f"expected error {err_code}, got {resp}"
    assert resp["error"] == {"code": code, "err_code": err_code, "description": description}, resp


def parse_ack(reply: str) -> dict:
    """Split a v1 ack reply subject into its fields."""
    t = reply.split(".")
    assert len(t) == 9 and t[0] == "$JS" and t[1] == "ACK", reply
    return {
        "stream": t[2],
        "consumer": t[3],
        "delivered": int(t[4]),
        "sseq": int(t[5]),
        "cseq": int(t[6]),
        "ts": int(t[7]),
        "pending": int(t[8]),
    }


def status(msg) -> tuple[str, str]:
    """(Status, Description) of a status message with an empty body."""
    h = msg.headers or {}
    return h.get("Status", ""), h.get("Description", "")


class Inbox:
    """A subscription feeding a queue: ``await box.next()``, ``await box.none()``."""

    def __init__(self, nc, subject: str, queue: Optional[str] = None):
        self.nc = nc
        self.subject = subject
        self.queue = queue
        self.q: asyncio.Queue = asyncio.Queue()
        self.sub = None

    async def start(self) -> "Inbox":
        async def cb(m):
            self.q.put_nowait(m)

        self.sub = await self.nc.subscribe(self.subject, queue=self.queue or "", cb=cb)
        await sync(self.nc)
        return self

    async def next(self, timeout: float = 5.0):
        try:
            return await asyncio.wait_for(self.q.get(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"no message on {self.subject} within {timeout}s") from None

    async def take(self, n: int, timeout: float = 5.0) -> list:
        return [await self.next(timeout) for _ in range(n)]

    async def none(self, quiet: float = 0.3) -> None:
        """Assert nothing (more) arrives for ``quiet`` seconds."""
        try:
            m = await asyncio.wait_for(self.q.get(), quiet)
        except asyncio.TimeoutError:
            return
        raise AssertionError(f"unexpected message on {self.subject}: {m.subject} {m.headers} {m.data!r}")


async def inbox(nc, subject: Optional[str] = None, queue: Optional[str] = None) -> Inbox:
    return await Inbox(nc, subject or nc.new_inbox(), queue).start()


async def pull(nc, stream_name: str, name: str, box: Inbox, body: Any = None) -> None:
    """Send a pull request (``$JS.API.CONSUMER.MSG.NEXT``) replying to ``box``."""
    if body is None:
        data = b""
    elif isinstance(body, (bytes, bytearray)):
        data = bytes(body)
    else:
        data = json.dumps(body).encode()
    await nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{stream_name}.{name}", data, reply=box.subject)
    await sync(nc)


async def ack(nc, msg, body: bytes = b"+ACK") -> None:
    await nc.publish(msg.reply, body)
    await sync(nc)


async def wait_info(nc, stream_name: str, name: str, pred, timeout: float = 5.0, what: str = "consumer info"):
    deadline = time.monotonic() + timeout
    while True:
        ci = await cinfo(nc, stream_name, name)
        if pred(ci):
            return ci
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last info {ci}")
        await asyncio.sleep(0.02)


async def wait_state(nc, stream_name: str, pred, timeout: float = 5.0, what: str = "stream state"):
    deadline = time.monotonic() + timeout
    while True:
        st = (await api_req(nc, f"$JS.API.STREAM.INFO.{stream_name}"))["state"]
        if pred(st):
            return st
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last state {st}")
        await asyncio.sleep(0.02)


def rfc3339(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --------------------------------------------------------------------------
# management
# --------------------------------------------------------------------------


async def test_create_durable_defaults_and_info(nc):
    await stream(nc, "ORD")
    for i in range(3):
        await pub(nc, f"ord.{i}")
    resp = await consumer(nc, "ORD", durable_name="D", ack_policy="explicit")
    assert resp["type"] == "io.nats.jetstream.api.v1.consumer_create_response"
    assert resp["stream_name"] == "ORD" and resp["name"] == "D"
    c = resp["config"]
    assert c["durable_name"] == "D" and c["name"] == "D"
    assert c["deliver_policy"] == "all"
    assert c["ack_policy"] == "explicit"
    assert c["ack_wait"] == 30 * NS
    assert c["max_deliver"] == -1
    assert c["replay_policy"] == "instant"
    assert c["max_waiting"] == 512
    assert c["max_ack_pending"] == 1000
    assert "deliver_subject" not in c
    assert resp["delivered"] == {"consumer_seq": 0, "stream_seq": 0}
    assert resp["ack_floor"] == {"consumer_seq": 0, "stream_seq": 0}
    assert resp["num_ack_pending"] == 0 and resp["num_redelivered"] == 0
    assert resp["num_waiting"] == 0 and resp["num_pending"] == 3

    ci = await cinfo(nc, "ORD", "D")
    assert ci["type"] == "io.nats.jetstream.api.v1.consumer_info_response"
    assert ci["num_pending"] == 3 and ci["config"] == c
    await pub(nc, "ord.x")
    assert (await cinfo(nc, "ORD", "D"))["num_pending"] == 4

    # Without an ack policy a durable gets ack policy "none" (no ack_wait,
    # no max_ack_pending in the reply).
    resp = await consumer(nc, "ORD", durable_name="NOACK")
    assert resp["config"]["ack_policy"] == "none"
    assert "ack_wait" not in resp["config"] and "max_ack_pending" not in resp["config"]

    # Creating an identical consumer again is fine (no action) and returns
    # the existing one, with its state.
    first_created = ci["created"]
    again = await consumer(nc, "ORD", durable_name="D", ack_policy="explicit")
    assert again["created"] == first_created and again["num_pending"] == 4


async def test_create_action_create_and_update(nc):
    await stream(nc, "ACT")
    base = {"durable_name": "C", "ack_policy": "explicit"}
    assert "error" not in await consumer_raw(nc, "ACT", base, action="create")
    # Same config with action create: fine.
    assert "error" not in await consumer_raw(nc, "ACT", base, action="create")
    # Different config with action create.
    resp = await consumer_raw(nc, "ACT", {**base, "description": "changed"}, action="create")
    assert_api_error(resp, 400, 10148, "consumer already exists")
    assert resp["type"] == "io.nats.jetstream.api.v1.consumer_create_response"
    # Update of a missing one.
    resp = await consumer_raw(nc, "ACT", {"durable_name": "MISSING", "ack_policy": "explicit"}, action="update")
    assert_api_error(resp, 400, 10149, "consumer does not exist")
    resp = await consumer_raw(nc, "ACT", {"ack_policy": "explicit"}, action="update")
    assert_api_error(resp, 400, 10149, "consumer does not exist")
    # Update of the existing one.
    resp = await consumer_raw(nc, "ACT", {**base, "description": "changed"}, action="update")
    assert "error" not in resp and resp["config"]["description"] == "changed"
    # Unknown action.
    resp = await consumer_raw(nc, "ACT", base, action="bogus")
    assert_api_error(resp, 400, 10025, 'invalid JSON: unknown consumer action: "bogus"')
    names = await api_req(nc, "$JS.API.CONSUMER.NAMES.ACT", {})
    assert names["consumers"] == ["C"]


async def test_create_with_filter_in_subject(nc):
    await stream(nc, "FIS")
    await pub(nc, "fis.a")
    await pub(nc, "fis.b")
    resp = await consumer_raw(
        nc, "FIS", {"durable_name": "F", "ack_policy": "explicit", "filter_subject": "fis.b"},
        subject="$JS.API.CONSUMER.CREATE.FIS.F.fis.b",
    )
    assert "error" not in resp, resp
    assert resp["config"]["filter_subject"] == "fis.b" and resp["num_pending"] == 1
    # Filter in the subject but not in the config, or a different one.
    for cfg in ({"durable_name": "G"}, {"durable_name": "G", "filter_subject": "fis.a"}):
        resp = await consumer_raw(nc, "FIS", cfg, subject="$JS.API.CONSUMER.CREATE.FIS.G.fis.b")
        assert_api_error(
            resp, 400, 10131, "Consumer create request did not match filtered subject from create subject"
        )


async def test_legacy_durable_create_and_ephemeral(nc):
    await stream(nc, "LEG")
    await pub(nc, "leg.a")
    resp = await api_req(
        nc, "$JS.API.CONSUMER.DURABLE.CREATE.LEG.DUR",
        {"stream_name": "LEG", "config": {"durable_name": "DUR", "ack_policy": "explicit"}},
    )
    assert "error" not in resp, resp
    assert resp["type"] == "io.nats.jetstream.api.v1.consumer_create_response"
    assert resp["name"] == "DUR" and resp["config"]["durable_name"] == "DUR"
    resp = await api_req(
        nc, "$JS.API.CONSUMER.DURABLE.CREATE.LEG.DUR2",
        {"stream_name": "LEG", "config": {"durable_name": "OTHER", "ack_policy": "explicit"}},
    )
    assert_api_error(resp, 400, 10017, "consumer name in subject does not match durable name in request")

    # Ephemeral: $JS.API.CONSUMER.CREATE.<stream> without a name gets a
    # server-generated 8 character name and no durable_name.
    resp = await api_req(nc, "$JS.API.CONSUMER.CREATE.LEG", {"stream_name": "LEG", "config": {"ack_policy": "explicit"}})
    assert "error" not in resp, resp
    eph = resp["name"]
    assert len(eph) == 8 and eph.isalnum(), eph
    assert "durable_name" not in resp["config"]
    assert resp["config"]["inactive_threshold"] == 5 * NS
    assert resp["num_pending"] == 1
    # A named ephemeral ("name" without "durable_name").
    resp = await api_req(
        nc, "$JS.API.CONSUMER.CREATE.LEG.EPH",
        {"stream_name": "LEG", "config": {"name": "EPH", "ack_policy": "explicit", "inactive_threshold": 10 * NS}},
    )
    assert "error" not in resp, resp
    assert resp["name"] == "EPH" and "durable_name" not in resp["config"]
    assert resp["config"]["inactive_threshold"] == 10 * NS
    names = await api_req(nc, "$JS.API.CONSUMER.NAMES.LEG", {})
    assert sorted(names["consumers"]) == sorted(["DUR", "EPH", eph])


async def test_ephemeral_is_removed_after_inactive_threshold(nc):
    await stream(nc, "INACT")
    resp = await api_req(
        nc, "$JS.API.CONSUMER.CREATE.INACT.TMP",
        {"stream_name": "INACT", "config": {"name": "TMP", "ack_policy": "explicit", "inactive_threshold": 500 * MS}},
    )
    assert "error" not in resp, resp
    deadline = time.monotonic() + 10
    while True:
        r = await api_req(nc, "$JS.API.CONSUMER.INFO.INACT.TMP")
        if "error" in r:
            assert_api_error(r, 404, 10014, "consumer not found")
            break
        assert time.monotonic() < deadline, "ephemeral consumer was never removed"
        await asyncio.sleep(0.1)


async def test_invalid_consumer_configs(nc):
    await stream(nc, "INV")
    cases = [
        # (subject suffix or None for CREATE.INV.<durable>, config, code, err_code, description)
        ("", {"durable_name": "D.X"}, 400, 10020,
         "consumer expected to be ephemeral but a durable name was set in request"),
        (".D.X", {"durable_name": "D.X"}, 400, 10017,
         "consumer name in subject does not match durable name in request"),
        (".D*", {"durable_name": "D*"}, 500, 10052, "consumer name can not contain '.', '*', '>', '\\', '/'"),
        (None, {"durable_name": "C1", "deliver_subject": "dd", "max_waiting": 5}, 400, 10080,
         "consumer in push mode can not set max waiting"),
        (None, {"durable_name": "C2", "deliver_policy": "by_start_sequence"}, 400, 10094,
         "consumer delivery policy is deliver by start sequence, but optional start sequence is not set"),
        (None, {"durable_name": "C3", "deliver_policy": "all", "opt_start_seq": 3}, 400, 10094,
         "consumer delivery policy is deliver all, but optional start sequence is also set"),
        (None, {"durable_name": "C4", "deliver_policy": "by_start_time"}, 400, 10094,
         "consumer delivery policy is deliver by start time, but optional start time is not set"),
        (None, {"durable_name": "C5", "deliver_policy": "by_start_time", "opt_start_time": "2020-01-01T00:00:00Z",
                "opt_start_seq": 2}, 400, 10094,
         "consumer delivery policy is deliver by start time, but optional start start sequence is also set"),
        (None, {"durable_name": "C6", "deliver_policy": "last_per_subject"}, 400, 10094,
         "consumer delivery policy is deliver last per subject, but optional filter subject is not set"),
        (None, {"durable_name": "C7", "filter_subjects": ["inv.1", "inv.>"]}, 400, 10138,
         "consumer subject filters cannot overlap"),
        (None, {"durable_name": "C8", "filter_subject": "inv.1", "filter_subjects": ["inv.0"]}, 400, 10136,
         "consumer cannot have both FilterSubject and FilterSubjects specified"),
        (None, {"durable_name": "C9", "ack_policy": "explicit", "max_deliver": 1, "backoff": [NS, 2 * NS]}, 400,
         10116, "max deliver is required to be > length of backoff values"),
        (None, {"durable_name": "C10", "idle_heartbeat": NS}, 400, 10088,
         "consumer idle heartbeat requires a push based consumer"),
        (None, {"durable_name": "C11", "flow_control": True}, 400, 10089,
         "consumer flow control requires a push based consumer"),
        (None, {"durable_name": "C12", "flow_control": True, "deliver_subject": "dd"}, 400, 10108,
         "consumer with flow control also needs heartbeats"),
        (None, {"durable_name": "C13", "deliver_subject": "inv.loop"}, 400, 10081,
         "consumer deliver subject forms a cycle"),
        (None, {"durable_name": "C14", "deliver_subject": "dd.*"}, 400, 10079,
         "consumer deliver subject has wildcards"),
        (None, {"durable_name": "C15", "ack_policy": "explicit", "ack_wait": -1}, 400, 10183,
         "consumer ack wait needs to be positive"),
        (None, {"durable_name": "C16", "filter_subject": "inv..x"}, 500, 10052, "invalid subject"),
        (None, {"durable_name": "C17", "num_replicas": 3}, 500, 10074,
         "replicas > 1 not supported in non-clustered mode"),
        (None, {"durable_name": "C18", "sample_freq": "abc"}, 400, 10095,
         'failed to parse consumer sampling configuration: strconv.Atoi: parsing "abc": invalid syntax'),
        (None, {"durable_name": "C19", "ack_policy": "bogus"}, 400, 10025,
         'invalid JSON: can not unmarshal "\\"bogus\\""'),
    ]
    for suffix, cfg, code, err_code, desc in cases:
        subject = (
            f"$JS.API.CONSUMER.CREATE.INV.{cfg['durable_name']}" if suffix is None
            else "$JS.API.CONSUMER.CREATE.INV" + suffix
        )
        resp = await consumer_raw(nc, "INV", cfg, subject=subject)
        assert "error" in resp, (cfg, resp)
        assert resp["error"] == {"code": code, "err_code": err_code, "description": desc}, (cfg, resp)

    # Stream name in the subject and body differ / body missing / bad JSON.
    resp = await api_req(nc, "$JS.API.CONSUMER.CREATE.INV.X", {"stream_name": "OTHER", "config": {"durable_name": "X"}})
    assert_api_error(resp, 400, 10056, "stream name in subject does not match request")
    resp = await api_req(nc, "$JS.API.CONSUMER.CREATE.INV.X")
    assert_api_error(resp, 400, 10056, "stream name in subject does not match request")
    resp = await api_req(nc, "$JS.API.CONSUMER.CREATE.INV.X", b"{bad")
    assert_api_error(
        resp, 400, 10025, "invalid JSON: invalid character 'b' looking for beginning of object key string at offset 2"
    )
    # Push-only fields on a pull consumer are not rejected by the server, nor
    # pull-only ones on a push consumer; none of the failures above was created.
    names = await api_req(nc, "$JS.API.CONSUMER.NAMES.INV", {})
    assert names["total"] == 0 and not names["consumers"]


async def test_consumer_on_missing_stream(nc):
    resp = await consumer_raw(nc, "NOPE", {"durable_name": "X"})
    assert_api_error(resp, 404, 10059, "stream not found")
    resp = await api_req(nc, "$JS.API.CONSUMER.INFO.NOPE.X")
    assert_api_error(resp, 404, 10059, "stream not found")
    assert resp["type"] == "io.nats.jetstream.api.v1.consumer_info_response"
    resp = await api_req(nc, "$JS.API.CONSUMER.NAMES.NOPE", {})
    assert_api_error(resp, 404, 10059, "stream not found")
    resp = await api_req(nc, "$JS.API.CONSUMER.DELETE.NOPE.X")
    assert_api_error(resp, 404, 10059, "stream not found")


async def test_names_list_paging_and_stream_consumer_count(nc):
    await stream(nc, "PG")
    names = [f"C{i:02d}" for i in range(5)]
    for n in reversed(names):
        await consumer(nc, "PG", durable_name=n, ack_policy="explicit")
    resp = await api_req(nc, "$JS.API.CONSUMER.NAMES.PG", {})
    assert resp["type"] == "io.nats.jetstream.api.v1.consumer_names_response"
    assert resp["total"] == 5 and resp["offset"] == 0 and resp["limit"] == 1024
    assert resp["consumers"] == names
    resp = await api_req(nc, "$JS.API.CONSUMER.NAMES.PG", {"offset": 3})
    assert resp["total"] == 5 and resp["offset"] == 3 and resp["consumers"] == names[3:]
    resp = await api_req(nc, "$JS.API.CONSUMER.NAMES.PG")  # empty body
    assert resp["consumers"] == names

    resp = await api_req(nc, "$JS.API.CONSUMER.LIST.PG", {})
    assert resp["type"] == "io.nats.jetstream.api.v1.consumer_list_response"
    assert resp["total"] == 5 and resp["offset"] == 0 and resp["limit"] == 256
    assert [c["name"] for c in resp["consumers"]] == names
    assert all(c["stream_name"] == "PG" and "config" in c and "delivered" in c for c in resp["consumers"])
    resp = await api_req(nc, "$JS.API.CONSUMER.LIST.PG", {"offset": 4})
    assert [c["name"] for c in resp["consumers"]] == ["C04"]
    resp = await api_req(nc, "$JS.API.CONSUMER.LIST.PG", {"offset": 9})
    assert resp["total"] == 5 and not resp["consumers"]

    si = await api_req(nc, "$JS.API.STREAM.INFO.PG")
    assert si["state"]["consumer_count"] == 5
    acc = await api_req(nc, "$JS.API.INFO")
    assert acc["consumers"] == 5

    js = nc.jetstream()
    infos = await js.consumers_info("PG")
    assert sorted(i.name for i in infos) == names


async def test_delete_consumer(nc):
    await stream(nc, "DC")
    await consumer(nc, "DC", durable_name="GONE", ack_policy="explicit")
    resp = await api_req(nc, "$JS.API.CONSUMER.DELETE.DC.GONE")
    assert resp == {"type": "io.nats.jetstream.api.v1.consumer_delete_response", "success": True}
    resp = await api_req(nc, "$JS.API.CONSUMER.INFO.DC.GONE")
    assert_api_error(resp, 404, 10014, "consumer not found")
    resp = await api_req(nc, "$JS.API.CONSUMER.DELETE.DC.GONE")
    assert_api_error(resp, 404, 10014, "consumer not found")
    assert resp["type"] == "io.nats.jetstream.api.v1.consumer_delete_response"
    assert (await api_req(nc, "$JS.API.STREAM.INFO.DC"))["state"]["consumer_count"] == 0
    # nats-py
    js = nc.jetstream()
    await js.add_consumer("DC", durable_name="PY", ack_policy=api.AckPolicy.EXPLICIT)
    assert await js.delete_consumer("DC", "PY") is True
    with pytest.raises(NotFoundError) as ei:
        await js.consumer_info("DC", "PY")
    assert (ei.value.code, ei.value.err_code, ei.value.description) == (404, 10014, "consumer not found")
    # A pull request to a deleted consumer: nobody answers.
    from nats.errors import NoRespondersError

    with pytest.raises(NoRespondersError):
        await nc.request("$JS.API.CONSUMER.MSG.NEXT.DC.GONE", b'{"batch":1}', timeout=2)
    # Deleting the stream deletes its consumers.
    await consumer(nc, "DC", durable_name="WITHSTREAM")
    await api_req(nc, "$JS.API.STREAM.DELETE.DC")
    await stream(nc, "DC")
    resp = await api_req(nc, "$JS.API.CONSUMER.INFO.DC.WITHSTREAM")
    assert_api_error(resp, 404, 10014, "consumer not found")


async def test_update_changeable_and_refused_fields(nc):
    await stream(nc, "UP")
    base = {"durable_name": "U", "ack_policy": "explicit", "filter_subject": "up.a"}
    await consumer(nc, "UP", **base)
    resp = await consumer(nc, "UP", **base, description="d", ack_wait=2 * NS, max_deliver=5,
                          max_ack_pending=10, max_waiting=512, sample_freq="100%")
    c = resp["config"]
    assert c["description"] == "d" and c["ack_wait"] == 2 * NS and c["max_deliver"] == 5
    assert c["max_ack_pending"] == 10 and c["sample_freq"] == "100%"
    # Filter subject may change on update.
    resp = await consumer(nc, "UP", **{**base, "filter_subject": "up.b"})
    assert resp["config"]["filter_subject"] == "up.b"
    assert (await cinfo(nc, "UP", "U"))["config"]["filter_subject"] == "up.b"

    refused = [
        ({"deliver_policy": "new"}, "deliver policy can not be updated"),
        ({"ack_policy": "all"}, "ack policy can not be updated"),
        ({"replay_policy": "original"}, "replay policy can not be updated"),
        ({"max_waiting": 5}, "max waiting can not be updated"),
        ({"deliver_subject": "now.push"}, "can not update pull consumer to push based"),
    ]
    for change, desc in refused:
        resp = await consumer_raw(nc, "UP", {**base, "filter_subject": "up.b", **change})
        assert_api_error(resp, 500, 10012, desc)
    # None of the refused updates took effect.
    c = (await cinfo(nc, "UP", "U"))["config"]
    assert c["deliver_policy"] == "all" and c["ack_policy"] == "explicit"
    assert c["max_waiting"] == 512 and "deliver_subject" not in c

    # A push consumer cannot become a pull consumer.
    await consumer(nc, "UP", durable_name="PUSH", deliver_subject="push.here")
    resp = await consumer_raw(nc, "UP", {"durable_name": "PUSH"})
    assert_api_error(resp, 500, 10012, "can not update push consumer to pull based")
    # ... but its deliver subject may change.
    resp = await consumer(nc, "UP", durable_name="PUSH", deliver_subject="push.there")
    assert resp["config"]["deliver_subject"] == "push.there"


async def test_pause_and_resume(nc):
    await stream(nc, "PAU")
    await consumer(nc, "PAU", durable_name="P", ack_policy="explicit")
    until = datetime.now(timezone.utc) + timedelta(hours=1)
    resp = await api_req(nc, "$JS.API.CONSUMER.PAUSE.PAU.P", {"pause_until": rfc3339(until)})
    assert resp["type"] == "io.nats.jetstream.api.v1.consumer_pause_response"
    assert resp["paused"] is True
    assert 3500 * NS < resp["pause_remaining"] <= 3600 * NS
    ci = await cinfo(nc, "PAU", "P")
    assert ci["paused"] is True and ci["pause_remaining"] > 3500 * NS
    assert ci["config"]["pause_until"].startswith(until.strftime("%Y-%m-%dT%H:%M:%S"))

    # While paused nothing is delivered: no_wait gets 404 with a message
    # pending, a waiting request expires with 408.
    await pub(nc, "pau.a", b"one")
    box = await inbox(nc)
    await pull(nc, "PAU", "P", box, {"batch": 1, "no_wait": True})
    m = await box.next()
    assert status(m) == ("404", "No Messages"), m.headers
    await pull(nc, "PAU", "P", box, {"batch": 1, "expires": 500 * MS})
    m = await box.next(3)
    assert status(m) == ("408", "Request Timeout"), m.headers
    assert m.headers["Nats-Pending-Messages"] == "1"
    assert (await cinfo(nc, "PAU", "P"))["delivered"]["consumer_seq"] == 0

    # Resume: an empty body (no pause_until) unpauses.
    resp = await api_req(nc, "$JS.API.CONSUMER.PAUSE.PAU.P", {})
    assert resp == {
        "type": "io.nats.jetstream.api.v1.consumer_pause_response",
        "paused": False,
        "pause_until": "0001-01-01T00:00:00Z",
    }
    ci = await cinfo(nc, "PAU", "P")
    assert "paused" not in ci or ci["paused"] is False
    assert "pause_until" not in ci["config"]
    await pull(nc, "PAU", "P", box, {"batch": 1, "expires": 3 * NS})
    m = await box.next(3)
    assert m.data == b"one", (m.headers, m.data)

    # A pause time in the past does not pause.
    resp = await api_req(nc, "$JS.API.CONSUMER.PAUSE.PAU.P", {"pause_until": "2001-01-01T00:00:00Z"})
    assert resp["paused"] is False

    # A short pause ends by itself.
    resp = await api_req(
        nc, "$JS.API.CONSUMER.PAUSE.PAU.P",
        {"pause_until": rfc3339(datetime.now(timezone.utc) + timedelta(milliseconds=700))},
    )
    assert resp["paused"] is True and 0 < resp["pause_remaining"] <= 700 * MS
    await wait_info(nc, "PAU", "P", lambda c: not c.get("paused"), timeout=5, what="pause to end")
    await pub(nc, "pau.a", b"two")
    await pull(nc, "PAU", "P", box, {"batch": 1, "expires": 3 * NS})
    m = await box.next(3)
    assert m.data == b"two", (m.headers, m.data)

    # Pausing a missing consumer / missing stream.
    resp = await api_req(nc, "$JS.API.CONSUMER.PAUSE.PAU.NOPE", {})
    assert_api_error(resp, 404, 10014, "consumer not found")
    resp = await api_req(nc, "$JS.API.CONSUMER.PAUSE.NOPE.P", {})
    assert_api_error(resp, 404, 10059, "stream not found")


# --------------------------------------------------------------------------
# pull
# --------------------------------------------------------------------------


async def test_pull_batch_and_ack_subject(nc):
    await stream(nc, "PL")
    for i in range(5):
        await pub(nc, f"pl.{i % 2}", f"m{i}".encode())
    await consumer(nc, "PL", durable_name="P", ack_policy="explicit")
    box = await inbox(nc)
    await pull(nc, "PL", "P", box, {"batch": 2})
    msgs = first = await box.take(2)
    await box.none(0.2)
    assert [m.data for m in msgs] == [b"m0", b"m1"]
    assert [m.subject for m in msgs] == ["pl.0", "pl.1"]
    a0, a1 = parse_ack(msgs[0].reply), parse_ack(msgs[1].reply)
    assert (a0["stream"], a0["consumer"], a0["delivered"], a0["sseq"], a0["cseq"], a0["pending"]) == ("PL", "P", 1, 1, 1, 4)
    assert (a1["delivered"], a1["sseq"], a1["cseq"], a1["pending"]) == (1, 2, 2, 3)
    now = time.time_ns()
    assert abs(a0["ts"] - now) < 60 * NS  # the stream timestamp, in ns
    md = msgs[1].metadata
    assert (md.sequence.stream, md.sequence.consumer, md.num_delivered, md.num_pending) == (2, 2, 1, 3)
    assert md.stream == "PL" and md.consumer == "P"

    ci = await cinfo(nc, "PL", "P")
    assert ci["delivered"]["consumer_seq"] == 2 and ci["delivered"]["stream_seq"] == 2
    assert ci["num_ack_pending"] == 2 and ci["num_pending"] == 3
    assert ci["ack_floor"]["consumer_seq"] == 0

    # A plain number as the body is a batch size.
    await pull(nc, "PL", "P", box, b"2")
    msgs = await box.take(2)
    assert [parse_ack(m.reply)["sseq"] for m in msgs] == [3, 4]
    # An empty body is a batch of one.
    await pull(nc, "PL", "P", box)
    m = await box.next()
    assert parse_ack(m.reply)["sseq"] == 5 and parse_ack(m.reply)["pending"] == 0
    ci = await cinfo(nc, "PL", "P")
    assert ci["num_pending"] == 0 and ci["num_ack_pending"] == 5

    # Ack seq 3 out of order: the floor stays; then 1 and 2 move it to 3.
    await ack(nc, msgs[0])
    ci = await cinfo(nc, "PL", "P")
    assert ci["num_ack_pending"] == 4 and ci["ack_floor"]["stream_seq"] == 0
    for m in first:
        await ack(nc, m)
    ci = await cinfo(nc, "PL", "P")
    assert ci["num_ack_pending"] == 2
    assert ci["ack_floor"]["stream_seq"] == 3 and ci["ack_floor"]["consumer_seq"] == 3


async def test_pull_no_wait_expires_and_heartbeat(nc):
    await stream(nc, "PE")
    await consumer(nc, "PE", durable_name="P", ack_policy="explicit")
    box = await inbox(nc)
    await pull(nc, "PE", "P", box, {"batch": 1, "no_wait": True})
    m = await box.next()
    assert status(m) == ("404", "No Messages") and m.data == b""

    t0 = time.monotonic()
    await pull(nc, "PE", "P", box, {"batch": 3, "expires": 500 * MS})
    m = await box.next(5)
    took = time.monotonic() - t0
    assert status(m) == ("408", "Request Timeout"), m.headers
    assert m.headers["Nats-Pending-Messages"] == "3" and m.headers["Nats-Pending-Bytes"] == "0"
    assert 0.4 <= took < 3, took

    await pull(nc, "PE", "P", box, {"batch": 1, "expires": 1500 * MS, "idle_heartbeat": 300 * MS})
    hb = await box.next(2)
    assert status(hb) == ("100", "Idle Heartbeat"), hb.headers
    assert hb.headers["Nats-Last-Consumer"] == "0" and hb.headers["Nats-Last-Stream"] == "0"
    assert hb.data == b""
    # More heartbeats, then the 408 at expiry.
    seen = [hb]
    while True:
        m = await box.next(3)
        seen.append(m)
        if status(m)[0] != "100":
            break
    assert status(seen[-1]) == ("408", "Request Timeout")
    assert len(seen) >= 3

    # With messages delivered the heartbeat reports the last sequences.
    await pub(nc, "pe.a")
    await pub(nc, "pe.a")
    await pull(nc, "PE", "P", box, {"batch": 2})
    await box.take(2)
    await pull(nc, "PE", "P", box, {"batch": 1, "expires": 1 * NS, "idle_heartbeat": 200 * MS})
    hb = await box.next(2)
    assert status(hb) == ("100", "Idle Heartbeat")
    assert hb.headers["Nats-Last-Consumer"] == "2" and hb.headers["Nats-Last-Stream"] == "2"

    # no_wait together with expires when there is nothing: it waits for the
    # expiry like a plain expires request, then 408 (not 404).
    box2 = await inbox(nc)
    t0 = time.monotonic()
    await pull(nc, "PE", "P", box2, {"batch": 1, "no_wait": True, "expires": 800 * MS})
    m = await box2.next()
    assert status(m) == ("408", "Request Timeout"), m.headers
    assert m.headers["Nats-Pending-Messages"] == "1"
    assert 0.6 <= time.monotonic() - t0 < 3

    # Bad request body.
    await pull(nc, "PE", "P", box2, b"{bad")
    m = await box2.next()
    assert status(m) == ("400", "Bad Request - invalid character 'b' looking for beginning of object key string")


async def test_pull_no_wait_returns_available_then_404(nc):
    await stream(nc, "NW")
    await pub(nc, "nw.a", b"1")
    await pub(nc, "nw.a", b"2")
    await consumer(nc, "NW", durable_name="P", ack_policy="explicit")
    box = await inbox(nc)
    await pull(nc, "NW", "P", box, {"batch": 5, "no_wait": True})
    msgs = await box.take(3)
    assert [m.data for m in msgs[:2]] == [b"1", b"2"]
    assert status(msgs[2]) == ("404", "No Messages"), msgs[2].headers
    await box.none(0.2)


async def test_pull_max_bytes(nc):
    await stream(nc, "MB")
    for i in range(5):
        await pub(nc, "mb.x", b"0123456789")
    await consumer(nc, "MB", durable_name="P", ack_policy="explicit")
    box = await inbox(nc)
    # Smaller than one message: 409 right away, nothing delivered.
    await pull(nc, "MB", "P", box, {"batch": 5, "max_bytes": 3})
    m = await box.next()
    assert status(m) == ("409", "Message Size Exceeds MaxBytes"), m.headers
    assert m.headers["Nats-Pending-Messages"] == "5" and m.headers["Nats-Pending-Bytes"] == "3"
    assert (await cinfo(nc, "MB", "P"))["delivered"]["consumer_seq"] == 0

    # Room for some: those are delivered, then the 409.
    # A message counts as subject + reply + headers + payload.
    one = len("mb.x") + 10 + len("$JS.ACK.MB.P.1.1.1.1234567890123456789.4")
    await pull(nc, "MB", "P", box, {"batch": 5, "max_bytes": 2 * one + 5})
    got = await box.take(2)
    assert [parse_ack(m.reply)["sseq"] for m in got] == [1, 2]
    m = await box.next()
    assert status(m) == ("409", "Message Size Exceeds MaxBytes"), m.headers
    assert m.headers["Nats-Pending-Messages"] == "3" and m.headers["Nats-Pending-Bytes"] == "5"
    # Exactly enough room.
    await pull(nc, "MB", "P", box, {"batch": 1, "max_bytes": one})
    m = await box.next()
    assert parse_ack(m.reply)["sseq"] == 3 and m.data == b"0123456789"


async def test_pull_waiting_requests_served_in_order_and_max_waiting(nc):
    await stream(nc, "MW")
    await consumer(nc, "MW", durable_name="P", ack_policy="explicit", max_waiting=2)
    boxes = [await inbox(nc) for _ in range(4)]
    for b in boxes:
        await pull(nc, "MW", "P", b, {"batch": 1, "expires": 5 * NS})
    for b in boxes[2:]:
        m = await b.next()
        assert status(m) == ("409", "Exceeded MaxWaiting"), m.headers
    ci = await cinfo(nc, "MW", "P")
    assert ci["num_waiting"] == 2
    await pub(nc, "mw.a", b"first")
    await pub(nc, "mw.a", b"second")
    assert (await boxes[0].next()).data == b"first"
    assert (await boxes[1].next()).data == b"second"
    for b in boxes:
        await b.none(0.2)
    ci = await cinfo(nc, "MW", "P")
    assert ci["num_waiting"] == 0


async def test_pull_request_limits_and_push_consumer(nc):
    await stream(nc, "RL")
    await pub(nc, "rl.a")
    await consumer(nc, "RL", durable_name="MB", max_batch=2, max_bytes=100, max_expires=NS)
    box = await inbox(nc)
    await pull(nc, "RL", "MB", box, {"batch": 3})
    assert status(await box.next()) == ("409", "Exceeded MaxRequestBatch of 2")
    await pull(nc, "RL", "MB", box, {"batch": 1, "max_bytes": 200})
    assert status(await box.next()) == ("409", "Exceeded MaxRequestMaxBytes of 100")
    await pull(nc, "RL", "MB", box, {"batch": 1, "expires": 2 * NS})
    assert status(await box.next()) == ("409", "Exceeded MaxRequestExpires of 1s")
    await pull(nc, "RL", "MB", box, {"batch": 1})
    m = await box.next()
    assert m.data == b"x" and parse_ack(m.reply)["consumer"] == "MB"

    await consumer(nc, "RL", durable_name="PUSH", deliver_subject="deliver.rl")
    m = await nc.request("$JS.API.CONSUMER.MSG.NEXT.RL.PUSH", b'{"batch":1}', timeout=2)
    assert status(m) == ("409", "Consumer is push based")


async def test_pull_subscribe_fetch_nats_py(nc):
    js = nc.jetstream()
    await js.add_stream(name="PY", subjects=["py.>"], storage=api.StorageType.MEMORY)
    for i in range(10):
        await js.publish(f"py.{i}", f"p{i}".encode())
    psub = await js.pull_subscribe("py.>", durable="PYD")
    msgs = await psub.fetch(4, timeout=2)
    assert [m.data for m in msgs] == [b"p0", b"p1", b"p2", b"p3"]
    for m in msgs:
        await m.ack()
    msgs = await psub.fetch(10, timeout=1)
    assert [m.data for m in msgs] == [f"p{i}".encode() for i in range(4, 10)]
    assert msgs[-1].metadata.num_pending == 0
    for m in msgs:
        await m.ack_sync()
    ci = await js.consumer_info("PY", "PYD")
    assert ci.num_ack_pending == 0 and ci.num_pending == 0
    assert ci.ack_floor.stream_seq == 10 and ci.delivered.consumer_seq == 10
    import nats.errors

    with pytest.raises(nats.errors.TimeoutError):
        await psub.fetch(1, timeout=0.5)
    await js.publish("py.late", b"late")
    msgs = await psub.fetch(1, timeout=2, heartbeat=0.2)
    assert msgs[0].data == b"late"


# --------------------------------------------------------------------------
# acks
# --------------------------------------------------------------------------


async def test_ack_forms_and_info_counts(nc):
    await stream(nc, "AK")
    for i in range(6):
        await pub(nc, "ak.x", f"{i}".encode())
    await consumer(nc, "AK", durable_name="A", ack_policy="explicit")
    box = await inbox(nc)
    await pull(nc, "AK", "A", box, {"batch": 6})
    msgs = await box.take(6)
    await ack(nc, msgs[0], b"+ACK")
    await ack(nc, msgs[1], b"")  # an empty body is an ack
    ci = await cinfo(nc, "AK", "A")
    assert ci["ack_floor"] == {"consumer_seq": 2, "stream_seq": 2, **({"last_active": ci["ack_floor"]["last_active"]} if "last_active" in ci["ack_floor"] else {})}
    assert ci["num_ack_pending"] == 4
    # Out of order: the floor stays until the gap closes.
    await ack(nc, msgs[3])
    ci = await cinfo(nc, "AK", "A")
    assert ci["ack_floor"]["stream_seq"] == 2 and ci["num_ack_pending"] == 3
    await ack(nc, msgs[2])
    ci = await cinfo(nc, "AK", "A")
    assert ci["ack_floor"]["stream_seq"] == 4 and ci["ack_floor"]["consumer_seq"] == 4
    assert ci["num_ack_pending"] == 2
    # Acking twice changes nothing.
    await ack(nc, msgs[2])
    assert (await cinfo(nc, "AK", "A"))["num_ack_pending"] == 2


async def test_nak_and_nak_with_delay(nc):
    await stream(nc, "NK")
    await pub(nc, "nk.x", b"a")
    await consumer(nc, "NK", durable_name="N", ack_policy="explicit", ack_wait=30 * NS)
    box = await inbox(nc)
    await pull(nc, "NK", "N", box, {"batch": 1})
    m = await box.next()
    await ack(nc, m, b"-NAK")
    await pull(nc, "NK", "N", box, {"batch": 1, "expires": 2 * NS})
    m = await box.next(1.5)  # redelivered right away, not after ack_wait
    a = parse_ack(m.reply)
    assert (a["delivered"], a["sseq"], a["cseq"]) == (2, 1, 2)
    ci = await cinfo(nc, "NK", "N")
    assert ci["num_redelivered"] == 1 and ci["num_ack_pending"] == 1

    # -NAK with a delay: not before the delay, then redelivered.
    t0 = time.monotonic()
    await ack(nc, m, b'-NAK {"delay": %d}' % (800 * MS))
    await pull(nc, "NK", "N", box, {"batch": 1, "expires": 5 * NS})
    m = await box.next(4)
    took = time.monotonic() - t0
    assert 0.6 <= took < 3.5, took
    a = parse_ack(m.reply)
    assert (a["delivered"], a["sseq"], a["cseq"]) == (3, 1, 3)

    # nats-py nak(delay=seconds)
    t0 = time.monotonic()
    await m.nak(delay=0.6)
    await sync(nc)
    await pull(nc, "NK", "N", box, {"batch": 1, "expires": 5 * NS})
    m = await box.next(4)
    assert time.monotonic() - t0 >= 0.45
    assert parse_ack(m.reply)["delivered"] == 4
    await ack(nc, m)
    ci = await cinfo(nc, "NK", "N")
    assert ci["num_ack_pending"] == 0 and ci["ack_floor"]["stream_seq"] == 1


async def test_term_and_terminated_advisory(nc):
    await stream(nc, "TM")
    await pub(nc, "tm.x", b"a")
    await pub(nc, "tm.x", b"b")
    await consumer(nc, "TM", durable_name="T", ack_policy="explicit", ack_wait=1 * NS)
    adv = await inbox(nc, "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.>")
    box = await inbox(nc)
    await pull(nc, "TM", "T", box, {"batch": 2})
    m1, m2 = await box.take(2)
    await ack(nc, m1, b"+TERM")
    a = await adv.next()
    assert a.subject == "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.TM.T"
    ev = json.loads(a.data)
    assert ev["type"] == "io.nats.jetstream.advisory.v1.terminated"
    assert ev["stream"] == "TM" and ev["consumer"] == "T"
    assert ev["consumer_seq"] == 1 and ev["stream_seq"] == 1 and ev["deliveries"] == 1
    assert ev.get("reason", "") == ""
    await ack(nc, m2, b"+TERM out of stock")
    ev = json.loads((await adv.next()).data)
    assert ev["stream_seq"] == 2 and ev["reason"] == "out of stock"
    ci = await cinfo(nc, "TM", "T")
    assert ci["num_ack_pending"] == 0 and ci["ack_floor"]["stream_seq"] == 2
    # Never redelivered, even after ack_wait.
    await pull(nc, "TM", "T", box, {"batch": 1, "expires": 1500 * MS})
    m = await box.next(3)
    assert status(m) == ("408", "Request Timeout")


async def test_in_progress_extends_ack_wait(nc):
    await stream(nc, "WP")
    await pub(nc, "wp.x", b"a")
    await consumer(nc, "WP", durable_name="W", ack_policy="explicit", ack_wait=1 * NS)
    box = await inbox(nc)
    await pull(nc, "WP", "W", box, {"batch": 1})
    m = await box.next()
    t0 = time.monotonic()
    # Keep it in progress for ~2 s (twice the ack wait).
    await pull(nc, "WP", "W", box, {"batch": 1, "expires": 3 * NS})
    while time.monotonic() - t0 < 2.0:
        await ack(nc, m, b"+WPI")
        await box.none(0.5)
    await ack(nc, m)
    m2 = await box.next(3)
    assert status(m2) == ("408", "Request Timeout"), (m2.headers, m2.data)
    ci = await cinfo(nc, "WP", "W")
    assert ci["num_redelivered"] == 0 and ci["ack_floor"]["stream_seq"] == 1


async def test_ack_next(nc):
    await stream(nc, "NX")
    for i in range(3):
        await pub(nc, "nx.x", f"{i}".encode())
    await consumer(nc, "NX", durable_name="N", ack_policy="explicit")
    box = await inbox(nc)
    await pull(nc, "NX", "N", box, {"batch": 1})
    m = await box.next()
    # +NXT acks and asks for the next message(s), delivered to the ack's reply.
    await nc.publish(m.reply, b"+NXT", reply=box.subject)
    m2 = await box.next()
    assert m2.data == b"1" and parse_ack(m2.reply)["sseq"] == 2
    await nc.publish(m2.reply, b'+NXT {"batch":1}', reply=box.subject)
    m3 = await box.next()
    assert m3.data == b"2"
    ci = await cinfo(nc, "NX", "N")
    assert ci["ack_floor"]["stream_seq"] == 2 and ci["num_ack_pending"] == 1


async def test_double_ack_reply(nc):
    js = nc.jetstream()
    await stream(nc, "DA")
    await pub(nc, "da.x")
    await consumer(nc, "DA", durable_name="D", ack_policy="explicit")
    box = await inbox(nc)
    await pull(nc, "DA", "D", box, {"batch": 1})
    m = await box.next()
    r = await nc.request(m.reply, b"+ACK", timeout=2)
    assert r.data == b"" and not r.headers
    # Acking it again with a reply: still answered (nothing pending).
    r = await nc.request(m.reply, b"+ACK", timeout=2)
    assert r.data == b""
    # nats-py ack_sync on a fresh delivery.
    await pub(nc, "da.x")
    psub = await js.pull_subscribe_bind("D", "DA")
    (m,) = await psub.fetch(1, timeout=2)
    await m.ack_sync(timeout=2)
    ci = await cinfo(nc, "DA", "D")
    assert ci["num_ack_pending"] == 0 and ci["ack_floor"]["stream_seq"] == 2


async def test_ack_wait_expiry_redelivers(nc):
    await stream(nc, "AW")
    await pub(nc, "aw.x", b"a", headers={"H": "v"})
    await consumer(nc, "AW", durable_name="W", ack_policy="explicit", ack_wait=1 * NS)
    box = await inbox(nc)
    await pull(nc, "AW", "W", box, {"batch": 1})
    m = await box.next()
    assert parse_ack(m.reply)["delivered"] == 1
    t0 = time.monotonic()
    await pull(nc, "AW", "W", box, {"batch": 1, "expires": 4 * NS})
    m2 = await box.next(4)
    took = time.monotonic() - t0
    assert 0.7 <= took < 3.5, took
    a = parse_ack(m2.reply)
    assert (a["delivered"], a["sseq"], a["cseq"]) == (2, 1, 2)
    assert m2.data == b"a" and m2.headers == {"H": "v"}
    assert m2.metadata.num_delivered == 2
    ci = await cinfo(nc, "AW", "W")
    assert ci["num_redelivered"] == 1 and ci["num_ack_pending"] == 1
    assert ci["delivered"]["consumer_seq"] == 2 and ci["delivered"]["stream_seq"] == 1


async def test_backoff_redelivery_timing(nc):
    await stream(nc, "BO")
    await pub(nc, "bo.x", b"a")
    await consumer(nc, "BO", durable_name="B", ack_policy="explicit", backoff=[300 * MS, 1200 * MS], max_deliver=4)
    ci = await cinfo(nc, "BO", "B")
    # ack_wait is taken from the first backoff value.
    assert ci["config"]["ack_wait"] == 300 * MS
    assert ci["config"]["backoff"] == [300 * MS, 1200 * MS]
    box = await inbox(nc)
    await pull(nc, "BO", "B", box, {"batch": 10, "expires": 8 * NS})
    times = []
    t0 = time.monotonic()
    for _ in range(4):
        m = await box.next(5)
        times.append(time.monotonic() - t0)
        assert parse_ack(m.reply)["delivered"] == len(times)
    gaps = [b - a for a, b in zip(times, times[1:])]
    # 1st redelivery after ~0.3 s, then ~1.2 s each (the last value repeats).
    assert 0.15 <= gaps[0] < 1.0, gaps
    assert 0.9 <= gaps[1] < 2.5, gaps
    assert 0.9 <= gaps[2] < 2.5, gaps
    await box.none(1.5)  # max_deliver reached


async def test_max_deliver_and_advisory(nc):
    await stream(nc, "MD")
    await pub(nc, "md.x", b"a")
    await consumer(nc, "MD", durable_name="M", ack_policy="explicit", ack_wait=300 * MS, max_deliver=2)
    adv = await inbox(nc, "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>")
    box = await inbox(nc)
    await pull(nc, "MD", "M", box, {"batch": 5, "expires": 4 * NS})
    m1 = await box.next()
    m2 = await box.next(3)
    assert [parse_ack(m.reply)["delivered"] for m in (m1, m2)] == [1, 2]
    a = await adv.next(4)
    assert a.subject == "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.MD.M"
    ev = json.loads(a.data)
    assert ev["type"] == "io.nats.jetstream.advisory.v1.max_deliver"
    assert ev["stream"] == "MD" and ev["consumer"] == "M"
    assert ev["stream_seq"] == 1 and ev["deliveries"] == 2
    assert "id" in ev and "timestamp" in ev
    await box.none(0.8)
    ci = await cinfo(nc, "MD", "M")
    assert ci["num_redelivered"] == 1
    assert ci["delivered"]["consumer_seq"] == 2


async def test_ack_policy_all_and_none(nc):
    await stream(nc, "AP")
    for i in range(5):
        await pub(nc, "ap.x", f"{i}".encode())
    await consumer(nc, "AP", durable_name="ALL", ack_policy="all")
    box = await inbox(nc)
    await pull(nc, "AP", "ALL", box, {"batch": 5})
    msgs = await box.take(5)
    assert (await cinfo(nc, "AP", "ALL"))["num_ack_pending"] == 5
    await ack(nc, msgs[2])  # acks 1..3
    ci = await cinfo(nc, "AP", "ALL")
    assert ci["num_ack_pending"] == 2
    assert ci["ack_floor"]["stream_seq"] == 3 and ci["ack_floor"]["consumer_seq"] == 3

    await consumer(nc, "AP", durable_name="NONE", ack_policy="none")
    await pull(nc, "AP", "NONE", box, {"batch": 5})
    msgs = await box.take(5)
    ci = await cinfo(nc, "AP", "NONE")
    assert ci["num_ack_pending"] == 0
    assert ci["ack_floor"]["stream_seq"] == 5 and ci["delivered"]["stream_seq"] == 5
    # The ack reply subject is still there.
    assert parse_ack(msgs[0].reply)["sseq"] == 1


async def test_max_ack_pending(nc):
    await stream(nc, "MAP")
    for i in range(5):
        await pub(nc, "map.x", f"{i}".encode())
    await consumer(nc, "MAP", durable_name="M", ack_policy="explicit", max_ack_pending=2)
    box = await inbox(nc)
    await pull(nc, "MAP", "M", box, {"batch": 5, "expires": 5 * NS})
    first = await box.take(2)
    await box.none(0.3)
    assert (await cinfo(nc, "MAP", "M"))["num_ack_pending"] == 2
    await ack(nc, first[0])
    m = await box.next()
    assert m.data == b"2"
    await box.none(0.3)
    await ack(nc, first[1])
    await ack(nc, m)
    rest = await box.take(2)
    assert [x.data for x in rest] == [b"3", b"4"]
    # At the limit with a message pending, a no_wait request delivers nothing.
    # (nats-server keeps it waiting and answers 404 only later.)
    box2 = await inbox(nc)
    await pub(nc, "map.x", b"5")
    await pull(nc, "MAP", "M", box2, {"batch": 1, "no_wait": True})
    try:
        m = await box2.next(0.5)
    except AssertionError:
        pass
    else:
        assert status(m) == ("404", "No Messages"), (m.headers, m.data)
    ci = await cinfo(nc, "MAP", "M")
    assert ci["num_ack_pending"] == 2 and ci["num_pending"] == 1
    assert ci["delivered"]["stream_seq"] == 5


# --------------------------------------------------------------------------
# delivery policies and filters
# --------------------------------------------------------------------------


async def fetch_all(nc, stream_name: str, name: str, n: int) -> list:
    box = await inbox(nc)
    await pull(nc, stream_name, name, box, {"batch": n + 5, "no_wait": True})
    out = []
    while True:
        m = await box.next()
        if status(m)[0]:
            assert status(m) == ("404", "No Messages"), m.headers
            return out
        out.append(m)


async def test_deliver_policies(nc):
    await stream(nc, "DP")
    subjects = ["dp.a", "dp.b", "dp.a", "dp.c", "dp.b"]
    for i, s in enumerate(subjects, start=1):
        await pub(nc, s, f"{i}".encode())
    # "by_start_time": everything published after this instant (50 ms either
    # side of it so the stored timestamps fall clearly before/after).
    await asyncio.sleep(0.05)
    mid_time = datetime.now(timezone.utc)
    await asyncio.sleep(0.05)
    await pub(nc, "dp.c", b"6")
    await pub(nc, "dp.a", b"7")

    async def seqs(name: str, **cfg) -> list[int]:
        await consumer(nc, "DP", durable_name=name, ack_policy="none", **cfg)
        return [parse_ack(m.reply)["sseq"] for m in await fetch_all(nc, "DP", name, 10)]

    assert await seqs("ALL", deliver_policy="all") == [1, 2, 3, 4, 5, 6, 7]
    assert await seqs("LAST", deliver_policy="last") == [7]
    assert await seqs("SEQ", deliver_policy="by_start_sequence", opt_start_seq=4) == [4, 5, 6, 7]
    assert await seqs("TIME", deliver_policy="by_start_time", opt_start_time=rfc3339(mid_time)) == [6, 7]
    assert await seqs("LPS", deliver_policy="last_per_subject", filter_subject="dp.*") == [5, 6, 7]
    assert await seqs("LPSA", deliver_policy="last_per_subject", filter_subject="dp.a") == [7]
    assert await seqs("LASTF", deliver_policy="last", filter_subject="dp.b") == [5]
    ci = await consumer(nc, "DP", durable_name="NEW", ack_policy="none", deliver_policy="new")
    assert ci["num_pending"] == 0 and ci["delivered"]["stream_seq"] == 7
    await pub(nc, "dp.z", b"8")
    assert [parse_ack(m.reply)["sseq"] for m in await fetch_all(nc, "DP", "NEW", 5)] == [8]
    # Start sequence beyond the end: waits for it.
    assert await seqs("FUT", deliver_policy="by_start_sequence", opt_start_seq=100) == []
    # Info of a by_start_sequence consumer before any delivery.
    ci = await consumer(nc, "DP", durable_name="SEQ2", ack_policy="explicit",
                        deliver_policy="by_start_sequence", opt_start_seq=6)
    assert ci["num_pending"] == 3
    assert ci["delivered"] == {"consumer_seq": 0, "stream_seq": 5}
    assert ci["ack_floor"] == {"consumer_seq": 0, "stream_seq": 5}


async def test_filter_subject_and_subjects(nc):
    await stream(nc, "FS")
    subjects = ["fs.a", "fs.b", "fs.c", "fs.a.x", "fs.b", "fs.c"]
    for s in subjects:
        await pub(nc, s)
    ci = await consumer(nc, "FS", durable_name="ONE", ack_policy="explicit", filter_subject="fs.b")
    assert ci["num_pending"] == 2
    got = await fetch_all(nc, "FS", "ONE", 6)
    assert [(m.subject, parse_ack(m.reply)["sseq"], parse_ack(m.reply)["cseq"]) for m in got] == [
        ("fs.b", 2, 1), ("fs.b", 5, 2)
    ]
    assert [parse_ack(m.reply)["pending"] for m in got] == [1, 0]
    ci = await consumer(nc, "FS", durable_name="MANY", ack_policy="explicit", filter_subjects=["fs.a.>", "fs.c"])
    assert ci["num_pending"] == 3 and ci["config"]["filter_subjects"] == ["fs.a.>", "fs.c"]
    got = await fetch_all(nc, "FS", "MANY", 6)
    assert [m.subject for m in got] == ["fs.c", "fs.a.x", "fs.c"]
    ci = await consumer(nc, "FS", durable_name="WILD", ack_policy="explicit", filter_subject="fs.*")
    assert ci["num_pending"] == 5
    # A filter outside the stream's subjects is accepted (nothing pending).
    ci = await consumer(nc, "FS", durable_name="ELSE", ack_policy="explicit", filter_subject="other.x")
    assert ci["num_pending"] == 0


async def test_headers_only_and_replay_and_sample_freq(nc):
    await stream(nc, "HO")
    await pub(nc, "ho.x", b"0123456789", headers={"A": "1"})
    await pub(nc, "ho.x", b"abc")
    await consumer(nc, "HO", durable_name="H", ack_policy="explicit", headers_only=True,
                   replay_policy="instant", sample_freq="50%")
    got = await fetch_all(nc, "HO", "H", 2)
    assert len(got) == 2
    assert got[0].data == b"" and got[0].headers["A"] == "1" and got[0].headers["Nats-Msg-Size"] == "10"
    assert got[1].data == b"" and got[1].headers["Nats-Msg-Size"] == "3"
    ci = await cinfo(nc, "HO", "H")
    assert ci["config"]["headers_only"] is True and ci["config"]["sample_freq"] == "50%"
    # replay "original" delivers with the original spacing.
    await stream(nc, "RP")
    await pub(nc, "rp.x", b"1")
    await asyncio.sleep(0.6)
    await pub(nc, "rp.x", b"2")
    await consumer(nc, "RP", durable_name="R", ack_policy="none", replay_policy="original")
    box = await inbox(nc)
    await pull(nc, "RP", "R", box, {"batch": 2, "expires": 5 * NS})
    await box.next()
    t0 = time.monotonic()
    await box.next()
    assert time.monotonic() - t0 >= 0.4


# --------------------------------------------------------------------------
# push
# --------------------------------------------------------------------------


async def test_push_consumer_plain_subscription(nc):
    await stream(nc, "PS")
    for i in range(3):
        await pub(nc, "ps.x", f"{i}".encode())
    box = await inbox(nc, "deliver.ps")
    ci = await consumer(nc, "PS", durable_name="P", ack_policy="explicit", deliver_subject="deliver.ps")
    assert ci["config"]["deliver_subject"] == "deliver.ps"
    assert "max_waiting" not in ci["config"]
    msgs = await box.take(3)
    assert [m.data for m in msgs] == [b"0", b"1", b"2"]
    assert [m.subject for m in msgs] == ["ps.x"] * 3
    assert [parse_ack(m.reply)["sseq"] for m in msgs] == [1, 2, 3]
    for m in msgs:
        await ack(nc, m)
    await pub(nc, "ps.x", b"3")
    m = await box.next()
    assert m.data == b"3" and parse_ack(m.reply)["cseq"] == 4
    ci = await wait_info(nc, "PS", "P", lambda c: c["delivered"]["consumer_seq"] == 4, what="4 delivered")
    assert ci["push_bound"] is True
    assert ci["num_ack_pending"] == 1


async def test_push_consumer_inactive_without_interest(nc):
    await stream(nc, "PI")
    await consumer(nc, "PI", durable_name="P", ack_policy="explicit", deliver_subject="deliver.pi")
    await pub(nc, "pi.x", b"0")
    ci = await cinfo(nc, "PI", "P")
    assert "push_bound" not in ci or ci["push_bound"] is False
    assert ci["num_pending"] == 1
    box = await inbox(nc, "deliver.pi")
    m = await box.next()
    assert m.data == b"0"


async def test_push_deliver_group(js_server, nc):
    await stream(nc, "DG")
    nc2 = await connect(js_server.url)
    try:
        b1 = await inbox(nc, "deliver.dg", queue="workers")
        b2 = await inbox(nc2, "deliver.dg", queue="workers")
        await consumer(nc, "DG", durable_name="Q", ack_policy="explicit", deliver_subject="deliver.dg",
                       deliver_group="workers")
        n = 40
        for i in range(n):
            await pub(nc, "dg.x", f"{i}".encode())
        got: list = []
        deadline = time.monotonic() + 5
        while len(got) < n and time.monotonic() < deadline:
            for b in (b1, b2):
                while not b.q.empty():
                    got.append((b, b.q.get_nowait()))
            await asyncio.sleep(0.01)
        assert sorted(int(m.data) for _, m in got) == list(range(n))
        assert {id(b) for b, _ in got} == {id(b1), id(b2)}
        await b1.none(0.2)
        await b2.none(0.1)
    finally:
        await close_all(nc2)


async def test_push_flow_control_and_heartbeats(nc):
    await stream(nc, "FC")
    box = await inbox(nc, "deliver.fc")
    await consumer(nc, "FC", durable_name="F", ack_policy="none", deliver_subject="deliver.fc",
                   flow_control=True, idle_heartbeat=300 * MS)
    # Idle: heartbeats with the last sequences and no reply subject.
    hb = await box.next(2)
    assert status(hb) == ("100", "Idle Heartbeat"), hb.headers
    assert hb.headers["Nats-Last-Consumer"] == "0" and hb.headers["Nats-Last-Stream"] == "0"
    assert not hb.reply and hb.data == b""
    # Enough data to trigger a flow control request.
    payload = b"x" * 64 * 1024
    for _ in range(40):
        await nc.publish("fc.x", payload)
    await sync(nc)
    data_msgs = 0
    fc = None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        m = await box.next(5)
        st = status(m)
        if st == ("100", "FlowControl Request"):
            fc = m
            assert m.reply, "flow control request without a reply subject"
            assert m.data == b""
            await nc.publish(m.reply, b"")
            await sync(nc)
        elif st[0] == "100":
            continue
        else:
            data_msgs += 1
            if data_msgs == 40:
                break
    assert data_msgs == 40
    assert fc is not None, "no flow control request seen"


async def test_push_stalls_without_flow_control_response(nc):
    await stream(nc, "FS2")
    box = await inbox(nc, "deliver.fs2")
    await consumer(nc, "FS2", durable_name="F", ack_policy="none", deliver_subject="deliver.fs2",
                   flow_control=True, idle_heartbeat=5 * NS)
    payload = b"x" * 256 * 1024
    for _ in range(80):
        await nc.publish("fs2.x", payload)
    await sync(nc)
    data_msgs = 0
    fc_seen = 0
    while True:
        try:
            m = await box.next(1.5)
        except AssertionError:
            break
        if status(m) == ("100", "FlowControl Request"):
            fc_seen += 1
        elif not status(m)[0]:
            data_msgs += 1
    # Unanswered flow control: delivery stops short of everything.
    assert fc_seen >= 1
    assert data_msgs < 80, data_msgs


async def test_nats_py_push_subscribe_durable_and_queue(js_server, nc):
    js = nc.jetstream()
    await js.add_stream(name="PP", subjects=["pp.>"], storage=api.StorageType.MEMORY)
    got: list = []

    async def cb(m):
        got.append(m.data)
        await m.ack()

    sub = await js.subscribe("pp.>", durable="PPD", cb=cb, manual_ack=True)
    for i in range(5):
        await js.publish(f"pp.{i}", f"{i}".encode())
    deadline = time.monotonic() + 5
    while len(got) < 5 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert got == [f"{i}".encode() for i in range(5)]
    ci = await wait_info(nc, "PP", "PPD", lambda c: c["num_ack_pending"] == 0, what="all acked")
    assert ci["config"]["deliver_subject"].startswith("_INBOX.")
    assert ci["ack_floor"]["stream_seq"] == 5
    await sub.unsubscribe()

    # queue push subscribers via nats-py
    nc2 = await connect(js_server.url)
    try:
        js2 = nc2.jetstream()
        a: list = []
        b: list = []

        async def ca(m):
            a.append(int(m.data))
            await m.ack()

        async def cbb(m):
            b.append(int(m.data))
            await m.ack()

        await js.subscribe("pp.q", queue="qg", cb=ca, manual_ack=True)
        await js2.subscribe("pp.q", queue="qg", cb=cbb, manual_ack=True)
        await sync(nc)
        await sync(nc2)
        for i in range(30):
            await js.publish("pp.q", f"{i}".encode())
        deadline = time.monotonic() + 5
        while len(a) + len(b) < 30 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert sorted(a + b) == list(range(30))
        ci = await js.consumer_info("PP", "qg")
        assert ci.config.deliver_group == "qg"
    finally:
        await close_all(nc2)


async def test_ordered_consumer(nc):
    js = nc.jetstream()
    await js.add_stream(name="OC", subjects=["oc.>"], storage=api.StorageType.MEMORY)
    n = 200
    for i in range(n):
        await js.publish(f"oc.{i % 3}", f"{i}".encode())
    got: list = []

    async def cb(m):
        got.append(int(m.data))

    await js.subscribe("oc.>", ordered_consumer=True, cb=cb, idle_heartbeat=0.5)
    deadline = time.monotonic() + 10
    while len(got) < n and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert got == list(range(n))
    for i in range(n, n + 10):
        await js.publish("oc.x", f"{i}".encode())
    deadline = time.monotonic() + 5
    while len(got) < n + 10 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert got == list(range(n + 10))
    names = await api_req(nc, "$JS.API.CONSUMER.LIST.OC", {})
    (c,) = names["consumers"]
    assert c["config"]["ack_policy"] == "none" and c["config"]["flow_control"] is True
    assert c["config"]["mem_storage"] is True and c["config"]["num_replicas"] == 1


# --------------------------------------------------------------------------
# retention
# --------------------------------------------------------------------------


async def test_interest_retention(nc):
    await stream(nc, "IR", retention="interest")
    # No consumers: not retained.
    assert await pub(nc, "ir.x", b"nobody") == 1
    st = (await api_req(nc, "$JS.API.STREAM.INFO.IR"))["state"]
    assert st["messages"] == 0 and st["last_seq"] == 1
    await consumer(nc, "IR", durable_name="A", ack_policy="explicit")
    await consumer(nc, "IR", durable_name="B", ack_policy="explicit")
    await pub(nc, "ir.x", b"m2")
    await pub(nc, "ir.x", b"m3")
    assert (await api_req(nc, "$JS.API.STREAM.INFO.IR"))["state"]["messages"] == 2
    ma = await fetch_all(nc, "IR", "A", 2)
    mb = await fetch_all(nc, "IR", "B", 2)
    assert [parse_ack(m.reply)["sseq"] for m in ma] == [2, 3]
    await ack(nc, ma[0])
    st = (await api_req(nc, "$JS.API.STREAM.INFO.IR"))["state"]
    assert st["messages"] == 2  # B has not acked seq 2 yet
    await ack(nc, mb[0])
    st = await wait_state(nc, "IR", lambda s: s["messages"] == 1, what="seq 2 removed")
    assert st["first_seq"] == 3
    # Deleting a consumer drops its interest.
    await ack(nc, ma[1])
    await api_req(nc, "$JS.API.CONSUMER.DELETE.IR.B")
    st = await wait_state(nc, "IR", lambda s: s["messages"] == 0, what="interest gone")
    assert st["last_seq"] == 3
    # Interest with a filter: a message no consumer is interested in is dropped.
    await consumer(nc, "IR", durable_name="F", ack_policy="explicit", filter_subject="ir.f")
    await pub(nc, "ir.other", b"x")
    await pub(nc, "ir.f", b"y")
    st = (await api_req(nc, "$JS.API.STREAM.INFO.IR"))["state"]
    # A (no filter) and F (ir.f) are both interested in ir.f; only A in ir.other.
    assert st["messages"] == 2


async def test_workqueue_retention(nc):
    await stream(nc, "WQ", retention="workqueue")
    for i in range(3):
        await pub(nc, f"wq.{i}", f"{i}".encode())
    await consumer(nc, "WQ", durable_name="W", ack_policy="explicit", filter_subject="wq.*")
    got = await fetch_all(nc, "WQ", "W", 3)
    await ack(nc, got[0])
    st = await wait_state(nc, "WQ", lambda s: s["messages"] == 2, what="acked message removed")
    assert st["first_seq"] == 2
    # An overlapping second consumer.
    resp = await consumer_raw(nc, "WQ", {"durable_name": "W2", "ack_policy": "explicit", "filter_subject": "wq.1"})
    assert_api_error(resp, 400, 10100, "filtered consumer not unique on workqueue stream")
    resp = await consumer_raw(nc, "WQ", {"durable_name": "W3", "ack_policy": "explicit"})
    assert_api_error(resp, 400, 10099, "multiple non-filtered consumers not allowed on workqueue stream")
    # Workqueue consumers must ack explicitly.
    await api_req(nc, "$JS.API.STREAM.CREATE.WQ2", {"name": "WQ2", "subjects": ["wq2.>"], "retention": "workqueue"})
    resp = await consumer_raw(nc, "WQ2", {"durable_name": "N", "ack_policy": "none"})
    assert_api_error(resp, 400, 10084, "consumer in pull mode requires explicit ack policy on workqueue stream")
    # A non-overlapping filter is fine.
    resp = await consumer_raw(nc, "WQ2", {"durable_name": "A", "ack_policy": "explicit", "filter_subject": "wq2.a"})
    assert "error" not in resp, resp
    resp = await consumer_raw(nc, "WQ2", {"durable_name": "B", "ack_policy": "explicit", "filter_subject": "wq2.b"})
    assert "error" not in resp, resp
    # Removed on term as well.
    await ack(nc, got[1], b"+TERM")
    await wait_state(nc, "WQ", lambda s: s["messages"] == 1, what="termed message removed")


# --------------------------------------------------------------------------
# durability
# --------------------------------------------------------------------------


async def test_durable_consumer_survives_sigkill(start_server, tmp_path):
    store = tmp_path / "crash"
    store.mkdir()
    srv = start_server("-js", "-sd", str(store))
    nc = await connect(srv.url)
    try:
        await api_req(nc, "$JS.API.STREAM.CREATE.CR", {"name": "CR", "subjects": ["cr.>"], "storage": "file"})
        for i in range(1, 11):
            await pub(nc, "cr.x", f"{i}".encode())
        await consumer(nc, "CR", durable_name="D", ack_policy="explicit", ack_wait=2 * NS)
        box = await inbox(nc)
        await pull(nc, "CR", "D", box, {"batch": 6})
        msgs = await box.take(6)
        for m in msgs[:4]:
            r = await nc.request(m.reply, b"+ACK", timeout=2)  # double ack: the ack is stored
            assert r.data == b""
        # 5 and 6 delivered but not acked.
        ci = await cinfo(nc, "CR", "D")
        assert ci["ack_floor"]["stream_seq"] == 4 and ci["num_ack_pending"] == 2
    finally:
        await close_all(nc)
    # nats-server writes consumer state to its file asynchronously (a flush
    # loop, well under a second after the ack), and nothing observable says
    # when: give it that second before the SIGKILL.
    await asyncio.sleep(1.0)
    srv.proc.kill()
    srv.proc.wait(5)

    srv2 = start_server("-js", "-sd", str(store))
    nc = await connect(srv2.url)
    try:
        ci = await cinfo(nc, "CR", "D")
        assert ci["ack_floor"] == {"consumer_seq": 4, "stream_seq": 4}
        assert ci["delivered"]["consumer_seq"] == 6 and ci["delivered"]["stream_seq"] == 6
        assert ci["num_ack_pending"] == 2 and ci["num_pending"] == 4
        assert ci["config"]["ack_wait"] == 2 * NS
        box = await inbox(nc)
        await pull(nc, "CR", "D", box, {"batch": 10, "expires": 8 * NS})
        got = await box.take(6, timeout=6)
        # The undelivered ones first, then the two unacked ones once their
        # ack wait passes (the pending state survived: delivery count 2).
        assert [(parse_ack(m.reply)["sseq"], parse_ack(m.reply)["delivered"]) for m in got] == [
            (7, 1), (8, 1), (9, 1), (10, 1), (5, 2), (6, 2)
        ]
        assert [parse_ack(m.reply)["cseq"] for m in got] == [7, 8, 9, 10, 11, 12]
        assert [m.data for m in got] == [b"7", b"8", b"9", b"10", b"5", b"6"]
        for m in got:
            await ack(nc, m)
        ci = await cinfo(nc, "CR", "D")
        assert ci["ack_floor"]["stream_seq"] == 10 and ci["num_pending"] == 0
    finally:
        await close_all(nc)
