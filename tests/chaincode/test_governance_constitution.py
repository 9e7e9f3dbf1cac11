"""constitution.set: organisations removed and added, and the order of a steward
registration's checks."""
from __future__ import annotations

from chaincode import queries
from chaincode_harness import ADMIN, Chain, key

ORGS = ["city", "cbs", "uni", "vng"]
STEWARDS = {o: key(f"steward-{o}") for o in ORGS}


def four() -> Chain:
    # the harness's validator belongs to the first organisation, "city"
    return Chain(organisations=[{"id": o, "stewards": [STEWARDS[o]]} for o in ORGS])


def thresholds(**change) -> dict:
    base = {"policy.set": 2, "member.citizen": 0, "member.merchant": 0,
            "member.privileged": 2, "member.recover": 2, "validators.set": 2,
            "rules.activate": 2, "constitution.set": 3}
    return dict(base, **change)


def enact(chain: Chain, action: str, by=("city", "cbs", "uni", "vng"), **args):
    """Propose by the first organisation, approve by the others until enacted."""
    result = chain.propose(STEWARDS[by[0]], action, **args)
    assert result.code == "ok", result.code
    events = result.events
    for organisation in by[1:]:
        if any(e["kind"] in ("gov.enacted", "gov.failed") for e in events):
            break
        answer = chain.do(STEWARDS[organisation], "gov.approve",
                          proposal=events[0]["proposal"])
        assert answer.code == "ok", answer.code
        events = answer.events
    return events


def test_removing_an_organisation_revokes_its_stewards_and_withdraws_its_proposals():
    chain = four()
    pending = chain.propose(STEWARDS["vng"], "policy.set", year=2026, hourly_cap_21plus=1,
                            hourly_cap_under21=1, monthly_cap=1, yearly_cap=1)
    proposal = pending.events[0]["proposal"]
    events = enact(chain, "constitution.set", thresholds=thresholds(),
                   organisations=["city", "cbs", "uni"])
    kinds = [e["kind"] for e in events]
    assert kinds == ["gov.approved", "gov.enacted", "member.revoked", "constitution.set",
                     "gov.withdrawn"], kinds
    assert events[2]["key"] == STEWARDS["vng"] and events[4]["proposal"] == proposal
    assert queries.member(chain.state, STEWARDS["vng"])["active"] is False
    # the withdrawn proposal cannot be enacted by the remaining organisations
    assert chain.do(STEWARDS["cbs"], "gov.approve", proposal=proposal).code == "invalid_state"
    assert chain.propose(STEWARDS["vng"], "policy.set", year=2026, hourly_cap_21plus=1,
                         hourly_cap_under21=1, monthly_cap=1, yearly_cap=1).code == "revoked"


def test_an_organisation_that_owns_a_validator_is_not_removed():
    chain = four()
    events = enact(chain, "constitution.set", thresholds=thresholds(),
                   organisations=["cbs", "uni", "vng"])
    assert events[-1] == {"kind": "gov.failed", "proposal": events[0]["proposal"],
                          "code": "invalid_state", "info": {}}
    assert queries.member(chain.state, STEWARDS["city"])["active"] is True


def test_an_added_organisations_first_steward_needs_no_approval_of_its_own():
    chain = four()
    enact(chain, "constitution.set", thresholds=thresholds(),
          organisations=ORGS + ["cotown"])
    first = key("steward-cotown")
    events = enact(chain, "member.register", key=first, role="steward",
                   organisation="cotown")
    assert [e["kind"] for e in events][-2:] == ["gov.enacted", "member.registered"]
    # from now on, cotown's stewards change only with cotown among the approvers
    second = key("steward-cotown-2")
    events = enact(chain, "member.register", by=("city", "cbs", "uni", "vng"), key=second,
                   role="steward", organisation="cotown")
    assert [e["kind"] for e in events] == ["gov.approved"]
    answer = chain.do(first, "gov.approve", proposal=events[0]["proposal"])
    assert [e["kind"] for e in answer.events][-2:] == ["gov.enacted", "member.registered"]


def test_a_steward_of_an_unknown_organisation_is_not_found_before_exists():
    chain = four()
    answer = chain.propose(STEWARDS["city"], "member.register", key=ADMIN, role="steward",
                           organisation="nowhere")
    enacted = [e for e in answer.events if e["kind"] == "gov.failed"]
    if not enacted:      # threshold 3 of 4: two more organisations decide it
        for organisation in ("cbs", "uni"):
            answer = chain.do(STEWARDS[organisation], "gov.approve",
                              proposal=answer.events[0]["proposal"])
        enacted = [e for e in answer.events if e["kind"] == "gov.failed"]
    assert enacted[0]["code"] == "not_found"
