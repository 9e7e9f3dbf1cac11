"""member.register, member.update, member.revoke, member.recover and policy.set."""
from __future__ import annotations

from chaincode import queries
from chaincode_harness import ADMIN, DAY_MS, T_JUNE_2025, Chain, key


def test_admin_registers_citizen_with_band_and_area_and_event_names_them():
    chain = Chain()
    k = key("anna")
    result = chain.ok(ADMIN, "member.register", key=k, role="citizen", age_band="under21",
                      area="BU09170000")
    assert result.events == [{"kind": "member.registered", "key": k, "role": "citizen",
                              "age_band": "under21", "area": "BU09170000"}]
    assert queries.member(chain.state, k) == {"key": k, "role": "citizen", "active": True,
                                            "balance": 0, "age_band": "under21",
                                            "area": "BU09170000"}


def test_merchant_carries_a_public_name():
    chain = Chain()
    k = chain.merchant("Bakkerij Erens")
    assert queries.member(chain.state, k)["name"] == "Bakkerij Erens"


def test_register_needs_exactly_the_attributes_of_the_role():
    chain = Chain()
    assert chain.do(ADMIN, "member.register", key=key("a"), role="citizen",
                    area="GMS").code == "invalid_args"
    assert chain.do(ADMIN, "member.register", key=key("b"), role="merchant").code == "invalid_args"
    assert chain.do(ADMIN, "member.register", key=key("c"), role="reviewer",
                    name="x").code == "invalid_args"
    assert chain.do(ADMIN, "member.register", key=key("d"), role="king").code == "invalid_args"


def test_a_key_is_registered_once():
    chain = Chain()
    chain.citizen("anna")
    assert chain.do(ADMIN, "member.register", key=key("anna"), role="merchant",
                    name="x").code == "exists"


def test_only_admins_register_members():
    chain = Chain()
    anna = chain.citizen("anna")
    reviewer = chain.member("rev", "reviewer")
    for signer in (anna, reviewer):
        assert chain.do(signer, "member.register", key=key("x"),
                        role="auditor").code == "unauthorized"


def test_unknown_signer_is_unknown_member():
    chain = Chain()
    assert chain.do(key("stranger"), "member.register", key=key("x"),
                    role="auditor").code == "unknown_member"


def test_update_changes_a_citizens_band_and_area_and_names_what_changed():
    chain = Chain()
    anna = chain.citizen("anna", band="under21")
    result = chain.ok(ADMIN, "member.update", key=anna, age_band="21plus")
    assert result.events == [{"kind": "member.updated", "key": anna, "age_band": "21plus"}]
    chain.ok(ADMIN, "member.update", key=anna, area="HLN")
    record = queries.member(chain.state, anna)
    assert (record["age_band"], record["area"]) == ("21plus", "HLN")


def test_update_needs_an_attribute():
    chain = Chain()
    anna = chain.citizen("anna")
    assert chain.do(ADMIN, "member.update", key=anna).code == "invalid_args"


def test_update_of_a_non_citizen_is_invalid_state():
    chain = Chain()
    shop = chain.merchant("shop")
    assert chain.do(ADMIN, "member.update", key=shop, area="GMS").code == "invalid_state"


def test_update_of_an_unknown_key_is_not_found():
    chain = Chain()
    assert chain.do(ADMIN, "member.update", key=key("x"), area="GMS").code == "not_found"


def test_revoked_key_can_sign_nothing():
    chain = Chain()
    anna = chain.citizen("anna")
    assert chain.ok(ADMIN, "member.revoke", key=anna).events == [
        {"kind": "member.revoked", "key": anna}]
    chain.post("t1")
    assert chain.do(anna, "task.claim", task="t1").code == "revoked"
    assert chain.do(anna, "task.nonsense").code == "unknown_kind"


def test_an_admin_cannot_revoke_or_recover_an_admin_alone():
    # Admins are a privileged role: only governance revokes or recovers them.
    chain = Chain()
    second = chain.member("admin2", "admin")
    assert chain.do(ADMIN, "member.revoke", key=ADMIN).code == "unauthorized"
    assert chain.do(ADMIN, "member.revoke", key=second).code == "unauthorized"
    assert chain.do(ADMIN, "member.recover", old=second, new=key("x")).code == "unauthorized"


def test_last_active_admin_cannot_be_revoked():
    chain = Chain()
    assert chain.governed("member.revoke", key=ADMIN).code == "invalid_state"
    second = chain.member("admin2", "admin")
    chain.governed("member.revoke", key=ADMIN)
    assert queries.member(chain.state, ADMIN)["active"] is False
    assert chain.governed("member.revoke", key=second).code == "invalid_state"


def test_last_active_admin_cannot_be_revoked_after_its_key_was_recovered():
    # After recovering the only admin, the old key is revoked and the new one is the
    # last active admin: revoking it stays refused.
    chain = Chain()
    new = key("admin-new")
    assert chain.governed("member.recover", old=ADMIN, new=new).code == "ok"
    assert chain.do(ADMIN, "task.cancel", task="x").code == "revoked"
    assert chain.governed("member.revoke", key=new).code == "invalid_state"


def test_admin_count_follows_revoke_and_recover_so_the_last_admin_is_kept():
    chain = Chain()
    second = chain.member("admin2", "admin")
    assert chain.governed("member.revoke", key=ADMIN).code == "ok"
    assert chain.governed("member.recover", old=ADMIN, new=key("admin-new")).code == "ok"
    # Two active admins again (second and admin-new): one may go.
    assert chain.governed("member.revoke", key=key("admin-new")).code == "ok"
    assert chain.governed("member.revoke", key=second).code == "invalid_state"


def test_revoking_a_revoked_key_is_invalid_state():
    chain = Chain()
    anna = chain.citizen("anna")
    chain.ok(ADMIN, "member.revoke", key=anna)
    assert chain.do(ADMIN, "member.revoke", key=anna).code == "invalid_state"


def test_revoking_an_unknown_key_is_not_found():
    assert Chain().do(ADMIN, "member.revoke", key=key("x")).code == "not_found"


def test_recover_moves_balance_claims_earnings_and_reservations_and_revokes_old():
    chain = Chain()
    anna, shop = chain.citizen("anna"), chain.merchant("shop")
    chain.earn(anna, "t1", reward=1500, minutes=240)
    chain.post("t2", reward=500)
    chain.ok(anna, "task.claim", task="t2")
    chain.post("t3", reward=700)
    chain.ok(anna, "task.claim", task="t3")
    chain.ok(anna, "task.submit", task="t3", proof=bytes(32))
    before = queries.earnings(chain.state, anna, chain.time_ms)
    new = key("anna-new-phone")
    result = chain.governed_ok("member.recover", old=anna, new=new)
    assert result.events == [{"kind": "member.recovered", "old": anna, "new": new,
                              "balance": 1500}]
    assert chain.balance(new) == 1500 and chain.balance(anna) == 0
    assert queries.member(chain.state, anna)["active"] is False
    assert queries.member(chain.state, new)["age_band"] == "21plus"
    assert queries.earnings(chain.state, new, chain.time_ms) == before
    assert queries.earnings(chain.state, anna, chain.time_ms)["month"]["earned"] == 0
    claims = {c["citizen"]: c["state"] for c in queries.task(chain.state, "t2", chain.time_ms,
                                                             with_claims=True)["claims"]}
    assert claims == {new: "open"}
    # The new key carries on with the moved claims.
    chain.ok(new, "task.submit", task="t2", proof=bytes(32))
    chain.ok(ADMIN, "task.approve", task="t3", citizen=new)
    assert chain.balance(new) == 2200
    assert chain.do(anna, "coin.spend", to=shop, amount=1).code == "revoked"


def test_recover_moves_pending_payouts_and_keeps_refund_rights():
    chain = Chain()
    anna, shop = chain.citizen("anna"), chain.merchant("shop")
    chain.earn(anna, "t1", reward=1000)
    spend = chain.tx(anna, "coin.spend", to=shop, amount=600)
    redeem = chain.tx(shop, "coin.redeem", amount=100)
    assert [r.code for r in chain.run([spend, redeem]).results] == ["ok", "ok"]
    new = key("shop-new")
    chain.governed_ok("member.recover", old=shop, new=new)
    pending = queries.pending_payouts_of(chain.state, new)
    assert [p["payout"] for p in pending] == [redeem.tx_id]
    assert queries.pending_payouts_of(chain.state, shop) == []
    assert queries.payout(chain.state, bytes.fromhex(redeem.tx_id))["merchant"] == new
    # The new key refunds a spend that was paid to the old one, to the payer.
    result = chain.ok(new, "coin.refund", spend=spend.tx_id, amount=200)
    assert result.events == [{"kind": "coin.refunded", "from": new, "to": anna,
                              "amount": 200, "spend": spend.tx_id}]
    assert chain.balance(anna) == 600
    # A payout of the old key is confirmed all the same.
    chain.ok(ADMIN, "payout.confirm", payout=redeem.tx_id, reference="NL-123")
    assert queries.pending_payouts_of(chain.state, new) == []


def test_recovery_to_a_key_that_has_been_a_member_is_exists():
    chain = Chain()
    anna, bert = chain.citizen("anna"), chain.citizen("bert")
    assert chain.governed("member.recover", old=anna, new=bert).code == "exists"
    assert chain.governed("member.recover", old=anna, new=anna).code == "exists"
    chain.governed_ok("member.recover", old=anna, new=key("anna2"))
    # anna was a member once: nobody may be recovered onto her key.
    assert chain.governed("member.recover", old=bert, new=anna).code == "exists"


def test_recovering_a_key_already_recovered_is_invalid_state():
    chain = Chain()
    anna = chain.citizen("anna")
    chain.governed_ok("member.recover", old=anna, new=key("anna2"))
    assert chain.governed("member.recover", old=anna,
                    new=key("anna3")).code == "invalid_state"


def test_recovering_an_unknown_key_is_not_found():
    assert Chain().governed("member.recover", old=key("x"),
                      new=key("y")).code == "not_found"


def test_policy_set_stores_the_years_policy_and_announces_it():
    chain = Chain()
    args = dict(year=2026, hourly_cap_21plus=570, hourly_cap_under21=340, monthly_cap=21_000,
                yearly_cap=210_000, programme_yearly_cap=150_000)
    result = chain.governed_ok("policy.set", **args)
    assert result.events == [dict(args, kind="policy.set")]
    assert queries.policy_for_year(chain.state, 2026) == {"policy": args, "fallback": False,
                                                        "from_year": 2026}


def test_policy_with_monthly_or_programme_above_yearly_is_invalid_args():
    chain = Chain()
    base = dict(year=2026, hourly_cap_21plus=500, hourly_cap_under21=300, yearly_cap=1000)
    assert chain.governed("policy.set", monthly_cap=1001, **base).code == "invalid_args"
    assert chain.governed("policy.set", monthly_cap=100, programme_yearly_cap=1001,
                    **base).code == "invalid_args"
    assert chain.governed("policy.set", monthly_cap=1000, programme_yearly_cap=1000,
                    **base).code == "ok"


def test_policy_for_a_year_that_has_ended_is_invalid_state():
    chain = Chain()  # June 2025
    args = dict(hourly_cap_21plus=500, hourly_cap_under21=300, monthly_cap=100, yearly_cap=1000)
    assert chain.governed("policy.set", year=2024, **args).code == "invalid_state"
    assert chain.governed("policy.set", year=2025, **args).code == "ok"


def test_policy_year_ends_at_amsterdam_midnight_not_utc():
    # 2025-12-31T23:30Z is already 2026 in Amsterdam: 2025 has ended there.
    chain = Chain(time_ms=1_767_223_800_000)
    args = dict(hourly_cap_21plus=500, hourly_cap_under21=300, monthly_cap=100, yearly_cap=1000)
    assert chain.governed("policy.set", year=2025, **args).code == "invalid_state"


def test_a_year_without_policy_falls_back_to_the_latest_earlier_one():
    chain = Chain(time_ms=T_JUNE_2025 + 765 * DAY_MS)   # July 2027
    found = queries.policy_for_year(chain.state, 2027)
    assert found["fallback"] is True and found["from_year"] == 2026
    assert chain.post("t1", reward=1150, minutes=120).code == "ok"   # 5.75/h of 2026
    assert chain.post("t2", reward=1151, minutes=120).code == "hourly_rate_exceeded"


def test_no_policy_at_or_before_the_year_refuses_post_claim_and_approve():
    chain = Chain(policies=[dict(year=2030, hourly_cap_21plus=500, hourly_cap_under21=300,
                                 monthly_cap=10_000, yearly_cap=100_000)])
    assert chain.post("t1").code == "invalid_state"
