"""Encrypted, authenticated TCP links between validators (asyncio).

The transport only turns sockets into (peer index, message bytes) and back; what the
messages mean is the runtime's business. docs/transport.md gives the bytes on the wire.

The rules:
- One link per pair of validators: the lower index dials, the higher listens. A listener
  refuses a dialler with a higher index, so two links never race. A new authenticated
  link from a peer replaces the old one (the peer restarted; the old socket is dead).
- A link exists only after the handshake (node/handshake.py): both sides proved their
  genesis key. Anyone else is refused before being given a single message.
- Every frame is checked on arrival (node/frames.py). A frame over the limit, a bad
  length, bytes that do not authenticate (injected, replayed, reordered, altered) or a
  malformed message list drop that link; the node carries on and the dialler tries again.
- Each peer has one bounded send queue (count and bytes) that outlives its links; when a
  message does not fit, the oldest are dropped and counted. What is in the socket's own
  buffer is bounded too: the writer stops taking from the queue above
  `write_buffer_bytes` until the socket drains. What is read is bounded by the frame
  limit. So a slow, frozen or dead peer costs a fixed amount of memory.
- Sending coalesces: `send` only queues and wakes the peer's writer, which runs once per
  loop iteration and packs everything queued into as few frames (one AEAD call and one
  write each) as the frame limit allows.
- A link that has sent nothing for `heartbeat_s` sends an empty frame; a link that has
  received nothing for `idle_timeout_s` is dropped (a frozen peer or a dead path).
- The dialler retries with exponential backoff, from `backoff_initial_s` to
  `backoff_max_s`, timed by the event loop's clock.
"""
from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import structlog
from nacl.signing import SigningKey

from node.frames import (HEADER_BYTES, MESSAGE_OVERHEAD, TAG_BYTES, FrameError, Opener,
                         Sealer, SendQueue, frame_length, pack_messages, unpack_messages)
from node.handshake import (HandshakeError, Initiator, Responder, Roster, Session, initiate,
                            respond)

log = structlog.get_logger("stadsmunt.transport")

# what ends a link or a handshake without being a bug of ours
_LINK_ERRORS = (HandshakeError, FrameError, asyncio.IncompleteReadError, TimeoutError,
                ConnectionError, OSError)


@dataclass(frozen=True, slots=True)
class Limits:
    max_frame_bytes: int = 8 * 1024 * 1024
    max_queue_bytes: int = 16 * 1024 * 1024
    max_queue_messages: int = 65_536
    write_buffer_bytes: int = 1024 * 1024
    read_buffer_bytes: int = 256 * 1024
    max_handshakes: int = 16
    handshake_timeout_s: float = 5.0
    connect_timeout_s: float = 5.0
    backoff_initial_s: float = 0.05
    backoff_max_s: float = 5.0
    heartbeat_s: float = 1.0
    idle_timeout_s: float = 10.0

    def __post_init__(self):
        assert self.max_frame_bytes > TAG_BYTES + MESSAGE_OVERHEAD
        assert self.max_queue_bytes > MESSAGE_OVERHEAD and self.max_queue_messages >= 1
        assert self.write_buffer_bytes > 0 and self.read_buffer_bytes > 0
        assert self.max_handshakes >= 1
        assert 0 < self.backoff_initial_s <= self.backoff_max_s
        assert 0 < self.heartbeat_s < self.idle_timeout_s

    @property
    def max_message_bytes(self) -> int:
        """The largest message `send` takes: it must fit one frame and the queue."""
        return min(self.max_frame_bytes - TAG_BYTES, self.max_queue_bytes) - MESSAGE_OVERHEAD


@dataclass(slots=True)
class Counters:
    """Monotonic totals for metrics."""
    frames_sent: int = 0
    frames_received: int = 0
    messages_sent: int = 0
    messages_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    links_opened: int = 0
    links_closed: int = 0
    handshakes_failed: int = 0
    frames_rejected: int = 0


class _Link:
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


class Transport:
    def __init__(self, me: int, seed: bytes, validators: Sequence[tuple[bytes, str, int]],
                 genesis_hash: bytes, on_message: Callable[[int, bytes], None],
                 limits: Limits = Limits(),
                 on_link: Callable[[int, bool], None] | None = None):
        assert 0 <= me < len(validators)
        self.me = me
        self.limits = limits
        self.roster = Roster(genesis_hash, tuple(bytes(v[0]) for v in validators))
        self.counters = Counters()
        self._seed = seed
        self._addresses = [(host, port) for _, host, port in validators]
        self._on_message = on_message
        self._on_link = on_link
        self._peers = tuple(i for i in range(len(validators)) if i != me)
        self._queues = {peer: SendQueue(limits.max_queue_bytes, limits.max_queue_messages)
                        for peer in self._peers}
        self._wakeups = {peer: asyncio.Event() for peer in self._peers}
        self._links: dict[int, _Link] = {}
        self._tasks: set[asyncio.Task] = set()
        self._handshakes = 0
        self._server: asyncio.Server | None = None
        self._stopping = False
        self.port: int | None = None
        if bytes(SigningKey(seed).verify_key) != self.roster.keys[me]:
            raise ValueError("the seed is not the key of validator %d" % me)

    # -- the API ------------------------------------------------------------------------

    async def start(self, sock: socket.socket | None = None) -> None:
        """Listens (on `sock` when given, else on this validator's address) and dials
        every validator with a higher index."""
        assert self._server is None, "started twice"
        if sock is not None:
            self._server = await asyncio.start_server(
                self._accept, sock=sock, limit=self.limits.read_buffer_bytes)
        else:
            host, port = self._addresses[self.me]
            self._server = await asyncio.start_server(
                self._accept, host, port, limit=self.limits.read_buffer_bytes)
        self.port = self._server.sockets[0].getsockname()[1]
        for peer in self._peers:
            if peer > self.me:
                self._spawn(self._dial_loop(peer))
        self._spawn(self._maintain())
        log.info("transport_started", me=self.me, port=self.port)

    def send(self, peer: int, data: bytes) -> None:
        """Queues `data` for `peer`; never blocks. Raises ValueError for a message over
        `limits.max_message_bytes` (a bug of the caller, not of the peer)."""
        if len(data) > self.limits.max_message_bytes:
            raise ValueError(f"message of {len(data)} bytes is over the limit of "
                             f"{self.limits.max_message_bytes}")
        self._queues[peer].push(data)
        self._wakeups[peer].set()

    def broadcast(self, data: bytes) -> None:
        for peer in self._peers:
            self.send(peer, data)

    def connected(self) -> set[int]:
        return set(self._links)

    def queued(self, peer: int) -> tuple[int, int]:
        """(messages, bytes) waiting for `peer`."""
        queue = self._queues[peer]
        return len(queue), queue.bytes

    def buffered(self, peer: int) -> int:
        """Bytes written to `peer`'s socket that the kernel has not taken yet."""
        link = self._links.get(peer)
        return link.writer.transport.get_write_buffer_size() if link is not None else 0

    def dropped(self, peer: int) -> int:
        return self._queues[peer].dropped

    def stats(self) -> dict:
        out = asdict(self.counters)
        out["messages_dropped"] = sum(q.dropped for q in self._queues.values())
        out["peers_connected"] = len(self._links)
        return out

    async def stop(self) -> None:
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for link in list(self._links.values()):
            link.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        log.info("transport_stopped", me=self.me)

    # -- connecting -----------------------------------------------------------------------

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

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
            initiator = Initiator(self.roster, self.me, self._seed, peer, os.urandom(32))
            session = await initiate(reader, writer, initiator,
                                     self.limits.handshake_timeout_s)
        except _LINK_ERRORS as error:
            writer.transport.abort()
            self.counters.handshakes_failed += 1
            log.warning("handshake_failed", me=self.me, peer=peer, role="initiator",
                        reason=str(error) or type(error).__name__)
            return None
        except BaseException:
            writer.transport.abort()  # cancelled by stop() in mid-handshake
            raise
        return session, reader, writer

    async def _accept(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        if self._stopping or self._handshakes >= self.limits.max_handshakes:
            # no log line: under a flood of connections it would be the flood
            self.counters.handshakes_failed += 1
            writer.transport.abort()
            return
        task = asyncio.current_task()
        self._tasks.add(task)
        self._handshakes += 1
        try:
            responder = Responder(self.roster, self.me, self._seed, os.urandom(32),
                                  accept=lambda peer: peer < self.me)
            try:
                session = await respond(reader, writer, responder,
                                        self.limits.handshake_timeout_s)
            except _LINK_ERRORS as error:
                writer.transport.abort()
                self.counters.handshakes_failed += 1
                log.warning("handshake_failed", me=self.me, peer=responder.peer,
                            role="responder", reason=str(error) or type(error).__name__,
                            address=writer.get_extra_info("peername"))
                return
            finally:
                self._handshakes -= 1
            await self._run_link(session, reader, writer)
        except asyncio.CancelledError:
            # stop(): asyncio's server logs a cancelled connection task as an error,
            # so this one ends quietly instead
            writer.transport.abort()
        finally:
            self._tasks.discard(task)

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
        link = _Link(session, writer, loop.time())
        writer.transport.set_write_buffer_limits(high=self.limits.write_buffer_bytes)
        self._links[peer] = link
        self.counters.links_opened += 1
        log.info("link_up", me=self.me, peer=peer)
        if self._on_link is not None:
            self._on_link(peer, True)
        self._wakeups[peer].set()
        write_task = self._spawn(self._write_loop(link))
        reason = "closed by peer"
        try:
            await self._read_loop(link, reader)
        except FrameError as error:
            self.counters.frames_rejected += 1
            reason = str(error)
        except asyncio.IncompleteReadError:
            pass
        except _LINK_ERRORS as error:
            reason = str(error) or type(error).__name__
        finally:
            link.abort()
            write_task.cancel()
            self.counters.links_closed += 1
            if self._links.get(peer) is link:
                del self._links[peer]
                log.warning("link_down", me=self.me, peer=peer, reason=reason)
                if self._on_link is not None and not self._stopping:
                    self._on_link(peer, False)

    async def _read_loop(self, link: _Link, reader: asyncio.StreamReader) -> None:
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
                except Exception:
                    # the receiver's bug, not the peer's: keep the link
                    log.exception("on_message_failed", me=self.me, peer=peer)

    async def _write_loop(self, link: _Link) -> None:
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

    async def _maintain(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.limits.heartbeat_s)
            now = loop.time()
            for link in list(self._links.values()):
                if now - link.last_received > self.limits.idle_timeout_s:
                    log.warning("link_idle", me=self.me, peer=link.peer)
                    link.abort()
                elif now - link.last_sent >= self.limits.heartbeat_s:
                    link.heartbeat_due = True
                    self._wakeups[link.peer].set()
