"""JetStream advisories and metrics on ``$JS.EVENT.>``, compared with the
reference nats-server v2.15.0 (skipped with the reason otherwise).

One scenario (create/update/delete a stream, create/pause/delete consumers,
API calls that succeed and fail, a nak, a term, an ack sampled at 100%, a
message that runs out of deliveries) runs against a server while a
subscriber records every event. Per server, each event must match its
published JSON schema; across servers, the sequence of (subject, type) and
each event's key order and value types must be the same (ids, timestamps,
server names and client details differ).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from conftest import reference_available, reference_bin
from helpers import api_req, close_all, connect, sync

SCHEMAS = Path("/work/shared/reference/schemas/jetstream")


async def run_scenario(start_server, tmp_path, binary=None) -> list[tuple[str, bytes]]:
    """Runs the operations; returns every `$JS.EVENT.>` message (subject, raw body)."""
    store = tmp_path / ("ref" if binary else "rnats")
    store.mkdir()
    srv = start_server("-js", "-sd", str(store), binary=binary)
    nc = await connect(srv.url, name="advisory-test")
    events: list[tuple[str, bytes]] = []
    try:

        async def on_event(m):
            events.append((m.subject, m.data))

        await nc.subscribe("$JS.EVENT.>", cb=on_event)
        await sync(nc)

        async def ok(subject, body=None):
            r = await api_req(nc, subject, body)
            assert "error" not in r, (subject, r)
            return r

        await ok("$JS.API.STREAM.CREATE.S", {"name": "S", "subjects": ["s.>"], "storage": "memory"})
        await ok("$JS.API.STREAM.UPDATE.S", {"name": "S", "subjects": ["s.>"], "storage": "memory", "max_msgs": 100})
        await ok("$JS.API.STREAM.INFO.S")
        # A failing call is audited too.
        r = await api_req(nc, "$JS.API.STREAM.INFO.MISSING")
        assert r["error"]["err_code"] == 10059
        for i in range(3):
            await nc.request("s.a", b"m%d" % i, timeout=5)

        # Consumer C: explicit ack, every ack sampled; nak 1, term 2, ack 3.
        await ok(
            "$JS.API.CONSUMER.CREATE.S.C",
            {"stream_name": "S", "config": {"durable_name": "C", "ack_policy": "explicit", "sample_freq": "100%"}},
        )
        msgs = await fetch(nc, "C", 3)
        await nc.request(msgs[0].reply, b"-NAK", timeout=5)
        await nc.request(msgs[1].reply, b"+TERM bad data", timeout=5)
        await nc.request(msgs[2].reply, b"+ACK", timeout=5)

        # Consumer D: one delivery allowed, the nak'd redelivery runs out.
        await ok(
            "$JS.API.CONSUMER.CREATE.S.D",
            {
                "stream_name": "S",
                "config": {"durable_name": "D", "ack_policy": "explicit", "max_deliver": 1, "ack_wait": 200_000_000},
            },
        )
        [m] = await fetch(nc, "D", 1)
        assert m.data == b"m0"
        await asyncio.sleep(0.6)

        # Pause and resume D, then delete both consumers and the stream.
        await ok("$JS.API.CONSUMER.PAUSE.S.D", {"pause_until": "2099-01-01T00:00:00Z"})
        await ok("$JS.API.CONSUMER.PAUSE.S.D", {})
        await ok("$JS.API.CONSUMER.DELETE.S.D")
        await ok("$JS.API.CONSUMER.DELETE.S.C")
        await ok("$JS.API.STREAM.DELETE.S")
        await asyncio.sleep(0.3)
        await sync(nc)
    finally:
        await close_all(nc)
        srv.stop()
    return events


async def fetch(nc, consumer: str, n: int) -> list:
    """Pulls `n` messages from consumer `consumer` of stream S."""
    msgs = []
    got = asyncio.Event()

    async def on_msg(m):
        msgs.append(m)
        if len(msgs) >= n:
            got.set()

    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox, cb=on_msg)
    req = json.dumps({"batch": n, "expires": 2_000_000_000}).encode()
    await nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.S.{consumer}", req, reply=inbox)
    await asyncio.wait_for(got.wait(), 5)
    await sub.unsubscribe()
    return msgs


def shape(v):
    """A value's JSON type, and for objects their key order, recursively."""
    if isinstance(v, dict):
        return {k: shape(x) for k, x in v.items()}, list(v)
    if isinstance(v, list):
        return [shape(x) for x in v]
    return type(v).__name__


def schema_for(kind: str) -> dict:
    # io.nats.jetstream.advisory.v1.stream_action -> advisory/v1/stream_action.json
    *_, family, version, name = kind.split(".")
    schema = json.loads((SCHEMAS / family / version / f"{name}.json").read_text())
    if name in ("nak", "terminated"):
        # The published schema says string; nats-server 2.15 sends a number
        # (the differential test below checks that rnats does the same).
        schema["properties"]["consumer_seq"]["type"] = "integer"
    return schema


def summary(events):
    """(subject, type, audited API subject) per event, in two sequences:
    API audits, and everything else. nats-server queues the two kinds
    separately, so how they interleave varies from run to run."""
    audits, others = [], []
    for subject, raw in events:
        e = json.loads(raw)
        item = (subject, e["type"], e.get("subject"))
        (audits if subject == "$JS.EVENT.ADVISORY.API" else others).append(item)
    return others, audits


def ordered(events):
    """The events in `summary`'s order: others first, then audits."""
    api = "$JS.EVENT.ADVISORY.API"
    return [e for e in events if e[0] != api] + [e for e in events if e[0] == api]


async def test_advisories_match_schemas(start_server, tmp_path):
    import jsonschema

    events = await run_scenario(start_server, tmp_path)
    kinds = {json.loads(raw)["type"] for _, raw in events}
    # Everything the scenario should produce, at least once.
    for want in [
        "io.nats.jetstream.advisory.v1.stream_action",
        "io.nats.jetstream.advisory.v1.consumer_action",
        "io.nats.jetstream.advisory.v1.api_audit",
        "io.nats.jetstream.advisory.v1.nak",
        "io.nats.jetstream.advisory.v1.terminated",
        "io.nats.jetstream.advisory.v1.max_deliver",
        "io.nats.jetstream.advisory.v1.consumer_pause",
        "io.nats.jetstream.metric.v1.consumer_ack",
    ]:
        assert want in kinds, (want, summary(events))
    for subject, raw in events:
        e = json.loads(raw)
        jsonschema.validate(e, schema_for(e["type"]))


async def test_advisories_same_as_reference(start_server, tmp_path):
    ok, why = reference_available()
    if not ok:
        pytest.skip(f"reference nats-server not available: {why}")
    ours = await run_scenario(start_server, tmp_path)
    theirs = await run_scenario(start_server, tmp_path, binary=reference_bin())
    assert summary(ours) == summary(theirs)
    for (subject, a), (_, b) in zip(ordered(ours), ordered(theirs)):
        ea, eb = json.loads(a), json.loads(b)
        # The requester (ClientInfo): same keys in the same order, except
        # `rtt`, which rnats does not measure (nats-server omits it when zero).
        for e in (ea, eb):
            if isinstance(e.get("client"), dict):
                e["client"] = [k for k in e["client"] if k != "rtt"]
        assert shape(ea) == shape(eb), (subject, a, b)
        # Same values where they do not depend on the run.
        for key in ("stream", "consumer", "action", "stream_seq", "consumer_seq", "deliveries", "reason", "paused"):
            assert ea.get(key) == eb.get(key), (subject, key, a, b)
