"""The checks of view-change messages (consensus/viewchange.py) against what
docs/consensus.md and the PBFT paper ask, one corruption at a time: a mutation run found
every check of `view_change_is_valid` alive with its test suite (an uncertified stable
checkpoint, proofs out of order, out of the window or from the new view itself were all
accepted by a mutant), and the quorum rule of `new_view_plan` too."""
from __future__ import annotations

import dataclasses

import pytest

from consensus.api import StableCheckpoint
from consensus.digest import checkpoint_bytes, prepare_bytes, preprepare_bytes
from consensus.messages import NewView, PreparedProof
from consensus.viewchange import (build_reproposals, lowest_later_view, make_view_change,
                                  new_view_plan, plan_new_view, signed_bytes,
                                  view_change_is_valid)
from tests.consensus.test_certificates import world

STABLE_HEIGHT = 8           # a checkpoint (K = 4 in the world of the certificates' tests)


def stable(config, keys, height: int = STABLE_HEIGHT):
    block_hash = bytes([height]) * 32
    message = checkpoint_bytes(config.domain, height, block_hash, config.set_hash)
    return StableCheckpoint(height, block_hash, config.set_hash,
                            tuple((i, keys.signer(i).sign(message)) for i in range(3)))


def proof(config, keys, view: int, height: int, digest: bytes = b"d" * 32) -> PreparedProof:
    primary = config.primary(view)
    backups = [i for i in range(config.n) if i != primary][:config.quorum - 1]
    message = prepare_bytes(config.domain, view, height, digest)
    return PreparedProof(view, height, 1_000, digest,
                         keys.signer(primary).sign(preprepare_bytes(config.domain, view,
                                                                    height, digest)),
                         tuple((i, keys.signer(i).sign(message)) for i in backups))


def good(config, keys, sender: int = 1, new_view: int = 3, proofs=None):
    proofs = proofs if proofs is not None else [proof(config, keys, 1, 9),
                                                proof(config, keys, 2, 10)]
    return make_view_change(config, keys.signer(sender), sender, new_view,
                            stable(config, keys), proofs)


def resign(config, keys, vc):
    """The same message signed again by its sender: only the corruption is wrong."""
    return make_view_change(config, keys.signer(vc.replica % config.n), vc.replica,
                            vc.new_view, StableCheckpoint(vc.stable_height, vc.stable_hash,
                                                          vc.stable_set_hash,
                                                          vc.stable_certificate),
                            list(vc.prepared))


def test_a_well_made_view_change_is_valid():
    config, keys = world(4)
    assert view_change_is_valid(config, keys.signer(0), good(config, keys))


CORRUPTIONS = {
    "a sender out of range": lambda c, k, vc: dataclasses.replace(vc, replica=c.n),
    "an uncertified stable checkpoint": lambda c, k, vc: resign(c, k, dataclasses.replace(
        vc, stable_certificate=vc.stable_certificate[:2])),
    "proofs out of height order": lambda c, k, vc: dataclasses.replace(
        vc, prepared=tuple(reversed(vc.prepared))),
    "two proofs of one height": lambda c, k, vc: dataclasses.replace(
        vc, prepared=(vc.prepared[0], vc.prepared[0])),
    "a proof at the stable height": lambda c, k, vc: dataclasses.replace(
        vc, prepared=(proof(c, k, 1, STABLE_HEIGHT),)),
    "a proof beyond the window": lambda c, k, vc: dataclasses.replace(
        vc, prepared=(proof(c, k, 1, STABLE_HEIGHT + c.window + 1),)),
    "a proof of the new view itself": lambda c, k, vc: dataclasses.replace(
        vc, prepared=(proof(c, k, vc.new_view, 9),)),
    "a proof short of its prepares": lambda c, k, vc: dataclasses.replace(
        vc, prepared=(dataclasses.replace(vc.prepared[0], prepares=()),)),
    "the sender's signature": lambda c, k, vc: dataclasses.replace(vc, signature=b"\0" * 16),
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_one_corruption_makes_a_view_change_invalid(name):
    config, keys = world(4)
    vc = CORRUPTIONS[name](config, keys, good(config, keys))
    if name not in ("a sender out of range", "the sender's signature"):
        vc = dataclasses.replace(vc, signature=keys.signer(vc.replica).sign(
            signed_bytes(config, vc)))
    assert not view_change_is_valid(config, keys.signer(0), vc)


def test_the_edges_of_the_window_are_in_and_replica_zero_may_send():
    config, keys = world(4)
    edge = good(config, keys, sender=0, proofs=[proof(config, keys, 1, STABLE_HEIGHT + 1),
                                                proof(config, keys, 2,
                                                      STABLE_HEIGHT + config.window)])
    assert view_change_is_valid(config, keys.signer(0), edge)
    assert len(edge.prepared) == 2          # make_view_change keeps what lies above S


def test_a_new_view_needs_a_quorum_of_distinct_valid_view_changes_for_its_view():
    config, keys = world(4)
    vcs = [good(config, keys, sender=s) for s in (0, 1, 2)]
    plan = plan_new_view(config, 3, vcs)
    nv = NewView(3, tuple(vcs), tuple(build_reproposals(config, keys.signer(3), plan)))
    assert new_view_plan(config, keys.signer(0), nv, set()) == plan
    for bad in ((vcs[0], vcs[0], vcs[1]), tuple(vcs[:2]),
                (vcs[0], vcs[1], dataclasses.replace(vcs[2], signature=b"\0" * 16)),
                (vcs[0], vcs[1], good(config, keys, sender=2, new_view=4))):
        assert new_view_plan(config, keys.signer(0), dataclasses.replace(
            nv, view_changes=bad), set()) is None
    known: set = set()
    new_view_plan(config, keys.signer(0), nv, known)
    assert known == set(vcs)                # checked once, remembered


def test_the_plan_takes_the_highest_view_per_height_and_nulls_the_gaps():
    config, keys = world(4)
    low, high = proof(config, keys, 1, 9, b"a" * 32), proof(config, keys, 2, 9, b"b" * 32)
    vcs = [good(config, keys, 0, proofs=[low]), good(config, keys, 1, proofs=[high]),
           good(config, keys, 2, proofs=[proof(config, keys, 1, 11, b"c" * 32)])]
    plan = plan_new_view(config, 3, vcs)
    assert plan.stable_height == STABLE_HEIGHT
    assert plan.stable_hash == vcs[0].stable_hash and plan.stable_certificate
    assert [(h, p.digest if p else None) for h, p in plan.slots] == [
        (9, b"b" * 32), (10, None), (11, b"c" * 32)]


def test_f_plus_one_replicas_asking_for_later_views_move_a_replica_to_the_lowest():
    config, keys = world(4)
    vc = good(config, keys)
    assert lowest_later_view({5: {1: vc}}, 3, config.f) is None          # f alone
    assert lowest_later_view({5: {1: vc}, 4: {2: vc}}, 3, config.f) == 4
    assert lowest_later_view({5: {1: vc}, 3: {2: vc}}, 3, config.f) is None  # not later
    assert lowest_later_view({5: {1: vc}, 7: {1: vc}}, 3, config.f) is None  # one sender


def test_what_a_view_change_and_a_plan_keep_at_the_edges():
    config, keys = world(4)
    # make_view_change drops a proof at or below its own stable checkpoint
    made = good(config, keys, proofs=[proof(config, keys, 1, STABLE_HEIGHT),
                                      proof(config, keys, 1, 9)])
    assert [p.height for p in made.prepared] == [9]
    # a view change from a lower checkpoint still brings its proofs above the highest one
    low = make_view_change(config, keys.signer(0), 0, 3, stable(config, keys, 4),
                           [proof(config, keys, 1, 5), proof(config, keys, 1, 9)])
    top = STABLE_HEIGHT + config.window
    vcs = [low, good(config, keys, 1, proofs=[proof(config, keys, 2, top)]),
           good(config, keys, 2, proofs=[])]
    plan = plan_new_view(config, 3, vcs)
    assert plan.stable_height == STABLE_HEIGHT
    assert [h for h, p in plan.slots if p is not None] == [9, top]   # the window's edge
    assert len(plan.slots) == config.window
    # the lowest view each sender asks for counts, in whatever order they were stored
    vc = good(config, keys)
    assert lowest_later_view({5: {1: vc}, 6: {2: vc}, 7: {1: vc}}, 3, config.f) == 5
