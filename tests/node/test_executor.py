"""Execution into LMDB (node/executor.py, node/store.py, node/block.py): one batch, one
block, one write transaction; replay from genesis reproduces every hash."""
from __future__ import annotations

import hashlib
import struct

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from chaincode.root import acc_of
from consensus.api import StableCheckpoint
from consensus.digest import batch_digest, checkpoint_bytes
from ledger_kit import CHAIN, T0, VALIDATOR_NAMES, certified, keypair, make_genesis, story
from node.block import results_root
from node.envelope import Door
from node.executor import LedgerError, batch_of, open_ledger, replay
from node.store import ConsensusStorage, Store


def run_story(path, admin, spends=3):
    executor = open_ledger(path, make_genesis(admin))
    hashes = []
    for height, (time_ms, envelopes) in enumerate(story(admin, spends), 1):
        hashes.append(executor.execute(certified(executor, height, time_ms, envelopes)))
    return executor, hashes


def state_items(store: Store) -> list[tuple[bytes, bytes]]:
    return list(store.scan(b""))


def test_replaying_a_log_from_genesis_into_a_fresh_store_gives_the_same_hashes(tmp_path, admin):
    executor, hashes = run_story(tmp_path / "a", admin)
    executor.store.close()
    source = Store(tmp_path / "a")            # reopened from disk
    assert source.head() == (len(hashes), hashes[-1])
    fresh = open_ledger(tmp_path / "b", make_genesis(admin), Door(CHAIN))
    assert replay(source, fresh) == hashes[-1]
    assert [fresh.store.block(h).hash for h in range(1, len(hashes) + 1)] == hashes
    assert state_items(fresh.store) == state_items(source)
    assert fresh.store.state_acc() == source.state_acc()
    assert fresh.store.events(0, 1000) == source.events(0, 1000)


def test_block_hashes_chain_from_the_genesis_hash_as_documented(tmp_path, admin, genesis):
    executor, hashes = run_story(tmp_path, admin)
    prev = genesis.hash()
    for height, block_hash in enumerate(hashes, 1):
        record = executor.store.block(height)
        assert record.prev_hash == prev
        # docs/protocol.md, "Block hash", written out independently of node/block.py
        expected = hashlib.sha256(b"stadsmunt/block/v1" + prev + struct.pack(">Q", height)
                                  + record.batch_digest + record.results_root
                                  + record.state_root).digest()
        assert block_hash == record.hash == expected
        prev = block_hash


def test_results_root_covers_every_result_in_order(tmp_path, admin):
    executor, _ = run_story(tmp_path, admin)
    for height in range(1, executor.store.head()[0] + 1):
        encoded = executor.store.results(height)
        inner = b"".join(hashlib.sha256(r).digest() for r in encoded)
        expected = hashlib.sha256(b"stadsmunt/results/v1" + struct.pack(">I", len(encoded))
                                  + inner).digest()
        assert executor.store.block(height).results_root == expected == results_root(encoded)
    assert results_root([b"a", b"b"]) != results_root([b"b", b"a"])


def test_the_batch_digest_in_the_block_covers_its_envelopes(tmp_path, admin):
    executor, _ = run_story(tmp_path, admin)
    record = executor.store.block(6)
    hashes = [hashlib.sha256(e).digest() for e in record.envelopes]
    assert record.batch_digest == batch_digest(executor.domain, 6, record.time_ms, hashes)


def test_executing_a_height_again_returns_its_hash_and_changes_nothing(tmp_path, admin):
    executor, hashes = run_story(tmp_path, admin)
    before = (state_items(executor.store), executor.store.last_position())
    again = batch_of(executor.store.block(2), executor.door)
    assert executor.execute(again) == hashes[1]
    assert (state_items(executor.store), executor.store.last_position()) == before


def test_another_batch_at_an_executed_height_is_a_divergence(tmp_path, admin):
    executor, _ = run_story(tmp_path, admin)
    other = certified(executor, 2, T0, [])
    with pytest.raises(LedgerError, match="another batch"):
        executor.execute(other)


def test_a_batch_that_skips_a_height_is_refused(tmp_path, admin, genesis):
    executor = open_ledger(tmp_path, genesis)
    with pytest.raises(LedgerError, match="does not follow"):
        executor.execute(certified(executor, 2, T0, []))


def test_a_batch_whose_digest_does_not_cover_its_envelopes_is_refused(tmp_path, admin, genesis):
    executor = open_ledger(tmp_path, genesis)
    batch = certified(executor, 1, T0, [])
    forged = type(batch)(1, 0, T0 + 1, batch.digest, (), batch.certificate)
    with pytest.raises(LedgerError, match="digest"):
        executor.execute(forged)
    assert executor.store.head()[0] == 0


def test_event_positions_start_at_1_and_step_by_one(tmp_path, admin):
    executor, _ = run_story(tmp_path, admin)
    events = executor.store.events(0, 1000)
    assert [e.position for e in events] == list(range(1, len(events) + 1))
    assert executor.store.last_position() == len(events)
    assert executor.store.events(5, 2) == events[5:7]
    for height in range(1, executor.store.head()[0] + 1):
        record = executor.store.block(height)
        mine = [e for e in events if e.height == height]
        assert [e.position for e in mine] == list(
            range(record.first_position, record.first_position + record.event_count))


def test_account_history_lists_exactly_the_events_that_name_the_account(tmp_path, admin):
    executor, _ = run_story(tmp_path, admin)
    shop = keypair("shop").public
    everything = executor.store.events(0, 1000)
    expected = [e for e in everything if shop in e.event.values()]
    assert executor.store.account_events(shop, 0, 1000) == expected
    assert len(expected) >= 5
    assert executor.store.account_events(shop, expected[1].position, 2) == expected[2:4]


def test_a_transaction_is_found_by_its_id_and_a_duplicate_keeps_the_first(tmp_path, admin):
    executor, _ = run_story(tmp_path, admin)
    last = executor.store.block(9)
    duplicate_body = msgpack.unpackb(last.envelopes[1])[0]
    tx_id = hashlib.sha256(duplicate_body).hexdigest()
    height, index, result = executor.store.tx_result(tx_id)
    assert (height, index) == (6, 0)
    assert msgpack.unpackb(result)["code"] == "ok"
    assert msgpack.unpackb(executor.store.results(9)[1])["code"] == "duplicate"
    assert executor.store.tx_result("00" * 32) is None
    assert executor.store.tx_result("not hex") is None


def test_payouts_move_from_pending_to_paid_and_tasks_are_found_by_area(tmp_path, admin):
    executor, _ = run_story(tmp_path, admin)
    paid = executor.store.payouts(True, b"", 10)
    assert [e.event["kind"] for e in paid] == ["coin.redeemed"]
    assert executor.store.payouts(False, b"", 10) == []
    assert executor.store.tasks_in_area("GMS", "", 10) == ["litter-1"]
    assert executor.store.tasks_in_area("XYZ", "", 10) == []


def test_the_accumulator_is_the_sum_over_the_stored_state(tmp_path, admin):
    executor, _ = run_story(tmp_path, admin)
    assert executor.store.state_acc() == acc_of(state_items(executor.store))


def test_a_checkpoint_is_kept_with_its_block_and_a_wrong_one_refused(tmp_path, admin):
    executor, hashes = run_story(tmp_path, admin)
    signers = [keypair(n) for n in ("municipality", "cbs", "brightlands")]
    set_hash = executor.newest_set_hash()
    message = checkpoint_bytes(executor.domain, 4, hashes[3], set_hash)
    certificate = tuple((i, k.sign(message)) for i, k in enumerate(signers))
    executor.keep_checkpoint(StableCheckpoint(4, hashes[3], set_hash, certificate))
    assert executor.store.checkpoint(4) == (hashes[3], certificate, set_hash)
    with pytest.raises(LedgerError):
        executor.keep_checkpoint(StableCheckpoint(5, hashes[3], set_hash, certificate))
    assert executor.store.checkpoint(5) is None


def test_a_store_of_another_genesis_is_refused(tmp_path, admin, genesis):
    open_ledger(tmp_path, genesis).store.close()
    other = make_genesis(keypair("someone else"))
    with pytest.raises(LedgerError, match="another chain"):
        open_ledger(tmp_path, other)
    open_ledger(tmp_path, genesis).store.close()   # the right genesis still opens


def test_consensus_storage_keeps_writes_and_deletes_across_reopening(tmp_path, genesis):
    store = Store(tmp_path)
    storage = ConsensusStorage(store)
    storage.write([(b"view", b"\x01"), (b"prepared/1", b"x"), (b"prepared/2", b"y")])
    storage.write([(b"prepared/1", None), (b"view", b"\x02")])
    store.close()
    assert ConsensusStorage(Store(tmp_path)).items() == [(b"prepared/2", b"y"),
                                                          (b"view", b"\x02")]


def test_a_consensus_write_is_flushed_with_the_meta_page_before_it_returns(tmp_path):
    """The store opens LMDB with metasync off (a commit does not flush the meta page), so
    a vote is durable only once `env.sync(True)` ran: the replica sends its messages
    after the write returns (consensus/driver.py), never before it is on disk."""
    store = Store(tmp_path)
    calls: list[tuple] = []

    class Watched:
        """The environment, with its syncs (and what was committed by then) noted."""
        def __init__(self, env):
            self._env = env

        def __getattr__(self, name):
            return getattr(self._env, name)

        def sync(self, force=False):
            with self._env.begin(db=store.db["consensus"]) as txn:
                calls.append((force, txn.get(b"vote/9")))
            return self._env.sync(force)
    storage = ConsensusStorage(store)
    storage.env = Watched(store.env)
    storage.write([(b"vote/9", b"v")])
    assert calls == [(True, b"v")]
    store.close()


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(0, 3), min_size=1, max_size=6), st.integers(0, 4))
def test_any_split_of_a_log_into_blocks_replays_to_the_same_hashes(tmp_path_factory, cuts,
                                                                    spends):
    admin = keypair("admin")
    envelopes = [e for _, block in story(admin, spends) for e in block]
    blocks, at = [], 0
    for size in cuts + [len(envelopes)]:
        blocks.append(envelopes[at:at + size])
        at += size
    a = open_ledger(tmp_path_factory.mktemp("a"), make_genesis(admin))
    for height, chunk in enumerate(blocks, 1):
        a.execute(certified(a, height, T0 + height * 60_000, chunk))
    b = open_ledger(tmp_path_factory.mktemp("b"), make_genesis(admin))
    replay(a.store, b)
    assert [r.hash for r in b.store.blocks(1, 100)] == [r.hash for r in a.store.blocks(1, 100)]
    events = a.store.events(0, 1000)
    assert [e.position for e in events] == list(range(1, len(events) + 1))
    assert a.store.state_acc() == acc_of(state_items(a.store))
    a.store.close()
    b.store.close()


def test_block_and_event_pages_respect_from_after_and_limit(tmp_path, admin):
    executor, hashes = run_story(tmp_path, admin)
    store = executor.store
    assert [b.height for b in store.blocks(3, 2)] == [3, 4]
    assert [b.hash for b in store.blocks(1, 5000)] == hashes      # capped, not refused
    assert store.blocks(len(hashes) + 1, 10) == []                # past the head: empty
    assert store.events(store.last_position(), 10) == []
    assert store.events(0, 0) == []
    assert store.account_events(b"short", 0, 10) == []


def test_state_scan_reads_by_prefix_in_key_order(tmp_path, admin):
    executor, _ = run_story(tmp_path, admin)
    members = list(executor.store.scan(b"m/"))
    # the story registers three members; genesis has a steward per validator
    assert len(members) == 3 + len(VALIDATOR_NAMES)
    assert [k for k, _ in members] == sorted(k for k, _ in members)
    assert all(k.startswith(b"m/") for k, _ in members)
    assert list(executor.store.scan(b"m/", limit=2)) == members[:2]
    assert executor.store.get(members[0][0]) == members[0][1]
