"""The proof of the validator sets a joiner checks (node/setproof.py, docs/statesync.md
"Which set certified it"): each hop a checkpoint certified by a quorum of the set before
a change, at a checkpoint height that set ordered, naming the next set by its hash."""
from __future__ import annotations

import hashlib
from unittest import mock

import pytest

from consensus.digest import validator_set_hash
from node import setproof
from node.setproof import Hop, ProofError, build, verify
from node.store import Store
from sync_kit import VALIDATORS, build_chain, checkpoint_certificate, key

NEXT = tuple(f"next{i}" for i in range(4))
THIRD = tuple(f"third{i}" for i in range(4))


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """(genesis, folder) of the bench chain's first 4 blocks: no set change."""
    folder = tmp_path_factory.mktemp("chain")
    return build_chain(folder, 0, 20), folder


@pytest.fixture(scope="module")
def genesis(chain):
    return chain[0]


def block_hash(height: int) -> bytes:
    return hashlib.sha256(b"block %d" % height).digest()


def hop(genesis, height: int, first: int, names, signed_by=VALIDATORS, signers=(1, 2, 3),
        members=None, set_hash=None, keys_hashed=None, first_hashed=None) -> Hop:
    """A hop at checkpoint `height` naming the set of `names` from `first`, certified by
    `signers` of the set `signed_by`; the other arguments make it wrong."""
    domain = genesis.domain()
    members = members if members is not None else tuple((n, key(n).public) for n in names)
    if set_hash is None:
        set_hash = validator_set_hash(
            domain, first if first_hashed is None else first_hashed,
            keys_hashed if keys_hashed is not None else tuple(k for _, k in members))
    certificate = checkpoint_certificate(domain, height, block_hash(height), set_hash,
                                         signers, signed_by)
    return Hop(height, block_hash(height), certificate, set_hash, first, members)


def genesis_set(genesis):
    return (1, tuple((v.name, v.key) for v in genesis.validators))


def test_no_hop_leads_to_genesiss_set(genesis):
    assert verify(genesis, []) == [genesis_set(genesis)]
    assert genesis_set(genesis)[1] == tuple((n, key(n).public) for n in VALIDATORS)


def test_hops_lead_through_every_change(genesis):
    first = hop(genesis, 64, 100, NEXT)
    second = hop(genesis, 128, 200, THIRD, signed_by=NEXT, signers=(0, 2, 3))
    assert verify(genesis, [first]) == [genesis_set(genesis), (100, first.members)]
    assert verify(genesis, [first, second]) == [
        genesis_set(genesis), (100, first.members), (200, second.members)]
    # the checkpoint at the first height - 1 of a set that takes over at a checkpoint
    late = hop(genesis, 128, 129, NEXT)
    assert verify(genesis, [late])[-1] == (129, late.members)
    # a set of another size: its own quorum
    bigger = tuple(f"big{i}" for i in range(7))
    grown = hop(genesis, 64, 100, bigger)
    after = hop(genesis, 192, 300, THIRD, signed_by=bigger, signers=(0, 1, 2, 4, 6))
    assert verify(genesis, [grown, after])[-1] == (300, after.members)


@pytest.mark.parametrize("signers", [(1, 2), (3,), (), (1, 1, 2)])
def test_a_certificate_of_less_than_a_quorum_is_refused(genesis, signers):
    with pytest.raises(ProofError, match="quorum"):
        verify(genesis, [hop(genesis, 64, 100, NEXT, signers=signers)])


def test_a_certificate_naming_a_replica_outside_the_set_is_refused(genesis):
    good = hop(genesis, 64, 100, NEXT)
    (i, a), (j, b), (_, c) = good.certificate
    for certificate in (((i, a), (j, b), (7, c)), ((i, a), (j, b), (-1, c))):
        with pytest.raises(ProofError, match="quorum"):
            verify(genesis, [Hop(64, good.block_hash, certificate, good.set_hash, 100,
                                 good.members)])


def test_a_certificate_of_other_keys_is_refused(genesis):
    with pytest.raises(ProofError, match="quorum"):
        verify(genesis, [hop(genesis, 64, 100, NEXT, signed_by=NEXT)])
    first = hop(genesis, 64, 100, NEXT)
    # the second change signed by genesis's set, which no longer orders there
    with pytest.raises(ProofError, match="hop 2"):
        verify(genesis, [first, hop(genesis, 128, 200, THIRD)])


def test_a_certificate_over_other_bytes_is_refused(genesis):
    good = hop(genesis, 64, 100, NEXT)
    other = hop(genesis, 128, 129, NEXT)            # signatures over another height
    for wrong in (Hop(64, good.block_hash, other.certificate, good.set_hash, 100,
                      good.members),
                  Hop(64, block_hash(65), good.certificate, good.set_hash, 100,
                      good.members)):
        with pytest.raises(ProofError, match="quorum"):
            verify(genesis, [wrong])


def test_a_set_hash_that_does_not_cover_the_set_is_refused(genesis):
    named = tuple((n, key(n).public) for n in NEXT)
    cases = [
        hop(genesis, 64, 100, NEXT, keys_hashed=tuple(key(n).public for n in THIRD)),
        hop(genesis, 64, 100, NEXT, first_hashed=101),
        # the members in another order than the set hash's (replica numbering)
        hop(genesis, 64, 100, NEXT, members=named[::-1],
            keys_hashed=tuple(k for _, k in named)),
        hop(genesis, 64, 100, NEXT, members=named[:3],
            keys_hashed=tuple(k for _, k in named)),
    ]
    for wrong in cases:
        with pytest.raises(ProofError, match="set hash"):
            verify(genesis, [wrong])


@pytest.mark.parametrize("height, first", [
    (128, 100),         # at or after the first height of the set it names
    (128, 128),
    (0, 100),           # before the set that certified it took over
])
def test_a_checkpoint_outside_the_sets_heights_is_refused(genesis, height, first):
    with pytest.raises(ProofError, match="not one the set"):
        verify(genesis, [hop(genesis, height, first, NEXT)])


def test_a_checkpoint_before_the_current_set_took_over_is_refused(genesis):
    first = hop(genesis, 64, 100, NEXT)
    earlier = hop(genesis, 64, 200, THIRD, signed_by=NEXT)      # 64 < 100
    with pytest.raises(ProofError, match="hop 2: checkpoint 64 is not one the set"):
        verify(genesis, [first, earlier])


@pytest.mark.parametrize("height", [65, 32, 127])
def test_a_height_that_is_not_a_checkpoint_is_refused(genesis, height):
    with pytest.raises(ProofError, match="not a checkpoint height"):
        verify(genesis, [hop(genesis, height, 200, NEXT)])


def test_a_set_with_a_key_twice_or_a_short_key_is_refused(genesis):
    twice = tuple((n, key(n).public) for n in NEXT[:3]) + (("again", key(NEXT[0]).public),)
    short = tuple((n, key(n).public) for n in NEXT[:3]) + (("short", bytes(31)),)
    for members in (twice, short):
        domain = genesis.domain()
        set_hash = hashlib.sha256(b"whatever").digest() if members is short else \
            validator_set_hash(domain, 100, tuple(k for _, k in members))
        with pytest.raises(ProofError, match="distinct keys"):
            verify(genesis, [hop(genesis, 64, 100, NEXT, members=members,
                                 set_hash=set_hash)])


# ---- the hops on the wire -------------------------------------------------------------

def test_hops_go_through_their_encoding(genesis):
    hops = [hop(genesis, 64, 100, NEXT), hop(genesis, 128, 200, THIRD, signed_by=NEXT)]
    assert setproof.decode(setproof.encode(hops)) == hops
    assert setproof.unpack(setproof.pack(hops)) == hops
    assert verify(genesis, setproof.unpack(setproof.pack(hops)))[-1][0] == 200


def plain_hop(genesis, **changes) -> list:
    fields = hop(genesis, 64, 100, NEXT).plain()
    names = ("height", "block_hash", "certificate", "set_hash", "first", "members")
    for name, value in changes.items():
        fields[names.index(name)] = value
    return fields


@pytest.mark.parametrize("changes", [
    {"height": 0}, {"height": "64"}, {"first": b"100"},
    {"block_hash": bytes(31)}, {"block_hash": "00" * 32}, {"set_hash": bytes(33)},
    {"certificate": [[0, 1 << 63]]},                # not a signature: no bytes(huge)
    {"certificate": [[b"0", b"s"]]}, {"certificate": [[0]]}, {"certificate": {}},
    {"members": []}, {"members": [["a", 1 << 63]]}, {"members": [[b"a", bytes(32)]]},
    {"members": [["a", bytes(32), b""]]}, {"members": "abc"},
])
def test_a_malformed_hop_is_refused(genesis, changes):
    with pytest.raises(ProofError):
        setproof.decode([plain_hop(genesis, **changes)])


def test_a_malformed_proof_is_refused(genesis):
    good = plain_hop(genesis)
    for value in ({}, b"", [good[:5]], [good + [0]], [7], [None]):
        with pytest.raises(ProofError):
            setproof.decode(value)
    with mock.patch.object(setproof, "MAX_HOPS", 1):
        assert len(setproof.decode([good])) == 1
        with pytest.raises(ProofError):
            setproof.decode([good, good])
    with mock.patch.object(setproof, "MAX_SET", 3):
        with pytest.raises(ProofError):
            setproof.decode([good])


# ---- build ----------------------------------------------------------------------------

def test_a_chain_without_a_set_change_needs_no_hop(chain):
    genesis, folder = chain
    with Store(folder) as store:
        assert store.head()[0] == 4
        assert build(genesis, store, 5, []) == []
        assert build(genesis, store, 1_000, []) == []
        # hops kept from a sync name changes this state does not have: not needed here
        assert build(genesis, store, 5, [hop(genesis, 64, 100, NEXT)]) == []
