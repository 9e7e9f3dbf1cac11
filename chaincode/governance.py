"""Proposals and approvals: gov.propose, gov.approve, gov.withdraw, and the governed run
of an action (docs/governance.md).

Rules:
- only stewards sign these; a steward acts for its organisation, and an organisation
  counts once however many of its stewards approve;
- a proposal's id is the id of the gov.propose transaction; the proposer's organisation
  approves it at once;
- a proposal is open until enacted, failed, withdrawn or expired (block time at or after
  `expires`); an expired, withdrawn or failed proposal never takes effect;
- an approval counts while its key is an active, unfrozen steward of its organisation
  and that organisation is in the constitution, judged when the deciding approval runs;
- the threshold that counts is the constitution's when that approval runs; a change of
  an organisation's stewards also needs that organisation among the approvers (when it
  has any active steward: a new organisation's first steward has nobody to ask);
- the action runs with its own checks as if an admin signed it (GOVERNANCE); if they
  refuse it, its writes are undone, the proposal is `failed`, and the approval is `ok`;
- at most MAX_OPEN proposals are open per organisation; expired ones are dropped from
  the organisation's index when it proposes again.
"""
from __future__ import annotations

from . import constitution, members, recoveries, upgrades
from . import validators as validator_sets
from . import state as st
from .context import Context
from .errors import Reject

GOVERNANCE = b""                     # the signer of a governed action
GOVERNANCE_MEMBER = {"role": "governance", "active": True, "balance": 0}
MAX_OPEN = 64
MAX_EXPIRY_MS = 30 * constitution.DAY_MS


def direct(c: Context, kind: str, signer: bytes, args: dict, member: dict,
           tx_key: bytes, handler) -> list:
    """An admin signing a kind that may be governed: allowed only while its class is 0,
    except an admin's recovery of a citizen or merchant, which opens a delayed one."""
    klass = constitution.class_of(c.view, kind, args)
    if klass is not None and constitution.get(c.view)["thresholds"][klass] >= 1:
        if klass == "member.recover":
            return recoveries.open_recovery(c, signer, args)
        raise Reject("unauthorized")
    return handler(c, signer, args, member, tx_key)


def propose(c: Context, signer: bytes, args: dict, member: dict, tx_key: bytes) -> list:
    view, action, action_args = c.view, args["action"], args["args"]
    organisation, expires = member["organisation"], args["expires"]
    klass = constitution.class_of(view, action, action_args)
    law = constitution.get(view)
    threshold = 0 if klass is None else law["thresholds"][klass]
    if threshold == 0 or expires > c.time_ms + MAX_EXPIRY_MS:
        raise Reject("invalid_state")
    if _count_open(view, organisation, c.time_ms) >= MAX_OPEN:
        raise Reject("invalid_state")
    if expires <= c.time_ms:
        raise Reject("deadline_passed")
    proposal = tx_key[len(st.EXECUTED):]
    record = {"action": action, "args": action_args, "class": klass,
              "organisation": organisation, "proposer": signer, "expires": expires,
              "height": c.height, "threshold": threshold, "status": "open",
              "approvals": [[organisation, signer, c.height]]}
    event = {"kind": "gov.proposed", "proposal": proposal.hex(), "action": action,
             "args": action_args, "organisation": organisation, "expires": expires,
             "threshold": threshold}
    if "reason" in args:
        record["reason"] = event["reason"] = args["reason"]
    return [event] + _decide(c, proposal, record, law, tx_key)


def approve(c: Context, signer: bytes, args: dict, member: dict, tx_key: bytes) -> list:
    view, organisation = c.view, member["organisation"]
    proposal = bytes.fromhex(args["proposal"])
    record = _get(view, proposal)
    law = constitution.get(view)
    approvals = []
    for entry in record["approvals"]:
        if entry[0] == organisation:
            if counts(view, entry[1], entry[0], law):
                raise Reject("exists")
            continue                     # a stale approval of this organisation: replaced
        approvals.append(entry)
    _require_open(c, record, law)
    record["approvals"] = approvals + [[organisation, signer, c.height]]
    event = {"kind": "gov.approved", "proposal": args["proposal"],
             "organisation": organisation,
             "approvals": len(counting_organisations(view, record, law))}
    return [event] + _decide(c, proposal, record, law, tx_key)


def withdraw(c: Context, signer: bytes, args: dict, member: dict, tx_key: bytes) -> list:
    view = c.view
    proposal = bytes.fromhex(args["proposal"])
    record = _get(view, proposal)
    if record["organisation"] != member["organisation"]:
        raise Reject("unauthorized")
    _require_open(c, record, constitution.get(view))
    _close(c, proposal, record, "withdrawn")
    return [{"kind": "gov.withdrawn", "proposal": args["proposal"]}]


def counts(view, key: bytes, organisation: str, law: dict) -> bool:
    """Whether an approval by `key` for `organisation` counts now."""
    if organisation not in law["organisations"]:
        return False
    record = st.get_member(view, key)
    return (record is not None and record["active"] and "frozen" not in record
            and record["role"] == "steward" and record["organisation"] == organisation)


def counting_organisations(view, record: dict, law: dict) -> set[str]:
    return {org for org, key, _ in record["approvals"] if counts(view, key, org, law)}


def status(record: dict, time_ms: int) -> str:
    """A proposal's status at a block time: open, enacted, failed, withdrawn or expired."""
    if record["status"] == "open" and time_ms >= record["expires"]:
        return "expired"
    return record["status"]


def _get(view, proposal: bytes) -> dict:
    raw = view.get(st.PROPOSAL + proposal)
    if raw is None:
        raise Reject("not_found")
    return st.unpack(raw)


def _require_open(c: Context, record: dict, law: dict) -> None:
    if status(record, c.time_ms) != "open" or law["thresholds"][record["class"]] == 0:
        raise Reject("invalid_state")


def _decide(c: Context, proposal: bytes, record: dict, law: dict, tx_key: bytes) -> list:
    """Enact the proposal if its approvals now meet the threshold in force; write it."""
    view, action, args = c.view, record["action"], record["args"]
    threshold = law["thresholds"][record["class"]]
    record["threshold"] = threshold
    approving = counting_organisations(view, record, law)
    owner = constitution.steward_organisation(view, action, args)
    owner_missing = (owner is not None and owner not in approving
                     and constitution.active_stewards(view, owner))
    if len(approving) < threshold or owner_missing:
        _write(view, proposal, record)
        view.put(st.OPEN_PROPOSALS + st.org_part(record["organisation"]) + proposal,
                 st.pack(record["expires"]))
        return []
    saved = view.savepoint()
    try:
        events = ACTIONS[action](c, GOVERNANCE, args, GOVERNANCE_MEMBER, tx_key)
    except Reject as refusal:
        view.rollback(saved)
        record.update(code=refusal.code, info=refusal.info)
        _close(c, proposal, record, "failed")
        return [{"kind": "gov.failed", "proposal": proposal.hex(), "code": refusal.code,
                 "info": refusal.info}]
    _close(c, proposal, record, "enacted")
    events = [{"kind": "gov.enacted", "proposal": proposal.hex(), "action": action}] + events
    if action == "constitution.set":
        kept = constitution.get(view)["organisations"]
        for organisation in law["organisations"]:
            if organisation not in kept:
                events += _withdraw_all(c, organisation)
    return events


def set_constitution(c: Context, signer: bytes, args: dict, member: dict,
                     tx_key: bytes) -> list:
    """constitution.set (governance only): thresholds, delay and organisations.
    Removing an organisation revokes its stewards (and _decide withdraws its open
    proposals); an organisation that runs a validator of the set in force, or of a
    pending one, cannot be removed."""
    view, law = c.view, constitution.get(c.view)
    organisations = args.get("organisations", law["organisations"])
    if max(args["thresholds"].values()) > len(organisations):
        raise Reject("invalid_state")
    removed = [o for o in law["organisations"] if o not in organisations]
    if validator_sets.organisations_running(view, c.height) & set(removed):
        raise Reject("invalid_state")
    # Never a constitution that can no longer be changed: the organisations that have a
    # steward must be able to change it, and to give an added organisation its first
    # steward (an organisation keeps its last steward: see members.revoke).
    staffed = sum(1 for o in organisations if constitution.active_stewards(view, o))
    if max(args["thresholds"][k] for k in ("constitution.set", "member.privileged")) > staffed:
        raise Reject("invalid_state")
    events = []
    for organisation in removed:
        for key in constitution.active_stewards(view, organisation):
            events.append(members.revoke_record(view, key, st.get_member(view, key)))
    new = constitution.make(organisations, args["thresholds"],
                            args.get("recovery_delay_ms", law["recovery_delay_ms"]))
    constitution.put(view, new)
    return events + [dict(new, kind="constitution.set")]


# The handler each governable kind runs when enacted.
ACTIONS = {
    "member.register": members.register,
    "member.revoke": members.revoke,
    "member.recover": recoveries.recover_now,
    "policy.set": members.set_policy,
    "constitution.set": set_constitution,
    "rules.activate": upgrades.activate,
    "validators.set": validator_sets.set_validators,
}
assert set(ACTIONS) == set(constitution.GOVERNABLE_KINDS)


def _withdraw_all(c: Context, organisation: str) -> list:
    """A removed organisation's open proposals are withdrawn: nobody could withdraw
    them any more, and the others should not enact what it alone still proposes."""
    events = []
    for key, _ in c.view.scan(st.OPEN_PROPOSALS + st.org_part(organisation)):
        proposal = key[-32:]
        record = _get(c.view, proposal)
        if status(record, c.time_ms) == "open":
            _close(c, proposal, record, "withdrawn")
            events.append({"kind": "gov.withdrawn", "proposal": proposal.hex()})
    return events


def _close(c: Context, proposal: bytes, record: dict, outcome: str) -> None:
    record.update(status=outcome, closed_height=c.height)
    _write(c.view, proposal, record)
    c.view.put(st.OPEN_PROPOSALS + st.org_part(record["organisation"]) + proposal, None)


def _write(view, proposal: bytes, record: dict) -> None:
    view.put(st.PROPOSAL + proposal, st.pack(record))


def _count_open(view, organisation: str, time_ms: int) -> int:
    """The organisation's open, unexpired proposals; expired entries leave the index."""
    live = 0
    for key, raw in view.scan(st.OPEN_PROPOSALS + st.org_part(organisation)):
        if st.unpack(raw) <= time_ms:
            view.put(key, None)
        else:
            live += 1
    return live
