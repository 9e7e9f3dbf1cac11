"""The OpenAPI 3.0 document of the gateway (GET /v1/openapi.json).

Written by hand next to the handlers and kept true by tests: every route of the app is
here and nothing else, the document passes the OpenAPI 3.0 meta-schema, and a
property-based fuzzer (schemathesis) checks that the answers match it.
"""
from __future__ import annotations

import copy
from functools import lru_cache

from gateway.chainlog import EVENT_KINDS
from gateway.openapi_schemas import ANY_MAP, HEX64, ID, SCHEMAS, TEXT, ref

PROBLEM_TEXT = {
    400: "Bad input (problem code says which)", 401: "No, or a bad, read token",
    403: "The token may not read this", 404: "Nothing there",
    405: "Method not allowed", 408: "The body did not arrive in time",
    413: "Body over the limit", 415: "Unsupported media type",
    429: "Too many: live streams for this key or address (too_many_streams), or "
         "envelopes of this signer (over_share); see Retry-After",
    503: "Overloaded; see Retry-After"}


def _problem(status: int) -> dict:
    return {"description": PROBLEM_TEXT[status],
            "content": {"application/problem+json": {"schema": ref("Problem")}}}


def _json(schema_name: str, description: str = "OK") -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": ref(schema_name)}}}


def q(name: str, schema: dict, description: str, required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "schema": schema,
            "description": description}


def p(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema,
            "description": description}


AUTH_Q = q("auth", TEXT, "A read token, for clients that cannot set headers")
LIMIT = q("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
          "Items per page")
DEC_CURSOR = q("cursor", {"type": "string", "pattern": "^[0-9]{1,19}$"},
               "The `next` of the previous page")
KEY_CURSOR = q("cursor", HEX64, "The `next` of the previous page")
ID_CURSOR = q("cursor", ID, "The `next` of the previous page")
PROPOSAL_CURSOR = q("cursor", {"type": "string", "pattern": "^[0-9]{1,19}[.][0-9a-f]{64}$"},
                    "The `next` of the previous page")
KEY_PATH = p("key", HEX64, "The account's public key")
EVENT_FILTERS = [q("after", {"type": "integer", "minimum": 0, "maximum": 10**18},
                   "Events after this position"),
                 q("kind", {"type": "string", "enum": list(EVENT_KINDS)},
                   "Only events of this kind"),
                 q("account", HEX64, "Only events that name this account")]
TOKEN = [{"readToken": []}]
PAGE = {"description": "The file, with a Content-Security-Policy",
        "content": {t: {"schema": TEXT} for t in (
            "text/html", "text/javascript", "text/css", "image/svg+xml")}}
OPTIONAL_TOKEN = [{}, {"readToken": []}]


def op(summary: str, ok: dict, errors: tuple[int, ...], parameters: list | None = None,
       security: list | None = None, **extra) -> dict:
    responses = {str(s): r for s, r in ok.items()}
    responses.update({str(s): _problem(s) for s in (400, 405, *errors)})
    out = {"summary": summary, "parameters": parameters or [], "responses": responses,
           "security": security if security is not None else []}
    out.update(extra)
    return out


def paths() -> dict:
    read = (401, 403)
    tx_body = {"required": True, "content": {
        "application/msgpack": {"schema": {"type": "string", "format": "binary"}},
        "application/json": {"schema": ref("TxEnvelope")}}}
    return {
        "/v1/status": {"get": op("This validator and the chain's head",
                                 {200: _json("Status")}, ())},
        "/v1/genesis": {"get": op("The chain's genesis, its hash and its canonical bytes",
                                  {200: _json("Genesis")}, ())},
        "/v1/tx": {"post": op(
            "Submit one signed envelope", {200: _json("TxDecided", "Decided (with wait)"),
                                           202: _json("TxPending", "Accepted, pending")},
            (408, 413, 415, 429, 503),
            [q("wait", {"type": "string", "enum": ["true", "false"]},
               "Wait until it is decided"),
             q("timeout", {"type": "number", "minimum": 0, "maximum": 60},
               "Seconds to wait, default 10")], requestBody=tx_body)},
        "/v1/txs": {"post": op(
            "Submit up to 1,000 envelopes", {200: _json("TxBatchAnswer")}, (408, 413, 415),
            requestBody={"required": True, "content": {
                "application/json": {"schema": ref("TxBatch")},
                "application/msgpack": {"schema": {"type": "string", "format": "binary"}}}})},
        "/v1/tx/{tx_id}": {"get": op(
            "A transaction's status and result (events with a token)",
            {200: {"description": "Decided or pending", "content": {"application/json": {
                "schema": {"oneOf": [ref("TxDecided"), ref("TxPending")]}}}}},
            (401, 404), [p("tx_id", HEX64, "The transaction id"), AUTH_Q],
            OPTIONAL_TOKEN)},
        "/v1/accounts/{key}": {"get": op(
            "An account, its balance and what is left of its caps", {200: _json("Account")},
            (*read, 404), [KEY_PATH, AUTH_Q], TOKEN)},
        "/v1/accounts/{key}/history": {"get": op(
            "The account's events, oldest first", {200: _json("EventPage")}, (*read, 404),
            [KEY_PATH, LIMIT, DEC_CURSOR, AUTH_Q], TOKEN)},
        "/v1/accounts/{key}/statement": {"get": op(
            "What the account earned per month of a year", {200: _json("Statement")},
            (*read, 404),
            [KEY_PATH, q("year", {"type": "integer", "minimum": 2000, "maximum": 9999},
                         "The calendar year", required=True), AUTH_Q], TOKEN)},
        "/v1/tasks": {"get": op(
            "Tasks (claims only with a token)", {200: _json("TaskPage")}, (401,),
            [q("status", {"type": "string", "enum": ["open", "closed", "cancelled"]},
               "Status at the head block's time"),
             q("area", ID, "Only tasks in this area"), LIMIT, ID_CURSOR, AUTH_Q],
            OPTIONAL_TOKEN)},
        "/v1/tasks/{task}": {"get": op(
            "One task (its claims with a token)", {200: _json("Task")}, (401, 404),
            [p("task", ID, "The task id"), AUTH_Q], OPTIONAL_TOKEN)},
        "/v1/merchants": {"get": op("Active merchants", {200: _json("MerchantPage")}, (),
                                    [LIMIT, KEY_CURSOR])},
        "/v1/payouts": {"get": op(
            "Payouts of redeemed coins", {200: _json("PayoutPage")}, read,
            [q("status", {"type": "string", "enum": ["pending", "paid"]}, "Only these"),
             LIMIT, KEY_CURSOR, AUTH_Q], TOKEN)},
        "/v1/constitution": {"get": op(
            "The organisations with their active stewards and validators, the thresholds "
            "and the recovery delay", {200: _json("Constitution")}, ())},
        "/v1/proposals": {"get": op(
            "Governance proposals by height, then id (a recovery's keys with a token)",
            {200: _json("ProposalPage")}, (401,),
            [q("status", {"type": "string",
                          "enum": ["open", "enacted", "failed", "withdrawn", "expired"]},
               "Status at the head block's time"), LIMIT, PROPOSAL_CURSOR, AUTH_Q],
            OPTIONAL_TOKEN)},
        "/v1/proposals/{id}": {"get": op(
            "One proposal with its approvals", {200: _json("ProposalDetail")}, (401, 404),
            [p("id", HEX64, "The proposal's id: its gov.propose transaction's id"), AUTH_Q],
            OPTIONAL_TOKEN)},
        "/v1/blocks": {"get": op(
            "Blocks from a height, with certificates", {200: _json("BlockPage")}, read,
            [q("from", {"type": "integer", "minimum": 0, "maximum": 10**18},
               "First height, default 1"), LIMIT, DEC_CURSOR, AUTH_Q], TOKEN)},
        "/v1/blocks/{height}": {"get": op(
            "One block", {200: _json("Block")}, (*read, 404),
            [p("height", {"type": "integer", "minimum": 1, "maximum": 10**18},
               "The height"), AUTH_Q], TOKEN)},
        "/v1/events": {"get": op(
            "The event log after a position", {200: _json("EventPage")}, read,
            [*EVENT_FILTERS, LIMIT, DEC_CURSOR, AUTH_Q], TOKEN)},
        "/v1/events/stream": {"get": op(
            "The event log as Server-Sent Events, then live; resumes from Last-Event-ID",
            {200: {"description": "An endless stream; each event's id is its position",
                   "content": {"text/event-stream": {"schema": TEXT}}}}, (*read, 429, 503),
            [*EVENT_FILTERS, AUTH_Q,
             {"name": "Last-Event-ID", "in": "header", "required": False,
              "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
              "description": "Resume after this position"}], TOKEN)},
        "/v1/stats": {"get": op("Totals and per-area, per-month cells",
                                {200: _json("Stats")}, ())},
        "/v1/openapi.json": {"get": op(
            "This document", {200: {"description": "OpenAPI 3.0",
                                    "content": {"application/json": {"schema": ANY_MAP}}}},
            ())},
        "/v1/policies/{year}": {"get": op(
            "The cap policy in force in a local year: its own or an earlier year's",
            {200: _json("PolicyInForce")}, (404,),
            [p("year", {"type": "integer", "minimum": 2000, "maximum": 9999},
               "The calendar year (Europe/Amsterdam)")])},
        "/": {"get": op(
            "The operator dashboard (HTML)", {200: PAGE}, (),
            [q("peers", TEXT, "Other gateways' origins to watch, comma-separated")])},
        "/web/{name}": {"get": op(
            "A static file of the dashboard", {200: PAGE}, (404,),
            [p("name", TEXT, "The file's name")])},
        "/app/": {"get": op("The reference wallet (HTML)", {200: PAGE}, ())},
        "/app/{name}": {"get": op(
            "A static file of the wallet", {200: PAGE}, (404,),
            [p("name", TEXT, "The file's name (vendor/NAME for a vendored library)")])},
        "/metrics": {"get": op(
            "Prometheus metrics", {200: {"description": "Prometheus text format",
                                         "content": {"text/plain": {"schema": TEXT}}}},
            ())},
    }


@lru_cache(maxsize=1)
def _document() -> dict:
    return {
        "openapi": "3.0.3",
        "info": {"title": "Stadsmunt gateway", "version": "1",
                 "description": "The HTTP API every validator serves to apps. Amounts are "
                                "cents; keys, hashes and ids lowercase hex; times ms since "
                                "the Unix epoch. See docs/api.md."},
        "paths": paths(),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"readToken": {
                "type": "apiKey", "in": "header", "name": "Authorization",
                "description": "Stadsmunt KEYHEX.MS.SIGHEX (or ?auth=KEYHEX.MS.SIGHEX)"}}},
    }


def document() -> dict:
    return copy.deepcopy(_document())
