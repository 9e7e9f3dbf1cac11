"""Wire decoding is strict and total: every message round-trips, and no input - random,
truncated, mutated or oversized - raises anything but WireError."""
from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings, strategies as st

from consensus import wire
from consensus.messages import (BatchPayloads, Checkpoint, Commit, FetchBatch, Forward,
                                NewView, PreparedProof, PrePrepare, Prepare, Reproposal,
                                StableProof, Status, ViewChange, MESSAGE_TYPES)
from consensus.wire import WireError

u64 = st.integers(0, 2 ** 64 - 1)
small = st.integers(0, 1000)
hashes = st.binary(min_size=32, max_size=32)
signatures = st.binary(min_size=1, max_size=64)
payloads = st.lists(st.binary(min_size=1, max_size=40), max_size=4).map(tuple)
certificates = st.lists(st.tuples(small, signatures), max_size=4).map(tuple)
proofs = st.builds(PreparedProof, u64, u64, u64, hashes, signatures, certificates)
view_changes = st.builds(ViewChange, small, u64, u64, hashes, hashes, certificates,
                         st.lists(proofs, max_size=3).map(tuple), signatures)
preprepares = st.builds(PrePrepare, u64, u64, u64, hashes, payloads, signatures)
reproposals = st.builds(Reproposal, u64, u64, u64, hashes, signatures)
messages = st.one_of(
    preprepares,
    st.builds(Prepare, u64, u64, hashes, signatures),
    st.builds(Commit, u64, u64, hashes, signatures),
    st.builds(Checkpoint, u64, hashes, hashes, signatures),
    st.builds(Forward, payloads),
    view_changes,
    st.builds(NewView, u64, st.lists(view_changes, max_size=2).map(tuple),
              st.lists(reproposals, max_size=2).map(tuple)),
    st.builds(Status, u64, st.booleans(), u64, u64),
    st.builds(StableProof, u64, hashes, hashes, certificates),
    st.builds(FetchBatch, u64, hashes),
    st.builds(BatchPayloads, u64, hashes, payloads),
)
LIMIT = 1 << 20


def decode_or_wire_error(data: bytes):
    try:
        return wire.decode(data, LIMIT)
    except WireError:
        return None


@given(messages)
def test_every_message_survives_encoding_and_decoding(message):
    assert wire.decode(wire.encode(message), LIMIT) == message


@given(st.binary(max_size=300))
@settings(max_examples=500)
def test_random_bytes_never_raise_anything_but_wire_error(data):
    decode_or_wire_error(data)


@given(messages, st.data())
def test_truncated_or_mutated_messages_never_raise_anything_but_wire_error(message, data):
    raw = bytearray(wire.encode(message))
    cut = data.draw(st.integers(0, len(raw) - 1))
    assert decode_or_wire_error(bytes(raw[:cut])) is None
    position = data.draw(st.integers(0, len(raw) - 1))
    raw[position] = data.draw(st.integers(0, 255))
    decoded = decode_or_wire_error(bytes(raw))
    assert decoded is None or isinstance(decoded, MESSAGE_TYPES)


@given(st.recursive(st.none() | st.booleans() | st.integers(-2 ** 63, 2 ** 64 - 1) | st.binary(max_size=40)
                    | st.text(max_size=5) | st.floats(allow_nan=False),
                    lambda inner: st.lists(inner, max_size=6), max_leaves=30))
def test_well_formed_msgpack_of_the_wrong_shape_is_a_wire_error(value):
    data = msgpack.packb(value, use_bin_type=True)
    decoded = decode_or_wire_error(data)
    assert decoded is None or wire.decode(wire.encode(decoded), LIMIT) == decoded


def test_wrong_field_types_and_lengths_are_refused():
    good = wire.encode(Prepare(1, 2, bytes(32), b"s"))
    for body in ([2, 1, 2, bytes(31), b"s"], [2, -1, 2, bytes(32), b"s"],
                 [2, 1, 2, bytes(32)], [2, 1, 2, bytes(32), b"s", 0], [2, True, 2, bytes(32), b"s"],
                 [8, 1, 1, 2, 3], [99], [], {"a": 1}, [2, 1.0, 2, bytes(32), b"s"],
                 [10, 1, bytes(31)], [10, 1, bytes(32), 0], [11, 1, bytes(32), [b""]],
                 [11, 1, bytes(32), [bytes(64 * 1024 + 1)]], [11, 1, bytes(32)],
                 [7, 1, [], [[1, 1, 0, bytes(32), [], b"s"]]],
                 [6, 0, 1, 0, bytes(32), [], [[0, 1, 0, bytes(32), [b"p"], b"s", []]], b"s"]):
        with pytest.raises(WireError):
            wire.decode(msgpack.packb(body, use_bin_type=True), LIMIT)
    with pytest.raises(WireError):
        wire.decode(good + b"\x00", LIMIT)
    with pytest.raises(WireError):
        wire.decode(good, len(good) - 1)
