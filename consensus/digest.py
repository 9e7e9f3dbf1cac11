"""The bytes that validators sign, exactly as docs/protocol.md describes them.

Everything here is a pure function of its arguments. Integers are unsigned big-endian
of fixed width. Every byte string starts, after its tag, with the network's signing
domain: the chain id prefixed with its length in one byte (it is at most 32 ASCII
characters), then the 32-byte genesis hash. So no two different inputs give the same
byte string, and a signature made in one network is none in another, even one whose
genesis reuses the same chain id and validator keys.
"""
from __future__ import annotations

import hashlib
import struct

BATCH_TAG = b"stadsmunt/batch/v2"
COMMIT_TAG = b"stadsmunt/commit/v2"
CHECKPOINT_TAG = b"stadsmunt/checkpoint/v3"
VALIDATORS_TAG = b"stadsmunt/validators/v1"

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")


def chain_bytes(chain: str) -> bytes:
    raw = chain.encode("ascii")
    if not 1 <= len(raw) <= 32:
        raise ValueError("chain id must be 1 to 32 characters")
    return bytes([len(raw)]) + raw


def signing_domain(chain: str, genesis_hash: bytes) -> bytes:
    """u8 length | chain id | 32-byte genesis hash."""
    if type(genesis_hash) is not bytes or len(genesis_hash) != 32:
        raise ValueError("a genesis hash is 32 bytes")
    return chain_bytes(chain) + genesis_hash


def envelope_hash(envelope: bytes) -> bytes:
    """SHA-256 of one whole envelope, signature included."""
    return hashlib.sha256(envelope).digest()


def batch_digest(domain: bytes, height: int, time_ms: int, envelope_hashes: list[bytes]) -> bytes:
    """SHA-256(tag | domain | u64 height | u64 time_ms | u32 count | each envelope's hash).

    Takes the envelopes' hashes, not the envelopes, so that a hash computed once at the
    door is never computed again.
    """
    parts = [BATCH_TAG, domain, _U64.pack(height), _U64.pack(time_ms),
             _U32.pack(len(envelope_hashes))]
    parts.extend(envelope_hashes)
    return hashlib.sha256(b"".join(parts)).digest()


def commit_bytes(domain: bytes, view: int, height: int, digest: bytes) -> bytes:
    """tag | domain | u64 view | u64 height | 32-byte batch digest: what a commit signs."""
    assert len(digest) == 32
    return COMMIT_TAG + domain + _U64.pack(view) + _U64.pack(height) + digest


def checkpoint_bytes(domain: bytes, height: int, block_hash: bytes, set_hash: bytes) -> bytes:
    """tag | domain | u64 height | 32-byte block hash | 32-byte validator set hash: what a
    checkpoint signs. The set hash is that of the newest validator set scheduled once
    the block at `height` has run (validator_set_hash): the one in force after it, or
    the pending one that takes over later, so that checkpoint certificates alone lead
    from genesis's set through every change."""
    assert len(block_hash) == 32 and len(set_hash) == 32
    return CHECKPOINT_TAG + domain + _U64.pack(height) + block_hash + set_hash


def validator_set_hash(domain: bytes, first_height: int, keys: tuple[bytes, ...]) -> bytes:
    """SHA-256(tag | domain | u64 first height | u32 count | each 32-byte key, in order):
    a validator set and the first height it orders (1 for genesis's set). The order is
    the replicas' numbering: certificates name signers by their place in it."""
    assert all(len(k) == 32 for k in keys)
    return hashlib.sha256(b"".join([VALIDATORS_TAG, domain, _U64.pack(first_height),
                                    _U32.pack(len(keys)), *keys])).digest()


def quorum(n: int) -> int:
    """ceil((n + f + 1) / 2) with f = floor((n - 1) / 3); 2f + 1 when n = 3f + 1."""
    if n < 1:
        raise ValueError("a network has at least one validator")
    f = (n - 1) // 3
    return (n + f + 2) // 2


def max_faulty(n: int) -> int:
    return (n - 1) // 3


PREPREPARE_TAG = b"stadsmunt/preprepare/v2"
PREPARE_TAG = b"stadsmunt/prepare/v2"
VIEW_CHANGE_TAG = b"stadsmunt/view-change/v3"
ZERO_HASH = bytes(32)


def preprepare_bytes(domain: bytes, view: int, height: int, digest: bytes) -> bytes:
    """tag | domain | u64 view | u64 height | 32-byte batch digest: what a primary signs."""
    assert len(digest) == 32
    return PREPREPARE_TAG + domain + _U64.pack(view) + _U64.pack(height) + digest


def prepare_bytes(domain: bytes, view: int, height: int, digest: bytes) -> bytes:
    """tag | domain | u64 view | u64 height | 32-byte batch digest: what a prepare signs."""
    assert len(digest) == 32
    return PREPARE_TAG + domain + _U64.pack(view) + _U64.pack(height) + digest


def view_change_bytes(domain: bytes, first_height: int, replica: int, new_view: int,
                      stable_height: int, stable_hash: bytes, stable_set_hash: bytes,
                      prepared: list[tuple[int, int, bytes]]) -> bytes:
    """tag | domain | u64 first height of the validator set | u32 replica | u64 new view |
    u64 stable height | 32-byte stable block hash | 32-byte stable set hash | u32 count |
    each prepared certificate's u64 view | u64 height | digest.

    Views count afresh under each validator set, so the set's first height is signed:
    a view change sent under one set is none under the next. The certificates
    themselves are signed by others; this signature binds the sender to the set it
    reported."""
    assert len(stable_hash) == 32 and len(stable_set_hash) == 32
    parts = [VIEW_CHANGE_TAG, domain, _U64.pack(first_height), _U32.pack(replica),
             _U64.pack(new_view), _U64.pack(stable_height), stable_hash, stable_set_hash,
             _U32.pack(len(prepared))]
    for view, height, digest in prepared:
        assert len(digest) == 32
        parts += [_U64.pack(view), _U64.pack(height), digest]
    return b"".join(parts)
