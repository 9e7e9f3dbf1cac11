"""The peer port's slots: the connections that have not authenticated yet, and who must
make room for whom; and the peers' addresses, which decide who may use the reserved
slots. The Transport (node/transport.py) makes one `PeerAddresses` and one `Slots`; the
Listener (node/listener.py) admits accepted connections into the slots and releases
them when their handshake ends. docs/transport.md ("The peer port") gives the rules in
full.

The rules:
- The peer port admits a bounded number of connections that have not authenticated yet
  (`max_handshakes`, also kept well under the process's descriptor limit). Part of them
  (`reserved_handshakes`) only serves the addresses of the peers that dial this node;
  any other address holds at most `max_handshakes_per_ip`.
- When there is no room, the oldest unauthenticated connection goes first (outsiders
  before peers' addresses, those without a HELLO before those with one), so idle or
  slow connections cannot keep out a validator that completes its handshake promptly,
  even from the same address (loopback, NAT). An outsider never evicts a connection from
  a peer's address.
- Addresses are compared in one spelling (`source_ip`); peers given by host name are
  looked up again every so often, and a failed look-up keeps what was known.
"""
from __future__ import annotations

import asyncio
import ipaddress
import resource
import socket
from typing import TYPE_CHECKING, Callable, Sequence

import structlog

from node.handshake import HELLO_BYTES, MAGIC

if TYPE_CHECKING:
    from node.transport import Counters, TransportLimits

log = structlog.get_logger("stadsmunt.transport")


class Pending:
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


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def descriptor_limit() -> int | None:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def handshake_slots(limits: TransportLimits, descriptors: int | None,
                    me: int) -> tuple[int, int]:
    """(pending connections at most, of which reserved): kept to an eighth of the
    descriptors the process may open, so the peer port cannot run it out of them."""
    cap = limits.max_handshakes
    if descriptors is not None and descriptors // 8 < cap:
        cap = max(4, descriptors // 8)
        log.info("handshake_slots_limited", me=me, max_handshakes=cap,
                 descriptors=descriptors)
    return cap, min(limits.reserved_handshakes, cap // 2)


class PeerAddresses:
    """Every peer's addresses as seen from here: literal addresses at once, host names
    once looked up (`resolve`); a failed look-up keeps what was known. A peer may have
    no address (None): it is reached only by its own dialling. `reserved` holds the
    addresses of the peers that dial this node, as `dials_me` tells (by default the
    lower indices; the transport's rule is the lower public key, among the peers it
    admits); `update` computes it again after that changes."""

    def __init__(self, me: int, addresses: Sequence[tuple[str, int] | None],
                 dials_me: Callable[[int], bool] | None = None):
        self._me = me
        self._dials_me = dials_me if dials_me is not None else (lambda peer: peer < me)
        self._addresses: dict[int, tuple[str, int] | None] = {}
        self._ips: dict[int, set[str]] = {}
        for peer, address in enumerate(addresses):
            if peer != me:
                self._set(peer, address)
        self.reserved: set[str] = set()
        self.update()

    def of(self, peer: int) -> set[str]:
        return self._ips.get(peer, set())

    def put(self, peer: int, address: tuple[str, int] | None) -> None:
        """Sets (or replaces) `peer`'s address; a host name is looked up by the next
        `resolve`. Then `update`."""
        if peer != self._me:
            self._set(peer, address)
            self.update()

    def _set(self, peer: int, address: tuple[str, int] | None) -> None:
        known = self._addresses.get(peer)
        self._addresses[peer] = address
        if address is None:
            self._ips.setdefault(peer, set())
        elif is_ip(address[0]):
            self._ips[peer] = {source_ip(address[0])}
        elif known is None or known[0] != address[0]:
            self._ips[peer] = set()             # another host: known once looked up

    async def resolve(self, peers: Sequence[int] | None = None) -> None:
        """Looks up the peers given by host name (literal addresses need no look-up), all
        of them or those of `peers`; a failed look-up keeps what was known."""
        loop = asyncio.get_running_loop()
        for peer, address in list(self._addresses.items()):
            if address is None or is_ip(address[0]) or (peers is not None
                                                          and peer not in peers):
                continue
            host, port = address
            try:
                async with asyncio.timeout(5.0):
                    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (OSError, TimeoutError, UnicodeError):
                continue
            found = {source_ip(info[4][0]) for info in infos}
            if found and self._addresses.get(peer) == address:
                self._ips[peer] = found
        self.update()

    def update(self) -> None:
        """`reserved` again, from the peers that dial this node now."""
        self.reserved = set().union(*(ips for peer, ips in self._ips.items()
                                      if self._dials_me(peer)))


class Slots:
    """The peer port's connections that have not authenticated yet: how many may wait,
    which go to make room, and which come from the dialling peers' addresses (the
    reserved slots). A connection is in from `admit` until `release`; each one refused
    or evicted is counted and logged here (`refused`)."""

    def __init__(self, me: int, limits: TransportLimits, genesis_hash: bytes,
                 addresses: PeerAddresses, counters: Counters,
                 note: Callable[..., None]):
        self._limits = limits
        self._addresses = addresses
        self._counters = counters
        self._note = note
        # who is waiting to authenticate, oldest first in each pool; a pool per (from a
        # dialling peer's address, HELLO seen)
        self._pools: dict[tuple[bool, bool], dict[int, Pending]] = {
            (insider, hello): {} for insider in (False, True) for hello in (False, True)}
        self._outsiders = 0
        self._by_ip: dict[str, dict[int, Pending]] = {}     # outsiders only
        self._hello_prefix = MAGIC + genesis_hash
        self._next_id = 0
        self._cap, self._reserved = handshake_slots(limits, descriptor_limit(), me)

    def pending(self) -> int:
        return sum(len(pool) for pool in self._pools.values())

    def admit(self, conn: socket.socket, address, now: float) -> Pending | None:
        """The accepted connection `conn`, counted among the pending; None if there is no
        room for it (then it is closed and refused)."""
        ip = source_ip(address[0]) if isinstance(address, tuple) else str(address)
        insider = ip in self._addresses.reserved
        if not self._make_room(ip, insider, now):
            conn.close()
            self.refused(now, "busy", ip, None)
            return None
        conn.setblocking(False)
        self._next_id += 1
        entry = Pending(self._next_id, conn, ip, insider, now)
        # a dialling validator sends its HELLO as soon as it is connected, so under load
        # it is usually here before the accept: such a connection is not idle
        entry.hello = self._hello_arrived(entry)
        self._pools[insider, entry.hello][entry.id] = entry
        if not insider:
            self._outsiders += 1
            self._by_ip.setdefault(ip, {})[entry.id] = entry
        return entry

    def hello_seen(self, entry: Pending) -> None:
        if not entry.hello and not entry.released:
            del self._pools[entry.insider, False][entry.id]
            entry.hello = True
            self._pools[entry.insider, True][entry.id] = entry

    def release(self, entry: Pending) -> bool:
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

    def refused(self, now: float, reason: str, ip: str, peer: int | None) -> None:
        self._counters.handshakes_failed += 1
        self._counters.handshakes_refused += 1
        self._note(now, "handshake_refused", {"reason": reason, "role": "responder"},
                   address=ip, peer=peer)

    def close_all(self) -> None:
        """Releases and closes every pending connection (their tasks are the caller's)."""
        for entry in [e for pool in self._pools.values() for e in pool.values()]:
            self.release(entry)
            entry.close()

    # -- making room ----------------------------------------------------------------------

    def _hello_arrived(self, entry: Pending) -> bool:
        """Whether a whole HELLO has arrived on a connection, read by its stream already
        or still in the kernel's buffer (looked at, not taken)."""
        try:
            peeked = entry.sock.recv(HELLO_BYTES, socket.MSG_PEEK)
        except OSError:         # nothing there (BlockingIOError), or reset already
            peeked = b""
        if not entry.received:
            return len(peeked) == HELLO_BYTES and peeked.startswith(self._hello_prefix)
        return entry.received + len(peeked) >= HELLO_BYTES

    def _make_room(self, ip: str, insider: bool, now: float) -> bool:
        """Evicts what must go for a new connection from `ip`; False if it cannot come
        in. Those that have not sent a HELLO go first, the oldest first; then those that
        did, the oldest first; outsiders before connections from dialling peers'
        addresses, which an outsider never evicts."""
        if not insider:
            own = self._by_ip.get(ip)
            if own and len(own) >= self._limits.max_handshakes_per_ip:
                victim = self._idlest(list(own.values()))
                if victim is None:
                    return False
                self._evict(victim, now)
            # the reserved slots are kept only while some peer dials this node
            room = self._cap - (self._reserved if self._addresses.reserved else 0)
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

    def _oldest(self, *pools: tuple[bool, bool]) -> Pending | None:
        """The first to go among `pools`, in that order. One without a HELLO is looked
        at again first: a validator's HELLO may have come since its connection was
        accepted, and then it is not the idle one."""
        for key in pools:
            for entry in list(self._pools[key].values()):
                if not entry.closable():
                    continue
                if key[1] or not self._hello_arrived(entry):
                    return entry
                self.hello_seen(entry)
        return None

    def _idlest(self, entries: list[Pending]) -> Pending | None:
        closable = [entry for entry in entries if entry.closable()]
        for entry in closable:
            if not entry.hello:
                if not self._hello_arrived(entry):
                    return entry
                self.hello_seen(entry)
        return closable[0] if closable else None

    def _evict(self, entry: Pending, now: float) -> None:
        self.release(entry)
        entry.close()
        if entry.task is not None:
            entry.task.cancel()
        self._counters.handshakes_evicted += 1
        self.refused(now, "evicted", entry.ip, entry.peer)
