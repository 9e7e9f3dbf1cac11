"""coin.spend, coin.refund, coin.redeem and payout.confirm."""
from __future__ import annotations

from chaincode import queries
from chaincode_harness import ADMIN, Chain, key


def funded(reward: int = 1000):
    chain = Chain()
    anna, shop = chain.citizen("anna"), chain.merchant("shop")
    chain.earn(anna, "t1", reward=reward)
    return chain, anna, shop


def test_citizen_spends_at_a_merchant():
    chain, anna, shop = funded()
    result = chain.ok(anna, "coin.spend", to=shop, amount=250, memo="koffie")
    assert result.events == [{"kind": "coin.spent", "from": anna, "to": shop,
                              "amount": 250, "memo": "koffie"}]
    assert (chain.balance(anna), chain.balance(shop)) == (750, 250)


def test_spend_without_memo_has_an_empty_memo_in_its_event():
    chain, anna, shop = funded()
    assert chain.ok(anna, "coin.spend", to=shop, amount=1).events[0]["memo"] == ""


def test_citizens_cannot_pay_each_other():
    chain, anna, _ = funded()
    bert = chain.citizen("bert")
    assert chain.do(anna, "coin.spend", to=bert, amount=1).code == "not_a_merchant"


def test_spend_to_an_unknown_or_revoked_merchant_is_not_a_merchant():
    chain, anna, shop = funded()
    assert chain.do(anna, "coin.spend", to=key("nobody"), amount=1).code == "not_a_merchant"
    chain.ok(ADMIN, "member.revoke", key=shop)
    assert chain.do(anna, "coin.spend", to=shop, amount=1).code == "not_a_merchant"


def test_spend_to_oneself_is_invalid_args():
    chain, _, shop = funded()
    assert chain.do(shop, "coin.spend", to=shop, amount=1).code == "invalid_args"


def test_merchants_pay_merchants():
    chain, anna, shop = funded()
    supplier = chain.merchant("supplier")
    chain.ok(anna, "coin.spend", to=shop, amount=500)
    chain.ok(shop, "coin.spend", to=supplier, amount=200)
    assert chain.balance(supplier) == 200


def test_spend_beyond_the_balance_is_insufficient_funds():
    chain, anna, shop = funded(1000)
    assert chain.do(anna, "coin.spend", to=shop, amount=1001).code == "insufficient_funds"
    chain.ok(anna, "coin.spend", to=shop, amount=1000)


def test_reviewers_admins_and_auditors_cannot_spend():
    chain, _, shop = funded()
    for role in ("reviewer", "auditor"):
        k = chain.member(role, role)
        assert chain.do(k, "coin.spend", to=shop, amount=1).code == "unauthorized"
    assert chain.do(ADMIN, "coin.spend", to=shop, amount=1).code == "unauthorized"


def test_amounts_are_whole_cents_from_1_to_2_pow_53_minus_1():
    chain, anna, shop = funded()
    for bad in (0, -1, 2**53, 1.0, True, "1"):
        assert chain.do(anna, "coin.spend", to=shop, amount=bad).code == "invalid_args"
    assert chain.do(anna, "coin.spend", to=shop,
                    amount=2**53 - 1).code == "insufficient_funds"


def test_memo_is_at_most_140_characters_and_unknown_args_are_invalid():
    chain, anna, shop = funded()
    assert chain.do(anna, "coin.spend", to=shop, amount=1, memo="x" * 141).code == "invalid_args"
    assert chain.do(anna, "coin.spend", to=shop, amount=1, tip=1).code == "invalid_args"
    assert chain.do(anna, "coin.spend", to=shop[:31], amount=1).code == "invalid_args"
    assert chain.do(anna, "coin.spend", to=shop, amount=1, memo="x" * 140).code == "ok"


def test_refund_pays_the_payer_back_up_to_the_spend_in_total():
    chain, anna, shop = funded()
    spend = chain.tx(anna, "coin.spend", to=shop, amount=400)
    chain.run([spend])
    result = chain.ok(shop, "coin.refund", spend=spend.tx_id, amount=300)
    assert result.events == [{"kind": "coin.refunded", "from": shop, "to": anna,
                              "amount": 300, "spend": spend.tx_id}]
    assert chain.do(shop, "coin.refund", spend=spend.tx_id, amount=101).code == "invalid_state"
    chain.ok(shop, "coin.refund", spend=spend.tx_id, amount=100)
    assert chain.do(shop, "coin.refund", spend=spend.tx_id, amount=1).code == "invalid_state"
    assert (chain.balance(anna), chain.balance(shop)) == (1000, 0)
    assert queries.spend(chain.state, spend.tx_id)["refunded"] == 400


def test_refund_of_a_spend_paid_to_another_merchant_is_not_found():
    chain, anna, shop = funded()
    other = chain.merchant("other")
    spend = chain.tx(anna, "coin.spend", to=shop, amount=400)
    chain.run([spend])
    chain.ok(anna, "coin.spend", to=other, amount=400)
    assert chain.do(other, "coin.refund", spend=spend.tx_id, amount=1).code == "not_found"


def test_refund_of_an_unknown_id_or_a_non_spend_is_not_found():
    chain, anna, shop = funded()
    assert chain.do(shop, "coin.refund", spend="ab" * 32, amount=1).code == "not_found"
    redeem = chain.tx(shop, "coin.redeem", amount=1)
    chain.ok(anna, "coin.spend", to=shop, amount=10)
    chain.run([redeem])
    assert chain.do(shop, "coin.refund", spend=redeem.tx_id, amount=1).code == "not_found"


def test_refund_needs_the_merchants_balance():
    chain, anna, shop = funded()
    spend = chain.tx(anna, "coin.spend", to=shop, amount=400)
    chain.run([spend])
    chain.ok(shop, "coin.redeem", amount=300)
    assert chain.do(shop, "coin.refund", spend=spend.tx_id,
                    amount=200).code == "insufficient_funds"


def test_refund_id_is_lowercase_hex_and_only_merchants_refund():
    chain, anna, shop = funded()
    spend = chain.tx(anna, "coin.spend", to=shop, amount=400)
    chain.run([spend])
    assert chain.do(shop, "coin.refund", spend=spend.tx_id.upper(),
                    amount=1).code == "invalid_args"
    assert chain.do(anna, "coin.refund", spend=spend.tx_id, amount=1).code == "unauthorized"


def test_refund_goes_to_the_payers_current_key_after_recovery():
    chain, anna, shop = funded()
    spend = chain.tx(anna, "coin.spend", to=shop, amount=400)
    chain.run([spend])
    new = key("anna-new")
    chain.governed_ok("member.recover", old=anna, new=new)
    chain.ok(shop, "coin.refund", spend=spend.tx_id, amount=400)
    assert (chain.balance(new), chain.balance(anna)) == (1000, 0)


def test_redeem_burns_coins_and_opens_a_payout_named_by_the_tx_id():
    chain, anna, shop = funded()
    chain.ok(anna, "coin.spend", to=shop, amount=600)
    redeem = chain.tx(shop, "coin.redeem", amount=500)
    result = chain.run([redeem]).results[0]
    assert result.events == [{"kind": "coin.redeemed", "merchant": shop, "amount": 500,
                              "payout": redeem.tx_id}]
    assert chain.balance(shop) == 100
    assert queries.totals(chain.state) == {"minted": 1000, "redeemed": 500, "circulating": 500}
    assert queries.payouts(chain.state) == [{"payout": redeem.tx_id, "merchant": shop,
                                           "amount": 500, "status": "pending"}]


def test_only_merchants_redeem_and_not_beyond_their_balance():
    chain, anna, shop = funded()
    assert chain.do(anna, "coin.redeem", amount=1).code == "unauthorized"
    assert chain.do(shop, "coin.redeem", amount=1).code == "insufficient_funds"


def test_admin_confirms_a_payout_once_with_its_reference():
    chain, anna, shop = funded()
    chain.ok(anna, "coin.spend", to=shop, amount=600)
    redeem = chain.tx(shop, "coin.redeem", amount=500)
    chain.run([redeem])
    result = chain.ok(ADMIN, "payout.confirm", payout=redeem.tx_id, reference="SEPA 42")
    assert result.events == [{"kind": "payout.confirmed", "payout": redeem.tx_id,
                              "reference": "SEPA 42"}]
    assert queries.payout(chain.state, bytes.fromhex(redeem.tx_id))["status"] == "paid"
    assert chain.do(ADMIN, "payout.confirm", payout=redeem.tx_id,
                    reference="again").code == "invalid_state"


def test_payout_of_a_merchant_who_left_can_still_be_confirmed():
    chain, anna, shop = funded()
    chain.ok(anna, "coin.spend", to=shop, amount=600)
    redeem = chain.tx(shop, "coin.redeem", amount=600)
    chain.run([redeem])
    chain.ok(ADMIN, "member.revoke", key=shop)
    chain.ok(ADMIN, "payout.confirm", payout=redeem.tx_id, reference="SEPA 43")


def test_confirming_an_unknown_payout_is_not_found_and_only_admins_confirm():
    chain, anna, shop = funded()
    assert chain.do(ADMIN, "payout.confirm", payout="cd" * 32,
                    reference="x").code == "not_found"
    assert chain.do(shop, "payout.confirm", payout="cd" * 32,
                    reference="x").code == "unauthorized"
    assert chain.do(ADMIN, "payout.confirm", payout="cd" * 32,
                    reference="").code == "invalid_args"
