"""The money invariants the audit follows from the events: caps per citizen and period at
every approval, and supply at the end against the state."""
from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, strategies as st

from chaincode import state as cs
from chaincode.queries import InMemoryState
from node.audit.invariants import InvariantBroken, Invariants

T = 1_740_000_000_000        # 2025-02-19, local month 2025-02
POLICY = {"year": 2025, "hourly_cap_21plus": 500, "hourly_cap_under21": 300,
          "monthly_cap": 1_000, "yearly_cap": 3_000, "programme_yearly_cap": 2_500}
A, B = b"a" * 32, b"b" * 32


def approved(citizen, minted):
    return {"kind": "task.approved", "task": "t", "citizen": citizen, "minted": minted}


def test_an_approval_above_the_monthly_cap_breaks_at_its_height():
    inv = Invariants([POLICY])
    inv.block(3, T, [approved(A, 600)])
    with pytest.raises(InvariantBroken) as broken:
        inv.block(4, T, [approved(A, 401)])
    assert broken.value.height == 4 and "2025-02" in broken.value.reason
    assert "monthly cap of 1000" in broken.value.reason


def test_the_yearly_cap_is_the_lower_of_yearly_and_programme():
    inv = Invariants([POLICY])
    month = 31 * 86_400_000
    for i in range(2):
        inv.block(i + 1, T + i * month, [approved(A, 1_000)])
    with pytest.raises(InvariantBroken, match="yearly cap of 2500"):
        inv.block(3, T + 2 * month, [approved(A, 501)])


def test_a_policy_set_in_the_log_is_the_cap_from_then_on_and_a_year_without_one_breaks():
    inv = Invariants([])
    with pytest.raises(InvariantBroken, match="no cap policy"):
        inv.block(1, T, [approved(A, 1)])
    inv = Invariants([])
    inv.block(1, T, [dict(POLICY, kind="policy.set"), approved(A, 1_000)])
    with pytest.raises(InvariantBroken, match="monthly"):
        inv.block(2, T, [approved(A, 1)])


def test_earnings_follow_a_recovered_citizen_to_the_new_key():
    inv = Invariants([POLICY])
    inv.block(1, T, [approved(A, 900), {"kind": "member.recovered", "old": A, "new": B,
                                        "balance": 900}])
    with pytest.raises(InvariantBroken, match=B.hex()):
        inv.block(2, T, [approved(B, 101)])


def _state(members: dict, minted: int, redeemed: int, earned: dict) -> InMemoryState:
    data = {cs.MINTED: msgpack.packb(minted), cs.REDEEMED: msgpack.packb(redeemed)}
    for key, balance in members.items():
        data[cs.MEMBER + key] = msgpack.packb({"role": "citizen", "active": True,
                                               "balance": balance})
    for (key, period), cents in earned.items():
        data[cs.earned_key(key, period)] = msgpack.packb(cents)
    return InMemoryState(data)


def test_supply_holds_when_members_hold_minted_minus_redeemed_and_breaks_otherwise():
    inv = Invariants([POLICY])
    inv.block(1, T, [approved(A, 700), {"kind": "coin.redeemed", "merchant": B,
                                        "amount": 200, "payout": "00" * 32}])
    earned = {(A, "2025-02"): 700, (A, "2025"): 700}
    totals = inv.finish(1, _state({A: 400, B: 100}, 700, 200, earned))
    assert (totals["minted"], totals["redeemed"], totals["circulating"]) == (700, 200, 500)
    with pytest.raises(InvariantBroken, match="members hold 501"):
        inv.finish(1, _state({A: 401, B: 100}, 700, 200, earned))
    with pytest.raises(InvariantBroken, match="state's totals"):
        inv.finish(1, _state({A: 400, B: 100}, 701, 200, earned))
    with pytest.raises(InvariantBroken, match="earnings"):
        inv.finish(1, _state({A: 400, B: 100}, 700, 200, {(A, "2025-02"): 700}))


@given(st.lists(st.tuples(st.sampled_from([A, B]), st.integers(1, 600)), max_size=12))
def test_the_cap_check_breaks_exactly_when_a_running_monthly_total_passes_the_cap(approvals):
    inv = Invariants([POLICY])
    totals = {A: 0, B: 0}
    for height, (citizen, minted) in enumerate(approvals, 1):
        totals[citizen] += minted
        if totals[citizen] > POLICY["monthly_cap"]:
            with pytest.raises(InvariantBroken) as broken:
                inv.block(height, T, [approved(citizen, minted)])
            assert broken.value.height == height
            return
        inv.block(height, T, [approved(citizen, minted)])
    assert inv.minted == sum(totals.values())
