"""Networks of real validator processes, always killed at the end of the test."""
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
