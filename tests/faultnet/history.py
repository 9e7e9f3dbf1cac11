"""The clients' side of a scenario: the load, every answer it got, and the checks of
those answers against every validator's ledger.

`Clients` sign fresh `member.register` transactions (the network's admin key) and submit
each with POST /v1/tx?wait=true to one gateway, keeping to it while it decides, moving to
the next on an answer that decides nothing (202 pending, 503/429 busy, no answer): so a
gateway whose validator is cut off sends its clients elsewhere, as real clients go.
The same envelope is submitted again until it is decided: nothing a client sent is ever
abandoned while the load runs. `History` keeps every answer with its times (monotonic,
for rates and latencies; the wall clock, for block times).

An acknowledged transaction is one a gateway answered 200 (`committed` or `rejected`)
with a height: the network promised it is in that block for good. `check_ledgers` holds
the network to it, and to agreement, over the validators' own stores.
"""
from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

from node import envelope, keys
from node.block import BlockRecord
from protocol.envelope import envelope_tx_id

WAIT_S = 5.0                # ?wait=true&timeout= of every submission
BUSY_PAUSE_S = 0.1          # a client told "busy" (503, 429) comes back after this
ERROR_PAUSE_S = 0.05        # one that got no answer tries the next gateway after this
TIME_MARGIN_MS = 500        # block times against the clients' clock: the bound plus this
                            # (a validator reads its clock once a tick, and a busy machine
                            # delays ticks)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Answer:
    gateway: str
    sent: float                 # monotonic
    answered: float
    sent_ms: int                # wall clock
    answered_ms: int
    http: int                   # 0: no answer (connection failed, timed out)
    status: str                 # committed, rejected, pending, overloaded, over_share, error
    height: int | None = None
    code: str | None = None

    @property
    def decided(self) -> bool:
        return self.http == 200 and self.status in ("committed", "rejected") \
            and type(self.height) is int


@dataclass
class Tx:
    tx_id: str
    first_sent: float
    first_sent_ms: int
    answers: list[Answer] = field(default_factory=list)
    probe: bool = False

    @property
    def acks(self) -> list[Answer]:
        return [a for a in self.answers if a.decided]

    @property
    def first_ack(self) -> Answer | None:
        acks = self.acks
        return min(acks, key=lambda a: a.answered) if acks else None


class History:
    def __init__(self):
        self.txs: dict[str, Tx] = {}
        self.kinds: Counter = Counter()

    def sent(self, tx_id: str, probe: bool = False) -> Tx:
        tx = self.txs.get(tx_id)
        if tx is None:
            tx = self.txs[tx_id] = Tx(tx_id, time.monotonic(), wall_ms(), probe=probe)
        return tx

    def answered(self, tx_id: str, answer: Answer) -> None:
        self.txs[tx_id].answers.append(answer)
        self.kinds[answer.status] += 1

    def acked(self) -> dict[str, Tx]:
        return {t: tx for t, tx in self.txs.items() if tx.acks}

    def acked_between(self, start: float, end: float) -> list[Tx]:
        """Transactions whose first acknowledgement came within [start, end)."""
        return [tx for tx in self.txs.values()
                if (a := tx.first_ack) is not None and start <= a.answered < end]


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))
    return ordered[rank]


async def submit(session: aiohttp.ClientSession, url: str, name: str, raw: bytes,
                 history: History, tx_id: str) -> Answer:
    """One POST /v1/tx?wait=true, recorded."""
    sent, sent_ms = time.monotonic(), wall_ms()
    http, status, height, code = 0, "error", None, None
    try:
        async with session.post(
                f"{url}/v1/tx?wait=true&timeout={WAIT_S:g}", data=raw,
                headers={"Content-Type": "application/msgpack"},
                timeout=aiohttp.ClientTimeout(total=WAIT_S + 10)) as response:
            http = response.status
            try:
                body = await response.json(content_type=None)
            except (ValueError, aiohttp.ContentTypeError):
                body = {}
            if http == 200:
                status, height, code = body.get("status", "?"), body.get("height"), \
                    body.get("code")
            elif http == 202:
                status = "pending"
            elif http == 503:
                status = "overloaded"
            elif http == 429:
                status = "over_share"
            else:
                status, code = f"http_{http}", body.get("code")
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
        pass
    answer = Answer(name, sent, time.monotonic(), sent_ms, wall_ms(), http, status, height,
                    code)
    history.answered(tx_id, answer)
    return answer


class Clients:
    def __init__(self, session: aiohttp.ClientSession, gateways: dict[str, str],
                 admin: keys.Keypair, chain: str, history: History, count: int):
        self.session, self.gateways = session, gateways
        self.names = list(gateways)
        self.admin, self.chain, self.history, self.count = admin, chain, history, count
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    def envelope(self) -> bytes:
        member = keys.Keypair.generate().public
        return envelope.sign_tx(self.admin, self.chain, "member.register",
                                {"key": member, "role": "citizen", "age_band": "21plus",
                                 "area": "centrum"})

    async def _client(self, number: int) -> None:
        turn = number % len(self.names)
        raw = tx_id = None
        while not self._stop.is_set():
            if raw is None:
                raw = self.envelope()
                tx_id = envelope_tx_id(raw)
                self.history.sent(tx_id)
            name = self.names[turn]
            answer = await submit(self.session, self.gateways[name], name, raw, self.history,
                                  tx_id)
            if answer.decided:
                raw = None      # a fresh transaction next, at the same gateway
                continue
            turn = (turn + 1) % len(self.names)
            if answer.status in ("overloaded", "over_share"):
                await asyncio.sleep(BUSY_PAUSE_S)   # as told: come back later
            elif answer.http == 0:
                await asyncio.sleep(ERROR_PAUSE_S)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._client(i)) for i in range(self.count)]

    async def stop(self) -> None:
        """Each client finishes the request it is in, so nothing it sent is still on
        its way to a gateway afterwards."""
        self._stop.set()
        await asyncio.wait(self._tasks, timeout=WAIT_S + 15)
        for task in self._tasks:
            if not task.done():
                task.cancel()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)
                  and not isinstance(r, asyncio.CancelledError)]
        if errors:
            raise errors[0]

    async def probe(self, timeout_s: float, names: list[str] | None = None) -> float | None:
        """One fresh transaction, sent at once to every gateway named and again to each
        one until one of them acknowledges it: the moment (monotonic) of that answer, or
        None when none did within `timeout_s`."""
        names = names or self.names
        raw = self.envelope()
        tx_id = envelope_tx_id(raw)
        started = time.monotonic()
        self.history.sent(tx_id, probe=True)
        done = asyncio.Event()

        async def post_until_decided(name: str) -> None:
            while not done.is_set() and time.monotonic() - started < timeout_s:
                answer = await submit(self.session, self.gateways[name], name, raw,
                                      self.history, tx_id)
                if answer.decided:
                    done.set()
                elif answer.http != 200 and answer.status != "pending":
                    await asyncio.sleep(ERROR_PAUSE_S)
        await asyncio.gather(*(post_until_decided(n) for n in names))
        ack = self.history.txs[tx_id].first_ack
        return None if ack is None else ack.answered


# ---- the checks -----------------------------------------------------------------------

@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


def tx_ids(record: BlockRecord) -> list[str]:
    return [envelope_tx_id(e) for e in record.envelopes]


def check_ledgers(history: History, ledgers: dict[str, list[BlockRecord]],
                  genesis_hash: bytes, clock_bound_ms: int) -> list[Check]:
    """The clients' answers against every validator's blocks 1..top."""
    checks = []
    names = list(ledgers)
    tops = {n: len(blocks) for n, blocks in ledgers.items()}
    first = ledgers[names[0]]

    # every validator holds the same blocks, chained from the genesis
    problems = []
    if len(set(tops.values())) != 1:
        problems.append(f"heights differ: {tops}")
    for name, blocks in ledgers.items():
        previous = genesis_hash
        for height, record in enumerate(blocks, 1):
            if record.height != height:
                problems.append(f"{name}: block {height} is numbered {record.height}")
                break
            if record.prev_hash != previous or not record.check_hash():
                problems.append(f"{name}: broken chain at {height}")
                break
            previous = record.hash
    for name in names[1:]:
        for a, b in zip(first, ledgers[name]):
            if a.hash != b.hash:
                problems.append(f"{names[0]} and {name} differ at height {a.height}")
                break
    checks.append(Check("same blocks on every validator", not problems,
                        "; ".join(problems[:5]) or f"{len(first)} blocks"))

    # each acknowledged transaction: in every ledger, once, at the height answered, and
    # every answer about it the same
    acked = history.acked()
    where = {}
    for name, blocks in ledgers.items():
        found: dict[str, list[int]] = {}
        for record in blocks:
            for tx_id in tx_ids(record):
                found.setdefault(tx_id, []).append(record.height)
        where[name] = found
    problems = []
    for tx_id, tx in acked.items():
        heights = {a.height for a in tx.acks}
        statuses = {a.status for a in tx.acks}
        if len(heights) != 1 or len(statuses) != 1:
            problems.append(f"{tx_id[:12]} answered differently: "
                            f"{sorted((a.status, a.height) for a in tx.acks)}")
            continue
        height = heights.pop()
        for name in names:
            if where[name].get(tx_id) != [height]:
                problems.append(f"{tx_id[:12]} acknowledged at {height}, on {name} at "
                                f"{where[name].get(tx_id, 'no height')}")
    checks.append(Check("every acknowledged transaction once, at its height, everywhere",
                        not problems, "; ".join(problems[:5]) or f"{len(acked)} acknowledged"))

    # nothing ordered twice (a second copy would be executed as `duplicate`)
    twice = {t: hs for t, hs in where[names[0]].items() if len(hs) > 1}
    checks.append(Check("no transaction ordered twice", not twice,
                        "; ".join(f"{t[:12]} at {hs}" for t, hs in list(twice.items())[:5])
                        or f"{len(where[names[0]])} transactions"))

    # block times: never back, and each acknowledged transaction's block time within the
    # skew bound of the clients' clock around its submission and answer
    problems = []
    latest = 0
    times = {}
    for record in first:
        times[record.height] = record.time_ms
        if record.time_ms == 0 and not record.envelopes:
            continue        # a null batch: it takes its predecessor's time
        if record.time_ms < latest:
            problems.append(f"height {record.height}: time {record.time_ms} before "
                            f"{latest}")
        latest = max(latest, record.time_ms)
    slack = clock_bound_ms + TIME_MARGIN_MS
    worst_ahead = worst_behind = 0
    for tx in acked.values():
        ack = tx.first_ack
        at = times.get(ack.height)
        if at is None:
            continue        # reported above
        ahead = at - ack.answered_ms
        behind = tx.first_sent_ms - at
        worst_ahead, worst_behind = max(worst_ahead, ahead), max(worst_behind, behind)
        if ahead > slack or behind > slack:
            problems.append(f"{tx.tx_id[:12]} at height {ack.height}: block time {at}, "
                            f"sent at {tx.first_sent_ms}, answered at {ack.answered_ms}")
    checks.append(Check(f"block times in order and within {clock_bound_ms} ms "
                        f"(+{TIME_MARGIN_MS}) of the clients' clock",
                        not problems, "; ".join(problems[:3]) or
                        f"at most {worst_ahead} ms after the answer, "
                        f"{worst_behind} ms before the submission"))
    return checks
