"""Checking catch-up answers (consensus/fetched.py), the code the validator, the simulator
and the scenario cluster share: the run that may be applied, and the first refusal with
the check that refused it."""
from __future__ import annotations

from dataclasses import replace
from hashlib import sha256

import pytest

from consensus.digest import batch_digest, commit_bytes, envelope_hash
from consensus.fetched import (CERTIFICATE, CHAIN, DIGEST, DUE, ENVELOPE, FORM, HASH,
                               FetchedBlock, check_fetched)
from tests.consensus.cluster import Cluster
from tests.sim.fakes import KeyedHashKeys, header_hash


def chain(count: int = 3) -> tuple[Cluster, list[FetchedBlock]]:
    """A cluster whose replicas 0-2 committed `count` blocks while replica 3 was cut off;
    the blocks as replica 0 serves them."""
    c = Cluster()
    c.tick()
    c.cut = {3}
    for _ in range(count):
        c.drivers[0].submit(c.requests(2))
        c.deliver()
    assert c.heights()[:3] == [count] * 3
    return c, c.ledgers[0].serve(1, count)


def check(c: Cluster, blocks, committed: int = 0, head: bytes | None = bytes(32)):
    return check_fetched(lambda height: (c.config, c.keys.signer(3)), c.registry.inspect,
                         header_hash, committed, head, blocks)


def test_certified_blocks_that_follow_are_taken_in_order():
    c, blocks = chain()
    checked = check(c, blocks)
    assert checked.refused is None
    assert [b.height for b in checked.batches] == [1, 2, 3]
    assert [b.digest for b in checked.batches] == [b.digest for b in c.ledgers[0].blocks]
    assert all(b.requests == a.requests for a, b in zip(c.ledgers[0].blocks, checked.batches))


def test_blocks_already_held_are_skipped_and_the_rest_must_chain_to_the_head():
    c, blocks = chain()
    head = c.ledgers[0].hashes[0]
    checked = check(c, blocks, committed=1, head=head)
    assert [b.height for b in checked.batches] == [2, 3] and checked.refused is None
    refused = check(c, blocks, committed=1, head=bytes(32)).refused
    assert (refused.height, refused.kind) == (2, CHAIN)
    # the head unknown: the first block's link is not checked, the next ones' are
    assert len(check(c, blocks[1:], committed=1, head=None).batches) == 2


def certified(c: Cluster, block: FetchedBlock, config=None) -> FetchedBlock:
    """`block` as a quorum would have certified it, whatever its envelopes: the digest
    over their hashes, the commits of replicas 0 to quorum - 1, the header's hash."""
    config = config or c.config
    digest = batch_digest(config.domain, block.height, block.time_ms,
                          [envelope_hash(e) for e in block.envelopes])
    message = commit_bytes(config.domain, block.view, block.height, digest)
    certificate = tuple((i, c.keys.signer(i).sign(message)) for i in range(config.quorum))
    block = replace(block, batch_digest=digest, certificate=certificate)
    return replace(block, hash=header_hash(block))


def _lies(c: Cluster, blocks: list[FetchedBlock]):
    """One altered second block per check, and the check that must refuse it."""
    second = blocks[1]
    yield DUE, [blocks[0], blocks[2]]
    yield FORM, [blocks[0], replace(second, view=-1)]
    yield FORM, [blocks[0], replace(second, height=b"2")]
    yield FORM, [blocks[0], replace(second, certificate=((b"\x00", b"x"),))]
    yield FORM, [blocks[0], replace(second, envelopes=list(second.envelopes))]
    yield CHAIN, [blocks[0], replace(second, prev_hash=bytes(32))]
    yield HASH, [blocks[0], replace(second, hash=bytes(32))]
    yield DIGEST, [blocks[0], replace(second, envelopes=second.envelopes + (b"bad",))]
    yield DIGEST, [blocks[0], replace(second, envelopes=second.envelopes[::-1])]
    yield ENVELOPE, [blocks[0], certified(c, replace(second,
                                                     envelopes=second.envelopes + (b"bad",)))]
    yield DIGEST, [blocks[0], replace(second, time_ms=second.time_ms + 1)]
    yield CERTIFICATE, [blocks[0], replace(
        second, certificate=second.certificate[:c.config.quorum - 1])]
    yield CERTIFICATE, [blocks[0], replace(second, view=second.view + 1)]
    doubled = second.certificate[:1] * c.config.quorum
    yield CERTIFICATE, [blocks[0], replace(second, certificate=doubled)]


def test_each_lie_is_refused_by_its_check_and_ends_the_answer():
    c, blocks = chain()
    for kind, answer in _lies(c, blocks):
        checked = check(c, answer + blocks[2:])
        assert checked.refused is not None and checked.refused.kind == kind, (kind, answer)
        assert [b.height for b in checked.batches] == [1]


def test_a_forged_certificate_is_refused_before_any_envelope_is_opened():
    """A peer's made-up block of validly signed envelopes under a certificate of its own
    costs hashes and at most n signatures, never a signature check per envelope."""
    c, blocks = chain(1)
    opened = []

    def inspect(envelopes):
        opened.extend(envelopes)
        return c.registry.inspect(envelopes)
    block = blocks[0]
    forged = replace(block, certificate=tuple((i, bytes(16)) for i in range(c.config.n)))
    for answer, kind in (([forged], CERTIFICATE), ([replace(block, time_ms=1)], DIGEST)):
        refused = check_fetched(lambda height: (c.config, c.keys.signer(3)), inspect,
                                header_hash, 0, bytes(32), answer).refused
        assert refused.kind == kind and opened == []
    assert check_fetched(lambda height: (c.config, c.keys.signer(3)), inspect, header_hash,
                         0, bytes(32), [block]).refused is None and opened == list(block.envelopes)


def test_a_certificate_of_another_network_is_refused():
    """The same validators and keys under another genesis: the signing domain differs,
    so the batch digest does, and a block relabelled to fit it still carries commits
    signed in the first network's domain."""
    c, blocks = chain(1)
    other = replace(c.config, genesis_hash=b"\x01" * 32)
    crypto = c.keys.signer(3)

    def check_other(answer):
        return check_fetched(lambda height: (other, crypto), c.registry.inspect,
                             header_hash, 0, bytes(32), answer)
    assert check_other(blocks).refused.kind == DIGEST
    block = blocks[0]
    requests = c.registry.inspect(list(block.envelopes))
    relabelled = replace(block, batch_digest=batch_digest(
        other.domain, block.height, block.time_ms, [r.digest for r in requests]))
    relabelled = replace(relabelled, hash=header_hash(relabelled))
    assert check_other([relabelled]).refused.kind == CERTIFICATE
    assert check(c, blocks).refused is None


@pytest.mark.parametrize("field,value", [("height", "1"), ("height", True),
                                         ("time_ms", 1 << 64), ("batch_digest", None),
                                         ("certificate", [(0, b"x")])])
def test_malformed_fields_are_a_refusal_never_an_exception(field, value):
    c, blocks = chain(1)
    checked = check(c, [replace(blocks[0], **{field: value})])
    assert checked.batches == () and checked.refused.kind == FORM


def test_a_lagging_replica_refuses_a_lying_peer_and_catches_up_from_the_truth():
    """Scenario: replica 3 fetches from replica 0, which alters the second block of each
    answer's certificate; replica 3 applies the block before it only, asks again at once
    for the rest (Replica.answered), and so on; then, the lie dropped, the rest."""
    c, _ = chain(4)
    lying = {"on": True}

    def tamper(server, to, blocks):
        if not lying["on"] or len(blocks) < 2:
            return blocks
        return [blocks[0], replace(blocks[1], certificate=blocks[1].certificate[:1])] + \
            blocks[2:]
    c.tamper_fetched = tamper
    c.cut = set()
    c.tick(3)
    assert c.refused_fetched and {r.kind for _, _, r in c.refused_fetched} == {CERTIFICATE}
    refused = sorted({r.height for _, _, r in c.refused_fetched})
    assert refused[0] == 2 and refused == list(range(2, refused[-1] + 1))
    assert c.ledgers[3].height == refused[-1] - 1
    lying["on"] = False
    c.tick(30)
    assert c.heights() == [4, 4, 4, 4]
    assert c.ledgers[3].hashes == c.ledgers[0].hashes


def test_a_block_whose_validator_set_is_not_known_yet_ends_the_run_without_refusal():
    """A change enacted in a block not run yet may give a later height to another set:
    the run stops before such a block, refuses nothing, and it is fetched again once
    the blocks before it have run."""
    c, blocks = chain(4)
    known = lambda height: (c.config, c.keys.signer(3)) if height <= 2 else None  # noqa: E731
    checked = check_fetched(known, c.registry.inspect, header_hash, 0, bytes(32), blocks)
    assert [b.height for b in checked.batches] == [1, 2] and checked.refused is None


def test_a_block_is_checked_against_the_set_in_force_at_its_height():
    """Blocks certified by genesis's set fail against a set of other keys from their
    height on (by place in that set), and only from there."""
    c, blocks = chain(4)
    secrets = [bytes([9 + i]) * 16 for i in range(4)]
    others, other_keys = replace(c.config, validators=tuple(sha256(x).digest()
                                                            for x in secrets)), \
        KeyedHashKeys(secrets)

    def sets(height):
        return (c.config, c.keys.signer(3)) if height <= 2 else \
            (others, other_keys.signer(3))
    checked = check_fetched(sets, c.registry.inspect, header_hash, 0, bytes(32), blocks)
    assert [b.height for b in checked.batches] == [1, 2]
    assert (checked.refused.height, checked.refused.kind) == (3, CERTIFICATE)


def test_an_answer_shorter_than_asked_is_followed_by_the_next_request_at_once():
    """A peer that answers one block at a time (an answer cut at its size limit, or a
    peer that holds fewer): each answer that brought blocks lets the next request go at
    the next tick, not after fetch_timeout_ticks."""
    c, _ = chain(6)
    c.tamper_fetched = lambda server, to, blocks: blocks[:1]
    c.cut = set()
    assert c.config.fetch_timeout_ticks >= 10
    c.tick(8)
    assert c.ledgers[3].height == 6 and not c.refused_fetched
