"""What the gateway learns from each executed block: a wake-up for live streams and the
figures for /metrics (block sizes, commit latency, ok and rejected transactions).

The node's notices (node.linkwire.Notice) arrive in this gateway's event-loop thread -
over the local link (gateway/linked.py), or from the validator in this very process
(gateway/nodeapi.py, InProcess) right after the block is written - so setting a future
here is safe, and a stream that read the log and found nothing cannot miss the block: it
took its signal before it read.
"""
from __future__ import annotations

import asyncio
import time
from collections import OrderedDict

import structlog

log = structlog.get_logger("stadsmunt.gateway")

MAX_TIMED = 100_000      # submissions whose commit latency is still being timed


class Feed:
    def __init__(self, node, metrics):
        self.node = node
        self.metrics = metrics
        self._signal: asyncio.Future | None = None
        # tx id (hex) -> monotonic time of its submission through this gateway
        self._submitted: OrderedDict[str, float] = OrderedDict()

    def signal(self) -> asyncio.Future:
        """A future that is set when the next block has been executed."""
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

    def on_batch(self, notice) -> None:
        try:
            self._count(notice)
        except Exception:       # a figure lost is better than a stalled gateway
            log.exception("feed_failed", height=notice.height)
        if self._signal is not None and not self._signal.done():
            self._signal.set_result(notice.height)

    def _count(self, notice) -> None:
        metrics = self.metrics
        metrics.batch_size.observe(len(notice.tx_ids))
        timed, now = self._submitted, time.monotonic()
        if timed:
            for tx_id in notice.tx_ids:
                started = timed.pop(tx_id, None)
                if started is not None:
                    metrics.commit_latency.observe(now - started)
        metrics.transactions.labels("ok").inc(notice.ok)
        metrics.transactions.labels("rejected").inc(notice.rejected)
