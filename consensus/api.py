"""The boundary of the consensus core: what goes in, what comes out, what is injected.

The replica (consensus/replica.py) is a pure state machine in the shape of etcd raft's
RawNode: inputs are method calls, outputs accumulate in a `Ready` that the driver takes,
carries out and hands back. Nothing in consensus/ does IO, reads a clock or draws a
random number: time enters only as `now_ms` passed to `tick`, signatures only through
the injected `Crypto`, envelope checks only through the injected `inspect`.

Replicas are numbered 0..n-1 in the order of the validator set in force (genesis's list
until governance changes it); the primary of view v is replica v mod n. Views count
afresh under each set: a Replica serves one set, and the driver hands over to the
next set's Replica at the last height of the old one (`Replica.successor`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence


@dataclass(frozen=True, slots=True)
class Request:
    """One client request as the core sees it: opaque bytes plus names for them.

    `key` is the transaction id (dedup: a key is ordered at most once by a correct
    primary), `digest` the SHA-256 of the whole envelope (what the batch digest covers),
    `client` who asks (the node puts the signer's public key there): the request pool
    shares its room and each batch fairly among clients (consensus/requests.py) and
    never looks inside. It is not part of any digest; a backup gets it from `inspect`.
    """
    key: bytes
    digest: bytes
    payload: bytes
    client: bytes = b""


@dataclass(frozen=True, slots=True)
class CommittedBatch:
    """An ordered batch with its commit certificate: what execution turns into a block."""
    height: int
    view: int
    time_ms: int
    digest: bytes
    requests: tuple[Request, ...]
    # (replica index, signature over consensus.digest.commit_bytes(domain, view, height, digest))
    certificate: tuple[tuple[int, bytes], ...]


@dataclass(frozen=True, slots=True)
class StableCheckpoint:
    height: int
    block_hash: bytes
    set_hash: bytes     # the newest validator set scheduled after this block
    # (replica index in the set in force at `height`, signature over
    # consensus.digest.checkpoint_bytes(domain, height, block_hash, set_hash))
    certificate: tuple[tuple[int, bytes], ...]


@dataclass(frozen=True, slots=True)
class ValidatorSet:
    """A validator set and the first height it orders: genesis's from height 1, each
    later one from the height its change named (docs/consensus.md, "Validator sets")."""
    first_height: int
    keys: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Fetch:
    """Ask peers for the certified blocks from `from_height` to `to_height` inclusive.
    `peers`: replica places in the order to ask them. The network asks the first it can
    (the replica puts another first with each request, consensus/catchup.py); it does
    not take turns over them itself, which would undo the replica's turns."""
    from_height: int
    to_height: int
    peers: tuple[int, ...]


@dataclass(slots=True)
class Ready:
    """What the driver must do, in the order the driver does it (see consensus/driver.py).

    persist:    key/value writes (value None deletes) to the replica's durable store, which
                must be on disk before any message of this Ready leaves the process.
    messages:   (destination replica index, or None for every other replica, message).
    committed:  batches now committed, in height order, each exactly once.
    checkpoints: checkpoints that became stable, for the store to keep with their block.
    fetch:      a catch-up request, when the replica learns it is behind.
    """
    persist: list[tuple[bytes, bytes | None]] = field(default_factory=list)
    messages: list[tuple[int | None, object]] = field(default_factory=list)
    committed: list[CommittedBatch] = field(default_factory=list)
    checkpoints: list[StableCheckpoint] = field(default_factory=list)
    fetch: Fetch | None = None

    def empty(self) -> bool:
        return not (self.persist or self.messages or self.committed or self.checkpoints
                    or self.fetch)


class Crypto(Protocol):
    """Signing with this replica's key and verifying any validator's; injected so that the
    simulator can use a fast stand-in. Both take the exact bytes of consensus.digest."""

    def sign(self, message: bytes) -> bytes: ...

    def verify(self, replica: int, message: bytes, signature: bytes) -> bool: ...


# Checks every envelope of a proposed batch: returns the Requests (key and digest filled
# in) when every one decodes, is for this chain and is well signed, or None when any is
# not. The node's implementation remembers what it has verified, so that no signature is
# checked twice in one process.
Inspect = Callable[[Sequence[bytes]], "list[Request] | None"]


class Storage(Protocol):
    """The replica's durable key/value store (LMDB with sync in production, a dict in the
    simulator)."""

    def write(self, ops: list[tuple[bytes, bytes | None]]) -> None: ...

    def items(self) -> list[tuple[bytes, bytes]]: ...


class Network(Protocol):
    def send(self, to: int | None, message: object) -> None: ...

    def fetch(self, request: Fetch) -> None: ...


class Ledger(Protocol):
    """Execution: turns a committed batch into a block and returns its 32-byte hash.
    `next_set`: the validator set that the executed blocks scheduled to take over, if
    one is pending (None when the set in force stays)."""

    def execute(self, batch: CommittedBatch) -> bytes: ...

    def next_set(self) -> ValidatorSet | None: ...

    def keep_checkpoint(self, checkpoint: StableCheckpoint) -> None: ...
