"""The certificates replicas show each other (consensus/certificates.py) against an
oracle written from docs/consensus.md: a certificate holds exactly when a quorum (for a
prepared certificate: quorum - 1 backups, the primary's own signature aside) of distinct
validators signed the right bytes, and a set with any repeated, out-of-range, excluded or
invalid entry is worth nothing. A mutation run found these functions checked only with
honest certificates: a count that started at one, a bad signature that counted, a
doubled count all survived."""
from __future__ import annotations

import dataclasses
import hashlib

from hypothesis import given, settings, strategies as st

from consensus.api import CommittedBatch, Request
from consensus.certificates import (batch_is_certified, checkpoint_is_certified,
                                    distinct_valid, proof_is_valid)
from consensus.digest import (ZERO_HASH, batch_digest, checkpoint_bytes, commit_bytes,
                              prepare_bytes, preprepare_bytes)
from consensus.messages import PreparedProof
from tests.sim.harness import keys_and_config

KINDS = ("valid", "bad", "other_message")


def world(n: int):
    keys, config = keys_and_config([bytes([i + 1]) * 16 for i in range(n)], "cert",
                                   checkpoint_interval=4, window=8, genesis_hash=b"g" * 32)
    return config, keys


def signed(keys, message: bytes, entries) -> tuple[tuple[int, bytes], ...]:
    out = []
    for index, kind in entries:
        signer = keys.signer(index % len(keys.secrets))
        if kind == "valid" and 0 <= index < len(keys.secrets):
            out.append((index, signer.sign(message)))
        elif kind == "other_message":
            out.append((index, signer.sign(message + b"!")))
        else:
            out.append((index, b"\x00" * 16))
    return tuple(out)


def oracle(n: int, entries, excluded: int = -1) -> int:
    """How many count: every entry distinct, in range, not excluded, validly signed,
    else nothing."""
    indexes = [i for i, _ in entries]
    if len(set(indexes)) != len(indexes):
        return 0
    if any(not 0 <= i < n or i == excluded or kind != "valid" for i, kind in entries):
        return 0
    return len(entries)


ENTRIES = st.lists(st.tuples(st.integers(-1, 7), st.sampled_from(KINDS)), max_size=8)


@given(st.sampled_from([1, 4, 7]), ENTRIES, st.integers(-1, 6))
@settings(max_examples=300, deadline=None)
def test_distinct_valid_counts_exactly_the_oracles_signatures(n, entries, excluded):
    config, keys = world(n)
    message = b"a message"
    assert distinct_valid(config, keys.signer(0), signed(keys, message, entries), message,
                          excluded) == oracle(n, entries, excluded)


def batch(config, keys, height: int, entries, digest_of=None) -> CommittedBatch:
    requests = tuple(Request(b"k%d" % i, hashlib.sha256(b"p%d" % i).digest(), b"p%d" % i,
                             b"c") for i in range(3))
    digest = digest_of if digest_of is not None else batch_digest(
        config.domain, height, 1_000, [r.digest for r in requests])
    message = commit_bytes(config.domain, 0, height, digest)
    return CommittedBatch(height, 0, 1_000, digest, requests, signed(keys, message, entries))


@given(st.sampled_from([4, 7]), ENTRIES)
@settings(max_examples=200, deadline=None)
def test_a_fetched_batch_is_certified_exactly_with_a_quorum_of_commits(n, entries):
    config, keys = world(n)
    expected = oracle(n, entries) >= config.quorum
    assert batch_is_certified(config, keys.signer(0), batch(config, keys, 5, entries)) \
        == expected


def test_a_batch_below_height_one_or_whose_digest_does_not_cover_it_is_not_certified():
    config, keys = world(4)
    everyone = [(i, "valid") for i in range(4)]
    assert batch_is_certified(config, keys.signer(0), batch(config, keys, 3, everyone))
    assert not batch_is_certified(config, keys.signer(0), batch(config, keys, 0, everyone))
    assert not batch_is_certified(config, keys.signer(0),
                                  batch(config, keys, 3, everyone, digest_of=b"d" * 32))
    good = batch(config, keys, 3, everyone)
    assert not batch_is_certified(config, keys.signer(0),
                                  dataclasses.replace(good, digest=good.digest[:31]))


@given(st.sampled_from([4, 7]), ENTRIES, st.sampled_from([4, 8, 6]))
@settings(max_examples=200, deadline=None)
def test_a_checkpoint_is_certified_only_at_multiples_of_k_with_a_quorum(n, entries, height):
    config, keys = world(n)
    block_hash = b"h" * 32
    set_hash = config.set_hash
    certificate = signed(keys, checkpoint_bytes(config.domain, height, block_hash, set_hash),
                         entries)
    expected = height % config.checkpoint_interval == 0 and \
        oracle(n, entries) >= config.quorum
    assert checkpoint_is_certified(config, keys.signer(0), height, block_hash, set_hash,
                                   certificate) == expected
    assert not checkpoint_is_certified(config, keys.signer(0), height, block_hash,
                                       b"s" * 32, certificate)


def test_the_genesis_checkpoint_is_height_zero_with_the_zero_hash_and_no_signatures():
    config, keys = world(4)
    check, set_hash = keys.signer(0), config.set_hash
    assert checkpoint_is_certified(config, check, 0, ZERO_HASH, set_hash, ())
    assert not checkpoint_is_certified(config, check, 0, b"h" * 32, set_hash, ())
    assert not checkpoint_is_certified(config, check, 0, ZERO_HASH, b"s" * 32, ())
    some = signed(keys, checkpoint_bytes(config.domain, 0, ZERO_HASH, set_hash), [(0, "valid")])
    assert not checkpoint_is_certified(config, check, 0, ZERO_HASH, set_hash, some)
    everyone = [(i, "valid") for i in range(4)]
    certificate = signed(keys, checkpoint_bytes(config.domain, 4, b"h" * 32, set_hash),
                         everyone)
    assert checkpoint_is_certified(config, check, 4, b"h" * 32, set_hash, certificate)
    assert not checkpoint_is_certified(config, check, 4, b"h" * 31, set_hash, certificate)


def test_a_later_set_counts_its_base_as_certified_and_nothing_below_it():
    """A set that takes over at F starts from block F - 1, which every member ran: that
    checkpoint holds under the new set whatever certificate (the old set's) it shows,
    if its hashes are the base's; heights below belong to earlier sets."""
    config, keys = world(4)
    later = dataclasses.replace(config, first_height=17, base_hash=b"b" * 32)
    check, set_hash = keys.signer(0), later.set_hash
    assert set_hash != config.set_hash
    assert checkpoint_is_certified(later, check, 16, b"b" * 32, set_hash, ())
    assert not checkpoint_is_certified(later, check, 16, b"c" * 32, set_hash, ())
    assert not checkpoint_is_certified(later, check, 16, b"b" * 32, config.set_hash, ())
    everyone = [(i, "valid") for i in range(4)]
    old = signed(keys, checkpoint_bytes(config.domain, 8, b"h" * 32, set_hash), everyone)
    assert not checkpoint_is_certified(later, check, 8, b"h" * 32, set_hash, old)
    assert not checkpoint_is_certified(later, check, 0, ZERO_HASH, set_hash, ())


@given(st.sampled_from([4, 7]), st.integers(0, 13), ENTRIES, st.booleans())
@settings(max_examples=300, deadline=None)
def test_a_prepared_certificate_needs_the_primary_and_quorum_minus_one_backups(
        n, view, entries, primary_signs):
    config, keys = world(n)
    digest = b"d" * 32
    primary = config.primary(view)
    pp_signature = keys.signer(primary).sign(preprepare_bytes(config.domain, view, 9, digest)) \
        if primary_signs else keys.signer((primary + 1) % n).sign(
            preprepare_bytes(config.domain, view, 9, digest))
    prepares = signed(keys, prepare_bytes(config.domain, view, 9, digest), entries)
    proof = PreparedProof(view, 9, 1_000, digest, pp_signature, prepares)
    expected = primary_signs and oracle(n, entries, excluded=primary) >= config.quorum - 1
    assert proof_is_valid(config, keys.signer(0), proof) == expected


def test_the_primarys_own_prepare_never_stands_for_a_backups_and_a_short_digest_fails():
    config, keys = world(4)
    view, digest = 1, b"d" * 32
    primary = config.primary(view)
    pp_signature = keys.signer(primary).sign(preprepare_bytes(config.domain, view, 9, digest))
    message = prepare_bytes(config.domain, view, 9, digest)
    backup = (primary + 1) % 4
    with_primary = signed(keys, message, [(primary, "valid"), (backup, "valid")])
    assert not proof_is_valid(config, keys.signer(0), PreparedProof(
        view, 9, 1_000, digest, pp_signature, with_primary))
    two_backups = signed(keys, message, [(backup, "valid"), ((primary + 2) % 4, "valid")])
    assert proof_is_valid(config, keys.signer(0), PreparedProof(
        view, 9, 1_000, digest, pp_signature, two_backups))
    assert not proof_is_valid(config, keys.signer(0), PreparedProof(
        view, 9, 1_000, digest[:31], pp_signature, two_backups))


def test_the_remembering_verifier_remembers_only_what_verified_within_its_bound():
    from consensus.certificates import RememberingVerifier
    _, keys = world(4)

    class Counting:
        def __init__(self):
            self.calls = 0

        def verify(self, replica, message, signature):
            self.calls += 1
            return keys.signer(0).verify(replica, message, signature)
    crypto = Counting()
    verifier = RememberingVerifier(crypto, limit=2)
    good = [(i, b"m%d" % i, keys.signer(i).sign(b"m%d" % i)) for i in range(3)]
    assert verifier.verify(*good[0]) and verifier.verify(*good[0]) and crypto.calls == 1
    assert not verifier.verify(1, b"m1", b"\x00" * 16)
    assert not verifier.verify(1, b"m1", b"\x00" * 16) and crypto.calls == 3
    assert verifier.verify(*good[1]) and len(verifier.verified) == 2
    assert verifier.verify(*good[2]) and len(verifier.verified) <= 2
    assert good[2] in verifier.verified
