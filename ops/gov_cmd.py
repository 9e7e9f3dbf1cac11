"""`stadsmunt gov --gateway URL --key FILE COMMAND`: the partners' stewards propose,
approve and withdraw governed changes; anyone lists and shows proposals (docs/client.md).

A proposal carries a governed action and its args, as the chain has them (amounts in
cents, keys as 64 hex); the proposer's organisation approves it at once, and it takes
effect in the transaction in which enough distinct organisations have approved.

Exit codes: 0 done; 1 the chain or the gateway refused (also: the action failed its own
checks when its threshold was met); 2 bad usage or a gateway that cannot be reached.
"""
from __future__ import annotations

import argparse
import json
import re

from chaincode import args as schema
from chaincode.constitution import GOVERNABLE_KINDS
from chaincode.describe import describe
from client import DAY_MS, Client, ClientError, now_ms
from ops import client_cmd, client_rows
from ops.client_rows import ZONE_NAME, city_time, table
from ops.errors import UsageError

STATUSES = ("open", "enacted", "failed", "withdrawn", "expired")
MAX_EXPIRY_DAYS = 30
_HEX = re.compile(r"[0-9a-f]{1,64}\Z")
STEWARD_KEY = "give --key with a steward key (DIR/keys/steward-NAME.key)"

# what to do about a refusal: (command, code) -> words; command "*" for any
HINTS = {
    ("*", "unknown_member"): f"the key of --key is not a member of this chain; {STEWARD_KEY}",
    ("*", "revoked"): "the key of --key is revoked; use another steward of your organisation",
    ("*", "frozen"): "the key of --key is frozen by an open recovery and signs nothing",
    ("propose", "unauthorized"): f"only stewards may propose; {STEWARD_KEY}",
    ("approve", "unauthorized"): f"only stewards may approve; {STEWARD_KEY}",
    ("withdraw", "unauthorized"): "only a steward of the organisation that proposed it may "
                                  "withdraw it; give --key with that organisation's "
                                  "steward key (DIR/keys/steward-NAME.key)",
    ("propose", "invalid_args"): "these args do not fit the action; see `stadsmunt gov "
                                 "propose --help`",
    ("propose", "not_found"): "the member named in the args is not a member",
    ("propose", "invalid_state"): "the constitution does not govern this action now "
                                  "(threshold 0: an admin signs it directly with "
                                  "`stadsmunt client`), or your organisation has 64 open "
                                  "proposals (`stadsmunt gov list --status open`)",
    ("propose", "deadline_passed"): "the expiry must be after the block time; give a "
                                    "larger --expires-days",
    ("approve", "not_found"): "no proposal has this id; see `stadsmunt gov list`",
    ("withdraw", "not_found"): "no proposal has this id; see `stadsmunt gov list`",
    ("approve", "exists"): "your organisation has approved this proposal already; an "
                           "organisation counts once, however many of its stewards approve",
    ("approve", "invalid_state"): "the proposal is no longer open (enacted, failed, "
                                  "withdrawn or expired) or its action is no longer "
                                  "governed; see `stadsmunt gov show ID`",
    ("withdraw", "invalid_state"): "the proposal is no longer open; see `stadsmunt gov "
                                   "show ID`",
}


def hint(command: str, code: str) -> str | None:
    return HINTS.get((command, code)) or HINTS.get(("*", code))


# ---- the action's args ----------------------------------------------------------------

def _hex_key(text: str, name: str) -> bytes:
    text = text.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", text):
        raise UsageError(f"{name} is a key: 64 hex characters, not {text[:80]!r}")
    return bytes.fromhex(text)


def _whole(text: str, name: str) -> int:
    try:
        return int(text.strip().replace("_", ""))
    except ValueError:
        raise UsageError(f"{name} is a whole number (amounts in cents), not {text!r}") \
            from None


def _thresholds(text: str, name: str) -> dict:
    """JSON, or CLASS=N,CLASS=N."""
    if text.strip().startswith("{"):
        return _json(text, name)
    found = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        klass, _, value = part.partition("=")
        found[klass.strip()] = _whole(value, f"{name} {klass}")
    return found


def _organisations(text: str, name: str) -> list:
    if text.strip().startswith("["):
        return _json(text, name)
    return [o.strip() for o in text.split(",") if o.strip()]


def _validators(text: str, name: str) -> list:
    """JSON (keys as hex), or NAME:KEY:ORGANISATION,NAME:KEY:ORGANISATION,..."""
    if text.strip().startswith("["):
        found = _json(text, name)
        try:
            return action_args("validators.set", {"validators": found})["validators"]
        except ValueError:
            raise UsageError(f"a key in {name} is 64 hex characters") from None
    found = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        pieces = part.split(":")
        if len(pieces) != 3:
            raise UsageError(f"{name} is NAME:KEY:ORGANISATION for each validator, "
                             f"separated by commas; not {part[:80]!r}")
        found.append({"name": pieces[0].strip(), "key": _hex_key(pieces[1], f"{name} key"),
                      "organisation": pieces[2].strip()})
    return found


def _json(text: str, name: str):
    try:
        return json.loads(text)
    except ValueError as error:
        raise UsageError(f"{name} is not JSON: {error}") from None


def action_args(action: str, args: dict) -> dict:
    """A governed action's args as the chain wants them: hex text in an arg that the
    action's schema types as a key (member.register `key`, member.revoke `key`,
    member.recover `old` and `new`, and each validator's `key` of validators.set's
    `validators`) becomes its 32 bytes (bad hex: ValueError); the rest is kept as given.
    The client sends a proposal's args as given: the schema that knows which are keys is
    the chaincode's, and the client does not load the chaincode."""
    fields = schema.SCHEMAS.get(action, {})

    def chain_form(name: str, value):
        check = fields[name][0] if name in fields else None
        if check is schema.key32 and isinstance(value, str):
            return bytes.fromhex(value)
        if check is schema.validator_list and isinstance(value, list):
            return [dict(v, key=bytes.fromhex(v["key"])) if isinstance(v, dict)
                    and isinstance(v.get("key"), str) else v for v in value]
        return value
    return {name: chain_form(name, value) for name, value in args.items()}


# how `--arg NAME=VALUE` reads VALUE, by the check the action's schema names
READERS = {schema.key32: _hex_key, schema.cap: _whole, schema.year: _whole,
           schema.recovery_delay: _whole, schema.rules_version: _whole,
           schema.block_height: _whole, schema.thresholds: _thresholds,
           schema.organisations: _organisations, schema.validator_list: _validators}


def proposal_args(action: str, pairs: list[str], text: str | None) -> dict:
    """The action's args from `--args-json` and `--arg NAME=VALUE` (these win), checked
    against the action's schema as the chain will check them."""
    if action not in GOVERNABLE_KINDS or action not in schema.SCHEMAS:
        raise UsageError(f"{action!r} cannot be proposed; the governed actions are "
                         f"{', '.join(k for k in GOVERNABLE_KINDS if k in schema.SCHEMAS)}")
    fields = schema.SCHEMAS[action]
    given = {}
    if text is not None:
        given = _json(text, "--args-json")
        if not isinstance(given, dict):
            raise UsageError("--args-json is a JSON object of the action's args")
        try:
            given = action_args(action, given)
        except ValueError:
            raise UsageError("a key in --args-json is 64 hex characters") from None
    for pair in pairs:
        name, equals, value = pair.partition("=")
        name = name.strip()
        if not equals:
            raise UsageError(f"--arg is NAME=VALUE, not {pair!r}")
        reader = READERS.get(fields.get(name, (None,))[0])
        given[name] = reader(value, name) if reader else value
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise UsageError(f"{action} takes {', '.join(fields)}; not {', '.join(unknown)}")
    missing = [n for n, (_check, required) in fields.items() if required and n not in given]
    if missing:
        raise UsageError(f"{action} needs {', '.join(missing)}")
    if action == "member.register":
        problem = client_rows.register_problem(given)
        if problem:
            raise UsageError(problem)
    if not schema.valid(action, b"", given):
        raise UsageError(f"these args do not fit {action}: " + (
            "amounts are whole cents from 0, the year 2000 to 9999, and the monthly and "
            "programme caps at most the yearly one" if action == "policy.set" else
            f"see `stadsmunt gov propose --help` and the docs of {action}"))
    return given


# ---- printing -------------------------------------------------------------------------

def _short(proposal: str) -> str:
    return proposal[:16]


def _outcome(result: dict) -> tuple[str, bool]:
    """The words for a committed propose or approve, and whether the change happened
    or is still open (False: the action failed its own checks)."""
    lines, ok = [f"committed at height {result['height']}: {result['tx_id']}"], True
    for event in result["events"]:
        kind = event["kind"]
        if kind == "gov.proposed":
            lines.append(f"proposal {event['proposal']}: {event['action']} by "
                         f"{event['organisation']}, threshold {event['threshold']} "
                         f"organisation(s), open until {city_time(event['expires'])} "
                         f"({ZONE_NAME})")
        elif kind == "gov.approved":
            lines.append(f"approved for {event['organisation']}: {event['approvals']} "
                         f"organisation(s) approve it now")
        elif kind == "gov.enacted":
            lines.append(f"ENACTED: {event['action']} took effect at height "
                         f"{result['height']}")
        elif kind == "gov.failed":
            ok = False
            lines.append(f"FAILED: its threshold was met, but the action was refused: "
                         f"{event['code']}: {describe(event['code'], event['info'] or {})} "
                         f"Nothing of it took effect.")
        elif kind == "gov.withdrawn":
            lines.append(f"proposal {event['proposal']} withdrawn")
        else:
            lines.append(f"  {kind}")
    return "\n".join(lines), ok


def list_text(items: list[dict]) -> str:
    if not items:
        return "no proposals"
    rows = [[_short(p["id"]), p["action"], p["status"], p["organisation"],
             f"{p['approvals']}/{p['threshold']}", city_time(p["expires"])] for p in items]
    return table(["proposal", "action", "status", "organisation", "approvals",
                  f"expires ({ZONE_NAME})"], rows)


def show_text(p: dict) -> str:
    lines = [f"proposal  {p['id']}",
             f"action    {p['action']}",
             f"args      {json.dumps(p['args'], sort_keys=True)}",
             f"status    {p['status']} ({p['approvals']} of the {p['threshold']} organisations needed approve)",
             f"proposed  by {p['organisation']} ({p['proposer']}) at height {p['height']}",
             f"expires   {city_time(p['expires'])} ({ZONE_NAME})"]
    if p.get("reason"):
        lines.append(f"reason    {p['reason']}")
    if p.get("closed_height") is not None:
        lines.append(f"closed    at height {p['closed_height']}")
    if p.get("code"):
        lines.append(f"failed    {p['code']}: {describe(p['code'], p.get('info') or {})}")
    approvals = p.get("approved_by") or []
    rows = [[a["organisation"], a["key"], a["height"], "yes" if a["counts"] else "no"]
            for a in approvals]
    lines.append(table(["organisation", "key", "height", "counts"], rows) if rows
                 else "no approvals")
    return "\n".join(lines)


# ---- the commands ---------------------------------------------------------------------

async def _resolve(client: Client, text: str) -> str:
    """A proposal id from the whole id or its start, as `gov list` shows it."""
    text = text.strip().lower()
    if not _HEX.match(text):
        raise UsageError(f"a proposal id is hex (64 characters, or the start that "
                         f"`stadsmunt gov list` shows), not {text[:80]!r}")
    if len(text) == 64:
        return text
    found = [p["id"] for p in await client.proposals() if p["id"].startswith(text)]
    if len(found) > 1:
        raise UsageError(f"{text} starts {len(found)} proposals; give more of the id")
    if not found:
        raise ClientError("not_found", 404, f"No proposal's id starts with {text}.")
    return found[0]


async def _send(client: Client, args, command: str, result: dict) -> int:
    if result.get("status") == "committed":
        text, ok = _outcome(result)
        client_cmd.emit(args, result, text, failed=not ok)
        return 0 if ok else 1
    if result.get("status") == "pending":
        client_cmd.emit(args, result, f"not decided yet: {result['tx_id']}; ask again "
                                      f"with `stadsmunt client tx {result['tx_id']}`",
                        failed=True)
        return 1
    words = hint(command, result["code"])
    client_cmd.emit(args, result, f"rejected: {result['code']}: {result['detail']}"
                                  + (f"\n{words}" if words else ""), failed=True)
    return 1


async def g_propose(client: Client, args) -> int:
    payload = proposal_args(args.action, args.arg or [], args.args_json)
    if not 0 < args.expires_days <= MAX_EXPIRY_DAYS:
        raise UsageError(f"--expires-days is more than 0 and at most {MAX_EXPIRY_DAYS}")
    if args.reason is not None and not 1 <= len(args.reason) <= 280:
        raise UsageError("--reason is 1 to 280 characters")
    expires = now_ms() + int(args.expires_days * DAY_MS)
    result = await client.propose(args.action, payload, expires, args.reason, check=False)
    return await _send(client, args, "propose", result)


async def g_approve(client: Client, args) -> int:
    result = await client.approve(await _resolve(client, args.proposal), check=False)
    return await _send(client, args, "approve", result)


async def g_withdraw(client: Client, args) -> int:
    result = await client.withdraw(await _resolve(client, args.proposal), check=False)
    return await _send(client, args, "withdraw", result)


async def g_list(client: Client, args) -> int:
    items = await client.proposals(args.status)
    client_cmd.emit(args, items, list_text(items))
    return 0


async def g_show(client: Client, args) -> int:
    found = await client.proposal(await _resolve(client, args.proposal))
    client_cmd.emit(args, found, show_text(found))
    return 0


# ---- wiring ---------------------------------------------------------------------------

PROPOSE_HELP = """\
ACTION is one of: member.register, member.revoke, member.recover, policy.set,
constitution.set, rules.activate, validators.set. Its args, as the chain has them
(amounts in cents, keys as 64 hex):
  --arg year=2027 --arg hourly_cap_21plus=590 --arg hourly_cap_under21=350 \\
      --arg monthly_cap=23000 --arg yearly_cap=230000 [--arg programme_yearly_cap=N]
  --arg key=KEY --arg role=reviewer           (stewards also --arg organisation=ORG)
  --arg old=KEY --arg new=KEY                 (a lost key, recovered at once)
  --arg thresholds=policy.set=3,member.citizen=0,...   --arg organisations=a,b,c
  --arg version=2 --arg height=1200000        (new rules from a height)
  --arg validators=NAME:KEY:ORG,NAME:KEY:ORG,...  (the whole new validator set, in order)
or all of them as --args-json '{"year": 2027, ...}' (keys as hex)."""


def register(commands) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = commands.add_parser("gov", parents=[client_cmd.options(top=True)],
                                 help="governance: propose, approve, list proposals",
                                 description="Governed changes: a steward proposes, the "
                                             "stewards of other organisations approve,\nand "
                                             "the change takes effect when enough "
                                             "organisations have. Writes are signed\nwith "
                                             "--key (a steward key).",
                                 formatter_class=raw, epilog=_examples(
                                     "--gateway http://127.0.0.1:7101 --key "
                                     "steward-cbs.key list --status open",
                                     "show 6865eab4"))
    sub = parser.add_subparsers(dest="gov_command", metavar="COMMAND", required=True)

    def add(name: str, handler, help_text: str, signs: bool, *examples: str, before=""):
        p = sub.add_parser(name, parents=[client_cmd.options(top=False)], help=help_text,
                           description=help_text, formatter_class=raw,
                           epilog=before + _examples(*examples))
        p.set_defaults(handler=handler, signs=signs)
        return p

    p = add("propose", g_propose, "propose a governed action (a steward)", True,
            "propose policy.set --arg year=2027 --arg hourly_cap_21plus=595 \\\n"
            "      --arg hourly_cap_under21=355 --arg monthly_cap=22700 "
            "--arg yearly_cap=226600 \\\n"
            '      --reason "the 2027 allowance, indexed"',
            "propose member.register --arg key=c0ed...a2 --arg role=reviewer",
            "propose member.recover --arg old=3f2a...c9 --arg new=9d41...07 "
            "--expires-days 2",
            before=PROPOSE_HELP + "\n\n")
    p.add_argument("action", metavar="ACTION",
                   help="member.register, member.revoke, member.recover, policy.set, "
                        "constitution.set, rules.activate or validators.set")
    p.add_argument("--arg", action="append", metavar="NAME=VALUE",
                   help="one of the action's args; repeat for each")
    p.add_argument("--args-json", metavar="JSON", help="the action's args as a JSON object")
    p.add_argument("--expires-days", type=float, default=7.0,
                   help=f"days to gather approvals (default 7, at most {MAX_EXPIRY_DAYS})")
    p.add_argument("--reason", help="why, for the other organisations (up to 280)")
    for name, handler, text in (("approve", g_approve, "approve a proposal for your "
                                 "organisation (a steward)"),
                                ("withdraw", g_withdraw, "withdraw an open proposal of your "
                                 "organisation (a steward)")):
        p = add(name, handler, text, True, f"{name} 6865eab4",
                f"--key steward-cbs.key {name} 6865eab4")
        p.add_argument("proposal", metavar="ID", help="the proposal's id, or its start")
    p = add("list", g_list, "proposals (all, or of one status)", False, "list",
            "list --status open")
    p.add_argument("--status", choices=STATUSES, help="only proposals in this state")
    p = add("show", g_show, "one proposal and its approvals", False, "show 6865eab4")
    p.add_argument("proposal", metavar="ID", help="the proposal's id, or its start")
    parser.set_defaults(run=client_cmd.run)


def _examples(*lines: str) -> str:
    return "example:\n" + "\n".join(f"  stadsmunt gov {line}" for line in lines)
