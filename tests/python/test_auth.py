"""Authentication and authorization (expected texts from nats-server 2.15).

--user/--pass and --auth TOKEN; `authorization {}` users lists with bcrypt
passwords, nkeys and no_auth_user; per-user publish/subscribe permissions
with queue groups, deny lists and allow_responses.  The tests on
`auth_server` run against rnats and, when present, the reference
nats-server, with the same expected bytes (differential).
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import time

import nats
import nkeys
import pytest

from conftest import reference_available, reference_bin
from helpers import close_all, connect, sync

AUTH_VIOLATION = b"-ERR 'Authorization Violation'\r\n"


def _is_auth_error(exc: BaseException) -> bool:
    return isinstance(exc, nats.errors.AuthorizationError) or "Authorization Violation" in str(exc)


async def _connect_fails(url: str, **kw) -> BaseException:
    with pytest.raises(Exception) as ei:
        nc = await connect(url, **kw)
        await close_all(nc)  # only reached if the connect wrongly succeeded
    assert _is_auth_error(ei.value), f"expected an authorization error, got {ei.value!r}"
    return ei.value


@pytest.fixture
def userpass_server(start_server):
    return start_server("--user", "a", "--pass", "b")


@pytest.fixture
def token_server(start_server):
    return start_server("--auth", "s3cr3t-t0ken")


async def test_user_pass_right_credentials(userpass_server):
    nc = await connect(userpass_server.url, user="a", password="b")
    try:
        assert nc._server_info.get("auth_required") is True
        sub = await nc.subscribe("auth.ok")
        await nc.publish("auth.ok", b"in")
        assert (await sub.next_msg(timeout=5)).data == b"in"
    finally:
        await close_all(nc)


async def test_user_pass_in_url(userpass_server):
    nc = await connect(f"nats://a:b@127.0.0.1:{userpass_server.port}")
    try:
        await sync(nc)
        assert nc.is_connected
    finally:
        await close_all(nc)


@pytest.mark.parametrize(
    "creds",
    [
        {"user": "a", "password": "wrong"},
        {"user": "wrong", "password": "b"},
        {"user": "A", "password": "b"},
        {"token": "b"},
        {},
    ],
    ids=["bad-pass", "bad-user", "user-case", "token-instead", "none"],
)
async def test_user_pass_wrong_credentials(userpass_server, creds):
    await _connect_fails(userpass_server.url, **creds)


async def test_token_right(token_server):
    nc = await connect(token_server.url, token="s3cr3t-t0ken")
    try:
        assert nc._server_info.get("auth_required") is True
        await sync(nc)
    finally:
        await close_all(nc)


@pytest.mark.parametrize(
    "creds",
    [{"token": "s3cr3t-t0keN"}, {"token": "s3cr3t"}, {"user": "s3cr3t-t0ken", "password": "s3cr3t-t0ken"}, {}],
    ids=["case", "prefix", "as-user-pass", "none"],
)
async def test_token_wrong(token_server, creds):
    await _connect_fails(token_server.url, **creds)


@pytest.mark.parametrize(
    "data",
    [
        b"PING\r\n",
        b"SUB auth.x 1\r\n",
        b"PUB auth.x 1\r\nx\r\n",
        b'CONNECT {"verbose":false,"user":"a","pass":"x"}\r\nPING\r\n',
        b'CONNECT {"verbose":false}\r\nPING\r\n',
    ],
    ids=["ping-first", "sub-first", "pub-first", "bad-pass", "no-creds"],
)
def test_raw_auth_violation(userpass_server, raw_conn, data):
    c = raw_conn(userpass_server.port)
    assert c.info.get("auth_required") is True
    c.send(data)
    assert c.wait_closed(5), f"connection should be closed; got {bytes(c.buf)!r}"
    assert bytes(c.buf) == AUTH_VIOLATION


def test_raw_auth_ok_keeps_connection(userpass_server, raw_conn):
    c = raw_conn(userpass_server.port)
    c.send(b'CONNECT {"verbose":false,"user":"a","pass":"b"}\r\nSUB ok.x 1\r\nPUB ok.x 1\r\ny\r\nPING\r\n')
    assert c.read_until(b"PONG\r\n") == b"MSG ok.x 1 1\r\ny\r\nPONG\r\n"
    assert not c.closed


def test_auth_timeout(userpass_server, raw_conn):
    """A client that never sends CONNECT is dropped after the (default 2 s) auth timeout."""
    c = raw_conn(userpass_server.port)
    t0 = time.monotonic()
    assert c.wait_closed(6), "server should close a connection that never authenticates"
    elapsed = time.monotonic() - t0
    assert bytes(c.buf) == b"-ERR 'Authentication Timeout'\r\n"
    assert 1.0 < elapsed < 5.0, elapsed


# --------------------------------------------------------------------------
# authorization {} with users, nkeys and permissions (differential)
# --------------------------------------------------------------------------

IMPLS = ["rnats", "reference"]
# bcrypt of "pw-secret" (cost 4).
PW_HASH = "$2b$04$4lFCg3r3lKgNJugO5HWEw.nxWWLtyfvvrNLJ5QlzXBiuoNEsNLal."


def _new_user_seed() -> bytes:
    return nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)


NK_SEED = _new_user_seed()
NK_PUBLIC = nkeys.from_seed(NK_SEED).public_key.decode()
OTHER_SEED = _new_user_seed()

AUTH_CONF = f"""
authorization {{
  users = [
    {{ user: admin, password: admin, permissions: {{ publish: ">", subscribe: ">" }} }}
    {{ user: a, password: a, permissions: {{
        publish: {{ allow: ["a.>", "_INBOX.>"], deny: ["a.secret.>"] }}
        subscribe: {{ allow: ["a.>", "_INBOX.>", "work.* workers"], deny: ["a.hidden"] }}
    }} }}
    {{ user: svc, password: svc, permissions: {{ subscribe: "svc.>", allow_responses: true }} }}
    {{ user: hashed, password: "{PW_HASH}" }}
    {{ nkey: {NK_PUBLIC} }}
    {{ user: guest }}
  ]
  default_permissions: {{ publish: "guest.>", subscribe: ["guest.>", "_INBOX.>"] }}
}}
no_auth_user: guest
"""


@pytest.fixture(params=IMPLS)
def auth_server(request, start_server):
    binary = None
    if request.param == "reference":
        ok, why = reference_available()
        if not ok:
            pytest.skip(f"reference nats-server not available: {why}")
        binary = reference_bin()
    return start_server(config=AUTH_CONF, binary=binary)


def _session(raw_conn, port: int, creds: str, data: bytes) -> tuple[bytes, bool]:
    """CONNECT with ``creds`` (JSON members), send ``data`` + PING, return what came back."""
    c = raw_conn(port)
    c.send(b'CONNECT {"verbose":false,"pedantic":false' + (b"," + creds.encode() if creds else b"") + b"}\r\n"
           + data + b"PING\r\n")
    if not c.wait_closed(0.1):
        try:
            c.read_until(b"PONG\r\n")
        except AssertionError:
            pass
    return c.take(), c.closed


USER_A = '"user":"a","pass":"a"'
VIOLATION = "-ERR 'Permissions Violation for {}'\r\n"


@pytest.mark.parametrize(
    "data,expected",
    [
        (b"PUB b.x 1\r\nx\r\n", VIOLATION.format('Publish to "b.x"') + "PONG\r\n"),
        (b"PUB a.secret.k 1\r\nx\r\n", VIOLATION.format('Publish to "a.secret.k"') + "PONG\r\n"),
        (b"SUB b.> 1\r\n", VIOLATION.format('Subscription to "b.>"') + "PONG\r\n"),
        (b"SUB a.hidden 1\r\n", VIOLATION.format('Subscription to "a.hidden"') + "PONG\r\n"),
        (b"SUB work.x 1\r\n", VIOLATION.format('Subscription to "work.x"') + "PONG\r\n"),
        (b"SUB work.x others 1\r\n",
         VIOLATION.format('Subscription to "work.x" using queue "others"') + "PONG\r\n"),
        (b"SUB work.x workers 1\r\n", "PONG\r\n"),
        # A wildcard subscription does not get the denied subject.
        (b"SUB a.* 1\r\nPUB a.hidden 1\r\nx\r\nPUB a.shown 1\r\ny\r\n", "MSG a.shown 1 1\r\ny\r\nPONG\r\n"),
        # The connection survives and keeps working after violations.
        (b"PUB b 1\r\nx\r\nSUB c 1\r\nSUB a.ok 2\r\nPUB a.ok 2\r\nok\r\n",
         VIOLATION.format('Publish to "b"') + VIOLATION.format('Subscription to "c"')
         + "MSG a.ok 2 2\r\nok\r\nPONG\r\n"),
    ],
    ids=["pub-not-allowed", "pub-denied", "sub-not-allowed", "sub-denied", "queue-only-plain",
         "queue-wrong-group", "queue-right-group", "wildcard-filtered", "survives"],
)
def test_permission_errors_raw(auth_server, raw_conn, data, expected):
    out, closed = _session(raw_conn, auth_server.port, USER_A, data)
    assert out.decode() == expected
    assert not closed


def test_permission_violation_verbose(auth_server, raw_conn):
    c = raw_conn(auth_server.port)
    c.send(b'CONNECT {"verbose":true,"user":"a","pass":"a"}\r\nPUB b 1\r\nx\r\nSUB c 1\r\nPING\r\n')
    out = c.read_until(b"PONG\r\n")
    assert out.decode() == ("+OK\r\n" + VIOLATION.format('Publish to "b"')
                            + VIOLATION.format('Subscription to "c"') + "PONG\r\n")


@pytest.mark.parametrize(
    "creds,ok",
    [
        ('"user":"hashed","pass":"pw-secret"', True),
        ('"user":"hashed","pass":"pw-secreT"', False),
        (f'"user":"hashed","pass":"{PW_HASH}"', False),
        ('"user":"nobody","pass":"a"', False),
        ('"user":"a","pass":"b"', False),
        ('"auth_token":"a"', False),
        ("", True),  # no credentials: the no_auth_user
    ],
    ids=["bcrypt-right", "bcrypt-wrong", "bcrypt-hash-as-password", "unknown-user", "wrong-password",
         "token", "no-auth-user"],
)
def test_users_raw(auth_server, raw_conn, creds, ok):
    out, closed = _session(raw_conn, auth_server.port, creds, b"")
    if ok:
        assert (out, closed) == (b"PONG\r\n", False)
    else:
        assert (out, closed) == (AUTH_VIOLATION, True)


def _nkey_connect(c, seed: bytes, nonce_from=None, std_b64: bool = False) -> None:
    kp = nkeys.from_seed(seed)
    nonce = (nonce_from or c.info)["nonce"]
    raw = kp.sign(nonce.encode())
    sig = (base64.b64encode(raw) if std_b64 else base64.urlsafe_b64encode(raw).rstrip(b"=")).decode()
    pub = kp.public_key.decode()
    c.send(f'CONNECT {{"verbose":false,"nkey":"{pub}","sig":"{sig}"}}\r\nPING\r\n'.encode())


def test_nkey_raw(auth_server, raw_conn):
    c = raw_conn(auth_server.port)
    assert len(c.info["nonce"]) >= 11
    _nkey_connect(c, NK_SEED)
    assert c.read_until(b"PONG\r\n") == b"PONG\r\n"
    # Standard base64 signatures are accepted too.
    c = raw_conn(auth_server.port)
    _nkey_connect(c, NK_SEED, std_b64=True)
    assert c.read_until(b"PONG\r\n") == b"PONG\r\n"
    # A key that is not configured.
    c = raw_conn(auth_server.port)
    _nkey_connect(c, OTHER_SEED)
    assert c.wait_closed(5) and bytes(c.buf) == AUTH_VIOLATION
    # A signature over another connection's nonce.
    other = raw_conn(auth_server.port)
    c = raw_conn(auth_server.port)
    assert c.info["nonce"] != other.info["nonce"]
    _nkey_connect(c, NK_SEED, nonce_from=other.info)
    assert c.wait_closed(5) and bytes(c.buf) == AUTH_VIOLATION
    # No signature at all.
    c = raw_conn(auth_server.port)
    c.send(f'CONNECT {{"verbose":false,"nkey":"{NK_PUBLIC}"}}\r\nPING\r\n'.encode())
    assert c.wait_closed(5) and bytes(c.buf) == AUTH_VIOLATION


def test_allow_responses_raw(auth_server, raw_conn):
    svc = raw_conn(auth_server.port)
    svc.send(b'CONNECT {"verbose":false,"user":"svc","pass":"svc"}\r\nSUB svc.time 1\r\nPING\r\n')
    assert svc.read_until(b"PONG\r\n") == b"PONG\r\n"
    svc.take()
    req = raw_conn(auth_server.port)
    req.send(b'CONNECT {"verbose":false,"user":"admin","pass":"admin"}\r\nSUB r.1 9\r\n'
             b"PUB svc.time r.1 1\r\n?\r\nPING\r\n")
    req.read_until(b"PONG\r\n")
    req.take()
    assert svc.read_until(b"?\r\n") == b"MSG svc.time 1 r.1 1\r\n?\r\n"
    svc.take()
    # One response is allowed (the default max), the second and anything else are not.
    svc.send(b"PUB r.1 4\r\nnoon\r\nPUB r.1 5\r\nagain\r\nPUB svc.time 0\r\n\r\nPING\r\n")
    out = svc.read_until(b"PONG\r\n").decode()
    assert out == (VIOLATION.format('Publish to "r.1"') + VIOLATION.format('Publish to "svc.time"')
                   + "PONG\r\n")
    assert req.read_until(b"noon\r\n") == b"MSG r.1 9 4\r\nnoon\r\n"


# --------------------------------------------------------------------------
# The same through nats-py
# --------------------------------------------------------------------------


async def test_nkeys_seed_nats_py(auth_server):
    nc = await connect(auth_server.url, nkeys_seed_str=NK_SEED.decode())
    try:
        # The nkey user has no permissions of its own: it gets the defaults.
        sub = await nc.subscribe("guest.nk")
        await nc.publish("guest.nk", b"signed")
        assert (await sub.next_msg(timeout=5)).data == b"signed"
    finally:
        await close_all(nc)
    await _connect_fails(auth_server.url, nkeys_seed_str=OTHER_SEED.decode())


async def test_bcrypt_user_nats_py(auth_server):
    nc = await connect(auth_server.url, user="hashed", password="pw-secret")
    try:
        await sync(nc)
        assert nc.is_connected
    finally:
        await close_all(nc)
    await _connect_fails(auth_server.url, user="hashed", password="wrong")


async def test_permissions_nats_py(auth_server):
    admin = await connect(auth_server.url, user="admin", password="admin")
    a = await connect(auth_server.url, user="a", password="a")
    try:
        seen = await admin.subscribe("a.>")
        await sync(admin)
        await a.publish("b.x", b"refused")
        await a.publish("a.ok", b"delivered")
        await sync(a)
        msg = await seen.next_msg(timeout=5)
        assert (msg.subject, msg.data) == ("a.ok", b"delivered")
        await a.subscribe("a.hidden")
        await sync(a)
        # nats-py reports -ERR texts lower-cased.
        texts = [str(e) for e in a.errors_seen]
        assert texts == [
            'nats: permissions violation for publish to "b.x"',
            'nats: permissions violation for subscription to "a.hidden"',
        ], texts
        assert a.is_connected
        # Still working after the violations: a request/response through admin.
        async def echo(m):
            await admin.publish(m.reply, m.data)

        svc = await admin.subscribe("a.echo", cb=echo)
        await sync(admin)
        assert (await a.request("a.echo", b"ping", timeout=5)).data == b"ping"
        await svc.unsubscribe()
    finally:
        await close_all(a, admin)


async def test_allow_responses_nats_py(auth_server):
    svc = await connect(auth_server.url, user="svc", password="svc")
    client = await connect(auth_server.url, user="admin", password="admin")
    try:
        async def answer(m):
            await svc.publish(m.reply, b"answer:" + m.data)

        await svc.subscribe("svc.q", cb=answer)
        await sync(svc)
        for i in range(3):
            r = await client.request("svc.q", str(i).encode(), timeout=5)
            assert r.data == f"answer:{i}".encode()
        await svc.publish("elsewhere", b"x")
        await sync(svc)
        assert [str(e) for e in svc.errors_seen] == ['nats: permissions violation for publish to "elsewhere"']
    finally:
        await close_all(svc, client)


async def test_no_auth_user_nats_py(auth_server):
    nc = await connect(auth_server.url)
    try:
        sub = await nc.subscribe("guest.room")
        await nc.publish("guest.room", b"hi")
        assert (await sub.next_msg(timeout=5)).data == b"hi"
        await nc.publish("a.x", b"no")
        await sync(nc)
        assert [str(e) for e in nc.errors_seen] == ['nats: permissions violation for publish to "a.x"']
    finally:
        await close_all(nc)


# --------------------------------------------------------------------------
# Config reload re-checks connected clients (differential)
# --------------------------------------------------------------------------

RELOAD_BEFORE = "authorization { users = [ {user: a, password: one}, {user: b, password: b} ] }\n"
RELOAD_AFTER = ("authorization { users = [ {user: a, password: two}, "
                "{user: b, password: b, permissions: { subscribe: { deny: [\"open.>\", \"w.secret\"] } } } ] }\n")


@pytest.mark.parametrize("impl", IMPLS)
def test_reload_rechecks_clients(impl, start_server, raw_conn):
    binary = None
    if impl == "reference":
        ok, why = reference_available()
        if not ok:
            pytest.skip(f"reference nats-server not available: {why}")
        binary = reference_bin()
    srv = start_server(config=RELOAD_BEFORE, binary=binary)
    conf_path = srv.args[srv.args.index("-c") + 1]
    a = raw_conn(srv.port)
    a.send(b'CONNECT {"verbose":false,"user":"a","pass":"one"}\r\nPING\r\n')
    assert a.read_until(b"PONG\r\n") == b"PONG\r\n"
    a.take()
    b = raw_conn(srv.port)
    b.send(b'CONNECT {"verbose":false,"user":"b","pass":"b"}\r\nSUB open.x 1\r\nSUB kept 2\r\nSUB w.* 3\r\nPING\r\n')
    assert b.read_until(b"PONG\r\n") == b"PONG\r\n"
    b.take()

    with open(conf_path, "w") as f:
        f.write(RELOAD_AFTER)
    srv.proc.send_signal(signal.SIGHUP)

    # a's password changed: told and closed.
    assert a.wait_closed(5), f"a should be closed; got {bytes(a.buf)!r}"
    assert bytes(a.buf) == AUTH_VIOLATION
    # b stays, minus the subscription it may no longer have.
    out = b.read_until(b"\r\n")
    assert out == b'-ERR \'Permissions Violation for Subscription to "open.x" (sid "1")\'\r\n'
    b.take()
    # The kept wildcard subscription now filters the newly denied subject.
    b.send(b"PUB open.x 1\r\nx\r\nPUB kept 1\r\ny\r\nPUB w.secret 1\r\ns\r\nPUB w.ok 1\r\nk\r\nPING\r\n")
    assert b.read_until(b"PONG\r\n") == b"MSG kept 2 1\r\ny\r\nMSG w.ok 3 1\r\nk\r\nPONG\r\n"
    assert not b.closed
    # New connections use the new password.
    out, closed = _session(raw_conn, srv.port, '"user":"a","pass":"two"', b"")
    assert (out, closed) == (b"PONG\r\n", False)
    out, closed = _session(raw_conn, srv.port, '"user":"a","pass":"one"', b"")
    assert (out, closed) == (AUTH_VIOLATION, True)
    note = 'Removed sub "open.x" (sid "1") for User "b" - not authorized'
    deadline = time.monotonic() + 5
    while note not in srv.log() and time.monotonic() < deadline:
        time.sleep(0.02)  # the log is captured by a reader thread
    assert note in srv.log(), srv.log()
