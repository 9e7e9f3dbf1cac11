"""Catching up: a replica behind a stable checkpoint, or behind what f + 1 peers report
in their status, asks to fetch the certified blocks it lacks - at most fetch_max_blocks
at a time, again after fetch_timeout_ticks if nothing came, and at once for the next
stretch when one arrived."""
from __future__ import annotations

from consensus.api import Fetch
from consensus.config import Config


class CatchUp:
    def __init__(self, config: Config, me: int):
        self.config, self.me = config, me
        self.target = 0              # the height this replica knows it must reach
        self.retry_tick = 0          # no new request before this tick
        self.top = 0                 # the last height of the request in flight
        self.peer_heights: dict[int, int] = {}   # last committed height each peer reported

    def want(self, height: int, peers: tuple[int, ...], committed: int, ticks: int,
             asked: bool) -> Fetch | None:
        """A fetch for what lies between `committed` and the target, unless one is in
        flight (`asked`: this step already asks, so the request may be widened)."""
        if height <= committed:
            return None
        self.target = max(self.target, height)
        if ticks < self.retry_tick and not asked:
            return None
        peers = tuple(p for p in peers if p != self.me) or tuple(
            i for i in range(self.config.n) if i != self.me)
        self.top = min(self.target, committed + self.config.fetch_max_blocks)
        self.retry_tick = ticks + self.config.fetch_timeout_ticks
        return Fetch(committed + 1, self.top, peers)

    def arrived(self, height: int, ticks: int) -> None:
        """A fetched block was applied; after the last one, the next stretch may go."""
        if height >= self.top:
            self.retry_tick = ticks

    def claimed(self, sender: int, height: int) -> tuple[int, tuple[int, ...]]:
        """Records a peer's reported height; returns the height f + 1 peers reached (so
        a correct one did) and the peers that reached it."""
        self.peer_heights[sender] = height
        f = self.config.f
        claims = sorted(self.peer_heights.values(), reverse=True)
        if len(claims) <= f:
            return 0, ()
        target = claims[f]
        return target, tuple(s for s, h in self.peer_heights.items() if h >= target)
