"""How a validator that has no blocks knows which set certified a snapshot's checkpoint
(docs/statesync.md, "Which set certified it").

Every checkpoint signs the hash of the newest validator set scheduled after its block
(docs/protocol.md), so the certificates alone lead from genesis's set through every
change. A proof is one hop per change, in order: a stable checkpoint certified by a
quorum of the set before the change, at a height it ordered, that names the next set,
with that set's first height and its validators (name and key; the set hash covers the
keys and the first height, a name only says where to dial). The server takes, for each
change, the highest such checkpoint it holds below the change's first height: the one
at the first height - 1 (a checkpoint height) is final, nothing can replace the set
after it. A lower one is final unless a change enacted after it replaced the set before
it took over; then the set it names never ordered a height, and the proof holds as long
as that set had no faulty quorum either (the caveat docs/statesync.md states).
"""
from __future__ import annotations

from dataclasses import dataclass

from consensus.digest import validator_set_hash
from node.block import checkpoint_certificate_ok
from node import sets
from node.genesis import Genesis
from protocol import codec

MAX_HOPS = 1_000
MAX_SET = 256


class ProofError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Hop:
    height: int                             # the checkpoint's height
    block_hash: bytes
    certificate: tuple[tuple[int, bytes], ...]
    set_hash: bytes
    first_height: int                       # of the set it names
    members: tuple[tuple[str, bytes], ...]  # (name, key), in replica order

    def plain(self) -> list:
        return [self.height, self.block_hash, [list(s) for s in self.certificate],
                self.set_hash, self.first_height, [list(m) for m in self.members]]


def encode(hops: list[Hop]) -> list:
    return [h.plain() for h in hops]


def decode(value) -> list[Hop]:
    """Hops from a peer's answer; ProofError for a malformed one."""
    try:
        if type(value) is not list or len(value) > MAX_HOPS:
            raise ProofError("a proof is an array of hops")
        hops = []
        for item in value:
            height, block_hash, cert, set_hash, first, members = item
            ok = (type(height) is int and type(first) is int and height >= 1
                  and type(block_hash) is bytes and len(block_hash) == 32
                  and type(set_hash) is bytes and len(set_hash) == 32
                  and type(cert) is list and type(members) is list
                  and 1 <= len(members) <= MAX_SET
                  and all(type(e) is list and len(e) == 2 and type(e[0]) is int
                          and type(e[1]) is bytes for e in cert)
                  and all(type(m) is list and len(m) == 2 and type(m[0]) is str
                          and type(m[1]) is bytes for m in members))
            if not ok:
                raise ProofError("a hop's field is out of range")
            hops.append(Hop(height, block_hash, tuple((i, s) for i, s in cert), set_hash,
                            first, tuple((n, k) for n, k in members)))
        return hops
    except ProofError:
        raise
    except (TypeError, ValueError) as error:
        raise ProofError(f"a malformed hop: {error}") from None


def build(genesis: Genesis, store, height: int, kept: list[Hop]) -> list[Hop] | None:
    """The proof for the sets in force up to `height`, from the checkpoints `store`
    keeps and `kept` (the hops this validator verified when it synced its own state);
    None when a change has no checkpoint here that names it."""
    interval = genesis.checkpoint_interval
    known = {h.first_height: h for h in kept}
    every = [s for s in sets.every(genesis, store) if s.first_height <= height]
    hops = []
    for before, after in zip(every, every[1:]):
        wanted = after.hash(genesis)
        hop = None
        top = (after.first_height - 1) // interval * interval
        for at in range(top, max(before.first_height - 1, 0), -interval):
            found = store.checkpoint(at)
            if found is not None and found[2] == wanted:
                hop = Hop(at, found[0], found[1], found[2], after.first_height,
                          tuple(zip(after.names, after.keys)))
                break
        if hop is None:
            hop = known.get(after.first_height)
        if hop is None or hop.set_hash != wanted:
            return None
        hops.append(hop)
    return hops


def verify(genesis: Genesis, hops: list[Hop]) -> list[tuple[int, tuple[tuple[str, bytes], ...]]]:
    """The sets the hops lead to from genesis's, as (first height, members), genesis's
    first; ProofError at the first hop that does not hold."""
    domain = genesis.domain()
    current = (1, tuple((v.name, v.key) for v in genesis.validators))
    chain = [current]
    for number, hop in enumerate(hops, 1):
        first, members = current
        keys = [k for _, k in members]
        if not first <= hop.height < hop.first_height:
            raise ProofError(f"hop {number}: checkpoint {hop.height} is not one the set "
                             f"from {first} ordered before the next from {hop.first_height}")
        if hop.height % genesis.checkpoint_interval:
            raise ProofError(f"hop {number}: {hop.height} is not a checkpoint height")
        new_keys = [k for _, k in hop.members]
        if len(set(new_keys)) != len(new_keys) or not all(len(k) == 32 for k in new_keys):
            raise ProofError(f"hop {number}: the next set's keys are not distinct keys")
        if validator_set_hash(domain, hop.first_height, new_keys) != hop.set_hash:
            raise ProofError(f"hop {number}: the set hash does not cover the set it names")
        if not checkpoint_certificate_ok(domain, keys, hop.height, hop.block_hash,
                                         hop.certificate, hop.set_hash):
            raise ProofError(f"hop {number}: checkpoint {hop.height} is not certified by "
                             f"a quorum of the set from {first}")
        current = (hop.first_height, hop.members)
        chain.append(current)
    return chain


def pack(hops: list[Hop]) -> bytes:
    return codec.pack(encode(hops))


def unpack(raw: bytes) -> list[Hop]:
    return decode(codec.unpack(raw, 1 << 24))
