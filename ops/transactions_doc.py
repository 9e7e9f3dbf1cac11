"""docs/transactions.md, generated from the chaincode's own tables so that it cannot drift.

    python -m ops.transactions_doc            print the reference
    python -m ops.transactions_doc --write    rewrite docs/transactions.md

What comes from where:
- the kinds and who signs them: chaincode/v1.py `KINDS` (roles), chaincode/governance.py
  `ACTIONS` and chaincode/constitution.py (the kinds the constitution may govern);
- each argument, its type, range and whether it is required: chaincode/args.py `SCHEMAS`
  (the check functions are described by TYPES below, whose ranges are read from the
  chaincode's constants and probed by tests/test_transactions_doc.py);
- the refusal codes: chaincode/errors.py `CODES` (the common order) and, per kind, the
  `Reject` codes its handler and the chaincode functions it calls can raise, in the
  order of the source (found by reading the handler's code, see `own_codes`);
- the events: EVENTS below and chaincode/events.py FIELDS, a table that the test checks
  against what one successful transaction of each kind emits;
- the worked example: computed here with the public test key of docs/protocol.md, the
  way an app would (msgpack and PyNaCl, no code of this repository); the test compares it
  with node/envelope.py's functions and verifies the signature.
"""
from __future__ import annotations

import argparse
import ast
import base64
import hashlib
import inspect
import sys
import textwrap
import types
from pathlib import Path

import msgpack
from nacl.signing import SigningKey

from chaincode import args as cargs
from chaincode import constitution, errors, events, governance, recoveries, v1

DOC = Path(__file__).resolve().parents[1] / "docs" / "transactions.md"
WRITE_COMMAND = "python -m ops.transactions_doc --write"

# ---- argument types: one entry per check function of chaincode/args.py ----
#
# ("int", least, most, unit) | ("text", least, most) | ("choice", values) | ("other", text)
# Ranges are the chaincode's constants; the test probes each check at its bounds.


def _int(least: int, most: int, unit: str = ""):
    return ("int", least, most, unit)


TYPES = {
    "key32": ("bytes", 32),
    "ident": ("id",),
    "tx_id": ("hexid",),
    "amount": _int(1, cargs.MAX_AMOUNT, "cents"),
    "cap": _int(0, cargs.MAX_AMOUNT, "cents"),
    "year": _int(2000, 9999),
    "minutes": _int(1, 10_080, "minutes (a week at most)"),
    "slots": _int(1, 10_000),
    "time_ms": _int(0, 2**63 - 1, "ms since the Unix epoch, UTC"),
    "role": ("choice", cargs.ROLES),
    "band": ("choice", cargs.BANDS),
    "governable": ("choice", constitution.GOVERNABLE_KINDS),
    "recovery_delay": _int(0, constitution.MAX_RECOVERY_DELAY_MS, "ms"),
    "rules_version": _int(2, cargs.MAX_RULES_VERSION, "a rules version; 1 is every chain's first"),
    "block_height": _int(1, cargs.MAX_HEIGHT, "a block height"),
    "thresholds": ("thresholds",),
    "organisations": ("organisations",),
    "action_args": ("action_args",),
    "validator_list": ("validators",),
}


def type_of(check) -> tuple:
    """The TYPES entry of a check function; a text(limit) check reads its closure."""
    name = check.__name__
    if name == "check" and check.__qualname__.startswith("text."):
        cells = inspect.getclosurevars(check).nonlocals
        return ("text", cells["least"], cells["limit"])
    if name not in TYPES:
        raise KeyError(f"chaincode/args.py has a check {name!r} that ops/transactions_doc.py "
                       "does not describe: add it to TYPES")
    return TYPES[name]


def _n(value: int) -> str:
    if value == 2**53 - 1:
        return "2^53 - 1"
    if value == 2**63 - 1:
        return "2^63 - 1"
    return f"{value:,}" if value >= 10_000 else str(value)


def describe_type(spec: tuple, arg: str = "") -> str:
    kind = spec[0]
    if kind == "int":
        _, least, most, unit = spec
        return f"int, {_n(least)} to {_n(most)}" + (f" ({unit})" if unit else "")
    if kind == "text":
        _, least, most = spec
        return f"str, {least} to {most} code points"
    if kind == "choice":
        return "str, one of " + ", ".join(f"`{v}`" for v in spec[1])
    if kind == "bytes":
        what = "a hash of the proof of the work" if arg == "proof" else "an Ed25519 public key"
        return f"bin, exactly {spec[1]} bytes ({what})"
    if kind == "id":
        return "str, an id: 1 to 64 characters of `[A-Za-z0-9._-]`"
    if kind == "hexid":
        return "str, a transaction id: 64 lowercase hex characters"
    if kind == "thresholds":
        least = ", ".join(f"`{k}` {constitution.LEAST[k]}" for k in constitution.CLASSES)
        return (f"map of exactly the {len(constitution.CLASSES)} classes to an int each, "
                f"from the class's least value ({least}) to "
                f"{constitution.MAX_ORGANISATIONS}")
    if kind == "organisations":
        return (f"array of 1 to {constitution.MAX_ORGANISATIONS} distinct ids (the whole new "
                "list of organisations)")
    if kind == "action_args":
        return ("map: the action's own args, checked against that kind's schema as if "
                "governance signed it")
    if kind == "validators":
        return (f"array of 1, or 4 to {cargs.MAX_VALIDATORS}, maps of exactly `name` (an id: "
                "1 to 64 characters of `[A-Za-z0-9._-]`), `key` (bin, exactly 32 bytes: the "
                "validator's Ed25519 public key) and `organisation` (an id, one of the "
                "chain's organisations: else `invalid_args` with problem `choice`); no name "
                "twice, no key twice (the whole new validator set, in replica order)")
    raise AssertionError(spec)


# ---- rules that span several args (chaincode/args.py, _cross_reason) ----
#
# Each note comes with a counterexample: args of which every one passes its own check
# but that valid() refuses; the test holds each note to it.

CROSS_RULES = {
    "member.register": "the role's attributes, exactly: `age_band` and `area` for a "
                       "citizen, `name` for a merchant, `organisation` for a steward, none "
                       "for the other roles",
    "member.update": "at least one of `age_band` and `area`",
    "policy.set": "`monthly_cap` and `programme_yearly_cap` are not above `yearly_cap`",
    "coin.spend": "`to` is not the signer's own key",
    "gov.propose": "`args` must be valid args of `action` (its schema and these rules)",
}

# ---- the kinds the constitution may govern: how their class is chosen ----

CLASS_NOTES = {
    "member.register": "class `member.citizen` or `member.merchant` by `role`, "
                       "`member.privileged` for admin, reviewer, auditor and steward",
    "member.revoke": "class by the target's role: `member.merchant` for a merchant, "
                     "`member.privileged` for admin, reviewer, auditor and steward; a "
                     "citizen's revocation is never governed (an admin signs it)",
    "member.recover": "class by the target's role: `member.recover` for a citizen or "
                      "merchant (an admin's signature then opens a delayed recovery "
                      "instead), `member.privileged` for the other roles",
    "policy.set": "class `policy.set`",
    "constitution.set": "class `constitution.set`, whose least threshold is 1",
    "rules.activate": "class `rules.activate`, whose least threshold is 1",
    "validators.set": "class `validators.set`, whose least threshold is 1",
}

# ---- events on success ----
#
# kind -> [(when, [event, ...])]; an event "name?" is emitted only in the case noted in
# OPTIONAL_EVENTS; "ACTION" stands for the enacted action's own events.

EVENTS = {
    "member.register": [("", ["member.registered"])],
    "member.update": [("", ["member.updated"])],
    "member.revoke": [("", ["member.recovery_cancelled?", "member.revoked"])],
    "member.recover": [("signed by an admin (a citizen or merchant)",
                        ["member.recovery_opened"]),
                       ("enacted by governance", ["member.recovery_cancelled?",
                                                  "member.recovered"])],
    "policy.set": [("", ["policy.set"])],
    "constitution.set": [("", ["member.revoked*", "constitution.set"])],
    "rules.activate": [("", ["rules.activate"])],
    "validators.set": [("", ["validators.set"])],
    "recovery.cancel": [("", ["member.recovery_cancelled"])],
    "recovery.complete": [("", ["member.recovered"])],
    "gov.propose": [("the threshold is not met yet", ["gov.proposed"]),
                     ("the proposer's organisation alone meets it, action accepted",
                      ["gov.proposed", "gov.enacted", "ACTION"]),
                     ("the proposer's organisation alone meets it, action refused",
                      ["gov.proposed", "gov.failed"])],
    "gov.approve": [("the threshold is not met yet", ["gov.approved"]),
                    ("the threshold is met, action accepted",
                     ["gov.approved", "gov.enacted", "ACTION"]),
                    ("the threshold is met, action refused", ["gov.approved", "gov.failed"])],
    "gov.withdraw": [("", ["gov.withdrawn"])],
    "task.post": [("", ["task.posted"])],
    "task.claim": [("", ["task.claimed"])],
    "task.withdraw": [("", ["task.withdrawn"])],
    "task.submit": [("", ["task.submitted"])],
    "task.approve": [("", ["task.approved"])],
    "task.reject": [("", ["task.rejected"])],
    "task.cancel": [("", ["task.cancelled"])],
    "coin.spend": [("", ["coin.spent"])],
    "coin.refund": [("", ["coin.refunded"])],
    "coin.redeem": [("", ["coin.redeemed"])],
    "payout.confirm": [("", ["payout.confirmed"])],
}
OPTIONAL_EVENTS = {
    ("member.revoke", "member.recovery_cancelled"): "only when a recovery of `key` was "
                                                    "open; `by` is the signer, or "
                                                    "`\"governance\"`",
    ("member.recover", "member.recovery_cancelled"): "only when an admin's recovery of "
                                                     "`old` was open; `by` is "
                                                     "`\"governance\"`",
    ("constitution.set", "member.revoked"): "once for each active steward of each removed "
                                            "organisation: organisations in their old "
                                            "order, keys ascending",
}

# event kind -> (fields always present, fields present only sometimes); "kind" aside:
# chaincode's own table, which the test checks against what each kind emits
EVENT_FIELDS = events.FIELDS

# ---- example args per kind (placeholder keys); the test checks valid() accepts each ----

K_CITIZEN, K_MERCHANT, K_NEW = b"\x0c" * 32, b"\x0d" * 32, b"\x0e" * 32
SPEND_ID = "c6611b27a618867d4ea93bebeb7c0e3d633ab65fe7cb158995fa580c068a9d3b"
EXAMPLE_SIGNER = b"\x01" * 32
EXAMPLES = {
    "member.register": {"key": K_CITIZEN, "role": "citizen", "age_band": "21plus",
                        "area": "GMS"},
    "member.update": {"key": K_CITIZEN, "area": "HRL-Noord"},
    "member.revoke": {"key": K_CITIZEN},
    "member.recover": {"old": K_CITIZEN, "new": K_NEW},
    "policy.set": {"year": 2027, "hourly_cap_21plus": 575, "hourly_cap_under21": 340,
                   "monthly_cap": 22_000, "yearly_cap": 220_000},
    "constitution.set": {"thresholds": constitution.default_thresholds(3),
                         "recovery_delay_ms": 3 * constitution.DAY_MS},
    "rules.activate": {"version": 2, "height": 1_200_000},
    "validators.set": {"validators": [
        {"name": name, "key": bytes([0x21 + i]) * 32, "organisation": name}
        for i, name in enumerate(("municipality", "cbs", "brightlands", "vng"))]},
    "recovery.cancel": {"old": K_CITIZEN},
    "recovery.complete": {"old": K_CITIZEN},
    "gov.propose": {"action": "member.register",
                    "args": {"key": K_NEW, "role": "reviewer"},
                    "expires": 1_749_000_000_000, "reason": "New reviewer for the library"},
    "gov.approve": {"proposal": SPEND_ID},
    "gov.withdraw": {"proposal": SPEND_ID},
    "task.post": {"task": "litter-2025-06", "title": "Litter walk", "area": "GMS",
                  "domain": "public-space", "reward": 1000, "minutes": 120, "slots": 5,
                  "deadline": 1_749_463_200_000},
    "task.claim": {"task": "litter-2025-06"},
    "task.withdraw": {"task": "litter-2025-06"},
    "task.submit": {"task": "litter-2025-06", "proof": bytes(range(32))},
    "task.approve": {"task": "litter-2025-06", "citizen": K_CITIZEN},
    "task.reject": {"task": "litter-2025-06", "citizen": K_CITIZEN,
                    "reason": "No photo of the collected bags"},
    "task.cancel": {"task": "litter-2025-06"},
    "coin.spend": {"to": K_MERCHANT, "amount": 250, "memo": "Koffie"},
    "coin.refund": {"spend": SPEND_ID, "amount": 250},
    "coin.redeem": {"amount": 10_000},
    "payout.confirm": {"payout": SPEND_ID, "reference": "NL-2025-000123"},
}

# ---- the refusal codes each handler can raise ----

COMMON = ("duplicate", "unknown_kind", "invalid_args", "unknown_member", "revoked",
          "frozen", "unauthorized")


def own_codes(function) -> list[str]:
    """The codes of `Reject(...)` that `function`, and the chaincode functions it calls,
    can raise: depth first, in the order of the source, each once."""
    found: list[str] = []
    _walk(function, found, set())
    return found


def _walk(function, found: list[str], seen: set) -> None:
    if function in seen:
        return
    seen.add(function)
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    namespace = function.__globals__
    for node in _in_order(tree.body[0]):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Name) and node.func.id == "Reject":
            code = node.args[0].value
            assert code in errors.CODES, code
            if code not in found:
                found.append(code)
            continue
        callee = _resolve(node.func, namespace)
        if isinstance(callee, types.FunctionType) and \
                callee.__module__.startswith("chaincode."):
            _walk(callee, found, seen)


def _in_order(node):
    """Every node under `node` in source order (ast.walk is breadth first)."""
    yield node
    for child in ast.iter_child_nodes(node):
        yield from _in_order(child)


def _resolve(expr, namespace):
    if isinstance(expr, ast.Name):
        return namespace.get(expr.id)
    if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name):
        module = namespace.get(expr.value.id)
        if isinstance(module, types.ModuleType):
            return getattr(module, expr.attr, None)
    return None


# ---- the worked example ----

EXAMPLE_SEED = bytes(range(32))
EXAMPLE_CHAIN = "heerlen"
EXAMPLE_KIND = "coin.spend"
EXAMPLE_NONCE = 7
EXAMPLE_ARGS = {"amount": 250, "memo": "Koffie", "to": b"\x11" * 32}
TX_TAG = b"stadsmunt/tx/v1"


def worked_example() -> dict:
    """One coin.spend signed with the public test key, computed as an app would: the
    body's keys in ascending order at every depth, msgpack with bin for bytes, PyNaCl."""
    signing_key = SigningKey(EXAMPLE_SEED)
    public = bytes(signing_key.verify_key)
    args = dict(sorted(EXAMPLE_ARGS.items()))
    fields = {"args": args, "chain": EXAMPLE_CHAIN, "kind": EXAMPLE_KIND,
              "nonce": EXAMPLE_NONCE, "signer": public, "v": 1}
    body = msgpack.packb(dict(sorted(fields.items())), use_bin_type=True)
    signing_input = TX_TAG + body
    signature = signing_key.sign(signing_input).signature
    envelope = msgpack.packb([body, signature], use_bin_type=True)
    return {"seed": EXAMPLE_SEED, "public": public, "fields": fields, "body": body,
            "signing_input": signing_input, "signature": signature, "envelope": envelope,
            "tx_id": hashlib.sha256(body).hexdigest(),
            "envelope_hash": hashlib.sha256(envelope).hexdigest()}


def _pack(value) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def _body_breakdown(fields: dict) -> list[str]:
    """The body's bytes, one key or value a line."""
    rows = [("86", "map of 6 entries")]
    for name, value in fields.items():
        rows.append((_pack(name).hex(), f'key "{name}"'))
        if name == "args":
            rows.append((f"{0x80 | len(value):02x}", f"map of {len(value)} entries"))
            for arg, arg_value in value.items():
                rows.append((_pack(arg).hex(), f'  key "{arg}"'))
                rows += _value_rows(arg_value, "  ")
        else:
            rows += _value_rows(value, "")
    width = max(len(h) for h, _ in rows)
    return [f"    {h.ljust(width)}  {note}" for h, note in rows]


def _value_rows(value, indent: str) -> list[tuple[str, str]]:
    packed = _pack(value)
    if type(value) is bytes:
        head = packed[:len(packed) - len(value)]
        return [(head.hex(), f"{indent}bin 8 of {len(value)} bytes:"),
                (value.hex(), f"{indent}  the bytes")]
    return [(packed.hex(), indent + _what(value))]


def _what(value) -> str:
    if type(value) is bytes:
        return f"bin 8 of {len(value)} bytes"
    if type(value) is str:
        return f'str "{value}"'
    head = _pack(value)[0]
    form = "positive fixint" if head < 0x80 else {0xcc: "uint 8", 0xcd: "uint 16",
                                                   0xce: "uint 32", 0xcf: "uint 64"}[head]
    return f"int {value} ({form})"


def _wrap_hex(data: bytes, width: int = 64) -> list[str]:
    text = data.hex()
    return ["    " + text[i:i + width] for i in range(0, len(text), width)]


def _literal(value) -> str:
    """An args value as written in this page: bytes as bin(hex)."""
    if type(value) is bytes:
        return f"bin({value.hex()})"
    if type(value) is str:
        return '"' + value + '"'
    if type(value) is dict:
        return "{" + ", ".join(f'"{k}": {_literal(v)}' for k, v in sorted(value.items())) + "}"
    if type(value) is list:
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return str(value)


# ---- the page ----

def _roles(roles) -> str:
    if not roles:
        return "nobody directly: governance only (a proposal enacted, docs/governance.md)"
    named = [r for r in cargs.ROLES if r in roles]
    return " or ".join(f"an {r}" if r[0] in "aeiou" else f"a {r}" for r in named)


def _codes(codes) -> str:
    return ", ".join(f"`{c}`" for c in codes)


def _event_list(kind: str, events: list[str]) -> str:
    parts = []
    for event in events:
        if event == "ACTION":
            parts.append("the action's own events")
            continue
        name = event.rstrip("?*")
        if event != name:
            parts.append(f"`{name}` ({OPTIONAL_EVENTS[(kind, name)]})")
        else:
            parts.append(f"`{name}`")
    return ", then ".join(parts)


def _fields(event: str) -> str:
    always, sometimes = EVENT_FIELDS[event]
    text = ", ".join(f"`{f}`" for f in always)
    if sometimes:
        text += "; sometimes " + ", ".join(f"`{f}`" for f in sometimes)
    return text


def _para(text: str) -> list[str]:
    return textwrap.wrap(text, 88, break_long_words=False, break_on_hyphens=False)


def _kind_section(kind: str) -> list[str]:
    handler, roles = v1.KINDS[kind]
    lines = [f"## `{kind}`", ""]
    signer = _roles(roles)
    if kind == "member.recover":
        signer += (" for a citizen or merchant, which opens a delayed recovery (the key "
                   "is frozen and `recovery.complete` finishes it after the constitution's "
                   "delay); otherwise governance only (an admin then gets `unauthorized`)")
    elif kind in governance.ACTIONS and roles:
        signer += (" while the action's class has threshold 0 in the constitution; "
                   "otherwise governance only (an admin then gets `unauthorized`)")
    lines += _para(f"**Signed by:** {signer}.")
    if kind in CLASS_NOTES:
        lines += [""] + _para(f"**Governed as:** {CLASS_NOTES[kind]}.")
    lines += ["", "| arg | type and range | required |", "|---|---|---|"]
    for name, (check, required) in cargs.SCHEMAS[kind].items():
        lines.append(f"| `{name}` | {describe_type(type_of(check), name)} | "
                     f"{'required' if required else 'optional'} |")
    lines.append("")
    if kind in CROSS_RULES:
        lines += _para(f"**Across args:** {CROSS_RULES[kind]}.") + [""]
    lines += ["**Example args:**", "", "    " + _literal(EXAMPLES[kind]), ""]
    own = own_codes(handler)
    refusals = "**Its own refusals, in order** (after the common checks): "
    if kind == "member.recover":
        refusals += ("enacted by governance " + _codes(own) + "; signed by an admin (a "
                     "delayed recovery of a citizen or merchant) "
                     + _codes(own_codes(recoveries.open_recovery)) + ".")
    else:
        refusals += (_codes(own) if own else "none") + "."
    lines += _para(refusals) + [""]
    lines.append("**Events on success:**")
    lines.append("")
    for when, emitted in EVENTS[kind]:
        prefix = f"- {when}: " if when else "- "
        lines += textwrap.wrap(prefix + _event_list(kind, emitted), 88,
                               subsequent_indent="  ", break_long_words=False,
                               break_on_hyphens=False)
    lines.append("")
    return lines


def generate() -> str:
    missing = set(cargs.SCHEMAS) ^ set(v1.KINDS)
    assert not missing, f"SCHEMAS and KINDS name different kinds: {sorted(missing)}"
    missing = set(cargs.SCHEMAS) ^ set(EVENTS)
    assert not missing, f"EVENTS of ops/transactions_doc.py is out of date: {sorted(missing)}"
    assert errors.CODES[:len(COMMON)] == COMMON, "chaincode/errors.py's CODES changed order"
    own = [c for c in errors.CODES if c not in COMMON]
    ex = worked_example()
    out = [
        "# Transactions: every kind, its signers, args, refusals and events",
        "",
        "<!-- Generated by ops/transactions_doc.py from the chaincode's tables: do not edit.",
        f"     Run `{WRITE_COMMAND}` after changing the rules;",
        "     tests/test_transactions_doc.py fails while this page differs. -->",
        "",
        "This page is generated from the chaincode's own tables (chaincode/v1.py `KINDS`,",
        "chaincode/args.py `SCHEMAS`, chaincode/errors.py `CODES`, chaincode/constitution.py)",
        "and the code of each kind's handler, so it says what rules version 1 does. How a",
        "transaction is signed and sent is in [protocol.md](protocol.md), \"Envelope and",
        "body\"; how it is submitted in [api.md](api.md); the state and the events' fields",
        "in full in [chaincode.md](chaincode.md), \"Results and events\".",
        "",
        "## Common rules",
        "",
        "Every transaction is a body `{args, chain, kind, nonce, signer, v}` signed by",
        "`signer` (the worked example at the end shows every byte). `args` is a map with",
        "`str` keys; for each kind below it takes exactly the args listed: no unknown arg,",
        "every required one, each of exactly its type (a msgpack `true` is not the int 1;",
        "keys and hashes are `bin`, never `str`). Text lengths count Unicode code points.",
        "Any mistake in the args is `invalid_args`.",
        "",
        *_para("**The order of checks.** The first that fails is the result: the common "
               f"checks {_codes(COMMON)}, then the kind's own, listed per kind below in "
               "the order its code checks them. `unknown_kind` answers a kind not on this "
               "page; `revoked` is also the answer to a `task.approve` whose `citizen` is "
               "revoked; `frozen` answers any transaction of a key while a recovery of it "
               "is open; `unauthorized` is also the answer to an admin's signature on an "
               "action the constitution governs. The contract's order of the kinds' own "
               f"codes is {_codes(own)} (a `gov.withdraw` by another organisation is "
               "`unauthorized` after `not_found`). A refused transaction changes nothing "
               "but uses up its id; an `ok` one returns its events. What a refusal's `info` "
               "holds is in api.md, \"Results\"."),
        "",
        "**Events.** Each event is a map with `kind` and the fields below (keys, proofs",
        "and hashes `bin`; amounts and times int; transaction, payout and proposal ids",
        "lowercase hex `str`):",
        "",
        "| event | fields |",
        "|---|---|",
    ]
    for event in EVENT_FIELDS:
        out.append(f"| `{event}` | {_fields(event)} |")
    out += ["", "**Args in the examples** are written `bin(hex)` for msgpack `bin`, `\"...\"`",
            "for `str`, bare integers for int.", ""]
    for kind in cargs.SCHEMAS:
        out += _kind_section(kind)
    out += _example_section(ex)
    return "\n".join(out).rstrip("\n") + "\n"


def _example_section(ex: dict) -> list[str]:
    fields = ex["fields"]
    b64 = base64.b64encode(ex["envelope"]).decode()
    out = [
        "## Worked example: one signed `coin.spend`",
        "",
        "The key is the **public test key** of protocol.md's test vectors: its seed is the",
        "bytes 0 to 31 (`000102...1f`), which everybody knows. Never use it for real coins.",
        "",
        f"    seed           {ex['seed'].hex()}",
        f"    public key     {ex['public'].hex()}",
        "",
        "The body's fields (keys in ascending order, also inside `args`):",
        "",
        "| field | msgpack type | value |",
        "|---|---|---|",
        f"| `args` | map | `{_literal(fields['args'])}` |",
        f"| `chain` | str | `\"{fields['chain']}\"` |",
        f"| `kind` | str | `\"{fields['kind']}\"` |",
        f"| `nonce` | int | `{fields['nonce']}` (an app picks a fresh random 64-bit one) |",
        f"| `signer` | bin 32 | the public key above |",
        f"| `v` | int | `{fields['v']}` |",
        "",
        f"The canonical body, {len(ex['body'])} bytes, one key or value a line:",
        "",
        *_body_breakdown(fields),
        "",
        "The same bytes in one piece:",
        "",
        *_wrap_hex(ex["body"]),
        "",
        *_para(f"The signing input is the tag `stadsmunt/tx/v1` ({len(TX_TAG)} ASCII bytes, "
               f"`{TX_TAG.hex()}`) followed by the body bytes; the signature is Ed25519 "
               "over it with the key above:"),
        "",
        "    signature",
        *_wrap_hex(ex["signature"]),
        "",
        "The envelope is the msgpack array `[bin body, bin signature]` (`92`, `c4` and the",
        f"body's length `{len(ex['body']):02x}`, the body, `c440` and the signature), "
        f"{len(ex['envelope'])} bytes:",
        "",
        *_wrap_hex(ex["envelope"]),
        "",
        "Sent as JSON to `POST /v1/tx` it is `{\"envelope\": \"<base64>\"}` with:",
        "",
        *["    " + b64[i:i + 64] for i in range(0, len(b64), 64)],
        "",
        "Its transaction id is the lowercase hex SHA-256 of the body bytes (not of the",
        "envelope); the envelope hash is what consensus orders:",
        "",
        f"    tx id          {ex['tx_id']}",
        f"    envelope hash  {ex['envelope_hash']}",
        "",
        "The same in Python with only msgpack and PyNaCl:",
        "",
        "```python",
        "import hashlib, msgpack",
        "from nacl.signing import SigningKey",
        "",
        "key = SigningKey(bytes(range(32)))             # the public test key",
        "body = msgpack.packb({                         # keys in ascending order",
        "    \"args\": {\"amount\": 250, \"memo\": \"Koffie\", \"to\": b\"\\x11\" * 32},",
        f"    \"chain\": \"{fields['chain']}\", \"kind\": \"{fields['kind']}\", "
        f"\"nonce\": {fields['nonce']},",
        "    \"signer\": bytes(key.verify_key), \"v\": 1}, use_bin_type=True)",
        "signature = key.sign(b\"stadsmunt/tx/v1\" + body).signature",
        "envelope = msgpack.packb([body, signature], use_bin_type=True)",
        "tx_id = hashlib.sha256(body).hexdigest()",
        "```",
        "",
    ]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.transactions_doc",
                                     description="Print, or with --write rewrite, "
                                                 "docs/transactions.md.")
    parser.add_argument("--write", action="store_true",
                        help="rewrite docs/transactions.md instead of printing it")
    options = parser.parse_args(argv)
    text = generate()
    if options.write:
        DOC.write_text(text, encoding="utf-8")
        print(f"wrote {DOC}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
