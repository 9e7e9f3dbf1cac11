"""Forwards stay within a batch's bounds (count and bytes), so a forward always fits in a
frame when a full batch's pre-prepare does. Without the byte bound a member's large
envelopes, re-forwarded a thousand at a time, made a message over the frame limit, and
the transport's refusal to send it stopped the validator."""
from __future__ import annotations

from hypothesis import given, strategies as st

from consensus.config import Config
from consensus.messages import Forward
from consensus.ordering import acceptable_forward, forward_runs
from tests.consensus.cluster import Cluster

PAD = b"x" * 200        # each request's payload is about 211 bytes


@given(sizes=st.lists(st.integers(1, 60), max_size=60), count=st.integers(1, 8),
       extra=st.integers(0, 200))
def test_forward_runs_keep_every_payload_in_order_within_both_bounds(sizes, count, extra):
    config = Config(chain="t", validators=(bytes(32),), batch_max_count=count,
                    batch_max_bytes=60 + extra)
    payloads = [bytes([i % 251]) * size for i, size in enumerate(sizes)]
    runs = forward_runs(config, payloads)
    assert [p for run in runs for p in run] == payloads
    for run in runs:
        assert run and len(run) <= count and sum(map(len, run)) <= config.batch_max_bytes
        assert acceptable_forward(config, run)


def _forwards(c: Cluster, sender: int) -> list[Forward]:
    return [m for _, s, m in c.timeline if s == sender and type(m) is Forward]


def test_a_backup_forwards_a_large_submission_in_runs_within_the_byte_bound():
    c = Cluster(batch_max_count=10, batch_max_bytes=1_000)
    c.cut = {0}             # the primary hears nothing: only the forwards are looked at
    requests = [c.registry.make(k, PAD) for k in range(10)]
    c.drivers[1].submit(requests)
    forwards = _forwards(c, 1)
    assert len(forwards) > 1
    assert all(sum(map(len, f.payloads)) <= 1_000 for f in forwards)
    assert [p for f in forwards for p in f.payloads] == [r.payload for r in requests]


def test_a_waiting_pool_is_forwarded_again_within_the_byte_bound():
    c = Cluster(batch_max_count=10, batch_max_bytes=1_000, request_timeout_ticks=40,
                view_change_timeout_ticks=40, status_interval_ticks=2)
    c.cut = {0}
    c.drivers[1].submit([c.registry.make(k, PAD) for k in range(10)])
    first = len(_forwards(c, 1))
    c.tick(39)
    again = _forwards(c, 1)[first:]
    assert again and all(sum(map(len, f.payloads)) <= 1_000 for f in again)


def test_a_forward_over_the_byte_bound_is_not_taken():
    c = Cluster(batch_max_count=10, batch_max_bytes=1_000)
    big = [c.registry.make(k, PAD) for k in range(6)]
    c.drivers[2].receive(1, Forward(tuple(r.payload for r in big)))
    assert c.replica(2).pending_count == 0
    c.drivers[2].receive(1, Forward(tuple(r.payload for r in big[:4])))
    assert c.replica(2).pending_count == 4
