"""Governance and delayed recoveries at the chaincode level: one test per refusal rule of
docs/governance.md and its table "Every refusal code, as governance meets it",
the counting rules, and one organisation (n = 1, every threshold 1).

The random histories are in test_governance_properties.py; the planted bugs in
test_governance_mutants.py.
"""
from __future__ import annotations

import pytest

from chaincode import state as keys
from chaincode import queries
from chaincode_harness import ADMIN, DAY_MS, HOUR_MS, STEWARD, Chain, key

# Four organisations; a and c have two stewards each. Written out here rather than taken
# from chaincode.constitution, so that these tests state the contract's table themselves.
A0, A1, B0, C0, C1, D0 = (key(n) for n in ("gov-a0", "gov-a1", "gov-b0", "gov-c0", "gov-c1",
                                           "gov-d0"))
FOUR = [{"id": "a", "stewards": [A0, A1]}, {"id": "b", "stewards": [B0]},
        {"id": "c", "stewards": [C0, C1]}, {"id": "d", "stewards": [D0]}]
DEFAULT_FOUR = {"policy.set": 3, "member.citizen": 0, "member.merchant": 0,
                "member.privileged": 3, "member.recover": 2, "validators.set": 3,
                "rules.activate": 3, "constitution.set": 4}
ALL_ONE = {"policy.set": 1, "member.citizen": 1, "member.merchant": 1,
           "member.privileged": 1, "member.recover": 1, "validators.set": 1,
           "rules.activate": 1, "constitution.set": 1}
POLICY_2025 = dict(year=2025, hourly_cap_21plus=600, hourly_cap_under21=400, monthly_cap=3000,
                   yearly_cap=9000)
# The default constitution's recovery delay: 72 hours.
DELAY = 72 * HOUR_MS


def four() -> Chain:
    return Chain(organisations=FOUR)


def kinds(result) -> list[str]:
    return [e["kind"] for e in result.events]


def thresholds(**changes) -> dict:
    return dict(DEFAULT_FOUR, **{k.replace("_", "."): v for k, v in changes.items()})


def enact(chain: Chain, action: str, approvers=(B0, C0, D0), **args):
    """Propose by a's first steward, then approve by `approvers` in turn until the
    proposal is decided (enacted or failed); returns the deciding result."""
    result = chain.propose(A0, action, **args)
    assert result.code == "ok", result
    proposal = result.tx_id
    for steward in approvers:
        if decided(result):
            break
        result = chain.ok(steward, "gov.approve", proposal=proposal)
    assert decided(result), (action, args, result)
    return result


def decided(result) -> bool:
    return bool({"gov.enacted", "gov.failed"} & set(kinds(result)))


def proposal_record(chain: Chain, proposal: str) -> dict:
    return keys.unpack(chain.state.get(keys.PROPOSAL + bytes.fromhex(proposal)))


def law(chain: Chain) -> dict:
    return keys.unpack(chain.state.get(keys.CONSTITUTION))


def opened(chain: Chain, old_name: str = "anna", new_name: str = "anna-new"):
    """A citizen with an admin's open (delayed) recovery; returns (old, new, effective)."""
    old = chain.citizen(old_name)
    new = key(new_name)
    result = chain.ok(ADMIN, "member.recover", old=old, new=new)
    assert result.events == [{"kind": "member.recovery_opened", "old": old, "new": new,
                              "effective": chain.time_ms + DELAY}]
    return old, new, chain.time_ms + DELAY


# ----------------------------------------------------------------------- counting


def test_an_organisation_counts_once_however_many_of_its_stewards_approve():
    chain = four()
    proposal = chain.propose(A0, "member.register", key=key("rev"), role="reviewer")
    assert kinds(proposal) == ["gov.proposed"] and proposal.events[0]["threshold"] == 3
    assert chain.do(A1, "gov.approve", proposal=proposal.tx_id).code == "exists"
    assert chain.do(A0, "gov.approve", proposal=proposal.tx_id).code == "exists"
    second = chain.ok(C0, "gov.approve", proposal=proposal.tx_id)
    assert second.events == [{"kind": "gov.approved", "proposal": proposal.tx_id,
                              "organisation": "c", "approvals": 2}]
    assert chain.do(C1, "gov.approve", proposal=proposal.tx_id).code == "exists"
    assert queries.member(chain.state, key("rev")) is None
    third = chain.ok(D0, "gov.approve", proposal=proposal.tx_id)
    assert kinds(third) == ["gov.approved", "gov.enacted", "member.registered"]
    assert third.events[0]["approvals"] == 3
    assert queries.member(chain.state, key("rev"))["role"] == "reviewer"
    assert [entry[0] for entry in proposal_record(chain, proposal.tx_id)["approvals"]] == \
        ["a", "c", "d"]


def test_two_stewards_of_one_organisation_approving_in_one_block_count_once():
    chain = four()
    proposal = chain.propose(A0, "policy.set", **POLICY_2025).tx_id
    outcome = chain.run([chain.tx(C0, "gov.approve", proposal=proposal),
                         chain.tx(C1, "gov.approve", proposal=proposal)])
    assert [r.code for r in outcome.results] == ["ok", "exists"]
    assert proposal_record(chain, proposal)["status"] == "open"


def test_an_approval_stops_counting_when_its_key_is_recovered_and_the_new_key_may_approve():
    chain = four()
    policy = chain.propose(A0, "policy.set", **POLICY_2025).tx_id
    chain.ok(B0, "gov.approve", proposal=policy)                        # a, b: 2 of 3
    new_b = key("gov-b0-new")
    enact(chain, "member.recover", approvers=(B0, C0), old=B0, new=new_b)  # b among them
    # b's approval was by B0, which is no longer a steward: c brings it to 2, not 3.
    result = chain.ok(C0, "gov.approve", proposal=policy)
    assert result.events[0]["approvals"] == 2 and kinds(result) == ["gov.approved"]
    # b approves again with its new key: its stale approval is replaced, and it counts.
    result = chain.ok(new_b, "gov.approve", proposal=policy)
    assert result.events[0]["approvals"] == 3
    assert kinds(result) == ["gov.approved", "gov.enacted", "policy.set"]
    assert [e[0] for e in proposal_record(chain, policy)["approvals"]] == ["a", "c", "b"]


def test_an_approval_of_a_revoked_steward_does_not_count():
    chain = four()
    policy = chain.propose(A1, "policy.set", **POLICY_2025).tx_id
    chain.ok(B0, "gov.approve", proposal=policy)
    enact(chain, "member.revoke", key=A1)        # a approves by A0: a must be among them
    assert queries.member(chain.state, A1)["active"] is False
    result = chain.ok(C0, "gov.approve", proposal=policy)          # b, c: a no longer counts
    assert result.events[0]["approvals"] == 2 and kinds(result) == ["gov.approved"]
    result = chain.ok(A0, "gov.approve", proposal=policy)
    assert kinds(result) == ["gov.approved", "gov.enacted", "policy.set"]


def test_the_threshold_that_counts_is_the_one_in_force_at_the_deciding_approval():
    chain = four()
    policy = chain.propose(A0, "policy.set", **POLICY_2025).tx_id
    chain.ok(B0, "gov.approve", proposal=policy)                        # 2 of 3
    enact(chain, "constitution.set", thresholds=thresholds(policy_set=4))
    result = chain.ok(C0, "gov.approve", proposal=policy)
    assert kinds(result) == ["gov.approved"]                            # 3 of 4 now
    result = chain.ok(D0, "gov.approve", proposal=policy)
    assert kinds(result)[1:] == ["gov.enacted", "policy.set"]
    assert proposal_record(chain, policy)["threshold"] == 4


def test_a_lowered_threshold_is_met_at_the_next_approval():
    chain = four()
    policy = chain.propose(A0, "policy.set", **POLICY_2025).tx_id
    enact(chain, "constitution.set", thresholds=thresholds(policy_set=1))
    # a alone meets 1 now, but nothing runs until an approval is decided.
    assert proposal_record(chain, policy)["status"] == "open"
    result = chain.ok(B0, "gov.approve", proposal=policy)
    assert kinds(result) == ["gov.approved", "gov.enacted", "policy.set"]


def test_a_change_of_an_organisations_stewards_needs_that_organisation():
    chain = four()
    new = key("gov-d1")
    proposal = chain.propose(A0, "member.register", key=new, role="steward",
                             organisation="d").tx_id
    chain.ok(B0, "gov.approve", proposal=proposal)
    result = chain.ok(C0, "gov.approve", proposal=proposal)
    assert result.events[0]["approvals"] == 3 and kinds(result) == ["gov.approved"]
    assert queries.member(chain.state, new) is None
    result = chain.ok(D0, "gov.approve", proposal=proposal)
    assert kinds(result) == ["gov.approved", "gov.enacted", "member.registered"]
    # Revoking or recovering a steward of d needs d too.
    revoke = chain.propose(A0, "member.revoke", key=new).tx_id
    chain.ok(B0, "gov.approve", proposal=revoke)
    assert kinds(chain.ok(C0, "gov.approve", proposal=revoke)) == ["gov.approved"]
    assert kinds(chain.ok(new, "gov.approve", proposal=revoke))[1:] == ["gov.enacted",
                                                                        "member.revoked"]
    recover = chain.propose(A0, "member.recover", old=D0, new=key("gov-d0-new")).tx_id
    chain.ok(B0, "gov.approve", proposal=recover)
    assert kinds(chain.ok(C0, "gov.approve", proposal=recover)) == ["gov.approved"]
    assert kinds(chain.ok(D0, "gov.approve", proposal=recover))[1:] == ["gov.enacted",
                                                                        "member.recovered"]


def test_a_new_organisations_first_steward_needs_nobody_from_it():
    chain = four()
    enact(chain, "constitution.set", thresholds=DEFAULT_FOUR,
          organisations=["a", "b", "c", "d", "e"])
    assert law(chain)["organisations"] == ["a", "b", "c", "d", "e"]
    result = enact(chain, "member.register", approvers=(B0, C0), key=key("gov-e0"),
                   role="steward", organisation="e")
    assert kinds(result)[-1] == "member.registered"
    assert queries.member(chain.state, key("gov-e0"))["organisation"] == "e"


def test_a_refused_action_fails_the_proposal_but_the_approval_is_ok_and_nothing_changes():
    chain = four()
    anna = chain.citizen("anna")
    proposal = chain.propose(A0, "member.register", key=anna, role="auditor").tx_id
    chain.ok(B0, "gov.approve", proposal=proposal)
    before = dict(chain.state.data)
    result = chain.ok(C0, "gov.approve", proposal=proposal)
    assert result.events[1:] == [{"kind": "gov.failed", "proposal": proposal, "code": "exists",
                                  "info": {}}]
    assert queries.member(chain.state, anna)["role"] == "citizen"
    assert proposal_record(chain, proposal)["status"] == "failed"
    changed = {k for k in set(before) | set(chain.state.data)
               if before.get(k) != chain.state.data.get(k)}
    assert all(k.startswith((keys.PROPOSAL, keys.OPEN_PROPOSALS, keys.EXECUTED))
               for k in changed)


# ----------------------------------------------------------------------- invalid_args


@pytest.mark.parametrize("action,args", [
    ("task.post", dict(task="t", title="t", area="GMS", domain="d", reward=10, minutes=60,
                       slots=1, deadline=0)),
    ("coin.spend", dict(to=key("x"), amount=1)),
    ("member.update", dict(key=key("x"), age_band="21plus")),
    ("recovery.complete", dict(old=key("x"))),
    ("gov.approve", dict(proposal="00" * 32)),
])
def test_proposing_a_kind_that_is_never_governed_is_invalid_args(action, args):
    chain = four()
    assert chain.propose(A0, action, **args).code == "invalid_args"


@pytest.mark.parametrize("action,args", [
    ("policy.set", dict(POLICY_2025, monthly_cap=9001)),               # monthly > yearly
    ("policy.set", {k: v for k, v in POLICY_2025.items() if k != "yearly_cap"}),
    ("member.register", dict(key=key("s"), role="steward")),            # no organisation
    ("member.register", dict(key=key("s"), role="reviewer", organisation="a")),
    ("member.register", dict(key=b"short", role="reviewer")),
    ("member.revoke", dict(key=key("x"), extra=1)),
    ("member.recover", dict(old=key("x"))),
    ("constitution.set", dict(thresholds=DEFAULT_FOUR, recovery_delay_ms=31 * DAY_MS)),
    ("constitution.set", dict(thresholds=DEFAULT_FOUR, organisations=["a", "a"])),
    ("constitution.set", dict(thresholds=DEFAULT_FOUR, organisations=[])),
    ("constitution.set", dict(thresholds=thresholds(constitution_set=0))),  # below least
    ("constitution.set", dict(thresholds=thresholds(member_recover=0))),
    ("constitution.set", dict(thresholds=thresholds(policy_set=-1))),
    ("constitution.set", dict(thresholds=thresholds(policy_set=True))),
    ("validators.set", dict(validators=[])),
])
def test_proposing_args_that_do_not_parse_for_the_kind_is_invalid_args(action, args):
    chain = four()
    assert chain.propose(A0, action, **args).code == "invalid_args"


def test_a_constitution_whose_thresholds_lack_or_add_a_class_is_invalid_args():
    chain = four()
    lacking = {k: v for k, v in DEFAULT_FOUR.items() if k != "rules.activate"}
    adding = dict(DEFAULT_FOUR, **{"member.auditor": 1})
    for bad in (lacking, adding, {}):
        assert chain.propose(A0, "constitution.set", thresholds=bad).code == "invalid_args"


def test_propose_needs_action_args_and_expires():
    chain = four()
    assert chain.do(A0, "gov.propose", action="policy.set",
                    args=POLICY_2025).code == "invalid_args"
    assert chain.do(A0, "gov.propose", action="policy.set", args=[],
                    expires=chain.time_ms + DAY_MS).code == "invalid_args"
    assert chain.do(A0, "gov.propose", action="policy.set", args=POLICY_2025,
                    expires=chain.time_ms + DAY_MS, reason="x" * 281).code == "invalid_args"
    assert chain.do(A0, "gov.approve", proposal="AB" * 32).code == "invalid_args"


# ----------------------------------------------------------------------- not_found


def test_an_unknown_proposal_is_not_found():
    chain = four()
    assert chain.do(A0, "gov.approve", proposal="00" * 32).code == "not_found"
    assert chain.do(A0, "gov.withdraw", proposal="00" * 32).code == "not_found"
    # The id of a transaction that is not a proposal is not one either.
    other = chain.do(A0, "gov.approve", proposal="11" * 32).tx_id
    assert chain.do(B0, "gov.approve", proposal=other).code == "not_found"


def test_cancelling_or_completing_without_an_open_recovery_is_not_found():
    chain = four()
    anna = chain.citizen("anna")
    for signer in (ADMIN, A0):
        assert chain.do(signer, "recovery.cancel", old=anna).code == "not_found"
    assert chain.do(ADMIN, "recovery.complete", old=anna).code == "not_found"
    assert chain.do(ADMIN, "recovery.cancel", old=key("nobody")).code == "not_found"
    # After a cancel, and after a completion, there is no open recovery either.
    old, _, _ = opened(chain, "bert", "bert-new")
    chain.ok(B0, "recovery.cancel", old=old)
    assert chain.do(ADMIN, "recovery.complete", old=old).code == "not_found"
    assert chain.do(ADMIN, "recovery.cancel", old=old).code == "not_found"
    old, _, effective = opened(chain, "cees", "cees-new")
    chain.run([], time_ms=effective)
    chain.ok(ADMIN, "recovery.complete", old=old)
    assert chain.do(ADMIN, "recovery.complete", old=old).code == "not_found"
    assert chain.do(ADMIN, "recovery.cancel", old=old).code == "not_found"


def test_revoking_or_recovering_a_key_that_is_not_a_member_is_not_found():
    chain = four()
    assert chain.propose(A0, "member.revoke", key=key("nobody")).code == "not_found"
    assert chain.propose(A0, "member.recover", old=key("nobody"),
                         new=key("x")).code == "not_found"
    assert chain.do(ADMIN, "member.recover", old=key("nobody"), new=key("x")).code == "not_found"
    assert chain.do(ADMIN, "member.revoke", key=key("nobody")).code == "not_found"


def test_a_steward_of_an_organisation_not_in_the_constitution_fails_as_not_found():
    chain = four()
    result = enact(chain, "member.register", key=key("z0"), role="steward", organisation="z")
    assert result.events[-1] == {"kind": "gov.failed", "proposal": result.events[-1]["proposal"],
                                 "code": "not_found", "info": {}}
    assert queries.member(chain.state, key("z0")) is None


# ----------------------------------------------------------------------- exists


def test_a_second_approval_by_one_organisation_is_exists_also_after_the_proposal_closed():
    chain = four()
    enacted = enact(chain, "policy.set", **POLICY_2025).events[0]["proposal"]
    for steward in (A0, A1, B0, C0, C1):
        assert chain.do(steward, "gov.approve", proposal=enacted).code == "exists"
    assert chain.do(D0, "gov.approve", proposal=enacted).code == "invalid_state"
    withdrawn = chain.propose(C0, "policy.set", **POLICY_2025).tx_id
    chain.ok(C1, "gov.withdraw", proposal=withdrawn)
    assert chain.do(C1, "gov.approve", proposal=withdrawn).code == "exists"
    assert chain.do(A0, "gov.approve", proposal=withdrawn).code == "invalid_state"
    expired = chain.propose(A0, "policy.set", expires=chain.time_ms + HOUR_MS,
                            **POLICY_2025).tx_id
    chain.run([], time_ms=chain.time_ms + HOUR_MS)
    assert chain.do(A1, "gov.approve", proposal=expired).code == "exists"
    assert chain.do(B0, "gov.approve", proposal=expired).code == "invalid_state"


def test_a_recovery_to_a_key_that_has_been_a_member_is_exists():
    chain = four()
    anna, bert = chain.citizen("anna"), chain.citizen("bert")
    for new in (bert, anna, A0, ADMIN):
        assert chain.do(ADMIN, "member.recover", old=anna, new=new).code == "exists"
    result = enact(chain, "member.recover", approvers=(B0,), old=anna, new=bert)
    assert result.events[-1]["kind"] == "gov.failed" and result.events[-1]["code"] == "exists"
    # A key recovered away from has been a member too.
    chain.ok(ADMIN, "member.revoke", key=bert)
    assert kinds(enact(chain, "member.recover", approvers=(B0,), old=anna,
                       new=key("anna2")))[-1] == "member.recovered"
    assert chain.do(ADMIN, "member.recover", old=bert, new=anna).code == "exists"


def test_the_new_key_of_an_open_recovery_can_be_neither_registered_nor_named_again():
    chain = four()
    _, new, _ = opened(chain)
    bert = chain.citizen("bert")
    assert chain.do(ADMIN, "member.recover", old=bert, new=new).code == "exists"
    assert chain.do(ADMIN, "member.register", key=new, role="citizen", age_band="21plus",
                    area="GMS").code == "exists"
    result = enact(chain, "member.register", key=new, role="reviewer")
    assert result.events[-1]["kind"] == "gov.failed" and result.events[-1]["code"] == "exists"
    result = enact(chain, "member.recover", approvers=(B0,), old=bert, new=new)
    assert result.events[-1]["kind"] == "gov.failed" and result.events[-1]["code"] == "exists"
    assert queries.member(chain.state, new) is None


# ----------------------------------------------------------------------- invalid_state


def test_approving_or_withdrawing_a_closed_or_expired_proposal_is_invalid_state():
    chain = four()
    enacted = enact(chain, "policy.set", approvers=(B0, C0), **POLICY_2025).events[0]["proposal"]
    anna = chain.citizen("anna")
    failed = enact(chain, "member.register", approvers=(B0, C0), key=anna,
                   role="auditor").events[0]["proposal"]
    assert proposal_record(chain, failed)["status"] == "failed"
    withdrawn = chain.propose(A0, "policy.set", **POLICY_2025).tx_id
    chain.ok(A1, "gov.withdraw", proposal=withdrawn)
    expires = chain.time_ms + DAY_MS
    expired = chain.propose(A0, "policy.set", expires=expires, **POLICY_2025).tx_id
    open_one = chain.propose(A0, "policy.set", expires=expires + 1, **POLICY_2025).tx_id
    chain.run([], time_ms=expires)                   # at `expires`: expired
    for proposal in (enacted, failed, withdrawn, expired):
        assert chain.do(D0, "gov.approve", proposal=proposal).code == "invalid_state"
        assert chain.do(A0, "gov.withdraw", proposal=proposal).code == "invalid_state"
    # One millisecond before its expiry a proposal is still open.
    assert chain.ok(D0, "gov.approve", proposal=open_one).events[0]["approvals"] == 2
    chain.run([], time_ms=expires + 1)
    assert chain.do(B0, "gov.approve", proposal=open_one).code == "invalid_state"
    assert proposal_record(chain, expired)["status"] == "open"   # expiry is read, not written


def test_an_expired_proposal_never_takes_effect_even_with_every_organisation():
    chain = four()
    proposal = chain.propose(A0, "policy.set", expires=chain.time_ms + HOUR_MS,
                             **dict(POLICY_2025, year=2026)).tx_id
    chain.ok(B0, "gov.approve", proposal=proposal)
    chain.run([], time_ms=chain.time_ms + HOUR_MS)
    for steward in (C0, D0):
        assert chain.do(steward, "gov.approve", proposal=proposal).code == "invalid_state"
    assert queries.policy_for_year(chain.state, 2026)["policy"]["monthly_cap"] != 3000


def test_approving_or_withdrawing_a_proposal_whose_class_is_now_0_is_invalid_state():
    chain = four()
    proposal = chain.propose(A0, "policy.set", **POLICY_2025).tx_id
    enact(chain, "constitution.set", thresholds=thresholds(policy_set=0))
    assert chain.do(B0, "gov.approve", proposal=proposal).code == "invalid_state"
    assert chain.do(A0, "gov.withdraw", proposal=proposal).code == "invalid_state"
    # ... and the admin signs it directly now.
    assert kinds(chain.ok(ADMIN, "policy.set", **POLICY_2025)) == ["policy.set"]


def test_proposing_an_action_whose_class_is_0_is_invalid_state():
    chain = four()
    anna = chain.citizen("anna")
    shop = chain.merchant("shop")
    assert chain.propose(A0, "member.register", key=key("x"), role="citizen",
                         age_band="21plus", area="GMS").code == "invalid_state"
    assert chain.propose(A0, "member.register", key=key("x"), role="merchant",
                         name="x").code == "invalid_state"
    assert chain.propose(A0, "member.revoke", key=shop).code == "invalid_state"
    # A revocation of a citizen is not governed at all: never proposable.
    assert chain.propose(A0, "member.revoke", key=anna).code == "invalid_state"
    enact(chain, "constitution.set", thresholds=thresholds(member_citizen=4))
    assert chain.propose(A0, "member.revoke", key=anna).code == "invalid_state"
    assert chain.propose(A0, "member.register", key=key("x"), role="citizen",
                         age_band="21plus", area="GMS").code == "ok"


def test_a_second_recovery_of_one_key_is_invalid_state():
    chain = four()
    old, _, _ = opened(chain)
    assert chain.do(ADMIN, "member.recover", old=old, new=key("other")).code == "invalid_state"


def test_after_a_stewards_cancel_an_admin_cannot_reopen_but_after_an_admins_cancel_it_can():
    chain = four()
    old, new, _ = opened(chain)
    result = chain.ok(C1, "recovery.cancel", old=old)
    assert result.events == [{"kind": "member.recovery_cancelled", "old": old, "by": C1}]
    assert "frozen" not in queries.member(chain.state, old)
    assert chain.do(ADMIN, "member.recover", old=old, new=new).code == "invalid_state"
    assert chain.do(ADMIN, "member.recover", old=old, new=key("x")).code == "invalid_state"
    # Only governance may recover it now: at once.
    result = enact(chain, "member.recover", approvers=(B0,), old=old, new=new)
    assert kinds(result)[-1] == "member.recovered"
    bert, bert_new, _ = opened(chain, "bert", "bert-new")
    chain.ok(ADMIN, "recovery.cancel", old=bert)
    assert kinds(chain.ok(ADMIN, "member.recover", old=bert, new=bert_new)) == \
        ["member.recovery_opened"]


def test_completing_before_effective_is_invalid_state_and_at_effective_it_moves_everything():
    chain = four()
    old, new, effective = opened(chain)
    chain.run([], time_ms=effective - 1)
    assert chain.do(ADMIN, "recovery.complete", old=old).code == "invalid_state"
    chain.run([], time_ms=effective)
    result = chain.ok(ADMIN, "recovery.complete", old=old)
    assert result.events == [{"kind": "member.recovered", "old": old, "new": new, "balance": 0}]
    assert queries.member(chain.state, new)["active"] is True
    assert queries.member(chain.state, old)["recovered_to"] == new


def test_the_effective_time_is_fixed_when_the_recovery_opens():
    chain = four()
    old, _, effective = opened(chain)
    enact(chain, "constitution.set", thresholds=DEFAULT_FOUR, recovery_delay_ms=30 * DAY_MS)
    assert law(chain)["recovery_delay_ms"] == 30 * DAY_MS
    chain.run([], time_ms=effective)
    assert kinds(chain.ok(ADMIN, "recovery.complete", old=old)) == ["member.recovered"]
    bert = chain.citizen("bert")
    result = chain.ok(ADMIN, "member.recover", old=bert, new=key("bert-new"))
    assert result.events[0]["effective"] == chain.time_ms + 30 * DAY_MS


def test_a_threshold_above_the_number_of_organisations_is_invalid_state():
    chain = four()
    result = enact(chain, "constitution.set", thresholds=thresholds(policy_set=5))
    assert result.events[-1]["kind"] == "gov.failed"
    assert result.events[-1]["code"] == "invalid_state"
    # Removing organisations counts against the new number.
    result = enact(chain, "constitution.set", thresholds=DEFAULT_FOUR,
                   organisations=["a", "b", "c"])
    assert result.events[-1]["code"] == "invalid_state"
    assert law(chain)["thresholds"] == DEFAULT_FOUR and len(law(chain)["organisations"]) == 4


def test_removing_an_organisation_revokes_its_stewards_unless_it_owns_a_validator():
    chain = four()
    lower = thresholds(policy_set=2, member_privileged=2, validators_set=2, rules_activate=2,
                       constitution_set=3)
    result = enact(chain, "constitution.set", thresholds=lower, organisations=["a", "b", "d"])
    assert kinds(result)[-3:] == ["member.revoked", "member.revoked", "constitution.set"]
    assert {e["key"] for e in result.events if e["kind"] == "member.revoked"} == {C0, C1}
    assert not queries.member(chain.state, C0)["active"]
    assert chain.do(C0, "gov.propose", action="policy.set", args=POLICY_2025,
                    expires=chain.time_ms + DAY_MS).code == "revoked"
    # a owns the chain's validator (the harness gives it to the first organisation).
    result = enact(chain, "constitution.set", approvers=(B0, D0), thresholds=lower,
                   organisations=["b", "d"])
    assert result.events[-1]["code"] == "invalid_state"


def test_an_organisations_65th_open_proposal_is_invalid_state_and_expired_ones_make_room():
    chain = four()
    expires = chain.time_ms + DAY_MS
    txs = [chain.tx(A0 if i % 2 else A1, "gov.propose", action="policy.set", args=POLICY_2025,
                    expires=expires + i) for i in range(64)]
    assert {r.code for r in chain.run(txs).results} == {"ok"}
    assert chain.propose(A0, "policy.set", **POLICY_2025).code == "invalid_state"
    assert chain.propose(B0, "policy.set", **POLICY_2025).code == "ok"     # per organisation
    chain.run([], time_ms=expires)                                        # the first expired
    assert chain.propose(A1, "policy.set", **POLICY_2025).code == "ok"
    assert chain.propose(A0, "policy.set", **POLICY_2025).code == "invalid_state"
    chain.ok(A0, "gov.withdraw", proposal=txs[5].tx_id)                   # closed ones too
    assert chain.propose(A0, "policy.set", **POLICY_2025).code == "ok"


def test_expires_more_than_30_days_out_is_invalid_state_and_30_days_is_allowed():
    chain = four()
    now = chain.time_ms
    assert chain.propose(A0, "policy.set", expires=now + 30 * DAY_MS + 1,
                         **POLICY_2025).code == "invalid_state"
    assert chain.propose(A0, "policy.set", expires=now + 30 * DAY_MS, **POLICY_2025).code == "ok"


def test_revoking_the_last_steward_of_an_organisation_fails_as_invalid_state():
    chain = four()
    result = enact(chain, "member.revoke", key=D0)
    assert result.events[-1]["kind"] == "gov.failed"
    assert result.events[-1]["code"] == "invalid_state"
    assert queries.member(chain.state, D0)["active"] is True


# ----------------------------------------------------------------------- deadline_passed


def test_expires_not_after_the_block_time_is_deadline_passed():
    chain = four()
    for expires in (chain.time_ms, chain.time_ms - 1, 0):
        assert chain.propose(A0, "policy.set", expires=expires,
                             **POLICY_2025).code == "deadline_passed"
    assert chain.propose(A0, "policy.set", expires=chain.time_ms + 1, **POLICY_2025).code == "ok"


def test_invalid_state_comes_before_deadline_passed_for_propose():
    chain = four()
    assert chain.propose(A0, "member.register", key=key("x"), role="merchant", name="x",
                         expires=chain.time_ms).code == "invalid_state"


# ----------------------------------------------------------------------- frozen


def test_a_frozen_key_signs_nothing():
    chain = four()
    anna = chain.citizen("anna")
    shop = chain.merchant("shop")
    assert chain.post("t1").code == "ok"
    chain.ok(anna, "task.claim", task="t1")
    chain.ok(anna, "task.submit", task="t1", proof=bytes(32))
    chain.ok(ADMIN, "task.approve", task="t1", citizen=anna)
    assert chain.post("t2").code == "ok"
    chain.ok(ADMIN, "member.recover", old=anna, new=key("anna-new"))
    chain.ok(ADMIN, "member.recover", old=shop, new=key("shop-new"))
    for signer, kind, args in [(anna, "coin.spend", dict(to=shop, amount=1)),
                               (anna, "task.claim", dict(task="t2")),
                               (anna, "recovery.cancel", dict(old=anna)),
                               (anna, "recovery.complete", dict(old=anna)),
                               (shop, "coin.redeem", dict(amount=1)),
                               (shop, "gov.approve", dict(proposal="00" * 32))]:
        assert chain.do(signer, kind, **args).code == "frozen", (kind, args)
    assert chain.balance(anna) == 1000
    # A frozen merchant still receives (the coins move with the recovery).
    bert = chain.citizen("bert")
    chain.earn(bert, "t3")
    chain.ok(bert, "coin.spend", to=shop, amount=10)


def test_a_revoked_key_with_an_open_recovery_answers_revoked():
    chain = four()
    anna = chain.citizen("anna")
    chain.ok(ADMIN, "member.revoke", key=anna)
    chain.ok(ADMIN, "member.recover", old=anna, new=key("anna-new"))
    assert "frozen" in queries.member(chain.state, anna)
    assert chain.do(anna, "task.claim", task="t").code == "revoked"


def test_a_revocation_of_the_old_key_closes_the_open_recovery_and_unfreezes_it():
    chain = four()
    old, new, _ = opened(chain)
    result = chain.ok(ADMIN, "member.revoke", key=old)
    assert result.events == [{"kind": "member.recovery_cancelled", "old": old, "by": ADMIN},
                             {"kind": "member.revoked", "key": old}]
    assert "frozen" not in queries.member(chain.state, old)
    assert chain.do(ADMIN, "recovery.complete", old=old).code == "not_found"
    # Its new key is free again.
    assert chain.do(ADMIN, "member.register", key=new, role="citizen", age_band="21plus",
                    area="GMS").code == "ok"


def test_a_governed_recovery_closes_the_open_one_and_recovers_at_once():
    chain = four()
    old, new, _ = opened(chain)
    result = enact(chain, "member.recover", approvers=(B0,), old=old, new=new)
    assert result.events[2:] == [
        {"kind": "member.recovery_cancelled", "old": old, "by": "governance"},
        {"kind": "member.recovered", "old": old, "new": new, "balance": 0}]
    assert queries.member(chain.state, new)["active"] is True


# ----------------------------------------------------------------------- unauthorized


def test_an_admin_signing_a_governed_kind_is_unauthorized():
    chain = four()
    reviewer = enact(chain, "member.register", approvers=(B0, C0), key=key("rev"),
                     role="reviewer").events[-1]["key"]
    anna = chain.citizen("anna")
    for kind, args in [
            ("member.register", dict(key=key("x"), role="admin")),
            ("member.register", dict(key=key("x"), role="reviewer")),
            ("member.register", dict(key=key("x"), role="auditor")),
            ("member.register", dict(key=key("x"), role="steward", organisation="a")),
            ("member.revoke", dict(key=reviewer)),
            ("member.revoke", dict(key=A0)),
            ("member.recover", dict(old=reviewer, new=key("x"))),
            ("member.recover", dict(old=B0, new=key("x"))),
            ("policy.set", POLICY_2025),
            ("constitution.set", dict(thresholds=DEFAULT_FOUR))]:
        assert chain.do(ADMIN, kind, **args).code == "unauthorized", (kind, args)
    # Raising the merchant and citizen classes takes them from the admin too.
    enact(chain, "constitution.set", thresholds=thresholds(member_merchant=2, member_citizen=2))
    shop_args = dict(key=key("shop"), role="merchant", name="shop")
    assert chain.do(ADMIN, "member.register", **shop_args).code == "unauthorized"
    assert chain.do(ADMIN, "member.register", key=key("x"), role="citizen", age_band="21plus",
                    area="GMS").code == "unauthorized"
    # A citizen's revocation is never governed: still the admin's alone.
    assert kinds(chain.ok(ADMIN, "member.revoke", key=anna)) == ["member.revoked"]


def test_an_admin_cannot_revoke_or_recover_another_admin_without_governance():
    second = key("admin-2")
    chain = Chain(admins=(ADMIN, second), organisations=FOUR)
    assert chain.do(ADMIN, "member.revoke", key=second).code == "unauthorized"
    assert chain.do(ADMIN, "member.recover", old=second, new=key("x")).code == "unauthorized"
    assert kinds(enact(chain, "member.revoke", approvers=(B0, C0), key=second))[-1] == \
        "member.revoked"


def test_only_a_steward_of_the_proposers_organisation_withdraws():
    chain = four()
    proposal = chain.propose(A0, "policy.set", **POLICY_2025).tx_id
    chain.ok(B0, "gov.approve", proposal=proposal)
    for signer in (B0, C0, D0):
        assert chain.do(signer, "gov.withdraw", proposal=proposal).code == "unauthorized"
    assert chain.do(ADMIN, "gov.withdraw", proposal=proposal).code == "unauthorized"
    result = chain.ok(A1, "gov.withdraw", proposal=proposal)
    assert result.events == [{"kind": "gov.withdrawn", "proposal": proposal}]
    assert chain.do(C0, "gov.approve", proposal=proposal).code == "invalid_state"


def test_only_stewards_sign_governance_and_only_admins_complete_recoveries():
    chain = four()
    anna = chain.citizen("anna")
    old, _, effective = opened(chain, "bert", "bert-new")
    for signer in (ADMIN, anna):
        assert chain.do(signer, "gov.propose", action="policy.set", args=POLICY_2025,
                        expires=chain.time_ms + DAY_MS).code == "unauthorized"
        assert chain.do(signer, "gov.approve", proposal="00" * 32).code == "unauthorized"
    assert chain.do(anna, "recovery.cancel", old=old).code == "unauthorized"
    chain.run([], time_ms=effective)
    assert chain.do(A0, "recovery.complete", old=old).code == "unauthorized"
    assert chain.do(anna, "recovery.complete", old=old).code == "unauthorized"
    assert chain.do(A0, "constitution.set", thresholds=DEFAULT_FOUR).code == "unauthorized"


def test_an_admin_can_only_delay_recoveries_of_citizens_and_merchants():
    chain = four()
    shop = chain.merchant("shop")
    result = chain.ok(ADMIN, "member.recover", old=shop, new=key("shop-new"))
    assert kinds(result) == ["member.recovery_opened"]
    assert queries.member(chain.state, key("shop-new")) is None


# ----------------------------------------------------------------------- n = 1


def test_one_organisation_has_every_threshold_1_and_its_steward_alone_decides():
    chain = Chain()                      # one organisation "city", one steward
    constitution = law(chain)
    assert constitution["organisations"] == ["city"]
    assert constitution["thresholds"] == dict(ALL_ONE, **{"member.citizen": 0,
                                                          "member.merchant": 0})
    assert constitution["recovery_delay_ms"] == DELAY
    for action, args, last in [
            ("policy.set", POLICY_2025, "policy.set"),
            ("member.register", dict(key=key("rev"), role="reviewer"), "member.registered"),
            ("member.register", dict(key=key("steward-2"), role="steward",
                                     organisation="city"), "member.registered"),
            ("member.revoke", dict(key=key("steward-2")), "member.revoked"),
            ("member.recover", dict(old=key("rev"), new=key("rev-2")), "member.recovered"),
            ("constitution.set", dict(thresholds=ALL_ONE), "constitution.set")]:
        result = chain.propose(STEWARD, action, **args)
        assert kinds(result)[:2] == ["gov.proposed", "gov.enacted"], (action, result)
        assert kinds(result)[-1] == last and result.events[0]["threshold"] == 1
    # Citizens are governed now (threshold 1): the steward registers them, not the admin.
    assert chain.do(ADMIN, "member.register", key=key("anna"), role="citizen",
                    age_band="21plus", area="GMS").code == "unauthorized"
    chain.govern("member.register", key=key("anna"), role="citizen", age_band="21plus",
                 area="GMS")
    # A recovery by governance is at once, also with one organisation.
    result = chain.govern("member.recover", old=key("anna"), new=key("anna-2"))
    assert kinds(result)[-1] == "member.recovered"
    # No threshold may exceed the one organisation; the last steward stays.
    result = chain.propose(STEWARD, "constitution.set",
                           thresholds=dict(ALL_ONE, **{"policy.set": 2}))
    assert kinds(result) == ["gov.proposed", "gov.failed"]
    assert result.events[-1]["code"] == "invalid_state"
    result = chain.propose(STEWARD, "member.revoke", key=STEWARD)
    assert kinds(result) == ["gov.proposed", "gov.failed"]
    assert result.events[-1]["code"] == "invalid_state"
    assert chain.propose(STEWARD, "policy.set", expires=chain.time_ms,
                         **POLICY_2025).code == "deadline_passed"


def test_one_organisation_with_two_stewards_still_counts_once():
    second = key("steward-2")
    chain = Chain(organisations=[{"id": "city", "stewards": [STEWARD, second]}])
    enacted = chain.govern("policy.set", **POLICY_2025).tx_id
    assert chain.do(second, "gov.approve", proposal=enacted).code == "exists"


# ----------------------------- gaps the tests above found, fixed in the chaincode


def test_the_constitution_can_always_be_changed_again():
    chain = Chain()                      # one organisation, every threshold 1
    locked = dict(ALL_ONE, **{"member.privileged": 2, "constitution.set": 2})
    # "new" would have no steward, and only governance with 2 organisations could give
    # it one or change the constitution back: such a constitution is refused
    result = chain.propose(STEWARD, "constitution.set", thresholds=locked,
                           organisations=["city", "new"])
    assert result.events[-1]["kind"] == "gov.failed"
    assert result.events[-1]["code"] == "invalid_state"
    # with the thresholds its stewards can meet, the organisation is added, gets its
    # first steward, and then the higher thresholds are allowed
    chain.govern("constitution.set", thresholds=ALL_ONE, organisations=["city", "new"])
    chain.govern("member.register", key=key("new-0"), role="steward", organisation="new")
    assert chain.propose(STEWARD, "constitution.set", thresholds=locked).code == "ok"


def test_every_active_steward_belongs_to_an_organisation_in_the_constitution():
    s2 = key("steward-2")
    chain = Chain(organisations=[{"id": "city", "stewards": [STEWARD]},
                                 {"id": "cbs", "stewards": [s2]}],
                  law={"organisations": ["city", "cbs"], "recovery_delay_ms": DELAY,
                       "thresholds": dict(ALL_ONE, **{"member.citizen": 0,
                                                      "member.merchant": 0})})
    chain.govern("constitution.set", thresholds=ALL_ONE, organisations=["city"])
    assert queries.member(chain.state, s2)["active"] is False
    result = chain.propose(STEWARD, "member.recover", old=s2, new=key("steward-2-new"))
    assert result.events[-1] == {"kind": "gov.failed", "proposal": result.tx_id,
                                 "code": "invalid_state", "info": {}}
    assert queries.member(chain.state, key("steward-2-new")) is None


def test_proposing_to_revoke_a_steward_key_recovered_away_is_decided_not_a_crash():
    chain = four()
    enact(chain, "member.recover", approvers=(B0, C0), old=A1, new=key("gov-a1-new"))
    assert queries.member(chain.state, A1)["recovered_to"] == key("gov-a1-new")
    for action, args in (("member.revoke", dict(key=A1)),
                         ("member.recover", dict(old=A1, new=key("gov-a1-newer")))):
        result = chain.propose(A0, action, **args)      # was a KeyError in execute_block
        assert result.code == "ok" and kinds(result) == ["gov.proposed"]


def test_approving_a_revocation_of_a_steward_recovered_since_is_decided_not_a_crash():
    chain = four()
    revoke = chain.propose(A0, "member.revoke", key=A1).tx_id          # a: 1 of 3
    enact(chain, "member.recover", approvers=(B0, C0), old=A1, new=key("gov-a1-new"))
    chain.ok(B0, "gov.approve", proposal=revoke)          # was a KeyError in execute_block
    result = chain.ok(C0, "gov.approve", proposal=revoke)
    # The revocation of a key that is no longer active fails; nothing else happens.
    assert result.events[-1]["kind"] == "gov.failed"
    assert result.events[-1]["code"] == "invalid_state"
