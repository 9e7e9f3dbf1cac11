"""Catching up: a replica behind a stable checkpoint, or stalled behind what a peer
reports in its status, asks to fetch the certified blocks it lacks - at most
fetch_max_blocks at a time, again after fetch_timeout_ticks if nothing came, and at once
for the next stretch when one arrived. Fetched blocks carry commit certificates, so a
peer that lies about its height costs one unanswered request per timeout, no more; its
claim is never remembered as a target."""
from __future__ import annotations

from consensus.api import Fetch
from consensus.config import Config


class CatchUp:
    def __init__(self, config: Config, me: int):
        self.config, self.me = config, me
        self._target = 0             # the height this replica knows it must reach
        self.retry_tick = 0          # no new request before this tick
        self.top = 0                 # the last height of the request in flight
        self.turns = 0               # requests made: each starts with another peer
        self._peer_heights: dict[int, int] = {}  # last committed height each peer reported

    @property
    def target(self) -> int:
        """The height this replica knows it must reach (a certified checkpoint's)."""
        return self._target

    @property
    def peer_heights(self) -> dict[int, int]:
        """The last committed height each peer reported (read it, do not change it)."""
        return self._peer_heights

    def want(self, height: int, peers: tuple[int, ...], committed: int, ticks: int,
             asked: bool, proven: bool = True) -> Fetch | None:
        """A fetch for what lies between `committed` and `height`, unless one is in
        flight (`asked`: this step already asks, so the request may be widened). A
        `proven` height (a certified checkpoint) stays the target until reached."""
        if height <= committed:
            return None
        if proven:
            self._target = max(self._target, height)
        if ticks < self.retry_tick and not asked:
            return None
        # the peers named first (those that report the height, or signed the
        # checkpoint), then every other that reported one, each request starting with
        # the next: a peer that claims a height it does not serve is not asked for ever.
        # The network asks the first (consensus.api.Fetch): the turns are taken here
        # only, since two in step cancel out (with two peers, one was asked for ever)
        peers = tuple(dict.fromkeys(p for p in (*peers, *self._peer_heights)
                                    if p != self.me)) or tuple(
            i for i in range(self.config.n) if i != self.me)
        turn = self.turns % len(peers)
        self.turns += 1
        self.top = min(max(self._target, height), committed + self.config.fetch_max_blocks)
        self.retry_tick = ticks + self.config.fetch_timeout_ticks
        return Fetch(committed + 1, self.top, peers[turn:] + peers[:turn])

    def arrived(self, height: int, ticks: int) -> None:
        """A fetched block was applied; after the last one, the next stretch may go."""
        if height >= self.top:
            self.retry_tick = ticks

    def answered(self, ticks: int) -> None:
        """A peer's answer was applied, and it held less than was asked (a peer that
        holds fewer blocks, an answer cut at its size limit, or a block whose validator
        set is not known yet): ask again at once, for what still lacks, rather than after
        the timeout. It brought blocks, so asking again costs nothing unearned."""
        self.retry_tick = ticks

    def reporters(self) -> tuple[int, ...]:
        """The peers that reported a height, in the order they first did."""
        return tuple(self._peer_heights)

    def claimed(self, sender: int, height: int) -> tuple[int, tuple[int, ...]]:
        """Records a peer's reported height; returns the highest height any peer
        reports and the peers that report it."""
        self._peer_heights[sender] = height
        target = max(self._peer_heights.values())
        return target, tuple(s for s, h in self._peer_heights.items() if h >= target)
