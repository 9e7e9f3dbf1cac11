"""The canonical bytes of a result: what the results root is computed over.

A result is the msgpack map {code, events, info, tx_id}; every map, at every depth, has
its keys in ascending order, so one result has exactly one encoding. Keys, hashes and
proofs in events are bin, amounts int, text str; tx_id is the lowercase hex string.
"""
from __future__ import annotations

from .api import Result
from .state import pack


def encode_result(result: Result) -> bytes:
    return pack({"tx_id": result.tx_id, "code": result.code, "info": result.info,
                 "events": result.events})
