"""The requests a replica waits on: pending until ordered, each with its arrival tick for
the view-change timer. A primary proposes from the queue (pending and not yet in a
pre-prepare of this view); keys once ordered are remembered, up to a limit, so that a
correct primary never orders a key twice."""
from __future__ import annotations

from collections import deque
from typing import Sequence

from consensus.api import Request
from consensus.config import Config


class RequestPool:
    def __init__(self, config: Config, ordered_keys: Sequence[bytes] = ()):
        self.config = config
        self.pending: dict[bytes, tuple[Request, int]] = {}   # key -> (request, arrival tick)
        self.queue: dict[bytes, Request] = {}
        self.in_flight: set[bytes] = set()
        # keys ordered, oldest first: a set to ask and a queue to forget the oldest. (A dict
        # that drops its first key again and again scans the holes left in front of it:
        # at the limit that cost grew with every transaction of a long run.)
        kept = list(dict.fromkeys(ordered_keys[-config.seen_limit:]))
        self.seen: set[bytes] = set(kept)
        self.seen_order: deque[bytes] = deque(kept)

    def __len__(self) -> int:
        return len(self.pending)

    def add(self, request: Request, tick: int) -> bool:
        """False when the key is known (ordered or pending) or the pool is full."""
        key = request.key
        if key in self.seen or key in self.pending:
            return False
        if len(self.pending) >= self.config.pending_limit:
            return False
        self.pending[key] = (request, tick)
        if key not in self.in_flight:
            self.queue[key] = request
        return True

    def oldest_arrival(self) -> int | None:
        for _, tick in self.pending.values():
            return tick
        return None

    def oldest_key(self) -> bytes | None:
        for key in self.pending:
            return key
        return None

    def newest_arrival(self, requests: Sequence[Request]) -> int | None:
        """The latest arrival tick among those of `requests` that are pending here."""
        ticks = [self.pending[r.key][1] for r in requests if r.key in self.pending]
        return max(ticks, default=None)

    def next_batch(self) -> tuple[list[Request], int, bool]:
        """The next batch from the queue within the limits, the arrival tick of its
        oldest request, and whether it is full (so it should not wait for more)."""
        config = self.config
        batch, size = [], 0
        for request in self.queue.values():
            if len(batch) == config.batch_max_count:
                break
            if batch and size + len(request.payload) > config.batch_max_bytes:
                break
            batch.append(request)
            size += len(request.payload)
        if not batch:
            return batch, 0, False
        full = len(batch) < len(self.queue) or len(batch) == config.batch_max_count
        return batch, self.pending[batch[0].key][1], full

    def proposed(self, requests: Sequence[Request], tick: int) -> None:
        """Requests in a pre-prepare of this view: waited on, not proposed again."""
        for request in requests:
            self.in_flight.add(request.key)
            self.queue.pop(request.key, None)
            self.add(request, tick)

    def ordered(self, requests: Sequence[Request]) -> None:
        for request in requests:
            key = request.key
            self.pending.pop(key, None)
            self.queue.pop(key, None)
            self.in_flight.discard(key)
            if key not in self.seen:
                self.seen.add(key)
                self.seen_order.append(key)
                if len(self.seen_order) > self.config.seen_limit:
                    self.seen.discard(self.seen_order.popleft())

    def new_view(self) -> None:
        """Pre-prepares of the old view are void: everything pending may be proposed."""
        self.in_flight = set()
        self.queue = {key: request for key, (request, _) in self.pending.items()}

    def check(self) -> None:
        assert len(self.pending) <= self.config.pending_limit
        assert len(self.seen) == len(self.seen_order) <= self.config.seen_limit
        assert len(self.queue) <= len(self.pending)
