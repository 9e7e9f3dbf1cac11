"""Frames on an established validator link, and the bounded queue that feeds them.

No IO here: these are pure functions and small objects, so that the rules below can be
checked by property tests without sockets. docs/transport.md gives the bytes.

The rules:
- A frame on the wire is `u32 length | ciphertext`, big-endian; `length` counts the
  ciphertext with its 16-byte tag and is at least 16 and at most the configured limit.
- The ciphertext is ChaCha20-Poly1305 (IETF) of the plaintext under the key of that
  direction, with the 4-byte length header as associated data and a 12-byte nonce of
  four zero bytes and the u64 big-endian count of frames sent before it in that
  direction. A replayed, reordered, dropped, cut or altered frame therefore fails to open.
- The plaintext is zero or more messages, each `u32 length | bytes`; nothing after the
  last one. A frame without messages is a heartbeat. Packing many small messages into
  one frame means one AEAD call and one write for all of them.
"""
from __future__ import annotations

import struct
from collections import deque
from typing import Iterable

from nacl.bindings import (crypto_aead_chacha20poly1305_ietf_decrypt,
                           crypto_aead_chacha20poly1305_ietf_encrypt)
from nacl.exceptions import CryptoError

HEADER = struct.Struct(">I")
HEADER_BYTES = HEADER.size
TAG_BYTES = 16
KEY_BYTES = 32
# what each message adds to a plaintext: its length prefix
MESSAGE_OVERHEAD = HEADER_BYTES
_NONCE_PREFIX = b"\x00\x00\x00\x00"
_U64 = struct.Struct(">Q")
_MAX_COUNTER = 2 ** 64 - 1


class FrameError(Exception):
    """The peer sent something that is not a valid frame: the link must be dropped."""


def frame_length(header: bytes, max_frame_bytes: int) -> int:
    """The ciphertext length announced by a 4-byte header, refused when out of bounds."""
    assert len(header) == HEADER_BYTES
    (length,) = HEADER.unpack(header)
    if length < TAG_BYTES:
        raise FrameError(f"frame of {length} bytes is shorter than its tag")
    if length > max_frame_bytes:
        raise FrameError(f"frame of {length} bytes is over the limit of {max_frame_bytes}")
    return length


def _nonce(counter: int) -> bytes:
    return _NONCE_PREFIX + _U64.pack(counter)


class Sealer:
    """Encrypts the frames of one direction; the counter makes every nonce unique."""

    __slots__ = ("_key", "_counter")

    def __init__(self, key: bytes):
        assert len(key) == KEY_BYTES
        self._key = key
        self._counter = 0

    def seal(self, plaintext: bytes) -> bytes:
        """The whole frame, header included, ready to write."""
        # a counter that wrapped would reuse a nonce, which breaks the cipher
        assert self._counter < _MAX_COUNTER, "link key exhausted"
        header = HEADER.pack(len(plaintext) + TAG_BYTES)
        sealed = crypto_aead_chacha20poly1305_ietf_encrypt(
            plaintext, header, _nonce(self._counter), self._key)
        self._counter += 1
        return header + sealed


class Opener:
    """Decrypts the frames of one direction, in order; any failure is final."""

    __slots__ = ("_key", "_counter")

    def __init__(self, key: bytes):
        assert len(key) == KEY_BYTES
        self._key = key
        self._counter = 0

    def open(self, header: bytes, ciphertext: bytes) -> bytes:
        if self._counter >= _MAX_COUNTER:
            raise FrameError("link key exhausted")
        try:
            plaintext = crypto_aead_chacha20poly1305_ietf_decrypt(
                ciphertext, header, _nonce(self._counter), self._key)
        except CryptoError:
            raise FrameError("frame does not authenticate") from None
        self._counter += 1
        return plaintext


def pack_messages(messages: Iterable[bytes]) -> bytes:
    parts = []
    for message in messages:
        parts.append(HEADER.pack(len(message)))
        parts.append(message)
    return b"".join(parts)


def unpack_messages(plaintext: bytes) -> list[bytes]:
    """The messages of an opened frame; a prefix that runs past the end is refused."""
    messages = []
    position = 0
    end = len(plaintext)
    while position < end:
        if end - position < HEADER_BYTES:
            raise FrameError("message length cut off")
        (length,) = HEADER.unpack_from(plaintext, position)
        position += HEADER_BYTES
        if length > end - position:
            raise FrameError("message runs past the end of its frame")
        messages.append(plaintext[position:position + length])
        position += length
    return messages


class SendQueue:
    """Messages waiting for one peer, bounded by count and by bytes.

    When a new message does not fit, the oldest go: consensus resends what matters
    (retransmission, view change), while a queue that grew without bound for a dead or
    slow peer would take the whole node down. Bytes are counted with each message's
    length prefix, so `take(budget)` fills a frame exactly.
    """

    __slots__ = ("max_bytes", "max_messages", "_items", "_bytes", "dropped")

    def __init__(self, max_bytes: int, max_messages: int):
        assert max_bytes > MESSAGE_OVERHEAD and max_messages >= 1
        self.max_bytes = max_bytes
        self.max_messages = max_messages
        self._items: deque[bytes] = deque()
        self._bytes = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self):
        return iter(self._items)

    @property
    def bytes(self) -> int:
        return self._bytes

    def push(self, message: bytes) -> None:
        size = len(message) + MESSAGE_OVERHEAD
        if size > self.max_bytes:
            raise ValueError(f"message of {len(message)} bytes can never fit the send queue")
        items = self._items
        while items and (self._bytes + size > self.max_bytes
                         or len(items) >= self.max_messages):
            self._bytes -= len(items.popleft()) + MESSAGE_OVERHEAD
            self.dropped += 1
        items.append(message)
        self._bytes += size
        assert self._bytes <= self.max_bytes and len(items) <= self.max_messages

    def take(self, budget_bytes: int) -> list[bytes]:
        """The oldest messages whose packed size fits `budget_bytes`, in order."""
        taken = []
        items = self._items
        used = 0
        while items:
            size = len(items[0]) + MESSAGE_OVERHEAD
            if used + size > budget_bytes:
                break
            taken.append(items.popleft())
            used += size
        self._bytes -= used
        assert self._bytes >= 0
        return taken
