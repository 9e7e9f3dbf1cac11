"""The state snapshots a validator serves to one that syncs its state (docs/statesync.md).

Right after it executes a checkpoint height c, a validator opens an LMDB read
transaction: the state of height c, pinned at no cost but the pages later blocks free
(LMDB's copy on write keeps them for the reader). Once checkpoint c is stable the
snapshot is offered; the newest two stable ones are kept, and an older one while a peer
fetched from it in the last HOLD_S seconds, so a joiner that is half way keeps its
snapshot while the chain moves on.

A snapshot's state is cut into chunks deterministically, so every correct validator
cuts the same chunks with the same SHA-256: the entries in key order, each chunk as many
as fit CHUNK_BYTES (always at least one), encoded as the canonical msgpack array of
[key, value] pairs. The manifest names the height, the block record of c, the chain's
clock after c, the hash of the block before the first height of the set in force at
c + 1, and every chunk's hash; validators agree on all of it but the record's commit
certificate and view (`agreed`). It is computed on the first request, a slice of entries
at a time between the event loop's other work.
"""
from __future__ import annotations

import asyncio
import hashlib
import struct
import time
from dataclasses import dataclass

import lmdb

from protocol import codec
from node.block import BlockRecord

CHUNK_BYTES = 512 * 1024        # a chunk's entries, at most (but always one entry)
MAX_CHUNKS = 32_768             # a state of up to 16 GiB
ENTRY_OVERHEAD = 16             # msgpack's framing of one [key, value] pair, at most
SLICE = 2_000                   # entries hashed between two yields to the event loop
KEEP_STABLE = 2                 # stable snapshots kept however old
HOLD_S = 120.0                  # an older one kept this long after a peer fetched from it
MAX_TAKEN = 8                   # snapshots held at once, stable or not
_U64 = struct.Struct(">Q")


@dataclass(frozen=True, slots=True)
class Manifest:
    height: int
    record: bytes               # the block record of `height` (node/block.py), encoded
    clock_ms: int               # the time the chaincode ran block `height` at
    base_hash: bytes            # the block before the first height of the set in force
    chunks: tuple[bytes, ...]   # SHA-256 of each chunk's bytes, in order

    def encode(self) -> bytes:
        return codec.pack([self.height, self.record, self.clock_ms, self.base_hash,
                           list(self.chunks)])

    def agreed(self) -> bytes:
        """What f + 1 validators must send alike: everything but the block record's
        commit certificate and view, which differ between correct validators (each keeps
        the first quorum of commits it received). The record's hash, and its log
        positions, which the hash does not cover, are in it."""
        record = BlockRecord.decode(self.record)
        return codec.pack([self.height, record.hash, record.first_position,
                           record.event_count, self.clock_ms, self.base_hash,
                           list(self.chunks)])

    @classmethod
    def decode(cls, raw: bytes, max_bytes: int) -> "Manifest":
        """A manifest from a peer; ValueError for anything malformed."""
        fields = codec.unpack(raw, max_bytes)
        if type(fields) is not list or len(fields) != 5:
            raise ValueError("a manifest is [height, record, clock, base hash, chunks]")
        height, record, clock_ms, base_hash, chunks = fields
        if not (type(height) is int and height >= 1 and type(record) is bytes
                and type(clock_ms) is int and clock_ms >= 0
                and type(base_hash) is bytes and len(base_hash) == 32
                and type(chunks) is list and 1 <= len(chunks) <= MAX_CHUNKS
                and all(type(c) is bytes and len(c) == 32 for c in chunks)):
            raise ValueError("a manifest field is out of range")
        try:
            decoded = BlockRecord.decode(record)
        except (TypeError, ValueError) as error:    # a record of another shape
            raise ValueError(f"the manifest's record does not decode: {error}") from None
        if decoded.height != height:
            raise ValueError("the manifest's record is of another height")
        return cls(height, record, clock_ms, base_hash, tuple(chunks))


def chunk_bytes(entries: list[tuple[bytes, bytes]]) -> bytes:
    return codec.pack([[k, v] for k, v in entries])


def cut(items):
    """The chunks of (key, value) pairs in key order: lists of pairs, each within
    CHUNK_BYTES (counting ENTRY_OVERHEAD per entry) or a single entry."""
    chunk, size = [], 0
    for key, value in items:
        cost = len(key) + len(value) + ENTRY_OVERHEAD
        if chunk and size + cost > CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
        chunk.append((key, value))
        size += cost
    if chunk:
        yield chunk


def decode_chunk(raw: bytes, after: bytes | None) -> list[tuple[bytes, bytes]]:
    """The entries of a chunk a peer sent, checked: pairs of byte strings in strictly
    ascending key order, every key above `after` (the previous chunk's last). A chunk
    whose hash the manifest names passes; this guards what the hash cannot: a manifest
    of f + 1 faulty validators."""
    entries = codec.unpack(raw, CHUNK_BYTES + (1 << 16) + len(raw))
    if type(entries) is not list or not entries:
        raise ValueError("a chunk is a non-empty array of [key, value]")
    out, last = [], after
    for pair in entries:
        if type(pair) is not list or len(pair) != 2 or type(pair[0]) is not bytes or \
                type(pair[1]) is not bytes or not pair[0]:
            raise ValueError("a chunk entry is [key, value], both bytes")
        if last is not None and pair[0] <= last:
            raise ValueError("a chunk's keys are not in ascending order")
        last = pair[0]
        out.append((pair[0], pair[1]))
    return out


class Snapshot:
    """The state of one checkpoint height, pinned in an LMDB read transaction."""

    def __init__(self, store, height: int, base_hash: bytes):
        self.store, self.height, self.base_hash = store, height, base_hash
        self.txn = store.env.begin(buffers=False)
        meta = store.db["meta"]
        head = self.txn.get(b"head", db=meta)
        assert _U64.unpack_from(head)[0] == height, "a snapshot of another height"
        raw_time = self.txn.get(b"time", db=meta)
        self.clock_ms = _U64.unpack(raw_time)[0] if raw_time else 0
        self.record = self.txn.get(_U64.pack(height), db=store.db["blocks"])
        assert self.record is not None
        self.stable = False
        self.used_at = 0.0
        self._manifest: asyncio.Future | None = None
        self._starts: list[bytes] = []      # each chunk's first key

    def close(self) -> None:
        if self.txn is not None:
            self.txn.abort()
            self.txn = None

    async def manifest(self) -> Manifest:
        self.used_at = time.monotonic()     # a joiner starts on it: kept HOLD_S at least
        if self._manifest is None:
            self._manifest = asyncio.ensure_future(self._compute())
        return await asyncio.shield(self._manifest)

    def _entries(self, start: bytes | None = None):
        cursor = self.txn.cursor(self.store.db["state"])
        found = cursor.set_range(start) if start is not None else cursor.first()
        if not found:
            return
        yield from cursor

    async def _compute(self) -> Manifest:
        hashes, starts, count = [], [], 0
        try:
            for chunk in cut(self._entries()):
                starts.append(chunk[0][0])
                hashes.append(hashlib.sha256(chunk_bytes(chunk)).digest())
                count += len(chunk)
                if count >= SLICE:
                    count = 0
                    await asyncio.sleep(0)      # the validator's other work goes on
                    if self.txn is None:
                        raise RuntimeError("the snapshot was dropped")
        except lmdb.Error:
            raise RuntimeError("the snapshot was dropped") from None
        if len(hashes) > MAX_CHUNKS:
            raise RuntimeError(f"the state has {len(hashes)} chunks, more than {MAX_CHUNKS}")
        self._starts = starts
        return Manifest(self.height, self.record, self.clock_ms, self.base_hash,
                        tuple(hashes))

    def chunk(self, index: int) -> bytes | None:
        """The bytes of chunk `index`, once the manifest is computed; None otherwise."""
        if self.txn is None or not 0 <= index < len(self._starts):
            return None
        self.used_at = time.monotonic()
        end = self._starts[index + 1] if index + 1 < len(self._starts) else None
        entries = []
        for key, value in self._entries(self._starts[index]):
            if end is not None and key >= end:
                break
            entries.append((key, value))
        return chunk_bytes(entries)


class Snapshots:
    """The snapshots one validator holds: taken at each checkpoint height it executes,
    offered once stable, dropped by the rules in the module's text."""

    def __init__(self, store, interval: int):
        self.store, self.interval = store, interval
        self.held: dict[int, Snapshot] = {}

    def executed(self, height: int, base_hash: bytes) -> None:
        if height % self.interval == 0 and height not in self.held:
            self.held[height] = Snapshot(self.store, height, base_hash)
            self._trim()

    def stable(self, height: int) -> None:
        snapshot = self.held.get(height)
        if snapshot is not None:
            snapshot.stable = True
        for h in [h for h in self.held if h < height and not self.held[h].stable]:
            self.held.pop(h).close()        # never stable now: a later one is
        self._trim()

    def _trim(self) -> None:
        now = time.monotonic()
        stable = sorted((h for h, s in self.held.items() if s.stable), reverse=True)
        for h in stable[KEEP_STABLE:]:
            if now - self.held[h].used_at > HOLD_S:
                self.held.pop(h).close()
        while len(self.held) > MAX_TAKEN:
            self.held.pop(min(self.held)).close()

    def offered(self) -> list[int]:
        """The stable snapshots' heights, newest first."""
        self._trim()
        return sorted((h for h, s in self.held.items() if s.stable), reverse=True)

    def get(self, height: int) -> Snapshot | None:
        snapshot = self.held.get(height)
        return snapshot if snapshot is not None and snapshot.stable else None

    def close(self) -> None:
        for snapshot in self.held.values():
            snapshot.close()
        self.held.clear()
