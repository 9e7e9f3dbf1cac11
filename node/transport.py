"""Encrypted, authenticated TCP links between validators (asyncio).

The transport only turns sockets into (peer index, message bytes) and back; what the
messages mean is the runtime's business. docs/transport.md gives the bytes on the wire
and every limit below with its default.

`Transport` is this module: its settings (`TransportLimits`; a validator's frame and
queue sizes come from node.toml through node/config.py), counters, public API, the links
it holds (making, replacing, delivering what they read), stopping and failing, and the
housekeeping task. It makes and wires its parts, each an object with its own state:
  node/peerlink.py   `Keys` (for the dialler's handshake, `_dial` here, which logs why
                     a dial failed), `Link` (one live link: reading frames, writing its
                     peer's queue)
  node/listener.py   `Listener`: the peer port's accept loop and the responder's
                     handshake; it hands each authenticated link to `_run_link`
  node/slots.py      `Slots`: the peer port's connections that have not authenticated
                     yet, and eviction; `PeerAddresses`: where the peers connect from
  node/ratelimit.py  `HandshakeRates` (token buckets) and `SampledLog`

The rules:
- The roster (node/handshake.py `Roster`) starts as the validators given to the
  constructor and grows at run time (`add_peer`, up to MAX_ROSTER): a validator keeps its
  index for the life of the transport. `admit` says which of them may hold a link now
  (at first all of them); a peer no longer admitted loses its link at once, its
  handshakes are refused, its queue is emptied and what is sent to it is dropped
  (counted), until it is admitted again.
- One link per pair of validators: the one with the lower public key (compared as
  bytes) dials, the other listens, so two validators agree whatever order their rosters
  hold them in. A listener refuses a dialler with a higher key, so two links never race.
  A new authenticated link from a peer replaces the old one (the peer restarted; the old
  socket is dead). A peer without an address is reached only by its own dialling.
- A link exists only after the handshake (node/handshake.py): both sides proved their
  key, the dialler first. Anyone else is refused before being given a single message,
  and nobody gets a signature of this node without having proved a key first.
- The peer port admits a bounded number of connections that have not authenticated
  yet, evicting the oldest when there is no room, with deadlines and rate-limited
  public-key work (node/slots.py, node/listener.py). Refusals and failures are logged
  sampled, never a line (or traceback) per attempt (node/ratelimit.py).
- A peer this node dials and cannot reach is logged per peer and outage: the first
  failed dial at once with its reason (`dial_failed`), then at most one line per
  `log_interval_s` with the count, and `dial_recovered` when the link is back.
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
import os
import socket
from dataclasses import asdict, dataclass
from typing import Callable, Iterable, Sequence

import structlog
from nacl.signing import SigningKey

from node.frames import MESSAGE_OVERHEAD, TAG_BYTES, FrameError, SendQueue
from node.handshake import KEY_BYTES, MAX_ROSTER, Roster, Session, initiate
from node.listener import ACCEPT_BACKOFF_MAX_S, Listener, listen
from node.peerlink import LINK_ERRORS, Keys, Link, dials, fixed_reason
from node.ratelimit import HandshakeRates, SampledLog
from node.slots import PeerAddresses, Slots, is_ip

log = structlog.get_logger("stadsmunt.transport")

RESOLVE_EVERY_S = 300.0     # peers' host names are looked up again this often
YIELD_EVERY = 64           # messages of one frame handled between two turns of the loop


@dataclass(slots=True)
class _Outage:
    """A peer this validator dials and has had no link with since `since` (loop time):
    its failed dials, in all and since the last `dial_failed` line."""
    since: float
    line_at: float
    reason: str
    failures: int = 1
    unlogged: int = 0


def connect_reason(error: BaseException) -> str:
    """Why a TCP connect to a peer failed, from a fixed set of words (the OS's own)."""
    if isinstance(error, TimeoutError):
        return "connect timeout"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, socket.gaierror):
        return "host not found"
    if isinstance(error, OSError) and error.errno:
        return os.strerror(error.errno).lower()     # e.g. "no route to host"
    if "Connection refused" in str(error):          # every address of a name refused
        return "connection refused"
    return "connect failed"


class PeerInputError(Exception):
    """Raised by `on_message` for a message that its peer should not have sent
    (undecodable, malformed, a block that does not check out). The transport counts it,
    logs it sampled (`bad_peer_input`) and keeps the link. Anything else `on_message`
    raises stops the transport (see `Transport.wait_failure`)."""


@dataclass(frozen=True, slots=True)
class TransportLimits:
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
    links_shunned: int = 0          # links dropped (and refused a while) by `shun`
    links_not_admitted: int = 0     # links closed because `admit` left their peer out
    messages_not_admitted: int = 0  # messages dropped as their peer is not admitted:
                                    # queued when it was left out, or sent since


def _checked_key(key) -> bytes:
    if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_BYTES:
        raise ValueError(f"a validator key is {KEY_BYTES} bytes")
    return bytes(key)


def _checked_address(address) -> tuple[str, int] | None:
    if address is None:
        return None
    if not isinstance(address, (tuple, list)) or len(address) != 2:
        raise ValueError("a peer address is (host, port)")
    host, port = address
    if not isinstance(host, str) or not host or isinstance(port, bool) \
            or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"not a peer address: {address!r}")
    return host, port


class Transport:
    def __init__(self, me: int, seed: bytes, validators: Sequence[tuple[bytes, str, int]],
                 genesis_hash: bytes, on_message: Callable[[int, bytes], None],
                 limits: TransportLimits = TransportLimits(),
                 on_link: Callable[[int, bool], None] | None = None,
                 names: Sequence[str] | None = None):
        assert 0 <= me < len(validators)
        if len(validators) > MAX_ROSTER:
            raise ValueError(f"{len(validators)} validators: a roster holds {MAX_ROSTER}")
        self.me = me
        # how log lines name the validators (theirs in the genesis); else by index
        self.names = list(names) if names is not None else list(range(len(validators)))
        self.limits = limits
        self.roster = Roster(genesis_hash, tuple(bytes(v[0]) for v in validators))
        self.counters = Counters()
        signing = SigningKey(seed)
        if bytes(signing.verify_key) != self.roster.keys[me]:
            raise ValueError("the seed is not the key of validator %d" % me)
        self._peers = [i for i in range(len(validators)) if i != me]
        # who may hold a link now (`admit`): the indices, and the keys last admitted
        # (None: every roster member, the state until the first `admit`)
        self._admitted: set[int] = set(self._peers)
        self._admit_keys: frozenset[bytes] | None = None
        self._keys = Keys(self.roster, me, signing, admitted=self._is_admitted)
        self._addresses: list[tuple[str, int] | None] = [
            (host, port) for _, host, port in validators]
        self._on_message = on_message
        self._on_link = on_link
        self._queues = {peer: SendQueue(limits.max_queue_bytes, limits.max_queue_messages)
                        for peer in self._peers}
        self._wakeups = {peer: asyncio.Event() for peer in self._peers}
        self._dialers: dict[int, asyncio.Task] = {}     # peer -> its dial loop
        self._unaddressed: set[int] = set()     # peers logged as having no address
        self._links: dict[int, Link] = {}
        self._shunned: dict[int, float] = {}     # peer -> no link with it before (loop time)
        self._tasks: set[asyncio.Task] = set()
        self._stopping = False
        self._failure: BaseException | None = None
        self._failed = asyncio.Event()
        self.port: int | None = None
        self._peer_addresses = PeerAddresses(me, self._addresses, dials_me=self._dials_me)
        self._slots = Slots(me, limits, genesis_hash, self._peer_addresses, self.counters,
                            self._note)
        self._listener: Listener | None = None      # from `start`
        self._rates: HandshakeRates | None = None   # from `start`
        self._log: SampledLog | None = None
        self._outages: dict[int, _Outage] = {}   # dialled peers with no link (`_dial`)

    # -- the API ------------------------------------------------------------------------

    async def start(self, sock: socket.socket | None = None) -> None:
        """Listens (on `sock` when given, else on this validator's address) and dials
        every admitted peer with an address whose key is higher than this validator's."""
        assert self._listener is None and not self._stopping, "started twice"
        now = asyncio.get_running_loop().time()
        self._log = SampledLog(self.limits.log_interval_s, now, me=self.names[self.me])
        rates = self._rates = HandshakeRates(self.limits, self._peers, now)
        if sock is not None:
            socks = [sock]
        else:
            socks = await listen(*self._addresses[self.me])
        self._listener = Listener(socks, self._keys, self.limits, self._slots,
                                  self._peer_addresses, rates, self.counters, self._note,
                                  self._spawn, self._fail, hand_over=self._run_link)
        self._listener.start()
        self.port = socks[0].getsockname()[1]
        for peer in self._peers:
            self._ensure_dialer(peer)
        self._spawn(self._guard(self._maintain))
        log.info("transport_started", me=self.names[self.me], port=self.port)

    def send(self, peer: int, data: bytes) -> None:
        """Queues `data` for `peer`; never blocks. Raises ValueError for a message over
        `limits.max_message_bytes` (a bug of the caller, not of the peer)."""
        if len(data) > self.limits.max_message_bytes:
            raise ValueError(f"message of {len(data)} bytes is over the limit of "
                             f"{self.limits.max_message_bytes}")
        queue = self._queues[peer]
        if peer not in self._admitted:
            self.counters.messages_not_admitted += 1     # dropped, silently
            return
        queue.push(data)
        self._wakeups[peer].set()

    def broadcast(self, data: bytes) -> None:
        """Queues `data` for every admitted peer."""
        for peer in self._peers:
            if peer in self._admitted:
                self.send(peer, data)

    # -- the roster and who is admitted ---------------------------------------------------

    def add_peer(self, key: bytes, address: tuple[str, int] | None,
                 name: str | None = None) -> int:
        """The index of the validator with `key`, added to the roster at the next index if
        it is not in it yet (with its queue, rate bucket and address). `address` (host,
        port) and `name` (for log lines), when given, replace what was known; a peer
        with no address at all is reached only by its own dialling (logged once,
        `peer_without_address`). A new peer is admitted unless `admit` was called before
        without its key. Once started, a peer this validator must dial (its key is
        higher) is dialled as soon as it is admitted and has an address.
        Raises ValueError, changing nothing, for a key that is not 32 bytes, an address
        that is not (host, port), a name that is not a str, or a roster that is full
        (MAX_ROSTER)."""
        key = _checked_key(key)
        address = _checked_address(address)
        if name is not None and not isinstance(name, str):
            raise ValueError("a peer's name is a str")
        index = self.roster.index(key)
        if index is None:
            if len(self.roster.keys) >= MAX_ROSTER:
                raise ValueError(f"the roster is full ({MAX_ROSTER} validators)")
            index = self._append(key, name)
        elif name is not None:
            self.names[index] = name
        if index == self.me:
            if address is not None:
                self._addresses[index] = address
            return index
        if address is not None and address != self._addresses[index]:
            self._addresses[index] = address
            self._peer_addresses.put(index, address)
            if self._listener is not None and not self._stopping \
                    and not is_ip(address[0]):
                self._spawn(self._guard(self._peer_addresses.resolve, [index]))
            log.info("peer_address", me=self.names[self.me], peer=self.names[index],
                     address=f"{address[0]}:{address[1]}")
        if self._addresses[index] is None and index not in self._unaddressed:
            self._unaddressed.add(index)
            log.warning("peer_without_address", me=self.names[self.me],
                        peer=self.names[index], dialled_by_us=self._dials(index))
        self._ensure_dialer(index)
        return index

    def admit(self, keys: Iterable[bytes]) -> None:
        """From now on only the validators with these keys (and this one) may hold a
        link; keys not in the roster yet count for the peers added later. A link to a
        peer left out is closed at once (`link_closed_not_admitted`), its queue is
        emptied, what is sent to it is dropped (both counted in
        `messages_not_admitted`), its handshakes are refused (`not admitted`, nothing
        signed) and it is not dialled; admitting it again undoes all that. Raises
        ValueError, changing nothing, for a key that is not 32 bytes or more keys than
        MAX_ROSTER."""
        chosen: set[bytes] = set()
        for key in keys:
            chosen.add(_checked_key(key))
            if len(chosen) > MAX_ROSTER:
                raise ValueError(f"more than {MAX_ROSTER} keys admitted")
        admitted = {peer for peer in self._peers if self.roster.keys[peer] in chosen}
        gone, back = self._admitted - admitted, admitted - self._admitted
        self._admit_keys = frozenset(chosen)
        self._admitted.clear()
        self._admitted.update(admitted)
        if gone or back:
            log.info("admission_changed", me=self.names[self.me],
                     admitted=sorted(str(self.names[p]) for p in back),
                     not_admitted=sorted(str(self.names[p]) for p in gone))
        for peer in sorted(gone):
            self._leave_out(peer)
        self._peer_addresses.update()
        for peer in sorted(back):
            self._ensure_dialer(peer)

    def index_of(self, key: bytes) -> int | None:
        """The roster index of the validator with `key`, or None."""
        if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_BYTES:
            return None
        return self.roster.index(bytes(key))

    def key_of(self, index: int) -> bytes:
        """The key of the validator at roster index `index`; IndexError if none."""
        if not 0 <= index < len(self.roster.keys):
            raise IndexError(f"no validator {index} in the roster")
        return self.roster.keys[index]

    def admitted(self) -> frozenset[int]:
        """The roster indices that may hold a link now, this validator's own included."""
        return frozenset(self._admitted | {self.me})

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
        return self._slots.pending()

    def stats(self) -> dict:
        out = asdict(self.counters)
        out["messages_dropped"] = sum(q.dropped for q in self._queues.values())
        out["peers_connected"] = len(self._links)
        out["peers_admitted"] = len(self._admitted)
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

    def shun(self, peer: int, seconds: float) -> None:
        """Drops the link to `peer` at once and takes none with it, dialled or accepted,
        for `seconds`: it sent what no correct validator sends (node/evidence.py). The
        rest of the frame being delivered from it is not delivered."""
        now = asyncio.get_running_loop().time()
        self._shunned[peer] = max(self._shunned.get(peer, 0.0), now + seconds)
        self.counters.links_shunned += 1
        link = self._links.pop(peer, None)
        if link is not None:
            link.abort()
            log.warning("link_down", me=self.names[self.me], peer=self.names[peer],
                        reason="shunned", for_s=round(seconds, 3))
            self._tell_link(peer, False)

    def halt(self) -> None:
        """Closes every link and the listener at once, without waiting: the validator
        failed elsewhere and must read nothing more from its peers (fail-stop). Not a
        failure of the transport; `stop` still ends its tasks."""
        self._halt()

    async def stop(self) -> None:
        self._halt()
        tasks = list(self._tasks)
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._log is not None:
            self._log.flush(asyncio.get_running_loop().time())
        log.info("transport_stopped", me=self.names[self.me])

    # -- stopping -------------------------------------------------------------------------

    def _halt(self) -> None:
        """Closes the listener, every connection and link, and cancels every task but the
        one running this."""
        self._stopping = True
        if self._listener is not None:
            self._listener.close()
        self._slots.close_all()
        for link in list(self._links.values()):
            link.abort()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()

    def _fail(self, error: Exception) -> None:
        if self._failure is not None or self._stopping:
            # stopping (or halted because the validator failed, which is what raised
            # here then): the owner reports that failure, not this one
            return
        self._failure = error
        # the line names it; the traceback is the owner's to log once (validator_failed)
        log.error("transport_failed", me=self.names[self.me], error=repr(error))
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
        """A sampled line (node/ratelimit.py), its peer (an index, or None) by name."""
        if kind.get("peer") is not None:
            kind = {**kind, "peer": self.names[kind["peer"]]}
        if details.get("peer") is not None:
            details["peer"] = self.names[details["peer"]]
        if self._log is not None:
            self._log.note(now, event, kind, address, **details)

    # -- the roster -----------------------------------------------------------------------

    def _is_admitted(self, peer: int) -> bool:
        return peer in self._admitted

    def _dials(self, peer: int) -> bool:
        """Whether this validator dials `peer` (its own key is the lower)."""
        return dials(self.roster, self.me, peer)

    def _dials_me(self, peer: int) -> bool:
        """Whether `peer` may dial this validator now (for the reserved slots)."""
        return peer in self._admitted and dials(self.roster, peer, self.me)

    def _append(self, key: bytes, name: str | None) -> int:
        index = len(self.roster.keys)
        self.roster = self.roster.with_key(key)
        self._keys.roster = self.roster
        self.names.append(name if name is not None else index)
        self._addresses.append(None)
        self._peers.append(index)
        self._queues[index] = SendQueue(self.limits.max_queue_bytes,
                                        self.limits.max_queue_messages)
        self._wakeups[index] = asyncio.Event()
        if self._admit_keys is None or key in self._admit_keys:
            self._admitted.add(index)
        if self._rates is not None:
            self._rates.add(index, asyncio.get_running_loop().time())
        self._peer_addresses.put(index, None)
        log.info("peer_added", me=self.names[self.me], peer=self.names[index], index=index,
                 admitted=index in self._admitted)
        return index

    def _leave_out(self, peer: int) -> None:
        """`peer` is no longer admitted: its link closes, its queue empties."""
        queue = self._queues[peer]
        if len(queue):
            self.counters.messages_not_admitted += len(queue)
            queue.take(queue.bytes)
        link = self._links.pop(peer, None)
        if link is not None:
            link.abort()
            self.counters.links_not_admitted += 1
            log.warning("link_closed_not_admitted", me=self.names[self.me],
                        peer=self.names[peer])
            if not self._stopping:
                self._tell_link(peer, False)

    def _ensure_dialer(self, peer: int) -> None:
        """Starts `peer`'s dial loop if this validator must dial it now and none runs."""
        running = self._dialers.get(peer)
        if (self._listener is None or self._stopping or peer not in self._admitted
                or self._addresses[peer] is None or not self._dials(peer)
                or (running is not None and not running.done())):
            return
        task = self._dialers[peer] = self._spawn(self._guard(self._dial_loop, peer))
        task.add_done_callback(
            lambda done: self._dialers.pop(peer) if self._dialers.get(peer) is done else None)

    # -- links ----------------------------------------------------------------------------

    async def _dial_loop(self, peer: int) -> None:
        """Dials `peer` (a higher key) again and again while it is admitted: its backoff
        runs from `backoff_initial_s` to `backoff_max_s` on the event loop's clock."""
        loop = asyncio.get_running_loop()
        backoff = self.limits.backoff_initial_s
        while not self._stopping and peer in self._admitted:
            shunned = self._shunned.get(peer, 0.0) - loop.time()
            if shunned > 0:
                await asyncio.sleep(shunned)
                continue
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
        """(session, reader, writer) of a new authenticated link to `peer`, or None. A
        dial that fails is logged as `_dial_failed` says; a failed handshake is also
        logged sampled (`handshake_failed`)."""
        loop = asyncio.get_running_loop()
        host, port = self._addresses[peer]
        try:
            async with asyncio.timeout(self.limits.connect_timeout_s):
                reader, writer = await asyncio.open_connection(
                    host, port, limit=self.limits.read_buffer_bytes)
        except (TimeoutError, OSError) as error:
            self._dial_failed(peer, connect_reason(error), loop.time())
            return None
        try:
            session = await initiate(reader, writer, self._keys.initiator(peer),
                                     self.limits.handshake_timeout_s)
        except BaseException as error:
            writer.transport.abort()    # failed, or cancelled by stop() in mid-handshake
            if not isinstance(error, LINK_ERRORS):
                raise
            self.counters.handshakes_failed += 1
            reason = fixed_reason(error, "handshake timeout")
            self._note(loop.time(), "handshake_failed",
                       {"reason": reason, "role": "initiator", "peer": peer})
            self._dial_failed(peer, f"handshake: {reason}", loop.time())
            return None
        return session, reader, writer

    def _dial_failed(self, peer: int, reason: str, now: float) -> None:
        """Logs a failed dial of `peer`, sampled per peer: the first of an outage at once
        with its reason and address (`dial_failed`), then while it lasts at most one line
        a `log_interval_s` with how many failed since the last line (`summary`, `count`),
        in all (`failed_dials`) and for how long (`for_s`). `_run_link` says when a link
        is back (`dial_recovered`)."""
        outage = self._outages.get(peer)
        host, port = self._addresses[peer]
        if outage is None:
            self._outages[peer] = _Outage(since=now, line_at=now, reason=reason)
            log.warning("dial_failed", me=self.names[self.me], peer=self.names[peer],
                        address=f"{host}:{port}", reason=reason)
            return
        outage.failures += 1
        outage.unlogged += 1
        outage.reason = reason
        if now - outage.line_at >= self.limits.log_interval_s:
            log.warning("dial_failed", me=self.names[self.me], peer=self.names[peer],
                        address=f"{host}:{port}", reason=reason, summary=True,
                        count=outage.unlogged, failed_dials=outage.failures,
                        for_s=round(now - outage.since, 1))
            outage.line_at, outage.unlogged = now, 0

    async def _run_link(self, session: Session, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
        """Runs a new authenticated link, of either side, until it ends; it replaces the
        peer's old one (the peer restarted; the old socket is dead)."""
        peer = session.peer
        loop = asyncio.get_running_loop()
        if (self._stopping or self._shunned.get(peer, 0.0) > loop.time()
                or peer not in self._admitted):
            writer.transport.abort()
            return
        old = self._links.get(peer)
        if old is not None:
            log.info("link_replaced", me=self.names[self.me], peer=self.names[peer])
            old.abort()
        link = Link(session, writer, loop.time(), self._queues[peer], self._wakeups[peer],
                    self.limits, self.counters)
        self._links[peer] = link
        self.counters.links_opened += 1
        log.info("link_up", me=self.names[self.me], peer=self.names[peer])
        outage = self._outages.pop(peer, None)
        if outage is not None:
            log.info("dial_recovered", me=self.names[self.me], peer=self.names[peer],
                     failed_dials=outage.failures, last_reason=outage.reason,
                     after_s=round(loop.time() - outage.since, 1))
        # guarded like every task of the transport: a writer that died of a bug would
        # otherwise end silently and leave the link to flap forever
        write_task = self._spawn(self._guard(link.write_loop))
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
                log.warning("link_down", me=self.names[self.me], peer=self.names[peer],
                            reason=reason)
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
        counters = self.counters
        deliver = self._on_message
        peer = link.peer
        while True:
            messages = await link.receive(reader)
            if self._stopping or self._links.get(peer) is not link:
                return  # replaced or stopped while this frame was read
            for turn, message in enumerate(messages, 1):
                if turn % YIELD_EVERY == 0:
                    # a frame of many small messages (catch-up requests, votes) must not
                    # hold the event loop: ticks, other peers and the gateway go between
                    await asyncio.sleep(0)
                    if self._stopping or self._links.get(peer) is not link:
                        return
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
                if self._stopping or self._links.get(peer) is not link:
                    return  # stopped, or the peer was shunned for what it sent

    # -- housekeeping ---------------------------------------------------------------------

    async def _maintain(self) -> None:
        loop = asyncio.get_running_loop()
        resolve_at = loop.time()
        while True:
            now = loop.time()
            if now >= resolve_at:
                resolve_at = now + RESOLVE_EVERY_S
                await self._peer_addresses.resolve()
            await asyncio.sleep(self.limits.heartbeat_s)
            now = loop.time()
            self._log.tick(now)
            for link in list(self._links.values()):
                if now - link.last_received > self.limits.idle_timeout_s:
                    log.warning("link_idle", me=self.names[self.me],
                                peer=self.names[link.peer])
                    link.abort()
                elif now - link.last_sent >= self.limits.heartbeat_s:
                    link.heartbeat_due = True
                    self._wakeups[link.peer].set()
