"""Earning caps: reservations at claim, earnings at approval, the tightest cap named."""
from __future__ import annotations

from chaincode import queries
from chaincode_harness import ADMIN, DAY_MS, HOUR_MS, Chain

# A policy with small round numbers: 10.00 a month, 30.00 a year, 25.00 programme.
SMALL = dict(year=2025, hourly_cap_21plus=10_000, hourly_cap_under21=10_000,
             monthly_cap=1000, yearly_cap=3000, programme_yearly_cap=2500)
# 2025-01-15T12:00:00Z
T_JAN = 1_736_942_400_000


def small_chain(time_ms: int = T_JAN, **changes) -> Chain:
    return Chain(policies=[dict(SMALL, **changes)], time_ms=time_ms)


def test_claim_beyond_the_monthly_cap_is_refused_with_cap_period_and_allowed():
    chain = small_chain()
    anna = chain.citizen("anna")
    chain.earn(anna, "t1", reward=600)
    chain.post("t2", reward=300)
    chain.ok(anna, "task.claim", task="t2")            # 600 earned + 300 reserved
    chain.post("t3", reward=200)
    result = chain.do(anna, "task.claim", task="t3")
    assert (result.code, result.info) == ("cap_exceeded", {"cap": "monthly",
                                                           "period": "2025-01",
                                                           "allowed": 100})


def test_claim_that_fits_exactly_is_accepted():
    chain = small_chain()
    anna = chain.citizen("anna")
    chain.earn(anna, "t1", reward=600)
    chain.post("t2", reward=400)
    chain.ok(anna, "task.claim", task="t2")


def test_yearly_limit_is_the_lower_of_yearly_and_programme_and_named_programme():
    chain = small_chain()
    anna = chain.citizen("anna")
    # Earn 1000 in each of Jan and Feb (the monthly cap), then ask for 600 in March.
    chain.earn(anna, "jan", reward=1000)
    chain.run([], T_JAN + 31 * DAY_MS)
    chain.earn(anna, "feb", reward=1000)
    chain.run([], T_JAN + 59 * DAY_MS)
    chain.post("mar", reward=600)
    result = chain.do(anna, "task.claim", task="mar")
    assert (result.code, result.info) == ("cap_exceeded", {"cap": "programme",
                                                           "period": "2025",
                                                           "allowed": 500})


def test_without_programme_cap_the_yearly_cap_is_named():
    policy = {k: v for k, v in SMALL.items() if k != "programme_yearly_cap"}
    chain = Chain(policies=[dict(policy, yearly_cap=1500)], time_ms=T_JAN)
    anna = chain.citizen("anna")
    chain.earn(anna, "jan", reward=1000)
    chain.run([], T_JAN + 31 * DAY_MS)
    chain.post("feb", reward=600)
    result = chain.do(anna, "task.claim", task="feb")
    assert result.info == {"cap": "yearly", "period": "2025", "allowed": 500}


def test_the_cap_with_least_room_is_named_and_ties_go_monthly_first():
    # Programme cap 20.00: after 10.00 in January and 2.50 in February, both the month
    # and the programme have 7.50 left; a claim of 8.00 fails both, and monthly is named.
    chain = small_chain(time_ms=T_JAN - 14 * DAY_MS, programme_yearly_cap=2000)
    anna = chain.citizen("anna")
    chain.earn(anna, "a", reward=1000)
    chain.run([], T_JAN + 20 * DAY_MS)   # 2025-02-04
    chain.earn(anna, "b", reward=250)
    chain.post("c", reward=800)
    assert chain.do(anna, "task.claim", task="c").info == {
        "cap": "monthly", "period": "2025-02", "allowed": 750}
    # A tie between yearly and programme (equal caps, both used up): yearly is named.
    chain2 = small_chain(programme_yearly_cap=3000)
    bert = chain2.citizen("bert")
    for month in range(3):
        chain2.run([], T_JAN + month * 31 * DAY_MS)
        chain2.earn(bert, f"m{month}", reward=1000)
    chain2.run([], T_JAN + 3 * 31 * DAY_MS)
    chain2.post("x", reward=1)
    assert chain2.do(bert, "task.claim", task="x").info == {
        "cap": "yearly", "period": "2025", "allowed": 0}


def test_the_tighter_of_two_failing_caps_is_named():
    # March: the month has 10.00 left but the programme only 5.00; both fail for 12.00.
    chain = small_chain(time_ms=T_JAN)
    anna = chain.citizen("anna")
    chain.earn(anna, "jan", reward=1000)
    chain.run([], T_JAN + 31 * DAY_MS)
    chain.earn(anna, "feb", reward=1000)
    chain.run([], T_JAN + 59 * DAY_MS)
    chain.post("mar", reward=1200, minutes=600)
    assert chain.do(anna, "task.claim", task="mar").info == {
        "cap": "programme", "period": "2025", "allowed": 500}


def test_allowed_is_never_below_zero_after_a_cap_is_lowered():
    chain = small_chain()
    anna = chain.citizen("anna")
    chain.earn(anna, "t1", reward=900)
    chain.governed_ok("policy.set", **dict(SMALL, monthly_cap=500))
    chain.post("t2", reward=10)
    assert chain.do(anna, "task.claim", task="t2").info == {
        "cap": "monthly", "period": "2025-01", "allowed": 0}


def test_lowering_a_cap_affects_later_mints_only():
    chain = small_chain()
    anna = chain.citizen("anna")
    chain.post("t1", reward=800)
    chain.ok(anna, "task.claim", task="t1")
    chain.ok(anna, "task.submit", task="t1", proof=bytes(32))
    chain.governed_ok("policy.set", **dict(SMALL, monthly_cap=700))
    result = chain.do(ADMIN, "task.approve", task="t1", citizen=anna)
    assert (result.code, result.info) == ("cap_exceeded", {"cap": "monthly",
                                                           "period": "2025-01",
                                                           "allowed": 700})
    # The work stays submitted: once the cap rises again it can be approved.
    chain.governed_ok("policy.set", **SMALL)
    chain.ok(ADMIN, "task.approve", task="t1", citizen=anna)


def test_approval_in_a_month_whose_cap_is_used_waits_for_the_next_month():
    chain = small_chain()
    anna = chain.citizen("anna")
    chain.post("late", reward=500, deadline=T_JAN + 60 * DAY_MS)
    chain.ok(anna, "task.claim", task="late")
    chain.ok(anna, "task.submit", task="late", proof=bytes(32))
    # The reservation counts against claims: earning 600 more this month is refused.
    chain.post("x", reward=600)
    assert chain.do(anna, "task.claim", task="x").code == "cap_exceeded"
    chain.post("y", reward=500)
    chain.ok(anna, "task.claim", task="y")
    chain.ok(anna, "task.submit", task="y", proof=bytes(32))
    chain.ok(ADMIN, "task.approve", task="y", citizen=anna)
    # With the monthly cap lowered to 9.00, January has 4.00 left: "late" must wait.
    chain.governed_ok("policy.set", **dict(SMALL, monthly_cap=900))
    result = chain.do(ADMIN, "task.approve", task="late", citizen=anna)
    assert result.info == {"cap": "monthly", "period": "2025-01", "allowed": 400}
    chain.run([], T_JAN + 20 * DAY_MS)          # 2025-02-04
    chain.ok(ADMIN, "task.approve", task="late", citizen=anna)
    assert queries.statement(chain.state, anna, 2025)[:2] == [
        {"period": "2025-01", "earned": 500}, {"period": "2025-02", "earned": 500}]


def test_expired_claims_stop_reserving_so_the_citizen_can_claim_again():
    chain = small_chain()
    anna = chain.citizen("anna")
    chain.post("t1", reward=1000, deadline=T_JAN + HOUR_MS)
    chain.ok(anna, "task.claim", task="t1")
    chain.post("t2", reward=1000, deadline=T_JAN + DAY_MS)
    assert chain.do(anna, "task.claim", task="t2").code == "cap_exceeded"
    chain.run([], T_JAN + HOUR_MS)
    chain.ok(anna, "task.claim", task="t2")


def test_month_of_a_mint_is_the_amsterdam_month():
    # 2025-01-31T23:30Z is 1 February 00:30 in Amsterdam.
    chain = small_chain(time_ms=1_738_366_200_000)
    anna = chain.citizen("anna")
    chain.earn(anna, "t1", reward=100)
    assert queries.statement(chain.state, anna, 2025)[1] == {"period": "2025-02", "earned": 100}


def test_new_year_in_amsterdam_starts_the_yearly_count_again():
    policies = [SMALL, dict(SMALL, year=2026)]
    chain = Chain(policies=policies, time_ms=1_767_222_000_000 - HOUR_MS)  # 2025-12-31 23:00 local
    anna = chain.citizen("anna")
    chain.earn(anna, "t1", reward=1000)
    chain.run([], 1_767_222_000_000)        # 2026-01-01 00:00 local (23:00Z)
    assert queries.earnings(chain.state, anna, chain.time_ms)["year"] == {
        "period": "2026", "earned": 0, "reserved": 0, "cap": 2500, "remaining": 2500}
    chain.earn(anna, "t2", reward=1000)


def test_no_policy_at_or_before_the_year_refuses_posting():
    # Claims and approvals need a posted task, and posting already needs a policy at or
    # before the block's year; block times never go back, so posting is where it shows.
    chain = Chain(policies=[dict(SMALL, year=2026)], time_ms=T_JAN)
    assert chain.post("t1", reward=100).code == "invalid_state"
    chain.run([], T_JAN + 365 * DAY_MS)      # 2026
    assert chain.post("t1", reward=100).code == "ok"


def test_earnings_view_reports_cap_and_remaining():
    chain = small_chain()
    anna = chain.citizen("anna")
    chain.earn(anna, "t1", reward=300)
    chain.post("t2", reward=200)
    chain.ok(anna, "task.claim", task="t2")
    assert queries.earnings(chain.state, anna, chain.time_ms) == {
        "month": {"period": "2025-01", "earned": 300, "reserved": 200, "cap": 1000,
                  "remaining": 500},
        "year": {"period": "2025", "earned": 300, "reserved": 200, "cap": 2500,
                 "remaining": 2000}}
