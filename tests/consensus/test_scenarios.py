"""The classic PBFT cases, one scripted scenario each, on real replicas and the real
driver (tests/consensus/cluster.py)."""
from __future__ import annotations

import hashlib

import pytest

from consensus import durable
from consensus.api import StableCheckpoint
from consensus.certificates import batch_is_certified
from consensus.digest import batch_digest, preprepare_bytes
from consensus.messages import Forward, NewView, PreparedProof, PrePrepare, Prepare, ViewChange
from consensus.viewchange import make_view_change
from tests.consensus.cluster import Cluster
from tests.sim.harness import Violation


def committed_keys(cluster: Cluster, i: int) -> list[bytes]:
    return [r.key for b in cluster.ledgers[i].blocks for r in b.requests]


def test_normal_case_commits_one_certified_batch_on_every_replica():
    c = Cluster()
    c.tick()
    requests = c.requests(3)
    assert c.drivers[0].submit(requests) == [True, True, True]
    c.deliver()
    assert c.heights() == [1, 1, 1, 1]
    for i in range(4):
        block = c.ledgers[i].blocks[0]
        assert block.requests == tuple(requests)
        assert batch_is_certified(c.config, c.keys.signer(i), block)
        assert len(block.certificate) == c.config.quorum
    assert {b.blocks[0].digest for b in c.ledgers} == {c.ledgers[0].blocks[0].digest}
    assert all(c.replica(i).view == 0 for i in range(4))


def test_every_scenario_runs_the_simulators_checkers():
    """The cluster drives the simulator's harness (tests/sim/harness.py): each block a
    replica executes passes the same fork, certificate and height checks, so a scenario
    that forks fails where it forks."""
    c = Cluster()
    c.tick()
    c.canonical[1] = hashlib.sha256(b"another batch").digest()
    c.drivers[0].submit(c.requests(1))
    with pytest.raises(Violation, match="fork: correct replicas committed different"):
        c.deliver()


def test_a_request_known_or_ordered_is_refused_and_never_ordered_twice():
    c = Cluster()
    c.tick()
    requests = c.requests(2)
    c.drivers[0].submit(requests)
    assert c.drivers[0].submit(requests) == [False, False]
    c.deliver()
    assert c.drivers[0].submit(requests) == [False, False]
    c.drivers[2].submit(requests)
    c.tick(20)
    assert [committed_keys(c, i) for i in range(4)] == [[r.key for r in requests]] * 4


def test_a_backup_forwards_requests_and_the_primary_orders_them():
    c = Cluster()
    c.tick()
    requests = c.requests(2)
    c.drivers[2].submit(requests)
    c.deliver()
    assert c.heights() == [1, 1, 1, 1]
    assert committed_keys(c, 3) == [r.key for r in requests]


def test_an_idle_network_makes_no_blocks():
    c = Cluster()
    c.tick(50)
    assert c.heights() == [0, 0, 0, 0]
    assert all(c.replica(i).view == 0 for i in range(4))


def test_primary_crash_leads_to_a_new_view_that_orders_the_request():
    c = Cluster()
    c.tick()
    c.crash(0)
    requests = c.requests(1)
    c.drivers[1].submit(requests)
    c.tick(30)
    assert [c.replica(i).view for i in (1, 2, 3)] == [1, 1, 1]
    assert c.replica(1).is_primary
    for i in (1, 2, 3):
        assert committed_keys(c, i) == [requests[0].key]


def test_view_change_carries_a_prepared_batch_into_the_new_view():
    c = Cluster()
    c.tick()
    requests = c.requests(2)
    # every replica prepares height 1 in view 0, but no commit gets through
    c.prepare_only(requests)
    digest = c.replica(1).proofs[1].digest
    assert c.heights() == [0, 0, 0, 0]
    c.crash(0)
    c.tick(30)
    new_views = [m for s, t, m in c.sent if isinstance(m, NewView)]
    assert new_views and new_views[0].view == 1
    assert new_views[0].preprepares[0].height == 1
    assert new_views[0].preprepares[0].digest == digest
    for i in (1, 2, 3):
        assert c.ledgers[i].blocks[0].digest == digest
        assert c.ledgers[i].blocks[0].view == 1


def test_a_gap_in_the_new_view_is_filled_with_an_empty_batch():
    c = Cluster()
    c.tick()
    c.drivers[0].submit(c.requests(1))
    # height 1 reaches nobody; height 2 prepares everywhere but does not commit
    c.deliver(drop=lambda s, t, m: True)
    c.prepare_only(c.requests(1))
    assert 2 in c.replica(1).proofs and 1 not in c.replica(1).proofs
    carried = c.replica(1).proofs[2].digest
    c.crash(0)          # the request of height 1 was known to replica 0 alone
    c.tick(30)
    assert c.heights()[1:] == [2, 2, 2]
    for i in (1, 2, 3):
        gap, kept = c.ledgers[i].blocks
        assert gap.height == 1 and gap.requests == () and gap.time_ms == 0
        assert kept.height == 2 and kept.digest == carried


def test_checkpoint_becomes_stable_and_the_log_below_it_is_dropped():
    c = Cluster()
    c.tick()
    for _ in range(5):
        c.drivers[0].submit(c.requests(1))
        c.deliver()
    assert c.heights() == [5, 5, 5, 5]
    for i in range(4):
        replica = c.replica(i)
        assert replica.stable_height == 4
        assert all(h > 4 for h in replica.slots)
        assert all(h > 4 for h in replica.proofs)
        assert not any(key.startswith(durable.PROOF_PREFIX)
                       and int.from_bytes(key[-8:], "big") <= 4 for key in c.storage[i].data)
        kept = c.ledgers[i].checkpoints
        assert sorted(kept) == [2, 4]
        assert kept[4].block_hash == c.ledgers[i].hashes[3]
        assert len(kept[4].certificate) == c.config.quorum


def test_the_window_stops_a_primary_until_a_checkpoint_is_stable():
    c = Cluster(batch_max_count=1)
    c.tick()
    c.prepare_only(c.requests(12))
    proposed = {m.height for s, t, m in c.sent if isinstance(m, PrePrepare)}
    assert proposed == set(range(1, 9))     # window 8 above stable checkpoint 0


def test_a_lagging_replica_catches_up_by_fetching_certified_blocks():
    c = Cluster()
    c.tick()
    c.cut = {3}
    for _ in range(6):
        c.drivers[0].submit(c.requests(1))
        c.deliver()
        c.tick()
    assert c.heights() == [6, 6, 6, 0]
    c.cut = set()
    c.tick(10)
    assert c.heights() == [6, 6, 6, 6]
    assert c.ledgers[3].hashes == c.ledgers[0].hashes
    assert c.replica(3).stable_height == 6


def test_an_equivocating_primary_cannot_split_the_correct_replicas():
    c = Cluster()
    c.tick()
    a, b = c.requests(2)
    crypto = c.keys.signer(0)

    def proposal(request):
        digest = batch_digest(c.config.domain, 1, c.now_ms, [request.digest])
        signature = crypto.sign(preprepare_bytes(c.config.domain, 0, 1, digest))
        return PrePrepare(0, 1, c.now_ms, digest, (request.payload,), signature)

    c.crash(0)          # replica 0 now speaks only through this test
    c.post(0, 1, proposal(a))
    c.post(0, 2, proposal(b))
    c.post(0, 3, proposal(b))
    c.deliver()
    prepared = [c.replica(i).proofs.get(1) for i in (1, 2, 3)]
    # b reached two backups: quorum - 1 prepares, so it may prepare; a never does
    assert all(p is None or p.digest == proposal(b).digest for p in prepared)
    c.drivers[1].submit([a, b])
    c.tick(40)
    blocks = [c.ledgers[i].blocks for i in (1, 2, 3)]
    assert blocks[0] and blocks[0] == blocks[1] == blocks[2]
    assert sorted(committed_keys(c, 1)) == sorted([a.key, b.key])


def test_a_batch_with_a_bad_envelope_gets_no_prepare():
    c = Cluster()
    c.tick()
    crypto = c.keys.signer(0)
    good = c.requests(1)[0]
    payloads = (good.payload, b"not an envelope anyone signed")
    digest = batch_digest(c.config.domain, 1, c.now_ms,
                          [hashlib.sha256(p).digest() for p in payloads])
    signature = crypto.sign(preprepare_bytes(c.config.domain, 0, 1, digest))
    c.crash(0)
    c.post(0, None, PrePrepare(0, 1, c.now_ms, digest, payloads, signature))
    c.deliver()
    assert not any(isinstance(m, Prepare) for s, t, m in c.sent)


def test_block_time_must_be_later_than_the_last_and_near_the_clock():
    c = Cluster()
    c.tick()
    crypto = c.keys.signer(0)
    c.crash(0)
    for height, time_ms in ((1, c.now_ms + 5_000), (1, 0)):
        request = c.requests(1)[0]
        digest = batch_digest(c.config.domain, height, time_ms, [request.digest])
        signature = crypto.sign(preprepare_bytes(c.config.domain, 0, height, digest))
        c.post(0, None, PrePrepare(0, height, time_ms, digest, (request.payload,),
                                   signature))
    c.deliver()
    assert not any(isinstance(m, Prepare) for s, t, m in c.sent)


def test_a_restarted_replica_never_votes_two_digests_for_one_slot():
    c = Cluster()
    c.tick()
    crypto = c.keys.signer(0)
    a, b = c.requests(2)

    def proposal(request):
        digest = batch_digest(c.config.domain, 1, c.now_ms, [request.digest])
        signature = crypto.sign(preprepare_bytes(c.config.domain, 0, 1, digest))
        return PrePrepare(0, 1, c.now_ms, digest, (request.payload,), signature)

    first, second = proposal(a), proposal(b)
    c.crash(0)
    c.post(0, 1, first)
    c.deliver()
    c.crash(1)
    c.start(1)
    c.tick()
    c.post(0, 1, second)
    c.deliver()
    votes = {m.digest for s, t, m in c.sent if s == 1 and isinstance(m, Prepare)
             and m.view == 0 and m.height == 1}
    assert votes == {first.digest}


def test_a_replica_persists_its_vote_in_the_same_ready_that_sends_it():
    c = Cluster()
    c.tick()
    replica = c.replica(1)
    request = c.requests(1)[0]
    crypto = c.keys.signer(0)
    digest = batch_digest(c.config.domain, 1, c.now_ms, [request.digest])
    pp = PrePrepare(0, 1, c.now_ms, digest, (request.payload,),
                    crypto.sign(preprepare_bytes(c.config.domain, 0, 1, digest)))
    replica.receive(0, pp)
    ready = replica.take_ready()
    assert (durable.vote_key(1), durable.vote_value(0, digest)) in ready.persist
    assert any(isinstance(m, Prepare) for _, m in ready.messages)


def test_a_forged_view_change_proof_is_refused():
    c = Cluster()
    c.tick()
    crypto = c.keys.signer(3)
    fake = PreparedProof(0, 1, 1, bytes(32), b"sig", ((1, b"a"), (2, b"b")))
    vc = make_view_change(c.config, crypto, 3, 1,
                          StableCheckpoint(0, bytes(32), c.config.set_hash, ()), [fake])
    c.crash(3)
    c.post(3, 1, vc)
    c.deliver()
    assert 3 not in c.replica(1).view_changes.get(1, {})


def test_one_validator_commits_alone():
    c = Cluster(n=1)
    c.tick()
    c.drivers[0].submit(c.requests(3))
    assert c.heights() == [1]
    assert c.ledgers[0].blocks[0].certificate[0][0] == 0


def test_timeouts_back_off_while_views_fail_and_reset_on_progress():
    c = Cluster(n=7)
    c.tick()
    c.crash(0)
    c.crash(1)                          # the primaries of views 0 and 1
    c.drivers[2].submit(c.requests(1))
    c.tick(200)
    sent: dict[int, int] = {}           # view -> when replica 3 first asked for it
    for t, s, m in c.timeline:
        if s == 3 and isinstance(m, ViewChange):
            sent.setdefault(m.new_view, t)
    base = c.config.view_change_timeout_ticks * 10      # ten milliseconds a tick
    assert sent[2] - sent[1] >= 2 * base                # the second attempt waited twice as long
    assert 3 not in sent                                 # view 2 has a live primary
    assert all(c.replica(i).view == 2 for i in range(2, 7))
    assert c.heights()[2:] == [1] * 5
    assert c.replica(3).attempts == 0                    # progress reset the backoff


def test_a_slow_primary_stays_but_one_that_censors_a_request_is_replaced():
    c = Cluster()
    c.tick()
    crypto = c.keys.signer(0)
    c.crash(0)                          # replica 0 now speaks only through this test
    censored = c.requests(1)[0]
    c.drivers[1].submit([censored])
    timeout = c.config.request_timeout_ticks
    views_seen = []
    for height in range(1, c.config.censorship_factor * timeout + 10):
        request = c.requests(1)[0]
        digest = batch_digest(c.config.domain, height, c.now_ms, [request.digest])
        signature = crypto.sign(preprepare_bytes(c.config.domain, 0, height, digest))
        c.post(0, None, PrePrepare(0, height, c.now_ms, digest, (request.payload,), signature))
        c.deliver()
        c.tick()
        views_seen.append(c.replica(1).view)
        if c.replica(1).view:
            break
    # progress kept the primary for many timeouts, but not beyond the censorship bound
    first_change = views_seen.index(1) + 1
    assert 2 * timeout < first_change <= c.config.censorship_factor * timeout + 2
    c.tick(40)
    assert censored.key in committed_keys(c, 1)


def test_a_waiting_request_is_forwarded_again_every_half_timeout_not_every_status():
    # the primary hears nothing, so the request waits at backup 1 without a view change
    c = Cluster(request_timeout_ticks=40, view_change_timeout_ticks=40,
                status_interval_ticks=2)
    c.cut = {0}
    c.drivers[1].submit(c.requests(1))
    c.tick(39)
    forwards = [m for _, sender, m in c.timeline if sender == 1 and type(m) is Forward]
    # the first forward and one again at tick 20, not one every status interval
    assert len(forwards) == 2 and forwards[0] == forwards[1]



def test_a_fair_primary_serving_a_flooder_in_its_own_order_is_not_taken_for_a_censor():
    """A flooder sends its requests to a backup in the reverse of the order it sends them
    to the primary, a hundred a tick. At every backup its oldest request is then the one
    the primary puts in the flooder's last round, overtaken by requests that came later
    for as long as the backlog lasts, far past the censorship bound; but the flooder is
    served in every batch, so the backups keep the primary. (The primary's pre-prepares
    reach the backups one height a tick, so the backlog takes many ticks, with progress
    at every one.)"""
    c = Cluster(pending_limit=20_000, client_pending_limit=2_000)
    c.tick()
    flood = [c.registry.make(10_000 + k, b"flood", client=b"flooder") for k in range(800)]
    c.drivers[0].submit(flood)
    to_backup = list(reversed(flood))
    held: dict[int, list] = {}          # height -> the primary's pre-prepares, held back

    def hold(sender, to, message):
        if isinstance(message, PrePrepare):
            held.setdefault(message.height, []).append((to, message))
            return True
        return False

    ticks = 0
    while len(committed_keys(c, 2)) < len(flood):
        c.drivers[1].submit(to_backup[100 * ticks:100 * ticks + 100])
        c.now_ms += 10
        for driver in c.drivers:
            driver.tick(c.now_ms)
        c.deliver(hold)
        if held:
            for to, message in held.pop(min(held)):
                c.drivers[to].receive(0, message)
            c.deliver(hold)
        ticks += 1
        assert ticks < 1_000, "the backlog never drained"
    bound = c.config.censorship_factor * c.config.request_timeout_ticks
    assert ticks > 2 * bound                # the flooder's oldest was overtaken that long
    assert [c.replica(i).view for i in range(4)] == [0, 0, 0, 0]
    assert sorted(committed_keys(c, 2)) == sorted(r.key for r in flood)


def test_a_block_time_equal_to_the_last_is_refused_and_the_skew_bound_is_inclusive():
    """docs/consensus.md: a backup accepts a block time only when it is later than the
    previous block's and within the allowed skew of its own clock."""
    from consensus import ordering
    config = Cluster().config
    skew = config.max_clock_skew_ms

    def header(time_ms: int) -> PrePrepare:
        return PrePrepare(0, 2, time_ms, b"d" * 32, (b"x",), b"s")
    now = 1_000_000
    assert not ordering.acceptable_header(config, header(now), now, floor_ms=now)
    assert ordering.acceptable_header(config, header(now + 1), now, floor_ms=now)
    assert ordering.acceptable_header(config, header(now + skew), now, floor_ms=now)
    assert not ordering.acceptable_header(config, header(now + skew + 1), now, floor_ms=now)
    assert not ordering.acceptable_header(config, header(now - skew - 1), now,
                                          floor_ms=0)


def test_a_request_the_primary_proposed_alone_commits_once_the_others_return():
    """The primary of view 0 takes a request while cut off from every backup and proposes
    it at its clock's time; when the backups come back, that time is older than their
    clocks allow, and the primary resends the same pre-prepare (another at that height
    would equivocate). Backups that refuse it for its time take its requests into their
    own pools, so their timers watch them: a view change follows and the request commits.
    Before, only the primary held it, no backup's timer ran, and it was never decided."""
    c = Cluster()
    c.tick()
    c.cut = {1, 2, 3}
    c.drivers[0].submit(c.requests(1))
    c.tick(5)
    assert c.heights() == [0, 0, 0, 0]
    c.now_ms += 2 * c.config.max_clock_skew_ms      # the others' clocks moved on meanwhile
    c.cut = set()
    for _ in range(200):
        c.tick()
        if min(c.heights()) == 1:
            break
    assert c.heights() == [1, 1, 1, 1]
    assert all(c.replica(i).view >= 1 for i in range(4))
