"""View changes name batches by digest: their messages stay small whatever the batches
hold, a replica that lacks a re-proposed batch still votes and then fetches it, and an
answer whose envelopes miss the digest is refused."""
from __future__ import annotations

import hashlib

import msgpack
from hypothesis import given, strategies as st

from consensus import durable, wire
from consensus.api import Request, StableCheckpoint
from consensus.batches import RECENT_PER_HEIGHT, BatchFetcher, BatchStore
from consensus.messages import (BatchPayloads, Commit, FetchBatch, NewView, PreparedProof,
                                PrePrepare, Reproposal, ViewChange)
from consensus.viewchange import make_view_change
from tests.consensus.cluster import Cluster
from tests.consensus.test_properties import config_for


def view_change_bound(quorum: int, heights: int, signature: int) -> int:
    """What a view change may weigh: a fixed part (stable certificate included) and,
    per prepared height, the header and quorum signatures. Nothing about the batch."""
    per_signature = signature + 4
    return 128 + quorum * per_signature + heights * (64 + quorum * per_signature)


def new_view_bound(quorum: int, heights: int, signature: int) -> int:
    return 16 + quorum * view_change_bound(quorum, heights, signature) + \
        heights * (48 + signature)


def prepare_without_commits(cluster: Cluster, heights: int, per_batch: int, padding: int):
    """The primary proposes `heights` full batches; every backup prepares them, no commit
    gets through. Returns the batches' requests."""
    cluster.tick()
    batches = []
    for _ in range(heights):
        requests = [cluster.registry.make(cluster.made + k, bytes(padding))
                    for k in range(per_batch)]
        cluster.made += per_batch
        cluster.prepare_only(requests)
        batches.append(tuple(requests))
    return batches


def view_change_sizes(padding: int) -> tuple[list[int], list[int], Cluster, list]:
    c = Cluster(batch_max_count=1000, window=64, checkpoint_interval=32, max_in_flight=16)
    batches = prepare_without_commits(c, 12, 1000, padding)
    assert len(c.replica(1).proofs) == 12
    c.crash(0)
    c.tick(30)
    sizes = [len(wire.encode(m)) for s, t, m in c.sent if isinstance(m, ViewChange)]
    new_views = [len(wire.encode(m)) for s, t, m in c.sent if isinstance(m, NewView)]
    return sizes, new_views, c, batches


def test_view_change_and_new_view_do_not_grow_with_the_batches_they_carry():
    small_vcs, small_nvs, _, _ = view_change_sizes(padding=8)
    vcs, nvs, c, batches = view_change_sizes(padding=2_000)   # 1,000 x 2 KB per batch
    assert vcs and nvs
    assert sorted(vcs) == sorted(small_vcs) and sorted(nvs) == sorted(small_nvs)
    q = c.config.quorum
    assert max(vcs) <= view_change_bound(q, 12, 16) < 16 * 1024
    assert max(nvs) <= new_view_bound(q, 12, 16) < 32 * 1024
    # the new view commits every prepared batch, the same blocks everywhere
    assert c.heights()[1:] == [12, 12, 12]
    chains = [c.ledgers[i].blocks for i in (1, 2, 3)]
    assert chains[0] == chains[1] == chains[2]
    assert [b.requests for b in chains[0]] == batches
    assert all(b.view == 1 for b in chains[0])


def test_a_full_window_of_prepared_heights_fits_in_64_kib_with_ed25519_signatures():
    """64 heights, 64-byte signatures, the widest integers: what the node would send."""
    signature = bytes(64)
    for n in (4, 7):
        config = config_for(n)
        q = config.quorum

        class Signer:
            def sign(self, message: bytes) -> bytes:
                return signature

        proofs = [PreparedProof(2 ** 40, h, 2 ** 42, bytes(32), signature,
                                tuple((i, signature) for i in range(1, q)))
                  for h in range(2 ** 30 + 1, 2 ** 30 + config.window + 1)]
        stable = StableCheckpoint(2 ** 30, bytes(32), bytes(32),
                                  tuple((i, signature) for i in range(q)))
        vc = make_view_change(config, Signer(), 1, 2 ** 40 + 1, stable, proofs)
        nv = NewView(vc.new_view, (vc,) * q,
                     tuple(Reproposal(vc.new_view, p.height, p.time_ms, p.digest, signature)
                           for p in proofs))
        size, new_view_size = len(wire.encode(vc)), len(wire.encode(nv))
        assert size <= view_change_bound(q, config.window, 64)
        assert new_view_size <= new_view_bound(q, config.window, 64)
        if n == 4:
            assert size < 20 * 1024 and new_view_size < 64 * 1024


def test_replicas_that_lack_a_prepared_batch_vote_fetch_it_and_refuse_a_wrong_answer():
    c = Cluster(n=7)
    c.tick()
    requests = c.requests(5)
    # replicas 1 (the next primary) and 2 never see the pre-prepare; 3..6 prepare it
    c.drivers[0].submit(requests)
    c.deliver(drop=lambda s, t, m: isinstance(m, Commit) or (
        isinstance(m, PrePrepare) and t in (1, 2)))
    digest = c.replica(3).proofs[1].digest
    assert all(c.replica(i).proofs[1].digest == digest for i in (3, 4, 5, 6))
    assert 1 not in c.replica(1).batches.kept and 1 not in c.replica(2).batches.kept

    def lie(sender, to, message):
        # replica 3 answers with the same envelopes in another order: each passes the
        # door, only the digest tells them apart
        if sender == 3 and isinstance(message, BatchPayloads):
            return BatchPayloads(message.height, message.digest, message.payloads[::-1])
        return message

    c.tamper = lie
    withheld = lambda s, t, m: s == 4 and isinstance(m, BatchPayloads)   # noqa: E731
    c.crash(0)
    c.tick(60, drop=withheld)
    assert [c.replica(i).view for i in range(1, 7)] == [1] * 6
    asked = {(s, m.height) for s, t, m in c.sent if isinstance(m, FetchBatch)}
    assert {(1, 1), (2, 1)} <= asked
    assert c.replica(1).refused_batches >= 1 and c.replica(2).refused_batches >= 1
    for i in range(1, 7):
        block = c.ledgers[i].blocks[0]
        assert block.digest == digest and block.requests == tuple(requests)
    assert len({tuple(c.ledgers[i].hashes) for i in range(1, 7)}) == 1
    # the new primary went on proposing once it held the batch
    more = c.requests(2)
    c.drivers[2].submit(more)
    c.tick(5)
    assert all(c.ledgers[i].height == 2 for i in range(1, 7))


def test_a_restarted_replica_still_serves_the_batches_it_voted_for():
    c = Cluster()
    c.tick()
    requests = c.requests(3)
    c.prepare_only(requests)
    digest = c.replica(2).proofs[1].digest
    c.crash(2)
    c.start(2)
    c.replica(2).receive(1, FetchBatch(1, digest))
    answers = [m for to, m in c.replica(2).take_ready().messages
               if isinstance(m, BatchPayloads)]
    assert answers == [BatchPayloads(1, digest, tuple(r.payload for r in requests))]
    c.replica(2).receive(1, FetchBatch(1, digest))       # asked again at once: no answer
    assert not any(isinstance(m, BatchPayloads) for _, m in c.replica(2).take_ready().messages)


def test_a_primary_keeps_at_most_max_in_flight_heights_uncommitted():
    c = Cluster(batch_max_count=1, max_in_flight=3)
    c.tick()
    c.prepare_only(c.requests(6))
    proposed = {m.height for s, t, m in c.sent if isinstance(m, PrePrepare)}
    assert proposed == {1, 2, 3}
    c.tick(20)
    assert c.heights() == [6, 6, 6, 6]


def _request(i: int) -> Request:
    payload = b"envelope" + bytes([i])
    return Request(bytes([i]), hashlib.sha256(payload).digest(), payload)


@given(st.lists(st.tuples(st.integers(1, 3), st.integers(0, 5), st.booleans()), max_size=40))
def test_kept_batches_are_bounded_keep_the_pinned_and_latest_and_match_the_disk(steps):
    config = config_for(4, checkpoint_interval=2, window=4)
    store = BatchStore(config, {})
    disk: dict[bytes, bytes] = {}
    for height, which, pin in steps:
        digest = bytes([which]) * 32
        before = [d for d in store.kept.get(height, {}) if d != digest] + [digest]
        pinned = before[0] if pin else None      # the prepared certificate's batch
        for key, value in store.keep(height, digest, (_request(which),), pinned):
            if value is None:
                disk.pop(key, None)
            else:
                disk[key] = value
        after = list(store.kept[height])
        assert after[-1] == digest and (pinned is None or pinned in after)
        others = [d for d in before if d != pinned]
        # exactly the oldest batches beyond the latest few went, never the pinned one
        assert [d for d in after if d != pinned] == others[-RECENT_PER_HEIGHT:]
        store.check(0)
    assert set(disk) == {durable.batch_key(h, d) for h, b in store.kept.items() for d in b}
    restored = durable.restore(sorted(disk.items())).batches
    assert {h: set(b) for h, b in restored.items()} == \
        {h: set(b) for h, b in store.kept.items()}
    for height, batches in restored.items():
        for digest, payloads in batches.items():
            assert store.payloads(height, digest) == payloads
    store.drop_through(3)
    assert not store.kept


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 6)), max_size=40))
def test_a_fetch_asks_holders_first_in_turn_and_takes_one_answer_per_asked_peer(events):
    config = config_for(7, status_interval_ticks=2)
    fetcher = BatchFetcher(config, 0)
    digest = b"D" * 32
    fetcher.want(5, digest, 1_000, (3, 4, 0), 0)
    order = [3, 4, 1, 2, 5, 6]              # holders first, then the rest, never itself
    asked, may_answer, last_ask, ticks = [], set(), None, 0
    for advance, sender in events:
        ticks += advance
        for peer, message in fetcher.due(ticks):
            assert message == FetchBatch(5, digest)
            assert last_ask is None or ticks - last_ask >= config.status_interval_ticks
            asked.append(peer)
            may_answer.add(peer)
            last_ask = ticks
        taken = fetcher.answer(sender, 5, digest) is not None
        assert taken == (sender in may_answer)
        may_answer.discard(sender)
        assert fetcher.answer(sender, 5, b"E" * 32) is None     # another digest: never
    assert asked == [order[i % len(order)] for i in range(len(asked))]


def test_a_store_written_when_proofs_carried_envelopes_still_restores():
    payloads = (b"envelope one", b"envelope two")
    old = msgpack.packb([3, 7, 1_000, b"D" * 32, list(payloads), b"sig", [[1, b"p"]]],
                        use_bin_type=True)
    restored = durable.restore([(durable.proof_key(7), old)])
    assert restored.proofs[7] == PreparedProof(3, 7, 1_000, b"D" * 32, b"sig", ((1, b"p"),))
    assert restored.batches == {7: {b"D" * 32: payloads}}
