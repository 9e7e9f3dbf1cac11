"""The JSON form of ledger values: bytes (keys, hashes, proofs) as lowercase hex."""
from __future__ import annotations


def jsonable(value):
    kind = type(value)
    if kind is bytes:
        return value.hex()
    if kind is dict:
        return {k: jsonable(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [jsonable(v) for v in value]
    return value
