"""The export file: a chain's genesis and its certified blocks in one portable file, written
and read as a stream, so memory stays flat however long the log (docs/audit.md, "The
export file", gives the bytes).

    file  = magic | frame ... | end frame
    magic = b"STADSMUNT-EXPORT" | u32 version (1)
    frame = u8 type | u32 length | payload

type 1 genesis (the canonical genesis bytes, once, first), 2 block, 3 checkpoint (after
its block), 4 end: u64 blocks | u64 head height | head hash (the hash of the last block,
the genesis hash when there is none) | SHA-256 of every byte of the file before the end
frame. Nothing may follow the end frame.

The blocks' contents are certified by the validators' signatures and hashes; the end
frame's digest adds what signatures do not cover (framing, the order of frames, results
the auditor recomputes anyway) so that any change to the file, even one byte, fails.
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, replace
from typing import BinaryIO, Iterator

from protocol import codec
from node.genesis import GENESIS_TAG

MAGIC = b"STADSMUNT-EXPORT"
VERSION = 2     # 2: checkpoints carry the hash of the validator set they name
GENESIS, BLOCK, CHECKPOINT, END = 1, 2, 3, 4
MAX_GENESIS_BYTES = 1 << 20
MAX_BLOCK_BYTES = 64 * 1024 * 1024
MAX_CHECKPOINT_BYTES = 1 << 20
END_BYTES = 8 + 8 + 32 + 32

_HEAD = struct.Struct(">BI")
_U32 = struct.Struct(">I")
_END = struct.Struct(">QQ32s32s")
_LIMITS = {GENESIS: MAX_GENESIS_BYTES, BLOCK: MAX_BLOCK_BYTES,
           CHECKPOINT: MAX_CHECKPOINT_BYTES, END: END_BYTES}


class ExportError(Exception):
    """The file is not a whole, well-formed export; `height` is the height the problem is
    reported at: the first block that could not be read whole, or the head when the end
    frame disagrees with the file."""

    def __init__(self, reason: str, height: int = 0):
        super().__init__(reason)
        self.reason = reason
        self.height = height


@dataclass(frozen=True, slots=True)
class SourceBlock:
    """One block as a source hands it to the auditor: the header as the source claims it,
    the envelopes, the commit certificate, the results (encoded, or None when the source
    does not give them as bytes) and the checkpoint kept with it, if any. A gateway gives
    results as JSON (`json_results`), which the auditor compares with its own in JSON form."""
    height: int
    view: int
    time_ms: int
    prev_hash: bytes
    batch_digest: bytes
    results_root: bytes
    state_root: bytes
    hash: bytes
    envelopes: tuple[bytes, ...]
    certificate: tuple[tuple[int, bytes], ...]
    results: tuple[bytes, ...] | None
    # (block hash, certificate, validator set hash), as node/store.py keeps it
    checkpoint: tuple[bytes, tuple[tuple[int, bytes], ...], bytes] | None = None
    json_results: tuple | None = None


def block_payload(block: SourceBlock) -> bytes:
    assert block.results is not None, "an export carries every result"
    return codec.pack([block.height, block.view, block.time_ms, block.prev_hash,
                       block.batch_digest, block.results_root, block.state_root, block.hash,
                       list(block.envelopes), [list(s) for s in block.certificate],
                       list(block.results)])


class ExportWriter:
    """Writes frames to a binary file and keeps the running digest for the end frame."""

    def __init__(self, out: BinaryIO, genesis_bytes: bytes):
        self.out = out
        self.digest = hashlib.sha256()
        self.blocks = 0
        self.head = (0, b"")
        self._write(MAGIC + _U32.pack(VERSION))
        self._frame(GENESIS, genesis_bytes)

    def _write(self, data: bytes) -> None:
        self.digest.update(data)
        self.out.write(data)

    def _frame(self, kind: int, payload: bytes) -> None:
        assert len(payload) <= _LIMITS[kind]
        self._write(_HEAD.pack(kind, len(payload)) + payload)

    def block(self, block: SourceBlock) -> None:
        assert block.height == self.head[0] + 1, "blocks are written in order, from 1"
        self._frame(BLOCK, block_payload(block))
        if block.checkpoint is not None:
            block_hash, certificate, set_hash = block.checkpoint
            self._frame(CHECKPOINT, codec.pack([block.height, block_hash,
                                                [list(s) for s in certificate], set_hash]))
        self.blocks += 1
        self.head = (block.height, block.hash)

    def finish(self, genesis_hash: bytes) -> None:
        """Writes the end frame; `head` becomes (head height, head hash) and `sha256` the
        SHA-256 of the whole file."""
        height, head_hash = self.head
        self.head = (height, head_hash or genesis_hash)
        end = _END.pack(self.blocks, height, self.head[1], self.digest.digest())
        self._write(_HEAD.pack(END, len(end)) + end)
        self.sha256 = self.digest.hexdigest()


class ExportReader:
    """Reads an export as a stream: `genesis_bytes` after opening, then `blocks()`.

    Every problem of form is an ExportError at the height of the block it concerns: a
    frame cut short or malformed at the block it holds (a checkpoint frame at its block,
    the end frame at the head), a file that ends between frames at the last whole block;
    the contents are the auditor's to check."""

    def __init__(self, stream: BinaryIO):
        self.stream = stream
        self.digest = hashlib.sha256()
        self.count = 0                      # block frames read
        self.last: SourceBlock | None = None    # the last block handed out
        magic = stream.read(len(MAGIC) + 4)
        if len(magic) != len(MAGIC) + 4:
            raise ExportError("the file is cut short (in the file header)")
        self.digest.update(magic)
        if magic[:len(MAGIC)] != MAGIC:
            raise ExportError("not a Stadsmunt export file (wrong magic bytes)")
        if _U32.unpack(magic[len(MAGIC):])[0] != VERSION:
            raise ExportError(f"export format version is not {VERSION} (files of version 1 "
                              "come from a Stadsmunt before validator sets could change: "
                              "export them again with this version)")
        kind, payload = self._frame()
        if kind != GENESIS:
            raise ExportError("the first frame is not the genesis")
        self.genesis_bytes = payload
        self.genesis_hash = hashlib.sha256(GENESIS_TAG + payload).digest()

    def _frame(self) -> tuple[int, bytes]:
        head = self.stream.read(_HEAD.size)
        if not head:
            raise ExportError("the file is cut short (it ends where a frame should begin)",
                              self.count)
        # the block this frame is about: a block frame the next one, a checkpoint frame
        # its block, the end frame the head (and the genesis frame height 0)
        height = self.count if head[0] in (GENESIS, CHECKPOINT, END) else self.count + 1
        if len(head) != _HEAD.size:
            raise ExportError("the file is cut short (in a frame header)", height)
        kind, length = _HEAD.unpack(head)
        if kind not in _LIMITS:
            raise ExportError(f"unknown frame type {kind}", height)
        if length > _LIMITS[kind]:
            raise ExportError(f"a frame of type {kind} is larger than allowed", height)
        payload = self.stream.read(length)
        if len(payload) != length:
            raise ExportError("the file is cut short (in a frame)", height)
        if kind != END:
            self.digest.update(head)
            self.digest.update(payload)
        return kind, payload

    def blocks(self) -> Iterator[SourceBlock]:
        """The blocks in file order, each with its checkpoint; checks the end frame."""
        pending: SourceBlock | None = None
        while True:
            kind, payload = self._frame()
            if kind == CHECKPOINT:
                if pending is None or pending.checkpoint is not None:
                    raise ExportError("a checkpoint frame without its block",
                                      max(self.count, 1))
                pending = _with_checkpoint(pending, payload, self.count)
                continue
            if pending is not None:
                self.last = pending
                yield pending
                pending = None
            if kind == BLOCK:
                self.count += 1
                pending = _block(payload, self.count)
            elif kind == END:
                self._end(payload)
                return
            else:
                raise ExportError("a second genesis frame", self.count + 1)

    def _end(self, payload: bytes) -> None:
        if len(payload) != END_BYTES:
            raise ExportError("the end frame has the wrong length", self.count)
        count, height, head_hash, digest = _END.unpack(payload)
        if self.stream.read(1):
            raise ExportError("bytes after the end frame", self.count)
        if digest != self.digest.digest():
            raise ExportError("the file's digest does not match its end frame: the file "
                              "was changed", self.count)
        last_height, last_hash = ((self.last.height, self.last.hash) if self.last
                                  else (0, self.genesis_hash))
        if count != self.count or height != last_height:
            raise ExportError("the end frame's block count does not match the file",
                              self.count)
        if head_hash != last_hash:
            raise ExportError("the end frame's head hash is not the hash of the last block "
                              "(the genesis hash when there is none): the file was changed",
                              self.count)


def _certificate(value) -> tuple[tuple[int, bytes], ...]:
    if type(value) is not list or not all(type(e) is list and len(e) == 2 for e in value):
        raise ValueError("a certificate is a list of [index, signature]")
    return tuple((e[0], e[1]) for e in value)


def _block(payload: bytes, height: int) -> SourceBlock:
    try:
        fields = codec.unpack(payload, MAX_BLOCK_BYTES)
        (number, view, time_ms, prev, digest, r_root, s_root, block_hash, envelopes,
         certificate, results) = fields
        ints = (number, view, time_ms)
        hashes = (prev, digest, r_root, s_root, block_hash)
        if not all(type(i) is int and i >= 0 for i in ints):
            raise ValueError("height, view and time are unsigned integers")
        if not all(type(h) is bytes and len(h) == 32 for h in hashes):
            raise ValueError("hashes are 32 bytes")
        if type(envelopes) is not list or type(results) is not list:
            raise ValueError("envelopes and results are lists")
        if not all(type(x) is bytes for x in envelopes + results):
            raise ValueError("envelopes and results are binary")
        return SourceBlock(number, view, time_ms, prev, digest, r_root, s_root, block_hash,
                           tuple(envelopes), _certificate(certificate), tuple(results))
    except (codec.CodecError, ValueError, TypeError) as error:
        raise ExportError(f"the block frame does not decode ({error})", height) from None


def _with_checkpoint(block: SourceBlock, payload: bytes, height: int) -> SourceBlock:
    try:
        number, block_hash, certificate, set_hash = codec.unpack(payload, MAX_CHECKPOINT_BYTES)
        if number != block.height or type(block_hash) is not bytes:
            raise ValueError("it does not follow its block")
        if type(set_hash) is not bytes or len(set_hash) != 32:
            raise ValueError("its validator set hash is not 32 bytes")
        checkpoint = (block_hash, _certificate(certificate), set_hash)
    except (codec.CodecError, ValueError, TypeError) as error:
        raise ExportError(f"the checkpoint frame does not decode ({error})",
                          height) from None
    return replace(block, checkpoint=checkpoint)
