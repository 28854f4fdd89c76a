"""Pull consumer priority groups (ADR-42), unpin and consumer reset through raw
``$JS.API`` requests with nats-py, run against rnats and, when present, the
reference nats-server v2.15.0 (skipped with the reason otherwise): both must
give the same answers.

- config rules: groups need a policy, a policy needs groups, valid names,
  pull consumers only, ``priority_timeout`` only with a policy;
- pull request errors (``400 Bad Request - ...``, ``423 Nats-Pin-Id mismatch``);
- the pinned client: ``Nats-Pin-Id`` headers, stand-by requests, the
  ``423 Nats-Wrong-Pin-Id`` that ends a request holding a dropped pin, the
  PINNED/UNPINNED advisories, consumer info ``priority_groups``;
- ``prioritized``: the lowest ``priority`` is served first;
- ``$JS.API.CONSUMER.UNPIN`` and ``$JS.API.CONSUMER.RESET`` answers.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from conftest import reference_available, reference_bin
from helpers import api_req, close_all, connect

IMPLS = ["rnats", "reference"]
MS = 1_000_000


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


async def setup(nc, n: int = 0, **cfg) -> None:
    """Stream ``S`` on ``s.>`` with ``n`` messages; consumer ``C`` with ``cfg``."""
    r = await api_req(nc, "$JS.API.STREAM.CREATE.S", {"name": "S", "subjects": ["s.>"], "storage": "memory"})
    assert "error" not in r, r
    for i in range(n):
        await nc.request("s.a", b"%d" % i, timeout=5)
    if cfg:
        r = await create(nc, "C", **cfg)
        assert "error" not in r, r


async def create(nc, name: str, **cfg) -> dict:
    body = {"stream_name": "S", "config": {"durable_name": name, "ack_policy": "explicit", **cfg}}
    return await api_req(nc, f"$JS.API.CONSUMER.CREATE.S.{name}", body)


class Puller:
    """A pull request on its own inbox, collecting what arrives."""

    def __init__(self, nc, body, consumer: str = "C"):
        self.nc, self.body, self.consumer = nc, body, consumer
        self.got: list = []

    async def send(self) -> "Puller":
        self.inbox = self.nc.new_inbox()
        self.sub = await self.nc.subscribe(self.inbox, cb=self._on)
        data = self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()
        await self.nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.S.{self.consumer}", data, reply=self.inbox)
        await self.nc.flush()
        return self

    async def _on(self, m) -> None:
        self.got.append(m)

    async def wait(self, n: int = 1, timeout: float = 3.0) -> list:
        end = time.monotonic() + timeout
        while len(self.got) < n and time.monotonic() < end:
            await asyncio.sleep(0.02)
        return self.got


async def pull(nc, body, consumer: str = "C", n: int = 1, timeout: float = 1.0) -> list:
    p = await Puller(nc, body, consumer).send()
    got = await p.wait(n, timeout)
    await p.sub.unsubscribe()
    return got


def status(m) -> tuple:
    h = m.headers or {}
    return (h.get("Status"), h.get("Description"))


@pytest.mark.parametrize(
    "cfg,err_code,description",
    [
        ({"priority_groups": ["g"]}, 10196, "consumer can not have priority groups when policy is none"),
        ({"priority_policy": "pinned_client"}, 10159,
         "Setting PriorityPolicy requires at least one PriorityGroup to be set"),
        ({"priority_policy": "overflow", "priority_groups": [""]}, 10161, "Group name cannot be an empty string"),
        ({"priority_policy": "overflow", "priority_groups": ["a.b"]}, 10162,
         "Valid priority group name must match A-Z, a-z, 0-9, -_/=)+ and may not exceed 16 characters"),
        ({"priority_policy": "overflow", "priority_groups": ["abcdefghijklmnopq"]}, 10162,
         "Valid priority group name must match A-Z, a-z, 0-9, -_/=)+ and may not exceed 16 characters"),
        ({"priority_policy": "overflow", "priority_groups": ["g"], "deliver_subject": "x"}, 10178,
         "priority groups can not be used with push consumers"),
        ({"priority_timeout": 1_000_000_000}, 10197, "PinnedTTL cannot be set when PriorityPolicy is none"),
        ({"priority_policy": "weird", "priority_groups": ["g"]}, 10025,
         'invalid JSON: unknown priority policy: "weird"'),
    ],
)
async def test_priority_config_rules(nc, cfg, err_code, description):
    await setup(nc)
    r = await create(nc, "bad", **cfg)
    assert r["error"] == {"code": 400, "err_code": err_code, "description": description}


async def test_pull_request_errors(nc):
    await setup(nc, 2, priority_policy="pinned_client", priority_groups=["A"])
    r = await create(nc, "N")
    assert "error" not in r, r
    cases = [
        ("C", {"batch": 1}, "400", "Bad Request - Priority Group missing"),
        ("C", {"batch": 1, "group": "Z"}, "400", "Bad Request - Invalid Priority Group"),
        ("C", {"batch": 1, "group": "A", "min_pending": 1}, "400", "Bad Request - Not a Overflow Priority consumer"),
        ("C", {"batch": 1, "group": "A", "priority": 10}, "400", "Bad Request - Priority must be between 0 and 9"),
        ("N", {"batch": 1, "group": "A", "id": "x"}, "400", "Bad Request - Not a Pinned Client Priority consumer"),
        ("N", {"batch": 1, "min_ack_pending": 3}, "400", "Bad Request - Not a Overflow Priority consumer"),
    ]
    for consumer, body, code, text in cases:
        got = await pull(nc, body, consumer)
        assert [status(m) for m in got] == [(code, text)], (consumer, body)
    # Without a consumer policy, groups in a request are ignored.
    got = await pull(nc, {"batch": 1, "group": "anything"}, "N")
    assert got and got[0].data == b"0"
    # Non-JSON requests carry no group: served, with an empty pin header.
    got = await pull(nc, b"1")
    assert [(m.data, m.headers) for m in got] == [(b"0", {"Nats-Pin-Id": ""})]


async def test_pinned_client_flow(nc):
    await setup(nc, 0, priority_policy="pinned_client", priority_groups=["A", "B"], priority_timeout=60_000 * MS)
    adv = await nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.*.S.C")
    first = await Puller(nc, {"batch": 2, "group": "A"}).send()
    standby = await Puller(nc, {"batch": 1, "group": "A"}).send()
    await nc.request("s.a", b"1", timeout=5)
    await nc.request("s.a", b"2", timeout=5)
    got = await first.wait(2)
    pins = {m.headers.get("Nats-Pin-Id") for m in got}
    assert len(pins) == 1 and len(next(iter(pins))) == 22, pins
    pin = pins.pop()
    info = await api_req(nc, "$JS.API.CONSUMER.INFO.S.C")
    assert info["priority_groups"][0]["group"] == "A"
    assert info["priority_groups"][0]["pinned_client_id"] == pin
    assert not info["priority_groups"][0]["pinned_ts"].startswith("0001")
    # The stand-by request holds no pin: it is not served.
    await nc.request("s.a", b"3", timeout=5)
    assert await standby.wait(1, 0.5) == []
    # Someone else's pin is refused at once; the pinned client is served.
    got = await pull(nc, {"batch": 1, "group": "A", "id": "other"})
    assert [status(m) for m in got] == [("423", "Nats-Pin-Id mismatch")]
    got = await pull(nc, {"batch": 1, "group": "A", "id": pin})
    assert [(m.data, m.headers.get("Nats-Pin-Id")) for m in got] == [(b"3", pin)]

    # Unpin: the stand-by request is pinned with a new id by the next message.
    r = await api_req(nc, "$JS.API.CONSUMER.UNPIN.S.C", {"group": "A"})
    assert r == {"type": "io.nats.jetstream.api.v1.consumer_unpin_response"}
    info = await api_req(nc, "$JS.API.CONSUMER.INFO.S.C")
    assert info["priority_groups"] == [{"group": "A", "pinned_ts": "0001-01-01T00:00:00Z"}]
    await nc.request("s.a", b"4", timeout=5)
    got = await standby.wait(1)
    assert got[0].data == b"4"
    new_pin = got[0].headers["Nats-Pin-Id"]
    assert new_pin and new_pin != pin
    # A waiting request whose pin is dropped is ended when the next message comes.
    old = await Puller(nc, {"batch": 1, "group": "A", "id": new_pin}).send()
    await api_req(nc, "$JS.API.CONSUMER.UNPIN.S.C", {"group": "A"})
    await nc.request("s.a", b"5", timeout=5)
    got = await old.wait(1)
    assert [(status(m), m.headers.get("Nats-Pending-Messages"), m.headers.get("Nats-Pending-Bytes"))
            for m in got] == [(("423", "Nats-Wrong-Pin-Id"), "1", "0")]
    got = await pull(nc, {"batch": 1, "group": "A"})
    assert got[0].data == b"5"
    third_pin = got[0].headers["Nats-Pin-Id"]
    assert third_pin not in (pin, new_pin)

    events = []
    while True:
        try:
            m = await adv.next_msg(timeout=0.5)
        except Exception:
            break
        if ".PINNED." in m.subject or ".UNPINNED." in m.subject:
            events.append((m.subject, json.loads(m.data)))
    assert [s.split(".")[4] for s, _ in events] == ["PINNED", "UNPINNED", "PINNED", "UNPINNED", "PINNED"]
    pinned, unpinned, repinned = (e for _, e in events[:3])
    assert list(pinned) == ["type", "id", "timestamp", "account", "stream", "consumer", "group", "pinned_id"]
    assert (pinned["type"], pinned["account"], pinned["stream"], pinned["consumer"], pinned["group"],
            pinned["pinned_id"]) == ("io.nats.jetstream.advisory.v1.consumer_group_pinned", "$G", "S", "C", "A", pin)
    assert list(unpinned) == ["type", "id", "timestamp", "account", "stream", "consumer", "group", "reason"]
    assert (unpinned["type"], unpinned["group"], unpinned["reason"]) == (
        "io.nats.jetstream.advisory.v1.consumer_group_unpinned", "A", "admin")
    assert repinned["pinned_id"] == new_pin
    assert events[4][1]["pinned_id"] == third_pin


async def test_pin_times_out(nc):
    await setup(nc, 1, priority_policy="pinned_client", priority_groups=["A"], priority_timeout=500 * MS)
    adv = await nc.subscribe("$JS.EVENT.ADVISORY.CONSUMER.UNPINNED.S.C")
    got = await pull(nc, {"batch": 1, "group": "A"})
    assert got[0].headers["Nats-Pin-Id"]
    m = await adv.next_msg(timeout=3)
    assert json.loads(m.data)["reason"] == "timeout"
    info = await api_req(nc, "$JS.API.CONSUMER.INFO.S.C")
    assert "pinned_client_id" not in info["priority_groups"][0]


async def test_overflow_thresholds(nc):
    await setup(nc, 3, priority_policy="overflow", priority_groups=["A"])
    got = await pull(nc, {"batch": 1, "group": "A", "min_pending": 10, "no_wait": True})
    assert [status(m) for m in got] == [("404", "No Messages")]
    got = await pull(nc, {"batch": 1, "group": "A", "min_pending": 10, "expires": 300 * MS})
    assert [status(m) for m in got] == [("408", "Request Timeout")]
    got = await pull(nc, {"batch": 1, "group": "A", "min_pending": 3})
    assert [m.data for m in got] == [b"0"]
    # Only 2 left, but one awaits its ack: min_ack_pending 1 is met.
    got = await pull(nc, {"batch": 1, "group": "A", "min_pending": 5, "min_ack_pending": 1})
    assert [m.data for m in got] == [b"1"]


async def test_prioritized_serves_lowest_priority_first(nc):
    await setup(nc, 0, priority_policy="prioritized", priority_groups=["A"])
    low = await Puller(nc, {"batch": 1, "group": "A", "priority": 5}).send()
    high = await Puller(nc, {"batch": 1, "group": "A", "priority": 1}).send()
    await nc.request("s.a", b"first", timeout=5)
    assert [m.data for m in await high.wait(1)] == [b"first"]
    assert low.got == []
    await nc.request("s.a", b"second", timeout=5)
    assert [m.data for m in await low.wait(1)] == [b"second"]


@pytest.mark.parametrize(
    "subject,body,error",
    [
        ("S.C", b"", {"code": 400, "err_code": 10025, "description": "invalid JSON: unexpected end of JSON input"}),
        ("S.C", {}, {"code": 400, "err_code": 10025, "description": "invalid JSON: consumer group not specified"}),
        ("S.C", {"group": "Z"}, {"code": 400, "err_code": 10160,
                                 "description": "Provided priority group does not exist for this consumer"}),
        ("S.C", {"group": "a.b"}, {"code": 400, "err_code": 10162, "description":
                                   "Valid priority group name must match A-Z, a-z, 0-9, -_/=)+ and may not exceed 16 characters"}),
        ("S.X", {"group": "A"}, {"code": 404, "err_code": 10014, "description": "consumer not found"}),
        ("X.X", {"group": "A"}, {"code": 404, "err_code": 10059, "description": "stream not found"}),
    ],
)
async def test_unpin_errors(nc, subject, body, error):
    await setup(nc, 0, priority_policy="overflow", priority_groups=["A"])
    r = await api_req(nc, f"$JS.API.CONSUMER.UNPIN.{subject}", body)
    assert r == {"type": "io.nats.jetstream.api.v1.consumer_unpin_response", "error": error}


async def test_reset(nc):
    await setup(nc, 5)
    r = await create(nc, "N")
    assert "error" not in r, r
    r = await create(nc, "L", deliver_policy="new")
    assert "error" not in r, r
    got = await pull(nc, {"batch": 3}, "N", n=3)
    for m in got[:2]:
        await m.ack_sync()
    r = await api_req(nc, "$JS.API.CONSUMER.RESET.S.N")
    assert r["type"] == "io.nats.jetstream.api.v1.consumer_reset_response"
    assert (r["reset_seq"], r["delivered"], r["ack_floor"], r["num_ack_pending"], r["num_pending"]) == (
        3, {"consumer_seq": 0, "stream_seq": 2}, {"consumer_seq": 0, "stream_seq": 2}, 0, 3)
    r = await api_req(nc, "$JS.API.CONSUMER.RESET.S.N", {"seq": 5})
    assert (r["reset_seq"], r["num_pending"]) == (5, 1)
    got = await pull(nc, {"batch": 1}, "N")
    assert got[0].reply.split(".")[5:7] == ["5", "1"]
    r = await api_req(nc, "$JS.API.CONSUMER.RESET.S.N", b"{")
    assert r == {"type": "io.nats.jetstream.api.v1.consumer_reset_response", "reset_seq": 0,
                 "error": {"code": 400, "err_code": 10025, "description": "invalid JSON: unexpected end of JSON input"}}
    r = await api_req(nc, "$JS.API.CONSUMER.RESET.S.L", {"seq": 2})
    assert r["error"] == {"code": 400, "err_code": 10204, "description": "invalid reset: not allowed"}
    # A missing consumer gets no answer at all.
    with pytest.raises(asyncio.TimeoutError):
        await api_req(nc, "$JS.API.CONSUMER.RESET.S.X", b"", timeout=0.5)
