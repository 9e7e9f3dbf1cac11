"""What a validator spends on its peers' catch-up requests, bounded per peer.

A catch-up request is a few bytes (`[from, to]`) and its answer up to fetch_max_blocks
stored blocks, so without a bound one peer could make every validator read and send
blocks all day (20,000 requests in one burst once stalled every honest validator for
13-17 s). The rules, per peer:

1. Budget: a token bucket of `burst` requests refilled at `rate_per_s`. A correct
   validator has one request in flight and asks for the next stretch only when one
   arrived (consensus/catchup.py), so it stays far below; past the budget a request is
   not answered (`over_budget`) and the peer asks again after its fetch timeout.
2. Repeats: the same range asked again within `repeat_s` of being answered is not
   answered again (`repeat`): the answer is on its way.
3. Cost: an answer is the stored bytes of the blocks, never decoded and encoded again
   (node/store.py `raw_blocks`), at most `fetch_answer_bytes` (node/config.py: half a
   frame) but always the first block.

A refused request costs a bucket lookup; each peer's refusals are counted (`refused`)
and logged sampled by the caller. Pure but for the clock the caller passes (`now`, in
seconds, monotonic).
"""
from __future__ import annotations

from dataclasses import dataclass

from node.ratelimit import Bucket

OVER_BUDGET, REPEAT = "over_budget", "repeat"


@dataclass(frozen=True, slots=True)
class FetchLimits:
    rate_per_s: float = 20.0     # requests a second, sustained, per peer
    burst: int = 16              # requests at once, per peer
    repeat_s: float = 0.1        # the same range again within this is not answered


class FetchBudget:
    def __init__(self, peers: int, now: float, limits: FetchLimits = FetchLimits()):
        self.limits = limits
        self._buckets = [Bucket(limits.rate_per_s, limits.burst, now) for _ in range(peers)]
        self._last: list[tuple[int, int, float] | None] = [None] * peers
        self.refused = [{OVER_BUDGET: 0, REPEAT: 0} for _ in range(peers)]

    def allow(self, peer: int, from_height: int, to_height: int, now: float) -> str | None:
        """None when the request may be answered now (its token is taken), else why not."""
        last = self._last[peer]
        if last is not None and last[:2] == (from_height, to_height) and \
                now - last[2] < self.limits.repeat_s:
            reason = REPEAT
        elif not self._buckets[peer].ready(now):
            reason = OVER_BUDGET
        else:
            self._buckets[peer].take()
            self._last[peer] = (from_height, to_height, now)
            return None
        self.refused[peer][reason] += 1
        return reason
