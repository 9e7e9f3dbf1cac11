"""Canonical msgpack out, strict msgpack in.

Canonical encoding (docs/protocol.md, "Canonical msgpack"): maps sorted by key, recursively;
`bytes` as bin, `str` as str, integers in their shortest form, tuples as arrays. The same
value always gives the same bytes, which is what hashes and signatures need.

Strict decoding refuses anything a peer could use to make two validators disagree about
what a message says: duplicate map keys, floats, nil, ext types, trailing bytes, invalid
UTF-8, map keys that are not str/bytes/int, and anything larger than the stated limits.
Every refusal is a CodecError and nothing else, so callers catch one type.
"""
from __future__ import annotations

import msgpack

from protocol.limits import MAX_ENVELOPE_BYTES

# Defaults fit an envelope; callers with larger messages (blocks) pass their own.
DEFAULT_MAX_BYTES = MAX_ENVELOPE_BYTES
MAX_DEPTH = 32


class CodecError(ValueError):
    """The bytes are not a strict msgpack value, or a value cannot be encoded canonically."""


def _sort_key(key):
    # str keys sort by their UTF-8 bytes (= code point order), bytes by their bytes,
    # ints numerically; one map never mixes key types (refused below), so this is total.
    if isinstance(key, str):
        return key.encode("utf-8")
    return key


_SCALARS = frozenset((str, bytes, int, bool))


def _canonical(value, depth: int):
    # Scalars are handed to msgpack as they are (it refuses ints beyond 64 bits); only
    # containers recurse, which keeps the call count to the number of maps and lists.
    kind = type(value)
    if kind in _SCALARS:
        return value
    if depth >= MAX_DEPTH:
        raise CodecError("value nested too deeply")
    if kind is dict:
        if not value:
            return value
        key_types = {type(k) for k in value}
        if len(key_types) != 1 or not key_types <= {str, bytes, int}:
            raise CodecError("map keys must all be str, all bytes or all int")
        return {k: value[k] if type(value[k]) in _SCALARS else _canonical(value[k], depth + 1)
                for k in sorted(value, key=_sort_key)}
    if kind is list or kind is tuple:
        return [item if type(item) in _SCALARS else _canonical(item, depth + 1)
                for item in value]
    raise CodecError(f"cannot encode {kind.__name__} canonically")


def pack(value) -> bytes:
    """The canonical msgpack bytes of `value` (dict, list, tuple, str, bytes, int, bool)."""
    try:
        return msgpack.packb(_canonical(value, 0), use_bin_type=True)
    except (OverflowError, ValueError) as error:
        if isinstance(error, CodecError):
            raise
        raise CodecError(f"cannot encode: {error}") from None


def _pairs(pairs):
    result = {}
    for key, val in pairs:
        if type(key) not in (str, bytes, int):
            # also keeps True and 1 apart: a bool key would collide with an int key
            raise CodecError("map key must be str, bytes or int")
        if key in result:
            raise CodecError("duplicate map key")
        result[key] = val
    return result


def _ext(code, data):
    raise CodecError("ext types are not allowed")


def _check(value, depth: int) -> None:
    # msgpack hands floats, nil and timestamps through; the walk refuses them. Only
    # containers recurse.
    kind = type(value)
    if kind in _SCALARS:
        return
    if kind is dict:
        items = value.values()
    elif kind is list:
        items = value
    else:
        raise CodecError(f"{kind.__name__} is not allowed")
    if depth >= MAX_DEPTH:
        raise CodecError("value nested too deeply")
    for item in items:
        if type(item) not in _SCALARS:
            _check(item, depth + 1)


def unpack(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES):
    """Decode exactly one strict msgpack value from `data`, or raise CodecError."""
    if type(data) is not bytes:
        raise CodecError("expected bytes")
    if len(data) > max_bytes:
        raise CodecError(f"message larger than {max_bytes} bytes")
    try:
        value = msgpack.unpackb(
            data, raw=False, use_list=True, strict_map_key=False,
            object_pairs_hook=_pairs, ext_hook=_ext, timestamp=0,
            max_str_len=max_bytes, max_bin_len=max_bytes,
            max_array_len=max_bytes, max_map_len=max_bytes, max_ext_len=0)
    except CodecError:
        raise
    except Exception as error:  # ExtraData, OutOfData, FormatError, UnicodeDecodeError, ...
        raise CodecError(f"not strict msgpack: {type(error).__name__}") from None
    _check(value, 0)
    return value


def jsonable(value):
    """The JSON form of a ledger value (docs/api.md, "Conventions"): bytes (keys, hashes, proofs) as
    lowercase hex, maps and lists walked, everything else as it is. The gateway answers in
    it, and the audit compares a gateway's results in it."""
    kind = type(value)
    if kind is bytes:
        return value.hex()
    if kind is dict:
        return {k: jsonable(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [jsonable(v) for v in value]
    return value
