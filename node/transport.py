"""Encrypted, authenticated TCP links between validators (asyncio).

The transport only turns sockets into (peer index, message bytes) and back; what the
messages mean is the runtime's business. docs/transport.md gives the bytes on the wire
and every limit below with its default.

The rules:
- One link per pair of validators: the lower index dials, the higher listens. A listener
  refuses a dialler with a higher index, so two links never race. A new authenticated
  link from a peer replaces the old one (the peer restarted; the old socket is dead).
- A link exists only after the handshake (node/handshake.py): both sides proved their
  genesis key, the dialler first. Anyone else is refused before being given a single
  message, and nobody gets a signature of this node without having proved a key first.
- The peer port admits a bounded number of connections that have not authenticated yet
  (`max_handshakes`, also kept well under the process's descriptor limit). Part of them
  (`reserved_handshakes`) only serves the addresses of the peers that dial this node;
  any other address holds at most `max_handshakes_per_ip`. When there is no room, the
  oldest unauthenticated connection goes first (outsiders before peers' addresses), so
  idle or slow connections cannot keep out a validator that completes its handshake
  promptly, even from the same address (loopback, NAT). The HELLO must arrive within
  `hello_timeout_s` and the whole handshake within `handshake_timeout_s`.
- Public-key work is rate-limited (token buckets): a HELLO that claims a validator from
  an address that is not that validator's is answered only within a per-address and a
  global rate; a signed REPLY, which only a proven validator can reach, within a rate
  per validator. Beyond them the connection is closed, nothing signed.
- Accepting is this module's own loop: when the process is out of descriptors it pauses
  accepting (from `accept_backoff_s`, doubling to 1 s) instead of failing per connection.
- Refused, evicted and failed handshakes, accept errors and peer input the receiver
  refused are logged sampled: the first of each kind in a `log_interval_s` interval as
  it happens, then one line with the count. Never a line (or traceback) per attempt.
- Every frame is checked on arrival (node/frames.py). A frame over the limit, a bad
  length, bytes that do not authenticate (injected, replayed, reordered, altered) or a
  malformed message list drop that link; the node carries on and the dialler tries again.
- `on_message` may raise `PeerInputError` for a message its peer should not have sent:
  it is counted and logged (sampled) and the link stays. Any other exception from
  `on_message` or `on_link` is a bug of this node or a failure of its state (an assertion
  of the replica, an error of the ledger): the transport stops at once, every link and
  the listener with it, and `wait_failure()` raises that exception so the process stops.
  Failing is better than carrying on with a state nobody checked.
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
import errno
import ipaddress
import os
import resource
import socket
from collections import Counter, OrderedDict
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import structlog
from nacl.signing import SigningKey

from node.frames import (HEADER_BYTES, MESSAGE_OVERHEAD, TAG_BYTES, FrameError, Opener,
                         Sealer, SendQueue, frame_length, pack_messages, unpack_messages)
from node.handshake import (HELLO_BYTES, MAGIC, PROOF_BYTES, HandshakeError, Initiator,
                            Responder, Roster, Session, initiate)

log = structlog.get_logger("stadsmunt.transport")

# what ends a link or a handshake without being a bug of ours
_LINK_ERRORS = (HandshakeError, FrameError, asyncio.IncompleteReadError, TimeoutError,
                ConnectionError, OSError)

LISTEN_BACKLOG = 511        # connections the kernel holds until this loop accepts them
ACCEPT_BATCH = 32           # accepts per wake-up of the listener, then other work runs
                            # (fewer than the slots, so older connections can make room)
ACCEPT_BACKOFF_MAX_S = 1.0
IP_BUCKETS = 4096           # addresses whose handshake rate is remembered (least recent go)
RESOLVE_EVERY_S = 300.0     # peers' host names are looked up again this often
LOG_KINDS = 64              # kinds of sampled log line per interval; the rest count as one
LOG_SOURCES = 1024          # addresses counted per kind per interval


class PeerInputError(Exception):
    """Raised by `on_message` for a message that its peer should not have sent
    (undecodable, malformed, a block that does not check out). The transport counts it,
    logs it sampled (`bad_peer_input`) and keeps the link. Anything else `on_message`
    raises stops the transport (see `Transport.wait_failure`)."""


@dataclass(frozen=True, slots=True)
class Limits:
    max_frame_bytes: int = 8 * 1024 * 1024
    max_queue_bytes: int = 16 * 1024 * 1024
    max_queue_messages: int = 65_536
    write_buffer_bytes: int = 1024 * 1024
    read_buffer_bytes: int = 256 * 1024
    # the peer port, before a connection has authenticated
    max_handshakes: int = 64            # unauthenticated connections at once, all sources
    reserved_handshakes: int = 16       # of those, only for the addresses of peers that
                                        # dial this node
    max_handshakes_per_ip: int = 8      # from one address that is not such a peer's
    hello_timeout_s: float = 1.0        # accept to HELLO (at most the next one)
    handshake_timeout_s: float = 3.0    # accept (or connect) to a link
    ip_handshake_rate: float = 2.0      # CHALLENGEs a second to one address, for HELLOs
    ip_handshake_burst: int = 8         # that claim a validator not at that address
    outsider_handshake_rate: float = 20.0   # the same, all such addresses together
    outsider_handshake_burst: int = 40
    peer_handshake_rate: float = 1.0    # signed REPLYs a second to one proven validator
    peer_handshake_burst: int = 8
    accept_backoff_s: float = 0.1       # pause in accepting when out of descriptors
    log_interval_s: float = 10.0        # sampled log lines: one summary per interval
    # links
    connect_timeout_s: float = 5.0
    backoff_initial_s: float = 0.05
    backoff_max_s: float = 5.0
    heartbeat_s: float = 1.0
    idle_timeout_s: float = 10.0

    def __post_init__(self):
        assert self.max_frame_bytes > TAG_BYTES + MESSAGE_OVERHEAD
        assert self.max_queue_bytes > MESSAGE_OVERHEAD and self.max_queue_messages >= 1
        assert self.write_buffer_bytes > 0 and self.read_buffer_bytes > 0
        assert 0 <= self.reserved_handshakes < self.max_handshakes
        assert self.max_handshakes_per_ip >= 1
        assert self.hello_timeout_s > 0 and self.handshake_timeout_s > 0
        assert min(self.ip_handshake_rate, self.outsider_handshake_rate,
                   self.peer_handshake_rate) > 0
        assert min(self.ip_handshake_burst, self.outsider_handshake_burst,
                   self.peer_handshake_burst) >= 1
        assert 0 < self.accept_backoff_s <= ACCEPT_BACKOFF_MAX_S
        assert self.log_interval_s > 0
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
    handshakes_failed: int = 0      # every handshake, either role, that made no link
    handshakes_refused: int = 0     # of those, connections to this node, for any reason
    handshakes_evicted: int = 0     # ... closed to make room for a newer one
    handshakes_rate_limited: int = 0    # ... refused by a rate limit, nothing signed
    accept_errors: int = 0          # failed accepts (out of descriptors, mostly)
    frames_rejected: int = 0
    peer_input_rejected: int = 0    # messages `on_message` refused with PeerInputError


class _Bucket:
    """A token bucket on the event loop's clock."""
    __slots__ = ("rate", "burst", "tokens", "at")

    def __init__(self, rate: float, burst: int, now: float):
        self.rate, self.burst, self.tokens, self.at = rate, burst, float(burst), now

    def ready(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        return self.tokens >= 1

    def take(self) -> None:
        self.tokens -= 1


class _Kind:
    __slots__ = ("event", "fields", "count", "sources")

    def __init__(self, event: str, fields: dict):
        self.event, self.fields, self.count, self.sources = event, fields, 0, Counter()


class _SampledLog:
    """Log lines of one kind (event and the fields that make it that kind) at most twice
    per interval: the first as it happens, with its details, and at the end of the
    interval one line with `summary=True` and how many there were (`count`), from how
    many addresses (`sources`) and which sent most (`top_source`, `top_count`)."""

    def __init__(self, interval_s: float, now: float, **context):
        self.interval_s = interval_s
        self._context = context
        self._started = now
        self._kinds: dict[tuple, _Kind] = {}

    def note(self, now: float, event: str, kind: dict, address: str | None = None,
             **details) -> None:
        if now - self._started >= self.interval_s:
            self.flush(now)
        key = (event, *sorted(kind.items(), key=lambda item: item[0]))
        found = self._kinds.get(key)
        if found is None:
            if len(self._kinds) >= LOG_KINDS:
                key, kind = (event, "other kinds"), {"other_kinds": True}
                found = self._kinds.get(key)
            if found is None:
                found = self._kinds[key] = _Kind(event, kind)
                line = {**details, **self._context, **kind}
                if address is not None:
                    line["address"] = address
                log.warning(event, **line)
        found.count += 1
        if address is not None and (address in found.sources
                                    or len(found.sources) < LOG_SOURCES):
            found.sources[address] += 1

    def tick(self, now: float) -> None:
        if now - self._started >= self.interval_s:
            self.flush(now)

    def flush(self, now: float) -> None:
        for found in self._kinds.values():
            if found.count > 1:
                extra = {}
                if found.sources:
                    top, top_count = found.sources.most_common(1)[0]
                    extra = {"sources": len(found.sources), "top_source": top,
                             "top_count": top_count}
                log.warning(found.event, **self._context, **found.fields, summary=True,
                            count=found.count, interval_s=round(now - self._started, 3),
                            **extra)
        self._kinds.clear()
        self._started = now


class _Pending:
    """A connection to the peer port that has not authenticated yet."""
    __slots__ = ("id", "sock", "ip", "insider", "accepted", "task", "writer", "peer",
                 "hello", "received", "started", "released")

    def __init__(self, id_: int, sock: socket.socket, ip: str, insider: bool, now: float):
        self.id, self.sock, self.ip, self.insider, self.accepted = id_, sock, ip, insider, now
        self.task: asyncio.Task | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.peer: int | None = None        # the validator its HELLO claims
        self.hello = False                  # its HELLO has arrived
        self.received = 0                   # bytes its stream has read
        self.started = False                # its task has begun running
        self.released = False               # no longer counted among the pending

    def closable(self) -> bool:
        """Whether `close` frees its descriptor at once: not while its task is making
        the stream (a loop iteration), when only cancelling the task can close it."""
        return self.writer is not None or not self.started

    def close(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()
            # abort closes the socket on the next loop iteration; its descriptor is what
            # a flood is after, so it goes now (the transport no longer watches it)
            self.sock.close()
        elif not self.started:
            self.sock.close()
        # else the task is creating its transport: cancelling it closes the socket


class _CountingProtocol(asyncio.StreamReaderProtocol):
    """Counts the bytes that arrived on a pending connection (see `_hello_arrived`)."""

    def __init__(self, reader: asyncio.StreamReader, entry: _Pending):
        super().__init__(reader)
        self._entry = entry

    def data_received(self, data: bytes) -> None:
        self._entry.received += len(data)
        super().data_received(data)


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


def source_ip(text: str) -> str:
    """An address as the listener sees it, in one spelling: IPv4 mapped into IPv6
    (a dual-stack listener) as plain IPv4, IPv6 compressed, a scope dropped."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return text
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _fixed_reason(error: BaseException, timeout_reason: str) -> str:
    """A reason from a fixed set (sampled logs count by it), never the other side's data."""
    if isinstance(error, HandshakeError):
        return str(error)
    if isinstance(error, TimeoutError):
        return timeout_reason
    return "closed"


def descriptor_limit() -> int | None:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


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
        self._signing = SigningKey(seed)
        if bytes(self._signing.verify_key) != self.roster.keys[me]:
            raise ValueError("the seed is not the key of validator %d" % me)
        self._addresses = [(host, port) for _, host, port in validators]
        self._on_message = on_message
        self._on_link = on_link
        self._peers = tuple(i for i in range(len(validators)) if i != me)
        self._queues = {peer: SendQueue(limits.max_queue_bytes, limits.max_queue_messages)
                        for peer in self._peers}
        self._wakeups = {peer: asyncio.Event() for peer in self._peers}
        self._links: dict[int, _Link] = {}
        self._tasks: set[asyncio.Task] = set()
        self._listeners: list[socket.socket] = []
        self._stopping = False
        self._failure: BaseException | None = None
        self._failed = asyncio.Event()
        self.port: int | None = None
        # the peer port: who is waiting to authenticate, oldest first in each pool; a
        # pool per (from a dialling peer's address, HELLO seen)
        self._pools: dict[tuple[bool, bool], dict[int, _Pending]] = {
            (insider, hello): {} for insider in (False, True) for hello in (False, True)}
        self._outsiders = 0
        self._by_ip: dict[str, dict[int, _Pending]] = {}     # outsiders only
        self._hello_prefix = MAGIC + genesis_hash
        self._next_id = 0
        # every peer's addresses as seen from here (literal addresses now, host names
        # once looked up); peers that dial this node make the reserved set
        self._peer_ips: dict[int, set[str]] = {
            peer: ({source_ip(self._addresses[peer][0])}
                   if _is_ip(self._addresses[peer][0]) else set()) for peer in self._peers}
        self._reserved_ips: set[str] = set()
        self._update_reserved()
        self._ip_buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._outsider_bucket: _Bucket | None = None
        self._reply_buckets: dict[int, _Bucket] = {}
        self._accept_backoff = limits.accept_backoff_s
        self._accept_resume: asyncio.TimerHandle | None = None
        self._cap, self._reserved = self._slots(descriptor_limit())
        self._log: _SampledLog | None = None

    def _slots(self, descriptors: int | None) -> tuple[int, int]:
        """(pending connections at most, of which reserved): kept to an eighth of the
        descriptors the process may open, so the peer port cannot run it out of them."""
        cap = self.limits.max_handshakes
        if descriptors is not None and descriptors // 8 < cap:
            cap = max(4, descriptors // 8)
            log.info("handshake_slots_limited", me=self.me, max_handshakes=cap,
                     descriptors=descriptors)
        return cap, min(self.limits.reserved_handshakes, cap // 2)

    # -- the API ------------------------------------------------------------------------

    async def start(self, sock: socket.socket | None = None) -> None:
        """Listens (on `sock` when given, else on this validator's address) and dials
        every validator with a higher index."""
        assert not self._listeners and not self._stopping, "started twice"
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._log = _SampledLog(self.limits.log_interval_s, now, me=self.me)
        self._outsider_bucket = _Bucket(self.limits.outsider_handshake_rate,
                                        self.limits.outsider_handshake_burst, now)
        self._reply_buckets = {peer: _Bucket(self.limits.peer_handshake_rate,
                                             self.limits.peer_handshake_burst, now)
                               for peer in self._peers}
        if sock is not None:
            socks = [sock]
        else:
            socks = await _listen(*self._addresses[self.me])
        for listening in socks:
            listening.setblocking(False)
            loop.add_reader(listening.fileno(), self._accept_ready, listening)
        self._listeners = socks
        self.port = socks[0].getsockname()[1]
        for peer in self._peers:
            if peer > self.me:
                self._spawn(self._guard(self._dial_loop, peer))
        self._spawn(self._guard(self._maintain))
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

    def pending(self) -> int:
        """Connections to the peer port that have not authenticated (yet)."""
        return sum(len(pool) for pool in self._pools.values())

    def stats(self) -> dict:
        out = asdict(self.counters)
        out["messages_dropped"] = sum(q.dropped for q in self._queues.values())
        out["peers_connected"] = len(self._links)
        out["handshakes_pending"] = self.pending()
        return out

    @property
    def failure(self) -> BaseException | None:
        """What stopped the transport (see `wait_failure`), or None."""
        return self._failure

    async def wait_failure(self) -> None:
        """Returns never while the transport runs. Raises the exception of `on_message`
        (other than PeerInputError) or of `on_link` that stopped it: a bug of this node
        or a failure of its state, never something a peer or the network did. By then
        every link and the listener are closed; the caller should stop the process."""
        await self._failed.wait()
        raise self._failure

    async def stop(self) -> None:
        self._halt()
        tasks = list(self._tasks)
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._log is not None:
            self._log.flush(asyncio.get_running_loop().time())
        log.info("transport_stopped", me=self.me)

    # -- stopping -------------------------------------------------------------------------

    def _halt(self) -> None:
        """Closes the listener, every connection and link, and cancels every task but the
        one running this."""
        self._stopping = True
        loop = asyncio.get_running_loop()
        if self._accept_resume is not None:
            self._accept_resume.cancel()
            self._accept_resume = None
        for listening in self._listeners:
            if listening.fileno() >= 0:
                loop.remove_reader(listening.fileno())
            listening.close()
        self._listeners = []
        for entry in [e for pool in self._pools.values() for e in pool.values()]:
            self._release(entry)
            entry.close()
        for link in list(self._links.values()):
            link.abort()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()

    def _fail(self, error: Exception) -> None:
        if self._failure is not None:
            return
        self._failure = error
        log.error("transport_failed", me=self.me, error=type(error).__name__,
                  exc_info=error)
        self._halt()
        self._failed.set()

    async def _guard(self, function, *args) -> None:
        """Runs one of the transport's own tasks; anything unexpected stops the transport
        rather than ending the task silently."""
        try:
            await function(*args)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self._fail(error)

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

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

    def _admit(self, conn: socket.socket, address, now: float) -> None:
        ip = source_ip(address[0]) if isinstance(address, tuple) else str(address)
        insider = ip in self._reserved_ips
        if not self._make_room(ip, insider, now):
            conn.close()
            self._refused(now, "busy", ip, None)
            return
        conn.setblocking(False)
        self._next_id += 1
        entry = _Pending(self._next_id, conn, ip, insider, now)
        # a dialling validator sends its HELLO as soon as it is connected, so under load
        # it is usually here before the accept: such a connection is not idle
        entry.hello = self._hello_arrived(entry)
        self._pools[insider, entry.hello][entry.id] = entry
        if not insider:
            self._outsiders += 1
            self._by_ip.setdefault(ip, {})[entry.id] = entry
        entry.task = self._spawn(self._inbound(entry))

    def _hello_arrived(self, entry: _Pending) -> bool:
        """Whether a whole HELLO has arrived on a connection, read by its stream already
        or still in the kernel's buffer (looked at, not taken)."""
        try:
            peeked = entry.sock.recv(HELLO_BYTES, socket.MSG_PEEK)
        except OSError:         # nothing there (BlockingIOError), or reset already
            peeked = b""
        if not entry.received:
            return len(peeked) == HELLO_BYTES and peeked.startswith(self._hello_prefix)
        return entry.received + len(peeked) >= HELLO_BYTES

    def _hello_seen(self, entry: _Pending) -> None:
        if not entry.hello and not entry.released:
            del self._pools[entry.insider, False][entry.id]
            entry.hello = True
            self._pools[entry.insider, True][entry.id] = entry

    def _make_room(self, ip: str, insider: bool, now: float) -> bool:
        """Evicts what must go for a new connection from `ip`; False if it cannot come
        in. Those that have not sent a HELLO go first, the oldest first; then those that
        did, the oldest first; outsiders before connections from dialling peers'
        addresses, which an outsider never evicts."""
        if not insider:
            own = self._by_ip.get(ip)
            if own and len(own) >= self.limits.max_handshakes_per_ip:
                victim = self._idlest(list(own.values()))
                if victim is None:
                    return False
                self._evict(victim, now)
            # the reserved slots are kept only while some peer dials this node
            room = self._cap - (self._reserved if self._reserved_ips else 0)
            if self._outsiders >= room:
                victim = self._oldest((False, False), (False, True))
                if victim is None:
                    return False
                self._evict(victim, now)
        if self.pending() < self._cap:
            return True
        order = [(False, False), (False, True)]
        if insider:
            order += [(True, False), (True, True)]
        victim = self._oldest(*order)
        if victim is None:
            return False
        self._evict(victim, now)
        return True

    def _oldest(self, *pools: tuple[bool, bool]) -> _Pending | None:
        """The first to go among `pools`, in that order. One without a HELLO is looked
        at again first: a validator's HELLO may have come since its connection was
        accepted, and then it is not the idle one."""
        for key in pools:
            for entry in list(self._pools[key].values()):
                if not entry.closable():
                    continue
                if key[1] or not self._hello_arrived(entry):
                    return entry
                self._hello_seen(entry)
        return None

    def _idlest(self, entries: list[_Pending]) -> _Pending | None:
        closable = [entry for entry in entries if entry.closable()]
        for entry in closable:
            if not entry.hello:
                if not self._hello_arrived(entry):
                    return entry
                self._hello_seen(entry)
        return closable[0] if closable else None

    def _evict(self, entry: _Pending, now: float) -> None:
        self._release(entry)
        entry.close()
        if entry.task is not None:
            entry.task.cancel()
        self.counters.handshakes_evicted += 1
        self._refused(now, "evicted", entry.ip, entry.peer)

    def _release(self, entry: _Pending) -> bool:
        """Takes a connection out of the pending ones; False if it was out already."""
        if entry.released:
            return False
        entry.released = True
        del self._pools[entry.insider, entry.hello][entry.id]
        if not entry.insider:
            self._outsiders -= 1
            own = self._by_ip[entry.ip]
            del own[entry.id]
            if not own:
                del self._by_ip[entry.ip]
        return True

    def _refused(self, now: float, reason: str, ip: str, peer: int | None) -> None:
        self.counters.handshakes_failed += 1
        self.counters.handshakes_refused += 1
        self._note(now, "handshake_refused", {"reason": reason, "role": "responder"},
                   address=ip, peer=peer)

    def _note(self, now: float, event: str, kind: dict, address: str | None = None,
              **details) -> None:
        if self._log is not None:
            self._log.note(now, event, kind, address, **details)

    # -- the handshake, both sides ----------------------------------------------------------

    async def _inbound(self, entry: _Pending) -> None:
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
            except _LINK_ERRORS as error:
                entry.close()
                if self._release(entry):
                    self._refused(loop.time(), _fixed_reason(
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

    async def _respond(self, entry: _Pending, reader: asyncio.StreamReader,
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

    def _ip_bucket(self, ip: str, now: float) -> _Bucket:
        bucket = self._ip_buckets.get(ip)
        if bucket is None:
            if len(self._ip_buckets) >= IP_BUCKETS:
                self._ip_buckets.popitem(last=False)
            bucket = self._ip_buckets[ip] = _Bucket(self.limits.ip_handshake_rate,
                                                    self.limits.ip_handshake_burst, now)
        else:
            self._ip_buckets.move_to_end(ip)
        return bucket

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
        except _LINK_ERRORS as error:
            writer.transport.abort()
            self.counters.handshakes_failed += 1
            self._note(asyncio.get_running_loop().time(), "handshake_failed",
                       {"reason": _fixed_reason(error, "handshake timeout"),
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
        link = _Link(session, writer, loop.time())
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
        except _LINK_ERRORS as error:
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
        resolve_at = loop.time()
        while True:
            now = loop.time()
            if now >= resolve_at:
                resolve_at = now + RESOLVE_EVERY_S
                await self._resolve_peers()
            await asyncio.sleep(self.limits.heartbeat_s)
            now = loop.time()
            self._log.tick(now)
            for link in list(self._links.values()):
                if now - link.last_received > self.limits.idle_timeout_s:
                    log.warning("link_idle", me=self.me, peer=link.peer)
                    link.abort()
                elif now - link.last_sent >= self.limits.heartbeat_s:
                    link.heartbeat_due = True
                    self._wakeups[link.peer].set()

    # -- peers' addresses -----------------------------------------------------------------

    async def _resolve_peers(self) -> None:
        """Looks up the peers given by host name (literal addresses need no look-up); a
        failed look-up keeps what was known."""
        loop = asyncio.get_running_loop()
        for peer in self._peers:
            host, port = self._addresses[peer]
            if _is_ip(host):
                continue
            try:
                async with asyncio.timeout(5.0):
                    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (OSError, TimeoutError, UnicodeError):
                continue
            found = {source_ip(info[4][0]) for info in infos}
            if found:
                self._peer_ips[peer] = found
        self._update_reserved()

    def _update_reserved(self) -> None:
        self._reserved_ips = set().union(*(self._peer_ips[p] for p in self._peers
                                           if p < self.me))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


async def _listen(host: str, port: int) -> list[socket.socket]:
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
