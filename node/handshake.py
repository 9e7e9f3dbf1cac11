"""The handshake that opens a link between two validators; docs/transport.md gives the bytes.

The dialling side is the initiator (I), the listening side the responder (R):

    I -> R  HELLO   magic | genesis hash | I's identity key | I's ephemeral X25519 key
    R -> I  REPLY   R's identity key | R's ephemeral X25519 key | R's signature
    I -> R  FINISH  I's signature

Each signature is Ed25519 by the signer's genesis key over
`SIGN_TAG | role | genesis hash | I id | I eph | R id | R eph`, role 1 for the initiator
and 2 for the responder, so a signature cannot be replayed in another run, on another
chain or in the other role. Both ephemeral keys are in what both sign, so each side knows
that the other holds the identity key *and* took part in this exchange. The link keys
come from the X25519 shared secret and the same transcript (keyed BLAKE2b-512), one key
per direction.

The rules each side enforces, in this order:
- R refuses a HELLO with the wrong magic or another genesis hash, an identity that is
  not in the validator set, this node's own key, or one `accept` turns down; it
  signs nothing before those checks pass.
- I refuses a REPLY from any key but the one of the validator it dialled, or with a bad
  signature.
- R refuses a FINISH with a bad signature.
- Both refuse an ephemeral key that yields the all-zero shared secret.

The classes are sans-IO; `initiate` and `respond` run them over asyncio streams with a
deadline.
"""
from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Callable

from nacl.bindings import crypto_scalarmult, crypto_scalarmult_base
from nacl.exceptions import BadSignatureError
from nacl.exceptions import RuntimeError as NaclRuntimeError
from nacl.signing import SigningKey, VerifyKey

MAGIC = b"stadsmunt/link/v1"
SIGN_TAG = b"stadsmunt/handshake/v1"
KEYS_TAG = b"stadsmunt/link-keys/v1"
ROLE_INITIATOR = b"\x01"
ROLE_RESPONDER = b"\x02"
KEY_BYTES = 32
SIGNATURE_BYTES = 64
HELLO_BYTES = len(MAGIC) + 3 * KEY_BYTES
REPLY_BYTES = 2 * KEY_BYTES + SIGNATURE_BYTES
FINISH_BYTES = SIGNATURE_BYTES


class HandshakeError(Exception):
    """The other side failed the handshake; the connection must be closed."""


@dataclass(frozen=True, slots=True)
class Roster:
    """Who may connect: the genesis hash and the validators' keys, in genesis order."""
    genesis_hash: bytes
    keys: tuple[bytes, ...]

    def __post_init__(self):
        assert len(self.genesis_hash) == 32
        assert all(len(key) == KEY_BYTES for key in self.keys)
        assert len(set(self.keys)) == len(self.keys), "a validator key appears twice"

    def index(self, key: bytes) -> int | None:
        try:
            return self.keys.index(key)
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class Session:
    """An authenticated link: the peer's index and this side's two directional keys."""
    peer: int
    send_key: bytes
    recv_key: bytes


def transcript(genesis_hash: bytes, i_id: bytes, i_eph: bytes, r_id: bytes,
               r_eph: bytes) -> bytes:
    return genesis_hash + i_id + i_eph + r_id + r_eph


def signed_bytes(role: bytes, transcript_bytes: bytes) -> bytes:
    return SIGN_TAG + role + transcript_bytes


def link_keys(shared: bytes, transcript_bytes: bytes) -> tuple[bytes, bytes]:
    """(initiator-to-responder key, responder-to-initiator key)."""
    out = hashlib.blake2b(KEYS_TAG + transcript_bytes, key=shared, digest_size=64).digest()
    return out[:32], out[32:]


def _shared_secret(secret: bytes, peer_public: bytes) -> bytes:
    try:
        # libsodium refuses a point of small order (the result would be all zero)
        return crypto_scalarmult(secret, peer_public)
    except NaclRuntimeError:
        raise HandshakeError("ephemeral key of small order") from None


def _verify(public_key: bytes, message: bytes, signature: bytes) -> None:
    try:
        VerifyKey(public_key).verify(message, signature)
    except BadSignatureError:
        raise HandshakeError("bad handshake signature") from None


class Initiator:
    def __init__(self, roster: Roster, me: int, seed: bytes, peer: int, ephemeral: bytes):
        assert 0 <= me < len(roster.keys) and 0 <= peer < len(roster.keys) and me != peer
        assert len(ephemeral) == KEY_BYTES
        self.roster = roster
        self.peer = peer
        self._signing = SigningKey(seed)
        assert bytes(self._signing.verify_key) == roster.keys[me], "seed is not this validator's"
        self._id = roster.keys[me]
        self._ephemeral = ephemeral
        self._eph_public = crypto_scalarmult_base(ephemeral)

    def hello(self) -> bytes:
        return MAGIC + self.roster.genesis_hash + self._id + self._eph_public

    def finish(self, reply: bytes) -> tuple[bytes, Session]:
        """Checks the REPLY; returns FINISH and the session."""
        assert len(reply) == REPLY_BYTES
        r_id, r_eph, r_sig = reply[:32], reply[32:64], reply[64:]
        if r_id != self.roster.keys[self.peer]:
            raise HandshakeError("responder is not the validator dialled")
        shared = _shared_secret(self._ephemeral, r_eph)
        t = transcript(self.roster.genesis_hash, self._id, self._eph_public, r_id, r_eph)
        _verify(r_id, signed_bytes(ROLE_RESPONDER, t), r_sig)
        send_key, recv_key = link_keys(shared, t)
        finish = self._signing.sign(signed_bytes(ROLE_INITIATOR, t)).signature
        return finish, Session(self.peer, send_key, recv_key)


class Responder:
    def __init__(self, roster: Roster, me: int, seed: bytes, ephemeral: bytes,
                 accept: Callable[[int], bool] = lambda peer: True):
        assert 0 <= me < len(roster.keys) and len(ephemeral) == KEY_BYTES
        self.roster = roster
        self.me = me
        self.accept = accept
        self.peer: int | None = None
        self._signing = SigningKey(seed)
        assert bytes(self._signing.verify_key) == roster.keys[me], "seed is not this validator's"
        self._ephemeral = ephemeral
        self._eph_public = crypto_scalarmult_base(ephemeral)
        self._transcript = b""
        self._keys: tuple[bytes, bytes] | None = None

    def reply(self, hello: bytes) -> bytes:
        """Checks the HELLO; returns REPLY. Sets `peer` once the identity is known."""
        assert len(hello) == HELLO_BYTES
        magic = hello[:len(MAGIC)]
        genesis, i_id, i_eph = (hello[len(MAGIC) + k * 32:len(MAGIC) + (k + 1) * 32]
                                for k in range(3))
        if magic != MAGIC:
            raise HandshakeError("not a stadsmunt link")
        if genesis != self.roster.genesis_hash:
            raise HandshakeError("another chain")
        peer = self.roster.index(i_id)
        if peer is None:
            raise HandshakeError("not a validator")
        if peer == self.me:
            raise HandshakeError("own key")
        if not self.accept(peer):
            raise HandshakeError("refused by link policy")
        self.peer = peer
        shared = _shared_secret(self._ephemeral, i_eph)
        self._transcript = transcript(genesis, i_id, i_eph, self.roster.keys[self.me],
                                      self._eph_public)
        self._keys = link_keys(shared, self._transcript)
        signature = self._signing.sign(signed_bytes(ROLE_RESPONDER, self._transcript)).signature
        return self.roster.keys[self.me] + self._eph_public + signature

    def complete(self, finish: bytes) -> Session:
        assert len(finish) == FINISH_BYTES
        assert self.peer is not None and self._keys is not None, "reply() first"
        _verify(self.roster.keys[self.peer], signed_bytes(ROLE_INITIATOR, self._transcript),
                finish)
        i2r, r2i = self._keys
        return Session(self.peer, send_key=r2i, recv_key=i2r)


async def initiate(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   initiator: Initiator, timeout_s: float) -> Session:
    async with asyncio.timeout(timeout_s):
        writer.write(initiator.hello())
        reply = await reader.readexactly(REPLY_BYTES)
        finish, session = initiator.finish(reply)
        writer.write(finish)
        await writer.drain()
        return session


async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                  responder: Responder, timeout_s: float) -> Session:
    async with asyncio.timeout(timeout_s):
        hello = await reader.readexactly(HELLO_BYTES)
        writer.write(responder.reply(hello))
        finish = await reader.readexactly(FINISH_BYTES)
        return responder.complete(finish)

