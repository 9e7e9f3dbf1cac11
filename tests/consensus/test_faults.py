"""What a replica records about a peer that no correct validator does (consensus/faults.py):
bad signatures on a peer's own messages and equivocation, with the signed messages that
show it. (That correct replicas never accuse a correct one is checked by the simulator on
every delivery: tests/sim/harness.py `check_faults`.)"""
from __future__ import annotations

import dataclasses

from consensus.api import StableCheckpoint
from consensus.digest import batch_digest, checkpoint_bytes, prepare_bytes, preprepare_bytes
from consensus.faults import BAD_SIGNATURE, EQUIVOCATION
from consensus.messages import PrePrepare, Prepare, ViewChange
from consensus.replica import Replica
from consensus.viewchange import make_view_change, view_change_is_valid
from tests.consensus.cluster import Cluster
from tests.consensus.test_certificates import world
from tests.sim.fakes import Registry


def proposal(c: Cluster, request, signer: int = 0) -> PrePrepare:
    digest = batch_digest(c.config.domain, 1, c.now_ms, [request.digest])
    signature = c.keys.signer(signer).sign(preprepare_bytes(c.config.domain, 0, 1, digest))
    return PrePrepare(0, 1, c.now_ms, digest, (request.payload,), signature)


def faults_of(c: Cluster, i: int):
    return [(f.peer, f.kind) for f in c.replica(i).take_faults()]


def test_two_signed_proposals_for_one_height_are_equivocation_with_both_as_evidence():
    c = Cluster()
    c.tick()
    a, b = c.requests(2)
    c.crash(0)                          # replica 0 now speaks only through this test
    first, second = proposal(c, a), proposal(c, b)
    c.post(0, 1, first)
    c.post(0, 1, second)
    c.deliver()
    (fault,) = c.replica(1).take_faults()
    assert (fault.peer, fault.kind) == (0, EQUIVOCATION)
    assert fault.evidence == (first, second)
    # the evidence speaks for itself: both signatures hold under the primary's key
    check = c.keys.signer(1)
    assert all(check.verify(0, preprepare_bytes(c.config.domain, pp.view, pp.height,
                                                pp.digest), pp.signature)
               for pp in fault.evidence)
    assert faults_of(c, 2) == faults_of(c, 3) == []


def test_the_same_proposal_twice_is_no_fault():
    c = Cluster()
    c.tick()
    c.crash(0)
    pp = proposal(c, c.requests(1)[0])
    c.post(0, 1, pp)
    c.post(0, 1, pp)
    c.deliver()
    assert faults_of(c, 1) == []


def test_a_proposal_or_a_prepare_with_a_bad_signature_is_recorded():
    c = Cluster()
    c.tick()
    c.crash(0)
    forged = proposal(c, c.requests(1)[0], signer=2)      # not the primary's signature
    c.post(0, 1, forged)
    c.deliver()
    assert faults_of(c, 1) == [(0, BAD_SIGNATURE)]
    good = proposal(c, c.requests(1)[0])
    c.crash(3)
    c.post(0, 1, good)
    c.deliver()
    bad = Prepare(0, 1, good.digest, b"\x00" * 16)
    c.post(3, 1, bad)
    c.deliver()
    assert faults_of(c, 1) == [(3, BAD_SIGNATURE)]


def test_two_signed_prepares_of_one_backup_for_one_height_are_equivocation():
    c = Cluster()
    c.tick()
    c.crash(0)
    good = proposal(c, c.requests(1)[0])
    c.post(0, 1, good)
    c.deliver()
    c.crash(3)
    signer = c.keys.signer(3)
    other = b"\x07" * 32
    for digest in (good.digest, other):
        c.post(3, 1, Prepare(0, 1, digest, signer.sign(prepare_bytes(c.config.domain, 0, 1,
                                                                      digest))))
    c.deliver()
    (fault,) = c.replica(1).take_faults()
    assert (fault.peer, fault.kind) == (3, EQUIVOCATION)
    assert [p.digest for p in fault.evidence] == [good.digest, other]


def test_a_view_change_with_a_bad_signature_of_its_sender_is_recorded():
    c = Cluster()
    c.tick()
    c.crash(3)
    stable = c.replica(1).checkpoints.stable
    vc = make_view_change(c.config, c.keys.signer(3), 3, 1,
                          stable, [])
    forged = ViewChange(vc.replica, vc.new_view, vc.stable_height, vc.stable_hash,
                        vc.stable_set_hash, vc.stable_certificate, vc.prepared, b"\x00" * 16)
    c.post(3, 1, forged)
    c.deliver()
    assert faults_of(c, 1) == [(3, BAD_SIGNATURE)]


def test_a_view_change_at_the_base_signed_under_the_previous_set_is_no_fault():
    """Seeds 125, 257 and 320 of `python -m tests.sim --reconfig`: a replica of the old
    set (genesis's here, from 1) reaches its last height 16 by a stable checkpoint
    before it has run the block that ended its set (or restarts in a view change
    there) and broadcasts a view change with that checkpoint, signed under its own set.
    A validator at the same place of the next set (from 17, whose base 16 is) cannot
    tell it from its own set's: it ignores it, where it used to accuse a correct
    replica of a bad signature. A view change above the base with a bad signature is
    still a fault, and a good one at the base still counts."""
    old, keys = world(4)
    new = dataclasses.replace(old, first_height=17, base_hash=b"b" * 32)
    replica = Replica(new, 1, keys.signer(1), Registry().inspect, [], 16, b"b" * 32, 0)
    sixteen = checkpoint_bytes(old.domain, 16, b"b" * 32, new.set_hash)
    certified = StableCheckpoint(16, b"b" * 32, new.set_hash,
                                 tuple((i, keys.signer(i).sign(sixteen)) for i in range(3)))
    assert view_change_is_valid(old, keys.signer(1), make_view_change(
        old, keys.signer(3), 3, 1, certified, []))
    replica.receive(3, make_view_change(old, keys.signer(3), 3, 1, certified, []))
    assert replica.take_faults() == [] and not replica.view_changes.get(1)
    # under the next set's own numbering, at its base, it counts
    base = replica.checkpoints.stable
    replica.receive(2, make_view_change(new, keys.signer(2), 2, 1, base, []))
    assert replica.take_faults() == [] and set(replica.view_changes[1]) == {2}
    # above the base the set is this one's: a bad signature is the sender's fault
    twenty = checkpoint_bytes(new.domain, 20, b"t" * 32, new.set_hash)
    above = StableCheckpoint(20, b"t" * 32, new.set_hash,
                             tuple((i, keys.signer(i).sign(twenty)) for i in range(3)))
    forged = dataclasses.replace(make_view_change(new, keys.signer(3), 3, 1, above, []),
                                 signature=b"\x00" * 16)
    replica.receive(3, forged)
    assert [(f.peer, f.kind) for f in replica.take_faults()] == [(3, BAD_SIGNATURE)]
