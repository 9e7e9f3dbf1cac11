"""A validator outside the set in force: a partner whose validator joins with the next
set, or one the set left. It votes for nothing and signs nothing; it follows the chain
by fetching certified blocks, checked against the set in force at their heights, until
its set takes over (consensus/handover.py), and says where it is (Status) like any
replica, so that members behind can fetch from it. Same inputs and outputs as the
Replica, so that one driver runs either."""
from __future__ import annotations

from typing import Sequence

from consensus.api import CommittedBatch, Crypto, Ready, Request, StableCheckpoint, ValidatorSet
from consensus.catchup import CatchUp
from consensus.certificates import RememberingVerifier, stable_is_certified
from consensus.config import Config
from consensus.messages import StableProof, Status
from consensus.setbound import SetBound


class Follower(SetBound):
    is_primary = False
    active = False
    view = 0
    pending_count = 0

    def __init__(self, config: Config, crypto: Crypto, executed_height: int,
                 executed_hash: bytes, last_block_time_ms: int,
                 next_set: ValidatorSet | None = None, ordered_keys: Sequence[bytes] = ()):
        """`ordered_keys`: keys executed last, oldest first, handed on to the replica it
        becomes, so that it does not order them again."""
        assert executed_height >= config.first_height - 1
        self.config = config
        self.crypto = RememberingVerifier(crypto, 8 * config.n * config.window)
        self.me = None
        self.ready = Ready()
        self.committed_height = self.executed_height = executed_height
        self.executed_hash = executed_hash
        self.block_time_ms = last_block_time_ms
        self.stable = StableCheckpoint(config.first_height - 1, config.base_hash,
                                       config.set_hash, ())
        self.next_set = next_set
        self.catchup = CatchUp(config, -1)
        self.ticks = 0
        # keys of the blocks run here, oldest first: handed to the replica it becomes
        self.ordered_keys: list[bytes] = list(ordered_keys)[-config.seen_limit:]
        self.faults: list = []                  # a follower judges no one

    @property
    def stable_height(self) -> int:
        return self.stable.height

    @property
    def primary(self) -> int:
        return self.config.primary(0)

    def take_ready(self) -> Ready:
        ready, self.ready = self.ready, Ready()
        return ready

    def take_faults(self) -> list:
        return []

    def submit(self, requests: Sequence[Request]) -> list[bool]:
        return [False] * len(requests)      # a follower orders nothing

    def receive(self, sender: int, message: object) -> None:
        if not 0 <= sender < self.config.n:
            return
        if type(message) is Status:
            target, peers = self.catchup.claimed(sender, message.height)
            self._want(target, peers, proven=False)
        elif type(message) is StableProof:
            stable = StableCheckpoint(message.height, message.block_hash, message.set_hash,
                                      message.certificate)
            beyond = self.last_height is not None and stable.height > self.last_height
            if stable.height > self.stable.height and not beyond and \
                    stable_is_certified(self.config, self.crypto, stable):
                self.stable = stable
                self._want(stable.height, tuple(i for i, _ in stable.certificate))

    def tick(self, now_ms: int) -> None:
        self.ticks += 1
        if self.ticks % self.config.status_interval_ticks == 0 and self.config.n > 1:
            # where it is, so that members still behind learn that the blocks exist
            # here: one that ran the last height of its set and left may hold the only
            # copy of it that a stuck rest of that set can fetch
            self.ready.messages.append((None, Status(0, False, self.committed_height,
                                                     self.stable.height)))
        self._want(self.catchup.target, self.catchup.reporters())

    def executed(self, height: int, block_hash: bytes, next_set=None) -> None:
        raise AssertionError("a follower commits nothing of its own")

    def caught_up(self, height: int, block_hash: bytes, batch: CommittedBatch | None = None,
                  next_set: ValidatorSet | None = None) -> None:
        assert height == self.executed_height + 1
        assert self.last_height is None or height <= self.last_height
        self.committed_height = self.executed_height = height
        self.executed_hash = block_hash
        if batch is not None:
            self.ordered_keys.extend(r.key for r in batch.requests)
            del self.ordered_keys[:-self.config.seen_limit]
            if batch.time_ms:
                self.block_time_ms = max(self.block_time_ms, batch.time_ms)
        if next_set != self.next_set:
            assert next_set is not None and (self.next_set is None or
                                             next_set.first_height >= self.next_set.first_height)
            self.next_set = next_set
        self.catchup.arrived(height, self.ticks)
        self._want(self.catchup.target, self.catchup.reporters())

    def answered(self) -> None:
        self.catchup.answered(self.ticks)
        self._want(self.catchup.target, self.catchup.reporters())

    def _want(self, height: int, peers: tuple[int, ...], proven: bool = True) -> None:
        if self.last_height is not None:
            height = min(height, self.last_height)
        fetch = self.catchup.want(height, peers, self.committed_height, self.ticks,
                                  self.ready.fetch is not None, proven)
        if fetch is not None:
            self.ready.fetch = fetch

    def handover(self) -> tuple[list[bytes], list[Request]]:
        return list(self.ordered_keys), []
