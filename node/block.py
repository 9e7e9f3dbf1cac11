"""Blocks: running one, the results root, the block hash and the stored block record
(docs/protocol.md, "Results root" and "Block hash").

A block is a committed batch after execution. Consensus certified its order (the batch
digest); execution adds the results root and the state root, and the block hash chains
them to the previous block, so two replicas that diverge in execution differ in the hash
of the first block where they diverge. `run_block` is the one way a block is executed:
by the validators' executor (node/executor.py), which stores it, and by the audit
(node/audit/engine.py), which compares it with what a source claims.
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

import chaincode
from chaincode.api import BlockContext, BlockOutcome, StateReader, Tx
from consensus.digest import checkpoint_bytes, commit_bytes, quorum
from protocol import codec
from node.genesis import Genesis
from node.keys import verify

RESULTS_TAG = b"stadsmunt/results/v1"
BLOCK_TAG = b"stadsmunt/block/v1"
MAX_BLOCK_RECORD_BYTES = 64 * 1024 * 1024

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")


def results_root(encoded_results: list[bytes]) -> bytes:
    """SHA-256(tag | u32 count | SHA-256 of each result's canonical bytes, in order)."""
    sha256 = hashlib.sha256
    parts = [RESULTS_TAG, _U32.pack(len(encoded_results))]
    parts.extend(sha256(r).digest() for r in encoded_results)
    return sha256(b"".join(parts)).digest()


def block_hash(prev_hash: bytes, height: int, batch_digest: bytes, results_root: bytes,
               state_root: bytes) -> bytes:
    """SHA-256(tag | prev hash | u64 height | batch digest | results root | state root)."""
    assert len(prev_hash) == len(batch_digest) == len(results_root) == len(state_root) == 32
    assert height >= 1
    return hashlib.sha256(BLOCK_TAG + prev_hash + _U64.pack(height) + batch_digest
                          + results_root + state_root).digest()


def block_time(last_ms: int, batch_time_ms: int) -> int:
    """The time the chaincode runs a block at: the chain's clock never goes back, so each
    block runs at the latest block time so far (docs/protocol.md, "What consensus
    signs": block time); an empty batch that fills a gap after a view change carries
    time 0 and so neither moves nor breaks the clock."""
    return max(last_ms, batch_time_ms)


@dataclass(frozen=True, slots=True)
class Executed:
    """A block's execution: what the chaincode decided, each result's canonical bytes,
    and the roots and hash that follow from them."""
    outcome: BlockOutcome
    encoded: list[bytes]
    results_root: bytes
    hash: bytes


class RulesMissing(Exception):
    """The rules version in force at a height is not one this build runs: the validator
    stops before executing that height, the audit cannot check it."""

    def __init__(self, version: int, first: int, height: int):
        self.version, self.first, self.height = version, first, height
        runs = ", ".join(map(str, chaincode.rules_versions()))
        super().__init__(f"rules version {version} is in force from height {first}; this "
                         f"stadsmunt runs rules versions {runs}: install a stadsmunt that "
                         f"runs version {version} to go on from height {height}")


def rules_for(genesis: Genesis, state: StateReader, height: int) -> int:
    """The rules version that runs block `height` over `state` (the state after the block
    before): genesis's, or the latest rules.activate due at or below `height`. Raises
    RulesMissing when this build does not run it."""
    version, first = chaincode.rules_in_force(state, height, genesis.rules_version)
    if version not in chaincode.rules_versions():
        raise RulesMissing(version, first, height)
    return version


def run_block(genesis: Genesis, state: StateReader, height: int, time_ms: int,
              txs: list[Tx], acc: int, prev_hash: bytes, batch_digest: bytes) -> Executed:
    """Executes the block of `txs` at `height` and block time `time_ms` (block_time) over
    `state` (the state after the block before, with accumulator `acc`) under the rules
    version in force at `height` (rules_for); changes nothing: the caller stores
    `outcome.writes` or compares. RulesMissing and chaincode errors propagate."""
    outcome = chaincode.execute_block(
        rules_for(genesis, state, height), state,
        BlockContext(height, time_ms, genesis.switch_margin(), genesis.checkpoint_interval),
        txs, acc)
    assert len(outcome.results) == len(txs), "a result per transaction"
    encode = chaincode.encode_result
    encoded = [encode(r) for r in outcome.results]
    r_root = results_root(encoded)
    return Executed(outcome, encoded, r_root,
                    block_hash(prev_hash, height, batch_digest, r_root, outcome.state_root))


@dataclass(frozen=True, slots=True)
class BlockRecord:
    """A block as stored: the header fields, the envelopes and the commit certificate.

    `first_position` is the log position of the block's first event and `event_count`
    the number of its events, so a block's events are a contiguous range of the log.
    """
    height: int
    view: int
    time_ms: int
    prev_hash: bytes
    batch_digest: bytes
    results_root: bytes
    state_root: bytes
    hash: bytes
    envelopes: tuple[bytes, ...]
    certificate: tuple[tuple[int, bytes], ...]
    first_position: int
    event_count: int

    def encode(self) -> bytes:
        return codec.pack([self.height, self.view, self.time_ms, self.prev_hash,
                           self.batch_digest, self.results_root, self.state_root, self.hash,
                           list(self.envelopes), [list(s) for s in self.certificate],
                           self.first_position, self.event_count])

    @classmethod
    def decode(cls, data: bytes) -> "BlockRecord":
        (height, view, time_ms, prev_hash, digest, results, state, block, envelopes,
         certificate, first_position, event_count) = codec.unpack(data, MAX_BLOCK_RECORD_BYTES)
        return cls(height, view, time_ms, prev_hash, digest, results, state, block,
                   tuple(envelopes), tuple((i, s) for i, s in certificate),
                   first_position, event_count)

    def check_hash(self) -> bool:
        return self.hash == block_hash(self.prev_hash, self.height, self.batch_digest,
                                       self.results_root, self.state_root)

    def holds_results(self, encoded_results: list[bytes]) -> bool:
        """Whether these encoded results are this block's: one per envelope, making its
        results root (history fetched after a state sync, node/history.py)."""
        return len(encoded_results) == len(self.envelopes) and \
            results_root(encoded_results) == self.results_root


def certificate_ok(keys: list[bytes], message: bytes,
                   certificate: tuple[tuple[int, bytes], ...]) -> bool:
    """True when `certificate` holds valid signatures over `message` by a quorum of distinct
    validators; `keys` are the genesis validators' keys in replica order."""
    seen = set()
    for entry in certificate:
        if len(entry) != 2:
            return False
        index, signature = entry
        if type(index) is not int or not 0 <= index < len(keys) or index in seen:
            return False
        if type(signature) is not bytes or not verify(keys[index], message, signature):
            return False
        seen.add(index)
    return len(seen) >= quorum(len(keys))


def commit_certificate_ok(domain: bytes, keys: list[bytes], record: BlockRecord) -> bool:
    """The block's commit certificate signs its view, height and batch digest, in the
    network's signing domain (chain id and genesis hash)."""
    message = commit_bytes(domain, record.view, record.height, record.batch_digest)
    return certificate_ok(keys, message, record.certificate)


def checkpoint_certificate_ok(domain: bytes, keys: list[bytes], height: int,
                              block_hash: bytes, certificate: tuple[tuple[int, bytes], ...],
                              set_hash: bytes) -> bool:
    return certificate_ok(keys, checkpoint_bytes(domain, height, block_hash, set_hash),
                          certificate)
