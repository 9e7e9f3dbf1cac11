"""The messages replicas exchange, as frozen dataclasses. Signed ones carry their
signature over the tagged bytes of consensus.digest; docs/consensus.md gives them."""
from __future__ import annotations

from dataclasses import dataclass

Signatures = tuple[tuple[int, bytes], ...]   # (replica index, signature), sorted by index


@dataclass(frozen=True, slots=True)
class PrePrepare:
    """The primary's proposal for one height in the normal case, with the batch's
    envelopes. A new view re-proposes with Reproposal, which carries none."""
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
    set_hash: bytes     # the newest validator set scheduled after this block
    signature: bytes


@dataclass(frozen=True, slots=True)
class StableProof:
    """A stable checkpoint with its certificate, for a peer whose status shows it is
    below: it moves that peer's window even if it missed the checkpoint messages."""
    height: int
    block_hash: bytes
    set_hash: bytes
    certificate: Signatures


@dataclass(frozen=True, slots=True)
class Forward:
    """Client requests a replica received, passed to all peers so that every correct
    replica times a request and a censoring primary is voted out."""
    payloads: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class PreparedProof:
    """A prepared certificate: the primary's signed pre-prepare and quorum - 1 prepares
    of distinct backups, all for (view, height, digest). It names the batch by its digest
    only, so that a view change costs the same whatever the batches hold; replicas that
    lack the batch fetch it (FetchBatch)."""
    view: int
    height: int
    time_ms: int
    digest: bytes
    primary_signature: bytes
    prepares: Signatures


@dataclass(frozen=True, slots=True)
class Reproposal:
    """A pre-prepare inside a new-view: the header of a batch the new primary proposes
    again (or of a null batch), without its payloads. A replica takes the batch from what
    it kept or fetches it; the digest it votes for is signed here as in any pre-prepare."""
    view: int
    height: int
    time_ms: int
    digest: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class FetchBatch:
    """Asks one peer for the payloads of the batch with this digest at this height."""
    height: int
    digest: bytes


@dataclass(frozen=True, slots=True)
class BatchPayloads:
    """The answer to FetchBatch. Trusted for nothing: the asker recomputes the digest
    over the envelopes (through `inspect`) before it uses them."""
    height: int
    digest: bytes
    payloads: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class ViewChange:
    replica: int
    new_view: int
    stable_height: int
    stable_hash: bytes
    stable_set_hash: bytes
    stable_certificate: Signatures
    prepared: tuple[PreparedProof, ...]
    signature: bytes


@dataclass(frozen=True, slots=True)
class NewView:
    view: int
    view_changes: tuple[ViewChange, ...]
    preprepares: tuple[Reproposal, ...]


@dataclass(frozen=True, slots=True)
class Status:
    """Where a replica is, sent every few ticks: peers that are behind fetch, a primary
    resends its new-view to peers in an older view."""
    view: int
    active: bool
    height: int
    stable_height: int


MESSAGE_TYPES = (PrePrepare, Prepare, Commit, Checkpoint, Forward, ViewChange, NewView,
                 Status, StableProof, FetchBatch, BatchPayloads)
