"""What a replica keeps on disk so that a restart never votes two digests for one
(view, height): its view, its stable checkpoint, its prepared certificates and its own
latest vote per height; and the envelopes of the batches it voted for, so that a batch
a view change carries by digest can still be had after every replica restarted. Keys
and values are msgpack; docs/consensus.md lists them."""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

import msgpack

from consensus.digest import ZERO_HASH
from consensus.messages import NewView, PreparedProof, Signatures
from consensus import wire

VIEW_KEY = b"c/view"
STABLE_KEY = b"c/stable"
PROOF_PREFIX = b"c/proof/"
VOTE_PREFIX = b"c/vote/"
NEW_VIEW_KEY = b"c/new-view"     # a primary's new-view, to resend after a restart
BATCH_PREFIX = b"c/batch/"       # u64 height | digest: the envelopes of a batch it voted
_U64 = struct.Struct(">Q")


def proof_key(height: int) -> bytes:
    return PROOF_PREFIX + _U64.pack(height)


def vote_key(height: int) -> bytes:
    return VOTE_PREFIX + _U64.pack(height)


def batch_key(height: int, digest: bytes) -> bytes:
    assert len(digest) == 32
    return BATCH_PREFIX + _U64.pack(height) + digest


def batch_value(payloads: tuple[bytes, ...]) -> bytes:
    return msgpack.packb(list(payloads), use_bin_type=True)


def view_value(view: int, active: bool) -> bytes:
    return msgpack.packb([view, active])


def stable_value(height: int, block_hash: bytes, certificate: Signatures) -> bytes:
    return msgpack.packb([height, block_hash, [list(s) for s in certificate]],
                         use_bin_type=True)


def vote_value(view: int, digest: bytes) -> bytes:
    return msgpack.packb([view, digest], use_bin_type=True)


def proof_value(proof: PreparedProof) -> bytes:
    return wire.encode_proof(proof)


@dataclass
class Restored:
    view: int = 0
    active: bool = True
    stable: tuple[int, bytes, Signatures] = (0, ZERO_HASH, ())
    proofs: dict[int, PreparedProof] = field(default_factory=dict)
    votes: dict[int, tuple[int, bytes]] = field(default_factory=dict)
    new_view: NewView | None = None
    # height -> digest -> envelopes, as written; checked against the digest when used
    batches: dict[int, dict[bytes, tuple[bytes, ...]]] = field(default_factory=dict)


def restore(items: list[tuple[bytes, bytes]]) -> Restored:
    """Reads back what this module wrote; anything else under the consensus prefix is a
    corrupt store, which must stop the replica rather than let it vote blind."""
    out = Restored()
    for key, value in items:
        if key == VIEW_KEY:
            view, active = msgpack.unpackb(value)
            out.view, out.active = int(view), bool(active)
        elif key == STABLE_KEY:
            height, block_hash, cert = msgpack.unpackb(value)
            out.stable = (height, block_hash, tuple((i, s) for i, s in cert))
        elif key.startswith(PROOF_PREFIX):
            fields = msgpack.unpackb(value)
            if len(fields) == 7:    # written when proofs carried their envelopes
                payloads = tuple(fields.pop(4))
                value = msgpack.packb(fields, use_bin_type=True)
                if payloads:
                    out.batches.setdefault(fields[1], {})[fields[3]] = payloads
            proof = wire.decode_proof(value)
            assert proof_key(proof.height) == key
            out.proofs[proof.height] = proof
        elif key == NEW_VIEW_KEY:
            out.new_view = wire.decode(value, len(value))
        elif key.startswith(BATCH_PREFIX):
            rest = key[len(BATCH_PREFIX):]
            assert len(rest) == 40
            payloads = tuple(msgpack.unpackb(value))
            assert all(type(p) is bytes for p in payloads)
            out.batches.setdefault(_U64.unpack(rest[:8])[0], {})[rest[8:]] = payloads
        elif key.startswith(VOTE_PREFIX):
            view, digest = msgpack.unpackb(value)
            out.votes[_U64.unpack(key[len(VOTE_PREFIX):])[0]] = (view, digest)
    return out
