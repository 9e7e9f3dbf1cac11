"""Loading a snapshot's state into a validator's store (docs/statesync.md).

`Loader` takes the chunks in order, each checked against its hash in the agreed
manifest and for ascending keys, writes each in a write transaction of its own (memory
stays at one chunk whatever the state's size) and adds its entries to the state
accumulator. `finish` refuses a state whose root is not the one the certified block
names, and otherwise installs it in ONE write transaction: the block record of the
snapshot's height as the head, its accumulator, the last event position and the chain's
clock, the checkpoint with its certificate, the heights whose history is still to fetch
(node/history.py), and the consensus store started afresh at that stable checkpoint.

While chunks are written, the store's meta says `sync` (the height): its state is
neither the old one nor the new, so `node run` refuses to start it other than by
syncing again (`in_progress`).
"""
from __future__ import annotations

import hashlib
import struct

import chaincode
from consensus import durable
from consensus.api import StableCheckpoint
from node.block import BlockRecord
from node.history import HISTORY, history_value, missing as history_missing
from node.setproof import Hop, pack as pack_hops, unpack as unpack_hops
from node.snapshots import Manifest, decode_chunk
from node.store import DB_NAMES
from protocol import codec

_U64 = struct.Struct(">Q")
SYNC, BASE, HOPS = b"sync", b"sync/base", b"sync/hops"


class BadChunk(ValueError):
    """A chunk that is not the one the manifest names: the peer that sent it is wrong."""


class StateMismatch(Exception):
    """The loaded state's root is not the certified block's: f + 1 validators agreed on a
    wrong manifest. Nothing is installed."""


def in_progress(store) -> int | None:
    """The height of a sync that was under way when the process stopped, if any."""
    with store.env.begin(db=store.db["meta"]) as txn:
        raw = txn.get(SYNC)
    return None if raw is None else _U64.unpack(raw)[0]


def base_hash(store, height: int) -> bytes | None:
    """The hash of block `height` if it is the base of the set in force that this store
    learned when it synced (it may lack that block)."""
    with store.env.begin(db=store.db["meta"]) as txn:
        raw = txn.get(BASE)
    if raw is None or _U64.unpack_from(raw)[0] != height:
        return None
    return raw[8:]


def kept_hops(store) -> list[Hop]:
    """The proof this store verified when it synced: it serves it on."""
    with store.env.begin(db=store.db["meta"]) as txn:
        raw = txn.get(HOPS)
    return [] if raw is None else unpack_hops(raw)


class Loader:
    def __init__(self, store, manifest: Manifest, checkpoint: tuple, hops: list[Hop],
                 base_height: int):
        """`checkpoint`: (block hash, certificate, set hash) of the manifest's height,
        already checked against the set in force there; `base_height`: the height
        before the first of the set in force after the snapshot."""
        self.store, self.manifest, self.hops = store, manifest, hops
        self.record = BlockRecord.decode(manifest.record)
        assert self.record.hash == checkpoint[0] and self.record.check_hash()
        self.checkpoint, self.base_height = checkpoint, base_height
        self.next = 0
        self.last_key: bytes | None = None
        self.acc = 0
        self.entries = 0

    def begin(self) -> None:
        """Marks the store as syncing and empties its state."""
        store = self.store
        with store.env.begin(write=True) as txn:
            txn.put(SYNC, _U64.pack(self.manifest.height), db=store.db["meta"])
            txn.drop(store.db["state"], delete=False)

    def add(self, index: int, raw: bytes) -> None:
        """Chunk `index` (the next one); BadChunk when it is not the manifest's."""
        assert index == self.next, "chunks are added in order"
        if hashlib.sha256(raw).digest() != self.manifest.chunks[index]:
            raise BadChunk(f"chunk {index} does not hash to the manifest's")
        try:
            entries = decode_chunk(raw, self.last_key)
        except ValueError as error:
            raise BadChunk(f"chunk {index}: {error}") from None
        store = self.store
        with store.env.begin(write=True, db=store.db["state"]) as txn:
            cursor = txn.cursor()
            cursor.putmulti(entries, append=True)
        self.acc = chaincode.state_acc_with(self.acc, entries)
        self.last_key = entries[-1][0]
        self.entries += len(entries)
        self.next += 1

    @property
    def done(self) -> bool:
        return self.next == len(self.manifest.chunks)

    def finish(self, check=None) -> None:
        """Installs the loaded state; StateMismatch (nothing installed) when its root is
        not the certified block's or `check()` raises it."""
        assert self.done
        record = self.record
        if chaincode.state_root(self.acc) != record.state_root:
            raise StateMismatch(f"the state of height {record.height} loaded from the "
                                "agreed manifest does not have the certified state root")
        if check is not None:
            check()
        store, db = self.store, self.store.db
        old_height = store.head()[0]
        missing = history_missing(store)
        low = missing[0] if missing is not None else old_height + 1
        block_hash, certificate, set_hash = self.checkpoint
        first = self.base_height + 1
        with store.env.begin(write=True) as txn:
            meta = db["meta"]
            txn.put(_U64.pack(record.height), self.manifest.record, db=db["blocks"])
            txn.put(_U64.pack(record.height),
                    codec.pack([block_hash, [list(s) for s in certificate], set_hash]),
                    db=db["checkpoints"])
            txn.put(b"head", _U64.pack(record.height) + record.hash, db=meta)
            txn.put(b"acc", self.acc.to_bytes(512, "big"), db=meta)
            txn.put(b"pos", _U64.pack(record.first_position + record.event_count - 1),
                    db=meta)
            txn.put(b"time", _U64.pack(self.manifest.clock_ms), db=meta)
            txn.put(HISTORY, history_value(low, record.height, record.hash, record.height),
                    db=meta)
            txn.put(BASE, _U64.pack(self.base_height) + self.manifest.base_hash, db=meta)
            txn.put(HOPS, pack_hops(self.hops), db=meta)
            txn.delete(SYNC, db=meta)
            txn.drop(db["consensus"], delete=False)
            stable = StableCheckpoint(record.height, block_hash, set_hash, certificate)
            txn.put(durable.SET_KEY, durable.set_value(first), db=db["consensus"])
            txn.put(durable.STABLE_KEY, durable.stable_value(stable), db=db["consensus"])
        store.env.sync(True)


def reset(store, genesis) -> None:
    """Empties a store whose sync stopped half way and writes its genesis again: its
    state was neither the old one nor the new, so it syncs afresh."""
    with store.env.begin(write=True) as txn:
        for name in DB_NAMES:
            txn.drop(store.db[name], delete=False)
    writes, acc = genesis.state()
    store.init_genesis(genesis.canonical(), genesis.hash(), writes, acc)
