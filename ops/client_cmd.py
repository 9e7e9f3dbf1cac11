"""`stadsmunt client --gateway URL --key FILE COMMAND`: the municipality's staff at the
command line (docs/client.md). Writes are signed with the key and wait for the chain's
decision; reads send the key's read token. Amounts are typed and shown in euros
("12.50"), and in cents in `--json` (as the API has them).

Exit codes: 0 done; 1 the chain or the gateway refused (a rejection, a 4xx problem, a CSV
row that failed); 2 bad usage, a bad key file or a gateway that cannot be reached.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shlex
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from chaincode.args import BANDS, ROLES
from chaincode.queries import natural
from client import UNREACHABLE, Client, ClientError
from node.keys import KeyFileError, Keypair, read_key_file
from ops import client_rows
from ops.client_rows import CITY_ZONE, ZONE_NAME, city_time, euros, named, table
from ops.errors import CheckFailed, UsageError

_AMOUNT = re.compile(r"(\d{1,14})(?:[.,](\d{1,2}))?\Z")
_RELATIVE = re.compile(r"\+(\d{1,5})([dhm])\Z")
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")


def cents(text: str, what: str, least: int = 1) -> int:
    """Euros as typed by a person ("12.50", "12", "12,5") to whole cents."""
    found = _AMOUNT.match(text.strip())
    if found is None:
        raise UsageError(f"{what} is an amount in euros such as 12.50, not {text!r}")
    whole, part = found.group(1), (found.group(2) or "0").ljust(2, "0")
    value = int(whole) * 100 + int(part)
    if not least <= value <= 2**53 - 1:
        raise UsageError(f"{what} must be from {euros(least)} to {euros(2**53 - 1)} euros")
    return value


def deadline_ms(text: str, now: datetime | None = None) -> int:
    """`+7d`, `+12h`, `+30m`, an ISO date (the end of that day in Europe/Amsterdam) or
    an ISO time (in Europe/Amsterdam unless it names its offset)."""
    now = now or datetime.now(timezone.utc)
    relative = _RELATIVE.match(text.strip())
    if relative:
        size = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}
        moment = now + int(relative.group(1)) * size[relative.group(2)]
    else:
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            raise UsageError(f"--deadline is +7d, +12h, +30m, a date (2026-12-31) or a "
                             f"time (2026-12-31T18:00), not {text!r}") from None
        if len(text.strip()) == 10:       # a bare date: the end of that day
            moment = moment.replace(hour=23, minute=59, second=59)
        if moment.tzinfo is None:         # the city's time, as the tables show it
            moment = moment.replace(tzinfo=CITY_ZONE)
    return int(moment.timestamp() * 1000)


def public_key(text: str, client: Client | None = None) -> bytes:
    """A member's key: 64 hex characters, or `me` for the client's own key."""
    if text == "me" and client is not None and client.key is not None:
        return client.key.public
    text = text.strip().lower()
    if not _HEX64.match(text):
        raise UsageError(f"a key is 64 hex characters, not {text[:80]!r}")
    return bytes.fromhex(text)


def _load_key(path: str | None) -> Keypair | None:
    if not path:                        # an empty STADSMUNT_KEY is no key
        return None
    try:
        return read_key_file(path)
    except KeyFileError as error:
        raise UsageError(str(error)) from None


def emit(args, value, text: str, failed: bool = False) -> None:
    """JSON on stdout always (a script reads one place); text of a failure on stderr."""
    if args.json:
        print(json.dumps(value, indent=2))
    else:
        print(text, file=sys.stderr if failed else sys.stdout)


def _result_text(result: dict) -> str:
    events = ", ".join(e.get("kind", "?") for e in result.get("events") or [])
    return (f"committed at height {result['height']}: {result['tx_id']}"
            + (f" ({events})" if events else ""))


async def _write(client: Client, args, kind: str, payload: dict, done=None) -> int:
    """Sign, send and wait; print the result (`done(result)` words a committed one) or
    the refusal with what to do about it. 0 committed, 1 not."""
    result = await client.send(kind, payload, check=False)
    if result.get("status") == "committed":
        emit(args, result, (done or _result_text)(result))
        return 0
    if result.get("status") == "pending":
        emit(args, result, f"not decided yet: {result['tx_id']}; ask again with "
                           f"`stadsmunt client tx {result['tx_id']}`", failed=True)
        return 1
    if kind == "member.register" and result["code"] == "exists":
        key = payload["key"].hex()
        emit(args, result, f"rejected: exists: "
                           f"{client_rows.already_member(key, await _member(client, key))}",
             failed=True)
        return 1
    hint = await _hint(client, kind, payload, result["code"])
    emit(args, result, f"rejected: {result['code']}: {result['detail']}"
                       + (f"\n{hint}" if hint else ""), failed=True)
    return 1


async def _member(client: Client, key: str) -> dict | None:
    """The member record of a key, when --key may read it."""
    try:
        return await client.account(key)
    except ClientError:
        return None


GOVERNED = ("member.register", "member.revoke", "member.recover", "policy.set")


def gov_command(kind: str, payload: dict) -> str:
    """The `stadsmunt gov propose` command line that asks governance for this action."""
    pairs = [f"{name}={value.hex() if isinstance(value, bytes) else value}"
             for name, value in payload.items()]
    return " ".join([f"stadsmunt gov propose {kind}"]
                    + [f"--arg {shlex.quote(pair)}" for pair in pairs])


async def _role(client: Client) -> str | None:
    try:
        return (await client.account(client.key.public))["role"]
    except ClientError:
        return None


async def _hint(client: Client, kind: str, payload: dict, code: str) -> str | None:
    """What to do about a refusal, in words, where the code alone does not say it."""
    if code == "unauthorized" and kind in GOVERNED:
        if await _role(client) not in (None, "admin"):
            return f"only an admin signs {kind}; give --key with an admin key"
        return ("the constitution gives this to governance now: a steward proposes it and "
                "the stewards of other organisations approve it:\n  "
                + gov_command(kind, payload))
    if code == "frozen":
        return ("the key of --key is frozen by an open recovery; it signs nothing until a "
                "steward or an admin cancels the recovery, or an admin completes it")
    old = payload.get("old")
    if kind == "member.recover" and code == "exists":
        return ("the new key has been a member, or is the new key of an open recovery; "
                "make a fresh key (`stadsmunt keygen`)")
    if kind == "member.recover" and code == "invalid_state":
        return ("a recovery of this key is open already, it was recovered already, or a "
                "steward cancelled its last recovery (then only governance may recover "
                "it:\n  " + gov_command(kind, payload) + ")")
    if kind.startswith("recovery.") and code == "not_found":
        return f"no recovery of {old.hex()} is open (`stadsmunt client account` shows it)"
    if kind == "recovery.complete" and code == "invalid_state":
        try:
            recovery = (await client.account(old)).get("recovery")
        except ClientError:
            recovery = None
        when = (f" at {city_time(recovery['effective'])} ({ZONE_NAME})" if recovery
                else "")
        return f"a recovery completes only once it is effective{when}; try again then"
    return None


# ---- the commands ---------------------------------------------------------------------

async def c_status(client: Client, args) -> int:
    s = await client.status()
    rows = [[v["name"], "yes" if v["connected"] else "NO", v["key"][:16]]
            for v in s["validators"]]
    text = (f"chain {s['chain']} at height {s['height']} (view {s['view']}, primary "
            f"{s['primary']}), answered by {s['node']}\n"
            + table(["validator", "connected", "key"], rows)
            + "".join(f"\nwarning: {w}" for w in s.get("warnings", [])))
    emit(args, s, text)
    return 0


async def c_register(client: Client, args) -> int:
    payload = {"key": public_key(args.member), "role": args.role}
    if args.age_band is not None:
        payload["age_band"] = args.age_band
    if args.area is not None:
        payload["area"] = args.area
    if args.name is not None:
        payload["name"] = args.name
    problem = client_rows.register_problem(payload)
    if problem:
        raise UsageError(problem)
    return await _write(client, args, "member.register", payload)


async def c_import(client: Client, args) -> int:
    rows, failed = client_rows.read_csv(Path(args.file))
    envelopes = [await client.sign("member.register", r.args) for r in rows]
    answers = await client.submit_many(envelopes, wait=True) if envelopes else []
    known = {}
    if any(answer.get("code") == "exists" for answer in answers):
        try:
            known = {m["key"]: m for m in await _all_members(client)}
        except ClientError:
            pass                        # then the report cannot name their roles
    done = 0
    for row, answer in zip(rows, answers):
        key = row.args["key"].hex()
        code = answer.get("code") or answer["status"]
        if answer["status"] == "committed":
            done += 1
            continue
        why = (client_rows.already_member(key, known.get(key)) if code == "exists"
               else answer.get("detail") or "not decided yet")
        failed.append(client_rows.Failure(row.line, key, f"refused by the chain: {code}: "
                                                         f"{why}", code))
    failed.sort(key=lambda f: f.line)
    total = done + len(failed)
    report = {"rows": total, "registered": done,
              "failed": [f._asdict() for f in failed]}
    text = f"registered {done} of {total} rows"
    if failed:
        text += f"; {len(failed)} failed:\n" + table(
            ["row", "key", "why"], [[f.line, f.key[:16] or "-", f.reason] for f in failed])
    emit(args, report, text)
    return 1 if failed else 0


async def c_post_task(client: Client, args) -> int:
    payload = {"task": args.task, "title": args.title, "area": args.area,
               "domain": args.domain, "reward": cents(args.reward, "--reward"),
               "minutes": args.minutes, "slots": args.slots,
               "deadline": deadline_ms(args.deadline)}
    return await _write(client, args, "task.post", payload)


async def c_approve(client: Client, args) -> int:
    return await _write(client, args, "task.approve",
                        {"task": args.task, "citizen": public_key(args.citizen)})


async def c_reject(client: Client, args) -> int:
    return await _write(client, args, "task.reject",
                        {"task": args.task, "citizen": public_key(args.citizen),
                         "reason": args.reason})


async def c_cancel(client: Client, args) -> int:
    return await _write(client, args, "task.cancel", {"task": args.task})


async def c_policy(client: Client, args) -> int:
    payload = {"year": args.year,
               "hourly_cap_21plus": cents(args.hourly_21plus, "--hourly-21plus", 0),
               "hourly_cap_under21": cents(args.hourly_under21, "--hourly-under21", 0),
               "monthly_cap": cents(args.monthly, "--monthly", 0),
               "yearly_cap": cents(args.yearly, "--yearly", 0)}
    if args.programme is not None:
        payload["programme_yearly_cap"] = cents(args.programme, "--programme", 0)
    top = payload["yearly_cap"]
    if payload["monthly_cap"] > top or payload.get("programme_yearly_cap", 0) > top:
        raise UsageError("--monthly and --programme may not be above --yearly")
    return await _write(client, args, "policy.set", payload)


async def c_confirm(client: Client, args) -> int:
    payout = args.payout.strip().lower()
    if not _HEX64.match(payout):
        raise UsageError("a payout id is 64 hex characters (the redemption's tx id)")
    return await _write(client, args, "payout.confirm",
                        {"payout": payout, "reference": args.reference})


async def c_update(client: Client, args) -> int:
    payload = {"key": public_key(args.member)}
    if args.age_band is not None:
        payload["age_band"] = args.age_band
    if args.area is not None:
        payload["area"] = args.area
    if len(payload) == 1:
        raise UsageError("give --age-band and/or --area")
    return await _write(client, args, "member.update", payload)


async def c_revoke(client: Client, args) -> int:
    return await _write(client, args, "member.revoke", {"key": public_key(args.member)})


async def _all_members(client: Client) -> list[dict]:
    genesis = await client.get("/v1/genesis")
    events = [e for kind in client_rows.MEMBER_EVENTS for e in await client.events(kind=kind)]
    return client_rows.members_of(genesis, events)


async def c_members(client: Client, args) -> int:
    members = [m for m in await _all_members(client)
               if (args.all or m["active"]) and args.role in (None, m["role"])]
    emit(args, members, client_rows.members_text(members))
    return 0


def _opened(result: dict) -> str:
    for event in result["events"]:
        if event["kind"] == "member.recovery_opened":
            old = event["old"]
            return (f"recovery opened at height {result['height']}: {old} is frozen from "
                    f"now on (it signs nothing; its app shows the open recovery).\n"
                    f"It takes effect at {city_time(event['effective'])} ({ZONE_NAME}): "
                    f"then complete it with `stadsmunt client recovery complete {old}`.\n"
                    f"Until then any steward or admin can cancel it: "
                    f"`stadsmunt client recovery cancel {old}`.")
    return _result_text(result)


def _recovered(result: dict) -> str:
    for event in result["events"]:
        if event["kind"] == "member.recovered":
            return (f"recovered at height {result['height']}: {event['old']} -> "
                    f"{event['new']}; its role, balance ({euros(event['balance'])}), "
                    f"claims and earnings moved, and the old key is revoked")
    return _result_text(result)


def _cancelled(result: dict) -> str:
    return (f"recovery cancelled at height {result['height']}: "
            f"{result['events'][0]['old']} is no longer frozen")


async def c_recover(client: Client, args) -> int:
    return await _write(client, args, "member.recover",
                        {"old": public_key(args.old), "new": public_key(args.new)}, _opened)


async def c_recovery_cancel(client: Client, args) -> int:
    return await _write(client, args, "recovery.cancel", {"old": public_key(args.old)},
                        _cancelled)


async def c_recovery_complete(client: Client, args) -> int:
    return await _write(client, args, "recovery.complete", {"old": public_key(args.old)},
                        _recovered)


async def c_account(client: Client, args) -> int:
    account = await client.account(public_key(args.member, client))
    emit(args, account, client_rows.account_text(account))
    return 0


async def c_statement(client: Client, args) -> int:
    found = await client.statement(public_key(args.member, client), args.year)
    rows = [[m["period"], euros(m["earned"])] for m in found["months"]]
    rows.append(["total", euros(found["total"])])
    emit(args, found, f"{found['key']}: earned in {found['year']}\n"
                      + table(["month", "earned"], rows))
    return 0


async def c_tasks(client: Client, args) -> int:
    tasks = sorted(await client.tasks(args.status, args.area),
                   key=lambda t: natural(t["task"]))
    rows = [[t["task"], t["title"][:40], t["area"], euros(t["reward"]), t["minutes"],
             f"{t['taken']}/{t['slots']}", t["status"], city_time(t["deadline"])]
            for t in tasks]
    emit(args, tasks, table(["task", "title", "area", "reward", "min", "taken", "status",
                             "deadline"], rows) if tasks else "no tasks")
    return 0


async def c_task(client: Client, args) -> int:
    task = await client.task(args.task)
    emit(args, task, client_rows.task_text(task, city_time(task["deadline"])))
    return 0


async def c_payouts(client: Client, args) -> int:
    payouts = await client.payouts(args.status)
    names = await _merchant_names(client, {p["merchant"] for p in payouts})
    rows = [[p["payout"][:16], named(names.get(p["merchant"]), p["merchant"]),
             euros(p["amount"]), p["status"], p["reference"] or "-"] for p in payouts]
    emit(args, payouts, table(["payout", "merchant", "amount", "status", "reference"],
                              rows) if payouts else "no payouts")
    return 0


async def _merchant_names(client: Client, keys: set[str]) -> dict[str, str]:
    """The names of these merchants: the active ones from the merchants list, a revoked
    one from its member record when --key may read it."""
    if not keys:
        return {}
    names = {m["key"]: m["name"] for m in await client.merchants()}
    for key in keys - names.keys():
        member = await _member(client, key)
        if member and member.get("name"):
            names[key] = member["name"]
    return names


async def c_merchants(client: Client, args) -> int:
    merchants = await client.merchants()
    emit(args, merchants, table(["key", "name"], [[m["key"], m["name"]] for m in merchants])
         if merchants else "no merchants")
    return 0


async def c_tx(client: Client, args) -> int:
    found = await client.tx(args.tx_id.strip().lower())
    text = (f"{found['tx_id']}: {found['status']}" if found["status"] == "pending" else
            f"{found['tx_id']}: {found['status']} at height {found['height']}: "
            f"{found['code']}: {found['detail']}")
    emit(args, found, text, failed=found["status"] != "committed")
    return 0 if found["status"] == "committed" else 1


# ---- wiring ---------------------------------------------------------------------------

WRITES = {c_register, c_import, c_post_task, c_approve, c_reject, c_cancel, c_policy,
          c_confirm, c_update, c_revoke, c_recover, c_recovery_cancel, c_recovery_complete}
PERSONAL_READS = {c_members, c_account, c_statement, c_payouts}   # need a read token


async def _run(args) -> int:
    key = _load_key(args.key)
    if (args.handler in WRITES or getattr(args, "signs", False)) and key is None:
        raise UsageError("this command signs a transaction: give --key FILE (or set "
                         "STADSMUNT_KEY)")
    if args.handler in PERSONAL_READS and key is None:
        raise UsageError(f"`client {args.client_command}` reads member data: give --key "
                         f"FILE (or set STADSMUNT_KEY). The gateway shows members, "
                         f"accounts, statements and payouts only to a read token made "
                         f"with a staff key (admin, reviewer or auditor), or with an "
                         f"account's own key for that account")
    if not args.gateway:
        raise UsageError("give --gateway URL (or set STADSMUNT_GATEWAY)")
    if not args.gateway.startswith(("http://", "https://")):
        raise UsageError(f"--gateway is a URL such as http://127.0.0.1:7101, not "
                         f"{args.gateway!r}")
    async with Client(args.gateway, key, timeout_s=args.timeout) as client:
        return await args.handler(client, args)


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except ClientError as error:
        where = f" ({error.status})" if error.status else ""
        message = f"{error.code}{where}: {error.detail}"
        if error.code == UNREACHABLE:
            raise UsageError(message) from None
        raise CheckFailed(message) from None
    except OSError as error:        # e.g. a CSV file that cannot be read
        where = f"{error.filename}: " if error.filename else ""
        raise UsageError(f"{where}{error.strerror or error}") from None


def options(top: bool) -> argparse.ArgumentParser:
    """Options taken before or after the command (`client --json tasks`, `client tasks
    --json`). After the command their default is SUPPRESS, so that not giving them there
    keeps what was given before it; each call makes new actions, as argparse's parents
    share action objects and set_defaults would change them for every parser."""
    def default(value):
        return value if top else argparse.SUPPRESS
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--gateway", default=default(os.environ.get("STADSMUNT_GATEWAY")),
                        metavar="URL", help="the gateway, e.g. http://127.0.0.1:7101 "
                                            "(default: $STADSMUNT_GATEWAY)")
    common.add_argument("--key", default=default(os.environ.get("STADSMUNT_KEY")),
                        metavar="FILE", help="key file that signs and makes read tokens "
                                             "(default: $STADSMUNT_KEY)")
    common.add_argument("--json", action="store_true", default=default(False),
                        help="print JSON (amounts in cents) instead of text")
    common.add_argument("--timeout", type=float, default=default(30.0), metavar="SECONDS",
                        help="seconds to wait for the gateway (default 30)")
    return common


def register(commands) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = commands.add_parser("client", parents=[options(top=True)],
                                 help="staff commands against a gateway",
                                 description="The municipality's staff commands against a "
                                             "gateway: writes are signed with --key and "
                                             "wait for the chain's decision; reads send its "
                                             "read token. Amounts are in euros (12.50), "
                                             "times in Europe/Amsterdam.",
                                 formatter_class=raw, epilog=_examples(
                                     "--gateway http://127.0.0.1:7101 --key admin.key status",
                                     "tasks --status open"))
    sub = parser.add_subparsers(dest="client_command", metavar="COMMAND", required=True)

    def add(name: str, handler, help_text: str, *examples: str, under=sub):
        p = under.add_parser(name, parents=[options(top=False)], help=help_text,
                             description=help_text, formatter_class=raw,
                             epilog=_examples(*examples))
        p.set_defaults(handler=handler)
        return p

    add("status", c_status, "the chain's height, view and validators", "status")
    p = add("register", c_register, "register one member (admins, reviewers, auditors "
                                    "and stewards: through `stadsmunt gov` when governed)",
            "register 3f2a...c9 --role citizen --age-band 21plus --area Meezenbroek",
            'register 7be0...11 --role merchant --name "Cafe De Kroon"')
    p.add_argument("member", metavar="KEY", help="the member's public key (64 hex)")
    p.add_argument("--role", required=True, choices=ROLES, help="the member's role")
    p.add_argument("--age-band", choices=BANDS, help="citizens: 21plus or under21")
    p.add_argument("--area", help="citizens: neighbourhood code")
    p.add_argument("--name", help="merchants: the shop's public name")
    p = add("import", c_import, "register members in bulk from a CSV file with the "
                                "header key,role,age_band,area,name (or separated by ;)",
            "import members.csv")
    p.add_argument("file", help="the CSV file, comma- or semicolon-separated, UTF-8")
    p = add("post-task", c_post_task, "post a task",
            'post-task litter-walk --title "Litter walk" --area Meezenbroek \\\n'
            '      --domain public-space --reward 15.00 --minutes 180 --slots 10 '
            '--deadline +14d')
    p.add_argument("task", help="the task id, [A-Za-z0-9._-] up to 64")
    p.add_argument("--title", required=True, help="what citizens see")
    p.add_argument("--area", required=True, help="neighbourhood code")
    p.add_argument("--domain", required=True, help="public-space, safety, care, ...")
    p.add_argument("--reward", required=True, help="euros, e.g. 15.00")
    p.add_argument("--minutes", required=True, type=int, help="estimated effort")
    p.add_argument("--slots", type=int, default=1, help="how many citizens (default 1)")
    p.add_argument("--deadline", required=True,
                   help="+7d, +12h, +30m, a date (end of day) or an ISO time "
                        "(Europe/Amsterdam unless it names its offset)")
    p = add("approve", c_approve, "approve submitted work (mints the reward)",
            "approve litter-walk 3f2a...c9")
    p.add_argument("task", help="the task id")
    p.add_argument("citizen", help="the citizen's key (64 hex)")
    p = add("reject", c_reject, "reject submitted work",
            'reject litter-walk 3f2a...c9 --reason "The photo shows another street."')
    p.add_argument("task", help="the task id")
    p.add_argument("citizen", help="the citizen's key (64 hex)")
    p.add_argument("--reason", required=True, help="what the citizen is told")
    p = add("cancel", c_cancel, "cancel a task", "cancel litter-walk")
    p.add_argument("task", help="the task id")
    p = add("policy", c_policy, "set a year's cap policy (euros)",
            "policy 2027 --hourly-21plus 5.60 --hourly-under21 3.30 --monthly 210 "
            "--yearly 2100 --programme 1500")
    p.add_argument("year", type=int, help="the calendar year it is for")
    p.add_argument("--hourly-21plus", required=True, help="euros per hour, 21 and over")
    p.add_argument("--hourly-under21", required=True, help="euros per hour, under 21")
    p.add_argument("--monthly", required=True, help="euros a citizen may earn a month")
    p.add_argument("--yearly", required=True, help="euros a citizen may earn a year")
    p.add_argument("--programme", help="the city's own yearly cap, at most --yearly")
    p = add("confirm", c_confirm, "confirm a payout was paid",
            'confirm 5d1e...80 --reference "SEPA HRL-2026-000123"')
    p.add_argument("payout", help="the payout id (64 hex)")
    p.add_argument("--reference", required=True, help="the bank transfer's reference")
    p = add("update", c_update, "change a citizen's age band or area",
            "update 3f2a...c9 --area Hoensbroek")
    p.add_argument("member", metavar="KEY", help="the citizen's key (64 hex)")
    p.add_argument("--age-band", choices=BANDS, help="21plus or under21")
    p.add_argument("--area", help="neighbourhood code")
    p = add("revoke", c_revoke, "revoke a citizen or merchant (the key signs nothing more)",
            "revoke 7be0...11")
    p.add_argument("member", metavar="KEY", help="the member's key (64 hex)")
    p = add("members", c_members, "members and their roles (active ones unless --all); "
                                  "needs a staff --key", "members --role merchant")
    p.add_argument("--role", choices=ROLES, help="only members of this role")
    p.add_argument("--all", action="store_true", help="also revoked and recovered keys")
    p = add("recover", c_recover, "a lost phone: open a recovery of OLD to NEW; OLD is "
                                  "frozen at once and the recovery completes after the "
                                  "constitution's delay", "recover 3f2a...c9 9d41...07")
    p.add_argument("old", metavar="OLD", help="the lost key (64 hex)")
    p.add_argument("new", metavar="NEW", help="the new key, never a member (64 hex)")
    recovery = sub.add_parser("recovery", help="cancel or complete an open recovery",
                              description="Cancel an open recovery (a steward or an admin) "
                                          "or complete it once effective (an admin).",
                              formatter_class=raw, epilog=_examples(
                                  "recovery cancel 3f2a...c9", "recovery complete 3f2a...c9"))
    steps = recovery.add_subparsers(dest="recovery_command", metavar="STEP", required=True)
    for name, handler, text in (("cancel", c_recovery_cancel, "cancel the open recovery "
                                 "of OLD; OLD is unfrozen"),
                                ("complete", c_recovery_complete, "complete the recovery "
                                 "of OLD at or after its effective time")):
        p = add(name, handler, text, f"recovery {name} 3f2a...c9", under=steps)
        p.add_argument("old", metavar="OLD", help="the key being recovered (64 hex)")
    p = add("account", c_account, "one account, its balance and earnings",
            "account 3f2a...c9", "account me")
    p.add_argument("member", metavar="KEY", help="64 hex, or `me` for --key's account")
    p = add("statement", c_statement, "what a citizen earned per month of a year (for "
                                      "the benefits office)",
            "statement 3f2a...c9 --year 2026")
    p.add_argument("member", metavar="KEY", help="64 hex, or `me` for --key's account")
    p.add_argument("--year", type=int, required=True, help="the calendar year")
    p = add("tasks", c_tasks, "tasks, optionally filtered",
            "tasks --status open --area Meezenbroek")
    p.add_argument("--status", choices=("open", "closed", "cancelled"),
                   help="only tasks in this state")
    p.add_argument("--area", help="only tasks in this neighbourhood")
    p = add("task", c_task, "one task with its claims (for a staff key)", "task litter-walk")
    p.add_argument("task", help="the task id")
    p = add("payouts", c_payouts, "merchants' payouts; needs a staff --key",
            "payouts --status pending")
    p.add_argument("--status", choices=("pending", "paid"), help="only payouts in this state")
    add("merchants", c_merchants, "active merchants", "merchants")
    p = add("tx", c_tx, "one transaction's status and result", "tx 5d1e...80")
    p.add_argument("tx_id", metavar="TX_ID", help="the transaction id (64 hex)")
    parser.set_defaults(run=run)


def _examples(*lines: str) -> str:
    return "example:\n" + "\n".join(f"  stadsmunt client {line}" for line in lines)
