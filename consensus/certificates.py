"""Checking the certificates that replicas show each other: commit certificates of
fetched blocks, stable checkpoint certificates and prepared certificates. Pure functions
of the config, the injected Crypto and the message."""
from __future__ import annotations

from consensus.api import CommittedBatch, Crypto, StableCheckpoint
from consensus.config import Config
from consensus.digest import (batch_digest, checkpoint_bytes, commit_bytes,
                              prepare_bytes, preprepare_bytes)
from consensus.messages import PreparedProof, Signatures


def distinct_valid(config: Config, crypto: Crypto, signatures: Signatures, message: bytes,
                   excluded: int = -1) -> int:
    """How many distinct validators (other than `excluded`) signed `message` validly.
    A repeated or out-of-range index makes the whole set worthless: a correct replica
    never builds one, so it is evidence of forgery."""
    indices = [index for index, _ in signatures]
    if len(set(indices)) != len(indices):
        return 0
    count = 0
    for index, signature in signatures:
        if not 0 <= index < config.n or index == excluded:
            return 0
        if not crypto.verify(index, message, signature):
            return 0
        count += 1
    return count


def batch_is_certified(config: Config, crypto: Crypto, batch: CommittedBatch) -> bool:
    """A fetched block: its digest covers its requests and a quorum of the config's set
    signed its commit (the caller passes the config of the set in force at its height)."""
    if batch.height < config.first_height or len(batch.digest) != 32:
        return False
    expected = batch_digest(config.domain, batch.height, batch.time_ms,
                            [request.digest for request in batch.requests])
    if expected != batch.digest:
        return False
    message = commit_bytes(config.domain, batch.view, batch.height, batch.digest)
    return distinct_valid(config, crypto, batch.certificate, message) >= config.quorum


def checkpoint_is_certified(config: Config, crypto: Crypto, height: int, block_hash: bytes,
                            set_hash: bytes, certificate: Signatures) -> bool:
    """A checkpoint of the config's set: a quorum of it signed it. The set's base (the
    height before its first, genesis's height 0 for the first set) holds when its block
    hash is the one every member executed there, whatever certificate comes with it:
    that certificate, if any, is the previous set's, checked under that set."""
    if height == config.first_height - 1:
        return block_hash == config.base_hash and set_hash == config.set_hash and \
            (height > 0 or not certificate)
    if height < config.first_height or height % config.checkpoint_interval or \
            len(block_hash) != 32 or len(set_hash) != 32:
        return False
    message = checkpoint_bytes(config.domain, height, block_hash, set_hash)
    return distinct_valid(config, crypto, certificate, message) >= config.quorum


def stable_is_certified(config: Config, crypto: Crypto, checkpoint: StableCheckpoint) -> bool:
    return checkpoint_is_certified(config, crypto, checkpoint.height, checkpoint.block_hash,
                                   checkpoint.set_hash, checkpoint.certificate)


def proof_is_valid(config: Config, crypto: Crypto, proof: PreparedProof) -> bool:
    """The primary of the proof's view signed the pre-prepare and quorum - 1 distinct
    backups signed matching prepares. A certificate names its batch by digest only; the
    envelopes a replica installs for it are checked against that digest wherever they
    come from (consensus/batches.py)."""
    if len(proof.digest) != 32:
        return False
    primary = config.primary(proof.view)
    if not crypto.verify(primary, preprepare_bytes(config.domain, proof.view, proof.height,
                                                   proof.digest), proof.primary_signature):
        return False
    message = prepare_bytes(config.domain, proof.view, proof.height, proof.digest)
    return distinct_valid(config, crypto, proof.prepares, message,
                          excluded=primary) >= config.quorum - 1


class RememberingVerifier:
    """Verifies through `crypto` and remembers what verified, so that a signature shown
    again - the same prepare inside several view-change messages, a checkpoint
    certificate in every one - is not checked twice. Bounded: when full it forgets all,
    which costs only repeated work."""

    def __init__(self, crypto: Crypto, limit: int):
        assert limit > 0
        self.crypto, self.limit = crypto, limit
        self.verified: set[tuple[int, bytes, bytes]] = set()

    def sign(self, message: bytes) -> bytes:
        return self.crypto.sign(message)

    def verify(self, replica: int, message: bytes, signature: bytes) -> bool:
        key = (replica, message, signature)
        if key in self.verified:
            return True
        if not self.crypto.verify(replica, message, signature):
            return False
        if len(self.verified) >= self.limit:
            self.verified.clear()
        self.verified.add(key)
        return True
