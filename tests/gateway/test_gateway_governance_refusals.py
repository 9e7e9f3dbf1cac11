"""Every refusal code of the governance and recovery rules, seen through POST /v1/tx
(?wait=true) as an app sees it: the code, and a plain sentence in `detail`.

`chain` is `network init`'s network (one organisation, every governed threshold 1, the
recovery delay 72 hours); `gov` has three organisations (conftest.py), where proposals
stay open until a second or third organisation approves.
"""
from __future__ import annotations

from gateway_kit import (DAY_MS, ONE, Chain, failed_code, kinds, new_key, now_ms, pass_time,
                         policy)


async def rich_citizen(chain: Chain, task: str):
    citizen = await chain.member("citizen")
    await chain.task(task, reward=500)
    await chain.earn(citizen, task)
    return citizen


async def test_an_admin_signing_what_governance_decides_is_unauthorized(chain):
    admin = chain.admin
    refused = await chain.tx(admin, "policy.set", policy(), code="unauthorized")
    assert "proposal" in refused["detail"]
    for role, extra in (("reviewer", {}), ("admin", {}), ("auditor", {}),
                        ("steward", {"organisation": "municipality"})):
        await chain.tx(admin, "member.register", {"key": new_key().public, "role": role,
                                                  **extra}, code="unauthorized")
    await chain.tx(admin, "constitution.set", {"thresholds": ONE}, code="unauthorized")
    # and the other way round: a steward runs nothing of the admin's
    await chain.tx(chain.steward, "task.post", {
        "task": "s", "title": "t", "area": "GMS", "domain": "d", "reward": 100,
        "minutes": 60, "slots": 1, "deadline": now_ms() + DAY_MS}, code="unauthorized")
    citizen = await chain.member("citizen")
    await chain.propose("policy.set", policy(), steward=citizen, code="unauthorized")


async def test_an_admin_revoking_a_merchant_is_unauthorized_where_merchants_are_governed(gov):
    shop = await gov.member("merchant")            # by governance: member.merchant is 1
    await gov.tx(gov.admin, "member.revoke", {"key": shop.public}, code="unauthorized")
    citizen = await gov.member("citizen")          # citizens stay the admin's
    await gov.tx(gov.admin, "member.revoke", {"key": citizen.public})


async def test_only_the_proposers_organisation_withdraws(gov):
    (m0, m1), (c0,) = gov.stewards["municipality"], gov.stewards["cbs"]
    proposal = (await gov.propose("policy.set", policy(), m0))["tx_id"]
    await gov.tx(c0, "gov.withdraw", {"proposal": proposal}, code="unauthorized")
    withdrawn = await gov.tx(m1, "gov.withdraw", {"proposal": proposal})
    assert kinds(withdrawn) == ["gov.withdrawn"]


async def test_proposals_that_do_not_parse_are_invalid_args(chain):
    for action, args in (
            ("task.post", {"task": "x"}),                          # never governed
            ("validators.set", {"validators": []}),                # no validator
            ("validators.set", {"validators": [{"name": "v9", "key": new_key().public,
                                                "organisation": "nowhere"}]}),
            ("member.register", {"key": new_key().public}),         # no role
            ("member.register", {"key": b"short", "role": "reviewer"}),
            ("member.recover", {"old": new_key().public}),
            ("constitution.set", {"thresholds": {k: v for k, v in ONE.items()
                                                 if k != "rules.activate"}}),
            ("constitution.set", {"thresholds": dict(ONE, extra=1)}),
            ("policy.set", dict(policy(), monthly_cap=300_000))):   # monthly > yearly
        body = await chain.propose(action, args, code="invalid_args")
        assert body["status"] == "rejected" and body["events"] == []


async def test_unknown_proposals_recoveries_members_and_organisations_are_not_found(chain):
    citizen = await chain.member("citizen")
    unknown = "ab" * 32
    for kind in ("gov.approve", "gov.withdraw"):
        await chain.tx(chain.steward, kind, {"proposal": unknown}, code="not_found")
    for signer in (chain.admin, chain.steward):
        await chain.tx(signer, "recovery.cancel", {"old": citizen.public}, code="not_found")
    await chain.tx(chain.admin, "recovery.complete", {"old": citizen.public},
                   code="not_found")
    stranger = new_key().public
    await chain.tx(chain.admin, "member.recover", {"old": stranger, "new": new_key().public},
                   code="not_found")
    await chain.propose("member.revoke", {"key": stranger}, code="not_found")
    # a steward of an organisation the constitution does not name: the enacted action
    # refuses, so the proposal fails (the proposal itself is ok)
    body = await chain.propose("member.register", {
        "key": new_key().public, "role": "steward", "organisation": "nowhere"})
    assert kinds(body)[:2] == ["gov.proposed", "gov.failed"]
    assert failed_code(body) == "not_found"


async def test_recovering_to_a_used_key_is_exists(chain):
    alice, bob, carol = [await chain.member("citizen") for _ in range(3)]
    await chain.tx(chain.admin, "member.recover", {"old": alice.public, "new": bob.public},
                   code="exists")                    # bob is a member
    dave = await chain.member("citizen")
    await chain.tx(chain.admin, "member.revoke", {"key": dave.public})
    await chain.tx(chain.admin, "member.recover", {"old": alice.public, "new": dave.public},
                   code="exists")                    # dave has been one
    fresh = new_key().public
    await chain.tx(chain.admin, "member.recover", {"old": alice.public, "new": fresh})
    await chain.tx(chain.admin, "member.recover", {"old": carol.public, "new": fresh},
                   code="exists")                    # the new key of an open recovery
    registering = await chain.propose("member.register", {"key": fresh, "role": "auditor"})
    assert failed_code(registering) == "exists"      # ... nor registered: the action fails


async def test_an_organisation_approves_once_also_after_the_proposal_closed(gov):
    (m0, m1), (c0,), (v0,) = (gov.stewards[o] for o in ("municipality", "cbs", "vng"))
    proposal = (await gov.propose("policy.set", policy(), m0))["tx_id"]
    await gov.approve(proposal, m1, code="exists")      # municipality approved already
    await gov.approve(proposal, m0, code="exists")
    enacted = await gov.approve(proposal, c0)
    assert kinds(enacted)[:3] == ["gov.approved", "gov.enacted", "policy.set"]
    await gov.approve(proposal, c0, code="exists")
    await gov.approve(proposal, v0, code="invalid_state")   # enacted: closed


async def test_approving_a_withdrawn_failed_or_expired_proposal_is_invalid_state(gov):
    (m0, _), (c0,), (v0,) = (gov.stewards[o] for o in ("municipality", "cbs", "vng"))
    withdrawn = (await gov.propose("policy.set", policy(), m0))["tx_id"]
    await gov.tx(m0, "gov.withdraw", {"proposal": withdrawn})
    await gov.approve(withdrawn, c0, code="invalid_state")
    await gov.tx(m0, "gov.withdraw", {"proposal": withdrawn}, code="invalid_state")
    failing = (await gov.propose("member.register", {
        "key": new_key().public, "role": "steward", "organisation": "nowhere"}, m0))["tx_id"]
    assert failed_code(await gov.approve(failing, c0)) == "not_found"
    await gov.approve(failing, v0, code="invalid_state")
    expires = now_ms() + 3_000          # ahead of the block that opens it, even when slow
    expiring = (await gov.propose("policy.set", policy(2), m0, expires=expires))["tx_id"]
    await pass_time(gov, expires)
    await gov.approve(expiring, c0, code="invalid_state")
    await gov.tx(m0, "gov.withdraw", {"proposal": expiring}, code="invalid_state")
    assert (await gov.get(f"/v1/proposals/{expiring}"))["status"] == "expired"


async def test_proposals_of_ungoverned_classes_or_beyond_30_days_are_invalid_state(chain):
    body = await chain.propose("member.register", {
        "key": new_key().public, "role": "citizen", "age_band": "21plus", "area": "GMS"},
        code="invalid_state")                           # member.citizen is 0
    assert "state" in body["detail"]
    await chain.propose("policy.set", policy(), expires=now_ms() + 31 * DAY_MS,
                        code="invalid_state")
    too_high = await chain.propose("constitution.set",
                                   {"thresholds": dict(ONE, **{"constitution.set": 2})})
    assert failed_code(too_high) == "invalid_state"     # 2 of 1 organisation


async def test_second_recovery_reopening_and_early_completion_are_invalid_state(chain):
    alice, bob = await chain.member("citizen"), await chain.member("citizen")
    opened = await chain.tx(chain.admin, "member.recover",
                            {"old": alice.public, "new": new_key().public})
    assert kinds(opened) == ["member.recovery_opened"]
    await chain.tx(chain.admin, "member.recover",
                   {"old": alice.public, "new": new_key().public}, code="invalid_state")
    await chain.tx(chain.admin, "recovery.complete", {"old": alice.public},
                   code="invalid_state")                # 72 hours have not passed
    await chain.tx(chain.admin, "member.recover", {"old": bob.public, "new": new_key().public})
    cancelled = await chain.tx(chain.steward, "recovery.cancel", {"old": bob.public})
    assert cancelled["events"] == [{"kind": "member.recovery_cancelled", "old": bob.public.hex(),
                                    "by": chain.steward.public.hex()}]
    await chain.tx(chain.admin, "member.recover",
                   {"old": bob.public, "new": new_key().public}, code="invalid_state")
    # governance still may, at once
    moved = await chain.govern("member.recover", {"old": bob.public, "new": new_key().public})
    assert "member.recovered" in kinds(moved)


async def test_expires_not_after_the_block_time_is_deadline_passed(chain):
    body = await chain.propose("policy.set", policy(), expires=now_ms() - 1_000,
                               code="deadline_passed")
    assert "expiry" in body["detail"]


async def test_a_frozen_key_signs_nothing_until_the_recovery_is_cancelled(chain):
    alice = await rich_citizen(chain, "f1")
    shop = await chain.member("merchant")
    await chain.tx(chain.admin, "member.recover", {"old": alice.public, "new": new_key().public})
    refused = await chain.tx(alice, "coin.spend", {"to": shop.public, "amount": 100},
                             code="frozen")
    assert refused["detail"].startswith("This key is frozen while a recovery of it is open")
    await chain.tx(alice, "recovery.cancel", {"old": alice.public}, code="frozen")
    await chain.tx(chain.admin, "recovery.cancel", {"old": alice.public})
    await chain.tx(alice, "coin.spend", {"to": shop.public, "amount": 100})
