"""The block engine: order of checks, duplicates, rejections, versions, results, genesis."""
from __future__ import annotations

import hashlib

import msgpack
import pytest

import chaincode
from chaincode import queries
from chaincode.api import BlockContext, Result, Tx
from chaincode.errors import CODES
from chaincode.root import acc_of
from chaincode.queries import InMemoryState
from chaincode_harness import ADMIN, STEWARD, T_JUNE_2025, Chain, key


def test_the_contracts_rejection_codes_in_its_order():
    assert CODES == ("duplicate", "unknown_kind", "invalid_args", "unknown_member",
                     "revoked", "frozen", "unauthorized", "not_found", "exists",
                     "invalid_state",
                     "not_a_merchant", "deadline_passed", "task_full",
                     "hourly_rate_exceeded", "cap_exceeded", "insufficient_funds")


def test_a_transaction_id_executed_before_is_duplicate_and_changes_nothing():
    chain = Chain()
    anna = chain.citizen("anna")
    tx = chain.tx(ADMIN, "member.update", key=anna, area="HLN")
    assert chain.run([tx]).results[0].code == "ok"
    before = chain.snapshot()
    outcome = chain.run([tx])
    assert outcome.results[0] == Result(tx.tx_id, "duplicate", {}, [])
    assert outcome.writes == {} and chain.snapshot() == before


def test_a_duplicate_inside_one_block_is_caught_too():
    chain = Chain()
    anna = chain.citizen("anna")
    tx = chain.tx(ADMIN, "member.update", key=anna, area="HLN")
    assert [r.code for r in chain.run([tx, tx]).results] == ["ok", "duplicate"]


def test_a_rejection_uses_up_the_id_and_changes_nothing_else():
    chain = Chain()
    anna = chain.citizen("anna")
    before = chain.snapshot()
    tx = chain.tx(anna, "task.claim", task="nope")
    outcome = chain.run([tx])
    assert outcome.results[0].code == "not_found" and outcome.results[0].events == []
    assert list(outcome.writes) == [b"x/" + bytes.fromhex(tx.tx_id)]
    assert chain.run([tx]).results[0].code == "duplicate"
    after = chain.snapshot()
    del after[b"x/" + bytes.fromhex(tx.tx_id)]
    assert after == before


def test_a_refusal_after_an_ok_in_the_same_block_keeps_the_ok_and_adds_nothing():
    # Two approvals in one block: the second fails its cap check; the first stands.
    chain = Chain(policies=[dict(year=2025, hourly_cap_21plus=10**6, hourly_cap_under21=10**6,
                                 monthly_cap=1000, yearly_cap=1000)])
    anna = chain.citizen("anna")
    chain.post("t1", reward=600)
    chain.post("t2", reward=400)
    for task in ("t1", "t2"):
        chain.ok(anna, "task.claim", task=task)
        chain.ok(anna, "task.submit", task=task, proof=bytes(32))
    chain.governed_ok("policy.set", year=2025, hourly_cap_21plus=10**6,
             hourly_cap_under21=10**6, monthly_cap=900, yearly_cap=1000)
    approve1 = chain.tx(ADMIN, "task.approve", task="t1", citizen=anna)
    approve2 = chain.tx(ADMIN, "task.approve", task="t2", citizen=anna)
    outcome = chain.run([approve1, approve2])
    assert [r.code for r in outcome.results] == ["ok", "cap_exceeded"]
    assert chain.balance(anna) == 600


def test_later_transactions_see_the_writes_of_earlier_ones_in_the_block():
    chain = Chain()
    anna = key("anna")
    shop = key("shop")
    txs = [chain.tx(ADMIN, "member.register", key=anna, role="citizen", age_band="21plus",
                    area="GMS"),
           chain.tx(ADMIN, "member.register", key=shop, role="merchant", name="shop"),
           chain.tx(ADMIN, "task.post", task="t", title="t", area="GMS", domain="care",
                    reward=100, minutes=60, slots=1, deadline=chain.time_ms + 10**6),
           chain.tx(anna, "task.claim", task="t"),
           chain.tx(anna, "task.submit", task="t", proof=bytes(32)),
           chain.tx(ADMIN, "task.approve", task="t", citizen=anna),
           chain.tx(anna, "coin.spend", to=shop, amount=100),
           chain.tx(anna, "coin.spend", to=shop, amount=1)]
    codes = [r.code for r in chain.run(txs).results]
    assert codes == ["ok"] * 7 + ["insufficient_funds"]


def test_unknown_kind_comes_before_invalid_args():
    chain = Chain()
    assert chain.do(ADMIN, "coin.mint", amount=5).code == "unknown_kind"


def test_invalid_args_comes_before_unknown_member():
    chain = Chain()
    stranger = key("stranger")
    assert chain.do(stranger, "coin.spend", to=stranger, amount=1).code == "invalid_args"
    assert chain.do(stranger, "coin.spend", to=ADMIN, amount=1).code == "unknown_member"


def test_args_that_are_not_a_map_or_carry_wrong_types_are_invalid_args():
    chain = Chain()
    tx = Tx(hashlib.sha256(b"odd").hexdigest(), ADMIN, "task.cancel", ["t1"])
    assert chain.run([tx]).results[0].code == "invalid_args"
    assert chain.do(ADMIN, "task.cancel", task=b"t1").code == "invalid_args"
    assert chain.do(ADMIN, "member.revoke", key=bytearray(32)).code == "invalid_args"
    assert chain.governed("policy.set", year=2026, hourly_cap_21plus=True,
                    hourly_cap_under21=1, monthly_cap=1, yearly_cap=1).code == "invalid_args"


ORGS = [{"id": "city", "stewards": [STEWARD]}]
VALIDATORS = [{"name": "v0", "key": key("v0"), "organisation": "city"}]


def genesis(admins, policies=(), organisations=ORGS, validators=VALIDATORS, law=None):
    return chaincode.genesis_state(1, list(admins), list(policies), organisations,
                                   validators, law)


def test_unknown_rules_version_is_a_value_error():
    with pytest.raises(ValueError):
        chaincode.execute_block(2, InMemoryState(), BlockContext(1, 0, 64, 16), [], 0)
    with pytest.raises(ValueError):
        chaincode.genesis_state(0, [ADMIN], [], ORGS, VALIDATORS)
    assert chaincode.rules_versions() == (1,)


def test_genesis_has_the_admins_stewards_constitution_and_policies_and_its_accumulator():
    writes, acc = genesis([ADMIN, key("a2")], chaincode.DEFAULT_POLICIES)
    state = InMemoryState(writes)
    assert acc == acc_of(state.items())
    assert queries.member(state, ADMIN)["role"] == "admin"
    assert queries.member(state, STEWARD) == {"key": STEWARD, "role": "steward", "active": True,
                                            "balance": 0, "organisation": "city"}
    assert [p["year"] for p in queries.policies(state)] == [2021, 2022, 2023, 2024, 2025, 2026]
    assert queries.policy_for_year(state, 2024)["policy"]["hourly_cap_under21"] == 325
    law = chaincode.default_constitution(["city"])
    assert law["thresholds"]["constitution.set"] == 1 and law["recovery_delay_ms"] == 72 * 3600_000


def test_genesis_refuses_bad_admins_stewards_organisations_and_policies():
    for admins in ([], [ADMIN, ADMIN], [b"short"], [STEWARD]):
        with pytest.raises(ValueError):
            genesis(admins)
    bad = dict(chaincode.DEFAULT_POLICIES[0], monthly_cap=10**7)
    with pytest.raises(ValueError):
        genesis([ADMIN], [bad])
    with pytest.raises(ValueError, match="organisation"):
        genesis([ADMIN], organisations=[])
    with pytest.raises(ValueError, match="steward"):
        genesis([ADMIN], organisations=[{"id": "city", "stewards": []}])
    with pytest.raises(ValueError, match="validator"):
        genesis([ADMIN], validators=[{"name": "v0", "key": key("v0"), "organisation": "x"}])
    law = chaincode.default_constitution(["city"])
    law["thresholds"]["constitution.set"] = 0          # could never be changed again
    with pytest.raises(ValueError, match="constitution"):
        genesis([ADMIN], law=law)
    law = chaincode.default_constitution(["city"])
    law["thresholds"]["policy.set"] = 2                # more than the organisations
    with pytest.raises(ValueError, match="constitution"):
        genesis([ADMIN], law=law)


def test_default_policies_are_the_published_limits_in_cents():
    assert chaincode.DEFAULT_POLICIES[-1] == {
        "year": 2026, "hourly_cap_21plus": 575, "hourly_cap_under21": 340,
        "monthly_cap": 22_000, "yearly_cap": 220_000}
    assert [p["monthly_cap"] for p in chaincode.DEFAULT_POLICIES] == [
        18_000, 18_000, 19_000, 21_000, 21_000, 22_000]


def test_encode_result_is_canonical_msgpack_with_sorted_keys_and_bin_keys():
    anna = key("anna")
    result = Result("ab" * 32, "ok", {}, [{"kind": "task.claimed", "task": "t",
                                           "citizen": anna, "reserved": 5}])
    raw = chaincode.encode_result(result)
    assert raw == msgpack.packb({"code": "ok", "events": [
        {"citizen": anna, "kind": "task.claimed", "reserved": 5, "task": "t"}],
        "info": {}, "tx_id": "ab" * 32}, use_bin_type=True)
    # The same result built with another key order encodes to the same bytes.
    again = Result("ab" * 32, "ok", {}, [{"reserved": 5, "citizen": anna, "task": "t",
                                          "kind": "task.claimed"}])
    assert chaincode.encode_result(again) == raw


def test_block_outcome_writes_only_what_changed():
    chain = Chain()
    anna = chain.citizen("anna")
    # An update to the same area rewrites the member with identical bytes: only the
    # transaction id is new.
    tx = chain.tx(ADMIN, "member.update", key=anna, area="GMS")
    assert list(chain.run([tx]).writes) == [b"x/" + bytes.fromhex(tx.tx_id)]


def test_empty_block_keeps_the_root():
    chain = Chain()
    acc = chain.acc
    outcome = chain.run([])
    assert outcome.state_acc == acc and outcome.state_root == chaincode.state_root(acc)
    assert outcome.results == [] and outcome.writes == {}


def test_execution_reads_time_only_from_the_block_context():
    # Two chains fed the same blocks reach the same results and root.
    def play():
        chain = Chain(time_ms=T_JUNE_2025)
        anna = chain.citizen("anna")
        chain.earn(anna, "t1")
        return chain.acc, [chaincode.encode_result(r) for r in chain.run(
            [chain.tx(anna, "coin.spend", to=ADMIN, amount=1)]).results]
    assert play() == play()
