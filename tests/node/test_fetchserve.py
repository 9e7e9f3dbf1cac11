"""The cost of peers' catch-up requests, bounded per peer (node/fetchserve.py, and the
validator's `_serve_fetch`): a budget per peer, repeats not answered again, answers made
of the stored bytes."""
from __future__ import annotations

import socket
import time

from hypothesis import given, settings, strategies as st
from structlog.testing import capture_logs

from node import config as node_config, peering
from node.envelope import sign_tx
from node.fetchserve import OVER_BUDGET, REPEAT, FetchBudget, FetchLimits
from node.keys import Keypair, read_key_file
from node.runtime import Validator
from ops import network


def test_a_peer_gets_its_burst_then_its_rate_and_others_keep_theirs():
    budget = FetchBudget(4, 0.0, FetchLimits(rate_per_s=2, burst=3, repeat_s=0.1))
    assert [budget.allow(1, h, h, 0.0) for h in range(4)] == [None, None, None, OVER_BUDGET]
    assert budget.allow(2, 1, 1, 0.0) is None               # another peer's own budget
    assert budget.allow(1, 9, 9, 0.49) == OVER_BUDGET
    assert budget.allow(1, 9, 9, 0.5) is None               # one more after half a second
    assert budget.refused[1] == {OVER_BUDGET: 2, REPEAT: 0}


def test_the_same_range_again_at_once_is_a_repeat_but_later_it_is_served():
    budget = FetchBudget(2, 0.0, FetchLimits(rate_per_s=100, burst=100, repeat_s=0.1))
    assert budget.allow(1, 5, 68, 0.0) is None
    assert budget.allow(1, 5, 68, 0.05) == REPEAT
    assert budget.allow(1, 5, 69, 0.05) is None              # a wider request is new
    assert budget.allow(1, 5, 69, 0.2) is None               # a retry after the window
    assert budget.refused[1][REPEAT] == 1


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 5), st.floats(0, 0.3)),
                max_size=300), st.integers(1, 50), st.integers(1, 20))
@settings(max_examples=100, deadline=None)
def test_no_peer_is_answered_more_than_its_burst_and_what_the_rate_refills(steps, rate, burst):
    budget = FetchBudget(4, 0.0, FetchLimits(rate_per_s=rate, burst=burst, repeat_s=0.1))
    now, answered = 0.0, [0] * 4
    for peer, height, advance in steps:
        now += advance
        if budget.allow(peer, height, height + 63, now) is None:
            answered[peer] += 1
        assert answered[peer] <= burst + now * rate + 1e-9


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_burst_of_fetch_requests_costs_one_budget_of_answers(tmp_path):
    network.init(tmp_path / "net", validators=1, base_port=_free_port())
    admin = read_key_file(tmp_path / "net" / "keys" / "admin.key")
    node = Validator(node_config.load(tmp_path / "net" / "municipality"))
    sent: list[tuple[int, bytes]] = []
    node.transport.send = lambda peer, frame: sent.append((peer, frame))
    try:
        node.driver.submit([node.door.inspect([sign_tx(
            admin, node.chain, "member.register", {"key": Keypair.generate().public,
                                                   "role": "citizen", "age_band": "21plus",
                                                   "area": "GMS"})])[0]])
        for tick in range(20):              # the primary waits a few ticks for more
            node.driver.tick(1_790_000_000_000 + 10 * tick)
        assert node.store.head()[0] == 1
        started = time.monotonic()
        node.fetch_budget = FetchBudget(1, started)  # the peer of index 0, as if it asked
        with capture_logs() as logs:
            for k in range(20_000):
                node._on_frame(0, peering.fetch_frame(1, 1 + k % 64))
        elapsed = time.monotonic() - started
        limits = node.fetch_budget.limits
        assert 1 <= len(sent) <= limits.burst + limits.rate_per_s * elapsed + 1
        kind, records = peering.parse(sent[0][1], 1 << 24)
        assert kind == peering.BLOCKS and records == [node.store.block(1)]
        assert node.store.raw_blocks(1, 64, 1) == [node.store.block(1).encode()]
        refused = [e for e in logs if e["event"] == "fetch_refused"]
        assert 1 <= len(refused) <= 2                       # sampled, not one per request
        assert sum(node.fetch_budget.refused[0].values()) == 20_000 - len(sent)
    finally:
        node.store.close()
