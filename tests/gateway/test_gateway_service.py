"""Metrics, CORS, and the limits that answer 503 `overloaded` instead of growing."""
from __future__ import annotations

import base64
import re

from aiohttp.test_utils import TestClient, TestServer

from gateway_kit import Chain, free_port, new_key
from gateway.app import make_app
from node import config as node_config
from node.keys import read_key_file
from node.runtime import Validator
from ops import network


async def started(tmp_path, edit) -> tuple[Validator, TestClient, Chain]:
    folder = tmp_path / "net"
    network.init(folder, validators=1, chain="heerlen-test", base_port=free_port())
    settings = folder / "municipality" / node_config.CONFIG_NAME
    settings.write_text(edit(settings.read_text()))
    node = Validator(node_config.load(folder / "municipality"))
    await node.start()
    client = TestClient(TestServer(make_app(node, max_streams=2)))
    await client.start_server()
    return node, client, Chain(client, node, read_key_file(folder / "keys" / "admin.key"))


async def test_metrics_count_blocks_transactions_and_latency(chain):
    citizen = await chain.member("citizen")
    await chain.tx(citizen, "task.claim", {"task": "none"}, code="not_found")
    response = await chain.client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    figures = {line.split(" ")[0]: float(line.split(" ")[1])
               for line in text.splitlines() if line and not line.startswith("#")}
    assert figures["stadsmunt_height"] == 2 and figures["stadsmunt_view"] == 0
    assert figures['stadsmunt_transactions_total{result="ok"}'] == 1
    assert figures['stadsmunt_transactions_total{result="rejected"}'] == 1
    assert figures["stadsmunt_batch_size_count"] == 2
    assert figures["stadsmunt_commit_latency_seconds_count"] == 2
    assert figures["stadsmunt_peers_connected"] == 0
    assert "stadsmunt_view_changes" in figures


async def test_cors_allows_the_configured_origins_only(tmp_path):
    def allow(text: str) -> str:
        return text.replace("cors_origins = []",
                            'cors_origins = ["https://app.heerlen.example"]')
    node, client, _ = await started(tmp_path, allow)
    try:
        preflight = {"Origin": "https://app.heerlen.example",
                     "Access-Control-Request-Method": "GET",
                     "Access-Control-Request-Headers": "Authorization"}
        response = await client.options("/v1/accounts/" + "ab" * 32, headers=preflight)
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == "https://app.heerlen.example"
        assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
        response = await client.get("/v1/status", headers={"Origin": preflight["Origin"]})
        assert response.headers["Access-Control-Allow-Origin"] == preflight["Origin"]
        # an answer in the reader's language varies by origin and by language both
        response = await client.post("/v1/txs", json={"envelopes": ["AAAA"]}, headers={
            "Origin": preflight["Origin"], "Accept-Language": "nl"})
        assert response.status == 200 and response.headers["Content-Language"] == "nl"
        assert response.headers["Vary"] == "Origin, Accept-Language"
        response = await client.get("/v1/nothing", headers={"Origin": preflight["Origin"]})
        assert response.status == 404
        assert response.headers["Access-Control-Allow-Origin"] == preflight["Origin"]
        evil = {**preflight, "Origin": "https://evil.example"}
        response = await client.options("/v1/status", headers=evil)
        assert response.status == 403
        response = await client.get("/v1/status", headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in response.headers
    finally:
        await client.close()
        await node.stop()


async def test_a_full_queue_answers_503_overloaded_and_a_wait_that_runs_out_202(tmp_path):
    def tiny(text: str) -> str:     # one request waits at most, and waits long
        text = text.replace("pending_requests = 50000", "pending_requests = 1")
        return re.sub(r"batch_wait_ticks = \d+", "batch_wait_ticks = 3000", text)
    node, client, chain = await started(tmp_path, tiny)
    try:
        before = node.store.head()
        envelopes = [chain.envelope(chain.admin, "member.register", {
            "key": new_key().public, "role": "merchant", "name": f"Shop {i}"})
            for i in range(3)]
        checks = node.door.signature_checks
        response = await client.post("/v1/txs", json={
            "envelopes": [base64.b64encode(e).decode() for e in envelopes]})
        items = (await response.json())["items"]
        assert [i["status"] for i in items] == ["pending", "overloaded", "overloaded"]
        assert response.headers["Retry-After"] == "1"
        # a full node opens nothing more: what it holds is known, the rest waits, even
        # an envelope whose signature is bad (its refusal comes when there is room)
        assert node.door.signature_checks == checks + 1
        forged = envelopes[2][:-1] + bytes([envelopes[2][-1] ^ 1])
        again = await client.post("/v1/txs", json={
            "envelopes": [base64.b64encode(e).decode() for e in (envelopes[0], forged)]})
        assert [(i["status"], i["tx_id"]) for i in (await again.json())["items"]] == [
            ("pending", items[0]["tx_id"]), ("overloaded", items[2]["tx_id"])]
        assert node.door.signature_checks == checks + 1
        response = await client.post("/v1/tx", data=envelopes[1],
                                     headers={"Content-Type": "application/msgpack"})
        problem = await response.json(content_type=None)
        assert response.status == 503 and problem["code"] == "overloaded"
        assert response.headers["Retry-After"]
        assert node.store.head() == before
        pending = await chain.get(f"/v1/tx/{items[0]['tx_id']}")
        assert pending == {"tx_id": items[0]["tx_id"], "status": "pending"}
        response = await client.post("/v1/tx?wait=true&timeout=0.2", data=envelopes[0],
                                     headers={"Content-Type": "application/msgpack"})
        assert response.status == 202
        assert await response.json() == {"tx_id": items[0]["tx_id"], "status": "pending"}
    finally:
        await client.close()
        await node.stop()


async def test_live_streams_are_bounded(tmp_path):
    node, client, chain = await started(tmp_path, lambda text: text)
    try:
        token = chain.auth(chain.admin)
        streams = [await client.get("/v1/events/stream", headers=token) for _ in range(2)]
        assert all(s.status == 200 for s in streams)
        refused = await client.get("/v1/events/stream", headers=token)
        assert refused.status == 503 and refused.headers["Retry-After"]
        assert (await refused.json(content_type=None))["code"] == "overloaded"
        for stream in streams:
            stream.close()
    finally:
        await client.close()
        await node.stop()
