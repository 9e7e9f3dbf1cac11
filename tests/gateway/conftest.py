"""A real validator (n = 1, development mode) behind a real HTTP client.

`network init` makes the folder, `node.config.load` and `Validator` run it, `make_app`
serves it on an aiohttp TestServer; transactions really commit in blocks. `chain` is the
network that `network init` makes (one organisation, thresholds of 1); `gov` one whose
genesis has three organisations (gateway_kit.governed_network). The helpers the tests
import are in gateway_kit.py.
"""
from __future__ import annotations

from contextlib import asynccontextmanager

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import make_app
from gateway_kit import (GOVERNED_DELAY_MS, GOVERNED_STEWARDS, GOVERNED_THRESHOLDS, Chain,
                         free_port, governed_network)
from node import config as node_config
from node.keys import read_key_file
from node.runtime import Validator
from ops import network


@asynccontextmanager
async def running(folder):
    """The validator of a one-validator network folder, started, with its admin key."""
    validator = Validator(node_config.load(folder / "municipality"))
    validator.admin = read_key_file(folder / "keys" / "admin.key")
    await validator.start()
    try:
        yield validator
    finally:
        await validator.stop()


@asynccontextmanager
async def serving(node):
    client = TestClient(TestServer(make_app(node)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def node(tmp_path):
    folder = tmp_path / "net"
    network.init(folder, validators=1, chain="heerlen-test", base_port=free_port())
    async with running(folder) as validator:
        validator.steward = read_key_file(folder / "keys" / "steward-municipality.key")
        yield validator


@pytest.fixture
async def client(node):
    async with serving(node) as client:
        yield client


@pytest.fixture
def chain(client, node) -> Chain:
    return Chain(client, node, node.admin, node.steward)


@pytest.fixture
async def gov(tmp_path) -> Chain:
    """Three organisations (municipality with two stewards, cbs, vng) and thresholds of
    GOVERNED_THRESHOLDS: proposals that stay open, approvals that count or not."""
    folder = tmp_path / "gov"
    stewards = governed_network(folder, GOVERNED_STEWARDS, GOVERNED_THRESHOLDS,
                                GOVERNED_DELAY_MS)
    async with running(folder) as validator, serving(validator) as client:
        chain = Chain(client, validator, validator.admin, stewards=stewards)
        chain.governed_roles.add("merchant")
        yield chain
