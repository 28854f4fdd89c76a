"""Small async helpers for the nats-py based tests."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable

import nats


async def connect(url: str, **kw) -> "nats.aio.client.Client":
    """nats.connect without reconnects, failing fast, errors collected on nc.errors_seen."""
    errors: list[Exception] = []

    async def _err_cb(e: Exception) -> None:
        errors.append(e)

    opts = dict(
        allow_reconnect=False,
        max_reconnect_attempts=0,
        connect_timeout=5,
        error_cb=_err_cb,
    )
    opts.update(kw)
    nc = await nats.connect(url, **opts)
    nc.errors_seen = errors  # type: ignore[attr-defined]
    return nc


async def wait_for(pred: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll ``pred`` (cheaply) until it is true; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.005)


async def close_all(*ncs) -> None:
    for nc in ncs:
        if nc is not None and not nc.is_closed:
            try:
                await nc.close()
            except Exception:
                pass


async def sync(nc, timeout: float = 5.0) -> None:
    """A PING/PONG round trip that really is a barrier.

    nats-py 2.16.0's ``flush()`` writes its PING straight to the socket, ahead
    of commands (PUB/SUB/UNSUB) still buffered for its flusher task, so on its
    own it does not prove the server has seen them.  Push the buffer out first.
    """
    await nc._flush_pending(force_flush=True)
    await nc.flush(timeout=timeout)


async def api_req(nc, subject: str, body: Any = None, timeout: float = 5.0) -> dict:
    """A raw JetStream API request; returns the decoded JSON reply."""
    if body is None:
        data = b""
    elif isinstance(body, (bytes, bytearray)):
        data = bytes(body)
    else:
        data = json.dumps(body).encode()
    msg = await nc.request(subject, data, timeout=timeout)
    return json.loads(msg.data)
