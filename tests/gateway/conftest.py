"""A real validator (n = 1, development mode) behind a real HTTP client.

`network init` makes the folder, `node.config.load` and `Validator` run it, `make_app`
serves it on an aiohttp TestServer; transactions really commit in blocks. The helpers
the tests import are in gateway_kit.py.
"""
from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import make_app
from gateway_kit import Chain, free_port
from node import config as node_config
from node.keys import read_key_file
from node.runtime import Validator
from ops import network


@pytest.fixture
async def node(tmp_path):
    folder = tmp_path / "net"
    network.init(folder, validators=1, chain="heerlen-test", base_port=free_port())
    validator = Validator(node_config.load(folder / "municipality"))
    validator.admin = read_key_file(folder / "keys" / "admin.key")
    await validator.start()
    try:
        yield validator
    finally:
        await validator.stop()


@pytest.fixture
async def client(node):
    client = TestClient(TestServer(make_app(node)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def chain(client, node) -> Chain:
    return Chain(client, node, node.admin)
