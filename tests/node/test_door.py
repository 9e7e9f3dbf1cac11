"""The door: the contract's strict envelope decoding and checks (node/envelope.py).

Only `malformed`, `wrong_chain` and `bad_signature` come out of it for bad input, never an
exception; chain is checked before any signature is spent; an envelope is verified once
per process.
"""
from __future__ import annotations

import hashlib

import msgpack
import pytest
from hypothesis import given, settings, strategies as st

from ledger_kit import CHAIN, keypair
from consensus.api import Request
from node.envelope import (BAD_SIGNATURE, MALFORMED, MAX_ENVELOPE_BYTES, OK, TX_TAG,
                           WRONG_CHAIN, Door, Refused, make_body, seal, sign_tx)

ALICE = keypair("alice")
SHOP = keypair("shop").public
CODES = {OK, MALFORMED, WRONG_CHAIN, BAD_SIGNATURE}


def pairs_body(pairs) -> bytes:
    """A body from explicit (key, value) pairs: lets a test write what canonical
    encoding never would (duplicates, odd order)."""
    return msgpack.Packer(use_bin_type=True).pack_map_pairs(pairs)


def fields(**change):
    base = {"v": 1, "chain": CHAIN, "kind": "coin.spend", "signer": ALICE.public,
            "nonce": 7, "args": {"to": SHOP, "amount": 250}}
    base.update(change)
    return [(k, v) for k, v in base.items() if v is not ...]


def signed(body: bytes, pair=ALICE) -> bytes:
    return msgpack.packb([body, pair.sign(TX_TAG + body)], use_bin_type=True)


def verdict(envelope: bytes):
    return Door(CHAIN).admit([envelope])[0]


def test_a_well_signed_envelope_for_this_chain_is_admitted():
    envelope = sign_tx(ALICE, CHAIN, "coin.spend", {"to": SHOP, "amount": 250}, nonce=1)
    body = msgpack.unpackb(envelope)[0]
    v = verdict(envelope)
    assert v.code == OK
    assert v.tx_id == hashlib.sha256(body).hexdigest()
    assert v.opened.request == Request(hashlib.sha256(body).digest(),
                                       hashlib.sha256(envelope).digest(), envelope,
                                       client=ALICE.public)
    assert (v.opened.tx.kind, v.opened.tx.signer) == ("coin.spend", ALICE.public)
    assert v.opened.tx.args == {"to": SHOP, "amount": 250}


def test_key_order_of_the_body_is_not_enforced():
    body = pairs_body(fields()[::-1])
    assert verdict(signed(body)).code == OK


def test_an_unknown_kind_passes_the_door_for_the_chaincode_to_answer():
    assert verdict(signed(pairs_body(fields(kind="no.such")))).code == OK


@pytest.mark.parametrize("case, body", [
    ("duplicate key", pairs_body(fields() + [("nonce", 8)])),
    ("missing key", pairs_body(fields(nonce=...))),
    ("extra key", pairs_body(fields() + [("memo", "hi")])),
    ("version 2", pairs_body(fields(v=2))),
    ("version true", pairs_body(fields(v=True))),
    ("chain as bytes", pairs_body(fields(chain=CHAIN.encode()))),
    ("kind as int", pairs_body(fields(kind=3))),
    ("short signer", pairs_body(fields(signer=ALICE.public[:31]))),
    ("signer as text", pairs_body(fields(signer=ALICE.public.hex()))),
    ("negative nonce", pairs_body(fields(nonce=-1))),
    ("nonce as text", pairs_body(fields(nonce="7"))),
    ("nonce as bool", pairs_body(fields(nonce=False))),
    ("args as list", pairs_body(fields(args=[1, 2]))),
    ("args with int key", pairs_body(fields(args={1: 2}))),
    ("float in args", pairs_body(fields(args={"to": SHOP, "amount": 2.5}))),
    ("nil in args", pairs_body(fields(args={"to": SHOP, "memo": None}))),
    ("ext in args", pairs_body(fields(args={"x": msgpack.ExtType(1, b"a")}))),
    ("body not a map", msgpack.packb([1, 2])),
    ("trailing byte in body", pairs_body(fields()) + b"\x00"),
    ("truncated body", pairs_body(fields())[:-1]),
])
def test_malformed_bodies_are_refused_even_when_well_signed(case, body):
    assert verdict(signed(body)).code == MALFORMED, case


def good() -> bytes:
    return signed(pairs_body(fields()))


@pytest.mark.parametrize("case, envelope", [
    ("empty", b""),
    ("truncated", good()[:-1]),
    ("trailing byte", good() + b"\x90"),
    ("three items", msgpack.packb([pairs_body(fields()), b"s" * 64, b""])),
    ("one item", msgpack.packb([pairs_body(fields())])),
    ("short signature", msgpack.packb([pairs_body(fields()), b"s" * 63])),
    ("signature as text", msgpack.packb([pairs_body(fields()), "s" * 64])),
    ("body as text", msgpack.packb(["body", b"s" * 64])),
    ("a map", msgpack.packb({"body": pairs_body(fields()), "sig": b"s" * 64})),
    ("not bytes at all", "text"),
])
def test_malformed_envelopes_are_refused(case, envelope):
    assert verdict(envelope).code == MALFORMED, case


def test_an_envelope_over_16_kib_is_malformed_and_one_at_the_limit_is_not():
    def sized(size):
        build = lambda n: signed(pairs_body(fields(args={"to": SHOP, "memo": "m" * n})))
        n = size - len(build(0))
        for _ in range(10):
            envelope = build(n)
            if len(envelope) == size:
                return envelope
            n -= len(envelope) - size
        raise AssertionError("no envelope of that size")
    assert verdict(sized(MAX_ENVELOPE_BYTES)).code == OK
    assert verdict(sized(MAX_ENVELOPE_BYTES + 1)).code == MALFORMED


def test_another_chain_is_refused_before_its_signature_is_checked():
    body = pairs_body(fields(chain="elsewhere"))
    unsigned = msgpack.packb([body, b"\x00" * 64], use_bin_type=True)
    v = verdict(unsigned)   # a bad signature too: the chain answers first
    assert v.code == WRONG_CHAIN
    assert v.tx_id == hashlib.sha256(body).hexdigest()


def test_a_signature_by_another_key_is_bad():
    body = pairs_body(fields())
    v = verdict(signed(body, keypair("mallory")))
    assert v.code == BAD_SIGNATURE
    assert v.tx_id == hashlib.sha256(body).hexdigest()


def test_a_signature_over_the_body_without_the_tag_is_bad():
    body = pairs_body(fields())
    envelope = msgpack.packb([body, ALICE.sign(body)], use_bin_type=True)
    assert verdict(envelope).code == BAD_SIGNATURE


@given(st.binary(max_size=300))
def test_random_bytes_get_only_door_codes(data):
    assert {v.code for v in Door(CHAIN).admit([data])} <= CODES


@settings(max_examples=300)
@given(st.data())
def test_mutated_envelopes_get_only_door_codes_and_ok_only_for_the_signed_body(data):
    body = make_body(CHAIN, "coin.spend", ALICE.public, 9, {"to": SHOP, "amount": 3})
    envelope = bytearray(seal(ALICE, body))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate", "append"]))
        at = data.draw(st.integers(0, max(0, len(envelope) - 1)))
        byte = data.draw(st.integers(0, 255))
        if op == "flip" and envelope:
            envelope[at] ^= byte or 1
        elif op == "insert":
            envelope.insert(at, byte)
        elif op == "delete" and envelope:
            del envelope[at]
        elif op == "truncate":
            del envelope[at:]
        elif op == "append":
            envelope.append(byte)
    v = Door(CHAIN).admit([bytes(envelope)])[0]
    assert v.code in CODES
    if v.code == OK:   # only a re-framing of the same signed bytes can pass
        assert v.tx_id == hashlib.sha256(body).hexdigest()


def test_inspect_after_admit_checks_no_signature_again():
    door = Door(CHAIN)
    envelopes = [sign_tx(ALICE, CHAIN, "coin.spend", {"to": SHOP, "amount": n}, nonce=n)
                 for n in range(1, 6)]
    admitted = door.admit(envelopes)
    assert door.signature_checks == 5
    requests = door.inspect(envelopes)
    assert door.signature_checks == 5
    assert requests == [v.opened.request for v in admitted]


def test_inspect_refuses_a_batch_with_one_bad_envelope():
    door = Door(CHAIN)
    fine = sign_tx(ALICE, CHAIN, "coin.spend", {"to": SHOP, "amount": 1}, nonce=1)
    other = sign_tx(ALICE, "elsewhere", "coin.spend", {"to": SHOP, "amount": 1}, nonce=1)
    assert door.inspect([fine, other]) is None
    assert door.inspect([fine, b"\x00"]) is None
    assert door.inspect([fine]) is not None


def test_take_hands_out_cached_txs_and_opens_only_the_unseen():
    door = Door(CHAIN)
    seen = sign_tx(ALICE, CHAIN, "coin.spend", {"to": SHOP, "amount": 1}, nonce=1)
    unseen = sign_tx(ALICE, CHAIN, "coin.spend", {"to": SHOP, "amount": 2}, nonce=2)
    [request] = door.inspect([seen])
    other_door = Door(CHAIN)
    [unseen_request] = other_door.inspect([unseen])
    txs = door.take([request, unseen_request, request])
    assert [t.args["amount"] for t in txs] == [1, 2, 1]
    assert door.signature_checks == 2       # seen once, unseen once, the copy not again
    assert len(door) == 0                   # taken out: the store answers for them now


def test_take_refuses_a_request_whose_digest_is_not_its_envelope():
    door = Door(CHAIN)
    envelope = sign_tx(ALICE, CHAIN, "coin.spend", {"to": SHOP, "amount": 1}, nonce=1)
    forged = Request(b"k" * 32, b"d" * 32, envelope)
    with pytest.raises(Refused):
        door.take([forged])


def test_the_verified_cache_is_bounded_and_forgets_the_oldest_first():
    door = Door(CHAIN, capacity=3)
    envelopes = [sign_tx(ALICE, CHAIN, "coin.spend", {"to": SHOP, "amount": 1}, nonce=n)
                 for n in range(5)]
    door.admit(envelopes)
    assert len(door) == 3
    door.inspect(envelopes[2:])
    assert door.signature_checks == 5
    door.inspect(envelopes[:1])
    assert door.signature_checks == 6


POOL = [sign_tx(ALICE, CHAIN, "coin.spend", {"to": SHOP, "amount": n}, nonce=n)
        for n in range(1, 7)] + [
    sign_tx(ALICE, "elsewhere", "coin.spend", {"to": SHOP, "amount": 1}, nonce=1),
    signed(pairs_body(fields()), keypair("mallory")), b"\x92"]


@settings(max_examples=60)
@given(st.integers(1, 10),
       st.lists(st.tuples(st.sampled_from(["admit", "inspect", "take"]),
                          st.lists(st.integers(0, len(POOL) - 1), max_size=5)),
                max_size=12))
def test_the_cache_never_changes_a_verdict_and_stays_within_its_bound(capacity, steps):
    door = Door(CHAIN, capacity)
    for op, picks in steps:
        envelopes = [POOL[i] for i in picks]
        fresh = Door(CHAIN).admit(envelopes)
        if op == "admit":
            assert door.admit(envelopes) == fresh
        elif op == "inspect":
            got = door.inspect(envelopes)
            if all(v.code == OK for v in fresh):
                assert got == [v.opened.request for v in fresh]
            else:
                assert got is None
        elif all(v.code == OK for v in fresh):
            assert door.take([v.opened.request for v in fresh]) == [v.opened.tx for v in fresh]
        assert len(door) <= capacity


@given(st.lists(st.integers(0, 5), max_size=20))
def test_with_room_in_the_cache_each_envelope_is_verified_once(picks):
    door = Door(CHAIN, capacity=100)
    for i in picks:
        door.admit([POOL[i]])
        door.inspect([POOL[i]])
    assert door.signature_checks == len(set(picks))
