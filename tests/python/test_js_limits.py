"""Server JetStream resource limits (`max_memory_store`): a stream's
`max_bytes` is reserved at create time, and publishes are refused once the
limit is used up. Expected values observed on nats-server 2.15."""

from __future__ import annotations

import json

from helpers import close_all, connect


async def test_memory_store_limit(start_server, tmp_path):
    store = tmp_path / "js"
    store.mkdir()
    srv = start_server("-sd", str(store), config="jetstream { max_memory_store: 2048 }\n")
    nc = await connect(srv.url)
    try:

        async def api(subject, body):
            return json.loads((await nc.request(subject, json.dumps(body).encode(), timeout=5)).data)

        def create(name, **cfg):
            body = {"name": name, "subjects": [name.lower()], "storage": "memory", **cfg}
            return api(f"$JS.API.STREAM.CREATE.{name}", body)

        too_big = {"code": 500, "err_code": 10028, "description": "insufficient memory resources available"}
        assert (await create("BIG", max_bytes=4096))["error"] == too_big
        assert "error" not in await create("OK", max_bytes=1024)
        # 1024 reserved already; 1500 more does not fit in 2048.
        assert (await create("OK2", max_bytes=1500))["error"] == too_big
        assert "error" not in await create("U")
        # Each 100-byte message on "u" takes 1 + 100 + 16 bytes of memory store.
        for i in range(40):
            ack = json.loads((await nc.request("u", b"x" * 100, timeout=5)).data)
            if "error" in ack:
                break
        assert i == 18, ack
        assert ack == {
            "error": {"code": 503, "err_code": 10023, "description": "insufficient resources"},
            "stream": "U",
            "seq": 0,
        }
    finally:
        await close_all(nc)
