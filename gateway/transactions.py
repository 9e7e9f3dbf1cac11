"""Submitting transactions and asking for their outcome (contract: POST /v1/tx, /v1/txs,
GET /v1/tx/{tx_id})."""
from __future__ import annotations

import base64
import binascii
import json

from aiohttp import web

from chaincode import describe
from gateway.appkeys import FEED, NODE
from gateway import auth
from node import codec
from node.codec import jsonable
from gateway.params import query
from gateway.problems import Problem

MAX_TX_BODY = 64 * 1024
MAX_BATCH_BODY = 8 * 1024 * 1024
MAX_BATCH = 1000
DEFAULT_WAIT_S, MAX_WAIT_S = 10.0, 60.0
DOOR_CODES = ("malformed", "bad_signature", "wrong_chain")


async def _body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise Problem(413, "too_large", f"The body is over the limit of {limit} bytes.")
    data = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > limit:
            raise Problem(413, "too_large", f"The body is over the limit of {limit} bytes.")
    return bytes(data)


def _json(data: bytes) -> dict:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise Problem(400, "malformed", "The body is not valid JSON.") from None
    if type(value) is not dict:
        raise Problem(400, "malformed", "The body must be a JSON object.")
    return value


def _b64(text, where: str) -> bytes:
    if type(text) is not str:
        raise Problem(400, "malformed", f"{where} must be a base64 string.")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Problem(400, "malformed", f"{where} is not valid base64.") from None


def _wait_seconds(request: web.Request) -> float | None:
    q = query(request, "wait", "timeout")
    wait = q.get("wait", "false")
    if wait not in ("true", "false"):
        raise Problem(400, "invalid_parameter", "wait must be true or false.")
    if wait == "false":
        return None
    raw = q.get("timeout", str(DEFAULT_WAIT_S))
    try:
        seconds = float(raw)
    except ValueError:
        raise Problem(400, "invalid_parameter", "timeout is a number of seconds.") from None
    if not 0 <= seconds <= MAX_WAIT_S:  # also refuses nan
        raise Problem(400, "invalid_parameter", f"timeout is 0 to {MAX_WAIT_S:g} seconds.")
    return seconds


def decided(result: dict) -> dict:
    code = result["code"]
    return {"tx_id": result["tx_id"], "status": "committed" if code == "ok" else "rejected",
            "height": result["height"], "code": code, "info": jsonable(result["info"]),
            "detail": describe(code, result["info"]), "events": jsonable(result["events"])}


async def post_tx(request: web.Request) -> web.Response:
    node = request.app[NODE]
    wait = _wait_seconds(request)
    content_type = request.content_type
    if content_type == "application/msgpack":
        envelope = await _body(request, MAX_TX_BODY)
    elif content_type == "application/json":
        body = _json(await _body(request, MAX_TX_BODY))
        if set(body) != {"envelope"}:
            raise Problem(400, "malformed", 'The body must be {"envelope": "<base64>"}.')
        envelope = _b64(body["envelope"], "envelope")
    else:
        raise Problem(415, "unsupported_media_type",
                      "Send application/msgpack (the raw envelope) or application/json.")
    answer = node.submit([envelope])[0]
    if answer.status == "pending":
        request.app[FEED].submitted([answer.tx_id])
    if answer.status in DOOR_CODES:
        sentence = describe(answer.status, {})
        if answer.reason:       # the door's own words, for the developer of the app
            sentence = f"{sentence[:-1]} ({answer.reason})."
        raise Problem(400, answer.status, sentence, tx_id=answer.tx_id)
    if answer.status == "overloaded":
        raise Problem(503, "overloaded", "The node is busy; try again shortly.",
                      headers={"Retry-After": "1"})
    result = await node.wait(answer.tx_id, wait) if wait is not None else \
        node.result(answer.tx_id)
    if result is not None:
        return web.json_response(decided(result), status=200)
    return web.json_response({"tx_id": answer.tx_id, "status": "pending"}, status=202)


def _msgpack_envelopes(data: bytes) -> list[bytes]:
    """The envelopes of an application/msgpack batch: one array of bin values, no base64
    and no JSON to parse (the form for apps that send much)."""
    try:
        envelopes = codec.unpack(data, MAX_BATCH_BODY)
    except codec.CodecError as error:
        raise Problem(400, "malformed", f"The body is not strict msgpack ({error}).") from None
    if type(envelopes) is not list or any(type(e) is not bytes for e in envelopes):
        raise Problem(400, "malformed", "The body must be a msgpack array of envelopes "
                                        "(each the envelope's bytes as bin).")
    return envelopes


async def post_txs(request: web.Request) -> web.Response:
    node = request.app[NODE]
    query(request)
    content_type = request.content_type
    if content_type == "application/msgpack":
        raw = _msgpack_envelopes(await _body(request, MAX_BATCH_BODY))
    elif content_type == "application/json":
        body = _json(await _body(request, MAX_BATCH_BODY))
        envelopes = body.get("envelopes")
        if set(body) != {"envelopes"} or type(envelopes) is not list:
            raise Problem(400, "malformed", 'The body must be {"envelopes": [<base64>...]}.')
        raw = envelopes
    else:
        raise Problem(415, "unsupported_media_type",
                      "Send application/json or application/msgpack.")
    if not 1 <= len(raw) <= MAX_BATCH:
        raise Problem(400, "malformed", f"Send 1 to {MAX_BATCH} envelopes.")
    if content_type == "application/json":
        raw = [_b64(e, f"envelopes[{i}]") for i, e in enumerate(raw)]
    items, busy = [], False
    answers = node.submit(raw)
    request.app[FEED].submitted([a.tx_id for a in answers if a.status == "pending"])
    for answer in answers:
        status = answer.status
        item = {"tx_id": answer.tx_id, "status": status, "code": None, "detail": ""}
        if status in DOOR_CODES:
            item.update(status="refused", code=status, detail=describe(status, {}))
        elif status == "overloaded":
            busy = True
            item.update(code="overloaded", detail="The node is busy; try again shortly.")
        elif status == "known":
            result = node.result(answer.tx_id)
            if result is None:
                item.update(status="pending")
            else:
                full = decided(result)
                item.update(status=full["status"], code=full["code"], detail=full["detail"])
        items.append(item)
    return web.json_response({"items": items}, headers={"Retry-After": "1"} if busy else None)


def _may_see_events(reader: auth.Reader | None, events: list[dict]) -> bool:
    """Events name accounts: shown to readers of everything and to the accounts named;
    a steward also sees those of governance (a proposal, approval or withdrawal)."""
    if reader is None:
        return False
    if reader.everything:
        return True
    if reader.steward and events and str(events[0].get("kind")).startswith("gov."):
        return True
    return any(reader.key == value or (type(value) is list and reader.key in value)
               for event in events for value in event.values())


async def get_tx(request: web.Request) -> web.Response:
    node = request.app[NODE]
    query(request)
    reader = auth.optional(request)
    tx_id = request.match_info["tx_id"]
    if len(tx_id) != 64 or any(c not in "0123456789abcdef" for c in tx_id):
        raise Problem(404, "not_found", "A transaction id is 64 lowercase hex characters.")
    result = node.result(tx_id)
    if result is not None:
        answer = decided(result)
        if not _may_see_events(reader, result["events"]):
            answer["events"] = None
        return web.json_response(answer)
    if node.is_pending(tx_id):
        return web.json_response({"tx_id": tx_id, "status": "pending"})
    raise Problem(404, "not_found", "This node knows no transaction with that id.")
