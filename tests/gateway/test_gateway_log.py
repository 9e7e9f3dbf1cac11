"""Blocks with their certificates, the event log with filters and paging, and the live
stream's resume after a disconnect while blocks keep coming."""
from __future__ import annotations

import asyncio
import base64
import json

from gateway_kit import new_key
from node import sets
from node.block import checkpoint_certificate_ok, commit_certificate_ok, BlockRecord


def record_of(block: dict) -> BlockRecord:
    return BlockRecord(
        height=block["height"], view=block["view"], time_ms=block["time"],
        prev_hash=bytes.fromhex(block["prev_hash"]),
        batch_digest=bytes.fromhex(block["batch_digest"]),
        results_root=bytes.fromhex(block["results_root"]),
        state_root=bytes.fromhex(block["state_root"]), hash=bytes.fromhex(block["hash"]),
        envelopes=tuple(base64.b64decode(t) for t in block["txs"]),
        certificate=tuple((s["validator"], bytes.fromhex(s["signature"]))
                          for s in block["certificate"]["signatures"]),
        first_position=0, event_count=0)


async def test_blocks_chain_by_hash_and_carry_verifiable_certificates(chain, node):
    for _ in range(17):       # past the first checkpoint (every 16 blocks)
        await chain.member("citizen")
    blocks = await chain.all_pages("/v1/blocks", chain.admin, limit=5)
    assert [b["height"] for b in blocks] == list(range(1, 18))
    keys = node.genesis.validator_keys()
    for previous, block in zip(blocks, blocks[1:]):
        assert block["prev_hash"] == previous["hash"]
    for block in blocks:
        record = record_of(block)
        assert record.check_hash() and commit_certificate_ok(node.genesis.domain(), keys, record)
        assert [r["code"] for r in block["results"]] == ["ok"]
    checkpoint = blocks[15]["checkpoint"]
    assert checkpoint["block_hash"] == blocks[15]["hash"]
    certificate = tuple((s["validator"], bytes.fromhex(s["signature"]))
                        for s in checkpoint["signatures"])
    assert checkpoint_certificate_ok(node.genesis.domain(), keys, 16,
                                     bytes.fromhex(blocks[15]["hash"]), certificate,
                                     bytes.fromhex(checkpoint["set_hash"]))
    assert checkpoint["set_hash"] == sets.every(node.genesis, node.store)[0].hash(
        node.genesis).hex()
    assert blocks[0]["checkpoint"] is None
    one = await chain.get("/v1/blocks/16", chain.admin)
    assert one == blocks[15]
    later = await chain.get("/v1/blocks", chain.admin, **{"from": 17})
    assert [b["height"] for b in later["items"]] == [17] and later["next"] is None
    past = await chain.get("/v1/blocks", chain.admin, **{"from": 99})
    assert past == {"items": [], "next": None}
    await chain.get("/v1/blocks/99", chain.admin, expect=404)


async def test_events_after_a_position_with_kind_and_account_filters(chain):
    alice, bob = await chain.member("citizen"), await chain.member("citizen")
    await chain.task("k1")
    await chain.earn(alice, "k1")
    await chain.tx(bob, "task.claim", {"task": "k1"})
    every = await chain.all_pages("/v1/events", chain.admin, limit=3)
    assert [e["position"] for e in every] == list(range(1, len(every) + 1))
    assert all({"position", "height", "tx_id", "kind"} <= set(e) for e in every)
    after = await chain.all_pages("/v1/events", chain.admin, after=4)
    assert after == every[4:]
    claims = await chain.all_pages("/v1/events", chain.admin, kind="task.claimed", limit=1)
    assert [e["citizen"] for e in claims] == [alice.public.hex(), bob.public.hex()]
    bobs = await chain.all_pages("/v1/events", bob, account=bob.public.hex())
    assert [e["kind"] for e in bobs] == ["member.registered", "task.claimed"]
    both = await chain.all_pages("/v1/events", chain.admin, account=alice.public.hex(),
                                 kind="task.approved")
    assert [e["minted"] for e in both] == [500]
    await chain.get("/v1/events", bob, expect=403, account=alice.public.hex())
    await chain.get("/v1/events", chain.admin, expect=400, kind="task.exploded")


async def read_sse(response, until_position: int) -> list[dict]:
    """Events of an SSE response until one with `until_position` has arrived."""
    events, fields = [], {}
    while not events or events[-1]["id"] < until_position:
        line = (await response.content.readline()).decode()
        assert line, "the stream ended"
        line = line.rstrip("\n")
        if line == "":
            if "data" in fields:
                events.append({"id": int(fields["id"]), "data": json.loads(fields["data"])})
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value
    return events


async def test_stream_resumes_after_a_disconnect_without_gaps_or_repeats(chain, node):
    for _ in range(3):
        await chain.member("citizen")
    token = chain.auth(chain.admin)
    first = await chain.client.get("/v1/events/stream", headers=token)
    assert first.headers["Content-Type"].startswith("text/event-stream")
    seen = await read_sse(first, 2)
    first.close()                                   # the phone loses its connection

    async def keep_writing():
        for _ in range(8):
            await chain.member("citizen")
    writer = asyncio.create_task(keep_writing())
    await chain.member("merchant")
    second = await chain.client.get("/v1/events/stream", headers={
        **token, "Last-Event-ID": str(seen[-1]["id"])})
    await writer
    end = node.store.last_position()
    seen += await read_sse(second, end)
    second.close()
    assert [e["id"] for e in seen] == list(range(1, end + 1))
    assert all(e["data"]["position"] == e["id"] for e in seen)
    live = await chain.client.get("/v1/events/stream", headers=token,
                                  params={"after": str(end), "kind": "member.registered"})
    newcomer = await chain.member("citizen")
    (event,) = await read_sse(live, end + 1)
    live.close()
    assert event["data"]["key"] == newcomer.public.hex()


async def test_stream_needs_a_token_and_takes_one_in_the_query(chain):
    response = await chain.client.get("/v1/events/stream")
    assert response.status == 401
    stranger = new_key()
    response = await chain.client.get("/v1/events/stream", headers=chain.auth(stranger))
    assert response.status == 403
    await chain.member("citizen")
    token = chain.auth(chain.admin)["Authorization"].split(" ")[1]
    response = await chain.client.get("/v1/events/stream", params={"auth": token})
    assert (await read_sse(response, 1))[0]["data"]["kind"] == "member.registered"
    response.close()


def active_readers(node) -> list[str]:
    """LMDB reader slots that hold a transaction now (an idle slot shows txnid '-')."""
    lines = node.store.env.readers().splitlines()[1:]
    return [line for line in lines if line.split()[-1] != "-"]


async def test_idle_streams_hold_no_lmdb_read_transaction(chain, node):
    for _ in range(2):
        await chain.member("citizen")
    token = chain.auth(chain.admin)
    streams = [await chain.client.get("/v1/events/stream", headers=token) for _ in range(3)]
    for stream in streams:
        await read_sse(stream, 2)            # each has read the whole log and now waits
    assert active_readers(node) == []
    await chain.member("citizen")            # and they still wake for the next block
    for stream in streams:
        assert (await read_sse(stream, 3))[-1]["id"] == 3
        stream.close()
