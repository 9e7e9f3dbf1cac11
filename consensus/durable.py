"""What a replica keeps on disk so that a restart never votes two digests for one
(view, height): its view, its stable checkpoint, its prepared certificates and its own
latest vote per height. Keys and values are msgpack; docs/consensus.md lists them."""
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
_U64 = struct.Struct(">Q")


def proof_key(height: int) -> bytes:
    return PROOF_PREFIX + _U64.pack(height)


def vote_key(height: int) -> bytes:
    return VOTE_PREFIX + _U64.pack(height)


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
            proof = wire.decode_proof(value)
            assert proof_key(proof.height) == key
            out.proofs[proof.height] = proof
        elif key == NEW_VIEW_KEY:
            out.new_view = wire.decode(value, len(value))
        elif key.startswith(VOTE_PREFIX):
            view, digest = msgpack.unpackb(value)
            out.votes[_U64.unpack(key[len(VOTE_PREFIX):])[0]] = (view, digest)
    return out
