"""Checking a transaction's args against its kind: any failure is `invalid_args`.

Each kind has a schema: arg name -> (check, required). A check returns True for a value
of the right type and range. msgpack decodes true/false as bool, and bool is an int in
Python, so integer checks test the exact type.
"""
from __future__ import annotations

import re

from . import constitution

MAX_AMOUNT = 2**53 - 1
_ID = re.compile(r"[A-Za-z0-9._-]{1,64}\Z")
_HEX_ID = re.compile(r"[0-9a-f]{64}\Z")
ROLES = ("citizen", "merchant", "reviewer", "admin", "auditor", "steward")
BANDS = ("21plus", "under21")


def key32(v) -> bool:
    return type(v) is bytes and len(v) == 32


def ident(v) -> bool:
    return type(v) is str and _ID.match(v) is not None


def tx_id(v) -> bool:
    return type(v) is str and _HEX_ID.match(v) is not None


def amount(v) -> bool:
    return type(v) is int and 1 <= v <= MAX_AMOUNT


def cap(v) -> bool:
    return type(v) is int and 0 <= v <= MAX_AMOUNT


def year(v) -> bool:
    return type(v) is int and 2000 <= v <= 9999


def minutes(v) -> bool:
    return type(v) is int and 1 <= v <= 10_080


def slots(v) -> bool:
    return type(v) is int and 1 <= v <= 10_000


def time_ms(v) -> bool:
    return type(v) is int and 0 <= v <= 2**63 - 1


def role(v) -> bool:
    return type(v) is str and v in ROLES


def band(v) -> bool:
    return type(v) is str and v in BANDS


def text(limit: int, optional: bool = False):
    """Text of 1..limit code points (0..limit when the arg is optional)."""
    least = 0 if optional else 1

    def check(v) -> bool:
        return type(v) is str and least <= len(v) <= limit
    return check


def thresholds(v) -> bool:
    """constitution.set's thresholds: exactly the classes, each from its least to 64."""
    return (type(v) is dict and set(v) == set(constitution.CLASSES)
            and all(type(n) is int and constitution.LEAST[k] <= n
                    <= constitution.MAX_ORGANISATIONS for k, n in v.items()))


def organisations(v) -> bool:
    return (type(v) is list and 1 <= len(v) <= constitution.MAX_ORGANISATIONS
            and all(ident(o) for o in v) and len(set(v)) == len(v))


def recovery_delay(v) -> bool:
    return type(v) is int and 0 <= v <= constitution.MAX_RECOVERY_DELAY_MS


def governable(v) -> bool:
    return type(v) is str and v in constitution.GOVERNABLE_KINDS


def action_args(v) -> bool:
    return type(v) is dict


R, O = True, False
SCHEMAS: dict[str, dict] = {
    "member.register": {"key": (key32, R), "role": (role, R), "age_band": (band, O),
                        "area": (ident, O), "name": (text(120), O),
                        "organisation": (ident, O)},
    "member.update": {"key": (key32, R), "age_band": (band, O), "area": (ident, O)},
    "member.revoke": {"key": (key32, R)},
    "member.recover": {"old": (key32, R), "new": (key32, R)},
    "policy.set": {"year": (year, R), "hourly_cap_21plus": (cap, R),
                   "hourly_cap_under21": (cap, R), "monthly_cap": (cap, R),
                   "yearly_cap": (cap, R), "programme_yearly_cap": (cap, O)},
    "task.post": {"task": (ident, R), "title": (text(120), R), "area": (ident, R),
                  "domain": (ident, R), "reward": (amount, R), "minutes": (minutes, R),
                  "slots": (slots, R), "deadline": (time_ms, R)},
    "task.claim": {"task": (ident, R)},
    "task.withdraw": {"task": (ident, R)},
    "task.submit": {"task": (ident, R), "proof": (key32, R)},
    "task.approve": {"task": (ident, R), "citizen": (key32, R)},
    "task.reject": {"task": (ident, R), "citizen": (key32, R), "reason": (text(280), R)},
    "task.cancel": {"task": (ident, R)},
    "coin.spend": {"to": (key32, R), "amount": (amount, R), "memo": (text(140, True), O)},
    "coin.refund": {"spend": (tx_id, R), "amount": (amount, R)},
    "coin.redeem": {"amount": (amount, R)},
    "payout.confirm": {"payout": (tx_id, R), "reference": (text(140), R)},
    "recovery.cancel": {"old": (key32, R)},
    "recovery.complete": {"old": (key32, R)},
    "constitution.set": {"thresholds": (thresholds, R), "recovery_delay_ms": (recovery_delay, O),
                         "organisations": (organisations, O)},
    "gov.propose": {"action": (governable, R), "args": (action_args, R), "expires": (time_ms, R),
                    "reason": (text(280), O)},
    "gov.approve": {"proposal": (tx_id, R)},
    "gov.withdraw": {"proposal": (tx_id, R)},
}
# What each role must (and may only) carry at registration.
ROLE_ARGS = {"citizen": {"age_band", "area"}, "merchant": {"name"}, "steward": {"organisation"}}


def valid(kind: str, signer: bytes, args) -> bool:
    """Whether args fit the kind's schema and the few rules that span several args."""
    if kind == "coin.spend":
        return _valid_spend(signer, args)
    schema = SCHEMAS[kind]
    if type(args) is not dict:
        return False
    for name, value in args.items():
        entry = schema.get(name)
        if entry is None or not entry[0](value):
            return False
    for name, (_, required) in schema.items():
        if required and name not in args:
            return False
    return _cross_checks(kind, signer, args)


def _cross_checks(kind: str, signer: bytes, args: dict) -> bool:
    if kind == "coin.spend":
        return args["to"] != signer
    if kind == "member.register":
        extra = set(args) - {"key", "role"}
        return extra == ROLE_ARGS.get(args["role"], set())
    if kind == "member.update":
        return "age_band" in args or "area" in args
    if kind == "gov.propose":           # the action's own args, as governance would sign
        return valid(args["action"], b"", args["args"])
    if kind == "policy.set":
        top = args["yearly_cap"]
        return args["monthly_cap"] <= top and args.get("programme_yearly_cap", 0) <= top
    return True


def _valid_spend(signer: bytes, args) -> bool:
    """valid() for the hot kind, unrolled; test_chaincode_args.py checks it agrees with the schema."""
    if type(args) is not dict:
        return False
    to, value = args.get("to"), args.get("amount")
    if type(to) is not bytes or len(to) != 32 or to == signer:
        return False
    if type(value) is not int or not 1 <= value <= MAX_AMOUNT:
        return False
    size = len(args)
    if size == 2:
        return True
    memo = args.get("memo")
    return size == 3 and type(memo) is str and len(memo) <= 140
