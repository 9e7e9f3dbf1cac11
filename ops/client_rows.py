"""What `stadsmunt client` and `stadsmunt gov` read and print: members from a CSV file
(each bad row named with its line and the reason), plain text tables, times in the city's
zone, and the members as the log tells them."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

from chaincode.args import BANDS, ROLES, ROLE_ARGS, ident
from ops.errors import UsageError

COLUMNS = ("key", "role", "age_band", "area", "name")
MAX_ROWS = 100_000              # one import; more is a mistake or wants splitting
MAX_FILE_BYTES = 32 * 1024 * 1024
_HEX = frozenset("0123456789abcdef")
try:
    from zoneinfo import ZoneInfo
    CITY_ZONE, ZONE_NAME = ZoneInfo("Europe/Amsterdam"), "Europe/Amsterdam"
except Exception:               # no time zone data on this machine: say UTC instead
    CITY_ZONE, ZONE_NAME = timezone.utc, "UTC"


class Failure(NamedTuple):
    line: int           # the line of the file, the header being line 1
    key: str            # the key as hex when it could be read, else ""
    reason: str
    code: str           # `bad_row` for what was refused here, else the chain's code


@dataclass(frozen=True)
class Row:
    line: int
    args: dict          # member.register args, ready to sign


def euros(cents: int | None) -> str:
    if cents is None:
        return "-"
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100:,}.{cents % 100:02d}"


def short(key: str) -> str:
    """A key shortened for reading, e.g. `3f2a91c0...7be0`."""
    return f"{key[:8]}...{key[-4:]}"


def named(name: str | None, key: str) -> str:
    """A member by name with its key shortened after it, e.g. `Cafe De Kroon (7be0...)`."""
    return f"{name} ({short(key)})" if name else short(key)


def already_member(key: str, member: dict | None) -> str:
    """Why a key cannot be registered again, in words: it is (or was) a member."""
    if member is None:
        return (f"{short(key)} is already a member, or was one (or is the new key of an "
                f"open recovery); a key is registered once")
    role = member["role"]
    if member["active"]:
        return f"{short(key)} is already a member: a {role}"
    return (f"{short(key)} was a member (a {role}, revoked or recovered); a key is "
            f"registered once: the person needs a new key")


def city_time(ms: int) -> str:
    """A chain time (ms) in the city's zone, e.g. `2026-12-08 14:05 CET`."""
    return datetime.fromtimestamp(ms / 1000, CITY_ZONE).strftime("%Y-%m-%d %H:%M %Z")


def register_problem(args: dict) -> str | None:
    """Why these member.register args would be refused, in words; None when they fit."""
    role = args.get("role")
    if role not in ROLES:
        return f"role must be one of {', '.join(ROLES)}"
    needed = ROLE_ARGS.get(role, set())
    given = {k for k in ("age_band", "area", "name", "organisation") if k in args}
    if given - needed:
        return (f"a {role} carries no {', '.join(sorted(given - needed))}"
                + (f" (only {', '.join(sorted(needed))})" if needed else ""))
    if needed - given:
        return f"a {role} needs {', '.join(sorted(needed - given))}"
    if "age_band" in args and args["age_band"] not in BANDS:
        return f"age_band must be {' or '.join(BANDS)}"
    for name in ("area", "organisation"):
        if name in args and not ident(args[name]):
            return f"{name} must be 1 to 64 of A-Z a-z 0-9 . _ -"
    if "name" in args and not 1 <= len(args["name"]) <= 120:
        return "name must be 1 to 120 characters"
    return None


def _row_args(cells: dict) -> tuple[dict | None, str, str]:
    """(args or None, key hex or "", reason)."""
    key_text = cells.get("key", "").strip().lower()
    if len(key_text) != 64 or not _HEX.issuperset(key_text):
        return None, "", f"key must be 64 hex characters, found {key_text[:20]!r}"
    args: dict = {"key": bytes.fromhex(key_text), "role": cells.get("role", "").strip()}
    for name in ("age_band", "area", "name"):
        value = cells.get(name, "").strip()
        if value:
            args[name] = value
    problem = register_problem(args)
    return (None, key_text, problem) if problem else (args, key_text, "")


def read_csv(path: Path) -> tuple[list[Row], list[Failure]]:
    """Good rows to register and the rows refused here. A file whose header is wrong is
    a usage error as a whole (every row would fail for the same reason)."""
    if path.stat().st_size > MAX_FILE_BYTES:
        raise UsageError(f"{path}: over {MAX_FILE_BYTES // (1024 * 1024)} MiB; split it")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text") from None
    first = text.split("\n", 1)[0]
    separator = ";" if first.count(";") > first.count(",") else ","   # Dutch Excel: ;
    lines = csv.reader(text.splitlines(), delimiter=separator)
    header = next(lines, None)
    if header is None:
        raise UsageError(f"{path}: empty; the first line is the header "
                         f"{','.join(COLUMNS)}")
    header = [h.strip().lower() for h in header]
    unknown = [h for h in header if h not in COLUMNS]
    if unknown or "key" not in header or "role" not in header or \
            len(set(header)) != len(header):
        raise UsageError(f"{path}: bad columns {header}; the header names key and role "
                         f"and may name {', '.join(COLUMNS[2:])}, each once")
    rows, failed, seen = [], [], 0
    for number, cells in enumerate(lines, start=2):
        if not cells or all(not c.strip() for c in cells):
            continue                                   # a blank line is no row
        seen += 1
        if seen > MAX_ROWS:
            raise UsageError(f"{path}: more than {MAX_ROWS:,} rows; split it")
        if len(cells) != len(header):
            failed.append(Failure(number, "", f"{len(cells)} columns where the header has "
                                              f"{len(header)}", "bad_row"))
            continue
        args, key_hex, reason = _row_args(dict(zip(header, cells)))
        if args is None:
            failed.append(Failure(number, key_hex, reason, "bad_row"))
        else:
            rows.append(Row(number, args))
    return rows, failed


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)


def account_text(a: dict) -> str:
    attributes = ", ".join(f"{k} {a[k]}" for k in ("age_band", "area", "name") if k in a)
    lines = [f"{a['key']}: {a['role']}{', ' + attributes if attributes else ''}, "
             f"{'active' if a['active'] else 'REVOKED'}", f"balance {euros(a['balance'])}"]
    if a.get("recovered_to"):
        lines.append(f"recovered to {a['recovered_to']}")
    recovery = a.get("recovery")
    if a.get("frozen") or recovery:
        lines.append("FROZEN: a recovery is open" + (
            f" to {recovery['new']}, effective {city_time(recovery['effective'])} "
            f"({ZONE_NAME})" if recovery else "") + "; it signs nothing until it is "
            "cancelled or completed")
    earnings = a.get("earnings")
    if earnings:
        rows = [[e["period"], euros(e["earned"]), euros(e["reserved"]), euros(e["cap"]),
                 euros(e["remaining"])] for e in (earnings["month"], earnings["year"])]
        lines.append(table(["period", "earned", "reserved", "cap", "remaining"], rows))
    return "\n".join(lines)


def task_text(t: dict, deadline: str) -> str:
    lines = [f"{t['task']}: {t['title']}",
             f"area {t['area']}, domain {t['domain']}, reward {euros(t['reward'])} for "
             f"{t['minutes']} minutes, {t['taken']}/{t['slots']} slots taken, "
             f"{t['status']} until {deadline}"]
    claims = t.get("claims")
    if claims:
        lines.append(table(["citizen", "state"], [[c["citizen"], c["state"]]
                                                  for c in claims]))
    elif claims is not None:
        lines.append("no claims")
    return "\n".join(lines)


def members_of(genesis: dict, events: list[dict]) -> list[dict]:
    """Every member with its role, attributes and whether it is active: the genesis
    admins and stewards, then the log's registrations, updates, revocations and
    recoveries in the order of their positions."""
    found: dict[str, dict] = {}
    for key in genesis.get("admins", []):
        found[key] = {"key": key, "role": "admin", "active": True}
    for organisation in genesis.get("organisations", []):
        for key in organisation["stewards"]:
            found[key] = {"key": key, "role": "steward", "active": True,
                          "organisation": organisation["id"]}
    for event in sorted(events, key=lambda e: e["position"]):
        kind = event["kind"]
        if kind == "member.registered":
            found[event["key"]] = {"key": event["key"], "active": True, **{
                k: v for k, v in event.items() if k in MEMBER_FIELDS}}
        elif kind == "member.updated" and event["key"] in found:
            found[event["key"]].update({k: v for k, v in event.items()
                                        if k in ("age_band", "area")})
        elif kind == "member.revoked" and event["key"] in found:
            found[event["key"]]["active"] = False
        elif kind == "member.recovered" and event["old"] in found:
            old = found[event["old"]]
            found[event["new"]] = dict(old, key=event["new"], active=True)
            old.update(active=False, recovered_to=event["new"])
    return list(found.values())


MEMBER_FIELDS = ("role", "age_band", "area", "name", "organisation")
MEMBER_EVENTS = ("member.registered", "member.updated", "member.revoked",
                 "member.recovered")


def members_text(members: list[dict]) -> str:
    if not members:
        return "no members"
    rows = [[m["key"], m["role"], ", ".join(str(m[k]) for k in MEMBER_FIELDS[1:] if k in m)
             or "-", "active" if m["active"] else "revoked"] for m in members]
    return table(["key", "role", "attributes", "state"], rows)
