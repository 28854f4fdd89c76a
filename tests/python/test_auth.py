"""Authentication: --user/--pass and --auth TOKEN (expected texts from nats-server 2.15)."""

from __future__ import annotations

import time

import nats
import pytest

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
