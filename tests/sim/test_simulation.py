"""The simulator's seeds as tests: safety under faults, then liveness for a connected
quorum of correct replicas. A failing seed is named in the assertion; rerun it with
`python -m tests.sim --first SEED --seeds 1 --replicas R --byzantine B`."""
from __future__ import annotations

import hashlib

import pytest

from consensus.api import CommittedBatch
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
        result = run_seed(Settings(seed=seed, replicas=4, byzantine=0, crash_rate=0.0))
        assert not result.violations, f"seed {seed}: {result.violations[0]}"
        assert result.duplicates == 0, f"seed {seed}: a request was ordered twice"


def test_real_ed25519_signatures_give_the_same_guarantees():
    run_seeds(range(3000, 3004), replicas=4, byzantine=1, ed25519=True)


def test_a_single_validator_commits_alone_in_development_mode():
    blocks, views = run_seeds(range(4000, 4005), replicas=1, byzantine=0, crash_rate=0.5,
                              loss=0.0)
    assert blocks > 0 and views == 0


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
    for seed in range(1000, 1020):
        result = run_seed(Settings(seed=seed, replicas=7, byzantine=2))
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


@pytest.mark.slow
@pytest.mark.parametrize("replicas,byzantine", [(4, 1), (7, 2), (4, 0), (10, 3)])
def test_many_seeds(replicas, byzantine):
    run_seeds(range(10_000, 10_500), replicas=replicas, byzantine=byzantine)
