"""Checking a transaction's args against its kind: any failure is `invalid_args`.

Each kind has a schema: arg name -> (check, required). A check returns True for a value
of the right type and range. msgpack decodes true/false as bool, and bool is an int in
Python, so integer checks test the exact type.

A failure says which argument failed and why (`reason`): the info of `invalid_args` is
{"argument": NAME, "problem": WORD}, WORD one of PROBLEMS. Each check has a `why` that
names the problem of a value it refuses. The info is part of the hashed result: it is
made of the args alone, in a fixed order (docs/api.md, "Results"), never of language.
"""
from __future__ import annotations

import re

from . import constitution
from .upgrades import MAX_HEIGHT, MAX_VERSION as MAX_RULES_VERSION

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
    check.why = _text_why
    return check


def _int_why(v) -> str:
    return "type" if type(v) is not int else "range"


def _word_why(v) -> str:
    return "type" if type(v) is not str else "choice"


def _text_why(v) -> str:
    return "type" if type(v) is not str else "length"


def _key32_why(v) -> str:
    return "type" if type(v) is not bytes else "length"


def _ident_why(v) -> str:
    if type(v) is not str:
        return "type"
    return "length" if not 1 <= len(v) <= 64 else "format"


def _tx_id_why(v) -> str:
    if type(v) is not str:
        return "type"
    return "length" if len(v) != 64 else "format"


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


def rules_version(v) -> bool:
    """A version a chain can move to: 1 is every chain's first."""
    return type(v) is int and 2 <= v <= MAX_RULES_VERSION


def block_height(v) -> bool:
    return type(v) is int and 1 <= v <= MAX_HEIGHT


VALIDATOR_FIELDS = frozenset(("name", "key", "organisation"))
MAX_VALIDATORS = 64


def _validator_count(n: int) -> bool:
    """One validator (development) or n = 3f + 1 with f >= 1: 4 to MAX_VALIDATORS."""
    return n == 1 or 4 <= n <= MAX_VALIDATORS


def validator_list(v) -> bool:
    """validators.set's validators: 1, or 4 to 64, maps of exactly name (an id), key
    (32 bytes) and organisation (an id), the names distinct and the keys distinct."""
    return (type(v) is list and _validator_count(len(v))
            and all(type(e) is dict and e.keys() == VALIDATOR_FIELDS and ident(e["name"])
                    and key32(e["key"]) and ident(e["organisation"]) for e in v)
            and len({e["name"] for e in v}) == len(v) and len({e["key"] for e in v}) == len(v))


def governable(v) -> bool:
    return type(v) is str and v in constitution.GOVERNABLE_KINDS


def action_args(v) -> bool:
    return type(v) is dict


def _thresholds_why(v) -> str:
    if type(v) is not dict:
        return "type"
    if set(v) != set(constitution.CLASSES):
        return "format"
    if any(type(v[k]) is not int for k in constitution.CLASSES):
        return "type"
    return "range"


def _validator_list_why(v) -> str:
    if type(v) is not list:
        return "type"
    if not _validator_count(len(v)):
        return "length"
    if any(type(e) is not dict for e in v):
        return "type"
    if any(e.keys() != VALIDATOR_FIELDS for e in v):
        return "format"         # a field missing, or one it does not take
    if any(type(e["name"]) is not str or type(e["key"]) is not bytes
           or type(e["organisation"]) is not str for e in v):
        return "type"
    if any(len(e["key"]) != 32 for e in v):
        return "length"
    return "format"             # a name or organisation that is not an id, or a name or key twice


def _organisations_why(v) -> str:
    if type(v) is not list:
        return "type"
    if not 1 <= len(v) <= constitution.MAX_ORGANISATIONS:
        return "length"
    if any(type(o) is not str for o in v):
        return "type"
    return "format"         # an id that is not one, or one twice


for _check, _why in ((key32, _key32_why), (ident, _ident_why), (tx_id, _tx_id_why),
                     (amount, _int_why), (cap, _int_why), (year, _int_why),
                     (minutes, _int_why), (slots, _int_why), (time_ms, _int_why),
                     (role, _word_why), (band, _word_why), (thresholds, _thresholds_why),
                     (organisations, _organisations_why), (recovery_delay, _int_why),
                     (governable, _word_why), (action_args, lambda v: "type"),
                     (rules_version, _int_why), (block_height, _int_why),
                     (validator_list, _validator_list_why)):
    _check.why = _why
del _check, _why


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
    "rules.activate": {"version": (rules_version, R), "height": (block_height, R)},
    "validators.set": {"validators": (validator_list, R)},
    "gov.propose": {"action": (governable, R), "args": (action_args, R), "expires": (time_ms, R),
                    "reason": (text(280), O)},
    "gov.approve": {"proposal": (tx_id, R)},
    "gov.withdraw": {"proposal": (tx_id, R)},
}
# What each role must (and may only) carry at registration.
ROLE_ARGS = {"citizen": {"age_band", "area"}, "merchant": {"name"}, "steward": {"organisation"}}


# The words of invalid_args's info["problem"] (docs/api.md, "Results"):
#   missing   a required argument is absent (or an attribute the role needs)
#   unknown   an argument the kind (for member.register: the role) does not take
#   type      a value of the wrong type (text for a number, a list for a map, ...)
#   range     a number outside its range
#   length    a text, list or bytes value too short or too long
#   format    a text that is not of its form (an id, a hex id), a map or list whose
#             entries are not the ones it needs (thresholds, organisations, validators)
#   choice    a word that is not one of the allowed words (role, age_band, action; a
#             validator's organisation that is not one of the chain's: chaincode/v1.py)
#   conflict  a value that is good alone but not with another argument or the signer
PROBLEMS = ("missing", "unknown", "type", "range", "length", "format", "choice",
            "conflict")
WHOLE = "*"             # the "argument" of a problem of the args as a whole
MAX_NAME = 64           # an unknown argument's name is told in at most this many code points


def valid(kind: str, signer: bytes, args) -> bool:
    """Whether args fit the kind's schema and the few rules that span several args."""
    if kind == "coin.spend":
        return _valid_spend(signer, args)
    return reason(kind, signer, args) is None


def reason(kind: str, signer: bytes, args) -> tuple[str, str] | None:
    """Why args do not fit the kind: (argument, problem), or None when they do.

    The first failure in this order: args that are not a map (or a name that is not
    text): WHOLE; an argument the kind does not take, the least name first; each of the
    schema's arguments in the schema's order, missing or with a value its check refuses;
    then the rules across arguments (_cross_reason). Inside gov.propose, the proposed
    action's args are named "args.NAME" ("args" as a whole)."""
    schema = SCHEMAS[kind]
    if type(args) is not dict:
        return WHOLE, "type"
    unknown = [name for name in args if name not in schema]
    if unknown:
        if any(type(name) is not str for name in unknown):
            return WHOLE, "type"
        return min(unknown)[:MAX_NAME], "unknown"
    for name, (check, required) in schema.items():
        if name in args:
            value = args[name]
            if not check(value):
                return name, check.why(value)
        elif required:
            return name, "missing"
    return _cross_reason(kind, signer, args)


def invalid_info(kind: str, signer: bytes, args) -> dict:
    """The info of the `invalid_args` of args that valid() refused."""
    argument, problem = reason(kind, signer, args) or (WHOLE, "format")
    return {"argument": argument, "problem": problem}


def _cross_reason(kind: str, signer: bytes, args: dict) -> tuple[str, str] | None:
    if kind == "coin.spend":
        return ("to", "conflict") if args["to"] == signer else None
    if kind == "member.register":
        allowed = ROLE_ARGS.get(args["role"], set())
        given = set(args) - {"key", "role"}
        if given - allowed:
            return min(given - allowed), "unknown"
        if allowed - given:
            return min(allowed - given), "missing"
        return None
    if kind == "member.update":
        return None if "age_band" in args or "area" in args else (WHOLE, "missing")
    if kind == "gov.propose":           # the action's own args, as governance would sign
        inner = reason(args["action"], b"", args["args"])
        if inner is None:
            return None
        name, problem = inner
        return ("args" if name == WHOLE else "args." + name), problem
    if kind == "policy.set":
        top = args["yearly_cap"]
        if args["monthly_cap"] > top:
            return "monthly_cap", "conflict"
        if args.get("programme_yearly_cap", 0) > top:
            return "programme_yearly_cap", "conflict"
    return None


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
