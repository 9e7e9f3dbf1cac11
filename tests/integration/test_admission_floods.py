"""Floods that admission stops at the door, against real processes (node/admission.py).

A four-validator network carries the light steady load of test_hostile_http.py through
the backups' gateways while a separate process floods the primary's gateway:
- transactions signed by fresh keys that are not members (before admission each was
  ordered and stored forever as a rejection: 150,000 in 26 s, +71 MB per validator);
- one citizen's one-cent spends, as fast as it can send them (before, 90,000 of them
  took the victims' p50 from 0.03 s to 0.5 s and some victims got 503).
No view change may happen, the victims' p99 stays within twice its baseline, no victim
fails, nothing of the strangers is stored, and the citizen gets no more ordered than its
share (burst plus rate) allows.
"""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from node.envelope import sign_tx
from node.keys import Keypair
from test_hostile_http import (ATTACK_S, BASELINE_S, Victims, outsider, p99,
                               quiet_baseline, view_changes)

FLOODER = Path(__file__).with_name("flood_client.py")
BURST, RATE_PER_S = 1_000, 100          # node.config.Limits' signer_burst, signer_rate_per_s
# The victims' p99 during the flood may be twice the quiet p99, or P99_FLOOR_S if that is
# more: the flood's signature checks take one of this machine's two cores, which a
# gateway on a machine of its own would not share with the validators (before admission
# the victims' p50 alone was 0.5-0.6 s)
P99_FLOOR_S = 0.3


async def executed(net, name: str) -> dict[str, float]:
    """The gateway's counts of executed transactions by result, since it started."""
    async with net.session.get(net.gateways[name] + "/metrics") as response:
        text = await response.text()
    return {result: float(line.split()[1]) for line in text.splitlines()
            for result in ("ok", "rejected")
            if line.startswith(f'stadsmunt_transactions_total{{result="{result}"}}')}


async def flood_the_primary(net, mode: str, *args: str) -> tuple[dict, str]:
    primary = (await net.status(net.names[0]))["primary"]
    backup = next(n for n in net.names if n != primary)
    victims = Victims(net, [n for n in net.names if n != primary])
    await victims.run(2.0)
    baseline = await victims.run(BASELINE_S)
    flooder = await asyncio.create_subprocess_exec(
        sys.executable, str(FLOODER), net.gateways[primary], str(ATTACK_S), net.chain, mode,
        *args, stdout=subprocess.PIPE, preexec_fn=outsider)
    attacked = await victims.run(ATTACK_S)
    answers = json.loads((await flooder.communicate())[0])
    baseline = await quiet_baseline(victims, baseline)
    print(f"\nvictims p99 {p99(baseline) * 1000:.0f} ms before, "
          f"{p99(attacked) * 1000:.0f} ms under the flood; the flood: {answers}")
    assert not victims.failures, victims.failures[:3]
    assert [await view_changes(net, n) for n in net.names] == [0] * 4
    assert p99(attacked) <= max(2 * p99(baseline), P99_FLOOR_S), \
        (p99(baseline), p99(attacked))
    for name in net.names:
        log = (net.root / f"{name}.log").read_text(errors="replace")
        assert "Traceback" not in log, log[-3000:]
    return answers, backup


async def test_a_flood_from_fresh_keys_is_refused_at_the_door_and_never_stored(network):
    net = await network(4)
    answers, backup = await flood_the_primary(net, "strangers")
    assert answers["sent"] >= 5_000, answers
    assert set(answers["items"]) <= {"rejected/unknown_member", "overloaded/overloaded"}
    assert answers["items"].get("rejected/unknown_member", 0) >= 5_000, answers
    assert set(answers["http"]) == {"200"}, answers
    # every executed transaction was a victim's registration: none was rejected
    assert (await executed(net, backup)).get("rejected") == 0


async def test_one_citizens_flood_fills_only_its_own_share(network):
    net = await network(4)
    citizen, merchant = Keypair.generate(), Keypair.generate()
    for args in ({"key": citizen.public, "role": "citizen", "age_band": "21plus",
                  "area": "centrum"},
                 {"key": merchant.public, "role": "merchant", "name": "De Kroon"}):
        answer = await net.post_tx(net.names[1], sign_tx(
            net.admin, net.chain, "member.register", args), 10)
        assert answer["status"] == "committed", answer
    before = await executed(net, net.names[1])
    answers, backup = await flood_the_primary(net, "spender", citizen.seed.hex(),
                                              merchant.public.hex())
    taken = answers["items"].get("pending/None", 0)
    assert answers["items"].get("overloaded/over_share", 0) >= 5_000, answers
    assert 0 < taken <= BURST + RATE_PER_S * (ATTACK_S + 5), answers
    # the citizen holds no coins: what was ordered of its spends is rejected in blocks,
    # at most its share of them
    after = await executed(net, net.names[1])
    assert after["rejected"] - before["rejected"] <= taken
