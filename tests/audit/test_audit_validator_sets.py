"""The audit follows the validator set through a change (docs/audit.md): a chain whose
stewards replace vng's key (`validators.set`) passes when every block is certified by
the set in force at its height, before and after the switch, checkpoints included; it
fails, with a reason that names the height and the set, when one block after the
switch carries a certificate of the old set, or when a checkpoint names another set."""
from __future__ import annotations

from dataclasses import replace

import pytest

from audit_kit import ADMIN, blocks_of, run_audit
from consensus.api import CommittedBatch, StableCheckpoint
from consensus.digest import (batch_digest, checkpoint_bytes, commit_bytes,
                              validator_set_hash)
from gov_kit import Script
from ledger_kit import VALIDATOR_NAMES, keypair, make_genesis
from node.executor import open_ledger
from node.export import SourceBlock

NEW_VNG = keypair("vng-rotated")


def _signers(height: int, switch: int | None) -> list:
    """The keypairs of the set in force at `height`, in its order."""
    names = list(VALIDATOR_NAMES)
    pairs = [keypair(n) for n in names]
    if switch is not None and height >= switch:
        pairs[3] = NEW_VNG
    return pairs


def _chain(path):
    """A log whose stewards replace vng's key; (genesis bytes, blocks, from height)."""
    genesis = make_genesis(ADMIN)
    script = Script()
    entries = [{"name": n, "key": keypair(n).public, "organisation": n}
               for n in VALIDATOR_NAMES]
    entries[3] = {"name": "vng", "key": NEW_VNG.public, "organisation": "vng"}
    proposal, envelope = script.propose("municipality", "validators.set",
                                        validators=entries)
    script.block(envelope)
    script.block(script.approve("cbs", proposal))
    enacting = script.block(script.approve("brightlands", proposal))
    interval, margin = genesis.checkpoint_interval, genesis.switch_margin()
    switch = -(-enacting // interval) * interval + margin + 1
    while len(script.blocks) < switch + 2 * interval:
        script.block()
    executor = open_ledger(path, genesis)
    for height, (time_ms, envelopes) in enumerate(script.blocks, 1):
        pairs = _signers(height, switch)
        requests = executor.door.inspect(envelopes)
        digest = batch_digest(executor.domain, height, time_ms, [r.digest for r in requests])
        message = commit_bytes(executor.domain, 0, height, digest)
        certificate = tuple((i, pairs[i].sign(message)) for i in (1, 2, 3))
        block_hash = executor.execute(CommittedBatch(height, 0, time_ms, digest,
                                                     tuple(requests), certificate))
        if height == enacting:
            assert executor.next_set().first_height == switch
        if height % interval == 0:
            set_hash = executor.newest_set_hash()
            signed = checkpoint_bytes(executor.domain, height, block_hash, set_hash)
            executor.keep_checkpoint(StableCheckpoint(
                height, block_hash, set_hash,
                tuple((i, pairs[i].sign(signed)) for i in (0, 1, 2, 3))))
    executor.store.close()
    genesis_bytes, blocks = blocks_of(path)
    return genesis_bytes, blocks, switch


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    return _chain(tmp_path_factory.mktemp("sets") / "data")


def test_a_log_certified_by_the_set_in_force_at_each_height_passes(chain):
    genesis_bytes, blocks, switch = chain
    report = run_audit(genesis_bytes, blocks)
    assert report.failure is None, report.failure
    summary = report.summary
    assert summary["blocks"] == len(blocks) > switch
    assert summary["checkpoints"] >= len(blocks) // 4 - 1
    # from the enacting block (3) on, checkpoints name the new set, pending or in force
    genesis = make_genesis(ADMIN)
    first = validator_set_hash(genesis.domain(), 1, tuple(genesis.validator_keys()))
    named = {b.checkpoint[2] for b in blocks if b.checkpoint is not None}
    assert len(named) == 1 and first not in named
    assert any(b.checkpoint is not None and b.height < switch for b in blocks)


def test_a_block_after_the_switch_certified_by_the_old_set_fails_at_its_height(chain):
    genesis_bytes, blocks, switch = chain
    index = switch + 1 - 1
    block = blocks[index]
    old = keypair("vng")
    message = commit_bytes(make_genesis(ADMIN).domain(), block.view, block.height,
                           block.batch_digest)
    forged = replace(block, certificate=tuple(
        (i, (old if i == 3 else keypair(VALIDATOR_NAMES[i])).sign(message))
        for i in (1, 2, 3)))
    failure = run_audit(genesis_bytes, blocks[:index] + [forged] + blocks[index + 1:]).failure
    assert failure.height == switch + 1
    assert "commit certificate: the signature of validator 3 (vng) does not verify" in \
        str(failure)


def test_a_block_before_the_switch_certified_by_the_new_set_fails_too(chain):
    genesis_bytes, blocks, switch = chain
    index = switch - 3
    block = blocks[index]
    message = commit_bytes(make_genesis(ADMIN).domain(), block.view, block.height,
                           block.batch_digest)
    early = replace(block, certificate=tuple(
        (i, (NEW_VNG if i == 3 else keypair(VALIDATOR_NAMES[i])).sign(message))
        for i in (1, 2, 3)))
    failure = run_audit(genesis_bytes, blocks[:index] + [early] + blocks[index + 1:]).failure
    assert failure.height == switch - 2


def test_a_checkpoint_naming_another_set_fails_with_the_set_it_should_name(chain):
    genesis_bytes, blocks, switch = chain
    index = next(i for i, b in enumerate(blocks)
                 if b.checkpoint is not None and b.height >= switch)
    block: SourceBlock = blocks[index]
    block_hash, _certificate, _set_hash = block.checkpoint
    wrong = b"\x07" * 32
    signed = checkpoint_bytes(make_genesis(ADMIN).domain(), block.height, block_hash, wrong)
    pairs = _signers(block.height, switch)
    tampered = replace(block, checkpoint=(block_hash, tuple(
        (i, pairs[i].sign(signed)) for i in (0, 1, 2)), wrong))
    failure = run_audit(genesis_bytes, blocks[:index] + [tampered] + blocks[index + 1:]).failure
    assert failure.height == block.height
    assert "names a validator set other than the newest one scheduled" in str(failure)
    assert f"from height {switch}" in str(failure)
