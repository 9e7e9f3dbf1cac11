"""The door's fast path reads envelopes and bodies without the strict decoder's hooks; it
must answer exactly what the strict decoder (protocol/codec.py) answers, for any bytes."""
from __future__ import annotations

import msgpack
from hypothesis import given, settings, strategies as st

from protocol import codec
from node.envelope import decode_body, split_envelope

LEAVES = st.one_of(st.text(max_size=8), st.binary(max_size=8), st.booleans(), st.none(),
                   st.integers(min_value=-2**64, max_value=2**64 - 1),
                   st.floats(allow_nan=False, width=32))
KEYS = st.one_of(st.text(max_size=4), st.binary(max_size=4), st.integers(-3, 3),
                 st.booleans())
VALUES = st.recursive(LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)), max_leaves=12)


def _strict(data: bytes):
    try:
        return "ok", codec.unpack(data, 16 * 1024)
    except codec.CodecError:
        return "refused", None


def _fast(data: bytes):
    try:
        return "ok", decode_body(data)
    except codec.CodecError:
        return "refused", None


def _encodings(value) -> list[bytes]:
    """The usual bytes of a value, plus forms with a duplicate key, a long integer form
    and a map of the same content in another key order."""
    try:
        plain = msgpack.packb(value, use_bin_type=True)
    except (OverflowError, ValueError, TypeError):
        return []
    out = [plain]
    if type(value) is dict and value:
        key, item = next(iter(value.items()))
        rest = msgpack.packb(item, use_bin_type=True)
        head = msgpack.packb({key: item}, use_bin_type=True)[1:]    # key and value
        out.append(bytes([0x80 | min(15, len(value) + 1)]) + head + plain[1:]
                   if len(value) < 15 else plain)                  # the key twice
        out.append(plain.replace(rest, b"\xd3" + (0).to_bytes(8, "big"), 1)
                   if rest == b"\x00" else plain)                  # 0 as int 64
    return out


def _body(**fields) -> dict:
    return {"v": 1, "chain": "heerlen", "kind": "coin.spend", "signer": b"s" * 32,
            "nonce": 7, "args": {}, **fields}


@settings(max_examples=600)
@given(VALUES, st.sampled_from(["args", "v", "chain", "signer", "nonce"]))
def test_the_fast_body_decoder_answers_as_the_strict_one(value, field):
    bodies = [value, _body(args={"x": value}), _body(**{field: value})]
    for data in [e for body in bodies for e in _encodings(body)]:
        assert _fast(data) == _strict(data)


def test_the_usual_body_takes_the_fast_path_and_a_duplicate_key_does_not():
    plain = msgpack.packb(_body(args={"to": b"t" * 32, "amount": 5}), use_bin_type=True)
    assert _fast(plain) == _strict(plain) == ("ok", _body(args={"to": b"t" * 32,
                                                                  "amount": 5}))
    twice = _encodings(_body())[1]
    assert _fast(twice) == _strict(twice) == ("refused", None)


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_the_fast_body_decoder_answers_as_the_strict_one_for_any_bytes(data):
    assert _fast(data) == _strict(data)


@settings(max_examples=300)
@given(st.binary(min_size=0, max_size=300), st.binary(min_size=0, max_size=70),
       st.sampled_from(["usual", "bin16", "bin32", "trailing", "short signature"]))
def test_splitting_an_envelope_reads_what_the_strict_decoder_reads(body, signature, form):
    if form == "usual":
        data = msgpack.packb([body, signature], use_bin_type=True)
    elif form == "bin16":
        data = b"\x92\xc5" + len(body).to_bytes(2, "big") + body + \
            msgpack.packb(signature, use_bin_type=True)
    elif form == "bin32":
        data = b"\x92\xc6" + len(body).to_bytes(4, "big") + body + \
            msgpack.packb(signature, use_bin_type=True)
    elif form == "trailing":
        data = msgpack.packb([body, signature], use_bin_type=True) + b"\x00"
    else:
        data = msgpack.packb([body, signature[:10]], use_bin_type=True)
    split = split_envelope(data)
    if split is not None:       # whatever it reads, the strict decoder reads the same
        status, outer = _strict(data)
        assert status == "ok" and outer == list(split) and len(split[1]) == 64
    elif form == "usual" and len(signature) == 64 and len(body) < 65536:
        raise AssertionError("the usual encoding must take the fast path")
