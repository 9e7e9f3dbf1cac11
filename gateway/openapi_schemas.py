"""The schemas of the OpenAPI document (gateway/openapi.py): the shapes the gateway
answers, written by hand next to the handlers and kept true by the fuzzing test."""
from __future__ import annotations

from protocol.limits import MAX_BATCH

HEX64 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
ID = {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}
INT = {"type": "integer", "minimum": 0}
CENTS = {"type": "integer", "minimum": 0}
TEXT = {"type": "string"}
ANY_MAP = {"type": "object", "additionalProperties": True}
CURSOR_NEXT = {"type": "string", "nullable": True}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


QUORUM = {"type": "object", "required": ["needed", "linked", "ok", "missing"],
          "properties": {"needed": {"type": "integer"}, "linked": {"type": "integer"},
                         "ok": {"type": "boolean"},
                         "missing": {"type": "array", "items": {"type": "string"}}},
          "additionalProperties": False}


def obj(required: dict, optional: dict | None = None, extra: bool = False) -> dict:
    return {"type": "object", "required": sorted(required),
            "properties": {**required, **(optional or {})}, "additionalProperties": extra}


def nullable(schema: dict) -> dict:
    return {**schema, "nullable": True}


def paged(item: str) -> dict:
    return obj({"items": {"type": "array", "items": ref(item)}, "next": CURSOR_NEXT})


PERIOD = obj({"period": TEXT, "earned": CENTS, "reserved": CENTS,
              "cap": nullable(CENTS), "remaining": nullable(CENTS)})
SIGNATURES = {"type": "array", "items": obj({"validator": INT, "signature": TEXT})}
# class -> count of distinct organisations (the constitution's classes)
THRESHOLDS = {"type": "object", "additionalProperties": INT}
PROPOSAL_STATUS = {"type": "string",
                   "enum": ["open", "enacted", "failed", "withdrawn", "expired"]}
# args are the action's, bytes as hex; a recovery's keys are null unless the token may
# see them
PROPOSAL = {"id": HEX64, "status": PROPOSAL_STATUS, "action": TEXT, "args": ANY_MAP,
            "organisation": ID, "proposer": HEX64, "expires": INT, "threshold": INT,
            "approvals": INT, "height": INT}

SCHEMAS = {
    "Problem": obj({"type": TEXT, "title": TEXT, "status": {"type": "integer"},
                    "detail": TEXT, "code": TEXT}, extra=True),
    "Status": obj({"chain": TEXT, "genesis": HEX64, "node": TEXT, "height": INT,
                   "view": INT, "primary": TEXT,
                   "validators": {"type": "array", "items": obj(
                       {"name": TEXT, "key": HEX64, "connected": {"type": "boolean"}})},
                   "time": nullable(INT), "warnings": {"type": "array", "items": TEXT}},
                  {"quorum": QUORUM,
                   "rules": obj({"version": INT, "since": INT,
                                 "pending": nullable(obj({"version": INT, "height": INT})),
                                 "runs": {"type": "array", "items": INT}}),
                   "validator_set": obj({
                       "since": INT, "validators": {"type": "array", "items": TEXT},
                       "member": {"type": "boolean"},
                       "pending": nullable(obj({
                           "from": INT,
                           "validators": {"type": "array", "items": TEXT}}))})},
                  extra=True),
    "Genesis": obj({"format": INT, "chain": TEXT, "city": TEXT,
                    "coin": obj({"name": TEXT, "symbol": TEXT}),
                    "organisations": {"type": "array", "items": obj(
                        {"id": ID, "stewards": {"type": "array", "items": HEX64}})},
                    "validators": {"type": "array", "items": obj(
                        {"name": TEXT, "key": HEX64, "organisation": ID})},
                    "admins": {"type": "array", "items": HEX64},
                    "constitution": obj({"thresholds": THRESHOLDS,
                                         "recovery_delay_ms": INT}),
                    "rules_version": INT,
                    "policies": {"type": "array", "items": ANY_MAP},
                    "checkpoint_interval": INT, "hash": HEX64,
                    "canonical": {"type": "string", "format": "byte"}}),
    # a wait that ran out while the validator had no quorum also says so (docs/api.md)
    "TxPending": obj({"tx_id": HEX64, "status": {"type": "string", "enum": ["pending"]}},
                     {"detail": TEXT, "quorum": QUORUM}),
    "TxDecided": obj({"tx_id": HEX64,
                      "status": {"type": "string", "enum": ["committed", "rejected"]},
                      # null: refused before ordering (the signer is not an active member)
                      "height": nullable(INT), "code": TEXT, "info": ANY_MAP, "detail": TEXT,
                      "events": nullable({"type": "array", "items": ANY_MAP})}),
    "TxEnvelope": obj({"envelope": {"type": "string", "format": "byte"}}),
    "TxBatch": obj({"envelopes": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH,
                                  "items": {"type": "string", "format": "byte"}}}),
    "TxBatchAnswer": obj({"items": {"type": "array", "items": obj(
        {"tx_id": nullable(HEX64),
         "status": {"type": "string",
                    "enum": ["pending", "committed", "rejected", "refused", "overloaded"]},
         "code": nullable(TEXT), "detail": TEXT})}}),
    "Account": obj({"key": HEX64, "role": TEXT, "active": {"type": "boolean"},
                    "balance": CENTS,
                    "earnings": nullable(obj({"month": PERIOD, "year": PERIOD})),
                    "frozen": {"type": "boolean"},
                    "recovery": nullable(obj({"new": HEX64, "effective": INT}))},
                   {"age_band": TEXT, "area": TEXT, "name": TEXT, "organisation": ID,
                    "recovered_to": HEX64}),
    "Statement": obj({"key": HEX64, "role": TEXT, "year": INT, "total": CENTS,
                      "months": {"type": "array", "minItems": 12, "maxItems": 12,
                                 "items": obj({"period": TEXT, "earned": CENTS})}}),
    "Event": obj({"position": INT, "height": INT, "tx_id": HEX64, "kind": TEXT},
                 extra=True),
    "Claim": obj({"citizen": HEX64, "state": TEXT}, {"proof": HEX64}),
    "Task": obj({"task": ID, "title": TEXT, "area": ID, "domain": ID, "reward": CENTS,
                 "minutes": INT, "slots": INT, "deadline": INT, "taken": INT,
                 "status": {"type": "string", "enum": ["open", "closed", "cancelled"]}},
                {"claims": {"type": "array", "items": ref("Claim")}}),
    "Merchant": obj({"key": HEX64, "name": nullable(TEXT)}),
    "Payout": obj({"payout": HEX64, "merchant": HEX64, "amount": CENTS,
                   "status": {"type": "string", "enum": ["pending", "paid"]},
                   "reference": nullable(TEXT)}),
    "Block": obj({"height": INT, "hash": HEX64, "prev_hash": HEX64, "time": INT,
                  "view": INT, "batch_digest": HEX64, "state_root": HEX64,
                  "results_root": HEX64,
                  "txs": {"type": "array", "items": {"type": "string", "format": "byte"}},
                  "results": {"type": "array", "items": obj(
                      {"tx_id": HEX64, "code": TEXT, "info": ANY_MAP,
                       "events": {"type": "array", "items": ANY_MAP}})},
                  "certificate": obj({"view": INT, "signatures": SIGNATURES}),
                  "checkpoint": nullable(obj({"block_hash": HEX64,
                                              "signatures": SIGNATURES}))}),
    "PolicyInForce": obj({"year": INT, "own": {"type": "boolean"}, "policy": obj(
        {"year": INT, "hourly_cap_21plus": CENTS, "hourly_cap_under21": CENTS,
         "monthly_cap": CENTS, "yearly_cap": CENTS}, {"programme_yearly_cap": CENTS})}),
    "Constitution": obj({
        "organisations": {"type": "array", "items": obj(
            {"id": ID, "stewards": {"type": "array", "items": HEX64},
             "validators": {"type": "array", "items": TEXT}})},
        "thresholds": THRESHOLDS, "recovery_delay_ms": INT}),
    "Proposal": obj(PROPOSAL, {"reason": TEXT}),
    "ProposalDetail": obj(dict(PROPOSAL, **{
        "approved_by": {"type": "array", "items": obj(
            {"organisation": ID, "key": HEX64, "height": INT,
             "counts": {"type": "boolean"}})},
        "closed_height": nullable(INT)}), {"reason": TEXT, "code": TEXT, "info": ANY_MAP}),
    "Stats": obj({"minted": CENTS, "redeemed": CENTS, "circulating": CENTS,
                  "members": {"type": "object", "additionalProperties": INT},
                  "tasks": obj({"open": INT, "closed": INT, "cancelled": INT}),
                  "position": INT, "min_cell": INT, "open_month": TEXT,
                  "cells": {"type": "array", "items": obj(
                      {"area": TEXT, "month": TEXT, "suppressed": {"type": "boolean"},
                       "citizens": nullable(INT), "minted": nullable(CENTS)})}}),
}
for _name in ("Event", "Task", "Merchant", "Payout", "Block", "Proposal"):
    SCHEMAS[f"{_name}Page"] = paged(_name)
