"""consensus/driver.py fails stop: the first exception out of a step (here a ledger error
half way through a flush, or a failure in its checkpoint step) is kept and reported once
through `on_failure` before it propagates, and every later step, by whichever input,
raises `Halted` without touching the replica, the storage, the network or the ledger."""
from __future__ import annotations

import pytest

from consensus.api import CommittedBatch, Ready, StableCheckpoint
from consensus.driver import Driver, Halted


def _batch(height: int) -> CommittedBatch:
    return CommittedBatch(height, 0, 1000 + height, bytes(32), (), ())


class _Replica:
    """Hands out one prepared Ready, then empty ones; counts every call it gets."""
    set_over = False

    def __init__(self, ready: Ready):
        self.ready, self.calls, self.committed_height = ready, [], 0

    def take_ready(self) -> Ready:
        ready, self.ready = self.ready, Ready()
        return ready

    def __getattr__(self, name):
        def call(*args):
            self.calls.append(name)
            return [True] * len(args[0]) if name == "submit" else None
        return call


class _Ledger:
    def __init__(self, fail_at: int | None = None, fail_checkpoint: bool = False):
        self.fail_at, self.fail_checkpoint = fail_at, fail_checkpoint
        self.executed, self.kept = [], []

    def execute(self, batch: CommittedBatch) -> bytes:
        if batch.height == self.fail_at:
            raise OSError(f"disk full at {batch.height}")
        self.executed.append(batch.height)
        return bytes([batch.height]) * 32

    def next_set(self):
        return None

    def keep_checkpoint(self, checkpoint: StableCheckpoint) -> None:
        if self.fail_checkpoint:
            raise AssertionError("the checkpoint does not match the block")
        self.kept.append(checkpoint.height)


class _Sink:
    def __init__(self):
        self.written, self.sent, self.fetched = [], [], []

    def write(self, ops) -> None:
        self.written.append(ops)

    def send(self, to, message) -> None:
        self.sent.append((to, message))

    def fetch(self, request) -> None:
        self.fetched.append(request)


def _driver(ready: Ready, ledger: _Ledger):
    replica, sink, reported = _Replica(ready), _Sink(), []
    return Driver(replica, sink, sink, ledger, on_failure=reported.append), replica, \
        sink, reported


def _assert_halted(driver: Driver, replica: _Replica, sink: _Sink, ledger: _Ledger,
                   error: BaseException) -> None:
    calls, executed = list(replica.calls), list(ledger.executed)
    replica.ready = Ready(persist=[(b"k", b"v")], messages=[(None, "late")],
                          committed=[_batch(9)])
    written, sent = list(sink.written), list(sink.sent)
    for step, args in ((driver.receive, (1, "a vote")), (driver.tick, (5000,)),
                       (driver.submit, ([object()],)), (driver.flush, ()),
                       (driver.apply_fetched, ([_batch(9)],))):
        with pytest.raises(Halted) as halted:
            step(*args)
        assert halted.value.__cause__ is error
    assert replica.calls == calls and ledger.executed == executed
    assert sink.written == written and sink.sent == sent
    assert driver.failure is error


def test_a_ledger_error_half_way_through_a_flush_latches_the_driver():
    ready = Ready(persist=[(b"vote", b"1")], messages=[(None, "commit")],
                  committed=[_batch(1), _batch(2), _batch(3)],
                  checkpoints=[StableCheckpoint(1, bytes(32), bytes(32), ())])
    ledger = _Ledger(fail_at=2)
    driver, replica, sink, reported = _driver(ready, ledger)
    with pytest.raises(OSError, match="disk full at 2") as raised:
        driver.receive(1, "the last commit")
    # persisted before sending, block 1 executed and acknowledged, then the error
    assert sink.written and sink.sent and ledger.executed == [1]
    assert replica.calls == ["receive", "executed"] and not ledger.kept
    assert reported == [raised.value]
    _assert_halted(driver, replica, sink, ledger, raised.value)
    assert reported == [raised.value]         # reported once, not again per refusal


def test_a_failure_in_the_checkpoint_step_latches_the_driver():
    ready = Ready(committed=[_batch(1), _batch(2)],
                  checkpoints=[StableCheckpoint(2, bytes(32), bytes(32), ())])
    ledger = _Ledger(fail_checkpoint=True)
    driver, replica, sink, reported = _driver(ready, ledger)
    with pytest.raises(AssertionError, match="does not match") as raised:
        driver.tick(1000)
    assert ledger.executed == [1, 2] and reported == [raised.value]
    _assert_halted(driver, replica, sink, ledger, raised.value)


def test_a_driver_without_failures_runs_on():
    ready = Ready(committed=[_batch(1)], checkpoints=[StableCheckpoint(1, bytes(32), bytes(32), ())])
    ledger = _Ledger()
    driver, replica, sink, reported = _driver(ready, ledger)
    driver.tick(1000)
    driver.receive(1, "a vote")
    assert ledger.executed == [1] and ledger.kept == [1]
    assert replica.calls == ["tick", "executed", "receive"]
    assert driver.failure is None and not reported


def test_a_replica_whose_set_is_over_is_replaced_by_its_successor_and_flushed():
    """After the last height of a validator set has run, the driver takes the next set's
    replica, once, and flushes what it has to say; before that it keeps the old one."""
    old = _Replica(Ready(committed=[_batch(1)]))
    new = _Replica(Ready(messages=[(None, "status of the next set")]))
    handed: list = []

    def successor(replica):
        handed.append(replica)
        return new
    sink, ledger = _Sink(), _Ledger()
    driver = Driver(old, sink, sink, ledger, successor=successor)
    driver.tick(1000)
    assert driver.replica is old and not handed
    old.set_over = True
    driver.tick(1001)
    assert driver.replica is new and handed == [old]
    assert (None, "status of the next set") in sink.sent
    driver.tick(1002)
    assert handed == [old] and new.calls == ["tick"]


def test_a_set_that_ends_without_a_successor_stops_the_driver():
    replica = _Replica(Ready())
    replica.set_over = True
    sink = _Sink()
    driver = Driver(replica, sink, sink, _Ledger())
    with pytest.raises(AssertionError, match="no successor"):
        driver.tick(1000)
    with pytest.raises(Halted):
        driver.tick(1001)
