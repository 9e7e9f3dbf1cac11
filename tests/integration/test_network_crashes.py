"""Validators killed with SIGKILL under load: nothing committed is lost, the others go
on, and the killed one reopens its data folder, catches up and agrees."""
from __future__ import annotations

import random
import time

import pytest

from netharness import Load, tx_heights


async def _head_view(net, names):
    """The view of the newest block any of `names` holds, or None."""
    best = None
    for name, s in (await net.statuses(names)).items():
        if s is not None and s["height"] > 0:
            block = await net.block(name, s["height"])
            if block is not None and (best is None or block["view"] > best):
                best = block["view"]
    return best


async def _assert_nothing_lost(net, load, names):
    top = await net.wait_caught_up(names, timeout_s=60)
    blocks = await net.assert_same_blocks(names, top)
    in_log = tx_heights(blocks)
    lost = [tx for tx in load.committed if in_log.get(tx) != load.committed[tx]]
    assert not lost, f"{len(lost)} of {len(load.committed)} committed transactions lost"
    return top


async def _kill_the_primary_under_load(net) -> tuple[Load, float, list[str]]:
    """Kills the primary of view 0 while clients write; returns the load (still running),
    the seconds from the kill to the first block of a later view, and the survivors."""
    primary = (await net.status(net.names[0]))["primary"]
    assert primary == "municipality"
    load = Load(net, clients=16)
    load.start()
    await load.wait_committed(150)
    killed_at = time.monotonic()
    net.kill(primary)
    survivors = net.running()

    async def commit_in_new_view():
        view = await _head_view(net, survivors)
        return view is not None and view > 0
    await net.wait_for("a block committed in a view after the kill", commit_in_new_view, 30)
    failover_s = time.monotonic() - killed_at
    statuses = await net.statuses(survivors)
    assert all(s["view"] > 0 and s["primary"] != primary for s in statuses.values())
    return load, failover_s, survivors


async def test_killing_the_primary_under_load_changes_view_and_loses_nothing(network):
    net = await network(4)
    load, failover_s, _ = await _kill_the_primary_under_load(net)
    print(f"\nkill of the primary to the next commit: {failover_s * 1000:.0f} ms")
    before = dict(load.committed)   # answered committed before the view change
    await load.wait_committed(len(load.committed) + 150)
    await load.stop()
    assert not load.rejected, load.rejected
    assert before.items() <= load.committed.items()

    net.start("municipality")
    await net.wait_ready(net.names)
    top = await _assert_nothing_lost(net, load, net.names)
    assert top >= max(load.committed.values())


@pytest.mark.slow
async def test_median_time_from_killing_the_primary_to_the_next_commit(network):
    times = []
    for _ in range(7):
        net = await network(4)
        load, failover_s, survivors = await _kill_the_primary_under_load(net)
        await load.stop()
        await _assert_nothing_lost(net, load, survivors)
        await net.close()
        times.append(failover_s)
    times.sort()
    print(f"\nkill of the primary to the next commit, 7 runs: median "
          f"{times[3] * 1000:.0f} ms, min {times[0] * 1000:.0f}, max {times[-1] * 1000:.0f}")
    assert times[3] < 10


async def _kill_backups_during_writes(net, rng, kills, clients):
    load = Load(net, clients=clients)
    load.start()
    await load.wait_committed(50)
    for round_ in range(kills):
        statuses = await net.statuses()
        primary = next(s["primary"] for s in statuses.values() if s is not None)
        victim = rng.choice([n for n in net.names if n != primary])
        moment_s = rng.uniform(0.1, 1.5)
        goal = len(load.committed) + 1

        async def wrote_for_a_while(started=time.monotonic()):
            return time.monotonic() - started >= moment_s and len(load.committed) >= goal
        await net.wait_for(f"writes before kill {round_}", wrote_for_a_while, 30)
        net.kill(victim)
        net.start(victim)
        # the folder reopened: the restarted validator answers and relinks
        await net.wait_ready(net.names, timeout_s=40)
    await load.wait_committed(len(load.committed) + 50)
    await load.stop()
    assert not load.rejected, load.rejected
    return load


async def test_killing_a_backup_at_random_moments_loses_nothing_and_the_folder_reopens(
        network):
    seed = random.randrange(1 << 32)
    print(f"\nseed {seed}")
    net = await network(4)
    load = await _kill_backups_during_writes(net, random.Random(seed), kills=4, clients=32)
    await _assert_nothing_lost(net, load, net.names)


@pytest.mark.slow
async def test_killing_backups_many_times_during_heavy_writes_loses_nothing(network):
    seed = random.randrange(1 << 32)
    print(f"\nseed {seed}")
    net = await network(4)
    load = await _kill_backups_during_writes(net, random.Random(seed), kills=25, clients=64)
    await _assert_nothing_lost(net, load, net.names)


async def test_a_restarted_validator_that_missed_a_view_change_settles_in_the_others_view(
        network):
    net = await network(4)
    load = Load(net, clients=8)
    load.start()
    await load.wait_committed(40)
    net.kill("municipality")  # the primary of view 0: the others change view
    await load.wait_committed(len(load.committed) + 40)
    await load.stop()
    survivors = net.running()
    await net.wait_caught_up(survivors)
    net.start("municipality")
    await net.wait_ready(net.names)

    async def settled():
        found = await net.statuses(net.names)
        if any(s is None for s in found.values()):
            return False
        return (len({s["height"] for s in found.values()}) == 1
                and len({s["view"] for s in found.values()}) == 1
                and all(s["pending"] == 0 for s in found.values()))
    await net.wait_for("every validator at one height and view with nothing pending",
                       settled, 10)
