"""Property tests of the invariants the consensus core rests on."""
from __future__ import annotations

import hashlib

from hypothesis import given, settings, strategies as st

from consensus.api import Request, StableCheckpoint
from consensus.checkpoint import Checkpoints
from consensus.config import Config
from consensus.digest import ZERO_HASH, checkpoint_bytes, max_faulty, quorum
from consensus.messages import Checkpoint, PreparedProof, ViewChange
from consensus.requests import RequestPool
from consensus.viewchange import plan_new_view
from tests.consensus.cluster import Cluster
from tests.sim.fakes import KeyedHashKeys


def config_for(n: int, **limits) -> Config:
    validators = tuple(hashlib.sha256(bytes([i])).digest() for i in range(n))
    return Config(chain="prop", validators=validators, **limits)


@given(st.integers(1, 300))
def test_two_quorums_share_a_correct_replica_and_a_quorum_survives_f_faults(n):
    q, f = quorum(n), max_faulty(n)
    assert 2 * q - n >= f + 1
    assert q <= n - f


@given(st.data())
@settings(max_examples=200)
def test_a_new_view_keeps_every_batch_a_quorum_could_have_committed(data):
    n = data.draw(st.sampled_from([4, 5, 7, 10]))
    q = quorum(n)
    height = data.draw(st.integers(1, 6))
    committed_view = data.draw(st.integers(1, 5))
    digest = b"C" * 32
    # the replicas that prepared the committed batch: as few as a quorum allows
    prepared = set(data.draw(st.permutations(range(n)))[:n - q + 1])
    senders = data.draw(st.permutations(range(n)))[:q]
    vcs = []
    for s in senders:
        proofs = []
        for h in range(1, 8):
            if h == height and s in prepared:
                proofs.append(PreparedProof(committed_view, h, 5, digest, b"s", ()))
            elif data.draw(st.booleans()):
                view = data.draw(st.integers(0, committed_view - 1)) if h == height else \
                    data.draw(st.integers(0, 9))
                proofs.append(PreparedProof(view, h, 5, bytes([s, h]) * 16, b"s", ()))
        vcs.append(ViewChange(s, 10, 0, ZERO_HASH, ZERO_HASH, (), tuple(proofs), b"s"))
    plan = plan_new_view(config_for(n), 10, vcs)
    slots = dict(plan.slots)
    assert [h for h, _ in plan.slots] == list(range(1, len(plan.slots) + 1))
    assert slots[height] is not None and slots[height].digest == digest
    for h, proof in plan.slots:
        views = [p.view for vc in vcs for p in vc.prepared if p.height == h]
        assert (proof is None) == (not views)
        assert proof is None or proof.view == max(views)


@given(st.lists(st.tuples(st.integers(1, 6), st.booleans(), st.booleans()), max_size=30))
def test_a_checkpoint_is_stable_only_with_a_quorum_of_distinct_valid_signatures(votes):
    config = config_for(7, checkpoint_interval=4, window=8)
    keys = KeyedHashKeys([bytes([i + 1]) * 16 for i in range(7)])
    checkpoints = Checkpoints(config, keys.signer(0), 0,
                              StableCheckpoint(0, ZERO_HASH, config.set_hash, ()))  # 1..6 vote
    stored: dict[int, bytes] = {}       # the model: each sender's first valid vote
    for sender, valid, same_hash in votes:
        block_hash = b"B" * 32 if same_hash else b"X" * 32
        message = checkpoint_bytes(config.domain, 4, block_hash, config.set_hash)
        signature = keys.tag(sender, message) if valid else b"forged-signature"
        stable = checkpoints.add(sender, Checkpoint(4, block_hash, config.set_hash, signature))
        if valid:
            stored.setdefault(sender, block_hash)
        if stable is not None:
            backers = {s for s, h in stored.items() if h == stable.block_hash}
            assert len(backers) >= config.quorum
            assert {i for i, _ in stable.certificate} <= backers
            assert len(stable.certificate) == config.quorum
            return
    for block_hash in (b"B" * 32, b"X" * 32):
        assert sum(h == block_hash for h in stored.values()) < config.quorum


@given(st.lists(st.tuples(st.sampled_from(["add", "order", "propose", "view"]),
                          st.integers(0, 30)), max_size=80))
def test_the_request_pool_is_bounded_and_never_offers_an_ordered_key(steps):
    # one client (b""): its share is the whole pool, as before shares (test_fairness.py)
    config = config_for(4, pending_limit=10, client_pending_limit=10, seen_limit=50,
                        batch_max_count=3)
    pool = RequestPool(config)
    ordered: set[bytes] = set()

    def request(i: int) -> Request:
        return Request(bytes([i]), hashlib.sha256(bytes([i])).digest(), bytes([i]) * 3)

    for tick, (op, i) in enumerate(steps):
        if op == "add":
            accepted = pool.add(request(i), tick)
            assert not (accepted and request(i).key in ordered)
        elif op == "order":
            pool.ordered([request(i)])
            ordered.add(request(i).key)
        elif op == "propose":
            batch, _, _ = pool.next_batch()
            assert len(batch) <= 3 and not {r.key for r in batch} & ordered
            pool.proposed(batch, tick)
        else:
            pool.new_view()
        pool.audit()
        assert len(pool) <= 10 and not set(pool.queue) & pool.in_flight


@given(st.lists(st.integers(0, 60), max_size=200), st.integers(1, 20))
def test_the_pool_remembers_exactly_the_last_ordered_keys_up_to_its_limit(order, limit):
    config = config_for(4, seen_limit=limit)
    pool = RequestPool(config, ordered_keys=[bytes([i]) for i in order[:limit]])
    model = list(dict.fromkeys(bytes([i]) for i in order[:limit]))
    for i in order[limit:]:
        key = bytes([i])
        pool.ordered([Request(key, hashlib.sha256(key).digest(), key)])
        if key not in model:
            model = (model + [key])[-limit:]
        pool.check()
        assert pool.seen == set(model) and list(pool.seen_order) == model


@given(st.lists(st.integers(0, 99), min_size=1, max_size=60), st.integers(1, 4))
@settings(max_examples=25, deadline=None)
def test_correct_replicas_agree_whatever_the_network_drops(drops, rounds):
    cluster = Cluster()
    cluster.tick()
    counter = iter(range(10 ** 6))

    def drop(sender, to, message) -> bool:
        return drops[next(counter) % len(drops)] < 30

    for _ in range(rounds):
        cluster.drivers[next(counter) % 4].submit(cluster.requests(2))
        cluster.tick(3, drop)
    cluster.tick(300)
    chains = [ledger.hashes for ledger in cluster.ledgers]
    shortest = min(len(c) for c in chains)
    assert all(c[:shortest] == chains[0][:shortest] for c in chains)
    assert all(len(c) == len(chains[0]) for c in chains)     # and all caught up
    keys = [r.key for b in cluster.ledgers[0].blocks for r in b.requests]
    assert len(set(keys)) == len(keys) == 2 * rounds
