"""Seven validators tolerate two faults (f = 2, quorum 5): with two stopped they commit;
with three stopped nothing commits; commits resume when one returns."""
from __future__ import annotations

import time

from netharness import Load

NO_COMMIT_WAIT_S = 3.0  # the bounded wait in which a network without quorum must not commit


async def test_seven_validators_commit_with_two_stopped_and_not_with_three(network):
    net = await network(7)
    load = Load(net, clients=8)
    load.start()
    await load.wait_committed(30)
    # two backups stop (the primary of view 0 keeps running: the view change is the
    # primary test's subject; here it is the quorum)
    for name in net.names[5:]:
        net.kill(name)
    await load.wait_committed(len(load.committed) + 60)
    await load.stop()
    assert not load.rejected, load.rejected
    live = net.running()
    top = await net.wait_caught_up(live)

    third = net.names[4]
    net.kill(third)
    live = net.running()
    probe = Load(net, 0).envelope()
    answer = await net.post_tx(live[0], probe, NO_COMMIT_WAIT_S)
    assert answer["status"] == "pending", answer
    heights = await net.heights(live)
    assert set(heights.values()) == {top}, f"committed without a quorum: {heights}"

    net.start(third)
    returned_at = time.monotonic()
    answer = await net.post_tx(live[0], probe, 60)
    assert answer["status"] == "committed", answer
    print(f"\ncommits resumed {time.monotonic() - returned_at:.1f} s after the start of "
          f"the returning validator")
    await net.wait_caught_up(net.running(), timeout_s=60)
    await net.assert_same_blocks(net.running(), answer["height"])
