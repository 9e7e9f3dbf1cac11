"""The replay: every block from genesis on, checked as docs/audit.md lists, in order.

Two stages over a bounded window of blocks. `prepare` (ahead) checks what needs no state:
the height sequence and the previous hash, the batch digest, each certificate's shape and
quorum, each envelope's decoding and chain id; and hands every signature (commit,
envelope, checkpoint) to the process pool. `settle` (in order) waits for the block's
signature verdicts, re-executes the block with the chaincode against a scratch LMDB state
and compares each result, the results root, the state root and the block hash, follows
the ok results through the money invariants (invariants.py) and the governance check
(governance.py), then checks the checkpoint. A problem found ahead is raised only when
its block comes up, so the failure reported is always the first height where something
is wrong.
"""
from __future__ import annotations

import hashlib
import shutil
import struct
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable

import lmdb
import msgpack

from chaincode.api import Tx
from chaincode.v1 import MAX_TXS_PER_BLOCK
from consensus.digest import batch_digest, checkpoint_bytes, commit_bytes, quorum
from node.audit.governance import Governance
from node.audit.invariants import InvariantBroken, Invariants
from node.audit.verify import CHUNK, MAX_IN_FLIGHT, Verifier
from node.block import RulesMissing, block_time, run_block
from node.export import SourceBlock
from node import sets
from node.genesis import Genesis
from protocol.codec import jsonable
from node.store import scan_prefix

_U64 = struct.Struct(">Q")
WINDOW_ITEMS = 32_768        # signatures prepared ahead of execution, at most
WINDOW_BLOCKS = 4_096


class AuditFailure(Exception):
    """The first height where the chain does not hold, and why, in plain words."""

    def __init__(self, height: int, reason: str):
        super().__init__(f"height {height}: {reason}")
        self.height = height
        self.reason = reason


@dataclass
class _Prepared:
    block: SourceBlock | None
    failure: AuditFailure | None = None
    labels: list = field(default_factory=list)        # per item: a failure text, or the
                                                      # envelope's index in the block
    spans: list = field(default_factory=list)         # (chunk id, chunk offset, count, first)
    checkpoint_from: int = 0                          # labels from here are the checkpoint's
    time_ms: int = 0                                  # the time the block is executed at


class _Scratch:
    """The replayed state, and the ids executed so far, in a temporary LMDB environment
    without sync: it is thrown away at the end, so durability is worth nothing, and
    memory stays flat however long the log."""

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="stadsmunt-audit-")
        self.env = lmdb.open(self.path, map_size=64 << 30, sync=False, metasync=False,
                             writemap=True, readahead=False, max_dbs=2)
        self.state = self.env.open_db(b"state")
        self.seen = self.env.open_db(b"seen")
        self.txn = None

    def get(self, key: bytes) -> bytes | None:
        return self.txn.get(key, db=self.state)

    def first_seen(self, tx_id: str, height: int) -> int | None:
        """Record an executed id; None if it is new, else the height it was executed at."""
        raw = bytes.fromhex(tx_id)
        if self.txn.put(raw, _U64.pack(height), db=self.seen, overwrite=False):
            return None
        return _U64.unpack(self.txn.get(raw, db=self.seen))[0]

    def scan(self, prefix: bytes):
        return scan_prefix(self.txn, self.state, prefix)

    def begin(self):
        self.txn = self.env.begin(write=True)

    def apply(self, writes: dict) -> None:
        txn, db = self.txn, self.state
        for key, value in writes.items():
            if value is None:
                txn.delete(key, db=db)
            else:
                txn.put(key, value, db=db)

    def commit(self) -> None:
        self.txn.commit()
        self.txn = None

    def close(self) -> None:
        if self.txn is not None:
            self.txn.abort()
        self.env.close()
        shutil.rmtree(self.path, ignore_errors=True)


def _certificate(kind: str, members: sets.Named, certificate, message: bytes,
                 prepared: _Prepared, items: list) -> str | None:
    """Shape and quorum of a certificate by the set in force at its height; its
    signatures go to `items`. A reason or None."""
    validators = members.members
    seen = set()
    for entry in certificate:
        index, signature = entry
        if type(index) is not int or not 0 <= index < len(validators):
            return (f"{kind} certificate: signer {index!r} is not a validator of the set in "
                    f"force (from height {members.first_height}, {len(validators)} "
                    f"validators)")
        if index in seen:
            return (f"{kind} certificate: validator {index} ({validators[index].name}) is "
                    f"counted twice")
        if type(signature) is not bytes or len(signature) != 64:
            return (f"{kind} certificate: the signature of validator {index} "
                    f"({validators[index].name}) is not 64 bytes")
        seen.add(index)
        items.append((validators[index].key, message, signature))
        prepared.labels.append(f"{kind} certificate: the signature of validator {index} "
                               f"({validators[index].name}) does not verify")
    need = quorum(len(validators))
    if len(seen) < need:
        return (f"{kind} certificate has {len(seen)} validators' signatures; a quorum of "
                f"{len(validators)} is {need}")
    return None


class Replay:
    def __init__(self, genesis: Genesis, verifier: Verifier,
                 progress: Callable[[int, int], None] | None = None,
                 on_block: Callable[[SourceBlock, list[bytes]], None] | None = None):
        """`on_block` gets each block once it holds, with its re-executed results."""
        self.genesis = genesis
        self.chain = genesis.chain
        self.domain = genesis.domain()
        self.keys = genesis.validator_keys()
        self.verifier = verifier
        self.progress = progress
        self.on_block = on_block
        self.invariants = Invariants([dict(p) for p in genesis.policies])
        self.governance = Governance(genesis)
        self.scratch = _Scratch()
        writes, self.acc = genesis.state()
        self.scratch.begin()
        self.scratch.apply(writes)
        self.sets = sets.every(genesis, self.scratch)
        self.scratch.commit()
        # the prepare stage's view of the chain, and the settle stage's
        self.next_height = 1
        self.claimed_prev = genesis.hash()
        self.height, self.hash = 0, genesis.hash()
        self.time_ms = 0
        self.txs = self.ok = self.checkpoints = 0
        self.chunks: dict[int, object] = {}   # chunk id -> future of its answers
        self.chunk_id = 0
        self.pending: list = []               # items of the chunk being filled

    # ---- the whole run ----

    def run(self, stream: Iterable) -> dict:
        """Check every block of `stream` (SourceBlocks, or an AuditFailure in its place);
        answer the summary or raise the first AuditFailure."""
        started = time.perf_counter()
        window: deque[_Prepared] = deque()
        items_ahead = 0
        source = iter(stream)
        done = False
        try:
            while True:
                # ahead by at most the switch margin: the sets of those heights are known
                while not done and items_ahead < WINDOW_ITEMS and len(window) < WINDOW_BLOCKS \
                        and self.next_height <= self.height + self.genesis.switch_margin() + 1:
                    item = next(source, None)
                    if item is None:
                        done = True
                        break
                    prepared = (_Prepared(None, item) if isinstance(item, AuditFailure)
                                else self._prepare(item))
                    done = prepared.failure is not None
                    window.append(prepared)
                    items_ahead += len(prepared.labels) + 1
                if not window:
                    break
                prepared = window.popleft()
                items_ahead -= len(prepared.labels) + 1
                self._settle(prepared)
                if self.progress is not None:
                    self.progress(self.height, self.txs)
            try:
                totals = self.invariants.finish(self.height, self._reader())
            except InvariantBroken as broken:
                raise AuditFailure(broken.height, broken.reason) from None
        finally:
            self.scratch.close()
        seconds = time.perf_counter() - started
        return dict(blocks=self.height, transactions=self.txs, ok=self.ok,
                    rejected=self.txs - self.ok, checkpoints=self.checkpoints,
                    signatures=self.verifier.checked, **totals,
                    genesis=self.genesis.hash().hex(), head=self.hash.hex(),
                    seconds=round(seconds, 3),
                    tx_per_s=round(self.txs / seconds) if seconds > 0 else 0)

    def _set_at(self, height: int) -> sets.Named:
        """The set in force at `height`. The prepare stage runs at most the switch
        margin M ahead of execution: a change enacted in a block it has not executed
        takes effect above that block + M, beyond any height it prepares."""
        assert height <= self.height + self.genesis.switch_margin() + 1
        return [s for s in self.sets if s.first_height <= height][-1]

    def _reader(self):
        self.scratch.begin()     # a read inside a write transaction; aborted by close()
        return self.scratch

    # ---- ahead: checks without state, signatures to the pool ----

    def _prepare(self, block: SourceBlock) -> _Prepared:
        prepared = _Prepared(block)
        try:
            self._prepare_checks(block, prepared)
        except AuditFailure as failure:
            prepared.failure = failure
            prepared.labels, prepared.spans = [], []
        return prepared

    def _prepare_checks(self, block: SourceBlock, prepared: _Prepared) -> None:
        height = self.next_height
        if block.height != height:
            if block.height > height:
                raise AuditFailure(height, f"block {height} is missing: the source goes from "
                                           f"{height - 1} to {block.height}")
            raise AuditFailure(height, f"block {block.height} comes again where block "
                                       f"{height} should be (a repeated or reordered block)")
        if block.prev_hash != self.claimed_prev:
            raise AuditFailure(height, "its previous hash is not the hash of block "
                                       f"{height - 1}" if height > 1 else
                                       "its previous hash is not the genesis hash")
        self.next_height += 1
        self.claimed_prev = block.hash
        hashes = [hashlib.sha256(e).digest() if type(e) is bytes else b""
                  for e in block.envelopes]
        if batch_digest(self.domain, height, block.time_ms, hashes) != block.batch_digest:
            raise AuditFailure(height, "the batch digest does not cover the block's "
                                       "envelopes and time: an envelope or the time was "
                                       "changed")
        self.time_ms = prepared.time_ms = block_time(self.time_ms, block.time_ms)
        if len(block.envelopes) > MAX_TXS_PER_BLOCK:
            raise AuditFailure(height, f"more than {MAX_TXS_PER_BLOCK} transactions")
        items: list = []
        members = self._set_at(height)
        reason = _certificate("commit", members, block.certificate,
                              commit_bytes(self.domain, block.view, height, block.batch_digest),
                              prepared, items)
        if reason:
            raise AuditFailure(height, reason)
        # the envelopes go whole to the pool, which decodes and verifies them
        items.extend(block.envelopes)
        prepared.labels.extend(range(len(block.envelopes)))
        prepared.checkpoint_from = len(prepared.labels)
        if block.checkpoint is not None:
            checkpoint_hash, certificate, set_hash = block.checkpoint
            if height % self.genesis.checkpoint_interval:
                raise AuditFailure(height, "a checkpoint kept with a block that is not at a "
                                           "multiple of the checkpoint interval "
                                           f"({self.genesis.checkpoint_interval})")
            if checkpoint_hash != block.hash:
                raise AuditFailure(height, "the checkpoint kept with the block names another "
                                           "block hash")
            reason = _certificate("checkpoint", members, certificate,
                                  checkpoint_bytes(self.domain, height, block.hash, set_hash),
                                  prepared, items)
            if reason:
                raise AuditFailure(height, reason)
        self._queue(items, prepared)

    def _queue(self, items: list, prepared: _Prepared) -> None:
        first = 0
        while first < len(items):
            room = CHUNK - len(self.pending)
            take = items[first:first + room]
            prepared.spans.append((self.chunk_id, len(self.pending), len(take), first))
            self.pending.extend(take)
            first += len(take)
            if len(self.pending) >= CHUNK:
                self._flush()

    def _flush(self) -> None:
        if self.pending:
            # the window bounds the chunks in flight; this only states it
            assert len(self.chunks) <= MAX_IN_FLIGHT, "more chunks in flight than allowed"
            self.chunks[self.chunk_id] = self.verifier.submit(self.chain, self.pending)
            self.chunk_id += 1
            self.pending = []

    def _answers(self, prepared: _Prepared) -> list:
        """The pool's answers to the block's items, in the order of its labels."""
        answers = []
        for chunk, offset, count, _ in prepared.spans:
            if chunk == self.chunk_id:
                self._flush()
            answers.extend(self.chunks[chunk].result()[offset:offset + count])
        if prepared.spans:    # later blocks use only this block's last chunk and later
            last = prepared.spans[-1][0]
            for chunk in [c for c in self.chunks if c < last]:
                del self.chunks[chunk]
        return answers

    def _transactions(self, height: int, prepared: _Prepared, answers: list) -> list[Tx]:
        """The block's decoded transactions; the first refusal in order is the failure."""
        txs = []
        for label, answer in zip(prepared.labels[:prepared.checkpoint_from], answers):
            if type(label) is str:                       # a commit signature
                if answer is not True:
                    raise AuditFailure(height, label)
            elif len(answer) == 2:                       # the door refused envelope `label`
                code, reason = answer
                raise AuditFailure(height, f"{code}: envelope {label}: {reason}")
            else:
                txs.append(Tx(*answer))
        return txs

    # ---- in order: signatures' verdicts, execution, comparison ----

    def _settle(self, prepared: _Prepared) -> None:
        if prepared.failure is not None:
            raise prepared.failure
        block = prepared.block
        height = block.height
        answers = self._answers(prepared)
        txs = self._transactions(height, prepared, answers)
        self.scratch.begin()
        try:
            run = run_block(self.genesis, self.scratch, height, prepared.time_ms,
                            txs, self.acc, self.hash, block.batch_digest)
        except RulesMissing as missing:  # the log may be right: this build cannot tell
            raise AuditFailure(height, f"cannot re-execute: {missing}") from None
        except Exception as error:      # a log no correct rules would have produced
            raise AuditFailure(height, f"re-execution fails ({type(error).__name__}: "
                                       f"{error})") from None
        outcome, encoded = run.outcome, run.encoded
        if block.results is not None and tuple(encoded) != block.results:
            if len(block.results) != len(encoded):
                raise AuditFailure(height, f"the source has {len(block.results)} results for "
                                           f"{len(encoded)} transactions")
            i = next(i for i, (a, b) in enumerate(zip(encoded, block.results)) if a != b)
            raise AuditFailure(height, f"the result of transaction {i} ({txs[i].tx_id}) "
                                       f"differs from re-execution")
        if block.json_results is not None:
            if len(block.json_results) != len(encoded):
                raise AuditFailure(height, f"the source has {len(block.json_results)} results "
                                           f"for {len(encoded)} transactions")
            for i, (mine, theirs) in enumerate(zip(encoded, block.json_results)):
                if jsonable(msgpack.unpackb(mine, raw=False)) != theirs:
                    raise AuditFailure(height, f"the result of transaction {i} "
                                               f"({txs[i].tx_id}) differs from re-execution")
        if run.results_root != block.results_root:
            raise AuditFailure(height, "the results root differs from re-execution")
        if outcome.state_root != block.state_root:
            raise AuditFailure(height, "the state root differs from re-execution")
        this_hash = run.hash
        if this_hash != block.hash:
            raise AuditFailure(height, "the block hash does not match the block's contents")
        first_seen = self.scratch.first_seen
        events, done = [], []
        for tx, result in zip(txs, outcome.results):
            code = result.code
            if code == "duplicate":
                continue
            first = first_seen(result.tx_id, height)
            if first is not None:
                raise AuditFailure(height, f"transaction {result.tx_id} is executed a second "
                                           f"time (first at height {first})")
            if code == "ok":
                self.ok += 1
                events.extend(result.events)
                done.append((tx, result.events))
        try:
            self.invariants.block(height, prepared.time_ms, events)
            self.governance.block(height, prepared.time_ms, done)
        except InvariantBroken as broken:
            raise AuditFailure(broken.height, broken.reason) from None
        for label, answer in zip(prepared.labels[prepared.checkpoint_from:],
                                 answers[prepared.checkpoint_from:]):
            if answer is not True:
                raise AuditFailure(height, label)
        self.scratch.apply(outcome.writes)
        if sets.changed(outcome.writes):    # a validators.set: read the sets again
            self.sets = sets.every(self.genesis, self.scratch)
        newest = None if block.checkpoint is None else \
            sets.newest(self.genesis, self.scratch, height)
        self.scratch.commit()
        if newest is not None:
            self.checkpoints += 1
            named = block.checkpoint[2]
            if named != newest.hash(self.genesis):
                raise AuditFailure(height, "the checkpoint names a validator set other than "
                                           "the newest one scheduled after this block (from "
                                           f"height {newest.first_height}: "
                                           f"{', '.join(newest.names)})")
        self.acc = outcome.state_acc
        self.height, self.hash = height, this_hash
        self.txs += len(txs)
        if self.on_block is not None:
            self.on_block(block, encoded)
