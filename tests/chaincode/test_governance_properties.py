"""Stateful property test of governance mixed with the day-to-day kinds.

Three or four organisations with one to three stewards each, two admins, a reviewer,
citizens and merchants. The rules propose (cap policies, privileged roles, stewards,
revocations, recoveries, constitutions that change thresholds, the delay and the
organisations), approve, withdraw, let admins try governed kinds directly, open delayed
recoveries, cancel them (stewards and admins), complete them before and after
`effective`, let time pass (to the exact expiry or effective time too), and run tasks,
spends and payouts meanwhile.

The test keeps its own model of members, the constitution, proposals and recoveries,
written from docs/governance.md and docs/api.md; it never calls the
chaincode's helpers (governance.counting_organisations, constitution.class_of, ...). The
events of each `ok` result drive the model. After every transaction the invariants are
checked against the transaction's code and events and the model as it was before it;
after every block, against the state:

1. a governed effect (a policy, a privileged role or a steward registered, revoked or
   recovered, an immediate recovery, a constitution) happens only in a gov.enacted whose
   counting organisations (approvals of keys that are still active, unfrozen stewards of
   their organisation, which is in the constitution) reach the threshold in force when
   the deciding approval runs; a steward change of X has X among them while X has an
   active steward;
2. an organisation never counts twice: no second counting approval, `approvals` in
   gov.approved is the number of distinct counting organisations, a stored proposal
   has one approval per organisation;
3. an expired, withdrawn, failed or enacted proposal takes no approval, no withdrawal,
   and never takes effect;
4. a frozen key signs nothing (`frozen`, or `revoked` when it is revoked too);
5. a delayed recovery completes only at or after `effective`, never after a cancel, to
   its own new key; after a steward's cancel no admin re-opens one for that key;
6. the constitution stays changeable: every threshold from its least (constitution.set
   at least 1) to the number of organisations, and the constitution.set and
   member.privileged thresholds within the organisations that have an active steward
   (so that they can change it again, and staff an added organisation);
7. supply: the balances sum to minted - redeemed, none is negative, and each is the one
   the model expects.

On top of that (STRICT, the default), the model predicts every code and event list of
the governance, member and recovery kinds, which must be the chaincode's, and its
members, proposals, recoveries and constitution must be the state's ("invariant 0").
test_governance_mutants.py runs the machine with and without it.

GOVERNANCE_EXAMPLES / GOVERNANCE_STEPS make the hunt longer;
GOVERNANCE_RANDOM=1 draws new examples instead of the derandomized ones, and
GOVERNANCE_SHRINK=0 reports a failure at once instead of shrinking it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, Phase, event, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from chaincode import state as keys
from chaincode import queries
from chaincode.api import Tx
from chaincode_harness import DAY_MS, HOUR_MS, T_JUNE_2025, Chain, key
from chaincode_model import Member, governed_class

EXAMPLES = int(os.environ.get("GOVERNANCE_EXAMPLES", "60"))
STEPS = int(os.environ.get("GOVERNANCE_STEPS", "40"))
RANDOM = os.environ.get("GOVERNANCE_RANDOM", "0") == "1"
SHRINK = os.environ.get("GOVERNANCE_SHRINK", "1") != "0"

# ----------------------------------------------------------------------- the contract
# Written out from docs/governance.md's tables, not imported from chaincode.constitution.
CLASSES = ("policy.set", "member.citizen", "member.merchant", "member.privileged",
           "member.recover", "validators.set", "rules.activate", "constitution.set")
LEAST = {"policy.set": 0, "member.citizen": 0, "member.merchant": 0,
         "member.privileged": 1, "member.recover": 1, "validators.set": 1,
         "rules.activate": 1, "constitution.set": 1}
PRIVILEGED = frozenset(("admin", "reviewer", "auditor", "steward"))
GOVERNABLE = ("member.register", "member.revoke", "member.recover", "policy.set",
              "constitution.set")
MAX_EXPIRY_MS = 30 * DAY_MS
MAX_OPEN = 64
SIGNERS = {"member.register": {"admin"}, "member.revoke": {"admin"},
           "member.recover": {"admin"}, "policy.set": {"admin"}, "constitution.set": set(),
           "recovery.cancel": {"steward", "admin"}, "recovery.complete": {"admin"},
           "gov.propose": {"steward"}, "gov.approve": {"steward"},
           "gov.withdraw": {"steward"}, "task.post": {"admin"}, "task.claim": {"citizen"},
           "task.submit": {"citizen"}, "task.approve": {"admin", "reviewer"},
           "coin.spend": {"citizen", "merchant"}, "coin.redeem": {"merchant"},
           "payout.confirm": {"admin"}}
AMSTERDAM = ZoneInfo("Europe/Amsterdam")

# ----------------------------------------------------------------------- the cast
ORGS = ["muni", "cbs", "bright", "vng"]
EXTRA_ORGS = ["newco", "wijk"]
VALIDATOR_ORG = ORGS[0]                 # the harness gives the validator to the first
STEWARDS = {org: [key(f"gp-steward-{org}-{i}") for i in range(3)] for org in ORGS}
ADMINS = [key("gp-admin-0"), key("gp-admin-1")]
REVIEWER = key("gp-reviewer")
CITIZENS = [key(f"gp-citizen-{i}") for i in range(4)]
MERCHANTS = [key(f"gp-merchant-{i}") for i in range(2)]
FRESH = [key(f"gp-fresh-{i}") for i in range(16)]
STARTS = [T_JUNE_2025, 1_767_222_000_000 - 2 * DAY_MS]    # June; two days before New Year

def local_year(time_ms: int) -> int:
    return datetime.fromtimestamp(time_ms / 1000, AMSTERDAM).year


class Broken(AssertionError):
    """An invariant failed; `number` says which (0: the model disagrees)."""

    def __init__(self, number: int, message: str):
        super().__init__(f"invariant {number}: {message}")
        self.number = number


def check(number: int, condition, message) -> None:
    if not condition:
        raise Broken(number, message() if callable(message) else message)


class Refused(Exception):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


# ----------------------------------------------------------------------- the model
@dataclass
class Proposal:
    action: str
    args: dict
    klass: str
    org: str
    expires: int
    approvals: dict                                # organisation -> key, in order
    status: str = "open"                           # open, enacted, failed, withdrawn


@dataclass
class Recovery:
    new: bytes
    effective: int


class World:
    """What the ledger should be, from the contract; `run` predicts a transaction."""

    def __init__(self, orgs, thresholds, delay):
        self.members: dict[bytes, Member] = {}
        self.orgs = list(orgs)
        self.thresholds = dict(thresholds)
        self.delay = delay
        self.proposals: dict[str, Proposal] = {}
        self.recoveries: dict[bytes, Recovery] = {}

    def copy(self) -> "World":
        other = World(self.orgs, self.thresholds, self.delay)
        other.members = {k: replace(m, attrs=dict(m.attrs)) for k, m in self.members.items()}
        other.proposals = {p: replace(v, approvals=dict(v.approvals))
                           for p, v in self.proposals.items()}
        other.recoveries = dict(self.recoveries)
        return other

    # --- the oracles
    def klass(self, action: str, args: dict) -> str | None:
        """The governed class of an action (raises not_found for a missing target)."""
        try:
            return governed_class(self.members, action, args)
        except LookupError:
            raise Refused("not_found") from None

    def owner(self, action: str, args: dict) -> str | None:
        """The organisation whose stewards the action changes."""
        if action == "member.register":
            return args.get("organisation") if args["role"] == "steward" else None
        if action in ("member.revoke", "member.recover"):
            target = self.members.get(args["key"] if action == "member.revoke" else args["old"])
            if target is not None and target.role == "steward":
                return target.org
        return None

    def active_stewards(self, org: str) -> list[bytes]:
        return sorted(k for k, m in self.members.items()
                      if m.role == "steward" and m.active and m.org == org)

    def counts(self, org: str, k: bytes) -> bool:
        m = self.members.get(k)
        return (org in self.orgs and m is not None and m.active and not m.frozen
                and m.role == "steward" and m.org == org)

    def counting(self, approvals: dict) -> set[str]:
        return {org for org, k in approvals.items() if self.counts(org, k)}

    def is_open(self, p: Proposal, time_ms: int) -> bool:
        return p.status == "open" and time_ms < p.expires and self.thresholds[p.klass] > 0

    def used(self, k: bytes, besides: bytes | None = None) -> bool:
        """A key that has been a member, or is the new key of an open recovery."""
        return k in self.members or any(r.new == k for old, r in self.recoveries.items()
                                        if old != besides)

    def admins(self) -> int:
        return sum(1 for m in self.members.values() if m.role == "admin" and m.active)

    # --- predicting a transaction: (code, events), events None when not predicted
    def run(self, tx: Tx, time_ms: int):
        kind, signer, args = tx.kind, tx.signer, tx.args
        m = self.members.get(signer)
        if m is None:
            return "unknown_member", []
        if not m.active:
            return "revoked", []
        if kind == "task.approve":
            citizen = self.members.get(args["citizen"])
            if citizen is not None and not citizen.active:
                return "revoked", []
        if m.frozen:
            return "frozen", []
        if m.role not in SIGNERS[kind]:
            return "unauthorized", []
        try:
            if kind in GOVERNABLE:
                return "ok", self.direct(kind, signer, args, time_ms)
            if kind == "gov.propose":
                return "ok", self.propose(tx, m, time_ms)
            if kind == "gov.approve":
                return "ok", self.approve(tx, m, time_ms)
            if kind == "gov.withdraw":
                return "ok", self.withdraw(tx, m, time_ms)
            if kind == "recovery.cancel":
                return "ok", self.cancel(signer, m, args["old"])
            if kind == "recovery.complete":
                return "ok", self.complete(args["old"], time_ms)
        except Refused as refusal:
            return refusal.code, []
        return None, None                  # tasks and coins: the result drives the model

    def direct(self, kind, signer, args, time_ms):
        klass = self.klass(kind, args)
        if klass is not None and self.thresholds[klass] >= 1:
            if klass == "member.recover":
                return self.open_recovery(args["old"], args["new"], time_ms)
            raise Refused("unauthorized")
        return self.act(kind, args, time_ms, signer)

    def propose(self, tx, m, time_ms):
        args, org = tx.args, m.org
        action, action_args, expires = args["action"], args["args"], args["expires"]
        klass = self.klass(action, action_args)
        threshold = 0 if klass is None else self.thresholds[klass]
        if threshold == 0 or expires > time_ms + MAX_EXPIRY_MS:
            raise Refused("invalid_state")
        live = sum(1 for p in self.proposals.values()
                   if p.org == org and p.status == "open" and p.expires > time_ms)
        if live >= MAX_OPEN:
            raise Refused("invalid_state")
        if expires <= time_ms:
            raise Refused("deadline_passed")
        p = Proposal(action, action_args, klass, org, expires, {org: tx.signer})
        self.proposals[tx.tx_id] = p
        proposed = {"kind": "gov.proposed", "proposal": tx.tx_id, "action": action,
                    "args": action_args, "organisation": org, "expires": expires,
                    "threshold": threshold}
        if "reason" in args:
            proposed["reason"] = args["reason"]
        return [proposed] + self.decide(tx.tx_id, p, time_ms)

    def approve(self, tx, m, time_ms):
        proposal, org = tx.args["proposal"], m.org
        p = self.proposals.get(proposal)
        if p is None:
            raise Refused("not_found")
        if org in p.approvals and self.counts(org, p.approvals[org]):
            raise Refused("exists")
        if not self.is_open(p, time_ms):
            raise Refused("invalid_state")
        p.approvals.pop(org, None)
        p.approvals[org] = tx.signer
        approved = {"kind": "gov.approved", "proposal": proposal, "organisation": org,
                    "approvals": len(self.counting(p.approvals))}
        return [approved] + self.decide(proposal, p, time_ms)

    def withdraw(self, tx, m, time_ms):
        p = self.proposals.get(tx.args["proposal"])
        if p is None:
            raise Refused("not_found")
        if p.org != m.org:
            raise Refused("unauthorized")
        if not self.is_open(p, time_ms):
            raise Refused("invalid_state")
        p.status = "withdrawn"
        return [{"kind": "gov.withdrawn", "proposal": tx.args["proposal"]}]

    def decide(self, proposal: str, p: Proposal, time_ms: int) -> list:
        approving = self.counting(p.approvals)
        owner = self.owner(p.action, p.args)
        if len(approving) < self.thresholds[p.klass] or (
                owner is not None and owner not in approving and self.active_stewards(owner)):
            return []
        before = list(self.orgs)
        try:
            events = self.act(p.action, p.args, time_ms, None)
        except Refused as refusal:
            p.status = "failed"
            return [{"kind": "gov.failed", "proposal": proposal, "code": refusal.code,
                     "info": {}}]
        p.status = "enacted"
        events = [{"kind": "gov.enacted", "proposal": proposal, "action": p.action}] + events
        # A removed organisation's open proposals are withdrawn (governance.md, "Changing
        # the constitution"), in the order of their ids.
        for org in before:
            if org not in self.orgs:
                for other in sorted(self.proposals):
                    q = self.proposals[other]
                    if q.org == org and q.status == "open" and time_ms < q.expires:
                        q.status = "withdrawn"
                        events.append({"kind": "gov.withdrawn", "proposal": other})
        return events

    # --- the actions; each checks everything before it changes anything
    def act(self, action, args, time_ms, signer):
        """signer None: governance."""
        if action == "member.register":
            return self.register(args)
        if action == "member.revoke":
            return self.revoke(args["key"], signer)
        if action == "member.recover":
            assert signer is None, "an admin's member.recover opens a delayed recovery"
            return self.recover_now(args["old"], args["new"])
        if action == "policy.set":
            if args["year"] < local_year(time_ms):
                raise Refused("invalid_state")
            return [dict(args, kind="policy.set")]
        assert action == "constitution.set" and signer is None
        return self.set_constitution(args)

    def register(self, args):
        k, role = args["key"], args["role"]
        if role == "steward" and args["organisation"] not in self.orgs:
            raise Refused("not_found")
        if self.used(k):
            raise Refused("exists")
        attrs = {n: v for n, v in args.items() if n not in ("key", "role")}
        self.members[k] = Member(role, attrs)
        return [dict(attrs, kind="member.registered", key=k, role=role)]

    def revoke(self, k, signer):
        target = self.members.get(k)
        if target is None:
            raise Refused("not_found")
        if k == signer or not target.active:
            raise Refused("invalid_state")
        if target.role == "admin" and self.admins() <= 1:
            raise Refused("invalid_state")
        if target.role == "steward" and len(self.active_stewards(target.org)) <= 1:
            raise Refused("invalid_state")
        events = []
        if k in self.recoveries:
            self.close(k)
            events.append({"kind": "member.recovery_cancelled", "old": k,
                           "by": "governance" if signer is None else signer})
        target.active = False
        return events + [{"kind": "member.revoked", "key": k}]

    def recover_now(self, old, new):
        target = self.members.get(old)
        if target is None:
            raise Refused("not_found")
        if self.used(new, besides=old):
            raise Refused("exists")
        if target.recovered_to is not None:
            raise Refused("invalid_state")
        if target.role == "steward" and target.org not in self.orgs:
            raise Refused("invalid_state")        # a steward of a removed organisation
        events = []
        if old in self.recoveries:
            self.close(old)
            events.append({"kind": "member.recovery_cancelled", "old": old,
                           "by": "governance"})
        return events + [self.move(old, new)]

    def move(self, old, new):
        target = self.members[old]
        self.members[new] = Member(target.role, dict(target.attrs), balance=target.balance)
        self.members[old] = Member(target.role, active=False, recovered_to=new)
        return {"kind": "member.recovered", "old": old, "new": new, "balance": target.balance}

    def set_constitution(self, args):
        orgs = args.get("organisations", self.orgs)
        if max(args["thresholds"].values()) > len(orgs):
            raise Refused("invalid_state")
        removed = [o for o in self.orgs if o not in orgs]
        if VALIDATOR_ORG in removed:
            raise Refused("invalid_state")
        # never a constitution its stewards could not change again (governance.md)
        staffed = sum(1 for o in orgs if self.active_stewards(o))
        if max(args["thresholds"]["constitution.set"],
               args["thresholds"]["member.privileged"]) > staffed:
            raise Refused("invalid_state")
        events = []
        for org in removed:
            for k in self.active_stewards(org):
                self.members[k].active = False
                events.append({"kind": "member.revoked", "key": k})
        self.orgs = list(orgs)
        self.thresholds = dict(args["thresholds"])
        self.delay = args.get("recovery_delay_ms", self.delay)
        return events + [{"kind": "constitution.set", "organisations": list(self.orgs),
                          "recovery_delay_ms": self.delay,
                          "thresholds": dict(self.thresholds)}]

    # --- recoveries
    def open_recovery(self, old, new, time_ms):
        target = self.members[old]
        if self.used(new):
            raise Refused("exists")
        if (target.recovered_to is not None or old in self.recoveries
                or target.steward_cancelled):
            raise Refused("invalid_state")
        effective = time_ms + self.delay
        self.recoveries[old] = Recovery(new, effective)
        target.frozen = True
        return [{"kind": "member.recovery_opened", "old": old, "new": new,
                 "effective": effective}]

    def close(self, old):
        del self.recoveries[old]
        self.members[old].frozen = False

    def cancel(self, signer, m, old):
        if old not in self.recoveries:
            raise Refused("not_found")
        self.close(old)
        if m.role == "steward":
            self.members[old].steward_cancelled = True
        return [{"kind": "member.recovery_cancelled", "old": old, "by": signer}]

    def complete(self, old, time_ms):
        recovery = self.recoveries.get(old)
        if recovery is None:
            raise Refused("not_found")
        if time_ms < recovery.effective:
            raise Refused("invalid_state")
        self.close(old)
        return [self.move(old, recovery.new)]

    # --- following the ledger: an ok result's events drive the model
    def apply(self, tx: Tx, events: list) -> None:
        signer = self.members.get(tx.signer)
        for ev in events:
            kind = ev["kind"]
            if kind == "gov.proposed":
                action, args = ev["action"], ev["args"]
                self.proposals[ev["proposal"]] = Proposal(
                    action, args, self.klass(action, args), ev["organisation"], ev["expires"],
                    {ev["organisation"]: tx.signer})
            elif kind == "gov.approved":
                approvals = self.proposals[ev["proposal"]].approvals
                approvals.pop(ev["organisation"], None)
                approvals[ev["organisation"]] = tx.signer
            elif kind in ("gov.enacted", "gov.failed", "gov.withdrawn"):
                self.proposals[ev["proposal"]].status = kind[len("gov."):]
            elif kind == "member.registered":
                attrs = {n: v for n, v in ev.items() if n not in ("kind", "key", "role")}
                self.members[ev["key"]] = Member(ev["role"], attrs)
            elif kind == "member.revoked":
                self.members[ev["key"]].active = False
            elif kind == "member.recovered":
                if ev["old"] in self.recoveries:           # recovery.complete closes it
                    self.close(ev["old"])
                self.move(ev["old"], ev["new"])
            elif kind == "member.recovery_opened":
                self.recoveries[ev["old"]] = Recovery(ev["new"], ev["effective"])
                self.members[ev["old"]].frozen = True
            elif kind == "member.recovery_cancelled":
                self.close(ev["old"])
                if tx.kind == "recovery.cancel" and signer.role == "steward":
                    self.members[ev["old"]].steward_cancelled = True
            elif kind == "constitution.set":
                self.orgs = list(ev["organisations"])
                self.thresholds = dict(ev["thresholds"])
                self.delay = ev["recovery_delay_ms"]
            elif kind == "task.approved":
                self.members[ev["citizen"]].balance += ev["minted"]
            elif kind in ("coin.spent", "coin.refunded"):
                self.members[ev["from"]].balance -= ev["amount"]
                self.members[ev["to"]].balance += ev["amount"]
            elif kind == "coin.redeemed":
                self.members[ev["merchant"]].balance -= ev["amount"]
            else:
                check(0, kind in ("policy.set", "task.posted", "task.claimed",
                                  "task.submitted", "payout.confirmed"),
                      f"unexpected event {ev}")


# ----------------------------------------------------------------------- the invariants
def governed_effect(pre: World, ev: dict) -> bool:
    """Whether an event is a change only governance may make (under `pre`'s law)."""
    kind = ev["kind"]
    if kind == "member.registered":
        role = ev["role"]
        return role in PRIVILEGED or pre.thresholds["member." + role] >= 1
    if kind == "member.revoked":
        target = pre.members.get(ev["key"])
        return target is None or target.role in PRIVILEGED or (
            target.role == "merchant" and pre.thresholds["member.merchant"] >= 1)
    if kind == "member.recovered":
        return True
    if kind == "policy.set":
        return pre.thresholds["policy.set"] >= 1
    return kind == "constitution.set"


def the_effect(action: str, args: dict, events: list) -> bool:
    """Whether the events after gov.enacted are the proposal's own action."""
    kinds = [e["kind"] for e in events]
    main = events[-1] if events else {}
    if action == "member.register":
        return kinds == ["member.registered"] and main["key"] == args["key"] \
            and main["role"] == args["role"]
    if action == "member.revoke":
        return kinds[-1:] == ["member.revoked"] and main["key"] == args["key"]
    if action == "member.recover":
        return kinds[-1:] == ["member.recovered"] and (main["old"], main["new"]) == \
            (args["old"], args["new"])
    if action == "policy.set":
        return kinds == ["policy.set"] and main["year"] == args["year"]
    # constitution.set: the removed organisations' stewards revoked, the constitution,
    # then the removed organisations' open proposals withdrawn
    revoked, withdrawn = kinds.count("member.revoked"), kinds.count("gov.withdrawn")
    return (kinds == ["member.revoked"] * revoked + ["constitution.set"]
            + ["gov.withdrawn"] * withdrawn
            and events[revoked]["thresholds"] == args["thresholds"])


def check_transaction(pre: World, tx: Tx, result, time_ms: int) -> None:
    """Invariants 1-5 for one transaction, from its result and the model before it."""
    events, code = result.events, result.code
    kinds = [e["kind"] for e in events]
    signer = pre.members.get(tx.signer)
    # 4. A frozen key signs nothing.
    if signer is not None and signer.frozen:
        wanted = "frozen" if signer.active else "revoked"
        check(4, code == wanted, lambda: f"{tx.kind} by a frozen key answered {code}")
    else:
        check(4, code != "frozen", lambda: f"{tx.kind} by an unfrozen key answered frozen")
    if code != "ok":
        check(0, events == [], "a rejection has events")
        return
    # 3. Only an open, unexpired proposal is approved, withdrawn, enacted or failed.
    proposal_id = tx.tx_id if tx.kind == "gov.propose" else tx.args.get("proposal")
    for ev in events:
        if ev["kind"] in ("gov.approved", "gov.enacted", "gov.failed", "gov.withdrawn"):
            if tx.kind == "gov.propose" and ev["proposal"] == tx.tx_id:
                check(3, tx.args["expires"] > time_ms, "a new proposal decided past its expiry")
                continue
            p = pre.proposals.get(ev["proposal"])
            check(3, p is not None and p.status == "open",
                  lambda: f"{ev['kind']} of a proposal that was "
                          f"{None if p is None else p.status}")
            check(3, time_ms < p.expires,
                  lambda: f"{ev['kind']} at {time_ms} of a proposal that expired at "
                          f"{p.expires}")
    if tx.kind in ("gov.approve", "gov.propose"):
        if tx.kind == "gov.propose":
            args = tx.args
            p = Proposal(args["action"], args["args"], pre.klass(args["action"], args["args"]),
                         signer.org, args["expires"], {})
        else:
            p = pre.proposals[proposal_id]
        org = signer.org
        # 2. An organisation counts once.
        check(2, not (org in p.approvals and pre.counts(org, p.approvals[org])),
              lambda: f"organisation {org} approved twice (already by "
                      f"{p.approvals[org].hex()[:8]}, now by {tx.signer.hex()[:8]})")
        approvals = {o: k for o, k in p.approvals.items() if o != org}
        approvals[org] = tx.signer
        counting = pre.counting(approvals)
        for ev in events:
            if ev["kind"] == "gov.approved":
                check(2, ev["approvals"] == len(counting),
                      lambda: f"gov.approved says {ev['approvals']} organisations, "
                              f"{sorted(counting)} count")
        # 1. A decision needs the threshold in force, and the steward owner.
        if "gov.enacted" in kinds or "gov.failed" in kinds:
            threshold = pre.thresholds[p.klass]
            check(1, threshold >= 1 and len(counting) >= threshold,
                  lambda: f"{p.action} decided with {sorted(counting)} counting, threshold "
                          f"{threshold} of {p.klass}")
            owner = pre.owner(p.action, p.args)
            check(1, owner is None or owner in counting or not pre.active_stewards(owner),
                  lambda: f"a steward change of {owner} decided without {owner}: "
                          f"{sorted(counting)}")
        if "gov.enacted" in kinds:
            after = events[kinds.index("gov.enacted") + 1:]
            check(1, the_effect(p.action, p.args, after),
                  lambda: f"enacted {p.action} {p.args} but the effects are {after}")
        else:
            check(1, not any(governed_effect(pre, ev) for ev in events),
                  lambda: f"a governed effect without gov.enacted: {events}")
    else:
        effects = [ev for ev in events if governed_effect(pre, ev)
                   and not (ev["kind"] == "member.recovered"
                            and tx.kind == "recovery.complete")]
        check(1, not effects, lambda: f"{tx.kind} by {signer.role} had governed effects "
                                      f"{effects}")
    # 5. Delayed recoveries.
    for ev in events:
        if ev["kind"] == "member.recovered" and tx.kind not in ("gov.propose", "gov.approve"):
            recovery = pre.recoveries.get(ev["old"])
            check(5, tx.kind == "recovery.complete" and recovery is not None,
                  lambda: f"{tx.kind} recovered a key without an open recovery")
            check(5, time_ms >= recovery.effective,
                  lambda: f"completed at {time_ms}, before effective {recovery.effective}")
            check(5, ev["new"] == recovery.new, "completed to another key")
        if ev["kind"] == "member.recovery_opened":
            target = pre.members.get(ev["old"])
            check(5, tx.kind == "member.recover" and signer.role == "admin"
                  and target is not None and target.role in ("citizen", "merchant"),
                  "a delayed recovery of a key an admin may not recover")
            check(5, not target.steward_cancelled,
                  "an admin re-opened a recovery after a steward's cancel")
            check(5, ev["old"] not in pre.recoveries, "a second open recovery of a key")
            check(5, ev["effective"] == time_ms + pre.delay,
                  "effective is not the block time plus the delay in force")


def check_state(chain: Chain, model: World, strict: bool) -> None:
    """Invariants 2, 6 and 7 on the state after a block, then (strict) the model against
    it."""
    state = chain.state
    stored = {}
    for k, raw in state.scan(keys.PROPOSAL):
        record = keys.unpack(raw)
        orgs = [entry[0] for entry in record["approvals"]]
        check(2, len(orgs) == len(set(orgs)),
              lambda: f"a stored proposal has two approvals of one organisation: {orgs}")
        stored[k[len(keys.PROPOSAL):].hex()] = record
    law = keys.unpack(state.get(keys.CONSTITUTION))
    n = len(law["organisations"])
    check(6, set(law["thresholds"]) == set(CLASSES), "the classes changed")
    check(6, 1 <= law["thresholds"]["constitution.set"] <= n,
          lambda: f"constitution.set needs {law['thresholds']['constitution.set']} of {n}")
    for name, value in law["thresholds"].items():
        check(6, LEAST[name] <= value <= n, lambda: f"threshold {name} = {value} of {n}")
    members = queries.members(state)
    staffed = {m["organisation"] for m in members if m["role"] == "steward" and m["active"]
               and m["organisation"] in law["organisations"]}
    check(6, max(law["thresholds"]["constitution.set"],
                 law["thresholds"]["member.privileged"]) <= len(staffed),
          lambda: f"only {sorted(staffed)} have stewards: the constitution "
                  f"{law['thresholds']} can no longer be changed")
    check(7, all(m["balance"] >= 0 for m in members), "a negative balance")
    totals = queries.totals(state)
    check(7, sum(m["balance"] for m in members) == totals["circulating"],
          lambda: f"balances {sum(m['balance'] for m in members)} != minted - redeemed "
                  f"{totals['circulating']}")
    balances = {m["key"]: m["balance"] for m in members}
    check(7, balances == {k: m.balance for k, m in model.members.items()},
          "balances are not the model's")
    if not strict:
        return
    # 0. The model is the state.
    check(0, (law["organisations"], law["thresholds"], law["recovery_delay_ms"]) ==
          (model.orgs, model.thresholds, model.delay),
          lambda: f"constitution {law} is not the model's {model.orgs} {model.thresholds}")
    for m in members:
        want = model.members.get(m["key"])
        check(0, want is not None, "a member the model does not know")
        got = (m["role"], m["active"], "frozen" in m, m.get("recovered_to"),
               bool(m.get("steward_cancelled")),
               {a: m[a] for a in ("age_band", "area", "name", "organisation") if a in m})
        wanted = (want.role, want.active, want.frozen, want.recovered_to,
                  want.steward_cancelled, want.attrs if want.recovered_to is None else {})
        check(0, got == wanted, lambda: f"member {m['key'].hex()[:8]} is {got}, "
                                        f"the model has {wanted}")
    check(0, set(stored) == set(model.proposals), "proposals are not the model's")
    for pid, record in stored.items():
        p = model.proposals[pid]
        check(0, (record["status"], [(e[0], e[1]) for e in record["approvals"]]) ==
              (p.status, list(p.approvals.items())),
              lambda: f"proposal {pid[:8]}: {record['status']} {record['approvals']}, "
                      f"the model has {p.status} {p.approvals}")
    recoveries = {k[len(keys.RECOVERY):]: keys.unpack(raw)
                  for k, raw in state.scan(keys.RECOVERY)}
    check(0, {k: (r["new"], r["effective"]) for k, r in recoveries.items()} ==
          {k: (r.new, r.effective) for k, r in model.recoveries.items()},
          "open recoveries are not the model's")


# ----------------------------------------------------------------------- the machine
class Governance(RuleBasedStateMachine):
    # Whether the model's prediction of every code and event list, and of the state,
    # must be the chaincode's (invariant 0). Without it the model only follows the
    # results, and invariants 1-7 alone judge them.
    STRICT = True

    @initialize(data=st.data(), n=st.sampled_from([3, 4]), start=st.sampled_from(STARTS),
                shape=st.sampled_from(["default", "default", "low", "random"]),
                delay=st.sampled_from([0, HOUR_MS, 3 * DAY_MS, 3 * DAY_MS]))
    def setup(self, data, n, start, shape, delay):
        d = data.draw
        orgs = ORGS[:n]
        counts = [d(st.integers(1, 3), label=f"stewards of {org}") for org in orgs]
        if shape == "default":
            thresholds = {"policy.set": n // 2 + 1, "member.citizen": 0,
                          "member.merchant": 0, "member.privileged": n // 2 + 1,
                          "member.recover": 2, "validators.set": n // 2 + 1,
                          "rules.activate": n // 2 + 1, "constitution.set": n}
        elif shape == "low":
            thresholds = {c: max(LEAST[c], 1) for c in CLASSES}
            thresholds.update({"member.citizen": 0, "member.merchant": 0})
        else:
            thresholds = {c: d(st.integers(LEAST[c], n), label=c) for c in CLASSES}
        organisations = [{"id": org, "stewards": STEWARDS[org][:c]}
                         for org, c in zip(orgs, counts)]
        law = {"organisations": orgs, "recovery_delay_ms": delay, "thresholds": thresholds}
        self.chain = Chain(admins=ADMINS, time_ms=start, organisations=organisations, law=law)
        self.model = World(orgs, thresholds, delay)
        for k in ADMINS:
            self.model.members[k] = Member("admin")
        for org, c in zip(orgs, counts):
            for k in STEWARDS[org][:c]:
                self.model.members[k] = Member("steward", {"organisation": org})
        self.tasks: list[str] = []
        self.claims: dict[tuple, str] = {}            # (task, citizen) -> open/submitted
        self.payouts: list[str] = []
        # The cast: by governance where their class needs it (every organisation approves).
        self._govern_all("member.register", key=REVIEWER, role="reviewer")
        for i, k in enumerate(CITIZENS):
            self._register(dict(key=k, role="citizen", age_band="21plus",
                                area="GMS" if i % 2 else "HLN"))
        for i, k in enumerate(MERCHANTS):
            self._register(dict(key=k, role="merchant", name=f"shop {i}"))
        # Coins to spend: every citizen earns one reward.
        self._block([self._tx(ADMINS[0], "task.post", task="seed", title="seed", area="GMS",
                              domain="care", reward=1000, minutes=120, slots=len(CITIZENS),
                              deadline=start + 20 * DAY_MS)])
        self._block([self._tx(k, "task.claim", task="seed") for k in CITIZENS])
        self._block([self._tx(k, "task.submit", task="seed", proof=bytes(32))
                     for k in CITIZENS])
        self._block([self._tx(REVIEWER, "task.approve", task="seed", citizen=k)
                     for k in CITIZENS])

    def _register(self, args):
        if self.model.thresholds["member." + args["role"]] == 0:
            self._block([self._tx(ADMINS[0], "member.register", **args)])
        else:
            self._govern_all("member.register", **args)

    def _govern_all(self, action, **args):
        """Propose by the first organisation and approve by every other, in one block."""
        stewards = [self.model.active_stewards(org)[0] for org in self.model.orgs]
        proposal = self._tx(stewards[0], "gov.propose", action=action, args=args,
                            expires=self.chain.time_ms + DAY_MS)
        approvals = [self._tx(s, "gov.approve", proposal=proposal.tx_id) for s in stewards[1:]]
        self._block([proposal] + approvals)
        assert self.model.proposals[proposal.tx_id].status == "enacted"

    def _tx(self, signer: bytes, kind: str, **args) -> Tx:
        return self.chain.tx(signer, kind, **args)

    # ------------------------------------------------------------------ running blocks
    def _block(self, txs: list[Tx], time_ms: int | None = None) -> None:
        outcome = self.chain.run(txs, time_ms)
        now = self.chain.time_ms
        for tx, result in zip(txs, outcome.results):
            event(f"{tx.kind}: {result.code}")
            for ev in result.events:
                if ev["kind"] in ("gov.enacted", "gov.failed", "member.recovered",
                                  "member.recovery_opened", "member.recovery_cancelled"):
                    event(ev["kind"])
            pre = self.model
            check_transaction(pre, tx, result, now)
            if self.STRICT:
                code, events = pre.copy().run(tx, now)
                if events is None:                      # a task or coin kind
                    check(0, result.code not in ("unknown_member", "revoked", "frozen",
                                                 "unauthorized"),
                          lambda: f"{tx.kind} answered {result.code}")
                else:
                    check(0, (result.code, result.events) == (code, events),
                          lambda: f"{tx.kind} {tx.args} by {tx.signer.hex()[:8]}: got "
                                  f"{result.code} {result.events}, the model says {code} "
                                  f"{events}")
            if result.code == "ok":
                self.model = pre.copy()
                self.model.apply(tx, result.events)
                self._track(tx, result.events)
        check_state(self.chain, self.model, self.STRICT)

    def _track(self, tx: Tx, events: list) -> None:
        """The pools the draws lean on."""
        for ev in events:
            kind = ev["kind"]
            if kind == "task.posted":
                self.tasks.append(ev["task"])
            elif kind == "task.claimed":
                self.claims[(ev["task"], ev["citizen"])] = "open"
            elif kind == "task.submitted":
                self.claims[(ev["task"], ev["citizen"])] = "submitted"
            elif kind == "task.approved":
                self.claims.pop((ev["task"], ev["citizen"]), None)
            elif kind == "coin.redeemed":
                self.payouts.append(ev["payout"])
            elif kind == "member.recovered":
                for (task, who), state in list(self.claims.items()):
                    if who == ev["old"]:
                        del self.claims[(task, who)]
                        self.claims[(task, ev["new"])] = state

    # ------------------------------------------------------------------ drawing
    def _pick(self, d, likely: list, anything: list, label: str = ""):
        if likely and d(st.integers(0, 4)) > 0:
            return d(st.sampled_from(likely), label=label)
        return d(st.sampled_from(anything), label=label)

    def _keys(self, *roles) -> list[bytes]:
        return [k for k, m in self.model.members.items() if not roles or m.role in roles]

    def _active(self, *roles) -> list[bytes]:
        return [k for k, m in self.model.members.items()
                if m.active and not m.frozen and (not roles or m.role in roles)]

    def _fresh(self, d) -> bytes:
        unused = [k for k in FRESH if not self.model.used(k)]
        return self._pick(d, unused, FRESH + self._keys(), "new key")

    def _target(self, d, roles=None) -> bytes:
        """A key to revoke or recover: mostly an active one."""
        candidates = [k for k, m in self.model.members.items()
                      if roles is None or m.role in roles]
        live = [k for k in candidates if self.model.members[k].active]
        return self._pick(d, live, candidates + [FRESH[-1]], "target")

    def _frozen(self) -> list[bytes]:
        return [k for k, m in self.model.members.items() if m.frozen]

    def _steward(self, d, preferred: list | None = None) -> bytes:
        everyone = [k for org in ORGS for k in STEWARDS[org]] + self._keys()
        return self._pick(d, preferred or self._active("steward"), everyone, "steward")

    def _action(self, d) -> tuple[str, dict]:
        model, now = self.model, self.chain.time_ms
        what = d(st.sampled_from(["policy", "policy", "privileged", "steward", "citizen",
                                  "revoke", "revoke privileged", "recover", "recover",
                                  "recover privileged", "constitution", "constitution"]),
                 label="action")
        if what == "policy":
            monthly = d(st.integers(0, 30_000))
            args = dict(year=local_year(now) + d(st.sampled_from([-1, 0, 0, 1])),
                        hourly_cap_21plus=d(st.integers(400, 800)),
                        hourly_cap_under21=d(st.integers(100, 600)), monthly_cap=monthly,
                        yearly_cap=d(st.integers(monthly, 300_000)))
            if d(st.booleans()):
                args["programme_yearly_cap"] = d(st.integers(0, args["yearly_cap"]))
            return "policy.set", args
        if what == "privileged":
            return "member.register", dict(key=self._fresh(d), role=d(st.sampled_from(
                ["admin", "reviewer", "auditor"])))
        if what == "steward":
            org = self._pick(d, model.orgs, ORGS + EXTRA_ORGS, "organisation")
            return "member.register", dict(key=self._fresh(d), role="steward",
                                           organisation=org)
        if what == "citizen":
            if d(st.booleans()):
                return "member.register", dict(key=self._fresh(d), role="merchant", name="m")
            return "member.register", dict(key=self._fresh(d), role="citizen",
                                           age_band="21plus", area="GMS")
        roles = PRIVILEGED if what.endswith("privileged") else None
        if what.startswith("revoke"):
            return "member.revoke", dict(key=self._target(d, roles))
        if what.startswith("recover"):
            return "member.recover", dict(old=self._target(d, roles), new=self._fresh(d))
        orgs = None
        # (the first choice is drawn most: Hypothesis leans towards it)
        change = d(st.sampled_from(["remove", "keep", "add", "remove", "swap", "keep"]),
                   label="organisations")
        outside = [o for o in ORGS + EXTRA_ORGS if o not in model.orgs]
        if change == "add" and outside:
            orgs = model.orgs + [d(st.sampled_from(outside))]
        elif change == "remove" and len(model.orgs) > 1:
            # mostly not the validator's organisation (which cannot go)
            gone = self._pick(d, model.orgs[1:], model.orgs, "removed")
            orgs = [o for o in model.orgs if o != gone]
        elif change == "swap" and outside:
            orgs = list(model.orgs)
            orgs[-1] = d(st.sampled_from(outside))
        n = len(orgs or model.orgs)
        # Mostly thresholds the organisations with stewards can still meet; now and then
        # one above the organisations (the action fails).
        staffed = max(1, len([o for o in (orgs or model.orgs) if model.active_stewards(o)]))
        top = n + 1 if d(st.integers(0, 9)) == 0 else staffed
        thresholds = {c: d(st.integers(LEAST[c], max(LEAST[c], top)), label=c) for c in CLASSES}
        args = {"thresholds": thresholds}
        if orgs is not None:
            args["organisations"] = orgs
        if d(st.booleans()):
            args["recovery_delay_ms"] = d(st.sampled_from([0, HOUR_MS, DAY_MS, 3 * DAY_MS,
                                                           30 * DAY_MS]))
        return "constitution.set", args

    def _proposal(self, d) -> str:
        """Mostly one of the latest open proposals; else a recent one whatever its status
        (closed, expired), or one that does not exist."""
        now = self.chain.time_ms
        every = list(self.model.proposals)
        live = [p for p in every if self.model.proposals[p].status == "open"
                and self.model.proposals[p].expires > now]
        return self._pick(d, live[-4:], every[-8:] * 4 + ["ab" * 32], "proposal")

    # ------------------------------------------------------------------ the one rule
    # One rule draws what happens next from PLAN, a list with repeats for weights: the
    # machine's own rule choice leans on the rules' order, and this keeps the mix.
    @rule(data=st.data())
    def step(self, data):
        what = data.draw(st.sampled_from(PLAN), label="step")
        getattr(self, what)(data.draw)

    # ------------------------------------------------------------------ governance
    def propose(self, d):
        action, args = self._action(d)
        now = self.chain.time_ms
        expires = now + d(st.sampled_from([HOUR_MS, DAY_MS, DAY_MS, 7 * DAY_MS, MAX_EXPIRY_MS,
                                           MAX_EXPIRY_MS + 1, 0, -1]), label="expires in")
        extra = {"reason": "because"} if d(st.booleans()) else {}
        self._block([self._tx(self._steward(d), "gov.propose", action=action, args=args,
                              expires=expires, **extra)])

    def approve(self, d):
        """One to three approvals of one proposal in a block, mostly by stewards of
        organisations that do not count for it yet."""
        proposal = self._proposal(d)
        p = self.model.proposals.get(proposal)
        txs = []
        for _ in range(d(st.integers(1, 3), label="approvals")):
            counting = self.model.counting(p.approvals) if p is not None else set()
            waiting = [k for k in self._active("steward")
                       if self.model.members[k].org not in counting
                       and all(t.signer != k for t in txs)]
            txs.append(self._tx(self._steward(d, waiting), "gov.approve", proposal=proposal))
        self._block(txs)

    def round_of_approvals(self, d):
        """A proposal and, in the same block, approvals by stewards drawn from the
        organisations (an organisation may come twice): enough of them, or not."""
        action, args = self._action(d)
        proposer = self._steward(d)
        proposal = self._tx(proposer, "gov.propose", action=action, args=args,
                            expires=self.chain.time_ms + DAY_MS)
        stewards = self._active("steward")
        chosen = d(st.lists(st.sampled_from(stewards), max_size=5) if stewards
                   else st.just([]), label="approvers")
        self._block([proposal] + [self._tx(k, "gov.approve", proposal=proposal.tx_id)
                                  for k in chosen])

    def withdraw(self, d):
        proposal = self._proposal(d)
        p = self.model.proposals.get(proposal)
        same = [k for k in self._active("steward") if p and self.model.members[k].org == p.org]
        self._block([self._tx(self._steward(d, same), "gov.withdraw", proposal=proposal)])

    def admin_tries_a_governed_kind(self, d):
        action, args = self._action(d)
        self._block([self._tx(d(st.sampled_from(ADMINS)), action, **args)])

    # ------------------------------------------------------------------ recoveries
    def admin_opens_a_recovery(self, d):
        cancelled = [k for k, m in self.model.members.items() if m.steward_cancelled]
        if cancelled and d(st.booleans()):
            old = d(st.sampled_from(cancelled), label="after a steward's cancel")
        else:
            old = self._target(d, roles=("citizen", "merchant"))
        self._block([self._tx(d(st.sampled_from(ADMINS)), "member.recover", old=old,
                              new=self._fresh(d))])

    def cancel_recovery(self, d):
        old = self._pick(d, list(self.model.recoveries), self._keys("citizen", "merchant"))
        signer = d(st.sampled_from(["steward", "steward", "admin", "admin", "old",
                                    "citizen"]), label="canceller")
        if signer == "steward":
            who = self._steward(d)
        elif signer == "admin":
            who = d(st.sampled_from(ADMINS))
        elif signer == "old":
            who = old
        else:
            who = d(st.sampled_from(self._keys("citizen")))
        self._block([self._tx(who, "recovery.cancel", old=old)])

    def complete_recovery(self, d):
        old = self._pick(d, list(self.model.recoveries), self._keys("citizen", "merchant"))
        signer = d(st.sampled_from(ADMINS + [REVIEWER]))
        self._block([self._tx(signer, "recovery.complete", old=old)])

    # ------------------------------------------------------------------ time
    def time_passes(self, d):
        step = d(st.sampled_from([1, HOUR_MS, 6 * HOUR_MS, DAY_MS, 3 * DAY_MS, 8 * DAY_MS]),
                 label="time passes")
        self._block([], self.chain.time_ms + step)

    def time_reaches_a_boundary(self, d):
        """A block at exactly a proposal's expiry or a recovery's effective time, or 1 ms
        before it."""
        now = self.chain.time_ms
        moments = sorted({p.expires for p in self.model.proposals.values() if p.expires > now}
                         | {r.effective for r in self.model.recoveries.values()
                            if r.effective > now})
        if not moments:
            return
        moment = d(st.sampled_from(moments)) - d(st.sampled_from([0, 0, 1]))
        self._block([], max(now, moment))

    # ------------------------------------------------------------------ day to day
    def day_to_day(self, d):
        txs = []
        for _ in range(d(st.integers(1, 4), label="transactions")):
            what = d(st.sampled_from(["post", "claim", "claim", "submit", "approve", "spend",
                                      "spend", "redeem", "confirm", "register", "revoke",
                                      "frozen"]),
                     label="day to day")
            citizens = self._keys("citizen")
            merchants = self._keys("merchant")
            now = self.chain.time_ms
            if what == "post":
                task = f"task{len(self.tasks)}-{self.chain.count}"
                txs.append(self._tx(d(st.sampled_from(ADMINS)), "task.post", task=task,
                                    title="t", area="GMS", domain="care",
                                    reward=d(st.integers(100, 1100)), minutes=120,
                                    slots=d(st.integers(1, 3)),
                                    deadline=now + d(st.sampled_from([HOUR_MS, DAY_MS,
                                                                      10 * DAY_MS]))))
            elif what == "claim" and self.tasks:
                txs.append(self._tx(self._pick(d, self._active("citizen"), citizens),
                                    "task.claim", task=d(st.sampled_from(self.tasks))))
            elif what == "submit":
                open_ = [c for c, s in self.claims.items() if s == "open"]
                if open_:
                    task, who = d(st.sampled_from(open_))
                    txs.append(self._tx(who, "task.submit", task=task, proof=bytes(32)))
            elif what == "approve":
                submitted = [c for c, s in self.claims.items() if s == "submitted"]
                if submitted:
                    task, who = d(st.sampled_from(submitted))
                    txs.append(self._tx(d(st.sampled_from(ADMINS + [REVIEWER])),
                                        "task.approve", task=task, citizen=who))
            elif what == "spend":
                payers = [k for k in citizens + merchants if self.model.members[k].balance > 0]
                payer = self._pick(d, payers, citizens + merchants, "payer")
                to = d(st.sampled_from([m for m in merchants if m != payer]))
                top = self.model.members[payer].balance + 1
                txs.append(self._tx(payer, "coin.spend", to=to, amount=d(st.integers(1, top))))
            elif what == "redeem":
                merchant = d(st.sampled_from(merchants))
                top = self.model.members[merchant].balance + 1
                txs.append(self._tx(merchant, "coin.redeem", amount=d(st.integers(1, top))))
            elif what == "confirm" and self.payouts:
                txs.append(self._tx(ADMINS[0], "payout.confirm",
                                    payout=d(st.sampled_from(self.payouts)), reference="b"))
            elif what == "register":
                txs.append(self._tx(ADMINS[1], "member.register", key=self._fresh(d),
                                    role="citizen", age_band="21plus", area="GMS"))
            elif what == "revoke":
                txs.append(self._tx(ADMINS[0], "member.revoke",
                                    key=d(st.sampled_from(citizens))))
            elif what == "frozen" and self._frozen():
                who = d(st.sampled_from(self._frozen()), label="frozen key")
                if self.model.members[who].role == "merchant":
                    txs.append(self._tx(who, "coin.redeem", amount=1))
                elif d(st.booleans()):
                    txs.append(self._tx(who, "task.claim", task=d(st.sampled_from(self.tasks))))
                else:
                    txs.append(self._tx(who, "coin.spend", to=MERCHANTS[0], amount=1))
        self._block(txs)


PLAN = (["propose"] * 4 + ["approve"] * 5 + ["round_of_approvals"] * 3
        + ["withdraw", "admin_tries_a_governed_kind"] + ["admin_opens_a_recovery"] * 3
        + ["cancel_recovery"] * 2 + ["complete_recovery"] * 2 + ["time_passes"] * 3
        + ["time_reaches_a_boundary"] * 2 + ["day_to_day"] * 3)


def machine_settings(examples: int = EXAMPLES, steps: int = STEPS, **overrides) -> settings:
    options = dict(max_examples=examples, stateful_step_count=steps, deadline=None,
                   derandomize=not RANDOM, database=None,
                   phases=tuple(Phase) if SHRINK else (Phase.explicit, Phase.generate),
                   suppress_health_check=[HealthCheck.too_slow,
                                          HealthCheck.filter_too_much])
    options.update(overrides)
    return settings(**options)


Governance.TestCase.settings = machine_settings()
test_governance_invariants_hold_over_random_histories = Governance.TestCase


class LongGovernance(Governance):
    """The same machine, hunting longer: run with --slow."""


LongGovernance.TestCase.settings = machine_settings(max(EXAMPLES, 500), max(STEPS, 80))
test_governance_invariants_hold_over_long_random_histories = pytest.mark.slow(
    LongGovernance.TestCase)
