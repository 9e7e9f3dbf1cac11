"""What a replica records about a peer that no correct validator does (consensus/faults.py):
bad signatures on a peer's own messages and equivocation, with the signed messages that
show it. (That correct replicas never accuse a correct one is checked by the simulator on
every delivery: tests/sim/harness.py `check_faults`.)"""
from __future__ import annotations

from consensus.digest import batch_digest, prepare_bytes, preprepare_bytes
from consensus.faults import BAD_SIGNATURE, EQUIVOCATION
from consensus.messages import PrePrepare, Prepare, ViewChange
from consensus.viewchange import make_view_change
from tests.consensus.cluster import Cluster


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
