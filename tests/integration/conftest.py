"""Networks of real validator processes, always killed at the end of the test (or, shared,
of the module)."""
from __future__ import annotations

import pytest

from netharness import Network


@pytest.fixture
async def network(tmp_path):
    """`await network(n)`: a network of n validators made by `network init`, started
    (unless start=False) and linked; every process is killed at teardown."""
    made: list[Network] = []

    async def make(validators: int = 4, start: bool = True) -> Network:
        net = Network(tmp_path / f"net{len(made)}", validators)
        made.append(net)
        if start:
            net.start_all()
            await net.wait_ready()
        return net

    try:
        yield make
    finally:
        for net in made:
            await net.close()


@pytest.fixture(scope="module")
def _module_network(tmp_path_factory):
    net = Network(tmp_path_factory.mktemp("net"), 4)
    net.start_all()
    try:
        yield net
    finally:
        net.kill_all()


@pytest.fixture
async def shared_network(_module_network):
    """One network of four started once for the tests of a module, for tests that stop
    no validator and change no file: linked again before each test, which checks what
    happened while it ran (its view changes, its rejections), not since the start.
    Killed at the end of the module, so it never runs beside another module's tests."""
    net = _module_network
    try:
        await net.wait_ready(net.names)
        yield net
    finally:
        await net.close_session()
