"""The history below a synced state (node/history.py, docs/statesync.md "The history
below"): fetched from a peer from the snapshot down, each block checked without running
it, then indexed; the tables end up the source's. And a store's block lists end before a
height it lacks (node/store.py)."""
from __future__ import annotations

import shutil
import struct

import pytest

from node import history
from node.block import BlockRecord
from node.envelope import sign_tx
from node.history import HistoryRefused
from node.store import Store
from protocol import codec
from protocol.envelope import envelope_tx_id
from sync_kit import (CHAIN, T0, build_chain, certify, keep_checkpoint, key, load,
                      open_chain, spends, table)

INDEXED = ("log", "txids", "accounts", "areas", "payouts", "results", "blocks")
LARGE = 64 << 20
_U64 = struct.Struct(">Q")


def redeem(amount: int, nonce: int) -> bytes:
    return sign_tx(key("merchant"), CHAIN, "coin.redeem", {"amount": amount}, nonce=nonce)


def confirm(payout: bytes, nonce: int) -> bytes:
    return sign_tx(key("admin"), CHAIN, "payout.confirm",
                   {"payout": envelope_tx_id(payout), "reference": f"bank {nonce}"},
                   nonce=nonce)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A chain of 64 blocks whose history has every index: spends, then in block 63
    three payouts redeemed, in block 64 one of them confirmed; a checkpoint at 64.
    Returns (folder, genesis, the redeem envelopes)."""
    folder = tmp_path_factory.mktemp("source")
    genesis = build_chain(folder, 58 * 20, 20)          # head 62
    executor = open_chain(folder, genesis)
    redeems = [redeem(amount, 6_000_000 + amount) for amount in (5, 6, 7)]
    executor.execute(certify(executor, 63, T0 + 63_000, redeems))
    executor.execute(certify(executor, 64, T0 + 64_000, [confirm(redeems[0], 6_000_100)]))
    keep_checkpoint(executor, 64)
    executor.store.close()
    return folder, genesis, redeems


@pytest.fixture
def pair(source, tmp_path):
    """(source store, synced store): a fresh validator synced at 64 from the source."""
    folder, genesis, _ = source
    joiner = open_chain(tmp_path / "synced", genesis)
    with Store(folder) as store:
        load(joiner.store, store, 64)
        yield store, joiner.store
    joiner.store.close()


def fetch_all(source, target, max_bytes: int = LARGE) -> int:
    """What a validator's history loop does, with the source as every peer."""
    answers = 0
    while (stretch := history.ask(target)) is not None:
        items = history.serve(source, stretch[0], stretch[1], max_bytes)
        assert history.apply(target, [(raw, results) for raw, results in items]) == len(items)
        answers += 1
    return answers


def reindex_all(target) -> int:
    steps = 1
    while history.reindex_step(target):
        steps += 1
    return steps


def test_the_fetched_and_indexed_history_is_the_sources(pair):
    source, target = pair
    assert fetch_all(source, target) == 1           # 64 blocks: one stretch
    reindex_all(target)
    for name in INDEXED + ("state",):
        assert table(target, name) == table(source, name), name
    assert table(source, "payouts")                 # the history did have payouts
    assert target.events(0, 1000) == source.events(0, 1000)
    assert target.last_position() == source.last_position()
    assert history.status(target) == {"complete": True, "missing": None, "indexing": None}


def test_the_status_says_each_stage(pair, monkeypatch):
    monkeypatch.setattr(history, "ASK_BLOCKS", 20)
    monkeypatch.setattr(history, "REINDEX_BLOCKS", 30)
    source, target = pair
    assert history.status(target) == {"complete": False, "missing": [1, 64],
                                       "indexing": None}
    assert history.ask(target) == (45, 64)
    history.apply(target, history.serve(source, 45, 64, LARGE))
    assert history.status(target) == {"complete": False, "missing": [1, 44],
                                       "indexing": None}
    assert history.ask(target) == (25, 44)
    assert history.reindex_step(target) is False    # nothing to index before all is in
    assert fetch_all(source, target) == 3           # 25-44, 5-24, 1-4
    assert history.ask(target) is None
    assert history.status(target) == {"complete": False, "missing": None,
                                       "indexing": [1, 64]}
    assert history.reindex_step(target) is True
    assert history.status(target) == {"complete": False, "missing": None,
                                       "indexing": [31, 64]}
    assert history.reindex_step(target) is True
    assert history.reindex_step(target) is False
    assert history.status(target) == {"complete": True, "missing": None, "indexing": None}
    for name in INDEXED:
        assert table(target, name) == table(source, name), name


def test_a_source_with_all_its_history_says_complete(pair):
    assert history.status(pair[0]) == {"complete": True, "missing": None, "indexing": None}
    assert history.ask(pair[0]) is None


def test_blocks_executed_after_the_sync_are_indexed_as_on_the_source(source, tmp_path):
    """A payout redeemed before the snapshot and confirmed after it (before the history
    is indexed) is indexed paid; a transaction of that history sent again after the
    sync keeps pointing at its first execution."""
    folder, genesis, redeems = source
    shutil.copytree(folder, tmp_path / "source")
    ahead = open_chain(tmp_path / "source", genesis)
    synced = open_chain(tmp_path / "synced", genesis)
    try:
        load(synced.store, ahead.store, 64)
        envelopes = [confirm(redeems[1], 6_000_101), redeems[2]] + spends(5_000, 3)
        for executor in (ahead, synced):
            executor.execute(certify(executor, 65, T0 + 65_000, envelopes))
        assert synced.store.head() == ahead.store.head()
        assert codec.unpack(synced.store.results(65)[1], 1 << 20)["code"] == "duplicate"
        assert history.ask(synced.store) == (1, 64)
        fetch_all(ahead.store, synced.store)
        reindex_all(synced.store)
        for name in INDEXED + ("state",):
            assert table(synced.store, name) == table(ahead.store, name), name
        assert len(ahead.store.payouts(True, b"", 10)) == 2
        assert len(ahead.store.payouts(False, b"", 10)) == 1
    finally:
        ahead.store.close()
        synced.store.close()


def test_history_of_a_store_that_was_behind_fills_only_the_gap(source, tmp_path):
    from node.executor import replay
    folder, genesis, _ = source
    joiner = open_chain(tmp_path / "behind", genesis)
    try:
        with Store(folder) as store:
            replay(store, joiner, 10)
            load(joiner.store, store, 64)
            assert history.status(joiner.store)["missing"] == [11, 64]
            fetch_all(store, joiner.store)
            assert history.status(joiner.store)["indexing"] == [11, 64]
            reindex_all(joiner.store)
            for name in INDEXED:
                assert table(joiner.store, name) == table(store, name), name
    finally:
        joiner.store.close()


# ---- refusals -------------------------------------------------------------------------

def state_of_history(store):
    return (history.missing(store), history.indexing(store), table(store, "blocks"),
            table(store, "results"))


def served(source, height: int) -> tuple[bytes, list[bytes]]:
    return history.serve(source, height, height, LARGE)[0]


def refused(target, items, height: int, reason: str) -> None:
    before = state_of_history(target)
    with pytest.raises(HistoryRefused) as caught:
        history.apply(target, items)
    assert caught.value.height == height and reason in caught.value.reason
    assert state_of_history(target) == before       # nothing written for that block


def rebuilt(raw: bytes, **changes) -> bytes:
    fields = BlockRecord.decode(raw)
    values = {name: getattr(fields, name) for name in fields.__slots__}
    values.update(changes)
    return BlockRecord(**values).encode()


def test_a_record_of_another_height_is_refused(pair):
    source, target = pair
    refused(target, [served(source, 63)], 64, "holds block 63")


def test_a_record_whose_hash_is_not_the_expected_one_is_refused(pair):
    source, target = pair
    raw, results = served(source, 64)
    record = BlockRecord.decode(raw)
    flipped = bytes([record.hash[0] ^ 1]) + record.hash[1:]
    refused(target, [(rebuilt(raw, hash=flipped), results)], 64, "hash")
    root = bytes([record.state_root[0] ^ 1]) + record.state_root[1:]
    refused(target, [(rebuilt(raw, state_root=root), results)], 64, "hash")
    refused(target, [(raw[:-1], results)], 64, "undecodable")


def test_a_record_with_any_byte_tampered_is_refused(pair):
    """The block hash does not cover the envelopes, the log position or the event
    count: a byte of those changed must be refused all the same."""
    source, target = pair
    raw, results = served(source, 64)
    record = BlockRecord.decode(raw)
    envelope = record.envelopes[0]
    tampered = (envelope[:40] + bytes([envelope[40] ^ 1]) + envelope[41:],) + \
        record.envelopes[1:]
    refused(target, [(rebuilt(raw, envelopes=tampered), results)], 64, "envelopes")
    refused(target, [(rebuilt(raw, envelopes=record.envelopes[:-1]), results[:-1])], 64,
            "envelopes")
    refused(target, [(rebuilt(raw, time_ms=record.time_ms + 1), results)], 64, "time")
    refused(target, [(rebuilt(raw, first_position=record.first_position + 1), results)],
            64, "log positions")
    refused(target, [(rebuilt(raw, event_count=record.event_count + 1), results)], 64,
            "log positions")
    assert history.apply(target, [(raw, results)]) == 1
    below, below_results = served(source, 63)
    low = BlockRecord.decode(below)
    for changes in ({"first_position": low.first_position - 1},
                    {"event_count": low.event_count + 1},
                    # the sum still meets the block above: the results say otherwise
                    {"first_position": low.first_position - 1,
                     "event_count": low.event_count + 1}):
        refused(target, [(rebuilt(below, **changes), below_results)], 63, "")
    assert history.apply(target, [(below, below_results)]) == 1


def test_a_record_of_the_wrong_shape_is_refused(pair):
    """A peer knows the hash expected at a height: a record that carries it with fields
    of the wrong type or size is refused like any other, not an error of another kind."""
    source, target = pair
    raw, results = served(source, 64)
    record = BlockRecord.decode(raw)
    for changes in ({"prev_hash": record.prev_hash[:31]}, {"state_root": 7},
                    {"envelopes": (1,) + record.envelopes[1:]}, {"time_ms": -1},
                    {"first_position": str(record.first_position)},
                    {"event_count": True}):
        refused(target, [(rebuilt(raw, **changes), results)], 64, "wrong type")
    refused(target, [(codec.pack([64, 0]), results)], 64, "undecodable")


def test_results_that_do_not_make_the_results_root_are_refused(pair):
    source, target = pair
    history.apply(target, [served(source, 64)])
    raw, results = served(source, 63)
    assert len(results) == 3
    refused(target, [(raw, results[:-1])], 63, "results root")
    refused(target, [(raw, [results[1], results[0]] + results[2:])], 63, "results root")
    refused(target, [(raw, results[:-1] + [results[0]])], 63, "results root")
    assert history.apply(target, [(raw, results)]) == 1


def test_the_blocks_before_a_refused_one_are_kept(pair):
    source, target = pair
    items = history.serve(source, 60, 64, LARGE)
    wrong = items[:2] + [items[3]] + items[4:]      # 64, 63, then 61 where 62 belongs
    with pytest.raises(HistoryRefused) as caught:
        history.apply(target, wrong)
    assert caught.value.height == 62
    assert history.missing(target)[:2] == (1, 62)
    assert target.block(63).encode() == source.block(63).encode()
    assert target.block(62) is None and target.results(62) == []
    assert history.apply(target, items[2:]) == 3


# ---- serving --------------------------------------------------------------------------

def test_serve_answers_from_the_top_down_within_max_bytes_but_one_block(pair):
    source, _ = pair
    every = history.serve(source, 1, 64, LARGE)
    assert [BlockRecord.decode(raw).height for raw, _ in every] == list(range(64, 0, -1))
    assert all(results == source.results(BlockRecord.decode(raw).height)
               for raw, results in every)
    costs = [len(raw) + sum(len(r) for r in results) for raw, results in every]
    assert len(history.serve(source, 1, 64, 1)) == 1
    assert len(history.serve(source, 1, 64, costs[0] + costs[1])) == 2
    assert len(history.serve(source, 1, 64, costs[0] + costs[1] - 1)) == 1
    assert len(history.serve(source, 50, 60, LARGE)) == 11


def test_serve_stops_where_this_store_lacks_a_block_or_its_results(pair):
    source, target = pair
    assert history.serve(target, 1, 64, LARGE) == []    # block 64 but not its results
    history.apply(target, history.serve(source, 40, 64, LARGE))
    got = history.serve(target, 1, 64, LARGE)
    assert [BlockRecord.decode(raw).height for raw, _ in got] == list(range(64, 39, -1))
    assert got == history.serve(source, 40, 64, LARGE)
    assert history.serve(target, 1, 39, LARGE) == []
    assert history.serve(source, 60, 70, LARGE) == []   # 70 is above its head


# ---- the store's block lists ----------------------------------------------------------

def test_block_lists_end_before_a_height_the_store_lacks(pair):
    source, target = pair
    record = source.block(64)
    assert target.blocks(1, 100) == [] and target.raw_blocks(1, 100, LARGE) == []
    assert target.blocks(63, 100) == []
    assert target.blocks(64, 100) == [record]
    assert target.raw_blocks(64, 100, LARGE) == [record.encode()]
    history.apply(target, history.serve(source, 40, 64, LARGE))
    assert [r.height for r in target.blocks(40, 100)] == list(range(40, 65))
    assert [r.height for r in target.blocks(50, 5)] == list(range(50, 55))
    assert target.blocks(1, 100) == [] and target.blocks(39, 100) == []
    raw = target.raw_blocks(40, 100, LARGE)
    assert raw == [source.block(h).encode() for h in range(40, 65)]
    assert target.raw_blocks(30, 100, LARGE) == []
    assert len(target.raw_blocks(40, 100, 1)) == 1
    assert [r.height for r in source.blocks(1, 100)] == list(range(1, 65))
