"""A partner's validator that misbehaves, in real processes (byzantine_node.py): three
honest validators and one Byzantine one under a steady load through the honest gateways.
For every attack the honest validators keep committing (never 2 s without a commit, at
most one view change), agree block for block, write no traceback and a bounded log, and
where the attack is provable (a bad signature, two signed proposals for one height) keep
evidence naming the partner.

Each of these attacks once worked against real processes: catch-up requests froze every
honest validator, a frame of wrong votes stalled them for seconds, forwarded junk was
stored for good, tampered catch-up answers surfaced as ERROR tracebacks, and a validator
catching up executed the blocks of a second genesis signed with the same keys and forked.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from netharness import Load, Network, free_base_port, run_cli
from node import genesis as genesis_file
from test_admission_floods import executed
from test_hostile_http import view_changes

LOAD_S_COMMITS = 40            # the honest load must get this many committed meanwhile
MAX_LOG_LINES = 400            # an honest validator's log during the attack, at most
MAX_STALL_S = 2.0              # the longest time without a commit while it attacks
# catch-up attacks: the check of consensus/fetched.py that refuses the partner's first block
REFUSED_CHECK = {"lying_catch_up": "digest", "second_genesis": "chain"}


@pytest.mark.parametrize("mode, bad", [
    ("fetch_flood", "vng"), ("bad_votes", "vng"), ("equivocate", "municipality"),
    ("junk_forward", "vng"), ("lying_catch_up", "vng"), ("bad_frames", "vng"),
    ("second_genesis", "vng")])
async def test_honest_validators_carry_on_and_name_the_partner(network, mode, bad, tmp_path,
                                                               monkeypatch):
    net = await network(4, start=False)
    if mode == "second_genesis":
        other = await _second_network(net, tmp_path / "second")
        monkeypatch.setenv("STADSMUNT_SECOND_GENESIS", str(other / bad / "data"))
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
    if mode in REFUSED_CHECK:
        await _wiped_refuses_the_partner(net, honest[-1], bad, honest[:-1],
                                         REFUSED_CHECK[mode])
    heights = await net.heights(honest)
    await net.assert_same_blocks(honest, min(heights.values()))
    # the load's registrations all committed; nothing else (forwarded junk) was ordered
    assert (await executed(net, honest[0])).get("rejected") == 0
    for name in honest:
        log = (net.root / f"{name}.log").read_text()
        assert "Traceback" not in log, log[-3000:]
        assert len(log.splitlines()) - lines[name] <= MAX_LOG_LINES, net.log_tail(name, 40)
    if mode in ("bad_votes", "equivocate", "lying_catch_up", "second_genesis"):
        kind = {"bad_votes": "bad_signature", "equivocate": "equivocation"}.get(
            mode, "bad_catch_up")
        named = [run_cli("node", "evidence", str(net.root / n)).stdout for n in honest]
        assert any(bad in out and kind in out for out in named), named


async def _wiped_refuses_the_partner(net, name: str, bad: str, others: list[str],
                                     check: str) -> None:
    """Kills `name`, wipes its ledger and starts it again with its other honest peers
    frozen, so that only `bad` answers it: it must refuse the blocks `bad` sends (and
    say so, naming it, and keep them as evidence) and stay at height 0; once the others
    are thawed, it catches up on this network's chain."""
    net.kill(name)
    shutil.rmtree(net.root / name / "data")
    before = len(net.log_events(name, "bad_fetched_block"))
    for other in others:
        net.freeze(other)
    net.start(name)

    async def refused() -> list[dict]:
        return [e for e in net.log_events(name, "bad_fetched_block")[before:]
                if e["peer"] == bad]
    found = await net.wait_for(f"{name} to refuse {bad}'s blocks", refused, timeout_s=30)
    assert found[0]["height"] == 1 and found[0]["check"] == check, found
    assert (await net.heights([name]))[name] == 0
    for other in others:
        net.thaw(other)
    top = max((await net.heights(others)).values())
    await net.wait_height(top, [name], timeout_s=60)


async def _second_network(net: Network, root: Path) -> Path:
    """Another network with `net`'s validator keys, admin key and chain id under another
    genesis (the city renamed, as an operator regenerating a genesis might), on ports of
    its own; it runs until some blocks are committed, then stops. Returns its folder."""
    shutil.copytree(net.root, root)
    base = free_base_port(2 * net.size)
    moved = {}
    for i, name in enumerate(net.names):
        moved[f"127.0.0.1:{net.peer_ports[name]}"] = f"127.0.0.1:{base + 2 * i}"
        moved[net.gateways[name].removeprefix("http://")] = f"127.0.0.1:{base + 2 * i + 1}"
    genesis = json.loads((root / "genesis.json").read_text())
    genesis["city"] = "Kerkrade"
    for path in [root / "genesis.json"] + [root / n / "genesis.json" for n in net.names]:
        path.write_text(json.dumps(genesis, indent=2))
    info = json.loads((root / "network.json").read_text())
    info["genesis"] = genesis_file.load(root / "genesis.json").hash().hex()
    assert info["chain"] == net.chain and info["genesis"] != net.genesis_hash
    for path, text in [(root / "network.json", json.dumps(info, indent=2))] + [
            (root / n / "node.toml", (root / n / "node.toml").read_text()) for n in net.names]:
        for old, new in moved.items():
            text = text.replace(old, new)
        path.write_text(text)
    other = Network(root, net.size, made=True)
    try:
        other.start_all()
        await other.wait_ready()
        load = Load(other, clients=2)
        load.start()
        try:
            await load.wait_committed(10, timeout_s=60)
        finally:
            await load.stop()
    finally:
        await other.close()
    return root
