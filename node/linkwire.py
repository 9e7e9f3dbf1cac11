"""The bytes of the local link between a validator and its gateway processes.

No IO here: pure functions, shared by the node side (node/link.py) and the gateway side
(gateway/link.py), so both read and write the same frames and the rules below are tested
without sockets.

The rules:
- A frame is `u32 length | msgpack`, big-endian; `length` counts the msgpack bytes and is
  1 to MAX_FRAME_BYTES (a submit of a full HTTP body of envelopes fits).
- Each kind has its own size limit (KIND_BYTES; MAX_SMALL_BYTES for the small ones).
- The msgpack is one array `[kind, id, body]`: `kind` a text of KINDS, `id` an unsigned
  32-bit request number (0 on notices) that the answer repeats, `body` per kind:

  | kind      | from    | body                                                     |
  |-----------|---------|----------------------------------------------------------|
  | `hello`   | gateway | [VERSION, worker number, pid]: the first frame, once     |
  | `welcome` | node    | [VERSION, node name]: the answer to hello                |
  | `submit`  | gateway | [bin envelope, ...]: 1 to MAX_SUBMIT, each at most 16 KiB, |
  |           |         | all already opened and signature-checked by the gateway  |
  | `status`  | gateway | []                                                       |
  | `pending` | gateway | bin 32: a transaction id                                 |
  | `answer`  | node    | submit: [[bin tx id (32, or empty), text status, text    |
  |           |         | reason, retry-after seconds], ...] one per envelope;     |
  |           |         | status: a map (at most MAX_STATUS_BYTES); pending: a     |
  |           |         | text: `pending`, the code it was refused with before     |
  |           |         | ordering, or empty (not known there)                     |
  | `notice`  | node    | [height, bin of the executed tx ids (32 bytes each, in   |
  |           |         | block order), ok count, rejected count]: one per block   |
  |           |         | (several for a block of over MAX_NOTICE_IDS)             |

- Both sides read only these shapes. The reader below looks at each msgpack header before
  it reads what follows, so nothing is decoded that the shape does not allow: a frame of
  nested empty arrays costs one header, not a million objects. Anything else is a
  LinkError, and the side that reads it drops the connection.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import msgpack

from protocol.limits import MAX_BATCH, MAX_BATCH_BODY, MAX_ENVELOPE_BYTES

VERSION = 2
HEADER = struct.Struct(">I")
MAX_SUBMIT = MAX_BATCH                            # envelopes in one submit (one HTTP batch)
MAX_FRAME_BYTES = MAX_BATCH_BODY + 64 * 1024      # an HTTP body of envelopes and more
MAX_SMALL_BYTES = 4096                            # every frame but submit, answer, notice
MAX_STATUS_BYTES = 64 * 1024
MAX_TEXT = 256
MAX_RETRY_AFTER_S = 3600
MAX_NOTICE_IDS = 10_000                           # ids in one notice (a larger block: more)
TX_ID_BYTES = 32
KINDS = frozenset(("hello", "welcome", "submit", "status", "pending", "answer", "notice"))
_U8, _U16, _U32, _U64 = (struct.Struct(f) for f in (">B", ">H", ">I", ">Q"))
_I8, _I16, _I32, _I64 = (struct.Struct(f) for f in (">b", ">h", ">i", ">q"))
_pack = msgpack.Packer(use_bin_type=True, autoreset=True).pack
# the most bytes a frame of each kind may take
KIND_BYTES = {"submit": MAX_FRAME_BYTES, "answer": 2 * 1024 * 1024,
              "notice": MAX_NOTICE_IDS * TX_ID_BYTES + 64}


class LinkError(Exception):
    """The other side sent something that is not a frame of this link: drop it."""


@dataclass(frozen=True, slots=True)
class Notice:
    """One executed block as a gateway learns of it."""
    height: int
    tx_ids: tuple[str, ...]     # hex, in block order
    ok: int
    rejected: int


# ---- writing ----------------------------------------------------------------------------

def frame(kind: str, request_id: int, body) -> bytes:
    assert kind in KINDS and 0 <= request_id < 1 << 32
    data = _pack([kind, request_id, body])
    assert len(data) <= MAX_FRAME_BYTES, "a frame over the link's limit"
    return HEADER.pack(len(data)) + data


def notice_frame(height: int, raw_ids: list[bytes], ok: int, rejected: int) -> bytes:
    return frame("notice", 0, [height, b"".join(raw_ids), ok, rejected])


def frame_length(header: bytes) -> int:
    (length,) = HEADER.unpack(header)
    if not 1 <= length <= MAX_FRAME_BYTES:
        raise LinkError(f"a frame of {length} bytes (1 to {MAX_FRAME_BYTES})")
    return length


# ---- reading ----------------------------------------------------------------------------

class Reader:
    """Reads a msgpack value of a known shape, header by header."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def _byte(self) -> int:
        if self.pos >= len(self.data):
            raise LinkError("the frame ends early")
        tag = self.data[self.pos]
        self.pos += 1
        return tag

    def _take(self, count: int) -> bytes:
        end = self.pos + count
        if end > len(self.data):
            raise LinkError("the frame ends early")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def _number(self, form: struct.Struct) -> int:
        return form.unpack(self._take(form.size))[0]

    def array(self, least: int, most: int) -> int:
        tag = self._byte()
        if 0x90 <= tag <= 0x9f:
            count = tag & 0x0f
        elif tag == 0xdc:
            count = self._number(_U16)
        elif tag == 0xdd:
            count = self._number(_U32)
        else:
            raise LinkError(f"expected an array, found 0x{tag:02x}")
        if not least <= count <= most:
            raise LinkError(f"an array of {count} ({least} to {most})")
        return count

    def integer(self, least: int = 0, most: int = (1 << 64) - 1) -> int:
        tag = self._byte()
        if tag <= 0x7f:
            value = tag
        elif tag >= 0xe0:
            value = tag - 0x100
        else:
            form = {0xcc: _U8, 0xcd: _U16, 0xce: _U32, 0xcf: _U64,
                    0xd0: _I8, 0xd1: _I16, 0xd2: _I32, 0xd3: _I64}.get(tag)
            if form is None:
                raise LinkError(f"expected an integer, found 0x{tag:02x}")
            value = self._number(form)
        if not least <= value <= most:
            raise LinkError(f"{value} is out of range")
        return value

    def boolean(self) -> bool:
        tag = self._byte()
        if tag not in (0xc2, 0xc3):
            raise LinkError(f"expected a bool, found 0x{tag:02x}")
        return tag == 0xc3

    def binary(self, most: int) -> bytes:
        tag = self._byte()
        form = {0xc4: _U8, 0xc5: _U16, 0xc6: _U32}.get(tag)
        if form is None:
            raise LinkError(f"expected bin, found 0x{tag:02x}")
        length = self._number(form)
        if length > most:
            raise LinkError(f"bin of {length} bytes (at most {most})")
        return self._take(length)

    def text(self, most: int = MAX_TEXT) -> str:
        tag = self._byte()
        if 0xa0 <= tag <= 0xbf:
            length = tag & 0x1f
        else:
            form = {0xd9: _U8, 0xda: _U16, 0xdb: _U32}.get(tag)
            if form is None:
                raise LinkError(f"expected text, found 0x{tag:02x}")
            length = self._number(form)
        if length > most:
            raise LinkError(f"text of {length} bytes (at most {most})")
        try:
            return self._take(length).decode("utf-8")
        except UnicodeDecodeError:
            raise LinkError("text that is not UTF-8") from None

    def rest(self) -> bytes:
        chunk = self.data[self.pos:]
        self.pos = len(self.data)
        return chunk

    def end(self) -> None:
        if self.pos != len(self.data):
            raise LinkError(f"{len(self.data) - self.pos} bytes after the frame's value")


def open_frame(data: bytes) -> tuple[str, int, Reader]:
    """(kind, request id, a reader at the body) of a frame's msgpack bytes."""
    reader = Reader(data)
    reader.array(3, 3)
    kind = reader.text(16)
    if kind not in KINDS:
        raise LinkError(f"unknown kind {kind!r}")
    request_id = reader.integer(0, (1 << 32) - 1)
    if len(data) > KIND_BYTES.get(kind, MAX_SMALL_BYTES):
        raise LinkError(f"a {kind} frame of {len(data)} bytes")
    return kind, request_id, reader


def read_hello(reader: Reader) -> tuple[int, int]:
    """(worker, pid) of a hello body."""
    reader.array(3, 3)
    if reader.integer() != VERSION:
        raise LinkError("another version of the link")
    worker, pid = reader.integer(0, 1 << 16), reader.integer(1, 1 << 31)
    reader.end()
    return worker, pid


def read_welcome(reader: Reader) -> str:
    reader.array(2, 2)
    if reader.integer() != VERSION:
        raise LinkError("another version of the link")
    name = reader.text()
    reader.end()
    return name


def read_submit(reader: Reader) -> list[bytes]:
    count = reader.array(1, MAX_SUBMIT)
    envelopes = [reader.binary(MAX_ENVELOPE_BYTES) for _ in range(count)]
    reader.end()
    return envelopes


def read_empty(reader: Reader) -> None:
    reader.array(0, 0)
    reader.end()


def read_tx_id(reader: Reader) -> bytes:
    raw = reader.binary(TX_ID_BYTES)
    if len(raw) != TX_ID_BYTES:
        raise LinkError("a transaction id is 32 bytes")
    reader.end()
    return raw


def read_submitted(reader: Reader, count: int) -> list[tuple[str | None, str, str, int]]:
    """The node's answers to a submit of `count` envelopes: (tx id hex, status, reason,
    retry-after seconds).
    Decoded in C within limits (the frame's size, arrays of at most `count`, strings of
    at most 1 KiB, no maps), then every item's shape checked: the gateway reads many of
    these, and header by header it cost 3 us an item."""
    data = reader.rest()
    try:
        value = msgpack.unpackb(data, raw=False, max_str_len=1024, max_bin_len=TX_ID_BYTES,
                                max_array_len=max(count, 4), max_map_len=0, max_ext_len=0)
    except Exception as error:
        raise LinkError(f"answers that do not decode: {type(error).__name__}") from None
    if type(value) is not list or len(value) != count:
        raise LinkError(f"not {count} answers")
    answers = []
    for item in value:
        if type(item) is not list or len(item) != 4:
            raise LinkError("an answer is [tx id, status, reason, retry after]")
        raw, status, reason, retry_after = item
        if type(raw) is not bytes or len(raw) not in (0, TX_ID_BYTES) or \
                type(status) is not str or len(status) > 32 or type(reason) is not str or \
                type(retry_after) is not int or not 0 <= retry_after <= MAX_RETRY_AFTER_S:
            raise LinkError("an answer is [bin 32 or empty, text, text, seconds]")
        answers.append((raw.hex() if raw else None, status, reason, retry_after))
    return answers


def read_status(reader: Reader) -> dict:
    data = reader.rest()
    if len(data) > MAX_STATUS_BYTES:
        raise LinkError(f"a status of {len(data)} bytes")
    try:
        status = msgpack.unpackb(data, raw=False, max_str_len=MAX_TEXT * 4,
                                 max_bin_len=64, max_array_len=1024, max_map_len=64,
                                 max_ext_len=0)
    except Exception as error:
        raise LinkError(f"a status that does not decode: {type(error).__name__}") from None
    if type(status) is not dict:
        raise LinkError("a status is a map")
    return status


def read_pending(reader: Reader) -> str:
    value = reader.text(32)
    reader.end()
    return value


def read_notice(reader: Reader) -> Notice:
    reader.array(4, 4)
    height = reader.integer(1)
    ids = reader.binary(MAX_NOTICE_IDS * TX_ID_BYTES)
    if len(ids) % TX_ID_BYTES:
        raise LinkError("executed ids are 32 bytes each")
    ok, rejected = reader.integer(), reader.integer()
    reader.end()
    count = len(ids) // TX_ID_BYTES
    if ok + rejected != count:
        raise LinkError(f"{ok} ok and {rejected} rejected of {count} transactions")
    hexed = ids.hex()
    return Notice(height, tuple(hexed[i:i + 64] for i in range(0, len(hexed), 64)),
                  ok, rejected)
