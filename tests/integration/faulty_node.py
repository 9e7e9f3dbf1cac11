"""A validator process with one fault injected, for the fail-stop tests
(test_processes_fail_stop.py):

    python -m tests.integration.faulty_node FAULT[:HEIGHT] DIR/NAME

installs the fault (a patch of one method of the validator's own classes) and then runs
exactly what `python -m ops.cli node run DIR/NAME` runs. A failure fires ONCE, at the
first call of its method once the validator has executed HEIGHT blocks (or its replica
has committed that far); afterwards the method behaves normally again, so the test shows
that one failure is enough to stop the process. Each raises an exception whose text names
the fault (`injected ...`), which the test looks for in the `validator_failed` line.
(`garbage` is no failure of this validator but bad input for its peers, and `supervisor`
fails whenever a gateway process is to be started again.)

Lives under tests/ only: production code has no hooks for it.
"""
from __future__ import annotations

import functools
import sys

import lmdb

from consensus.replica import Replica
from node import peering, runtime
from node.executor import Executor
from node.link import LinkServer
from node.peerlink import Link
from node.runtime import Validator
from node.store import BlockWriter, ConsensusStorage
from ops import cli, gateways

_node: Validator | None = None      # the validator of this process, once made


def _remember_the_validator() -> None:
    made = Validator.__init__

    @functools.wraps(made)
    def init(self, *args, **kwargs):
        global _node
        made(self, *args, **kwargs)
        _node = self
    Validator.__init__ = init


def _height() -> int:
    """How many blocks the validator has executed (0 before it is made)."""
    return _node.replica.executed_height if _node is not None else 0


class _Once:
    """True exactly once: the first time it is asked with `ready` true."""

    def __init__(self):
        self.fired = False

    def __call__(self, ready: bool) -> bool:
        if ready and not self.fired:
            self.fired = True
            return True
        return False


def _patch_before(cls, name: str, when, error) -> None:
    """cls.name raises `error(args)` once `when(self, *args)` is true, else runs."""
    original = getattr(cls, name)
    once = _Once()

    @functools.wraps(original)
    def patched(self, *args, **kwargs):
        if once(when(self, *args)):
            raise error(self, *args)
        return original(self, *args, **kwargs)
    setattr(cls, name, patched)


# ---- the faults -----------------------------------------------------------------------

def invariant(height: int) -> None:
    """(a) A consensus invariant breaks: the replica's invariant check fails once its
    committed height reaches `height` (whichever step ran it: a tick, a peer's message,
    an executed block)."""
    original = Replica._check_invariants
    once = _Once()

    def check(self):
        original(self)
        if once(self.committed_height >= height):
            raise AssertionError(f"injected: a consensus invariant broke at committed "
                                 f"height {self.committed_height}")
    Replica._check_invariants = check


def submission(height: int) -> None:
    """(a) A consensus invariant breaks in a gateway's submission: the replica's
    `submit` (reached over the gateway socket) fails once the validator has executed
    `height` blocks, after it took the requests into its pool."""
    original = Replica.submit
    once = _Once()

    def submit(self, requests):
        accepted = original(self, requests)
        if once(_height() >= height):
            raise AssertionError(f"injected: an invariant broke in a submission at "
                                 f"height {_height()}")
        return accepted
    Replica.submit = submit


def persist(height: int) -> None:
    """(b) A ledger error in the flush's first step: writing what the replica voted
    (LMDB, the consensus table) fails once the validator has executed `height` blocks,
    before any of that round's messages leave."""
    _patch_before(ConsensusStorage, "write", lambda self, ops: _height() >= height,
                  lambda self, ops: lmdb.DiskError(
                      f"injected: the consensus write failed at height {_height()}"))


def commit(height: int) -> None:
    """(b) A ledger error in the middle of a block: the write transaction of block
    `height` fails at its commit, after every record of the block was put into it (the
    persist and send steps of the round have run; LMDB aborts the transaction)."""
    original = BlockWriter.__exit__
    once = _Once()

    def exit_(self, exc_type, exc, tb):
        if exc_type is None:
            head = self.head()[0]
            if once(head == height):
                self.txn.abort()
                raise lmdb.MapFullError(f"injected: the commit of block {head} failed")
        return original(self, exc_type, exc, tb)
    BlockWriter.__exit__ = exit_


def checkpoint(height: int) -> None:
    """(c) The driver fails in its checkpoint step: keeping the first stable checkpoint
    at or above `height` raises, after the round's committed batches were taken out of
    the replica and executed."""
    _patch_before(Executor, "keep_checkpoint",
                  lambda self, cp: cp.height >= height,
                  lambda self, cp: AssertionError(
                      f"injected: keeping checkpoint {cp.height} failed"))


def ticker(height: int) -> None:
    """(d) The ticker task itself dies (outside any driver step): reading the clock
    raises once the validator has executed `height` blocks."""
    clock = runtime._now_ms
    once = _Once()

    def now_ms() -> int:
        if once(_height() >= height):
            raise RuntimeError(f"injected: the ticker's clock failed at height {_height()}")
        return clock()
    runtime._now_ms = now_ms


def reader(height: int) -> None:
    """(e) A bug in the peer transport's read loop (not the peer's input): reading a
    frame raises an unexpected exception once the validator has executed `height`
    blocks."""
    _patch_before(Link, "receive", lambda self, stream: _height() >= height,
                  lambda self, stream: KeyError(
                      f"injected: a bug in the read loop at height {_height()}"))


def garbage(height: int) -> None:
    """Not a failure of this validator: from `height` on it sends its peers a frame that
    does not parse with every message it sends them all (bad peer input for them, which
    must not stop them)."""
    original = Validator.send

    def send(self, to, message) -> None:
        original(self, to, message)
        if to is None and _height() >= height:
            for key in self.consensus_config.validators:
                peer = self.transport.index_of(key)
                if key != self.keypair.public and peer is not None:
                    self.transport.send(peer, bytes([peering.CONSENSUS]) + b"\xc1 not msgpack")
    Validator.send = send


def supervisor(height: int) -> None:
    """(f) The gateway supervisor dies: starting a gateway process again (after one died)
    raises. The test kills a gateway process to make the supervisor restart it."""
    original = gateways.Gateways._spawn
    started: set[int] = set()

    async def spawn(self, worker: int):
        if worker in started:
            raise RuntimeError(f"injected: the gateway supervisor failed restarting "
                               f"gateway-{worker}")
        started.add(worker)
        return await original(self, worker)
    gateways.Gateways._spawn = spawn


def link(height: int) -> None:
    """(f) A bug while serving one gateway's connection (not inside a driver step):
    answering a gateway's request raises once the validator has executed `height`
    blocks."""
    _patch_before(LinkServer, "_answer", lambda self, *request: _height() >= height,
                  lambda self, *request: RuntimeError(
                      f"injected: a bug answering a gateway at height {_height()}"))


FAULTS = {f.__name__: f for f in (invariant, submission, persist, commit, checkpoint,
                                  ticker, reader, garbage, supervisor, link)}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0].partition(":")[0] not in FAULTS:
        print(f"usage: faulty_node {{{','.join(FAULTS)}}}[:HEIGHT] DIR/NAME",
              file=sys.stderr)
        return 2
    name, _, height = argv[0].partition(":")
    _remember_the_validator()
    FAULTS[name](int(height or 0))
    return cli.main(["node", "run", argv[1]])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
