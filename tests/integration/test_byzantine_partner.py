"""A partner's validator that misbehaves, in real processes (byzantine_node.py): three
honest validators and one Byzantine one under a steady load through the honest gateways.
For every attack the honest validators keep committing (never 2 s without a commit, at
most one view change), agree block for block, write no traceback and a bounded log, and
where the attack is provable (a bad signature, two signed proposals for one height) keep
evidence naming the partner.

Each of these attacks once worked against real processes: catch-up requests froze every
honest validator, a frame of wrong votes stalled them for seconds, forwarded junk was
stored for good, tampered catch-up answers surfaced as ERROR tracebacks.
"""
from __future__ import annotations

import shutil

import pytest

from netharness import Load, run_cli
from test_admission_floods import executed
from test_hostile_http import view_changes

LOAD_S_COMMITS = 40            # the honest load must get this many committed meanwhile
MAX_LOG_LINES = 400            # an honest validator's log during the attack, at most
MAX_STALL_S = 2.0              # the longest time without a commit while it attacks


@pytest.mark.parametrize("mode, bad", [
    ("fetch_flood", "vng"), ("bad_votes", "vng"), ("equivocate", "municipality"),
    ("junk_forward", "vng"), ("lying_catch_up", "vng"), ("bad_frames", "vng")])
async def test_honest_validators_carry_on_and_name_the_partner(network, mode, bad):
    net = await network(4, start=False)
    honest = [n for n in net.names if n != bad]
    for name in honest:
        net.start(name)
    net.start(bad, launcher=["-m", "tests.integration.byzantine_node", mode])
    await net.wait_ready()
    lines = {n: len((net.root / f"{n}.log").read_text().splitlines()) for n in honest}
    load = Load(net, clients=4, targets=honest)
    load.start()
    try:
        await load.wait_committed(LOAD_S_COMMITS, timeout_s=60)
    finally:
        await load.stop()
    times = sorted(load.commit_times)
    stalls = [b - a for a, b in zip(times, times[1:])]
    assert max(stalls) <= MAX_STALL_S, max(stalls)
    assert max([await view_changes(net, n) for n in honest]) <= 1
    if mode == "lying_catch_up":
        # a wiped honest validator catches up, asking the liar too
        await _wiped_catches_up(net, honest[-1], honest[:-1])
    heights = await net.heights(honest)
    await net.assert_same_blocks(honest, min(heights.values()))
    # the load's registrations all committed; nothing else (forwarded junk) was ordered
    assert (await executed(net, honest[0])).get("rejected") == 0
    for name in honest:
        log = (net.root / f"{name}.log").read_text()
        assert "Traceback" not in log, log[-3000:]
        assert len(log.splitlines()) - lines[name] <= MAX_LOG_LINES, net.log_tail(name, 40)
    if mode in ("bad_votes", "equivocate"):
        kind = "bad_signature" if mode == "bad_votes" else "equivocation"
        named = [run_cli("node", "evidence", str(net.root / n)).stdout for n in honest]
        assert any(bad in out and kind in out for out in named), named


async def _wiped_catches_up(net, name: str, others: list[str]) -> None:
    """Kills `name`, wipes its ledger, starts it again and waits until it reaches the
    others' height."""
    net.kill(name)
    shutil.rmtree(net.root / name / "data")
    net.start(name)
    top = max((await net.heights(others)).values())
    await net.wait_height(top, [name], timeout_s=60)
