"""The state root: AdHash over live entries, incremental, order-free, exact bytes."""
from __future__ import annotations

import hashlib
import struct

from hypothesis import given, settings, strategies as st

from chaincode.root import ACC_BYTES, MODULUS, acc_of, apply_writes, element, state_root


def test_element_is_shake256_of_tag_length_key_value_as_512_big_endian_bytes():
    key, value = b"m/" + bytes(32), b"\x83\xa4role"
    data = b"stadsmunt/state/v1" + struct.pack(">I", len(key)) + key + value
    assert element(key, value) == int.from_bytes(hashlib.shake_256(data).digest(512), "big")


def test_root_is_sha256_of_tag_and_accumulator_as_512_bytes():
    acc = 123456789
    expected = hashlib.sha256(b"stadsmunt/state-root/v1" + acc.to_bytes(512, "big")).digest()
    assert state_root(acc) == expected
    assert ACC_BYTES == 512 and MODULUS == 2 ** 4096


def test_key_length_prefix_separates_key_from_value():
    # Without the length the entries (b"ab", b"c") and (b"a", b"bc") would collide.
    assert element(b"ab", b"c") != element(b"a", b"bc")


entries = st.dictionaries(st.binary(min_size=1, max_size=8), st.binary(max_size=8),
                          max_size=12)


@settings(max_examples=60, deadline=None)
@given(entries, entries)
def test_incremental_update_equals_recomputation(before, after):
    acc = acc_of(before.items())
    keys = set(before) | set(after)
    old = {k: before.get(k) for k in keys}
    new = {k: after.get(k) for k in keys}
    assert apply_writes(acc, old, new) == acc_of(after.items())


@settings(max_examples=40, deadline=None)
@given(entries, st.randoms(use_true_random=False))
def test_accumulator_does_not_depend_on_order(data, rnd):
    items = list(data.items())
    shuffled = items[:]
    rnd.shuffle(shuffled)
    assert acc_of(items) == acc_of(shuffled)


def test_unchanged_writes_cost_nothing_and_change_nothing():
    acc = acc_of([(b"k", b"v")])
    assert apply_writes(acc, {b"k": b"v"}, {b"k": b"v"}) == acc


def test_deleting_every_entry_returns_to_zero():
    data = {b"a": b"1", b"b": b"2"}
    acc = acc_of(data.items())
    assert apply_writes(acc, dict(data), {b"a": None, b"b": None}) == 0
