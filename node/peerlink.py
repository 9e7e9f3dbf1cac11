"""A link between two validators: the dialler's side of making one, and what runs on
it once it is authenticated. A part of the Transport (node/transport.py), which mixes
`PeerLinks` in and holds the state it uses; the listener's side is node/listener.py.

The rules:
- The dialler retries with exponential backoff, from `backoff_initial_s` to
  `backoff_max_s`, timed by the event loop's clock.
- A new authenticated link from a peer replaces the old one (the peer restarted; the
  old socket is dead).
- Every frame is checked on arrival (node/frames.py). A frame over the limit, a bad
  length, bytes that do not authenticate (injected, replayed, reordered, altered) or a
  malformed message list drop that link; the node carries on and the dialler tries again.
- `on_message` may raise `PeerInputError` for a message its peer should not have sent:
  it is counted and logged (sampled) and the link stays. Any other exception from
  `on_message` or `on_link` stops the transport.
- Sending coalesces: the peer's writer runs once per loop iteration and packs everything
  queued into as few frames (one AEAD call and one write each) as the frame limit
  allows. It stops taking from the queue while the socket's buffer is above
  `write_buffer_bytes`, until the socket drains.
"""
from __future__ import annotations

import asyncio
import os

import structlog

from node.frames import (HEADER_BYTES, TAG_BYTES, FrameError, Opener, Sealer, frame_length,
                         pack_messages, unpack_messages)
from node.handshake import HandshakeError, Initiator, Session, initiate

log = structlog.get_logger("stadsmunt.transport")

# what ends a link or a handshake without being a bug of ours
LINK_ERRORS = (HandshakeError, FrameError, asyncio.IncompleteReadError, TimeoutError,
               ConnectionError, OSError)


class PeerInputError(Exception):
    """Raised by `on_message` for a message that its peer should not have sent
    (undecodable, malformed, a block that does not check out). The transport counts it,
    logs it sampled (`bad_peer_input`) and keeps the link. Anything else `on_message`
    raises stops the transport (see `Transport.wait_failure`)."""


class Link:
    """One live, authenticated connection to a peer."""
    __slots__ = ("peer", "writer", "sealer", "opener", "last_sent", "last_received",
                 "heartbeat_due")

    def __init__(self, session: Session, writer: asyncio.StreamWriter, now: float):
        self.peer = session.peer
        self.writer = writer
        self.sealer = Sealer(session.send_key)
        self.opener = Opener(session.recv_key)
        self.last_sent = now
        self.last_received = now
        self.heartbeat_due = False

    def abort(self) -> None:
        # abort, not close: close would wait to flush a buffer a frozen peer never reads
        self.writer.transport.abort()


def fixed_reason(error: BaseException, timeout_reason: str) -> str:
    """A reason from a fixed set (sampled logs count by it), never the other side's data."""
    if isinstance(error, HandshakeError):
        return str(error)
    if isinstance(error, TimeoutError):
        return timeout_reason
    return "closed"


class PeerLinks:
    """The links of a Transport: dialling the peers with higher indices, and reading,
    writing and replacing links of either side (`_run_link`)."""

    async def _dial_loop(self, peer: int) -> None:
        loop = asyncio.get_running_loop()
        backoff = self.limits.backoff_initial_s
        while not self._stopping:
            opened = loop.time()
            link = await self._dial(peer)
            if link is not None:
                await self._run_link(*link)
            # a link that lasted resets the backoff; one that keeps failing backs off
            if link is not None and loop.time() - opened >= self.limits.backoff_max_s:
                backoff = self.limits.backoff_initial_s
            await asyncio.sleep(backoff)
            backoff = min(2 * backoff, self.limits.backoff_max_s)

    async def _dial(self, peer: int):
        """(session, reader, writer) of a new authenticated link to `peer`, or None."""
        host, port = self._addresses[peer]
        try:
            async with asyncio.timeout(self.limits.connect_timeout_s):
                reader, writer = await asyncio.open_connection(
                    host, port, limit=self.limits.read_buffer_bytes)
        except (TimeoutError, OSError):
            return None  # not up yet: no log line every backoff
        try:
            initiator = Initiator(self.roster, self.me, self._signing, peer, os.urandom(32))
            session = await initiate(reader, writer, initiator,
                                     self.limits.handshake_timeout_s)
        except LINK_ERRORS as error:
            writer.transport.abort()
            self.counters.handshakes_failed += 1
            self._note(asyncio.get_running_loop().time(), "handshake_failed",
                       {"reason": fixed_reason(error, "handshake timeout"),
                        "role": "initiator", "peer": peer})
            return None
        except BaseException:
            writer.transport.abort()  # cancelled by stop() in mid-handshake
            raise
        return session, reader, writer

    # -- a live link ----------------------------------------------------------------------

    async def _run_link(self, session: Session, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
        peer = session.peer
        loop = asyncio.get_running_loop()
        if self._stopping:
            writer.transport.abort()
            return
        old = self._links.get(peer)
        if old is not None:
            log.info("link_replaced", me=self.me, peer=peer)
            old.abort()
        link = Link(session, writer, loop.time())
        writer.transport.set_write_buffer_limits(high=self.limits.write_buffer_bytes)
        self._links[peer] = link
        self.counters.links_opened += 1
        log.info("link_up", me=self.me, peer=peer)
        write_task = self._spawn(self._write_loop(link))
        reason = "closed by peer"
        try:
            if not self._tell_link(peer, True):
                return
            self._wakeups[peer].set()
            await self._read_loop(link, reader)
        except FrameError as error:
            self.counters.frames_rejected += 1
            reason = str(error)
        except asyncio.IncompleteReadError:
            pass
        except LINK_ERRORS as error:
            reason = str(error) or type(error).__name__
        finally:
            link.abort()
            write_task.cancel()
            self.counters.links_closed += 1
            if self._links.get(peer) is link:
                del self._links[peer]
                log.warning("link_down", me=self.me, peer=peer, reason=reason)
                if not self._stopping:
                    self._tell_link(peer, False)

    def _tell_link(self, peer: int, up: bool) -> bool:
        if self._on_link is None:
            return True
        try:
            self._on_link(peer, up)
        except Exception as error:
            self._fail(error)
            return False
        return True

    async def _read_loop(self, link: Link, reader: asyncio.StreamReader) -> None:
        loop = asyncio.get_running_loop()
        max_frame = self.limits.max_frame_bytes
        counters = self.counters
        deliver = self._on_message
        peer = link.peer
        while True:
            header = await reader.readexactly(HEADER_BYTES)
            length = frame_length(header, max_frame)
            body = await reader.readexactly(length)
            messages = unpack_messages(link.opener.open(header, body))
            link.last_received = loop.time()
            counters.frames_received += 1
            counters.bytes_received += HEADER_BYTES + length
            counters.messages_received += len(messages)
            if self._stopping or self._links.get(peer) is not link:
                return  # replaced or stopped while this frame was read
            for message in messages:
                try:
                    deliver(peer, message)
                except PeerInputError as error:
                    # the peer's fault: counted and logged sampled, the link stays
                    counters.peer_input_rejected += 1
                    self._note(loop.time(), "bad_peer_input", {"peer": peer},
                               reason=str(error)[:200])
                except Exception as error:
                    # ours: fail-stop, never carry on with a state nobody checked
                    self._fail(error)
                    return
                if self._stopping:
                    return

    async def _write_loop(self, link: Link) -> None:
        loop = asyncio.get_running_loop()
        peer = link.peer
        queue = self._queues[peer]
        wakeup = self._wakeups[peer]
        writer = link.writer
        transport = writer.transport
        budget = self.limits.max_frame_bytes - TAG_BYTES
        high = self.limits.write_buffer_bytes
        counters = self.counters
        try:
            while not transport.is_closing():
                if not len(queue) and not link.heartbeat_due:
                    wakeup.clear()
                    await wakeup.wait()
                    continue
                link.heartbeat_due = False
                messages = queue.take(budget)
                frame = link.sealer.seal(pack_messages(messages))
                transport.write(frame)
                link.last_sent = loop.time()
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
            link.abort()
