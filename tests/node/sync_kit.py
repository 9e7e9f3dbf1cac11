"""Helpers of the state sync tests: a real chain as bench/audit_replay.py builds it (4
validators, a certified checkpoint every 64 blocks), built in this process; a snapshot
of it loaded into a fresh store; one more certified block; and LMDB tables read whole."""
from __future__ import annotations

import asyncio
from unittest import mock

from consensus.api import CommittedBatch, StableCheckpoint
from consensus.digest import ZERO_HASH, batch_digest, checkpoint_bytes, commit_bytes
from node.envelope import Door
from node.executor import open_ledger
from node.snapshots import Manifest, Snapshot
from node.stateload import Loader
import bench.audit_replay as bench

CHAIN, VALIDATORS, T0, key = bench.CHAIN, bench.VALIDATORS, bench.T0, bench.key
SMALL = (60 * 20, 20)       # txs, batch: 4 setup blocks + 60 spend blocks, head 64


class InlinePool:
    """ProcessPoolExecutor's part bench.build uses, in this process: the tests start no
    process (tests/conftest.py refuses one in an xdist worker)."""

    def __init__(self, *args, **kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def map(self, fn, items, chunksize=1):
        return map(fn, items)


def build_chain(path, txs: int = SMALL[0], batch: int = SMALL[1]):
    """The bench chain in `path` (closed again); its genesis."""
    with mock.patch.object(bench, "ProcessPoolExecutor", InlinePool):
        return bench.build(str(path), txs, batch, 1)


def open_chain(path, genesis):
    """The executor of a chain folder (or a fresh one made from genesis)."""
    return open_ledger(str(path), genesis, Door(CHAIN, capacity=5_000))


def spends(start: int, count: int) -> list[bytes]:
    """coin.spend envelopes that bench.build has not used (their nonces follow its)."""
    return bench._spends((start, count))


def certify(executor, height: int, time_ms: int, envelopes: list[bytes],
            signers=(0, 1, 2)) -> CommittedBatch:
    """The committed batch of `envelopes` at `height`, commits by `signers`."""
    requests = executor.door.inspect(envelopes)
    assert requests is not None
    digest = batch_digest(executor.domain, height, time_ms, [r.digest for r in requests])
    message = commit_bytes(executor.domain, 0, height, digest)
    certificate = tuple((i, key(VALIDATORS[i]).sign(message)) for i in signers)
    return CommittedBatch(height, 0, time_ms, digest, tuple(requests), certificate)


def checkpoint_certificate(domain: bytes, height: int, block_hash: bytes, set_hash: bytes,
                           signers=(1, 2, 3), names=VALIDATORS):
    message = checkpoint_bytes(domain, height, block_hash, set_hash)
    return tuple((i, key(names[i]).sign(message)) for i in signers)


def keep_checkpoint(executor, height: int) -> None:
    """A stable checkpoint of `height` (the head) signed by 3 of 4, kept in the store."""
    record = executor.store.block(height)
    set_hash = executor.newest_set_hash()
    executor.keep_checkpoint(StableCheckpoint(
        height, record.hash, set_hash,
        checkpoint_certificate(executor.domain, height, record.hash, set_hash)))


def snapshot_manifest(store, height: int, base_hash: bytes = ZERO_HASH):
    """(snapshot, manifest) of `store` at its head `height`."""
    snapshot = Snapshot(store, height, base_hash)
    manifest = asyncio.run(snapshot.manifest())
    return snapshot, manifest


def load(target_store, source_store, height: int, base_height: int = 0):
    """Syncs `target_store` from a snapshot of `source_store` at `height` as a joiner
    does (manifest through its bytes, every chunk added in order, finish)."""
    snapshot, manifest = snapshot_manifest(source_store, height)
    try:
        agreed = Manifest.decode(manifest.encode(), 1 << 22)
        loader = Loader(target_store, agreed, source_store.checkpoint(height), [],
                        base_height)
        loader.begin()
        for index in range(len(agreed.chunks)):
            loader.add(index, snapshot.chunk(index))
        loader.finish()
    finally:
        snapshot.close()
    return loader


def table(store, name: str) -> list[tuple[bytes, bytes]]:
    """Every (key, value) of one sub-database (duplicates of a dupsort one included)."""
    with store.env.begin(db=store.db[name]) as txn:
        return list(txn.cursor().iternext())
