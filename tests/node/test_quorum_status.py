"""What a validator says about its quorum (node/runtime.py `status`, gateway/app.py
`status_warnings`) and what a write through it answers when its wait runs out without
one (gateway/transactions.py): built from a `network init` folder of four validators,
not started, so no peer is ever linked unless a test says so."""
from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp.test_utils import TestClient, TestServer
from nacl.signing import SigningKey
from structlog.testing import capture_logs

from gateway.app import make_app, status_warnings
from node import config as node_config, genesis as genesis_file
from node.envelope import sign_tx
from node.keys import Keypair, read_key_file
from node.runtime import Validator
from node.transport import Transport, TransportLimits
from ops import network

NAMES = ("municipality", "cbs", "brightlands", "vng")
NOW_MS = 1_790_000_000_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def folder(tmp_path):
    network.init(tmp_path / "net", validators=4, base_port=_free_port())
    return tmp_path / "net"


@pytest.fixture
def node(folder):
    validator = Validator(node_config.load(folder / "cbs"))
    yield validator
    validator.store.close()


def _linked(node: Validator, peers: set[int]) -> None:
    node.transport.connected = lambda: set(peers)


def test_alone_the_status_says_no_quorum_and_names_the_others(node):
    assert [v.name for v in node.genesis.validators] == list(NAMES)
    status = node.status()
    assert status["quorum"] == {"needed": 3, "linked": 1, "ok": False,
                                "missing": ["municipality", "brightlands", "vng"]}
    warnings = status_warnings(node, status, NOW_MS)
    assert warnings[0] == ("no quorum: this validator reaches 1 of the 3 validators "
                           "needed (municipality, brightlands, vng not connected); writes "
                           "cannot be decided")
    # the peers down are still named one by one as before
    assert "validator vng is not connected" in warnings


def test_one_peer_short_is_still_no_quorum(node):
    _linked(node, {0})
    quorum = node.status()["quorum"]
    assert quorum == {"needed": 3, "linked": 2, "ok": False,
                      "missing": ["brightlands", "vng"]}
    assert any(w.startswith("no quorum: this validator reaches 2 of the 3 validators "
                            "needed (brightlands, vng not connected)")
               for w in status_warnings(node, node.status(), NOW_MS))


def test_a_quorum_linked_warns_of_the_peer_down_only(node):
    _linked(node, {0, 3})
    status = node.status()
    assert status["quorum"] == {"needed": 3, "linked": 3, "ok": True,
                                "missing": ["brightlands"]}
    warnings = status_warnings(node, status, NOW_MS)
    assert not any(w.startswith("no quorum") for w in warnings)
    assert "validator brightlands is not connected" in warnings
    _linked(node, {0, 2, 3})
    assert node.status()["quorum"] == {"needed": 3, "linked": 4, "ok": True, "missing": []}


def test_a_single_validator_is_its_own_quorum(tmp_path):
    network.init(tmp_path / "one", validators=1, base_port=_free_port())
    validator = Validator(node_config.load(tmp_path / "one" / "municipality"))
    try:
        status = validator.status()
        assert status["quorum"] == {"needed": 1, "linked": 1, "ok": True, "missing": []}
        assert not any(w.startswith("no quorum")
                       for w in status_warnings(validator, status, NOW_MS))
    finally:
        validator.store.close()


def _envelope(folder) -> bytes:
    admin = read_key_file(folder / "keys" / "admin.key")
    chain = genesis_file.load(folder / "genesis.json").chain
    return sign_tx(admin, chain, "member.register",
                   {"key": Keypair.generate().public, "role": "citizen",
                    "age_band": "21plus", "area": "centrum"})


async def test_a_write_whose_wait_runs_out_says_there_is_no_quorum(folder, node):
    client = TestClient(TestServer(make_app(node)))
    await client.start_server()
    try:
        status = await (await client.get("/v1/status")).json()
        assert status["quorum"]["ok"] is False
        assert status["warnings"][0].startswith("no quorum: this validator reaches 1 of")

        raw = _envelope(folder)
        response = await client.post("/v1/tx?wait=true&timeout=0.2", data=raw,
                                     headers={"Content-Type": "application/msgpack"})
        # the answer a wait that runs out always had, with why
        assert response.status == 202
        body = await response.json()
        assert body["status"] == "pending"
        assert body["quorum"] == {"needed": 3, "linked": 1, "ok": False,
                                  "missing": ["municipality", "brightlands", "vng"]}
        assert body["detail"].startswith(
            "Not decided yet: this validator reaches 1 of the 3 validators a decision "
            "needs (municipality, brightlands, vng not connected).")
        assert "may still be decided" in body["detail"]
        assert body["tx_id"] in body["detail"]

        # in the reader's language
        response = await client.post("/v1/tx?wait=true&timeout=0.1", data=raw,
                                     headers={"Content-Type": "application/msgpack",
                                              "Accept-Language": "nl"})
        body = await response.json()
        assert response.status == 202 and body["status"] == "pending"
        assert body["detail"].startswith("Nog niet beslist: deze validator bereikt 1 van")

        # without waiting the answer is as it was: nobody asked how long it takes
        response = await client.post("/v1/tx", data=_envelope(folder),
                                     headers={"Content-Type": "application/msgpack"})
        assert response.status == 202
        assert set(await response.json()) == {"tx_id", "status"}

        # with a quorum linked, a wait that runs out says nothing more than before
        _linked(node, {0, 3})
        response = await client.post("/v1/tx?wait=true&timeout=0.1", data=_envelope(folder),
                                     headers={"Content-Type": "application/msgpack"})
        assert response.status == 202
        assert set(await response.json()) == {"tx_id", "status"}
    finally:
        await client.close()


async def test_failed_dials_are_logged_by_peer_name_sampled_until_the_link_is_back():
    """node/transport.py: a peer that refuses the dials is named with the reason at once,
    then summed up at most once an interval, and a line says when the link is back."""
    # in the order of their public keys: the lower key (validator 0 here) dials
    seeds = sorted((bytes([i + 1]) * 32 for i in range(2)),
                   key=lambda seed: bytes(SigningKey(seed).verify_key))
    keys = [bytes(SigningKey(seed).verify_key) for seed in seeds]
    port = _free_port()         # nobody listens there yet: connection refused
    validators = [(keys[0], "127.0.0.1", _free_port()), (keys[1], "127.0.0.1", port)]
    limits = TransportLimits(backoff_initial_s=0.01, backoff_max_s=0.05, log_interval_s=0.5,
                    heartbeat_s=0.2, idle_timeout_s=5.0)
    genesis = b"g" * 32
    names = ["municipality", "cbs"]
    up = asyncio.Event()

    def make(i: int) -> Transport:
        return Transport(i, seeds[i], validators, genesis, lambda peer, m: None, limits,
                         on_link=lambda peer, linked: up.set() if linked else None,
                         names=names)
    dialler = make(0)
    with capture_logs() as logs:
        await dialler.start()
        try:
            await asyncio.sleep(1.3)
            failed = [e for e in logs if e["event"] == "dial_failed"]
            # dozens of dials failed; two or three lines say so
            assert 1 < len(failed) <= 4, failed
            first = failed[0]
            assert first["peer"] == "cbs" and first["me"] == "municipality"
            assert first["reason"] == "connection refused" and "summary" not in first
            assert first["address"] == f"127.0.0.1:{port}"
            summaries = failed[1:]
            assert all(e["summary"] and e["peer"] == "cbs" and e["count"] > 1
                       for e in summaries), summaries
            assert summaries[-1]["failed_dials"] == 1 + sum(e["count"] for e in summaries)

            listener = make(1)
            await listener.start()
            try:
                async with asyncio.timeout(5):
                    await up.wait()
                    while not dialler.connected():
                        await asyncio.sleep(0.01)
                back = [e for e in logs if e["event"] == "dial_recovered"]
                assert len(back) == 1 and back[0]["peer"] == "cbs", back
                assert back[0]["failed_dials"] >= summaries[-1]["failed_dials"]
                assert back[0]["last_reason"] == "connection refused"
            finally:
                await listener.stop()
        finally:
            await dialler.stop()
