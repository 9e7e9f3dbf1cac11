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
from gateway.client import UNREACHABLE, Client, ClientError
from node.keys import KeyFileError, Keypair, read_key_file
from ops import client_rows
from ops.client_rows import ZONE_NAME, city_time, euros, table
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
    """`+7d`, `+12h`, `+30m`, an ISO date (the end of that day, local time) or an ISO
    time (local time unless it names its offset)."""
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
        if moment.tzinfo is None:
            moment = moment.astimezone()  # the machine's local time, as a person means it
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
    if path is None:
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
    hint = await _hint(client, kind, payload, result["code"])
    emit(args, result, f"rejected: {result['code']}: {result['detail']}"
                       + (f"\n{hint}" if hint else ""), failed=True)
    return 1


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
    done = 0
    for row, answer in zip(rows, answers):
        if answer["status"] == "committed":
            done += 1
        else:
            code = answer.get("code") or answer["status"]
            failed.append(client_rows.Failure(row.line, row.args["key"].hex(),
                                              f"refused by the chain: {code}: "
                                              f"{answer.get('detail') or 'not decided yet'}",
                                              code))
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


async def c_members(client: Client, args) -> int:
    genesis = await client.get("/v1/genesis")
    events = [e for kind in client_rows.MEMBER_EVENTS for e in await client.events(kind=kind)]
    members = [m for m in client_rows.members_of(genesis, events)
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
    tasks = await client.tasks(args.status, args.area)
    rows = [[t["task"], t["title"][:40], t["area"], euros(t["reward"]), t["minutes"],
             f"{t['taken']}/{t['slots']}", t["status"], _local(t["deadline"])] for t in tasks]
    emit(args, tasks, table(["task", "title", "area", "reward", "min", "taken", "status",
                             "deadline"], rows) if tasks else "no tasks")
    return 0


async def c_task(client: Client, args) -> int:
    task = await client.task(args.task)
    emit(args, task, client_rows.task_text(task, _local(task["deadline"])))
    return 0


async def c_payouts(client: Client, args) -> int:
    payouts = await client.payouts(args.status)
    rows = [[p["payout"][:16], p["merchant"][:16], euros(p["amount"]), p["status"],
             p["reference"] or "-"] for p in payouts]
    emit(args, payouts, table(["payout", "merchant", "amount", "status", "reference"],
                              rows) if payouts else "no payouts")
    return 0


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


def _local(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).astimezone().strftime("%Y-%m-%d %H:%M")


# ---- wiring ---------------------------------------------------------------------------

WRITES = {c_register, c_import, c_post_task, c_approve, c_reject, c_cancel, c_policy,
          c_confirm, c_update, c_revoke, c_recover, c_recovery_cancel, c_recovery_complete}


async def _run(args) -> int:
    key = _load_key(args.key)
    if (args.handler in WRITES or getattr(args, "signs", False)) and key is None:
        raise UsageError("this command signs a transaction: give --key FILE (or set "
                         "STADSMUNT_KEY)")
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
    common.add_argument("--timeout", type=float, default=default(30.0),
                        help="seconds to wait for the gateway (default 30)")
    return common


def register(commands) -> None:
    parser = commands.add_parser("client", parents=[options(top=True)],
                                 help="staff commands against a gateway",
                                 description="The municipality's staff commands against a "
                                             "gateway: writes are signed with --key and "
                                             "wait for the chain's decision; reads send its "
                                             "read token. Amounts are in euros (12.50).")
    sub = parser.add_subparsers(dest="client_command", metavar="COMMAND", required=True)

    def add(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[options(top=False)], help=help_text,
                           description=help_text)
        p.set_defaults(handler=handler)
        return p

    add("status", c_status, "the chain's height, view and validators")
    p = add("register", c_register, "register one member (admins, reviewers, auditors "
                                    "and stewards: through `stadsmunt gov` when governed)")
    p.add_argument("member", metavar="KEY", help="the member's public key (64 hex)")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--age-band", choices=BANDS, help="citizens: 21plus or under21")
    p.add_argument("--area", help="citizens: neighbourhood code")
    p.add_argument("--name", help="merchants: the shop's public name")
    p = add("import", c_import, "register members in bulk from a CSV file with the "
                                "header key,role,age_band,area,name")
    p.add_argument("file", help="the CSV file")
    p = add("post-task", c_post_task, "post a task")
    p.add_argument("task", help="the task id, [A-Za-z0-9._-] up to 64")
    p.add_argument("--title", required=True)
    p.add_argument("--area", required=True)
    p.add_argument("--domain", required=True, help="public-space, safety, care, ...")
    p.add_argument("--reward", required=True, help="euros, e.g. 15.00")
    p.add_argument("--minutes", required=True, type=int, help="estimated effort")
    p.add_argument("--slots", type=int, default=1)
    p.add_argument("--deadline", required=True,
                   help="+7d, +12h, a date (end of day) or an ISO time")
    for name, handler, text in (("approve", c_approve, "approve submitted work (mints "
                                 "the reward)"), ("reject", c_reject, "reject submitted work")):
        p = add(name, handler, text)
        p.add_argument("task")
        p.add_argument("citizen", help="the citizen's key (64 hex)")
        if name == "reject":
            p.add_argument("--reason", required=True, help="what the citizen is told")
    p = add("cancel", c_cancel, "cancel a task")
    p.add_argument("task")
    p = add("policy", c_policy, "set a year's cap policy (euros)")
    p.add_argument("year", type=int)
    p.add_argument("--hourly-21plus", required=True)
    p.add_argument("--hourly-under21", required=True)
    p.add_argument("--monthly", required=True)
    p.add_argument("--yearly", required=True)
    p.add_argument("--programme", help="the city's own yearly cap, at most --yearly")
    p = add("confirm", c_confirm, "confirm a payout was paid")
    p.add_argument("payout", help="the payout id (64 hex)")
    p.add_argument("--reference", required=True, help="the bank transfer's reference")
    p = add("update", c_update, "change a citizen's age band or area")
    p.add_argument("member", metavar="KEY", help="the citizen's key (64 hex)")
    p.add_argument("--age-band", choices=BANDS)
    p.add_argument("--area", help="neighbourhood code")
    p = add("revoke", c_revoke, "revoke a citizen or merchant (the key signs nothing more)")
    p.add_argument("member", metavar="KEY", help="the member's key (64 hex)")
    p = add("members", c_members, "members and their roles (active ones unless --all)")
    p.add_argument("--role", choices=ROLES)
    p.add_argument("--all", action="store_true", help="also revoked and recovered keys")
    p = add("recover", c_recover, "a lost phone: open a recovery of OLD to NEW; OLD is "
                                  "frozen at once and the recovery completes after the "
                                  "constitution's delay")
    p.add_argument("old", metavar="OLD", help="the lost key (64 hex)")
    p.add_argument("new", metavar="NEW", help="the new key, never a member (64 hex)")
    recovery = sub.add_parser("recovery", help="cancel or complete an open recovery",
                              description="Cancel an open recovery (a steward or an admin) "
                                          "or complete it once effective (an admin).")
    steps = recovery.add_subparsers(dest="recovery_command", metavar="STEP", required=True)
    for name, handler, text in (("cancel", c_recovery_cancel, "cancel the open recovery "
                                 "of OLD; OLD is unfrozen"),
                                ("complete", c_recovery_complete, "complete the recovery "
                                 "of OLD at or after its effective time")):
        p = steps.add_parser(name, parents=[options(top=False)], help=text,
                             description=text)
        p.set_defaults(handler=handler)
        p.add_argument("old", metavar="OLD", help="the key being recovered (64 hex)")
    p = add("account", c_account, "one account, its balance and earnings")
    p.add_argument("member", metavar="KEY", help="64 hex, or `me` for --key's account")
    p = add("statement", c_statement, "what a citizen earned per month of a year (for "
                                      "the benefits office)")
    p.add_argument("member", metavar="KEY", help="64 hex, or `me` for --key's account")
    p.add_argument("--year", type=int, required=True)
    p = add("tasks", c_tasks, "tasks, optionally filtered")
    p.add_argument("--status", choices=("open", "closed", "cancelled"))
    p.add_argument("--area")
    p = add("task", c_task, "one task with its claims")
    p.add_argument("task")
    p = add("payouts", c_payouts, "merchants' payouts")
    p.add_argument("--status", choices=("pending", "paid"))
    add("merchants", c_merchants, "active merchants")
    p = add("tx", c_tx, "one transaction's status and result")
    p.add_argument("tx_id")
    parser.set_defaults(run=run)
