"""The governance check on its own, fed with results the real chaincode would never write:
each governed effect needs a decision under the constitution then in force, by the
organisations whose approvals still count; expired, withdrawn and failed proposals never
take effect; recoveries complete only when open and due."""
from __future__ import annotations

import hashlib
import itertools

import pytest
from hypothesis import given, strategies as st

from audit_kit import ADMIN
from chaincode.api import Tx
from gov_kit import DAY_MS, STEWARDS, policy
from ledger_kit import T0, VALIDATOR_NAMES, make_genesis
from node.audit.governance import Governance
from node.audit.invariants import InvariantBroken

GENESIS = make_genesis(ADMIN)
ORGS = VALIDATOR_NAMES                       # municipality, cbs, brightlands, vng
NEW = b"n" * 32
_ids = itertools.count(1)


def tx(signer: bytes, kind: str, **args) -> Tx:
    return Tx(hashlib.sha256(b"%d" % next(_ids)).hexdigest(), signer, kind, args)


def steward(org: str) -> bytes:
    return STEWARDS[org].public


class Feed:
    """One result per block, at block times an hour apart from T0."""

    def __init__(self, genesis=GENESIS):
        self.g = Governance(genesis)
        self.height, self.time = 0, T0

    def run(self, t: Tx, *events: dict, after_ms: int = 3_600_000) -> None:
        self.height += 1
        self.time += after_ms
        self.g.block(self.height, self.time, [(t, list(events))])

    def propose(self, org: str, action: str, args: dict, decided=(), expires=None) -> str:
        t = tx(steward(org), "gov.propose", action=action, args=args)
        need = self.g.law["thresholds"][_klass(action, args)]
        self.run(t, {"kind": "gov.proposed", "proposal": t.tx_id, "action": action,
                     "args": args, "organisation": org, "threshold": need,
                     "expires": expires or self.time + 7 * DAY_MS}, *decided)
        return t.tx_id

    def approve(self, org: str, proposal: str, *decided: dict, count: int,
                after_ms: int = 3_600_000) -> None:
        self.run(tx(steward(org), "gov.approve", proposal=proposal),
                 {"kind": "gov.approved", "proposal": proposal, "organisation": org,
                  "approvals": count}, *decided, after_ms=after_ms)


def _klass(action, args):
    if action == "member.register":
        return "member.privileged" if args["role"] not in ("citizen", "merchant") \
            else "member." + args["role"]
    return action


def enacted(proposal: str, action: str) -> dict:
    return {"kind": "gov.enacted", "proposal": proposal, "action": action}


def set_policy(year: int) -> dict:
    return dict(policy(year), kind="policy.set")


def broken(call, *args, **kwargs) -> InvariantBroken:
    with pytest.raises(InvariantBroken) as caught:
        call(*args, **kwargs)
    return caught.value


@given(st.lists(st.sampled_from(ORGS[1:]), unique=True))
def test_a_policy_takes_effect_exactly_when_three_organisations_approve(approvers):
    """The proposer's organisation and `approvers`; the last one's result enacts it."""
    feed = Feed()
    effect = (enacted("p", "policy.set"), set_policy(2027))
    n = 1 + len(approvers)

    def decide():
        if not approvers:
            t = tx(steward("municipality"), "gov.propose")
            feed.run(t, {"kind": "gov.proposed", "proposal": t.tx_id, "action": "policy.set",
                         "args": policy(2027), "organisation": "municipality",
                         "threshold": 3, "expires": feed.time + DAY_MS},
                     dict(effect[0], proposal=t.tx_id), effect[1])
            return
        p = feed.propose("municipality", "policy.set", policy(2027))
        for count, org in enumerate(approvers[:-1], 2):
            feed.approve(org, p, count=count)
        feed.approve(approvers[-1], p, dict(effect[0], proposal=p), effect[1], count=n)

    if n < 3:
        failure = broken(decide)
        assert failure.height == feed.height
        names = ", ".join(["municipality"] + approvers)
        assert failure.reason.endswith(f"takes effect with the approval of {n} "
                                       f"organisation(s) ({names}); the constitution in "
                                       f"force needs 3 for policy.set")
    else:
        decide()
        assert [d["approvals"] for d in feed.g.decisions] == [["municipality", *approvers]]


def test_an_admins_own_governed_effect_fails_and_passes_while_its_class_is_0():
    feed = Feed()
    failure = broken(feed.run, tx(ADMIN.public, "policy.set", **policy(2027)),
                     set_policy(2027))
    assert "the cap policy of 2027 took effect without governance" in failure.reason
    assert "policy.set needs the approval of 3" in failure.reason
    failure = broken(feed.run, tx(ADMIN.public, "member.register", key=NEW, role="auditor"),
                     {"kind": "member.registered", "key": NEW, "role": "auditor"})
    assert "registration of auditor" in failure.reason
    feed.run(tx(ADMIN.public, "member.register", key=NEW, role="merchant", name="S"),
             {"kind": "member.registered", "key": NEW, "role": "merchant", "name": "S"})
    failure = broken(feed.run, tx(steward("cbs"), "member.revoke", key=NEW),
                     {"kind": "member.revoked", "key": NEW})
    assert "signed by" in failure.reason and "not in an admin's member.revoke" in \
        failure.reason


def test_the_threshold_is_the_constitution_in_force_when_the_proposal_is_decided():
    feed = Feed()
    law = dict(GENESIS.constitution["thresholds"], **{"policy.set": 4})
    c = feed.propose("municipality", "constitution.set", {"thresholds": law})
    p = feed.propose("municipality", "policy.set", policy(2027))
    for n, org in enumerate(ORGS[1:], 2):
        decided = () if n < 4 else (enacted(c, "constitution.set"),
                                    dict(kind="constitution.set", thresholds=law,
                                         organisations=list(ORGS),
                                         recovery_delay_ms=3 * DAY_MS))
        feed.approve(org, c, *decided, count=n)
    feed.approve("cbs", p, count=2)
    failure = broken(feed.approve, "vng", p, enacted(p, "policy.set"), set_policy(2027),
                     count=3)
    assert "needs 4 for policy.set" in failure.reason


def test_a_change_of_an_organisations_stewards_needs_that_organisation():
    feed = Feed()
    args = {"key": NEW, "role": "steward", "organisation": "cbs"}
    p = feed.propose("municipality", "member.register", args)
    feed.approve("brightlands", p, count=2)
    failure = broken(feed.approve, "vng", p, enacted(p, "member.register"),
                     {"kind": "member.registered", **args}, count=3)
    assert "changes the stewards of cbs without cbs's approval" in failure.reason


def test_expired_withdrawn_and_failed_proposals_never_take_effect():
    feed = Feed()
    p = feed.propose("municipality", "policy.set", policy(2027),
                     expires=feed.time + 3 * 3_600_000)
    feed.approve("cbs", p, count=2)
    failure = broken(feed.approve, "vng", p, count=3)
    assert "is approved after it expired" in failure.reason
    p = feed.propose("municipality", "policy.set", policy(2028))
    feed.run(tx(steward("municipality"), "gov.withdraw", proposal=p),
             {"kind": "gov.withdrawn", "proposal": p})
    failure = broken(feed.approve, "cbs", p, enacted(p, "policy.set"), set_policy(2028),
                     count=2)
    assert "is approved after it was withdrawn at height" in failure.reason
    args = {"key": NEW, "role": "reviewer"}
    p = feed.propose("municipality", "member.register", args)
    feed.approve("cbs", p, count=2)
    feed.approve("vng", p, {"kind": "gov.failed", "proposal": p, "code": "exists",
                            "info": {}}, count=3)
    assert feed.g.decisions[-1]["outcome"] == "failed"
    failure = broken(feed.approve, "brightlands", p, enacted(p, "member.register"),
                     {"kind": "member.registered", **args}, count=4)
    assert "is approved after it had failed" in failure.reason


def test_an_effect_must_be_what_the_enacted_proposal_ordered():
    feed = Feed()
    p = feed.propose("municipality", "policy.set", policy(2027))
    feed.approve("cbs", p, count=2)
    failure = broken(feed.approve, "vng", p, enacted(p, "policy.set"), set_policy(2028),
                     count=3)
    assert "the cap policy of 2028 took effect in the enactment of proposal" in \
        failure.reason


def test_an_approval_by_a_key_that_is_not_a_steward_of_that_organisation_fails():
    feed = Feed()
    p = feed.propose("municipality", "policy.set", policy(2027))
    failure = broken(feed.run, tx(steward("vng"), "gov.approve", proposal=p),
                     {"kind": "gov.approved", "proposal": p, "organisation": "cbs",
                      "approvals": 2})
    assert "is not an active steward of it" in failure.reason


def _opened(feed: Feed, old: bytes = b"o" * 32) -> bytes:
    feed.run(tx(ADMIN.public, "member.register", key=old, role="citizen", age_band="21plus",
                area="GMS"),
             {"kind": "member.registered", "key": old, "role": "citizen",
              "age_band": "21plus", "area": "GMS"})
    feed.run(tx(ADMIN.public, "member.recover", old=old, new=NEW),
             {"kind": "member.recovery_opened", "old": old, "new": NEW,
              "effective": feed.time + 3_600_000 + 3 * DAY_MS})
    return old


def test_a_recovery_completes_only_when_open_and_due():
    feed = Feed()
    old = _opened(feed)
    moved = {"kind": "member.recovered", "old": old, "new": NEW, "balance": 0}
    failure = broken(feed.run, tx(ADMIN.public, "recovery.complete", old=old), moved)
    assert "before its effective time" in failure.reason
    feed.run(tx(ADMIN.public, "recovery.complete", old=old), moved, after_ms=3 * DAY_MS)
    failure = broken(feed.run, tx(ADMIN.public, "recovery.complete", old=b"x" * 32),
                     {"kind": "member.recovered", "old": b"x" * 32, "new": b"y" * 32,
                      "balance": 0})
    assert "none was open" in failure.reason


def test_an_admin_cannot_reopen_a_recovery_a_steward_cancelled():
    feed = Feed()
    old = _opened(feed)
    feed.run(tx(steward("cbs"), "recovery.cancel", old=old),
             {"kind": "member.recovery_cancelled", "old": old, "by": steward("cbs")})
    failure = broken(feed.run, tx(ADMIN.public, "member.recover", old=old, new=b"m" * 32),
                     {"kind": "member.recovery_opened", "old": old, "new": b"m" * 32,
                      "effective": feed.time + 3_600_000 + 3 * DAY_MS})
    assert "after a steward cancelled" in failure.reason


def test_a_validator_set_must_be_the_one_ordered_from_the_height_its_enactment_gives():
    """Genesis's checkpoint interval is 4 and its switch margin 64: a set enacted at
    height 3 orders from 4 + 64 + 1 = 69."""
    assert (GENESIS.checkpoint_interval, GENESIS.switch_margin()) == (4, 64)
    wanted = {"validators": [{"name": n, "key": bytes([i]) * 32, "organisation": n}
                             for i, n in enumerate(ORGS)]}

    def decide(effect: dict, args: dict = wanted) -> None:
        feed = Feed()
        p = feed.propose("municipality", "validators.set", args)
        feed.approve("cbs", p, count=2)
        feed.approve("vng", p, enacted(p, "validators.set"),
                     dict(effect, kind="validators.set"), count=3)
        assert feed.height == 3

    decide(dict(wanted, **{"from": 69}))
    failure = broken(decide, dict(wanted, **{"from": 68}))
    assert "the validator set enacted at height 3 orders from 68, not from 69" in \
        failure.reason
    other = {"validators": wanted["validators"][::-1], "from": 69}
    failure = broken(decide, other)
    assert "a validators.set took effect in the enactment of proposal" in failure.reason
    stray = {"validators": [dict(wanted["validators"][0], organisation="library")]}
    failure = broken(decide, dict(stray, **{"from": 69}), stray)
    assert "names validator municipality of library, which is not an organisation" in \
        failure.reason
