"""Encrypted, authenticated TCP links between validators (asyncio).

The transport only turns sockets into (peer index, message bytes) and back; what the
messages mean is the runtime's business. docs/transport.md gives the bytes on the wire
and every limit below with its default.

`Transport` is this module: its settings (`Limits`), counters, public API, stopping and
failing, and the housekeeping task. Its parts are mixed in from:
  node/peerlink.py   dialling, and a live link: reading, writing, replacing
  node/listener.py   the peer port's accept loop and the responder's handshake
  node/slots.py      the peer port's connections that have not authenticated yet
  node/ratelimit.py  the token bucket and the sampled log they use

The rules:
- One link per pair of validators: the lower index dials, the higher listens. A listener
  refuses a dialler with a higher index, so two links never race. A new authenticated
  link from a peer replaces the old one (the peer restarted; the old socket is dead).
- A link exists only after the handshake (node/handshake.py): both sides proved their
  genesis key, the dialler first. Anyone else is refused before being given a single
  message, and nobody gets a signature of this node without having proved a key first.
- The peer port admits a bounded number of connections that have not authenticated
  yet, evicting the oldest when there is no room, with deadlines and rate-limited
  public-key work (node/slots.py, node/listener.py). Refusals and failures are logged
  sampled, never a line (or traceback) per attempt (node/ratelimit.py).
- `on_message` may raise `PeerInputError` for a message its peer should not have sent:
  it is counted and logged (sampled) and the link stays. Any other exception from
  `on_message` or `on_link` is a bug of this node or a failure of its state (an assertion
  of the replica, an error of the ledger): the transport stops at once, every link and
  the listener with it, and `wait_failure()` raises that exception so the process stops.
  Failing is better than carrying on with a state nobody checked.
- Each peer has one bounded send queue (count and bytes) that outlives its links; when a
  message does not fit, the oldest are dropped and counted. What is in the socket's own
  buffer is bounded too, and what is read by the frame limit (node/peerlink.py). So a
  slow, frozen or dead peer costs a fixed amount of memory.
- `send` only queues and wakes the peer's writer, which coalesces (node/peerlink.py).
- A link that has sent nothing for `heartbeat_s` sends an empty frame; a link that has
  received nothing for `idle_timeout_s` is dropped (a frozen peer or a dead path).
"""
from __future__ import annotations

import asyncio
import socket
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import structlog
from nacl.signing import SigningKey

from node.frames import MESSAGE_OVERHEAD, TAG_BYTES, SendQueue
from node.handshake import Roster
from node.listener import ACCEPT_BACKOFF_MAX_S, Listener, listen
from node.peerlink import Link, PeerLinks
from node.peerlink import PeerInputError  # noqa: F401  (callers import it from here)
from node.ratelimit import Bucket, SampledLog
from node.slots import Slots

log = structlog.get_logger("stadsmunt.transport")

RESOLVE_EVERY_S = 300.0     # peers' host names are looked up again this often


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


class Transport(PeerLinks, Listener, Slots):
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
        self._links: dict[int, Link] = {}
        self._tasks: set[asyncio.Task] = set()
        self._listeners: list[socket.socket] = []
        self._stopping = False
        self._failure: BaseException | None = None
        self._failed = asyncio.Event()
        self.port: int | None = None
        self._init_slots(genesis_hash)
        self._init_listener()
        self._log: SampledLog | None = None

    # -- the API ------------------------------------------------------------------------

    async def start(self, sock: socket.socket | None = None) -> None:
        """Listens (on `sock` when given, else on this validator's address) and dials
        every validator with a higher index."""
        assert not self._listeners and not self._stopping, "started twice"
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._log = SampledLog(self.limits.log_interval_s, now, me=self.me)
        self._outsider_bucket = Bucket(self.limits.outsider_handshake_rate,
                                        self.limits.outsider_handshake_burst, now)
        self._reply_buckets = {peer: Bucket(self.limits.peer_handshake_rate,
                                             self.limits.peer_handshake_burst, now)
                               for peer in self._peers}
        if sock is not None:
            socks = [sock]
        else:
            socks = await listen(*self._addresses[self.me])
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

    def _note(self, now: float, event: str, kind: dict, address: str | None = None,
              **details) -> None:
        if self._log is not None:
            self._log.note(now, event, kind, address, **details)

    # -- housekeeping ---------------------------------------------------------------------

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
