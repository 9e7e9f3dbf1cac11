"""The boundary of the chaincode: what the node hands in and what it gets back.

Execution is a pure function of (rules version, state before, block context, ordered
transactions). The node's LMDB store and the in-memory test state both implement
`StateReader` (and, for the paged reads of chaincode/queries.py, `PagedReader`); the
chaincode buffers its own writes and hands back the block's net writes, which the node
applies in the same LMDB transaction as the block.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Protocol


@dataclass(frozen=True, slots=True)
class Tx:
    """A transaction that passed the door: decoded, for this chain, well signed.

    `args` is the decoded msgpack map as received (str keys; values str, int, bytes,
    bool, list or map); checking it against the kind is the chaincode's job.
    """
    tx_id: str        # lowercase hex SHA-256 of the body bytes
    signer: bytes     # 32-byte Ed25519 public key
    kind: str
    args: dict


@dataclass(frozen=True, slots=True)
class BlockContext:
    height: int
    time_ms: int        # the block time, ms since the Unix epoch, UTC
    switch_margin: int  # the chain's switch margin M (genesis): a rules.activate enacted
                        # in this block names a height at least M above it
    checkpoint_interval: int  # the chain's checkpoint interval K (genesis): a
                              # validators.set enacted in this block at height h orders
                              # from c + M + 1, c the first multiple of K at or above h


@dataclass(slots=True)
class Result:
    tx_id: str
    code: str                                   # "ok" or a rejection code
    info: dict = field(default_factory=dict)    # structured data about a rejection
    events: list = field(default_factory=list)  # dicts with "kind" and the event's fields


class StateReader(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) whose key starts with prefix, in ascending key order."""
        ...


class PagedReader(StateReader, Protocol):
    """A StateReader that also reads a range a page at a time: what the read model's
    paged reads (queries.*_page) need, so that a page costs its own size, not the table's.
    The node's store implements it over LMDB, queries.InMemoryState over a dict."""

    def scan_after(self, prefix: bytes, after: bytes | None,
                   limit: int) -> list[tuple[bytes, bytes]]:
        """Up to `limit` (key, value) pairs whose key starts with prefix, in ascending key
        order, strictly after the key `after` (from the start of the prefix when None).
        An implementation may answer fewer than `limit` only at the end of the prefix or
        at a bound of its own (the store's is 10,000)."""
        ...


@dataclass(slots=True)
class BlockOutcome:
    results: list[Result]
    writes: dict[bytes, bytes | None]   # net writes of the block; None deletes
    state_acc: int                      # the state accumulator after the block
    state_root: bytes                   # 32 bytes, derived from state_acc
