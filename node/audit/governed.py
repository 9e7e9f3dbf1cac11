"""The governance check's effects and recoveries (governance.py holds the tracker `g`).

An effect either follows a gov.enacted in its own result and is exactly what that
proposal ordered, or is an admin's own transaction of that kind while its class's
threshold is 0, or is an admin's recovery.complete of an open recovery at or after its
`effective` time. Then it moves the tracked members and constitution on.
"""
from __future__ import annotations

PRIVILEGED = frozenset(("admin", "reviewer", "auditor", "steward"))
# each class's least threshold (the constitution can never go below it)
LEAST = {"policy.set": 0, "member.citizen": 0, "member.merchant": 0,
         "member.privileged": 1, "member.recover": 1, "validators.set": 1,
         "rules.activate": 1, "constitution.set": 1}
# the action whose enactment (or an admin's direct transaction) may give each effect
ACTION_OF = {"policy.set": "policy.set", "member.registered": "member.register",
             "member.revoked": "member.revoke", "member.recovered": "member.recover",
             "constitution.set": "constitution.set", "validators.set": "validators.set",
             "rules.activate": "rules.activate"}


def short(key) -> str:
    return key.hex()[:8] if type(key) is bytes else str(key)


def describe(g, e: dict) -> str:
    kind = e["kind"]
    if kind == "member.registered":
        return f"the registration of {e['role']} {short(e['key'])}"
    if kind == "member.revoked":
        return f"the revocation of {g._role(e['key'])} {short(e['key'])}"
    if kind == "member.recovered":
        return (f"the recovery of {g._role(e['old'])} {short(e['old'])} to "
                f"{short(e['new'])}")
    if kind == "policy.set":
        return f"the cap policy of {e.get('year')}"
    return f"a {kind}"


def effect_class(g, e: dict) -> str | None:
    """The governed class of an effect, None when it is never governed."""
    kind = e["kind"]
    if kind == "member.registered":
        return "member.privileged" if e["role"] in PRIVILEGED else "member." + e["role"]
    if kind in ("member.revoked", "member.recovered"):
        key = e["key" if kind == "member.revoked" else "old"]
        role = g._role(key)
        if role is None:
            g.fail(f"{kind} names {short(key)}, which is not a member")
        if role in PRIVILEGED:
            return "member.privileged"
        if kind == "member.recovered":
            return "member.recover"
        return "member.merchant" if role == "merchant" else None
    return kind


def check_direct(g, e: dict) -> None:
    """An effect with no enactment in its result: an admin's own, while not governed."""
    tx, kind = g.tx, e["kind"]
    if kind == "member.recovered" and tx.kind == "recovery.complete":
        return _completed(g, e)
    klass = effect_class(g, e)
    if klass is None:
        return
    need = g.law["thresholds"].get(klass)
    if need != 0:
        g.fail(f"{describe(g, e)} took effect without governance: {klass} needs the "
               f"approval of {need} organisation(s) under the constitution in force, and "
               f"no proposal was enacted")
    action = ACTION_OF[kind]
    if tx.kind != action or not g._is_admin(tx.signer):
        g.fail(f"{describe(g, e)} took effect in a {tx.kind} signed by {short(tx.signer)}, "
               f"not in an admin's {action}")


def _completed(g, e: dict) -> None:
    old, tx = e["old"], g.tx
    if not g._is_admin(tx.signer):
        g.fail(f"the recovery of {short(old)} was completed by {short(tx.signer)}, not an "
               f"admin")
    recovery = g.recoveries.get(old)
    if recovery is None or tx.args.get("old") != old:
        g.fail(f"the recovery of {short(old)} was completed but none was open")
    new, effective = recovery
    if g.time_ms < effective:
        g.fail(f"the recovery of {short(old)} was completed at block time {g.time_ms}, "
               f"before its effective time {effective}")
    if e["new"] != new:
        g.fail(f"the recovery of {short(old)} moved it to {short(e['new'])}, not to the "
               f"{short(new)} it was opened for")


def check_enacted(g, p, e: dict) -> None:
    """An effect after a gov.enacted: it must be what the proposal ordered."""
    kind, action, args = e["kind"], p.action, p.args
    law = g.law
    if kind == "policy.set":
        ok = action == "policy.set" and {k: v for k, v in e.items() if k != "kind"} == args
    elif kind == "member.registered":
        ok = (action == "member.register" and e["key"] == args.get("key")
              and e["role"] == args.get("role")
              and e.get("organisation") == args.get("organisation"))
    elif kind == "member.revoked":
        m = g.members.get(e["key"])
        ok = ((action == "member.revoke" and e["key"] == args.get("key"))
              or (action == "constitution.set" and m is not None and m[0] == "steward"
                  and m[2] not in args.get("organisations", law["organisations"])))
    elif kind == "member.recovered":
        ok = (action == "member.recover" and e["old"] == args.get("old")
              and e["new"] == args.get("new"))
    elif kind == "constitution.set":
        ok = (action == "constitution.set" and e["thresholds"] == args.get("thresholds")
              and e["organisations"] == args.get("organisations", law["organisations"])
              and e["recovery_delay_ms"] == args.get("recovery_delay_ms",
                                                     law["recovery_delay_ms"]))
    elif kind == "validators.set":
        ok = action == "validators.set" and e["validators"] == args.get("validators")
        if ok:
            _validator_set(g, e)
    else:
        ok = action == kind
    if not ok:
        g.fail(f"{describe(g, e)} took effect in the enactment of proposal "
               f"({p.summary}), which did not order it")


def _validator_set(g, e: dict) -> None:
    """A validator set orders from c + M + 1, c the first multiple of the checkpoint
    interval K at or above the enacting height, and names only organisations of the
    constitution in force."""
    interval, margin = g.checkpoint_interval, g.switch_margin
    due = -(-g.height // interval) * interval + margin + 1
    if e["from"] != due:
        g.fail(f"the validator set enacted at height {g.height} orders from {e['from']}, "
               f"not from {due} (the first multiple of {interval} at or above it, plus "
               f"{margin} + 1)")
    for validator in e["validators"]:
        if validator["organisation"] not in g.law["organisations"]:
            g.fail(f"the validator set names validator {validator['name']} of "
                   f"{validator['organisation']}, which is not an organisation of the "
                   f"constitution in force")


def apply_effect(g, e: dict) -> None:
    kind = e["kind"]
    if kind == "member.registered":
        key, role = e["key"], e["role"]
        if key in g.members:
            g.fail(f"{short(key)} is registered a second time")
        organisation = e.get("organisation") if role == "steward" else None
        if role == "steward":
            if organisation not in g.law["organisations"]:
                g.fail(f"steward {short(key)} is registered for {organisation}, which is not "
                       f"an organisation of the constitution in force")
            g.stewards.setdefault(organisation, set()).add(key)
        g.members[key] = [role, True, organisation]
    elif kind == "member.revoked":
        m = g.members[e["key"]]        # effect_class or the enactment named a member
        m[1] = False
        if m[0] == "steward":
            g.stewards.get(m[2], set()).discard(e["key"])
        g.frozen.discard(e["key"])
    elif kind == "member.recovered":
        old, new = e["old"], e["new"]
        if new in g.members:
            g.fail(f"{short(old)} is recovered to {short(new)}, which was a member before")
        m = g.members[old]
        g.members[new] = [m[0], True, m[2]]
        if m[0] == "steward":          # a recovered steward is active again, as its new key
            g.stewards.setdefault(m[2], set()).discard(old)
            g.stewards[m[2]].add(new)
        m[1] = False
        g.frozen.discard(old)
        g.recoveries.pop(old, None)
    elif kind == "constitution.set":
        _constitution(g, e)


def _constitution(g, e: dict) -> None:
    organisations, thresholds = e["organisations"], e["thresholds"]
    if set(thresholds) != set(LEAST):
        g.fail("the constitution set does not name exactly the governed classes")
    for klass, value in thresholds.items():
        if not LEAST[klass] <= value <= len(organisations):
            g.fail(f"the constitution set gives {klass} threshold {value}, outside "
                   f"{LEAST[klass]} to {len(organisations)} (the number of organisations)")
    for organisation in g.law["organisations"]:
        if organisation not in organisations and g.stewards.get(organisation):
            g.fail(f"organisation {organisation} is removed but keeps active stewards")
    g.law = {"organisations": list(organisations), "thresholds": dict(thresholds),
             "recovery_delay_ms": e["recovery_delay_ms"]}


def recovery_opened(g, e: dict) -> None:
    tx, old, new = g.tx, e["old"], e["new"]
    if tx.kind != "member.recover" or not g._is_admin(tx.signer):
        g.fail(f"a recovery of {short(old)} was opened by a {tx.kind} of {short(tx.signer)}, "
               f"not an admin's member.recover")
    role = g._role(old)
    if role not in ("citizen", "merchant"):
        g.fail(f"an admin opened a delayed recovery of {role} {short(old)}: only citizens "
               f"and merchants are recovered that way")
    if old in g.recoveries:
        g.fail(f"a second recovery of {short(old)} was opened while one is open")
    if old in g.steward_cancelled:
        g.fail(f"an admin re-opened a recovery of {short(old)} after a steward cancelled "
               f"one: only governance may recover it")
    if new in g.members or any(new == r[0] for r in g.recoveries.values()):
        g.fail(f"a recovery of {short(old)} names {short(new)}, which is already taken")
    if e["effective"] != g.time_ms + g.law["recovery_delay_ms"]:
        g.fail(f"the recovery of {short(old)} is effective at {e['effective']}, not the block "
               f"time plus the delay in force ({g.law['recovery_delay_ms']} ms)")
    g.recoveries[old] = (new, e["effective"])
    g.frozen.add(old)


def recovery_cancelled(g, e: dict) -> None:
    old, by, tx = e["old"], e["by"], g.tx
    if old not in g.recoveries:
        g.fail(f"a recovery of {short(old)} was cancelled but none was open")
    if by == "governance":
        if g.enacted is None:
            g.fail(f"the recovery of {short(old)} was cancelled by governance outside any "
                   f"enacted proposal")
    elif by != tx.signer:
        g.fail(f"the recovery of {short(old)} was cancelled in the name of {short(by)}, not "
               f"of the signer {short(tx.signer)}")
    elif tx.kind == "recovery.cancel":
        role = g._role(by)
        if role not in ("steward", "admin") or not g.members[by][1] or by in g.frozen:
            g.fail(f"the recovery of {short(old)} was cancelled by {short(by)}, neither an "
                   f"active steward nor an admin")
        if role == "steward":
            g.steward_cancelled.add(old)
    elif not g._is_admin(by):
        g.fail(f"the recovery of {short(old)} was closed by {short(by)}, not an admin")
    del g.recoveries[old]
    g.frozen.discard(old)
