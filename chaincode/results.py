"""The canonical bytes of a result: what the results root is computed over.

A result is the msgpack map {code, events, info, tx_id}; every map, at every depth, has
its keys in ascending order, so one result has exactly one encoding. Keys, hashes and
proofs in events are bin, amounts int, text str; tx_id is the lowercase hex string.
"""
from __future__ import annotations

from .api import Result
from .state import canonical, pack_ordered


def encode_result(result: Result) -> bytes:
    # the top-level keys are written in their canonical order already (code < events <
    # info < tx_id); only the events and info are sorted
    return pack_ordered({"code": result.code, "events": canonical(result.events),
                         "info": canonical(result.info), "tx_id": result.tx_id})
