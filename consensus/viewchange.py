"""View change as in the PBFT paper (Castro and Liskov, section 4.4), as pure functions.

Rules:
- A view-change message for view v carries the sender's stable checkpoint with its
  certificate and, for every height above it, the prepared certificate of the highest
  view the sender prepared in. It is signed over view_change_bytes.
- The primary of v collects a quorum of valid view-change messages for v. min_s is the
  highest stable checkpoint among them; max_s the highest prepared height. For every
  height in (min_s, max_s] it re-proposes the batch of the prepared certificate with the
  highest view, or a null batch (no requests, time 0) where there is none.
- A replica accepts the new-view only if it recomputes exactly the same pre-prepares from
  the same view-change messages.
- Certificates and re-proposals name batches by digest, never carry their envelopes, so
  both messages grow with the number of heights only (consensus/batches.py fetches what
  a replica lacks).
"""
from __future__ import annotations

from dataclasses import dataclass

from consensus.api import Crypto, StableCheckpoint
from consensus.certificates import checkpoint_is_certified, proof_is_valid
from consensus.config import Config
from consensus.digest import preprepare_bytes, view_change_bytes
from consensus.ordering import null_digest
from consensus.messages import NewView, PreparedProof, Reproposal, Signatures, ViewChange


@dataclass(frozen=True, slots=True)
class Plan:
    """What a new view must contain, computed from a quorum of view-change messages."""
    view: int
    stable_height: int
    stable_hash: bytes
    stable_set_hash: bytes
    stable_certificate: Signatures
    # per height in (stable_height, max_s]: the proof to re-propose, or None for a null batch
    slots: tuple[tuple[int, PreparedProof | None], ...]

    @property
    def next_height(self) -> int:
        return (self.slots[-1][0] if self.slots else self.stable_height) + 1


def signed_bytes(config: Config, vc: ViewChange) -> bytes:
    return view_change_bytes(config.domain, config.first_height, vc.replica, vc.new_view,
                             vc.stable_height, vc.stable_hash, vc.stable_set_hash,
                             [(p.view, p.height, p.digest) for p in vc.prepared])


def make_view_change(config: Config, crypto: Crypto, me: int, new_view: int,
                     stable: StableCheckpoint, proofs: list[PreparedProof]) -> ViewChange:
    height = stable.height
    prepared = tuple(sorted((p for p in proofs if p.height > height), key=lambda p: p.height))
    unsigned = ViewChange(me, new_view, height, stable.block_hash, stable.set_hash,
                          stable.certificate, prepared, b"")
    signature = crypto.sign(signed_bytes(config, unsigned))
    return ViewChange(me, new_view, height, stable.block_hash, stable.set_hash,
                      stable.certificate, prepared, signature)


def view_change_is_valid(config: Config, crypto: Crypto, vc: ViewChange) -> bool:
    if not 0 <= vc.replica < config.n:
        return False
    if not checkpoint_is_certified(config, crypto, vc.stable_height, vc.stable_hash,
                                   vc.stable_set_hash, vc.stable_certificate):
        return False
    heights = [p.height for p in vc.prepared]
    if heights != sorted(set(heights)):
        return False
    for proof in vc.prepared:
        if not vc.stable_height < proof.height <= vc.stable_height + config.window:
            return False
        if proof.view >= vc.new_view:
            return False
    if not crypto.verify(vc.replica, signed_bytes(config, vc), vc.signature):
        return False
    return all(proof_is_valid(config, crypto, proof) for proof in vc.prepared)


def plan_new_view(config: Config, view: int, vcs: list[ViewChange]) -> Plan:
    """The paper's computation of O. Every vc must already be valid and for `view`."""
    assert len({vc.replica for vc in vcs}) == len(vcs) >= config.quorum
    assert all(vc.new_view == view for vc in vcs)
    best = max(vcs, key=lambda vc: (vc.stable_height, vc.replica))
    min_s = best.stable_height
    chosen: dict[int, PreparedProof] = {}
    for vc in vcs:
        for proof in vc.prepared:
            if proof.height <= min_s:
                continue
            current = chosen.get(proof.height)
            if current is None or proof.view > current.view:
                chosen[proof.height] = proof
    max_s = max(chosen, default=min_s)
    assert max_s - min_s <= config.window
    slots = tuple((h, chosen.get(h)) for h in range(min_s + 1, max_s + 1))
    return Plan(view, min_s, best.stable_hash, best.stable_set_hash, best.stable_certificate,
                slots)


def expected_preprepares(config: Config, plan: Plan) -> list[tuple[int, int, bytes]]:
    """(height, time_ms, digest) of every pre-prepare the new view must hold."""
    out = []
    for height, proof in plan.slots:
        if proof is None:
            out.append((height, 0, null_digest(config, height)))
        else:
            out.append((height, proof.time_ms, proof.digest))
    return out


def holders(config: Config, proof: PreparedProof | None) -> tuple[int, ...]:
    """Replicas that accepted the batch of a certificate, so hold its envelopes if they
    are correct: the backups whose prepares it shows, then its primary (last: a view
    changed since, most likely because of it)."""
    if proof is None:
        return ()
    return (*(i for i, _ in proof.prepares), config.primary(proof.view))


def new_view_plan(config: Config, crypto: Crypto, nv: NewView,
                  known_valid: set[ViewChange]) -> Plan | None:
    """The plan of a received new-view, or None if it is not exactly what its view-change
    messages call for. `known_valid` holds view-change messages already verified, so
    that no signature is checked twice."""
    vcs = list(nv.view_changes)
    if len({vc.replica for vc in vcs}) != len(vcs) or len(vcs) < config.quorum:
        return None
    for vc in vcs:
        if vc.new_view != nv.view:
            return None
        if vc not in known_valid:
            if not view_change_is_valid(config, crypto, vc):
                return None
            known_valid.add(vc)
    plan = plan_new_view(config, nv.view, vcs)
    expected = expected_preprepares(config, plan)
    if len(expected) != len(nv.preprepares):
        return None
    for (height, time_ms, digest), rp in zip(expected, nv.preprepares):
        if (rp.view, rp.height, rp.time_ms, rp.digest) != (nv.view, height, time_ms, digest):
            return None
    return plan


def build_reproposals(config: Config, crypto: Crypto, plan: Plan) -> list[Reproposal]:
    out = []
    for height, time_ms, digest in expected_preprepares(config, plan):
        signature = crypto.sign(preprepare_bytes(config.domain, plan.view, height, digest))
        out.append(Reproposal(plan.view, height, time_ms, digest, signature))
    return out


def lowest_later_view(stored: dict[int, dict[int, ViewChange]], view: int,
                      f: int) -> int | None:
    """PBFT's rule against lagging behind: when f + 1 replicas ask for views after this
    one, a correct replica is among them, so join the lowest view asked for."""
    later: dict[int, int] = {}
    for v, senders in stored.items():
        if v > view:
            for sender in senders:
                later[sender] = min(later.get(sender, v), v)
    return min(later.values()) if len(later) > f else None


def replicas_leaving(stored: dict[int, dict[int, ViewChange]], view: int) -> int:
    """How many replicas asked for this view or a later one: each has left the views
    before it."""
    return len({s for v, senders in stored.items() if v >= view for s in senders})

