"""Helpers of the audit's tests: certified logs, certificates signed by the test
validators, and exports to tamper with."""
from __future__ import annotations

import io
import os
from dataclasses import replace
from pathlib import Path

from consensus.api import StableCheckpoint
from consensus.digest import checkpoint_bytes, commit_bytes
from ledger_kit import VALIDATOR_NAMES, certified, keypair, make_genesis, story
from node.audit import audit, open_source
from node.audit.sources import Broken, FileSource
from node.executor import open_ledger
from node.export import ExportReader, ExportWriter, SourceBlock

ADMIN = keypair("admin")
# what the validators of the default log sign for (its chain id and genesis hash)
DOMAIN = make_genesis(ADMIN).domain()


def sign_all(message: bytes, indexes=(0, 1, 2)) -> tuple[tuple[int, bytes], ...]:
    return tuple((i, keypair(VALIDATOR_NAMES[i]).sign(message)) for i in indexes)


def build_log(path, admin=ADMIN, spends: int = 3, genesis=None):
    """The ledger kit's story executed into a store at `path`, every block certified by 3
    of 4 validators and a checkpoint kept every `checkpoint_interval` blocks."""
    return build_blocks(path, genesis or make_genesis(admin), story(admin, spends))


def build_blocks(path, genesis, blocks):
    """`blocks` ((block time, envelopes) each) executed into a store at `path`, certified
    as build_log does; answers the genesis."""
    executor = open_ledger(path, genesis)
    for height, (time_ms, envelopes) in enumerate(blocks, 1):
        block_hash = executor.execute(certified(executor, height, time_ms, envelopes))
        if height % genesis.checkpoint_interval == 0:
            set_hash = executor.newest_set_hash()
            cert = sign_all(checkpoint_bytes(executor.domain, height, block_hash, set_hash),
                            (1, 2, 3))
            executor.keep_checkpoint(StableCheckpoint(height, block_hash, set_hash, cert))
    executor.store.close()
    return genesis


def blocks_of(path) -> tuple[bytes, list[SourceBlock]]:
    source = open_source(str(path), None)
    try:
        return source.genesis_bytes, list(source.blocks())
    finally:
        source.close()


def export_bytes(genesis_bytes: bytes, blocks: list[SourceBlock], genesis_hash: bytes) -> bytes:
    """An export of `blocks` as given (tampered or not); the writer's own order assertion
    is bypassed by handing it the heights it expects."""
    out = io.BytesIO()
    writer = ExportWriter(out, genesis_bytes)
    for block in blocks:
        writer.head = (block.height - 1, writer.head[1])
        writer.block(block)
    writer.finish(genesis_hash)
    return out.getvalue()


class BlockList:
    """A source over a list of blocks, as the audit sees any other source."""

    def __init__(self, genesis_bytes: bytes, blocks, name: str = "list"):
        self.name = name
        self.genesis_bytes = genesis_bytes
        self.head_height = len(blocks)
        self._blocks = list(blocks)

    def blocks(self):
        return iter(self._blocks)

    def close(self):
        pass


def run_audit(genesis_bytes, blocks, jobs=1, **kwargs):
    return audit([BlockList(genesis_bytes, blocks)], jobs=jobs, **kwargs)


def recertify(block: SourceBlock, **changes) -> SourceBlock:
    """The block with `changes` and a fresh valid commit certificate over its fields."""
    block = replace(block, **changes)
    message = commit_bytes(DOMAIN, block.view, block.height, block.batch_digest)
    return replace(block, certificate=sign_all(message))


def read_export(data: bytes):
    reader = ExportReader(io.BytesIO(data))
    return reader.genesis_bytes, list(reader.blocks())


def audit_bytes(data: bytes, path, **kwargs):
    """The audit of `data` written as an export file at `path`: its report, or the
    Broken the file's reading raised."""
    path.write_bytes(data)
    try:
        source = FileSource(path, str(path))
    except Broken as broken:
        return broken
    try:
        return audit([source], jobs=1, **kwargs)
    finally:
        source.close()


def flips_that_pass(data: bytes, positions, folder) -> list[int]:
    """Those of `positions` whose byte of `data`, flipped, leaves an export file that
    passes the audit. Each copy is audited as a file of this process's own in `folder`,
    so that processes can share a matrix of flips."""
    path = Path(folder) / f"flipped-{os.getpid()}.export"
    passed = []
    for position in positions:
        changed = bytearray(data)
        changed[position] ^= 0xFF
        outcome = audit_bytes(bytes(changed), path)
        if not isinstance(outcome, Broken) and outcome.failure is None:
            passed.append(position)
    return passed
