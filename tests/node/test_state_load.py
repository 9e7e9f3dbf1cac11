"""Loading a snapshot's state into a store (node/stateload.py, docs/statesync.md, "The
joiner's steps" 3 and 4): a synced store is the source at the snapshot's height, as far
as executing the next block can tell; a chunk or a manifest that is not the certified
state installs nothing."""
from __future__ import annotations

import hashlib
import shutil
import struct

import pytest

from consensus import durable
from consensus.digest import ZERO_HASH
from node import history, snapshots, stateload
from node.envelope import sign_tx
from node.snapshots import Manifest, chunk_bytes, cut
from node.stateload import BadChunk, Loader, StateMismatch, in_progress
from node.store import ConsensusStorage, Store
from sync_kit import (CHAIN, T0, build_chain, certify, key, load, open_chain,
                      snapshot_manifest, spends, table)

TABLES = ("blocks", "checkpoints", "results", "log", "txids", "accounts", "areas",
          "payouts", "state", "consensus")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """(folder, genesis) of a chain of 64 blocks, a checkpoint at 64; tests that write
    to it work on a copy."""
    folder = tmp_path_factory.mktemp("source")
    return folder, build_chain(folder)


@pytest.fixture
def target(source, tmp_path):
    """A fresh validator's executor (genesis only) and the source's store."""
    folder, genesis = source
    joiner = open_chain(tmp_path / "target", genesis)
    with Store(folder) as store:
        yield joiner, store
    joiner.store.close()


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(snapshots, "CHUNK_BYTES", 16_384)


def genesis_view(store):
    return store.head(), {name: table(store, name) for name in TABLES}, store.state_acc()


# ---- a synced store -------------------------------------------------------------------

def test_a_synced_store_holds_the_snapshot_height(target):
    joiner, source = target
    store = joiner.store
    load(store, source, 64)
    assert store.head() == source.head() and store.head()[0] == 64
    assert store.state_acc() == source.state_acc()
    assert store.block_time() == source.block_time() == T0 + 64_000
    assert store.last_position() == source.last_position() > 0
    assert table(store, "state") == table(source, "state")
    assert store.checkpoint(64) == source.checkpoint(64) is not None
    assert [k for k, _ in table(store, "blocks")] == [struct.pack(">Q", 64)]
    assert store.block(64).encode() == source.block(64).encode()
    assert in_progress(store) is None
    assert stateload.base_hash(store, 0) == ZERO_HASH and stateload.base_hash(store, 1) is None
    assert stateload.kept_hops(store) == []
    assert history.missing(store) == (1, 64, 64, source.head()[1])


def test_a_synced_store_starts_consensus_at_the_stable_checkpoint(target):
    joiner, source = target
    load(joiner.store, source, 64)
    restored = durable.restore(ConsensusStorage(joiner.store).items())
    block_hash, certificate, set_hash = source.checkpoint(64)
    assert restored.stable is not None and restored.stable.height == 64
    assert (restored.stable.block_hash, tuple(restored.stable.certificate),
            restored.stable.set_hash) == (block_hash, certificate, set_hash)
    assert restored.first_height == 1
    assert not restored.proofs and not restored.votes and not restored.checkpoints


def test_a_sync_over_a_store_that_was_behind_keeps_its_blocks(source, tmp_path):
    """A validator that replayed to 10 syncs to 64: its history is missing from 11."""
    from node.executor import replay
    folder, genesis = source
    joiner = open_chain(tmp_path / "behind", genesis)
    with Store(folder) as store:
        replay(store, joiner, 10)
        load(joiner.store, store, 64)
        assert history.missing(joiner.store) == (11, 64, 64, store.head()[1])
        assert [r.height for r in joiner.store.blocks(1, 100)] == list(range(1, 11))
        assert joiner.store.head() == store.head()
    joiner.store.close()


def recovery(nonce: int = 5_000_000) -> bytes:
    """An admin's member.recover: opened effective at the chain's clock plus a delay, so
    the block that carries it depends on the clock a synced store took over."""
    return sign_tx(key("admin"), CHAIN, "member.recover",
                   {"old": key("citizen199").public, "new": key("new-phone").public},
                   nonce=nonce)


def test_the_next_block_runs_on_a_synced_store_as_on_the_source(source, tmp_path):
    folder, genesis = source
    shutil.copytree(folder, tmp_path / "source")
    ahead = open_chain(tmp_path / "source", genesis)
    synced = open_chain(tmp_path / "synced", genesis)
    wrong_clock = open_chain(tmp_path / "wrong-clock", genesis)
    try:
        load(synced.store, ahead.store, 64)
        load(wrong_clock.store, ahead.store, 64)
        with wrong_clock.store.env.begin(write=True, db=wrong_clock.store.db["meta"]) as txn:
            txn.put(b"time", struct.pack(">Q", T0))
        envelopes = spends(1_200, 20) + [recovery()]
        # batch time 0, as after a view change: the block runs at the chain's clock
        hashes = [e.execute(certify(e, 65, 0, envelopes))
                  for e in (ahead, synced, wrong_clock)]
        assert hashes[0] == hashes[1]
        assert hashes[2] != hashes[0]           # the check would see a wrong clock
        assert synced.store.block(65).encode() == ahead.store.block(65).encode()
        assert synced.store.head() == ahead.store.head()
        assert synced.store.block_time() == ahead.store.block_time()
        assert table(synced.store, "state") == table(ahead.store, "state")
        position = ahead.store.block(65).first_position
        assert synced.store.events(position - 1, 100) == ahead.store.events(position - 1, 100)
        assert len(synced.store.events(position - 1, 100)) == 21
        assert synced.store.results(65) == ahead.store.results(65)
    finally:
        for executor in (ahead, synced, wrong_clock):
            executor.store.close()


# ---- refusals -------------------------------------------------------------------------

def loader_for(source, target_store, manifest: Manifest) -> Loader:
    return Loader(target_store, manifest, source.checkpoint(64), [], 0)


def test_a_chunk_that_is_not_the_manifests_is_refused_and_installs_nothing(
        target, small_chunks):
    joiner, source = target
    store = joiner.store
    before = genesis_view(store)
    snapshot, manifest = snapshot_manifest(source, 64)
    try:
        assert len(manifest.chunks) > 2
        loader = loader_for(source, store, manifest)
        loader.begin()
        assert in_progress(store) == 64
        loader.add(0, snapshot.chunk(0))
        good = snapshot.chunk(1)
        tampered = good[:-1] + bytes([good[-1] ^ 1])
        for wrong in (tampered, snapshot.chunk(2), b""):
            with pytest.raises(BadChunk):
                loader.add(1, wrong)
        assert loader.next == 1 and not loader.done
        assert in_progress(store) == 64
        assert store.head() == before[0] and store.state_acc() == before[2]
        assert store.checkpoint(64) is None and table(store, "blocks") == []
        # the chunk from another peer goes on where the bad one stopped
        for index in range(1, len(manifest.chunks)):
            loader.add(index, snapshot.chunk(index))
        loader.finish()
        assert store.head() == source.head() and in_progress(store) is None
        assert table(store, "state") == table(source, "state")
    finally:
        snapshot.close()


def test_a_chunk_that_hashes_right_but_is_out_of_order_is_refused(target):
    """A manifest f + 1 faulty validators agreed on can name any bytes: the keys are
    checked all the same."""
    joiner, source = target
    state = table(source, "state")
    chunks = [chunk_bytes(state[:10]), chunk_bytes(state[5:20])]     # overlapping
    manifest = Manifest(64, source.block(64).encode(), source.block_time(), ZERO_HASH,
                        tuple(hashlib.sha256(c).digest() for c in chunks))
    loader = loader_for(source, joiner.store, manifest)
    loader.begin()
    loader.add(0, chunks[0])
    with pytest.raises(BadChunk):
        loader.add(1, chunks[1])
    assert in_progress(joiner.store) == 64 and joiner.store.head()[0] == 0


def test_a_manifest_that_leaves_out_an_entry_installs_nothing(target, small_chunks):
    joiner, source = target
    store = joiner.store
    before = genesis_view(store)
    state = table(source, "state")
    short = state[:100] + state[101:]
    chunks = [chunk_bytes(c) for c in cut(short)]
    assert len(chunks) > 1
    manifest = Manifest(64, source.block(64).encode(), source.block_time(), ZERO_HASH,
                        tuple(hashlib.sha256(c).digest() for c in chunks))
    loader = loader_for(source, store, manifest)
    loader.begin()
    for index, raw in enumerate(chunks):
        loader.add(index, raw)          # each chunk is the manifest's
    assert loader.done
    with pytest.raises(StateMismatch):
        loader.finish()
    head, tables, acc = genesis_view(store)
    assert head == before[0] and acc == before[2]
    assert {n: t for n, t in tables.items() if n != "state"} == \
        {n: t for n, t in before[1].items() if n != "state"}
    assert in_progress(store) == 64             # still marked: it must sync again
    assert history.missing(store) is None


def test_a_failing_check_installs_nothing(target):
    joiner, source = target
    store = joiner.store
    before = genesis_view(store)
    snapshot, manifest = snapshot_manifest(source, 64)
    try:
        loader = loader_for(source, store, manifest)
        loader.begin()
        for index in range(len(manifest.chunks)):
            loader.add(index, snapshot.chunk(index))
        checked = []

        def check():
            checked.append(True)
            raise StateMismatch("the sets are not the proved ones")
        with pytest.raises(StateMismatch):
            loader.finish(check)
        assert checked == [True]
        assert store.head() == before[0] and store.state_acc() == before[2]
        assert store.checkpoint(64) is None and in_progress(store) == 64
        loader.finish(lambda: None)     # the same state installs when the check holds
        assert store.head() == source.head() and in_progress(store) is None
    finally:
        snapshot.close()


def test_reset_brings_a_half_synced_store_back_to_genesis(source, target, small_chunks,
                                                           tmp_path):
    joiner, store_of_source = target
    genesis = source[1]
    store = joiner.store
    snapshot, manifest = snapshot_manifest(store_of_source, 64)
    try:
        loader = loader_for(store_of_source, store, manifest)
        loader.begin()
        loader.add(0, snapshot.chunk(0))
    finally:
        snapshot.close()
    assert in_progress(store) == 64
    stateload.reset(store, genesis)
    assert in_progress(store) is None
    assert store.head() == (0, genesis.hash())
    fresh = open_chain(tmp_path / "fresh", genesis).store
    try:
        assert store.state_acc() == fresh.state_acc()
        for name in TABLES:
            assert table(store, name) == table(fresh, name), name
        assert table(store, "meta") == table(fresh, "meta")
    finally:
        fresh.close()
    load(store, store_of_source, 64)       # and it syncs afresh
    assert store.head() == store_of_source.head()
