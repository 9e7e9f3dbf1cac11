"""What the gateway learns from each executed batch: a wake-up for live streams and the
figures for /metrics (batch sizes, commit latency, ok and rejected transactions).

The node calls `on_batch` in its event-loop thread right after the block is written
(node/runtime.py, `listeners`), so setting a future here is safe and a stream that read
the log and found nothing cannot miss the block: it took its signal before it read.
"""
from __future__ import annotations

import asyncio
import time
from collections import OrderedDict

import structlog

from chaincode.state import pack_ordered

log = structlog.get_logger("stadsmunt.gateway")

MAX_TIMED = 100_000      # submissions whose commit latency is still being timed
# An encoded result is a canonical map whose first key is "code" (chaincode/results.py):
# an ok result starts with these bytes, so counting needs no decoding.
OK_PREFIX = pack_ordered({"code": "ok"})[1:]


class Feed:
    def __init__(self, node, metrics):
        self.node = node
        self.metrics = metrics
        self._signal: asyncio.Future | None = None
        # tx id (hex) -> monotonic time of its submission through this gateway
        self._submitted: OrderedDict[str, float] = OrderedDict()

    def signal(self) -> asyncio.Future:
        """A future that is set when the next batch has been executed."""
        if self._signal is None or self._signal.done():
            self._signal = asyncio.get_running_loop().create_future()
        return self._signal

    def submitted(self, tx_ids: list[str]) -> None:
        now = time.monotonic()
        timed = self._submitted
        for tx_id in tx_ids:
            timed[tx_id] = now
        while len(timed) > MAX_TIMED:
            timed.popitem(last=False)

    def on_batch(self, batch) -> None:
        try:
            self._count(batch)
        except Exception:       # a figure lost is better than a stalled validator
            log.exception("feed_failed", height=batch.height)
        if self._signal is not None and not self._signal.done():
            self._signal.set_result(batch.height)

    def _count(self, batch) -> None:
        metrics = self.metrics
        metrics.batch_size.observe(len(batch.requests))
        timed, now = self._submitted, time.monotonic()
        if timed:
            for request in batch.requests:
                started = timed.pop(request.key.hex(), None)
                if started is not None:
                    metrics.commit_latency.observe(now - started)
        results = self.node.store.results(batch.height)
        ok = sum(1 for raw in results if raw.startswith(OK_PREFIX, 1))
        rejected = len(results) - ok
        metrics.transactions.labels("ok").inc(ok)
        metrics.transactions.labels("rejected").inc(rejected)
