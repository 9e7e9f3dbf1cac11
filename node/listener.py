"""The peer port's listener: the accept loop, and the responder's side of the handshake
with its deadlines and rate limits. A part of the Transport (node/transport.py), which
mixes `Listener` in; where accepted connections wait is node/slots.py, what runs on a
link once it is authenticated node/peerlink.py.

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
"""
from __future__ import annotations

import asyncio
import errno
import os
import socket
from collections import OrderedDict

from node.handshake import HELLO_BYTES, PROOF_BYTES, HandshakeError, Responder, Session
from node.peerlink import LINK_ERRORS, fixed_reason
from node.ratelimit import Bucket
from node.slots import Pending

LISTEN_BACKLOG = 511        # connections the kernel holds until this loop accepts them
ACCEPT_BATCH = 32           # accepts per wake-up of the listener, then other work runs
                            # (fewer than the slots, so older connections can make room)
ACCEPT_BACKOFF_MAX_S = 1.0
IP_BUCKETS = 4096           # addresses whose handshake rate is remembered (least recent go)


class _CountingProtocol(asyncio.StreamReaderProtocol):
    """Counts the bytes that arrived on a pending connection (see `_hello_arrived`)."""

    def __init__(self, reader: asyncio.StreamReader, entry: Pending):
        super().__init__(reader)
        self._entry = entry

    def data_received(self, data: bytes) -> None:
        self._entry.received += len(data)
        super().data_received(data)


class Listener:
    """The accepting side of a Transport: takes connections off the listening sockets
    into the slots and answers their handshakes."""

    def _init_listener(self) -> None:
        self._ip_buckets: OrderedDict[str, Bucket] = OrderedDict()
        self._outsider_bucket: Bucket | None = None
        self._reply_buckets: dict[int, Bucket] = {}
        self._accept_backoff = self.limits.accept_backoff_s
        self._accept_resume: asyncio.TimerHandle | None = None

    # -- accepting ------------------------------------------------------------------------

    def _accept_ready(self, listening: socket.socket) -> None:
        try:
            self._accept_some(listening)
        except Exception as error:      # a bug of ours: fail-stop, not a line per accept
            self._fail(error)

    def _accept_some(self, listening: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(ACCEPT_BATCH):
            if self._stopping:
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
                self.counters.accept_errors += 1
                delay = self._accept_backoff
                self._accept_backoff = min(2 * delay, ACCEPT_BACKOFF_MAX_S)
                self._note(loop.time(), "accept_failed",
                           {"reason": errno.errorcode.get(error.errno, "OSError")},
                           error=error.strerror or str(error), paused_s=delay)
                loop.remove_reader(listening.fileno())
                self._accept_resume = loop.call_later(delay, self._accept_again, listening)
                return
            self._accept_backoff = self.limits.accept_backoff_s
            self._admit(conn, address, loop.time())

    def _accept_again(self, listening: socket.socket) -> None:
        self._accept_resume = None
        if not self._stopping and listening.fileno() >= 0:
            asyncio.get_running_loop().add_reader(listening.fileno(), self._accept_ready,
                                                  listening)

    # -- the responder's handshake --------------------------------------------------------

    async def _inbound(self, entry: Pending) -> None:
        entry.started = True
        loop = asyncio.get_running_loop()
        try:
            try:
                reader = asyncio.StreamReader(limit=self.limits.read_buffer_bytes)
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
                if self._release(entry):
                    self._refused(loop.time(), fixed_reason(
                        error, "hello timeout" if entry.peer is None else
                        "handshake timeout"), entry.ip, entry.peer)
                return
            if not self._release(entry):    # evicted as it completed: too late to matter
                entry.close()
                return
            await self._run_link(session, reader, entry.writer)
        except asyncio.CancelledError:
            # evicted, or stop(): the connection goes, quietly
            self._release(entry)
            entry.close()
            if entry.writer is None:
                entry.sock.close()
        except Exception as error:
            self._release(entry)
            entry.close()
            self._fail(error)

    async def _respond(self, entry: Pending, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> Session:
        loop = asyncio.get_running_loop()
        limits = self.limits
        async with asyncio.timeout_at(entry.accepted + limits.handshake_timeout_s):
            async with asyncio.timeout_at(entry.accepted + min(
                    limits.hello_timeout_s, limits.handshake_timeout_s)):
                hello = await reader.readexactly(HELLO_BYTES)
            responder = Responder(self.roster, self.me, self._signing, os.urandom(32),
                                  accept=lambda peer: peer < self.me)
            peer = entry.peer = responder.hello(hello)
            self._hello_seen(entry)
            if entry.ip not in self._peer_ips[peer]:
                # someone else than that validator's host claims it: rate-limited per
                # address and over all such addresses, before any public-key work
                now = loop.time()
                bucket = self._ip_bucket(entry.ip, now)
                if not (bucket.ready(now) and self._outsider_bucket.ready(now)):
                    self.counters.handshakes_rate_limited += 1
                    raise HandshakeError("rate limited")
                bucket.take()
                self._outsider_bucket.take()
            writer.write(responder.challenge())
            responder.check(await reader.readexactly(PROOF_BYTES))
            # proven: only a validator's own key gets this far
            bucket = self._reply_buckets[peer]
            if not bucket.ready(loop.time()):
                self.counters.handshakes_rate_limited += 1
                raise HandshakeError("reply rate limited")
            bucket.take()
            reply, session = responder.reply()
            writer.write(reply)
            return session

    def _ip_bucket(self, ip: str, now: float) -> Bucket:
        bucket = self._ip_buckets.get(ip)
        if bucket is None:
            if len(self._ip_buckets) >= IP_BUCKETS:
                self._ip_buckets.popitem(last=False)
            bucket = self._ip_buckets[ip] = Bucket(self.limits.ip_handshake_rate,
                                                    self.limits.ip_handshake_burst, now)
        else:
            self._ip_buckets.move_to_end(ip)
        return bucket


async def listen(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on every address `host` stands for (as asyncio.start_server)."""
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
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as error:
                raise OSError(error.errno, f"error while attempting to bind on address "
                                           f"{address!r}: {error.strerror}") from None
            sock.listen(LISTEN_BACKLOG)
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    if not socks:
        raise OSError(errno.EADDRNOTAVAIL, f"no address to listen on for {host!r}")
    return socks
