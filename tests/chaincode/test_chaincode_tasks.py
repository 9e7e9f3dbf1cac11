"""The task lifecycle: post, claim, withdraw, submit, approve, reject, cancel, expiry."""
from __future__ import annotations

from chaincode import queries
from chaincode_harness import ADMIN, DAY_MS, HOUR_MS, Chain, key


def _reserved(chain, citizen):
    return queries.earnings(chain.state, citizen, chain.time_ms)["month"]["reserved"]


def test_post_opens_a_task_and_announces_it():
    chain = Chain()
    deadline = chain.time_ms + DAY_MS
    result = chain.post("litter-1", reward=1000, minutes=120, slots=3, deadline=deadline)
    assert result.events == [{"kind": "task.posted", "task": "litter-1",
                              "title": "Litter walk", "area": "GMS",
                              "domain": "public-space", "reward": 1000, "minutes": 120,
                              "slots": 3, "deadline": deadline}]
    task = queries.task(chain.state, "litter-1", chain.time_ms)
    assert (task["status"], task["taken"]) == ("open", 0)


def test_task_id_is_used_once():
    chain = Chain()
    chain.post("t1")
    assert chain.post("t1").code == "exists"


def test_post_with_deadline_not_after_block_time_is_deadline_passed():
    chain = Chain()
    assert chain.post("t1", deadline=chain.time_ms).code == "deadline_passed"
    assert chain.post("t2", deadline=chain.time_ms + 1).code == "ok"


def test_post_that_breaks_the_21plus_hourly_cap_is_hourly_rate_exceeded():
    chain = Chain()   # 2025: 5.60 an hour for 21 and over
    result = chain.post("t1", reward=1121, minutes=120)
    assert (result.code, result.info) == ("hourly_rate_exceeded",
                                          {"band": "21plus", "max_reward": 1120})
    assert chain.post("t2", reward=1120, minutes=120).code == "ok"


def test_only_admins_post_and_cancel():
    chain = Chain()
    reviewer = chain.member("rev", "reviewer")
    assert chain.do(reviewer, "task.post", task="t", title="x", area="GMS", domain="care",
                    reward=1, minutes=1, slots=1, deadline=chain.time_ms + 1).code == "unauthorized"
    chain.post("t1")
    assert chain.do(reviewer, "task.cancel", task="t1").code == "unauthorized"


def test_claim_takes_a_slot_and_reserves_the_reward():
    chain = Chain()
    anna = chain.citizen("anna")
    chain.post("t1", reward=800)
    result = chain.ok(anna, "task.claim", task="t1")
    assert result.events == [{"kind": "task.claimed", "task": "t1", "citizen": anna,
                              "reserved": 800}]
    assert queries.task(chain.state, "t1", chain.time_ms)["taken"] == 1
    assert _reserved(chain, anna) == 800


def test_claim_on_unknown_task_is_not_found():
    chain = Chain()
    anna = chain.citizen("anna")
    assert chain.do(anna, "task.claim", task="nope").code == "not_found"


def test_only_citizens_claim():
    chain = Chain()
    shop = chain.merchant("shop")
    chain.post("t1")
    assert chain.do(shop, "task.claim", task="t1").code == "unauthorized"
    assert chain.do(ADMIN, "task.claim", task="t1").code == "unauthorized"


def test_one_unresolved_claim_per_citizen_and_task():
    chain = Chain()
    anna = chain.citizen("anna")
    chain.post("t1")
    chain.ok(anna, "task.claim", task="t1")
    assert chain.do(anna, "task.claim", task="t1").code == "exists"
    chain.ok(anna, "task.submit", task="t1", proof=bytes(32))
    assert chain.do(anna, "task.claim", task="t1").code == "exists"


def test_claim_again_after_withdrawal_and_rejection_but_never_after_approval():
    chain = Chain()
    anna = chain.citizen("anna")
    chain.post("t1")
    chain.ok(anna, "task.claim", task="t1")
    chain.ok(anna, "task.withdraw", task="t1")
    chain.ok(anna, "task.claim", task="t1")
    chain.ok(anna, "task.submit", task="t1", proof=bytes(32))
    chain.ok(ADMIN, "task.reject", task="t1", citizen=anna, reason="blurry photo")
    chain.ok(anna, "task.claim", task="t1")
    chain.ok(anna, "task.submit", task="t1", proof=bytes(32))
    chain.ok(ADMIN, "task.approve", task="t1", citizen=anna)
    assert chain.do(anna, "task.claim", task="t1").code == "invalid_state"


def test_claim_on_a_cancelled_task_is_invalid_state():
    chain = Chain()
    anna = chain.citizen("anna")
    chain.post("t1")
    chain.ok(ADMIN, "task.cancel", task="t1")
    assert chain.do(anna, "task.claim", task="t1").code == "invalid_state"


def test_claim_at_or_after_the_deadline_is_deadline_passed():
    chain = Chain()
    anna = chain.citizen("anna")
    chain.post("t1", deadline=chain.time_ms + HOUR_MS)
    chain.run([], chain.time_ms + HOUR_MS)
    assert chain.do(anna, "task.claim", task="t1").code == "deadline_passed"


def test_slots_are_never_over_taken():
    chain = Chain()
    a, b, c = chain.citizen("a"), chain.citizen("b"), chain.citizen("c")
    chain.post("t1", slots=2)
    chain.ok(a, "task.claim", task="t1")
    chain.ok(b, "task.claim", task="t1")
    assert chain.do(c, "task.claim", task="t1").code == "task_full"
    chain.ok(a, "task.withdraw", task="t1")          # a withdrawal frees the slot
    chain.ok(c, "task.claim", task="t1")


def test_approved_and_submitted_claims_keep_their_slots():
    chain = Chain()
    a, b, c = chain.citizen("a"), chain.citizen("b"), chain.citizen("c")
    chain.post("t1", slots=2)
    for k in (a, b):
        chain.ok(k, "task.claim", task="t1")
        chain.ok(k, "task.submit", task="t1", proof=bytes(32))
    chain.ok(ADMIN, "task.approve", task="t1", citizen=a)
    assert chain.do(c, "task.claim", task="t1").code == "task_full"
    chain.ok(ADMIN, "task.reject", task="t1", citizen=b, reason="not done")
    chain.ok(c, "task.claim", task="t1")


def test_claim_that_breaks_the_citizens_band_is_hourly_rate_exceeded():
    chain = Chain()
    young = chain.citizen("young", band="under21")
    chain.post("t1", reward=1000, minutes=120)        # 5.00/h: fine for 21plus only
    result = chain.do(young, "task.claim", task="t1")
    assert (result.code, result.info) == ("hourly_rate_exceeded",
                                          {"band": "under21", "max_reward": 660})


def test_withdraw_releases_the_slot_and_the_reservation():
    chain = Chain()
    anna = chain.citizen("anna")
    chain.post("t1", reward=900)
    chain.ok(anna, "task.claim", task="t1")
    result = chain.ok(anna, "task.withdraw", task="t1")
    assert result.events == [{"kind": "task.withdrawn", "task": "t1", "citizen": anna}]
    assert _reserved(chain, anna) == 0
    assert queries.task(chain.state, "t1", chain.time_ms)["taken"] == 0


def test_withdraw_without_an_unresolved_claim_is_not_found():
    chain = Chain()
    anna = chain.citizen("anna")
    chain.post("t1")
    assert chain.do(anna, "task.withdraw", task="t1").code == "not_found"
    assert chain.do(anna, "task.withdraw", task="nope").code == "not_found"


def test_withdrawing_a_submitted_claim_is_invalid_state():
    chain = Chain()
    anna = chain.citizen("anna")
    chain.post("t1")
    chain.ok(anna, "task.claim", task="t1")
    chain.ok(anna, "task.submit", task="t1", proof=bytes(32))
    assert chain.do(anna, "task.withdraw", task="t1").code == "invalid_state"


def test_submit_records_the_proof_and_keeps_the_reservation():
    chain = Chain()
    anna = chain.citizen("anna")
    chain.post("t1", reward=700)
    chain.ok(anna, "task.claim", task="t1")
    proof = bytes(range(32))
    result = chain.ok(anna, "task.submit", task="t1", proof=proof)
    assert result.events == [{"kind": "task.submitted", "task": "t1", "citizen": anna,
                              "proof": proof}]
    assert _reserved(chain, anna) == 700


def test_submit_needs_a_32_byte_proof():
    chain = Chain()
    anna = chain.citizen("anna")
    chain.post("t1")
    chain.ok(anna, "task.claim", task="t1")
    assert chain.do(anna, "task.submit", task="t1", proof=bytes(31)).code == "invalid_args"
    assert chain.do(anna, "task.submit", task="t1", proof="00" * 32).code == "invalid_args"


def test_submit_without_a_claim_is_not_found_and_twice_is_invalid_state():
    chain = Chain()
    anna = chain.citizen("anna")
    chain.post("t1")
    assert chain.do(anna, "task.submit", task="t1", proof=bytes(32)).code == "not_found"
    chain.ok(anna, "task.claim", task="t1")
    chain.ok(anna, "task.submit", task="t1", proof=bytes(32))
    assert chain.do(anna, "task.submit", task="t1", proof=bytes(32)).code == "invalid_state"


def test_unsubmitted_claim_expires_at_the_deadline_and_reserves_nothing():
    chain = Chain()
    anna = chain.citizen("anna")
    chain.post("t1", reward=600, deadline=chain.time_ms + HOUR_MS)
    chain.ok(anna, "task.claim", task="t1")
    assert _reserved(chain, anna) == 600
    chain.run([], chain.time_ms + HOUR_MS)
    assert _reserved(chain, anna) == 0
    assert chain.do(anna, "task.submit", task="t1", proof=bytes(32)).code == "deadline_passed"
    assert chain.do(anna, "task.withdraw", task="t1").code == "not_found"
    claims = queries.task(chain.state, "t1", chain.time_ms, with_claims=True)["claims"]
    assert [c["state"] for c in claims] == ["expired"]
    assert queries.task(chain.state, "t1", chain.time_ms)["status"] == "closed"


def test_submitted_claim_stays_approvable_after_the_deadline():
    chain = Chain()
    anna = chain.citizen("anna")
    chain.post("t1", reward=600, deadline=chain.time_ms + HOUR_MS)
    chain.ok(anna, "task.claim", task="t1")
    chain.ok(anna, "task.submit", task="t1", proof=bytes(32))
    chain.run([], chain.time_ms + 2 * DAY_MS)
    assert _reserved(chain, anna) == 600
    chain.ok(ADMIN, "task.approve", task="t1", citizen=anna)
    assert chain.balance(anna) == 600


def test_approve_mints_the_reward_and_counts_it_as_earned():
    chain = Chain()
    anna = chain.citizen("anna")
    reviewer = chain.member("rev", "reviewer")
    chain.post("t1", reward=1000)
    chain.ok(anna, "task.claim", task="t1")
    chain.ok(anna, "task.submit", task="t1", proof=bytes(32))
    result = chain.ok(reviewer, "task.approve", task="t1", citizen=anna)
    assert result.events == [{"kind": "task.approved", "task": "t1", "citizen": anna,
                              "minted": 1000}]
    month = queries.earnings(chain.state, anna, chain.time_ms)["month"]
    assert (month["earned"], month["reserved"], month["period"]) == (1000, 0, "2025-06")
    assert queries.totals(chain.state) == {"minted": 1000, "redeemed": 0, "circulating": 1000}


def test_approving_an_open_or_approved_claim_is_invalid_state():
    chain = Chain()
    anna = chain.citizen("anna")
    chain.post("t1")
    chain.ok(anna, "task.claim", task="t1")
    assert chain.do(ADMIN, "task.approve", task="t1", citizen=anna).code == "invalid_state"
    chain.ok(anna, "task.submit", task="t1", proof=bytes(32))
    chain.ok(ADMIN, "task.approve", task="t1", citizen=anna)
    assert chain.do(ADMIN, "task.approve", task="t1", citizen=anna).code == "invalid_state"


def test_approve_of_unknown_task_citizen_or_claim_is_not_found():
    chain = Chain()
    anna = chain.citizen("anna")
    chain.post("t1")
    assert chain.do(ADMIN, "task.approve", task="x", citizen=anna).code == "not_found"
    assert chain.do(ADMIN, "task.approve", task="t1", citizen=key("x")).code == "not_found"
    assert chain.do(ADMIN, "task.approve", task="t1", citizen=anna).code == "not_found"


def test_work_of_a_revoked_citizen_cannot_be_approved_until_recovered():
    chain = Chain()
    anna = chain.citizen("anna")
    chain.post("t1")
    chain.ok(anna, "task.claim", task="t1")
    chain.ok(anna, "task.submit", task="t1", proof=bytes(32))
    chain.ok(ADMIN, "member.revoke", key=anna)
    assert chain.do(ADMIN, "task.approve", task="t1", citizen=anna).code == "revoked"
    new = key("anna-2")
    chain.governed_ok("member.recover", old=anna, new=new)
    assert chain.do(ADMIN, "task.approve", task="t1", citizen=anna).code == "revoked"
    chain.ok(ADMIN, "task.approve", task="t1", citizen=new)


def test_revoked_citizen_is_named_before_an_unauthorized_signer():
    chain = Chain()
    anna, bert = chain.citizen("anna"), chain.citizen("bert")
    chain.ok(ADMIN, "member.revoke", key=anna)
    assert chain.do(bert, "task.approve", task="t1", citizen=anna).code == "revoked"
    assert chain.do(bert, "task.approve", task="t1", citizen=bert).code == "unauthorized"


def test_citizens_and_merchants_cannot_approve_or_reject():
    chain = Chain()
    anna, shop = chain.citizen("anna"), chain.merchant("shop")
    for signer in (anna, shop):
        assert chain.do(signer, "task.approve", task="t", citizen=anna).code == "unauthorized"
        assert chain.do(signer, "task.reject", task="t", citizen=anna,
                        reason="x").code == "unauthorized"


def test_reject_releases_the_claim_and_its_reservation():
    chain = Chain()
    anna = chain.citizen("anna")
    chain.post("t1", reward=500, slots=1)
    chain.ok(anna, "task.claim", task="t1")
    chain.ok(anna, "task.submit", task="t1", proof=bytes(32))
    result = chain.ok(ADMIN, "task.reject", task="t1", citizen=anna, reason="no photo")
    assert result.events == [{"kind": "task.rejected", "task": "t1", "citizen": anna,
                              "reason": "no photo"}]
    assert _reserved(chain, anna) == 0
    assert queries.task(chain.state, "t1", chain.time_ms)["taken"] == 0


def test_rejecting_an_open_claim_is_invalid_state():
    chain = Chain()
    anna = chain.citizen("anna")
    chain.post("t1")
    chain.ok(anna, "task.claim", task="t1")
    assert chain.do(ADMIN, "task.reject", task="t1", citizen=anna,
                    reason="x").code == "invalid_state"


def test_reason_is_1_to_280_characters():
    chain = Chain()
    anna = chain.citizen("anna")
    assert chain.do(ADMIN, "task.reject", task="t1", citizen=anna,
                    reason="").code == "invalid_args"
    assert chain.do(ADMIN, "task.reject", task="t1", citizen=anna,
                    reason="é" * 281).code == "invalid_args"
    assert chain.do(ADMIN, "task.reject", task="t1", citizen=anna,
                    reason="é" * 280).code == "not_found"


def test_cancel_releases_open_claims_and_keeps_submitted_work_approvable():
    chain = Chain()
    a, b, c = chain.citizen("a"), chain.citizen("b"), chain.citizen("c")
    chain.post("t1", reward=400)
    for k in (a, b, c):
        chain.ok(k, "task.claim", task="t1")
    chain.ok(b, "task.submit", task="t1", proof=bytes(32))
    result = chain.ok(ADMIN, "task.cancel", task="t1")
    assert result.events == [{"kind": "task.cancelled", "task": "t1",
                              "released": sorted([a, c])}]
    assert _reserved(chain, a) == 0 and _reserved(chain, b) == 400
    assert queries.task(chain.state, "t1", chain.time_ms)["status"] == "cancelled"
    assert chain.do(a, "task.submit", task="t1", proof=bytes(32)).code == "not_found"
    chain.ok(ADMIN, "task.approve", task="t1", citizen=b)
    assert chain.balance(b) == 400


def test_cancel_twice_is_invalid_state_and_unknown_is_not_found():
    chain = Chain()
    chain.post("t1")
    chain.ok(ADMIN, "task.cancel", task="t1")
    assert chain.do(ADMIN, "task.cancel", task="t1").code == "invalid_state"
    assert chain.do(ADMIN, "task.cancel", task="t2").code == "not_found"


def test_task_ids_follow_the_id_rule():
    chain = Chain()
    for bad in ("", "a b", "x" * 65, "tâche"):
        assert chain.post(bad).code == "invalid_args"
    assert chain.post("x" * 64).code == "ok"
    assert chain.post("A.b_c-9").code == "ok"


def test_ranges_of_minutes_and_slots():
    chain = Chain()
    assert chain.post("a", minutes=0).code == "invalid_args"
    assert chain.post("b", minutes=10_081).code == "invalid_args"
    assert chain.post("c", slots=0).code == "invalid_args"
    assert chain.post("d", slots=10_001).code == "invalid_args"
    assert chain.post("e", reward=0).code == "invalid_args"
    assert chain.post("f", minutes=10_080, slots=10_000).code == "ok"
