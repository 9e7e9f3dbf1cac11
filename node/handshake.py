"""The handshake that opens a link between two validators; docs/transport.md gives the bytes.

The dialling side is the initiator (I), the listening side the responder (R):

    I -> R  HELLO      magic | genesis hash | I's identity key | I's ephemeral X25519 key
    R -> I  CHALLENGE  R's identity key | R's ephemeral X25519 key
    I -> R  PROOF      I's signature
    R -> I  REPLY      R's signature

Each signature is Ed25519 by the signer's validator key over
`SIGN_TAG | role | genesis hash | I id | I eph | R id | R eph`, role 1 for the initiator
and 2 for the responder, so a signature cannot be replayed in another run, on another
chain or in the other role. Both ephemeral keys are in what both sign, so each side knows
that the other holds the identity key *and* took part in this exchange. The link keys
come from the X25519 shared secret and the same transcript (keyed BLAKE2b-512), one key
per direction.

The initiator proves itself first: the responder signs only for a validator that has
already proved its validator key in this very exchange, so whoever merely knows a
validator's public key (they are public) gets no signature and costs the responder no
signing. The initiator, in turn, signs only a transcript that names the validator it
dialled and that validator's fresh ephemeral key, so what it gives an impostor at that
address is worthless anywhere else, and it trusts the link only after REPLY verifies.

The rules each side enforces, in this order:
- R refuses a HELLO with the wrong magic or another genesis hash, an identity that is
  not in the roster, this node's own key, one `admitted` turns down (a validator no
  longer, or not yet, in the set) or one `accept` turns down (the transport's: a
  validator that should not dial this one); it answers nothing and does no public-key
  work before those checks pass.
- I refuses a CHALLENGE from any key but the one of the validator it dialled.
- R refuses a PROOF with a bad signature; it signs nothing before the PROOF verifies.
- I refuses a REPLY with a bad signature.
- Both refuse an ephemeral key that yields the all-zero shared secret.

Every reason a side refuses for is a fixed text (the transport counts refusals by it).
The classes are sans-IO; `initiate` and `respond` run them over asyncio streams with a
deadline (the transport runs the responder's steps itself, to apply its limits between
them).
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

MAGIC = b"stadsmunt/link/v2"
OLD_MAGICS = (b"stadsmunt/link/v1",)    # recognised only to say why they are refused
SIGN_TAG = b"stadsmunt/handshake/v2"
KEYS_TAG = b"stadsmunt/link-keys/v2"
ROLE_INITIATOR = b"\x01"
ROLE_RESPONDER = b"\x02"
KEY_BYTES = 32
SIGNATURE_BYTES = 64
HELLO_BYTES = len(MAGIC) + 3 * KEY_BYTES
CHALLENGE_BYTES = 2 * KEY_BYTES
PROOF_BYTES = SIGNATURE_BYTES
REPLY_BYTES = SIGNATURE_BYTES
# validators a roster may hold: two full sets of 64 (the one in force and the one taking
# over) and as many again for keys replaced or removed during a run (indices stay)
MAX_ROSTER = 256


class HandshakeError(Exception):
    """The other side failed the handshake; the connection must be closed. The message
    is one of a fixed set of reasons, never data of the other side."""


@dataclass(frozen=True, slots=True)
class Roster:
    """Who may connect: the genesis hash and the validators' keys, in the order this
    node learnt them (the genesis first, then the validators added since). A validator
    keeps its index; a roster that grows is a new Roster (`with_key`)."""
    genesis_hash: bytes
    keys: tuple[bytes, ...]

    def __post_init__(self):
        assert len(self.genesis_hash) == 32
        assert all(len(key) == KEY_BYTES for key in self.keys)
        assert len(set(self.keys)) == len(self.keys), "a validator key appears twice"
        assert len(self.keys) <= MAX_ROSTER, "more validators than a roster holds"

    def with_key(self, key: bytes) -> Roster:
        """This roster and `key` at the next index."""
        return Roster(self.genesis_hash, self.keys + (key,))

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


def _signing_key(seed: bytes | SigningKey) -> SigningKey:
    # a transport hands in its key once made: building one costs as much as a signature
    return seed if isinstance(seed, SigningKey) else SigningKey(seed)


class Initiator:
    def __init__(self, roster: Roster, me: int, seed: bytes | SigningKey, peer: int,
                 ephemeral: bytes):
        assert 0 <= me < len(roster.keys) and 0 <= peer < len(roster.keys) and me != peer
        assert len(ephemeral) == KEY_BYTES
        self.roster = roster
        self.peer = peer
        self._signing = _signing_key(seed)
        assert bytes(self._signing.verify_key) == roster.keys[me], "seed is not this validator's"
        self._id = roster.keys[me]
        self._ephemeral = ephemeral
        self._eph_public = crypto_scalarmult_base(ephemeral)
        self._transcript = b""
        self._keys: tuple[bytes, bytes] | None = None

    def hello(self) -> bytes:
        return MAGIC + self.roster.genesis_hash + self._id + self._eph_public

    def proof(self, challenge: bytes) -> bytes:
        """Checks the CHALLENGE; returns PROOF."""
        assert len(challenge) == CHALLENGE_BYTES
        r_id, r_eph = challenge[:32], challenge[32:]
        if r_id != self.roster.keys[self.peer]:
            raise HandshakeError("responder is not the validator dialled")
        shared = _shared_secret(self._ephemeral, r_eph)
        self._transcript = transcript(self.roster.genesis_hash, self._id, self._eph_public,
                                      r_id, r_eph)
        self._keys = link_keys(shared, self._transcript)
        return self._signing.sign(signed_bytes(ROLE_INITIATOR, self._transcript)).signature

    def finish(self, reply: bytes) -> Session:
        """Checks the REPLY; returns the session."""
        assert len(reply) == REPLY_BYTES
        assert self._keys is not None, "proof() first"
        _verify(self.roster.keys[self.peer], signed_bytes(ROLE_RESPONDER, self._transcript),
                reply)
        send_key, recv_key = self._keys
        return Session(self.peer, send_key, recv_key)


class Responder:
    def __init__(self, roster: Roster, me: int, seed: bytes | SigningKey, ephemeral: bytes,
                 accept: Callable[[int], bool] = lambda peer: True,
                 admitted: Callable[[int], bool] = lambda peer: True):
        assert 0 <= me < len(roster.keys) and len(ephemeral) == KEY_BYTES
        self.roster = roster
        self.me = me
        self.accept = accept
        self.admitted = admitted
        self.peer: int | None = None      # who the HELLO claims to be
        self.proven = False               # whether the PROOF showed it
        self._signing = _signing_key(seed)
        assert bytes(self._signing.verify_key) == roster.keys[me], "seed is not this validator's"
        self._ephemeral = ephemeral
        self._i_eph = b""
        self._transcript = b""
        self._keys: tuple[bytes, bytes] | None = None

    def hello(self, hello: bytes) -> int:
        """Checks the HELLO without any public-key work; returns (and sets `peer` to) the
        index of the validator it claims to come from."""
        assert len(hello) == HELLO_BYTES
        magic = hello[:len(MAGIC)]
        genesis, i_id, i_eph = (hello[len(MAGIC) + k * 32:len(MAGIC) + (k + 1) * 32]
                                for k in range(3))
        if magic != MAGIC:
            if magic in OLD_MAGICS:
                raise HandshakeError("an older link protocol (v1)")
            raise HandshakeError("not a stadsmunt link")
        if genesis != self.roster.genesis_hash:
            raise HandshakeError("another chain")
        peer = self.roster.index(i_id)
        if peer is None:
            raise HandshakeError("not a validator")
        if peer == self.me:
            raise HandshakeError("own key")
        if not self.admitted(peer):
            raise HandshakeError("not admitted")
        if not self.accept(peer):
            raise HandshakeError("refused by link policy")
        self.peer = peer
        self._i_eph = i_eph
        return peer

    def challenge(self) -> bytes:
        """CHALLENGE, once the HELLO passed: this side's identity and ephemeral key."""
        assert self.peer is not None, "hello() first"
        eph_public = crypto_scalarmult_base(self._ephemeral)
        self._transcript = transcript(self.roster.genesis_hash, self.roster.keys[self.peer],
                                      self._i_eph, self.roster.keys[self.me], eph_public)
        return self.roster.keys[self.me] + eph_public

    def check(self, proof: bytes) -> None:
        """Checks the PROOF: afterwards the initiator is known to be validator `peer`."""
        assert len(proof) == PROOF_BYTES
        assert self._transcript, "challenge() first"
        _verify(self.roster.keys[self.peer], signed_bytes(ROLE_INITIATOR, self._transcript),
                proof)
        # only for a proven initiator: a failed proof costs a single signature check
        shared = _shared_secret(self._ephemeral, self._i_eph)
        self._keys = link_keys(shared, self._transcript)
        self.proven = True

    def reply(self) -> tuple[bytes, Session]:
        """REPLY and the session; only after `check` passed."""
        assert self.proven and self._keys is not None, "check() first"
        signature = self._signing.sign(signed_bytes(ROLE_RESPONDER, self._transcript)).signature
        i2r, r2i = self._keys
        return signature, Session(self.peer, send_key=r2i, recv_key=i2r)


async def initiate(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   initiator: Initiator, timeout_s: float) -> Session:
    async with asyncio.timeout(timeout_s):
        writer.write(initiator.hello())
        challenge = await reader.readexactly(CHALLENGE_BYTES)
        writer.write(initiator.proof(challenge))
        reply = await reader.readexactly(REPLY_BYTES)
        return initiator.finish(reply)


async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                  responder: Responder, timeout_s: float) -> Session:
    """The responder's steps with one deadline and no limits (tests, tools)."""
    async with asyncio.timeout(timeout_s):
        responder.hello(await reader.readexactly(HELLO_BYTES))
        writer.write(responder.challenge())
        responder.check(await reader.readexactly(PROOF_BYTES))
        reply, session = responder.reply()
        writer.write(reply)
        await writer.drain()
        return session
