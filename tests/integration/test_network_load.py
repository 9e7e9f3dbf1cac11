"""A burst that a healthy network can absorb must not look like a faulty primary."""
from __future__ import annotations

import time

import pytest

from netharness import signed_batch

BULK = 200


@pytest.mark.slow
async def test_a_burst_of_ten_thousand_transactions_executes_without_a_view_change(network):
    net = await network(4)
    envelopes = signed_batch(net, 10_000)
    started = time.monotonic()
    for start in range(0, len(envelopes), BULK):
        name = net.names[start // BULK % len(net.names)]
        items = await net.post_txs(name, envelopes[start:start + BULK])
        assert {i["status"] for i in items} == {"pending"}

    async def drained():
        found = await net.statuses()
        return all(s is not None and s["pending"] == 0 for s in found.values())
    await net.wait_for("the burst to be executed", drained, 120)
    seconds = time.monotonic() - started
    print(f"\n10,000 transactions in bulk executed in {seconds:.1f} s "
          f"({10_000 / seconds:.0f} tx/s)")
    statuses = await net.statuses()
    assert {s["view"] for s in statuses.values()} == {0}, \
        {n: s["view"] for n, s in statuses.items()}
