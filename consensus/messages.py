"""The messages replicas exchange, as frozen dataclasses. Signed ones carry their
signature over the tagged bytes of consensus.digest; docs/consensus.md gives them."""
from __future__ import annotations

from dataclasses import dataclass

Signatures = tuple[tuple[int, bytes], ...]   # (replica index, signature), sorted by index


@dataclass(frozen=True, slots=True)
class PrePrepare:
    """The primary's proposal for one height. A null batch (gap after a view change) has
    no payloads and time 0."""
    view: int
    height: int
    time_ms: int
    digest: bytes
    payloads: tuple[bytes, ...]
    signature: bytes


@dataclass(frozen=True, slots=True)
class Prepare:
    view: int
    height: int
    digest: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class Commit:
    view: int
    height: int
    digest: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class Checkpoint:
    height: int
    block_hash: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class StableProof:
    """A stable checkpoint with its certificate, for a peer whose status shows it is
    below: it moves that peer's window even if it missed the checkpoint messages."""
    height: int
    block_hash: bytes
    certificate: Signatures


@dataclass(frozen=True, slots=True)
class Forward:
    """Client requests a replica received, passed to all peers so that every correct
    replica times a request and a censoring primary is voted out."""
    payloads: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class PreparedProof:
    """A prepared certificate: the primary's signed pre-prepare and quorum - 1 prepares
    of distinct backups, all for (view, height, digest). Payloads travel with it so that a
    new primary can re-propose the batch."""
    view: int
    height: int
    time_ms: int
    digest: bytes
    payloads: tuple[bytes, ...]
    primary_signature: bytes
    prepares: Signatures


@dataclass(frozen=True, slots=True)
class ViewChange:
    replica: int
    new_view: int
    stable_height: int
    stable_hash: bytes
    stable_certificate: Signatures
    prepared: tuple[PreparedProof, ...]
    signature: bytes


@dataclass(frozen=True, slots=True)
class NewView:
    view: int
    view_changes: tuple[ViewChange, ...]
    preprepares: tuple[PrePrepare, ...]


@dataclass(frozen=True, slots=True)
class Status:
    """Where a replica is, sent every few ticks: peers that are behind fetch, a primary
    resends its new-view to peers in an older view."""
    view: int
    active: bool
    height: int
    stable_height: int


MESSAGE_TYPES = (PrePrepare, Prepare, Commit, Checkpoint, Forward, ViewChange, NewView,
                 Status, StableProof)
