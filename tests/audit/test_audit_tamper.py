"""The tamper matrix: every change to a certified log is caught at the height where it
was made, with the reason that names what was changed."""
from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from audit_kit import DOMAIN, BlockList, blocks_of, build_log, recertify, run_audit
from consensus.digest import batch_digest, commit_bytes
from ledger_kit import CHAIN, keypair, make_genesis
from protocol import codec
from node.audit import audit
from node.envelope import TX_TAG, make_body


@pytest.fixture(scope="module")
def log(logged):
    path, genesis = logged
    genesis_bytes, blocks = blocks_of(path)
    return genesis_bytes, blocks, genesis


def flip(data: bytes, at: int = -1) -> bytes:
    data = bytearray(data)
    data[at] ^= 0x01
    return bytes(data)


def at(blocks, height, **changes):
    out = list(blocks)
    out[height - 1] = replace(out[height - 1], **changes)
    return out


def test_an_untouched_log_passes_with_the_story_totals(log):
    genesis_bytes, blocks, genesis = log
    report = run_audit(genesis_bytes, blocks, pin=genesis.hash())
    assert report.failure is None and not report.trusted
    s = report.summary
    assert (s["blocks"], s["transactions"], s["ok"], s["rejected"]) == (9, 15, 13, 2)
    assert (s["minted"], s["redeemed"], s["circulating"]) == (1_000, 50, 950)
    assert s["members"] == {"admin": 1, "citizen": 1, "merchant": 1, "steward": 4}
    assert s["tasks"] == 1 and report.decisions == []
    assert s["checkpoints"] == 2 and s["head"] == blocks[-1].hash.hex()
    assert s["genesis"] == genesis.hash().hex()


def _cert(block, entries):
    return replace(block, certificate=tuple(entries))


def _commit(block):
    return commit_bytes(DOMAIN, block.view, block.height, block.batch_digest)


STRANGER = keypair("not-a-validator")

# (name, change to the blocks, height caught, words of the reason)
MATRIX = [
    ("envelope byte", lambda b: at(b, 6, envelopes=(b[5].envelopes[0],
                                                   flip(b[5].envelopes[1]))
                                   + b[5].envelopes[2:]), 6, "batch digest"),
    ("result byte", lambda b: at(b, 6, results=(flip(b[5].results[0], 20),)
                                 + b[5].results[1:]), 6, "result of transaction 0"),
    ("state root", lambda b: at(b, 5, state_root=flip(b[4].state_root)), 5, "state root"),
    ("results root", lambda b: at(b, 2, results_root=flip(b[1].results_root)), 2,
     "results root"),
    ("header hash", lambda b: at(b, 3, hash=flip(b[2].hash)), 3, "block hash"),
    ("header time", lambda b: at(b, 7, time_ms=b[6].time_ms + 1), 7, "batch digest"),
    ("header view", lambda b: at(b, 7, view=1), 7,
     "commit certificate: the signature of validator 0"),
    ("header prev hash", lambda b: at(b, 4, prev_hash=flip(b[3].prev_hash)), 4,
     "previous hash"),
    ("certificate byte", lambda b: at(b, 2, certificate=(b[1].certificate[0],
                                                         (1, flip(b[1].certificate[1][1])),
                                                         b[1].certificate[2])), 2,
     "signature of validator 1 (cbs) does not verify"),
    ("block dropped", lambda b: b[:3] + b[4:], 4, "block 4 is missing"),
    ("block duplicated", lambda b: b[:4] + [b[3]] + b[4:], 5, "block 4 comes again"),
    ("blocks reordered", lambda b: b[:4] + [b[5], b[4]] + b[6:], 5, "block 5 is missing"),
    ("last block dropped", lambda b: b[:-1], None, None),
    ("non-validator's signature", lambda b: at(b, 3, certificate=(
        (0, STRANGER.sign(_commit(b[2]))),) + b[2].certificate[1:]), 3,
     "signature of validator 0 (municipality) does not verify"),
    ("non-validator's index", lambda b: at(b, 3, certificate=b[2].certificate[:2]
                                           + ((4, STRANGER.sign(_commit(b[2]))),)), 3,
     "signer 4 is not a validator of the set in force (from height 1, 4 validators)"),
    ("too few signatures", lambda b: at(b, 3, certificate=b[2].certificate[:2]), 3,
     "has 2 validators' signatures; a quorum of 4 is 3"),
    ("one validator counted twice", lambda b: at(b, 3, certificate=b[2].certificate[:2]
                                                 + (b[2].certificate[0],)), 3,
     "validator 0 (municipality) is counted twice"),
    ("one bad signature beside a quorum", lambda b: at(b, 3, certificate=b[2].certificate
                                                       + ((3, bytes(64)),)), 3,
     "signature of validator 3 (vng) does not verify"),
    ("checkpoint signature", lambda b: at(b, 4, checkpoint=(b[3].checkpoint[0], (
        (1, flip(b[3].checkpoint[1][0][1])),) + b[3].checkpoint[1][1:],
        b[3].checkpoint[2])), 4, "checkpoint certificate: the signature of validator 1"),
    ("checkpoint of another block", lambda b: at(b, 8, checkpoint=(
        b[6].hash, b[7].checkpoint[1], b[7].checkpoint[2])), 8,
     "checkpoint kept with the block names another block hash"),
    ("checkpoint short of a quorum", lambda b: at(b, 8, checkpoint=(
        b[7].checkpoint[0], b[7].checkpoint[1][:1], b[7].checkpoint[2])), 8,
     "checkpoint certificate has 1"),
    ("checkpoint off the interval", lambda b: at(b, 5, checkpoint=(
        b[4].hash, b[3].checkpoint[1], b[3].checkpoint[2])), 5,
     "not at a multiple of the checkpoint interval"),
    ("checkpoint of another validator set", lambda b: at(b, 4, checkpoint=(
        b[3].checkpoint[0], b[3].checkpoint[1], bytes(32))), 4,
     "checkpoint certificate: the signature of validator"),
]


@pytest.mark.parametrize("name,change,height,reason", MATRIX, ids=[m[0] for m in MATRIX])
def test_each_tampering_is_caught_at_its_height_with_its_reason(log, name, change, height,
                                                                reason):
    genesis_bytes, blocks, _ = log
    report = run_audit(genesis_bytes, change(list(blocks)))
    if height is None:      # a log cut at a block boundary is a shorter valid log
        assert report.failure is None and report.summary["blocks"] == len(blocks) - 1
        return
    assert report.failure is not None, name
    assert report.failure.height == height, report.failure
    assert reason in report.failure.reason, report.failure.reason


def _certified_block(blocks, height, envelope: bytes):
    """Block `height` replaced by one carrying `envelope`, certified by a quorum anyway."""
    block = blocks[height - 1]
    digest = batch_digest(DOMAIN, height, block.time_ms, [hashlib.sha256(envelope).digest()])
    return recertify(block, envelopes=(envelope,), batch_digest=digest)


@pytest.mark.parametrize("kind", ["bad_signature", "wrong_chain", "malformed"])
def test_an_envelope_the_door_refuses_fails_even_when_a_quorum_certified_it(log, kind):
    genesis_bytes, blocks, _ = log
    citizen = keypair("citizen")
    body = make_body(CHAIN if kind != "wrong_chain" else "other-chain", "coin.spend",
                     citizen.public, 99, {"to": keypair("shop").public, "amount": 1})
    signature = citizen.sign(TX_TAG + body)
    if kind == "bad_signature":
        signature = flip(signature)
    envelope = codec.pack([body, signature]) if kind != "malformed" else codec.pack([body])
    tampered = list(blocks)
    tampered[7] = _certified_block(blocks, 8, envelope)     # block 8 was empty
    report = run_audit(genesis_bytes, tampered)
    assert report.failure.height == 8
    assert report.failure.reason.startswith(f"{kind}: envelope 0"), report.failure.reason


def test_a_swapped_genesis_is_caught_before_block_one(log, tmp_path):
    genesis_bytes, blocks, genesis = log
    other = make_genesis(keypair("another-admin"))
    report = run_audit(genesis_bytes, blocks, pin=other.hash())
    assert report.failure.height == 0 and "pinned" in report.failure.reason
    # the same blocks under another genesis: block 1 does not chain to it
    report = run_audit(other.canonical(), blocks)
    assert report.failure.height == 1 and "genesis hash" in report.failure.reason
    # a genesis given as a file that the source does not hold
    report = audit([BlockList(genesis_bytes, blocks)], genesis=other, jobs=1)
    assert report.failure.height == 0 and "another genesis" in report.failure.reason


def test_a_signature_check_in_the_pool_gives_the_same_verdicts_as_in_process(log):
    genesis_bytes, blocks, _ = log
    tampered = at(list(blocks), 3, certificate=blocks[2].certificate + ((3, bytes(64)),))
    alone = run_audit(genesis_bytes, tampered, jobs=1)
    pooled = run_audit(genesis_bytes, tampered, jobs=2)
    assert (alone.failure.height, alone.failure.reason) == (pooled.failure.height,
                                                            pooled.failure.reason)
    assert run_audit(genesis_bytes, blocks, jobs=2).summary["head"] == blocks[-1].hash.hex()


def test_several_sources_with_different_blocks_at_one_height_fail_there(log, tmp_path):
    genesis_bytes, blocks, genesis = log
    build_log(tmp_path / "other", spends=4)          # same genesis, block 6 differs
    _, other = blocks_of(tmp_path / "other")
    report = audit([BlockList(genesis_bytes, blocks, "a"), BlockList(genesis_bytes, other, "b")],
                   jobs=1)
    assert report.failure.height == 6
    assert "a and b hold different blocks at height 6" in report.failure.reason


def test_a_source_that_is_only_behind_is_a_warning_naming_it(log):
    genesis_bytes, blocks, _ = log
    report = audit([BlockList(genesis_bytes, blocks[:5], "short"),
                    BlockList(genesis_bytes, blocks, "full")], jobs=1)
    assert report.failure is None and report.summary["blocks"] == 9
    assert any(w.startswith("short is behind: it ends at height 5") for w in report.warnings)
