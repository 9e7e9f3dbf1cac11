"""Blocks and the event log: pages by height and by position, and the live
Server-Sent Events stream (contract: /v1/blocks, /v1/events, /v1/events/stream).

The stream follows the log by position: it reads a page in one short read transaction,
writes it, and reads on; when the log has nothing new it waits for the next executed
batch (gateway/feed.py). No read transaction is ever open across an `await`, so idle
streams neither block the writer nor pin old pages of the LMDB file.
"""
from __future__ import annotations

import asyncio
import base64
import json

from aiohttp import web

from chaincode import events
from chaincode.results import decode_result
from gateway.appkeys import CLOCK_MS, FEED, NODE, STREAMS, TOKENS
from gateway import auth, params
from protocol.codec import jsonable
from gateway.params import bad, page, query
from gateway.problems import Problem
from gateway.reads import event_json

BLOCK_PAGE_BYTES = 8 * 1024 * 1024      # envelopes in one page of blocks, about
EVENT_SCAN_BUDGET = 10_000              # log entries one filtered page may look at
STREAM_PAGE = 500
HEARTBEAT_S = 15.0                      # a comment line keeps proxies from closing
EVENT_KINDS = events.KINDS                # the chaincode's table (chaincode/events.py)


def certificate_json(certificate) -> list[dict]:
    return [{"validator": i, "signature": s.hex()} for i, s in certificate]


def block_json(store, record) -> dict:
    found = store.checkpoint(record.height)
    checkpoint = None if found is None else {
        "block_hash": found[0].hex(), "set_hash": found[2].hex(),
        "signatures": certificate_json(found[1])}
    results = [jsonable(decode_result(raw)) for raw in store.results(record.height)]
    return {"height": record.height, "hash": record.hash.hex(),
            "prev_hash": record.prev_hash.hex(), "time": record.time_ms, "view": record.view,
            "batch_digest": record.batch_digest.hex(), "state_root": record.state_root.hex(),
            "results_root": record.results_root.hex(),
            "txs": [base64.b64encode(e).decode() for e in record.envelopes],
            "results": results,
            "certificate": {"view": record.view,
                            "signatures": certificate_json(record.certificate)},
            "checkpoint": checkpoint}


async def get_blocks(request: web.Request) -> web.Response:
    q = query(request, "from", *params.PAGED)
    auth.require(request)
    limit = params.limit(q)
    start = max(1, params.position_cursor(q, "from") or 1)
    store = request.app[NODE].store
    records = store.blocks(start, limit + 1)
    items, size = [], 0
    for record in records[:limit]:
        size += sum(len(e) for e in record.envelopes)
        if items and size > BLOCK_PAGE_BYTES:
            break
        items.append(block_json(store, record))
    more = len(records) > len(items)
    return page(items, items[-1]["height"] + 1 if more else None)


async def get_block(request: web.Request) -> web.Response:
    query(request)
    auth.require(request)
    raw = request.match_info["height"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
        raise Problem(404, "not_found", "A block height is a whole number from 1.")
    store = request.app[NODE].store
    record = store.block(int(raw))
    if record is None:
        raise Problem(404, "not_found", f"There is no block at height {raw} yet.")
    return web.json_response(block_json(store, record))


# ---- events ----

class EventFilter:
    """The `kind` and `account` filters of /v1/events and its stream, and who may read."""

    def __init__(self, request: web.Request, q: dict):
        reader = auth.identify(request)       # no token is 401 before any other check
        self.kind = q.get("kind")
        if self.kind is not None and self.kind not in EVENT_KINDS:
            raise bad(f"kind {self.kind!r} is not an event kind.")
        self.account = params.key(q.get("account"), "account")
        # an account's own events are its to read (and a steward's while governance
        # names it, judged when the request starts); the whole log is for readers of all
        if self.account is None:
            auth.allow(reader)
        else:
            auth.allow_account(request, reader, self.account)

    def recheck(self, request: web.Request) -> None:
        """The same checks as when the stream opened, with the reader as it stands now."""
        reader = auth.identify(request)
        if self.account is None:
            auth.allow(reader)
        else:
            auth.allow_account(request, reader, self.account)

    def fetch(self, store, after: int, count: int):
        if self.account is not None:
            return store.account_events(self.account, after, count)
        return store.events(after, count)

    def keep(self, logged) -> bool:
        return self.kind is None or logged.event.get("kind") == self.kind


async def get_events(request: web.Request) -> web.Response:
    q = query(request, "after", "kind", "account", *params.PAGED)
    chosen = EventFilter(request, q)
    limit = params.limit(q)
    position = params.position_cursor(q, "after")
    store = request.app[NODE].store
    items, scanned = [], 0
    while True:
        found = chosen.fetch(store, position, min(1000, limit + 1))
        if not found:
            return page(items, None)
        for logged in found:
            if len(items) == limit or scanned >= EVENT_SCAN_BUDGET:
                return page(items, position)
            scanned += 1
            position = logged.position
            if chosen.keep(logged):
                items.append(event_json(logged))


def _resume_position(request: web.Request, q: dict) -> int:
    last = request.headers.get("Last-Event-ID")
    if last is not None and last.strip():
        last = last.strip()
        if not last.isascii() or not last.isdigit() or len(last) > 19:
            raise bad("Last-Event-ID is an event position, a whole number.")
        return int(last)
    return params.position_cursor(q, "after")


async def get_stream(request: web.Request) -> web.StreamResponse:
    q = query(request, "after", "kind", "account")
    chosen = EventFilter(request, q)
    position = _resume_position(request, q)
    app = request.app
    key, address = auth.identify(request).key, request.remote or "?"
    slots = app[STREAMS]
    refused = slots.refusal(key, address)
    if refused == "total":
        raise Problem(503, "overloaded", "Too many live streams on this node; try again "
                      "shortly or use another validator.", headers={"Retry-After": "5"})
    if refused is not None:
        whose = "this key" if refused == "key" else "this address"
        raise Problem(429, "too_many_streams", f"{whose.capitalize()} holds as many live "
                      "streams as it may; close one first.", headers={"Retry-After": "5"})
    slots.take(key, address)
    try:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        try:
            await _follow(request, response, chosen, position)
        except ConnectionResetError:     # the client went away: its Last-Event-ID resumes
            pass
        return response
    finally:
        slots.give_back(key, address)


async def _follow(request: web.Request, response: web.StreamResponse, chosen: EventFilter,
                  position: int) -> None:
    """Pages of the log, then live; the stream ends with an `expired` event when the
    token does (or its key may no longer read this): the app reconnects with a fresh
    token and `?after=` its last id (docs/api.md, "GET /v1/events/stream")."""
    app = request.app
    store, feed, clock_ms = app[NODE].store, app[FEED], app[CLOCK_MS]
    expires_ms = app[TOKENS].expires_ms(request)
    await response.write(b"retry: 1000\n\n")
    while True:
        reason = _no_longer_allowed(request, q_chosen=chosen, expires_ms=expires_ms,
                                    now_ms=clock_ms())
        if reason is not None:
            await response.write(b"event: expired\ndata: " +
                                 json.dumps({"reason": reason}).encode() + b"\n\n")
            return
        # take the signal before reading, so a block written after the read wakes us
        signal = feed.signal()
        found = chosen.fetch(store, position, STREAM_PAGE)
        if found:
            position = found[-1].position
            text = "".join(f"id: {e.position}\ndata: {json.dumps(event_json(e))}\n\n"
                           for e in found if chosen.keep(e))
            if text:
                await response.write(text.encode())
            else:
                await asyncio.sleep(0)      # let others run while a filter skips a page
            continue
        left_s = max(0.0, (expires_ms - clock_ms()) / 1000)
        try:
            await asyncio.wait_for(asyncio.shield(signal), min(HEARTBEAT_S, left_s))
        except asyncio.TimeoutError:
            await response.write(b": idle\n\n")


def _no_longer_allowed(request: web.Request, q_chosen: EventFilter, expires_ms: int,
                       now_ms: int) -> str | None:
    """Why the stream must end now: its token expired, or its reader lost the right to
    read it (revoked, or no longer the role that could); None while it may go on."""
    if now_ms >= expires_ms:
        return "The read token has expired; reconnect with a new one."
    try:
        q_chosen.recheck(request)
    except Problem as problem:
        return problem.detail
    return None
