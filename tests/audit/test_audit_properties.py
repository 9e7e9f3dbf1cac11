"""Properties of the audit's checks: the pool of processes answers every envelope as
docs/protocol.md says the door must, and every signature as Ed25519 does; a commit
certificate passes exactly when a quorum of distinct genesis validators signed it and
every one of its signatures is valid.

The envelopes' oracle is written here from docs/protocol.md ("Strict decoding",
"Envelope and body"): a msgpack reader of its own and PyNaCl's signature check, never
node.codec, node.envelope or node.keys. The envelopes are built byte by byte, so that
they carry what a sender could put in them: nil, floats, ext types, duplicate keys,
invalid UTF-8, wide integer forms, deep nesting, trailing bytes, other chains, other
signers and broken signatures.
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, replace

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from nacl.exceptions import BadSignatureError
from nacl.exceptions import ValueError as NaclValueError
from nacl.signing import VerifyKey

from audit_kit import DOMAIN, blocks_of, run_audit
from consensus.digest import commit_bytes
from ledger_kit import CHAIN, VALIDATOR_NAMES, keypair
from node.audit.engine import _Scratch
from node.audit.verify import Verifier, check_items

SENDER = keypair("citizen")
OTHER = keypair("shop")

# ----------------------------------------------------------------------- the oracle
TX_TAG = b"stadsmunt/tx/v1"
MAX_ENVELOPE = 16_384
MAX_DEPTH = 32                      # containers nested deeper than this are refused
BODY_KEYS = {"v", "chain", "kind", "signer", "nonce", "args"}


class Malformed(Exception):
    pass


def strict(data: bytes):
    """Exactly one msgpack value, decoded as "Strict decoding" allows, or Malformed."""
    value, end = _value(data, 0, 0)
    if end != len(data):
        raise Malformed("trailing bytes")
    return value


def _take(data: bytes, pos: int, n: int) -> tuple[bytes, int]:
    if pos + n > len(data):
        raise Malformed("truncated")
    return data[pos:pos + n], pos + n


def _number(data: bytes, pos: int, size: int, signed: bool) -> tuple[int, int]:
    raw, pos = _take(data, pos, size)
    return int.from_bytes(raw, "big", signed=signed), pos


def _value(data: bytes, pos: int, depth: int):
    head, pos = _take(data, pos, 1)
    t = head[0]
    if t <= 0x7f:
        return t, pos
    if t >= 0xe0:
        return t - 0x100, pos
    if 0xa0 <= t <= 0xbf:
        return _text(data, pos, t & 0x1f)
    if 0x90 <= t <= 0x9f:
        return _array(data, pos, t & 0x0f, depth)
    if 0x80 <= t <= 0x8f:
        return _map(data, pos, t & 0x0f, depth)
    if t in (0xc2, 0xc3):
        return t == 0xc3, pos
    sizes = {0: 1, 1: 2, 2: 4, 3: 8}
    if 0xcc <= t <= 0xcf:
        return _number(data, pos, sizes[t - 0xcc], False)
    if 0xd0 <= t <= 0xd3:
        return _number(data, pos, sizes[t - 0xd0], True)
    if 0xc4 <= t <= 0xc6:
        n, pos = _number(data, pos, sizes[t - 0xc4], False)
        return _take(data, pos, n)
    if 0xd9 <= t <= 0xdb:
        n, pos = _number(data, pos, sizes[t - 0xd9], False)
        return _text(data, pos, n)
    if t in (0xdc, 0xdd):
        n, pos = _number(data, pos, sizes[t - 0xdb], False)
        return _array(data, pos, n, depth)
    if t in (0xde, 0xdf):
        n, pos = _number(data, pos, sizes[t - 0xdd], False)
        return _map(data, pos, n, depth)
    raise Malformed(f"{t:#x}: nil, a float, an ext type or unused")


def _text(data: bytes, pos: int, n: int):
    raw, pos = _take(data, pos, n)
    try:
        return raw.decode("utf-8"), pos
    except UnicodeDecodeError:
        raise Malformed("invalid UTF-8") from None


def _array(data: bytes, pos: int, n: int, depth: int):
    if depth >= MAX_DEPTH:
        raise Malformed("nested too deeply")
    items = []
    for _ in range(n):
        item, pos = _value(data, pos, depth + 1)
        items.append(item)
    return items, pos


def _map(data: bytes, pos: int, n: int, depth: int):
    if depth >= MAX_DEPTH:
        raise Malformed("nested too deeply")
    out = {}
    for _ in range(n):
        k, pos = _value(data, pos, depth + 1)
        if type(k) not in (str, bytes, int):
            raise Malformed("a map key that is not text, binary or an integer")
        if k in out:
            raise Malformed("a duplicate key")
        out[k], pos = _value(data, pos, depth + 1)
    return out, pos


def door(envelope: bytes, chain: str):
    """docs/protocol.md's door: the refusal's code, or (tx id, signer, kind, args)."""
    try:
        if len(envelope) > MAX_ENVELOPE:
            raise Malformed("too large")
        outer = strict(envelope)
        if (type(outer) is not list or len(outer) != 2 or type(outer[0]) is not bytes
                or type(outer[1]) is not bytes or len(outer[1]) != 64):
            raise Malformed("not [bin body, bin(64) signature]")
        body_bytes, signature = outer
        body = strict(body_bytes)
        if type(body) is not dict or set(body) != BODY_KEYS:
            raise Malformed("not the six keys")
        if (type(body["v"]) is not int or body["v"] != 1
                or type(body["chain"]) is not str or type(body["kind"]) is not str
                or type(body["signer"]) is not bytes or len(body["signer"]) != 32
                or type(body["nonce"]) is not int or not 0 <= body["nonce"] < 2**64
                or type(body["args"]) is not dict
                or any(type(k) is not str for k in body["args"])):
            raise Malformed("a field out of the format")
    except Malformed:
        return "malformed"
    if body["chain"] != chain:
        return "wrong_chain"
    try:
        VerifyKey(body["signer"]).verify(TX_TAG + body_bytes, signature)
    except (BadSignatureError, NaclValueError):
        return "bad_signature"
    return (hashlib.sha256(body_bytes).hexdigest(), body["signer"], body["kind"], body["args"])


def agrees(answer, expected) -> bool:
    """A refusal is (code, reason): the reason is free text, the code must be the one."""
    if isinstance(expected, str):
        return type(answer) is tuple and len(answer) == 2 and answer[0] == expected
    return answer == expected


def ed25519(key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        VerifyKey(key).verify(message, signature)
    except (BadSignatureError, NaclValueError):
        return False
    return True


# ----------------------------------------------------------------------- building envelopes
@dataclass(frozen=True)
class Raw:
    """Bytes written into a message as they are."""
    data: bytes


@dataclass(frozen=True)
class Pairs:
    """A map written from a list of pairs: it may hold a key twice."""
    items: tuple


@dataclass(frozen=True)
class Wide:
    """An integer written as uint 64 however small it is (allowed, not canonical)."""
    value: int


def enc(v) -> bytes:
    """msgpack of a value, written out here; Raw, Pairs and Wide as they say. Arrays
    and maps of up to 15 items, which is all this file writes."""
    if isinstance(v, Raw):
        return v.data
    if isinstance(v, Wide):
        return b"\xcf" + v.value.to_bytes(8, "big")
    if v is True or v is False:
        return b"\xc3" if v else b"\xc2"
    if isinstance(v, int):
        if 0 <= v <= 0x7f:
            return bytes([v])
        if -32 <= v < 0:
            return bytes([v + 0x100])
        if v >= 0:
            for tag, size in ((0xcc, 1), (0xcd, 2), (0xce, 4), (0xcf, 8)):
                if v < 1 << (8 * size):
                    return bytes([tag]) + v.to_bytes(size, "big")
        for tag, size in ((0xd0, 1), (0xd1, 2), (0xd2, 4), (0xd3, 8)):
            if v >= -(1 << (8 * size - 1)):
                return bytes([tag]) + v.to_bytes(size, "big", signed=True)
    if isinstance(v, str):
        raw = v.encode()
        return (bytes([0xa0 | len(raw)]) if len(raw) < 32 else b"\xda"
                + struct.pack(">H", len(raw))) + raw
    if isinstance(v, bytes):
        return (b"\xc4" + bytes([len(v)]) if len(v) < 256 else b"\xc5"
                + struct.pack(">H", len(v))) + v
    if isinstance(v, (list, tuple)):
        assert len(v) < 16
        return bytes([0x90 | len(v)]) + b"".join(enc(x) for x in v)
    if isinstance(v, (dict, Pairs)):
        items = list(v.items()) if isinstance(v, dict) else list(v.items)
        assert len(items) < 16
        return bytes([0x80 | len(items)]) + b"".join(enc(k) + enc(x) for k, x in items)
    raise TypeError(v)


def nested(depth: int):
    value = 1
    for _ in range(depth):
        value = [value]
    return value


ODD_VALUES = {                       # values a sender could put in args
    "nil": Raw(b"\xc0"), "float": Raw(b"\xcb" + struct.pack(">d", 1.5)),
    "ext": Raw(b"\xd4\x01\x00"), "timestamp": Raw(b"\xd6\xff\x00\x00\x00\x01"),
    "unused byte": Raw(b"\xc1"), "invalid utf-8": Raw(b"\xa2\xff\xfe"),
    "surrogate": Raw(b"\xa3\xed\xa0\x80"), "bool key": Raw(b"\x81\xc3\x01"),
    "list key": Raw(b"\x81\x90\x01"), "duplicate key": Pairs((("a", 1), ("a", 2))),
    "int and bytes keys": {1: "x", b"k": 2}, "wide int": Wide(5),
    "nested 31": nested(31), "nested 32": nested(32), "nested 33": nested(33),
}
LEAF = st.one_of(st.integers(-2**63, 2**64 - 1), st.text(max_size=6), st.binary(max_size=6),
                 st.booleans())
ARGS = st.dictionaries(st.text(max_size=4), st.one_of(LEAF, st.lists(LEAF, max_size=3)),
                       max_size=3)
# What an envelope may get wrong: (what, how), another chain and bad signatures more
# often (together, they tell the order of the checks). Some are allowed, so no fault at
# all: a wide integer, keys out of order, a bin 32 body, an array 16.
FAULTS = (
    [("v", v) for v in (2, 0, True, "1", Wide(1))]
    + [("chain", c) for c in ("heerlen", "heerlen", "heerlen", "", b"heerlen-test")]
    + [("kind", k) for k in (b"coin.spend", 7, "no.such.kind")]
    + [("signer", k) for k in (OTHER.public, OTHER.public, SENDER.public[:31], "key")]
    + [("nonce", n) for n in (-1, 2**64 - 1, True, "7", Wide(7))]
    + [("odd arg", name) for name in sorted(ODD_VALUES)]
    + [("args", a) for a in ({1: 2}, {b"to": 1}, [1, 2], "args",
                             Pairs((("to", 1), ("to", 1))), {"memo": "x" * 17_000})]
    + [("body", b) for b in ("missing key", "extra key", "duplicate key", "not a map",
                             "keys reversed")]
    + [("signature", g) for g in ("other key", "no tag", "flipped")] * 2
    + [("form", f) for f in ("bin 32 body", "array 16", "str body", "short signature",
                             "three items", "trailing byte", "not bytes")])


@st.composite
def envelopes(draw) -> bytes:
    """An envelope with none, one or two of FAULTS (two: the order of the checks counts)."""
    faults = draw(st.lists(st.sampled_from(FAULTS), max_size=2, unique_by=repr),
                  label="faults")
    hows = {how for what, how in faults if isinstance(how, str)}
    body = {"v": 1, "chain": CHAIN, "kind": "coin.spend", "signer": SENDER.public,
            "nonce": draw(st.integers(0, 2**64 - 1), label="nonce"),
            "args": draw(ARGS, label="args")}
    for what, how in faults:
        if what in body:
            body[what] = how
        if what == "odd arg" and type(body["args"]) is dict:
            body["args"] = dict(body["args"], odd=ODD_VALUES[how])
    if "missing key" in hows:
        body.pop(draw(st.sampled_from(sorted(BODY_KEYS)), label="missing"))
    if "extra key" in hows:
        body["memo"] = "x"
    items = sorted(body.items())
    if "keys reversed" in hows:
        items.reverse()                               # allowed: the order is not checked
    if "duplicate key" in hows:
        items.append(("nonce", 1))
    body_bytes = enc([1, 2] if "not a map" in hows else Pairs(tuple(items)))
    message = body_bytes if "no tag" in hows else TX_TAG + body_bytes
    signature = (OTHER if "other key" in hows else SENDER).sign(message)
    if "flipped" in hows:
        signature = bytes([signature[0] ^ 0x20]) + signature[1:]
    parts = [body_bytes, signature]
    if "bin 32 body" in hows:
        parts[0] = Raw(b"\xc6" + struct.pack(">I", len(body_bytes)) + body_bytes)
    if "str body" in hows:
        parts[0] = Raw(b"\xdb" + struct.pack(">I", len(body_bytes)) + body_bytes)
    if "short signature" in hows:
        parts[1] = signature[:63]
    if "three items" in hows:
        parts.append(b"")
    if "not bytes" in hows:
        parts[0] = body
    envelope = enc(parts)
    if "array 16" in hows:
        envelope = b"\xdc" + len(parts).to_bytes(2, "big") + envelope[1:]
    if "trailing byte" in hows:
        envelope += b"\x00"
    return envelope


# ----------------------------------------------------------------------- the pool
@settings(max_examples=600, deadline=None)
@given(envelopes())
def test_the_pool_answers_each_envelope_as_the_protocol_says(envelope):
    expected = door(envelope, CHAIN)
    answer = check_items(CHAIN, [envelope])[0]
    assert agrees(answer, expected), (answer, expected)


@settings(max_examples=300, deadline=None)
@given(envelopes(), st.lists(st.tuples(st.integers(0, 2**14), st.integers(1, 255)),
                             min_size=1, max_size=3), st.binary(max_size=4))
def test_a_damaged_envelope_is_answered_as_the_protocol_says(envelope, flips, tail):
    damaged = bytearray(envelope)
    for position, xor in flips:
        damaged[position % len(damaged)] ^= xor
    damaged = bytes(damaged) + tail
    assert agrees(check_items(CHAIN, [damaged])[0], door(damaged, CHAIN))


def test_the_oracle_opens_a_well_formed_envelope_and_refuses_each_fault():
    """The oracle itself, on envelopes whose answer is known by construction."""
    args = {"amount": 5, "to": OTHER.public}
    body = enc({"args": args, "chain": CHAIN, "kind": "coin.spend", "nonce": 7,
                "signer": SENDER.public, "v": 1})
    good = enc([body, SENDER.sign(TX_TAG + body)])
    assert door(good, CHAIN) == (hashlib.sha256(body).hexdigest(), SENDER.public,
                                 "coin.spend", args)
    assert door(good, "elsewhere") == "wrong_chain"
    assert door(enc([body, OTHER.sign(TX_TAG + body)]), CHAIN) == "bad_signature"
    assert door(good + b"\x00", CHAIN) == "malformed"
    for odd in ("nil", "float", "ext", "duplicate key", "invalid utf-8", "nested 33"):
        bad = enc({"args": {"x": ODD_VALUES[odd]}, "chain": CHAIN, "kind": "k", "nonce": 1,
                   "signer": SENDER.public, "v": 1})
        assert door(enc([bad, SENDER.sign(TX_TAG + bad)]), CHAIN) == "malformed", odd
    deep = enc({"args": {"x": nested(30)}, "chain": CHAIN, "kind": "k", "nonce": 1,
                "signer": SENDER.public, "v": 1})
    assert door(enc([deep, SENDER.sign(TX_TAG + deep)]), CHAIN)[2] == "k"


@pytest.fixture(scope="module")
def pool():
    with Verifier(2) as verifier:
        yield verifier


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(envelopes(), min_size=1, max_size=12))
def test_the_process_pool_answers_a_chunk_as_the_protocol_says(pool, chunk):
    answers = pool.submit(CHAIN, chunk).result()
    assert len(answers) == len(chunk)
    for envelope, answer in zip(chunk, answers):
        assert agrees(answer, door(envelope, CHAIN)), (answer, door(envelope, CHAIN))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40), st.sampled_from(["valid", "other key", "flipped", "short key",
                                                "short signature"]))
def test_the_pool_answers_each_signature_as_ed25519(message, case):
    signer = keypair("municipality")
    public = OTHER.public if case == "other key" else signer.public
    signature = signer.sign(message)
    if case == "flipped":
        signature = bytes([signature[0] ^ 1]) + signature[1:]
    if case == "short key":
        public = public[:31]
    if case == "short signature":
        signature = signature[:63]
    expected = ed25519(public, message, signature)
    assert expected == (case == "valid")
    assert check_items(CHAIN, [(public, message, signature)]) == [expected]
    with Verifier(1) as alone:
        assert alone.submit(CHAIN, [(public, message, signature)]).result() == [expected]


# ----------------------------------------------------------------------- certificates
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
