"""Real fakes for the simulator: signers, a dict store, a hash-chain ledger, a request
registry that plays the node's envelope door. No mocks: each keeps the contract of the
production piece it stands for."""
from __future__ import annotations

import hashlib
import hmac

import nacl.bindings
import nacl.exceptions

from consensus.api import CommittedBatch, Request, StableCheckpoint


class KeyedHashKeys:
    """Fast stand-in for Ed25519: replica i signs with a keyed BLAKE2b under its own
    secret. Verifying needs every secret, which only this object (the simulated
    world) holds; a Byzantine replica is handed only its own signer."""

    def __init__(self, secrets: list[bytes]):
        self.secrets = secrets

    def signer(self, me: int) -> "KeyedHashCrypto":
        return KeyedHashCrypto(self, me)

    def tag(self, index: int, message: bytes) -> bytes:
        return hashlib.blake2b(message, key=self.secrets[index], digest_size=16).digest()


class KeyedHashCrypto:
    def __init__(self, keys: KeyedHashKeys, me: int):
        self.keys, self.me = keys, me

    def sign(self, message: bytes) -> bytes:
        return self.keys.tag(self.me, message)

    def verify(self, replica: int, message: bytes, signature: bytes) -> bool:
        if not 0 <= replica < len(self.keys.secrets):
            return False
        return hmac.compare_digest(self.keys.tag(replica, message), signature)


class Ed25519Keys:
    def __init__(self, seeds: list[bytes]):
        pairs = [nacl.bindings.crypto_sign_seed_keypair(seed) for seed in seeds]
        self.public = [pk for pk, _ in pairs]
        self.secret = [sk for _, sk in pairs]

    def signer(self, me: int) -> "Ed25519Crypto":
        return Ed25519Crypto(self, me)


class Ed25519Crypto:
    def __init__(self, keys: Ed25519Keys, me: int):
        self.keys, self.me = keys, me

    def sign(self, message: bytes) -> bytes:
        return nacl.bindings.crypto_sign(message, self.keys.secret[self.me])[:64]

    def verify(self, replica: int, message: bytes, signature: bytes) -> bool:
        if not 0 <= replica < len(self.keys.public) or len(signature) != 64:
            return False
        try:
            nacl.bindings.crypto_sign_open(signature + message, self.keys.public[replica])
        except nacl.exceptions.BadSignatureError:
            return False
        return True


class Registry:
    """Every request clients made, by envelope: the door's verdict. An envelope the
    registry does not know is a bad one (malformed, forged or for another chain)."""

    def __init__(self):
        self.by_payload: dict[bytes, Request] = {}
        self.by_key: dict[bytes, Request] = {}

    def make(self, counter: int, padding: bytes, client: bytes | None = None) -> Request:
        """A request; by default its own client (the pool then orders like a plain
        queue), or one of `client`'s, whose requests share one client's room and turn."""
        payload = b"req" + counter.to_bytes(8, "big") + padding
        key = b"k" + counter.to_bytes(8, "big")
        request = Request(key, hashlib.sha256(payload).digest(), payload,
                          key if client is None else client)
        self.by_payload[payload] = request
        self.by_key[request.key] = request
        return request

    def inspect(self, payloads) -> list[Request] | None:
        out = []
        for payload in payloads:
            request = self.by_payload.get(payload)
            if request is None:
                return None
            out.append(request)
        return out


class DictStorage:
    def __init__(self):
        self.data: dict[bytes, bytes] = {}

    def write(self, ops: list[tuple[bytes, bytes | None]]) -> None:
        for key, value in ops:
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value

    def items(self) -> list[tuple[bytes, bytes]]:
        return sorted(self.data.items())


class HashChainLedger:
    """Execution stand-in: block hash = SHA-256(previous hash, height, batch digest); a
    key executes once, later copies are duplicates. Survives crashes, like the disk."""

    def __init__(self, on_block, on_checkpoint):
        self.blocks: list[CommittedBatch] = []
        self.hashes: list[bytes] = []
        self.executed_keys: dict[bytes, int] = {}
        self.duplicates = 0
        self.last_time_ms = 0
        self.checkpoints: dict[int, StableCheckpoint] = {}
        self.on_block, self.on_checkpoint = on_block, on_checkpoint

    @property
    def height(self) -> int:
        return len(self.blocks)

    @property
    def head_hash(self) -> bytes:
        return self.hashes[-1] if self.hashes else bytes(32)

    def execute(self, batch: CommittedBatch) -> bytes:
        self.on_block(self, batch)
        block_hash = hashlib.sha256(self.head_hash + batch.height.to_bytes(8, "big")
                                    + batch.digest).digest()
        self.blocks.append(batch)
        self.hashes.append(block_hash)
        for request in batch.requests:
            if request.key in self.executed_keys:
                self.duplicates += 1
            else:
                self.executed_keys[request.key] = batch.height
        if batch.time_ms:
            self.last_time_ms = max(self.last_time_ms, batch.time_ms)
        return block_hash

    def keep_checkpoint(self, checkpoint: StableCheckpoint) -> None:
        self.on_checkpoint(self, checkpoint)
        self.checkpoints[checkpoint.height] = checkpoint

    def serve(self, first: int, last: int) -> list[CommittedBatch]:
        return self.blocks[max(first, 1) - 1:max(last, 0)]
