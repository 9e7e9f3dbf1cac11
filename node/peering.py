"""What travels between validators over the encrypted transport, one frame each.

The first byte says what the frame is:
  0x01  a consensus message (consensus/wire.py encodes it);
  0x02  a catch-up request: msgpack [from_height, to_height];
  0x03  a catch-up answer: msgpack list of stored block records (node/block.py), in order;
  0x04  a state sync request, 0x05 its answer (node/syncwire.py, docs/statesync.md).
The receiver checks every answered block's commit certificate against genesis before
anything is executed: a peer that answers is trusted for nothing.
"""
from __future__ import annotations

from consensus import wire
from protocol import codec
from node.block import BlockRecord
from node import syncwire

CONSENSUS, FETCH, BLOCKS, SYNC_ASK, SYNC_ANSWER = 1, 2, 3, 4, 5


class PeerFrameError(ValueError):
    pass


def consensus_frame(message) -> bytes:
    return b"\x01" + wire.encode(message)


def fetch_frame(from_height: int, to_height: int) -> bytes:
    return b"\x02" + codec.pack([from_height, to_height])


def blocks_frame(encoded_records: list[bytes]) -> bytes:
    return b"\x03" + codec.pack(encoded_records)


def parse(data: bytes, max_bytes: int):
    """(kind, payload) of a frame; PeerFrameError for anything malformed."""
    if not data:
        raise PeerFrameError("empty frame")
    kind, body = data[0], data[1:]
    try:
        if kind == CONSENSUS:
            return kind, wire.decode(body, max_bytes)
        if kind == FETCH:
            span = codec.unpack(body, 64)
            if (type(span) is not list or len(span) != 2
                    or not all(type(h) is int and h >= 1 for h in span) or span[0] > span[1]):
                raise PeerFrameError("a fetch is [from_height, to_height]")
            return kind, (span[0], span[1])
        if kind == BLOCKS:
            records = codec.unpack(body, max_bytes)
            if type(records) is not list or not all(type(r) is bytes for r in records):
                raise PeerFrameError("an answer is a list of block records")
            return kind, [BlockRecord.decode(r) for r in records]
        if kind == SYNC_ASK:
            return kind, syncwire.parse_ask(body)
        if kind == SYNC_ANSWER:
            return kind, syncwire.parse_answer(body, max_bytes)
    except PeerFrameError:
        raise
    except Exception as error:  # every decoder's error is the peer's fault, never ours
        raise PeerFrameError(f"undecodable frame of kind {kind}: {error}") from None
    raise PeerFrameError(f"unknown frame kind {kind}")
