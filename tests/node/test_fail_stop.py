"""Fail-stop: a part of the validator that fails (the ticker's driver step, the links'
frame handling) ends `node run` with a clear line instead of leaving a node that limps;
restarted on its folder, it recovers from disk."""
from __future__ import annotations

import asyncio
import socket

import pytest

from consensus.driver import Halted
from node import config as node_config
from node.envelope import sign_tx
from node.keys import Keypair, read_key_file
from node.runtime import Validator
from ops import network
from ops.node_cmd import ValidatorFailed, _until_stop_or_failure


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _one_block(node: Validator, admin) -> int:
    envelope = sign_tx(admin, node.chain, "member.register",
                       {"key": Keypair.generate().public, "role": "citizen",
                        "age_band": "21plus", "area": "GMS"})
    [answer] = node.submit([envelope])
    result = await node.wait(answer.tx_id, 20)
    assert result is not None and result["code"] == "ok"
    return result["height"]


@pytest.fixture
def folder(tmp_path):
    network.init(tmp_path / "net", validators=1, base_port=_free_port())
    return tmp_path / "net"


def _break_the_tick(node: Validator) -> None:
    """A driver step that raises, as a broken invariant or a ledger error would."""
    def tick(now_ms: int) -> None:
        raise AssertionError("an invariant broke in a tick")
    node.driver.tick = tick


async def test_a_failing_driver_step_ends_the_validator_and_it_recovers_on_restart(folder):
    admin = read_key_file(folder / "keys" / "admin.key")
    node = Validator(node_config.load(folder / "municipality"))
    await node.start()
    try:
        height = await _one_block(node, admin)
        _break_the_tick(node)
        with pytest.raises(ValidatorFailed, match="an invariant broke in a tick"):
            await asyncio.wait_for(
                _until_stop_or_failure(asyncio.Event(), node, "municipality"), 10)
    finally:
        await node.stop()
    again = Validator(node_config.load(folder / "municipality"))
    await again.start()
    try:
        assert again.store.head()[0] == height
        assert await _one_block(again, admin) == height + 1
    finally:
        await again.stop()


async def test_a_driver_step_that_fails_in_a_submission_ends_the_validator(folder):
    """A broken invariant met while a gateway submits (not in a tick or a peer's frame):
    the driver latches, every input stops at once, and node run ends with that error,
    not with a logged exception and a replica that runs on ahead of its ledger."""
    admin = read_key_file(folder / "keys" / "admin.key")
    node = Validator(node_config.load(folder / "municipality"))
    await node.start()
    try:
        await _one_block(node, admin)

        def submit(requests):
            raise AssertionError("an invariant broke in a submission")
        node.replica.submit = submit
        envelope = sign_tx(admin, node.chain, "member.register",
                           {"key": Keypair.generate().public, "role": "citizen",
                            "age_band": "21plus", "area": "GMS"})
        with pytest.raises(AssertionError, match="in a submission") as raised:
            node.submit([envelope])
        # stopped at once, before the event loop runs anything else
        assert node._ticker.cancelling() and node.driver.failure is raised.value
        with pytest.raises(Halted):
            node.driver.tick(0)
        with pytest.raises(ValidatorFailed, match="an invariant broke in a submission"):
            await asyncio.wait_for(
                _until_stop_or_failure(asyncio.Event(), node, "municipality"), 10)
    finally:
        await node.stop()


async def test_a_failure_in_the_links_ends_the_validator(folder):
    node = Validator(node_config.load(folder / "municipality"))
    await node.start()
    try:
        node.transport._fail(RuntimeError("a ledger error while handling a frame"))
        with pytest.raises(ValidatorFailed, match="a ledger error while handling a frame"):
            await asyncio.wait_for(
                _until_stop_or_failure(asyncio.Event(), node, "municipality"), 10)
    finally:
        await node.stop()


async def test_a_stop_signal_ends_it_without_a_failure(folder):
    node = Validator(node_config.load(folder / "municipality"))
    await node.start()
    try:
        stop = asyncio.Event()
        stop.set()
        await asyncio.wait_for(_until_stop_or_failure(stop, node, "municipality"), 10)
    finally:
        await node.stop()
