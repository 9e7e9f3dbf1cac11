"""A validator that was down while the others wrote a long log fetches the certified
blocks, executes them and rejoins; the test reports how fast (blocks and txs per second)."""
from __future__ import annotations

import time

import pytest

from netharness import signed_batch, tx_heights

BULK = 200  # envelopes in one POST /v1/txs: blocks of a few hundred, as under real load


async def _catch_up_after_a_long_log(net, txs: int) -> None:
    down = net.names[3]
    net.kill(down)
    live = net.running()
    envelopes = signed_batch(net, txs)
    for start in range(0, txs, BULK):
        items = await net.post_txs(live[start // BULK % len(live)],
                                   envelopes[start:start + BULK])
        assert {i["status"] for i in items} == {"pending"}, items[:3]

    async def all_executed():
        found = await net.statuses(live)
        return all(s is not None and s["pending"] == 0 for s in found.values()) and \
            len({s["height"] for s in found.values()}) == 1
    await net.wait_for(f"{txs} transactions executed", all_executed, 120)
    top = (await net.status(live[0]))["height"]

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
    assert len(in_log) >= txs
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
    await _catch_up_after_a_long_log(net, 3000)


@pytest.mark.slow
async def test_a_validator_down_during_a_very_long_log_catches_up_and_agrees(network):
    net = await network(4)
    await _catch_up_after_a_long_log(net, 30000)
