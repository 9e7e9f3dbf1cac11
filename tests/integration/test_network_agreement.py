"""Four validators started by the commands commit transactions and hold the same block
hashes at every height."""
from __future__ import annotations

from netharness import Load, tx_heights


async def test_four_validators_commit_and_hold_the_same_hashes_at_every_height(network):
    net = await network(4)
    heights = await net.heights()
    assert set(heights.values()) == {0}, "an idle network makes no blocks"
    load = Load(net, clients=24)
    load.start()
    await load.wait_committed(300)
    await load.stop()
    assert not load.rejected, load.rejected
    top = await net.wait_caught_up()
    assert top >= 2, "300 transactions from 24 clients fit in more than one block"
    blocks = await net.assert_same_blocks(net.names, top)
    in_log = tx_heights(blocks)
    missing = [tx for tx in load.committed if tx not in in_log]
    assert not missing, f"{len(missing)} committed transactions are not in the log"
    assert all(in_log[tx] == h for tx, h in load.committed.items()), \
        "a transaction answered committed at one height sits in another block"
    statuses = await net.statuses()
    assert {s["genesis"] for s in statuses.values()} == {net.genesis_hash}
    assert {s["head"] for s in statuses.values()} == {blocks[-1]["hash"]}
