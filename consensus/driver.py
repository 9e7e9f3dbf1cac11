"""The application loop, written down once. Production (node/runtime.py, asyncio, TCP,
LMDB) and the simulator (tests/sim, virtual network and memory) both drive the replica
through this class and nothing else.

The order of one round, and why:
1. persist  - what this replica has voted is durable before any vote leaves the process,
              so a replica killed at any moment never votes two things for one slot;
2. send     - then the messages go out;
3. execute  - committed batches become blocks, in height order, each exactly once;
4. acknowledge - the block hash goes back to the replica, which may checkpoint on it.
Stable checkpoints are handed to the ledger to keep beside their block; a catch-up
request goes to the network last. A round may produce more output (an acknowledged
block can complete a checkpoint), so rounds repeat until the replica has nothing to say.
When the replica has run the last height of its validator set, and only then, the
driver replaces it with the next set's (`successor`, consensus/handover.py) and flushes
that one too: every block is executed under the replica of the set that ordered it.

A step that raises (a broken invariant, a ledger error) has already taken its batches
out of the replica: the replica and the ledger no longer agree, and nothing may run on.
So the first exception out of any step latches the driver: it is kept in `failure`,
`on_failure` is called with it at once (before it propagates: the caller stops every
input there, synchronously), and every later step raises `Halted` without touching the
replica, whichever path (a tick, a peer's frame, a gateway's submission) calls it next.
The caller stops the process (fail-stop); on restart the replica resumes from what is on
disk and fetches what it lacks. No caller catches an exception from a step and goes on.
"""
from __future__ import annotations

import functools
from typing import Callable, Sequence

from consensus.api import CommittedBatch, Ledger, Network, Request, Storage

# the next set's replica (or follower) for the one whose set is over
Successor = Callable[[object], object]


class Halted(Exception):
    """A step of this driver raised before: it runs nothing any more (fail-stop)."""


def _step(method):
    """One step of the driver: refused once a step has failed; its own failure latches."""
    @functools.wraps(method)
    def step(self, *args):
        if self.failure is not None:
            raise Halted(f"the driver stopped at an earlier failure: {self.failure!r}") \
                from self.failure
        try:
            return method(self, *args)
        except BaseException as error:
            # BaseException too: whatever ends a step half way leaves the replica ahead of
            # the ledger, so no step may run after it
            if self.failure is None:
                self.failure = error
                if self.on_failure is not None:
                    self.on_failure(error)
            raise
    return step


class Driver:
    def __init__(self, replica, storage: Storage, network: Network, ledger: Ledger,
                 on_failure: Callable[[BaseException], None] | None = None,
                 successor: Successor | None = None):
        self.replica = replica
        self.successor = successor
        self.storage = storage
        self.network = network
        self.ledger = ledger
        self.on_failure = on_failure
        self.failure: BaseException | None = None   # what the first failed step raised

    @_step
    def receive(self, sender: int, message: object) -> None:
        self.replica.receive(sender, message)
        self.flush()

    @_step
    def submit(self, requests: Sequence[Request]) -> list[bool]:
        accepted = self.replica.submit(requests)
        self.flush()
        return accepted

    @_step
    def tick(self, now_ms: int) -> None:
        self.replica.tick(now_ms)
        self.flush()

    @_step
    def apply_fetched(self, batches: Sequence[CommittedBatch]) -> None:
        """Certified blocks fetched from peers (certificates already checked against
        genesis by the caller, e.g. with consensus.certificates.batch_is_certified),
        executed in order, then reported to the replica with the batch."""
        applied = False
        for batch in batches:
            # a fetch can race the replica's own commits: only the next height is new
            if batch.height != self.replica.committed_height + 1:
                continue
            assert not self.replica.set_over, "a block beyond its validator set's heights"
            block_hash = self.ledger.execute(batch)
            self.replica.caught_up(batch.height, block_hash, batch, self.ledger.next_set())
            applied = True
            self.flush()
        if applied:
            self.replica.answered()
        self.flush()

    @_step
    def flush(self) -> None:
        while True:
            ready = self.replica.take_ready()
            if ready.empty():
                if not self.replica.set_over:
                    return
                assert self.successor is not None, "a validator set changed, no successor"
                self.replica = self.successor(self.replica)
                continue
            if ready.persist:
                self.storage.write(ready.persist)
            for to, message in ready.messages:
                self.network.send(to, message)
            for batch in ready.committed:
                block_hash = self.ledger.execute(batch)
                self.replica.executed(batch.height, block_hash, self.ledger.next_set())
            for checkpoint in ready.checkpoints:
                self.ledger.keep_checkpoint(checkpoint)
            if ready.fetch is not None:
                self.network.fetch(ready.fetch)
