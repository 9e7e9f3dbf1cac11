"""The constitution and the proposals as apps read them: GET /v1/constitution,
GET /v1/proposals and GET /v1/proposals/{id} (docs/api.md; the rules are in
docs/governance.md).

No token is needed. The keys in the args of a `member.recover` proposal (whose lost key
moves where) show only to a reader of everything or a steward; to anyone else they are
null. Statuses are judged at the head block's time, as the chaincode would judge them in
the next block; the chaincode's queries do the reading (chaincode/queries.py).
"""
from __future__ import annotations

import re

from aiohttp import web

from chaincode import queries
from gateway import auth, params
from gateway.appkeys import NODE
from gateway.chainhead import head_time_ms
from gateway.params import bad, page, query
from gateway.problems import Problem
from protocol.codec import jsonable

STATUSES = ("open", "enacted", "failed", "withdrawn", "expired")
HIDDEN_ARGS = frozenset(("member.recover",))     # actions whose keys only governors see
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_CURSOR = re.compile(r"([0-9]{1,19})\.([0-9a-f]{64})\Z")


async def get_constitution(request: web.Request) -> web.Response:
    query(request)
    store = request.app[NODE].store
    return web.json_response(jsonable(queries.constitution(store, store.head()[0])))


def proposal_json(found: dict, reader: auth.Reader | None) -> dict:
    out = jsonable(found)
    if found["action"] in HIDDEN_ARGS and not (reader is not None and reader.governs):
        out["args"] = {name: None if type(value) is bytes else out["args"][name]
                       for name, value in found["args"].items()}
    return out


def _cursor(text: str | None) -> tuple[int, bytes] | None:
    if text is None:
        return None
    found = _CURSOR.match(text)
    if found is None:
        raise bad("cursor is the `next` of the previous page: HEIGHT.ID.")
    return int(found[1]), bytes.fromhex(found[2])


async def get_proposals(request: web.Request) -> web.Response:
    q = query(request, "status", *params.PAGED)
    limit = params.limit(q)
    status = params.choice(q, "status", STATUSES)
    after = _cursor(q.get("cursor"))
    reader = auth.optional(request)
    store = request.app[NODE].store
    items, last = queries.proposals(store, head_time_ms(store), status, after, limit)
    return page([proposal_json(p, reader) for p in items],
                None if last is None else f"{last[0]}.{last[1].hex()}")


async def get_proposal(request: web.Request) -> web.Response:
    query(request)
    text = request.match_info["id"]
    if _HEX64.match(text) is None:
        raise bad("A proposal id is the id of its gov.propose: 64 lowercase hex characters.")
    reader = auth.optional(request)
    store = request.app[NODE].store
    found = queries.proposal(store, bytes.fromhex(text), head_time_ms(store))
    if found is None:
        raise Problem(404, "not_found", "There is no proposal with this id.")
    return web.json_response(proposal_json(found, reader))
