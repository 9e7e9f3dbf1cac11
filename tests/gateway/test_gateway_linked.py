"""The gateway over the local link (gateway/linked.py, gateway/link.py) against a real
validator and its link server. Both run in this test's process and loop, and the gateway
reads through the validator's own store object (LMDB opens one environment once per
process; the read-only store of a real gateway process is tested in
tests/integration/test_gateway_processes.py)."""
from __future__ import annotations

import asyncio
import base64

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import make_app
from gateway.linked import LinkedNode
from gateway_kit import Chain, free_port, new_key
from node import config as node_config
from node.envelope import sign_tx
from node.keys import read_key_file
from node.link import LinkServer, socket_path
from node.runtime import Validator
from ops import network


class Linked:
    """A validator with its link server, and a gateway over the link served by a test
    client; `down()` and `up()` stop and start the link server (the gateway's view of a
    validator that restarts)."""

    async def start(self, folder) -> "Linked":
        self.validator = Validator(node_config.load(folder / "municipality"))
        self.admin = read_key_file(folder / "keys" / "admin.key")
        await self.validator.start()
        await self.up()
        self.gateway = LinkedNode(self.validator.config, self.validator.genesis,
                                  self.validator.store, socket_path(self.validator.config), 1)
        await self.gateway.start()
        await asyncio.wait_for(self.gateway.link.connected.wait(), 10)
        self.client = TestClient(TestServer(make_app(self.gateway)))
        await self.client.start_server()
        self.chain = Chain(self.client, self.validator, self.admin)
        return self

    async def up(self) -> None:
        self.link = LinkServer(self.validator, socket_path(self.validator.config))
        await self.link.start()

    async def down(self) -> None:
        await self.link.stop()

    async def close(self) -> None:
        await self.client.close()
        await self.gateway.stop()
        await self.link.stop()
        await self.validator.stop()


@pytest.fixture
async def linked(tmp_path):
    network.init(tmp_path / "net", validators=1, chain="heerlen-test", base_port=free_port())
    made = await Linked().start(tmp_path / "net")
    try:
        yield made
    finally:
        await made.close()


def register(linked) -> bytes:
    return sign_tx(linked.admin, linked.validator.chain, "member.register",
                   {"key": new_key().public, "role": "citizen", "age_band": "21plus",
                    "area": "GMS"})


async def figures(client) -> dict:
    text = await (await client.get("/metrics")).text()
    return {line.split(" ")[0]: float(line.split(" ")[1])
            for line in text.splitlines() if line and not line.startswith("#")}


async def test_submit_wait_and_read_over_the_link(linked):
    chain = linked.chain
    citizen = await chain.member("citizen")
    account = await chain.get(f"/v1/accounts/{citizen.public.hex()}", linked.admin)
    assert account["role"] == "citizen"
    # the gateway checked the signature; the validator checked no signature at all
    assert linked.validator.door.signature_checks == 0
    assert linked.gateway.checker.signature_checks == 1
    status = await chain.get("/v1/status")
    # none but the cap policy's (from November, the coming year may have none yet)
    assert status["height"] == 1
    assert [w for w in status["warnings"] if "cap policy" not in w] == []
    assert "view_changes" not in status
    found = await figures(linked.client)
    assert found['stadsmunt_transactions_total{result="ok"}'] == 1
    assert found["stadsmunt_commit_latency_seconds_count"] == 1
    assert found["stadsmunt_validator_reachable"] == 1
    assert found["stadsmunt_view_changes"] == 0


async def test_a_batch_answers_door_codes_from_the_gateway_and_the_rest_from_the_node(linked):
    good = register(linked)
    bad = bytearray(register(linked))
    bad[-1] ^= 1
    response = await linked.client.post("/v1/txs", json={"envelopes": [
        base64.b64encode(e).decode() for e in (good, bytes(bad))]})
    items = (await response.json())["items"]
    assert [i["status"] for i in items] == ["pending", "refused"]
    assert items[1]["code"] == "bad_signature"
    response = await linked.client.get(f"/v1/tx/{items[0]['tx_id']}")
    assert (await response.json())["status"] in ("pending", "committed")
    assert await linked.gateway.wait(items[0]["tx_id"], 20) is not None


async def test_while_the_link_is_down_writes_are_503_and_reads_go_on(linked):
    chain = linked.chain
    citizen = await chain.member("citizen")
    await linked.down()
    await wait_until(lambda: not linked.gateway.link.up)
    response = await linked.client.post("/v1/tx", data=register(linked),
                                        headers={"Content-Type": "application/msgpack"})
    problem = await response.json(content_type=None)
    assert response.status == 503 and problem["code"] == "overloaded"
    assert response.headers["Retry-After"] == "1"
    account = await chain.get(f"/v1/accounts/{citizen.public.hex()}", linked.admin)
    assert account["role"] == "citizen"
    status = await chain.get("/v1/status")
    assert status["height"] == 1 and not any(v["connected"] for v in status["validators"])
    assert "cannot reach its validator" in status["warnings"][0]
    assert (await figures(linked.client))["stadsmunt_validator_reachable"] == 0


async def test_after_the_link_is_back_what_executed_meanwhile_is_read_from_lmdb(linked):
    chain = linked.chain
    await chain.member("citizen")
    envelope = register(linked)
    [answer] = linked.validator.submit([envelope])
    waiting = asyncio.create_task(linked.gateway.wait(answer.tx_id, 30))
    await linked.down()
    # executed while the gateway hears nothing
    assert (await linked.validator.wait(answer.tx_id, 20))["code"] == "ok"
    assert not waiting.done()
    await linked.up()
    assert (await asyncio.wait_for(waiting, 10))["code"] == "ok"
    await chain.member("citizen")      # and writes go through again
    found = await figures(linked.client)
    assert found['stadsmunt_transactions_total{result="ok"}'] == 3
    assert found["stadsmunt_batch_size_count"] == 3


async def test_a_live_stream_goes_on_across_a_reconnection(linked):
    chain = linked.chain
    headers = chain.auth(linked.admin)
    response = await linked.client.get("/v1/events/stream", headers=headers)
    assert response.status == 200
    await chain.member("citizen")
    await linked.down()
    [answer] = linked.validator.submit([register(linked)])
    await linked.validator.wait(answer.tx_id, 20)
    await linked.up()
    seen = b""
    while seen.count(b"member.registered") < 2:
        seen += await asyncio.wait_for(response.content.readany(), 10)
    response.close()


async def wait_until(check, timeout_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_readers_make_the_validator_answer_a_bounded_number_of_questions(linked):
    asked = {"status": 0, "pending": 0}
    status, pending = linked.validator.status, linked.validator.unexecuted

    def counted_status():
        asked["status"] += 1
        return status()

    def counted_pending(tx_id):
        asked["pending"] += 1
        return pending(tx_id)
    linked.validator.status, linked.validator.unexecuted = counted_status, counted_pending
    answers = await asyncio.gather(*(linked.client.get("/v1/status") for _ in range(50)))
    assert {a.status for a in answers} == {200}
    assert asked["status"] <= 2
    ids = [new_key().public.hex() for _ in range(300)]
    answers = await asyncio.gather(*(linked.client.get(f"/v1/tx/{i}") for i in ids))
    assert {a.status for a in answers} == {404}
    assert asked["pending"] <= 2 * 200


async def test_admission_answers_cross_the_link(linked):
    from node.admission import AdmissionLimits
    chain = linked.chain
    stranger = chain.envelope(new_key(), "task.claim", {"task": "bench"})
    response = await linked.client.post("/v1/tx", data=stranger,
                                        headers={"Content-Type": "application/msgpack"})
    body = await response.json()
    assert (response.status, body["status"], body["code"], body["height"]) == \
        (200, "rejected", "unknown_member", None)
    # asked by id, this gateway learns the refusal from the validator
    found = await chain.get(f"/v1/tx/{body['tx_id']}")
    assert (found["status"], found["code"]) == ("rejected", "unknown_member")
    linked.validator.admission.limits = AdmissionLimits(rate_per_s=1, burst=1)
    citizen = await chain.member("citizen")
    answers = await linked.gateway.submit(
        [chain.envelope(citizen, "task.claim", {"task": f"t{i}"}) for i in range(2)])
    assert [a.status for a in answers] == ["pending", "over_share"]
    assert answers[1].retry_after_s >= 1
