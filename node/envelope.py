"""The door that every envelope passes once (the wire form: protocol/envelope.py).

The door's checks, in order (docs/protocol.md, "Envelope and body"):
1. `malformed`     - over 16 KiB, not `[bin body, bin(64) signature]` with nothing after
                     it, or a body that is not the exact strict map of the contract;
2. `wrong_chain`   - the body names another chain: refused before spending a signature
                     check, so another chain's traffic costs only a decode;
3. `bad_signature` - the signer's Ed25519 signature over b"stadsmunt/tx/v1" + body bytes,
                     checked over the bytes as received, never re-encoded.
An envelope that passes is remembered by its hash in a bounded cache, so the gateway's
admission, the consensus core's inspection of a proposed batch and the executor share one
signature check per envelope per process.
"""
from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

import msgpack

from chaincode.api import Tx
from consensus.api import Request
from node.keys import Keypair, verify
from protocol import codec
from protocol.envelope import (BODY_KEYS, BODY_VERSION, MAX_NONCE, TX_TAG, make_body, seal,
                               split_envelope)
from protocol.limits import MAX_ENVELOPE_BYTES, SIGNATURE_BYTES

OK = "ok"
MALFORMED = "malformed"
WRONG_CHAIN = "wrong_chain"
BAD_SIGNATURE = "bad_signature"
DOOR_CODES = (MALFORMED, WRONG_CHAIN, BAD_SIGNATURE)


class Refused(Exception):
    """An envelope refused at the door; `code` is one of DOOR_CODES."""

    def __init__(self, code: str, reason: str, tx_id: str | None = None):
        assert code in DOOR_CODES
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.tx_id = tx_id


@dataclass(frozen=True, slots=True)
class Opened:
    """A verified envelope: what consensus orders (request) and what chaincode runs (tx)."""
    request: Request
    tx: Tx


@dataclass(frozen=True, slots=True)
class Verdict:
    """The door's answer to one envelope: code `ok` with `opened`, or a door code. `tx_id`
    is known whenever the envelope's body could be found, even if it was refused."""
    code: str
    tx_id: str | None
    opened: Opened | None = None
    reason: str = ""


# ---- building (tests, the demo, the benchmarks; the wire form is protocol/envelope.py) ----

def sign_tx(keypair: Keypair, chain: str, kind: str, args: dict,
            nonce: int | None = None) -> bytes:
    """A signed envelope; the nonce is fresh and random unless given."""
    if nonce is None:
        nonce = int.from_bytes(os.urandom(8), "big")
    return seal(keypair, make_body(chain, kind, keypair.public, nonce, args))


# ---- checking ----
#
# Every envelope is decoded once per validator, so the common encodings are read on a
# fast path whose answer is the strict decoder's (protocol/codec.py): anything the fast path
# is not sure of goes to the strict decoder, and a property test holds the two together
# (tests/node/test_door_fast_path.py).

_LEAVES = frozenset((str, bytes, int, bool))
_KEY_TYPES = frozenset((str, bytes, int))
_FAST_DEPTH = 8                           # deeper args take the strict decoder
_repack = msgpack.Packer(use_bin_type=True, autoreset=True).pack


def _plain(container, depth: int) -> bool:
    """Whether a decoded container holds only what the strict decoder allows: str, bytes,
    int and bool leaves, map keys str, bytes or int."""
    if depth > _FAST_DEPTH:
        return False
    if type(container) is dict:
        for key, value in container.items():
            if type(key) not in _KEY_TYPES:
                return False
            if type(value) not in _LEAVES and not _plain(value, depth + 1):
                return False
        return True
    if type(container) is list:
        return all(type(v) in _LEAVES or _plain(v, depth + 1) for v in container)
    return False


def decode_body(body_bytes: bytes):
    """The strict decoding of a body (codec.unpack), fast for the common case: decoded in
    C and packed again; the same bytes mean no map held a key twice (a merged duplicate
    packs shorter) and no unusual encoding was used; then only the types are walked: of
    a body's own fields by the checks that follow, of its args here."""
    try:
        body = msgpack.unpackb(body_bytes, raw=False, strict_map_key=False)
    except Exception:
        body = None
    if type(body) is dict and body.keys() == BODY_KEYS and _fields_plain(body) and \
            _plain(body["args"], 1) and _repack(body) == body_bytes:
        return body
    return codec.unpack(body_bytes, MAX_ENVELOPE_BYTES)


def _fields_plain(body: dict) -> bool:
    # every field but args is a leaf the strict decoder allows
    return all(type(body[name]) in _LEAVES for name in ("v", "chain", "kind", "signer", "nonce"))


def _body_fields(body_bytes: bytes) -> dict:
    try:
        body = decode_body(body_bytes)
    except codec.CodecError as error:
        raise Refused(MALFORMED, f"body: {error}") from None
    if type(body) is not dict or body.keys() != BODY_KEYS:
        raise Refused(MALFORMED, "body must be a map of exactly v, chain, kind, signer, "
                                 "nonce and args")
    if type(body["v"]) is not int or body["v"] != BODY_VERSION:
        raise Refused(MALFORMED, "body version must be 1")
    if type(body["chain"]) is not str or type(body["kind"]) is not str:
        raise Refused(MALFORMED, "chain and kind must be strings")
    if type(body["signer"]) is not bytes or len(body["signer"]) != 32:
        raise Refused(MALFORMED, "signer must be 32 bytes")
    nonce = body["nonce"]
    if type(nonce) is not int or not 0 <= nonce <= MAX_NONCE:
        raise Refused(MALFORMED, "nonce must be an unsigned 64-bit integer")
    if type(body["args"]) is not dict or any(type(k) is not str for k in body["args"]):
        raise Refused(MALFORMED, "args must be a map with string keys")
    return body


def open_envelope(envelope: bytes, chain: str, envelope_hash: bytes | None = None,
                  check_signature: bool = True) -> Opened:
    """Run the door's checks on one envelope; raise Refused or return it opened. Without
    `check_signature` every check but the signature's (Door.admit, `checked`)."""
    if type(envelope) is not bytes or len(envelope) > MAX_ENVELOPE_BYTES:
        raise Refused(MALFORMED, f"an envelope is bytes of at most {MAX_ENVELOPE_BYTES}")
    outer = split_envelope(envelope)
    if outer is None:
        try:
            outer = codec.unpack(envelope, MAX_ENVELOPE_BYTES)
        except codec.CodecError as error:
            raise Refused(MALFORMED, f"envelope: {error}") from None
        if (type(outer) is not list or len(outer) != 2 or type(outer[0]) is not bytes
                or type(outer[1]) is not bytes or len(outer[1]) != SIGNATURE_BYTES):
            raise Refused(MALFORMED, "envelope must be [bin body, bin 64-byte signature]")
    body_bytes, signature = outer
    body = _body_fields(body_bytes)
    tx_id = hashlib.sha256(body_bytes).digest()
    if body["chain"] != chain:
        raise Refused(WRONG_CHAIN, f"for chain {body['chain']!r}", tx_id.hex())
    if check_signature and not verify(body["signer"], TX_TAG + body_bytes, signature):
        raise Refused(BAD_SIGNATURE, "signature does not verify", tx_id.hex())
    if envelope_hash is None:
        envelope_hash = hashlib.sha256(envelope).digest()
    tx = Tx(tx_id=tx_id.hex(), signer=body["signer"], kind=body["kind"], args=body["args"])
    # the signer is the client whose share of the request pool and of each batch this
    # request takes (consensus/requests.py): one key cannot crowd out the others
    return Opened(Request(key=tx_id, digest=envelope_hash, payload=envelope,
                          client=body["signer"]), tx)


class Door:
    """The door checks with a bounded memory of what this process has verified.

    Keyed by the envelope's SHA-256: an envelope is the exact signed bytes, so the same
    hash means the same verdict. The oldest entries go first when the cache is full; an
    evicted envelope that comes back is simply checked again.
    """

    def __init__(self, chain: str, capacity: int = 50_000):
        assert capacity >= 1
        self.chain = chain
        self.capacity = capacity
        self._verified: OrderedDict[bytes, Opened] = OrderedDict()
        self.signature_checks = 0   # envelopes opened (decoded and verified) so far

    def __len__(self) -> int:
        return len(self._verified)

    def _open(self, envelope: bytes, envelope_hash: bytes, checked: bool = False) -> Opened:
        opened = self._verified.get(envelope_hash)
        if opened is not None:
            return opened
        self.signature_checks += not checked
        opened = open_envelope(envelope, self.chain, envelope_hash, check_signature=not checked)
        self._verified[envelope_hash] = opened
        if len(self._verified) > self.capacity:
            self._verified.popitem(last=False)
        return opened

    def admit(self, envelopes: Sequence[bytes], checked: bool = False) -> list[Verdict]:
        """One verdict per envelope, in order (the gateway's single and batch submits).
        `checked`: a gateway process of this validator checked their signatures (over
        the local link, node/link.py): every check but that one, and remembered as
        verified. Never for bytes from anywhere else."""
        verdicts = []
        sha256 = hashlib.sha256
        for envelope in envelopes:
            if type(envelope) is not bytes or len(envelope) > MAX_ENVELOPE_BYTES:
                verdicts.append(Verdict(MALFORMED, None, None, "too large or not bytes"))
                continue
            try:
                opened = self._open(envelope, sha256(envelope).digest(), checked)
            except Refused as refused:
                verdicts.append(Verdict(refused.code, refused.tx_id, None, refused.reason))
            else:
                verdicts.append(Verdict(OK, opened.tx.tx_id, opened))
        return verdicts

    def inspect(self, envelopes: Sequence[bytes]) -> list[Request] | None:
        """consensus.api.Inspect: the requests of a proposed batch, or None if any envelope
        fails the door (then the batch is not accepted)."""
        requests = []
        sha256 = hashlib.sha256
        for envelope in envelopes:
            if type(envelope) is not bytes or len(envelope) > MAX_ENVELOPE_BYTES:
                return None
            try:
                requests.append(self._open(envelope, sha256(envelope).digest()).request)
            except Refused:
                return None
        return requests

    def take(self, requests: Sequence[Request]) -> list[Tx]:
        """The decoded transactions of an ordered batch, for execution. Cached envelopes are
        taken out of the cache (they are executed now, and the store answers for them
        afterwards); the rest, e.g. blocks fetched in catch-up, are opened here. Raises
        Refused when one fails: a certified batch with a bad envelope means the quorum
        that certified it was not correct."""
        txs = []
        taken: dict[bytes, Opened] = {}   # a copy of an envelope later in the same batch
        for request in requests:
            opened = self._verified.pop(request.digest, None) or taken.get(request.digest)
            if opened is None:
                self.signature_checks += 1
                opened = open_envelope(request.payload, self.chain)
                if opened.request.digest != request.digest:
                    raise Refused(MALFORMED, "request digest does not match its envelope")
            taken[request.digest] = opened
            txs.append(opened.tx)
        return txs
