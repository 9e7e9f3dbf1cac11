"""Execution: a committed batch becomes a block (consensus.api.Ledger).

For the batch of height h the executor
1. checks that the batch digest covers exactly these envelopes (chain, h, block time);
2. takes the decoded transactions from the door (opening only what this process has not
   verified yet, e.g. blocks fetched in catch-up);
3. runs the chaincode over the state of height h - 1 under the rules version in force
   at h (genesis's, or a later one rules.activate scheduled; node/block.rules_for);
4. derives the results root, the state root and the block hash;
5. writes block, certificate, results, events, state writes, accumulator and indexes in
   ONE LMDB write transaction, so a crash leaves the whole block or nothing.
A height already executed returns its stored hash: the driver may hand a batch again
after a restart, and re-executing would double every effect.
"""
from __future__ import annotations

from pathlib import Path

from consensus.api import CommittedBatch, StableCheckpoint, ValidatorSet
from consensus.digest import batch_digest
from node import sets
from node.block import BlockRecord, block_time, run_block
from node.envelope import Door, Refused
from node.genesis import Genesis
from node.store import Store


class LedgerError(Exception):
    """Execution cannot go on: a gap, a divergence, or a certified batch that fails the
    door. Each means a bug or a faulty quorum, never a client's mistake."""


class Executor:
    def __init__(self, store: Store, genesis: Genesis, door: Door):
        assert door.chain == genesis.chain
        self.store = store
        self.genesis = genesis
        self.door = door
        self.chain = genesis.chain
        self.domain = genesis.domain()

    def execute(self, batch: CommittedBatch) -> bytes:
        height = batch.height
        head_height, _ = self.store.head()
        if height <= head_height:
            return self._already(batch)
        if height != head_height + 1:
            raise LedgerError(f"batch {height} does not follow the head {head_height}")
        requests = batch.requests
        expected = batch_digest(self.domain, height, batch.time_ms, [r.digest for r in requests])
        if expected != batch.digest:
            raise LedgerError(f"batch {height}: digest does not cover its envelopes")
        try:
            txs = self.door.take(requests)
        except Refused as refused:
            raise LedgerError(f"batch {height}: a certified envelope fails the door "
                              f"({refused})") from None
        with self.store.writer() as writer:
            head_height, prev_hash, acc = writer.head()
            assert head_height + 1 == height, "another writer moved the head"
            time_ms = block_time(writer.block_time(), batch.time_ms)
            run = run_block(self.genesis, writer.state, height, time_ms, txs,
                            acc, prev_hash, batch.digest)
            outcome = run.outcome
            events = [r.events for r in outcome.results]
            record = BlockRecord(
                height=height, view=batch.view, time_ms=batch.time_ms, prev_hash=prev_hash,
                batch_digest=batch.digest, results_root=run.results_root,
                state_root=outcome.state_root, hash=run.hash,
                envelopes=tuple(r.payload for r in requests),
                certificate=tuple(batch.certificate),
                first_position=writer.last_position() + 1,
                event_count=sum(len(e) for e in events))
            writer.append(record, [t.tx_id for t in txs], run.encoded, events, outcome.writes,
                          outcome.state_acc, time_ms)
        return run.hash

    def _already(self, batch: CommittedBatch) -> bytes:
        record = self.store.block(batch.height)
        assert record is not None
        if record.batch_digest != batch.digest:
            raise LedgerError(f"block {batch.height} was executed with another batch")
        return record.hash

    def next_set(self) -> ValidatorSet | None:
        """The validator set the executed blocks scheduled to take over, if pending."""
        found = sets.pending(self.store, self.store.head()[0])
        return None if found is None else found.plain()

    def newest_set_hash(self) -> bytes:
        """What a checkpoint of the head block names: the hash of the newest validator
        set scheduled (consensus.digest.checkpoint_bytes)."""
        height = self.store.head()[0]
        return sets.newest(self.genesis, self.store, height).hash(self.genesis)

    def keep_checkpoint(self, checkpoint: StableCheckpoint) -> None:
        record = self.store.block(checkpoint.height)
        if record is None or record.hash != checkpoint.block_hash:
            raise LedgerError(f"checkpoint {checkpoint.height} does not match the stored block")
        self.store.put_checkpoint(checkpoint.height, checkpoint.block_hash,
                                  tuple(checkpoint.certificate), checkpoint.set_hash)


def batch_of(record: BlockRecord, door: Door) -> CommittedBatch:
    """The committed batch of a stored (or fetched) block, its envelopes opened by the
    door, for replay and catch-up."""
    requests = door.inspect(list(record.envelopes))
    if requests is None:
        raise LedgerError(f"block {record.height} carries an envelope that fails the door")
    return CommittedBatch(record.height, record.view, record.time_ms, record.batch_digest,
                          tuple(requests), record.certificate)


def open_ledger(path: str | Path, genesis: Genesis, door: Door | None = None) -> Executor:
    """Open (or create from genesis) the store in `path` and its executor. A store made
    for another genesis is refused."""
    store = Store(path)
    canonical = genesis.canonical()
    stored = store.genesis_bytes()
    if stored is None:
        writes, acc = genesis.state()
        store.init_genesis(canonical, genesis.hash(), writes, acc)
    elif stored != canonical:
        store.close()
        raise LedgerError(f"{path} holds another chain's data (genesis differs)")
    # not `door or ...`: a Door has a length, so an empty one is falsy and would be
    # replaced by a second door, and every transaction verified twice
    return Executor(store, genesis, door if door is not None else Door(genesis.chain))


def replay(source: Store, target: Executor, to_height: int | None = None) -> bytes:
    """Re-execute the blocks of `source` into `target` from its head on; returns the last
    hash. Each re-executed block must give the hash stored in `source`."""
    height, last = target.store.head()
    end = source.head()[0] if to_height is None else to_height
    while height < end:
        for record in source.blocks(height + 1, min(256, end - height)):
            got = target.execute(batch_of(record, target.door))
            if got != record.hash:
                raise LedgerError(f"block {record.height}: replay gives another hash")
            height, last = record.height, got
    return last
