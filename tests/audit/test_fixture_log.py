"""A chain written by an earlier version (tests/audit/fixture_log.py) replays under this
code with identical bytes: every block's hash, results and state root, through the
validators' executor and through the audit. A change of the chaincode's rules, the
state's encoding, the results' encoding or the hashing fails here before it forks a
running network from its own history."""
from __future__ import annotations

import io

import msgpack

from consensus.api import CommittedBatch
from fixture_log import FIXTURE, FIXTURE_V1
from node.audit import audit
from node.audit.sources import FileSource, genesis_from_canonical
from node.executor import open_ledger
from node.export import BLOCK, CHECKPOINT, GENESIS, MAGIC, ExportReader, _HEAD


def _read():
    reader = ExportReader(io.BytesIO(FIXTURE.read_bytes()))
    return reader.genesis_bytes, list(reader.blocks())


def _frames(data: bytes, kinds: tuple[int, ...]) -> list[bytes]:
    """The payloads of the frames of `kinds` (docs/audit.md, the export format)."""
    at, out = len(MAGIC) + 4, []
    while at < len(data):
        kind, length = _HEAD.unpack_from(data, at)
        if kind in kinds:
            out.append(data[at + _HEAD.size:at + _HEAD.size + length])
        at += _HEAD.size + length
    return out


def test_the_fixture_of_the_earlier_export_format_holds_the_same_genesis_and_blocks():
    """Format 2 added the validator set hash to checkpoints, nothing else: the chain
    itself (genesis, every block's bytes) is the one written before."""
    old, new = FIXTURE_V1.read_bytes(), FIXTURE.read_bytes()
    assert _frames(old, (GENESIS, BLOCK)) == _frames(new, (GENESIS, BLOCK))
    assert len(_frames(new, (BLOCK,))) >= 30
    assert len(_frames(old, (CHECKPOINT,))) == len(_frames(new, (CHECKPOINT,))) >= 7


def test_the_fixture_is_a_real_chain_with_governance_and_coins():
    _genesis_bytes, blocks = _read()
    assert len(blocks) >= 30
    kinds = {msgpack.unpackb(msgpack.unpackb(e)[0])["kind"] for b in blocks
             for e in b.envelopes}
    assert {"gov.propose", "gov.approve", "gov.withdraw", "member.register",
            "member.recover", "recovery.cancel", "recovery.complete", "task.post",
            "task.claim", "task.submit", "task.approve", "coin.spend", "coin.refund",
            "coin.redeem", "payout.confirm"} <= kinds
    assert sum(b.checkpoint is not None for b in blocks) >= 7


def test_the_executor_replays_the_fixture_to_the_same_bytes(tmp_path):
    genesis_bytes, blocks = _read()
    genesis = genesis_from_canonical(genesis_bytes)
    executor = open_ledger(tmp_path / "data", genesis)
    try:
        for block in blocks:
            requests = executor.door.inspect(list(block.envelopes))
            assert requests is not None, f"block {block.height}: an envelope fails the door"
            batch = CommittedBatch(block.height, block.view, block.time_ms,
                                   block.batch_digest, tuple(requests), block.certificate)
            assert executor.execute(batch) == block.hash, f"block {block.height}: hash"
            record = executor.store.block(block.height)
            assert (record.prev_hash, record.results_root, record.state_root) == \
                (block.prev_hash, block.results_root, block.state_root), \
                f"block {block.height}: header"
            assert tuple(executor.store.results(block.height)) == block.results, \
                f"block {block.height}: results"
    finally:
        executor.store.close()


def test_the_audit_passes_the_fixture_and_reports_its_decisions(tmp_path):
    genesis_bytes, blocks = _read()
    source = FileSource(FIXTURE, FIXTURE.name)
    try:
        report = audit([source], jobs=1)
    finally:
        source.close()
    assert report.failure is None, report.failure
    assert report.genesis_hash == genesis_from_canonical(genesis_bytes).hash().hex()
    assert report.summary["blocks"] == len(blocks)
    enacted = [d for d in report.decisions if d["outcome"] == "enacted"]
    assert len(report.decisions) == 9 and len(enacted) == 8
