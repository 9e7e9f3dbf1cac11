"""The read side: InMemoryState, the buffered overlay's scans, and the queries."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from chaincode import queries
from chaincode.state import Overlay
from chaincode.queries import InMemoryState
from chaincode_harness import ADMIN, DAY_MS, STEWARD, Chain

keys_ = st.binary(min_size=1, max_size=4)
writes_ = st.dictionaries(keys_, st.one_of(st.none(), st.binary(max_size=3)), max_size=10)


def model_scan(data: dict, prefix: bytes) -> list:
    return sorted((k, v) for k, v in data.items() if k.startswith(prefix) and v is not None)


@settings(max_examples=80, deadline=None)
@given(st.lists(writes_, max_size=4), st.binary(max_size=2))
def test_in_memory_state_scans_in_ascending_key_order_after_any_writes(batches, prefix):
    state, model = InMemoryState(), {}
    for writes in batches:
        state.apply(writes)
        model.update(writes)
    assert list(state.scan(prefix)) == model_scan(model, prefix)
    assert state.items() == model_scan(model, b"")


@settings(max_examples=80, deadline=None)
@given(writes_, writes_, writes_, st.binary(max_size=2), st.booleans())
def test_overlay_sees_base_then_block_then_transaction_writes(base, block, tx, prefix, keep):
    state = InMemoryState({k: v for k, v in base.items() if v is not None})
    view = Overlay(state)
    for k, v in block.items():
        view.put(k, v)
    view.commit()
    for k, v in tx.items():
        view.put(k, v)
    expected = {k: v for k, v in base.items() if v is not None}
    expected.update(block)
    if keep:
        view.commit()
    else:
        view.discard()          # a refused transaction leaves the block's view as it was
    if keep:
        expected.update(tx)
    assert view.scan(prefix) == model_scan(expected, prefix)
    for k in set(base) | set(block) | set(tx):
        assert view.get(k) == expected.get(k)


def test_account_view_shows_role_balance_and_earnings():
    chain = Chain()
    anna = chain.citizen("anna")
    chain.earn(anna, "t1", reward=1000)
    assert queries.member(chain.state, anna)["balance"] == 1000
    earnings = queries.earnings(chain.state, anna, chain.time_ms)
    assert earnings["month"]["remaining"] == 21_000 - 1000


def test_task_view_hides_claims_unless_asked_and_lists_tasks():
    chain = Chain()
    anna = chain.citizen("anna")
    chain.post("b-task")
    chain.post("a")
    chain.ok(anna, "task.claim", task="a")
    assert "claims" not in queries.task(chain.state, "a", chain.time_ms)
    assert queries.task(chain.state, "a", chain.time_ms, with_claims=True)["claims"] == [
        {"citizen": anna, "state": "open"}]
    assert [t["task"] for t in queries.tasks(chain.state, chain.time_ms)] == ["a", "b-task"]
    assert queries.task(chain.state, "nope", chain.time_ms) is None


def test_policy_view_says_when_it_falls_back():
    chain = Chain()
    assert queries.policy_for_year(chain.state, 2025)["fallback"] is False
    assert queries.policy_for_year(chain.state, 2031)["from_year"] == 2026
    assert queries.policy_for_year(chain.state, 2020) is None


def test_views_of_unknown_things_are_none_or_empty():
    chain = Chain()
    assert queries.member(chain.state, bytes(32)) is None
    assert queries.payout(chain.state, bytes(32)) is None
    assert queries.spend(chain.state, "00" * 32) is None
    assert queries.payouts(chain.state) == []
    assert queries.executed(chain.state, "00" * 32) is False
    assert [m["key"] for m in queries.members(chain.state)] == sorted([ADMIN, STEWARD])


def test_statement_lists_the_twelve_months_of_a_year():
    chain = Chain()
    anna = chain.citizen("anna")
    chain.earn(anna, "t1", reward=500)
    chain.run([], chain.time_ms + 40 * DAY_MS)
    chain.earn(anna, "t2", reward=700)
    months = queries.statement(chain.state, anna, 2025)
    assert len(months) == 12
    assert [m["earned"] for m in months if m["earned"]] == [500, 700]
