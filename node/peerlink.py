"""A link between two validators: this validator's keys for the handshake, dialling a
peer, and one live, authenticated link reading frames and writing its peer's queue. The
Transport (node/transport.py) holds the links, replaces them and delivers what they
read; the listener's side of making one is node/listener.py.

The rules:
- Every frame is checked on arrival (node/frames.py). A frame over the limit, a bad
  length, bytes that do not authenticate (injected, replayed, reordered, altered) or a
  malformed message list raise (`FrameError`), and the transport drops that link.
- Sending coalesces: the peer's writer runs once per loop iteration and packs everything
  queued into as few frames (one AEAD call and one write each) as the frame limit
  allows. It stops taking from the queue while the socket's buffer is above
  `write_buffer_bytes`, until the socket drains.
"""
from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from nacl.signing import SigningKey

from node.frames import (HEADER_BYTES, TAG_BYTES, FrameError, Opener, Sealer, SendQueue,
                         frame_length, pack_messages, unpack_messages)
from node.handshake import HandshakeError, Initiator, Responder, Roster, Session

if TYPE_CHECKING:
    from node.transport import Counters, TransportLimits

# what ends a link or a handshake without being a bug of ours
LINK_ERRORS = (HandshakeError, FrameError, asyncio.IncompleteReadError, TimeoutError,
               ConnectionError, OSError)


def fixed_reason(error: BaseException, timeout_reason: str) -> str:
    """A reason from a fixed set (sampled logs count by it), never the other side's data."""
    if isinstance(error, HandshakeError):
        return str(error)
    if isinstance(error, TimeoutError):
        return timeout_reason
    return "closed"


def dials(roster: Roster, me: int, peer: int) -> bool:
    """Whether validator `me` dials `peer`: the one with the lower public key (compared as
    bytes) dials, so two validators agree whatever order their rosters hold them in."""
    return roster.keys[me] < roster.keys[peer]


@dataclass(slots=True)
class Keys:
    """What this validator brings to a handshake: the roster (the transport puts in a new
    one when it grows), its index, its validator key, and which peers may hold a link now
    (`admitted`). Each handshake draws a fresh ephemeral key."""
    roster: Roster
    me: int
    signing: SigningKey
    admitted: Callable[[int], bool] = lambda peer: True

    def initiator(self, peer: int) -> Initiator:
        return Initiator(self.roster, self.me, self.signing, peer, os.urandom(32))

    def responder(self) -> Responder:
        # the lower key dials: a dialler with a higher one is refused
        roster, me = self.roster, self.me
        return Responder(roster, me, self.signing, os.urandom(32),
                         accept=lambda peer: dials(roster, peer, me),
                         admitted=self.admitted)


class Link:
    """One live, authenticated connection to a peer: its frame keys, when it last sent
    and received, and the peer's send queue, which outlives it."""
    __slots__ = ("peer", "writer", "sealer", "opener", "last_sent", "last_received",
                 "heartbeat_due", "_queue", "_wakeup", "_limits", "_counters")

    def __init__(self, session: Session, writer: asyncio.StreamWriter, now: float,
                 queue: SendQueue, wakeup: asyncio.Event, limits: TransportLimits,
                 counters: Counters):
        self.peer, self.writer = session.peer, writer
        self.sealer, self.opener = Sealer(session.send_key), Opener(session.recv_key)
        self.last_sent = self.last_received = now
        self.heartbeat_due = False
        self._queue, self._wakeup = queue, wakeup
        self._limits, self._counters = limits, counters
        writer.transport.set_write_buffer_limits(high=limits.write_buffer_bytes)

    def abort(self) -> None:
        # abort, not close: close would wait to flush a buffer a frozen peer never reads
        self.writer.transport.abort()

    async def receive(self, reader: asyncio.StreamReader) -> list[bytes]:
        """The messages of the next frame; raises FrameError for a frame that is not
        right, IncompleteReadError when the peer hung up."""
        header = await reader.readexactly(HEADER_BYTES)
        length = frame_length(header, self._limits.max_frame_bytes)
        body = await reader.readexactly(length)
        messages = unpack_messages(self.opener.open(header, body))
        self.last_received = asyncio.get_running_loop().time()
        counters = self._counters
        counters.frames_received += 1
        counters.bytes_received += HEADER_BYTES + length
        counters.messages_received += len(messages)
        return messages

    async def write_loop(self) -> None:
        """Writes what is queued (or a heartbeat when due) until the socket closes."""
        loop = asyncio.get_running_loop()
        queue = self._queue
        wakeup = self._wakeup
        writer = self.writer
        transport = writer.transport
        budget = self._limits.max_frame_bytes - TAG_BYTES
        high = self._limits.write_buffer_bytes
        counters = self._counters
        try:
            while not transport.is_closing():
                if not len(queue) and not self.heartbeat_due:
                    wakeup.clear()
                    await wakeup.wait()
                    continue
                self.heartbeat_due = False
                messages = queue.take(budget)
                frame = self.sealer.seal(pack_messages(messages))
                transport.write(frame)
                self.last_sent = loop.time()
                counters.frames_sent += 1
                counters.messages_sent += len(messages)
                counters.bytes_sent += len(frame)
                if transport.get_write_buffer_size() > high:
                    # the one await per burst: wait for the socket, never per frame
                    await writer.drain()
        except OSError:
            pass  # the socket failed; the reader sees it end too
        finally:
            # a link that cannot write must not stay up on its reading half alone
            self.abort()
