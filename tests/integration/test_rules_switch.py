"""A rules switch at a height on a live network (docs/operators.md, "Upgrading the
rules"): three validators run an installation with rules version 2 (v2_node.py, the
tests' second version: spends under 5 cents refused), the fourth only version 1. The
stewards of three organisations enact `rules.activate` of version 2 from a height; the
status shows it pending, and warns on the validator that lacks it. Spends flow one block
at a time: every spend below the height runs under version 1, every one from it under
version 2. The validator without it stops before the height with `rules_version_missing`
and exit code 2, its ledger ending just below the height; the others go on. Started
again with the version, it catches up and holds the others' blocks, and `stadsmunt
audit` passes over the whole log with version 2 and fails, naming the version, without.
"""
from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time

from netharness import REPO, Network, run_cli
from client import Client
from client.core import now_ms
from node import keys
from node.keys import Keypair
from node.store import Store

V2 = ["-m", "tests.integration.v2_node", "node", "run"]
LACKING = "vng"                 # a backup of view 0, running version 1 only
MARGIN = 64                     # `network init`: checkpoint interval 16, window 64
DAY_MS = 86_400_000
EXIT_S = 60.0


async def _send(client: Client, kind: str, args: dict, signer: Keypair) -> dict:
    result = await client.send(kind, args, signer=signer, check=False)
    assert result["status"] in ("committed", "rejected"), result
    return result


async def test_a_rules_switch_runs_from_its_height_and_stops_the_validator_without_it(
        network):
    net: Network = await network(4, start=False)
    for name in net.names:
        net.start(name, launcher=None if name == LACKING else V2)
    await net.wait_ready(timeout_s=60)
    municipality, cbs, brightlands, vng = net.names
    steward = {name: keys.read_key_file(net.root / "keys" / f"steward-{name}.key")
               for name in net.names}
    admin, anna, shop = net.admin, Keypair.generate(), Keypair.generate()

    async with contextlib.AsyncExitStack() as stack:
        clients = {name: await stack.enter_async_context(
                       Client(net.gateways[name], key=admin, chain=net.chain))
                   for name in net.names}
        first = clients[municipality]

        async def ok(kind: str, args: dict, signer: Keypair, via: str = municipality):
            result = await _send(clients[via], kind, args, signer)
            assert result["code"] == "ok", result
            return result

        # ---- a citizen with coins and a merchant ----------------------------------------
        await ok("member.register", {"key": anna.public, "role": "citizen",
                                     "age_band": "21plus", "area": "centrum"}, admin)
        await ok("member.register", {"key": shop.public, "role": "merchant",
                                     "name": "Bakkerij"}, admin)
        await ok("task.post", {"task": "bench", "title": "Paint the bench", "area": "centrum",
                               "domain": "public-space", "reward": 500, "minutes": 120,
                               "slots": 1, "deadline": now_ms() + DAY_MS}, admin)
        await ok("task.claim", {"task": "bench"}, anna)
        await ok("task.submit", {"task": "bench", "proof": b"p" * 32}, anna)
        await ok("task.approve", {"task": "bench", "citizen": anna.public}, admin)

        statuses = {name: await clients[name].status() for name in net.names}
        for name, status in statuses.items():
            assert status["rules"] == {"version": 1, "since": 1, "pending": None,
                                       "runs": [1] if name == LACKING else [1, 2]}, status

        # ---- the stewards of three organisations enact version 2 from `due` -------------
        due = statuses[municipality]["height"] + MARGIN + 12
        proposal = await ok("gov.propose", {"action": "rules.activate",
                                            "args": {"version": 2, "height": due},
                                            "expires": now_ms() + DAY_MS},
                            steward[municipality])
        await ok("gov.approve", {"proposal": proposal["tx_id"]}, steward[cbs], via=cbs)
        enacted = await ok("gov.approve", {"proposal": proposal["tx_id"]},
                           steward[brightlands], via=brightlands)
        assert enacted["events"][-1] == {"kind": "rules.activate", "version": 2,
                                         "height": due}
        assert enacted["height"] + MARGIN <= due

        async def pending_everywhere():
            found = [(await clients[n].status())["rules"]["pending"] for n in net.names]
            return all(p == {"version": 2, "height": due} for p in found)
        await net.wait_for("the pending switch in every status", pending_everywhere, 20)
        warnings = (await clients[vng].status())["warnings"]
        assert any(f"rules version 2 is due from height {due}" in w for w in warnings), \
            warnings
        assert not any("rules version" in w
                       for w in (await first.status())["warnings"])

        # ---- one-cent spends, one block each, through the height ------------------------
        spent: list[tuple[int, str]] = []
        gateways = [municipality, cbs, brightlands]
        deadline = time.monotonic() + 120
        while not spent or spent[-1][0] < due + 2:
            assert time.monotonic() < deadline, f"stuck at {spent[-1:]}"
            result = await _send(clients[gateways[len(spent) % 3]], "coin.spend",
                                 {"to": shop.public, "amount": 1}, anna)
            spent.append((result["height"], result["code"]))
        assert {code for height, code in spent if height < due} == {"ok"}, spent
        assert {code for height, code in spent if height >= due} == {"invalid_args"}, spent
        five = await ok("coin.spend", {"to": shop.public, "amount": 5}, anna)
        assert five["height"] > due
        status = await first.status()
        assert status["rules"] == {"version": 2, "since": due, "pending": None,
                                   "runs": [1, 2]}

    # ---- the validator without version 2 stopped before the height ---------------------
    process = net.processes[vng]

    async def ended():
        return process.poll() is not None
    await net.wait_for(f"{vng} to stop", ended, EXIT_S)
    assert process.returncode == 2, net.log_tail(vng, 30)
    [line] = net.log_events(vng, "rules_version_missing")
    assert (line["version"], line["from_height"], line["height"]) == (2, due, due), line
    assert "install a stadsmunt that runs rules version 2" in line["action"]
    assert not net.log_events(vng, "validator_failed")
    with Store(net.root / vng / "data") as store:
        assert store.head()[0] == due - 1

    # ---- given the version, it catches up and agrees ------------------------------------
    net.start(vng, launcher=V2)
    await net.wait_ready(timeout_s=60)
    head = max((await net.heights(net.names)).values())
    await net.wait_height(head, timeout_s=60)
    await net.assert_same_blocks(net.names, head)

    # ---- the audit runs every block under the version in force at its height -----------
    audit = await asyncio.to_thread(
        run_cli, "audit", str(net.root / municipality), "--genesis-hash", net.genesis_hash,
        timeout_s=300)
    assert audit.returncode == 1, audit.stdout[-2000:] + audit.stderr[-2000:]
    assert (f"cannot re-execute: rules version 2 is in force from height {due}"
            in audit.stdout + audit.stderr), audit.stdout[-2000:] + audit.stderr[-2000:]
    audited = await asyncio.to_thread(
        _run_v2, "audit", str(net.root / municipality), "--genesis-hash", net.genesis_hash)
    assert audited.returncode == 0, audited.stdout[-3000:] + audited.stderr[-3000:]


def _run_v2(*args: str) -> subprocess.CompletedProcess:
    """`stadsmunt ARGS` in a process that runs rules version 2 too (v2_node.py)."""
    return subprocess.run([sys.executable, "-m", "tests.integration.v2_node", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
