"""`stadsmunt bench --reconfigure`: the throughput around a change of validator set.

Half way through the burst (half its transactions committed, or half of --duration
without --txs) the partners' stewards enact through governance a `validators.set` of
the same validators in the reverse order (docs/governance.md, "The constitution"): a
real change of set, with nothing new to start. The first organisation's steward
proposes it through the first gateway, the others approve it through their own gateways
until it is enacted; each transaction is signed once and posted again while the gateway
answers `overloaded`, as the load is still running. At the height `from` it names
(the status's `validator_set.since` once it took effect) every replica hands over to
the next set's replica, the views start again and the primary changes.

That height comes 65 to 80 blocks after the enactment (the bench's network has a
checkpoint interval of 16 and a switch margin of 64), far into a burst of --duration
at a few hundred transactions a block: a timed burst (no --txs) therefore goes on past
--duration until it has run as long after the switch as it ran before the governance
began (it signs RECONFIGURE_EXTRA_S more seconds of spends for that, bench/network.py).
A burst of --txs ends when they are committed, switch or not; its last seconds drain.

The burst's polls of the first gateway's /metrics (every 200 ms: transactions executed
and the height) give committed transactions per second in 1-second buckets aligned at
the switch (the first poll whose `stadsmunt_validator_set_since` is `from`: the first
validator has executed block from - 1, the old set's last, and the new set orders the
next): bucket k covers [switch + k, switch + k + 1) seconds, its count interpolated
between polls (each poll timed when its answer came). Transactions commit a block at a
time, so a second holds whole blocks: the text gives the blocks a second and their size
before the governance, which say how much one second may swing. Reported: the median
bucket before the governance began (the first second of the burst left out: it warms
up), between the enactment and the switch, and after the switch; the lowest bucket
after the enactment, and the lowest from the switch on; how many buckets after the
enactment stay below 90% of the median before; and the time from the switch to the
first bucket, at or after the lowest from the switch on, that is back at >= 90% of it
(`recovered_at_s`: 0 when the switch's own second is).
"""
from __future__ import annotations

import asyncio
import math
import statistics
import time
from pathlib import Path

from client import DAY_MS, Client, ClientError, now_ms
from node import genesis as genesis_file
from node.keys import read_key_file
from ops.errors import CheckFailed

RETRY_S = 0.25          # after an `overloaded` answer to a governance transaction
RECOVERED = 0.9         # back at this share of the median rate before
GOVERNANCE_TIMEOUT_S = 120.0
MAX_BURSTS = 10         # a timed burst waits for the switch up to 10 x --duration


class Reconfiguration:
    """The stewards of a network made by `stadsmunt network init`, and what they did."""

    def __init__(self, folder: Path, gateways: list[str]):
        genesis = genesis_file.load(folder / "genesis.json")
        # one organisation per validator, named as it, one steward each (ops/network.py)
        self.orgs = [v.organisation for v in genesis.validators]
        self.clients = [Client(g, read_key_file(folder / "keys" / f"steward-{org}.key"),
                               timeout_s=60.0) for g, org in zip(gateways, self.orgs)]
        self.new_set = [{"name": v.name, "key": v.key, "organisation": v.organisation}
                        for v in reversed(genesis.validators)]
        self.old_names = [v.name for v in genesis.validators]
        self.task: asyncio.Task | None = None
        self.started_s: float | None = None     # seconds into the burst
        self.enacted_s: float | None = None
        self.switch_s: float | None = None      # the first poll that saw the new set
        self._after: asyncio.Task | None = None
        self.enacted_height: int | None = None
        self.from_height: int | None = None
        self.approvals = 0
        self.before: dict | None = None         # the first gateway's status, before
        self.after: dict | None = None          # and after the switch

    def start(self, burst_started: float) -> None:
        self.started_s = time.monotonic() - burst_started
        self.task = asyncio.create_task(self._enact(burst_started))

    def timed_burst_over(self, elapsed: float, duration: float) -> bool:
        """A timed burst (its --duration passed) goes on until as long after the switch
        as it ran before the governance began (at most MAX_BURSTS durations): the
        switch comes 65-80 blocks after the enactment, far into a burst of --duration."""
        if elapsed >= MAX_BURSTS * duration:
            return True
        return self.switch_s is not None and elapsed >= self.switch_s + duration / 2

    def check(self) -> None:
        """Raises what went wrong in the governance, if anything did."""
        if self.task is not None and self.task.done() and self.task.exception():
            raise self.task.exception()

    async def close(self) -> None:
        for task in (self.task, self._after):
            if task is not None and not task.done():
                task.cancel()
        for client in self.clients:
            await client.close()

    async def _commit(self, client: Client, kind: str, args: dict) -> dict:
        envelope = await client.sign(kind, args)
        deadline = time.monotonic() + GOVERNANCE_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                result = await client.submit(envelope, wait=True, timeout_s=20.0)
            except ClientError as error:
                if error.code not in ("overloaded", "over_share"):
                    raise CheckFailed(f"the governance's {kind} was refused: "
                                      f"{error.code} {error}") from None
                await asyncio.sleep(RETRY_S)
                continue
            if result["status"] == "committed":
                return result
            if result["status"] != "pending":
                raise CheckFailed(f"the governance's {kind} was {result['status']}: "
                                  f"{result.get('code')} {result.get('detail')}")
        raise CheckFailed(f"the governance's {kind} was not committed in "
                          f"{GOVERNANCE_TIMEOUT_S:g} s")

    async def _enact(self, burst_started: float) -> None:
        first = self.clients[0]
        self.before = await first.status()
        proposed = await self._commit(first, "gov.propose", {
            "action": "validators.set", "args": {"validators": self.new_set},
            "expires": now_ms() + DAY_MS,
            "reason": "stadsmunt bench --reconfigure: the same validators, reversed"})
        proposal = proposed["tx_id"]
        for client in self.clients[1:]:
            await self._commit(client, "gov.approve", {"proposal": proposal})
            self.approvals += 1
            # read where it was committed: the first gateway's validator may lag
            found = await client.proposal(proposal)
            if found["status"] == "enacted":
                break
            if found["status"] != "open":
                raise CheckFailed(f"the validators.set proposal is {found['status']}: "
                                  f"{found.get('code')} {found.get('info')}")
        else:
            found = await self.clients[-1].proposal(proposal)
            if found["status"] != "enacted":
                raise CheckFailed("every organisation approved the validators.set "
                                  f"proposal and it is {found['status']}")
        self.enacted_s = time.monotonic() - burst_started
        self.enacted_height = found["closed_height"]
        while self.from_height is None:     # the first gateway's validator may lag
            status = await first.status()
            pending = status["validator_set"]["pending"]
            if pending is not None:
                self.from_height = pending["from"]
            elif status["validator_set"]["since"] > 1:
                self.from_height = status["validator_set"]["since"]
            else:
                await asyncio.sleep(0.1)

    def switched(self, at_s: float) -> None:
        """The first poll that saw the new set in force, `at_s` into the burst; the
        first gateway's status is read beside the polls, not between them."""
        self.switch_s = at_s
        self._after = asyncio.create_task(self._read_after())

    async def _read_after(self) -> None:
        self.after = await self.clients[0].status()

    async def settle(self) -> None:
        """After the burst: the governance finished (or raises), the status after read."""
        if self.task is not None:
            await self.task
        if self._after is not None:
            await self._after
        elif self.from_height is not None:
            status = await self.clients[0].status()
            if status["validator_set"]["since"] >= self.from_height:
                self.after = status


def _count_at(samples: list[tuple], t: float) -> float:
    """Committed transactions at `t` seconds into the burst, interpolated between polls
    (samples: (seconds, committed, ...) in time order, the first at 0)."""
    for (t0, c0, *_), (t1, c1, *_) in zip(samples, samples[1:]):
        if t0 <= t <= t1:
            return c0 if t1 == t0 else c0 + (c1 - c0) * (t - t0) / (t1 - t0)
    return samples[-1][1]


def figures(reconf: Reconfiguration, samples: list[tuple], elapsed: float) -> dict:
    """samples: (seconds into the burst, committed, height, set since), one per poll."""
    out = {"new_order": [v["name"] for v in reconf.new_set],
           "old_order": reconf.old_names,
           "governance_started_s": _r(reconf.started_s),
           "enacted_s": _r(reconf.enacted_s), "enacted_height": reconf.enacted_height,
           "approvals": reconf.approvals, "from_height": reconf.from_height,
           "switch_s": None, "switch_height": None,
           "median_tps_before": None, "lowest_tps_after_enactment": None,
           "lowest_after_enactment_at_s": None, "lowest_tps_from_switch": None,
           "lowest_from_switch_at_s": None, "recovered_at_s": None,
           "seconds_below_90pct_after_enactment": None,
           "median_tps_enactment_to_switch": None, "median_tps_after_switch": None,
           "view_before": None if reconf.before is None else reconf.before["view"],
           "primary_before": None if reconf.before is None else reconf.before["primary"],
           "view_after": None if reconf.after is None else reconf.after["view"],
           "primary_after": None if reconf.after is None else reconf.after["primary"],
           "set_after": None if reconf.after is None else
           reconf.after["validator_set"]["validators"],
           "blocks_per_s_before": None, "txs_per_block_before": None,
           "polls": len(samples), "poll_gap_max_s": _r(max(
               (b[0] - a[0] for a, b in zip(samples, samples[1:])), default=None)),
           "buckets": []}
    if reconf.from_height is None or reconf.enacted_s is None:
        return out
    switched = [s for s in samples if s[3] >= reconf.from_height]
    if not switched:
        return out
    switch = switched[0][0]
    end = min(elapsed, samples[-1][0])      # no bucket beyond the last poll
    out.update(switch_s=_r(switch), switch_height=switched[0][3])
    buckets = [(k, _count_at(samples, switch + k + 1) - _count_at(samples, switch + k))
               for k in range(-math.floor(switch), math.floor(end - switch))]
    out["buckets"] = [[k, round(n)] for k, n in buckets]
    before = [n for k, n in buckets if switch + k >= 1.0
              and switch + k + 1 <= reconf.started_s]
    after = [(k, n) for k, n in buckets if switch + k + 1 > reconf.enacted_s]
    since = [(k, n) for k, n in buckets if k >= 0]
    if not before or not since:
        return out
    median = statistics.median(before)
    # commits come a block at a time: how many blocks a bucket holds says how much a
    # single second may swing
    steady = [p for p in samples if 1.0 <= p[0] <= reconf.started_s]
    if len(steady) >= 2 and steady[-1][2] > steady[0][2]:
        blocks = steady[-1][2] - steady[0][2]
        out.update(blocks_per_s_before=round(blocks / (steady[-1][0] - steady[0][0]), 1),
                   txs_per_block_before=round((steady[-1][1] - steady[0][1]) / blocks))
    low_k, low = min(after, key=lambda kn: kn[1])
    switch_k, switch_low = min(since, key=lambda kn: kn[1])
    back = [k for k, n in since if k >= switch_k and n >= RECOVERED * median]
    waiting = [n for k, n in after if k < 0]
    out.update(median_tps_before=round(median), lowest_tps_after_enactment=round(low),
               lowest_after_enactment_at_s=low_k, lowest_tps_from_switch=round(switch_low),
               lowest_from_switch_at_s=switch_k,
               recovered_at_s=back[0] if back else None,
               seconds_below_90pct_after_enactment=sum(
                   1 for _, n in after if n < RECOVERED * median),
               median_tps_enactment_to_switch=round(statistics.median(waiting))
               if waiting else None,
               median_tps_after_switch=round(statistics.median(n for _, n in since)))
    return out


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def text(r: dict) -> list[str]:
    """The lines of the bench's text output about the reconfiguration."""
    pad = " " * 19
    lines = [f"  reconfiguration  validators.set {' '.join(r['new_order'])} (was "
             f"{' '.join(r['old_order'])}): governance from {r['governance_started_s']} s "
             f"into the burst, enacted at height {r['enacted_height']} at "
             f"{r['enacted_s']} s ({r['approvals']} approvals), in force from height "
             f"{r['from_height']}"]
    if r["switch_s"] is None:
        lines.append(pad + "the burst ended before the new set took over: give a longer "
                           "burst (--duration, or more --txs)")
        return lines
    lines.append(f"{pad}switch at {r['switch_s']} s (validator_set.since "
                 f"{r['switch_height']}); primary {r['primary_before']} (view "
                 f"{r['view_before']}) -> {r['primary_after']} (view {r['view_after']})")
    if r["median_tps_before"] is None:
        lines.append(pad + "too few whole seconds before the governance, or after the "
                           "switch, for the figures")
    else:
        blocks = "" if r["blocks_per_s_before"] is None else \
            f" (in {r['blocks_per_s_before']} blocks a second of " \
            f"{r['txs_per_block_before']:,} transactions: a second's count swings by a block)"
        recovered = "not within the burst" if r["recovered_at_s"] is None else \
            f"{r['recovered_at_s']} s after the switch"
        lines += [
            f"{pad}median {r['median_tps_before']:,} tx/s before the governance{blocks}, "
            f"{r['median_tps_enactment_to_switch'] or 0:,} between the enactment and the "
            f"switch, {r['median_tps_after_switch']:,} after the switch",
            f"{pad}lowest second after the enactment {r['lowest_tps_after_enactment']:,} "
            f"tx/s (at {r['lowest_after_enactment_at_s']:+d} s from the switch); from the "
            f"switch on {r['lowest_tps_from_switch']:,} (at "
            f"{r['lowest_from_switch_at_s']:+d} s); {r['seconds_below_90pct_after_enactment']}"
            f" s below 90% of the median after the enactment",
            f"{pad}back at >= 90% of the median: {recovered}"]
    lines.append(f"{pad}tx/s by second from the switch (E: the enactment's second, S: the "
                 f"switch's; polls of /metrics up to {r['poll_gap_max_s']} s apart):")
    enacted = r["enacted_s"] - r["switch_s"]
    shown = [(k, n) for k, n in r["buckets"] if k >= -10 and k <= 10
             or k <= enacted < k + 1]
    for start in range(0, len(shown), 8):
        lines.append(pad + "  ".join(
            f"{k:+d}{'E' if k <= enacted < k + 1 else ''}{'S' if k == 0 else ''} {n:,}"
            for k, n in shown[start:start + 8]))
    return lines
