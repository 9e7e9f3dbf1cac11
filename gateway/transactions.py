"""Submitting transactions and asking for their outcome (contract: POST /v1/tx, /v1/txs,
GET /v1/tx/{tx_id})."""
from __future__ import annotations

from aiohttp import web

from chaincode import describe
from gateway.appkeys import FEED, NODE
from gateway import auth, bodies
from gateway.nodeapi import NodeUnavailable
from gateway.params import query
from gateway.problems import Problem, language, language_headers
from protocol.codec import jsonable
from protocol.limits import MAX_BATCH, MAX_BATCH_BODY

MAX_TX_BODY = 64 * 1024
DEFAULT_WAIT_S, MAX_WAIT_S = 10.0, 60.0
DOOR_CODES = ("malformed", "bad_signature", "wrong_chain")
# refused before ordering because the signer is not an active member (node/admission.py):
# answered as the block would have rejected it, with no height, and never stored
ADMISSION_CODES = ("unknown_member", "revoked", "frozen")
OVER_SHARE = "over_share"
# The gateway's own sentences of these endpoints, in each language of chaincode.describe
# (the chaincode's codes are described by describe(code, info, language)).
SENTENCES = {
    "en": {"unreachable": "The validator cannot be reached from this gateway just now; "
                          "try again shortly.",
           "busy": "The node is busy; try again shortly.",
           "over_share": "This key submits faster than its share of the network; send it "
                         "again after the time in Retry-After.",
           "over_share_item": "This key submits faster than its share; send it again "
                              "after {seconds} s.",
           "no_quorum": "Not decided yet: this validator reaches {linked} of the {needed} "
                        "validators a decision needs ({missing} not connected). The "
                        "transaction stays pending and may still be decided once they "
                        "are back: ask for it again later (GET /v1/tx/{tx_id})."},
    "nl": {"unreachable": "De validator is vanaf deze gateway nu niet bereikbaar; probeer "
                          "het zo opnieuw.",
           "busy": "Het netwerk is even druk; probeer het zo opnieuw.",
           "over_share": "Deze sleutel verstuurt sneller dan zijn deel van het netwerk; "
                         "stuur het opnieuw na de tijd in Retry-After.",
           "over_share_item": "Deze sleutel verstuurt sneller dan zijn deel; stuur het "
                              "opnieuw na {seconds} s.",
           "no_quorum": "Nog niet beslist: deze validator bereikt {linked} van de "
                        "{needed} validators die een besluit nodig heeft ({missing} niet "
                        "verbonden). De transactie blijft in behandeling en kan alsnog "
                        "beslist worden zodra ze terug zijn: vraag haar later opnieuw op "
                        "(GET /v1/tx/{tx_id})."},
}


async def _submit(node, envelopes: list[bytes], lang: str) -> list:
    try:
        return await node.submit(envelopes)
    except NodeUnavailable:
        raise Problem(503, "overloaded", SENTENCES[lang]["unreachable"],
                      headers={"Retry-After": "1", **language_headers(lang)}) from None


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


async def _no_quorum(node, tx_id: str, lang: str) -> dict:
    """For a write whose wait ran out: when the validator has no quorum of linked
    validators just now, `detail` saying so (and that it may still be decided later) and
    the status's `quorum`; else nothing. The status is the one /v1/status answers from
    (gateway/linked.py asks the validator for it at most once per STATUS_FRESH_S)."""
    try:
        status = await node.status()
    except NodeUnavailable:
        return {}
    quorum = status.get("quorum")
    if not quorum or quorum["linked"] >= quorum["needed"]:
        return {}
    return {"detail": SENTENCES[lang]["no_quorum"].format(
                linked=quorum["linked"], needed=quorum["needed"],
                missing=", ".join(quorum["missing"]), tx_id=tx_id),
            "quorum": quorum}


def refused(tx_id: str, code: str, lang: str = "en") -> dict:
    """The answer for a transaction admission refused: rejected with the chaincode's
    code, no height, no events."""
    return {"tx_id": tx_id, "status": "rejected", "height": None, "code": code, "info": {},
            "detail": describe(code, {}, lang), "events": []}


def _over_share(answer, lang: str) -> Problem:
    return Problem(429, OVER_SHARE, SENTENCES[lang]["over_share"],
                   headers={"Retry-After": str(max(1, answer.retry_after_s)),
                            **language_headers(lang)},
                   tx_id=answer.tx_id)


def decided(result: dict, lang: str = "en") -> dict:
    """A decided transaction's answer; `detail` is made here from code and info, in the
    reader's language: it is not part of the result (nor of any hash)."""
    code = result["code"]
    return {"tx_id": result["tx_id"], "status": "committed" if code == "ok" else "rejected",
            "height": result["height"], "code": code, "info": jsonable(result["info"]),
            "detail": describe(code, result["info"], lang),
            "events": jsonable(result["events"])}


async def post_tx(request: web.Request) -> web.Response:
    node = request.app[NODE]
    wait = _wait_seconds(request)
    lang = language(request)
    headers = language_headers(lang)
    content_type = request.content_type
    if content_type == "application/msgpack":
        envelope = await bodies.read(request, MAX_TX_BODY)
    elif content_type == "application/json":
        body = bodies.json_object(await bodies.read(request, MAX_TX_BODY), 1)
        if set(body) != {"envelope"}:
            raise Problem(400, "malformed", 'The body must be {"envelope": "<base64>"}.')
        envelope = bodies.b64(body["envelope"], "envelope")
    else:
        raise Problem(415, "unsupported_media_type",
                      "Send application/msgpack (the raw envelope) or application/json.")
    answer = (await _submit(node, [envelope], lang))[0]
    if answer.status == "pending":
        request.app[FEED].submitted([answer.tx_id])
    if answer.status in DOOR_CODES:
        sentence = describe(answer.status, {}, lang)
        if answer.reason:       # the door's own words, for the developer of the app
            sentence = f"{sentence[:-1]} ({answer.reason})."
        raise Problem(400, answer.status, sentence, headers=headers, tx_id=answer.tx_id)
    if answer.status == "overloaded":
        raise Problem(503, "overloaded", SENTENCES[lang]["busy"],
                      headers={"Retry-After": "1", **headers})
    if answer.status == OVER_SHARE:
        raise _over_share(answer, lang)
    if answer.status in ADMISSION_CODES:
        return web.json_response(refused(answer.tx_id, answer.status, lang), status=200,
                                 headers=headers)
    result = await node.wait(answer.tx_id, wait) if wait is not None else \
        node.result(answer.tx_id)
    if result is not None:
        body = decided(result, lang)
        # anyone may post a copy of someone else's envelope: what was known before this
        # request shows its events only to a reader who may see them, as GET /v1/tx/{id}
        if answer.status == "known" and \
                not _may_see_events(auth.optional(request), result["events"]):
            body["events"] = None
        return web.json_response(body, status=200, headers=headers)
    body = {"tx_id": answer.tx_id, "status": "pending"}
    if wait is not None:
        # not decided in time: say why when it is for want of a quorum (the same 202)
        body.update(await _no_quorum(node, answer.tx_id, lang))
    return web.json_response(body, status=202, headers=headers)


async def post_txs(request: web.Request) -> web.Response:
    node = request.app[NODE]
    query(request)
    lang = language(request)
    content_type = request.content_type
    if content_type == "application/msgpack":
        raw = bodies.msgpack_bins(await bodies.read(request, MAX_BATCH_BODY), MAX_BATCH)
    elif content_type == "application/json":
        body = bodies.json_object(await bodies.read(request, MAX_BATCH_BODY), MAX_BATCH)
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
        raw = [bodies.b64(e, f"envelopes[{i}]") for i, e in enumerate(raw)]
    items, retry_after = [], 0
    answers = await _submit(node, raw, lang)
    request.app[FEED].submitted([a.tx_id for a in answers if a.status == "pending"])
    for answer in answers:
        status = answer.status
        item = {"tx_id": answer.tx_id, "status": status, "code": None, "detail": ""}
        if status in DOOR_CODES:
            item.update(status="refused", code=status, detail=describe(status, {}, lang))
        elif status == "overloaded":
            retry_after = max(retry_after, 1)
            item.update(code="overloaded", detail=SENTENCES[lang]["busy"])
        elif status == OVER_SHARE:
            # sent again like an overloaded one, after Retry-After
            retry_after = max(retry_after, answer.retry_after_s, 1)
            item.update(status="overloaded", code=OVER_SHARE,
                        detail=SENTENCES[lang]["over_share_item"].format(
                            seconds=max(1, answer.retry_after_s)))
        elif status in ADMISSION_CODES:
            item.update(status="rejected", code=status, detail=describe(status, {}, lang))
        elif status == "known":
            result = node.result(answer.tx_id)
            if result is None:
                item.update(status="pending")
            else:
                full = decided(result, lang)
                item.update(status=full["status"], code=full["code"], detail=full["detail"])
        items.append(item)
    headers = language_headers(lang)
    if retry_after:
        headers["Retry-After"] = str(retry_after)
    return web.json_response({"items": items}, headers=headers)


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
    lang = language(request)
    headers = language_headers(lang)
    tx_id = request.match_info["tx_id"]
    if len(tx_id) != 64 or any(c not in "0123456789abcdef" for c in tx_id):
        raise Problem(404, "not_found", "A transaction id is 64 lowercase hex characters.")
    result = node.result(tx_id)
    if result is not None:
        answer = decided(result, lang)
        if not _may_see_events(reader, result["events"]):
            answer["events"] = None
        return web.json_response(answer, headers=headers)
    state = await node.unexecuted(tx_id)
    if state == "pending":
        return web.json_response({"tx_id": tx_id, "status": "pending"}, headers=headers)
    if state in ADMISSION_CODES:
        return web.json_response(refused(tx_id, state, lang), headers=headers)
    raise Problem(404, "not_found", "This node knows no transaction with that id.")
