"""A validator that was down while the others wrote a long log fetches the certified
blocks, executes them and rejoins; the test reports how fast (blocks and txs per second)."""
from __future__ import annotations

import time

import pytest

from netharness import Load, tx_heights


async def _catch_up_after_a_long_log(net, txs: int) -> None:
    down = net.names[3]
    net.kill(down)
    live = net.running()
    # clients that wait for each answer keep the backlog small, so the log grows in
    # blocks of tens of transactions, the shape of steady use
    load = Load(net, clients=48)
    load.start()
    await load.wait_committed(txs, timeout_s=txs / 20)
    await load.stop()
    top = await net.wait_caught_up(live, timeout_s=60)

    net.start(down)
    started = time.monotonic()

    async def first_link():
        s = await net.status(down)
        return s if s and sum(v["connected"] for v in s["validators"]) > 1 else None
    # catch-up begins with the first link: measure from there
    linked = await net.wait_for(f"{down} to link to a peer", first_link, 40)
    opened = time.monotonic()
    from_height = linked["height"]
    await net.wait_height(top, [down], timeout_s=120)
    done = time.monotonic()
    blocks = await net.assert_same_blocks(net.names, top)
    in_log = tx_heights(blocks)
    assert len(in_log) >= txs and load.committed.keys() <= in_log.keys()
    fetched = [b for b in blocks if b["height"] > from_height]
    fetched_txs = sum(len(b["txs"]) for b in fetched)
    seconds = done - opened
    print(f"\ncatch-up of {len(fetched)} blocks with {fetched_txs} txs in {seconds:.2f} s: "
          f"{len(fetched) / seconds:.0f} blocks/s, {fetched_txs / seconds:.0f} txs/s "
          f"once linked ({done - started:.2f} s from the process start, which includes "
          f"the peers' redial backoff)")
    assert len(fetched) > 0


async def test_a_validator_down_during_a_long_log_catches_up_and_agrees(network):
    net = await network(4)
    await _catch_up_after_a_long_log(net, 2000)


@pytest.mark.slow
async def test_a_validator_down_during_a_very_long_log_catches_up_and_agrees(network):
    net = await network(4)
    await _catch_up_after_a_long_log(net, 15000)
