"""Kinds about members and policies: member.register/update/revoke/recover, policy.set.

Rules (docs/governance.md has who decides and the recoveries):
- admins sign these, or governance where the constitution governs the class
  (governance.py decides which); the first admins and stewards come from genesis;
- a key is registered once; a recovery's new key must never have been a member, nor be
  the new key of an open recovery;
- recovery moves role, attributes, balance, claims, earnings, reservations and pending
  payouts to the new key in one transaction, and revokes the old key;
- an admin cannot revoke itself, the last active admin cannot be revoked, nor an
  organisation's last active steward; a revocation closes an open recovery of the key;
- stewards carry their organisation, which must be in the constitution;
- only citizens have attributes to update (age band, area);
- a policy needs monthly <= yearly and programme <= yearly (checked with the args), and
  may not be set for a year that has ended in Amsterdam.
"""
from __future__ import annotations

from . import constitution
from . import state as st
from .context import Context
from .errors import Reject

ATTRIBUTES = {"citizen": ("age_band", "area"), "merchant": ("name",),
              "steward": ("organisation",)}


def register(c: Context, signer: bytes, args: dict, member: dict, tx_key: bytes) -> list:
    view, key, role = c.view, args["key"], args["role"]
    if role == "steward" and args["organisation"] not in constitution.get(view)["organisations"]:
        raise Reject("not_found")
    require_unused(view, key)
    record = {"role": role, "active": True, "balance": 0}
    event = {"kind": "member.registered", "key": key, "role": role}
    for name in ATTRIBUTES.get(role, ()):
        record[name] = event[name] = args[name]
    _count_in(view, key, record)
    st.put_member(view, key, record)
    return [event]


def require_unused(view, key: bytes) -> None:
    """A key to register or recover to: never a member, nor the new key of an open recovery."""
    if view.get(st.MEMBER + key) is not None or view.get(st.RECOVERY_TO + key) is not None:
        raise Reject("exists")


def update(c: Context, signer: bytes, args: dict, member: dict, tx_key: bytes) -> list:
    view, key = c.view, args["key"]
    record = st.get_member(view, key)
    if record is None:
        raise Reject("not_found")
    if record["role"] != "citizen" or not record["active"]:
        raise Reject("invalid_state")
    event = {"kind": "member.updated", "key": key}
    for name in ("age_band", "area"):
        if name in args:
            record[name] = event[name] = args[name]
    st.put_member(view, key, record)
    return [event]


def revoke(c: Context, signer: bytes, args: dict, member: dict, tx_key: bytes) -> list:
    view, key = c.view, args["key"]
    record = st.get_member(view, key)
    if record is None:
        raise Reject("not_found")
    if key == signer or not record["active"]:
        raise Reject("invalid_state")
    if record["role"] == "admin" and st.get_int(view, st.ADMINS) <= 1:
        raise Reject("invalid_state")
    if (record["role"] == "steward"
            and len(constitution.active_stewards(view, record["organisation"])) <= 1):
        raise Reject("invalid_state")
    events = []
    if view.get(st.RECOVERY + key) is not None:
        record = close_recovery(view, key)
        events.append({"kind": "member.recovery_cancelled", "old": key,
                       "by": signer or "governance"})
    return events + [revoke_record(view, key, record)]


def close_recovery(view, old: bytes) -> dict:
    """End the open recovery of `old` and unfreeze it; returns old's member record."""
    recovery = st.unpack(view.get(st.RECOVERY + old))
    view.put(st.RECOVERY + old, None)
    view.put(st.RECOVERY_TO + recovery["new"], None)
    record = st.get_member(view, old)
    record.pop("frozen", None)
    st.put_member(view, old, record)
    return record


def revoke_record(view, key: bytes, record: dict) -> dict:
    """Mark an active member revoked, keeping the counts; returns the event."""
    _count_out(view, key, record)
    record["active"] = False
    st.put_member(view, key, record)
    return {"kind": "member.revoked", "key": key}


def move(view, old: bytes, new: bytes, record: dict) -> dict:
    """A recovery: everything of `old` moves to `new`, which becomes active; `old` is
    revoked. Returns the member.recovered event."""
    assert "recovered_to" not in record and "frozen" not in record
    if record["active"]:
        _count_out(view, old, record)
    moved = {k: v for k, v in record.items() if k != "steward_cancelled"}
    moved["active"] = True
    _count_in(view, new, moved)
    st.put_member(view, new, moved)
    st.put_member(view, old, {"role": record["role"], "active": False, "balance": 0,
                              "recovered_to": new})
    _move_claims(view, old, new)
    _move_prefix(view, st.EARNED + old, st.EARNED + new)
    _move_prefix(view, st.RESERVED + old, st.RESERVED + new)
    _move_payouts(view, old, new)
    return {"kind": "member.recovered", "old": old, "new": new, "balance": record["balance"]}


def _count_in(view, key: bytes, record: dict) -> None:
    """An active admin or steward joins the admins' count or its organisation's index."""
    if record["role"] == "admin":
        view.put(st.ADMINS, st.pack(st.get_int(view, st.ADMINS) + 1))
    elif record["role"] == "steward":
        view.put(st.steward_key(record["organisation"], key), b"")


def _count_out(view, key: bytes, record: dict) -> None:
    if record["role"] == "admin":
        view.put(st.ADMINS, st.pack(st.get_int(view, st.ADMINS) - 1))
    elif record["role"] == "steward":
        view.put(st.steward_key(record["organisation"], key), None)


def _move_prefix(view, old_prefix: bytes, new_prefix: bytes) -> None:
    for key, value in view.scan(old_prefix):
        view.put(key, None)
        view.put(new_prefix + key[len(old_prefix):], value)


def _move_claims(view, old: bytes, new: bytes) -> None:
    prefix = st.CLAIM_INDEX + old
    for key, value in view.scan(prefix):
        task_part = key[len(prefix):]
        view.put(key, None)
        view.put(st.CLAIM_INDEX + new + task_part, value)
        claim = view.get(st.CLAIM + task_part + old)
        assert claim is not None, "claim index points at no claim"
        view.put(st.CLAIM + task_part + old, None)
        view.put(st.CLAIM + task_part + new, claim)


def _move_payouts(view, old: bytes, new: bytes) -> None:
    prefix = st.PAYOUT_INDEX + old
    for key, value in view.scan(prefix):
        payout_id = key[len(prefix):]
        view.put(key, None)
        view.put(st.PAYOUT_INDEX + new + payout_id, value)
        payout = st.unpack(view.get(st.PAYOUT + payout_id))
        payout["merchant"] = new
        view.put(st.PAYOUT + payout_id, st.pack(payout))


POLICY_FIELDS = ("year", "hourly_cap_21plus", "hourly_cap_under21", "monthly_cap",
                 "yearly_cap", "programme_yearly_cap")


def set_policy(c: Context, signer: bytes, args: dict, member: dict, tx_key: bytes) -> list:
    if args["year"] < c.year:
        raise Reject("invalid_state")
    policy = {name: args[name] for name in POLICY_FIELDS if name in args}
    write_policy(c.view, policy)
    return [dict(policy, kind="policy.set")]


def write_policy(view, policy: dict) -> None:
    year = policy["year"]
    raw = view.get(st.POLICY_YEARS)
    years = [] if raw is None else st.unpack(raw)
    if year not in years:
        years = sorted(years + [year])
        view.put(st.POLICY_YEARS, st.pack(years))
    view.put(st.policy_key(year), st.pack(policy))
