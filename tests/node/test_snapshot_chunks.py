"""The snapshot's chunks and manifest (node/snapshots.py, docs/statesync.md "Snapshots"):
the state cut deterministically into chunks of at most CHUNK_BYTES (but always one entry),
a chunk's bytes checked by the joiner, the manifest's fields checked, and the same
manifest from two validators with the same state."""
from __future__ import annotations

import asyncio
import hashlib
from unittest import mock

import pytest
from hypothesis import given, strategies as st

from consensus.digest import ZERO_HASH
from node import snapshots
from node.block import BlockRecord
from node.snapshots import ENTRY_OVERHEAD, Manifest, Snapshot, chunk_bytes, cut, decode_chunk
from node.store import Store
from protocol import codec
from sync_kit import build_chain, table

# ---- cut ------------------------------------------------------------------------------

keys = st.binary(min_size=1, max_size=24)
states = st.dictionaries(keys, st.binary(max_size=60), max_size=40).map(
    lambda d: sorted(d.items()))
limits = st.integers(min_value=1, max_value=300)


def cost(entry) -> int:
    return len(entry[0]) + len(entry[1]) + ENTRY_OVERHEAD


def cut_with(limit: int, entries):
    with mock.patch.object(snapshots, "CHUNK_BYTES", limit):
        return list(cut(iter(entries)))


@given(states, limits)
def test_the_chunks_are_the_state_in_order_none_empty(entries, limit):
    chunks = cut_with(limit, entries)
    assert [e for chunk in chunks for e in chunk] == entries
    assert all(chunks)


@given(states, limits)
def test_a_chunk_holds_at_most_chunk_bytes_or_a_single_entry(entries, limit):
    for chunk in cut_with(limit, entries):
        assert len(chunk) == 1 or sum(cost(e) for e in chunk) <= limit


@given(states, limits)
def test_a_chunk_holds_as_many_entries_as_fit(entries, limit):
    """Greedy: the next chunk's first entry would not have fit the chunk before it, so
    every validator cuts at the same keys."""
    chunks = cut_with(limit, entries)
    for chunk, following in zip(chunks, chunks[1:]):
        assert sum(cost(e) for e in chunk) + cost(following[0]) > limit


@given(states, limits)
def test_cutting_is_deterministic(entries, limit):
    assert cut_with(limit, entries) == cut_with(limit, list(entries))
    assert [chunk_bytes(c) for c in cut_with(limit, entries)] == \
        [chunk_bytes(c) for c in cut_with(limit, entries)]


def test_an_entry_larger_than_a_chunk_is_a_chunk_of_its_own():
    big = (b"b", bytes(100))
    chunks = cut_with(50, [(b"a", b"1"), big, (b"c", b"3")])
    assert chunks == [[(b"a", b"1")], [big], [(b"c", b"3")]]
    assert cut_with(50, []) == []


# ---- decode_chunk ---------------------------------------------------------------------

@given(states.filter(bool), limits)
def test_every_chunk_decodes_back_to_its_entries(entries, limit):
    after = None
    for chunk in cut_with(limit, entries):
        assert decode_chunk(chunk_bytes(chunk), after) == chunk
        after = chunk[-1][0]


@pytest.mark.parametrize("raw, after", [
    (chunk_bytes([(b"b", b"1"), (b"a", b"2")]), None),            # keys not ascending
    (chunk_bytes([(b"a", b"1"), (b"a", b"2")]), None),            # a key twice
    (chunk_bytes([(b"k", b"1")]), b"k"),                          # not above the last
    (chunk_bytes([(b"j", b"1"), (b"l", b"2")]), b"k"),            # below the last
    (codec.pack([["a", b"1"]]), None),                            # a str key
    (codec.pack([[b"a", 1]]), None),                              # an int value
    (codec.pack([[b"a", b"1", b"x"]]), None),                     # three items
    (codec.pack([[b"a"]]), None),                                 # one item
    (codec.pack([b"a"]), None),                                   # not a pair
    (codec.pack([[b"", b"1"]]), None),                            # an empty key
    (codec.pack([]), None),                                       # no entry
    (codec.pack({"a": b"1"}), None),                              # not an array
    (b"\xc1", None),                                              # not msgpack
    (chunk_bytes([(b"a", b"1")]) + b"\x00", None),                # trailing bytes
])
def test_a_malformed_chunk_is_refused(raw, after):
    with pytest.raises(ValueError):
        decode_chunk(raw, after)


def test_a_chunk_after_the_previous_last_key_is_taken():
    assert decode_chunk(chunk_bytes([(b"l", b"1")]), b"k") == [(b"l", b"1")]
    assert decode_chunk(chunk_bytes([(b"k\x00", b"")]), b"k") == [(b"k\x00", b"")]


# ---- the manifest ---------------------------------------------------------------------

def record(height: int) -> bytes:
    return BlockRecord(height, 0, 1_000, bytes(32), bytes([1]) * 32, bytes([2]) * 32,
                       bytes([3]) * 32, bytes([4]) * 32, (b"envelope",), ((0, b"s"),),
                       1, 0).encode()


hashes = st.binary(min_size=32, max_size=32)


@given(st.integers(1, 1 << 40), st.integers(0, 1 << 50), hashes,
       st.lists(hashes, min_size=1, max_size=20))
def test_a_manifest_decodes_to_itself(height, clock, base, chunks):
    manifest = Manifest(height, record(height), clock, base, tuple(chunks))
    raw = manifest.encode()
    assert Manifest.decode(raw, len(raw)) == manifest


GOOD = [7, record(7), 5, bytes(32), [bytes(32), bytes([1]) * 32]]


def variant(index: int, value) -> list:
    fields = list(GOOD)
    fields[index] = value
    return fields


@pytest.mark.parametrize("fields", [
    variant(0, 0),                          # height below 1
    variant(0, -7),
    variant(0, "7"),
    variant(1, "record"),                   # a record that is not bytes
    variant(1, record(8)),                  # the record of another height
    variant(1, b"\xc1"),                    # a record that is not msgpack
    variant(1, codec.pack(7)),              # a record that is not an array
    variant(1, codec.pack([7, 0, 1])),      # a record of too few fields
    variant(2, -1),                         # a clock below 0
    variant(2, b"5"),
    variant(3, bytes(31)),                  # a base hash of 31 bytes
    variant(3, "00" * 32),
    variant(4, []),                         # no chunk
    variant(4, [bytes(33)]),                # a chunk hash of 33 bytes
    variant(4, [bytes(32), "x"]),
    variant(4, bytes(32)),                  # chunks that are not an array
    GOOD[:4],                               # a field missing
    GOOD + [0],                             # a field too many
    {"height": 7},
])
def test_a_malformed_manifest_is_refused(fields):
    with pytest.raises(ValueError):
        Manifest.decode(codec.pack(fields), 1 << 20)


def test_a_manifest_of_too_many_chunks_or_bytes_is_refused():
    raw = codec.pack(variant(4, [bytes(32)] * 3))
    assert len(Manifest.decode(raw, len(raw)).chunks) == 3
    with pytest.raises(ValueError):
        Manifest.decode(raw, len(raw) - 1)
    with mock.patch.object(snapshots, "MAX_CHUNKS", 2):
        with pytest.raises(ValueError):
            Manifest.decode(raw, len(raw))


# ---- snapshots of a real store --------------------------------------------------------

@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """Two stores built the same way, independently: two validators' (head 64)."""
    one, two = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
    build_chain(one)
    build_chain(two)
    return one, two


def manifest_of(store, height: int = 64):
    snapshot = Snapshot(store, height, ZERO_HASH)
    return snapshot, asyncio.run(snapshot.manifest())


def test_a_state_larger_than_a_chunk_is_served_in_chunks_the_manifest_names(
        chain, monkeypatch):
    monkeypatch.setattr(snapshots, "CHUNK_BYTES", 16_384)
    with Store(chain[0]) as store:
        state = table(store, "state")
        snapshot, manifest = manifest_of(store)
        try:
            assert 8 <= len(manifest.chunks) <= 30
            assert manifest.height == 64 and manifest.record == store.block(64).encode()
            assert manifest.clock_ms == store.block_time() and manifest.base_hash == ZERO_HASH
            entries, after = [], None
            for index, expected in enumerate(manifest.chunks):
                raw = snapshot.chunk(index)
                assert hashlib.sha256(raw).digest() == expected
                chunk = decode_chunk(raw, after)
                assert len(chunk) == 1 or sum(cost(e) for e in chunk) <= 16_384
                entries += chunk
                after = chunk[-1][0]
            assert entries == state
            assert snapshot.chunk(len(manifest.chunks)) is None
            assert snapshot.chunk(-1) is None
        finally:
            snapshot.close()
        assert snapshot.chunk(0) is None        # a dropped snapshot serves nothing


def test_a_chunk_is_served_only_once_the_manifest_is_computed(chain):
    with Store(chain[0]) as store:
        snapshot = Snapshot(store, 64, ZERO_HASH)
        try:
            assert snapshot.chunk(0) is None
            asyncio.run(snapshot.manifest())
            assert snapshot.chunk(0) is not None
        finally:
            snapshot.close()


def test_two_validators_with_the_same_state_give_the_same_manifest(chain, monkeypatch):
    monkeypatch.setattr(snapshots, "CHUNK_BYTES", 16_384)
    with Store(chain[0]) as first, Store(chain[1]) as second:
        one, manifest_one = manifest_of(first)
        two, manifest_two = manifest_of(second)
        try:
            assert len(manifest_one.chunks) > 1
            assert manifest_one.encode() == manifest_two.encode()
            assert all(one.chunk(i) == two.chunk(i) for i in range(len(manifest_one.chunks)))
        finally:
            one.close()
            two.close()


def test_a_snapshot_keeps_its_state_while_the_store_is_written(chain, monkeypatch):
    """The state of the snapshot's height, pinned in its read transaction: a write after
    it was taken changes neither its manifest nor its chunks."""
    monkeypatch.setattr(snapshots, "CHUNK_BYTES", 16_384)
    with Store(chain[0]) as store, Store(chain[1]) as other:
        reference, expected = manifest_of(other)
        reference.close()
        snapshot = Snapshot(store, 64, ZERO_HASH)
        try:
            first_key = table(store, "state")[0][0]
            with store.env.begin(write=True, db=store.db["state"]) as txn:
                txn.put(first_key, b"changed after the snapshot")
                txn.put(b"\x00a key written after it", b"x")
            try:
                manifest = asyncio.run(snapshot.manifest())
                assert manifest.encode() == expected.encode()
                assert hashlib.sha256(snapshot.chunk(0)).digest() == manifest.chunks[0]
                fresh, changed = manifest_of(store)
                fresh.close()
                assert changed.chunks != manifest.chunks    # the store did change
            finally:
                with store.env.begin(write=True, db=store.db["state"]) as txn:
                    txn.put(first_key, dict(table(other, "state"))[first_key])
                    txn.delete(b"\x00a key written after it")
        finally:
            snapshot.close()
