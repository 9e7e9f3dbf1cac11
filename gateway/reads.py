"""Accounts, tasks, merchants and payouts: the chaincode's state as apps read it
(contract: "The gateway's HTTP API"). Personal data answers only to a read token of its
owner or of a role that reads everything (gateway/auth.py)."""
from __future__ import annotations

from aiohttp import web

from chaincode import events, queries
from gateway.appkeys import CLOCK_MS, NODE
from gateway import auth, params
from protocol.codec import jsonable
from gateway.chainhead import head_time_ms
from gateway.params import bad, page, query
from gateway.problems import Problem

SCAN_BUDGET = 10_000     # state entries one filtered page may look at before it answers
ATTRIBUTES = ("age_band", "area", "name", "organisation")


def _now_ms(request: web.Request) -> int:
    return request.app[CLOCK_MS]()


def _path_key(request: web.Request) -> bytes:
    text = request.match_info["key"]
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise Problem(404, "not_found", "An account key is 64 lowercase hex characters.")
    return bytes.fromhex(text)


def account_json(member: dict, earnings: dict | None, recovery: dict | None = None) -> dict:
    """The account as apps read it; `recovery` is its open recovery (queries.recovery)."""
    out = {"key": member["key"].hex(), "role": member["role"], "active": member["active"],
           "balance": member["balance"], "earnings": earnings,
           "frozen": bool(member.get("frozen")),
           "recovery": None if recovery is None else {"new": recovery["new"].hex(),
                                                      "effective": recovery["effective"]}}
    for name in ATTRIBUTES:
        if name in member:
            out[name] = member[name]
    if "recovered_to" in member:
        out["recovered_to"] = member["recovered_to"].hex()
    return out


async def get_account(request: web.Request) -> web.Response:
    query(request)
    key = _path_key(request)
    auth.require_account(request, key)
    store = request.app[NODE].store
    member = queries.member(store, key)
    if member is None:
        raise Problem(404, "not_found", "No account has this key.")
    earnings = None
    if member["role"] == "citizen":
        # "current" is now: what the next claim would be measured against
        earnings = queries.earnings(store, key, _now_ms(request))
    return web.json_response(account_json(member, earnings, queries.recovery(store, key)))


def event_json(logged) -> dict:
    out = {"position": logged.position, "height": logged.height, "tx_id": logged.tx_id}
    out.update(jsonable(logged.event))
    return out


async def get_history(request: web.Request) -> web.Response:
    q = query(request, *params.PAGED)
    key = _path_key(request)
    auth.require_account(request, key)
    limit, after = params.limit(q), params.position_cursor(q)
    store = request.app[NODE].store
    found = store.account_events(key, after, limit + 1)
    if not found and queries.member(store, key) is None:
        raise Problem(404, "not_found", "No account has this key.")
    more = len(found) > limit
    found = found[:limit]
    return page([event_json(e) for e in found], found[-1].position if more else None)


async def get_statement(request: web.Request) -> web.Response:
    q = query(request, "year")
    key = _path_key(request)
    auth.require(request, key)
    if "year" not in q:
        raise bad("year is required: a statement covers one calendar year.")
    year = params.integer(q, "year", None, 2000, 9999)
    store = request.app[NODE].store
    member = queries.member(store, key)
    if member is None:
        raise Problem(404, "not_found", "No account has this key.")
    months = queries.statement(store, key, year)
    return web.json_response({"key": key.hex(), "role": member["role"], "year": year,
                              "months": months, "total": sum(m["earned"] for m in months)})


# ---- tasks ----

def _claims_for(reader: auth.Reader | None, claims: list[dict]) -> list[dict] | None:
    """Every claim for a reader of everything; a citizen sees only its own."""
    if reader is None:
        return None
    if not reader.everything:
        claims = [c for c in claims if c["citizen"] == reader.key]
    return [jsonable(c) for c in claims]


def task_json(task: dict, reader: auth.Reader | None) -> dict:
    claims = task.pop("claims", None)
    out = jsonable(task)
    if reader is not None:
        out["claims"] = _claims_for(reader, claims or [])
    return out


def filtered_page(fetch, cursor, keep, limit: int, budget: int = SCAN_BUDGET):
    """Walk ids from `fetch(after, count)` after `cursor`, keeping what `keep(id)` turns
    into an item (None to skip). Stops at `limit` items or after SCAN_BUDGET ids, with a
    cursor only when an id is left unread. A page may be short, even empty, when the
    budget ran out; its `next` has still moved on."""
    items, last, scanned = [], cursor, 0
    while True:
        ids = fetch(last, 1000)
        if not ids:
            return items, None
        for found_id in ids:
            if len(items) == limit or scanned >= budget:
                return items, last
            scanned += 1
            last = found_id
            item = keep(found_id)
            if item is not None:
                items.append(item)


async def get_tasks(request: web.Request) -> web.Response:
    q = query(request, "status", "area", *params.PAGED)
    limit = params.limit(q)
    status = params.choice(q, "status", ("open", "closed", "cancelled"))
    area = params.ident(q.get("area"), "area")
    cursor = params.ident(q.get("cursor"), "cursor")
    reader = auth.optional(request)
    store = request.app[NODE].store
    time_ms = head_time_ms(store)

    def fetch(after, count):
        if area is not None:
            return store.tasks_in_area(area, after or "", count)
        return queries.task_ids_page(store, after, count)

    def keep(task_id):
        found = queries.task(store, task_id, time_ms, with_claims=reader is not None)
        if found is None or (status is not None and found["status"] != status):
            return None
        return task_json(found, reader)

    items, next_cursor = filtered_page(fetch, cursor, keep, limit)
    return page(items, next_cursor)


async def get_task(request: web.Request) -> web.Response:
    query(request)
    task_id = request.match_info["task"]
    if not params.is_ident(task_id):
        raise Problem(404, "not_found", "A task id is 1 to 64 of [A-Za-z0-9._-].")
    reader = auth.optional(request)
    store = request.app[NODE].store
    found = queries.task(store, task_id, head_time_ms(store), with_claims=reader is not None)
    if found is None:
        raise Problem(404, "not_found", f"There is no task {task_id!r}.")
    return web.json_response(task_json(found, reader))


# ---- merchants and payouts ----

async def get_merchants(request: web.Request) -> web.Response:
    q = query(request, *params.PAGED)
    limit = params.limit(q)
    cursor = params.key(q.get("cursor"), "cursor")
    store = request.app[NODE].store
    records: dict[bytes, dict] = {}

    def fetch(after, count):
        records.clear()
        records.update((m["key"], m) for m in queries.members_page(store, after or None, count))
        return list(records)

    def keep(key):
        record = records[key]
        if record["role"] != "merchant" or not record["active"]:
            return None
        return {"key": key.hex(), "name": record.get("name")}

    items, next_key = filtered_page(fetch, cursor, keep, limit)
    return page(items, None if next_key is None else next_key.hex())


def payout_json(record: dict) -> dict:
    out = jsonable(record)
    out.setdefault("reference", None)
    return out


async def get_payouts(request: web.Request) -> web.Response:
    q = query(request, "status", *params.PAGED)
    auth.require(request)
    limit = params.limit(q)
    status = params.choice(q, "status", ("pending", "paid"))
    cursor = params.key(q.get("cursor"), "cursor")
    store = request.app[NODE].store
    if status is None:
        records = queries.payouts_page(store, cursor, limit + 1)
    else:
        logged = store.payouts(status == "paid", cursor or b"", limit + 1)
        records = [queries.payout(store, events.payout_id(e.event)) for e in logged]
    more = len(records) > limit
    records = records[:limit]
    return page([payout_json(r) for r in records if r is not None],
                records[-1]["payout"] if more else None)


async def get_policy(request: web.Request) -> web.Response:
    """The cap policy in force in a local year: its own, or the latest earlier year's,
    which carries over (`own` false). Public: the caps are the city's rules."""
    query(request)
    text = request.match_info["year"]
    if not (text.isascii() and text.isdigit() and len(text) == 4 and text >= "2000"):
        raise Problem(404, "not_found", "A year is a number from 2000 to 9999.")
    year = int(text)
    found = queries.policy_for_year(request.app[NODE].store, year)
    if found is None:
        raise Problem(404, "not_found", f"No cap policy applies in {year}.")
    return web.json_response({"year": year, "own": not found["fallback"],
                              "policy": found["policy"]})
