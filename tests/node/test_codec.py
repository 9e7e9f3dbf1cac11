"""Canonical msgpack out, strict msgpack in (protocol/codec.py)."""
from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, strategies as st

from protocol import codec

scalars = st.one_of(st.integers(-(1 << 63), (1 << 64) - 1), st.text(max_size=20),
                    st.binary(max_size=40), st.booleans())
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5),
                            st.dictionaries(st.text(max_size=8), inner, max_size=5)),
    max_leaves=30)


@given(values)
def test_decoding_the_canonical_bytes_gives_the_value_back(value):
    assert codec.unpack(codec.pack(value), 1 << 20) == value


@given(st.dictionaries(st.text(max_size=8), scalars, min_size=1, max_size=8), st.randoms())
def test_canonical_bytes_do_not_depend_on_insertion_order(mapping, rnd):
    items = list(mapping.items())
    rnd.shuffle(items)
    assert codec.pack(dict(items)) == codec.pack(mapping)


@given(values)
def test_canonical_bytes_equal_msgpack_of_the_key_sorted_value(value):
    def sort(v):
        if isinstance(v, dict):
            return {k: sort(v[k]) for k in sorted(v, key=lambda k: k.encode())}
        if isinstance(v, list):
            return [sort(x) for x in v]
        return v
    assert codec.pack(value) == msgpack.packb(sort(value), use_bin_type=True)


def test_integers_use_their_shortest_form():
    assert codec.pack(5) == b"\x05"
    assert codec.pack(200) == b"\xcc\xc8"
    assert codec.pack(-1) == b"\xff"
    assert codec.pack(1 << 40) == b"\xcf" + (1 << 40).to_bytes(8, "big")


@pytest.mark.parametrize("value", [1.5, None, {"a": None}, [0.0], object(), {1: 1, "a": 2},
                                   1 << 64, {(1, 2): 3}])
def test_values_without_a_canonical_form_are_refused(value):
    with pytest.raises(codec.CodecError):
        codec.pack(value)


@pytest.mark.parametrize("data", [
    b"",                                   # nothing
    b"\x92\x01",                           # truncated array
    b"\x01\x02",                           # trailing byte
    b"\x82\xa1a\x01\xa1a\x02",             # duplicate key
    b"\xcb" + b"\x00" * 8,                 # float 64
    b"\xca" + b"\x00" * 4,                 # float 32
    b"\xc0",                               # nil
    b"\xd4\x01\x00",                       # ext
    b"\xd6\xff\x00\x00\x00\x00",           # timestamp ext
    b"\xa2\xff\xfe",                       # invalid UTF-8 text
    b"\xc1",                               # never-used byte
    b"\x81\xc3\x01",                       # bool map key
    b"\x81\x90\x01",                       # array map key
    b"\x91" * 40 + b"\x01",                # nested too deep
    b"\xdd\xff\xff\xff\xff",               # array claiming 4 billion items
    b"\xc6\x00\x01\x00\x00" + b"x" * 10,   # bin claiming 64 KiB
])
def test_strict_decoding_refuses_with_codec_error(data):
    with pytest.raises(codec.CodecError):
        codec.unpack(data)


def test_messages_over_the_limit_are_refused_before_decoding():
    data = codec.pack(b"x" * 100)
    assert codec.unpack(data, 200) == b"x" * 100
    with pytest.raises(codec.CodecError):
        codec.unpack(data, 50)


@given(st.binary(max_size=200))
def test_decoding_any_bytes_raises_only_codec_error(data):
    try:
        codec.unpack(data)
    except codec.CodecError:
        pass
