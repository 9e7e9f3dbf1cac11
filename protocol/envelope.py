"""Envelopes on the wire (docs/protocol.md, "Envelope and body"): building a body,
sealing it with a signer's key, splitting an envelope, and a transaction's id.

    body      = canonical msgpack map of exactly v, chain, kind, signer, nonce, args
    envelope  = msgpack [bin body, bin signature], the signature over TX_TAG + body
    tx id     = lowercase hex SHA-256 of the body bytes, as signed

Checking an envelope (the door) is the node's: node/envelope.py.
"""
from __future__ import annotations

import hashlib
from typing import Protocol

from protocol import codec
from protocol.limits import MAX_ENVELOPE_BYTES, SIGNATURE_BYTES

TX_TAG = b"stadsmunt/tx/v1"
BODY_VERSION = 1
BODY_KEYS = frozenset(("v", "chain", "kind", "signer", "nonce", "args"))
MAX_NONCE = (1 << 64) - 1


class Signer(Protocol):
    """An Ed25519 key that signs: node.keys.Keypair, or anything with the same two."""
    public: bytes

    def sign(self, message: bytes) -> bytes:
        """The 64-byte detached signature of `message`."""


def make_body(chain: str, kind: str, signer: bytes, nonce: int, args: dict) -> bytes:
    return codec.pack({"v": BODY_VERSION, "chain": chain, "kind": kind, "signer": signer,
                       "nonce": nonce, "args": args})


def seal(signer: Signer, body: bytes) -> bytes:
    """The envelope `[body, signature]` of a body signed by `signer`."""
    return codec.pack([body, signer.sign(TX_TAG + body)])


def tx_id_of(body: bytes) -> str:
    """The transaction id of a body: the SHA-256 of its bytes, as signed, in hex."""
    return hashlib.sha256(body).hexdigest()


_SIGNATURE_HEAD = b"\xc4\x40"            # bin 8 of 64 bytes


def split_envelope(envelope: bytes) -> tuple[bytes, bytes] | None:
    """(body, signature) of an envelope `[bin body, bin 64-byte signature]` written the
    usual way (fixarray, bin 8 or bin 16 body, bin 8 signature, nothing after), read by
    slicing; None for any other bytes (the strict decoder then decides)."""
    if len(envelope) < 3 + 2 + SIGNATURE_BYTES or envelope[0] != 0x92:
        return None
    tag = envelope[1]
    if tag == 0xc4:
        start, length = 3, envelope[2]
    elif tag == 0xc5:
        start, length = 4, int.from_bytes(envelope[2:4], "big")
    else:
        return None
    end = start + length
    if end + 2 + SIGNATURE_BYTES != len(envelope) or \
            envelope[end:end + 2] != _SIGNATURE_HEAD:
        return None
    return envelope[start:end], envelope[end + 2:]


def envelope_tx_id(envelope: bytes) -> str | None:
    """The transaction id of an envelope in the usual form, without opening it (nothing is
    checked: for answering a busy node's refusals); None for any other bytes."""
    if type(envelope) is not bytes or len(envelope) > MAX_ENVELOPE_BYTES:
        return None
    split = split_envelope(envelope)
    return None if split is None else tx_id_of(split[0])


def tx_id_of_envelope(envelope: bytes) -> str:
    """The transaction id of any envelope, decoded strictly (nothing is checked: not the
    body, not the signature); CodecError for bytes that are not `[bin body, signature]`."""
    outer = codec.unpack(envelope, MAX_ENVELOPE_BYTES)
    if type(outer) is not list or len(outer) != 2 or type(outer[0]) is not bytes:
        raise codec.CodecError("an envelope is [bin body, bin signature]")
    return tx_id_of(outer[0])
