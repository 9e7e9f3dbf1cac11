"""The peer port's listener: the accept loop, and the responder's side of the handshake
with its deadlines and rate limits. The Transport (node/transport.py) makes one when it
starts and gives it what it needs: the slots where accepted connections wait
(node/slots.py), the peers' addresses, the rates (node/ratelimit.py), and a callback
that takes over each authenticated link (node/peerlink.py).

The rules:
- Accepting is this module's own loop, not asyncio's server (which logs a traceback for
  every failed accept): when the process is out of descriptors it pauses accepting (from
  `accept_backoff_s`, doubling to 1 s) instead of failing per connection.
- The HELLO must arrive within `hello_timeout_s` of the accept and the whole handshake
  within `handshake_timeout_s`.
- Public-key work is rate-limited (token buckets, node/ratelimit.py): a HELLO that claims
  a validator from an address that is not that validator's is answered only within a
  per-address and a global rate; a signed REPLY, which only a proven validator can
  reach, within a rate per validator. Beyond them the connection is closed, nothing
  signed.
- A validator that the transport does not admit (`Transport.admit`) is refused at its
  HELLO, and again before the REPLY if it was left out while its handshake ran.
"""
from __future__ import annotations

import asyncio
import errno
import socket
from typing import TYPE_CHECKING, Awaitable, Callable, Coroutine

from node.handshake import HELLO_BYTES, PROOF_BYTES, HandshakeError, Session
from node.peerlink import LINK_ERRORS, Keys, fixed_reason
from node.ratelimit import HandshakeRates
from node.slots import Pending, PeerAddresses, Slots

if TYPE_CHECKING:
    from node.transport import Counters, TransportLimits

LISTEN_BACKLOG = 511        # connections the kernel holds until this loop accepts them
ACCEPT_BATCH = 32           # accepts per wake-up of the listener, then other work runs
                            # (fewer than the slots, so older connections can make room)
ACCEPT_BACKOFF_MAX_S = 1.0

# takes over an authenticated link and runs it to its end
HandOver = Callable[[Session, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class _CountingProtocol(asyncio.StreamReaderProtocol):
    """Counts the bytes that arrived on a pending connection (see `_hello_arrived`)."""

    def __init__(self, reader: asyncio.StreamReader, entry: Pending):
        super().__init__(reader)
        self._entry = entry

    def data_received(self, data: bytes) -> None:
        self._entry.received += len(data)
        super().data_received(data)


class Listener:
    """Takes connections off the listening sockets into the slots, answers their
    handshakes and hands each authenticated one over. Runs from `start` to `close`;
    `spawn` runs a connection's task, `fail` stops the transport (a bug of ours)."""

    def __init__(self, socks: list[socket.socket], keys: Keys, limits: TransportLimits,
                 slots: Slots, addresses: PeerAddresses, rates: HandshakeRates,
                 counters: Counters, note: Callable[..., None],
                 spawn: Callable[[Coroutine], asyncio.Task],
                 fail: Callable[[Exception], None], hand_over: HandOver):
        self._socks = socks
        self._keys = keys
        self._limits = limits
        self._slots = slots
        self._addresses = addresses
        self._rates = rates
        self._counters = counters
        self._note = note
        self._spawn = spawn
        self._fail = fail
        self._hand_over = hand_over
        self._accept_backoff = limits.accept_backoff_s
        self._accept_resume: asyncio.TimerHandle | None = None
        self._closed = False

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        for listening in self._socks:
            listening.setblocking(False)
            loop.add_reader(listening.fileno(), self._accept_ready, listening)

    def close(self) -> None:
        """Stops accepting and closes the listening sockets (not the connections)."""
        self._closed = True
        loop = asyncio.get_running_loop()
        if self._accept_resume is not None:
            self._accept_resume.cancel()
            self._accept_resume = None
        for listening in self._socks:
            if listening.fileno() >= 0:
                loop.remove_reader(listening.fileno())
            listening.close()
        self._socks = []

    # -- accepting ------------------------------------------------------------------------

    def _accept_ready(self, listening: socket.socket) -> None:
        try:
            self._accept_some(listening)
        except Exception as error:      # a bug of ours: fail-stop, not a line per accept
            self._fail(error)

    def _accept_some(self, listening: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(ACCEPT_BATCH):
            if self._closed:
                return
            try:
                conn, address = listening.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as error:
                # out of descriptors (EMFILE, ENFILE) or kernel memory: the listener
                # stays readable, so stop watching it for a while instead of spinning
                self._counters.accept_errors += 1
                delay = self._accept_backoff
                self._accept_backoff = min(2 * delay, ACCEPT_BACKOFF_MAX_S)
                self._note(loop.time(), "accept_failed",
                           {"reason": errno.errorcode.get(error.errno, "OSError")},
                           error=error.strerror or str(error), paused_s=delay)
                loop.remove_reader(listening.fileno())
                self._accept_resume = loop.call_later(delay, self._accept_again, listening)
                return
            self._accept_backoff = self._limits.accept_backoff_s
            entry = self._slots.admit(conn, address, loop.time())
            if entry is not None:
                entry.task = self._spawn(self._inbound(entry))

    def _accept_again(self, listening: socket.socket) -> None:
        self._accept_resume = None
        if not self._closed and listening.fileno() >= 0:
            asyncio.get_running_loop().add_reader(listening.fileno(), self._accept_ready,
                                                  listening)

    # -- the responder's handshake --------------------------------------------------------

    async def _inbound(self, entry: Pending) -> None:
        entry.started = True
        loop = asyncio.get_running_loop()
        slots = self._slots
        try:
            try:
                reader = asyncio.StreamReader(limit=self._limits.read_buffer_bytes)
                protocol = _CountingProtocol(reader, entry)
                transport, _ = await loop.connect_accepted_socket(lambda: protocol,
                                                                  sock=entry.sock)
                entry.writer = asyncio.StreamWriter(transport, protocol, reader, loop)
                if entry.released:          # evicted or stopped meanwhile
                    entry.close()
                    return
                session = await self._respond(entry, reader, entry.writer)
            except LINK_ERRORS as error:
                entry.close()
                if slots.release(entry):
                    slots.refused(loop.time(), fixed_reason(
                        error, "hello timeout" if entry.peer is None else
                        "handshake timeout"), entry.ip, entry.peer)
                return
            if not slots.release(entry):    # evicted as it completed: too late to matter
                entry.close()
                return
            await self._hand_over(session, reader, entry.writer)
        except asyncio.CancelledError:
            # evicted, or stop(): the connection goes, quietly
            slots.release(entry)
            entry.close()
            if entry.writer is None:
                entry.sock.close()
        except Exception as error:
            slots.release(entry)
            entry.close()
            self._fail(error)

    async def _respond(self, entry: Pending, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> Session:
        loop = asyncio.get_running_loop()
        limits = self._limits
        async with asyncio.timeout_at(entry.accepted + limits.handshake_timeout_s):
            async with asyncio.timeout_at(entry.accepted + min(
                    limits.hello_timeout_s, limits.handshake_timeout_s)):
                hello = await reader.readexactly(HELLO_BYTES)
            responder = self._keys.responder()
            peer = entry.peer = responder.hello(hello)
            self._slots.hello_seen(entry)
            if entry.ip not in self._addresses.of(peer):
                # someone else than that validator's host claims it: rate-limited per
                # address and over all such addresses, before any public-key work
                if not self._rates.challenge(entry.ip, loop.time()):
                    self._counters.handshakes_rate_limited += 1
                    raise HandshakeError("rate limited")
            writer.write(responder.challenge())
            responder.check(await reader.readexactly(PROOF_BYTES))
            # proven: only a validator's own key gets this far; one left out (`admit`)
            # since its HELLO gets no signature either
            if not self._keys.admitted(peer):
                raise HandshakeError("not admitted")
            if not self._rates.reply(peer, loop.time()):
                self._counters.handshakes_rate_limited += 1
                raise HandshakeError("reply rate limited")
            reply, session = responder.reply()
            writer.write(reply)
            return session


async def listen(host: str, port: int, backlog: int = LISTEN_BACKLOG,
                 reuse_port: bool = False) -> list[socket.socket]:
    """Listening sockets on every address `host` stands for (as asyncio.start_server
    binds them); `reuse_port` lets several processes serve one port (the gateways)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    socks: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(
                (i[0], i[1], i[2], i[3], i[4]) for i in infos):
            sock = socket.socket(family, kind, proto)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as error:
                raise OSError(error.errno, f"error while attempting to bind on address "
                                           f"{address!r}: {error.strerror}") from None
            sock.listen(backlog)
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    if not socks:
        raise OSError(errno.EADDRNOTAVAIL, f"no address to listen on for {host!r}")
    return socks
