"""Checkpoint votes and the stable checkpoint (consensus/checkpoint.py), the way
docs/consensus.md states them. A mutation run left alive a replica that counted other
replicas' checkpoint votes without checking their signatures, and one whose own state
had diverged from a quorum's checkpoint and went on (the divergence check removed)."""
from __future__ import annotations

import pytest

from consensus.api import StableCheckpoint
from consensus.checkpoint import Checkpoints
from consensus.digest import checkpoint_bytes
from consensus.messages import Checkpoint
from tests.consensus.test_certificates import world

H = b"h" * 32


def vote(config, keys, sender: int, height: int = 4, block_hash: bytes = H,
         set_hash: bytes | None = None) -> Checkpoint:
    set_hash = config.set_hash if set_hash is None else set_hash
    return Checkpoint(height, block_hash, set_hash,
                      keys.signer(sender).sign(checkpoint_bytes(config.domain, height,
                                                                block_hash, set_hash)))


def fresh(config, keys, me: int = 0) -> Checkpoints:
    return Checkpoints(config, keys.signer(me), me,
                       StableCheckpoint(0, bytes(32), config.set_hash, ()))


def stable_at_4(config, keys, points: Checkpoints) -> None:
    """Votes of 1, 2 and 3 for (4, H), and the checkpoint they make adopted, as the
    replica does with what `add` returns."""
    for sender in (1, 2, 3):
        stable = points.add(sender, vote(config, keys, sender))
    assert points.adopt(stable)


def test_a_quorum_of_matching_signed_votes_makes_a_checkpoint_stable_once():
    config, keys = world(4)
    points = fresh(config, keys)
    assert points.add(1, vote(config, keys, 1)) is None
    assert points.add(2, vote(config, keys, 2)) is None
    stable = points.add(3, vote(config, keys, 3))
    assert stable is not None and (stable.height, stable.block_hash) == (4, H)
    assert sorted(i for i, _ in stable.certificate) == [1, 2, 3]


def test_votes_with_bad_signatures_or_for_other_hashes_do_not_count():
    config, keys = world(4)
    points = fresh(config, keys)
    forged = [Checkpoint(4, H, config.set_hash, b"\x00" * 16) for _ in range(3)]
    assert all(points.add(s, f) is None for s, f in zip((1, 2, 3), forged))
    points = fresh(config, keys)
    assert points.add(1, vote(config, keys, 1)) is None
    assert points.add(2, vote(config, keys, 2, block_hash=b"g" * 32)) is None
    assert points.add(3, vote(config, keys, 3)) is None        # two of one hash only
    points = fresh(config, keys)
    assert points.add(1, vote(config, keys, 1)) is None
    assert points.add(2, vote(config, keys, 2, set_hash=b"s" * 32)) is None
    assert points.add(3, vote(config, keys, 3)) is None        # two of one set hash only


def test_votes_off_the_grid_or_out_of_range_are_not_kept():
    config, keys = world(4)
    points = fresh(config, keys)
    assert points.add(1, vote(config, keys, 1, height=5)) is None
    far = 2 * config.window + 4
    assert points.add(1, vote(config, keys, 1, height=far)) is None
    assert points.add(1, vote(config, keys, 1, height=far - 4)) is None
    assert set(points.votes) == {far - 4}                     # the edge is kept


def test_a_replica_whose_own_state_differs_from_a_quorums_checkpoint_stops():
    config, keys = world(4)
    points = fresh(config, keys)
    points.sign_own(4, b"x" * 32, config.set_hash)                              # what this replica computed
    stable_at_4(config, keys, points)
    with pytest.raises(AssertionError, match="diverged"):
        points.emit(4)


def test_the_stable_checkpoint_is_emitted_once_and_only_once_executed():
    config, keys = world(4)
    points = fresh(config, keys)
    points.sign_own(4, H, config.set_hash)
    stable_at_4(config, keys, points)
    assert points.emit(3) is None                              # not executed here yet
    assert points.emit(4).height == 4
    assert points.emit(5) is None                              # once


def test_adopting_keeps_only_what_lies_above_the_new_stable_checkpoint():
    config, keys = world(4)
    points = fresh(config, keys)
    for height in (4, 8, 12):
        points.sign_own(height, H, config.set_hash)
        points.add(1, vote(config, keys, 1, height=height))
    certificate = tuple((i, vote(config, keys, i, height=8).signature) for i in (1, 2, 3))
    assert points.adopt(StableCheckpoint(8, H, config.set_hash, certificate))
    assert set(points.votes) == {12} and set(points.own) == {8, 12}
    assert not points.adopt(StableCheckpoint(8, H, config.set_hash, certificate))       # not newer
    assert points.sign_own(8, H, config.set_hash) is None                               # at or below S
