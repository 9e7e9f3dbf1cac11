"""The request pool's fairness rule (consensus/requests.py): a client holds at most its
share of the pool, batches take one request per client per round, a flood delays
nobody else by more than a request per round, and the order is a function of the calls
alone. Property tests on the pool, then scenarios on the scripted cluster."""
from __future__ import annotations

import hashlib
import itertools
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from consensus.api import Request
from consensus.messages import Forward
from consensus.requests import RequestPool
from tests.consensus.cluster import Cluster
from tests.consensus.test_properties import config_for

ROOT = Path(__file__).resolve().parents[2]


def make(i: int, client: int, size: int = 3) -> Request:
    key = b"r" + i.to_bytes(4, "big")
    payload = key + bytes(size)
    return Request(key, hashlib.sha256(payload).digest(), payload, bytes([client]))


def positions(pool: RequestPool) -> dict[bytes, int]:
    """Each queued request's place in its client's queue (0 = next), arrival order."""
    seen: dict[bytes, int] = {}
    out = {}
    for key, request in pool.queue.items():
        out[key] = seen.get(request.client, 0)
        seen[request.client] = out[key] + 1
    return out


# ---- the share --------------------------------------------------------------------------

def test_a_client_over_its_share_is_refused_like_a_full_pool_and_others_are_not():
    pool = RequestPool(config_for(4, pending_limit=10, client_pending_limit=3))
    assert [pool.add(make(i, 1), 0) for i in range(5)] == [True, True, True, False, False]
    assert not pool.knows(make(3, 1).key)          # refused for room, not as known
    assert pool.knows(make(0, 1).key)
    assert pool.add(make(10, 2), 0) and pool.held_by(b"\x01") == 3
    pool.ordered([make(0, 1)])
    assert pool.add(make(3, 1), 0)                 # room again once one is ordered
    pool.audit()


def test_requests_in_a_pre_prepare_count_against_the_share_until_ordered():
    pool = RequestPool(config_for(4, client_pending_limit=2))
    pool.add(make(0, 1), 0)
    pool.add(make(1, 1), 0)
    batch, _, _ = pool.next_batch()
    pool.proposed(batch, 1)
    assert not pool.add(make(2, 1), 2)             # both in flight: still held
    pool.ordered(batch)
    assert pool.add(make(2, 1), 3)
    pool.audit()


def test_the_default_share_is_a_sixteenth_of_the_pool_and_a_share_fits_in_it():
    assert config_for(4, pending_limit=20_000).client_pending_limit == 1_250
    assert config_for(4, pending_limit=5).client_pending_limit == 1
    assert config_for(4, pending_limit=5, client_pending_limit=5).client_pending_limit == 5
    for wrong in (0, 6):
        with pytest.raises(ValueError):
            config_for(4, pending_limit=5, client_pending_limit=wrong)


# ---- batches take one request per client per round ---------------------------------

@given(st.lists(st.integers(0, 5), min_size=1, max_size=120), st.integers(1, 12))
@settings(max_examples=200, deadline=None)
def test_batches_cut_from_k_clients_take_from_each_in_turn(arrivals, batch_max):
    """With no new arrivals, batch after batch deals the queue as round-robin: each
    client's i-th request in round i, rounds in order, arrival order within a round."""
    pool = RequestPool(config_for(4, batch_max_count=batch_max))
    requests = [make(i, client) for i, client in enumerate(arrivals)]
    for r in requests:
        assert pool.add(r, 0)
    index = {r.key: i for i, r in enumerate(requests)}
    nth = {}
    counter: dict[bytes, int] = {}
    for r in requests:
        nth[r.key] = counter.get(r.client, 0)
        counter[r.client] = nth[r.key] + 1
    model = sorted(requests, key=lambda r: (nth[r.key], index[r.key]))
    cut = []
    taken: dict[bytes, int] = {}
    while pool.queue:
        batch, _, full = pool.next_batch()
        assert 1 <= len(batch) <= batch_max and full == (len(batch) == batch_max)
        for r in batch:
            taken[r.client] = taken.get(r.client, 0) + 1
        left = {r.client for r in pool.queue.values() if r not in batch}
        # a client that still waits has had as many taken as anyone so far, or one less
        assert all(taken.get(c, 0) >= max(taken.values()) - 1 for c in left)
        pool.proposed(batch, 1)
        pool.ordered(batch)
        pool.audit()
        cut += batch
    assert cut == model


def test_a_client_with_90_000_queued_gets_one_request_per_round_like_everyone_else():
    config = config_for(4, pending_limit=100_000, client_pending_limit=90_000,
                        batch_max_count=500)
    pool = RequestPool(config)
    for i in range(90_000):
        pool.add(make(i, 0), 0)
    others = [make(100_000 + k, 1 + k) for k in range(20)]
    for r in others:
        pool.add(r, 5)
    batch, _, full = pool.next_batch()
    assert full and batch[:2] == [make(0, 0), others[0]]
    assert all(r in batch for r in others)
    assert [r.client for r in batch[:42]] == [b"\x00"] + [bytes([c]) for c in range(1, 21)] \
        + [b"\x00"] * 21   # round 0: the flood's first, then every other client
    pool.proposed(batch, 6)
    late = make(200_000, 99)
    pool.add(late, 7)
    batch, _, _ = pool.next_batch()
    assert batch[:2] == [make(480, 0), late]       # a newcomer waits behind one request
    pool.check()


def test_a_client_served_in_this_round_waits_for_the_next_one():
    """Rule 2: a client whose request was just taken from the current round, and is in
    flight, does not get a second turn in that round by sending again at once."""
    pool = RequestPool(config_for(4, batch_max_count=2))
    a0, b0, c0, d0, d1 = make(0, 1), make(1, 2), make(2, 3), make(3, 4), make(4, 4)
    for r in (a0, b0, c0, d0, d1):
        pool.add(r, 0)
    batch, _, _ = pool.next_batch()
    assert batch == [a0, b0]
    pool.proposed(batch, 1)
    a1, e0 = make(5, 1), make(6, 5)
    pool.add(a1, 2)
    pool.add(e0, 2)             # a newcomer joins the current round
    assert list(pool.waiting()) == [c0, d0, e0, d1, a1]
    pool.ordered(batch)         # a client with nothing pending starts afresh
    b1 = make(7, 2)
    pool.add(b1, 3)
    assert list(pool.waiting()) == [c0, d0, e0, b1, d1, a1]
    pool.audit()


# ---- a flood delays nobody by more than a request per round -------------------------

STEPS = st.lists(st.tuples(st.sampled_from(["add", "add", "add", "cut", "order", "view"]),
                           st.integers(0, 4), st.integers(0, 3)), max_size=120)


@given(STEPS)
@settings(max_examples=300, deadline=None)
def test_no_client_can_put_more_than_a_request_per_round_ahead_of_another(steps):
    """At a primary (requests leave the queue only in batches it cut): a request that is
    i-th in its client's queue has at most i + 2 requests of any other client ahead of
    it, and at most one if its client had nothing else pending when it came."""
    config = config_for(4, pending_limit=40, client_pending_limit=12, batch_max_count=5)
    pool = RequestPool(config)
    made = itertools.count()
    in_flight: list[list[Request]] = []
    fresh: set[bytes] = set()        # requests whose client had nothing pending
    for tick, (op, client, count) in enumerate(steps):
        if op == "add":
            for _ in range(count + 1):
                r = make(next(made), client)
                alone = pool.held_by(r.client) == 0
                if pool.add(r, tick) and alone:
                    fresh.add(r.key)
        elif op == "cut":
            batch, _, _ = pool.next_batch()
            pool.proposed(batch, tick)
            if batch:
                in_flight.append(batch)
        elif op == "order" and in_flight:
            pool.ordered(in_flight.pop(0))
        elif op == "view":
            pool.new_view()
            in_flight = []
            fresh = set()
        pool.audit()
        place = positions(pool)
        ahead: dict[bytes, int] = {}
        for r in pool.waiting():
            others = [n for c, n in ahead.items() if c != r.client]
            assert max(others, default=0) <= place[r.key] + 2
            if r.key in fresh and place[r.key] == 0:
                assert max(others, default=0) <= 1
            ahead[r.client] = ahead.get(r.client, 0) + 1


def test_the_oldest_mark_moves_when_the_oldest_requests_client_is_served():
    """What a censorship timer should watch under fair batching: the oldest request
    overtaken by others' later ones is not censored while its client's requests keep
    being ordered (a fair primary has them ahead of it, in the client's own order)."""
    pool = RequestPool(config_for(4))
    oldest, later, other = make(0, 1), make(1, 1), make(2, 2)
    for r in (oldest, later, other):
        pool.add(r, 0)
    mark = pool.oldest_mark()
    assert mark == (oldest.key, 0)
    pool.ordered([other])                   # another client's: still the same wait
    assert pool.oldest_mark() == mark
    pool.ordered([later])                   # its own client progresses
    assert pool.oldest_mark() == (oldest.key, 1)
    pool.ordered([oldest])
    assert pool.oldest_mark() is None
    pool.audit()


# ---- the pool's invariants under anything a replica may do ---------------------------

@given(st.lists(st.tuples(st.sampled_from(["add", "order", "cut", "backup", "view"]),
                          st.integers(0, 40), st.integers(0, 3)), max_size=150))
@settings(max_examples=300, deadline=None)
def test_the_pool_keeps_its_invariants_whatever_the_order_of_steps(steps):
    """Also a backup's steps: pre-prepares that take requests from anywhere in the
    queue, or that it never saw, and orders of requests it holds or not."""
    config = config_for(4, pending_limit=15, client_pending_limit=6, seen_limit=30,
                        batch_max_count=4)
    pool = RequestPool(config)
    ordered: set[bytes] = set()
    for tick, (op, i, client) in enumerate(steps):
        r = make(i, client)
        if op == "add":
            accepted = pool.add(r, tick)
            assert not (accepted and r.key in ordered)
        elif op == "order":
            pool.ordered([r])
            ordered.add(r.key)
        elif op == "cut":
            batch, _, _ = pool.next_batch()
            assert len({x.key for x in batch}) == len(batch) <= 4
            assert not {x.key for x in batch} & ordered
            pool.proposed(batch, tick)
        elif op == "backup":
            pool.proposed([r, make(i + 1, client)], tick)
        else:
            pool.new_view()
        pool.audit()
        assert all(pool.held_by(bytes([c])) <= 6 for c in range(4))


def test_stale_entries_and_rounds_stay_bounded_at_a_backup_that_never_cuts():
    """A backup's queue loses requests to pre-prepares in any order and never cuts a
    batch; what it keeps stays proportional to what is queued."""
    config = config_for(4, pending_limit=5_000, client_pending_limit=5_000)
    pool = RequestPool(config)
    for i in range(20_000):
        pool.add(make(i, i % 7), i)
        if i % 3 == 2:      # the primary's batches hold every third, newest first
            pool.proposed([make(i - 1, (i - 1) % 7), make(i, i % 7)], i)
            pool.ordered([make(i - 1, (i - 1) % 7), make(i, i % 7)])
        pool.check()
    assert pool.entries <= 2 * len(pool.queue) + 64
    pool.audit()


# ---- determinism ------------------------------------------------------------------------

SCRIPT = """
import hashlib, random, sys
sys.path.insert(0, {root!r})
from consensus.api import Request
from consensus.messages import Forward
from consensus.requests import RequestPool
from tests.consensus.test_properties import config_for
rng = random.Random(7)
pool = RequestPool(config_for(4, pending_limit=400, client_pending_limit=60,
                              batch_max_count=25))
out = hashlib.sha256()
flights = []
for step in range(3_000):
    op = rng.random()
    if op < 0.6:
        client = hashlib.sha256(bytes([rng.randrange(30)])).digest()
        key = rng.randbytes(8)
        pool.add(Request(key, key, key, client), step)
    elif op < 0.8:
        batch, _, _ = pool.next_batch()
        for r in batch:
            out.update(r.key)
        pool.proposed(batch, step)
        flights.append(batch)
    elif op < 0.97 and flights:
        pool.ordered(flights.pop(rng.randrange(len(flights))))
    else:
        pool.new_view()
        flights = []
print(out.hexdigest())
"""


def test_batches_do_not_depend_on_hash_order():
    """The same calls give the same batches in processes whose str and bytes hashes
    differ (PYTHONHASHSEED): nothing in the pool's order comes from a set or hash."""
    script = SCRIPT.format(root=str(ROOT))
    digests = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              check=True, env={"PYTHONHASHSEED": seed}).stdout
               for seed in ("1", "2", "3")}
    assert len(digests) == 1


# ---- on the cluster ---------------------------------------------------------------------

def from_client(cluster: Cluster, client: bytes, count: int) -> list[Request]:
    out = [cluster.registry.make(cluster.made + k, b"fair", client) for k in range(count)]
    cluster.made += count
    return out


def height_of(cluster: Cluster, i: int, key: bytes) -> int | None:
    for block in cluster.ledgers[i].blocks:
        if any(r.key == key for r in block.requests):
            return block.height
    return None


def test_a_flooding_client_does_not_hold_back_another_clients_request():
    """200 requests of one client, then one of another: the latecomer is in the first
    batch the primary cuts after it arrives, not behind the flood; with a plain queue
    it would have been in the 21st."""
    c = Cluster(batch_max_count=10, max_in_flight=2)
    c.tick()
    flood = from_client(c, b"flooder", 200)
    assert all(c.drivers[0].submit(flood))
    victim = from_client(c, b"victim", 1)
    assert c.drivers[0].submit(victim) == [True]
    c.deliver()
    c.tick(10)
    assert c.heights() == [21] * 4
    assert all(height_of(c, i, victim[0].key) == 3 for i in range(4))   # 2 were in flight
    assert [r.key for r in c.ledgers[1].blocks[2].requests][:2] == \
        [flood[20].key, victim[0].key]


def test_a_flood_forwarded_by_a_backup_is_held_to_the_clients_share_at_the_primary():
    """A backup forwards what it took; the primary's pool applies the same share, so a
    flood that reaches it through peers cannot take its room or its batches either."""
    c = Cluster(batch_max_count=10, max_in_flight=1, client_pending_limit=30)
    c.tick()
    flood = from_client(c, b"flooder", 100)
    accepted = c.drivers[2].submit(flood)
    assert accepted == [True] * 30 + [False] * 70      # the backup's own share
    victim = from_client(c, b"victim", 1)
    assert c.drivers[1].submit(victim) == [True]       # forwarded after the flood
    more = from_client(c, b"flooder", 40)
    for k in range(0, 40, 10):                         # and another peer's, 40 more
        c.drivers[0].receive(3, Forward(tuple(r.payload for r in more[k:k + 10])))
    assert c.replica(0).requests.held_by(b"flooder") == 30
    c.deliver()
    c.tick(10)
    assert all(height_of(c, i, victim[0].key) == 2 for i in range(4))  # not the 4th
    # the backups re-forward what the primary had no room for; what nobody took is gone
    c.tick(40)
    committed = {r.key for b in c.ledgers[0].blocks for r in b.requests}
    assert committed == {r.key for r in flood[:30] + more[:30] + victim}
    assert c.heights() == [7] * 4
