"""A JetStream domain (`jetstream { domain: hub }`): the API answers under
`$JS.hub.API.>` too, PubAcks and account info carry the domain, and consumers
work through the prefixed API (nats-py's `jetstream(domain=...)`)."""

from __future__ import annotations

from helpers import close_all, connect


async def test_domain_prefixed_api(start_server, tmp_path):
    store = tmp_path / "js"
    store.mkdir()
    srv = start_server("-sd", str(store), config="jetstream { domain: hub }\n")
    nc = await connect(srv.url)
    try:
        js = nc.jetstream(domain="hub")
        await js.add_stream(name="D", subjects=["d.>"])
        ack = await js.publish("d.x", b"1")
        assert (ack.stream, ack.seq, ack.domain) == ("D", 1, "hub")
        assert (await js.account_info()).domain == "hub"
        psub = await js.pull_subscribe("d.>", durable="c")
        assert [m.data for m in await psub.fetch(1, timeout=5)] == [b"1"]
        assert nc._server_info.get("domain") == "hub"
    finally:
        await close_all(nc)
