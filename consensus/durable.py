"""What a replica keeps on disk so that a restart never votes two digests for one
(view, height): its view, its stable checkpoint, its prepared certificates and its own
latest vote per height; and the envelopes of the batches it voted for, so that a batch
a view change carries by digest can still be had after every replica restarted. Keys
and values are msgpack; docs/consensus.md lists them."""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

import msgpack

from consensus.api import StableCheckpoint
from consensus.messages import Checkpoint, NewView, PreparedProof
from consensus import wire

VIEW_KEY = b"c/view"
STABLE_KEY = b"c/stable"
PROOF_PREFIX = b"c/proof/"
VOTE_PREFIX = b"c/vote/"
NEW_VIEW_KEY = b"c/new-view"     # a primary's new-view, to resend after a restart
BATCH_PREFIX = b"c/batch/"       # u64 height | digest: the envelopes of a batch it voted
SET_KEY = b"c/set"               # the first height of the validator set all this is of
CHECKPOINT_PREFIX = b"c/checkpoint/"    # u64 height: its own checkpoint vote, to resend
_U64 = struct.Struct(">Q")


def proof_key(height: int) -> bytes:
    return PROOF_PREFIX + _U64.pack(height)


def vote_key(height: int) -> bytes:
    return VOTE_PREFIX + _U64.pack(height)


def checkpoint_key(height: int) -> bytes:
    return CHECKPOINT_PREFIX + _U64.pack(height)


def checkpoint_value(message: Checkpoint) -> bytes:
    return msgpack.packb([message.block_hash, message.set_hash, message.signature],
                         use_bin_type=True)


def batch_key(height: int, digest: bytes) -> bytes:
    assert len(digest) == 32
    return BATCH_PREFIX + _U64.pack(height) + digest


def batch_value(payloads: tuple[bytes, ...]) -> bytes:
    return msgpack.packb(list(payloads), use_bin_type=True)


def view_value(view: int, active: bool) -> bytes:
    return msgpack.packb([view, active])


def stable_value(stable: StableCheckpoint) -> bytes:
    return msgpack.packb([stable.height, stable.block_hash, stable.set_hash,
                          [list(s) for s in stable.certificate]], use_bin_type=True)


def set_value(first_height: int) -> bytes:
    return msgpack.packb(first_height)


def reset(items: list[tuple[bytes, bytes]], first_height: int) -> list[tuple[bytes, bytes | None]]:
    """The writes that make a store hold nothing of an earlier set's replica and name
    the set from `first_height` as its own."""
    return [(key, None) for key, _ in items if key != SET_KEY] + \
        [(SET_KEY, set_value(first_height))]


def vote_value(view: int, digest: bytes) -> bytes:
    return msgpack.packb([view, digest], use_bin_type=True)


def proof_value(proof: PreparedProof) -> bytes:
    return wire.encode_proof(proof)


@dataclass
class Restored:
    first_height: int | None = None     # of the set this state is of; None: not written
    view: int = 0
    active: bool = True
    stable: StableCheckpoint | None = None   # None: the set's base
    # its own checkpoint votes above the stable checkpoint, by height
    checkpoints: dict[int, Checkpoint] = field(default_factory=dict)
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
            fields = msgpack.unpackb(value)
            if len(fields) == 4:    # (3 fields: written before checkpoints named a set)
                height, block_hash, set_hash, cert = fields
                out.stable = StableCheckpoint(height, block_hash, set_hash,
                                              tuple((i, s) for i, s in cert))
        elif key == SET_KEY:
            out.first_height = int(msgpack.unpackb(value))
        elif key.startswith(CHECKPOINT_PREFIX):
            height = _U64.unpack(key[len(CHECKPOINT_PREFIX):])[0]
            block_hash, set_hash, signature = msgpack.unpackb(value)
            out.checkpoints[height] = Checkpoint(height, block_hash, set_hash, signature)
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
