"""Kinds about members and policies: member.register/update/revoke/recover, policy.set.

Rules (domain.md, "Keys" and "Earning caps"):
- only admins sign these; the first admins come from genesis;
- a key is registered once; a recovery's new key must never have been a member;
- recovery moves role, attributes, balance, claims, earnings, reservations and pending
  payouts to the new key in one transaction, and revokes the old key;
- an admin cannot revoke itself, and the last active admin cannot be revoked;
- only citizens have attributes to update (age band, area);
- a policy needs monthly <= yearly and programme <= yearly (checked with the args), and
  may not be set for a year that has ended in Amsterdam.
"""
from __future__ import annotations

from . import state as st
from .context import Context
from .errors import Reject

ATTRIBUTES = {"citizen": ("age_band", "area"), "merchant": ("name",)}


def register(c: Context, signer: bytes, args: dict, member: dict, tx_key: bytes) -> list:
    view, key, role = c.view, args["key"], args["role"]
    if view.get(st.MEMBER + key) is not None:
        raise Reject("exists")
    record = {"role": role, "active": True, "balance": 0}
    event = {"kind": "member.registered", "key": key, "role": role}
    for name in ATTRIBUTES.get(role, ()):
        record[name] = event[name] = args[name]
    if role == "admin":
        view.put(st.ADMINS, st.pack(st.get_int(view, st.ADMINS) + 1))
    st.put_member(view, key, record)
    return [event]


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
    if record["role"] == "admin":
        admins = st.get_int(view, st.ADMINS)
        if admins <= 1:
            raise Reject("invalid_state")
        view.put(st.ADMINS, st.pack(admins - 1))
    record["active"] = False
    st.put_member(view, key, record)
    return [{"kind": "member.revoked", "key": key}]


def recover(c: Context, signer: bytes, args: dict, member: dict, tx_key: bytes) -> list:
    view, old, new = c.view, args["old"], args["new"]
    record = st.get_member(view, old)
    if record is None:
        raise Reject("not_found")
    if view.get(st.MEMBER + new) is not None:
        raise Reject("exists")
    if "recovered_to" in record:
        raise Reject("invalid_state")
    if record["role"] == "admin" and not record["active"]:
        view.put(st.ADMINS, st.pack(st.get_int(view, st.ADMINS) + 1))
    moved = dict(record, active=True)
    st.put_member(view, new, moved)
    st.put_member(view, old, {"role": record["role"], "active": False, "balance": 0,
                              "recovered_to": new})
    _move_claims(view, old, new)
    _move_prefix(view, st.EARNED + old, st.EARNED + new)
    _move_prefix(view, st.RESERVED + old, st.RESERVED + new)
    _move_payouts(view, old, new)
    return [{"kind": "member.recovered", "old": old, "new": new,
             "balance": record["balance"]}]


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
