"""The state root: an additive multiset hash (AdHash, Bellare-Micciancio) of all entries.

Every live (key, value) pair contributes one element

    e(key, value) = int(SHAKE-256(b"stadsmunt/state/v1" + u32be(len(key)) + key + value,
                                  512 bytes), big-endian)

and the accumulator is the sum of the elements of all live entries modulo 2^4096. A
write subtracts the old entry's element and adds the new one, so a block costs in
proportion to what it changed, never to the size of the state, and the accumulator is a
function of the set of entries only: the order of writes does not matter.

The modulus is 2^4096 because the best attack on AdHash is Wagner's generalized birthday
algorithm, whose cost shrinks as the modulus's bit length only grows as a square root;
with 4096 bits the attack stays far beyond reach (Bellare-Micciancio recommend moduli of
this order). The 32-byte root is SHA-256(b"stadsmunt/state-root/v1" + acc as 512 bytes).
"""
from __future__ import annotations

import hashlib
import struct

ELEMENT_TAG = b"stadsmunt/state/v1"
ROOT_TAG = b"stadsmunt/state-root/v1"
ACC_BYTES = 512
MODULUS = 1 << (8 * ACC_BYTES)
_MASK = MODULUS - 1
_U32 = struct.Struct(">I")
_shake = hashlib.shake_256


def element(key: bytes, value: bytes) -> int:
    """The group element of one live entry."""
    digest = _shake(ELEMENT_TAG + _U32.pack(len(key)) + key + value).digest(ACC_BYTES)
    return int.from_bytes(digest, "big")


def apply_writes(acc: int, old: dict, new: dict) -> int:
    """The accumulator after replacing, for every key of `new`, old[key] by new[key].

    `old[key]` is the value before (None: absent), `new[key]` the value after (None:
    deleted). Keys whose value did not change cost nothing.
    """
    assert 0 <= acc < MODULUS
    total = acc
    for key, value in new.items():
        before = old[key]
        if before == value:
            continue
        if before is not None:
            total -= element(key, before)
        if value is not None:
            total += element(key, value)
    return total & _MASK


def state_root(acc: int) -> bytes:
    assert 0 <= acc < MODULUS
    return hashlib.sha256(ROOT_TAG + acc.to_bytes(ACC_BYTES, "big")).digest()


def acc_of(entries) -> int:
    """The accumulator of a whole state, from scratch: for genesis and for checks."""
    return add_entries(0, entries)


def add_entries(acc: int, entries) -> int:
    """`acc` with the elements of the (key, value) entries added."""
    total = acc
    for key, value in entries:
        total += element(key, value)
    return total & _MASK
