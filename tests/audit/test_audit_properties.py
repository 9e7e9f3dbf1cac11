"""Properties of the audit's checks: the process pool answers exactly as the door does,
and a commit certificate passes exactly when a quorum of distinct genesis validators
signed it and every one of its signatures is valid."""
from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from audit_kit import DOMAIN, blocks_of, run_audit
from consensus.digest import commit_bytes
from ledger_kit import CHAIN, VALIDATOR_NAMES, keypair
from node.audit.engine import _Scratch
from node.audit.verify import Verifier, check_items
from node.envelope import Refused, open_envelope, sign_tx
from node.keys import verify

CITIZEN = keypair("citizen")
ENVELOPE = sign_tx(CITIZEN, CHAIN, "coin.spend", {"to": keypair("shop").public, "amount": 5},
                   nonce=7)


def door_answer(envelope: bytes):
    try:
        tx = open_envelope(envelope, CHAIN).tx
    except Refused as refused:
        return (refused.code, refused.reason)
    return (tx.tx_id, tx.signer, tx.kind, tx.args)


@given(st.lists(st.tuples(st.integers(0, len(ENVELOPE) - 1), st.integers(1, 255)),
                max_size=3),
       st.binary(max_size=8))
def test_the_pool_answers_each_envelope_exactly_as_the_door(flips, tail):
    envelope = bytearray(ENVELOPE)
    for position, xor in flips:
        envelope[position] ^= xor
    envelope = bytes(envelope) + tail
    assert check_items(CHAIN, [envelope]) == [door_answer(envelope)]


@given(st.binary(min_size=0, max_size=40), st.booleans())
def test_the_pool_answers_each_signature_exactly_as_verify(message, corrupt):
    signer = keypair("municipality")
    signature = signer.sign(message)
    if corrupt:
        signature = bytes([signature[0] ^ 1]) + signature[1:]
    expected = verify(signer.public, message, signature)
    assert check_items(CHAIN, [(signer.public, message, signature)]) == [expected]
    with Verifier(1) as alone:
        assert alone.submit(CHAIN, [(signer.public, message, signature)]).result() == [expected]


@pytest.fixture(scope="module")
def log(logged):
    return blocks_of(logged[0])


ENTRY = st.tuples(st.integers(0, 5), st.sampled_from(["valid", "stranger", "garbage"]))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(ENTRY, max_size=6))
def test_a_certificate_passes_exactly_with_a_valid_quorum_of_distinct_validators(log, entries):
    genesis_bytes, blocks = log
    block = blocks[2]
    message = commit_bytes(DOMAIN, block.view, block.height, block.batch_digest)
    certificate = []
    for index, kind in entries:
        signer = (keypair(VALIDATOR_NAMES[index]) if kind == "valid" and index < 4
                  else keypair("stranger"))
        signature = bytes(64) if kind == "garbage" else signer.sign(message)
        certificate.append((index, signature))
    tampered = list(blocks)
    tampered[2] = replace(block, certificate=tuple(certificate))
    report = run_audit(genesis_bytes, tampered)
    indexes = [i for i, _ in entries]
    holds = (all(i < 4 and kind == "valid" for i, kind in entries)
             and len(set(indexes)) == len(indexes) and len(indexes) >= 3)
    if holds:
        assert report.failure is None
    else:
        assert report.failure.height == 3 and "commit certificate" in report.failure.reason


@given(st.lists(st.binary(min_size=32, max_size=32), max_size=20))
def test_the_executed_ids_remember_each_id_with_the_height_it_was_first_executed(ids):
    scratch = _Scratch()
    try:
        scratch.begin()
        first: dict[bytes, int] = {}
        for height, raw in enumerate(ids, 1):
            assert scratch.first_seen(raw.hex(), height) == first.get(raw)
            first.setdefault(raw, height)
    finally:
        scratch.close()
