"""The constitution: which governed class needs how many distinct organisations.

Rules (docs/governance.md, "The constitution"):
- the constitution is state (`g/constitution`), set at genesis and changed only by a
  governed `constitution.set`;
- every governed class has a threshold, a count of distinct organisations, between the
  class's least value and the number of organisations;
- a threshold of 0 means the admin signs the action directly and governance cannot
  propose it; at least 1 means only governance runs it;
- which class an action falls in may depend on its target (a revocation of a merchant is
  `member.merchant`, of an admin `member.privileged`); a revocation of a citizen is not
  governed at all (the admin alone, as before).
"""
from __future__ import annotations

from . import state as st
from .errors import Reject

CLASSES = ("policy.set", "member.citizen", "member.merchant", "member.privileged",
           "member.recover", "validators.set", "rules.activate", "constitution.set")
# The least threshold of each class: the constitution can never make a class that
# protects the chain's rules or keys ungoverned, nor itself unchangeable.
LEAST = {"policy.set": 0, "member.citizen": 0, "member.merchant": 0,
         "member.privileged": 1, "member.recover": 1, "validators.set": 1,
         "rules.activate": 1, "constitution.set": 1}
# The kinds a proposal may carry.
GOVERNABLE_KINDS = ("member.register", "member.revoke", "member.recover", "policy.set",
                    "constitution.set", "rules.activate", "validators.set")
PRIVILEGED_ROLES = frozenset(("admin", "reviewer", "auditor", "steward"))
DAY_MS = 86_400_000
DEFAULT_RECOVERY_DELAY_MS = 3 * DAY_MS
MAX_RECOVERY_DELAY_MS = 30 * DAY_MS
MAX_ORGANISATIONS = 64


def default_thresholds(organisations: int) -> dict[str, int]:
    """The defaults of the contract's table for N organisations."""
    assert 1 <= organisations <= MAX_ORGANISATIONS
    majority = organisations // 2 + 1
    return {"policy.set": majority, "member.citizen": 0, "member.merchant": 0,
            "member.privileged": majority, "member.recover": min(2, organisations),
            "validators.set": majority, "rules.activate": majority,
            "constitution.set": organisations}


def make(organisations: list[str], thresholds: dict | None = None,
         recovery_delay_ms: int = DEFAULT_RECOVERY_DELAY_MS) -> dict:
    """A constitution record; thresholds default to the table's for these organisations."""
    if thresholds is None:
        thresholds = default_thresholds(len(organisations))
    return {"organisations": list(organisations), "recovery_delay_ms": recovery_delay_ms,
            "thresholds": dict(thresholds)}


def problem(constitution: dict) -> str | None:
    """Why a constitution cannot be in force, or None: for genesis and for tests.

    (constitution.set refuses the same things with codes: shapes as invalid_args,
    a threshold above the organisations as invalid_state.)"""
    orgs = constitution.get("organisations")
    if type(orgs) is not list or not 1 <= len(orgs) <= MAX_ORGANISATIONS:
        return f"organisations must be a list of 1 to {MAX_ORGANISATIONS} ids"
    if len(set(orgs)) != len(orgs):
        return "an organisation appears twice"
    thresholds = constitution.get("thresholds")
    if type(thresholds) is not dict or set(thresholds) != set(CLASSES):
        return f"thresholds must name exactly the classes {', '.join(CLASSES)}"
    for name in CLASSES:
        value = thresholds[name]
        if type(value) is not int or not LEAST[name] <= value <= len(orgs):
            return (f"threshold of {name} must be {LEAST[name]} to {len(orgs)} "
                    f"(the number of organisations), got {value!r}")
    delay = constitution.get("recovery_delay_ms")
    if type(delay) is not int or not 0 <= delay <= MAX_RECOVERY_DELAY_MS:
        return f"recovery_delay_ms must be 0 to {MAX_RECOVERY_DELAY_MS}"
    return None


def get(view) -> dict:
    raw = view.get(st.CONSTITUTION)
    assert raw is not None, "the constitution is written at genesis"
    return st.unpack(raw)


def put(view, constitution: dict) -> None:
    assert problem(constitution) is None, problem(constitution)
    view.put(st.CONSTITUTION, st.pack(constitution))


def class_of(view, kind: str, args: dict) -> str | None:
    """The governed class of an action, or None when the action is never governed.

    A revocation or recovery of a key that is not a member is `not_found`: the class
    depends on the target's role."""
    if kind in ("policy.set", "constitution.set", "validators.set", "rules.activate"):
        return kind
    if kind == "member.register":
        role = args["role"]
        if role in ("citizen", "merchant"):
            return "member." + role
        return "member.privileged"
    if kind in ("member.revoke", "member.recover"):
        target = st.get_member(view, args["key" if kind == "member.revoke" else "old"])
        if target is None:
            raise Reject("not_found")
        role = target["role"]
        if role in PRIVILEGED_ROLES:
            return "member.privileged"
        if kind == "member.recover":
            return "member.recover"
        return "member.merchant" if role == "merchant" else None
    return None


def steward_organisation(view, kind: str, args: dict) -> str | None:
    """The organisation whose stewards an action changes: it must be among the approvers."""
    if kind == "member.register":
        return args.get("organisation") if args["role"] == "steward" else None
    if kind in ("member.revoke", "member.recover"):
        target = st.get_member(view, args["key" if kind == "member.revoke" else "old"])
        if target is not None and target["role"] == "steward":
            # a key recovered away keeps no attributes: nobody's stewards change then
            return target.get("organisation")
    return None


def active_stewards(view, organisation: str) -> list[bytes]:
    prefix = st.STEWARDS + st.org_part(organisation)
    return [key[len(prefix):] for key, _ in view.scan(prefix)]
