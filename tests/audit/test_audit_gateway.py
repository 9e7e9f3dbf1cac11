"""Audit and export against a real validator's gateway (n = 1): the URL source reads
/v1/status and /v1/blocks?from=H with a read token, and agrees with the validator's folder."""
from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import socket
import subprocess
import sys

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.app import make_app
from node import config as node_config
from node.audit import audit, open_source
from node.audit.sources import Broken
from node.envelope import sign_tx
from node.genesis import load as load_genesis
from node.keys import Keypair, read_key_file
from node.runtime import Validator
from ops import network
from ops.cli import main


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def served(tmp_path):
    folder = tmp_path / "net"
    network.init(folder, validators=1, chain="heerlen-audit", base_port=free_port())
    node = Validator(node_config.load(folder / "municipality"))
    admin = read_key_file(folder / "keys" / "admin.key")
    await node.start()
    server = TestServer(make_app(node))
    await server.start_server()
    try:
        citizen = Keypair.from_seed(b"c" * 32)
        envelopes = [sign_tx(admin, node.chain, "member.register",
                             {"key": citizen.public, "role": "citizen", "age_band": "21plus",
                              "area": "GMS"}),
                     sign_tx(citizen, node.chain, "coin.spend",
                             {"to": admin.public, "amount": 1})]          # rejected
        for envelope in envelopes:        # one block each, in order
            submitted = node.submit([envelope])[0]
            assert await node.wait(submitted.tx_id, 20) is not None
        yield folder, node, admin, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()
        await node.stop()


async def test_a_gateway_source_audits_with_a_read_token_and_agrees_with_the_folder(served):
    folder, node, admin, url = served
    genesis = load_genesis(folder / "municipality" / "genesis.json")
    key = folder / "keys" / "admin.key"

    def run_audits():
        report = audit([open_source(url, read_key_file(key))], genesis=genesis, jobs=1)
        # the running validator holds its store open in this process: a second process
        # reads the folder, as an auditor on the same machine would
        both = subprocess.run([sys.executable, "-m", "ops.cli", "audit", url,
                               str(folder / "municipality"), "--key", str(key),
                               "--genesis", str(folder / "municipality" / "genesis.json")],
                              capture_output=True, text=True, timeout=120)
        return report, both

    report, both = await asyncio.to_thread(run_audits)
    assert report.failure is None, report.failure
    assert report.summary["transactions"] == 2 and report.summary["rejected"] == 1
    assert report.summary["genesis"] == genesis.hash().hex()
    assert both.returncode == 0, both.stdout + both.stderr
    assert "audit passed" in both.stdout and "behind" not in both.stderr


async def test_a_gateway_without_a_token_is_exit_2_and_its_genesis_can_be_pinned_by_hash(
        served, tmp_path, capsys):
    folder, node, admin, url = served
    genesis_file = str(folder / "municipality" / "genesis.json")
    pin = load_genesis(genesis_file).hash().hex()
    key = str(folder / "keys" / "admin.key")
    out = tmp_path / "gateway.export"

    def commands():
        return (main(["audit", url, "--genesis", genesis_file]),            # 401: no token
                main(["audit", url, "--key", key, "--genesis-hash", pin]),
                main(["audit", url, "--key", key, "--genesis-hash", "ab" * 32]),
                main(["export", url, "--out", str(out), "--key", key]),
                main(["audit", str(out), "--json", "--jobs", "1", "--genesis-hash", pin]))

    no_token, pinned, wrong_pin, exported, audited = await asyncio.to_thread(commands)
    printed = capsys.readouterr()
    assert (no_token, pinned, wrong_pin, exported, audited) == (2, 0, 1, 0, 0), printed.err
    assert "not the pinned" in printed.out + printed.err
    report = json.loads(printed.out[printed.out.index("{"):])
    assert report["summary"]["transactions"] == 2 and report["genesis"] == pin


async def test_a_gateway_whose_genesis_is_not_the_one_its_status_names_is_broken(served):
    folder, node, admin, url = served
    genesis = load_genesis(folder / "municipality" / "genesis.json")
    other = dataclasses.replace(genesis, city="Kerkrade")

    async def status(request):
        return web.json_response({"chain": genesis.chain, "genesis": genesis.hash().hex(),
                                  "height": 0})

    async def served_genesis(request):
        return web.json_response(
            {"canonical": base64.b64encode(other.canonical()).decode()})

    app = web.Application()
    app.router.add_get("/v1/status", status)
    app.router.add_get("/v1/genesis", served_genesis)
    liar = TestServer(app)
    await liar.start_server()
    try:
        with pytest.raises(Broken, match="does not have the hash"):
            await asyncio.to_thread(open_source, str(liar.make_url("")).rstrip("/"), admin)
    finally:
        await liar.close()
