"""Checking a peer's catch-up answer before the driver sees it: written once, used by the
validator (node/runtime.py) and the test harness of the simulator and the scenario
cluster (tests/sim/harness.py), so that a test that lets a bad block through fails on
the code the validator runs.

A catch-up answer is a run of blocks, each a header (height, view, time, the hash of the
block before, its own hash, the batch digest), the envelopes and the commit certificate.
The blocks below the replica's next height are skipped (a fetch can race the replica's
own commits); from there on each block must, in this order,
1. be the height due: the replica's committed height + 1, then one more for each block
   taken (`DUE`; a height that is no integer is `FORM`);
2. be well formed: unsigned 64-bit integers where integers go, 32-byte hashes,
   envelopes and a certificate of the right shapes, and whatever the ledger's header
   holds besides (`FORM`): a malformed field from a peer is a refusal, never an
   exception;
3. chain: name as the block before it the hash of this replica's head when that is the
   block before (`head_hash`, None when not known), and the hash of the block before it
   in the answer after that (`CHAIN`);
4. carry a hash that covers its header, as the ledger computes it (`HASH`);
5. have a batch digest that covers exactly its envelopes' hashes at its height and time
   (`DIGEST`);
6. carry a commit certificate of a quorum of distinct validators of the set in force at
   its height, named by their places in that set, over its view, height and digest in
   this network's signing domain (`CERTIFICATE`), so that no block of another genesis
   counts, even one signed by the same keys under the same chain id;
7. have envelopes that all pass `inspect`, the door (`ENVELOPE`): a certified block
   whose envelope fails it means a quorum was not correct.
The order puts the cheap checks first: hashes, then at most n signatures, and only then
a signature per envelope, so that a block made up by a peer (up to a batch of validly
signed envelopes under a forged certificate) costs one SHA-256 per envelope, not one
Ed25519 verification.
The first block that fails ends the answer: the blocks before it are the run to apply,
in order, and the failure is the refusal, with its height and reason. A block whose
validator set the replica cannot know yet (`SetAt` gives None: a change enacted in a
block it has not run could still name that height) ends the run without refusal; it
is fetched again once the blocks before it have run. The reasons are
the words the validator logs (`bad_fetched_block`).

Pure: no IO, no clock. The ledger's block hash formula comes in as a function
(`header_hash`: the validator's covers execution's roots too, which consensus does not
see), and the door and signatures as `inspect` and `Crypto`, as they do for the replica.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Protocol, Sequence

from consensus.api import CommittedBatch, Crypto, Inspect
from consensus.certificates import distinct_valid
from consensus.config import Config
from consensus.digest import batch_digest, commit_bytes, envelope_hash

DUE, FORM, CHAIN, HASH, ENVELOPE, DIGEST, CERTIFICATE = (
    "due", "form", "chain", "hash", "envelope", "digest", "certificate")
KINDS = (DUE, FORM, CHAIN, HASH, ENVELOPE, DIGEST, CERTIFICATE)


class Header(Protocol):
    """What a fetched block shows (node/block.py BlockRecord has these fields and more)."""
    height: int
    view: int
    time_ms: int
    prev_hash: bytes
    hash: bytes
    batch_digest: bytes
    envelopes: tuple[bytes, ...]
    certificate: tuple[tuple[int, bytes], ...]


@dataclass(frozen=True, slots=True)
class FetchedBlock:
    """A fetched block with nothing but the header: the simulator's and the cluster's."""
    height: int
    view: int
    time_ms: int
    prev_hash: bytes
    hash: bytes
    batch_digest: bytes
    envelopes: tuple[bytes, ...]
    certificate: tuple[tuple[int, bytes], ...]


@dataclass(frozen=True, slots=True)
class Refusal:
    height: object      # as the peer sent it: not necessarily an integer
    kind: str           # one of KINDS
    reason: str
    index: int = 0      # the refused block's place in the answer


@dataclass(frozen=True, slots=True)
class Checked:
    batches: tuple[CommittedBatch, ...]     # to apply, in height order
    refused: Refusal | None                 # the first block that failed, if any


# The ledger's hash of a header whose fields consensus checked (height >= 1, the hashes
# and digest 32 bytes), or None when a field only the ledger knows is malformed.
HeaderHash = Callable[[Header], "bytes | None"]
# The config and crypto of the validator set in force at a height, or None when the
# blocks run so far cannot tell yet.
SetAt = Callable[[int], "tuple[Config, Crypto] | None"]


def check_fetched(set_at: SetAt, inspect: Inspect, header_hash: HeaderHash,
                  committed_height: int, head_hash: bytes | None,
                  blocks: Sequence[Header]) -> Checked:
    """The run of `blocks` that may be applied after `committed_height`, and the first
    refusal. `head_hash`: the hash of block `committed_height` when the ledger holds it,
    else None (then the first block's link is not checked)."""
    taken: list[CommittedBatch] = []
    expected, prev = committed_height + 1, head_hash
    for index, block in enumerate(blocks):
        height = block.height
        if type(height) is int and height < expected:
            continue
        known = set_at(expected)
        if known is None:
            break
        config, crypto = known
        refusal = _fault(config, crypto, inspect, header_hash, block, expected, prev)
        if isinstance(refusal, Refusal):
            return Checked(tuple(taken), replace(refusal, index=index))
        taken.append(refusal)
        expected, prev = expected + 1, block.hash
    return Checked(tuple(taken), None)


def _fault(config: Config, crypto: Crypto, inspect: Inspect, header_hash: HeaderHash,
           block: Header, expected: int, prev: bytes | None) -> Refusal | CommittedBatch:
    height = block.height
    if type(height) is not int:
        return Refusal(height, FORM, "not a well-formed block")
    if height != expected:
        return Refusal(height, DUE, f"height {height} where {expected} was due")
    if not _well_formed(block):
        return Refusal(height, FORM, "not a well-formed block")
    hashed = header_hash(block)
    if hashed is None:
        return Refusal(height, FORM, "not a well-formed block")
    if prev is not None and block.prev_hash != prev:
        return Refusal(height, CHAIN, "it does not follow the block before it")
    if block.hash != hashed:
        return Refusal(height, HASH, "its hash does not cover its header")
    if batch_digest(config.domain, height, block.time_ms,
                    [envelope_hash(e) for e in block.envelopes]) != block.batch_digest:
        return Refusal(height, DIGEST, "its digest or its commit certificate does not hold")
    message = commit_bytes(config.domain, block.view, height, block.batch_digest)
    if distinct_valid(config, crypto, block.certificate, message) < config.quorum:
        return Refusal(height, CERTIFICATE,
                       "its digest or its commit certificate does not hold")
    requests = inspect(list(block.envelopes))
    if requests is None:
        return Refusal(height, ENVELOPE, f"an envelope fails the door (block {height} "
                                         f"carries an envelope that fails the door)")
    return CommittedBatch(height, block.view, block.time_ms, block.batch_digest,
                          tuple(requests), block.certificate)


_U64_TOP = 1 << 64


def _well_formed(block: Header) -> bool:
    return (all(type(x) is int and 0 <= x < _U64_TOP
                for x in (block.height, block.view, block.time_ms))
            and all(type(x) is bytes and len(x) == 32
                    for x in (block.prev_hash, block.batch_digest, block.hash))
            and type(block.envelopes) is tuple
            and all(type(e) is bytes for e in block.envelopes)
            and type(block.certificate) is tuple
            and all(type(entry) is tuple and len(entry) == 2 and type(entry[0]) is int
                    and type(entry[1]) is bytes for entry in block.certificate))
