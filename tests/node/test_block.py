"""Certificates of blocks and checkpoints against the genesis validators (node/block.py)."""
from __future__ import annotations

from hypothesis import given, strategies as st

from consensus.digest import checkpoint_bytes, commit_bytes
from consensus.digest import signing_domain
from ledger_kit import CHAIN, VALIDATOR_NAMES, keypair
from node.block import (BlockRecord, certificate_ok, checkpoint_certificate_ok,
                        commit_certificate_ok)

SIGNERS = [keypair(n) for n in VALIDATOR_NAMES]
KEYS = [k.public for k in SIGNERS]
DOMAIN = signing_domain(CHAIN, b"g" * 32)
# another genesis with the same chain id and the same validator keys
OTHER = signing_domain(CHAIN, b"o" * 32)


def record(certificate, view=2) -> BlockRecord:
    return BlockRecord(7, view, 1, b"p" * 32, b"d" * 32, b"r" * 32, b"s" * 32, b"h" * 32,
                       (), tuple(certificate), 1, 0)


def commits(indexes, view=2):
    message = commit_bytes(DOMAIN, view, 7, b"d" * 32)
    return [(i, SIGNERS[i].sign(message)) for i in indexes]


@given(st.lists(st.integers(0, 3), max_size=6))
def test_a_commit_certificate_holds_only_with_a_quorum_of_distinct_validators(indexes):
    distinct = len(set(indexes)) == len(indexes)
    assert commit_certificate_ok(DOMAIN, KEYS, record(commits(indexes))) == (
        distinct and len(indexes) >= 3)


def test_a_commit_for_another_view_or_by_a_stranger_does_not_count():
    assert commit_certificate_ok(DOMAIN, KEYS, record(commits([0, 1, 2]))) is True
    assert not commit_certificate_ok(DOMAIN, KEYS, record(commits([0, 1, 2], view=3)))
    stranger = keypair("stranger").sign(commit_bytes(DOMAIN, 2, 7, b"d" * 32))
    assert not commit_certificate_ok(DOMAIN, KEYS, record(commits([0, 1]) + [(2, stranger)]))
    assert not commit_certificate_ok(DOMAIN, KEYS, record(commits([0, 1]) + [(4, stranger)]))
    assert not certificate_ok(KEYS, b"m", ((True, b"x" * 64),))


def test_a_checkpoint_certificate_signs_height_block_hash_and_set_hash():
    message = checkpoint_bytes(DOMAIN, 8, b"h" * 32, b"s" * 32)
    certificate = tuple((i, SIGNERS[i].sign(message)) for i in (3, 1, 0))
    assert checkpoint_certificate_ok(DOMAIN, KEYS, 8, b"h" * 32, certificate, b"s" * 32)
    assert not checkpoint_certificate_ok(DOMAIN, KEYS, 9, b"h" * 32, certificate, b"s" * 32)
    assert not checkpoint_certificate_ok(DOMAIN, KEYS, 8, b"g" * 32, certificate, b"s" * 32)
    assert not checkpoint_certificate_ok(DOMAIN, KEYS, 8, b"h" * 32, certificate, b"t" * 32)
    assert not checkpoint_certificate_ok(OTHER, KEYS, 8, b"h" * 32, certificate, b"s" * 32)


def test_certificates_of_another_genesis_with_the_same_chain_id_and_keys_do_not_count():
    assert commit_certificate_ok(DOMAIN, KEYS, record(commits([0, 1, 2])))
    assert not commit_certificate_ok(OTHER, KEYS, record(commits([0, 1, 2])))


def test_a_block_record_survives_its_encoding():
    original = record(commits([0, 2, 3]))
    assert BlockRecord.decode(original.encode()) == original
