"""The canonical bytes of a result: what the results root is computed over.

A result is the msgpack map {code, events, info, tx_id}; every map, at every depth, has
its keys in ascending order, so one result has exactly one encoding. Keys, hashes and
proofs in events are bin, amounts int, text str; tx_id is the lowercase hex string.

Besides encoding, this module owns what others read from the bytes without decoding them,
on paths that run per transaction: whether a result is ok (the gateways' metrics), and the
compact form the store keeps (the tx id as 32 raw bytes in front instead of its last
entry: 41 bytes less per result).
"""
from __future__ import annotations

from .api import Result
from .state import canonical, pack_ordered, unpack

# An encoded result starts with the header of a 4-entry map, then its first key "code";
# it ends with the key "tx_id" and the header of a 64-character str, then the id's hex.
_HEAD = b"\x84"
_TAIL = b"\xa5tx_id\xd9\x40"
_OK = pack_ordered({"code": "ok"})[1:]       # what follows _HEAD in an ok result


def encode_result(result: Result) -> bytes:
    # the top-level keys are written in their canonical order already (code < events <
    # info < tx_id); only the events and info are sorted
    return pack_ordered({"code": result.code, "events": canonical(result.events),
                         "info": canonical(result.info), "tx_id": result.tx_id})


def decode_result(encoded: bytes) -> dict:
    """The map {code, events, info, tx_id} of an encoded result."""
    return unpack(encoded)


def is_ok(encoded: bytes) -> bool:
    """Whether an encoded result's code is "ok", read from its first bytes."""
    return encoded.startswith(_OK, 1)


def ok_count(encoded_results) -> int:
    """How many of these encoded results are ok."""
    return sum(1 for raw in encoded_results if raw.startswith(_OK, 1))


def compact_result(tx_id: str, encoded: bytes) -> bytes:
    """The compact form of the encoded result of transaction `tx_id` (hex): the raw id,
    then the result without its map header and its tx_id entry."""
    tail = _TAIL + tx_id.encode("ascii")
    assert encoded[:1] == _HEAD and encoded.endswith(tail), "not an encoded result"
    return bytes.fromhex(tx_id) + encoded[1:-len(tail)]


def expand_result(compact: bytes) -> bytes:
    """The encoded result (the bytes the results root is over) of its compact form."""
    return _HEAD + compact[32:] + _TAIL + compact[:32].hex().encode("ascii")


def compact_tx_id(compact: bytes) -> bytes:
    """The raw 32-byte tx id of a compact result."""
    return compact[:32]
