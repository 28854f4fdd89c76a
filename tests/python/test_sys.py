"""``$SYS`` requests and events with nats-py, against rnats and, when it is
available, the reference nats-server, so the shapes checked here are known
to be nats-server's.

Both servers get the same config: a system account with user ``sys`` and an
application account with user ``a``.  Only the system account's users see
``$SYS.REQ.*``; the application account gets just its own services
(nats-server's default system imports): its CONNZ and STATZ under the PING
subjects, and ``$SYS.REQ.USER.INFO``.
"""

from __future__ import annotations

import asyncio
import json

import nats
import pytest
from nats.errors import NoRespondersError

from conftest import reference_available, reference_bin

IMPLS = ["rnats", "reference"]

CONFIG = """
accounts {
  SYS { users = [{user: sys, password: sys}] }
  APP { users = [{user: a, password: a}] }
}
system_account: SYS
"""


def _binary(impl: str):
    if impl == "reference":
        ok, why = reference_available()
        if not ok:
            pytest.skip(f"reference nats-server not available: {why}")
        return reference_bin()
    return None


def _url(srv, user: str) -> str:
    return f"nats://{user}:{user}@127.0.0.1:{srv.port}"


async def _req(nc, subject: str, body: bytes = b"") -> dict:
    msg = await nc.request(subject, body, timeout=3)
    return json.loads(msg.data)


SERVER_KEYS = {"name", "host", "id", "ver", "jetstream", "flags", "seq", "time", "feature_flags"}


@pytest.mark.parametrize("impl", IMPLS)
async def test_requests_answer_in_nats_server_shapes(start_server, impl):
    srv = start_server(config=CONFIG, binary=_binary(impl))
    nc = await nats.connect(_url(srv, "sys"), name="sys-py")
    try:
        await nc.subscribe("sys.py.watched")
        await nc.flush()

        v = await _req(nc, "$SYS.REQ.SERVER.PING")
        assert set(v) == {"server", "statsz"}
        assert set(v["server"]) == SERVER_KEYS, v["server"]
        st = v["statsz"]
        for key in ("start", "mem", "cores", "cpu", "connections", "total_connections",
                    "active_accounts", "subscriptions", "sent", "sent_to_clients",
                    "received", "received_from_clients", "slow_consumers",
                    "active_servers", "gomaxprocs"):
            assert key in st, (key, st)
        assert st["connections"] >= 1

        sid = v["server"]["id"]
        idz = await _req(nc, f"$SYS.REQ.SERVER.{sid}.IDZ")
        assert idz == {"name": v["server"]["name"], "host": v["server"]["host"], "id": sid}

        v = await _req(nc, "$SYS.REQ.SERVER.PING.CONNZ", b'{"subscriptions":true}')
        assert set(v) == {"server", "data"}
        mine = [c for c in v["data"]["connections"] if c.get("name") == "sys-py"]
        assert mine and "sys.py.watched" in mine[0]["subscriptions_list"], v

        v = await _req(nc, "$SYS.REQ.SERVER.PING.HEALTHZ")
        assert v["data"] == {"status": "ok", "status_code": 200}

        v = await _req(nc, "$SYS.REQ.SERVER.PING.VARZ", b"{bad")
        assert set(v) == {"server", "error"}
        assert v["error"]["code"] == 400

        v = await _req(nc, "$SYS.REQ.ACCOUNT.NOPE.INFO")
        assert v["data"] is None
        assert v["error"] == {"code": 500, "description": "Account NOPE does not exist"}

        with pytest.raises(NoRespondersError):
            await nc.request("$SYS.REQ.SERVER.PING.STATZ", b"", timeout=2)
    finally:
        await nc.close()


@pytest.mark.parametrize("impl", IMPLS)
async def test_connect_and_disconnect_events(start_server, impl):
    srv = start_server(config=CONFIG, binary=_binary(impl))
    watcher = await nats.connect(_url(srv, "sys"))
    got: dict[str, dict] = {}

    async def on_event(m):
        kind = m.subject.rsplit(".", 1)[-1]
        ev = json.loads(m.data)
        # Only the client under test (another, e.g. a readiness probe, may
        # come and go meanwhile).
        if ev.get("client", {}).get("name") == "py-event":
            got.setdefault(kind, ev)

    try:
        await watcher.subscribe("$SYS.ACCOUNT.*.CONNECT", cb=on_event)
        await watcher.subscribe("$SYS.ACCOUNT.*.DISCONNECT", cb=on_event)
        await watcher.flush()
        app = await nats.connect(_url(srv, "a"), name="py-event")
        await app.publish("py.ev", b"hello")
        await app.flush()
        await app.close()
        for _ in range(50):
            if {"CONNECT", "DISCONNECT"} <= set(got):
                break
            await asyncio.sleep(0.05)
        c, d = got["CONNECT"], got["DISCONNECT"]
        assert c["type"] == "io.nats.server.advisory.v1.client_connect"
        assert set(c) == {"type", "id", "timestamp", "server", "client"}
        assert set(c["server"]) == SERVER_KEYS
        assert c["client"]["name"] == "py-event" and c["client"]["user"] == "a"
        assert c["client"]["acc"] == "APP" and c["client"]["name_tag"] == "APP"
        assert {"start", "host", "id", "acc", "lang", "ver", "kind", "client_type"} <= set(c["client"])
        assert d["type"] == "io.nats.server.advisory.v1.client_disconnect"
        assert set(d) == {"type", "id", "timestamp", "server", "client", "sent", "received", "reason"}
        assert d["client"]["id"] == c["client"]["id"] and "stop" in d["client"]
        assert d["sent"] == {"msgs": 1, "bytes": 5}
        assert d["reason"] == "Client Closed"
    finally:
        await watcher.close()


@pytest.mark.parametrize("impl", IMPLS)
async def test_application_account_sees_only_its_own_services(start_server, impl):
    srv = start_server(config=CONFIG, binary=_binary(impl))
    app = await nats.connect(_url(srv, "a"), name="py-app")
    sys_nc = await nats.connect(_url(srv, "sys"), name="py-sys")
    try:
        for subject in ("$SYS.REQ.SERVER.PING", "$SYS.REQ.SERVER.PING.VARZ",
                        "$SYS.REQ.ACCOUNT.APP.INFO"):
            with pytest.raises(NoRespondersError):
                await app.request(subject, b"", timeout=2)

        v = await _req(app, "$SYS.REQ.USER.INFO")
        assert v["data"] == {"user": "a", "account": "APP", "account_name": "APP"}

        v = await _req(app, "$SYS.REQ.ACCOUNT.PING.CONNZ")
        assert [c["name"] for c in v["data"]["connections"]] == ["py-app"]

        v = await _req(app, "$SYS.REQ.ACCOUNT.PING.STATZ")
        assert [s["acc"] for s in v["data"]["account_statz"]] == ["APP"]

        # The system account asks about any account.
        v = await _req(sys_nc, "$SYS.REQ.ACCOUNT.APP.INFO")
        assert v["data"]["account_name"] == "APP"
        assert v["data"]["client_connections"] == 1
        locals_ = {i["local_subject"] for i in v["data"]["imports"]}
        assert {"$SYS.REQ.ACCOUNT.PING.CONNZ", "$SYS.REQ.SERVER.PING.CONNZ",
                "$SYS.REQ.ACCOUNT.PING.STATZ", "$SYS.REQ.USER.INFO"} == locals_

        v = await _req(sys_nc, "$SYS.REQ.USER.INFO")
        assert v["data"] == {"user": "sys", "account": "SYS", "account_name": "SYS"}
    finally:
        await app.close()
        await sys_nc.close()
