"""What a restarted validator reads back from its store: the ids of the transactions it
executed last (so its replica does not take them into its pool again) and the latest
block time."""
from __future__ import annotations

import hashlib

import msgpack

from ledger_kit import certified, keypair, make_genesis, story
from node.envelope import Door
from node.executor import open_ledger


def _executed_log(tmp_path):
    admin = keypair("admin")
    genesis = make_genesis(admin)
    ledger = open_ledger(tmp_path / "store", genesis, Door(genesis.chain))
    ids = []
    for height, (time_ms, envelopes) in enumerate(story(admin), start=1):
        ledger.execute(certified(ledger, height, time_ms, envelopes))
        ids += [hashlib.sha256(msgpack.unpackb(e)[0]).digest() for e in envelopes]
    return ledger, ids


def test_recent_tx_ids_are_the_last_executed_oldest_first(tmp_path):
    ledger, ids = _executed_log(tmp_path)
    assert ledger.store.recent_tx_ids(5) == ids[-5:]
    assert ledger.store.recent_tx_ids(10_000) == ids


def test_recent_tx_ids_of_an_empty_store_is_empty(tmp_path):
    genesis = make_genesis(keypair("admin"))
    ledger = open_ledger(tmp_path / "store", genesis)
    assert ledger.store.recent_tx_ids(10) == []
    assert ledger.store.block_time() == 0


def test_block_time_is_the_last_blocks_time_after_a_reopen(tmp_path):
    ledger, _ = _executed_log(tmp_path)
    last_time = story(keypair("admin"))[-1][0]
    assert ledger.store.block_time() == last_time
    ledger.store.close()
    genesis = make_genesis(keypair("admin"))
    assert open_ledger(tmp_path / "store", genesis).store.block_time() == last_time
