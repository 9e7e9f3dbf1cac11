"""The simulator's seeds as tests: safety under faults, then liveness for a connected
quorum of correct replicas. A failing seed is named in the assertion; rerun it with
`python -m tests.sim --first SEED --seeds 1 --replicas R --byzantine B`."""
from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from consensus import durable
from consensus.api import CommittedBatch
from consensus.fetched import ENVELOPE, KINDS
from consensus.messages import Commit, Prepare, ViewChange
from tests.sim.fakes import ARMED_FAULTS, POWER_LOSS
from tests.sim.world import Settings, Violation, World, run_seed


def run_seeds(seeds, **settings) -> tuple[int, int]:
    blocks = views = 0
    for seed in seeds:
        result = run_seed(Settings(seed=seed, **settings))
        assert not result.violations, f"seed {seed}: {result.violations[0]}"
        assert result.requests > 0 and result.blocks > 0
        blocks += result.blocks
        views += result.view_changes
    return blocks, views


@pytest.mark.parametrize("first", range(0, 150, 15))
def test_four_replicas_with_one_byzantine_never_fork_and_commit_every_request(first):
    run_seeds(range(first, first + 15), replicas=4, byzantine=1)


@pytest.mark.parametrize("first", range(1000, 1060, 10))
def test_seven_replicas_with_two_byzantine_never_fork_and_commit_every_request(first):
    run_seeds(range(first, first + 10), replicas=7, byzantine=2)


def test_correct_replicas_that_never_restart_order_each_request_once():
    """A primary's pool is not durable: after a restart it may propose again a request
    it had in flight (execution then answers `duplicate`). Without restarts and without
    Byzantine replicas, loss, delay and partitions alone never make a duplicate."""
    for seed in range(2000, 2010):
        result = run_seed(Settings(seed=seed, replicas=4, byzantine=0, crash_rate=0.0,
                                   storage_faults=0.0))
        assert not result.violations, f"seed {seed}: {result.violations[0]}"
        assert result.duplicates == 0, f"seed {seed}: a request was ordered twice"


def test_real_ed25519_signatures_give_the_same_guarantees():
    run_seeds(range(3000, 3004), replicas=4, byzantine=1, ed25519=True)


def test_a_single_validator_commits_alone_in_development_mode():
    # no storage faults: see the next test
    blocks, views = run_seeds(range(4000, 4005), replicas=1, byzantine=0, crash_rate=0.5,
                              loss=0.0, storage_faults=0.0)
    assert blocks > 0 and views == 0


def test_a_single_validator_recovers_from_a_failed_block_write():
    """Seed 4001: a block's write fails while the validator has proposed (and persisted
    its votes for) the heights after it; it fail-stops and restarts at the height it
    executed. A restarted primary never proposes again at a height it voted for (it
    would equivocate), and with more validators the backups' timers replace it; alone,
    it moves to the next view itself and proposes its prepared batches again. Before it
    did, the heights between waited for ever."""
    run_seeds([4001], replicas=1, byzantine=0, crash_rate=0.5, loss=0.0)


def test_a_single_validator_survives_storage_faults():
    """Alone, with crashes and storage faults: every request commits, and the restarts
    past proposed heights took the view change above (else this guards nothing)."""
    _, views = run_seeds(range(4000, 4100), replicas=1, byzantine=0, crash_rate=0.5,
                         storage_faults=0.4)
    assert views > 0


def test_the_simulator_changes_views_when_faults_demand_it():
    """Guards the simulator itself: if its faults stopped biting, the runs above would
    pass without exercising view changes."""
    _, views = run_seeds(range(5000, 5010), replicas=4, byzantine=1)
    assert views > 0


def test_the_simulator_makes_replicas_fetch_batches_and_refuse_wrong_answers():
    """Guards the simulator: a new view names batches by digest, replicas that lack one
    fetch it, and Byzantine peers answer with other envelopes; if those paths stopped
    being taken, the runs above would pass without them."""
    fetches = refused = 0
    for seed in range(1000, 1010):
        result = run_seed(Settings(seed=seed, replicas=7, byzantine=2,
                                   behaviours=("wrong_batch",)))
        assert not result.violations, f"seed {seed}: {result.violations[0]}"
        fetches += result.batch_fetches
        refused += result.refused_batches
    assert fetches > 0 and refused > 0


def test_the_fork_checker_reports_two_batches_at_one_height():
    world = World(Settings(seed=1, replicas=4, byzantine=0))
    request = world.new_requests(1)[0]
    first, second = world.nodes[0], world.nodes[1]

    def batch(digest: bytes) -> CommittedBatch:
        return CommittedBatch(1, 0, 1, digest, (request,), ())

    world.canonical[1] = hashlib.sha256(b"one").digest()
    with pytest.raises(Violation, match="fork"):
        world.check_block(second.ledger, batch(hashlib.sha256(b"two").digest()))
    with pytest.raises(Violation, match="regress"):
        first.ledger.blocks.append(batch(bytes(32)))
        world.check_block(first.ledger, batch(bytes(32)))


def test_storage_faults_fire_and_every_replica_survives_them():
    """Guards the simulator's storage faults (tests/sim/fakes.py) and its catch-up
    checks: with faults made frequent, every kind fires somewhere in a few dozen seeds,
    a power loss undoes an unsynced block, a driver that failed is never fed again,
    Byzantine peers' altered catch-up answers are refused by each of the checks of
    consensus/fetched.py that f of them can reach, and still nothing forks and every request commits."""
    fired, refused = Counter(), Counter()
    lost = applied = 0
    # every replica crashes once (crash_rate 1.0): restarts are what send replicas to
    # catch up, and a catch-up answer is where a Byzantine peer can lie
    for seed in range(7000, 7048):
        result = run_seed(Settings(seed=seed, replicas=4, byzantine=1, storage_faults=0.4,
                                   crash_rate=1.0))
        assert not result.violations, f"seed {seed}: {result.violations[0]}"
        fired.update(result.storage_faults)
        refused.update(result.catch_up_refused)
        lost += result.blocks_lost
        applied += result.catch_up_blocks
    assert set(fired) == set(ARMED_FAULTS + (POWER_LOSS,)), fired
    assert lost > 0 and applied > 0
    # all but ENVELOPE, which only a quorum's certificate over a bad envelope reaches: f
    # Byzantine replicas cannot make one (tests/consensus/test_fetched.py does)
    assert set(refused) == set(KINDS) - {ENVELOPE}, refused


def test_a_peer_flooding_catch_up_requests_does_not_stop_the_others():
    """A Byzantine replica sends each peer 50 catch-up requests a tick. Within its
    budget (node/fetchserve.py) each server answers a few and refuses the rest cheaply,
    and the correct replicas commit every request; a server that answered them all
    would fall behind for good (which the same seeds show, so the flood does bite)."""
    flood = dict(replicas=4, byzantine=1, behaviours=("fetch_flood",))
    refused = 0
    for seed in range(6000, 6004):
        result = run_seed(Settings(seed=seed, **flood))
        assert not result.violations, f"seed {seed}: {result.violations[0]}"
        refused += result.flood_refused
    assert refused > 1000
    starved = run_seed(Settings(seed=6002, fetch_budget=False, **flood)).violations
    assert starved and starved[0].startswith("liveness"), starved


def test_the_persistence_checker_reports_a_vote_sent_before_it_is_on_disk():
    world = World(Settings(seed=1, replicas=4, byzantine=0))
    node = world.nodes[1]
    digest = hashlib.sha256(b"batch").digest()
    with pytest.raises(Violation, match="Prepare for height 3"):
        world.check_persisted(node, Prepare(0, 3, digest, b"sig"))
    node.storage.write([(durable.vote_key(3), durable.vote_value(0, digest))])
    world.check_persisted(node, Prepare(0, 3, digest, b"sig"))
    with pytest.raises(Violation, match="Prepare"):      # another digest in that view
        world.check_persisted(node, Prepare(0, 3, bytes(32), b"sig"))
    with pytest.raises(Violation, match="Commit"):       # no prepared certificate
        world.check_persisted(node, Commit(0, 3, digest, b"sig"))
    with pytest.raises(Violation, match="ViewChange"):
        world.check_persisted(node, ViewChange(1, 1, 0, bytes(32), bytes(32), (), (), b"sig"))
    node.storage.write([(durable.VIEW_KEY, durable.view_value(1, False))])
    world.check_persisted(node, ViewChange(1, 1, 0, bytes(32), bytes(32), (), (), b"sig"))


@pytest.mark.slow
@pytest.mark.parametrize("replicas,byzantine", [(4, 1), (7, 2), (4, 0), (10, 3)])
def test_many_seeds(replicas, byzantine):
    run_seeds(range(10_000, 10_500), replicas=replicas, byzantine=byzantine)
