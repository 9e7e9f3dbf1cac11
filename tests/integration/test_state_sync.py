"""State sync on real processes (`stadsmunt node run --state-sync [BLOCKS]`): a validator
loads a stable checkpoint's state from its peers instead of replaying every block,
starts from it, and fetches the history below it in the background.

1. A partner joins by state sync: on a network of four with several stable checkpoints,
   the stewards enact a set of five; the fifth, `cotown`, is started with `node run
   --join --state-sync 0`. It loads a snapshot taken after the enacting block, starts
   at that height (it never executes the blocks below), fetches its history until the
   status says it is complete, orders spends of its own once the set with it is in
   force, holds the same blocks as the others, and `stadsmunt audit` against its gateway
   passes over the whole log, the fetched history included.
2. A validator too far behind takes the same path: one of four is killed, the others
   pass at least two checkpoints beyond its head, and it is started again with
   `--state-sync 10`: it syncs, agrees with the others on the head, and its history (the
   heights between its old head and the snapshot) completes. A partner frozen while it
   syncs delivers, once thawed, the forwards it queued for it meanwhile (requests ordered
   below the snapshot): the synced validator must not wait for them to be ordered again
   (it would start view changes alone and never be caught up with nothing pending).

`network init` makes genesis's checkpoint interval 16.
"""
from __future__ import annotations

import asyncio
import contextlib
import json

from joining import JOIN, Partners, entry, make_joiner
from netharness import Network, run_cli, tx_heights
from node.keys import Keypair

INTERVAL = 16               # `network init`: checkpoint_interval
RUN = ["-m", "ops.cli", "node", "run"]


def events(net: Network, name: str, kinds: set[str], since: int = 0) -> list[dict]:
    """The JSON lines of the given kinds in a validator's log from line `since` on, in
    the order written (the validator process's own, not its gateways')."""
    found = []
    lines = (net.root / f"{name}.log").read_text(errors="replace").splitlines()
    for line in lines[since:]:
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") in kinds and record.get("role") == "validator":
            found.append(record)
    return found


def log_length(net: Network, name: str) -> int:
    path = net.root / f"{name}.log"
    return len(path.read_text(errors="replace").splitlines()) if path.exists() else 0


SYNC_STEPS = {"state_sync_started", "state_synced", "state_sync_not_needed",
              "state_sync_nothing_offered", "validator_started", "history_complete"}


def assert_synced_then_started(net: Network, name: str, since: int = 0) -> int:
    """The validator's log from line `since`: it started a state sync, synced at a
    checkpoint height above 0, and only then ran blocks: every block it executed
    (`caught_up` names the last of the fetched blocks it ran; its replica starts at its
    head) is above the snapshot. Its history completed after it started. Returns the
    snapshot's height."""
    steps = events(net, name, SYNC_STEPS | {"caught_up"}, since)
    kinds = [s["event"] for s in steps if s["event"] != "caught_up"]
    assert kinds[:4] == ["state_sync_started", "state_synced", "validator_started",
                         "history_complete"], (kinds, net.log_tail(name, 40))
    started, synced, running, complete = [s for s in steps if s["event"] != "caught_up"][:4]
    height = synced["height"]
    assert started["height"] == height
    assert height > 0 and height % INTERVAL == 0, synced
    assert synced["entries"] > 0 and synced["chunks"] >= 1, synced
    # nothing executed before the state was loaded, nothing at or below it after
    ran = steps.index(synced)
    assert all(s["event"] != "caught_up" for s in steps[:ran]), steps[:ran]
    caught_up = [s["height"] for s in steps[ran:] if s["event"] == "caught_up"]
    assert all(h > height for h in caught_up), (height, caught_up)
    assert running["height"] >= height, (synced, running)
    assert complete["height"] >= running["height"], complete
    return height


async def wait_history_complete(net: Network, name: str, seen: list[dict]) -> dict:
    """Polls the status until `history.complete`; `seen` collects every `history` shown
    on the way."""
    async def complete():
        status = await net.status(name)
        if status is None:
            return None
        seen.append(status["history"])
        return status if status["history"]["complete"] else None
    return await net.wait_for(f"{name}'s history to be complete", complete, 60)


def assert_history_shapes(seen: list[dict], low: int, snapshot: int) -> None:
    """Whatever the status showed on the way: a missing stretch [low, h] with h at most
    the snapshot's height (its block record came with the state, its results come with
    the history), shrinking from the top; then the indexing of [low, snapshot]; then
    complete."""
    assert seen and seen[-1] == {"complete": True, "missing": None, "indexing": None}, seen
    for shown in seen[:-1]:
        assert shown["complete"] is False or shown == seen[-1], shown
        if shown["missing"] is not None:
            lowest, highest = shown["missing"]
            assert lowest == low and low <= highest <= snapshot, (shown, low, snapshot)
        if shown["indexing"] is not None:
            start, last = shown["indexing"]
            assert low <= start <= last == snapshot, (shown, low, snapshot)


async def agree_on_head(net: Network, names: list[str]) -> int:
    """All named validators at one height with nothing pending and the same head hash;
    every block up to it the same everywhere. Returns the height."""
    top = await net.wait_caught_up(names, timeout_s=60)
    statuses = await net.statuses(names)
    assert {s["height"] for s in statuses.values()} == {top}, statuses
    heads = {n: s["head"] for n, s in statuses.items()}
    assert len(set(heads.values())) == 1, heads
    blocks = await net.assert_same_blocks(names, top)
    assert blocks[-1]["hash"] == next(iter(heads.values()))
    return top


async def audit_passes(net: Network, name: str, top: int) -> None:
    """`stadsmunt audit` against the validator's gateway replays the whole log from
    genesis, the history it fetched included, and passes."""
    # the harness's connections closed first: a gateway takes 64 from one address
    await net.close_session()
    audited = await asyncio.to_thread(
        run_cli, "audit", net.gateways[name], "--genesis-hash", net.genesis_hash,
        "--key", str(net.root / "keys" / "admin.key"), "--json", "--jobs", "1",
        timeout_s=120)
    assert audited.returncode == 0, audited.stdout[-3000:] + audited.stderr[-3000:]
    report = json.loads(audited.stdout)
    assert report["ok"] and report["summary"]["blocks"] >= top, report


async def test_a_partner_joins_by_state_sync(network):
    net: Network = await network(4)
    genesis_names = list(net.names)
    brightlands, vng = genesis_names[2:4]
    anna, shop = Keypair.generate(), Keypair.generate()
    cotown = "cotown"
    cotown_key = make_joiner(net, cotown, launcher=None)

    async with contextlib.AsyncExitStack() as stack:
        partners = Partners(net, stack)
        await partners.fund(anna, shop)
        # a checkpoint behind the network before the change is even proposed
        await partners.spend_until(INTERVAL + 2, genesis_names, anna, shop)
        five = [entry(n, partners.genesis_keys[n], n) for n in genesis_names] + \
            [entry(cotown, cotown_key.public, brightlands)]
        first = await partners.enact(five)
        enacted_at = (await net.heights([vng]))[vng]
        # a checkpoint above the enacting block, and a few blocks for it to be stable
        # everywhere: the snapshot cotown loads schedules the set that names it
        after = (enacted_at // INTERVAL + 1) * INTERVAL
        await partners.spend_until(after + 6, genesis_names, anna, shop)
        assert after + 6 < first, "the set with cotown must not be in force yet"

        net.start(cotown, launcher=[*JOIN, "--state-sync", "0"])
        await net.wait_for("cotown's gateway", lambda: net.status(cotown), 60)
        seen: list[dict] = []
        await wait_history_complete(net, cotown, seen)
        snapshot = assert_synced_then_started(net, cotown)
        assert snapshot >= after, (snapshot, after)
        assert_history_shapes(seen, 1, snapshot)
        joining = await net.status(cotown)
        assert joining["validator_set"]["member"] is False, joining
        assert joining["validator_set"]["pending"] == {
            "from": first, "validators": [*genesis_names, cotown]}, joining

        # the set with cotown takes over; cotown orders spends of its own
        await partners.spend_until(first + 3, genesis_names, anna, shop)
        everyone = [*genesis_names, cotown]
        await partners.set_everywhere(everyone, everyone)
        assert (await net.status(cotown))["validator_set"]["member"] is True
        own = len(partners.acknowledged)
        height = (await net.status(cotown))["height"]
        await partners.spend_until(height + 5, [cotown], anna, shop)
        assert len(partners.acknowledged) > own

    # the clients are closed: reading whole logs takes up to 64 connections a gateway
    top = await agree_on_head(net, everyone)
    heights = tx_heights(await net.log_of(cotown, top))
    assert all(tx in heights for tx in partners.acknowledged)
    assert len(set(partners.acknowledged)) == len(partners.acknowledged)
    await audit_passes(net, cotown, top)


async def test_a_validator_far_behind_syncs_its_state(network):
    net: Network = await network(4)
    names = list(net.names)
    anna, shop = Keypair.generate(), Keypair.generate()

    async with contextlib.AsyncExitStack() as stack:
        partners = Partners(net, stack)
        # a backup (names[0] is the primary of view 0) falls behind: the one with the
        # lowest key, which dials its peers itself when it is back (of two validators the
        # lower key dials), so its sync does not wait for their redials to back off
        backups = names[1:]
        behind = min(backups, key=lambda n: partners.genesis_keys[n])
        relay, other = [n for n in backups if n != behind]
        others = [n for n in names if n != behind]
        await partners.fund(anna, shop)
        await partners.spend_until(INTERVAL // 2, names, anna, shop)
        left_at = await net.wait_caught_up(names, timeout_s=30)
        net.kill(behind)
        # two checkpoints beyond its head and more, the last one stable; the backups
        # forward each spend they take to every member, `behind` too: their send queues
        # keep those forwards until its link is back
        target = (left_at // INTERVAL + 3) * INTERVAL
        await partners.spend_until(target + 6, [relay, other, names[0]], anna, shop)
        assert target - left_at > 2 * INTERVAL

        # `relay` is frozen while `behind` syncs (a slow partner, or one whose redial is
        # backing off): its link, and the forwards it kept, come only once `behind`
        # runs on the synced state, whose replica must not wait for those requests
        # (ordered below the snapshot) to be ordered again
        net.freeze(relay)
        since = log_length(net, behind)
        net.start(behind, launcher=[*RUN, "--state-sync", "10"])
        await net.wait_for(f"{behind}'s gateway", lambda: net.status(behind), 60)
        seen: list[dict] = []
        await wait_history_complete(net, behind, seen)
        snapshot = assert_synced_then_started(net, behind, since)
        assert snapshot > left_at + 10 and snapshot >= target - INTERVAL, \
            (snapshot, left_at, target)
        assert_history_shapes(seen, left_at + 1, snapshot)
        net.thaw(relay)
        await net.wait_ready(names, timeout_s=60)

        # it takes part again: spends through its gateway commit
        await partners.spend_until(target + 12, [behind, *others], anna, shop)

    top = await agree_on_head(net, names)
    statuses = await net.statuses(names)
    assert len({s["view"] for s in statuses.values()}) == 1, statuses   # none went alone
    heights = tx_heights(await net.log_of(behind, top))
    assert all(tx in heights for tx in partners.acknowledged)
    await audit_passes(net, behind, top)
