"""JetStream from another account through exports/imports (nats-py): B reads
A's stream, pulls with acks, receives a push consumer's deliveries through a
stream import, and uses A's KV bucket through ``$KV.>``. The same steps pass
against the reference nats-server 2.15."""

import asyncio

import nats
import pytest

CONF = """
jetstream: {store_dir: "%s"}
accounts: {
  A: {
    jetstream: enabled
    users: [{user: a, password: a}]
    exports: [
      {service: "$JS.API.>", response_type: "stream"}
      {service: "$KV.>"}
      {stream: "deliver.>"}
      {service: "$JS.ACK.>"}
      {service: "$JS.FC.>"}
    ]
  }
  B: {
    users: [{user: b, password: b}]
    imports: [
      {service: {account: A, subject: "$JS.API.>"}, to: "JS.A.API.>"}
      {service: {account: A, subject: "$KV.>"}, to: "$KV.>"}
      {stream: {account: A, subject: "deliver.>"}}
      {service: {account: A, subject: "$JS.ACK.>"}}
      {service: {account: A, subject: "$JS.FC.>"}}
    ]
  }
}
"""


async def test_another_account_uses_jetstream_through_imports(start_server, tmp_path):
    srv = start_server(config=CONF % (tmp_path / "store"))
    a = await nats.connect(f"nats://a:a@127.0.0.1:{srv.port}")
    b = await nats.connect(f"nats://b:b@127.0.0.1:{srv.port}")
    try:
        jsa = a.jetstream()
        await jsa.add_stream(name="S", subjects=["s.>"])
        for i in range(3):
            await jsa.publish("s.x", f"m{i}".encode())
        jsb = b.jetstream(prefix="JS.A.API")
        assert (await jsb.stream_info("S")).state.messages == 3

        psub = await jsb.pull_subscribe("s.>", durable="D", stream="S")
        msgs = await psub.fetch(3, timeout=5)
        assert [m.data for m in msgs] == [b"m0", b"m1", b"m2"]
        for m in msgs:
            await m.ack()
        for _ in range(50):
            if (await jsb.consumer_info("S", "D")).ack_floor.stream_seq == 3:
                break
            await asyncio.sleep(0.05)
        assert (await jsb.consumer_info("S", "D")).ack_floor.stream_seq == 3

        # Created before B listens: deliveries wait for B's subscription.
        await jsa.add_consumer("S", durable_name="PUSH", deliver_subject="deliver.p", ack_policy="explicit")
        await asyncio.sleep(0.3)
        sub = await b.subscribe("deliver.p")
        got = []
        for _ in range(3):
            m = await sub.next_msg(timeout=5)
            got.append(m.data)
            await m.respond(b"+ACK")
        assert got == [b"m0", b"m1", b"m2"]

        await jsa.create_key_value(bucket="KV")
        kv = await jsb.key_value("KV")
        await kv.put("k", b"v")
        assert (await kv.get("k")).value == b"v"
    finally:
        await a.close()
        await b.close()
