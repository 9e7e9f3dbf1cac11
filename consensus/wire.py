"""Consensus messages to bytes and back: a msgpack array [type code, fields...], nested
records as arrays. Decoding is strict: any wrong type, wrong length, missing or extra
field, trailing byte or oversize input is a WireError and never another exception."""
from __future__ import annotations

import msgpack

from consensus.messages import (BatchPayloads, Checkpoint, Commit, FetchBatch, Forward,
                                NewView, PreparedProof, PrePrepare, Prepare, Reproposal,
                                StableProof, Status, ViewChange)

MAX_U64 = 2 ** 64 - 1
MAX_SIGNATURE_BYTES = 128
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_ITEMS = 100_000


class WireError(ValueError):
    pass


# ---- encoding -------------------------------------------------------------------------

def _sigs(signatures) -> list:
    return [[index, signature] for index, signature in signatures]


def _proof(p: PreparedProof) -> list:
    return [p.view, p.height, p.time_ms, p.digest, p.primary_signature, _sigs(p.prepares)]


def _vc(vc: ViewChange) -> list:
    return [vc.replica, vc.new_view, vc.stable_height, vc.stable_hash, vc.stable_set_hash,
            _sigs(vc.stable_certificate), [_proof(p) for p in vc.prepared], vc.signature]


def _pp(pp: PrePrepare) -> list:
    return [pp.view, pp.height, pp.time_ms, pp.digest, list(pp.payloads), pp.signature]


def _rp(rp: Reproposal) -> list:
    return [rp.view, rp.height, rp.time_ms, rp.digest, rp.signature]


def encode(message) -> bytes:
    kind = type(message)
    if kind is PrePrepare:
        body = [1, *_pp(message)]
    elif kind is Prepare:
        body = [2, message.view, message.height, message.digest, message.signature]
    elif kind is Commit:
        body = [3, message.view, message.height, message.digest, message.signature]
    elif kind is Checkpoint:
        body = [4, message.height, message.block_hash, message.set_hash, message.signature]
    elif kind is Forward:
        body = [5, list(message.payloads)]
    elif kind is ViewChange:
        body = [6, *_vc(message)]
    elif kind is NewView:
        body = [7, message.view, [_vc(vc) for vc in message.view_changes],
                [_rp(rp) for rp in message.preprepares]]
    elif kind is Status:
        body = [8, message.view, message.active, message.height, message.stable_height]
    elif kind is StableProof:
        body = [9, message.height, message.block_hash, message.set_hash,
                _sigs(message.certificate)]
    elif kind is FetchBatch:
        body = [10, message.height, message.digest]
    elif kind is BatchPayloads:
        body = [11, message.height, message.digest, list(message.payloads)]
    else:
        raise TypeError(f"not a consensus message: {kind.__name__}")
    return msgpack.packb(body, use_bin_type=True)


# ---- decoding -------------------------------------------------------------------------

def _u64(value) -> int:
    if type(value) is not int or not 0 <= value <= MAX_U64:
        raise WireError("expected an unsigned 64-bit integer")
    return value


def _hash(value) -> bytes:
    if type(value) is not bytes or len(value) != 32:
        raise WireError("expected 32 bytes")
    return value


def _sig(value) -> bytes:
    if type(value) is not bytes or not 1 <= len(value) <= MAX_SIGNATURE_BYTES:
        raise WireError("expected a signature")
    return value


def _list(value, length: int | None = None) -> list:
    if type(value) is not list or len(value) > MAX_ITEMS:
        raise WireError("expected an array")
    if length is not None and len(value) != length:
        raise WireError(f"expected {length} fields")
    return value


def _payloads(value) -> tuple[bytes, ...]:
    items = _list(value)
    for item in items:
        if type(item) is not bytes or not 1 <= len(item) <= MAX_PAYLOAD_BYTES:
            raise WireError("expected a payload")
    return tuple(items)


def _signatures(value) -> tuple[tuple[int, bytes], ...]:
    out = []
    for item in _list(value):
        index, signature = _list(item, 2)
        index = _u64(index)
        out.append((index, _sig(signature)))
    return tuple(out)


def _decode_proof(value) -> PreparedProof:
    view, height, time_ms, digest, signature, prepares = _list(value, 6)
    return PreparedProof(_u64(view), _u64(height), _u64(time_ms), _hash(digest),
                         _sig(signature), _signatures(prepares))


def _decode_vc(value) -> ViewChange:
    fields = _list(value, 8)
    replica, view, height, block_hash, set_hash, cert, prepared, signature = fields
    return ViewChange(_u64(replica), _u64(view), _u64(height), _hash(block_hash),
                      _hash(set_hash), _signatures(cert),
                      tuple(_decode_proof(p) for p in _list(prepared)), _sig(signature))


def _decode_pp(fields) -> PrePrepare:
    view, height, time_ms, digest, payloads, signature = _list(fields, 6)
    return PrePrepare(_u64(view), _u64(height), _u64(time_ms), _hash(digest),
                      _payloads(payloads), _sig(signature))


def _decode_rp(fields) -> Reproposal:
    view, height, time_ms, digest, signature = _list(fields, 5)
    return Reproposal(_u64(view), _u64(height), _u64(time_ms), _hash(digest), _sig(signature))


def _decode_body(body: list):
    code, rest = body[0], body[1:]
    if code == 1 and type(code) is int:
        return _decode_pp(rest)
    if code in (2, 3) and type(code) is int:
        view, height, digest, signature = _list(rest, 4)
        kind = Prepare if code == 2 else Commit
        return kind(_u64(view), _u64(height), _hash(digest), _sig(signature))
    if code == 4 and type(code) is int:
        height, block_hash, set_hash, signature = _list(rest, 4)
        return Checkpoint(_u64(height), _hash(block_hash), _hash(set_hash), _sig(signature))
    if code == 5 and type(code) is int:
        (payloads,) = _list(rest, 1)
        return Forward(_payloads(payloads))
    if code == 6 and type(code) is int:
        return _decode_vc(rest)
    if code == 7 and type(code) is int:
        view, vcs, pps = _list(rest, 3)
        return NewView(_u64(view), tuple(_decode_vc(vc) for vc in _list(vcs)),
                       tuple(_decode_rp(rp) for rp in _list(pps)))
    if code == 8 and type(code) is int:
        view, active, height, stable = _list(rest, 4)
        if type(active) is not bool:
            raise WireError("expected a boolean")
        return Status(_u64(view), active, _u64(height), _u64(stable))
    if code == 9 and type(code) is int:
        height, block_hash, set_hash, certificate = _list(rest, 4)
        return StableProof(_u64(height), _hash(block_hash), _hash(set_hash),
                           _signatures(certificate))
    if code == 10 and type(code) is int:
        height, digest = _list(rest, 2)
        return FetchBatch(_u64(height), _hash(digest))
    if code == 11 and type(code) is int:
        height, digest, payloads = _list(rest, 3)
        return BatchPayloads(_u64(height), _hash(digest), _payloads(payloads))
    raise WireError("unknown message type")


def decode(data: bytes, max_bytes: int):
    if type(data) is not bytes:
        raise WireError("expected bytes")
    if len(data) > max_bytes:
        raise WireError("message too large")
    try:
        body = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True,
                               max_bin_len=max_bytes, max_str_len=0, max_array_len=MAX_ITEMS,
                               max_map_len=0, max_ext_len=0)
    except Exception as error:  # msgpack raises many kinds; all mean "not our bytes"
        raise WireError(f"undecodable: {type(error).__name__}") from None
    if type(body) is not list or not body:
        raise WireError("expected a non-empty array")
    return _decode_body(body)


def encode_proof(proof: PreparedProof) -> bytes:
    return msgpack.packb(_proof(proof), use_bin_type=True)


def decode_proof(data: bytes) -> PreparedProof:
    try:
        value = msgpack.unpackb(data, raw=False, use_list=True)
    except Exception as error:  # as in decode: every failure is a WireError
        raise WireError(f"undecodable: {type(error).__name__}") from None
    return _decode_proof(value)
