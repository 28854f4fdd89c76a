"""HTTP monitoring (``-m``) checked over plain urllib, against rnats and,
when it is available, the reference nats-server (so the expectations here
are known to be nats-server's).

Bodies of /varz, /connz, /subsz, /healthz and /jsz are validated against the
JSON Schemas in ``shared/reference/schemas/server/monitor/v1/`` (or
``$RNATS_SCHEMA_DIR/server/monitor/v1``) with the ``jsonschema`` package;
an endpoint without a schema there is skipped with the reason printed.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, reference_available, reference_bin

SCHEMA_DIR = Path(
    os.environ.get("RNATS_SCHEMA_DIR") or ROOT.parent / "shared" / "reference" / "schemas"
) / "server" / "monitor" / "v1"

IMPLS = ["rnats", "reference"]


def _binary(impl: str):
    if impl == "reference":
        ok, why = reference_available()
        if not ok:
            pytest.skip(f"reference nats-server not available: {why}")
        return reference_bin()
    return None


def _monitor_port(srv) -> int:
    m = re.search(r"Starting http monitor on \S+:(\d+)", srv.log())
    assert m, f"no monitor line in log:\n{srv.log()}"
    return int(m.group(1))


def _get(port: int, path: str):
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers


def _json(port: int, path: str) -> dict:
    status, body, headers = _get(port, path)
    assert status == 200, f"{path}: {status} {body}"
    assert headers.get("Content-Type") == "application/json"
    assert headers.get("Access-Control-Allow-Origin") == "*"
    return json.loads(body)


def _validate(name: str, body: dict) -> None:
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - the runner installs it
        print(f"schema check of /{name} skipped: the jsonschema package is not installed")
        return
    path = SCHEMA_DIR / f"{name}.json"
    if not SCHEMA_DIR.is_dir():
        print(f"schema check of /{name} skipped: {SCHEMA_DIR} does not exist")
        return
    if not path.is_file():
        print(f"schema check of /{name} skipped: no schema {path.name} in {SCHEMA_DIR}")
        return
    schema = json.loads(path.read_text())
    jsonschema.validate(body, schema)


def _connect(port: int, name: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    f = s.makefile("rb")
    assert f.readline().startswith(b"INFO ")
    s.sendall(
        b'CONNECT {"verbose":false,"pedantic":false,"protocol":1,"name":"%s","lang":"py","version":"1"}\r\nPING\r\n'
        % name.encode()
    )
    _until(s, b"PONG\r\n")
    return s


def _until(s: socket.socket, needle: bytes) -> bytes:
    buf = b""
    deadline = time.time() + 5
    while needle not in buf:
        assert time.time() < deadline, f"no {needle!r} in {buf!r}"
        chunk = s.recv(65536)
        assert chunk, f"closed before {needle!r}: {buf!r}"
        buf += chunk
    return buf


def _ping(s: socket.socket) -> None:
    s.sendall(b"PING\r\n")
    _until(s, b"PONG\r\n")


def _poll(port: int, path: str, pred, timeout: float = 5.0) -> dict:
    deadline = time.time() + timeout
    while True:
        v = _json(port, path)
        if pred(v) or time.time() > deadline:
            return v
        time.sleep(0.02)


@pytest.mark.parametrize("impl", IMPLS)
def test_varz_connz_subsz_healthz(start_server, impl):
    srv = start_server("-m", "-1", binary=_binary(impl))
    mport = _monitor_port(srv)

    sub = _connect(srv.port, "sub")
    pub = _connect(srv.port, "pub")
    sub.sendall(b"SUB mon.* 1\r\nSUB mon.> q 2\r\n")
    _ping(sub)
    pub.sendall(b"PUB mon.a 5\r\nhello\r\nPUB mon.b 3\r\nabc\r\nPUB none 2\r\nhi\r\n")
    _ping(pub)

    varz = _poll(mport, "/varz", lambda v: v["out_msgs"] >= 4)
    _validate("varz", varz)
    assert varz["version"] == "2.15.0"
    assert varz["port"] == srv.port
    assert varz["http_port"] == -1  # as configured (-m -1), not the bound port
    assert varz["in_msgs"] == 3 and varz["in_bytes"] == 10
    assert varz["out_msgs"] == 4 and varz["out_bytes"] == 16
    assert varz["connections"] == 2
    assert varz["total_connections"] == 2
    assert varz["ping_interval"] == 120_000_000_000
    assert varz["auth_timeout"] == 2
    assert varz["jetstream"] == {}
    assert varz["http_req_stats"]["/varz"] >= 1
    assert re.fullmatch(r"(\d+[ydhm])*\d+s", varz["uptime"])

    connz = _json(mport, "/connz?subs=1")
    _validate("connz", connz)
    assert connz["num_connections"] == 2 and connz["total"] == 2
    by_name = {c["name"]: c for c in connz["connections"]}
    assert by_name["pub"]["in_msgs"] == 3 and by_name["pub"]["in_bytes"] == 10
    assert by_name["sub"]["out_msgs"] == 4 and by_name["sub"]["subscriptions"] == 2
    assert sorted(by_name["sub"]["subscriptions_list"]) == ["mon.*", "mon.>"]
    assert by_name["sub"]["lang"] == "py" and by_name["sub"]["kind"] == "Client"
    first = _json(mport, "/connz?sort=msgs_from&limit=1")
    assert first["limit"] == 1 and first["connections"][0]["name"] == "pub"

    pub.close()
    closed = _poll(mport, "/connz?state=closed", lambda v: v["total"] >= 1)
    _validate("connz", closed)
    assert closed["connections"][0]["name"] == "pub"
    assert closed["connections"][0]["reason"] == "Client Closed"
    assert "stop" in closed["connections"][0]

    status, body, _ = _get(mport, "/connz?sort=bogus")
    assert (status, body) == (400, "invalid sorting option: bogus")

    # The reference server has its own internal subscriptions: compare ours by delta.
    subsz = _json(mport, "/subsz?subs=1&test=mon.x")
    _validate("subsz", subsz)
    assert subsz["total"] == 2
    assert {s["subject"] for s in subsz["subscriptions_list"]} == {"mon.*", "mon.>"}
    assert all(s["account"] == "$G" for s in subsz["subscriptions_list"])
    assert subsz["num_subscriptions"] >= 2

    status, body, _ = _get(mport, "/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    _validate("healthz", json.loads(body))
    status, body, _ = _get(mport, "/healthz?js-enabled-only=true")
    assert status == 200 and body == '{"status":"ok"}'

    jsz = _json(mport, "/jsz")
    _validate("jsz", jsz)
    assert jsz["disabled"] is True

    status, body, _ = _get(mport, "/nope")
    assert status == 404 and body == "404 page not found\n"
    sub.close()


@pytest.mark.parametrize("impl", IMPLS)
def test_jsz_and_healthz_with_jetstream(start_server, tmp_path, impl):
    srv = start_server("-m", "-1", "-js", "-sd", str(tmp_path / impl), binary=_binary(impl))
    mport = _monitor_port(srv)

    c = _connect(srv.port, "js")
    body = b'{"name":"MON","subjects":["mon.>"],"storage":"file"}'
    c.sendall(b"SUB _INBOX.mon 1\r\nPUB $JS.API.STREAM.CREATE.MON _INBOX.mon %d\r\n%s\r\n" % (len(body), body))
    _until(c, b"stream_create_response")
    for i in range(3):
        c.sendall(b"PUB mon.%d _INBOX.mon 7\r\npayload\r\n" % i)
        _until(c, b'"seq":%d' % (i + 1))

    jsz = _json(mport, "/jsz")
    _validate("jsz", jsz)
    assert "disabled" not in jsz
    assert jsz["streams"] == 1 and jsz["messages"] == 3 and jsz["consumers"] == 0
    assert jsz["storage"] > 0 and jsz["bytes"] == jsz["storage"]
    assert jsz["api"]["level"] == 5 and jsz["api"]["total"] >= 1
    assert jsz["config"]["store_dir"].endswith("jetstream")
    assert "account_details" not in jsz

    detail = _json(mport, "/jsz?streams=1&config=1")
    _validate("jsz", detail)
    acc = detail["account_details"][0]
    assert acc["name"] == "$G"
    st = acc["stream_detail"][0]
    assert st["name"] == "MON"
    assert st["config"]["subjects"] == ["mon.>"]
    assert st["state"]["messages"] == 3 and st["state"]["last_seq"] == 3

    varz = _json(mport, "/varz")
    _validate("varz", varz)
    assert varz["jetstream"]["stats"]["accounts"] == 1
    assert varz["jetstream"]["config"]["store_dir"] == jsz["config"]["store_dir"]

    status, body, _ = _get(mport, "/healthz?account=$G&stream=MON")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    status, body, _ = _get(mport, "/healthz?account=$G&stream=NOPE")
    assert status == 404
    assert json.loads(body) == {
        "status": "unavailable",
        "error": 'JetStream stream "NOPE" not found on account "$G"',
    }
    c.close()
