"""Hostile HTTP sent to the primary's gateway never delays consensus.

A four-validator network (one for both attacks) carries a light steady load (one registration every
VICTIM_EVERY_S, each waited for, sent to the backups' gateways in turn). Its latency is
measured for a while, then again while a separate process posts, to the primary's
gateway, 8 MiB msgpack bodies of empty arrays and of empty maps and JSON nested 5,000
deep, back to back. No view change may happen, no request may be answered 500, the
load's p99 must stay within twice its baseline, and the primary's log (its gateway
processes' included) must hold no traceback.

Before the gateway had processes of its own and bounded decoders, one such body held the
primary's event loop for 3 to 6 s while Python decoded it: every one forced a view change.
"""
from __future__ import annotations

import asyncio
import os
import json
import subprocess
import sys
import time
from pathlib import Path

from netharness import Load, Network

VICTIM_EVERY_S = 0.05          # 20 transactions a second
# each window holds 120 and 160 victims at least: the p99 is each one's second worst
BASELINE_S, ATTACK_S = 6.0, 8.0
HOSTILE = Path(__file__).with_name("hostile_client.py")


class Victims:
    """Sends one fresh registration every VICTIM_EVERY_S with ?wait=true, to the named
    gateways in turn; keeps each committed one's latency."""

    def __init__(self, net: Network, targets: list[str]):
        self.net, self.targets = net, targets
        self.latencies: list[float] = []
        self.failures: list[object] = []
        self._tasks: set[asyncio.Task] = set()

    async def _one(self, name: str) -> None:
        raw = Load(self.net, 0).envelope()
        started = time.monotonic()
        try:
            answer = await self.net.post_tx(name, raw, 10)
        except Exception as error:      # any failure of a victim fails the test
            self.failures.append(error)
            return
        if answer.get("status") != "committed":
            self.failures.append(answer)
            return
        self.latencies.append(time.monotonic() - started)

    async def run(self, seconds: float) -> list[float]:
        """The latencies of what was sent during `seconds`, once all are answered."""
        first = len(self.latencies)
        loop = asyncio.get_running_loop()
        start = loop.time()
        turn = 0
        while loop.time() - start < seconds:
            task = asyncio.create_task(self._one(self.targets[turn % len(self.targets)]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            turn += 1
            await asyncio.sleep(max(0.0, start + turn * VICTIM_EVERY_S - loop.time()))
        await asyncio.gather(*self._tasks)
        return sorted(self.latencies[first:])


def outsider() -> None:
    """The attacker's own CPU is not the validators' to spend: on this 2-core machine it
    runs beside them, so it yields to them as a machine of its own would not compete."""
    os.nice(15)


async def quiet_baseline(victims, before: list[float]) -> list[float]:
    """The quiet window, before or after the attack, with the higher p99: on this shared
    2-core machine one quiet window's p99 alone varies by half (44-80 ms in one sitting),
    so "twice the baseline" is measured against the machine's ordinary spread."""
    after = await victims.run(BASELINE_S)
    return max(before, after, key=p99)


def p99(values: list[float]) -> float:
    return values[min(len(values) - 1, int(0.99 * len(values)))]


async def view_changes(net: Network, name: str) -> float:
    async with net.session.get(net.gateways[name] + "/metrics") as response:
        for line in (await response.text()).splitlines():
            if line.startswith("stadsmunt_view_changes "):
                return float(line.split()[1])
    raise AssertionError(f"{name} serves no stadsmunt_view_changes")


async def _attack_the_primary(net, mode: tuple[str, ...]) -> dict:
    """Victims' load through the backups, quiet then under attack on the primary's
    gateway; the checks both attacks share. Returns the attacker's answers by status."""
    status = await net.status(net.names[0])
    primary, view = status["primary"], status["view"]
    changes = [await view_changes(net, n) for n in net.names]
    victims = Victims(net, [n for n in net.names if n != primary])
    await victims.run(2.0)                        # warm up: connections, caches
    baseline = await victims.run(BASELINE_S)
    attacker = await asyncio.create_subprocess_exec(
        sys.executable, str(HOSTILE), net.gateways[primary], str(ATTACK_S), "2", *mode,
        stdout=subprocess.PIPE, preexec_fn=outsider)
    attacked = await victims.run(ATTACK_S)
    answers = json.loads((await attacker.communicate())[0])
    baseline = await quiet_baseline(victims, baseline)
    assert not victims.failures, victims.failures[:3]
    print(f"\nvictims p99 {p99(baseline) * 1000:.0f} ms before, "
          f"{p99(attacked) * 1000:.0f} ms under attack; the attacker's answers {answers}")
    statuses = await net.statuses()
    assert {s["view"] for s in statuses.values()} == {view}, statuses
    assert [await view_changes(net, n) for n in net.names] == changes
    assert p99(attacked) <= 2 * p99(baseline), (p99(baseline), p99(attacked))
    log = (net.root / f"{primary}.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    return answers


async def test_hostile_bodies_to_the_primary_never_delay_consensus(shared_network):
    answers = await _attack_the_primary(shared_network, ())
    assert set(answers) == {"400"} and answers["400"] >= 8, answers


async def test_heavy_batches_to_the_primary_never_delay_consensus(shared_network):
    await _attack_the_primary(shared_network, ("heavy",))
